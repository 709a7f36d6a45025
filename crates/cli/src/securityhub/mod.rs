//! `--push-securityhub`: imports the report's ASFF findings into AWS Security Hub the way AWS accepts them for a
//! custom integration — each account's findings from **that account** (the caller's own with the caller's
//! credentials, every other one through the audit role), each naming its own account's default product in the
//! import region. 100 findings per `BatchImportFindings` call, at most 240 KB per finding, rate-limited per
//! account, throttling retried by the SDK; every finding AWS refuses (`FailedFindings`) is reported by id.
//! Findings resolved since `--baseline` go as `RecordState: ARCHIVED`; severity and types are in
//! `FindingProviderFields` (the file's own shape, docs/exports.md).

use std::num::NonZeroU32;

use aws_config::identity::IdentityCache;
use aws_config::{Region, SdkConfig};
use futures::StreamExt;
use keyaudit_core::ids::AccountId;
use keyaudit_core::report::Report;
use keyaudit_org_discovery::RoleAssumer;

use crate::aws::{base_config, limited};
use crate::output::{HubFinding, for_security_hub};
use crate::settings::Settings;

/// AWS's limits for `BatchImportFindings`.
const PER_CALL: usize = 100;
const MAX_FINDING_BYTES: usize = 240 * 1024;

/// What the push did.
#[derive(Debug, Default)]
pub(crate) struct Pushed {
    pub(crate) imported: usize,
    /// `account: finding id: reason`, one per finding not imported.
    pub(crate) failed: Vec<String>,
}

/// Imports the report's findings; whatever could not be imported is in `failed`, finding by finding.
pub(crate) async fn push(settings: &Settings, report: &Report, region: Option<&str>, rps: NonZeroU32) -> Pushed {
    let scan_region = report.run.origin.as_ref().map_or(crate::aws::DEFAULT_REGION, |o| o.region.as_str());
    let region = region.unwrap_or(scan_region).to_owned();
    let groups = match for_security_hub(report, &region) {
        Ok(groups) => groups,
        Err(e) => return Pushed { imported: 0, failed: vec![format!("the findings could not be prepared: {e}")] },
    };
    let (base, _) = base_config(&settings.aws()).await;
    let base = base.to_builder().region(Region::new(region.clone())).build();
    let (sts_config, _) = limited(&base, settings.sts_rps);
    let assumer = settings.assumer(&sts_config);
    let results: Vec<Pushed> = futures::stream::iter(groups)
        .map(|(account, findings)| push_account(settings, report, &base, &assumer, rps, account, findings))
        .buffer_unordered(settings.scan.concurrency.max(1))
        .collect()
        .await;
    let mut total = Pushed::default();
    for r in results {
        total.imported += r.imported;
        total.failed.extend(r.failed);
    }
    total.failed.sort();
    tracing::info!(imported = total.imported, failed = total.failed.len(), region, "Security Hub import done");
    total
}

async fn push_account(
    settings: &Settings,
    report: &Report,
    base: &SdkConfig,
    assumer: &RoleAssumer,
    rps: NonZeroU32,
    account: String,
    findings: Vec<HubFinding>,
) -> Pushed {
    let mut out = Pushed::default();
    let fail_all = |out: &mut Pushed, findings: &[HubFinding], why: &str| {
        out.failed.extend(findings.iter().map(|f| format!("{account}: {}: {why}", f.id)));
    };
    let (config, _) = limited(base, rps);
    let config = if report.run.origin.as_ref().is_some_and(|o| o.caller_account_id.as_str() == account) {
        config
    } else {
        let Ok(id) = AccountId::parse(&account) else {
            fail_all(&mut out, &findings, "not an account id");
            return out;
        };
        let role_arn = settings.role.arn(&report.run.partition, &id);
        let retries = std::sync::atomic::AtomicU32::new(0);
        match assumer.assume(&role_arn, &retries).await {
            Ok(provider) => {
                config.to_builder().credentials_provider(provider).identity_cache(IdentityCache::lazy().build()).build()
            }
            Err(reason) => {
                fail_all(&mut out, &findings, &format!("not imported: {reason}"));
                return out;
            }
        }
    };
    let client = aws_sdk_securityhub::Client::new(&config);
    let (fit, too_big): (Vec<HubFinding>, Vec<HubFinding>) =
        findings.into_iter().partition(|f| f.json_bytes <= MAX_FINDING_BYTES);
    fail_all(&mut out, &too_big, "larger than Security Hub's 240 KB per finding");
    for chunk in fit.chunks(PER_CALL) {
        let batch = chunk.iter().map(|f| f.finding.clone()).collect();
        match client.batch_import_findings().set_findings(Some(batch)).send().await {
            Ok(answer) => {
                let refused = answer.failed_findings();
                out.imported += chunk.len().saturating_sub(refused.len());
                out.failed.extend(refused.iter().map(|e| {
                    format!(
                        "{account}: {}: {} {}",
                        e.id().unwrap_or("?"),
                        e.error_code().unwrap_or("error"),
                        e.error_message().unwrap_or_default()
                    )
                }));
            }
            Err(e) => {
                let why = format!("BatchImportFindings failed: {}", keyaudit_core::aws_error::describe(&e));
                fail_all(&mut out, chunk, &why);
            }
        }
    }
    out
}
