//! The channels: e-mail through Amazon SES v2 (`SendEmail` with the raw MIME message, paced at the account's
//! `MaxSendRate`), SNS `Publish`, and HTTPS webhooks (Slack, Teams, generic; 429 waits for `Retry-After`, 5xx and
//! connection errors back off). An error names the recipient (`slack:payments`) and what the service answered,
//! never a webhook's URL, which carries its secret.

use std::num::NonZeroU32;
use std::time::Duration;

use aws_config::SdkConfig;
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyaudit_core::notice::Target;

use keyaudit_notify::config::{Endpoint, NotifyConfig, UrlSource};
use keyaudit_notify::message::Rendered;

/// Attempts per webhook post (429 and 5xx are tried again).
const WEBHOOK_ATTEMPTS: u32 = 5;
/// The longest `Retry-After` honoured; a longer one fails the post (it is sent again on the next run).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// The value of an environment variable a config entry names (the cli's settings layer reads the environment).
#[allow(clippy::disallowed_methods)]
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A webhook's URL, from the file or its variable.
pub(crate) fn url_of(endpoint: &Endpoint) -> Option<String> {
    match &endpoint.url {
        UrlSource::Literal(url) => Some(url.clone()),
        UrlSource::Env(var) => env(var).filter(|url| url.starts_with("https://")),
    }
}

/// Everything a run sends with.
pub(crate) struct Channels<'c> {
    config: &'c NotifyConfig,
    base: SdkConfig,
    ses: aws_sdk_sesv2::Client,
    ses_rate: DefaultDirectRateLimiter,
    https: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl<'c> Channels<'c> {
    /// Opens the channels; with e-mail recipients, reads SES's send rate (`GetAccount`) to pace the sends.
    pub(crate) async fn open(config: &'c NotifyConfig, base: SdkConfig, emails: bool) -> anyhow::Result<Self> {
        let ses = aws_sdk_sesv2::Client::new(&base);
        let mut per_second = NonZeroU32::MIN;
        if emails {
            match ses.get_account().send().await {
                Ok(account) => {
                    let rate = account.send_quota().map_or(1.0, |q| q.max_send_rate());
                    // At most the account's rate, whole messages per second (a sandbox account allows one).
                    per_second = NonZeroU32::new(rate.floor().clamp(1.0, 1000.0) as u32).unwrap_or(NonZeroU32::MIN);
                    if !account.production_access_enabled() {
                        tracing::warn!(
                            "SES: this account is in the sandbox: it sends only to verified addresses, at most 200 a day"
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    "SES: cannot read the send rate (ses:GetAccount: {}); sending one message per second",
                    keyaudit_core::aws_error::describe(&e)
                ),
            }
        }
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| anyhow::anyhow!("cannot load the system's TLS roots for webhooks: {e}"))?
            .https_only()
            .enable_http1()
            .build();
        Ok(Self {
            config,
            base,
            ses,
            ses_rate: RateLimiter::direct(Quota::per_second(per_second).allow_burst(NonZeroU32::MIN)),
            https: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Sends one message; the channel's id of it when it gives one.
    pub(crate) async fn send(&self, to: &Target, message: &Rendered, id: &str) -> Result<Option<String>, String> {
        match (to, message) {
            (Target::Email(address), Rendered::Email { raw }) => self.email(address.as_str(), raw).await,
            (Target::Sns(arn), Rendered::Sns { subject, message }) => self.sns(arn, subject, message).await,
            (_, Rendered::Post { body }) => {
                let endpoint = self.config.endpoint(to).ok_or_else(|| format!("{to}: no such entry in the config"))?;
                let url =
                    url_of(endpoint).ok_or_else(|| format!("{to}: its URL variable is not set to an https:// URL"))?;
                let secret = endpoint.secret_env.as_deref().and_then(env);
                self.post(to, &url, body, secret.as_deref(), id).await.map(|()| None)
            }
            _ => Err(format!("{to}: the message was rendered for another channel")),
        }
    }

    async fn email(&self, to: &str, raw: &[u8]) -> Result<Option<String>, String> {
        use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
        self.ses_rate.until_ready().await;
        let raw = RawMessage::builder()
            .data(aws_sdk_sesv2::primitives::Blob::new(raw.to_vec()))
            .build()
            .map_err(|e| e.to_string())?;
        let out = self
            .ses
            .send_email()
            .from_email_address(self.config.from.as_str())
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.config.ses_configuration_set.clone())
            .send()
            .await
            .map_err(|e| format!("ses:SendEmail: {}", keyaudit_core::aws_error::describe(&e)))?;
        Ok(out.message_id().map(str::to_owned))
    }

    async fn sns(&self, arn: &str, subject: &str, message: &str) -> Result<Option<String>, String> {
        // The topic's own region, from its ARN.
        let region = keyaudit_core::ids::region_of_arn(arn).unwrap_or_default().to_owned();
        let config = self.base.to_builder().region(aws_config::Region::new(region)).build();
        let out = aws_sdk_sns::Client::new(&config)
            .publish()
            .topic_arn(arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| format!("sns:Publish: {}", keyaudit_core::aws_error::describe(&e)))?;
        Ok(out.message_id().map(str::to_owned))
    }

    async fn post(&self, to: &Target, url: &str, body: &[u8], secret: Option<&str>, id: &str) -> Result<(), String> {
        let mut backoff = Duration::from_secs(1);
        for attempt in 1..=WEBHOOK_ATTEMPTS {
            let mut request = http::Request::post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::USER_AGENT, concat!("keyaudit/", env!("CARGO_PKG_VERSION")))
                .header("X-Keyaudit-Delivery", id);
            if let Some(secret) = secret {
                let timestamp = crate::scan::now().as_second().to_string();
                request = request
                    .header("X-Keyaudit-Timestamp", &timestamp)
                    .header("X-Keyaudit-Signature", format!("sha256={}", signature(secret, &timestamp, body)));
            }
            let request =
                request.body(Full::new(Bytes::copy_from_slice(body))).map_err(|_| format!("{to}: not a valid URL"))?;
            let answer = tokio::time::timeout(Duration::from_secs(30), self.https.request(request)).await;
            let (wait, why) = match answer {
                Err(_) => (backoff, "no answer within 30 s".to_owned()),
                Ok(Err(e)) => (backoff, format!("cannot connect ({})", connect_error(&e))),
                Ok(Ok(response)) => {
                    let status = response.status();
                    if status.is_success() {
                        return Ok(());
                    }
                    let retry_after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let said: String = String::from_utf8_lossy(&text).chars().take(200).collect();
                    let why = format!("HTTP {}: {}", status.as_u16(), crate::output::shown(said.trim()));
                    if status == http::StatusCode::TOO_MANY_REQUESTS {
                        let wait = retry_after.unwrap_or(backoff);
                        if wait > MAX_RETRY_AFTER {
                            return Err(format!(
                                "{to}: {why} (Retry-After {} s is too long; sent again next run)",
                                wait.as_secs()
                            ));
                        }
                        (wait, why)
                    } else if status.is_server_error() {
                        (backoff, why)
                    } else {
                        return Err(format!("{to}: {why}"));
                    }
                }
            };
            if attempt == WEBHOOK_ATTEMPTS {
                return Err(format!("{to}: {why} (after {WEBHOOK_ATTEMPTS} attempts)"));
            }
            tracing::info!("{to}: {why}; trying again in {} s", wait.as_secs_f32());
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        Err(format!("{to}: not sent"))
    }
}

/// An HTTP client error without the URL (it carries the webhook's secret).
fn connect_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last.split("https://").next().unwrap_or_default().trim().to_owned()
}

/// `HMAC-SHA256(secret, "<timestamp>.<body>")` in hex: what a generic webhook's receiver checks.
pub(crate) fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // As Python's hmac.new(b"whsec-test", b"1764331200." + body, hashlib.sha256).hexdigest() computes it.
        assert_eq!(
            signature("whsec-test", "1764331200", br#"{"type":"keyaudit.notice"}"#),
            "24cb4876270641c57c64e710df4ca2016d113998e85ba1f19e90b869bd582b64"
        );
    }
}
