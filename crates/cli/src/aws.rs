//! The AWS side of the binary: the base SDK configuration (credential chain, profile, region, endpoint, the
//! SDK-owned retry policy) and the connector that opens each account for the scanner.

use std::num::NonZeroU32;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use keyaudit_core::report::{AccessMethod, Account};
use keyaudit_org_discovery::RoleAssumer;
use keyaudit_scanner::{AccountConnector, ConnectFailure, SdkIam, iam_rate_limiter};

use crate::settings::Settings;

/// Loads the caller's configuration. `AWS_ENDPOINT_URL` is honoured by aws-config itself; `--endpoint-url`
/// overrides it. IAM, STS and Organizations are global, so a missing region falls back to us-east-1.
pub(crate) async fn base_config(settings: &Settings) -> SdkConfig {
    let region = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
        .or_default_provider()
        .or_else(Region::from_static("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts));
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Opens accounts: the caller's own credentials for the management and caller accounts, AssumeRole for the
/// rest. Each account gets its own IAM rate limiter, since IAM quotas are per account.
pub(crate) struct Connector {
    pub(crate) base: SdkConfig,
    pub(crate) assumer: RoleAssumer,
    pub(crate) iam_rps: NonZeroU32,
}

impl AccountConnector for Connector {
    type Api = SdkIam;

    async fn connect(&self, account: &Account) -> Result<SdkIam, ConnectFailure> {
        let limiter = iam_rate_limiter(self.iam_rps);
        match &account.access {
            AccessMethod::CallerCredentials => Ok(SdkIam::new(&self.base, limiter, 0)),
            AccessMethod::AssumeRole { role_arn } => {
                let provider =
                    self.assumer.assume(role_arn).await.map_err(|reason| ConnectFailure { reason, api_calls: 1 })?;
                let config = self.base.to_builder().credentials_provider(provider).build();
                Ok(SdkIam::new(&config, limiter, 1))
            }
        }
    }
}
