//! keyaudit's benchmark simulator: a small, fast HTTP server that answers the AWS calls keyaudit makes
//! (Organizations JSON 1.1; STS and IAM query/XML) for organizations of up to 50,000 accounts, with AWS's
//! published throttling buckets, a latency distribution per call, credential report generation time and a cap on
//! concurrent generations. Benchmark-only (bench/run): never part of the product, never pointed at by it except
//! through `--endpoint-url`.
//!
//! Accounts are told apart by the signing access key: `ASIA` + the 12-digit account id + 4 characters for the
//! sessions AssumeRole hands out; any other key is the management account's caller. Signatures are not checked.
//!
//! Control routes: `GET /_sim/oracle` (every account with its OU path, state and keys: the truth a scan must
//! find), `GET /_sim/stats` (answers served and throttled per operation, peak concurrent generations),
//! `POST /_sim/stats` (clear them).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod model;
mod wire;

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;

use model::{Org, Shape};
use wire::{Answer, Call};

#[derive(Debug, Parser)]
#[command(about = "Benchmark-only AWS simulator for keyaudit (Organizations, STS, IAM)")]
struct Args {
    /// The organization, as the emulator's GET /_keyaudit/export writes it (else one is generated).
    #[arg(long)]
    spec: Option<std::path::PathBuf>,
    /// Generated organization: member accounts.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Generated organization: OUs (default: one per 25 accounts).
    #[arg(long)]
    ous: Option<usize>,
    /// Generated organization: OU levels at most.
    #[arg(long, default_value_t = 5)]
    depth: usize,
    /// Generated organization: one account in N has IAM users.
    #[arg(long, default_value_t = 1)]
    users_every: usize,
    /// Generated organization: IAM users of such an account.
    #[arg(long, default_value_t = 3)]
    users: usize,
    /// Median latency of a call, in ms (log-normal around it).
    #[arg(long, default_value_t = 0.0)]
    latency_ms: f64,
    /// Spread of the latency: the log-normal's sigma.
    #[arg(long, default_value_t = 0.35)]
    latency_sigma: f64,
    /// Time AWS takes to generate a credential report, in ms.
    #[arg(long, default_value_t = 0)]
    report_generation_ms: u64,
    /// Credential report generations in progress at once, over every account (0: no cap); past it,
    /// GenerateCredentialReport answers LimitExceeded.
    #[arg(long, default_value_t = 0)]
    max_generating: usize,
    /// Do not enforce AWS's throttling buckets.
    #[arg(long)]
    no_quotas: bool,
    /// IAM requests per second per account before Throttling (AWS publishes none; bursts of twice it).
    #[arg(long, default_value_t = 20.0)]
    iam_rate: f64,
    /// GetCallerIdentity's ARN for the management account's caller.
    #[arg(long)]
    caller_arn: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 0)]
    port: u16,
}

/// A token bucket: `rate` per second, at most `burst`.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// AWS Organizations' published throttling limits, per calling account: one bucket per row (the worst case).
const ORG_QUOTAS: &[(&[&str], f64, f64)] = &[
    (&["ListAccounts"], 8.0, 12.0),
    (&["ListChildren"], 6.0, 10.0),
    (&["ListParents", "ListAccountsForParent", "ListOrganizationalUnitsForParent"], 5.0, 8.0),
    (&["DescribeOrganization", "ListRoots"], 1.0, 2.0),
    (&["DescribeAccount"], 20.0, 30.0),
    (&["ListTagsForResource"], 10.0, 15.0),
];

/// STS: 600 requests per second per calling account and Region (AssumeRole and GetCallerIdentity share it).
const STS_RATE: f64 = 600.0;

#[derive(Default)]
struct Stats {
    served: BTreeMap<String, u64>,
    throttled: BTreeMap<String, u64>,
    max_generating: usize,
}

/// A credential report: when it was generated and when it is ready.
struct Report {
    generated: Timestamp,
    ready: Instant,
}

pub(crate) struct Sim {
    org: Org,
    args: Args,
    caller_arn: String,
    buckets: Mutex<HashMap<(String, &'static str), Bucket>>,
    reports: Mutex<Reports>,
    stats: Mutex<Stats>,
    requests: std::sync::atomic::AtomicU64,
}

/// The simulator plays AWS, whose clock is the wall clock (keyaudit's own time is its `as_of`).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Timestamp {
    Timestamp::now()
}

/// Every account's credential report, and when the generations in progress end (earliest first).
type Reports = (HashMap<String, Report>, BinaryHeap<std::cmp::Reverse<Instant>>);

/// Reports are reused for 4 hours, as AWS documents.
const REPORT_TTL: Duration = Duration::from_secs(4 * 3600);

impl Sim {
    /// Takes a token from `key`'s bucket (rate/s, burst); false when it is empty.
    fn admit(&self, key: (String, &'static str), rate: f64, burst: f64) -> bool {
        if self.args.no_quotas {
            return true;
        }
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else { return true };
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether `call` gets through its bucket: Organizations per (caller, row), STS per caller, IAM per account.
    fn within_quota(&self, call: &Call) -> bool {
        match call.service.as_str() {
            "organizations" => match ORG_QUOTAS.iter().find(|(ops, _, _)| ops.contains(&call.action.as_str())) {
                Some((ops, rate, burst)) => self.admit((call.account.clone(), ops[0]), *rate, *burst),
                None => true,
            },
            "sts" => self.admit((call.account.clone(), "sts"), STS_RATE, STS_RATE),
            "iam" => self.admit((call.account.clone(), "iam"), self.args.iam_rate, self.args.iam_rate * 2.0),
            _ => true,
        }
    }

    fn count(&self, action: &str, throttled: bool) {
        if let Ok(mut stats) = self.stats.lock() {
            let map = if throttled { &mut stats.throttled } else { &mut stats.served };
            *map.entry(action.to_owned()).or_default() += 1;
        }
    }

    /// One log-normal draw around the median latency.
    fn latency(&self) -> Duration {
        if self.args.latency_ms <= 0.0 {
            return Duration::ZERO;
        }
        // Box-Muller: a standard normal from two uniforms.
        let (u1, u2): (f64, f64) = (rand::random::<f64>().max(f64::MIN_POSITIVE), rand::random());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        Duration::from_secs_f64(self.args.latency_ms * (self.args.latency_sigma * z).exp() / 1000.0)
    }

    /// GenerateCredentialReport / GetCredentialReport, as AWS documents them.
    fn credential_report(&self, call: &Call) -> Answer {
        let now = Instant::now();
        let Ok(mut guard) = self.reports.lock() else { return Answer::internal() };
        let (reports, generating) = &mut *guard;
        while generating.peek().is_some_and(|r| r.0 <= now) {
            generating.pop();
        }
        let current = reports.get(&call.account).filter(|r| now.duration_since(r.ready) < REPORT_TTL);
        if call.action == "GenerateCredentialReport" {
            if let Some(report) = current {
                return wire::generate_report(if now < report.ready { "INPROGRESS" } else { "COMPLETE" });
            }
            if self.args.max_generating > 0 && generating.len() >= self.args.max_generating {
                return Answer::error(409, "LimitExceeded", "No more capacity to launch new report generation tasks");
            }
            let ready = now + Duration::from_millis(self.args.report_generation_ms);
            generating.push(std::cmp::Reverse(ready));
            if let Ok(mut stats) = self.stats.lock() {
                stats.max_generating = stats.max_generating.max(generating.len());
            }
            reports.insert(call.account.clone(), Report { generated: crate::now(), ready });
            return wire::generate_report("STARTED");
        }
        match reports.get(&call.account) {
            None => Answer::error(410, "ReportNotPresent", "Credential report not present"),
            Some(r) if now.duration_since(r.ready) >= REPORT_TTL => {
                Answer::error(410, "ReportExpired", "Credential report expired")
            }
            Some(r) if now < r.ready => Answer::error(404, "ReportInProgress", "Report generation in progress"),
            Some(r) => match model::credential_report(&call.account, self.org.iam(&call.account)) {
                Ok(csv) => wire::credential_report(&csv, r.generated),
                Err(_) => Answer::internal(),
            },
        }
    }

    async fn answer(&self, call: Call) -> Answer {
        tokio::time::sleep(self.latency()).await;
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !self.within_quota(&call) {
            self.count(&call.action, true);
            return match call.service.as_str() {
                "organizations" => Answer::error(
                    400,
                    "TooManyRequestsException",
                    "You have sent too many requests in too short a period of time. The quota helps protect against \
                     denial-of-service attacks. Try again later.",
                )
                .in_json(),
                _ => Answer::error(400, "Throttling", "Rate exceeded"),
            };
        }
        self.count(&call.action, false);
        match (call.service.as_str(), call.action.as_str()) {
            ("iam", "GenerateCredentialReport" | "GetCredentialReport") => self.credential_report(&call),
            ("iam", _) => wire::iam(&self.org, &call),
            ("sts", _) => wire::sts(&self.org, &call, &self.caller_arn),
            ("organizations", _) => wire::organizations(&self.org, &call),
            _ => Answer::error(400, "InvalidAction", "not simulated"),
        }
    }

    fn control(&self, method: &http::Method, path: &str) -> Option<serde_json::Value> {
        match (method.as_str(), path) {
            ("GET", "/_sim/oracle") => Some(wire::oracle(&self.org)),
            ("GET", "/_sim/stats") => {
                let stats = self.stats.lock().ok()?;
                Some(serde_json::json!({
                    "served": stats.served,
                    "throttled": stats.throttled,
                    "max_generating": stats.max_generating,
                    "requests": self.requests.load(std::sync::atomic::Ordering::Relaxed),
                }))
            }
            ("POST", "/_sim/stats") => {
                *self.stats.lock().ok()? = Stats::default();
                self.requests.store(0, std::sync::atomic::Ordering::Relaxed);
                Some(serde_json::json!({"ok": true}))
            }
            _ => None,
        }
    }
}

async fn handle(sim: Arc<Sim>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    if parts.uri.path().starts_with("/_sim/") {
        let answer = sim.control(&parts.method, parts.uri.path());
        let (status, value) = match answer {
            Some(v) => (200, v),
            None => (404, serde_json::json!({"error": "no such control route"})),
        };
        return Ok(wire::json_response(status, &value));
    }
    let answer = match Call::parse(&parts.headers, &body, sim.org.management()) {
        Some(call) => sim.answer(call).await,
        None => Answer::error(400, "InvalidRequest", "not an AWS request the simulator knows"),
    };
    Ok(answer.into_response())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let org = match &args.spec {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("--spec {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("--spec {}", path.display()))?
        }
        None => model::generate(
            &Shape {
                accounts: args.accounts,
                ous: args.ous.unwrap_or(args.accounts / 25),
                depth: args.depth,
                users_every: args.users_every,
                users: args.users,
            },
            now(),
        ),
    };
    let org = Org::new(org)?;
    let caller_arn = args.caller_arn.clone().unwrap_or_else(|| format!("arn:aws:iam::{}:user/bench", org.management()));
    let addr: SocketAddr = format!("{}:{}", args.host, args.port).parse().context("--host/--port")?;
    let sim = Arc::new(Sim {
        org,
        args,
        caller_arn,
        buckets: Mutex::default(),
        reports: Mutex::default(),
        stats: Mutex::default(),
        requests: std::sync::atomic::AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("KEYAUDIT_SIMULATOR_READY http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let sim = Arc::clone(&sim);
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(Arc::clone(&sim), request));
                let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}
