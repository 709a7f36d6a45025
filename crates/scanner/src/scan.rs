//! Org-wide orchestration: accounts run concurrently, each ends in exactly one status, one account's failure
//! never touches another, and results are evaluated per account as they arrive.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use keyaudit_core::eval::{EvalContext, Finding};
use keyaudit_core::report::{
    Account, AccountRecord, AccountState, AccountStats, AccountStatus, FailureCode, FailureReason, SkipReason,
};
use keyaudit_core::rules::RuleSet;
use tokio::sync::Semaphore;

use crate::collect::{KeyIdMode, ReportPolicy, collect_account};
use crate::iam::IamApi;

/// Why an account could not be opened, and how many API calls that took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFailure {
    /// The failure, as it goes into the report.
    pub reason: FailureReason,
    /// API calls made while trying (AssumeRole).
    pub api_calls: u32,
}

/// Opens an account for IAM reads (the caller's credentials or an assumed role).
pub trait AccountConnector: Send + Sync {
    /// The IAM client type.
    type Api: IamApi;
    /// Opens `account`.
    fn connect(&self, account: &Account) -> impl Future<Output = Result<Self::Api, ConnectFailure>> + Send;
}

/// Scan settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Accounts scanned at once.
    pub concurrency: usize,
    /// Credential-report waits.
    pub report_policy: ReportPolicy,
    /// Which users get key ids.
    pub key_ids: KeyIdMode,
    /// `ListAccessKeys` calls in flight per account.
    pub enrichment_concurrency: usize,
    /// Budget for one account, from connect to the last call.
    pub account_timeout: Duration,
    /// Credential-report generations (generate + fetch, waits included) in flight at once, org-wide.
    pub max_report_generations: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            report_policy: ReportPolicy::default(),
            key_ids: KeyIdMode::default(),
            enrichment_concurrency: 4,
            account_timeout: Duration::from_secs(300),
            max_report_generations: 16,
        }
    }
}

/// Progress, reported as each account finishes.
#[derive(Debug)]
pub struct AccountDone<'a> {
    /// The account's record.
    pub record: &'a AccountRecord,
    /// Its findings.
    pub findings: &'a [Finding],
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
    accounts: Vec<Account>,
    rules: &RuleSet,
    ctx: &EvalContext,
    opts: &ScanOptions,
    on_done: &(dyn Fn(AccountDone<'_>) + Send + Sync),
    shutdown: impl Future<Output = ()>,
) -> ScanOutput {
    let mut out = ScanOutput::default();
    let mut record = |record: AccountRecord, findings: Vec<Finding>| {
        on_done(AccountDone { record: &record, findings: &findings });
        out.accounts.push(record);
        out.findings.extend(findings);
    };
    let (active, inactive): (Vec<Account>, Vec<Account>) =
        accounts.into_iter().partition(|a| a.state == AccountState::Active);
    for account in inactive {
        let status = AccountStatus::Skipped(SkipReason::NotActive(account.state.clone()));
        record(AccountRecord { account, status, stats: AccountStats::default() }, Vec::new());
    }
    let mut pending: BTreeMap<_, _> = active.iter().map(|a| (a.id.clone(), a.clone())).collect();
    let generations = Semaphore::new(opts.max_report_generations.max(1));
    let mut results = stream::iter(active)
        .map(|account| scan_one(connector, account, rules, ctx, opts, &generations))
        .buffer_unordered(opts.concurrency.max(1));
    let mut shutdown = std::pin::pin!(shutdown);
    let interrupted = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break true,
            next = results.next() => match next {
                Some((rec, findings)) => {
                    pending.remove(&rec.account.id);
                    record(rec, findings);
                }
                None => break false,
            },
        }
    };
    drop(results);
    if interrupted {
        tracing::warn!(accounts = pending.len(), "interrupted: accounts without a result are marked failed");
        for account in pending.into_values() {
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

async fn scan_one<C: AccountConnector>(
    connector: &C,
    account: Account,
    rules: &RuleSet,
    ctx: &EvalContext,
    opts: &ScanOptions,
    generations: &Semaphore,
) -> (AccountRecord, Vec<Finding>) {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + opts.account_timeout;
    let mut stats = AccountStats::default();
    let timeout = || FailureReason {
        code: FailureCode::Timeout,
        action: None,
        aws_error_code: None,
        message: format!(
            "the account did not finish within {}s (--account-timeout)",
            opts.account_timeout.as_secs_f64()
        ),
    };
    let api = match tokio::time::timeout_at(deadline, connector.connect(&account)).await {
        Ok(Ok(api)) => api,
        Ok(Err(failure)) => {
            stats.api_calls = failure.api_calls;
            return finish(account, AccountStatus::Failed(failure.reason), stats, started, Vec::new());
        }
        Err(_) => return finish(account, AccountStatus::Failed(timeout()), stats, started, Vec::new()),
    };
    let collected = tokio::time::timeout_at(
        deadline,
        collect_account(
            &api,
            &account.id,
            rules,
            ctx,
            &opts.report_policy,
            generations,
            opts.key_ids,
            opts.enrichment_concurrency,
        ),
    )
    .await;
    stats.api_calls = api.api_calls();
    stats.sdk_retries = api.sdk_retries();
    match collected {
        Ok(Ok(c)) => {
            stats.report_retries = c.report_retries;
            stats.enrichment_calls = c.enrichment_calls;
            stats.unmatched_key_ids =
                c.inventory.users.iter().flat_map(|u| &u.keys).filter(|k| k.access_key_id.is_none()).count() as u32;
            for w in &c.warnings {
                tracing::warn!(account = %account.id, "{w}");
            }
            let status = AccountStatus::Scanned { report_generated_at: c.inventory.report_generated_at };
            finish(account, status, stats, started, c.findings)
        }
        Ok(Err(err)) => {
            tracing::warn!(account = %account.id, error = %err, "account could not be assessed");
            finish(account, AccountStatus::Failed(err.to_failure()), stats, started, Vec::new())
        }
        Err(_) => finish(account, AccountStatus::Failed(timeout()), stats, started, Vec::new()),
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
