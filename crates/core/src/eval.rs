//! Pure evaluation: an account's inventory plus the run's fixed `as_of` instant in, findings out.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::ModelError;
use crate::baseline::BaselineState;
use crate::ids::{AccessKeyId, AccountId, Partition};
use crate::inventory::{AccountInventory, CredentialUser, KeyChange, KeySlot, KeySlotRecord, KeyStatus, Owner};
use crate::rules::{RuleMeta, RuleSet};
use crate::suppress::AppliedSuppression;
use crate::triage::Triage;

const SECONDS_PER_DAY: i64 = 86_400;

/// How long a failing or warning finding may stay open before it is overdue, by its rule's severity: its deadline
/// (`due`) is the later of its first sighting and its rule's own due date, plus these days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceDays {
    /// Critical findings (a root access key).
    pub critical: u32,
    /// High.
    pub high: u32,
    /// Medium (a stale, unused or second active key).
    pub medium: u32,
    /// Low.
    pub low: u32,
}

impl GraceDays {
    /// A week for critical findings, thirty days for the others.
    pub const DEFAULT: GraceDays = GraceDays { critical: 7, high: 30, medium: 30, low: 30 };

    /// The grace of `severity`.
    pub fn of(&self, severity: crate::rules::Severity) -> u32 {
        use crate::rules::Severity;
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }

    /// Each severity with its days, from critical down.
    pub fn by_severity(&self) -> [(crate::rules::Severity, u32); 4] {
        use crate::rules::Severity;
        [
            (Severity::Critical, self.critical),
            (Severity::High, self.high),
            (Severity::Medium, self.medium),
            (Severity::Low, self.low),
        ]
    }
}

impl Default for GraceDays {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Validated rule settings (CIS defaults: 90-day maximum age, 14-day warning window, 45 days unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleConfig {
    max_age_days: u32,
    warn_days: u32,
    unused_days: u32,
    dormant_days: u32,
    grace_days: GraceDays,
}

impl RuleConfig {
    /// The CIS default maximum key age in days.
    pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;
    /// The default warning window in days before the maximum age.
    pub const DEFAULT_WARN_DAYS: u32 = 14;
    /// The CIS default: credentials unused for 45 days or more are to be disabled.
    pub const DEFAULT_UNUSED_DAYS: u32 = 45;
    /// Triage: a key last used this many days ago or more is dormant (the CIS text's "not used in 90 days").
    pub const DEFAULT_DORMANT_DAYS: u32 = 90;

    /// Validates the settings: `max_age_days` and `unused_days` in 1..=36500, `warn_days` below `max_age_days`.
    pub fn new(max_age_days: u32, warn_days: u32, unused_days: u32) -> Result<Self, ModelError> {
        for (name, days) in [("max-age-days", max_age_days), ("unused-days", unused_days)] {
            if !(1..=36_500).contains(&days) {
                return Err(ModelError::InvalidSetting {
                    name,
                    expected: format!("expected a whole number of days from 1 to 36500, got {days}"),
                });
            }
        }
        if warn_days >= max_age_days {
            return Err(ModelError::InvalidSetting {
                name: "warn-days",
                expected: format!("expected fewer days than --max-age-days ({max_age_days}), got {warn_days}"),
            });
        }
        Ok(Self {
            max_age_days,
            warn_days,
            unused_days,
            dormant_days: Self::DEFAULT_DORMANT_DAYS,
            grace_days: GraceDays::DEFAULT,
        })
    }

    /// The same settings with triage's dormant threshold (1 to 36500 days).
    pub fn with_dormant_days(self, dormant_days: u32) -> Result<Self, ModelError> {
        if !(1..=36_500).contains(&dormant_days) {
            return Err(ModelError::InvalidSetting {
                name: "dormant-days",
                expected: format!("expected a whole number of days from 1 to 36500, got {dormant_days}"),
            });
        }
        Ok(Self { dormant_days, ..self })
    }

    /// Days since the last use from which triage calls a key dormant.
    pub fn dormant_days(&self) -> u32 {
        self.dormant_days
    }

    /// The same settings with these deadlines (0 to 3650 days each).
    pub fn with_grace_days(self, grace_days: GraceDays) -> Result<Self, ModelError> {
        if let Some((severity, days)) = grace_days.by_severity().into_iter().find(|(_, d)| *d > 3_650) {
            return Err(ModelError::InvalidSetting {
                name: "grace-days",
                expected: format!("expected 0 to 3650 days for {}, got {days}", severity.as_str()),
            });
        }
        Ok(Self { grace_days, ..self })
    }

    /// How long failing and warning findings may stay open, by severity.
    pub fn grace_days(&self) -> GraceDays {
        self.grace_days
    }

    /// The maximum compliant age in days (a key exactly this old passes).
    pub fn max_age_days(&self) -> u32 {
        self.max_age_days
    }

    /// How many days before the maximum age a key starts to warn.
    pub fn warn_days(&self) -> u32 {
        self.warn_days
    }

    /// Days without use from which an active key fails KA-IAM-004 (exactly this many fails).
    pub fn unused_days(&self) -> u32 {
        self.unused_days
    }

    /// The maximum compliant age.
    pub fn max_age(&self) -> SignedDuration {
        days(self.max_age_days)
    }

    /// The age from which an active key warns.
    pub fn warn_after(&self) -> SignedDuration {
        days(self.max_age_days - self.warn_days)
    }

    /// The time without use from which an active key fails KA-IAM-004.
    pub fn unused_after(&self) -> SignedDuration {
        days(self.unused_days)
    }

    /// The time since the last use from which triage calls a key dormant.
    pub fn dormant_after(&self) -> SignedDuration {
        days(self.dormant_days)
    }
}

/// Calendar days in `tz` from `from`'s day to `to`'s day: how a deadline's days left or overdue are counted, so
/// that the time of day of a run never changes them.
pub fn calendar_days(from: Timestamp, to: Timestamp, tz: &TimeZone) -> i64 {
    let day = |t: Timestamp| t.to_zoned(tz.clone()).date();
    day(to).since(day(from)).map_or(0, |span| i64::from(span.get_days()))
}

/// The last second of `t`'s day in `tz` (23:59:59 there): a deadline is a date, due through its whole day.
pub fn end_of_day(t: Timestamp, tz: &TimeZone) -> Timestamp {
    let next = t.to_zoned(tz.clone()).date().tomorrow().ok().and_then(|d| d.to_zoned(tz.clone()).ok());
    next.and_then(|z| z.timestamp().checked_sub(SignedDuration::from_secs(1)).ok()).unwrap_or(t)
}

/// The first second of `t`'s day in `tz`.
pub fn start_of_day(t: Timestamp, tz: &TimeZone) -> Timestamp {
    t.to_zoned(tz.clone()).start_of_day().map_or(t, |z| z.timestamp())
}

fn days(n: u32) -> SignedDuration {
    SignedDuration::from_secs(i64::from(n) * SECONDS_PER_DAY)
}

/// Whole days, floored (90 days and 1 second is 90 days).
pub fn whole_days(d: SignedDuration) -> i64 {
    d.as_secs().div_euclid(SECONDS_PER_DAY)
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self {
            max_age_days: Self::DEFAULT_MAX_AGE_DAYS,
            warn_days: Self::DEFAULT_WARN_DAYS,
            unused_days: Self::DEFAULT_UNUSED_DAYS,
            dormant_days: Self::DEFAULT_DORMANT_DAYS,
            grace_days: GraceDays::DEFAULT,
        }
    }
}

/// Everything a rule may know besides the inventory: one instant for the whole run and the settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalContext {
    /// The instant every age is measured against.
    pub as_of: Timestamp,
    /// Validated settings.
    pub config: RuleConfig,
}

/// The outcome of one rule on one subject. The order is from worst to best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The control fails.
    Fail,
    /// Compliant, but close to failing (KA-IAM-001's warning window).
    Warn,
    /// Compliant.
    Pass,
    /// The control does not apply (an inactive key).
    NotApplicable,
    /// In the credential report, but deleted since it was generated (`ListAccessKeys` no longer lists it).
    Resolved,
}

impl Verdict {
    /// `fail`, `warn`, `pass`, `not_applicable` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Fail => "fail",
            Verdict::Warn => "warn",
            Verdict::Pass => "pass",
            Verdict::NotApplicable => "not_applicable",
            Verdict::Resolved => "resolved",
        }
    }

    /// Parses [`Verdict::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Verdict::Fail, Verdict::Warn, Verdict::Pass, Verdict::NotApplicable, Verdict::Resolved]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// Whether the subject needs attention (`fail` or `warn`).
    pub fn is_actionable(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Warn)
    }
}

/// One access key as a finding shows it, measured at `as_of`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFacts {
    /// Report slot (1 or 2).
    pub slot: KeySlot,
    /// Key id, when it was looked up and proven.
    pub access_key_id: Option<AccessKeyId>,
    /// Active or inactive as last seen: the report's, or `ListAccessKeys`'s when it shows a deactivation since.
    pub status: KeyStatus,
    /// What changed since the credential report, when `ListAccessKeys` proved it.
    pub change: Option<KeyChange>,
    /// Creation or last re-activation, per the credential report.
    pub last_rotated: Timestamp,
    /// `CreateDate`, when the key id was looked up.
    pub created_at: Option<Timestamp>,
    /// Last use, when AWS recorded one.
    pub last_used_at: Option<Timestamp>,
    /// The service of the last use, when AWS recorded one.
    pub last_used_service: Option<String>,
    /// The region of the last use, when AWS recorded one.
    pub last_used_region: Option<String>,
    /// The secret's age at `as_of`, to the second (negative when the key is newer than `as_of`): from
    /// `last_rotated`, or from `CreateDate` when that is known and older (see [`AgeSource`]).
    pub age: SignedDuration,
    /// What [`KeyFacts::age`] is measured from.
    pub age_source: AgeSource,
    /// Whether the user's other slot holds a key with the same `last_rotated` second (the slot then joins the
    /// key's identity; see [`Finding::fingerprint`]).
    pub shares_rotation_second: bool,
}

/// What a key's age is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeSource {
    /// The credential report's `last_rotated` ("created or last changed").
    LastRotated,
    /// `CreateDate` from `ListAccessKeys`, more than an hour older than `last_rotated`: the key was re-activated
    /// or changed, not rotated, and its secret is as old as its creation.
    CreateDate,
}

impl AgeSource {
    /// `last_rotated` or `create_date`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgeSource::LastRotated => "last_rotated",
            AgeSource::CreateDate => "create_date",
        }
    }

    /// Parses [`AgeSource::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [AgeSource::LastRotated, AgeSource::CreateDate].into_iter().find(|v| v.as_str() == s)
    }
}

/// `CreateDate` older than `last_rotated` by more than this means a re-activation, not a rotation (AWS's clocks
/// for the two may differ by seconds; a re-activation is a deliberate act, long after creation).
const REACTIVATION_SLACK: SignedDuration = SignedDuration::from_hours(1);

impl KeyFacts {
    /// The facts of `user`'s report slot `key` at `as_of`.
    pub fn of(user: &CredentialUser, key: &KeySlotRecord, as_of: Timestamp) -> Self {
        let reactivated = key.created_at.filter(|c| key.last_rotated.duration_since(*c) > REACTIVATION_SLACK);
        let (since, age_source) = match reactivated {
            Some(created) => (created, AgeSource::CreateDate),
            None => (key.last_rotated, AgeSource::LastRotated),
        };
        Self {
            slot: key.slot,
            access_key_id: key.access_key_id.clone(),
            status: key.current_status(),
            change: key.change,
            last_rotated: key.last_rotated,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            last_used_service: key.last_used_service.clone(),
            last_used_region: key.last_used_region.clone(),
            age: as_of.duration_since(since),
            age_source,
            shares_rotation_second: user
                .keys
                .iter()
                .any(|other| other.slot != key.slot && other.last_rotated.as_second() == key.last_rotated.as_second()),
        }
    }

    /// The key's identity within its user, stable while the key exists: its `last_rotated` second (plus the slot
    /// when both of the user's keys share that second). It depends neither on the verdict nor on whether the key
    /// id was looked up, and survives the slot shift when the user's other key is deleted.
    pub fn identity(&self) -> String {
        let rotated = self.last_rotated.as_second();
        if self.shares_rotation_second {
            format!("rotated:{rotated}|slot:{}", self.slot.number())
        } else {
            format!("rotated:{rotated}")
        }
    }

    /// The instant the age is measured from.
    pub fn age_since(&self) -> Timestamp {
        match (self.age_source, self.created_at) {
            (AgeSource::CreateDate, Some(created)) => created,
            _ => self.last_rotated,
        }
    }

    /// Whole days of age, floored.
    pub fn age_days(&self) -> i64 {
        whole_days(self.age)
    }

    /// The key's state as last seen: `active`, `inactive`, or `deleted` (since the credential report).
    pub fn state(&self) -> &'static str {
        match self.change {
            Some(KeyChange::Deleted) => "deleted",
            _ => self.status.as_str(),
        }
    }

    /// Active as last seen (not deactivated or deleted since the report).
    pub fn is_active(&self) -> bool {
        self.status == KeyStatus::Active && self.change.is_none()
    }
}

/// One key of a user with two active keys (KA-IAM-003's evidence).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveKey {
    /// Report slot.
    pub slot: KeySlot,
    /// Key id, when looked up and proven.
    pub access_key_id: Option<AccessKeyId>,
    /// Creation or last re-activation.
    pub last_rotated: Timestamp,
}

/// What a rule based its verdict on, beyond the key itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// KA-IAM-001: the key's age against the maximum.
    Rotation {
        /// `last_rotated + max-age`: the last compliant instant.
        due_at: Timestamp,
        /// The maximum age in force.
        max_age_days: u32,
    },
    /// KA-IAM-002: an active key of the root user; the key is the evidence.
    RootKey,
    /// KA-IAM-003: the user's two active keys, oldest first.
    ActiveKeys {
        /// The active keys.
        keys: Vec<ActiveKey>,
        /// The newer key is younger than a week: a rotation is probably under way.
        rotation_under_way: bool,
    },
    /// KA-IAM-004: how long an active key has gone unused.
    Usage {
        /// `as_of -` the last use (or, for a key never used, its `last_rotated`).
        unused_for: SignedDuration,
        /// The last use, or `last_rotated` for a key never used.
        unused_since: Timestamp,
        /// AWS recorded no use at all.
        never_used: bool,
        /// The threshold in force.
        unused_days: u32,
    },
}

/// What a finding is about: one access key, or a user as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// One access key (its slot; its id when known).
    AccessKey,
    /// A user as a whole (no key slot).
    User,
}

impl Subject {
    /// `access_key` or `user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::AccessKey => "access_key",
            Subject::User => "user",
        }
    }
}

/// One rule's verdict on one subject (a key or a user).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The rule, with its metadata (id, title, severity, compliance mapping, wording).
    pub rule: &'static RuleMeta,
    /// The account.
    pub account_id: AccountId,
    /// IAM user name (`<root_account>` for the root user).
    pub user_name: String,
    /// IAM user ARN.
    pub user_arn: String,
    /// The key, for a key-level finding; `None` for a user-level one.
    pub key: Option<KeyFacts>,
    /// What the verdict rests on.
    pub evidence: Evidence,
    /// The verdict.
    pub verdict: Verdict,
    /// One human sentence explaining the verdict.
    pub message: String,
    /// How the key is used and what to do about the finding (set by [`crate::triage`] after evaluation).
    pub triage: Triage,
    /// The user's owner, from its tags, when looked up.
    pub owner: Option<Owner>,
    /// The exception the finding is under (`--suppressions`): it then counts neither for the exit code nor in
    /// the fail/warn totals.
    pub suppression: Option<AppliedSuppression>,
    /// How it compares with the baseline (`--baseline`).
    pub baseline_state: Option<BaselineState>,
    /// When an earlier run (`--baseline`) first saw it; `None`: first seen by this run.
    pub first_seen: Option<Timestamp>,
}

impl Finding {
    /// A rule's finding about `user` (and `key`, for a key-level finding); triage and owner are filled in after
    /// every rule has run.
    pub fn new(
        rule: &'static RuleMeta,
        account_id: &AccountId,
        user: &CredentialUser,
        key: Option<KeyFacts>,
        evidence: Evidence,
        verdict: Verdict,
        message: String,
    ) -> Self {
        Self {
            rule,
            account_id: account_id.clone(),
            user_name: user.user_name.clone(),
            user_arn: user.arn.clone(),
            key,
            evidence,
            verdict,
            message,
            triage: Triage::default(),
            owner: None,
            suppression: None,
            baseline_state: None,
            first_seen: None,
        }
    }

    /// What the finding is about.
    pub fn subject(&self) -> Subject {
        if self.key.is_some() { Subject::AccessKey } else { Subject::User }
    }

    /// The rotation deadline, for KA-IAM-001 findings.
    pub fn due_at(&self) -> Option<Timestamp> {
        match self.evidence {
            Evidence::Rotation { due_at, .. } => Some(due_at),
            _ => None,
        }
    }

    /// The instant its rule says the subject fell (or falls) due, when the rule has one: KA-IAM-001's due date,
    /// KA-IAM-004's last use (or creation) plus the unused days.
    pub fn rule_due(&self) -> Option<Timestamp> {
        match self.evidence {
            Evidence::Rotation { due_at, .. } => Some(due_at),
            Evidence::Usage { unused_since, unused_days, .. } => unused_since.checked_add(days(unused_days)).ok(),
            Evidence::RootKey | Evidence::ActiveKeys { .. } => None,
        }
    }

    /// Its deadline, for a failing or warning finding no exception covers: the later of its first sighting (this
    /// run's `as_of` when no earlier run saw it) and its rule's own due date, plus the grace days of its severity —
    /// a date: the deadline is the last second of that day (UTC), so that a run a few seconds or hours later, or a
    /// weekly schedule's jitter, never moves it (see [`end_of_day`]).
    pub fn due(&self, as_of: Timestamp, grace: &GraceDays) -> Option<Timestamp> {
        self.due_in(as_of, grace, &TimeZone::UTC)
    }

    /// [`due`](Self::due), with the due day taken in `tz` (notices in the organization's time zone): the last second
    /// of that day there.
    pub fn due_in(&self, as_of: Timestamp, grace: &GraceDays, tz: &TimeZone) -> Option<Timestamp> {
        if !self.counts_against() {
            return None;
        }
        let first_seen = self.first_seen.unwrap_or(as_of);
        let start = self.rule_due().map_or(first_seen, |due| due.max(first_seen));
        start.checked_add(days(grace.of(self.rule.severity))).ok().map(|t| end_of_day(t, tz))
    }

    /// Whether the finding counts: failing or warning, and not under an exception.
    pub fn counts_against(&self) -> bool {
        self.verdict.is_actionable() && self.suppression.is_none()
    }

    /// Where the finding stands since the last run (`--baseline`): new, still open or resolved.
    pub fn since_last_run(&self) -> Option<crate::baseline::SinceLastRun> {
        self.baseline_state?.since_last_run(self.verdict, self.suppression.is_some())
    }

    /// Its verdict in the last run (`--baseline`; `None` for a finding that is new or without a baseline).
    pub fn was(&self) -> Option<Verdict> {
        self.baseline_state?.was(self.verdict)
    }

    /// Whether the finding is newly failing: it fails now and did not fail in the baseline (new, or warning then).
    /// What `--fail-on newly-failing` counts, with the exceptions left out; a warn → fail is still open (see
    /// `SinceLastRun`), and newly failing too.
    pub fn is_newly_failing(&self) -> bool {
        self.verdict == Verdict::Fail
            && self.baseline_state.is_none_or(|state| state.was(self.verdict) != Some(Verdict::Fail))
    }

    /// Whether this is about the root user.
    pub fn is_root(&self) -> bool {
        self.user_name == crate::inventory::ROOT_USER_NAME
    }

    /// A stable identifier of what the finding is about: SHA-256 (hex) of
    /// `keyaudit/v2|<rule id>|<partition>|<account id>|<user ARN>|<subject>`, where the subject is the key's
    /// [`KeyFacts::identity`] (its `last_rotated` second) for a key-level finding and `user` for a user-level one.
    /// The key id is deliberately not part of it: the credential report has no key ids and keyaudit looks them up
    /// only for some keys, so a key's fingerprint would otherwise change with `--key-ids` or with its verdict.
    pub fn fingerprint(&self, partition: &Partition) -> String {
        use sha2::Digest;
        let subject = self.key.as_ref().map_or_else(|| "user".to_owned(), KeyFacts::identity);
        let input = format!(
            "{FINGERPRINT_SCHEME}|{}|{partition}|{}|{}|{subject}",
            self.rule.id, self.account_id, self.user_arn
        );
        hex::encode(sha2::Sha256::digest(input.as_bytes()))
    }
}

/// The fingerprint scheme's name, recorded in reports so that a baseline made with another scheme is refused.
pub const FINGERPRINT_SCHEME: &str = "keyaudit/v2";

/// Evaluates every rule of the set on one account's inventory, then triages the findings (usage, action, owner).
pub fn evaluate(rules: &RuleSet, ctx: &EvalContext, account_id: &AccountId, inv: &AccountInventory) -> Vec<Finding> {
    let mut findings: Vec<Finding> = rules.iter().flat_map(|rule| rule.evaluate(ctx, account_id, inv)).collect();
    crate::triage::triage(&mut findings, inv, ctx);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{CredentialUser, KeySlotRecord};
    use crate::rules::builtin;

    const ARN: &str = "arn:aws:iam::012345678901:user/alice";

    /// One of alice's keys: slot, key id, last_rotated.
    type Key<'a> = (KeySlot, Option<&'a str>, &'a str);

    /// alice's keys, evaluated by KA-IAM-001 at `as_of`.
    fn findings(keys: &[Key<'_>], as_of: &str) -> Vec<Finding> {
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: "alice".into(),
                arn: ARN.into(),
                keys: keys
                    .iter()
                    .map(|(slot, id, rotated)| KeySlotRecord {
                        access_key_id: id.map(|k| AccessKeyId::parse(k).unwrap()),
                        ..KeySlotRecord::new(*slot, KeyStatus::Active, rotated.parse().unwrap())
                    })
                    .collect(),
                owner: None,
            }],
        };
        let ctx = EvalContext { as_of: as_of.parse().unwrap(), config: RuleConfig::default() };
        let only = builtin().select(&["KA-IAM-001".to_owned()], &[]).unwrap();
        evaluate(&only, &ctx, &AccountId::parse("012345678901").unwrap(), &inv)
    }

    /// Issue "Scheduled runs": a key keeps its fingerprint through pass, warn and fail, whether or not its id was
    /// looked up, and through the slot shift when the user's other key is deleted.
    #[test]
    fn a_key_keeps_its_fingerprint_through_verdicts_look_ups_and_slot_shifts() {
        let aws = Partition::aws();
        let (old, new) = ("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z");
        let id = Some("AKIA0000000000000001");
        let cases: [(&[Key<'_>], &str, Verdict); 4] = [
            (&[(KeySlot::One, None, old), (KeySlot::Two, None, new)], "2026-03-01T00:00:00Z", Verdict::Pass),
            (&[(KeySlot::One, None, old), (KeySlot::Two, None, new)], "2026-03-25T00:00:00Z", Verdict::Warn),
            (&[(KeySlot::One, id, old), (KeySlot::Two, None, new)], "2026-11-28T00:00:00Z", Verdict::Fail),
            // The other key (slot 1) deleted: ours moves to slot 1.
            (&[(KeySlot::One, None, new)], "2026-11-28T00:00:00Z", Verdict::Fail),
        ];
        let mut prints = Vec::new();
        for (i, (keys, as_of, verdict)) in cases.iter().enumerate() {
            let all = findings(keys, as_of);
            let ours = if i == 3 {
                &all[0]
            } else {
                all.iter().find(|f| f.key.as_ref().unwrap().last_rotated.to_string() == old).unwrap()
            };
            if i < 3 {
                assert_eq!(ours.verdict, *verdict, "case {i}");
            }
            prints.push((ours.fingerprint(&aws), all.iter().map(|f| f.fingerprint(&aws)).collect::<Vec<_>>()));
        }
        assert!(prints[..3].iter().all(|(p, _)| *p == prints[0].0), "pass, warn, fail: one key, one fingerprint");
        assert_eq!(prints[0].0.len(), 64);
        // The newer key: slot 2 in the first runs, slot 1 once the older one is gone.
        assert_eq!(prints[0].1[1], prints[3].1[0], "the slot shift keeps the newer key's fingerprint");
        assert_ne!(prints[0].1[0], prints[0].1[1], "two keys, two fingerprints");
        let other_partition = findings(&[(KeySlot::One, None, old)], "2026-11-28T00:00:00Z")[0]
            .fingerprint(&Partition::from_arn("arn:aws-cn:iam::x").unwrap());
        assert_ne!(prints[0].0, other_partition);
    }

    /// Issue "Owners hear about their keys": a deadline is the later of the first sighting and the rule's own due
    /// date, plus the grace of the rule's severity; only findings that count have one.
    #[test]
    fn a_deadline_starts_at_the_later_of_first_sighting_and_the_rules_due_date() {
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        let as_of = "2026-11-28T12:00:00Z";
        // Rotated 2026-07-01: KA-IAM-001 falls due 90 days later, on 2026-09-29T12:00:00Z.
        let base = findings(&[(KeySlot::One, None, "2026-07-01T12:00:00Z")], as_of).remove(0);
        assert_eq!(base.rule_due(), Some(ts("2026-09-29T12:00:00Z")));
        let grace = GraceDays { critical: 7, high: 14, medium: 30, low: 30 };
        let with = |first_seen: Option<&str>, verdict: Verdict, suppressed: bool| {
            let mut f = base.clone();
            f.first_seen = first_seen.map(ts);
            f.verdict = verdict;
            f.suppression = suppressed.then(|| AppliedSuppression {
                entry: "e".into(),
                reason: "r".into(),
                owner: "o".into(),
                expires: jiff::civil::date(2027, 1, 1),
            });
            f.due(ts(as_of), &grace)
        };
        let cases = [
            // Seen before it fell due: the rule's date plus 30 days.
            (Some("2026-08-01T00:00:00Z"), Verdict::Fail, false, Some("2026-10-29T23:59:59Z")),
            // First seen by this run, after it fell due: this run plus 30 days, through the end of that day (UTC).
            (None, Verdict::Fail, false, Some("2026-12-28T23:59:59Z")),
            (Some("2026-11-01T00:00:00Z"), Verdict::Fail, false, Some("2026-12-01T23:59:59Z")),
            (Some("2026-11-01T23:59:59Z"), Verdict::Fail, false, Some("2026-12-01T23:59:59Z")),
            (Some("2026-08-01T00:00:00Z"), Verdict::Warn, false, Some("2026-10-29T23:59:59Z")),
            (Some("2026-08-01T00:00:00Z"), Verdict::Pass, false, None),
            (Some("2026-08-01T00:00:00Z"), Verdict::Fail, true, None),
        ];
        for (first_seen, verdict, suppressed, due) in cases {
            assert_eq!(with(first_seen, verdict, suppressed), due.map(ts), "{first_seen:?} {verdict:?} {suppressed}");
        }
        assert!(RuleConfig::default().with_grace_days(GraceDays { critical: 3651, ..GraceDays::DEFAULT }).is_err());
    }

    #[test]
    fn a_deadline_is_the_end_of_its_day_in_the_zone_and_days_are_calendar_days() {
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        let zone = |name: &str| TimeZone::get(name).unwrap();
        let t = ts("2026-12-28T12:00:00Z");
        assert_eq!(end_of_day(t, &TimeZone::UTC), ts("2026-12-28T23:59:59Z"));
        // 12:00 UTC is already the 29th at UTC+14, still the 28th in Los Angeles.
        assert_eq!(end_of_day(t, &zone("Pacific/Kiritimati")), ts("2026-12-29T09:59:59Z"));
        assert_eq!(end_of_day(t, &zone("America/Los_Angeles")), ts("2026-12-29T07:59:59Z"));
        // A day of 23 hours (Europe/Berlin, the last Sunday of March).
        assert_eq!(end_of_day(ts("2027-03-28T05:00:00Z"), &zone("Europe/Berlin")), ts("2027-03-28T21:59:59Z"));
        assert_eq!(start_of_day(ts("2027-03-28T05:00:00Z"), &zone("Europe/Berlin")), ts("2027-03-27T23:00:00Z"));
        let utc = &TimeZone::UTC;
        assert_eq!(calendar_days(ts("2026-11-28T12:00:00Z"), ts("2026-12-28T23:59:59Z"), utc), 30);
        assert_eq!(calendar_days(ts("2026-12-28T23:59:59Z"), ts("2026-12-29T00:00:00Z"), utc), 1, "one second past");
        assert_eq!(calendar_days(ts("2026-12-28T23:59:59Z"), ts("2026-12-28T08:00:00Z"), utc), 0, "the due day itself");
    }

    #[test]
    fn two_keys_rotated_in_the_same_second_are_told_apart_by_slot() {
        let same = "2026-01-01T00:00:00Z";
        let all = findings(&[(KeySlot::One, None, same), (KeySlot::Two, None, same)], "2026-11-28T00:00:00Z");
        let aws = Partition::aws();
        assert_ne!(all[0].fingerprint(&aws), all[1].fingerprint(&aws));
        assert_eq!(all[0].key.as_ref().unwrap().identity(), "rotated:1767225600|slot:1");
        let alone = findings(&[(KeySlot::Two, None, same)], "2026-11-28T00:00:00Z");
        assert_eq!(alone[0].key.as_ref().unwrap().identity(), "rotated:1767225600");
    }
}
