//! AWS Security Finding Format (ASFF 2018-10-08) for Security Hub `BatchImportFindings`, built from typed
//! structs: one finding per finding of every rule (fail → FAILED, warn → WARNING, pass and inactive →
//! PASSED, so a key rotated or deactivated since resolves its earlier finding; a key deleted since its
//! credential report, or gone since the baseline → PASSED and ARCHIVED). `Id` is the stable fingerprint, so
//! re-imports update in place. `Workflow` (and `Note`) are where keyaudit's state puts a finding when an import
//! creates it: NEW when open, SUPPRESSED under an exception (the note names it), RESOLVED when passing or gone
//! (`crate::workflow`; `--push-securityhub` moves existing findings).
//!
//! Each finding names the default product of **its own account** (`product/<AwsAccountId>/default`): AWS accepts
//! a custom-integration finding only from the account it is about, so the file is grouped by account and each
//! group is imported from that account (docs/exports.md). Severity and types are also in
//! `FindingProviderFields`, where AWS asks finding providers to update them.

use std::collections::{BTreeMap, HashSet};

use keyaudit_core::baseline::ResolvedFinding;
use keyaudit_core::eval::{Finding, Verdict};
use keyaudit_core::report::{AccountRecord, Report};
use keyaudit_core::rules::RuleMeta;
use serde::Serialize;

use super::{ExportSeverity, with_accounts};
use crate::workflow::{self, Desired, Resolution};

/// The default (custom integration) product of `account` in `region`.
pub fn hub_product_arn(partition: &str, region: &str, account: &str) -> String {
    format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default")
}

const TYPE: &str = "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark";

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AsffFinding<'a> {
    pub schema_version: &'static str,
    pub id: String,
    pub product_arn: String,
    pub generator_id: &'static str,
    pub aws_account_id: &'a str,
    pub types: [&'static str; 1],
    pub created_at: String,
    pub updated_at: String,
    pub severity: AsffSeverity,
    pub finding_provider_fields: ProviderFields,
    pub title: &'static str,
    pub description: &'a str,
    pub remediation: Remediation,
    pub product_fields: BTreeMap<&'static str, String>,
    pub resources: [Resource<'a>; 1],
    pub compliance: Compliance,
    pub record_state: &'static str,
    pub workflow: Workflow,
    /// keyaudit's note on a finding it creates suppressed (the exception); Security Hub keeps it once created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Note>,
    /// Where keyaudit's state puts the finding in Security Hub's workflow (`Workflow` and `Note` are its state at
    /// creation).
    #[serde(skip)]
    pub desired: Desired,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Note {
    pub text: String,
    pub updated_by: &'static str,
    pub updated_at: String,
}

/// The provider's own severity and types (the top-level ones are for customers once the finding exists).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProviderFields {
    pub severity: AsffSeverity,
    pub types: [&'static str; 1],
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "PascalCase")]
pub struct AsffSeverity {
    pub label: &'static str,
    pub original: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Remediation {
    pub recommendation: Recommendation,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Recommendation {
    /// The finding's next step when there is one, then the rule's remediation (Security Hub allows 512
    /// characters).
    pub text: String,
    pub url: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource<'a> {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub id: &'a str,
    pub partition: &'a str,
    pub region: &'a str,
    pub details: Details,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Details {
    /// ASFF's `Details.Other` is a map of strings.
    pub other: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Compliance {
    pub status: &'static str,
    pub related_requirements: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_control_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Workflow {
    pub status: &'static str,
}

fn compliance_status(v: Verdict) -> &'static str {
    match v {
        Verdict::Fail => "FAILED",
        Verdict::Warn => "WARNING",
        Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved => "PASSED",
    }
}

fn finding<'a>(report: &'a Report, f: &'a Finding, account: Option<&'a AccountRecord>) -> AsffFinding<'a> {
    let mut other = BTreeMap::new();
    let mut put = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            other.insert(k, v);
        }
    };
    if let Some(key) = &f.key {
        put("AccessKeyId", key.access_key_id.as_ref().map(|k| k.to_string()));
        put("KeySlot", Some(key.slot.number().to_string()));
        put("KeyStatus", Some(key.state().to_owned()));
        put("LastRotated", Some(key.last_rotated.to_string()));
        put("AgeDays", Some(key.age_days().to_string()));
        put("LastUsedAt", key.last_used_at.map(|t| t.to_string()));
    }
    put("DueAt", f.due_at().map(|t| t.to_string()));
    put("OuPath", account.and_then(|r| r.account.ou_path.clone()));
    let rule = f.rule;
    let id = f.fingerprint(&report.run.partition);
    // Deleted since the credential report: archived, as AWS's own controls do for resources that are gone. A finding
    // that passes now stays active (PASSED, its workflow RESOLVED), so that it is not archived one week and
    // un-archived the next (which would reset its workflow to NEW).
    let archived = f.verdict == Verdict::Resolved;
    let mut out = common(report, rule, id, f.account_id.as_str(), &f.user_arn, &f.message, other);
    out.set_severity(AsffSeverity { label: ExportSeverity::of(f).asff(), original: f.verdict.as_str() });
    out.remediation.recommendation.text = truncate(&super::next_step(f), 512);
    out.product_fields.extend(
        [
            ("keyaudit/verdict", Some(f.verdict.as_str().to_owned())),
            ("keyaudit/subject", Some(f.subject().as_str().to_owned())),
            ("keyaudit/account_name", Some(account.and_then(|r| r.account.name.clone()).unwrap_or_default())),
            ("keyaudit/action", Some(f.triage.action.as_str().to_owned())),
            ("keyaudit/usage", f.triage.usage.map(|u| u.as_str().to_owned())),
            ("keyaudit/owner", f.owner.as_ref().map(|o| o.value.clone())),
            ("keyaudit/owner_tag", f.owner.as_ref().map(|o| o.tag.clone())),
            ("keyaudit/age_source", f.key.as_ref().map(|k| k.age_source.as_str().to_owned())),
            ("keyaudit/baseline_state", f.baseline_state.map(|s| s.as_str().to_owned())),
            ("keyaudit/enrichment", super::enrichment_cut_short(account).map(str::to_owned)),
            ("keyaudit/suppression_entry", f.suppression.as_ref().map(|s| s.entry.clone())),
            ("keyaudit/suppression_reason", f.suppression.as_ref().map(|s| truncate(&s.reason, 512))),
            ("keyaudit/suppression_owner", f.suppression.as_ref().map(|s| s.owner.clone())),
            ("keyaudit/suppression_expires", f.suppression.as_ref().map(|s| s.expires.to_string())),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v))),
    );
    out.compliance.status = compliance_status(f.verdict);
    if archived {
        out.record_state = "ARCHIVED";
    }
    // Security Hub takes `Workflow` and `Note` from an import only when it creates a finding; `--push-securityhub`
    // moves existing ones with BatchUpdateFindings (docs/exports.md).
    out.set_desired(match (&f.suppression, archived, f.verdict.is_actionable()) {
        (_, true, _) => Desired::Resolved(Resolution::Gone),
        (Some(s), false, _) => {
            Desired::Suppressed(workflow::exception_note(&s.entry, &s.owner, &s.expires.to_string(), &s.reason))
        }
        (None, false, true) => Desired::Open,
        (None, false, false) => Desired::Resolved(Resolution::Passes),
    });
    out
}

/// What every finding shares: its identity, the product, the rule's words and controls, the user as resource.
/// The rest starts as an active, passing, informational finding with the rule's own remediation.
fn common<'a>(
    report: &'a Report,
    rule: &'static RuleMeta,
    id: String,
    account_id: &'a str,
    user_arn: &'a str,
    description: &'a str,
    other: BTreeMap<&'static str, String>,
) -> AsffFinding<'a> {
    // Each organization of a merged report was assessed at its own as_of, in its own region.
    let as_of = report.run_of(account_id).as_of.to_string();
    let severity = AsffSeverity { label: "INFORMATIONAL", original: "pass" };
    AsffFinding {
        schema_version: "2018-10-08",
        id,
        product_arn: product_arn(report, account_id),
        generator_id: rule.id,
        aws_account_id: account_id,
        types: [TYPE],
        created_at: as_of.clone(),
        updated_at: as_of,
        severity,
        finding_provider_fields: ProviderFields { severity, types: [TYPE] },
        title: rule.title,
        description,
        remediation: Remediation {
            recommendation: Recommendation { text: truncate(rule.remediation, 512), url: rule.reference_url },
        },
        product_fields: BTreeMap::from([
            ("ProviderName", "keyaudit".to_owned()),
            ("ProviderVersion", env!("CARGO_PKG_VERSION").to_owned()),
        ]),
        resources: [Resource {
            kind: "AwsIamUser",
            id: user_arn,
            partition: report.run.partition.as_str(),
            region: super::region_of(report, account_id),
            details: Details { other },
        }],
        compliance: Compliance {
            status: "PASSED",
            related_requirements: super::requirements(rule),
            security_control_id: rule.security_hub.first().copied(),
        },
        record_state: "ACTIVE",
        workflow: Workflow { status: "NEW" },
        note: None,
        desired: Desired::Open,
    }
}

impl AsffFinding<'_> {
    fn set_severity(&mut self, severity: AsffSeverity) {
        self.severity = severity;
        self.finding_provider_fields.severity = severity;
    }

    /// Where keyaudit's state puts the finding, and so its workflow (and note) when an import creates it.
    fn set_desired(&mut self, desired: Desired) {
        let (status, note) = desired.at_creation();
        self.workflow.status = status.as_str();
        self.note = note.map(|text| Note {
            text: text.to_owned(),
            updated_by: workflow::UPDATED_BY,
            updated_at: self.created_at.clone(),
        });
        self.desired = desired;
    }
}

/// The default (custom integration) product of the finding's own account: the only product ARN AWS accepts
/// for it, and only from that account.
fn product_arn(report: &Report, account: &str) -> String {
    let (partition, region) = (report.run.partition.as_str(), super::region_of(report, account));
    hub_product_arn(partition, region, account)
}

/// A finding that failed or warned in the baseline and is gone from this report (its key deleted or rotated
/// away): PASSED and ARCHIVED under the baseline's `Id`, so Security Hub closes it.
fn gone<'a>(report: &'a Report, r: &'a ResolvedFinding, rule: &'static RuleMeta) -> AsffFinding<'a> {
    let f = &r.finding;
    let mut other = BTreeMap::new();
    if let Some(id) = &f.access_key_id {
        other.insert("AccessKeyId", id.clone());
    }
    if let Some(slot) = f.key_slot {
        other.insert("KeySlot", slot.to_string());
    }
    if let Some(ou) = r.account.as_ref().and_then(|a| a.ou_path.clone()) {
        other.insert("OuPath", ou);
    }
    let mut out = common(report, rule, f.fingerprint.clone(), f.account_id.as_str(), &f.user_arn, &f.message, other);
    out.set_severity(AsffSeverity { original: "resolved", ..out.severity });
    out.product_fields.extend([
        ("keyaudit/verdict", "resolved".to_owned()),
        ("keyaudit/baseline_state", "absent".to_owned()),
        ("keyaudit/baseline_verdict", f.verdict.as_str().to_owned()),
        ("keyaudit/account_name", r.account.as_ref().and_then(|a| a.name.clone()).unwrap_or_default()),
    ]);
    out.record_state = "ARCHIVED";
    out.set_desired(Desired::Resolved(Resolution::Gone));
    out
}

/// At most `max` characters, cut at a character boundary with an ellipsis.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// Every ASFF finding of the report (resolved ones included), grouped by account.
pub fn findings(report: &Report) -> Vec<AsffFinding<'_>> {
    // Inactive keys too: a key deactivated after it failed must turn its earlier FAILED finding into PASSED.
    let resolved = report.comparison.iter().flat_map(|c| &c.resolved);
    let mut findings: Vec<AsffFinding<'_>> =
        with_accounts(report).map(|(f, account)| finding(report, f, account)).collect();
    // Resolved findings still in the report pass there; the others are gone from it.
    let present: HashSet<String> = findings.iter().map(|f| f.id.clone()).collect();
    for r in resolved.into_iter().filter(|r| !present.contains(&r.finding.fingerprint)) {
        if let Some(rule) = report.rules.iter().find(|m| m.id == r.finding.rule_id) {
            findings.push(gone(report, r, rule));
        }
    }
    // Grouped by account, each group imported from its own account (stable: the report's order within one).
    findings.sort_by(|a, b| a.aws_account_id.cmp(b.aws_account_id));
    findings
}

pub(crate) fn render(report: &Report) -> serde_json::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(&findings(report))?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::report;

    #[test]
    fn asff_snapshot() {
        let value: serde_json::Value = serde_json::from_slice(&render(&report()).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, { "[].ProductFields.ProviderVersion" => "[version]" });
    }

    #[test]
    fn every_finding_names_its_own_accounts_product_and_the_file_is_grouped_by_account() {
        let value: serde_json::Value = serde_json::from_slice(&render(&report()).unwrap()).unwrap();
        let findings = value.as_array().unwrap();
        let accounts: Vec<&str> = findings.iter().map(|f| f["AwsAccountId"].as_str().unwrap()).collect();
        assert!(accounts.windows(2).all(|w| w[0] <= w[1]), "grouped by account: {accounts:?}");
        assert!(
            accounts.iter().any(|a| *a != report().run.origin.unwrap().caller_account_id.as_str()),
            "a member account's findings"
        );
        for f in findings {
            let account = f["AwsAccountId"].as_str().unwrap();
            assert_eq!(
                f["ProductArn"],
                format!("arn:aws:securityhub:us-east-1:{account}:product/{account}/default"),
                "{f}"
            );
            assert_eq!(f["FindingProviderFields"]["Severity"], f["Severity"]);
            assert_eq!(f["FindingProviderFields"]["Types"], f["Types"]);
        }
    }
}
