//! SARIF 2.1.0: one `reportingDescriptor` per rule, one result per failing or warning key (passing keys with
//! `--sarif-include-pass`), located by logical locations (organization → OU path → account → user → key), with
//! a stable partial fingerprint per key and the accounts that could not be assessed as tool execution
//! notifications.

use std::collections::HashMap;

use keyaudit_core::eval::{Finding, Verdict};
use keyaudit_core::report::{AccountRecord, AccountStatus, Report, Scope};
use keyaudit_core::rules::{RuleMeta, RuleSet, Severity};
use serde_json::{Value, json};

use super::{OutputOptions, rule_tags, sentence, with_accounts};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/keyaudit/keyaudit";

/// GitHub code scanning reads `security-severity` (0.1–10) to rank alerts.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Low => "3.0",
        Severity::Medium => "5.5",
        Severity::High => "8.0",
        Severity::Critical => "9.5",
    }
}

fn descriptor(m: &RuleMeta) -> Value {
    json!({
        "id": m.id,
        "name": pascal(m.name),
        "shortDescription": {"text": sentence(m.title)},
        "fullDescription": {"text": sentence(&format!(
            "{}. An active access key fails when its last rotation is older than the maximum key age; inactive keys \
             are not evaluated", m.title))},
        "help": {"text": m.remediation, "markdown": m.docs},
        "helpUri": format!("{INFORMATION_URI}/blob/main/crates/core/src/rules/iam/{}.md", m.name.replace('-', "_")),
        "messageStrings": {
            "fail": {"text": "Access key '{0}' of '{1}' in account '{2}' was last rotated '{3}' days ago; the maximum is '{4}' days (overdue since '{5}')."},
            "warn": {"text": "Access key '{0}' of '{1}' in account '{2}' was last rotated '{3}' days ago; rotate it before '{5}' (maximum '{4}' days)."},
            "pass": {"text": "Access key '{0}' of '{1}' in account '{2}' was last rotated '{3}' days ago; due for rotation by '{5}'."},
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "tags": rule_tags(m),
            "security-severity": security_severity(m.severity),
            "precision": "very-high",
            "problem.severity": "error",
        },
    })
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

/// Builds the run's logical locations, one per organization, OU, account, user and key, deduplicated.
#[derive(Default)]
struct Locations {
    items: Vec<Value>,
    index: HashMap<String, usize>,
}

impl Locations {
    fn add(&mut self, fqn: String, name: &str, kind: &str, parent: Option<usize>) -> usize {
        if let Some(&i) = self.index.get(&fqn) {
            return i;
        }
        let mut loc = json!({"name": name, "fullyQualifiedName": fqn, "kind": kind});
        if let Some(p) = parent {
            loc["parentIndex"] = json!(p);
        }
        self.items.push(loc);
        self.index.insert(fqn, self.items.len() - 1);
        self.items.len() - 1
    }

    /// The chain organization → OU path → account → user → key; returns the key's index and name.
    fn key(&mut self, report: &Report, f: &Finding, record: Option<&AccountRecord>) -> (usize, String) {
        let mut parent = None;
        let mut fqn = String::new();
        if let Scope::Organization { id, .. } = &report.run.scope {
            fqn = id.clone();
            parent = Some(self.add(fqn.clone(), id, "namespace", None));
            if let Some(path) = record.and_then(|r| r.account.ou_path.as_deref()) {
                for segment in path.split('/').filter(|s| !s.is_empty()) {
                    fqn = format!("{fqn}/{segment}");
                    parent = Some(self.add(fqn.clone(), segment, "namespace", parent));
                }
            }
        }
        let account = f.account_id.as_str();
        fqn = if fqn.is_empty() { account.to_owned() } else { format!("{fqn}/{account}") };
        parent = Some(self.add(fqn.clone(), account, "module", parent));
        fqn = format!("{fqn}/{}", f.user_name);
        parent = Some(self.add(fqn.clone(), &f.user_name, "type", parent));
        let key =
            f.access_key_id.as_ref().map_or_else(|| format!("key-slot-{}", f.key_slot.number()), |k| k.to_string());
        fqn = format!("{fqn}/{key}");
        (self.add(fqn.clone(), &key, "member", parent), fqn)
    }
}

fn result(
    report: &Report,
    f: &Finding,
    record: Option<&AccountRecord>,
    rule_index: usize,
    locs: &mut Locations,
) -> Value {
    let arguments = [
        f.key_slot.number().to_string(),
        f.user_name.clone(),
        f.account_id.to_string(),
        f.age_days().to_string(),
        report.run.config.max_age_days().to_string(),
        f.due_at.strftime("%Y-%m-%d").to_string(),
    ];
    let (index, fqn) = locs.key(report, f, record);
    let (kind, level) = match f.verdict {
        Verdict::Fail => ("fail", "error"),
        Verdict::Warn => ("fail", "warning"),
        Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved => ("pass", "none"),
    };
    json!({
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "kind": kind,
        "level": level,
        "message": {
            "id": f.verdict.as_str(),
            "arguments": arguments,
            "text": sentence(&format!("{} in account {}", f.message, f.account_id)),
        },
        "locations": [{"logicalLocations": [{"index": index, "fullyQualifiedName": fqn, "kind": "member"}]}],
        "partialFingerprints": {"keyaudit/v1": f.fingerprint(&report.run.partition)},
        "properties": {
            "account_id": f.account_id.as_str(),
            "account_name": record.and_then(|r| r.account.name.as_deref()),
            "ou_path": record.and_then(|r| r.account.ou_path.as_deref()),
            "user_name": f.user_name,
            "user_arn": f.user_arn,
            "key_slot": f.key_slot.number(),
            "access_key_id": f.access_key_id.as_ref().map(|k| k.as_str()),
            "age_days": f.age_days(),
            "last_rotated": f.last_rotated.to_string(),
            "due_at": f.due_at.to_string(),
            "verdict": f.verdict.as_str(),
        },
    })
}

pub(crate) fn render(report: &Report, rules: &RuleSet, opts: &OutputOptions) -> serde_json::Result<Vec<u8>> {
    let metas = rules.metas();
    let rule_index: HashMap<&str, usize> = metas.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
    let mut locs = Locations::default();
    let results: Vec<Value> = with_accounts(report)
        .filter(|(f, _)| f.verdict.is_actionable() || (opts.sarif_include_pass && f.verdict == Verdict::Pass))
        .map(|(f, account)| result(report, f, account, rule_index[f.rule_id], &mut locs))
        .collect();

    let account_label = |r: &AccountRecord| match (&r.account.name, &r.account.ou_path) {
        (Some(name), Some(ou)) => format!("account {} ({name}, {ou})", r.account.id),
        _ => format!("account {}", r.account.id),
    };
    let notifications: Vec<Value> = report
        .accounts
        .iter()
        .filter_map(|r| match &r.status {
            AccountStatus::Failed(reason) => Some(json!({
                "level": "error",
                "message": {"text": sentence(&format!("{} could not be assessed: {reason}", account_label(r)))},
                "descriptor": {"id": reason.code.as_str()},
                "properties": {
                    "account_id": r.account.id.as_str(),
                    "reason_code": reason.code.as_str(),
                    "reason_action": reason.action,
                    "reason_aws_error_code": reason.aws_error_code,
                },
            })),
            _ => None,
        })
        .collect();
    let skipped: Vec<Value> = report
        .accounts
        .iter()
        .filter_map(|r| match &r.status {
            AccountStatus::Skipped(reason) => Some(json!({
                "account_id": r.account.id.as_str(),
                "account_name": r.account.name,
                "ou_path": r.account.ou_path,
                "state": r.account.state.as_str(),
                "reason": reason.to_string(),
            })),
            _ => None,
        })
        .collect();
    let summary = report.summary();
    let (org_id, automation) = match &report.run.scope {
        Scope::Organization { id, .. } => (Some(id.as_str()), format!("keyaudit/{id}/")),
        Scope::StandaloneAccount => (None, format!("keyaudit/{}/", report.run.caller_account_id)),
    };
    let version = env!("CARGO_PKG_VERSION");
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "keyaudit",
                "version": version,
                "semanticVersion": version,
                "informationUri": INFORMATION_URI,
                "rules": metas.iter().map(|m| descriptor(m)).collect::<Vec<_>>(),
            }},
            "automationDetails": {"id": automation},
            "invocations": [{
                "executionSuccessful": summary.accounts_failed == 0,
                "startTimeUtc": report.run.started_at.to_string(),
                "endTimeUtc": report.run.finished_at.to_string(),
                "toolExecutionNotifications": notifications,
                "properties": {
                    "as_of": report.run.as_of.to_string(),
                    "max_age_days": report.run.config.max_age_days(),
                    "warn_days": report.run.config.warn_days(),
                    "caller_arn": report.run.caller_arn,
                },
            }],
            "logicalLocations": locs.items,
            "results": results,
            "properties": {
                "organization_id": org_id,
                "accounts_selected": summary.accounts_total,
                "accounts_scanned": summary.accounts_scanned,
                "accounts_failed": summary.accounts_failed,
                "skipped_accounts": skipped,
            },
        }],
    });
    let mut bytes = serde_json::to_vec_pretty(&log)?;
    bytes.push(b'\n');
    Ok(bytes)
}
