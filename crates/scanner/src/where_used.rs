//! Where a key is used, the AWS side (groundwork for `scan --where-used`): CloudTrail's `LookupEvents` by
//! `AccessKeyId` in one account and Region, paced at AWS's published quota (2 requests per second per account and
//! Region), at most a few pages per key, each event's `CloudTrailEvent` read into core's
//! [`Call`](keyaudit_core::where_used::Call) and summarized at once (`keyaudit_core::where_used::summarize`): no event
//! is kept.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use jiff::Timestamp;
use keyaudit_core::ids::AccessKeyId;
use keyaudit_core::where_used::{Call, WhereUsed, summarize};

use crate::iam::{CollectError, classify};

/// LookupEvents requests per second per account and Region (CloudTrail's quotas).
pub const LOOKUPS_PER_SECOND: u32 = 2;

/// One page of LookupEvents: the calls (events whose record could not be read are left out, counted) and the next
/// page's token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The calls.
    pub calls: Vec<Call>,
    /// Events whose `CloudTrailEvent` could not be read.
    pub unreadable: usize,
    /// The next page, if any.
    pub next: Option<String>,
}

/// CloudTrail in one account and Region.
pub trait TrailApi: Send + Sync {
    /// One page of `LookupEvents` with the `AccessKeyId` lookup attribute, between `start` and `end`.
    fn lookup_page(
        &self,
        key: &AccessKeyId,
        start: Timestamp,
        end: Timestamp,
        token: Option<String>,
    ) -> impl Future<Output = Result<Page, CollectError>> + Send;
}

/// What the look-up of one key found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookedUp {
    /// The calls, summarized by source.
    pub used: WhereUsed,
    /// The page limit was reached before the last page: older calls were not read.
    pub cut: bool,
    /// Events whose record could not be read.
    pub unreadable: usize,
}

/// Reads `key`'s calls between `start` and `end`, newest first, at most `max_pages` pages (50 events each).
pub async fn look_up<T: TrailApi>(
    api: &T,
    key: &AccessKeyId,
    start: Timestamp,
    end: Timestamp,
    max_pages: usize,
) -> Result<LookedUp, CollectError> {
    let mut calls = Vec::new();
    let mut unreadable = 0;
    let mut token = None;
    for _ in 0..max_pages {
        let page = api.lookup_page(key, start, end, token.take()).await?;
        calls.extend(page.calls);
        unreadable += page.unreadable;
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(LookedUp { used: summarize(calls), cut: false, unreadable }),
        }
    }
    Ok(LookedUp { used: summarize(calls), cut: token.is_some(), unreadable })
}

/// A `CloudTrailEvent` record as a [`Call`], when it has the fields a summary needs.
pub fn call_of(record: &str) -> Option<Call> {
    let v: serde_json::Value = serde_json::from_str(record).ok()?;
    let text = |name: &str| v.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
    Some(Call {
        time: text("eventTime")?.parse().ok()?,
        source_ip: text("sourceIPAddress").unwrap_or_default(),
        user_agent: text("userAgent").unwrap_or_default(),
        event_source: text("eventSource")?,
        region: text("awsRegion")?,
    })
}

/// [`TrailApi`] over the AWS SDK, paced at [`LOOKUPS_PER_SECOND`]: one per account and Region.
pub struct SdkTrail {
    client: aws_sdk_cloudtrail::Client,
    pace: DefaultDirectRateLimiter,
}

impl SdkTrail {
    /// A client from `config` (the account's credentials and the Region to look in).
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let per_second = NonZeroU32::new(LOOKUPS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        Self {
            client: aws_sdk_cloudtrail::Client::new(config),
            pace: RateLimiter::direct(Quota::per_second(per_second).allow_burst(NonZeroU32::MIN)),
        }
    }
}

impl TrailApi for SdkTrail {
    async fn lookup_page(
        &self,
        key: &AccessKeyId,
        start: Timestamp,
        end: Timestamp,
        token: Option<String>,
    ) -> Result<Page, CollectError> {
        use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
        const ACTION: &str = "cloudtrail:LookupEvents";
        self.pace.until_ready().await;
        let attribute = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::AccessKeyId)
            .attribute_value(key.as_str())
            .build()
            .map_err(|e| CollectError::Api { action: ACTION, code: None, message: e.to_string() })?;
        let at = |t: Timestamp| aws_smithy_types::DateTime::from_secs(t.as_second());
        let out = self
            .client
            .lookup_events()
            .lookup_attributes(attribute)
            .start_time(at(start))
            .end_time(at(end))
            .max_results(50)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        let mut page = Page { next: out.next_token().map(str::to_owned), ..Page::default() };
        for event in out.events() {
            match event.cloud_trail_event().and_then(call_of) {
                Some(call) => page.calls.push(call),
                None => page.unreadable += 1,
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Pages of `per_page` calls from one source, `pages` of them; records the tokens asked for.
    struct FakeTrail {
        pages: usize,
        per_page: usize,
        asked: Mutex<Vec<Option<String>>>,
    }

    impl TrailApi for FakeTrail {
        async fn lookup_page(
            &self,
            _: &AccessKeyId,
            _: Timestamp,
            _: Timestamp,
            token: Option<String>,
        ) -> Result<Page, CollectError> {
            let n: usize = token.as_deref().map_or(0, |t| t.parse().unwrap());
            self.asked.lock().unwrap().push(token);
            let record = r#"{"eventTime":"2026-12-01T10:00:00Z","sourceIPAddress":"203.0.113.5","userAgent":"Boto3/1.34","eventSource":"s3.amazonaws.com","awsRegion":"eu-west-1"}"#;
            Ok(Page {
                calls: (0..self.per_page).map(|_| call_of(record).unwrap()).collect(),
                unreadable: 1,
                next: (n + 1 < self.pages).then(|| (n + 1).to_string()),
            })
        }
    }

    fn key() -> AccessKeyId {
        AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap()
    }

    #[tokio::test]
    async fn a_key_is_looked_up_page_by_page_up_to_the_limit_and_a_cut_is_said() {
        let (start, end) = ("2026-09-02T00:00:00Z".parse().unwrap(), "2026-12-01T00:00:00Z".parse().unwrap());
        let whole = FakeTrail { pages: 3, per_page: 50, asked: Mutex::default() };
        let found = look_up(&whole, &key(), start, end, 5).await.unwrap();
        assert_eq!((found.used.sources[0].calls, found.cut, found.unreadable), (150, false, 3));
        assert_eq!(*whole.asked.lock().unwrap(), [None, Some("1".to_owned()), Some("2".to_owned())]);
        let long = FakeTrail { pages: 10, per_page: 50, asked: Mutex::default() };
        let found = look_up(&long, &key(), start, end, 2).await.unwrap();
        assert_eq!((found.used.sources[0].calls, found.cut), (100, true), "two pages read, the rest said cut");
        assert_eq!(long.asked.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_record_without_the_fields_a_summary_needs_is_unreadable() {
        assert!(call_of("not json").is_none());
        assert!(call_of(r#"{"eventTime":"2026-12-01T10:00:00Z"}"#).is_none());
        let call = call_of(
            r#"{"eventTime":"2026-12-01T10:00:00Z","eventSource":"iam.amazonaws.com","awsRegion":"us-east-1"}"#,
        )
        .unwrap();
        assert_eq!((call.source_ip.as_str(), call.user_agent.as_str()), ("", ""));
    }
}
