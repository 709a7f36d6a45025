//! The CIS procedure for keys in use, the pure part: which rotations a plan finishes and which it starts.
//!
//! CIS: create a second key, move the applications to it, check with `get-access-key-last-used` that the old key is
//! no longer used ("wait several days and then check the old access key for any use"), make it inactive, delete it
//! after a while. A plan finishes a rotation (deactivates the older of a user's two active keys) only when the
//! newer key was used and the older one has not been for `quiet_days`, both read by the plan's own look-ups; a look-up
//! that failed, or a key AWS has no use record for, is never read as "not used". It starts one (creates the second
//! key) only for users who opted in, with one active key in use and a free slot.
//!
//! The plan reads the report ([`rotations`]), looks the last uses and the users' tags up in AWS, and decides
//! ([`plan_finishes`], [`plan_starts`]).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::{
    ChangeKind, Excluded, Exclusion, KeyRef, OtherKey, PlanPolicy, PlannedChange, ReportedKey, UserRef, under,
};
use crate::eval::{Evidence, Finding, Verdict};
use crate::ids::{AccessKeyId, AccountId};
use crate::inventory::KeySlot;
use crate::report::{Account, Report};
use crate::triage::{Action, Usage, use_recorded_since};

/// The user tag that opts a user in to (`auto`) or out of (`off`) keyaudit starting rotations of their keys.
pub const ROTATION_TAG: &str = "keyaudit:rotation";

/// How a plan finishes and starts rotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPolicy {
    /// The older key must not have been used for this many days (`--rotation-quiet-days`).
    pub quiet_days: u32,
    /// OU paths whose users are opted in (subtrees included; `--start-rotation-ou`).
    pub start_ous: Vec<String>,
    /// How long applications get to move to a new key (`--switch-within`): the secret's expiry.
    pub switch_within: SignedDuration,
}

/// One of the two active keys of a user mid-rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairKey {
    /// Its credential report slot.
    pub slot: KeySlot,
    /// Its id, when the report has it.
    pub access_key_id: Option<AccessKeyId>,
    /// Its creation (or last re-activation), per the credential report.
    pub last_rotated: Timestamp,
}

/// A user with two active keys whose older key fails KA-IAM-001, or who fails KA-IAM-003: a rotation to finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The user.
    pub user: UserRef,
    /// The older key (the one to deactivate).
    pub old: PairKey,
    /// The newer key (the one applications should use).
    pub new: PairKey,
    /// The failing rules (KA-IAM-001 of the older key, KA-IAM-003 of the user).
    pub rules: Vec<String>,
    /// An exception covers one of those findings.
    pub suppressed: bool,
    /// Triage's usage of the older key, when a finding names it.
    pub usage: Option<Usage>,
}

impl Pair {
    /// The older key, as a change or an exclusion names it.
    pub fn old_key(&self) -> ReportedKey {
        ReportedKey {
            user: self.user.clone(),
            slot: Some(self.old.slot),
            access_key_id: self.old.access_key_id.clone(),
        }
    }
}

/// A user's only active key, in use and failing KA-IAM-001: a rotation to start, if the user opted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The key.
    pub key: ReportedKey,
    /// The user's other slot is free (no second key, active or not).
    pub free_slot: bool,
    /// An exception covers the finding.
    pub suppressed: bool,
    /// Triage's usage (`in_use`, or `unknown` for a key that predates AWS's use records).
    pub usage: Option<Usage>,
    /// Its last use, per the report.
    pub last_used_at: Option<Timestamp>,
}

/// What a plan may do about keys in use, from a report: rotations to finish and rotations to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotations {
    /// Users with two active keys, one failing.
    pub finish: Vec<Pair>,
    /// Users with one active key in use that fails KA-IAM-001 (with a free slot or not).
    pub start: Vec<Start>,
}

const STALE: &str = "KA-IAM-001";
const MULTIPLE: &str = "KA-IAM-003";

/// The rotations `report` allows a plan to consider, in (account, user) order.
pub fn rotations(report: &Report) -> Rotations {
    let accounts: BTreeMap<&AccountId, &Account> =
        report.accounts.iter().map(|r| (&r.account.id, &r.account)).collect();
    let mut by_user: BTreeMap<(&AccountId, &str), Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        by_user.entry((&f.account_id, f.user_arn.as_str())).or_default().push(f);
    }
    let mut out = Rotations::default();
    for ((account_id, _), findings) in by_user {
        let first = findings[0];
        if first.is_root() {
            continue;
        }
        let account = accounts.get(account_id).copied();
        let user = UserRef {
            account_id: account_id.clone(),
            account_name: account.and_then(|a| a.name.clone()),
            ou_path: account.and_then(|a| a.ou_path.clone()),
            user_name: first.user_name.clone(),
            user_arn: first.user_arn.clone(),
        };
        // The user's active keys, by slot: from the key-level findings and from KA-IAM-003's evidence.
        let mut active: BTreeMap<KeySlot, PairKey> = BTreeMap::new();
        for f in &findings {
            if let Some(k) = f.key.as_ref().filter(|k| k.is_active()) {
                active.insert(
                    k.slot,
                    PairKey { slot: k.slot, access_key_id: k.access_key_id.clone(), last_rotated: k.last_rotated },
                );
            }
            if let Evidence::ActiveKeys { keys, .. } = &f.evidence {
                for k in keys {
                    active.entry(k.slot).or_insert_with(|| PairKey {
                        slot: k.slot,
                        access_key_id: k.access_key_id.clone(),
                        last_rotated: k.last_rotated,
                    });
                }
            }
        }
        let failing = |f: &&&Finding| f.verdict == Verdict::Fail;
        match active.into_values().collect::<Vec<_>>()[..] {
            [ref a, ref b] => {
                let (old, new) = if (a.last_rotated, a.slot) <= (b.last_rotated, b.slot) { (a, b) } else { (b, a) };
                let acting: Vec<&&Finding> = findings
                    .iter()
                    .filter(failing)
                    .filter(|f| match &f.key {
                        Some(k) => f.rule.id == STALE && k.slot == old.slot,
                        None => f.rule.id == MULTIPLE,
                    })
                    .collect();
                if acting.is_empty() {
                    continue;
                }
                out.finish.push(Pair {
                    user,
                    old: old.clone(),
                    new: new.clone(),
                    rules: acting.iter().map(|f| f.rule.id.to_owned()).collect(),
                    suppressed: acting.iter().any(|f| f.suppression.is_some()),
                    usage: findings
                        .iter()
                        .find_map(|f| f.key.as_ref().filter(|k| k.slot == old.slot).and(f.triage.usage)),
                });
            }
            [ref only] => {
                let Some(f) = findings.iter().filter(failing).find(|f| {
                    f.rule.id == STALE
                        && f.key.as_ref().is_some_and(|k| k.slot == only.slot)
                        && matches!(f.triage.action, Action::Rotate | Action::FreeSlotThenRotate)
                }) else {
                    continue;
                };
                let facts = f.key.as_ref();
                out.start.push(Start {
                    key: ReportedKey { user, slot: Some(only.slot), access_key_id: only.access_key_id.clone() },
                    free_slot: f.triage.action == Action::Rotate,
                    suppressed: f.suppression.is_some(),
                    usage: f.triage.usage,
                    last_used_at: facts.and_then(|k| k.last_used_at),
                });
            }
            _ => {}
        }
    }
    out
}

/// A last use as the plan's look-up (`iam:GetAccessKeyLastUsed`) found it: `Ok(None)` when AWS recorded none, the
/// error when the look-up failed.
pub type LastUse = Result<Option<Timestamp>, String>;

fn shown(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "never".to_owned(), |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// The deactivations that finish rotations: each pair with its keys' last uses as the plan's look-ups found them
/// (`(pair, old key's, new key's)`); every other pair listed with its reason.
pub fn plan_finishes(
    pairs: &[(Pair, LastUse, LastUse)],
    policy: &PlanPolicy,
    rotation: &RotationPolicy,
) -> (Vec<PlannedChange>, Vec<Excluded>) {
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    for (pair, old_used, new_used) in pairs {
        let old = pair.old_key();
        let verdict = finish(pair, &old, old_used, new_used, policy, rotation);
        match verdict {
            Ok((key, new_key, old_last_used)) => {
                let new_last_used = new_key.last_used_at;
                planned.push(PlannedChange {
                    kind: ChangeKind::Deactivate,
                    key,
                    expect_active: true,
                    expect_last_used_at: old_last_used,
                    reason: format!(
                        "rotation finished: the user's newer key {} was last used {}; this key was last used {} \
                         ({} days or more without use, --rotation-quiet-days {}): deactivate it, re-activate it \
                         with `keyaudit undo` if something breaks",
                        new_key.access_key_id,
                        shown(new_last_used),
                        shown(old_last_used),
                        rotation.quiet_days,
                        rotation.quiet_days
                    ),
                    other_key: Some(new_key),
                    switch_by: None,
                    secret_arn: None,
                    rules: pair.rules.clone(),
                    usage: pair.usage,
                    reason_code: "rotation_finished",
                });
            }
            Err(why) => {
                excluded.push(Excluded { key: old, kind: ChangeKind::Deactivate, rules: pair.rules.clone(), why })
            }
        }
    }
    (planned, excluded)
}

/// One pair's verdict: the older key, the newer one, and the older one's last use; or why not.
fn finish(
    pair: &Pair,
    old: &ReportedKey,
    old_used: &LastUse,
    new_used: &LastUse,
    policy: &PlanPolicy,
    rotation: &RotationPolicy,
) -> Result<(KeyRef, OtherKey, Option<Timestamp>), Exclusion> {
    let new = ReportedKey { access_key_id: pair.new.access_key_id.clone(), ..old.clone() };
    if let Some(why) = policy.guard(old, true, pair.suppressed) {
        return Err(why);
    }
    if policy.is_callers(&new) {
        // Deactivating the caller's other key is as bad as the caller's own.
        return Err(Exclusion::CallerKey);
    }
    let (Some(key), Some(new_id)) = (old.identified(), pair.new.access_key_id.clone()) else {
        return Err(Exclusion::UnknownKeyId);
    };
    let looked_up = |used: &LastUse, which: &str| {
        used.clone()
            .map_err(|e| Exclusion::Unverified(format!("the last use of the {which} key could not be read ({e})")))
    };
    let old_last_used = looked_up(old_used, "older")?;
    let new_last_used = looked_up(new_used, "newer")?;
    if old_last_used.is_none() && pair.old.last_rotated < use_recorded_since() {
        return Err(Exclusion::Unverified(
            "the older key predates AWS's use records (2015-04-22) and has no recorded use: it may be used".into(),
        ));
    }
    let Some(new_last_used) = new_last_used else {
        return Err(Exclusion::NewKeyUnused);
    };
    if let Some(days) = old_last_used.map(|t| policy.days_since(t)).filter(|d| *d < i64::from(rotation.quiet_days)) {
        return Err(Exclusion::OldKeyStillUsed { days, quiet_days: rotation.quiet_days });
    }
    Ok((key, OtherKey { access_key_id: new_id, last_used_at: Some(new_last_used) }, old_last_used))
}

/// Whether a user opted in to keyaudit starting rotations of their keys, as the plan's look-up of their tags found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptIn {
    /// The user's tags, read: the value of [`ROTATION_TAG`], if the user has it.
    Tag(Option<String>),
    /// The tags could not be read: the reason.
    Unknown(String),
}

/// The key creations that start rotations, for users who opted in (the tag [`ROTATION_TAG`] = `auto`, or a user
/// under one of `rotation.start_ous` whose tag is not `off`); every other start candidate listed with its reason.
pub fn plan_starts(
    starts: &[(Start, OptIn)],
    policy: &PlanPolicy,
    rotation: &RotationPolicy,
) -> (Vec<PlannedChange>, Vec<Excluded>) {
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    let switch_by = policy.as_of.checked_add(rotation.switch_within).unwrap_or(policy.as_of);
    for (start, opt_in) in starts {
        let decision = policy
            .guard(&start.key, true, start.suppressed)
            .map_or_else(|| start.key.identified().ok_or(Exclusion::UnknownKeyId), Err)
            .and_then(|key| {
                let by_ou = rotation.start_ous.iter().find(|ou| under(start.key.user.ou_path.as_deref(), ou));
                let opted = match opt_in {
                    OptIn::Tag(Some(v)) if v == "off" => None,
                    OptIn::Tag(Some(v)) if v == "auto" => Some(format!("user tag {ROTATION_TAG}=auto")),
                    OptIn::Tag(_) => by_ou.map(|ou| format!("--start-rotation-ou {ou}")),
                    OptIn::Unknown(e) if by_ou.is_none() => {
                        return Err(Exclusion::Unverified(format!("the user's tags could not be read ({e})")));
                    }
                    // Under a start OU, a user whose tags cannot be read might have opted out.
                    OptIn::Unknown(e) => {
                        return Err(Exclusion::Unverified(format!(
                            "the user's tags could not be read ({e}), so an opt-out ({ROTATION_TAG}=off) cannot be \
                             ruled out"
                        )));
                    }
                };
                let opted = opted.ok_or(Exclusion::NotOptedIn)?;
                if !start.free_slot {
                    return Err(Exclusion::NoFreeSlot);
                }
                Ok((key, opted))
            });
        match decision {
            Ok((key, opted)) => planned.push(PlannedChange {
                kind: ChangeKind::CreateKey,
                reason: format!(
                    "in use ({}) and the user opted in ({opted}): create a second key and hand its secret over in \
                     AWS Secrets Manager ({}{}/<new key id>, readable by the user alone); applications move to it \
                     by {}, and a later plan deactivates this key once it has gone {} days without use",
                    start.last_used_at.map_or_else(
                        || "no recorded use, but older than AWS's use records".to_owned(),
                        |t| format!("last used {}", t.strftime("%Y-%m-%d"))
                    ),
                    super::ROTATION_SECRET_PREFIX,
                    key.user.user_name,
                    switch_by.strftime("%Y-%m-%d"),
                    rotation.quiet_days
                ),
                key,
                expect_active: true,
                expect_last_used_at: start.last_used_at,
                other_key: None,
                switch_by: Some(switch_by),
                secret_arn: None,
                rules: vec![STALE.to_owned()],
                usage: start.usage,
                reason_code: "rotation_start",
            }),
            Err(why) => excluded.push(Excluded {
                key: start.key.clone(),
                kind: ChangeKind::CreateKey,
                rules: vec![STALE.to_owned()],
                why,
            }),
        }
    }
    (planned, excluded)
}

/// The resource policy of a rotation secret: the user alone may read it (`GetSecretValue` denied to every other
/// principal, whatever their identity policies allow). `user_arn` is an IAM user ARN (no quotes or backslashes: IAM
/// names and paths cannot hold them).
pub fn secret_policy(user_arn: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"TheUserReadsTheNewKey","Effect":"Allow","Principal":{{"AWS":"{user_arn}"}},"Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"*"}},{{"Sid":"NobodyElseReadsIt","Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{{"StringNotEquals":{{"aws:PrincipalArn":"{user_arn}"}}}}}}]}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalContext, RuleConfig, evaluate};
    use crate::inventory::{AccountInventory, CredentialUser, KeySlotRecord, KeyStatus};
    use crate::report::{AccessMethod, AccountRecord, AccountState, AccountStats, AccountStatus, RunInfo, Scope};

    const DAY: i64 = 86_400;

    fn as_of() -> Timestamp {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn ago(days: i64) -> Timestamp {
        as_of() - SignedDuration::from_secs(days * DAY)
    }

    fn id(n: u32) -> AccessKeyId {
        AccessKeyId::parse(&format!("AKIA{n:016}")).unwrap()
    }

    /// (status, created days ago, last used days ago)
    type KeySpec = (KeyStatus, i64, Option<i64>);

    fn report(users: &[(&str, &[KeySpec])]) -> Report {
        let account = Account {
            id: AccountId::parse("000000000002").unwrap(),
            name: Some("work".into()),
            ou_path: Some("/Root/Dev".into()),
            state: AccountState::Active,
            access: AccessMethod::CallerCredentials,
        };
        let mut n = 0;
        let inv = AccountInventory {
            report_generated_at: None,
            users: users
                .iter()
                .map(|(name, keys)| CredentialUser {
                    user_name: (*name).into(),
                    arn: format!("arn:aws:iam::000000000002:user/{name}"),
                    keys: keys
                        .iter()
                        .zip([KeySlot::One, KeySlot::Two])
                        .map(|((status, created, used), slot)| {
                            n += 1;
                            KeySlotRecord {
                                access_key_id: Some(id(n)),
                                last_used_at: used.map(ago),
                                ..KeySlotRecord::new(slot, *status, ago(*created))
                            }
                        })
                        .collect(),
                    owner: None,
                })
                .collect(),
        };
        let ctx = EvalContext { as_of: as_of(), config: RuleConfig::default() };
        let findings = evaluate(&crate::rules::builtin(), &ctx, &account.id, &inv);
        Report {
            run: RunInfo {
                as_of: as_of(),
                started_at: as_of(),
                finished_at: as_of(),
                config: RuleConfig::default(),
                scope: Scope::StandaloneAccount,
                origin: None,
                partition: crate::ids::Partition::aws(),
                accounts_discovered: 1,
                discovery_complete: true,
                clock: None,
            },
            rules: crate::rules::builtin().metas(),
            accounts: vec![AccountRecord {
                account,
                status: AccountStatus::Scanned {
                    report_generated_at: None,
                    keys: Default::default(),
                    enrichment: Default::default(),
                },
                stats: AccountStats::default(),
            }],
            findings,
            suppressions: None,
            comparison: None,
        }
    }

    fn policy() -> PlanPolicy {
        PlanPolicy {
            as_of: as_of(),
            unused_days: 90,
            protect_accounts: vec![AccountId::parse("000000000009").unwrap()],
            protect_ous: vec!["/Root/Prod".into()],
            caller_user_arn: None,
            caller_key_id: Some(id(99)),
        }
    }

    fn rotation() -> RotationPolicy {
        RotationPolicy {
            quiet_days: 7,
            start_ous: vec!["/Root/Dev/Auto".into()],
            switch_within: SignedDuration::from_hours(14 * 24),
        }
    }

    #[test]
    fn a_report_names_the_users_mid_rotation_and_the_keys_in_use_a_rotation_could_start_for() {
        use KeyStatus::{Active, Inactive};
        let r = report(&[
            ("mid", &[(Active, 200, Some(10)), (Active, 5, Some(1))]),
            ("young-pair", &[(Active, 5, Some(1)), (Active, 30, Some(2))]),
            ("busy", &[(Active, 200, Some(1))]),
            ("full", &[(Active, 200, Some(1)), (Inactive, 300, None)]),
            ("never", &[(Active, 200, None)]),
            ("dormant", &[(Active, 200, Some(120))]),
            ("fresh", &[(Active, 10, Some(1))]),
            ("off", &[(Inactive, 200, Some(1))]),
        ]);
        let found = rotations(&r);
        let pairs: Vec<(&str, &str, &str, Vec<String>)> = found
            .finish
            .iter()
            .map(|p| {
                (
                    p.user.user_name.as_str(),
                    p.old.access_key_id.as_ref().unwrap().as_str(),
                    p.new.access_key_id.as_ref().unwrap().as_str(),
                    p.rules.clone(),
                )
            })
            .collect();
        let rules = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            pairs,
            [
                ("mid", id(1).as_str(), id(2).as_str(), rules(&["KA-IAM-001", "KA-IAM-003"])),
                // The older key is the one created first, whatever its slot; KA-IAM-003 alone makes it a pair.
                ("young-pair", id(4).as_str(), id(3).as_str(), rules(&["KA-IAM-003"])),
            ]
        );
        assert_eq!(found.finish[0].usage, Some(Usage::InUse));
        let starts: Vec<(&str, bool)> =
            found.start.iter().map(|s| (s.key.user.user_name.as_str(), s.free_slot)).collect();
        assert_eq!(starts, [("busy", true), ("full", false)], "never-used and dormant keys are deactivated instead");
        assert_eq!(found.start[0].last_used_at, Some(ago(1)));
        assert_eq!(found.start[0].key.user.ou_path.as_deref(), Some("/Root/Dev"));
    }

    fn pair(old_created: i64) -> Pair {
        let user = UserRef {
            account_id: AccountId::parse("000000000002").unwrap(),
            account_name: None,
            ou_path: Some("/Root/Dev".into()),
            user_name: "mid".into(),
            user_arn: "arn:aws:iam::000000000002:user/mid".into(),
        };
        Pair {
            user,
            old: PairKey { slot: KeySlot::One, access_key_id: Some(id(1)), last_rotated: ago(old_created) },
            new: PairKey { slot: KeySlot::Two, access_key_id: Some(id(2)), last_rotated: ago(5) },
            rules: vec!["KA-IAM-001".into()],
            suppressed: false,
            usage: Some(Usage::InUse),
        }
    }

    #[test]
    fn a_rotation_is_finished_only_when_the_newer_key_carries_the_traffic_and_the_older_went_quiet() {
        let used = |secs_ago: i64| Ok(Some(as_of() - SignedDuration::from_secs(secs_ago)));
        let never: LastUse = Ok(None);
        let failed: LastUse = Err("iam:GetAccessKeyLastUsed failed: Throttling".into());
        let cases: Vec<(&str, Pair, LastUse, LastUse, &str)> = vec![
            ("quiet 8 days, new used yesterday", pair(200), used(8 * DAY), used(DAY), "planned"),
            ("quiet exactly 7 days", pair(200), used(7 * DAY), used(DAY), "planned"),
            ("used a second less than 7 days ago", pair(200), used(7 * DAY - 1), used(DAY), "old_key_still_used"),
            ("old used yesterday", pair(200), used(DAY), used(DAY), "old_key_still_used"),
            ("old never used", pair(200), never.clone(), used(DAY), "planned"),
            ("new never used", pair(200), used(30 * DAY), never.clone(), "new_key_unused"),
            ("old look-up throttled", pair(200), failed.clone(), used(DAY), "unverified"),
            ("new look-up throttled", pair(200), used(30 * DAY), failed.clone(), "unverified"),
            ("old predates use records", pair(4400), never.clone(), used(DAY), "unverified"),
            ("excepted", Pair { suppressed: true, ..pair(200) }, used(30 * DAY), used(DAY), "suppressed"),
            (
                "the newer key is the caller's",
                Pair { new: PairKey { access_key_id: Some(id(99)), ..pair(200).new }, ..pair(200) },
                used(30 * DAY),
                used(DAY),
                "caller_key",
            ),
            (
                "the older key's id is unknown",
                Pair { old: PairKey { access_key_id: None, ..pair(200).old }, ..pair(200) },
                used(30 * DAY),
                used(DAY),
                "unknown_key_id",
            ),
            (
                "protected OU",
                Pair { user: UserRef { ou_path: Some("/Root/Prod/Db".into()), ..pair(200).user }, ..pair(200) },
                used(30 * DAY),
                used(DAY),
                "protected_ou",
            ),
        ];
        for (name, p, old, new, want) in cases {
            let (planned, excluded) = plan_finishes(&[(p, old, new)], &policy(), &rotation());
            let got = match (&planned[..], &excluded[..]) {
                ([c], []) => {
                    assert_eq!(
                        (c.kind, c.reason_code, c.key.access_key_id.clone()),
                        (ChangeKind::Deactivate, "rotation_finished", id(1))
                    );
                    assert_eq!(c.other_key.as_ref().map(|o| o.access_key_id.clone()), Some(id(2)), "{name}");
                    "planned"
                }
                ([], [e]) => {
                    assert_eq!(e.key.slot, Some(KeySlot::One), "{name}: the older key is the one left out");
                    e.why.code()
                }
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(got, want, "{name}");
        }
        let (planned, _) = plan_finishes(&[(pair(200), used(8 * DAY), used(DAY))], &policy(), &rotation());
        assert_eq!(planned[0].expect_last_used_at, Some(ago(8)));
        assert_eq!(planned[0].other_key.as_ref().unwrap().last_used_at, Some(ago(1)));
        assert!(planned[0].reason.starts_with(&format!(
            "rotation finished: the user's newer key {} was last used 2026-11-27 12:00:00 UTC; this key was last \
             used 2026-11-20 12:00:00 UTC",
            id(2)
        )));
        let (_, excluded) = plan_finishes(&[(pair(200), used(DAY), used(DAY))], &policy(), &rotation());
        assert_eq!(excluded[0].why, Exclusion::OldKeyStillUsed { days: 1, quiet_days: 7 });
    }

    #[test]
    fn a_rotation_is_started_only_for_users_who_opted_in_with_a_free_slot() {
        let start = |ou: &str, free_slot: bool| Start {
            key: ReportedKey {
                user: UserRef {
                    account_id: AccountId::parse("000000000002").unwrap(),
                    account_name: None,
                    ou_path: Some(ou.into()),
                    user_name: "busy".into(),
                    user_arn: "arn:aws:iam::000000000002:user/busy".into(),
                },
                slot: Some(KeySlot::One),
                access_key_id: Some(id(1)),
            },
            free_slot,
            suppressed: false,
            usage: Some(Usage::InUse),
            last_used_at: Some(ago(1)),
        };
        let tag = |v: Option<&str>| OptIn::Tag(v.map(str::to_owned));
        let cases: Vec<(&str, Start, OptIn, &str)> = vec![
            ("tagged auto", start("/Root/Dev", true), tag(Some("auto")), "planned"),
            ("no tag", start("/Root/Dev", true), tag(None), "not_opted_in"),
            ("another value", start("/Root/Dev", true), tag(Some("yes")), "not_opted_in"),
            ("under a start OU", start("/Root/Dev/Auto/Team", true), tag(None), "planned"),
            ("under a start OU, opted out", start("/Root/Dev/Auto", true), tag(Some("off")), "not_opted_in"),
            ("a sibling OU's name prefix", start("/Root/Dev/AutoX", true), tag(None), "not_opted_in"),
            ("tags unreadable", start("/Root/Dev", true), OptIn::Unknown("Throttling".into()), "unverified"),
            ("tags unreadable, start OU", start("/Root/Dev/Auto", true), OptIn::Unknown("x".into()), "unverified"),
            ("no free slot", start("/Root/Dev", false), tag(Some("auto")), "no_free_slot"),
            ("protected OU", start("/Root/Prod", true), tag(Some("auto")), "protected_ou"),
            ("excepted", Start { suppressed: true, ..start("/Root/Dev", true) }, tag(Some("auto")), "suppressed"),
            (
                "id unknown",
                Start { key: ReportedKey { access_key_id: None, ..start("/Root/Dev", true).key }, ..start("/", true) },
                tag(Some("auto")),
                "unknown_key_id",
            ),
        ];
        for (name, s, opt_in, want) in cases {
            let (planned, excluded) = plan_starts(&[(s, opt_in)], &policy(), &rotation());
            let got = match (&planned[..], &excluded[..]) {
                ([c], []) => {
                    assert_eq!((c.kind, c.reason_code), (ChangeKind::CreateKey, "rotation_start"), "{name}");
                    assert_eq!(c.switch_by, Some(as_of() + SignedDuration::from_hours(14 * 24)), "{name}");
                    assert!(c.reason.contains("keyaudit/rotation/busy/<new key id>"), "{name}: {}", c.reason);
                    "planned"
                }
                ([], [e]) => {
                    assert_eq!(e.kind, ChangeKind::CreateKey, "{name}");
                    e.why.code()
                }
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn the_secrets_policy_lets_the_user_alone_read_it() {
        let arn = "arn:aws:iam::000000000002:user/team/busy";
        let policy: serde_json::Value = serde_json::from_str(&secret_policy(arn)).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!((&statements[0]["Effect"], &statements[0]["Principal"]["AWS"]), (&"Allow".into(), &arn.into()));
        assert_eq!(statements[1]["Effect"], "Deny");
        assert_eq!(statements[1]["Principal"], "*");
        assert_eq!(statements[1]["Action"], "secretsmanager:GetSecretValue");
        assert_eq!(statements[1]["Condition"]["StringNotEquals"]["aws:PrincipalArn"], arn);
    }
}
