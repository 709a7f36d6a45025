//! AWS Security Finding Format (ASFF 2018-10-08) for Security Hub `BatchImportFindings`: one finding per
//! evaluated active key (fail → FAILED, warn → WARNING, pass → PASSED, so a rotated key resolves its earlier
//! finding); inactive keys are left out. `Id` is the stable fingerprint, so re-imports update in place.

use std::collections::HashMap;

use super::with_accounts;
use keyaudit_core::eval::{Finding, Verdict};
use keyaudit_core::report::{AccountRecord, Report};
use keyaudit_core::rules::{RuleMeta, RuleSet, Severity};
use serde_json::{Map, Value, json};

const TYPE: &str = "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark";
const ROTATE_URL: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html#rotating_access_keys_console";

fn label(f: &Finding) -> &'static str {
    match (f.verdict, f.severity) {
        (Verdict::Fail, Severity::Low) => "LOW",
        (Verdict::Fail, Severity::Medium) => "MEDIUM",
        (Verdict::Fail, Severity::High) => "HIGH",
        (Verdict::Fail, Severity::Critical) => "CRITICAL",
        (Verdict::Warn, _) => "LOW",
        (Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved, _) => "INFORMATIONAL",
    }
}

fn finding(report: &Report, meta: &RuleMeta, f: &Finding, account: Option<&AccountRecord>) -> Value {
    let partition = report.run.partition.as_str();
    let region = &report.run.region;
    let product_account = &report.run.caller_account_id;
    let status = match f.verdict {
        Verdict::Fail => "FAILED",
        Verdict::Warn => "WARNING",
        Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved => "PASSED",
    };
    // Details.Other is a map of strings.
    let mut other = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            other.insert(k.to_owned(), Value::String(v));
        }
    };
    put("AccessKeyId", f.access_key_id.as_ref().map(|k| k.to_string()));
    put("KeySlot", Some(f.key_slot.number().to_string()));
    put("KeyStatus", Some(f.key_state().to_owned()));
    put("LastRotated", Some(f.last_rotated.to_string()));
    put("AgeDays", Some(f.age_days().to_string()));
    put("DueAt", Some(f.due_at.to_string()));
    put("LastUsedAt", f.last_used_at.map(|t| t.to_string()));
    put("OuPath", account.and_then(|r| r.account.ou_path.clone()));
    let as_of = report.run.as_of.to_string();
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": f.fingerprint(&report.run.partition),
        "ProductArn": format!("arn:{partition}:securityhub:{region}:{product_account}:product/{product_account}/default"),
        "GeneratorId": meta.id,
        "AwsAccountId": f.account_id.as_str(),
        "Types": [TYPE],
        "CreatedAt": as_of,
        "UpdatedAt": as_of,
        "Severity": {"Label": label(f), "Original": f.verdict.as_str()},
        "Title": meta.title,
        "Description": f.message,
        "Remediation": {"Recommendation": {"Text": meta.remediation, "Url": ROTATE_URL}},
        "ProductFields": {
            "ProviderName": "keyaudit",
            "ProviderVersion": env!("CARGO_PKG_VERSION"),
            "keyaudit/verdict": f.verdict.as_str(),
            "keyaudit/account_name": account.and_then(|r| r.account.name.as_deref()).unwrap_or(""),
        },
        "Resources": [{
            "Type": "AwsIamUser",
            "Id": f.user_arn,
            "Partition": partition,
            "Region": region,
            "Details": {"Other": other},
        }],
        "Compliance": {
            "Status": status,
            "RelatedRequirements": super::requirements(meta),
            "SecurityControlId": meta.security_hub.first().copied(),
        },
        // A key deleted since the credential report no longer exists: its finding is archived, as AWS's own
        // controls do for deleted resources.
        "RecordState": if f.verdict == Verdict::Resolved { "ARCHIVED" } else { "ACTIVE" },
        "Workflow": {"Status": "NEW"},
    })
}

pub(crate) fn render(report: &Report, rules: &RuleSet) -> serde_json::Result<Vec<u8>> {
    let metas: HashMap<&str, &RuleMeta> = rules.metas().into_iter().map(|m| (m.id, m)).collect();
    let findings: Vec<Value> = with_accounts(report)
        .filter(|(f, _)| f.verdict != Verdict::NotApplicable)
        .map(|(f, account)| finding(report, metas[f.rule_id], f, account))
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&findings)?;
    bytes.push(b'\n');
    Ok(bytes)
}
