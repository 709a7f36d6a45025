//! Per-account collection: the credential report (with the bounded waits AWS semantics call for), evaluation,
//! and key-id enrichment for the users that need it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use keyaudit_core::eval::{EvalContext, Finding, Verdict, evaluate};
use keyaudit_core::ids::AccountId;
use keyaudit_core::inventory::{AccountInventory, Owner, attach_key_ids};
use keyaudit_core::report::Enrichment;
use keyaudit_core::rules::RuleSet;
use rand::Rng;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::credential_report::parse_credential_report;
use crate::iam::{CollectError, IamApi, ReportState};

/// Scan settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Accounts doing work at once. An account waiting for AWS to generate its credential report gives its place
    /// up (up to `concurrency × OPEN_PER_WORKER` accounts are open at once, most of them waiting).
    pub concurrency: usize,
    /// Credential-report waits.
    pub report_policy: ReportPolicy,
    /// Which users get key ids.
    pub key_ids: KeyIdMode,
    /// `ListAccessKeys` calls in flight per account.
    pub enrichment_concurrency: usize,
    /// Budget for one account's mandatory part: connecting and getting its credential report (the verdicts).
    pub account_timeout: Duration,
    /// Budget for one account's optional look-ups (key ids, owners) after its report; what is not done by then is
    /// left empty, and the account stays `scanned` with all its verdicts.
    pub enrichment_timeout: Duration,
    /// User tag keys naming a user's owner, in order of preference; empty turns the `ListUserTags` look-up off.
    pub owner_tags: Vec<String>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            // Measured: 32 accounts in flight reach the emulator's ceiling at 25 ms per call (docs/performance.md).
            concurrency: 32,
            report_policy: ReportPolicy::default(),
            key_ids: KeyIdMode::default(),
            enrichment_concurrency: 4,
            account_timeout: Duration::from_secs(300),
            enrichment_timeout: Duration::from_secs(300),
            owner_tags: ["owner", "Owner", "email", "contact", "team"].map(str::to_owned).to_vec(),
        }
    }
}

/// How long to wait for a credential report. The SDK retries transport errors and throttling itself; these
/// waits cover only what AWS's report semantics require (a generation under way, no capacity to start one,
/// a report not present or expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPolicy {
    /// Report-level attempts before the account fails with `report_unavailable`.
    pub max_attempts: u32,
    /// First wait; doubled after each attempt, with jitter.
    pub initial_backoff: Duration,
    /// Cap on one wait.
    pub max_backoff: Duration,
}

impl Default for ReportPolicy {
    fn default() -> Self {
        Self { max_attempts: 10, initial_backoff: Duration::from_millis(250), max_backoff: Duration::from_secs(8) }
    }
}

impl ReportPolicy {
    /// The wait before attempt `attempt + 1`: exponential, capped, with "equal jitter" (half fixed, half random),
    /// so that many accounts refused at once do not retry in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(attempt.min(16)));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

/// Which users get a `ListAccessKeys` call to attach key ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyIdMode {
    /// Users with a `fail` or `warn` key: API cost grows with violations, not with users.
    #[default]
    Failing,
    /// Every user with a key.
    All,
    /// Nobody: the credential report alone.
    None,
}

/// What collection produced for one account.
#[derive(Debug)]
pub struct Collected {
    /// The inventory after enrichment.
    pub inventory: AccountInventory,
    /// Findings from every rule.
    pub findings: Vec<Finding>,
    /// Report-level retries made.
    pub report_retries: u32,
    /// Users whose keys were listed (`ListAccessKeys`, answered before the enrichment budget ran out; pages beyond
    /// the first are in the account's API calls).
    pub enrichment_calls: u32,
    /// Users whose tags were listed (`ListUserTags`), likewise.
    pub tag_calls: u32,
    /// How far the optional look-ups got.
    pub enrichment: Enrichment,
    /// Key slots left without an id because more than one key could be theirs, or why enrichment failed.
    pub warnings: Vec<String>,
}

/// An account's place among those doing work at once. While the account waits for AWS (a credential report
/// being generated), it gives its place up, so that waiting accounts hold no worker: AWS generates reports in
/// every account independently, and the waits overlap instead of adding up.
pub struct Slot<'a> {
    slots: &'a Semaphore,
    permit: Option<SemaphorePermit<'a>>,
    waiting: &'a AtomicUsize,
    generations: &'a GenerationEstimate,
}

/// Counts an account as waiting on AWS for as long as it lives (also when the wait is cut short).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<'a> Slot<'a> {
    /// Waits for a place among `slots`; `waiting` counts the accounts waiting on AWS (for progress), and
    /// `generations` is the scan's estimate of how long credential reports take to generate.
    pub async fn take(slots: &'a Semaphore, waiting: &'a AtomicUsize, generations: &'a GenerationEstimate) -> Self {
        Self { slots, permit: slots.acquire().await.ok(), waiting, generations }
    }

    /// Sleeps for `d` without holding a place, then takes one again.
    async fn wait_for_aws(&mut self, d: Duration) {
        self.permit = None;
        {
            let _waiting = Waiting::new(self.waiting);
            tokio::time::sleep(d).await;
        }
        self.permit = self.slots.acquire().await.ok();
    }
}

/// How long this scan's credential report generations take, learned as the scan goes: the wait between a
/// generation's start (`GenerateCredentialReport` answered `STARTED`) and the first `GetCredentialReport`.
///
/// Asking for a report AWS is still generating costs a call that answers `ReportInProgress`; asking too late
/// keeps the account open for nothing. The estimate starts at zero (the first accounts ask at once, then back off),
/// and every answer to an account's own generation that tells something about it corrects it: a report ready at a
/// first ask made no later than the estimate makes it 2% shorter; a report not ready at or after the estimate's time
/// makes it 8% longer, and at least as long as that (at most twice as long at a time, so that one slow account does
/// not hold every other back). The steps settle where about one first ask in five is early: about 1.2 asks per
/// generation.
#[derive(Debug, Default)]
pub struct GenerationEstimate {
    micros: AtomicU64,
}

impl GenerationEstimate {
    const SHRINK: f64 = 0.98;
    const GROW: f64 = 1.08;
    /// The first step up from zero.
    const FLOOR: Duration = Duration::from_millis(250);
    /// No generation is waited for longer than this before asking: past it, the report policy's backoff asks.
    const CAP: Duration = Duration::from_secs(30);

    /// The wait before the first `GetCredentialReport` of a generation just started.
    pub fn first_wait(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }

    /// A report was ready at its generation's first ask, `at` after the generation started: the estimate shrinks,
    /// unless the ask came later than the estimate says (which tells nothing about it).
    fn ready_at_first_ask(&self, at: Duration) {
        self.update(|now| (at <= now).then(|| now.mul_f64(Self::SHRINK)));
    }

    /// A report was not ready `at` after its generation started: the estimate grows, unless that was before the
    /// estimate's time (which tells nothing about it).
    fn not_ready(&self, at: Duration) {
        self.update(|now| (at >= now).then(|| now.mul_f64(Self::GROW).max(at.min((now * 2).max(Self::FLOOR)))));
    }

    fn update(&self, next: impl Fn(Duration) -> Option<Duration>) {
        let step = |micros: u64| {
            let next = next(Duration::from_micros(micros))?;
            Some(u64::try_from(next.min(Self::CAP).as_micros()).unwrap_or(u64::MAX))
        };
        // `None` leaves the estimate as it is.
        let _ = self.micros.fetch_update(Ordering::Relaxed, Ordering::Relaxed, step);
    }
}

/// A generation this account started: when, and how many times its report was asked for.
struct Generation {
    started: tokio::time::Instant,
    asks: u32,
}

/// Generates (or reuses) the credential report, waiting as AWS semantics require, bounded by `policy`; the
/// waits give `slot` up.
///
/// A report that is ready (`COMPLETE`, reused for up to 4 hours) is asked for at once; one whose generation this
/// account just started is asked for after the scan's [`GenerationEstimate`], and while it answers
/// `ReportInProgress` it is waited out with backoff.
pub async fn collect_credential_report(
    api: &impl IamApi,
    policy: &ReportPolicy,
    slot: &mut Slot<'_>,
) -> Result<(AccountInventory, u32), CollectError> {
    let mut attempt = 0;
    let mut need_generate = true;
    let mut generation: Option<Generation> = None;
    loop {
        let result = async {
            if need_generate {
                let state: ReportState = api.generate_credential_report().await?;
                tracing::trace!(?state, "credential report generation");
                generation = (state == ReportState::Started)
                    .then(|| Generation { started: tokio::time::Instant::now(), asks: 0 });
                let wait = slot.generations.first_wait();
                if state != ReportState::Complete && !wait.is_zero() {
                    slot.wait_for_aws(wait).await;
                }
            }
            if let Some(g) = &mut generation {
                g.asks += 1;
            }
            api.get_credential_report().await
        }
        .await;
        let last = match result {
            Ok(raw) => {
                if let Some(g) = generation.filter(|g| g.asks == 1) {
                    slot.generations.ready_at_first_ask(g.started.elapsed());
                }
                let users = parse_credential_report(&raw.content)?;
                return Ok((AccountInventory { report_generated_at: raw.generated_at, users }, attempt));
            }
            Err(err @ CollectError::ReportNotReady { .. }) => err,
            Err(other) => return Err(other),
        };
        // A report in progress only needs another Get; a missing or expired one needs a new generation, and
        // LimitExceeded ("no more capacity") needs the generation retried.
        need_generate = !matches!(&last, CollectError::ReportNotReady { code, .. } if code == "ReportInProgress");
        attempt += 1;
        if attempt >= policy.max_attempts {
            return Err(CollectError::ReportUnavailable { attempts: attempt, last: Box::new(last) });
        }
        let mut wait = policy.backoff(attempt);
        if let Some(g) = generation.as_ref().filter(|_| !need_generate) {
            // A generation under way: not asked for again before the estimate (learned meanwhile, perhaps) says.
            let not_ready_at = g.started.elapsed();
            slot.generations.not_ready(not_ready_at);
            wait = wait.max(slot.generations.first_wait().saturating_sub(not_ready_at));
        }
        tracing::debug!(attempt, error = %last, "credential report not ready; waiting");
        slot.wait_for_aws(wait).await;
    }
}

/// The IAM users (not the root user) with keys that `wanted` picks, given whether they have an actionable
/// finding: their indexes in the inventory, users with a failing finding first, then warning ones, then the rest
/// (so that a budget that runs out leaves the least important look-ups undone).
fn users_to_enrich(inv: &AccountInventory, findings: &[Finding], wanted: impl Fn(bool) -> bool) -> Vec<usize> {
    let mut worst: HashMap<&str, Verdict> = HashMap::new();
    for f in findings {
        let entry = worst.entry(f.user_arn.as_str()).or_insert(f.verdict);
        *entry = (*entry).min(f.verdict);
    }
    let rank = |arn: &str| worst.get(arn).copied().unwrap_or(Verdict::Pass);
    let mut users: Vec<usize> = inv
        .users
        .iter()
        .enumerate()
        .filter(|(_, u)| !u.keys.is_empty() && !u.is_root() && wanted(rank(&u.arn).is_actionable()))
        .map(|(i, _)| i)
        .collect();
    users.sort_by_key(|&i| rank(&inv.users[i].arn));
    users
}

fn count(users: &[usize]) -> u32 {
    u32::try_from(users.len()).unwrap_or(u32::MAX)
}

/// Runs `call` for each of `users` (by name), `enrichment_concurrency` at a time, until `deadline`: the results
/// that arrived by then, by user index.
async fn for_each_user<T, F, Fut>(
    inv: &AccountInventory,
    users: Vec<usize>,
    opts: &ScanOptions,
    deadline: tokio::time::Instant,
    call: F,
) -> Vec<(usize, T)>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = T>,
{
    stream::iter(users)
        .map(|i| {
            let fut = call(inv.users[i].user_name.clone());
            async move { (i, fut.await) }
        })
        .buffer_unordered(opts.enrichment_concurrency.max(1))
        .take_until(tokio::time::sleep_until(deadline))
        .collect()
        .await
}

/// Collects, evaluates and enriches one account. The credential report (the verdicts) must arrive by
/// `report_deadline`, or the account fails with `timeout`; the optional look-ups that follow (key ids, owners) get
/// `opts.enrichment_timeout` of their own, and whatever they did not reach by then is left empty: the verdicts
/// are kept whatever happens to them — except a denied look-up: the audit role then lacks a permission keyaudit
/// needs, and the account fails with `access_denied` naming the action, so that the set-up gets fixed.
pub async fn collect_account(
    api: &impl IamApi,
    account_id: &AccountId,
    rules: &RuleSet,
    ctx: &EvalContext,
    opts: &ScanOptions,
    slot: &mut Slot<'_>,
    report_deadline: tokio::time::Instant,
) -> Result<Collected, CollectError> {
    let report = collect_credential_report(api, &opts.report_policy, slot);
    let (mut inventory, report_retries) = tokio::time::timeout_at(report_deadline, report)
        .await
        .map_err(|_| CollectError::Timeout { budget: opts.account_timeout })??;
    let mut findings = evaluate(rules, ctx, account_id, &inventory);
    let mut warnings = Vec::new();
    let deadline = tokio::time::Instant::now() + opts.enrichment_timeout;
    let mut enrichment = Enrichment::default();

    // Key ids, for the users --key-ids asks for (the root user has none to list). Re-evaluated afterwards:
    // ListAccessKeys is fresher than a cached report and knows CreateDate (a re-activated key's real age).
    let wanted = users_to_enrich(&inventory, &findings, |is_actionable| match opts.key_ids {
        KeyIdMode::None => false,
        KeyIdMode::All => true,
        KeyIdMode::Failing => is_actionable,
    });
    enrichment.wanted += count(&wanted);
    let mut enrichment_calls = 0;
    if !wanted.is_empty() {
        let listed =
            for_each_user(&inventory, wanted, opts, deadline, |name| async move { api.list_access_keys(&name).await })
                .await;
        let generated_at = inventory.report_generated_at;
        enrichment_calls = u32::try_from(listed.len()).unwrap_or(u32::MAX);
        for (i, result) in listed {
            let user = &mut inventory.users[i];
            match result {
                Ok(keys) => {
                    enrichment.done += 1;
                    let found = attach_key_ids(&mut user.keys, &keys, generated_at);
                    if found.ambiguous > 0 {
                        warnings.push(format!(
                            "{} key slot(s) of {} could not be matched to a key id unambiguously",
                            found.ambiguous, user.user_name
                        ));
                    }
                }
                // A missing permission is a set-up error, not a passing glitch: the account fails naming it.
                Err(err @ CollectError::AccessDenied { .. }) => return Err(err),
                Err(err) => warnings.push(format!("key ids of {} not attached: {err}", user.user_name)),
            }
        }
        findings = evaluate(rules, ctx, account_id, &inventory);
    }

    // Owners, only for users with an actionable finding as now evaluated: the cost grows with violations.
    let wanted = users_to_enrich(&inventory, &findings, |is_actionable| is_actionable && !opts.owner_tags.is_empty());
    enrichment.wanted += count(&wanted);
    let mut tag_calls = 0;
    if !wanted.is_empty() {
        let tagged =
            for_each_user(&inventory, wanted, opts, deadline, |name| async move { api.list_user_tags(&name).await })
                .await;
        tag_calls = u32::try_from(tagged.len()).unwrap_or(u32::MAX);
        for (i, result) in tagged {
            let user = &mut inventory.users[i];
            match result {
                Ok(tags) => {
                    enrichment.done += 1;
                    user.owner = Owner::from_tags(&tags, &opts.owner_tags);
                }
                Err(err @ CollectError::AccessDenied { .. }) => return Err(err),
                Err(err) => warnings.push(format!("the owner of {} was not looked up: {err}", user.user_name)),
            }
        }
        findings = evaluate(rules, ctx, account_id, &inventory);
    }
    if !enrichment.is_complete() && tokio::time::Instant::now() >= deadline {
        warnings.push(format!(
            "optional look-ups stopped at --enrichment-timeout ({}s): {} of {} done; the verdicts are complete, \
             some key ids or owners are left empty",
            opts.enrichment_timeout.as_secs_f64(),
            enrichment.done,
            enrichment.wanted
        ));
    }
    Ok(Collected { inventory, findings, report_retries, enrichment_calls, tag_calls, enrichment, warnings })
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use keyaudit_core::eval::{RuleConfig, Verdict};
    use keyaudit_core::ids::AccessKeyId;
    use keyaudit_core::inventory::{KeyStatus, ListedKey};
    use keyaudit_core::rules::builtin;

    use super::*;
    use crate::iam::RawReport;

    const HEADER: &str = "user,arn,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date";

    #[derive(Default)]
    struct FakeIam {
        generate: Mutex<VecDeque<Result<ReportState, CollectError>>>,
        get: Mutex<VecDeque<Result<RawReport, CollectError>>>,
        keys: HashMap<String, Vec<ListedKey>>,
        listed: Mutex<Vec<String>>,
        tagged: Mutex<Vec<String>>,
        calls: AtomicU32,
        /// How long each ListAccessKeys / ListUserTags takes.
        delay: Duration,
    }

    fn not_ready(action: &'static str, code: &str) -> CollectError {
        CollectError::ReportNotReady { action, code: code.into(), message: "not yet".into() }
    }

    impl IamApi for FakeIam {
        async fn generate_credential_report(&self) -> Result<ReportState, CollectError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.generate.lock().unwrap().pop_front().unwrap_or(Ok(ReportState::Complete))
        }
        async fn get_credential_report(&self) -> Result<RawReport, CollectError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.get.lock().unwrap().pop_front().expect("unexpected GetCredentialReport")
        }
        async fn list_access_keys(&self, user: &str) -> Result<Vec<ListedKey>, CollectError> {
            tokio::time::sleep(self.delay).await;
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.listed.lock().unwrap().push(user.to_owned());
            Ok(self.keys.get(user).cloned().unwrap_or_default())
        }
        async fn list_user_tags(&self, user: &str) -> Result<Vec<(String, String)>, CollectError> {
            tokio::time::sleep(self.delay).await;
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.tagged.lock().unwrap().push(user.to_owned());
            Ok(vec![("team".to_owned(), format!("{user}-team"))])
        }
        fn api_calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn raw(rows: &[&str]) -> RawReport {
        let root = "<root_account>,arn:aws:iam::012345678901:root,false,N/A,N/A,false,N/A,N/A";
        RawReport { content: format!("{HEADER}\n{root}\n{}\n", rows.join("\n")).into_bytes(), generated_at: None }
    }

    /// `collect_account` with a place of its own and an hour's budget.
    async fn collect_in_a_slot(
        api: &FakeIam,
        account: &AccountId,
        opts: &ScanOptions,
    ) -> Result<Collected, CollectError> {
        let (places, waiting, generations) = (Semaphore::new(1), AtomicUsize::new(0), GenerationEstimate::default());
        let mut slot = Slot::take(&places, &waiting, &generations).await;
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        collect_account(api, account, &builtin(), &ctx(), opts, &mut slot, far).await
    }

    fn ctx() -> EvalContext {
        EvalContext { as_of: "2026-11-28T00:00:00Z".parse().unwrap(), config: RuleConfig::default() }
    }

    fn policy(max_attempts: u32) -> ReportPolicy {
        ReportPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        }
    }

    const STALE: &str = "stale,arn:aws:iam::012345678901:user/stale,true,2026-01-01T00:00:00+00:00,N/A,true,2026-11-01T00:00:00+00:00,N/A";
    const FRESH: &str = "fresh,arn:aws:iam::012345678901:user/fresh,true,2026-11-01T00:00:00+00:00,N/A,false,N/A,N/A";

    fn key(id: &str, created: &str) -> ListedKey {
        ListedKey {
            access_key_id: AccessKeyId::parse(id).unwrap(),
            status: KeyStatus::Active,
            created_at: created.parse().unwrap(),
        }
    }

    async fn run(api: &FakeIam, mode: KeyIdMode) -> Result<Collected, CollectError> {
        let account = AccountId::parse("012345678901").unwrap();
        let opts = ScanOptions {
            report_policy: policy(4),
            key_ids: mode,
            enrichment_concurrency: 2,
            ..ScanOptions::default()
        };
        collect_in_a_slot(api, &account, &opts).await
    }

    #[tokio::test(start_paused = true)]
    async fn key_ids_are_listed_only_for_users_with_failing_keys() {
        let mut api = FakeIam::default();
        api.get.lock().unwrap().push_back(Ok(raw(&[STALE, FRESH])));
        api.keys.insert(
            "stale".into(),
            vec![
                key("AKIA0000000000000001", "2026-01-01T00:00:00Z"),
                key("AKIA0000000000000002", "2026-11-01T00:00:00Z"),
            ],
        );
        let c = run(&api, KeyIdMode::Failing).await.unwrap();
        assert_eq!(*api.listed.lock().unwrap(), ["stale"]);
        assert_eq!(*api.tagged.lock().unwrap(), ["stale"], "owners only for users with an actionable finding");
        assert_eq!((c.enrichment_calls, c.tag_calls, api.api_calls()), (1, 1, 4));
        assert!(
            c.findings
                .iter()
                .filter(|f| f.user_name == "stale")
                .all(|f| f.owner.as_ref().unwrap().value == "stale-team")
        );
        assert!(c.findings.iter().filter(|f| f.user_name == "fresh").all(|f| f.owner.is_none()));
        let stale: Vec<_> = c.findings.iter().filter(|f| f.user_name == "stale" && f.rule.id == "KA-IAM-001").collect();
        assert_eq!(stale[0].verdict, Verdict::Fail);
        let id = |f: &Finding| f.key.as_ref().and_then(|k| k.access_key_id.as_ref()).map(|k| k.as_str().to_owned());
        assert_eq!(id(stale[0]).as_deref(), Some("AKIA0000000000000001"));
        assert_eq!(id(stale[1]).as_deref(), Some("AKIA0000000000000002"));
        assert!(c.findings.iter().filter(|f| f.user_name == "fresh").all(|f| id(f).is_none()));
    }

    /// Issue "Organization scale": a large account whose look-ups cannot all finish keeps every verdict, says how
    /// far the look-ups got, and looks up failing users before warning ones.
    #[tokio::test(start_paused = true)]
    async fn look_ups_that_run_out_of_time_never_cost_a_verdict() {
        let rows: Vec<String> = (0..6)
            .map(|i| {
                // Users 0-2 warn (80 days), 3-5 fail (300 days).
                let rotated = if i < 3 { "2026-09-09T00:00:00+00:00" } else { "2026-02-01T00:00:00+00:00" };
                format!(
                    "u{i},arn:aws:iam::012345678901:user/u{i},true,{rotated},2026-11-27T00:00:00+00:00,false,N/A,N/A"
                )
            })
            .collect();
        let mut api = FakeIam { delay: Duration::from_secs(1), ..FakeIam::default() };
        for i in 0..6 {
            let created = if i < 3 { "2026-09-09T00:00:00Z" } else { "2026-02-01T00:00:00Z" };
            api.keys.insert(format!("u{i}"), vec![key(&format!("AKIA000000000000000{i}"), created)]);
        }
        api.get.lock().unwrap().push_back(Ok(raw(&rows.iter().map(String::as_str).collect::<Vec<_>>())));
        let account = AccountId::parse("012345678901").unwrap();
        let opts = ScanOptions {
            report_policy: policy(4),
            enrichment_concurrency: 1,
            enrichment_timeout: Duration::from_millis(3500),
            ..ScanOptions::default()
        };
        let c = collect_in_a_slot(&api, &account, &opts).await.unwrap();
        let listed = api.listed.lock().unwrap().clone();
        assert_eq!(listed.len(), 3, "three look-ups fit in 3.5 s: {listed:?}");
        assert!(listed.iter().all(|u| ["u3", "u4", "u5"].contains(&u.as_str())), "failing users first: {listed:?}");
        assert!(api.tagged.lock().unwrap().is_empty(), "the budget was spent");
        assert_eq!((c.enrichment.wanted, c.enrichment.done), (12, 3), "6 key-id and 6 owner look-ups wanted");
        assert_eq!(c.enrichment.status(), "partial");
        let stale = |f: &&Finding| f.rule.id == "KA-IAM-001";
        let verdicts: Vec<Verdict> = c.findings.iter().filter(stale).map(|f| f.verdict).collect();
        assert_eq!(verdicts.len(), 6, "every verdict is kept");
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Fail).count(), 3);
        assert!(c.warnings.iter().any(|w| w.contains("--enrichment-timeout")), "{:?}", c.warnings);
    }

    #[tokio::test(start_paused = true)]
    async fn no_owner_tags_means_no_tag_look_up() {
        let api = FakeIam::default();
        api.get.lock().unwrap().push_back(Ok(raw(&[STALE])));
        let account = AccountId::parse("012345678901").unwrap();
        let opts = ScanOptions { report_policy: policy(4), owner_tags: Vec::new(), ..ScanOptions::default() };
        let c = collect_in_a_slot(&api, &account, &opts).await.unwrap();
        assert!(api.tagged.lock().unwrap().is_empty());
        assert_eq!(c.tag_calls, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn key_id_modes_all_and_none() {
        let api = FakeIam::default();
        api.get.lock().unwrap().push_back(Ok(raw(&[STALE, FRESH])));
        run(&api, KeyIdMode::All).await.unwrap();
        assert_eq!(api.listed.lock().unwrap().len(), 2);
        let api = FakeIam::default();
        api.get.lock().unwrap().push_back(Ok(raw(&[STALE, FRESH])));
        let c = run(&api, KeyIdMode::None).await.unwrap();
        assert!(api.listed.lock().unwrap().is_empty());
        assert_eq!(c.enrichment_calls, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn limit_exceeded_and_report_in_progress_are_waited_out() {
        let api = FakeIam::default();
        api.generate
            .lock()
            .unwrap()
            .extend([Err(not_ready("iam:GenerateCredentialReport", "LimitExceeded")), Ok(ReportState::Started)]);
        api.get
            .lock()
            .unwrap()
            .extend([Err(not_ready("iam:GetCredentialReport", "ReportInProgress")), Ok(raw(&[FRESH]))]);
        let c = run(&api, KeyIdMode::None).await.unwrap();
        assert_eq!(c.report_retries, 2);
        // generate (refused), generate (started), get (in progress), get (ok): no needless regeneration.
        assert_eq!(api.api_calls(), 4);
        assert_eq!(c.findings.len(), 3, "KA-IAM-001, -003 and -004 on the one user (KA-IAM-002 is the root's)");
    }

    #[test]
    fn the_generation_estimate_grows_from_zero_to_what_was_seen_and_shrinks_when_early_enough() {
        let secs = |s: f64| Duration::from_secs_f64(s);
        let from = |now: f64, ready: bool, at: f64| {
            let e = GenerationEstimate { micros: AtomicU64::new((now * 1e6) as u64) };
            if ready {
                e.ready_at_first_ask(secs(at))
            } else {
                e.not_ready(secs(at))
            }
            e.first_wait().as_secs_f64()
        };
        let cases = [
            // (estimate in s, ready (at the first ask) or not, at, next estimate)
            (0.0, true, 0.0, 0.0),     // nothing learned yet, and nothing to shrink
            (0.0, false, 0.0, 0.0),    // not ready at once: nothing to learn
            (0.0, false, 7.75, 0.25),  // from zero: the first step
            (1.0, false, 7.75, 2.0),   // at most twice the estimate at a time
            (5.0, false, 7.75, 7.75),  // at least the time it was known not to be ready
            (10.0, false, 10.0, 10.8), // asked too early: 8% later
            (10.0, false, 9.0, 10.0),  // not ready before the estimate's time: nothing learned
            (10.0, true, 10.0, 9.8),   // ready when the estimate said: 2% earlier
            (10.0, true, 8.0, 9.8),    // ready before it: 2% earlier
            (10.0, true, 12.0, 10.0),  // ready after waiting longer than the estimate: nothing learned
            (29.0, false, 60.0, 30.0), // never more than 30 s
        ];
        for (now, ready, at, next) in cases {
            let got = from(now, ready, at);
            assert!((got - next).abs() < 1e-3, "{now} s, ready {ready} at {at} s: {got} s, not {next} s");
        }
    }

    /// An account whose report takes `generation` to generate after each `GenerateCredentialReport`.
    struct GeneratingIam {
        generation: Duration,
        started: Mutex<Option<tokio::time::Instant>>,
        gets: AtomicU32,
    }

    impl IamApi for GeneratingIam {
        async fn generate_credential_report(&self) -> Result<ReportState, CollectError> {
            *self.started.lock().unwrap() = Some(tokio::time::Instant::now());
            Ok(ReportState::Started)
        }
        async fn get_credential_report(&self) -> Result<RawReport, CollectError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let started = self.started.lock().unwrap().expect("asked before generating");
            if started.elapsed() < self.generation {
                return Err(not_ready("iam:GetCredentialReport", "ReportInProgress"));
            }
            Ok(raw(&[FRESH]))
        }
        async fn list_access_keys(&self, _: &str) -> Result<Vec<ListedKey>, CollectError> {
            unreachable!()
        }
        async fn list_user_tags(&self, _: &str) -> Result<Vec<(String, String)>, CollectError> {
            unreachable!()
        }
        fn api_calls(&self) -> u32 {
            0
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_scan_learns_how_long_generations_take_and_asks_about_once_per_report() {
        // 600 accounts arriving 20 a second (as discovery hands them over), all waiting for 10-second generations
        // at once, 8 places to work.
        let (places, waiting, generations) = (Semaphore::new(8), AtomicUsize::new(0), GenerationEstimate::default());
        let account = |i: u64| {
            let (places, waiting, generations) = (&places, &waiting, &generations);
            async move {
                tokio::time::sleep(Duration::from_millis(50 * i)).await;
                let api = GeneratingIam {
                    generation: Duration::from_secs(10),
                    started: Mutex::default(),
                    gets: AtomicU32::new(0),
                };
                let mut slot = Slot::take(places, waiting, generations).await;
                let start = tokio::time::Instant::now();
                collect_credential_report(&api, &ReportPolicy::default(), &mut slot).await.unwrap();
                (i, api.gets.load(Ordering::SeqCst), start.elapsed().as_secs_f64())
            }
        };
        let mut done: Vec<(u64, u32, f64)> = stream::iter(0..600).map(account).buffer_unordered(600).collect().await;
        done.sort_by_key(|d| d.0);
        // The first accounts know nothing: they ask at once and back off (0.25 s doubling, jittered).
        assert!(done[0].1 >= 5, "{:?}", &done[..5]);
        // From the first report on (about 15 s in), the others ask when the estimate says, whenever they started.
        let later = &done[400..];
        let mean = f64::from(later.iter().map(|d| d.1).sum::<u32>()) / later.len() as f64;
        assert!(mean < 1.4, "asks per report once learned: {mean}");
        let slowest = later.iter().map(|d| d.2).fold(0.0, f64::max);
        assert!(slowest < 11.5, "a report of 10 s is read within {slowest} s");
        let total: u32 = done.iter().map(|d| d.1).sum();
        // Asking with backoff alone takes about 6 asks per 10-second report.
        assert!(total < 1500, "{total} asks for 600 reports");
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_report_is_asked_for_at_once_whatever_the_estimate() {
        let generations = GenerationEstimate { micros: AtomicU64::new(10_000_000) };
        let (places, waiting) = (Semaphore::new(1), AtomicUsize::new(0));
        let api = FakeIam::default();
        api.get.lock().unwrap().push_back(Ok(raw(&[FRESH])));
        let mut slot = Slot::take(&places, &waiting, &generations).await;
        let start = tokio::time::Instant::now();
        collect_credential_report(&api, &ReportPolicy::default(), &mut slot).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(api.api_calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_report_is_regenerated() {
        let api = FakeIam::default();
        api.get.lock().unwrap().extend([Err(not_ready("iam:GetCredentialReport", "ReportExpired")), Ok(raw(&[FRESH]))]);
        run(&api, KeyIdMode::None).await.unwrap();
        assert_eq!(api.api_calls(), 4, "generate, get (expired), generate, get");
    }

    #[tokio::test(start_paused = true)]
    async fn a_report_that_never_comes_fails_the_account_instead_of_yielding_nothing() {
        let api = FakeIam::default();
        api.generate
            .lock()
            .unwrap()
            .extend((0..10).map(|_| Err(not_ready("iam:GenerateCredentialReport", "LimitExceeded"))));
        let err = run(&api, KeyIdMode::None).await.unwrap_err();
        let failure = err.to_failure();
        assert_eq!(failure.code, keyaudit_core::report::FailureCode::ReportUnavailable);
        assert_eq!(failure.action.as_deref(), Some("iam:GenerateCredentialReport"));
        assert_eq!(failure.aws_error_code.as_deref(), Some("LimitExceeded"));
        assert_eq!(api.api_calls(), 4, "bounded by max_attempts");
    }

    #[tokio::test(start_paused = true)]
    async fn access_denied_is_not_retried() {
        let api = FakeIam::default();
        api.generate.lock().unwrap().push_back(Err(CollectError::AccessDenied {
            action: "iam:GenerateCredentialReport",
            code: "AccessDenied".into(),
            message: "no".into(),
        }));
        let err = run(&api, KeyIdMode::None).await.unwrap_err();
        assert_eq!(err.to_failure().code, keyaudit_core::report::FailureCode::AccessDenied);
        assert_eq!(api.api_calls(), 1);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let p = ReportPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for attempt in 0..20 {
            let full = (Duration::from_millis(100) * 2u32.pow(attempt.min(10))).min(Duration::from_secs(1));
            let b = p.backoff(attempt);
            assert!(b >= full / 2 && b <= full, "attempt {attempt}: {b:?} not in [{:?}, {full:?}]", full / 2);
        }
    }
}
