//! Rate limits at the wire: an HTTP client wrapper that waits for its limiter before every request attempt.
//!
//! Limiting here rather than around SDK operations means the SDK's own retries (throttling, 5xx) count against
//! the rate too, so a run never sends more than its configured rate, whatever AWS answers. One wrapper per API
//! family: one per target account for IAM (IAM quotas are per account), one for STS, one for Organizations.
//! Each wrapper also counts the attempts it let through.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// An even-rate limiter: at most `per_second` requests in any second, with no burst above the rate.
pub fn rate_limiter(per_second: NonZeroU32) -> Arc<DefaultDirectRateLimiter> {
    Arc::new(RateLimiter::direct(Quota::per_second(per_second).allow_burst(NonZeroU32::MIN)))
}

/// Wraps an HTTP client so that every request attempt waits for `limiter`.
#[derive(Clone)]
pub struct RateLimitedHttpClient {
    inner: SharedHttpClient,
    limiter: Arc<DefaultDirectRateLimiter>,
    attempts: Arc<AtomicU32>,
}

impl RateLimitedHttpClient {
    /// Wraps `inner` (share one inner client so connections are pooled across wrappers).
    pub fn new(inner: SharedHttpClient, limiter: Arc<DefaultDirectRateLimiter>) -> Self {
        Self { inner, limiter, attempts: Arc::new(AtomicU32::new(0)) }
    }

    /// A handle on the number of attempts sent through this client.
    pub fn attempts(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.attempts)
    }
}

impl fmt::Debug for RateLimitedHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitedHttpClient").field("attempts", &self.attempts.load(Ordering::Relaxed)).finish()
    }
}

impl HttpClient for RateLimitedHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(RateLimitedConnector {
            inner: self.inner.http_connector(settings, components),
            limiter: Arc::clone(&self.limiter),
            attempts: Arc::clone(&self.attempts),
        })
    }
}

struct RateLimitedConnector {
    inner: SharedHttpConnector,
    limiter: Arc<DefaultDirectRateLimiter>,
    attempts: Arc<AtomicU32>,
}

impl fmt::Debug for RateLimitedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitedConnector").finish_non_exhaustive()
    }
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let limiter = Arc::clone(&self.limiter);
        let attempts = Arc::clone(&self.attempts);
        HttpConnectorFuture::new(async move {
            limiter.until_ready().await;
            attempts.fetch_add(1, Ordering::Relaxed);
            inner.call(request).await
        })
    }
}
