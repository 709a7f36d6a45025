//! The org-wide report model: every account with exactly one status, every finding, and the run's facts.
//! Output writers map this model to their own types; nothing here is serialised directly.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

pub use crate::account::{AccessMethod, Account, AccountState};
use crate::comparison::Comparison;
use crate::finding::{Finding, RuleConfig, Verdict};
use crate::ids::{AccountId, Partition};
use crate::inventory::{AccountInventory, KeySlot};
use crate::rules::meta::RuleMeta;
use crate::suppress::{EntryStatus, Suppressions};

/// Why an account could not be assessed. The codes are stable and machine-readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureCode {
    /// AssumeRole was denied (missing role, trust policy, SCP, external id).
    AssumeRoleDenied,
    /// AssumeRole failed for another reason.
    AssumeRoleError,
    /// The credential report could not be generated or fetched within the budget.
    ReportUnavailable,
    /// AWS kept throttling after the retry budget was spent.
    Throttled,
    /// The account did not finish within the per-account timeout.
    Timeout,
    /// An IAM call was denied.
    AccessDenied,
    /// The credential report could not be parsed.
    MalformedReport,
    /// The scan was interrupted before the account finished.
    Interrupted,
    /// Organizations reports a `State` this version does not know: not assessed, never assumed closed.
    UnknownState,
    /// Any other error.
    Error,
}

impl FailureCode {
    /// Snake-case code used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssumeRoleDenied => "assume_role_denied",
            Self::AssumeRoleError => "assume_role_error",
            Self::ReportUnavailable => "report_unavailable",
            Self::Throttled => "throttled",
            Self::Timeout => "timeout",
            Self::AccessDenied => "access_denied",
            Self::MalformedReport => "malformed_report",
            Self::Interrupted => "interrupted",
            Self::UnknownState => "unknown_state",
            Self::Error => "error",
        }
    }

    /// Every code.
    pub const ALL: [FailureCode; 10] = [
        Self::AssumeRoleDenied,
        Self::AssumeRoleError,
        Self::ReportUnavailable,
        Self::Throttled,
        Self::Timeout,
        Self::AccessDenied,
        Self::MalformedReport,
        Self::Interrupted,
        Self::UnknownState,
        Self::Error,
    ];

    /// Parses [`FailureCode::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Why an account failed: a stable code, the AWS action and error code when there is one, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReason {
    /// Stable code.
    pub code: FailureCode,
    /// The IAM/STS action involved, e.g. `sts:AssumeRole`.
    pub action: Option<Cow<'static, str>>,
    /// The AWS error code, e.g. `AccessDenied`.
    pub aws_error_code: Option<String>,
    /// Human explanation (never contains credentials).
    pub message: String,
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.action.as_deref(), &self.aws_error_code) {
            (Some(action), Some(code)) => write!(f, "{action} {code}: {}", self.message),
            (Some(action), None) => write!(f, "{action}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Why an account was deliberately not scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The account's state is not ACTIVE.
    NotActive(AccountState),
}

impl SkipReason {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::NotActive(_) => "not_active",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotActive(state) => {
                write!(f, "account state is {}; only ACTIVE accounts are scanned", state.as_str())
            }
        }
    }
}

/// How many access keys an account's credential report lists, whatever rules ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTally {
    /// Key slots holding a key.
    pub total: usize,
    /// Of which active as last seen (not deactivated or deleted since the report).
    pub active: usize,
}

impl KeyTally {
    /// Counts the keys of an inventory.
    pub fn of(inv: &AccountInventory) -> Self {
        let keys = inv.users.iter().flat_map(|u| &u.keys);
        Self {
            total: keys.clone().count(),
            active: keys
                .filter(|k| k.current_status() == crate::inventory::KeyStatus::Active && k.change.is_none())
                .count(),
        }
    }
}

/// The one status each account ends in.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountStatus {
    /// Assessed; its findings are in the report.
    Scanned {
        /// When AWS generated the credential report used.
        report_generated_at: Option<Timestamp>,
        /// The keys its credential report lists.
        keys: KeyTally,
        /// How far the optional look-ups (key ids, owners) got; the verdicts never depend on it.
        enrichment: Enrichment,
    },
    /// Deliberately not scanned.
    Skipped(SkipReason),
    /// Could not be assessed. Never counts as passing.
    Failed(FailureReason),
}

impl AccountStatus {
    /// `scanned`, `skipped` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountStatus::Scanned { .. } => "scanned",
            AccountStatus::Skipped(_) => "skipped",
            AccountStatus::Failed(_) => "failed",
        }
    }
}

/// How far an account's optional look-ups (key ids, owner tags) got within their budget. Verdicts come from the
/// credential report and never wait for these: a look-up that did not happen leaves `access_key_id` (or the owner)
/// empty, nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enrichment {
    /// Users whose look-up was wanted (key ids and owners counted separately).
    pub wanted: u32,
    /// Of which answered.
    pub done: u32,
}

impl Enrichment {
    /// `complete` (every wanted look-up answered, or none wanted), `partial`, or `skipped` (none answered).
    pub fn status(&self) -> &'static str {
        if self.done >= self.wanted {
            "complete"
        } else if self.done == 0 {
            "skipped"
        } else {
            "partial"
        }
    }

    /// Whether every wanted look-up was answered.
    pub fn is_complete(&self) -> bool {
        self.done >= self.wanted
    }
}

/// Operational figures for one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountStats {
    /// AWS API operations called for this account (STS and IAM), counted once per operation.
    pub api_calls: u32,
    /// Of which `ListAccessKeys` calls made to attach key ids.
    pub enrichment_calls: u32,
    /// Of which `ListUserTags` calls made to find owners.
    pub tag_calls: u32,
    /// Retries made by keyaudit for credential-report semantics (LimitExceeded, ReportInProgress, …).
    pub report_retries: u32,
    /// IAM request attempts the SDK retried (throttling, 5xx), beyond one per operation.
    pub sdk_retries: u32,
    /// Milliseconds from start to end of the account's scan.
    pub duration_ms: u64,
}

/// One account's line in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    /// The account.
    pub account: Account,
    /// Its status.
    pub status: AccountStatus,
    /// Operational figures.
    pub stats: AccountStats,
}

/// Whether the run audited an organization or a single account outside one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// An organization, discovered from its management or delegated-admin account.
    Organization {
        /// `o-…`.
        id: String,
        /// The management account.
        management_account_id: AccountId,
    },
    /// The caller's account is not in an organization: only that account was scanned.
    StandaloneAccount,
    /// Several scans combined by `keyaudit merge`, each organization (or standalone account) with its own facts.
    Merged(Vec<Part>),
}

impl Scope {
    /// The organization's management account (`None` for a standalone account).
    pub fn management_account_id(&self) -> Option<&AccountId> {
        match self {
            Scope::Organization { management_account_id, .. } => Some(management_account_id),
            Scope::StandaloneAccount | Scope::Merged(_) => None,
        }
    }

    /// The organization's id (`None` for a standalone account and a merged report).
    pub fn organization_id(&self) -> Option<&str> {
        match self {
            Scope::Organization { id, .. } => Some(id),
            Scope::StandaloneAccount | Scope::Merged(_) => None,
        }
    }
}

/// The local clock against AWS's, read from the `Date` of the first STS answer (to the second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockCheck {
    /// The local clock when the answer arrived.
    pub local: Timestamp,
    /// AWS's clock, from the answer's `Date` header.
    pub aws: Timestamp,
}

impl ClockCheck {
    /// More skew than this is worth a warning: ages, due dates and the default `as_of` come from the local clock.
    pub const TOLERANCE: SignedDuration = SignedDuration::from_secs(60);

    /// How far the local clock is ahead of AWS's (negative: behind).
    pub fn skew(&self) -> SignedDuration {
        self.local.duration_since(self.aws)
    }

    /// Whether the skew is over [`ClockCheck::TOLERANCE`] either way.
    pub fn is_skewed(&self) -> bool {
        self.skew().abs() > Self::TOLERANCE
    }
}

/// Who ran a scan, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The caller's ARN (GetCallerIdentity).
    pub caller_arn: String,
    /// The caller's account.
    pub caller_account_id: AccountId,
    /// The region the API endpoints were resolved in (IAM is global; exports such as ASFF need one).
    pub region: String,
}

/// One organization's scan inside a merged report, with the accounts it selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// That scan's run facts (its own `as_of`, caller and region).
    pub run: RunInfo,
    /// The accounts of the merged report that came from it.
    pub accounts: BTreeSet<AccountId>,
}

/// Facts about the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// The instant all ages are measured against.
    pub as_of: Timestamp,
    /// Wall-clock start.
    pub started_at: Timestamp,
    /// Wall-clock end.
    pub finished_at: Timestamp,
    /// The rule settings.
    pub config: RuleConfig,
    /// What was audited.
    pub scope: Scope,
    /// Who ran the scan, and where; `None` only in a merged report, whose organizations each have their own.
    pub origin: Option<Origin>,
    /// The partition.
    pub partition: Partition,
    /// Accounts in the organization before filters (1 for a standalone account); when discovery was interrupted,
    /// the accounts found by then.
    pub accounts_discovered: usize,
    /// Whether discovery finished: an interrupted one leaves accounts it had not found yet out of the report.
    pub discovery_complete: bool,
    /// The local clock against AWS's, when AWS's answer carried a `Date`.
    pub clock: Option<ClockCheck>,
}

/// The whole org-wide report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Run facts.
    pub run: RunInfo,
    /// The rules that ran, in registration order.
    pub rules: Vec<&'static RuleMeta>,
    /// Every selected account, in account-id order.
    pub accounts: Vec<AccountRecord>,
    /// Every finding, in (account, user, slot, rule) order; a user-level finding comes before its user's keys.
    pub findings: Vec<Finding>,
    /// Each exception's standing, when `--suppressions` was given.
    pub suppressions: Option<Vec<EntryStatus>>,
    /// The change since the baseline, when `--baseline` was given.
    pub comparison: Option<Comparison>,
}

/// Findings (or keys) by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerdictCounts {
    /// `fail`.
    pub fail: usize,
    /// `warn`.
    pub warn: usize,
    /// `pass`.
    pub pass: usize,
    /// `not_applicable`.
    pub not_applicable: usize,
    /// `resolved`.
    pub resolved: usize,
}

impl VerdictCounts {
    /// Counts one more `verdict`.
    pub fn add(&mut self, verdict: Verdict) {
        *match verdict {
            Verdict::Fail => &mut self.fail,
            Verdict::Warn => &mut self.warn,
            Verdict::Pass => &mut self.pass,
            Verdict::NotApplicable => &mut self.not_applicable,
            Verdict::Resolved => &mut self.resolved,
        } += 1;
    }
}

/// How one access key counts across its findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyStanding {
    /// Its worst verdict outside exceptions (`None`: every finding of it is under one).
    pub worst: Option<Verdict>,
    /// An exception holds one of its failing or warning findings.
    pub excepted: bool,
}

impl KeyStanding {
    /// The verdict the key is counted under, or `None` when it counts as under exceptions: exceptions hold its
    /// failing or warning findings and none fails or warns outside one. Every key counts once.
    pub fn counted(&self) -> Option<Verdict> {
        self.worst.filter(|v| v.is_actionable() || !self.excepted)
    }
}

/// Counts derived from a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Selected accounts.
    pub accounts_total: usize,
    /// Scanned accounts.
    pub accounts_scanned: usize,
    /// Skipped accounts.
    pub accounts_skipped: usize,
    /// Failed accounts.
    pub accounts_failed: usize,
    /// Failed accounts by reason code.
    pub failures_by_code: BTreeMap<&'static str, usize>,
    /// Key slots found in the scanned accounts' credential reports.
    pub keys_total: usize,
    /// Of which active as last seen.
    pub keys_active: usize,
    /// Keys with key-level findings, each counted once under its worst verdict across the rules that ran, its
    /// findings under an exception left out.
    pub keys: VerdictCounts,
    /// Keys whose failing or warning findings are all under an exception (and none fails or warns outside one):
    /// counted here, not in `keys`, so that every key is counted once.
    pub keys_suppressed: usize,
    /// Findings by rule id, then verdict.
    pub findings_by_rule: BTreeMap<&'static str, VerdictCounts>,
    /// Findings of every rule by verdict.
    pub findings: VerdictCounts,
    /// Findings with something to do, by triage action (`deactivate`, `rotate`, …).
    pub actions: BTreeMap<&'static str, usize>,
    /// Findings under an exception, by verdict; every other count leaves them out.
    pub suppressed: VerdictCounts,
}

impl Report {
    /// Puts every failing or warning finding that no exception covers yet under the first of `exceptions` in force at
    /// its scan's `as_of` — what a scan does ([`annotate`], [`Suppressions::find`]), for a saved report that carries
    /// its own run's exceptions and gets a plan's `--suppressions` as well.
    pub fn apply_exceptions(&mut self, exceptions: &Suppressions) {
        let accounts: BTreeMap<&AccountId, &Account> =
            self.accounts.iter().map(|r| (&r.account.id, &r.account)).collect();
        let runs: Vec<(AccountId, Timestamp)> =
            self.findings.iter().map(|f| (f.account_id.clone(), self.run_of(f.account_id.as_str()).as_of)).collect();
        let partition = &self.run.partition;
        for (f, (account, as_of)) in self.findings.iter_mut().zip(runs) {
            if f.suppression.is_none() {
                let fingerprint = f.fingerprint(partition);
                f.suppression = exceptions.find(f, &fingerprint, accounts.get(&account).copied(), as_of);
            }
        }
    }
}

/// The level from which findings make the run fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Only `fail` findings.
    Fail,
    /// `warn` and `fail` findings.
    Warn,
    /// Only newly failing findings: `fail` findings that did not fail in the baseline (new ones, and ones that
    /// warned then).
    NewlyFailing,
}

/// The run's outcome, as the exit code reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every selected account assessed (or skipped) and nothing at or above the fail-on level.
    Clean,
    /// Findings at or above the fail-on level.
    Findings,
    /// At least one account could not be assessed: the report cannot claim compliance.
    Incomplete,
}

impl Report {
    /// The scans the report holds: its own run, or each organization's of a merged report.
    pub fn runs(&self) -> Vec<&RunInfo> {
        match &self.run.scope {
            Scope::Merged(parts) => parts.iter().map(|p| &p.run).collect(),
            _ => vec![&self.run],
        }
    }

    /// The scan an account comes from: its organization's in a merged report, else the report's own run.
    pub fn run_of(&self, account: &str) -> &RunInfo {
        match &self.run.scope {
            Scope::Merged(parts) => parts.iter().find(|p| p.accounts.contains(account)).map_or(&self.run, |p| &p.run),
            _ => &self.run,
        }
    }

    /// Sorts accounts and findings into their documented order.
    pub fn normalize(&mut self) {
        self.accounts.sort_by(|a, b| a.account.id.cmp(&b.account.id));
        let order = |f: &Finding| -> (AccountId, String, Option<KeySlot>, &'static str) {
            (f.account_id.clone(), f.user_name.clone(), f.key.as_ref().map(|k| k.slot), f.rule.id)
        };
        self.findings.sort_by_cached_key(order);
    }

    /// Counts accounts, keys and findings.
    pub fn summary(&self) -> Summary {
        let mut s = Summary { accounts_total: self.accounts.len(), ..Summary::default() };
        for rule in &self.rules {
            s.findings_by_rule.insert(rule.id, VerdictCounts::default());
        }
        for record in &self.accounts {
            match &record.status {
                AccountStatus::Scanned { keys, .. } => {
                    s.accounts_scanned += 1;
                    s.keys_total += keys.total;
                    s.keys_active += keys.active;
                }
                AccountStatus::Skipped(_) => s.accounts_skipped += 1,
                AccountStatus::Failed(reason) => {
                    s.accounts_failed += 1;
                    *s.failures_by_code.entry(reason.code.as_str()).or_default() += 1;
                }
            }
        }
        for f in &self.findings {
            if f.suppression.is_some() {
                s.suppressed.add(f.verdict);
                continue;
            }
            s.findings.add(f.verdict);
            if f.triage.action != crate::triage::Action::None {
                *s.actions.entry(f.triage.action.as_str()).or_default() += 1;
            }
            s.findings_by_rule.entry(f.rule.id).or_default().add(f.verdict);
        }
        for standing in self.key_standings().into_values() {
            match standing.counted() {
                Some(verdict) => s.keys.add(verdict),
                None => s.keys_suppressed += 1,
            }
        }
        s
    }

    /// Every access key with key-level findings, once, with how it counts (the summary's `keys` and
    /// `keys_suppressed`, the HTML page's age chart).
    pub fn key_standings(&self) -> BTreeMap<(&AccountId, &str, KeySlot), KeyStanding> {
        let mut keys: BTreeMap<(&AccountId, &str, KeySlot), KeyStanding> = BTreeMap::new();
        for f in &self.findings {
            let Some(key) = &f.key else { continue };
            let standing = keys.entry((&f.account_id, f.user_arn.as_str(), key.slot)).or_default();
            if f.suppression.is_none() {
                standing.worst = Some(standing.worst.map_or(f.verdict, |v| v.min(f.verdict)));
            } else {
                standing.excepted |= f.verdict.is_actionable();
            }
        }
        keys
    }

    /// The outcome: an incomplete scan takes precedence over findings, since it cannot claim compliance.
    pub fn outcome(&self, fail_on: FailOn) -> Outcome {
        let counts = |f: &&Finding| match fail_on {
            FailOn::Fail => f.verdict == Verdict::Fail,
            FailOn::Warn => f.verdict.is_actionable(),
            FailOn::NewlyFailing => f.is_newly_failing(),
        };
        let failed = self.accounts.iter().any(|r| matches!(r.status, AccountStatus::Failed(_)));
        if failed || !self.run.discovery_complete {
            Outcome::Incomplete
        } else if self.findings.iter().filter(|f| f.suppression.is_none()).any(|f| counts(&f)) {
            Outcome::Findings
        } else {
            Outcome::Clean
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn record(id: &str, status: AccountStatus) -> AccountRecord {
        AccountRecord {
            account: Account {
                id: AccountId::parse(id).unwrap(),
                name: Some(format!("acct-{id}")),
                ou_path: Some("/Root".into()),
                state: AccountState::Active,
                access: AccessMethod::CallerCredentials,
            },
            status,
            stats: AccountStats::default(),
        }
    }

    fn rule(id: &str) -> &'static RuleMeta {
        crate::rules::builtin().find(id).unwrap()
    }

    /// A finding of `rule` on key slot `slot` of user `u` (a user-level one when `slot` is `None`).
    fn finding_of(account: &str, rule_id: &str, slot: Option<KeySlot>, verdict: Verdict) -> Finding {
        use crate::eval::{Evidence, KeyFacts};
        use crate::inventory::{KeyChange, KeyStatus};
        let key = slot.map(|slot| KeyFacts {
            slot,
            access_key_id: None,
            status: if verdict == Verdict::NotApplicable { KeyStatus::Inactive } else { KeyStatus::Active },
            change: (verdict == Verdict::Resolved).then_some(KeyChange::Deleted),
            last_rotated: ts("2026-01-01T00:00:00Z"),
            created_at: None,
            last_used_at: None,
            last_used_service: None,
            last_used_region: None,
            age: SignedDuration::ZERO,
            age_source: crate::eval::AgeSource::LastRotated,
            shares_rotation_second: false,
        });
        Finding {
            rule: rule(rule_id),
            account_id: AccountId::parse(account).unwrap(),
            user_name: "u".into(),
            user_arn: "arn:aws:iam::000000000001:user/u".into(),
            key,
            evidence: Evidence::RootKey,
            verdict,
            message: String::new(),
            triage: Default::default(),
            owner: None,
            suppression: None,
            baseline_state: None,
            first_seen: None,
        }
    }

    fn finding(account: &str, verdict: Verdict) -> Finding {
        finding_of(account, "KA-IAM-001", Some(KeySlot::One), verdict)
    }

    fn report(accounts: Vec<AccountRecord>, findings: Vec<Finding>) -> Report {
        Report {
            run: RunInfo {
                as_of: ts("2026-11-28T00:00:00Z"),
                started_at: ts("2026-11-28T00:00:00Z"),
                finished_at: ts("2026-11-28T00:00:01Z"),
                config: RuleConfig::default(),
                scope: Scope::StandaloneAccount,
                origin: Some(Origin {
                    caller_arn: "arn:aws:iam::000000000001:user/admin".into(),
                    caller_account_id: AccountId::parse("000000000001").unwrap(),
                    region: "us-east-1".into(),
                }),
                partition: Partition::aws(),
                accounts_discovered: accounts.len(),
                discovery_complete: true,
                clock: None,
            },
            rules: crate::rules::builtin().metas(),
            accounts,
            findings,
            suppressions: None,
            comparison: None,
        }
    }

    fn failed() -> AccountStatus {
        AccountStatus::Failed(FailureReason {
            code: FailureCode::AssumeRoleDenied,
            action: Some("sts:AssumeRole".into()),
            aws_error_code: Some("AccessDenied".into()),
            message: "not authorized".into(),
        })
    }

    #[test]
    fn outcomes_follow_the_documented_precedence() {
        let scanned = || AccountStatus::Scanned {
            report_generated_at: None,
            keys: KeyTally::default(),
            enrichment: Enrichment::default(),
        };
        let cases = [
            (vec![scanned()], vec![Verdict::Pass, Verdict::NotApplicable], FailOn::Fail, Outcome::Clean),
            (vec![scanned()], vec![Verdict::Resolved], FailOn::Warn, Outcome::Clean),
            (vec![scanned()], vec![Verdict::Warn], FailOn::Fail, Outcome::Clean),
            (vec![scanned()], vec![Verdict::Warn], FailOn::Warn, Outcome::Findings),
            (vec![scanned()], vec![Verdict::Fail], FailOn::Fail, Outcome::Findings),
            (vec![scanned(), failed()], vec![Verdict::Fail], FailOn::Fail, Outcome::Incomplete),
            (vec![failed()], vec![], FailOn::Fail, Outcome::Incomplete),
            (
                vec![AccountStatus::Skipped(SkipReason::NotActive(AccountState::Suspended))],
                vec![],
                FailOn::Fail,
                Outcome::Clean,
            ),
        ];
        for (i, (statuses, verdicts, fail_on, expected)) in cases.into_iter().enumerate() {
            let accounts =
                statuses.into_iter().enumerate().map(|(n, st)| record(&format!("00000000000{}", n + 1), st)).collect();
            let findings = verdicts.into_iter().map(|v| finding("000000000001", v)).collect();
            assert_eq!(report(accounts, findings).outcome(fail_on), expected, "case {i}");
        }
    }

    #[test]
    fn suppressed_findings_and_known_debt_do_not_fail_the_run() {
        use crate::baseline::BaselineState;
        use crate::suppress::AppliedSuppression;
        let scanned = || AccountStatus::Scanned {
            report_generated_at: None,
            keys: KeyTally::default(),
            enrichment: Enrichment::default(),
        };
        let suppressed = |mut f: Finding| {
            f.suppression = Some(AppliedSuppression {
                entry: "vendor".into(),
                reason: "contract".into(),
                owner: "sec".into(),
                expires: "2027-01-01".parse().unwrap(),
            });
            f
        };
        let state = |s: BaselineState, mut f: Finding| {
            f.baseline_state = Some(s);
            f
        };
        let fail = || finding("000000000001", Verdict::Fail);
        let warn = || finding("000000000001", Verdict::Warn);
        let cases = [
            (vec![suppressed(fail())], FailOn::Fail, Outcome::Clean),
            (vec![suppressed(warn())], FailOn::Warn, Outcome::Clean),
            (vec![state(BaselineState::Unchanged, fail())], FailOn::NewlyFailing, Outcome::Clean),
            (vec![state(BaselineState::Unchanged, fail())], FailOn::Fail, Outcome::Findings),
            (vec![state(BaselineState::New, fail())], FailOn::NewlyFailing, Outcome::Findings),
            (vec![state(BaselineState::New, suppressed(fail()))], FailOn::NewlyFailing, Outcome::Clean),
            (vec![state(BaselineState::New, warn())], FailOn::NewlyFailing, Outcome::Clean),
            (
                vec![state(BaselineState::Updated { was: Verdict::Warn }, fail())],
                FailOn::NewlyFailing,
                Outcome::Findings,
            ),
            (vec![state(BaselineState::Updated { was: Verdict::Fail }, warn())], FailOn::NewlyFailing, Outcome::Clean),
        ];
        for (i, (findings, fail_on, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                report(vec![record("000000000001", scanned())], findings).outcome(fail_on),
                expected,
                "case {i}"
            );
        }
        let r = report(vec![record("000000000001", failed())], vec![suppressed(fail())]);
        assert_eq!(r.outcome(FailOn::Fail), Outcome::Incomplete, "a failed account is never suppressed into passing");
        let s = report(vec![record("000000000001", scanned())], vec![suppressed(fail()), warn()]).summary();
        assert_eq!((s.findings.fail, s.findings.warn, s.suppressed.fail), (0, 1, 1));
    }

    #[test]
    fn summary_counts_every_status_and_verdict() {
        let scanned = AccountStatus::Scanned {
            report_generated_at: None,
            keys: KeyTally { total: 3, active: 1 },
            enrichment: Enrichment::default(),
        };
        let r = report(
            vec![
                record("000000000001", scanned),
                record("000000000002", failed()),
                record("000000000003", AccountStatus::Skipped(SkipReason::NotActive(AccountState::Closed))),
            ],
            vec![
                finding("000000000001", Verdict::Fail),
                finding_of("000000000001", "KA-IAM-001", Some(KeySlot::Two), Verdict::NotApplicable),
                finding_of("000000000001", "KA-IAM-004", Some(KeySlot::Two), Verdict::NotApplicable),
                finding_of("000000000001", "KA-IAM-001", None, Verdict::Resolved),
            ],
        );
        let s = r.summary();
        assert_eq!((s.accounts_total, s.accounts_scanned, s.accounts_failed, s.accounts_skipped), (3, 1, 1, 1));
        assert_eq!((s.keys_total, s.keys_active), (3, 1), "keys come from the credential reports, not from findings");
        assert_eq!(s.findings_by_rule["KA-IAM-004"], VerdictCounts { not_applicable: 1, ..VerdictCounts::default() });
        assert_eq!(s.findings_by_rule["KA-IAM-002"], VerdictCounts::default(), "a rule that ran and found nothing");
        assert_eq!(s.failures_by_code.get("assume_role_denied"), Some(&1));
    }

    #[test]
    fn a_key_with_findings_of_several_rules_counts_once_under_its_worst_verdict() {
        let account = "000000000001";
        let r = report(
            vec![record(
                account,
                AccountStatus::Scanned {
                    report_generated_at: None,
                    keys: KeyTally { total: 2, active: 2 },
                    enrichment: Enrichment::default(),
                },
            )],
            vec![
                finding_of(account, "KA-IAM-001", Some(KeySlot::One), Verdict::Pass),
                finding_of(account, "KA-IAM-004", Some(KeySlot::One), Verdict::Fail),
                finding_of(account, "KA-IAM-001", Some(KeySlot::Two), Verdict::Warn),
                finding_of(account, "KA-IAM-004", Some(KeySlot::Two), Verdict::Pass),
                finding_of(account, "KA-IAM-003", None, Verdict::Fail),
            ],
        );
        let s = r.summary();
        assert_eq!(s.keys, VerdictCounts { fail: 1, warn: 1, ..VerdictCounts::default() });
        assert_eq!(s.findings, VerdictCounts { fail: 2, warn: 1, pass: 2, ..VerdictCounts::default() });
        assert_eq!(r.outcome(FailOn::Fail), Outcome::Findings);
    }

    #[test]
    fn a_clock_more_than_a_minute_off_either_way_is_skewed() {
        let aws = ts("2026-11-28T12:00:00Z");
        let cases = [(0, false), (60, false), (-60, false), (61, true), (-61, true), (3600, true)];
        for (secs, skewed) in cases {
            let check = ClockCheck { local: aws + SignedDuration::from_secs(secs), aws };
            assert_eq!(check.skew(), SignedDuration::from_secs(secs));
            assert_eq!(check.is_skewed(), skewed, "{secs} s");
        }
    }

    #[test]
    fn failure_reasons_read_as_action_code_message() {
        let AccountStatus::Failed(reason) = failed() else { unreachable!() };
        assert_eq!(reason.to_string(), "sts:AssumeRole AccessDenied: not authorized");
    }
}
