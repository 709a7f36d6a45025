//! The IAM seam: a small trait in domain types, its AWS SDK implementation, and error classification.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_iam::config::retry::RetryPartition;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{ReportStateType, StatusType};
use jiff::Timestamp;
use keyaudit_core::aws_error::{self, ErrorClass};
use keyaudit_core::ids::{AccessKeyId, AccountId};
use keyaudit_core::inventory::{KeyStatus, ListedKey};
use keyaudit_core::report::{FailureCode, FailureReason};

use crate::credential_report::ReportParseError;

/// State answered by `GenerateCredentialReport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportState {
    /// A new report generation was started.
    Started,
    /// A generation is under way.
    InProgress,
    /// A report (possibly up to 4 hours old) is ready.
    Complete,
}

/// The raw credential report, already base64-decoded by the SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReport {
    /// CSV bytes.
    pub content: Vec<u8>,
    /// When AWS generated it.
    pub generated_at: Option<Timestamp>,
}

/// An error while collecting one account's IAM data.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The caller lacks the IAM permission for `action`.
    #[error("{action} {code}: {message}")]
    AccessDenied {
        /// e.g. `iam:GetCredentialReport`.
        action: &'static str,
        /// AWS error code.
        code: String,
        /// AWS message.
        message: String,
    },
    /// AWS kept throttling after the SDK's retries.
    #[error("{action} {code}: throttled after the SDK's retries")]
    Throttled {
        /// The action.
        action: &'static str,
        /// AWS error code.
        code: String,
    },
    /// The credential report is not available yet (or any more).
    #[error("{action} {code}: {message}")]
    ReportNotReady {
        /// The action.
        action: &'static str,
        /// `LimitExceeded`, `ReportInProgress`, `ReportNotPresent` or `ReportExpired`.
        code: String,
        /// AWS message.
        message: String,
    },
    /// The credential report could not be generated or fetched within the retry budget.
    #[error("credential report unavailable after {attempts} attempts; last answer: {last}")]
    ReportUnavailable {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<CollectError>,
    },
    /// The credential report is malformed.
    #[error(transparent)]
    MalformedReport(#[from] ReportParseError),
    /// The account was not reached, or its credential report did not arrive, within the account's budget.
    #[error(
        "the account was not reached and its credential report read within {}s (--account-timeout)",
        budget.as_secs_f64()
    )]
    Timeout {
        /// The budget.
        budget: std::time::Duration,
    },
    /// Any other API failure.
    #[error("{action} {}: {message}", code.as_deref().unwrap_or("error"))]
    Api {
        /// The action.
        action: &'static str,
        /// AWS error code, when the service sent one.
        code: Option<String>,
        /// The error with its full context (never includes credentials).
        message: String,
    },
}

impl CollectError {
    /// Whether AWS answered that the thing asked about does not exist (an IAM user, a secret).
    pub fn is_not_found(&self) -> bool {
        aws_error::classify(self.code()) == ErrorClass::NotFound
    }

    /// The AWS error code, when AWS answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CollectError::AccessDenied { code, .. }
            | CollectError::Throttled { code, .. }
            | CollectError::ReportNotReady { code, .. } => Some(code),
            CollectError::Api { code, .. } => code.as_deref(),
            CollectError::ReportUnavailable { last, .. } => last.code(),
            CollectError::MalformedReport(_) | CollectError::Timeout { .. } => None,
        }
    }

    /// The account-level failure this error amounts to.
    pub fn to_failure(&self) -> FailureReason {
        let (code, action, aws_code) = match self {
            CollectError::AccessDenied { action, code, .. } => {
                (FailureCode::AccessDenied, Some((*action).into()), Some(code.clone()))
            }
            CollectError::Throttled { action, code } => {
                (FailureCode::Throttled, Some((*action).into()), Some(code.clone()))
            }
            CollectError::ReportNotReady { action, code, .. } => {
                (FailureCode::ReportUnavailable, Some((*action).into()), Some(code.clone()))
            }
            CollectError::ReportUnavailable { last, .. } => {
                let inner = last.to_failure();
                (FailureCode::ReportUnavailable, inner.action, inner.aws_error_code)
            }
            CollectError::MalformedReport(_) => {
                (FailureCode::MalformedReport, Some("iam:GetCredentialReport".into()), None)
            }
            CollectError::Timeout { .. } => (FailureCode::Timeout, None, None),
            CollectError::Api { action, code, .. } => (FailureCode::Error, Some((*action).into()), code.clone()),
        };
        FailureReason { code, action, aws_error_code: aws_code, message: self.message_only() }
    }

    fn message_only(&self) -> String {
        match self {
            CollectError::AccessDenied { message, .. }
            | CollectError::ReportNotReady { message, .. }
            | CollectError::Api { message, .. } => message.clone(),
            CollectError::Throttled { .. } => "throttled after the SDK's retries".into(),
            other => other.to_string(),
        }
    }
}

/// Maps an SDK error to a [`CollectError`] through keyaudit's one classification of AWS error codes.
pub(crate) fn classify<E, R>(action: &'static str, err: SdkError<E, R>) -> CollectError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let message = err.message().map(str::to_owned).unwrap_or_else(|| aws_error::describe(&err));
    match (aws_error::classify(code.as_deref()), code) {
        (ErrorClass::AccessDenied, Some(code)) => CollectError::AccessDenied { action, code, message },
        (ErrorClass::Throttled, Some(code)) => CollectError::Throttled { action, code },
        (ErrorClass::ReportNotReady, Some(code)) => CollectError::ReportNotReady { action, code, message },
        (_, code) => CollectError::Api { action, code, message },
    }
}

/// The IAM operations keyaudit needs, in domain types.
pub trait IamApi: Send + Sync {
    /// `iam:GenerateCredentialReport`.
    fn generate_credential_report(&self) -> impl Future<Output = Result<ReportState, CollectError>> + Send;
    /// `iam:GetCredentialReport`.
    fn get_credential_report(&self) -> impl Future<Output = Result<RawReport, CollectError>> + Send;
    /// `iam:ListAccessKeys` for one user, every page.
    fn list_access_keys(&self, user_name: &str) -> impl Future<Output = Result<Vec<ListedKey>, CollectError>> + Send;
    /// `iam:ListUserTags` for one user, every page: (key, value) pairs.
    fn list_user_tags(
        &self,
        user_name: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, CollectError>> + Send;
    /// API operations made so far for this account (including the STS calls that opened it).
    fn api_calls(&self) -> u32;
    /// IAM request attempts beyond one per operation: the SDK's own retries (throttling, 5xx).
    fn sdk_retries(&self) -> u32 {
        0
    }
}

/// [`IamApi`] over the AWS SDK for one account.
pub struct SdkIam {
    client: aws_sdk_iam::Client,
    calls: AtomicU32,
    iam_calls: AtomicU32,
    wire_attempts: Arc<AtomicU32>,
    prior_retries: u32,
}

impl SdkIam {
    /// A client for one account. `config` carries the account's credentials and its rate-limited HTTP client,
    /// whose attempt counter is `wire_attempts`; `prior_calls` counts the calls made to reach the account
    /// (AssumeRole) and `prior_retries` the SDK's retries of those. Each account gets its own SDK retry partition: the SDK's retry-quota token bucket is
    /// otherwise shared by every IAM client in the process, and throttling in one account would use up the
    /// retries of all the others, while IAM quotas are per account.
    pub fn new(
        config: &aws_config::SdkConfig,
        account: &AccountId,
        wire_attempts: Arc<AtomicU32>,
        prior_calls: u32,
        prior_retries: u32,
    ) -> Self {
        let iam_config = aws_sdk_iam::config::Builder::from(config)
            .retry_partition(RetryPartition::new(format!("keyaudit-iam-{account}")))
            .build();
        Self {
            client: aws_sdk_iam::Client::from_conf(iam_config),
            calls: AtomicU32::new(prior_calls),
            iam_calls: AtomicU32::new(0),
            wire_attempts,
            prior_retries,
        }
    }

    pub(crate) fn before_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.iam_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn client(&self) -> &aws_sdk_iam::Client {
        &self.client
    }
}

pub(crate) fn timestamp(dt: &aws_smithy_types::DateTime) -> Option<Timestamp> {
    Timestamp::new(dt.secs(), i32::try_from(dt.subsec_nanos()).ok()?).ok()
}

impl IamApi for SdkIam {
    async fn generate_credential_report(&self) -> Result<ReportState, CollectError> {
        const ACTION: &str = "iam:GenerateCredentialReport";
        self.before_call();
        // Boxed: the SDK's call future is a few KiB, and inline it would size every open account's future, also
        // through the long waits between calls.
        let out = Box::pin(self.client.generate_credential_report().send()).await.map_err(|e| classify(ACTION, e))?;
        Ok(match out.state() {
            Some(ReportStateType::Complete) => ReportState::Complete,
            Some(ReportStateType::Started) => ReportState::Started,
            _ => ReportState::InProgress,
        })
    }

    async fn get_credential_report(&self) -> Result<RawReport, CollectError> {
        const ACTION: &str = "iam:GetCredentialReport";
        self.before_call();
        let out = Box::pin(self.client.get_credential_report().send()).await.map_err(|e| classify(ACTION, e))?;
        Ok(RawReport {
            content: out.content().map(|b| b.as_ref().to_vec()).unwrap_or_default(),
            generated_at: out.generated_time().and_then(timestamp),
        })
    }

    async fn list_access_keys(&self, user_name: &str) -> Result<Vec<ListedKey>, CollectError> {
        const ACTION: &str = "iam:ListAccessKeys";
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.before_call();
            let out = self
                .client
                .list_access_keys()
                .user_name(user_name)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, e))?;
            for meta in out.access_key_metadata() {
                let (Some(id), Some(created)) = (meta.access_key_id(), meta.create_date().and_then(timestamp)) else {
                    continue;
                };
                let Ok(access_key_id) = AccessKeyId::parse(id) else {
                    tracing::warn!(user = user_name, "ignoring an access key id that is not well-formed");
                    continue;
                };
                let status =
                    if meta.status() == Some(&StatusType::Active) { KeyStatus::Active } else { KeyStatus::Inactive };
                keys.push(ListedKey { access_key_id, status, created_at: created });
            }
            match out.marker() {
                Some(next) if out.is_truncated() => marker = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(keys)
    }

    async fn list_user_tags(&self, user_name: &str) -> Result<Vec<(String, String)>, CollectError> {
        const ACTION: &str = "iam:ListUserTags";
        let mut tags = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.before_call();
            let out = self
                .client
                .list_user_tags()
                .user_name(user_name)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, e))?;
            tags.extend(out.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())));
            match out.marker() {
                Some(next) if out.is_truncated() => marker = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(tags)
    }

    fn api_calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    fn sdk_retries(&self) -> u32 {
        let attempts = self.wire_attempts.load(Ordering::Relaxed);
        attempts.saturating_sub(self.iam_calls.load(Ordering::Relaxed)) + self.prior_retries
    }
}
