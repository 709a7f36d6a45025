//! `--push-securityhub`: imports the report's ASFF findings into AWS Security Hub the way AWS accepts them for a
//! custom integration — each account's findings from **that account** (the caller's own with the caller's
//! credentials, every other one through the audit role), each naming its own account's default product in the
//! import region — and then keeps each finding's workflow true to keyaudit's state (`workflow.rs`).
//!
//! Per account, rate-limited (`--securityhub-rps`), throttling retried by the SDK:
//! 1. `BatchImportFindings`, 100 findings per call, at most 240 KB per finding. A new finding is created in the
//!    workflow keyaudit's state gives it; an existing one keeps its workflow (AWS ignores an import's `Workflow`
//!    and `Note` once a finding exists). Findings resolved since `--baseline` go as `RecordState: ARCHIVED`.
//! 2. One paginated `GetFindings` of keyaudit's findings in the account: where each stands now.
//! 3. `BatchUpdateFindings` for the imported findings whose workflow must change (grouped by workflow and note,
//!    100 per call); nothing when nothing changed.
//!
//! Whatever fails is reported per account, by finding id, and makes the exit code 3; an import already done stays
//! done when a later step fails.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::num::NonZeroU32;

use aws_config::Region;
use futures::StreamExt;
use keyaudit_core::report::{Account, Report};

use crate::aws::{Connector, base_config, limited};
use crate::settings::Settings;

mod api;
mod findings;

pub(crate) use api::{HubApi, SdkHub, probe};
use findings::{HubFinding, for_security_hub};
use keyaudit_exports::workflow::{self, Desired, Update, Workflow};

/// AWS's limits for `BatchImportFindings` and `BatchUpdateFindings`.
const PER_CALL: usize = 100;
const MAX_FINDING_BYTES: usize = 240 * 1024;

/// Something that went wrong in one account: which findings, at which step, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) account: String,
    /// e.g. `not imported`, `not moved to SUPPRESSED`.
    what: String,
    /// The findings concerned (none: the step failed for the account as a whole).
    ids: Vec<String>,
    /// The account's findings in the push.
    of: usize,
    why: String,
}

impl Problem {
    /// The findings it concerns (every one of the account's when the whole step failed).
    pub(crate) fn count(&self) -> usize {
        if self.ids.is_empty() { self.of } else { self.ids.len() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Problem { account, what, ids, of, why } = self;
        if ids.is_empty() || ids.len() == *of {
            write!(f, "{account}: all {of} finding(s) {what}: {why}")
        } else {
            write!(f, "{account}: {} finding(s) {what} ({}): {why}", ids.len(), ids.join(", "))
        }
    }
}

/// What the push did.
#[derive(Debug, Default)]
pub(crate) struct Pushed {
    pub(crate) imported: usize,
    /// Workflow updates made, by the workflow set.
    pub(crate) moved: BTreeMap<Workflow, usize>,
    pub(crate) problems: Vec<Problem>,
}

impl Pushed {
    fn add(&mut self, other: Pushed) {
        self.imported += other.imported;
        for (w, n) in other.moved {
            *self.moved.entry(w).or_default() += n;
        }
        self.problems.extend(other.problems);
    }

    /// `2 SUPPRESSED, 1 RESOLVED`, or `none`.
    pub(crate) fn moved_summary(&self) -> String {
        if self.moved.is_empty() {
            return "none".to_owned();
        }
        self.moved.iter().map(|(w, n)| format!("{n} to {}", w.as_str())).collect::<Vec<_>>().join(", ")
    }
}

pub(crate) use keyaudit_exports::asff::hub_product_arn as product_arn;

/// Imports the report's findings and brings their workflows up to date; whatever did not happen is in `problems`.
pub(crate) async fn push(settings: &Settings, report: &Report, region: Option<&str>, rps: NonZeroU32) -> Pushed {
    let scan_region = report.run.origin.as_ref().map_or(crate::aws::DEFAULT_REGION, |o| o.region.as_str());
    let region = region.unwrap_or(scan_region).to_owned();
    let groups = match for_security_hub(report, &region) {
        Ok(groups) => groups,
        Err(e) => {
            let problem = Problem {
                account: "every account".into(),
                what: "not imported".into(),
                ids: Vec::new(),
                of: report.findings.len(),
                why: format!("the findings could not be prepared: {e}"),
            };
            return Pushed { problems: vec![problem], ..Pushed::default() };
        }
    };
    let (base, _) = base_config(&settings.aws()).await;
    let base = base.to_builder().region(Region::new(region.clone())).build();
    let (sts_config, _) = limited(&base, settings.sts_pace, settings.throttle_patience);
    // Each account's findings are imported with that account's own credentials, reached as the scan reached it.
    let connector = Connector::new(settings, base.clone(), &sts_config, None);
    let accounts: HashMap<&str, &Account> =
        report.accounts.iter().map(|r| (r.account.id.as_str(), &r.account)).collect();
    let partition = report.run.partition.as_str();
    let results: Vec<Pushed> = futures::stream::iter(groups)
        .map(|(account, findings)| {
            let (base, connector, region, accounts) = (&base, &connector, &region, &accounts);
            async move {
                let config = match accounts.get(account.as_str()) {
                    Some(record) => match connector.session(record).await {
                        Ok(session) => Ok(session
                            .config(limited(base, keyaudit_scanner::Pace::even(rps), settings.throttle_patience).0)),
                        Err(failure) => Err(failure.reason.to_string()),
                    },
                    None => Err(format!("account {account} is not in the report")),
                };
                match config {
                    Ok(config) => {
                        let hub = SdkHub::new(&config, &account, product_arn(partition, region, &account));
                        push_account(&hub, &account, findings).await
                    }
                    Err(why) => {
                        let problem =
                            Problem { account, what: "not imported".into(), ids: Vec::new(), of: findings.len(), why };
                        Pushed { problems: vec![problem], ..Pushed::default() }
                    }
                }
            }
        })
        .buffer_unordered(settings.scan.concurrency.max(1))
        .collect()
        .await;
    let mut total = Pushed::default();
    for r in results {
        total.add(r);
    }
    total.problems.sort_by(|a, b| a.account.cmp(&b.account));
    tracing::info!(
        imported = total.imported,
        workflow_updates = %total.moved_summary(),
        problems = total.problems.len(),
        region,
        "Security Hub push done"
    );
    total
}

/// Groups refusals by their reason, each group one problem.
fn refusals(account: &str, what: &str, of: usize, refused: Vec<api::Refused>) -> Vec<Problem> {
    let mut by_why: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in refused {
        by_why.entry(r.why).or_default().push(r.id);
    }
    by_why
        .into_iter()
        .map(|(why, ids)| Problem { account: account.to_owned(), what: what.to_owned(), ids, of, why })
        .collect()
}

/// One account: import, read back where each finding stands, update what must change.
pub(crate) async fn push_account(hub: &impl HubApi, account: &str, findings: Vec<HubFinding>) -> Pushed {
    let mut out = Pushed::default();
    let of = findings.len();
    let problem = |what: &str, ids: Vec<String>, why: String| Problem {
        account: account.to_owned(),
        what: what.to_owned(),
        ids,
        of,
        why,
    };
    let (fit, too_big): (Vec<HubFinding>, Vec<HubFinding>) =
        findings.into_iter().partition(|f| f.json_bytes <= MAX_FINDING_BYTES);
    if !too_big.is_empty() {
        let ids = too_big.into_iter().map(|f| f.id).collect();
        out.problems.push(problem("not imported", ids, "larger than Security Hub's 240 KB per finding".into()));
    }
    // What the later steps need of each imported finding: its id and where keyaudit's state puts it (the SDK
    // finding itself is moved into its import call).
    let mut imported: Vec<(String, Desired)> = Vec::new();
    let mut chunks = fit.into_iter().peekable();
    while chunks.peek().is_some() {
        let (batch, chunk): (Vec<_>, Vec<_>) =
            chunks.by_ref().take(PER_CALL).map(|f| (f.finding, (f.id, f.desired))).unzip();
        match hub.import(batch).await {
            Ok(refused) => {
                let refused_ids: std::collections::HashSet<&str> = refused.iter().map(|r| r.id.as_str()).collect();
                let before = imported.len();
                imported.extend(chunk.into_iter().filter(|(id, _)| !refused_ids.contains(id.as_str())));
                out.imported += imported.len() - before;
                out.problems.extend(refusals(account, "not imported", of, refused));
            }
            Err(e) => {
                let ids = chunk.into_iter().map(|(id, _)| id).collect();
                out.problems.push(problem("not imported", ids, e.to_string()));
            }
        }
    }
    if imported.is_empty() {
        return out;
    }
    let states = match hub.states().await {
        Ok(states) => states,
        Err(e) => {
            out.problems.push(Problem {
                account: account.to_owned(),
                what: "imported, but their workflows not brought up to date".into(),
                ids: Vec::new(),
                of: imported.len(),
                why: e.to_string(),
            });
            return out;
        }
    };
    let now: std::collections::HashMap<&str, &workflow::HubState> = states.iter().map(|s| (s.id.as_str(), s)).collect();
    // A finding not read back was created by this import, in the workflow keyaudit's state gives it.
    let mut updates: BTreeMap<Update, Vec<String>> = BTreeMap::new();
    for (id, desired) in imported {
        if let Some(update) = now.get(id.as_str()).and_then(|s| desired.update_for(s)) {
            updates.entry(update).or_default().push(id);
        }
    }
    for (update, ids) in updates {
        tracing::debug!(account, workflow = update.workflow.as_str(), ids = %ids.join(","), "Security Hub workflow update");
        let what = format!("not moved to {}", update.workflow.as_str());
        for chunk in ids.chunks(PER_CALL) {
            match hub.update(chunk, &update).await {
                Ok(unprocessed) => {
                    *out.moved.entry(update.workflow).or_default() += chunk.len() - unprocessed.len();
                    out.problems.extend(refusals(account, &what, of, unprocessed));
                }
                Err(e) => out.problems.push(problem(&what, chunk.to_vec(), e.to_string())),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use aws_sdk_securityhub::types::AwsSecurityFinding;

    use super::api::{HubError, Refused};
    use super::workflow::{Desired, HubState, Resolution, UPDATED_BY};
    use super::*;

    /// Security Hub as AWS documents it, for one account: an import creates a finding in its given workflow and
    /// never changes an existing one's.
    #[derive(Default)]
    struct FakeHub {
        states: Mutex<HashMap<String, HubState>>,
        refuse: HashSet<String>,
        unprocessed: HashSet<String>,
        read_error: Option<HubError>,
        update_error: Option<HubError>,
        updates: Mutex<Vec<(Workflow, Vec<String>)>>,
    }

    fn error(action: &'static str) -> HubError {
        HubError { action, code: Some("AccessDeniedException".into()), message: "not authorized".into() }
    }

    impl HubApi for FakeHub {
        async fn import(&self, findings: Vec<AwsSecurityFinding>) -> Result<Vec<Refused>, HubError> {
            let mut states = self.states.lock().unwrap();
            let mut refused = Vec::new();
            for f in findings {
                let id = f.id().unwrap().to_owned();
                if self.refuse.contains(&id) {
                    refused.push(Refused { id, why: "InvalidInput: refused".into() });
                    continue;
                }
                let workflow = Workflow::parse(f.workflow().unwrap().status().unwrap().as_str()).unwrap();
                let note = f.note();
                states.entry(id.clone()).or_insert(HubState {
                    id,
                    workflow,
                    note_by: note.and_then(|n| n.updated_by()).map(str::to_owned),
                    note_text: note.and_then(|n| n.text()).map(str::to_owned),
                });
            }
            Ok(refused)
        }

        async fn states(&self) -> Result<Vec<HubState>, HubError> {
            match &self.read_error {
                Some(e) => Err(e.clone()),
                None => Ok(self.states.lock().unwrap().values().cloned().collect()),
            }
        }

        async fn can_read(&self) -> Result<(), HubError> {
            Ok(())
        }

        async fn update(&self, ids: &[String], update: &Update) -> Result<Vec<Refused>, HubError> {
            if let Some(e) = &self.update_error {
                return Err(e.clone());
            }
            self.updates.lock().unwrap().push((update.workflow, ids.to_vec()));
            let mut states = self.states.lock().unwrap();
            let mut refused = Vec::new();
            for id in ids {
                if self.unprocessed.contains(id) {
                    refused.push(Refused { id: id.clone(), why: "FindingNotFound: gone".into() });
                    continue;
                }
                let s = states.get_mut(id).unwrap();
                s.workflow = update.workflow;
                s.note_by = Some(UPDATED_BY.into());
                s.note_text = Some(update.note.clone());
            }
            Ok(refused)
        }
    }

    fn finding(id: &str, desired: Desired) -> HubFinding {
        let (workflow, note) = desired.at_creation();
        let sdk = AwsSecurityFinding::builder()
            .id(id)
            .workflow(
                aws_sdk_securityhub::types::Workflow::builder()
                    .status(aws_sdk_securityhub::types::WorkflowStatus::from(workflow.as_str()))
                    .build(),
            )
            .set_note(note.map(|t| aws_sdk_securityhub::types::Note::builder().text(t).updated_by(UPDATED_BY).build()))
            .build();
        HubFinding { id: id.to_owned(), json_bytes: 1000, finding: sdk, desired }
    }

    fn excepted() -> Desired {
        Desired::Suppressed(workflow::exception_note("#1", "o", "2027-01-31", "vendor"))
    }

    fn workflows(hub: &FakeHub) -> BTreeMap<String, &'static str> {
        hub.states.lock().unwrap().values().map(|s| (s.id.clone(), s.workflow.as_str())).collect()
    }

    #[tokio::test]
    async fn findings_are_created_where_keyaudit_puts_them_then_moved_only_when_its_state_changes() {
        let hub = FakeHub::default();
        let first = vec![
            finding("stale", Desired::Open),
            finding("vendor", excepted()),
            finding("fixed-later", Desired::Open),
            finding("excepted-later", Desired::Open),
            finding("hand-suppressed", Desired::Open),
            finding("passing", Desired::Resolved(Resolution::Passes)),
        ];
        let pushed = push_account(&hub, "000000000002", first).await;
        assert_eq!((pushed.imported, pushed.problems.len()), (6, 0));
        assert!(hub.updates.lock().unwrap().is_empty(), "a new finding is created in its state: no update");
        assert_eq!(workflows(&hub)["vendor"], "SUPPRESSED");
        assert_eq!(workflows(&hub)["passing"], "RESOLVED");
        // A person suppresses one by hand between runs.
        hub.states.lock().unwrap().get_mut("hand-suppressed").unwrap().workflow = Workflow::Suppressed;

        let second = vec![
            finding("stale", Desired::Open),
            finding("vendor", Desired::Open), // its exception expired
            finding("fixed-later", Desired::Resolved(Resolution::Passes)),
            finding("excepted-later", excepted()),
            finding("hand-suppressed", Desired::Open),
            finding("passing", Desired::Resolved(Resolution::Passes)),
        ];
        let pushed = push_account(&hub, "000000000002", second).await;
        assert!(pushed.problems.is_empty(), "{:?}", pushed.problems);
        assert_eq!(pushed.moved_summary(), "1 to NOTIFIED, 1 to SUPPRESSED, 1 to RESOLVED");
        let want = [
            ("excepted-later", "SUPPRESSED"),
            ("fixed-later", "RESOLVED"),
            ("hand-suppressed", "SUPPRESSED"),
            ("passing", "RESOLVED"),
            ("stale", "NEW"),
            ("vendor", "NOTIFIED"),
        ];
        assert_eq!(workflows(&hub), want.iter().map(|(a, b)| ((*a).to_owned(), *b)).collect());
        assert_eq!(hub.updates.lock().unwrap().len(), 3, "one call per workflow and note");

        let calls = hub.updates.lock().unwrap().len();
        let third = vec![
            finding("stale", Desired::Open),
            finding("vendor", Desired::Open),
            finding("fixed-later", Desired::Resolved(Resolution::Passes)),
            finding("excepted-later", excepted()),
            finding("hand-suppressed", Desired::Open),
            finding("passing", Desired::Resolved(Resolution::Passes)),
        ];
        let pushed = push_account(&hub, "000000000002", third).await;
        assert_eq!((pushed.moved_summary().as_str(), hub.updates.lock().unwrap().len()), ("none", calls));
    }

    #[tokio::test]
    async fn every_failure_names_its_account_and_findings_and_keeps_what_was_done() {
        let fresh = |id: &str| finding(id, Desired::Open);
        // Refused on import: neither imported nor updated.
        let hub = FakeHub { refuse: HashSet::from(["b".to_owned()]), ..FakeHub::default() };
        let pushed = push_account(&hub, "000000000002", vec![fresh("a"), fresh("b")]).await;
        assert_eq!(pushed.imported, 1);
        assert_eq!(
            pushed.problems[0].to_string(),
            "000000000002: 1 finding(s) not imported (b): InvalidInput: refused"
        );

        // The read fails: the import stands, the account is named.
        let hub = FakeHub { read_error: Some(error("securityhub:GetFindings")), ..FakeHub::default() };
        let pushed = push_account(&hub, "000000000002", vec![fresh("a"), fresh("b")]).await;
        assert_eq!(pushed.imported, 2);
        let text = pushed.problems[0].to_string();
        assert!(
            text.starts_with(
                "000000000002: all 2 finding(s) imported, but their workflows not brought up to date: \
                              securityhub:GetFindings failed: AccessDeniedException"
            ),
            "{text}"
        );

        // Updates denied or left unprocessed: named by id.
        let hub = FakeHub::default();
        push_account(&hub, "000000000002", vec![fresh("a"), fresh("b"), fresh("c")]).await;
        let hub = FakeHub { update_error: Some(error("securityhub:BatchUpdateFindings")), ..hub };
        let fixed = |id: &str| finding(id, Desired::Resolved(Resolution::Passes));
        let pushed = push_account(&hub, "000000000002", vec![fixed("a"), fixed("b"), fresh("c")]).await;
        assert_eq!(pushed.imported, 3);
        assert_eq!(pushed.problems.len(), 1);
        assert!(
            pushed.problems[0].to_string().starts_with("000000000002: 2 finding(s) not moved to RESOLVED (a, b): ")
        );
        let hub = FakeHub { update_error: None, unprocessed: HashSet::from(["b".to_owned()]), ..hub };
        let pushed = push_account(&hub, "000000000002", vec![fixed("a"), fixed("b"), fresh("c")]).await;
        assert_eq!(pushed.moved_summary(), "1 to RESOLVED");
        assert_eq!(
            pushed.problems[0].to_string(),
            "000000000002: 1 finding(s) not moved to RESOLVED (b): FindingNotFound: gone"
        );
        assert_eq!(pushed.problems[0].count(), 1);
    }
}
