//! The JSON report's types: the contract itself. The writer serialises them (`crate::write` builds them from the
//! core model, borrowing its strings), the reader deserialises them (`crate::read` checks every value into the core
//! model), and `docs/json-schema.json` is generated from them (`crate::json_schema`), with these doc comments as
//! its descriptions. A field is added here once, with its conversions beside it.
//!
//! Fields may be added within `schema_version` 1; none is removed or renamed. Every field is always written (null
//! when absent); the reader takes a missing optional field as null.

use std::borrow::Cow;
use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use keyaudit_core::baseline::{Coverage, SinceLastRun};
use keyaudit_core::eval::{AgeSource, Subject, Verdict};
use keyaudit_core::inventory::KeyChange;
use keyaudit_core::rules::Severity;
use keyaudit_core::suppress::EntryState;
use keyaudit_core::triage::{Action, Usage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::Tag;

/// Text: borrowed from the model when written, owned when read.
pub type Text<'a> = Cow<'a, str>;

/// A keyaudit JSON report: `keyaudit scan -o json[=PATH]`, `keyaudit merge -o json[=PATH]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report<'a> {
    /// The report without its accounts and findings (also NDJSON's summary line).
    #[serde(flatten)]
    pub header: Header<'a>,
    /// Every selected account, with exactly one status.
    pub accounts: Vec<Account<'a>>,
    /// Every finding of every rule, passing ones included.
    pub findings: Vec<Finding<'a>>,
    /// Findings that failed or warned in the baseline and no longer do; empty without --baseline.
    pub resolved: Vec<ChangedFinding<'a>>,
    /// Each exception's standing after the run; null without --suppressions.
    pub suppressions: Option<Vec<Entry<'a>>>,
    /// The comparison with --baseline; null without one.
    pub baseline: Option<BaselineSection<'a>>,
}

/// The report's version, the tool, the run and the counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Header<'a> {
    /// Bumped only for a breaking change (adding a field is not one).
    #[schemars(extend("const" = crate::SCHEMA_VERSION))]
    pub schema_version: u32,
    /// The program that wrote the report.
    pub tool: Tool<'a>,
    /// The run's facts and settings.
    pub run: Run<'a>,
    /// Counts of accounts, keys and findings.
    pub summary: Summary<'a>,
}

/// The program that wrote the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tool<'a> {
    /// Always `keyaudit`.
    #[schemars(extend("const" = "keyaudit"))]
    pub name: Text<'a>,
    /// Its version.
    pub version: Text<'a>,
}

/// The run's facts and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Run<'a> {
    /// The one instant every age is measured against (--as-of, default: the start of the run); in a merged report
    /// the earliest of the organizations'.
    pub as_of: Timestamp,
    /// Wall-clock start.
    pub started_at: Timestamp,
    /// Wall-clock end.
    pub finished_at: Timestamp,
    /// KA-IAM-001's maximum age (--max-age-days).
    #[schemars(range(min = 1))]
    pub max_age_days: u32,
    /// KA-IAM-001's warning window before it (--warn-days).
    pub warn_days: u32,
    /// KA-IAM-004's threshold (--unused-days).
    #[schemars(range(min = 1))]
    pub unused_days: u32,
    /// Triage's dormant threshold (--dormant-days).
    #[schemars(range(min = 1))]
    pub dormant_days: u32,
    /// How long a failing or warning finding may stay open past the later of its first sighting and its rule's own
    /// due date, by severity (--grace-days): its `due`.
    pub grace_days: GraceDays,
    /// What was scanned, by whom and where (in a merged report every field but `scope` is null: each organization's
    /// are in `organizations`).
    #[serde(flatten)]
    pub scan: Scan<'a>,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: Text<'a>,
    /// How findings' fingerprints are computed; a baseline with another scheme is refused.
    #[schemars(extend("const" = keyaudit_core::eval::FINGERPRINT_SCHEME))]
    pub fingerprint_scheme: Text<'a>,
    /// `interrupted`: Ctrl-C or SIGTERM arrived during discovery; accounts not found by then are not in the report
    /// (the run is incomplete, exit 3). In a merged report, `interrupted` when any organization's was.
    pub discovery: Discovery,
    /// The rules that ran.
    pub rules: Vec<Rule<'a>>,
    /// Each scan the report holds: one for keyaudit scan, one per organization for keyaudit merge, in merge order.
    #[schemars(length(min = 1))]
    pub organizations: Vec<Organization<'a>>,
}

/// Days of grace by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GraceDays {
    /// Critical findings (a root access key).
    #[schemars(range(max = 3650))]
    pub critical: u32,
    /// High.
    #[schemars(range(max = 3650))]
    pub high: u32,
    /// Medium.
    #[schemars(range(max = 3650))]
    pub medium: u32,
    /// Low.
    #[schemars(range(max = 3650))]
    pub low: u32,
}

/// Whether discovery finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Discovery {
    /// Every account was found.
    Complete,
    /// Interrupted: accounts not found by then are missing.
    Interrupted,
}

/// What one scan was of, who ran it and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Scan<'a> {
    /// `merged`: written by keyaudit merge.
    pub scope: ScopeName,
    /// `o-…` (null for a standalone account and at the top of a merged report).
    pub organization_id: Option<Text<'a>>,
    /// The organization's management account.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub management_account_id: Option<Text<'a>>,
    /// The caller (GetCallerIdentity).
    pub caller_arn: Option<Text<'a>>,
    /// The caller's account.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub caller_account_id: Option<Text<'a>>,
    /// The region the endpoints were resolved in.
    pub region: Option<Text<'a>>,
    /// The local clock against AWS's (the Date of the GetCallerIdentity answer); null when AWS sent no Date.
    pub clock: Option<Clock>,
}

/// What a report audits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeName {
    /// An organization.
    Organization,
    /// The caller's account, outside any organization.
    StandaloneAccount,
    /// Several scans combined by keyaudit merge.
    Merged,
}

/// The local clock against AWS's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Clock {
    /// The local clock when AWS's answer arrived.
    pub local: Timestamp,
    /// AWS's clock.
    pub aws: Timestamp,
    /// Local minus AWS; more than 60 either way is warned about.
    pub skew_seconds: i64,
}

/// One scan in `run.organizations`: an organization (or a standalone account), who scanned it, where and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Organization<'a> {
    /// Its scope, caller and region.
    #[serde(flatten)]
    pub scan: Scan<'a>,
    /// This scan's as_of: its findings' ages are measured against it.
    pub as_of: Timestamp,
    /// Wall-clock start.
    pub started_at: Timestamp,
    /// Wall-clock end.
    pub finished_at: Timestamp,
    /// Accounts in the organization before filters.
    pub accounts_discovered: usize,
    /// Whether its discovery finished.
    pub discovery: Discovery,
}

/// A rule that ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rule<'a> {
    /// `KA-IAM-001`.
    pub id: Text<'a>,
    /// `stale-access-key`.
    pub name: Text<'a>,
    /// The passing state.
    pub title: Text<'a>,
    /// A failing finding's severity.
    pub severity: Tag<Severity>,
    /// CIS AWS Foundations controls, one per benchmark version.
    pub cis: Vec<Cis<'a>>,
    /// Security Hub controls.
    pub security_hub: Vec<Text<'a>>,
    /// AWS Config managed rules.
    pub aws_config: Vec<Text<'a>>,
}

/// A control in one CIS benchmark version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cis<'a> {
    /// `5.0.0`.
    pub version: Text<'a>,
    /// `1.13`.
    pub control: Text<'a>,
}

/// Counts of accounts, keys and findings (suppressed findings are counted only in `suppressed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary<'a> {
    /// Accounts by status.
    pub accounts: AccountCounts<'a>,
    /// Keys of the scanned accounts' credential reports, and keys with findings by their worst verdict.
    pub keys: KeyCounts,
    /// Rule id -> findings by verdict, for every rule that ran.
    pub findings_by_rule: BTreeMap<Text<'a>, Counts>,
    /// Findings with something to do, by triage action.
    pub actions: BTreeMap<Text<'a>, usize>,
    /// Findings under an exception, by verdict; every other count leaves them out.
    pub suppressed: Counts,
    /// "Since the last run" (null without --baseline).
    pub since_baseline: Option<Since>,
}

/// Accounts by status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountCounts<'a> {
    /// Accounts in the organization before filters.
    pub discovered: usize,
    /// Accounts selected (every account in the report).
    pub selected: usize,
    /// Of which scanned.
    pub scanned: usize,
    /// Skipped (not ACTIVE).
    pub skipped: usize,
    /// Not assessed.
    pub failed: usize,
    /// Not assessed, by reason code.
    pub failed_by_reason: BTreeMap<Text<'a>, usize>,
}

/// Keys of the scanned accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyCounts {
    /// Key slots holding a key.
    pub total: usize,
    /// Of which active as last seen.
    pub active: usize,
    /// Keys with key-level findings, each counted once under its worst verdict (findings under an exception left
    /// out).
    #[serde(flatten)]
    pub by_verdict: Counts,
    /// Keys whose failing or warning findings are all under an exception: counted here, not by verdict, so that
    /// every key is counted once (absent in reports of keyaudit before it: 0).
    #[serde(default)]
    pub suppressed: usize,
}

/// Findings (or keys) by verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
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

/// "Since the last run".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Since {
    /// Failing or warning findings (not suppressed) that did not fail or warn in the baseline.
    pub new: usize,
    /// Failing or warning findings (not suppressed) that failed or warned in the baseline too.
    pub still_open: usize,
    /// Entries of `resolved`.
    pub resolved: usize,
    /// Findings (any verdict) with baseline_state new.
    pub findings_new: usize,
    /// Findings with baseline_state unchanged.
    pub findings_unchanged: usize,
    /// Findings with baseline_state updated.
    pub findings_updated: usize,
}

/// One selected account and its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Account<'a> {
    /// The account's organization (null: a standalone account).
    pub organization_id: Option<Text<'a>>,
    /// Twelve digits.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Text<'a>,
    /// Its name in Organizations.
    pub name: Option<Text<'a>>,
    /// OU names joined with '/'; a '/' or '\' inside a name is written '\/' or '\\'.
    #[schemars(regex(pattern = r"^/Root(/([^/\\]|\\[/\\])+)*$"))]
    pub ou_path: Option<Text<'a>>,
    /// Its Organizations state (ACTIVE, SUSPENDED, …).
    pub state: Text<'a>,
    /// Exactly one of scanned, skipped, failed.
    pub status: Tag<Coverage>,
    /// Why it was skipped or not assessed, in one sentence.
    pub reason: Option<Text<'a>>,
    /// The stable reason code.
    #[schemars(schema_with = "crate::reason_code_schema")]
    pub reason_code: Option<Text<'a>>,
    /// The AWS action that failed, e.g. sts:AssumeRole.
    pub reason_action: Option<Text<'a>>,
    /// The AWS error code, e.g. AccessDenied.
    pub reason_aws_error_code: Option<Text<'a>>,
    /// When AWS generated the credential report used (scanned accounts).
    pub report_generated_at: Option<Timestamp>,
    /// Access keys the scanned account's credential report lists (null unless scanned).
    pub keys_total: Option<usize>,
    /// Of which active as last seen (null unless scanned).
    pub keys_active: Option<usize>,
    /// How keyaudit reached the account.
    pub access: Access,
    /// The audit role assumed.
    pub role_arn: Option<Text<'a>>,
    /// AWS operations called for the account.
    pub api_calls: u32,
    /// Scanned accounts: how far the optional look-ups (key ids, owners) got within --enrichment-timeout; null
    /// otherwise. The verdicts never depend on it.
    pub enrichment: Option<EnrichmentState>,
    /// ListAccessKeys calls made to attach key ids.
    pub enrichment_calls: u32,
    /// Users whose tags were listed (iam:ListUserTags) to find owners.
    pub tag_calls: u32,
    /// Credential-report retries (LimitExceeded, ReportInProgress, …).
    pub report_retries: u32,
    /// Request attempts the AWS SDK retried.
    pub sdk_retries: u32,
    /// The account's scan, in milliseconds.
    pub duration_ms: u64,
}

/// How an account is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// With the caller's own credentials (its own account).
    CallerCredentials,
    /// Through the audit role.
    AssumeRole,
}

/// How far a scanned account's optional look-ups got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnrichmentState {
    /// Complete, partial or skipped.
    pub status: EnrichmentStatus,
    /// Look-ups wanted.
    pub wanted: u32,
    /// Of which answered.
    pub done: u32,
}

/// Whether every look-up was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrichmentStatus {
    /// Every look-up answered (or none wanted).
    Complete,
    /// Some answered.
    Partial,
    /// None answered.
    Skipped,
}

/// The columns of a finding, in order (the CSV header): [`Finding`]'s fields, with `suppression`'s fields as
/// `suppression_<field>` columns. A test keeps the two equal.
pub const FINDING_COLUMNS: [&str; 42] = [
    "fingerprint",
    "rule_id",
    "rule_name",
    "title",
    "severity",
    "subject",
    "organization_id",
    "account_id",
    "account_name",
    "ou_path",
    "user_name",
    "user_arn",
    "key_slot",
    "access_key_id",
    "key_status",
    "change_since_report",
    "last_rotated",
    "created_at",
    "age_days",
    "age_seconds",
    "due_at",
    "last_used_at",
    "last_used_service",
    "last_used_region",
    "age_source",
    "verdict",
    "message",
    "usage",
    "action",
    "action_reason",
    "owner",
    "owner_tag",
    "suppression_entry",
    "suppression_reason",
    "suppression_owner",
    "suppression_expires",
    "baseline_state",
    "baseline_verdict",
    "since_last_run",
    "evidence",
    "first_seen",
    "due",
];

/// One rule's verdict on one key or user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding<'a> {
    /// Stable per key and rule: SHA-256 of `keyaudit/v2|rule|partition|account|user ARN|subject`.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub fingerprint: Text<'a>,
    /// The rule's id.
    pub rule_id: Text<'a>,
    /// The rule's name.
    pub rule_name: Text<'a>,
    /// The rule's passing state.
    pub title: Text<'a>,
    /// The rule's severity.
    pub severity: Tag<Severity>,
    /// User-level findings (KA-IAM-003) have no key fields.
    pub subject: Tag<Subject>,
    /// The account's organization (null: a standalone account).
    pub organization_id: Option<Text<'a>>,
    /// The account.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Text<'a>,
    /// Its name.
    pub account_name: Option<Text<'a>>,
    /// Its OU path.
    pub ou_path: Option<Text<'a>>,
    /// The IAM user (`<root_account>` for the root user).
    pub user_name: Text<'a>,
    /// The user's ARN.
    pub user_arn: Text<'a>,
    /// The credential report's key column (1 or 2).
    #[schemars(range(min = 1, max = 2))]
    pub key_slot: Option<u8>,
    /// The key id, when it was looked up and matched.
    #[schemars(regex(pattern = r"^[A-Z0-9]{16,128}$"))]
    pub access_key_id: Option<Text<'a>>,
    /// As last seen: ListAccessKeys overrides a cached credential report.
    pub key_status: Option<KeyState>,
    /// What ListAccessKeys shows changed since the credential report.
    pub change_since_report: Option<Tag<KeyChange>>,
    /// The key's creation or last re-activation, per the credential report.
    pub last_rotated: Option<Timestamp>,
    /// CreateDate, when the key id was looked up.
    pub created_at: Option<Timestamp>,
    /// Whole days of the key's age at as_of.
    pub age_days: Option<i64>,
    /// The key's age at as_of, to the second.
    pub age_seconds: Option<i64>,
    /// KA-IAM-001 only: the last compliant instant.
    pub due_at: Option<Timestamp>,
    /// The key's last use.
    pub last_used_at: Option<Timestamp>,
    /// The service of the last use.
    pub last_used_service: Option<Text<'a>>,
    /// The region of the last use.
    pub last_used_region: Option<Text<'a>>,
    /// What age_days is measured from: create_date when the key was re-activated, not rotated.
    pub age_source: Option<Tag<AgeSource>>,
    /// The verdict.
    pub verdict: Tag<Verdict>,
    /// One sentence explaining it.
    pub message: Text<'a>,
    /// How the key is used.
    pub usage: Option<Tag<Usage>>,
    /// What to do.
    pub action: Tag<Action>,
    /// Why, in one sentence.
    pub action_reason: Option<Text<'a>>,
    /// From the first of --owner-tags the user carries.
    pub owner: Option<Text<'a>>,
    /// The tag it came from.
    pub owner_tag: Option<Text<'a>>,
    /// The exception the finding is under (--suppressions); null when none.
    pub suppression: Option<AppliedSuppression<'a>>,
    /// Against --baseline: new (not in it), unchanged (same verdict) or updated (another verdict); null without one.
    pub baseline_state: Option<BaselineState>,
    /// The verdict in the baseline; null for a new finding or without --baseline.
    pub baseline_verdict: Option<Tag<Verdict>>,
    /// As summary.since_baseline counts it: new (fails or warns now, did not then), still_open (failed or warned
    /// then and now), resolved (failed or warned then, not now); null without --baseline, for a finding under an
    /// exception, or when nothing changed for a passing one.
    pub since_last_run: Option<Tag<SinceLastRun>>,
    /// What the rule based its verdict on; shape per rule, see docs/output.md.
    pub evidence: Evidence<'a>,
    /// When a run first saw the finding: carried forward from --baseline by fingerprint, else this run's as_of.
    pub first_seen: Timestamp,
    /// The deadline of a failing or warning finding no exception covers: the later of first_seen and the rule's own
    /// due date (KA-IAM-001's due_at; KA-IAM-004's unused_since plus unused_days), plus run.grace_days of its
    /// severity; null for any other finding.
    pub due: Option<Timestamp>,
}

/// A key's state as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Active.
    Active,
    /// Inactive.
    Inactive,
    /// Deleted since the credential report.
    Deleted,
}

/// A finding against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BaselineState {
    /// Not in the baseline.
    New,
    /// Same verdict.
    Unchanged,
    /// Another verdict.
    Updated,
}

/// The exception a finding is under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppliedSuppression<'a> {
    /// The entry's name, or #N (its position in the file).
    pub entry: Text<'a>,
    /// Why it is accepted.
    pub reason: Text<'a>,
    /// Who accepted it.
    pub owner: Text<'a>,
    /// The last day (UTC) the exception is in force.
    pub expires: Date,
}

/// What a rule based its verdict on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Evidence<'a> {
    /// KA-IAM-001: the key's age against the maximum.
    Rotation {
        /// The maximum age in force.
        max_age_days: u32,
        /// The last compliant instant.
        due_at: Timestamp,
    },
    /// KA-IAM-003: the user's two active keys, oldest first.
    ActiveKeys {
        /// The active keys.
        active_keys: Vec<ActiveKey<'a>>,
        /// The newer key is younger than a week.
        rotation_under_way: bool,
    },
    /// KA-IAM-004: how long an active key has gone unused.
    Usage {
        /// The threshold in force.
        unused_days: u32,
        /// Whole days without use.
        days_unused: i64,
        /// The last use, or last_rotated for a key never used.
        unused_since: Timestamp,
        /// AWS recorded no use.
        never_used: bool,
    },
    /// KA-IAM-002: the key is the evidence (an empty object).
    RootKey {},
}

/// One of a user's active keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActiveKey<'a> {
    /// Its report slot.
    pub key_slot: u8,
    /// Its id, when looked up.
    pub access_key_id: Option<Text<'a>>,
    /// Its creation or re-activation.
    pub last_rotated: Timestamp,
}

/// A finding in a comparison: a resolved one, or one `keyaudit diff` lists as new or updated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChangedFinding<'a> {
    /// The finding's fingerprint.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub fingerprint: Text<'a>,
    /// Its rule.
    pub rule_id: Text<'a>,
    /// Its account.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Text<'a>,
    /// The account's name.
    pub account_name: Option<Text<'a>>,
    /// The account's OU path.
    pub ou_path: Option<Text<'a>>,
    /// The user.
    pub user_name: Text<'a>,
    /// The user's ARN.
    pub user_arn: Text<'a>,
    /// The key slot.
    pub key_slot: Option<u8>,
    /// The key id.
    pub access_key_id: Option<Text<'a>>,
    /// Now; null when the finding is gone (key deleted).
    pub verdict: Option<Tag<Verdict>>,
    /// The baseline's.
    pub baseline_verdict: Option<Tag<Verdict>>,
    /// Whether an exception covered it in the baseline.
    pub suppressed: bool,
    /// The baseline's sentence.
    pub message: Text<'a>,
    /// When it was first seen (null: a baseline written before keyaudit recorded it).
    pub first_seen: Option<Timestamp>,
}

/// One exception's standing after the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Entry<'a> {
    /// The entry's name, or #N.
    pub entry: Text<'a>,
    /// The line it starts on.
    #[schemars(range(min = 1))]
    pub line: usize,
    /// Its standing.
    pub state: Tag<EntryState>,
    /// Findings suppressed; for an expired entry, those it would have matched.
    pub matched: usize,
    /// Why.
    pub reason: Text<'a>,
    /// Who.
    pub owner: Text<'a>,
    /// The last day in force.
    pub expires: Date,
    /// May run for more than a year.
    pub allow_long: bool,
    /// What it matches.
    pub select: Select<'a>,
}

/// What an exception matches (every given field must hold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Select<'a> {
    /// One finding's fingerprint.
    pub fingerprint: Option<Text<'a>>,
    /// A key.
    pub access_key_id: Option<Text<'a>>,
    /// A user ARN glob.
    pub user_arn: Option<Text<'a>>,
    /// An account.
    pub account_id: Option<Text<'a>>,
    /// An OU subtree.
    pub ou_path: Option<Text<'a>>,
    /// Rule ids; every rule when null.
    pub rules: Option<Vec<Text<'a>>>,
}

/// The comparison with --baseline (also the body of `keyaudit diff -o json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BaselineSection<'a> {
    /// The baseline's as_of.
    pub as_of: Timestamp,
    /// Thresholds that differ.
    pub threshold_changes: Vec<ThresholdChange<'a>>,
    /// Accounts failed now that were not failed in the baseline.
    pub accounts_newly_failed: Vec<AccountChange<'a>>,
    /// Accounts the baseline scanned that this run did not.
    pub accounts_no_longer_assessed: Vec<AccountChange<'a>>,
}

/// A threshold that differs from the baseline's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThresholdChange<'a> {
    /// max_age_days, warn_days or unused_days.
    pub name: Text<'a>,
    /// The baseline's.
    pub baseline: u32,
    /// This run's.
    pub current: u32,
}

/// An account whose coverage got worse since the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountChange<'a> {
    /// The account.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Text<'a>,
    /// Its name.
    pub name: Option<Text<'a>>,
    /// Its OU path.
    pub ou_path: Option<Text<'a>>,
    /// Null: not in the baseline.
    pub baseline_status: Option<Tag<Coverage>>,
    /// Null: not selected in this run.
    pub status: Option<Tag<Coverage>>,
    /// Why, now.
    pub reason_code: Option<Text<'a>>,
}
