//! Triage: for every finding, how its key is used and what to do next (the CIS rotation procedure as data),
//! and who owns the user. Pure: it reads the findings, the account's inventory and the run's settings.
//!
//! The CIS text draws the line: keys not used in 90 days can be made inactive; a key still in use is rotated
//! (a second key first, applications moved, the old key's last use checked, then deactivated, and deleted
//! only after a wait).

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

pub use crate::finding::{Action, Triage, Usage};
use crate::finding::{EvalContext, Evidence, Finding, KeyFacts, whole_days};
use crate::inventory::{AccountInventory, CredentialUser, KeyChange, KeySlotRecord, KeyStatus};

/// The steps for finding `f`: its action's procedure with every key id keyaudit knows filled in. A root key's is
/// the root user's own procedure (no `aws iam` command acts on a root key through a user name); a user with two
/// active keys (KA-IAM-003) gets both ids.
pub fn steps(f: &Finding) -> Vec<String> {
    let key_id = f.key.as_ref().and_then(|k| k.access_key_id.as_ref()).map(|k| k.as_str());
    if f.is_root() {
        return root_steps(f.account_id.as_str(), key_id);
    }
    match (&f.evidence, f.triage.action) {
        (Evidence::ActiveKeys { keys, .. }, Action::FinishRotation) => {
            let ids: Vec<&str> = keys.iter().filter_map(|k| k.access_key_id.as_ref().map(|id| id.as_str())).collect();
            match ids[..] {
                [older, newer] => two_keys_steps(&f.user_name, older, newer),
                _ => f.triage.action.steps(&f.user_name, None),
            }
        }
        (_, action) => action.steps(&f.user_name, key_id),
    }
}

/// Retiring the older of a user's two active keys (`older` created first).
fn two_keys_steps(user: &str, older: &str, newer: &str) -> Vec<String> {
    vec![
        format!(
            "Check which key applications use: aws iam get-access-key-last-used --access-key-id {newer} (the newer \
             key) and --access-key-id {older} (the older key)"
        ),
        format!("Move what still uses the older key {older} to {newer}. {}", deactivate_step(user, older)),
        delete_step(user, older),
    ]
}

/// Deactivating `user`'s key `key`, reversibly.
fn deactivate_step(user: &str, key: &str) -> String {
    format!(
        "Deactivate it: aws iam update-access-key --user-name {user} --access-key-id {key} --status Inactive (if \
         something breaks, run it again with --status Active)"
    )
}

/// Deleting `user`'s key `key`, after the wait.
fn delete_step(user: &str, key: &str) -> String {
    format!(
        "After a waiting period without complaints, delete it: aws iam delete-access-key --user-name {user} \
         --access-key-id {key}"
    )
}

/// Removing an access key of the root user of `account`: as the root user, or with centralized root access.
fn root_steps(account: &str, key: Option<&str>) -> Vec<String> {
    let which = key.map_or_else(|| "its access key".to_owned(), |k| format!("the access key {k}"));
    let id = key.unwrap_or("<the key id, shown there>");
    vec![
        format!(
            "Sign in to the AWS Management Console as the root user of account {account}, open Security \
             credentials, check the key's last use there, and deactivate {which}"
        ),
        "After a waiting period without complaints, delete it there (a deleted key cannot be recovered); use IAM \
         roles or IAM Identity Center for programmatic access instead"
            .to_owned(),
        format!(
            "Or, with centralized root access in the organization, from the management account: aws sts assume-root \
             --target-principal {account} --task-policy-arn \
             arn=arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials, then with those credentials: aws \
             iam delete-access-key --access-key-id {id}"
        ),
    ]
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

impl Action {
    /// The CIS procedure for this action as concrete steps, for the key `key` (its id, when known) of `user`.
    pub fn steps(self, user: &str, key: Option<&str>) -> Vec<String> {
        let unknown = format!("<its key id, from: aws iam list-access-keys --user-name {user}>");
        let key = key.unwrap_or(&unknown);
        let last_use = format!("aws iam get-access-key-last-used --access-key-id {key}");
        let (deactivate, delete) = (deactivate_step(user, key), delete_step(user, key));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{RuleConfig, Verdict};
    use crate::ids::{AccessKeyId, AccountId};
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

    /// Every finding of `rules` for `user` (its keys given ids AKIA…1 and AKIA…2 by slot), triaged.
    fn evaluated(rules: &str, user: &str, keys: &[KeySpec]) -> Vec<Finding> {
        let with_id = |spec: KeySpec| KeySlotRecord {
            access_key_id: Some(AccessKeyId::parse(&format!("AKIAEXAMPLE00000000{}", spec.0.number())).unwrap()),
            ..key(spec)
        };
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: user.into(),
                arn: format!("arn:aws:iam::012345678901:user/{user}"),
                keys: keys.iter().copied().map(with_id).collect(),
                owner: None,
            }],
        };
        let selected = builtin().select(&[rules.to_owned()], &[]).unwrap();
        let ctx = EvalContext { as_of: as_of(), config: RuleConfig::default() };
        let mut findings = crate::eval::evaluate(&selected, &ctx, &AccountId::parse("012345678901").unwrap(), &inv);
        triage(&mut findings, &inv, &ctx);
        findings
    }

    #[test]
    fn steps_name_every_key_keyaudit_knows_and_a_root_key_gets_the_root_procedure() {
        use KeySlot::{One, Two};
        use KeyStatus::Active;
        let two = evaluated("KA-IAM-003", "alice", &[(One, Active, 200, Some(1)), (Two, Active, 3, Some(1))]);
        let text = steps(&two[0]).join("\n");
        assert!(!text.contains("list-access-keys"), "both ids are known: {text}");
        assert!(text.contains("--access-key-id AKIAEXAMPLE000000001 --status Inactive"), "the older one goes: {text}");
        assert!(text.contains("AKIAEXAMPLE000000002 (the newer key)"), "{text}");

        let root = evaluated("KA-IAM-002", ROOT_USER_NAME, &[(One, Active, 200, Some(1))]);
        let text = steps(&root[0]).join("\n");
        assert!(!text.contains("--user-name"), "no user-name command acts on a root key: {text}");
        assert!(text.contains("as the root user of account 012345678901"), "{text}");
        assert!(text.contains("assume-root --target-principal 012345678901"), "{text}");
        assert!(text.contains("delete-access-key --access-key-id AKIAEXAMPLE000000001"), "{text}");
    }
}
