//! Triage: for every finding, how its key is used and what to do next (the CIS rotation procedure as data),
//! and who owns the user. Pure: it reads the findings, the account's inventory and the run's settings.
//!
//! The CIS text draws the line: keys not used in 90 days can be made inactive; a key still in use is rotated
//! (a second key first, applications moved, the old key's last use checked, then deactivated, and deleted
//! only after a wait).

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use crate::eval::{EvalContext, Evidence, Finding, KeyFacts, whole_days};
use crate::inventory::{AccountInventory, CredentialUser, KeyChange, KeySlotRecord, KeyStatus};

/// How an access key is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Usage {
    /// AWS recorded no use.
    NeverUsed,
    /// Last used `dormant-days` or more before `as_of`.
    Dormant,
    /// Used more recently.
    InUse,
    /// No recorded use, but the key predates AWS's use records (2015-04-22): it may have been used.
    Unknown,
}

impl Usage {
    /// `never_used`, `dormant`, `in_use` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Usage::NeverUsed => "never_used",
            Usage::Dormant => "dormant",
            Usage::InUse => "in_use",
            Usage::Unknown => "unknown",
        }
    }

    /// Parses [`Usage::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Usage::NeverUsed, Usage::Dormant, Usage::InUse, Usage::Unknown].into_iter().find(|v| v.as_str() == s)
    }
}

/// What to do about a finding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Nothing depends on the key (or it must not exist): make it inactive now, delete it later.
    Deactivate,
    /// In use, and the user has a free key slot: create a second key, move the applications, deactivate this.
    Rotate,
    /// In use, and the user's other slot is taken: free it first (rotation needs a free slot).
    FreeSlotThenRotate,
    /// In use, and the user's other key is newer and active: applications should be moving to it; check this
    /// key's last use, then deactivate it.
    FinishRotation,
    /// Nothing to do (passing and inactive keys).
    #[default]
    None,
}

impl Action {
    /// Every action, in the order the table lists them.
    pub const ALL: [Action; 5] =
        [Action::Deactivate, Action::Rotate, Action::FreeSlotThenRotate, Action::FinishRotation, Action::None];

    /// `deactivate`, `rotate`, `free_slot_then_rotate`, `finish_rotation` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deactivate => "deactivate",
            Action::Rotate => "rotate",
            Action::FreeSlotThenRotate => "free_slot_then_rotate",
            Action::FinishRotation => "finish_rotation",
            Action::None => "none",
        }
    }
    /// Parses [`Action::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl Action {
    /// The CIS procedure for this action as concrete steps, for the key `key` (its id, when known) of `user`.
    pub fn steps(self, user: &str, key: Option<&str>) -> Vec<String> {
        let unknown = format!("<its key id, from: aws iam list-access-keys --user-name {user}>");
        let key = key.unwrap_or(&unknown);
        let last_use = format!("aws iam get-access-key-last-used --access-key-id {key}");
        let deactivate = format!(
            "Deactivate it: aws iam update-access-key --user-name {user} --access-key-id {key} --status Inactive \
             (if something breaks, run it again with --status Active)"
        );
        let delete = format!(
            "After a waiting period without complaints, delete it: aws iam delete-access-key --user-name {user} \
             --access-key-id {key}"
        );
        let rotate = [
            format!(
                "Create a second key: aws iam create-access-key --user-name {user} (keep its secret in your secrets \
                 manager; never send it by mail or chat)"
            ),
            "Move every application that uses the old key to the new one.".to_owned(),
            format!("Wait several days, then check that the old key is no longer used: {last_use}"),
        ];
        match self {
            Action::Deactivate => vec![format!("Check its last use: {last_use}"), deactivate, delete],
            Action::Rotate => rotate.into_iter().chain([deactivate, delete]).collect(),
            Action::FinishRotation => vec![
                format!("Check that applications have moved to the user's newer key: {last_use} shows no recent use"),
                deactivate,
                delete,
            ],
            Action::FreeSlotThenRotate => std::iter::once(format!(
                "Free a key slot first: delete the user's inactive key, or finish the rotation of its other \
                     active key (aws iam list-access-keys --user-name {user})"
            ))
            .chain(rotate)
            .chain([deactivate, delete])
            .collect(),
            Action::None => Vec::new(),
        }
    }
}

/// A finding's triage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triage {
    /// How the key is used (`None` for a user-level finding).
    pub usage: Option<Usage>,
    /// What to do.
    pub action: Action,
    /// Why, in one sentence (`None` when there is nothing to do).
    pub action_reason: Option<String>,
}

/// AWS has recorded access-key use since 2015-04-22; an older key without a recorded use may have been used.
pub(crate) fn use_recorded_since() -> Timestamp {
    Timestamp::from_second(1_429_660_800).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// How `key` is used at `as_of`.
pub fn usage(key: &KeyFacts, as_of: Timestamp, dormant_after: SignedDuration) -> Usage {
    match key.last_used_at {
        Some(used) if as_of.duration_since(used) >= dormant_after => Usage::Dormant,
        Some(_) => Usage::InUse,
        None if key.created_at.unwrap_or(key.last_rotated) < use_recorded_since() => Usage::Unknown,
        None => Usage::NeverUsed,
    }
}

/// Fills every finding's triage and owner.
pub fn triage(findings: &mut [Finding], inv: &AccountInventory, ctx: &EvalContext) {
    let dormant_after = ctx.config.dormant_after();
    // One look-up per finding: accounts may hold thousands of users.
    let users: HashMap<&str, &CredentialUser> = inv.users.iter().map(|u| (u.arn.as_str(), u)).collect();
    for f in findings.iter_mut() {
        let user = users.get(f.user_arn.as_str()).copied();
        f.owner = user.and_then(|u| u.owner.clone());
        let usage = f.key.as_ref().map(|k| usage(k, ctx.as_of, dormant_after));
        let (action, reason) = if f.verdict.is_actionable() {
            let (action, reason) = action(f, usage, user, ctx);
            (action, Some(reason))
        } else {
            (Action::None, None)
        };
        f.triage = Triage { usage, action, action_reason: reason };
    }
}

fn action(f: &Finding, usage: Option<Usage>, user: Option<&CredentialUser>, ctx: &EvalContext) -> (Action, String) {
    let (Some(key), Some(usage)) = (&f.key, usage) else {
        return (
            Action::FinishRotation,
            "the user has two active keys: check which one applications use (aws iam get-access-key-last-used), \
             then deactivate the other"
                .to_owned(),
        );
    };
    if f.is_root() {
        return (
            Action::Deactivate,
            "root access keys should not exist: check its last use, deactivate it, then delete it".to_owned(),
        );
    }
    let last_use = |k: &KeyFacts| match (&k.last_used_at, &k.last_used_service) {
        (Some(t), Some(service)) => format!("last used {} by {service}", t.strftime("%Y-%m-%d")),
        (Some(t), None) => format!("last used {}", t.strftime("%Y-%m-%d")),
        (None, _) => "no recorded use".to_owned(),
    };
    if let Evidence::Usage { unused_for, .. } = f.evidence {
        return (
            Action::Deactivate,
            format!(
                "unused for {} days: CIS says to disable unused credentials; deactivate it now, delete it later",
                whole_days(unused_for)
            ),
        );
    }
    match usage {
        Usage::NeverUsed => {
            return (
                Action::Deactivate,
                "never used: nothing depends on it; deactivate it now, delete it after a waiting period".to_owned(),
            );
        }
        Usage::Dormant => {
            return (
                Action::Deactivate,
                format!(
                    "dormant ({}, {} days or more ago): deactivate it now, delete it after a waiting period",
                    last_use(key),
                    ctx.config.dormant_days()
                ),
            );
        }
        Usage::InUse | Usage::Unknown => {}
    }
    let how = if usage == Usage::Unknown {
        "use unknown (the key predates AWS's use records of 2015-04-22), so treat it as in use".to_owned()
    } else {
        format!("in use ({})", last_use(key))
    };
    let other: Option<&KeySlotRecord> =
        user.and_then(|u| u.keys.iter().find(|k| k.slot != key.slot && k.change != Some(KeyChange::Deleted)));
    match other {
        None => (
            Action::Rotate,
            format!(
                "{how}; the user has a free key slot: create a second key, move the applications to it, confirm this \
                 one is no longer used, then deactivate it"
            ),
        ),
        Some(o) if o.current_status() == KeyStatus::Inactive => (
            Action::FreeSlotThenRotate,
            format!(
                "{how}; the user's other slot holds an inactive key: delete that one first (rotation needs a free \
                 slot), then rotate"
            ),
        ),
        Some(o) if o.last_rotated > key.last_rotated => (
            Action::FinishRotation,
            format!(
                "{how}; the user's other key is active and newer ({}): applications should be moving to it; check \
                 this key's last use, then deactivate it",
                o.last_rotated.strftime("%Y-%m-%d")
            ),
        ),
        Some(_) => (
            Action::FreeSlotThenRotate,
            format!(
                "{how}; the user's other key is active and older: finish that key's rotation first to free a slot, \
                 then rotate this one"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{RuleConfig, Verdict};
    use crate::ids::AccountId;
    use crate::inventory::{KeySlot, Owner, ROOT_USER_NAME};
    use crate::rules::builtin;

    const DAY: i64 = 86_400;

    fn as_of() -> Timestamp {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn ago(days: i64) -> Timestamp {
        as_of() - SignedDuration::from_secs(days * DAY)
    }

    /// (slot, status, last rotated days ago, last used days ago)
    type KeySpec = (KeySlot, KeyStatus, i64, Option<i64>);

    fn key(spec: KeySpec) -> KeySlotRecord {
        let (slot, status, rotated, used) = spec;
        KeySlotRecord {
            last_used_at: used.map(ago),
            last_used_service: used.map(|_| "s3".to_owned()),
            ..KeySlotRecord::new(slot, status, ago(rotated))
        }
    }

    /// The KA-IAM-001 finding of slot 1 of `user`, triaged.
    fn triaged(user: &str, keys: &[KeySpec]) -> Finding {
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: user.into(),
                arn: format!("arn:aws:iam::012345678901:user/{user}"),
                keys: keys.iter().copied().map(key).collect(),
                owner: Some(Owner { value: "team-a".into(), tag: "team".into() }),
            }],
        };
        let only = builtin().select(&["KA-IAM-001".to_owned()], &[]).unwrap();
        let ctx = EvalContext { as_of: as_of(), config: RuleConfig::default() };
        let findings = crate::eval::evaluate(&only, &ctx, &AccountId::parse("012345678901").unwrap(), &inv);
        findings.into_iter().find(|f| f.key.as_ref().is_some_and(|k| k.slot == KeySlot::One)).unwrap()
    }

    #[test]
    fn every_failing_key_gets_the_cis_next_step() {
        use KeySlot::{One, Two};
        use KeyStatus::{Active, Inactive};
        let cases: &[(&str, &[KeySpec], Usage, Action)] = &[
            ("never used", &[(One, Active, 200, None)], Usage::NeverUsed, Action::Deactivate),
            ("dormant: last used 90 days ago", &[(One, Active, 200, Some(90))], Usage::Dormant, Action::Deactivate),
            ("in use, free slot", &[(One, Active, 200, Some(89))], Usage::InUse, Action::Rotate),
            (
                "in use, the other slot inactive",
                &[(One, Active, 200, Some(1)), (Two, Inactive, 300, None)],
                Usage::InUse,
                Action::FreeSlotThenRotate,
            ),
            (
                "in use, a newer active key: mid-rotation",
                &[(One, Active, 200, Some(1)), (Two, Active, 3, Some(1))],
                Usage::InUse,
                Action::FinishRotation,
            ),
            (
                "in use, an older active key",
                &[(One, Active, 200, Some(1)), (Two, Active, 300, Some(1))],
                Usage::InUse,
                Action::FreeSlotThenRotate,
            ),
            ("predates use records", &[(One, Active, 4400, None)], Usage::Unknown, Action::Rotate),
        ];
        for (name, keys, usage, action) in cases {
            let f = triaged("alice", keys);
            assert_eq!(f.verdict, Verdict::Fail, "{name}");
            assert_eq!((f.triage.usage, f.triage.action), (Some(*usage), *action), "{name}");
            assert!(f.triage.action_reason.is_some(), "{name}");
            assert_eq!(f.owner.as_ref().map(|o| o.tag.as_str()), Some("team"), "{name}");
        }
        let reason = triaged("alice", &[(One, Active, 200, Some(1))]).triage.action_reason.unwrap();
        assert_eq!(
            reason,
            "in use (last used 2026-11-27 by s3); the user has a free key slot: create a second key, move the \
             applications to it, confirm this one is no longer used, then deactivate it"
        );
    }

    #[test]
    fn passing_keys_have_usage_but_nothing_to_do_and_root_keys_are_always_deactivated() {
        let passing = triaged("alice", &[(KeySlot::One, KeyStatus::Active, 10, Some(1))]);
        assert_eq!((passing.triage.usage, passing.triage.action), (Some(Usage::InUse), Action::None));
        assert_eq!(passing.triage.action_reason, None);
        let root = triaged(ROOT_USER_NAME, &[(KeySlot::One, KeyStatus::Active, 200, Some(1))]);
        assert_eq!(root.triage.action, Action::Deactivate);
        assert!(root.triage.action_reason.unwrap().starts_with("root access keys should not exist"));
    }
}
