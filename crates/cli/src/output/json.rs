//! The versioned JSON report (`schema_version` 1). These types are the contract, documented in
//! `docs/json-schema.json` and `docs/output.md`; they are separate from the core model on purpose, so the
//! model can change without breaking consumers.

use std::collections::BTreeMap;

use anyhow::Result;
use keyaudit_core::eval::Finding;
use keyaudit_core::ids::Partition;
use keyaudit_core::report::{AccessMethod, AccountRecord, AccountStatus, Report, Scope};
use keyaudit_core::rules::RuleSet;
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
    scope: &'static str,
    organization_id: Option<&'a str>,
    management_account_id: Option<&'a str>,
    caller_arn: &'a str,
    caller_account_id: &'a str,
    partition: &'a str,
    region: &'a str,
    clock: Option<Clock>,
    rules: Vec<JsonRule>,
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
    fail: usize,
    warn: usize,
    pass: usize,
    not_applicable: usize,
    resolved: usize,
}

#[derive(Serialize)]
pub(crate) struct JsonAccount<'a> {
    account_id: &'a str,
    name: Option<&'a str>,
    ou_path: Option<&'a str>,
    state: &'a str,
    status: &'static str,
    reason: Option<String>,
    reason_code: Option<&'static str>,
    reason_action: Option<&'static str>,
    reason_aws_error_code: Option<&'a str>,
    report_generated_at: Option<String>,
    access: &'static str,
    role_arn: Option<&'a str>,
    api_calls: u32,
    enrichment_calls: u32,
    report_retries: u32,
    sdk_retries: u32,
    duration_ms: u64,
}

/// The columns of a finding, in order (the CSV header). A test keeps it equal to [`JsonFinding`]'s fields.
pub(crate) const FINDING_COLUMNS: [&str; 20] = [
    "fingerprint",
    "rule_id",
    "severity",
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
    "verdict",
    "message",
];

#[derive(Serialize)]
pub(crate) struct JsonFinding<'a> {
    fingerprint: String,
    rule_id: &'static str,
    severity: &'static str,
    account_id: &'a str,
    account_name: Option<&'a str>,
    ou_path: Option<&'a str>,
    user_name: &'a str,
    user_arn: &'a str,
    key_slot: u8,
    access_key_id: Option<&'a str>,
    key_status: &'static str,
    change_since_report: Option<&'static str>,
    last_rotated: String,
    created_at: Option<String>,
    age_days: i64,
    age_seconds: i64,
    due_at: String,
    last_used_at: Option<String>,
    verdict: &'static str,
    message: &'a str,
}

pub(crate) fn account(r: &AccountRecord) -> JsonAccount<'_> {
    let (reason, reason_code, reason_action, reason_aws_error_code, report_generated_at) = match &r.status {
        AccountStatus::Scanned { report_generated_at } => {
            (None, None, None, None, report_generated_at.map(|t| t.to_string()))
        }
        AccountStatus::Skipped(skip) => (Some(skip.to_string()), Some(skip.code()), None, None, None),
        AccountStatus::Failed(f) => {
            (Some(f.to_string()), Some(f.code.as_str()), f.action, f.aws_error_code.as_deref(), None)
        }
    };
    let (access, role_arn) = match &r.account.access {
        AccessMethod::CallerCredentials => ("caller_credentials", None),
        AccessMethod::AssumeRole { role_arn } => ("assume_role", Some(role_arn.as_str())),
    };
    JsonAccount {
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
        access,
        role_arn,
        api_calls: r.stats.api_calls,
        enrichment_calls: r.stats.enrichment_calls,
        report_retries: r.stats.report_retries,
        sdk_retries: r.stats.sdk_retries,
        duration_ms: r.stats.duration_ms,
    }
}

/// One finding, with its account's name and OU path from `record`.
pub(crate) fn finding<'a>(f: &'a Finding, record: Option<&'a AccountRecord>, partition: &Partition) -> JsonFinding<'a> {
    JsonFinding {
        fingerprint: f.fingerprint(partition),
        rule_id: f.rule_id,
        severity: f.severity.as_str(),
        account_id: f.account_id.as_str(),
        account_name: record.and_then(|r| r.account.name.as_deref()),
        ou_path: record.and_then(|r| r.account.ou_path.as_deref()),
        user_name: &f.user_name,
        user_arn: &f.user_arn,
        key_slot: f.key_slot.number(),
        access_key_id: f.access_key_id.as_ref().map(|k| k.as_str()),
        key_status: f.key_state(),
        change_since_report: f.change.map(|c| c.as_str()),
        last_rotated: f.last_rotated.to_string(),
        created_at: f.created_at.map(|t| t.to_string()),
        age_days: f.age_days(),
        age_seconds: f.age.as_secs(),
        due_at: f.due_at.to_string(),
        last_used_at: f.last_used_at.map(|t| t.to_string()),
        verdict: f.verdict.as_str(),
        message: &f.message,
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

pub(crate) fn header<'a>(report: &'a Report, rules: &RuleSet) -> JsonHeader<'a> {
    let s = report.summary();
    let (scope, organization_id, management_account_id) = match &report.run.scope {
        Scope::Organization { id, management_account_id } => {
            ("organization", Some(id.as_str()), Some(management_account_id.as_str()))
        }
        Scope::StandaloneAccount => ("standalone_account", None, None),
    };
    JsonHeader {
        schema_version: SCHEMA_VERSION,
        tool: Tool { name: "keyaudit", version: env!("CARGO_PKG_VERSION") },
        run: Run {
            as_of: report.run.as_of.to_string(),
            started_at: report.run.started_at.to_string(),
            finished_at: report.run.finished_at.to_string(),
            max_age_days: report.run.config.max_age_days(),
            warn_days: report.run.config.warn_days(),
            scope,
            organization_id,
            management_account_id,
            caller_arn: &report.run.caller_arn,
            caller_account_id: report.run.caller_account_id.as_str(),
            partition: report.run.partition.as_str(),
            region: &report.run.region,
            clock: report.run.clock.map(|c| Clock {
                local: c.local.to_string(),
                aws: c.aws.to_string(),
                skew_seconds: c.skew().as_secs(),
            }),
            rules: rules
                .metas()
                .into_iter()
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
            keys: KeyCounts {
                total: s.keys_total,
                active: s.keys_active,
                fail: s.fail,
                warn: s.warn,
                pass: s.pass,
                not_applicable: s.not_applicable,
                resolved: s.resolved,
            },
        },
    }
}

fn build<'a>(report: &'a Report, rules: &RuleSet) -> JsonReport<'a> {
    JsonReport {
        header: header(report, rules),
        accounts: report.accounts.iter().map(account).collect(),
        findings: with_accounts(report).map(|(f, record)| finding(f, record, &report.run.partition)).collect(),
    }
}

pub(crate) fn render(report: &Report, rules: &RuleSet) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(&build(report, rules))?;
    bytes.push(b'\n');
    Ok(bytes)
}
