//! The versioned JSON report (`schema_version` 1). These types are the contract, documented in
//! `docs/json-schema.json` and `docs/output.md`; they are separate from the core model on purpose, so the
//! model can change without breaking consumers.

use std::collections::BTreeMap;

use anyhow::Result;
use keyaudit_core::baseline::{
    AccountChange, BaselineState, ChangeCounts, Comparison, Coverage, SinceLastRun, SnapshotAccount, SnapshotFinding,
};
use keyaudit_core::eval::{Evidence, FINGERPRINT_SCHEME, Finding, Verdict, whole_days};
use keyaudit_core::ids::{AccountId, Partition};
use keyaudit_core::report::{AccessMethod, AccountRecord, AccountStatus, Report, RunInfo, Scope, VerdictCounts};
use keyaudit_core::suppress::EntryStatus;
use serde::Serialize;

use super::with_accounts;

/// The JSON schema version. Bump only for breaking changes; adding fields is not one.
pub(crate) const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub(crate) struct JsonReport<'a> {
    #[serde(flatten)]
    header: JsonHeader<'a>,
    accounts: Vec<JsonAccount<'a>>,
    findings: Vec<JsonFinding<'a>>,
    /// Findings that failed or warned in the baseline and no longer do (empty without `--baseline`).
    resolved: Vec<JsonChangedFinding<'a>>,
    /// Each exception's standing (`null` without `--suppressions`).
    suppressions: Option<Vec<JsonEntry<'a>>>,
    /// The comparison with the baseline (`null` without `--baseline`).
    baseline: Option<JsonBaseline<'a>>,
}

/// A finding in a comparison: a resolved one (its baseline verdict and message, `verdict` now or `null` when it
/// is gone), or one `keyaudit diff` lists as new or updated.
#[derive(Serialize)]
pub(crate) struct JsonChangedFinding<'a> {
    fingerprint: &'a str,
    rule_id: &'a str,
    account_id: &'a str,
    account_name: Option<&'a str>,
    ou_path: Option<&'a str>,
    user_name: &'a str,
    user_arn: &'a str,
    key_slot: Option<u8>,
    access_key_id: Option<&'a str>,
    verdict: Option<&'static str>,
    baseline_verdict: Option<&'static str>,
    suppressed: bool,
    message: &'a str,
}

impl<'a> JsonChangedFinding<'a> {
    pub(crate) fn new(
        f: &'a SnapshotFinding,
        account: Option<&'a SnapshotAccount>,
        verdict: Option<Verdict>,
        baseline_verdict: Option<Verdict>,
    ) -> Self {
        Self {
            fingerprint: &f.fingerprint,
            rule_id: &f.rule_id,
            account_id: f.account_id.as_str(),
            account_name: account.and_then(|a| a.name.as_deref()),
            ou_path: account.and_then(|a| a.ou_path.as_deref()),
            user_name: &f.user_name,
            user_arn: &f.user_arn,
            key_slot: f.key_slot,
            access_key_id: f.access_key_id.as_deref(),
            verdict: verdict.map(Verdict::as_str),
            baseline_verdict: baseline_verdict.map(Verdict::as_str),
            suppressed: f.suppressed,
            message: &f.message,
        }
    }
}

/// One exception's standing after the run.
#[derive(Serialize)]
pub(crate) struct JsonEntry<'a> {
    entry: &'a str,
    line: usize,
    state: &'static str,
    matched: usize,
    reason: &'a str,
    owner: &'a str,
    expires: String,
    allow_long: bool,
    select: JsonSelect<'a>,
}

#[derive(Serialize)]
struct JsonSelect<'a> {
    fingerprint: Option<&'a str>,
    access_key_id: Option<&'a str>,
    user_arn: Option<&'a str>,
    account_id: Option<&'a str>,
    ou_path: Option<&'a str>,
    rules: Option<&'a [&'static str]>,
}

fn entry(s: &EntryStatus) -> JsonEntry<'_> {
    let (e, sel) = (&s.entry, &s.entry.selector);
    JsonEntry {
        entry: &e.label,
        line: e.line,
        state: s.state.as_str(),
        matched: s.matched,
        reason: &e.reason,
        owner: &e.owner,
        expires: e.expires.to_string(),
        allow_long: e.allow_long,
        select: JsonSelect {
            fingerprint: sel.fingerprint.as_deref(),
            access_key_id: sel.access_key_id.as_ref().map(|k| k.as_str()),
            user_arn: sel.user_arn.as_ref().map(|g| g.as_str()),
            account_id: sel.account_id.as_ref().map(|a| a.as_str()),
            ou_path: sel.ou_path.as_deref(),
            rules: sel.rules.as_deref(),
        },
    }
}

/// The comparison with a baseline (also the body of `keyaudit diff -o json`).
#[derive(Serialize)]
pub(crate) struct JsonBaseline<'a> {
    as_of: String,
    threshold_changes: Vec<JsonThreshold>,
    accounts_newly_failed: Vec<JsonAccountChange<'a>>,
    accounts_no_longer_assessed: Vec<JsonAccountChange<'a>>,
}

#[derive(Serialize)]
struct JsonThreshold {
    name: &'static str,
    baseline: u32,
    current: u32,
}

#[derive(Serialize)]
struct JsonAccountChange<'a> {
    account_id: &'a str,
    name: Option<&'a str>,
    ou_path: Option<&'a str>,
    baseline_status: Option<&'static str>,
    status: Option<&'static str>,
    reason_code: Option<&'a str>,
}

/// "Since the last run" counts.
#[derive(Serialize)]
pub(crate) struct JsonSince {
    new: usize,
    still_open: usize,
    resolved: usize,
    findings_new: usize,
    findings_unchanged: usize,
    findings_updated: usize,
}

impl From<ChangeCounts> for JsonSince {
    fn from(c: ChangeCounts) -> Self {
        Self {
            new: c.new,
            still_open: c.still_open,
            resolved: c.resolved,
            findings_new: c.by_state_new,
            findings_unchanged: c.by_state_unchanged,
            findings_updated: c.by_state_updated,
        }
    }
}

pub(crate) fn baseline<'a>(c: &'a Comparison) -> JsonBaseline<'a> {
    let change = |a: &'a AccountChange| JsonAccountChange {
        account_id: a.account.account_id.as_str(),
        name: a.account.name.as_deref(),
        ou_path: a.account.ou_path.as_deref(),
        baseline_status: a.was.map(Coverage::as_str),
        status: a.now.map(Coverage::as_str),
        reason_code: a.account.reason_code.as_deref(),
    };
    JsonBaseline {
        as_of: c.baseline_as_of.to_string(),
        threshold_changes: c
            .threshold_changes
            .iter()
            .map(|(name, baseline, current)| JsonThreshold { name, baseline: *baseline, current: *current })
            .collect(),
        accounts_newly_failed: c.newly_failed_accounts.iter().map(change).collect(),
        accounts_no_longer_assessed: c.no_longer_assessed.iter().map(change).collect(),
    }
}

/// The resolved findings of a comparison.
pub(crate) fn resolved(c: &Comparison) -> Vec<JsonChangedFinding<'_>> {
    c.resolved
        .iter()
        .map(|r| JsonChangedFinding::new(&r.finding, r.account.as_ref(), r.now, Some(r.finding.verdict)))
        .collect()
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Run<'a> {
    as_of: String,
    started_at: String,
    finished_at: String,
    max_age_days: u32,
    warn_days: u32,
    unused_days: u32,
    dormant_days: u32,
    #[serde(flatten)]
    scan: JsonScan<'a>,
    partition: &'a str,
    fingerprint_scheme: &'static str,
    /// `complete`, or `interrupted` (Ctrl-C / SIGTERM during discovery: accounts not found by then are not in
    /// the report); in a merged report, `interrupted` when any organization's was.
    discovery: &'static str,
    rules: Vec<JsonRule>,
    /// Each scan the report holds: one for `keyaudit scan`, one per organization for `keyaudit merge`.
    organizations: Vec<JsonOrganization<'a>>,
}

/// What one scan was of, who ran it and where (all `null` but `scope` at the top of a merged report).
#[derive(Serialize)]
struct JsonScan<'a> {
    scope: &'static str,
    organization_id: Option<&'a str>,
    management_account_id: Option<&'a str>,
    caller_arn: Option<&'a str>,
    caller_account_id: Option<&'a str>,
    region: Option<&'a str>,
    clock: Option<Clock>,
}

/// One organization's (or standalone account's) scan in `run.organizations`.
#[derive(Serialize)]
struct JsonOrganization<'a> {
    #[serde(flatten)]
    scan: JsonScan<'a>,
    as_of: String,
    started_at: String,
    finished_at: String,
    accounts_discovered: usize,
    discovery: &'static str,
}

fn scope_name(scope: &Scope) -> &'static str {
    match scope {
        Scope::Organization { .. } => "organization",
        Scope::StandaloneAccount => "standalone_account",
        Scope::Merged(_) => "merged",
    }
}

fn discovery(complete: bool) -> &'static str {
    if complete { "complete" } else { "interrupted" }
}

fn scan(run: &RunInfo) -> JsonScan<'_> {
    JsonScan {
        scope: scope_name(&run.scope),
        organization_id: run.scope.organization_id(),
        management_account_id: run.scope.management_account_id().map(AccountId::as_str),
        caller_arn: run.origin.as_ref().map(|o| o.caller_arn.as_str()),
        caller_account_id: run.origin.as_ref().map(|o| o.caller_account_id.as_str()),
        region: run.origin.as_ref().map(|o| o.region.as_str()),
        clock: run.clock.map(|c| Clock {
            local: c.local.to_string(),
            aws: c.aws.to_string(),
            skew_seconds: c.skew().as_secs(),
        }),
    }
}

fn organization(run: &RunInfo) -> JsonOrganization<'_> {
    JsonOrganization {
        scan: scan(run),
        as_of: run.as_of.to_string(),
        started_at: run.started_at.to_string(),
        finished_at: run.finished_at.to_string(),
        accounts_discovered: run.accounts_discovered,
        discovery: discovery(run.discovery_complete),
    }
}

#[derive(Serialize)]
struct Clock {
    local: String,
    aws: String,
    skew_seconds: i64,
}

#[derive(Serialize)]
struct JsonRule {
    id: &'static str,
    name: &'static str,
    title: &'static str,
    severity: &'static str,
    cis: Vec<Cis>,
    security_hub: &'static [&'static str],
    aws_config: &'static [&'static str],
}

#[derive(Serialize)]
struct Cis {
    version: &'static str,
    control: &'static str,
}

#[derive(Serialize)]
struct Summary {
    accounts: AccountCounts,
    keys: KeyCounts,
    findings_by_rule: BTreeMap<&'static str, Counts>,
    actions: BTreeMap<&'static str, usize>,
    suppressed: Counts,
    since_baseline: Option<JsonSince>,
}

#[derive(Serialize)]
struct Counts {
    fail: usize,
    warn: usize,
    pass: usize,
    not_applicable: usize,
    resolved: usize,
}

impl From<VerdictCounts> for Counts {
    fn from(c: VerdictCounts) -> Self {
        Self { fail: c.fail, warn: c.warn, pass: c.pass, not_applicable: c.not_applicable, resolved: c.resolved }
    }
}

#[derive(Serialize)]
struct AccountCounts {
    discovered: usize,
    selected: usize,
    scanned: usize,
    skipped: usize,
    failed: usize,
    failed_by_reason: BTreeMap<&'static str, usize>,
}

#[derive(Serialize)]
struct KeyCounts {
    total: usize,
    active: usize,
    /// Keys with findings, each under its worst verdict.
    #[serde(flatten)]
    by_verdict: Counts,
}

#[derive(Serialize)]
pub(crate) struct JsonAccount<'a> {
    organization_id: Option<&'a str>,
    account_id: &'a str,
    name: Option<&'a str>,
    ou_path: Option<&'a str>,
    state: &'a str,
    status: &'static str,
    reason: Option<String>,
    reason_code: Option<&'static str>,
    reason_action: Option<&'a str>,
    reason_aws_error_code: Option<&'a str>,
    report_generated_at: Option<String>,
    /// Keys the scanned account's credential report lists, and of which active (null unless scanned).
    keys_total: Option<usize>,
    keys_active: Option<usize>,
    access: &'static str,
    role_arn: Option<&'a str>,
    api_calls: u32,
    enrichment: Option<JsonEnrichment>,
    enrichment_calls: u32,
    tag_calls: u32,
    report_retries: u32,
    sdk_retries: u32,
    duration_ms: u64,
}

/// The columns of a finding, in order (the CSV header): [`JsonFinding`]'s fields, with `suppression`'s fields
/// as `suppression_<field>` columns. A test keeps the two equal.
pub(crate) const FINDING_COLUMNS: [&str; 40] = [
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
];

/// One finding.
#[derive(Serialize)]
pub(crate) struct JsonFinding<'a> {
    fingerprint: String,
    rule_id: &'static str,
    rule_name: &'static str,
    title: &'static str,
    severity: &'static str,
    subject: &'static str,
    organization_id: Option<&'a str>,
    account_id: &'a str,
    account_name: Option<&'a str>,
    ou_path: Option<&'a str>,
    user_name: &'a str,
    user_arn: &'a str,
    key_slot: Option<u8>,
    access_key_id: Option<&'a str>,
    key_status: Option<&'static str>,
    change_since_report: Option<&'static str>,
    last_rotated: Option<String>,
    created_at: Option<String>,
    age_days: Option<i64>,
    age_seconds: Option<i64>,
    due_at: Option<String>,
    last_used_at: Option<String>,
    last_used_service: Option<&'a str>,
    last_used_region: Option<&'a str>,
    age_source: Option<&'static str>,
    verdict: &'static str,
    message: &'a str,
    usage: Option<&'static str>,
    action: &'static str,
    action_reason: Option<&'a str>,
    owner: Option<&'a str>,
    owner_tag: Option<&'a str>,
    suppression: Option<JsonSuppression<'a>>,
    baseline_state: Option<&'static str>,
    baseline_verdict: Option<&'static str>,
    /// With `--baseline`: `new`, `still_open` or `resolved`, as "Since the last run" counts them.
    since_last_run: Option<&'static str>,
    evidence: JsonEvidence,
}

/// The exception a finding is under.
#[derive(Serialize)]
pub(crate) struct JsonSuppression<'a> {
    entry: &'a str,
    reason: &'a str,
    owner: &'a str,
    expires: String,
}

/// What the finding's rule based its verdict on; the shape depends on the rule (documented in docs/output.md).
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum JsonEvidence {
    /// KA-IAM-001.
    Rotation { max_age_days: u32, due_at: String },
    /// KA-IAM-002: the key is the evidence.
    RootKey {},
    /// KA-IAM-003.
    ActiveKeys { active_keys: Vec<JsonActiveKey>, rotation_under_way: bool },
    /// KA-IAM-004.
    Usage { unused_days: u32, days_unused: i64, unused_since: String, never_used: bool },
}

#[derive(Serialize)]
pub(crate) struct JsonActiveKey {
    key_slot: u8,
    access_key_id: Option<String>,
    last_rotated: String,
}

fn evidence(e: &Evidence) -> JsonEvidence {
    match e {
        Evidence::Rotation { due_at, max_age_days } => {
            JsonEvidence::Rotation { max_age_days: *max_age_days, due_at: due_at.to_string() }
        }
        Evidence::RootKey => JsonEvidence::RootKey {},
        Evidence::ActiveKeys { keys, rotation_under_way } => JsonEvidence::ActiveKeys {
            active_keys: keys
                .iter()
                .map(|k| JsonActiveKey {
                    key_slot: k.slot.number(),
                    access_key_id: k.access_key_id.as_ref().map(|id| id.to_string()),
                    last_rotated: k.last_rotated.to_string(),
                })
                .collect(),
            rotation_under_way: *rotation_under_way,
        },
        Evidence::Usage { unused_for, unused_since, never_used, unused_days } => JsonEvidence::Usage {
            unused_days: *unused_days,
            days_unused: whole_days(*unused_for),
            unused_since: unused_since.to_string(),
            never_used: *never_used,
        },
    }
}

/// How far a scanned account's optional look-ups got.
#[derive(Serialize)]
pub(crate) struct JsonEnrichment {
    status: &'static str,
    wanted: u32,
    done: u32,
}

/// One account, tagged with its organization (`None` for a standalone account).
pub(crate) fn account<'a>(r: &'a AccountRecord, organization_id: Option<&'a str>) -> JsonAccount<'a> {
    let (reason, reason_code, reason_action, reason_aws_error_code, report_generated_at) = match &r.status {
        AccountStatus::Scanned { report_generated_at, .. } => {
            (None, None, None, None, report_generated_at.map(|t| t.to_string()))
        }
        AccountStatus::Skipped(skip) => (Some(skip.to_string()), Some(skip.code()), None, None, None),
        AccountStatus::Failed(f) => {
            (Some(f.to_string()), Some(f.code.as_str()), f.action.as_deref(), f.aws_error_code.as_deref(), None)
        }
    };
    let (access, role_arn) = match &r.account.access {
        AccessMethod::CallerCredentials => ("caller_credentials", None),
        AccessMethod::AssumeRole { role_arn } => ("assume_role", Some(role_arn.as_str())),
    };
    let keys = match &r.status {
        AccountStatus::Scanned { keys, .. } => Some(keys),
        _ => None,
    };
    JsonAccount {
        organization_id,
        account_id: r.account.id.as_str(),
        name: r.account.name.as_deref(),
        ou_path: r.account.ou_path.as_deref(),
        state: r.account.state.as_str(),
        status: r.status.as_str(),
        reason,
        reason_code,
        reason_action,
        reason_aws_error_code,
        report_generated_at,
        keys_total: keys.map(|k| k.total),
        keys_active: keys.map(|k| k.active),
        enrichment: match &r.status {
            AccountStatus::Scanned { enrichment, .. } => {
                Some(JsonEnrichment { status: enrichment.status(), wanted: enrichment.wanted, done: enrichment.done })
            }
            _ => None,
        },
        access,
        role_arn,
        api_calls: r.stats.api_calls,
        enrichment_calls: r.stats.enrichment_calls,
        tag_calls: r.stats.tag_calls,
        report_retries: r.stats.report_retries,
        sdk_retries: r.stats.sdk_retries,
        duration_ms: r.stats.duration_ms,
    }
}

/// One finding, with its organization, and its account's name and OU path from `record`.
pub(crate) fn finding<'a>(
    f: &'a Finding,
    record: Option<&'a AccountRecord>,
    partition: &Partition,
    organization_id: Option<&'a str>,
) -> JsonFinding<'a> {
    let key = f.key.as_ref();
    JsonFinding {
        fingerprint: f.fingerprint(partition),
        rule_id: f.rule.id,
        rule_name: f.rule.name,
        title: f.rule.title,
        severity: f.rule.severity.as_str(),
        subject: f.subject().as_str(),
        organization_id,
        account_id: f.account_id.as_str(),
        account_name: record.and_then(|r| r.account.name.as_deref()),
        ou_path: record.and_then(|r| r.account.ou_path.as_deref()),
        user_name: &f.user_name,
        user_arn: &f.user_arn,
        key_slot: key.map(|k| k.slot.number()),
        access_key_id: key.and_then(|k| k.access_key_id.as_ref()).map(|k| k.as_str()),
        key_status: key.map(|k| k.state()),
        change_since_report: key.and_then(|k| k.change).map(|c| c.as_str()),
        last_rotated: key.map(|k| k.last_rotated.to_string()),
        created_at: key.and_then(|k| k.created_at).map(|t| t.to_string()),
        age_days: key.map(|k| k.age_days()),
        age_seconds: key.map(|k| k.age.as_secs()),
        due_at: f.due_at().map(|t| t.to_string()),
        last_used_at: key.and_then(|k| k.last_used_at).map(|t| t.to_string()),
        last_used_service: key.and_then(|k| k.last_used_service.as_deref()),
        last_used_region: key.and_then(|k| k.last_used_region.as_deref()),
        age_source: key.map(|k| k.age_source.as_str()),
        verdict: f.verdict.as_str(),
        message: &f.message,
        usage: f.triage.usage.map(|u| u.as_str()),
        action: f.triage.action.as_str(),
        action_reason: f.triage.action_reason.as_deref(),
        owner: f.owner.as_ref().map(|o| o.value.as_str()),
        owner_tag: f.owner.as_ref().map(|o| o.tag.as_str()),
        suppression: f.suppression.as_ref().map(|s| JsonSuppression {
            entry: &s.entry,
            reason: &s.reason,
            owner: &s.owner,
            expires: s.expires.to_string(),
        }),
        baseline_state: f.baseline_state.map(BaselineState::as_str),
        baseline_verdict: f.was().map(Verdict::as_str),
        since_last_run: f.since_last_run().map(SinceLastRun::as_str),
        evidence: evidence(&f.evidence),
    }
}

/// The report without its accounts and findings (also the NDJSON summary line).
#[derive(Serialize)]
pub(crate) struct JsonHeader<'a> {
    schema_version: u32,
    tool: Tool,
    run: Run<'a>,
    summary: Summary,
}

pub(crate) fn header(report: &Report) -> JsonHeader<'_> {
    let s = report.summary();
    JsonHeader {
        schema_version: SCHEMA_VERSION,
        tool: Tool { name: "keyaudit", version: env!("CARGO_PKG_VERSION") },
        run: Run {
            as_of: report.run.as_of.to_string(),
            started_at: report.run.started_at.to_string(),
            finished_at: report.run.finished_at.to_string(),
            max_age_days: report.run.config.max_age_days(),
            warn_days: report.run.config.warn_days(),
            unused_days: report.run.config.unused_days(),
            dormant_days: report.run.config.dormant_days(),
            scan: scan(&report.run),
            partition: report.run.partition.as_str(),
            fingerprint_scheme: FINGERPRINT_SCHEME,
            discovery: discovery(report.run.discovery_complete),
            organizations: report.runs().into_iter().map(organization).collect(),
            rules: report
                .rules
                .iter()
                .map(|m| JsonRule {
                    id: m.id,
                    name: m.name,
                    title: m.title,
                    severity: m.severity.as_str(),
                    cis: m.cis.iter().map(|c| Cis { version: c.version, control: c.control }).collect(),
                    security_hub: m.security_hub,
                    aws_config: m.aws_config,
                })
                .collect(),
        },
        summary: Summary {
            accounts: AccountCounts {
                discovered: report.run.accounts_discovered,
                selected: s.accounts_total,
                scanned: s.accounts_scanned,
                skipped: s.accounts_skipped,
                failed: s.accounts_failed,
                failed_by_reason: s.failures_by_code,
            },
            keys: KeyCounts { total: s.keys_total, active: s.keys_active, by_verdict: s.keys.into() },
            findings_by_rule: s.findings_by_rule.into_iter().map(|(id, c)| (id, c.into())).collect(),
            actions: s.actions,
            suppressed: s.suppressed.into(),
            since_baseline: report.comparison.as_ref().map(|c| c.counts.into()),
        },
    }
}

/// The organization an account belongs to (`None` for a standalone account).
pub(crate) fn organization_of<'a>(report: &'a Report, account: &AccountId) -> Option<&'a str> {
    report.run_of(account.as_str()).scope.organization_id()
}

pub(crate) fn build(report: &Report) -> JsonReport<'_> {
    JsonReport {
        findings: with_accounts(report)
            .map(|(f, record)| finding(f, record, &report.run.partition, organization_of(report, &f.account_id)))
            .collect(),
        ..without_findings(report)
    }
}

/// The report with an empty `findings` (the HTML page writes its findings one at a time).
pub(crate) fn without_findings(report: &Report) -> JsonReport<'_> {
    JsonReport {
        header: header(report),
        accounts: report.accounts.iter().map(|r| account(r, organization_of(report, &r.account.id))).collect(),
        findings: Vec::new(),
        resolved: report.comparison.as_ref().map(resolved).unwrap_or_default(),
        suppressions: report.suppressions.as_ref().map(|v| v.iter().map(entry).collect()),
        baseline: report.comparison.as_ref().map(baseline),
    }
}

pub(crate) fn render(report: &Report) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(&build(report))?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use keyaudit_core::rules::builtin;

    use super::*;
    use crate::output::fixture::{fixture, report};

    #[test]
    fn json_snapshot() {
        let value: serde_json::Value = serde_json::from_slice(&render(&report()).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, { ".tool.version" => "[version]" });
    }

    /// Issue "Findings for many rules": `--rules KA-IAM-001` reproduces the one-rule report exactly; what the
    /// multi-rule model added is additive (these fields), nothing else moved.
    #[test]
    fn ka_iam_001_alone_reproduces_the_single_rule_report() {
        let only = builtin().select(&["KA-IAM-001".to_owned()], &[]).unwrap();
        let mut value: serde_json::Value = serde_json::from_slice(&render(&fixture(only, false)).unwrap()).unwrap();
        for f in value["findings"].as_array_mut().unwrap() {
            for added in [
                "subject",
                "title",
                "rule_name",
                "evidence",
                "last_used_service",
                "last_used_region",
                "age_source",
                "usage",
                "action",
                "action_reason",
                "owner",
                "owner_tag",
                // Issue "Scheduled runs": exceptions, baselines, and fingerprints that no longer depend on
                // whether the key id was looked up (the identity changed on purpose).
                "suppression",
                "baseline_state",
                "baseline_verdict",
                "since_last_run",
                "fingerprint",
                // Issue "Deploy and operate": merged reports tag findings with their organization.
                "organization_id",
            ] {
                assert!(f.as_object_mut().unwrap().remove(added).is_some(), "{added}");
            }
        }
        value["summary"].as_object_mut().unwrap().remove("findings_by_rule").unwrap();
        value["summary"].as_object_mut().unwrap().remove("actions").unwrap();
        value["summary"].as_object_mut().unwrap().remove("suppressed").unwrap();
        value["summary"].as_object_mut().unwrap().remove("since_baseline").unwrap();
        for added in ["resolved", "suppressions", "baseline"] {
            value.as_object_mut().unwrap().remove(added).unwrap();
        }
        value["run"].as_object_mut().unwrap().remove("fingerprint_scheme").unwrap();
        value["run"].as_object_mut().unwrap().remove("discovery").unwrap();
        for a in value["accounts"].as_array_mut().unwrap() {
            a.as_object_mut().unwrap().remove("tag_calls").unwrap();
            a.as_object_mut().unwrap().remove("enrichment").unwrap();
        }
        value["run"].as_object_mut().unwrap().remove("unused_days").unwrap();
        for added in ["dormant_days", "organizations"] {
            value["run"].as_object_mut().unwrap().remove(added).unwrap();
        }
        for a in value["accounts"].as_array_mut().unwrap() {
            for added in ["organization_id", "keys_total", "keys_active"] {
                a.as_object_mut().unwrap().remove(added).unwrap();
            }
        }
        value["tool"]["version"] = "[version]".into();
        let mut before: serde_json::Value =
            serde_json::from_str(include_str!("testdata/ka-iam-001-report.json")).unwrap();
        for f in before["findings"].as_array_mut().unwrap() {
            f.as_object_mut().unwrap().remove("fingerprint").unwrap();
        }
        assert_eq!(value, before);
    }

    #[test]
    fn csv_columns_match_the_json_finding_fields() {
        let r = report();
        let value =
            serde_json::to_value(finding(&r.findings[0], Some(&r.accounts[0]), &r.run.partition, None)).unwrap();
        let mut keys: Vec<String> =
            value.as_object().unwrap().keys().filter(|k| *k != "suppression").cloned().collect();
        keys.extend(["entry", "reason", "owner", "expires"].map(|f| format!("suppression_{f}")));
        let mut columns: Vec<String> = FINDING_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        columns.sort_unstable();
        keys.sort_unstable();
        assert_eq!(keys, columns);
    }
}
