//! Guarded remediation, the pure part: which keys a plan may change, and why the others are left alone.
//!
//! A plan deactivates only active keys that fail a rule whose triage action is `deactivate`, whose id is known,
//! that were never used or not for `unused_days`, that no exception covers, and that are not the root user's,
//! the caller's own, or in a protected account or OU. It finishes rotations (the older of two active keys,
//! once the newer one carries the traffic and the older went quiet) and, for users who opt in, starts them
//! ([`rotation`]). It deletes only keys that a keyaudit journal deactivated long enough ago and that are still
//! inactive and unused since. Every other key with a failing finding the plan could act on is listed with its
//! reason: a plan that drops a key without a word cannot be reviewed.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};

use crate::eval::Verdict;
use crate::ids::{AccessKeyId, AccountId};
use crate::inventory::{KeyChange, KeySlot, KeyStatus, ROOT_USER_NAME};
use crate::report::{Account, Report};
use crate::triage::{Action, Usage};

pub mod rotation;

/// What a plan does to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// `UpdateAccessKey --status Inactive` (reversible).
    Deactivate,
    /// `DeleteAccessKey` (irreversible).
    Delete,
    /// `CreateAccessKey` for the key's user, its secret handed over through Secrets Manager: a rotation's start
    /// (undone by deleting the created key).
    CreateKey,
}

impl ChangeKind {
    /// `deactivate`, `delete` or `create_key`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Deactivate => "deactivate",
            ChangeKind::Delete => "delete",
            ChangeKind::CreateKey => "create_key",
        }
    }

    /// Parses [`ChangeKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [ChangeKind::Deactivate, ChangeKind::Delete, ChangeKind::CreateKey].into_iter().find(|k| k.as_str() == s)
    }
}

/// The name of the secret a rotation's new key is handed over in: under a fixed prefix, so that the remediation
/// role's Secrets Manager permissions can be limited to it. IAM user names may hold `,`, which Secrets Manager
/// names may not (they allow letters, digits and `/_+=.@-`): `,` is written `=2C` and `=` itself `=3D` (as in
/// quoted-printable), so that every valid IAM user name yields a valid secret name and no two names yield the same
/// one. Every other character of an IAM user name is kept as it is.
pub fn rotation_secret_name(user_name: &str, new_key: &AccessKeyId) -> String {
    let mut user = String::with_capacity(user_name.len());
    for c in user_name.chars() {
        match c {
            '=' => user.push_str("=3D"),
            ',' => user.push_str("=2C"),
            c => user.push(c),
        }
    }
    format!("{ROTATION_SECRET_PREFIX}{user}/{new_key}")
}

/// The prefix of every rotation secret's name.
pub const ROTATION_SECRET_PREFIX: &str = "keyaudit/rotation/";

/// The IAM user a change is about: its account (with its name and OU path, for messages and protections), its name
/// and its ARN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UserRef {
    /// The account.
    pub account_id: AccountId,
    /// Its name.
    pub account_name: Option<String>,
    /// Its OU path.
    pub ou_path: Option<String>,
    /// The user.
    pub user_name: String,
    /// The user's ARN.
    pub user_arn: String,
}

impl UserRef {
    /// Whether this is the account's root user.
    pub fn is_root(&self) -> bool {
        self.user_name == ROOT_USER_NAME || self.user_arn.ends_with(":root")
    }
}

/// A key a change can act on: its id is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// Its user.
    pub user: UserRef,
    /// The key.
    pub access_key_id: AccessKeyId,
}

/// A key as a report (or a journal) names it: by id when that is known, else by its credential report slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedKey {
    /// Its user.
    pub user: UserRef,
    /// The credential report slot, when the key comes from a report.
    pub slot: Option<KeySlot>,
    /// The key id, when it was looked up and matched (never for the root user's keys).
    pub access_key_id: Option<AccessKeyId>,
}

impl ReportedKey {
    /// The key as a change can name it, when its id is known.
    pub fn identified(&self) -> Option<KeyRef> {
        Some(KeyRef { user: self.user.clone(), access_key_id: self.access_key_id.clone()? })
    }
}

impl From<KeyRef> for ReportedKey {
    fn from(k: KeyRef) -> Self {
        Self { user: k.user, slot: None, access_key_id: Some(k.access_key_id) }
    }
}

/// One finding about one key, as a plan sees it (from a report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The key.
    pub key: ReportedKey,
    /// The finding's rule.
    pub rule_id: &'static str,
    /// Its verdict.
    pub verdict: Verdict,
    /// Triage's action.
    pub action: Action,
    /// Why, in one sentence.
    pub action_reason: Option<String>,
    /// Triage's usage.
    pub usage: Option<Usage>,
    /// Whether the key is active as last seen (not deactivated or deleted since the credential report).
    pub active: bool,
    /// The last use AWS recorded.
    pub last_used_at: Option<Timestamp>,
    /// Whether an exception covers the finding.
    pub suppressed: bool,
}

/// Every key-level finding of `report` as a plan candidate, in the report's order; a finding under an exception
/// (the report's own, or a plan's applied with [`Report::apply_exceptions`]) is `suppressed`.
pub fn candidates(report: &Report) -> Vec<Candidate> {
    let accounts: HashMap<&AccountId, &Account> = report.accounts.iter().map(|r| (&r.account.id, &r.account)).collect();
    report
        .findings
        .iter()
        .filter_map(|f| {
            let facts = f.key.as_ref()?;
            let account = accounts.get(&f.account_id).copied();
            let suppressed = f.suppression.is_some();
            Some(Candidate {
                key: ReportedKey {
                    user: UserRef {
                        account_id: f.account_id.clone(),
                        account_name: account.and_then(|a| a.name.clone()),
                        ou_path: account.and_then(|a| a.ou_path.clone()),
                        user_name: f.user_name.clone(),
                        user_arn: f.user_arn.clone(),
                    },
                    slot: Some(facts.slot),
                    access_key_id: facts.access_key_id.clone(),
                },
                rule_id: f.rule.id,
                verdict: f.verdict,
                action: f.triage.action,
                action_reason: f.triage.action_reason.clone(),
                usage: f.triage.usage,
                active: facts.status == KeyStatus::Active && facts.change != Some(KeyChange::Deleted),
                last_used_at: facts.last_used_at,
                suppressed,
            })
        })
        .collect()
}

/// One change of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    /// What to do.
    pub kind: ChangeKind,
    /// To which key (a key creation: the key being rotated).
    pub key: KeyRef,
    /// The status the key must still have (`Active` to deactivate or rotate, `Inactive` to delete).
    pub expect_active: bool,
    /// The last use the key must still show (a newer one means it was used since the plan; not checked for a key
    /// creation, whose key is in use).
    pub expect_last_used_at: Option<Timestamp>,
    /// A finished rotation: the user's newer key, which must still be active and show at least this use.
    pub other_key: Option<OtherKey>,
    /// A key creation: the date by which applications must use the new key.
    pub switch_by: Option<Timestamp>,
    /// A deletion of a rotated key: the rotation's secret, whose deletion is scheduled with the key's.
    pub secret_arn: Option<String>,
    /// The rules that failed (none for a deletion).
    pub rules: Vec<String>,
    /// Triage's usage of the key.
    pub usage: Option<Usage>,
    /// Why, as a code: `unused`, `rotation_finished`, `rotation_start` or `waiting_period_over`.
    pub reason_code: &'static str,
    /// Why, in one sentence.
    pub reason: String,
}

/// A user's other key, that a finished rotation depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherKey {
    /// Its id.
    pub access_key_id: AccessKeyId,
    /// Its last use, as the plan's look-up found it.
    pub last_used_at: Option<Timestamp>,
}

/// Why a key that failed with action `deactivate` (or that a journal deactivated) is not in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// The root user's keys are never changed by keyaudit.
    RootUser,
    /// The key keyaudit runs with, or a key of the caller's own IAM user.
    CallerKey,
    /// `--protect-account`.
    ProtectedAccount,
    /// `--protect-ou`: the OU path given.
    ProtectedOu(String),
    /// An exception covers one of the key's findings.
    Suppressed,
    /// Used within `unused_days` (it may belong to a monthly job).
    RecentlyUsed {
        /// Days since the last use.
        days: i64,
    },
    /// The report has no id for the key (not looked up, the look-up failed, or the slot matched no single key):
    /// a change names a key by id only.
    UnknownKeyId,
    /// The key is no longer active as last seen (deactivated or deleted since the credential report).
    NotActive,
    /// Deletion: deactivated less than the waiting period ago.
    WaitingPeriod {
        /// Days since the deactivation.
        days: i64,
    },
    /// Deletion: active again (re-activated, e.g. by `undo`) or gone.
    NotInactive,
    /// Deletion: used since it was deactivated.
    UsedSinceDeactivation,
    /// Deletion: the key could not be re-checked (the account could not be reached); rotation: a last use (or a
    /// user's tags) could not be read, or AWS has no record of it: the reason. Never treated as "not used".
    Unverified(String),
    /// Rotation: the older key was used within `--rotation-quiet-days`.
    OldKeyStillUsed {
        /// Days since its last use.
        days: i64,
        /// `--rotation-quiet-days`.
        quiet_days: u32,
    },
    /// Rotation: the newer key was never used: applications have not moved to it.
    NewKeyUnused,
    /// Starting a rotation: the user did not opt in (user tag `keyaudit:rotation` = `auto`, or
    /// `--start-rotation-ou`); rotating a key in use is left to its owner.
    NotOptedIn,
    /// Starting a rotation: the user's other key slot is taken (its inactive key must go first).
    NoFreeSlot,
    /// Rotation: the user's keys changed since the credential report (ListAccessKeys shows otherwise): what changed.
    ChangedSinceReport(String),
    /// A key keyaudit created for a rotation that is still open (its hand-over secret exists): never deactivated
    /// or deleted by another rule while applications may be moving to it.
    RotationOpen {
        /// The hand-over secret.
        secret: String,
        /// The rotation's switch-by date, from the secret's tag.
        switch_by: Option<Timestamp>,
    },
}

impl Exclusion {
    /// A stable code: `root_user`, `caller_key`, `protected_account`, `protected_ou`, `suppressed`,
    /// `recently_used`, `unknown_key_id`, `not_active`, `waiting_period`, `not_inactive`,
    /// `used_since_deactivation`, `unverified`, `old_key_still_used`, `new_key_unused`, `not_opted_in`,
    /// `no_free_slot`, `changed_since_report`, `rotation_open`.
    pub fn code(&self) -> &'static str {
        match self {
            Exclusion::RootUser => "root_user",
            Exclusion::CallerKey => "caller_key",
            Exclusion::ProtectedAccount => "protected_account",
            Exclusion::ProtectedOu(_) => "protected_ou",
            Exclusion::Suppressed => "suppressed",
            Exclusion::RecentlyUsed { .. } => "recently_used",
            Exclusion::UnknownKeyId => "unknown_key_id",
            Exclusion::NotActive => "not_active",
            Exclusion::WaitingPeriod { .. } => "waiting_period",
            Exclusion::NotInactive => "not_inactive",
            Exclusion::UsedSinceDeactivation => "used_since_deactivation",
            Exclusion::Unverified(_) => "unverified",
            Exclusion::OldKeyStillUsed { .. } => "old_key_still_used",
            Exclusion::NewKeyUnused => "new_key_unused",
            Exclusion::NotOptedIn => "not_opted_in",
            Exclusion::NoFreeSlot => "no_free_slot",
            Exclusion::ChangedSinceReport(_) => "changed_since_report",
            Exclusion::RotationOpen { .. } => "rotation_open",
        }
    }

    /// One sentence.
    pub fn describe(&self, unused_days: u32) -> String {
        match self {
            Exclusion::RootUser => "a root user key: keyaudit never changes those (delete it as the root user)".into(),
            Exclusion::CallerKey => "the caller's own key (keyaudit runs with it)".into(),
            Exclusion::ProtectedAccount => "in a protected account (--protect-account)".into(),
            Exclusion::ProtectedOu(ou) => format!("in a protected OU ({ou}, --protect-ou)"),
            Exclusion::Suppressed => "under an exception (--suppressions)".into(),
            Exclusion::RecentlyUsed { days } => {
                format!(
                    "used {days} days ago, within --deactivate-unused-days ({unused_days}): it may belong to a periodic job"
                )
            }
            Exclusion::UnknownKeyId => "its key id is unknown (not looked up with --key-ids, the look-up failed or \
                                        timed out, or its report slot matched no single key; see the account's \
                                        warnings): a plan changes keys by id only; scan again"
                .into(),
            Exclusion::NotActive => "no longer active (deactivated or deleted since the credential report)".into(),
            Exclusion::WaitingPeriod { days } => format!("deactivated only {days} days ago"),
            Exclusion::NotInactive => "no longer inactive (re-activated) or gone".into(),
            Exclusion::UsedSinceDeactivation => "used since it was deactivated".into(),
            Exclusion::Unverified(reason) => format!("could not be verified: {reason}"),
            Exclusion::OldKeyStillUsed { days, quiet_days } => format!(
                "the user's newer key is in use, but this older key was used {days} day(s) ago, within \
                 --rotation-quiet-days ({quiet_days}): some application still uses it"
            ),
            Exclusion::NewKeyUnused => {
                "the user's newer key was never used: applications have not moved to it yet".into()
            }
            Exclusion::NotOptedIn => "in use: rotating it is left to its owner (the user has not opted in: user \
                                      tag keyaudit:rotation=auto, or plan --start-rotation-ou)"
                .into(),
            Exclusion::NoFreeSlot => "in use, and the user's other key slot is taken: its other key must go first \
                                      (rotation needs a free slot)"
                .into(),
            Exclusion::ChangedSinceReport(what) => what.clone(),
            Exclusion::RotationOpen { secret, switch_by } => format!(
                "keyaudit created this key for a rotation that is still open (its secret {secret}{}): it is not \
                 deactivated while applications may be moving to it; finish the rotation, or undo it with `keyaudit \
                 undo`",
                switch_by.map(|t| format!(", switch by {}", t.strftime("%Y-%m-%d"))).unwrap_or_default()
            ),
        }
    }
}

/// A key left out of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The key.
    pub key: ReportedKey,
    /// The change it would have had.
    pub kind: ChangeKind,
    /// The failing rules that made it a candidate (deactivation; none for a deletion).
    pub rules: Vec<String>,
    /// Why not.
    pub why: Exclusion,
}

/// What a deactivation plan may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPolicy {
    /// The plan's instant (its report's `as_of`).
    pub as_of: Timestamp,
    /// A key used fewer days ago than this is left alone; a key never used is not held back by it (its failing
    /// finding's own threshold is enough: nothing depends on a key that was never used).
    pub unused_days: u32,
    /// Accounts never touched.
    pub protect_accounts: Vec<AccountId>,
    /// OU paths never touched (subtrees included).
    pub protect_ous: Vec<String>,
    /// The caller's IAM user ARN, when the caller is an IAM user (its keys are never touched).
    pub caller_user_arn: Option<String>,
    /// The access key id keyaudit runs with, when known.
    pub caller_key_id: Option<AccessKeyId>,
}

fn under(ou_path: Option<&str>, protected: &str) -> bool {
    let protected = protected.trim_end_matches('/');
    ou_path.is_some_and(|p| p == protected || p.strip_prefix(protected).is_some_and(|rest| rest.starts_with('/')))
}

const SECONDS_PER_DAY: i64 = 86_400;

/// Whether a last use `used` (read from `iam:GetAccessKeyLastUsed`, which answers with fractions of a second) is
/// later than `known` (what the plan was made from: a credential report's whole seconds, or an earlier look-up).
/// Compared at the precision both sources share, whole seconds, so that the same instant read from both is never
/// "later"; a use with no earlier one known (`None`: none recorded) is later whatever it is.
pub fn used_after(used: Timestamp, known: Option<Timestamp>) -> bool {
    known.is_none_or(|known| used.as_second() > known.as_second())
}

impl PlanPolicy {
    /// Why `key` must be left alone whatever the change, if it must: the root user's, the caller's, no longer
    /// `active`, protected, or `suppressed` (an exception covers a finding the change would act on).
    fn guard(&self, key: &ReportedKey, active: bool, suppressed: bool) -> Option<Exclusion> {
        if key.user.is_root() {
            Some(Exclusion::RootUser)
        } else if self.is_callers(key) {
            Some(Exclusion::CallerKey)
        } else if !active {
            Some(Exclusion::NotActive)
        } else if self.protect_accounts.contains(&key.user.account_id) {
            Some(Exclusion::ProtectedAccount)
        } else if let Some(ou) = self.protect_ous.iter().find(|ou| under(key.user.ou_path.as_deref(), ou)) {
            Some(Exclusion::ProtectedOu(ou.clone()))
        } else if suppressed {
            Some(Exclusion::Suppressed)
        } else {
            None
        }
    }

    /// The key keyaudit runs with, or a key of the caller's own IAM user.
    fn is_callers(&self, key: &ReportedKey) -> bool {
        key.access_key_id.is_some() && self.caller_key_id.as_ref() == key.access_key_id.as_ref()
            || self.caller_user_arn.as_deref() == Some(key.user.user_arn.as_str())
    }

    /// Whole days from `t` to the plan's instant.
    fn days_since(&self, t: Timestamp) -> i64 {
        self.as_of.duration_since(t).as_secs().div_euclid(SECONDS_PER_DAY)
    }

    /// `key` as the change may name it, or why it is left out (`findings` are all about it; `last_used_at` is the
    /// key's last use).
    fn admit(
        &self,
        key: &ReportedKey,
        findings: &[&Candidate],
        last_used_at: Option<Timestamp>,
    ) -> Result<KeyRef, Exclusion> {
        let active = findings.iter().all(|c| c.active);
        if let Some(why) = self.guard(key, active, findings.iter().any(|c| c.suppressed)) {
            return Err(why);
        }
        if let Some(days) = last_used_at.map(|t| self.days_since(t)).filter(|days| *days < i64::from(self.unused_days))
        {
            return Err(Exclusion::RecentlyUsed { days });
        }
        key.identified().ok_or(Exclusion::UnknownKeyId)
    }
}

/// The deactivations a report allows, and every other key with a failing `deactivate` finding with the reason it
/// is left out; both in (account, user, key) order. A key appears once, whatever the number of its findings.
pub fn plan_deactivations(candidates: &[Candidate], policy: &PlanPolicy) -> (Vec<PlannedChange>, Vec<Excluded>) {
    type KeyOf<'a> = (&'a AccountId, &'a str, Option<KeySlot>, Option<&'a AccessKeyId>);
    let mut by_key: BTreeMap<KeyOf<'_>, Vec<&Candidate>> = BTreeMap::new();
    for c in candidates {
        let k = &c.key;
        by_key
            .entry((&k.user.account_id, k.user.user_arn.as_str(), k.slot, k.access_key_id.as_ref()))
            .or_default()
            .push(c);
    }
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    for findings in by_key.into_values() {
        let deactivating: Vec<&Candidate> =
            findings.iter().copied().filter(|c| c.verdict == Verdict::Fail && c.action == Action::Deactivate).collect();
        let Some(first) = deactivating.first() else { continue };
        let rules: Vec<String> = deactivating.iter().map(|c| c.rule_id.to_owned()).collect();
        let last_used_at = findings.iter().find_map(|c| c.last_used_at);
        match policy.admit(&first.key, &findings, last_used_at) {
            Ok(key) => planned.push(PlannedChange {
                kind: ChangeKind::Deactivate,
                key,
                expect_active: true,
                expect_last_used_at: last_used_at,
                other_key: None,
                switch_by: None,
                secret_arn: None,
                rules,
                usage: first.usage,
                reason_code: "unused",
                reason: first.action_reason.clone().unwrap_or_else(|| format!("{} fails", first.rule_id)),
            }),
            Err(why) => excluded.push(Excluded { key: first.key.clone(), kind: ChangeKind::Deactivate, rules, why }),
        }
    }
    (planned, excluded)
}

/// One plan from several passes over a report (deactivations, rotations to finish, rotations to start), each key
/// once: a key any pass plans is planned, by the first pass that does; a key no pass plans is listed once, with the
/// first pass's reason. Changes and exclusions in (account, user) order, each pass's order kept within a user.
pub fn combine(passes: Vec<(Vec<PlannedChange>, Vec<Excluded>)>) -> (Vec<PlannedChange>, Vec<Excluded>) {
    use std::collections::HashSet;
    let mut planned: Vec<PlannedChange> = Vec::new();
    let mut excluded: Vec<Excluded> = Vec::new();
    let mut planned_ids: HashSet<(AccountId, AccessKeyId)> = HashSet::new();
    for (p, e) in passes {
        for c in p {
            if planned_ids.insert((c.key.user.account_id.clone(), c.key.access_key_id.clone())) {
                planned.push(c);
            }
        }
        excluded.extend(e);
    }
    // A key without an id is named by its slot.
    let mut listed: HashSet<(AccountId, String, Option<KeySlot>, Option<AccessKeyId>)> = HashSet::new();
    excluded.retain(|e| {
        let k = &e.key;
        let planned =
            k.access_key_id.as_ref().is_some_and(|id| planned_ids.contains(&(k.user.account_id.clone(), id.clone())));
        let slot = if k.access_key_id.is_some() { None } else { k.slot };
        !planned && listed.insert((k.user.account_id.clone(), k.user.user_arn.clone(), slot, k.access_key_id.clone()))
    });
    let user = |u: &UserRef| (u.account_id.clone(), u.user_arn.clone());
    planned.sort_by_key(|c| user(&c.key.user));
    excluded.sort_by_key(|e| user(&e.key.user));
    (planned, excluded)
}

/// A key a keyaudit journal deactivated, with what AWS says about it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivated {
    /// The key.
    pub key: KeyRef,
    /// When keyaudit deactivated it.
    pub deactivated_at: Timestamp,
    /// Its last use then.
    pub last_used_then: Option<Timestamp>,
    /// Whether it is inactive now (`false`: active again, or gone).
    pub inactive_now: bool,
    /// Its last use now.
    pub last_used_now: Option<Timestamp>,
    /// The rotation secret of the key's replacement, when keyaudit started the key's rotation: its deletion is
    /// scheduled with the key's.
    pub secret_arn: Option<String>,
}

/// The deletions (the CIS procedure's last step): keys deactivated at least `wait` before `now`, still inactive
/// and not used since.
pub fn plan_deletions(
    keys: &[Deactivated],
    now: Timestamp,
    wait: SignedDuration,
) -> (Vec<PlannedChange>, Vec<Excluded>) {
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    for k in keys {
        let days = now.duration_since(k.deactivated_at).as_secs().div_euclid(SECONDS_PER_DAY);
        let used_since =
            k.last_used_now.is_some_and(|used| used_after(used, k.last_used_then.or(Some(k.deactivated_at))));
        let why = if !k.inactive_now {
            Some(Exclusion::NotInactive)
        } else if used_since {
            Some(Exclusion::UsedSinceDeactivation)
        } else if now.duration_since(k.deactivated_at) < wait {
            Some(Exclusion::WaitingPeriod { days })
        } else {
            None
        };
        match why {
            Some(why) => {
                excluded.push(Excluded { key: k.key.clone().into(), kind: ChangeKind::Delete, rules: Vec::new(), why })
            }
            None => planned.push(PlannedChange {
                kind: ChangeKind::Delete,
                key: k.key.clone(),
                expect_active: false,
                expect_last_used_at: k.last_used_now,
                other_key: None,
                switch_by: None,
                secret_arn: k.secret_arn.clone(),
                rules: Vec::new(),
                usage: None,
                reason_code: "waiting_period_over",
                reason: format!(
                    "deactivated by keyaudit on {} ({days} days ago) and not used since: the CIS procedure's last \
                     step; deleting cannot be undone{}",
                    k.deactivated_at.strftime("%Y-%m-%d"),
                    if k.secret_arn.is_some() {
                        "; the deletion of its rotation secret is scheduled with it (30 days' recovery)"
                    } else {
                        ""
                    }
                ),
            }),
        }
    }
    (planned, excluded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn key_ref(account: &str, user: &str, id: &str, ou: &str) -> KeyRef {
        KeyRef {
            user: UserRef {
                account_id: AccountId::parse(account).unwrap(),
                account_name: None,
                ou_path: Some(ou.into()),
                user_name: user.into(),
                user_arn: if user == ROOT_USER_NAME {
                    format!("arn:aws:iam::{account}:root")
                } else {
                    format!("arn:aws:iam::{account}:user/{user}")
                },
            },
            access_key_id: AccessKeyId::parse(id).unwrap(),
        }
    }

    fn key(account: &str, user: &str, id: &str, ou: &str) -> ReportedKey {
        ReportedKey { slot: Some(KeySlot::One), ..key_ref(account, user, id, ou).into() }
    }

    fn candidate(
        k: ReportedKey,
        rule: &'static str,
        verdict: Verdict,
        action: Action,
        used: Option<&str>,
    ) -> Candidate {
        Candidate {
            key: k,
            rule_id: rule,
            verdict,
            action,
            action_reason: Some("dormant".into()),
            usage: Some(Usage::Dormant),
            active: true,
            last_used_at: used.map(ts),
            suppressed: false,
        }
    }

    fn policy() -> PlanPolicy {
        PlanPolicy {
            as_of: ts("2026-11-28T12:00:00Z"),
            unused_days: 90,
            protect_accounts: vec![AccountId::parse("000000000009").unwrap()],
            protect_ous: vec!["/Root/Prod/Core".into()],
            caller_user_arn: Some("arn:aws:iam::000000000001:user/auditor".into()),
            caller_key_id: Some(AccessKeyId::parse("AKIACALLER0000000001").unwrap()),
        }
    }

    #[test]
    fn every_iam_user_name_yields_a_valid_secret_name_and_no_two_the_same() {
        let key = AccessKeyId::parse("AKIA0000000000000002").unwrap();
        // IAM user names: [\w+=,.@-]{1,64}; Secrets Manager names: [A-Za-z0-9/_+=.@-]{1,512}.
        let valid = |name: &str| {
            name.len() <= 512
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
                && !name.contains("//")
        };
        let all = "abcXYZ019_+=,.@-";
        let names = ["a,b", "a=2Cb", "a=b", "a=3Db", ",", "=", "==,,", all, &",".repeat(64), &"=".repeat(64)];
        let mut seen = std::collections::HashSet::new();
        for user in names {
            let name = rotation_secret_name(user, &key);
            assert!(valid(&name), "{user:?} -> {name:?}");
            assert!(seen.insert(name.clone()), "{user:?} -> {name:?} twice");
        }
        assert_eq!(rotation_secret_name("team.ci-bot@x", &key), "keyaudit/rotation/team.ci-bot@x/AKIA0000000000000002");
        assert_eq!(rotation_secret_name("a,b=c", &key), "keyaudit/rotation/a=2Cb=3Dc/AKIA0000000000000002");
    }

    #[test]
    fn only_failing_deactivate_findings_of_keys_nobody_protects_are_planned_and_every_other_one_is_listed() {
        use Action::{Deactivate, Rotate};
        use Verdict::*;
        let a = "000000000002";
        let old = Some("2026-06-01T00:00:00Z");
        let dev = |user: &str, id: &str| key(a, user, id, "/Root/Dev");
        let no_id = |user: &str| ReportedKey { access_key_id: None, ..dev(user, "AKIA0000000000000099") };
        let cases = vec![
            candidate(dev("dormant", "AKIA0000000000000001"), "KA-IAM-001", Fail, Deactivate, old),
            candidate(dev("dormant", "AKIA0000000000000001"), "KA-IAM-004", Fail, Deactivate, old),
            candidate(dev("busy", "AKIA0000000000000002"), "KA-IAM-001", Fail, Rotate, Some("2026-11-27T00:00:00Z")),
            candidate(
                dev("monthly", "AKIA0000000000000003"),
                "KA-IAM-004",
                Fail,
                Deactivate,
                Some("2026-10-14T00:00:00Z"),
            ),
            candidate(dev("warned", "AKIA0000000000000004"), "KA-IAM-001", Warn, Deactivate, None),
            candidate(
                ReportedKey { access_key_id: None, ..dev(ROOT_USER_NAME, "AKIA0000000000000005") },
                "KA-IAM-002",
                Fail,
                Deactivate,
                None,
            ),
            candidate(
                key("000000000001", "auditor", "AKIA0000000000000006", "/Root"),
                "KA-IAM-001",
                Fail,
                Deactivate,
                None,
            ),
            candidate(dev("other", "AKIACALLER0000000001"), "KA-IAM-001", Fail, Deactivate, None),
            candidate(key("000000000009", "x", "AKIA0000000000000007", "/Root"), "KA-IAM-001", Fail, Deactivate, None),
            candidate(
                key(a, "core", "AKIA0000000000000008", "/Root/Prod/Core/Db"),
                "KA-IAM-001",
                Fail,
                Deactivate,
                None,
            ),
            candidate(
                key(a, "corex", "AKIA0000000000000009", "/Root/Prod/CoreX"),
                "KA-IAM-001",
                Fail,
                Deactivate,
                None,
            ),
            Candidate {
                suppressed: true,
                ..candidate(dev("vendor", "AKIA0000000000000010"), "KA-IAM-004", Fail, Deactivate, None)
            },
            candidate(dev("vendor", "AKIA0000000000000010"), "KA-IAM-001", Fail, Deactivate, None),
            Candidate {
                active: false,
                ..candidate(dev("off", "AKIA0000000000000011"), "KA-IAM-001", Fail, Deactivate, None)
            },
            // Never used: planned whatever --unused-days says (the finding's own threshold is enough).
            candidate(dev("never", "AKIA0000000000000012"), "KA-IAM-004", Fail, Deactivate, None),
            candidate(no_id("unmatched"), "KA-IAM-004", Fail, Deactivate, None),
            // Recently used and without an id: the policy's reason comes first.
            candidate(no_id("unmatched-busy"), "KA-IAM-004", Fail, Deactivate, Some("2026-11-01T00:00:00Z")),
        ];
        let (planned, excluded) = plan_deactivations(&cases, &policy());
        let users: Vec<(&str, Vec<String>)> =
            planned.iter().map(|p| (p.key.user.user_name.as_str(), p.rules.clone())).collect();
        let rules = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            users,
            [
                ("corex", rules(&["KA-IAM-001"])),
                ("dormant", rules(&["KA-IAM-001", "KA-IAM-004"])),
                ("never", rules(&["KA-IAM-004"])),
            ],
            "one change per key, with every rule that failed"
        );
        let why: BTreeMap<&str, (&str, &[String])> =
            excluded.iter().map(|e| (e.key.user.user_name.as_str(), (e.why.code(), e.rules.as_slice()))).collect();
        let codes: BTreeMap<&str, &str> = why.iter().map(|(u, (code, _))| (*u, *code)).collect();
        assert_eq!(
            codes,
            BTreeMap::from([
                (ROOT_USER_NAME, "root_user"),
                ("auditor", "caller_key"),
                ("core", "protected_ou"),
                ("monthly", "recently_used"),
                ("off", "not_active"),
                ("other", "caller_key"),
                ("unmatched", "unknown_key_id"),
                ("unmatched-busy", "recently_used"),
                ("vendor", "suppressed"),
                ("x", "protected_account"),
            ]),
            "every failing deactivate key is planned or listed: only busy (rotate) and warned (warn) are neither"
        );
        assert_eq!(why["vendor"].1, rules(&["KA-IAM-004", "KA-IAM-001"]));
        assert!(planned.iter().all(|p| p.expect_active && p.kind == ChangeKind::Deactivate));
        assert_eq!(planned[1].expect_last_used_at, old.map(ts));
        assert_eq!(planned[2].expect_last_used_at, None);
        let unmatched = excluded.iter().find(|e| e.key.user.user_name == "unmatched").unwrap();
        assert_eq!((unmatched.key.slot, unmatched.key.access_key_id.as_ref()), (Some(KeySlot::One), None));
    }

    #[test]
    fn unused_days_holds_back_only_keys_used_fewer_days_ago() {
        let k = || key("000000000002", "u", "AKIA0000000000000001", "/Root");
        let plan = |used: Option<&str>| {
            let c = candidate(k(), "KA-IAM-004", Verdict::Fail, Action::Deactivate, used);
            let (planned, excluded) = plan_deactivations(&[c], &policy());
            (planned.len(), excluded.iter().map(|e| e.why.clone()).collect::<Vec<_>>())
        };
        // as_of 2026-11-28T12:00:00Z, --unused-days 90.
        assert_eq!(plan(None), (1, vec![]), "never used");
        assert_eq!(plan(Some("2026-08-30T12:00:00Z")), (1, vec![]), "exactly 90 days");
        assert_eq!(plan(Some("2026-08-30T12:00:01Z")), (0, vec![Exclusion::RecentlyUsed { days: 89 }]));
    }

    #[test]
    fn candidates_come_from_the_reports_key_level_findings_with_the_plans_exceptions() {
        use crate::eval::{EvalContext, RuleConfig, evaluate};
        use crate::inventory::{AccountInventory, CredentialUser, KeySlotRecord};
        use crate::report::{AccessMethod, AccountRecord, AccountState, AccountStats, AccountStatus, RunInfo, Scope};
        let as_of = ts("2026-11-28T12:00:00Z");
        let account = Account {
            id: AccountId::parse("000000000002").unwrap(),
            name: Some("work".into()),
            ou_path: Some("/Root/Dev".into()),
            state: AccountState::Active,
            access: AccessMethod::CallerCredentials,
        };
        let user = |name: &str, id: Option<&str>| CredentialUser {
            user_name: name.into(),
            arn: format!("arn:aws:iam::000000000002:user/{name}"),
            keys: vec![KeySlotRecord {
                access_key_id: id.map(|i| AccessKeyId::parse(i).unwrap()),
                ..KeySlotRecord::new(KeySlot::One, KeyStatus::Active, ts("2026-10-09T12:00:00Z"))
            }],
            owner: None,
        };
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![user("old-never", Some("AKIA0000000000000001")), user("unmatched", None)],
        };
        let ctx = EvalContext { as_of, config: RuleConfig::default() };
        let findings = evaluate(&crate::rules::builtin(), &ctx, &account.id, &inv);
        let report = Report {
            run: RunInfo {
                as_of,
                started_at: as_of,
                finished_at: as_of,
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
                account: account.clone(),
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
        };
        let all = candidates(&report);
        assert!(all.iter().all(|c| c.active && c.key.user.account_name.as_deref() == Some("work")));
        let failing: Vec<(&str, &str, Action, Option<Usage>)> = all
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| (c.key.user.user_name.as_str(), c.rule_id, c.action, c.usage))
            .collect();
        // 50 days old and never used: KA-IAM-004 (45 days) fails, KA-IAM-001 (90 days) does not.
        let never = (Action::Deactivate, Some(Usage::NeverUsed));
        assert_eq!(
            failing,
            [("old-never", "KA-IAM-004", never.0, never.1), ("unmatched", "KA-IAM-004", never.0, never.1)]
        );
        let (planned, excluded) = plan_deactivations(&all, &PlanPolicy { protect_ous: vec![], ..policy() });
        assert_eq!(planned.iter().map(|p| p.key.access_key_id.as_str()).collect::<Vec<_>>(), ["AKIA0000000000000001"]);
        assert_eq!(
            excluded.iter().map(|e| (e.key.user.user_name.as_str(), e.why.code())).collect::<Vec<_>>(),
            [("unmatched", "unknown_key_id")]
        );

        let exceptions = crate::suppress::Suppressions {
            entries: vec![crate::suppress::Suppression {
                label: "#1".into(),
                line: 1,
                selector: crate::suppress::Selector {
                    access_key_id: Some(AccessKeyId::parse("AKIA0000000000000001").unwrap()),
                    ..Default::default()
                },
                reason: "vendor".into(),
                owner: "o".into(),
                expires: jiff::civil::date(2026, 12, 31),
                allow_long: false,
            }],
        };
        let mut excepted = report.clone();
        excepted.apply_exceptions(&exceptions);
        let after = candidates(&excepted);
        let suppressed: Vec<(&str, &str)> =
            after.iter().filter(|c| c.suppressed).map(|c| (c.key.user.user_name.as_str(), c.rule_id)).collect();
        assert_eq!(
            suppressed,
            [("old-never", "KA-IAM-004")],
            "the failing finding only, as a scan applies exceptions (its KA-IAM-001 finding passes)"
        );
        let (planned, _) = plan_deactivations(&after, &PlanPolicy { protect_ous: vec![], ..policy() });
        assert!(planned.is_empty(), "the excepted key is left out");
    }

    #[test]
    fn a_last_use_is_later_only_by_a_whole_second() {
        let report = Some(ts("2026-08-07T01:20:54Z"));
        let cases = [
            ("2026-08-07T01:20:54Z", report, false),
            ("2026-08-07T01:20:54.747603Z", report, false),
            ("2026-08-07T01:20:55Z", report, true),
            ("2026-08-07T01:20:53.999Z", report, false),
            ("2026-08-07T01:20:54Z", None, true),
        ];
        for (used, known, later) in cases {
            assert_eq!(used_after(ts(used), known), later, "{used} after {known:?}");
        }
    }

    #[test]
    fn deletions_wait_and_need_the_key_inactive_and_unused_since() {
        let now = ts("2026-12-28T12:00:00Z");
        let at = |s: &str| ts(s);
        let k = |id: &str| key_ref("000000000002", "u", id, "/Root");
        let entry = |id: &str, when: &str, inactive: bool, used_now: Option<&str>| Deactivated {
            key: k(id),
            deactivated_at: at(when),
            last_used_then: Some(at("2026-06-01T00:00:00Z")),
            inactive_now: inactive,
            last_used_now: used_now.map(at),
            secret_arn: None,
        };
        let keys = [
            entry("AKIA0000000000000001", "2026-11-28T12:00:00Z", true, Some("2026-06-01T00:00:00Z")),
            entry("AKIA0000000000000002", "2026-12-20T12:00:00Z", true, Some("2026-06-01T00:00:00Z")),
            entry("AKIA0000000000000003", "2026-11-28T12:00:00Z", false, Some("2026-06-01T00:00:00Z")),
            entry("AKIA0000000000000004", "2026-11-28T12:00:00Z", true, Some("2026-12-01T00:00:00Z")),
        ];
        let (planned, excluded) = plan_deletions(&keys, now, SignedDuration::from_hours(24 * 30));
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].key.access_key_id.as_str(), "AKIA0000000000000001");
        assert!(planned[0].reason.contains("cannot be undone"));
        let codes: Vec<&str> = excluded.iter().map(|e| e.why.code()).collect();
        assert_eq!(codes, ["waiting_period", "not_inactive", "used_since_deactivation"]);
    }

    #[test]
    fn passes_combine_into_one_entry_per_key_planned_if_any_pass_plans_it() {
        let k = |user: &str, id: &str| key_ref("000000000002", user, id, "/Root");
        let change = |key: KeyRef, code: &'static str| PlannedChange {
            kind: ChangeKind::Deactivate,
            key,
            expect_active: true,
            expect_last_used_at: None,
            other_key: None,
            switch_by: None,
            secret_arn: None,
            rules: vec![],
            usage: None,
            reason_code: code,
            reason: String::new(),
        };
        let left_out = |key: KeyRef, why: Exclusion| Excluded {
            key: key.into(),
            kind: ChangeKind::Deactivate,
            rules: vec![],
            why,
        };
        let a = k("a", "AKIA0000000000000001");
        let b = k("b", "AKIA0000000000000002");
        let c = k("c", "AKIA0000000000000003");
        let d = k("d", "AKIA0000000000000004");
        let deactivations = (
            vec![change(d.clone(), "unused")],
            vec![
                left_out(a.clone(), Exclusion::RecentlyUsed { days: 50 }),
                left_out(b.clone(), Exclusion::RecentlyUsed { days: 2 }),
            ],
        );
        let finishes = (
            vec![change(a.clone(), "rotation_finished"), change(d.clone(), "rotation_finished")],
            vec![
                left_out(b.clone(), Exclusion::OldKeyStillUsed { days: 2, quiet_days: 7 }),
                left_out(c.clone(), Exclusion::NewKeyUnused),
            ],
        );
        let (planned, excluded) = combine(vec![deactivations, finishes]);
        let planned: Vec<(&str, &str)> =
            planned.iter().map(|p| (p.key.user.user_name.as_str(), p.reason_code)).collect();
        assert_eq!(planned, [("a", "rotation_finished"), ("d", "unused")], "the first pass that plans a key names it");
        let excluded: Vec<(&str, &str)> =
            excluded.iter().map(|e| (e.key.user.user_name.as_str(), e.why.code())).collect();
        assert_eq!(excluded, [("b", "recently_used"), ("c", "new_key_unused")], "once, with the first reason");
    }
}
