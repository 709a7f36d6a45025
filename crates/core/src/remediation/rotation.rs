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
use crate::inventory::{KeySlot, KeyStatus, ListedKey};
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
    /// Its `CreateDate`, when the scan looked its id up (the credential report's `last_rotated` moves when a key
    /// is re-activated; `CreateDate` never does).
    pub created_at: Option<Timestamp>,
}

impl PairKey {
    /// When the key was created, as well as the report knows it.
    fn created(&self) -> Timestamp {
        self.created_at.unwrap_or(self.last_rotated)
    }
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

impl RotationPolicy {
    /// Whether a user under `ou_path` whose tags read `opt_in` could have a rotation started (tag `auto`, or a start
    /// OU and no `off`): the plan lists the keys of those users only.
    pub fn may_start(&self, ou_path: Option<&str>, opt_in: &OptIn) -> bool {
        match opt_in {
            OptIn::Tag(Some(v)) if v == "auto" => true,
            OptIn::Tag(Some(v)) if v == "off" => false,
            OptIn::Tag(_) => self.start_ous.iter().any(|ou| under(ou_path, ou)),
            OptIn::Unknown(_) => false,
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

/// A user's active keys, by slot, from the user's findings: the key-level findings' facts, and KA-IAM-003's evidence
/// (which names both keys even when a rule that reports one of them was not selected).
fn active_keys<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> BTreeMap<KeySlot, PairKey> {
    let mut active: BTreeMap<KeySlot, PairKey> = BTreeMap::new();
    for f in findings {
        if let Some(k) = f.key.as_ref().filter(|k| k.is_active()) {
            active.insert(
                k.slot,
                PairKey {
                    slot: k.slot,
                    access_key_id: k.access_key_id.clone(),
                    last_rotated: k.last_rotated,
                    created_at: k.created_at,
                },
            );
        }
        if let Evidence::ActiveKeys { keys, .. } = &f.evidence {
            for k in keys {
                active.entry(k.slot).or_insert_with(|| PairKey {
                    slot: k.slot,
                    access_key_id: k.access_key_id.clone(),
                    last_rotated: k.last_rotated,
                    created_at: None,
                });
            }
        }
    }
    active
}

/// The report's findings by user (account, user ARN), in that order.
fn by_user(report: &Report) -> BTreeMap<(&AccountId, &str), Vec<&Finding>> {
    let mut by_user: BTreeMap<(&AccountId, &str), Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        by_user.entry((&f.account_id, f.user_arn.as_str())).or_default().push(f);
    }
    by_user
}

/// The rotations `report` allows a plan to consider, in (account, user) order.
pub fn rotations(report: &Report) -> Rotations {
    let accounts: BTreeMap<&AccountId, &Account> =
        report.accounts.iter().map(|r| (&r.account.id, &r.account)).collect();
    let mut out = Rotations::default();
    for ((account_id, _), findings) in by_user(report) {
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
        let active = active_keys(findings.iter().copied());
        let failing = |f: &&&Finding| f.verdict == Verdict::Fail;
        match active.into_values().collect::<Vec<_>>()[..] {
            [ref a, ref b] => {
                // A first guess, from the report; the plan's ListAccessKeys decides (see `plan_finishes`).
                let (old, new) = if (a.created(), a.slot) <= (b.created(), b.slot) { (a, b) } else { (b, a) };
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

/// A user's keys now, as the plan's look-up (`iam:ListAccessKeys`) found them, or the error.
pub type Listed = Result<Vec<ListedKey>, String>;

/// What the plan's look-ups found about a pair: the user's keys now, and the last uses of the pair's keys (in the
/// report's order: `first` is [`Pair::old`]'s, `second` [`Pair::new`]'s).
#[derive(Debug, Clone)]
pub struct PairNow {
    /// `iam:ListAccessKeys`: which key was created first (`CreateDate`), and whether both are still active.
    pub listed: Listed,
    /// The last use of the key the report took for the older one.
    pub first: LastUse,
    /// The last use of the key the report took for the newer one.
    pub second: LastUse,
}

fn shown(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "never".to_owned(), |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
}

fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// The deactivations that finish rotations: each pair with what the plan's look-ups found now; every other pair
/// listed with its reason. Which key is the older one is decided by `CreateDate` (ListAccessKeys), never by the
/// credential report's `last_rotated`, which moves when a key is re-activated.
pub fn plan_finishes(
    pairs: &[(Pair, PairNow)],
    policy: &PlanPolicy,
    rotation: &RotationPolicy,
) -> (Vec<PlannedChange>, Vec<Excluded>) {
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    for (pair, now) in pairs {
        let (pair, old_used, new_used) = match by_creation(pair, now) {
            Ok(ordered) => ordered,
            Err(why) => {
                excluded.push(Excluded {
                    key: pair.old_key(),
                    kind: ChangeKind::Deactivate,
                    rules: pair.rules.clone(),
                    why,
                });
                continue;
            }
        };
        let old = pair.old_key();
        match finish(&pair, &old, old_used, new_used, policy, rotation) {
            Ok((key, new_key, old_last_used)) => {
                let new_last_used = new_key.last_used_at;
                planned.push(PlannedChange {
                    kind: ChangeKind::Deactivate,
                    key,
                    expect_active: true,
                    expect_last_used_at: old_last_used,
                    reason: format!(
                        "rotation finished: this is the older key (created {}); the user's newer key {} (created \
                         {}) was last used {}; this key was last used {} ({} days or more without use, \
                         --rotation-quiet-days {}): deactivate it, re-activate it with `keyaudit undo` if something \
                         breaks",
                        day(pair.old.created()),
                        new_key.access_key_id,
                        day(pair.new.created()),
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

/// The pair ordered by `CreateDate` as ListAccessKeys lists it now (both keys must still be there and active), with
/// the older key's last use and the newer one's.
fn by_creation<'a>(pair: &Pair, now: &'a PairNow) -> Result<(Pair, &'a LastUse, &'a LastUse), Exclusion> {
    let listed =
        now.listed.as_ref().map_err(|e| Exclusion::Unverified(format!("the user's keys could not be listed ({e})")))?;
    let find = |k: &PairKey| {
        let id = k.access_key_id.as_ref()?;
        listed.iter().find(|l| l.access_key_id == *id)
    };
    let (Some(a), Some(b)) = (find(&pair.old), find(&pair.new)) else {
        if pair.old.access_key_id.is_none() || pair.new.access_key_id.is_none() {
            return Err(Exclusion::UnknownKeyId);
        }
        return Err(Exclusion::ChangedSinceReport(
            "one of the user's two keys no longer exists (ListAccessKeys)".into(),
        ));
    };
    if a.status != KeyStatus::Active || b.status != KeyStatus::Active {
        return Err(Exclusion::ChangedSinceReport(
            "one of the user's two keys is inactive now (ListAccessKeys): no rotation to finish".into(),
        ));
    }
    let with_created = |k: &PairKey, l: &ListedKey| PairKey { created_at: Some(l.created_at), ..k.clone() };
    let (first, second) = (with_created(&pair.old, a), with_created(&pair.new, b));
    Ok(if (a.created_at, first.slot) <= (b.created_at, second.slot) {
        (Pair { old: first, new: second, ..pair.clone() }, &now.first, &now.second)
    } else {
        // The report took the re-activated older key for the newer one.
        (Pair { old: second, new: first, ..pair.clone() }, &now.second, &now.first)
    })
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
    if old_last_used.is_none() && pair.old.created() < use_recorded_since() {
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

/// What the look-up of a key's hand-over secret (`keyaudit/rotation/<user>/<key id>`) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandedOver {
    /// No such secret (or its deletion is scheduled): not the new key of an open rotation keyaudit started.
    No,
    /// The secret exists: keyaudit created the key for a rotation that is still open.
    Open {
        /// The secret's ARN.
        secret: String,
        /// Its `keyaudit:switch-by` tag.
        switch_by: Option<Timestamp>,
    },
    /// The look-up failed: the reason.
    Unknown(String),
}

/// The planned deactivations whose key could be the new key of a rotation keyaudit started: a rotation's new key
/// sits beside the user's older active key, so these are the deactivations (of unused keys) of users with two
/// active keys in `report`. The plan looks each one's hand-over secret up ([`hold_open_rotations`]).
pub fn handover_suspects(planned: &[PlannedChange], report: &Report) -> Vec<KeyRef> {
    let by_user = by_user(report);
    let two_active = |key: &KeyRef| {
        let user = by_user.get(&(&key.user.account_id, key.user.user_arn.as_str()));
        user.is_some_and(|findings| active_keys(findings.iter().copied()).len() > 1)
    };
    planned
        .iter()
        .filter(|c| c.kind == ChangeKind::Deactivate && c.reason_code == "unused" && two_active(&c.key))
        .map(|c| c.key.clone())
        .collect()
}

/// Takes out of `planned` every deactivation of a key keyaudit handed over in a rotation that is still open — and of
/// a key whose hand-over secret could not be looked up — and lists it in `excluded` with its reason: while a
/// rotation is open, its new key is never deactivated by another rule (the secret and the notices advertise it).
pub fn hold_open_rotations(
    planned: &mut Vec<PlannedChange>,
    excluded: &mut Vec<Excluded>,
    found: &[(KeyRef, HandedOver)],
) {
    planned.retain(|c| {
        let held = found.iter().find(|(k, _)| *k == c.key).and_then(|(_, h)| match h {
            HandedOver::No => None,
            HandedOver::Open { secret, switch_by } => {
                Some(Exclusion::RotationOpen { secret: secret.clone(), switch_by: *switch_by })
            }
            HandedOver::Unknown(e) => Some(Exclusion::Unverified(format!(
                "the user has two active keys, and whether keyaudit handed this one over in a rotation that is still \
                 open could not be checked ({e}; the audit role needs secretsmanager:DescribeSecret on \
                 keyaudit/rotation/*)"
            ))),
        });
        match held {
            Some(why) => {
                excluded.push(Excluded {
                    key: c.key.clone().into(),
                    kind: ChangeKind::Deactivate,
                    rules: c.rules.clone(),
                    why,
                });
                false
            }
            None => true,
        }
    });
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
/// `listed` is the user's keys now (ListAccessKeys): the credential report can be 4 hours old, and a start is
/// planned only while the user still has the one key the report shows (a plan made right after `apply` created a
/// key sees two here, and proposes no second start).
pub fn plan_starts(
    starts: &[(Start, OptIn, Listed)],
    policy: &PlanPolicy,
    rotation: &RotationPolicy,
) -> (Vec<PlannedChange>, Vec<Excluded>) {
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    let switch_by = policy.as_of.checked_add(rotation.switch_within).unwrap_or(policy.as_of);
    for (start, opt_in, listed) in starts {
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
                let listed = listed
                    .as_ref()
                    .map_err(|e| Exclusion::Unverified(format!("the user's keys could not be listed ({e})")))?;
                if let [only] = &listed[..]
                    && only.access_key_id == key.access_key_id
                    && only.status == KeyStatus::Active
                {
                    return Ok((key, opted));
                }
                let now: Vec<String> =
                    listed.iter().map(|k| format!("{} {}", k.access_key_id, k.status.as_str())).collect();
                Err(Exclusion::ChangedSinceReport(format!(
                    "the user's keys are {} now (ListAccessKeys), not the one active key of the credential report \
                     (which can be 4 hours old): a rotation may have started since",
                    if now.is_empty() { "none".to_owned() } else { now.join(", ") }
                )))
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

/// What every principal but the secret's user is denied by a handed-over secret's policy: reading the value and
/// every way to change the value, the policy, the encryption or the versions, or to copy the secret elsewhere (a
/// rotation function or a replica would run with another principal). Deleting (and restoring) the secret stays
/// with whoever IAM lets do it: keyaudit schedules the deletion when the rotation ends.
pub const SEALED_ACTIONS: [&str; 11] = [
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
];

/// A rotation secret's resource policy. `sealed`: the final one, put once the value is stored — the user alone may
/// read the secret, and nobody else (keyaudit's own roles and the account's administrators included, whatever their
/// identity policies allow) may read it or change its value, policy, encryption or versions ([`SEALED_ACTIONS`]).
/// Not sealed: the policy the secret gets before its value, which denies reading to everyone but the user and
/// leaves the one write keyaudit still needs (the value, then this policy's replacement) to the remediation role's
/// identity policy. `user_arn` is an IAM user ARN (no quotes or backslashes: IAM names and paths cannot hold them).
pub fn secret_policy(user_arn: &str, sealed: bool) -> String {
    let denied = if sealed {
        format!("[{}]", SEALED_ACTIONS.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(","))
    } else {
        "\"secretsmanager:GetSecretValue\"".to_owned()
    };
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"TheUserReadsTheNewKey","Effect":"Allow","Principal":{{"AWS":"{user_arn}"}},"Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"*"}},{{"Sid":"NobodyElseReadsOrChangesIt","Effect":"Deny","Principal":"*","Action":{denied},"Resource":"*","Condition":{{"StringNotEquals":{{"aws:PrincipalArn":"{user_arn}"}}}}}}]}}"#
    )
}

/// Whether a secret's resource policy, as Secrets Manager answers it, is the sealed one of [`secret_policy`]: of the
/// two, only the sealed policy names `secretsmanager:PutResourcePolicy` (in its `Deny`), whatever white space
/// Secrets Manager answers the JSON with.
pub fn is_sealed(policy: &str) -> bool {
    policy.contains("\"secretsmanager:PutResourcePolicy\"")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
            old: PairKey {
                slot: KeySlot::One,
                access_key_id: Some(id(1)),
                last_rotated: ago(old_created),
                created_at: None,
            },
            new: PairKey { slot: KeySlot::Two, access_key_id: Some(id(2)), last_rotated: ago(5), created_at: None },
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
            let now = listed_now(&p, old, new);
            let (planned, excluded) = plan_finishes(&[(p, now)], &policy(), &rotation());
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
        let finishes = |p: Pair, old: LastUse, new: LastUse| {
            let now = listed_now(&p, old, new);
            plan_finishes(&[(p, now)], &policy(), &rotation())
        };
        let (planned, _) = finishes(pair(200), used(8 * DAY), used(DAY));
        assert_eq!(planned[0].expect_last_used_at, Some(ago(8)));
        assert_eq!(planned[0].other_key.as_ref().unwrap().last_used_at, Some(ago(1)));
        assert!(planned[0].reason.starts_with(&format!(
            "rotation finished: this is the older key (created 2026-05-12); the user's newer key {} (created \
             2026-11-23) was last used 2026-11-27 12:00:00 UTC; this key was last used 2026-11-20 12:00:00 UTC",
            id(2)
        )));
        let (_, excluded) = finishes(pair(200), used(DAY), used(DAY));
        assert_eq!(excluded[0].why, Exclusion::OldKeyStillUsed { days: 1, quiet_days: 7 });
    }

    /// ListAccessKeys as it lists a pair's keys: both active, created as the report says.
    fn listed_now(p: &Pair, first: LastUse, second: LastUse) -> PairNow {
        let listed = [&p.old, &p.new]
            .iter()
            .filter_map(|k| {
                Some(ListedKey {
                    access_key_id: k.access_key_id.clone()?,
                    status: KeyStatus::Active,
                    created_at: k.created(),
                })
            })
            .collect();
        PairNow { listed: Ok(listed), first, second }
    }

    #[test]
    fn the_older_key_is_the_one_created_first_whatever_the_report_says_and_keys_changed_since_are_left_alone() {
        let used = |days: i64| Ok(Some(ago(days)));
        // The report took key 2 for the older one: key 1, created in 2019, was re-activated 3 days ago, and its
        // last_rotated moved then. ListAccessKeys has both CreateDates.
        let report_says = Pair {
            old: PairKey { slot: KeySlot::Two, access_key_id: Some(id(2)), last_rotated: ago(60), created_at: None },
            new: PairKey { slot: KeySlot::One, access_key_id: Some(id(1)), last_rotated: ago(3), created_at: None },
            ..pair(0)
        };
        let listed = |status: KeyStatus| {
            Ok(vec![
                ListedKey { access_key_id: id(1), status: KeyStatus::Active, created_at: ago(2600) },
                ListedKey { access_key_id: id(2), status, created_at: ago(60) },
            ])
        };
        // Key 2 (the new one) carries the traffic, key 1 went quiet 50 days ago.
        let now = PairNow { listed: listed(KeyStatus::Active), first: used(1), second: used(50) };
        let (planned, excluded) = plan_finishes(&[(report_says.clone(), now)], &policy(), &rotation());
        assert!(excluded.is_empty(), "{excluded:?}");
        assert_eq!(planned[0].key.access_key_id, id(1), "the key created in 2019 is retired");
        assert_eq!(planned[0].other_key.as_ref().unwrap().access_key_id, id(2));
        assert_eq!(planned[0].expect_last_used_at, Some(ago(50)));
        assert!(planned[0].reason.contains("this is the older key (created 2019-"), "{}", planned[0].reason);

        for (now, code) in [
            (PairNow { listed: listed(KeyStatus::Inactive), first: used(1), second: used(50) }, "changed_since_report"),
            (PairNow { listed: Ok(Vec::new()), first: used(1), second: used(50) }, "changed_since_report"),
            (PairNow { listed: Err("Throttling".into()), first: used(1), second: used(50) }, "unverified"),
        ] {
            let (planned, excluded) = plan_finishes(&[(report_says.clone(), now)], &policy(), &rotation());
            assert!(planned.is_empty());
            assert_eq!(excluded[0].why.code(), code);
        }
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
        let one = |status: KeyStatus| Ok(vec![ListedKey { access_key_id: id(1), status, created_at: ago(200) }]);
        let mut cases: Vec<(&str, Start, OptIn, Listed, &str)> =
            cases.into_iter().map(|(n, s, o, w)| (n, s, o, one(KeyStatus::Active), w)).collect();
        let two = Ok(vec![
            ListedKey { access_key_id: id(1), status: KeyStatus::Active, created_at: ago(200) },
            ListedKey { access_key_id: id(2), status: KeyStatus::Active, created_at: ago(0) },
        ]);
        cases.extend([
            // A plan made right after `apply` created a key: the report (4 hours old) shows one key, ListAccessKeys two.
            ("a second key since the report", start("/Root/Dev", true), tag(Some("auto")), two, "changed_since_report"),
            (
                "deactivated since",
                start("/Root/Dev", true),
                tag(Some("auto")),
                one(KeyStatus::Inactive),
                "changed_since_report",
            ),
            ("keys unreadable", start("/Root/Dev", true), tag(Some("auto")), Err("Throttling".into()), "unverified"),
        ]);
        for (name, s, opt_in, listed, want) in cases {
            let (planned, excluded) = plan_starts(&[(s, opt_in, listed)], &policy(), &rotation());
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
    fn an_open_rotations_new_key_is_never_deactivated_as_unused_and_an_unchecked_one_neither() {
        use KeyStatus::Active;
        // `pair`: the old key in use, the new one never used for 60 days (KA-IAM-004 fails it); `lonely`: one key,
        // never used.
        let r = report(&[("pair", &[(Active, 300, Some(1)), (Active, 60, None)]), ("lonely", &[(Active, 60, None)])]);
        let (planned, _) = super::super::plan_deactivations(&super::super::candidates(&r), &policy());
        let ids: Vec<&AccessKeyId> = planned.iter().map(|c| &c.key.access_key_id).collect();
        assert_eq!(ids, [&id(3), &id(2)], "by user: lonely, pair");
        let suspects = handover_suspects(&planned, &r);
        assert_eq!(suspects.iter().map(|k| &k.access_key_id).collect::<Vec<_>>(), [&id(2)], "users with two keys");
        let secret = "arn:aws:secretsmanager:us-east-1:000000000002:secret:keyaudit/rotation/pair/x".to_owned();
        for (found, code) in [
            (HandedOver::Open { secret: secret.clone(), switch_by: Some(ago(10)) }, Some("rotation_open")),
            (HandedOver::Unknown("AccessDeniedException".into()), Some("unverified")),
            (HandedOver::No, None),
        ] {
            let (mut kept, mut excluded) = (planned.clone(), Vec::new());
            hold_open_rotations(&mut kept, &mut excluded, &[(suspects[0].clone(), found)]);
            assert_eq!(excluded.first().map(|e| e.why.code()), code);
            assert_eq!(kept.len(), if code.is_some() { 1 } else { 2 });
            assert!(kept.iter().any(|c| c.key.access_key_id == id(3)), "the lonely key is deactivated");
        }
        let (mut kept, mut excluded) = (planned.clone(), Vec::new());
        hold_open_rotations(
            &mut kept,
            &mut excluded,
            &[(suspects[0].clone(), HandedOver::Open { secret, switch_by: Some(ago(10)) })],
        );
        assert!(excluded[0].why.describe(90).contains("switch by 2026-11-18"), "{:?}", excluded[0].why);
    }

    #[test]
    fn only_users_a_rotation_could_start_for_have_their_keys_listed() {
        let tag = |v: Option<&str>| OptIn::Tag(v.map(str::to_owned));
        let r = rotation();
        for (ou, opt_in, may) in [
            ("/Root/Dev", tag(Some("auto")), true),
            ("/Root/Dev", tag(None), false),
            ("/Root/Dev", tag(Some("yes")), false),
            ("/Root/Dev/Auto/Team", tag(None), true),
            ("/Root/Dev/Auto", tag(Some("off")), false),
            ("/Root/Dev/AutoX", tag(None), false),
            ("/Root/Dev/Auto", OptIn::Unknown("Throttling".into()), false),
        ] {
            assert_eq!(r.may_start(Some(ou), &opt_in), may, "{ou} {opt_in:?}");
        }
    }

    #[test]
    fn the_secrets_policy_lets_the_user_alone_read_it_and_once_sealed_nobody_else_change_it() {
        let arn = "arn:aws:iam::000000000002:user/team/busy";
        for (sealed, denied) in [(false, json!("secretsmanager:GetSecretValue")), (true, json!(SEALED_ACTIONS))] {
            let policy: serde_json::Value = serde_json::from_str(&secret_policy(arn, sealed)).unwrap();
            let statements = policy["Statement"].as_array().unwrap();
            assert_eq!(statements.len(), 2);
            assert_eq!((&statements[0]["Effect"], &statements[0]["Principal"]["AWS"]), (&"Allow".into(), &arn.into()));
            assert_eq!(statements[1]["Effect"], "Deny");
            assert_eq!(statements[1]["Principal"], "*");
            assert_eq!(statements[1]["Action"], denied);
            assert_eq!(statements[1]["Condition"]["StringNotEquals"]["aws:PrincipalArn"], arn);
        }
        assert!(!SEALED_ACTIONS.contains(&"secretsmanager:DeleteSecret"), "keyaudit retires the secret");
        assert!(is_sealed(&secret_policy(arn, true)));
        assert!(!is_sealed(&secret_policy(arn, false)));
    }
}
