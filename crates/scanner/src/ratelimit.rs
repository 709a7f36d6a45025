//! Pacing at the wire: an HTTP client wrapper that waits for a token bucket before every request attempt, and
//! waits out throttling before the SDK sees it.
//!
//! Limiting here rather than around SDK operations means the SDK's own retries count against the rate too, so a
//! run never sends more than its configured rate, whatever AWS answers. Each bucket has AWS's published rate and
//! burst where AWS publishes one (Organizations per API, STS per caller and Region) and keyaudit's own otherwise
//! (IAM per target account). A wrapper holds one bucket, or one per operation (`X-Amz-Target` of the JSON
//! protocols, `Action` of the query protocols) with a default for the rest.
//!
//! A throttled answer (HTTP 429, or an error body whose code is a throttling code) caused by someone else is
//! re-sent here, after a jittered backoff (0.5 s doubling to 20 s) and another token, for up to the wrapper's
//! patience: the SDK never sees it, so its client-wide retry quota (which sustained throttling would empty for the
//! whole run) is never spent on throttling, and its attempts stay for other errors. Once an operation's patience is
//! spent (throttled for good), its answer goes to the SDK, and the SDK's own retries of that operation (the same
//! `amz-sdk-invocation-id`) are sent once each. The answer that ends the waiting carries how often it was re-sent
//! in the [`RESENT_HEADER`] header, for the callers that count attempts per operation. Each wrapper counts the
//! attempts it let through and the throttled answers it waited out.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use governor::clock::DefaultClock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use keyaudit_core::aws_error::{ErrorClass, RESENT_HEADER, classify, code_in_body};

/// A token bucket's parameters: `rate` requests per second on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Requests per second.
    pub rate: NonZeroU32,
    /// Requests that may go at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl Pace {
    /// `rate` per second, `burst` at once (at least 1).
    pub const fn new(rate: NonZeroU32, burst: NonZeroU32) -> Self {
        Self { rate, burst }
    }

    /// An even rate: no burst above it.
    pub const fn even(rate: NonZeroU32) -> Self {
        Self { rate, burst: NonZeroU32::MIN }
    }
}

/// A token bucket, shared by every client that waits for it.
pub type Bucket = Arc<DefaultDirectRateLimiter>;

/// A bucket of `pace`.
pub fn bucket(pace: Pace) -> Bucket {
    // One clock for every bucket: a new one asks the CPU (cpuid) whether its counter can be used, which costs tens
    // of microseconds in a virtual machine, and a scan makes two buckets per account.
    static CLOCK: LazyLock<DefaultClock> = LazyLock::new(DefaultClock::default);
    Arc::new(RateLimiter::direct_with_clock(Quota::per_second(pace.rate).allow_burst(pace.burst), CLOCK.clone()))
}

/// Which bucket a request waits for: its operation's, else the default.
#[derive(Clone)]
pub struct Buckets {
    default: Bucket,
    by_operation: Arc<HashMap<String, Bucket>>,
}

impl Buckets {
    /// Every request waits for `default`, except those of the operations in `by_operation` (operation names as AWS
    /// spells them, e.g. `ListAccounts`; several operations may share one bucket).
    pub fn new(default: Bucket, by_operation: HashMap<String, Bucket>) -> Self {
        Self { default, by_operation: Arc::new(by_operation) }
    }

    fn for_request(&self, request: &HttpRequest) -> &Bucket {
        if self.by_operation.is_empty() {
            return &self.default;
        }
        operation_of(request).and_then(|op| self.by_operation.get(op)).unwrap_or(&self.default)
    }
}

/// The operation a request calls: after the last `.` of `X-Amz-Target` (JSON protocols), or the `Action` form field
/// of the body (query protocols).
fn operation_of(request: &HttpRequest) -> Option<&str> {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.rsplit('.').next();
    }
    let body = std::str::from_utf8(request.body().bytes()?).ok()?;
    body.split('&').find_map(|field| field.strip_prefix("Action="))
}

/// How long a throttled request is re-sent before its answer goes to the SDK, by default.
pub const THROTTLE_PATIENCE: Duration = Duration::from_secs(300);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Wraps an HTTP client so that every request attempt waits for its bucket, and throttling is waited out.
#[derive(Clone)]
pub struct RateLimitedHttpClient {
    inner: SharedHttpClient,
    buckets: Buckets,
    attempts: Arc<AtomicU32>,
    throttled: Arc<AtomicU32>,
    patience: Duration,
    /// The SDK invocations whose patience is spent: their retries are not waited out again.
    spent: Arc<Mutex<HashSet<String>>>,
}

impl RateLimitedHttpClient {
    /// Wraps `inner` (share one inner client so connections are pooled across wrappers) with one bucket.
    pub fn new(inner: SharedHttpClient, limiter: Bucket) -> Self {
        Self::with_buckets(inner, Buckets::new(limiter, HashMap::new()))
    }

    /// Wraps `inner` with a bucket per operation.
    pub fn with_buckets(inner: SharedHttpClient, buckets: Buckets) -> Self {
        Self {
            inner,
            buckets,
            attempts: Arc::new(AtomicU32::new(0)),
            throttled: Arc::new(AtomicU32::new(0)),
            patience: THROTTLE_PATIENCE,
            spent: Arc::default(),
        }
    }

    /// How long one operation's throttled answers are waited out (re-sent) before the SDK sees one
    /// [default: [`THROTTLE_PATIENCE`]].
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// A handle on the number of attempts sent through this client.
    pub fn attempts(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.attempts)
    }

    /// A handle on the number of throttled answers this client waited out (or passed on, once out of patience).
    pub fn throttled(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.throttled)
    }
}

impl fmt::Debug for RateLimitedHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitedHttpClient")
            .field("attempts", &self.attempts.load(Ordering::Relaxed))
            .field("throttled", &self.throttled.load(Ordering::Relaxed))
            .finish()
    }
}

impl HttpClient for RateLimitedHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(RateLimitedConnector {
            inner: self.inner.http_connector(settings, components),
            client: self.clone(),
        })
    }
}

struct RateLimitedConnector {
    inner: SharedHttpConnector,
    client: RateLimitedHttpClient,
}

impl fmt::Debug for RateLimitedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitedConnector").finish_non_exhaustive()
    }
}

/// Whether an answer is throttling (its body is read when its status can be, and put back).
async fn throttled(
    response: &mut aws_smithy_runtime_api::client::orchestrator::HttpResponse,
) -> Result<bool, ConnectorError> {
    let status = response.status().as_u16();
    if status == 429 {
        return Ok(true);
    }
    if !matches!(status, 400 | 503) {
        return Ok(false);
    }
    let mut stream = ByteStream::new(response.take_body());
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.map_err(|e| ConnectorError::io(e.into()))?);
    }
    let throttled = code_in_body(&body).is_some_and(|code| classify(Some(code)) == ErrorClass::Throttled);
    *response.body_mut() = SdkBody::from(body);
    Ok(throttled)
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let invocation = request.headers().get("amz-sdk-invocation-id").map(str::to_owned);
            let spent = |id: &Option<String>| {
                id.as_ref().is_some_and(|id| client.spent.lock().is_ok_and(|spent| spent.contains(id)))
            };
            let give_up =
                tokio::time::Instant::now() + if spent(&invocation) { Duration::ZERO } else { client.patience };
            let mut backoff = FIRST_BACKOFF;
            let mut request = request;
            let mut resent: u32 = 0;
            loop {
                client.buckets.for_request(&request).until_ready().await;
                client.attempts.fetch_add(1, Ordering::Relaxed);
                let again = request.try_clone();
                let mut response = inner.call(request).await?;
                let retry = match again {
                    Some(again) if throttled(&mut response).await? => Some(again),
                    _ => None,
                };
                if let Some(again) = retry {
                    client.throttled.fetch_add(1, Ordering::Relaxed);
                    // Full jitter in [backoff/2, backoff]: many requests throttled together do not come back together.
                    let wait = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
                    if tokio::time::Instant::now() + wait <= give_up {
                        tokio::time::sleep(wait).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        resent += 1;
                        request = again;
                        continue;
                    }
                    if let (Some(id), Ok(mut spent)) = (&invocation, client.spent.lock()) {
                        spent.insert(id.clone());
                    }
                }
                if resent > 0 {
                    response.headers_mut().insert(RESENT_HEADER, resent.to_string());
                }
                return Ok(response);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: Option<&str>, body: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(body));
        if let Some(t) = target {
            r.headers_mut().insert("x-amz-target", t.to_owned());
        }
        r
    }

    #[test]
    fn a_request_waits_for_its_operations_bucket() {
        let default = bucket(Pace::even(NonZeroU32::MIN));
        let accounts = bucket(Pace::new(NonZeroU32::new(8).unwrap(), NonZeroU32::new(12).unwrap()));
        let buckets =
            Buckets::new(Arc::clone(&default), HashMap::from([("ListAccounts".to_owned(), Arc::clone(&accounts))]));
        let cases = [
            (Some("AWSOrganizationsV20161128.ListAccounts"), "{}", &accounts),
            (Some("AWSOrganizationsV20161128.ListRoots"), "{}", &default),
            (None, "Action=ListAccounts&Version=2016-11-28", &accounts),
            (None, "Version=2011-06-15&Action=AssumeRole&RoleArn=x", &default),
            (None, "", &default),
        ];
        for (target, body, want) in cases {
            assert!(Arc::ptr_eq(buckets.for_request(&request(target, body)), want), "{target:?} {body}");
        }
    }
}
