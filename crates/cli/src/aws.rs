//! The AWS side of the binary: the base SDK configuration (credential chain, profile, region, endpoint, the
//! SDK-owned retry policy), one rate-limited HTTP client per API family, and the connector that opens each
//! account for the scanner.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::identity::IdentityCache;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::identity::SharedIdentityCache;
use keyaudit_core::ids::AccountId;
use keyaudit_core::report::{AccessMethod, Account};
use keyaudit_org_discovery::{RoleAssumer, with_management_account_hint};
use keyaudit_scanner::{AccountConnector, Buckets, ConnectFailure, Pace, RateLimitedHttpClient, SdkIam, bucket};

use crate::settings::AwsSettings;

/// The region used when none is configured: IAM, STS and Organizations of the `aws` partition are global.
pub(crate) use keyaudit_core::ids::DEFAULT_REGION;

/// Loads the caller's configuration. `AWS_ENDPOINT_URL` is honoured by aws-config itself; `--endpoint-url`
/// overrides it. IAM, STS and Organizations are global: the region comes from `--region`, `AWS_REGION` or the
/// profile, else us-east-1 (never from EC2 instance metadata, which would only add a slow lookup). The flag
/// says whether the region fell back to that default (credentials of aws-cn or aws-us-gov then cannot work).
pub(crate) async fn base_config(aws: &AwsSettings) -> (SdkConfig, bool) {
    let mut profile_region = ProfileFileRegionProvider::builder();
    if let Some(profile) = &aws.profile {
        profile_region = profile_region.profile_name(profile);
    }
    let configured = RegionProviderChain::first_try(aws.region.clone().map(Region::new))
        .or_else(EnvironmentVariableRegionProvider::new())
        .or_else(profile_region.build())
        .region()
        .await;
    let defaulted = configured.is_none();
    let region = configured.unwrap_or_else(|| Region::from_static(DEFAULT_REGION));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(RetryConfig::standard().with_max_attempts(aws.max_attempts))
        // A request waits for its token bucket (and for throttling to pass) at the wire before its body is sent;
        // the SDK's stall detection on uploads would read that wait as a stalled upload and fail the call. Our
        // request bodies are small and whole in memory: only downloads are watched.
        .stalled_stream_protection(StalledStreamProtectionConfig::enabled().upload_enabled(false).build())
        .http_client(https_client());
    if let Some(profile) = &aws.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &aws.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    (loader.load().await, defaulted)
}

/// The access key id the caller's credentials carry (never the secret), to keep remediation off it.
pub(crate) async fn caller_key_id(config: &SdkConfig) -> Option<keyaudit_core::ids::AccessKeyId> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = config.credentials_provider()?;
    let credentials = provider.provide_credentials().await.ok()?;
    keyaudit_core::ids::AccessKeyId::parse(credentials.access_key_id()).ok()
}

/// The one HTTPS client (rustls with aws-lc, proxy settings from the environment) whose connection pool every
/// rate-limited wrapper shares; the same client the SDK would build by default.
fn https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// `base` with its HTTP client wrapped in a new bucket of `pace`, waiting out throttling for `patience`.
pub(crate) fn limited(base: &SdkConfig, pace: Pace, patience: Duration) -> (SdkConfig, RateLimitedHttpClient) {
    let inner = base.http_client().unwrap_or_else(https_client);
    let client = RateLimitedHttpClient::new(inner, bucket(pace)).with_patience(patience);
    (base.to_builder().http_client(client.clone()).build(), client)
}

/// `base` with its HTTP client wrapped in Organizations' buckets, one per row of AWS's published limits.
pub(crate) fn organizations(
    base: &SdkConfig,
    paces: &crate::pacing::OrgPaces,
    patience: Duration,
) -> (SdkConfig, RateLimitedHttpClient) {
    let inner = base.http_client().unwrap_or_else(https_client);
    let client = RateLimitedHttpClient::with_buckets(inner, paces.buckets()).with_patience(patience);
    (base.to_builder().http_client(client.clone()).build(), client)
}

/// What every organization-wide command starts from: the AWS configuration, the rate-limited STS and
/// Organizations configurations, and the caller, identified once.
pub(crate) struct Session {
    pub(crate) base: SdkConfig,
    /// The region the endpoints resolve in (us-east-1 when none is configured).
    pub(crate) region: String,
    pub(crate) sts_config: SdkConfig,
    pub(crate) org_config: SdkConfig,
    pub(crate) caller: keyaudit_org_discovery::CallerIdentity,
}

impl Session {
    /// Loads the configuration and identifies the caller; no usable credentials is a usage error (exit 2) that
    /// says where credentials come from, and, when no region was set, that other partitions need one.
    pub(crate) async fn open(settings: &crate::settings::Settings) -> Result<Self, crate::Failure> {
        let (base, region_defaulted) = base_config(&settings.aws()).await;
        let region = base.region().map_or_else(|| DEFAULT_REGION.to_owned(), |r| r.to_string());
        let (sts_config, _) = limited(&base, settings.sts_pace, settings.throttle_patience);
        let (org_config, _) = organizations(&base, &settings.org_paces, settings.throttle_patience);
        let caller = keyaudit_org_discovery::caller_identity(&sts_config).await.map_err(|e| {
            let mut hint = "cannot identify the caller (sts:GetCallerIdentity); check the AWS credentials \
                            (AWS_PROFILE or --profile, AWS_ACCESS_KEY_ID, SSO login) and --endpoint-url"
                .to_owned();
            if region_defaulted {
                hint.push_str(&format!(
                    "; no region is set, so keyaudit used {DEFAULT_REGION} (the aws partition): credentials of the \
                     aws-cn or aws-us-gov partitions need --region or AWS_REGION (e.g. cn-north-1, us-gov-west-1)"
                ));
            }
            crate::Failure::usage(anyhow::Error::new(e).context(hint))
        })?;
        Ok(Self { base, region, sts_config, org_config, caller })
    }
}

/// Opens accounts: the caller's own credentials for the caller's account, AssumeRole for the rest (the
/// management account included). Each account's IAM calls get their own rate limiter, since IAM quotas are per
/// account.
pub(crate) struct Connector {
    pub(crate) base: SdkConfig,
    pub(crate) assumer: RoleAssumer,
    pub(crate) iam_rps: NonZeroU32,
    /// The rate of the optional look-ups (key ids, owners), per account.
    pub(crate) enrichment_rps: NonZeroU32,
    /// The organization's management account, whose denied AssumeRole gets a hint on deploying the role there.
    pub(crate) management_account_id: Option<AccountId>,
    /// How long one call's throttled answers are waited out.
    pub(crate) patience: Duration,
}

impl Connector {
    /// The scan's connector: `settings`' role session (name, ExternalId, duration) and rates.
    pub(crate) fn new(
        settings: &crate::settings::Settings,
        base: SdkConfig,
        sts_config: &SdkConfig,
        management_account_id: Option<AccountId>,
    ) -> Self {
        Self {
            assumer: settings.assumer(sts_config),
            base,
            iam_rps: settings.iam_rps,
            enrichment_rps: settings.enrichment_rps,
            management_account_id,
            patience: settings.throttle_patience,
        }
    }
}

/// An account's credentials, opened once: the caller's own, or one session of the audit role (one AssumeRole) with
/// an identity cache of its own, which every client made from it shares.
pub(crate) struct AccountSession {
    /// The role's session (`None`: the caller's credentials).
    assumed: Option<(aws_credential_types::provider::SharedCredentialsProvider, SharedIdentityCache)>,
    /// AssumeRole calls made (0 or 1), and the SDK's retries of them.
    calls: u32,
    sdk_retries: u32,
}

impl AccountSession {
    /// `config` with this account's credentials.
    pub(crate) fn config(&self, config: SdkConfig) -> SdkConfig {
        match &self.assumed {
            None => config,
            Some((provider, cache)) => {
                config.to_builder().credentials_provider(provider.clone()).identity_cache(cache.clone()).build()
            }
        }
    }
}

impl Connector {
    /// Opens `account`: nothing to do for the caller's own, one AssumeRole for the others.
    pub(crate) async fn session(&self, account: &Account) -> Result<AccountSession, ConnectFailure> {
        match &account.access {
            AccessMethod::CallerCredentials => Ok(AccountSession { assumed: None, calls: 0, sdk_retries: 0 }),
            AccessMethod::AssumeRole { role_arn } => {
                let retries = std::sync::atomic::AtomicU32::new(0);
                let assumed = self.assumer.assume(role_arn, &retries).await;
                let sdk_retries = retries.load(std::sync::atomic::Ordering::Relaxed);
                let provider = assumed.map_err(|reason| {
                    let reason = if self.management_account_id.as_ref() == Some(&account.id) {
                        with_management_account_hint(reason)
                    } else {
                        reason
                    };
                    ConnectFailure { reason, api_calls: 1, sdk_retries }
                })?;
                // A cache of its own: the SDK's shared lazy identity cache keeps at most 64 partitions and evicts
                // arbitrary ones, so with many accounts in flight it would drop live sessions and every IAM call
                // after an eviction would cost another AssumeRole (measured: 543 AssumeRole calls for 300 accounts).
                // One cache for every client of the account, so that they share the session instead of assuming the
                // role again.
                let cache = IdentityCache::lazy().build();
                Ok(AccountSession { assumed: Some((provider, cache)), calls: 1, sdk_retries })
            }
        }
    }

    /// The account's IAM client, from its session: one HTTP client with one bucket for the credential report's
    /// calls and one for the optional look-ups (ListAccessKeys, ListUserTags), which follow them.
    pub(crate) fn iam(&self, account: &Account, session: &AccountSession) -> SdkIam {
        let optional = bucket(Pace::even(self.enrichment_rps));
        let look_ups = ["ListAccessKeys", "ListUserTags"].map(|op| (op.to_owned(), optional.clone()));
        let buckets = Buckets::new(bucket(Pace::even(self.iam_rps)), HashMap::from(look_ups));
        let inner = self.base.http_client().unwrap_or_else(https_client);
        let http = RateLimitedHttpClient::with_buckets(inner, buckets).with_patience(self.patience);
        let config = self.base.to_builder().http_client(http.clone()).build();
        SdkIam::new(&session.config(config), &account.id, http.attempts(), session.calls, session.sdk_retries)
    }
}

impl AccountConnector for Connector {
    type Api = SdkIam;

    async fn connect(&self, account: &Account) -> Result<SdkIam, ConnectFailure> {
        let session = self.session(account).await?;
        Ok(self.iam(account, &session))
    }
}

/// Reaches single accounts outside a scan (remediation): the caller identified once, the caller's own account
/// with its own credentials, every other account through `role`.
pub(crate) struct Reach {
    pub(crate) connector: Connector,
    pub(crate) caller_arn: String,
    pub(crate) caller_account_id: AccountId,
    pub(crate) partition: keyaudit_core::ids::Partition,
    role: keyaudit_org_discovery::RoleSpec,
}

impl Reach {
    pub(crate) async fn new(
        base: &SdkConfig,
        role: keyaudit_org_discovery::RoleSpec,
        assume: keyaudit_org_discovery::AssumeSettings,
        sts_pace: Pace,
        iam_rps: NonZeroU32,
        patience: Duration,
    ) -> Result<Self, crate::Failure> {
        let (sts_config, _) = limited(base, sts_pace, patience);
        let caller = keyaudit_org_discovery::caller_identity(&sts_config).await.map_err(|e| {
            crate::Failure::usage(anyhow::Error::new(e).context(
                "cannot identify the caller (sts:GetCallerIdentity); check the AWS credentials and --endpoint-url",
            ))
        })?;
        Ok(Self {
            connector: Connector {
                base: base.clone(),
                assumer: RoleAssumer::new(&sts_config, assume),
                iam_rps,
                enrichment_rps: iam_rps,
                management_account_id: None,
                patience,
            },
            caller_arn: caller.arn,
            caller_account_id: caller.account_id,
            partition: caller.partition,
            role,
        })
    }

    /// The account of `key`, reached with the caller's credentials when it is the caller's, else through the role.
    pub(crate) fn account(&self, key: &keyaudit_core::remediation::KeyRef) -> Account {
        self.account_of(&key.user)
    }

    /// The account of `user`, reached with the caller's credentials when it is the caller's, else through the role.
    pub(crate) fn account_of(&self, user: &keyaudit_core::remediation::UserRef) -> Account {
        let access = if user.account_id == self.caller_account_id {
            AccessMethod::CallerCredentials
        } else {
            AccessMethod::AssumeRole { role_arn: self.role.arn(&self.partition, &user.account_id) }
        };
        Account {
            id: user.account_id.clone(),
            name: user.account_name.clone(),
            ou_path: user.ou_path.clone(),
            state: keyaudit_core::report::AccountState::Active,
            access,
        }
    }
}
