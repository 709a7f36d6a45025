//! Org-wide orchestration: accounts run concurrently, each ends in exactly one status, one account's failure
//! never touches another, and results are evaluated per account as they arrive.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use futures::stream::{Stream, StreamExt};
use keyaudit_core::eval::{EvalContext, Finding};
use keyaudit_core::ids::AccountId;
use keyaudit_core::report::{
    Account, AccountRecord, AccountState, AccountStats, AccountStatus, FailureCode, FailureReason, KeyTally, SkipReason,
};
use keyaudit_core::rules::RuleSet;
use tokio::sync::Semaphore;

pub use crate::collect::ScanOptions;
use crate::collect::{GenerationEstimate, Slot, collect_account};
use crate::iam::{CollectError, IamApi};

/// Why an account could not be opened, and how many API calls that took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFailure {
    /// The failure, as it goes into the report.
    pub reason: FailureReason,
    /// API calls made while trying (AssumeRole).
    pub api_calls: u32,
    /// Attempts of those calls the SDK retried (throttling, 5xx).
    pub sdk_retries: u32,
}

/// Opens an account for IAM reads (the caller's credentials or an assumed role).
pub trait AccountConnector: Send + Sync {
    /// The IAM client type.
    type Api: IamApi;
    /// Opens `account`.
    fn connect(&self, account: &Account) -> impl Future<Output = Result<Self::Api, ConnectFailure>> + Send;
}

/// Accounts open at once per working place: the others wait for AWS (their credential report being generated)
/// without holding a place. Bounds sessions and memory (each open account holds an IAM client and its session),
/// not speed: 40 × 32 = 1,280 accounts open by default, enough to overlap 10-second generations at 120 accounts/s.
pub const OPEN_PER_WORKER: usize = 40;

/// Progress, reported as each account finishes.
#[derive(Debug)]
pub struct AccountDone<'a> {
    /// The account's record.
    pub record: &'a AccountRecord,
    /// Its findings (the caller may annotate them: exceptions, baseline state).
    pub findings: &'a mut [Finding],
}

/// What the caller sees while the scan runs.
#[derive(Clone, Copy)]
pub struct Watch<'a> {
    /// Called as each account finishes (the caller may annotate its findings).
    pub on_done: &'a (dyn Fn(AccountDone<'_>) + Send + Sync),
    /// How many accounts are waiting on AWS for their credential report, now.
    pub waiting: &'a AtomicUsize,
}

/// Every selected account's record and every finding.
#[derive(Debug, Default)]
pub struct ScanOutput {
    /// One record per account, in completion order.
    pub accounts: Vec<AccountRecord>,
    /// Findings of scanned accounts.
    pub findings: Vec<Finding>,
}

/// Scans `accounts` concurrently; `on_done` sees each account as it finishes.
///
/// When `shutdown` resolves (Ctrl-C, SIGTERM), accounts in flight are abandoned and every account without a
/// result ends `failed` with reason `interrupted`; the output is complete in that every account has a status.
pub async fn scan_accounts<C: AccountConnector>(
    connector: &C,
    accounts: impl Stream<Item = Account>,
    rules: &RuleSet,
    ctx: &EvalContext,
    opts: &ScanOptions,
    watch: Watch<'_>,
    shutdown: impl Future<Output = ()>,
) -> ScanOutput {
    let Watch { on_done, waiting } = watch;
    let mut out = ScanOutput::default();
    let mut record = |record: AccountRecord, mut findings: Vec<Finding>| {
        on_done(AccountDone { record: &record, findings: &mut findings });
        out.accounts.push(record);
        out.findings.extend(findings);
    };
    // Accounts taken from `accounts` and not finished yet: the ones an interrupt marks `interrupted`.
    let pending: Mutex<BTreeMap<AccountId, Account>> = Mutex::new(BTreeMap::new());
    let workers = Semaphore::new(opts.concurrency.max(1));
    let generations = GenerationEstimate::default();
    let mut results = std::pin::pin!(
        accounts
            .map(|account| {
                if let Ok(mut p) = pending.lock() {
                    p.insert(account.id.clone(), account.clone());
                }
                let (workers, pending, generations) = (&workers, &pending, &generations);
                async move {
                    let done = match not_scanned(&account) {
                        Some(status) => (AccountRecord { account, status, stats: AccountStats::default() }, Vec::new()),
                        None => scan_one(connector, account, rules, ctx, opts, (workers, waiting, generations)).await,
                    };
                    if let Ok(mut p) = pending.lock() {
                        p.remove(&done.0.account.id);
                    }
                    done
                }
            })
            .buffer_unordered(opts.concurrency.max(1).saturating_mul(OPEN_PER_WORKER))
    );
    let mut shutdown = std::pin::pin!(shutdown);
    let interrupted = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break true,
            next = results.next() => match next {
                Some((rec, findings)) => record(rec, findings),
                None => break false,
            },
        }
    };
    if interrupted {
        let unfinished = std::mem::take(&mut *pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        tracing::warn!(accounts = unfinished.len(), "interrupted: accounts without a result are marked failed");
        for account in unfinished.into_values() {
            let reason = FailureReason {
                code: FailureCode::Interrupted,
                action: None,
                aws_error_code: None,
                message: "the scan was interrupted before this account finished".into(),
            };
            record(
                AccountRecord { account, status: AccountStatus::Failed(reason), stats: AccountStats::default() },
                Vec::new(),
            );
        }
    }
    out
}

/// The status of an account that is not scanned: the documented non-active states are skipped; a state this
/// version does not know is not assumed to be closed: the account fails, so the run cannot claim it was assessed.
fn not_scanned(account: &Account) -> Option<AccountStatus> {
    if account.state == AccountState::Active {
        None
    } else if account.state.is_known_inactive() {
        Some(AccountStatus::Skipped(SkipReason::NotActive(account.state.clone())))
    } else {
        Some(AccountStatus::Failed(FailureReason {
            code: FailureCode::UnknownState,
            action: None,
            aws_error_code: None,
            message: format!(
                "Organizations reports the account state {:?}, which this version of keyaudit does not know; it \
                 was not scanned",
                account.state.as_str()
            ),
        }))
    }
}

async fn scan_one<C: AccountConnector>(
    connector: &C,
    account: Account,
    rules: &RuleSet,
    ctx: &EvalContext,
    opts: &ScanOptions,
    (workers, waiting, generations): (&Semaphore, &AtomicUsize, &GenerationEstimate),
) -> (AccountRecord, Vec<Finding>) {
    // The account's clock starts when it gets a place to work, not while it queues for one.
    let mut slot = Slot::take(workers, waiting, generations).await;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + opts.account_timeout;
    let mut stats = AccountStats::default();
    // Boxed, like the IAM calls: AssumeRole's future would otherwise size the account's future through its waits.
    let api = match tokio::time::timeout_at(deadline, Box::pin(connector.connect(&account))).await {
        Ok(Ok(api)) => api,
        Ok(Err(failure)) => {
            stats.api_calls = failure.api_calls;
            stats.sdk_retries = failure.sdk_retries;
            return finish(account, AccountStatus::Failed(failure.reason), stats, started, Vec::new());
        }
        Err(_) => {
            let timeout = CollectError::Timeout { budget: opts.account_timeout }.to_failure();
            return finish(account, AccountStatus::Failed(timeout), stats, started, Vec::new());
        }
    };
    let collected = collect_account(&api, &account.id, rules, ctx, opts, &mut slot, deadline).await;
    stats.api_calls = api.api_calls();
    stats.sdk_retries = api.sdk_retries();
    match collected {
        Ok(c) => {
            stats.report_retries = c.report_retries;
            stats.enrichment_calls = c.enrichment_calls;
            stats.tag_calls = c.tag_calls;
            for w in &c.warnings {
                tracing::warn!(account = %account.id, "{w}");
            }
            let status = AccountStatus::Scanned {
                report_generated_at: c.inventory.report_generated_at,
                keys: KeyTally::of(&c.inventory),
                enrichment: c.enrichment,
            };
            finish(account, status, stats, started, c.findings)
        }
        Err(err) => {
            tracing::warn!(account = %account.id, error = %err, "account could not be assessed");
            finish(account, AccountStatus::Failed(err.to_failure()), stats, started, Vec::new())
        }
    }
}

fn finish(
    account: Account,
    status: AccountStatus,
    mut stats: AccountStats,
    started: Instant,
    findings: Vec<Finding>,
) -> (AccountRecord, Vec<Finding>) {
    stats.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    (AccountRecord { account, status, stats }, findings)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use keyaudit_core::eval::RuleConfig;
    use keyaudit_core::ids::AccountId;
    use keyaudit_core::inventory::ListedKey;
    use keyaudit_core::report::AccessMethod;
    use keyaudit_core::rules::builtin;

    use std::time::Duration;

    use super::*;
    use crate::iam::{CollectError, RawReport, ReportState};

    const REPORT: &str = "user,arn,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date\n\
        <root_account>,arn:aws:iam::000000000001:root,false,N/A,N/A,false,N/A,N/A\n\
        u,arn:aws:iam::000000000001:user/u,true,2026-01-01T00:00:00+00:00,N/A,false,N/A,N/A\n";

    /// Behaviour per account id suffix: `1` fine, `2` AssumeRole denied, `3` hangs, anything else fine.
    struct FakeConnector {
        in_flight: Arc<AtomicUsize>,
        max_in_flight: Arc<AtomicUsize>,
        /// How long AWS takes to generate each account's report (ReportInProgress until then).
        report_delay: Duration,
    }

    struct FakeApi {
        hang: bool,
        in_flight: Arc<AtomicUsize>,
        max_in_flight: Arc<AtomicUsize>,
        calls: AtomicU32,
        report_delay: Duration,
        ready_at: Mutex<Option<tokio::time::Instant>>,
    }

    impl IamApi for FakeApi {
        async fn generate_credential_report(&self) -> Result<ReportState, CollectError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(if self.hang { Duration::from_secs(3600) } else { Duration::from_millis(50) }).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.ready_at.lock().unwrap().get_or_insert(tokio::time::Instant::now() + self.report_delay);
            Ok(ReportState::Started)
        }
        async fn get_credential_report(&self) -> Result<RawReport, CollectError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.ready_at.lock().unwrap().is_some_and(|t| tokio::time::Instant::now() < t) {
                return Err(CollectError::ReportNotReady {
                    action: "iam:GetCredentialReport",
                    code: "ReportInProgress".into(),
                    message: "in progress".into(),
                });
            }
            Ok(RawReport { content: REPORT.as_bytes().to_vec(), generated_at: None })
        }
        async fn list_access_keys(&self, _: &str) -> Result<Vec<ListedKey>, CollectError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
        async fn list_user_tags(&self, _: &str) -> Result<Vec<(String, String)>, CollectError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
        fn api_calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl AccountConnector for FakeConnector {
        type Api = FakeApi;
        async fn connect(&self, account: &Account) -> Result<FakeApi, ConnectFailure> {
            if account.id.as_str().ends_with('2') {
                return Err(ConnectFailure {
                    reason: FailureReason {
                        code: FailureCode::AssumeRoleDenied,
                        action: Some("sts:AssumeRole".into()),
                        aws_error_code: Some("AccessDenied".into()),
                        message: "denied".into(),
                    },
                    api_calls: 1,
                    sdk_retries: 0,
                });
            }
            Ok(FakeApi {
                hang: account.id.as_str().ends_with('3'),
                in_flight: Arc::clone(&self.in_flight),
                max_in_flight: Arc::clone(&self.max_in_flight),
                calls: AtomicU32::new(1),
                report_delay: self.report_delay,
                ready_at: Mutex::new(None),
            })
        }
    }

    fn account(id: &str, state: AccountState) -> Account {
        Account {
            id: AccountId::parse(id).unwrap(),
            name: None,
            ou_path: Some("/Root".into()),
            state,
            access: AccessMethod::CallerCredentials,
        }
    }

    fn connector() -> FakeConnector {
        FakeConnector { in_flight: Arc::default(), max_in_flight: Arc::default(), report_delay: Duration::ZERO }
    }

    async fn run(
        c: &FakeConnector,
        accounts: Vec<Account>,
        opts: ScanOptions,
        shutdown: impl Future<Output = ()>,
    ) -> (ScanOutput, usize) {
        let ctx = EvalContext { as_of: "2026-11-28T00:00:00Z".parse().unwrap(), config: RuleConfig::default() };
        let seen = Mutex::new(0usize);
        let waiting = AtomicUsize::new(0);
        let on_done = |_: AccountDone<'_>| *seen.lock().unwrap() += 1;
        let watch = Watch { on_done: &on_done, waiting: &waiting };
        let out = scan_accounts(c, futures::stream::iter(accounts), &builtin(), &ctx, &opts, watch, shutdown).await;
        assert_eq!(waiting.load(Ordering::SeqCst), 0, "no account is left counted as waiting");
        let seen = *seen.lock().unwrap();
        (out, seen)
    }

    fn status_of<'a>(out: &'a ScanOutput, id: &str) -> &'a AccountStatus {
        &out.accounts.iter().find(|r| r.account.id.as_str() == id).unwrap().status
    }

    #[tokio::test(start_paused = true)]
    async fn each_account_ends_in_exactly_one_status_and_failures_stay_local() {
        let accounts = vec![
            account("000000000001", AccountState::Active),
            account("000000000002", AccountState::Active),
            account("000000000003", AccountState::Active),
            account("000000000004", AccountState::Suspended),
            account("000000000005", AccountState::Other("MIGRATING".into())),
        ];
        let opts = ScanOptions { account_timeout: Duration::from_secs(5), ..ScanOptions::default() };
        let (out, seen) = run(&connector(), accounts, opts, std::future::pending()).await;
        assert_eq!((out.accounts.len(), seen), (5, 5));
        assert!(
            matches!(status_of(&out, "000000000005"), AccountStatus::Failed(r) if r.code == FailureCode::UnknownState && r.message.contains("\"MIGRATING\"")),
            "an unknown state is never skipped as if closed"
        );
        assert!(matches!(status_of(&out, "000000000001"), AccountStatus::Scanned { .. }));
        assert!(
            matches!(status_of(&out, "000000000002"), AccountStatus::Failed(r) if r.code == FailureCode::AssumeRoleDenied)
        );
        assert!(matches!(status_of(&out, "000000000003"), AccountStatus::Failed(r) if r.code == FailureCode::Timeout));
        assert!(matches!(status_of(&out, "000000000004"), AccountStatus::Skipped(_)));
        assert_eq!(out.findings.len(), 3, "only the scanned account has findings (KA-IAM-001, -003, -004 on its user)");
        let denied = out.accounts.iter().find(|r| r.account.id.as_str() == "000000000002").unwrap();
        assert_eq!(denied.stats.api_calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_bounds_the_accounts_at_work() {
        // Ids ending in 1: every account behaves (see FakeConnector).
        let accounts: Vec<Account> =
            (10..40).map(|i| account(&format!("000000000{i}1"), AccountState::Active)).collect();
        let c = connector();
        let opts = ScanOptions { concurrency: 8, ..ScanOptions::default() };
        let (out, _) = run(&c, accounts, opts, std::future::pending()).await;
        assert_eq!(out.accounts.len(), 30);
        assert_eq!(c.max_in_flight.load(Ordering::SeqCst), 8, "at most 8 accounts at work at once");
    }

    /// Issue "Organization scale": accounts waiting for AWS to generate their report hold no place, so the waits
    /// overlap: forty 5-second reports with 4 places take about one report's time, not 40 × 5 / 4 = 50 s.
    #[tokio::test(start_paused = true)]
    async fn accounts_waiting_on_their_report_do_not_block_the_others() {
        let accounts: Vec<Account> =
            (10..50).map(|i| account(&format!("000000000{i}1"), AccountState::Active)).collect();
        let c = FakeConnector { report_delay: Duration::from_secs(5), ..connector() };
        let opts = ScanOptions { concurrency: 4, ..ScanOptions::default() };
        let started = tokio::time::Instant::now();
        let (out, _) = run(&c, accounts, opts, std::future::pending()).await;
        let took = started.elapsed();
        assert_eq!(out.accounts.len(), 40);
        assert!(out.accounts.iter().all(|r| matches!(r.status, AccountStatus::Scanned { .. })));
        assert!(took < Duration::from_secs(15), "took {took:?}");
        assert!(out.accounts.iter().all(|r| r.stats.report_retries >= 1), "every report was waited for");
        assert_eq!(c.max_in_flight.load(Ordering::SeqCst), 4, "still at most 4 at work at once");
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupt_fails_every_unfinished_account_as_interrupted() {
        let accounts = vec![
            account("000000000001", AccountState::Active),
            account("000000000003", AccountState::Active),
            account("000000000004", AccountState::Suspended),
        ];
        let shutdown = tokio::time::sleep(Duration::from_secs(10));
        let (out, seen) = run(&connector(), accounts, ScanOptions::default(), shutdown).await;
        assert_eq!((out.accounts.len(), seen), (3, 3));
        assert!(matches!(status_of(&out, "000000000001"), AccountStatus::Scanned { .. }));
        assert!(
            matches!(status_of(&out, "000000000003"), AccountStatus::Failed(r) if r.code == FailureCode::Interrupted)
        );
        assert!(matches!(status_of(&out, "000000000004"), AccountStatus::Skipped(_)));
    }
}
