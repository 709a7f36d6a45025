//! OCSF Compliance Finding (class_uid 2003) records, built from typed structs: the OCSF export is 1.5, one record per
//! failing or warning finding of every rule (every finding with `--ocsf-include-pass`), as a JSON array; Security
//! Lake takes the same records as 1.3 (see `security_lake`). Checked against Prowler's `py-ocsf-models` in the tests.

use keyaudit_core::eval::{Finding, Verdict};
use keyaudit_core::report::{AccountRecord, Report};
use serde::Serialize;

use super::{ExportSeverity, OutputOptions, requirements, with_accounts};

/// The OCSF schema version a record is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Version {
    /// Security Lake's custom sources (OCSF 1.3 at most): `compliance.desc` came in 1.5.
    V1_3,
    /// The OCSF export.
    V1_5,
}

impl Version {
    fn as_str(self) -> &'static str {
        match self {
            Version::V1_3 => "1.3.0",
            Version::V1_5 => "1.5.0",
        }
    }
}

#[derive(Serialize)]
pub(super) struct Record<'a> {
    activity_id: u8,
    activity_name: &'static str,
    category_uid: u8,
    category_name: &'static str,
    class_uid: u16,
    class_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    time: i64,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    status_code: String,
    /// The exception's reason, owner and end date, for a suppressed finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<String>,
    message: &'a str,
    metadata: Metadata,
    finding_info: FindingInfo<'a>,
    compliance: Compliance,
    cloud: Cloud<'a>,
    resources: Vec<Resource<'a>>,
    remediation: Remediation,
    unmapped: Unmapped<'a>,
}

#[derive(Serialize)]
struct Metadata {
    version: &'static str,
    profiles: [&'static str; 1],
    product: Product,
    event_code: &'static str,
    uid: String,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
    uid: &'static str,
}

#[derive(Serialize)]
struct FindingInfo<'a> {
    uid: String,
    title: &'static str,
    desc: &'a str,
    created_time: i64,
    types: [&'static str; 1],
}

#[derive(Serialize)]
struct Compliance {
    status_id: u8,
    control: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    desc: Option<&'static str>,
    standards: Vec<String>,
    requirements: Vec<String>,
}

#[derive(Serialize)]
struct Cloud<'a> {
    provider: &'static str,
    region: &'a str,
    account: CloudAccount,
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<Org<'a>>,
}

#[derive(Serialize)]
struct CloudAccount {
    uid: String,
    name: String,
    type_id: u8,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Org<'a> {
    uid: &'a str,
    ou_name: Option<&'a str>,
}

#[derive(Serialize)]
struct Resource<'a> {
    uid: String,
    name: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    cloud_partition: &'a str,
    region: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<KeyData>,
}

#[derive(Serialize)]
struct KeyData {
    key_slot: u8,
    key_status: &'static str,
    last_rotated: String,
    age_days: i64,
    due_at: Option<String>,
    last_used_at: Option<String>,
}

#[derive(Serialize)]
struct Remediation {
    /// The finding's next step when there is one, then the rule's remediation.
    desc: String,
    references: [&'static str; 1],
}

#[derive(Serialize)]
struct Unmapped<'a> {
    rule_name: &'static str,
    subject: &'static str,
    verdict: &'static str,
    compliance_status: &'static str,
    as_of: String,
    usage: Option<&'static str>,
    last_used_at: Option<String>,
    last_used_service: Option<&'a str>,
    last_used_region: Option<&'a str>,
    age_source: Option<&'static str>,
    action: &'static str,
    action_reason: Option<&'a str>,
    owner: Option<&'a str>,
    owner_tag: Option<&'a str>,
    baseline_state: Option<&'static str>,
    suppression_entry: Option<&'a str>,
    /// `partial` or `skipped` when the account's optional look-ups were cut short (key id or owner may be empty).
    enrichment: Option<&'static str>,
}

/// OCSF compliance status: 1 Pass, 2 Warning, 3 Fail (not_applicable and resolved are reported as Pass with
/// their verdict kept in `unmapped`).
fn compliance_status(v: Verdict) -> (u8, &'static str) {
    match v {
        Verdict::Fail => (3, "Fail"),
        Verdict::Warn => (2, "Warning"),
        Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved => (1, "Pass"),
    }
}

/// The record of finding `f` for OCSF `version`.
pub(super) fn record<'a>(
    report: &'a Report,
    f: &'a Finding,
    account: Option<&'a AccountRecord>,
    version: Version,
) -> Record<'a> {
    let rule = f.rule;
    // Each organization of a merged report was assessed at its own as_of.
    let run = report.run_of(f.account_id.as_str());
    let time_ms = run.as_of.as_millisecond();
    let fingerprint = f.fingerprint(&report.run.partition);
    let (severity_id, severity) = ExportSeverity::of(f).ocsf();
    let (status_id, status) = compliance_status(f.verdict);
    let partition = report.run.partition.as_str();
    let org =
        run.scope.organization_id().map(|uid| Org { uid, ou_name: account.and_then(|r| r.account.ou_path.as_deref()) });
    let mut resources = vec![Resource {
        uid: f.user_arn.clone(),
        name: Some(&f.user_name),
        kind: "AwsIamUser",
        cloud_partition: partition,
        region: "global",
        namespace: account.and_then(|r| r.account.ou_path.as_deref()),
        data: None,
    }];
    if let Some(key) = &f.key {
        resources.push(Resource {
            uid: key
                .access_key_id
                .as_ref()
                .map_or_else(|| format!("{}#key-slot-{}", f.user_arn, key.slot.number()), |k| k.to_string()),
            name: key.access_key_id.as_ref().map(|k| k.as_str()),
            kind: "AwsIamAccessKey",
            cloud_partition: partition,
            region: "global",
            namespace: None,
            data: Some(KeyData {
                key_slot: key.slot.number(),
                key_status: key.state(),
                last_rotated: key.last_rotated.to_string(),
                age_days: key.age_days(),
                due_at: f.due_at().map(|t| t.to_string()),
                last_used_at: key.last_used_at.map(|t| t.to_string()),
            }),
        });
    }
    Record {
        activity_id: 1,
        activity_name: "Create",
        category_uid: 2,
        category_name: "Findings",
        class_uid: 2003,
        class_name: "Compliance Finding",
        type_uid: 200301,
        type_name: "Compliance Finding: Create",
        time: time_ms,
        severity_id,
        severity,
        status_id: if f.suppression.is_some() { 3 } else { 1 },
        status: if f.suppression.is_some() { "Suppressed" } else { "New" },
        status_code: f.verdict.as_str().to_uppercase(),
        status_detail: f
            .suppression
            .as_ref()
            .map(|s| format!("{} (exception {}, owner {}, until {})", s.reason, s.entry, s.owner, s.expires)),
        message: &f.message,
        metadata: Metadata {
            version: version.as_str(),
            profiles: ["cloud"],
            product: Product {
                name: "keyaudit",
                vendor_name: "keyaudit",
                version: env!("CARGO_PKG_VERSION"),
                uid: "keyaudit",
            },
            event_code: rule.id,
            uid: fingerprint.clone(),
        },
        finding_info: FindingInfo {
            uid: fingerprint,
            title: rule.title,
            desc: &f.message,
            created_time: time_ms,
            types: [
                "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark",
            ],
        },
        compliance: Compliance {
            status_id,
            control: rule.id,
            desc: (version >= Version::V1_5).then_some(rule.title),
            standards: rule.cis.iter().map(|c| format!("CIS AWS Foundations Benchmark v{}", c.version)).collect(),
            requirements: requirements(rule),
        },
        cloud: Cloud {
            provider: "AWS",
            region: super::region_of(report, f.account_id.as_str()),
            account: CloudAccount {
                uid: f.account_id.to_string(),
                name: account.and_then(|r| r.account.name.clone()).unwrap_or_else(|| f.account_id.to_string()),
                type_id: 10,
                kind: "AWS Account",
            },
            org,
        },
        resources,
        remediation: Remediation { desc: super::next_step(f), references: [rule.reference_url] },
        unmapped: Unmapped {
            rule_name: rule.name,
            subject: f.subject().as_str(),
            verdict: f.verdict.as_str(),
            compliance_status: status,
            as_of: run.as_of.to_string(),
            usage: f.triage.usage.map(|u| u.as_str()),
            last_used_at: f.key.as_ref().and_then(|k| k.last_used_at).map(|t| t.to_string()),
            last_used_service: f.key.as_ref().and_then(|k| k.last_used_service.as_deref()),
            last_used_region: f.key.as_ref().and_then(|k| k.last_used_region.as_deref()),
            age_source: f.key.as_ref().map(|k| k.age_source.as_str()),
            action: f.triage.action.as_str(),
            action_reason: f.triage.action_reason.as_deref(),
            owner: f.owner.as_ref().map(|o| o.value.as_str()),
            owner_tag: f.owner.as_ref().map(|o| o.tag.as_str()),
            baseline_state: f.baseline_state.map(|s| s.as_str()),
            suppression_entry: f.suppression.as_ref().map(|s| s.entry.as_str()),
            enrichment: super::enrichment_cut_short(account),
        },
    }
}

pub(crate) fn render(report: &Report, opts: &OutputOptions) -> serde_json::Result<Vec<u8>> {
    let records: Vec<Record<'_>> = with_accounts(report)
        .filter(|(f, _)| f.verdict.is_actionable() || opts.ocsf_include_pass)
        .map(|(f, account)| record(report, f, account, Version::V1_5))
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&records)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::report;

    #[test]
    fn ocsf_snapshot() {
        let value: serde_json::Value =
            serde_json::from_slice(&render(&report(), &OutputOptions::default()).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, { "[].metadata.product.version" => "[version]" });
    }
}
