//! The finding model: what a rule's evaluation produces and every later step reads (verdict, evidence, key facts,
//! the finding with its triage, applied exception and baseline state). Plain data and its own arithmetic (ages,
//! deadlines, fingerprints); the logic that produces it sits above: evaluation (`eval`), triage, exceptions
//! (`suppress`), the baseline.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::ModelError;
use crate::ids::{AccessKeyId, AccountId, Partition};
use crate::inventory::{CredentialUser, KeyChange, KeySlot, KeySlotRecord, KeyStatus, Owner};
use crate::rules::meta::{RuleMeta, Severity};

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
    pub fn of(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }

    /// Each severity with its days, from critical down.
    pub fn by_severity(&self) -> [(Severity, u32); 4] {
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
    pub fn since_last_run(&self) -> Option<SinceLastRun> {
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

/// How a finding compares with the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineState {
    /// Not in the baseline.
    New,
    /// In the baseline with the same verdict.
    Unchanged,
    /// In the baseline with another verdict.
    Updated {
        /// The baseline's verdict.
        was: Verdict,
    },
}

impl BaselineState {
    /// `new`, `unchanged` or `updated`.
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineState::New => "new",
            BaselineState::Unchanged => "unchanged",
            BaselineState::Updated { .. } => "updated",
        }
    }

    /// The baseline's verdict (`None` for a new finding), given the current one.
    pub fn was(self, now: Verdict) -> Option<Verdict> {
        match self {
            BaselineState::New => None,
            BaselineState::Unchanged => Some(now),
            BaselineState::Updated { was } => Some(was),
        }
    }
}

/// Where a finding stands since the last run, in the words "Since the last run" counts with (the table's headline
/// and rows, the JSON report's `since_last_run` and `summary.since_baseline`, the HTML report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinceLastRun {
    /// Fails or warns now, and did not in the last run (new, or passing then).
    New,
    /// Failed or warned in the last run and still does (its verdict may have changed: warn → fail).
    StillOpen,
    /// Failed or warned in the last run and no longer does.
    Resolved,
}

impl SinceLastRun {
    /// `new`, `still_open` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            SinceLastRun::New => "new",
            SinceLastRun::StillOpen => "still_open",
            SinceLastRun::Resolved => "resolved",
        }
    }

    /// `new`, `still open` or `resolved`: the words of the table and the HTML report.
    pub fn words(self) -> &'static str {
        match self {
            SinceLastRun::New => "new",
            SinceLastRun::StillOpen => "still open",
            SinceLastRun::Resolved => "resolved",
        }
    }
}

impl BaselineState {
    /// Where a finding of this run with verdict `now` stands since the last run: `None` when there is nothing to
    /// say (passing then and now) or when an exception covers a failing or warning finding (it counts nowhere).
    pub fn since_last_run(self, now: Verdict, suppressed: bool) -> Option<SinceLastRun> {
        let was_open = self.was(now).is_some_and(Verdict::is_actionable);
        match (now.is_actionable(), was_open) {
            (true, _) if suppressed => None,
            (true, true) => Some(SinceLastRun::StillOpen),
            (true, false) => Some(SinceLastRun::New),
            (false, true) => Some(SinceLastRun::Resolved),
            (false, false) => None,
        }
    }
}

/// The exception a finding is under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedSuppression {
    /// The entry's label (name or `#N`).
    pub entry: String,
    /// Its reason.
    pub reason: String,
    /// Its owner.
    pub owner: String,
    /// Its last day.
    pub expires: Date,
}

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
