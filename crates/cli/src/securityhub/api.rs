//! The Security Hub calls of `--push-securityhub` and of its preflight, behind a small trait in keyaudit's terms
//! (so that the push's bookkeeping is tested without AWS), and their SDK implementation for one account.

use std::fmt;

use aws_sdk_securityhub::error::ProvideErrorMetadata;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, AwsSecurityFindingIdentifier, MapFilter, MapFilterComparison,
    NoteUpdate, StringFilter, StringFilterComparison, WorkflowStatus, WorkflowUpdate,
};
use keyaudit_scanner::{Probe, ProbeOutcome};

use super::workflow::{HubState, UPDATED_BY, Update, Workflow};

/// A Security Hub call that failed as a whole (after the SDK's own retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HubError {
    /// e.g. `securityhub:BatchUpdateFindings`.
    pub(crate) action: &'static str,
    /// AWS's error code, when AWS answered.
    pub(crate) code: Option<String>,
    pub(crate) message: String,
}

impl HubError {
    fn is_denied(&self) -> bool {
        keyaudit_core::aws_error::classify(self.code.as_deref()) == keyaudit_core::aws_error::ErrorClass::AccessDenied
    }

    /// Security Hub is not enabled in the account (in this region).
    fn is_not_enabled(&self) -> bool {
        self.code.as_deref() == Some("InvalidAccessException")
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: ", self.action)?;
        if let Some(code) = &self.code {
            write!(f, "{code}: ")?;
        }
        f.write_str(&self.message)?;
        if self.is_not_enabled() {
            f.write_str(" (is Security Hub enabled in this account, in this region?)")?;
        } else if self.is_denied() {
            write!(f, " (grant {} with SecurityHubImport=true in deploy/)", self.action)?;
        }
        Ok(())
    }
}

/// One finding a call refused (`FailedFindings`, `UnprocessedFindings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) id: String,
    /// `code: message`.
    pub(crate) why: String,
}

/// Security Hub in one account and region, as the push uses it.
pub(crate) trait HubApi {
    /// `BatchImportFindings` of at most 100 findings; the ones AWS refused.
    async fn import(&self, findings: Vec<AwsSecurityFinding>) -> Result<Vec<Refused>, HubError>;
    /// Every keyaudit finding the account holds in its default product, with its workflow (one paginated
    /// `GetFindings`).
    async fn states(&self) -> Result<Vec<HubState>, HubError>;
    /// One `GetFindings` call for at most one keyaudit finding: whether the findings can be read at all.
    async fn can_read(&self) -> Result<(), HubError>;
    /// `BatchUpdateFindings` of at most 100 findings to one workflow and note; the ones AWS left unprocessed.
    async fn update(&self, ids: &[String], update: &Update) -> Result<Vec<Refused>, HubError>;
}

/// The SDK's Security Hub client for one account (its own credentials: AWS takes a default-product finding only
/// from its account) in one region.
pub(crate) struct SdkHub {
    client: aws_sdk_securityhub::Client,
    account: String,
    product_arn: String,
}

impl SdkHub {
    pub(crate) fn new(config: &aws_config::SdkConfig, account: &str, product_arn: String) -> Self {
        Self { client: aws_sdk_securityhub::Client::new(config), account: account.to_owned(), product_arn }
    }

    /// keyaudit's findings of the account: its default product, keyaudit's rule ids and provider name.
    fn filters(&self) -> AwsSecurityFindingFilters {
        let equals = |v: &str| StringFilter::builder().value(v).comparison(StringFilterComparison::Equals).build();
        AwsSecurityFindingFilters::builder()
            .aws_account_id(equals(&self.account))
            .product_arn(equals(&self.product_arn))
            .generator_id(StringFilter::builder().value("KA-").comparison(StringFilterComparison::Prefix).build())
            .product_fields(
                MapFilter::builder()
                    .key("ProviderName")
                    .value("keyaudit")
                    .comparison(MapFilterComparison::Equals)
                    .build(),
            )
            .build()
    }
}

fn failed<E, R>(action: &'static str, err: aws_sdk_securityhub::error::SdkError<E, R>) -> HubError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let service = err.as_service_error();
    let code = service.and_then(ProvideErrorMetadata::code).map(str::to_owned);
    let message = service
        .and_then(ProvideErrorMetadata::message)
        .map_or_else(|| keyaudit_core::aws_error::describe(&err), str::to_owned);
    HubError { action, code, message }
}

fn why(code: Option<&str>, message: Option<&str>) -> String {
    format!("{}: {}", code.unwrap_or("error"), message.unwrap_or_default())
}

fn state(f: &AwsSecurityFinding) -> Option<HubState> {
    let workflow = f.workflow().and_then(|w| w.status()).map_or(Some(Workflow::New), |s| Workflow::parse(s.as_str()));
    Some(HubState {
        id: f.id()?.to_owned(),
        // A status this version does not know is left alone: no update is ever computed for it.
        workflow: workflow?,
        note_by: f.note().and_then(|n| n.updated_by()).map(str::to_owned),
        note_text: f.note().and_then(|n| n.text()).map(str::to_owned),
    })
}

impl HubApi for SdkHub {
    async fn import(&self, findings: Vec<AwsSecurityFinding>) -> Result<Vec<Refused>, HubError> {
        let answer = self
            .client
            .batch_import_findings()
            .set_findings(Some(findings))
            .send()
            .await
            .map_err(|e| failed("securityhub:BatchImportFindings", e))?;
        Ok(answer
            .failed_findings()
            .iter()
            .map(|e| Refused { id: e.id().unwrap_or("?").to_owned(), why: why(e.error_code(), e.error_message()) })
            .collect())
    }

    async fn states(&self) -> Result<Vec<HubState>, HubError> {
        let mut pages = self.client.get_findings().filters(self.filters()).max_results(100).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed("securityhub:GetFindings", e))?;
            out.extend(page.findings().iter().filter_map(state));
        }
        Ok(out)
    }

    async fn can_read(&self) -> Result<(), HubError> {
        self.client
            .get_findings()
            .filters(self.filters())
            .max_results(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("securityhub:GetFindings", e))
    }

    async fn update(&self, ids: &[String], update: &Update) -> Result<Vec<Refused>, HubError> {
        let identifiers = ids
            .iter()
            .map(|id| AwsSecurityFindingIdentifier::builder().id(id).product_arn(&self.product_arn).build())
            .collect();
        let answer = self
            .client
            .batch_update_findings()
            .set_finding_identifiers(Some(identifiers))
            .workflow(WorkflowUpdate::builder().status(WorkflowStatus::from(update.workflow.as_str())).build())
            .note(NoteUpdate::builder().text(&update.note).updated_by(UPDATED_BY).build())
            .send()
            .await
            .map_err(|e| failed("securityhub:BatchUpdateFindings", e))?;
        Ok(answer
            .unprocessed_findings()
            .iter()
            .map(|u| Refused {
                id: u.finding_identifier().and_then(|i| i.id()).unwrap_or("?").to_owned(),
                why: why(u.error_code(), u.error_message()),
            })
            .collect())
    }
}

/// A finding id no account holds: updating it changes nothing, and AWS answers it unprocessed only once the call
/// is authorised.
const PROBE_FINDING: &str = "keyaudit-preflight-probe-no-such-finding";

/// Why preflight does not check `securityhub:BatchImportFindings`.
pub(crate) const IMPORT_UNVERIFIED: &str = "not checked: every well-formed finding BatchImportFindings is given is \
    created or updated (a change), and AWS does not document that it authorises a call before it checks the input, \
    so no refused call would prove the permission; the kit grants it with SecurityHubImport=true, and the first \
    --push-securityhub run names every account and finding it refuses (exit 3)";

fn judged(result: Result<String, HubError>) -> ProbeOutcome {
    match result {
        Ok(evidence) => ProbeOutcome::Allowed(evidence),
        Err(e) if e.is_denied() => ProbeOutcome::Denied(e.to_string()),
        Err(e) => ProbeOutcome::Error(e.to_string()),
    }
}

/// The Security Hub actions `--push-securityhub` makes in one account, probed without changing anything:
/// GetFindings reads at most one finding; BatchUpdateFindings is asked to update a finding that does not exist.
pub(crate) async fn probe(hub: &impl HubApi) -> Vec<Probe> {
    let update = Update { workflow: Workflow::New, note: "keyaudit preflight probe".to_owned() };
    let (read, write) = futures::join!(async { hub.can_read().await.map(|()| "answered".to_owned()) }, async {
        hub.update(&[PROBE_FINDING.to_owned()], &update)
            .await
            .map(|_| "answered for a finding that does not exist: nothing changed".to_owned())
    });
    vec![
        Probe { action: "securityhub:GetFindings", outcome: judged(read) },
        Probe { action: "securityhub:BatchUpdateFindings", outcome: judged(write) },
        Probe { action: "securityhub:BatchImportFindings", outcome: ProbeOutcome::Unverified(IMPORT_UNVERIFIED) },
    ]
}

#[cfg(test)]
mod tests {
    use aws_sdk_securityhub::types::{Note, Workflow as SdkWorkflow};

    use super::*;

    #[test]
    fn a_finding_read_back_gives_its_workflow_and_note_and_an_unknown_status_is_left_alone() {
        let finding = |status: Option<&str>| {
            let b = AwsSecurityFinding::builder()
                .id("f")
                .note(Note::builder().text("changed by hand").updated_by("alice").build());
            match status {
                Some(s) => b.workflow(SdkWorkflow::builder().status(WorkflowStatus::from(s)).build()),
                None => b,
            }
            .build()
        };
        let read = state(&finding(Some("SUPPRESSED"))).unwrap();
        assert_eq!(
            (read.workflow, read.note_by.as_deref(), read.note_text.as_deref()),
            (Workflow::Suppressed, Some("alice"), Some("changed by hand"))
        );
        assert_eq!(state(&finding(None)).unwrap().workflow, Workflow::New, "no workflow yet: NEW");
        assert_eq!(state(&finding(Some("ESCALATED"))), None, "a status this version does not know: never updated");
        assert_eq!(state(&AwsSecurityFinding::builder().build()), None, "no id");
    }

    #[test]
    fn a_failed_call_says_which_action_and_what_to_do() {
        let e = |code: &str| HubError {
            action: "securityhub:BatchUpdateFindings",
            code: Some(code.into()),
            message: "m".into(),
        };
        assert_eq!(
            e("AccessDeniedException").to_string(),
            "securityhub:BatchUpdateFindings failed: AccessDeniedException: m (grant securityhub:BatchUpdateFindings \
             with SecurityHubImport=true in deploy/)"
        );
        assert!(
            e("InvalidAccessException")
                .to_string()
                .ends_with("(is Security Hub enabled in this account, in this region?)")
        );
        let network = HubError { action: "securityhub:GetFindings", code: None, message: "timed out".into() };
        assert_eq!(network.to_string(), "securityhub:GetFindings failed: timed out");
        assert!(matches!(judged(Err(e("AccessDeniedException"))), ProbeOutcome::Denied(_)));
        assert!(matches!(judged(Err(e("InvalidAccessException"))), ProbeOutcome::Error(_)));
    }
}
