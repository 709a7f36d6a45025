//! OCSF 1.5 Compliance Finding (class_uid 2003) records, one per failing or warning key (every evaluated key
//! with `--ocsf-include-pass`), as a JSON array. Checked against Prowler's `py-ocsf-models` in the tests.

use std::collections::HashMap;

use keyaudit_core::eval::{Finding, Verdict};
use keyaudit_core::report::{AccountRecord, Report, Scope};
use keyaudit_core::rules::{RuleMeta, RuleSet, Severity};
use serde_json::{Value, json};

use super::{OutputOptions, requirements, with_accounts};

const OCSF_VERSION: &str = "1.5.0";

fn severity(f: &Finding) -> (u8, &'static str) {
    match (f.verdict, f.severity) {
        (Verdict::Fail, Severity::Low) => (2, "Low"),
        (Verdict::Fail, Severity::Medium) => (3, "Medium"),
        (Verdict::Fail, Severity::High) => (4, "High"),
        (Verdict::Fail, Severity::Critical) => (5, "Critical"),
        (Verdict::Warn, _) => (2, "Low"),
        (Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved, _) => (1, "Informational"),
    }
}

/// OCSF compliance status: 1 Pass, 2 Warning, 3 Fail (not_applicable and resolved are reported as Pass with their verdict kept).
fn compliance_status(v: Verdict) -> (u8, &'static str) {
    match v {
        Verdict::Fail => (3, "Fail"),
        Verdict::Warn => (2, "Warning"),
        Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved => (1, "Pass"),
    }
}

fn record(report: &Report, meta: &RuleMeta, f: &Finding, account: Option<&AccountRecord>) -> Value {
    let time_ms = report.run.as_of.as_millisecond();
    let fingerprint = f.fingerprint(&report.run.partition);
    let (severity_id, severity) = severity(f);
    let (status_id, status) = compliance_status(f.verdict);
    let org = match &report.run.scope {
        Scope::Organization { id, .. } => {
            json!({"uid": id, "ou_name": account.and_then(|r| r.account.ou_path.as_deref())})
        }
        Scope::StandaloneAccount => Value::Null,
    };
    let key_uid = f
        .access_key_id
        .as_ref()
        .map_or_else(|| format!("{}#key-slot-{}", f.user_arn, f.key_slot.number()), |k| k.to_string());
    let mut cloud = json!({
        "provider": "AWS",
        "region": report.run.region,
        "account": {
            "uid": f.account_id.as_str(),
            "name": account.and_then(|r| r.account.name.clone()).unwrap_or_else(|| f.account_id.to_string()),
            "type_id": 10,
            "type": "AWS Account",
        },
    });
    if !org.is_null() {
        cloud["org"] = org;
    }
    json!({
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2003,
        "class_name": "Compliance Finding",
        "type_uid": 200301,
        "type_name": "Compliance Finding: Create",
        "time": time_ms,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "status_code": f.verdict.as_str().to_uppercase(),
        "message": f.message,
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["cloud"],
            "product": {"name": "keyaudit", "vendor_name": "keyaudit", "version": env!("CARGO_PKG_VERSION"), "uid": "keyaudit"},
            "event_code": meta.id,
            "uid": fingerprint,
        },
        "finding_info": {
            "uid": fingerprint,
            "title": meta.title,
            "desc": f.message,
            "created_time": time_ms,
            "types": ["Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"],
        },
        "compliance": {
            "status_id": status_id,
            "control": meta.id,
            "desc": meta.title,
            "standards": meta.cis.iter().map(|c| format!("CIS AWS Foundations Benchmark v{}", c.version)).collect::<Vec<_>>(),
            "requirements": requirements(meta),
        },
        "cloud": cloud,
        "resources": [
            {
                "uid": f.user_arn,
                "name": f.user_name,
                "type": "AwsIamUser",
                "cloud_partition": report.run.partition.as_str(),
                "region": "global",
                "namespace": account.and_then(|r| r.account.ou_path.as_deref()),
            },
            {
                "uid": key_uid,
                "name": f.access_key_id.as_ref().map(|k| k.as_str()),
                "type": "AwsIamAccessKey",
                "cloud_partition": report.run.partition.as_str(),
                "region": "global",
                "data": {
                    "key_slot": f.key_slot.number(),
                    "key_status": f.key_state(),
                    "last_rotated": f.last_rotated.to_string(),
                    "age_days": f.age_days(),
                    "due_at": f.due_at.to_string(),
                    "last_used_at": f.last_used_at.map(|t| t.to_string()),
                },
            }
        ],
        "remediation": {
            "desc": meta.remediation,
            "references": ["https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html#rotating_access_keys_console"],
        },
        "unmapped": {"verdict": f.verdict.as_str(), "compliance_status": status, "as_of": report.run.as_of.to_string()},
    })
}

pub(crate) fn render(report: &Report, rules: &RuleSet, opts: &OutputOptions) -> serde_json::Result<Vec<u8>> {
    let metas: HashMap<&str, &RuleMeta> = rules.metas().into_iter().map(|m| (m.id, m)).collect();
    let records: Vec<Value> = with_accounts(report)
        .filter(|(f, _)| f.verdict.is_actionable() || opts.ocsf_include_pass)
        .map(|(f, account)| record(report, metas[f.rule_id], f, account))
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&records)?;
    bytes.push(b'\n');
    Ok(bytes)
}
