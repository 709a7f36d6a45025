//! The report's findings as Security Hub's SDK takes them: the ASFF file's findings (`keyaudit_exports::asff`),
//! each typed for `BatchImportFindings` and naming its own account's default product.

use keyaudit_core::report::Report;
use keyaudit_exports::workflow::Desired;

/// One finding for `BatchImportFindings`: its `Id`, its size as ASFF JSON (AWS takes at most 240 KB per
/// finding), the SDK's typed finding, and where keyaudit's state puts it in Security Hub's workflow.
pub(crate) struct HubFinding {
    pub(crate) id: String,
    pub(crate) json_bytes: usize,
    pub(crate) finding: aws_sdk_securityhub::types::AwsSecurityFinding,
    pub(crate) desired: Desired,
}

/// The report's findings for Security Hub in `region`, by account: the same findings as the file, each naming
/// the default product of its own account in that region.
pub(crate) fn for_security_hub(report: &Report, region: &str) -> serde_json::Result<Vec<(String, Vec<HubFinding>)>> {
    let partition = report.run.partition.as_str();
    let mut by_account: Vec<(String, Vec<HubFinding>)> = Vec::new();
    for mut f in keyaudit_exports::asff::findings(report) {
        let account = f.aws_account_id.to_owned();
        f.product_arn = keyaudit_exports::asff::hub_product_arn(partition, region, &account);
        let json_bytes = serde_json::to_vec(&f)?.len();
        let finding = to_sdk(&f);
        let hub = HubFinding { id: f.id.clone(), json_bytes, finding, desired: f.desired };
        match by_account.last_mut() {
            Some((last, list)) if *last == account => list.push(hub),
            _ => by_account.push((account, vec![hub])),
        }
    }
    Ok(by_account)
}

/// The typed SDK finding with exactly the fields the ASFF file has.
fn to_sdk(f: &keyaudit_exports::asff::AsffFinding<'_>) -> aws_sdk_securityhub::types::AwsSecurityFinding {
    use aws_sdk_securityhub::types as t;
    let severity = |s: &keyaudit_exports::asff::AsffSeverity| {
        t::Severity::builder().label(t::SeverityLabel::from(s.label)).original(s.original).build()
    };
    let resource = &f.resources[0];
    let details = resource.details.other.iter().fold(t::ResourceDetails::builder(), |b, (k, v)| b.other(*k, v));
    let compliance = f.compliance.related_requirements.iter().fold(
        t::Compliance::builder()
            .status(t::ComplianceStatus::from(f.compliance.status))
            .set_security_control_id(f.compliance.security_control_id.map(str::to_owned)),
        |b, r| b.related_requirements(r),
    );
    f.product_fields
        .iter()
        .fold(t::AwsSecurityFinding::builder(), |b, (k, v)| b.product_fields(*k, v))
        .schema_version(f.schema_version)
        .id(&f.id)
        .product_arn(&f.product_arn)
        .generator_id(f.generator_id)
        .aws_account_id(f.aws_account_id)
        .types(f.types[0])
        .created_at(&f.created_at)
        .updated_at(&f.updated_at)
        .severity(severity(&f.severity))
        .finding_provider_fields(
            t::FindingProviderFields::builder()
                .severity(
                    t::FindingProviderSeverity::builder()
                        .label(t::SeverityLabel::from(f.finding_provider_fields.severity.label))
                        .original(f.finding_provider_fields.severity.original)
                        .build(),
                )
                .types(f.finding_provider_fields.types[0])
                .build(),
        )
        .title(f.title)
        .description(f.description)
        .remediation(
            t::Remediation::builder()
                .recommendation(
                    t::Recommendation::builder()
                        .text(&f.remediation.recommendation.text)
                        .url(f.remediation.recommendation.url)
                        .build(),
                )
                .build(),
        )
        .resources(
            t::Resource::builder()
                .r#type(resource.kind)
                .id(resource.id)
                .partition(t::Partition::from(resource.partition))
                .region(resource.region)
                .details(details.build())
                .build(),
        )
        .compliance(compliance.build())
        .record_state(t::RecordState::from(f.record_state))
        .workflow(t::Workflow::builder().status(t::WorkflowStatus::from(f.workflow.status)).build())
        .set_note(
            f.note
                .as_ref()
                .map(|n| t::Note::builder().text(&n.text).updated_by(n.updated_by).updated_at(&n.updated_at).build()),
        )
        .build()
}
