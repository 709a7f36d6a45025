//! Access to member accounts through STS AssumeRole, with credentials that refresh themselves.
//!
//! The first AssumeRole is made eagerly so that a denied role fails the account at once with a precise reason
//! (`sts:AssumeRole AccessDenied`). The resulting provider hands those credentials to the SDK's identity cache,
//! which asks it again shortly before they expire; every later call is a fresh AssumeRole, so a scan longer
//! than the session duration never runs on expired credentials.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider, error::CredentialsError};
use aws_sdk_sts::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sts::error::ProvideErrorMetadata;
use keyaudit_core::aws_error::{self, ErrorClass};
use keyaudit_core::report::{FailureCode, FailureReason};

const ACTION: &str = "sts:AssumeRole";

/// Settings for AssumeRole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeSettings {
    /// RoleSessionName (shows up in the member accounts' CloudTrail).
    pub session_name: String,
    /// ExternalId, when the audit role's trust policy requires one.
    pub external_id: Option<String>,
    /// DurationSeconds (900 to 43200; the role's maximum session duration applies).
    pub duration: Duration,
}

/// Assumes the audit role in member accounts (the configuration's HTTP client carries the STS rate limit).
#[derive(Clone)]
pub struct RoleAssumer {
    inner: Arc<Inner>,
}

struct Inner {
    sts: aws_sdk_sts::Client,
    settings: AssumeSettings,
}

impl RoleAssumer {
    /// An assumer using the caller's configuration.
    pub fn new(config: &aws_config::SdkConfig, settings: AssumeSettings) -> Self {
        Self { inner: Arc::new(Inner { sts: aws_sdk_sts::Client::new(config), settings }) }
    }

    /// Assumes `role_arn` now and returns a provider that renews the session before it expires. `retries` counts
    /// the attempts beyond the first (throttled answers waited out, the SDK's retries) for this first AssumeRole,
    /// whatever its outcome.
    pub async fn assume(
        &self,
        role_arn: &str,
        retries: &AtomicU32,
    ) -> Result<SharedCredentialsProvider, FailureReason> {
        let attempts = Attempts::default();
        let first = self.inner.call(role_arn, Some(&attempts)).await;
        retries.fetch_add(attempts.0.load(Ordering::Relaxed).saturating_sub(1), Ordering::Relaxed);
        Ok(SharedCredentialsProvider::new(AssumedRoleProvider {
            inner: Arc::clone(&self.inner),
            role_arn: role_arn.to_owned(),
            primed: Mutex::new(Some(first?)),
        }))
    }
}

/// Counts the attempts of one operation: the first, the SDK's retries, and the throttled answers the wire limiter
/// waited out (its resent header).
#[derive(Debug, Clone, Default)]
struct Attempts(Arc<AtomicU32>);

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "keyaudit-attempts"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        let resent = context.response().headers().get(aws_error::RESENT_HEADER).and_then(|v| v.parse::<u32>().ok());
        self.0.fetch_add(resent.unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }
}

impl Inner {
    async fn call(&self, role_arn: &str, attempts: Option<&Attempts>) -> Result<Credentials, FailureReason> {
        let duration = i32::try_from(self.settings.duration.as_secs()).unwrap_or(i32::MAX);
        let request = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(&self.settings.session_name)
            .set_external_id(self.settings.external_id.clone())
            .duration_seconds(duration)
            .customize();
        let request = match attempts {
            Some(counter) => request.interceptor(counter.clone()),
            None => request,
        };
        let out = request.send().await.map_err(|err| {
            let code = err.code().map(str::to_owned);
            let reason_code = match aws_error::classify(code.as_deref()) {
                ErrorClass::AccessDenied => FailureCode::AssumeRoleDenied,
                ErrorClass::Throttled => FailureCode::Throttled,
                _ => FailureCode::AssumeRoleError,
            };
            let message = err.message().map(str::to_owned).unwrap_or_else(|| aws_error::describe(&err));
            FailureReason {
                code: reason_code,
                action: Some(ACTION.into()),
                aws_error_code: code,
                // AWS's own message usually names the role already; add it only when it does not.
                message: if message.contains(role_arn) { message } else { format!("{message} (role {role_arn})") },
            }
        })?;
        let c = out.credentials().ok_or_else(|| FailureReason {
            code: FailureCode::AssumeRoleError,
            action: Some(ACTION.into()),
            aws_error_code: None,
            message: format!("AssumeRole returned no credentials (role {role_arn})"),
        })?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            expiry,
            "keyaudit-assume-role",
        ))
    }
}

/// AssumeRole into the management account failed: says how to fix it. The management account is assumed like
/// every other account (unless keyaudit runs in it), but it has no `OrganizationAccountAccessRole`, and
/// service-managed StackSets never deploy to it, so the audit role must be created there by hand.
pub fn with_management_account_hint(mut reason: FailureReason) -> FailureReason {
    if reason.code == FailureCode::AssumeRoleDenied {
        reason.message.push_str(
            "; this is the management account: it has no OrganizationAccountAccessRole and service-managed \
             StackSets do not deploy to it, so create the audit role there yourself (a self-managed stack or the \
             console), trusting the principal keyaudit runs as",
        );
    }
    reason
}

struct AssumedRoleProvider {
    inner: Arc<Inner>,
    role_arn: String,
    /// The credentials of the eager first call, handed out once.
    primed: Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for AssumedRoleProvider {
    // Never prints credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssumedRoleProvider").field("role_arn", &self.role_arn).finish_non_exhaustive()
    }
}

impl ProvideCredentials for AssumedRoleProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let primed = self.primed.lock().map(|mut p| p.take()).unwrap_or(None);
            if let Some(creds) = primed {
                return Ok(creds);
            }
            tracing::debug!(role = %self.role_arn, "renewing assumed-role credentials");
            self.inner
                .call(&self.role_arn, None)
                .await
                .map_err(|reason| CredentialsError::provider_error(reason.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_management_account_says_how_to_deploy_the_role_there() {
        let denied = FailureReason {
            code: FailureCode::AssumeRoleDenied,
            action: Some(ACTION.into()),
            aws_error_code: Some("AccessDenied".into()),
            message: "not authorized (role arn:aws:iam::000000000001:role/Audit)".into(),
        };
        let hinted = with_management_account_hint(denied.clone());
        assert_eq!(
            hinted.message,
            "not authorized (role arn:aws:iam::000000000001:role/Audit); this is the management account: it has no \
             OrganizationAccountAccessRole and service-managed StackSets do not deploy to it, so create the audit \
             role there yourself (a self-managed stack or the console), trusting the principal keyaudit runs as"
        );
        let throttled = FailureReason { code: FailureCode::Throttled, ..denied };
        assert_eq!(with_management_account_hint(throttled.clone()), throttled, "only a denial gets the hint");
    }
}
