//! SARIF 2.1.0, built from typed structs: one `reportingDescriptor` per rule that ran (its words, help and tags
//! from the rule's metadata), one result per failing or warning finding (passing ones with
//! `--sarif-include-pass`), and the accounts that could not be assessed as tool execution notifications.
//!
//! GitHub code scanning rejects a whole upload when any result lacks a location with
//! `physicalLocation.artifactLocation.uri`, so every result gets a synthetic, stable, repository-relative
//! artifact, `aws/<account-id>/iam/<user-name>` (`root` for the root user), with the logical locations
//! (organization → OU path → account → user → key) beside it in the same location. GitHub's other limits: 20
//! runs per file (keyaudit writes one), 25,000 results per run, 10 MB gzipped; past those keyaudit still writes
//! the whole file and warns, since dropping findings would misreport the organization.

use std::collections::HashMap;

use keyaudit_core::baseline::{BaselineState, ResolvedFinding};
use keyaudit_core::eval::{Finding, Subject, Verdict};
use keyaudit_core::ids::AccountId;
use keyaudit_core::inventory::ROOT_USER_NAME;
use keyaudit_core::report::{AccountRecord, AccountStatus, Report, RunInfo};
use keyaudit_core::rules::{RuleMeta, Severity};
use keyaudit_core::triage::Action;
use serde::Serialize;

use super::{OutputOptions, rule_tags, sentence, with_accounts};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/keyaudit/keyaudit";
/// GitHub code scanning's documented cap on results per run.
pub(crate) const GITHUB_MAX_RESULTS_PER_RUN: usize = 25_000;

#[derive(Serialize)]
struct Log {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    automation_details: Id,
    invocations: Vec<Invocation>,
    logical_locations: Vec<LogicalLocation>,
    results: Vec<SarifResult>,
    properties: RunProperties,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    information_uri: &'static str,
    rules: Vec<Descriptor>,
}

#[derive(Serialize)]
struct Id {
    id: String,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

fn text(t: impl Into<String>) -> Text {
    Text { text: t.into() }
}

#[derive(Serialize)]
struct Help {
    text: &'static str,
    markdown: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    id: &'static str,
    name: String,
    short_description: Text,
    full_description: Text,
    help: Help,
    help_uri: String,
    default_configuration: Configuration,
    properties: DescriptorProperties,
}

#[derive(Serialize)]
struct Configuration {
    level: Level,
}

#[derive(Serialize)]
struct DescriptorProperties {
    tags: Vec<String>,
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
    precision: &'static str,
    #[serde(rename = "problem.severity")]
    problem_severity: &'static str,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Level {
    Error,
    Warning,
    None,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Fail,
    Pass,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    start_time_utc: String,
    end_time_utc: String,
    tool_execution_notifications: Vec<Notification>,
    properties: InvocationProperties,
}

#[derive(Serialize)]
struct InvocationProperties {
    as_of: String,
    max_age_days: u32,
    warn_days: u32,
    unused_days: u32,
    /// `null` in a merged report (each organization had its own caller).
    caller_arn: Option<String>,
}

#[derive(Serialize)]
struct Notification {
    level: Level,
    message: Text,
    descriptor: Id,
    properties: NotificationProperties,
}

#[derive(Serialize)]
struct NotificationProperties {
    account_id: String,
    reason_code: &'static str,
    reason_action: Option<String>,
    reason_aws_error_code: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogicalLocation {
    name: String,
    fully_qualified_name: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_index: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: &'static str,
    rule_index: usize,
    kind: Kind,
    level: Level,
    message: Text,
    locations: Vec<Location>,
    partial_fingerprints: Fingerprints,
    /// `new`, `unchanged`, `updated`, or `absent` for a finding resolved since the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressions: Option<Vec<SarifSuppression>>,
    properties: ResultProperties,
}

/// An exception: `kind: external` (it lives in keyaudit's suppressions file, not in the "source").
#[derive(Serialize)]
struct SarifSuppression {
    kind: &'static str,
    status: &'static str,
    justification: String,
    properties: SuppressionProperties,
}

#[derive(Serialize)]
struct SuppressionProperties {
    entry: String,
    owner: String,
    expires: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logical_locations: Vec<LogicalRef>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    /// The artifact is synthetic and has no lines; line 1 satisfies consumers that want a region (SARIF2017).
    region: Region,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogicalRef {
    index: usize,
    fully_qualified_name: String,
    kind: &'static str,
}

#[derive(Serialize)]
struct Fingerprints {
    /// Named after the fingerprint scheme ([`keyaudit_core::eval::FINGERPRINT_SCHEME`]).
    #[serde(rename = "keyaudit/v2")]
    keyaudit: String,
}

#[derive(Serialize)]
struct ResultProperties {
    account_id: String,
    account_name: Option<String>,
    ou_path: Option<String>,
    subject: &'static str,
    user_name: String,
    user_arn: String,
    key_slot: Option<u8>,
    access_key_id: Option<String>,
    verdict: &'static str,
    usage: Option<&'static str>,
    last_used_at: Option<String>,
    action: &'static str,
    action_reason: Option<String>,
    owner: Option<String>,
    owner_tag: Option<String>,
    baseline_verdict: Option<&'static str>,
}

#[derive(Serialize)]
struct RunProperties {
    organization_id: Option<String>,
    /// Every organization the report holds (several in a merged report).
    organization_ids: Vec<String>,
    accounts_selected: usize,
    accounts_scanned: usize,
    accounts_failed: usize,
    skipped_accounts: Vec<SkippedAccount>,
}

#[derive(Serialize)]
struct SkippedAccount {
    account_id: String,
    account_name: Option<String>,
    ou_path: Option<String>,
    state: String,
    reason: String,
}

/// GitHub code scanning reads `security-severity` (0.1–10) to rank alerts.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Low => "3.0",
        Severity::Medium => "5.5",
        Severity::High => "8.0",
        Severity::Critical => "9.5",
    }
}

/// The result's kind and level; `None` for verdicts SARIF does not report (inactive and deleted keys).
fn kind_and_level(v: Verdict) -> Option<(Kind, Level)> {
    match v {
        Verdict::Fail => Some((Kind::Fail, Level::Error)),
        Verdict::Warn => Some((Kind::Fail, Level::Warning)),
        Verdict::Pass => Some((Kind::Pass, Level::None)),
        Verdict::NotApplicable | Verdict::Resolved => None,
    }
}

fn descriptor(m: &RuleMeta) -> Descriptor {
    Descriptor {
        id: m.id,
        name: pascal(m.name),
        short_description: text(sentence(m.title)),
        full_description: text(sentence(&format!("{}. {}", m.title, m.description))),
        help: Help { text: m.remediation, markdown: m.docs },
        help_uri: format!("{INFORMATION_URI}/blob/main/crates/core/src/rules/iam/{}.md", m.name.replace('-', "_")),
        default_configuration: Configuration { level: Level::Error },
        properties: DescriptorProperties {
            tags: rule_tags(m),
            security_severity: security_severity(m.severity),
            precision: "very-high",
            problem_severity: "error",
        },
    }
}

/// `stale-access-key` → `StaleAccessKey` (SARIF tools expect rule names in Pascal case).
fn pascal(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The synthetic repository-relative artifact of a finding: `aws/<account-id>/iam/<user-name>`, the root user
/// as `root`; characters outside a URI path segment's unreserved and sub-delimiter set are percent-encoded.
pub(crate) fn artifact_uri(account_id: &AccountId, user_name: &str) -> String {
    let user = if user_name == ROOT_USER_NAME { "root".to_owned() } else { percent_encode(user_name) };
    format!("aws/{account_id}/iam/{user}")
}

fn physical(account_id: &AccountId, user_name: &str) -> PhysicalLocation {
    PhysicalLocation {
        artifact_location: ArtifactLocation { uri: artifact_uri(account_id, user_name) },
        region: Region { start_line: 1 },
    }
}

fn percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'+' | b'=' | b',' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Builds the run's logical locations, one per organization, OU, account, user and key, deduplicated.
#[derive(Default)]
struct Locations {
    items: Vec<LogicalLocation>,
    index: HashMap<String, usize>,
}

impl Locations {
    fn add(&mut self, fqn: String, name: &str, kind: &'static str, parent: Option<usize>) -> usize {
        if let Some(&i) = self.index.get(&fqn) {
            return i;
        }
        self.items.push(LogicalLocation {
            name: name.to_owned(),
            fully_qualified_name: fqn.clone(),
            kind,
            parent_index: parent,
        });
        self.index.insert(fqn, self.items.len() - 1);
        self.items.len() - 1
    }

    /// The chain organization → OU path → account → user (→ key); returns the innermost location.
    fn of(&mut self, report: &Report, f: &Finding, record: Option<&AccountRecord>) -> LogicalRef {
        let mut parent = None;
        let mut fqn = String::new();
        if let Some(id) = report.run_of(f.account_id.as_str()).scope.organization_id() {
            fqn = id.to_owned();
            parent = Some(self.add(fqn.clone(), id, "namespace", None));
            let path = record.and_then(|r| r.account.ou_path.as_deref());
            for name in path.and_then(|p| keyaudit_core::ou::split_ou_path(p).ok()).unwrap_or_default() {
                fqn = format!("{fqn}/{}", name.replace('/', "\\/"));
                parent = Some(self.add(fqn.clone(), &name, "namespace", parent));
            }
        }
        let account = f.account_id.as_str();
        fqn = if fqn.is_empty() { account.to_owned() } else { format!("{fqn}/{account}") };
        parent = Some(self.add(fqn.clone(), account, "module", parent));
        fqn = format!("{fqn}/{}", f.user_name);
        let user = self.add(fqn.clone(), &f.user_name, "type", parent);
        let Some(key) = &f.key else {
            return LogicalRef { index: user, fully_qualified_name: fqn, kind: "type" };
        };
        let name =
            key.access_key_id.as_ref().map_or_else(|| format!("key-slot-{}", key.slot.number()), |k| k.to_string());
        fqn = format!("{fqn}/{name}");
        LogicalRef {
            index: self.add(fqn.clone(), &name, "member", Some(user)),
            fully_qualified_name: fqn,
            kind: "member",
        }
    }
}

fn result(
    report: &Report,
    f: &Finding,
    record: Option<&AccountRecord>,
    rule_index: usize,
    (kind, level): (Kind, Level),
    locs: &mut Locations,
) -> SarifResult {
    SarifResult {
        rule_id: f.rule.id,
        rule_index,
        kind,
        level,
        message: text(sentence(&format!("{} in account {}", f.message, f.account_id))),
        locations: vec![Location {
            physical_location: physical(&f.account_id, &f.user_name),
            logical_locations: vec![locs.of(report, f, record)],
        }],
        partial_fingerprints: Fingerprints { keyaudit: f.fingerprint(&report.run.partition) },
        baseline_state: f.baseline_state.map(BaselineState::as_str),
        suppressions: f.suppression.as_ref().map(|s| {
            vec![SarifSuppression {
                kind: "external",
                status: "accepted",
                justification: s.reason.clone(),
                properties: SuppressionProperties {
                    entry: s.entry.clone(),
                    owner: s.owner.clone(),
                    expires: s.expires.to_string(),
                },
            }]
        }),
        properties: ResultProperties {
            account_id: f.account_id.to_string(),
            account_name: record.and_then(|r| r.account.name.clone()),
            ou_path: record.and_then(|r| r.account.ou_path.clone()),
            subject: f.subject().as_str(),
            user_name: f.user_name.clone(),
            user_arn: f.user_arn.clone(),
            key_slot: f.key.as_ref().map(|k| k.slot.number()),
            access_key_id: f.key.as_ref().and_then(|k| k.access_key_id.as_ref()).map(|k| k.to_string()),
            verdict: f.verdict.as_str(),
            usage: f.triage.usage.map(|u| u.as_str()),
            last_used_at: f.key.as_ref().and_then(|k| k.last_used_at).map(|t| t.to_string()),
            action: f.triage.action.as_str(),
            action_reason: f.triage.action_reason.clone(),
            owner: f.owner.as_ref().map(|o| o.value.clone()),
            owner_tag: f.owner.as_ref().map(|o| o.tag.clone()),
            baseline_verdict: f.baseline_state.and_then(|s| s.was(f.verdict)).map(Verdict::as_str),
        },
    }
}

/// A finding that failed or warned in the baseline and no longer does: `baselineState: absent`, kind `pass`.
fn absent(r: &ResolvedFinding, rule: &'static RuleMeta, rule_index: usize) -> SarifResult {
    let f = &r.finding;
    let now = r.now.map_or("gone from the report", Verdict::as_str);
    SarifResult {
        rule_id: rule.id,
        rule_index,
        kind: Kind::Pass,
        level: Level::None,
        message: text(sentence(&format!(
            "Resolved since the baseline ({} then, {now} now): {} in account {}",
            f.verdict.as_str(),
            f.message,
            f.account_id
        ))),
        locations: vec![Location {
            physical_location: physical(&f.account_id, &f.user_name),
            logical_locations: vec![],
        }],
        partial_fingerprints: Fingerprints { keyaudit: f.fingerprint.clone() },
        baseline_state: Some("absent"),
        suppressions: None,
        properties: ResultProperties {
            account_id: f.account_id.to_string(),
            account_name: r.account.as_ref().and_then(|a| a.name.clone()),
            ou_path: r.account.as_ref().and_then(|a| a.ou_path.clone()),
            subject: if f.key_slot.is_some() { Subject::AccessKey.as_str() } else { Subject::User.as_str() },
            user_name: f.user_name.clone(),
            user_arn: f.user_arn.clone(),
            key_slot: f.key_slot,
            access_key_id: f.access_key_id.clone(),
            verdict: r.now.map_or("absent", Verdict::as_str),
            usage: None,
            last_used_at: None,
            action: Action::None.as_str(),
            action_reason: None,
            owner: None,
            owner_tag: None,
            baseline_verdict: Some(f.verdict.as_str()),
        },
    }
}

pub(crate) fn render(report: &Report, opts: &OutputOptions) -> serde_json::Result<Vec<u8>> {
    let metas = &report.rules;
    let rule_index: HashMap<&str, usize> = metas.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
    let mut locs = Locations::default();
    let results: Vec<SarifResult> = with_accounts(report)
        .filter_map(|(f, account)| {
            let shown =
                kind_and_level(f.verdict).filter(|(kind, _)| matches!(kind, Kind::Fail) || opts.sarif_include_pass)?;
            let index = *rule_index.get(f.rule.id)?;
            Some(result(report, f, account, index, shown, &mut locs))
        })
        .chain(report.comparison.iter().flat_map(|c| &c.resolved).filter_map(|r| {
            let index = *rule_index.get(r.finding.rule_id.as_str())?;
            Some(absent(r, metas[index], index))
        }))
        .collect();
    if results.len() > GITHUB_MAX_RESULTS_PER_RUN {
        tracing::warn!(
            results = results.len(),
            "the SARIF run has more than {GITHUB_MAX_RESULTS_PER_RUN} results: GitHub code scanning will reject the \
             upload; narrow it with --rules, --ou or --account (the file keeps every result)"
        );
    }

    let account_label = |r: &AccountRecord| match (&r.account.name, &r.account.ou_path) {
        (Some(name), Some(ou)) => format!("account {} ({name}, {ou})", r.account.id),
        _ => format!("account {}", r.account.id),
    };
    let mut notifications = Vec::new();
    let mut skipped = Vec::new();
    for r in &report.accounts {
        match &r.status {
            AccountStatus::Failed(reason) => notifications.push(Notification {
                level: Level::Error,
                message: text(sentence(&format!("{} could not be assessed: {reason}", account_label(r)))),
                descriptor: Id { id: reason.code.as_str().to_owned() },
                properties: NotificationProperties {
                    account_id: r.account.id.to_string(),
                    reason_code: reason.code.as_str(),
                    reason_action: reason.action.as_deref().map(str::to_owned),
                    reason_aws_error_code: reason.aws_error_code.clone(),
                },
            }),
            AccountStatus::Skipped(reason) => skipped.push(SkippedAccount {
                account_id: r.account.id.to_string(),
                account_name: r.account.name.clone(),
                ou_path: r.account.ou_path.clone(),
                state: r.account.state.as_str().to_owned(),
                reason: reason.to_string(),
            }),
            AccountStatus::Scanned { enrichment, .. } if !enrichment.is_complete() => {
                notifications.push(Notification {
                    level: Level::Warning,
                    message: text(sentence(&format!(
                        "{}: every verdict is in, but only {} of {} optional look-ups (key ids, owners) finished \
                         within --enrichment-timeout; some access_key_id or owner values are empty",
                        account_label(r),
                        enrichment.done,
                        enrichment.wanted
                    ))),
                    descriptor: Id { id: "enrichment_partial".to_owned() },
                    properties: NotificationProperties {
                        account_id: r.account.id.to_string(),
                        reason_code: "enrichment_partial",
                        reason_action: None,
                        reason_aws_error_code: None,
                    },
                });
            }
            AccountStatus::Scanned { .. } => {}
        }
    }
    let summary = report.summary();
    // The category GitHub files the analysis under: the organization (or standalone account), or every one of
    // a merged report's, so that each kind of upload keeps its own history.
    let scanned = |run: &RunInfo| match run.scope.organization_id() {
        Some(id) => id.to_owned(),
        None => run.origin.as_ref().map(|o| o.caller_account_id.to_string()).unwrap_or_default(),
    };
    let automation = format!("keyaudit/{}/", report.runs().into_iter().map(scanned).collect::<Vec<_>>().join("+"));
    let org_id = report.run.scope.organization_id().map(str::to_owned);
    let organization_ids =
        report.runs().into_iter().filter_map(|r| r.scope.organization_id()).map(str::to_owned).collect();
    let version = env!("CARGO_PKG_VERSION");
    let config = report.run.config;
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "keyaudit",
                    version,
                    semantic_version: version,
                    information_uri: INFORMATION_URI,
                    rules: metas.iter().map(|m| descriptor(m)).collect(),
                },
            },
            automation_details: Id { id: automation },
            invocations: vec![Invocation {
                execution_successful: summary.accounts_failed == 0,
                start_time_utc: report.run.started_at.to_string(),
                end_time_utc: report.run.finished_at.to_string(),
                tool_execution_notifications: notifications,
                properties: InvocationProperties {
                    as_of: report.run.as_of.to_string(),
                    max_age_days: config.max_age_days(),
                    warn_days: config.warn_days(),
                    unused_days: config.unused_days(),
                    caller_arn: report.run.origin.as_ref().map(|o| o.caller_arn.clone()),
                },
            }],
            logical_locations: locs.items,
            results,
            properties: RunProperties {
                organization_id: org_id,
                organization_ids,
                accounts_selected: summary.accounts_total,
                accounts_scanned: summary.accounts_scanned,
                accounts_failed: summary.accounts_failed,
                skipped_accounts: skipped,
            },
        }],
    };
    let mut bytes = serde_json::to_vec_pretty(&log)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::report;

    #[test]
    fn artifact_uris_are_repository_relative_and_encoded() {
        assert_eq!(percent_encode("a+b=c,d.e@f_g-h"), "a+b=c,d.e@f_g-h", "IAM's own characters stay readable");
        assert_eq!(percent_encode("x/y z"), "x%2Fy%20z");
        assert_eq!(pascal("multiple-active-keys"), "MultipleActiveKeys");
    }

    #[test]
    fn sarif_snapshot() {
        let opts = OutputOptions { sarif_include_pass: true, ..OutputOptions::default() };
        let value: serde_json::Value = serde_json::from_slice(&render(&report(), &opts).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, {
            ".runs[0].tool.driver.version" => "[version]",
            ".runs[0].tool.driver.semanticVersion" => "[version]",
            ".runs[0].tool.driver.rules[0].help.markdown" => "[docs]",
        });
    }
}
