//! The Organizations and STS seams in domain types, and their AWS SDK implementations.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_organizations::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::date_time::{DateTime, Format};
use jiff::Timestamp;
use keyaudit_core::aws_error::{self, ErrorClass};
use keyaudit_core::ids::{AccountId, Partition};
use keyaudit_core::report::AccountState;

use crate::DiscoveryError;

/// An organization, as DescribeOrganization answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgInfo {
    /// `o-…`.
    pub id: String,
    /// The management account.
    pub management_account_id: AccountId,
}

/// A root or OU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUnit {
    /// `r-…` or `ou-…`.
    pub id: String,
    /// Its name (`Root` for the root).
    pub name: String,
}

/// A member account as listed under a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    /// Account id.
    pub id: AccountId,
    /// Account name.
    pub name: String,
    /// Its state.
    pub state: AccountState,
}

/// Who is calling (GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The caller's account.
    pub account_id: AccountId,
    /// The caller's ARN.
    pub arn: String,
    /// The partition, from the ARN.
    pub partition: Partition,
    /// AWS's clock: the `Date` header of the GetCallerIdentity response (to the second), when it had one.
    pub aws_time: Option<Timestamp>,
}

/// One page of a listing, and the token of the next (`None`: the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The next page's token.
    pub next: Option<String>,
}

/// The Organizations operations discovery needs, a page at a time (at most 20 items per page on AWS), so that
/// discovery can spread pages over AWS's throttling buckets and keep several in flight.
pub trait OrganizationsApi: Send + Sync {
    /// DescribeOrganization; `None` when the account is not in an organization.
    fn describe_organization(&self) -> impl Future<Output = Result<Option<OrgInfo>, DiscoveryError>> + Send;
    /// ListRoots, every page.
    fn list_roots(&self) -> impl Future<Output = Result<Vec<OrgUnit>, DiscoveryError>> + Send;
    /// ListOrganizationalUnitsForParent: a parent's child OUs, with their names.
    fn child_ous(
        &self,
        parent_id: &str,
        token: Option<String>,
    ) -> impl Future<Output = Result<Page<OrgUnit>, DiscoveryError>> + Send;
    /// ListAccountsForParent: a parent's accounts, with their names and states.
    fn accounts_for_parent(
        &self,
        parent_id: &str,
        token: Option<String>,
    ) -> impl Future<Output = Result<Page<OrgAccount>, DiscoveryError>> + Send;
    /// ListChildren (`ChildType=ACCOUNT`): a parent's accounts, by id only (another throttling bucket).
    fn child_account_ids(
        &self,
        parent_id: &str,
        token: Option<String>,
    ) -> impl Future<Output = Result<Page<AccountId>, DiscoveryError>> + Send;
    /// ListAccounts: the whole organization's accounts, with their names and states.
    fn accounts(&self, token: Option<String>) -> impl Future<Output = Result<Page<OrgAccount>, DiscoveryError>> + Send;
    /// ListParents for an account: the id of its one parent (root or OU).
    fn parent_of(&self, account_id: &AccountId) -> impl Future<Output = Result<String, DiscoveryError>> + Send;
}

/// One row of AWS Organizations' published throttling limits ("Quotas for AWS Organizations", "Throttling
/// limits"), per calling account: the operations that share one bucket (assumed shared: the page does not say),
/// its rate per second and its burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgQuota {
    /// The operations, as AWS spells them.
    pub operations: &'static [&'static str],
    /// Requests per second.
    pub rate: u32,
    /// Burst.
    pub burst: u32,
}

/// AWS Organizations' throttling limits per calling account (the per-organization limits are a little higher).
pub const ORG_QUOTAS: &[OrgQuota] = &[
    OrgQuota { operations: &["ListAccounts"], rate: 8, burst: 12 },
    OrgQuota { operations: &["ListChildren"], rate: 6, burst: 10 },
    OrgQuota {
        operations: &["ListParents", "ListAccountsForParent", "ListOrganizationalUnitsForParent"],
        rate: 5,
        burst: 8,
    },
    OrgQuota { operations: &["DescribeOrganization", "ListRoots"], rate: 1, burst: 2 },
    OrgQuota { operations: &["DescribeAccount"], rate: 20, burst: 30 },
    OrgQuota { operations: &["ListTagsForResource"], rate: 10, burst: 15 },
];

pub(crate) fn api_error<E, R>(action: &'static str, err: SdkError<E, R>) -> DiscoveryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    DiscoveryError::Api {
        action,
        code: err.code().map(str::to_owned),
        message: err.message().map(str::to_owned).unwrap_or_else(|| aws_error::describe(&err)),
    }
}

/// [`OrganizationsApi`] over the AWS SDK. Rate limits apply at the wire, through the configuration's HTTP
/// client (see `keyaudit_scanner::ratelimit`), so SDK retries are limited too.
pub struct SdkOrganizations {
    client: aws_sdk_organizations::Client,
    calls: AtomicU32,
    /// DescribeOrganization's answer, asked once per run (the scope is read before discovery, which needs it too).
    organization: std::sync::OnceLock<Option<OrgInfo>>,
}

impl SdkOrganizations {
    /// A client with the caller's configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_organizations::Client::new(config),
            calls: AtomicU32::new(0),
            organization: std::sync::OnceLock::new(),
        }
    }

    /// Calls made so far.
    pub fn api_calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    fn before_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

fn unit(action: &'static str, id: Option<&str>, name: Option<&str>) -> Result<OrgUnit, DiscoveryError> {
    match (id, name) {
        (Some(id), Some(name)) => Ok(OrgUnit { id: id.to_owned(), name: name.to_owned() }),
        _ => Err(DiscoveryError::BadResponse { action, problem: "a parent without id or name".into() }),
    }
}

// Pages are fetched by hand (not with the SDK paginator) so that every page is counted.
impl OrganizationsApi for SdkOrganizations {
    async fn describe_organization(&self) -> Result<Option<OrgInfo>, DiscoveryError> {
        const ACTION: &str = "organizations:DescribeOrganization";
        if let Some(known) = self.organization.get() {
            return Ok(known.clone());
        }
        self.before_call();
        let answer = match self.client.describe_organization().send().await {
            Ok(out) => {
                let org = out
                    .organization()
                    .ok_or(DiscoveryError::BadResponse { action: ACTION, problem: "no organization".into() })?;
                let id = org.id().unwrap_or_default().to_owned();
                let mgmt = org.master_account_id().unwrap_or_default();
                let management_account_id = AccountId::parse(mgmt)
                    .map_err(|e| DiscoveryError::BadResponse { action: ACTION, problem: e.to_string() })?;
                Ok(Some(OrgInfo { id, management_account_id }))
            }
            Err(e) if aws_error::classify(e.code()) == ErrorClass::NotInOrganization => Ok(None),
            Err(e) => Err(api_error(ACTION, e)),
        }?;
        Ok(self.organization.get_or_init(|| answer).clone())
    }

    async fn list_roots(&self) -> Result<Vec<OrgUnit>, DiscoveryError> {
        const ACTION: &str = "organizations:ListRoots";
        let mut units = Vec::new();
        let mut token = None;
        loop {
            self.before_call();
            let out = self.client.list_roots().set_next_token(token).send().await.map_err(|e| api_error(ACTION, e))?;
            for r in out.roots() {
                units.push(unit(ACTION, r.id(), r.name())?);
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(units);
            }
        }
    }

    async fn child_ous(&self, parent_id: &str, token: Option<String>) -> Result<Page<OrgUnit>, DiscoveryError> {
        const ACTION: &str = "organizations:ListOrganizationalUnitsForParent";
        self.before_call();
        let out = self
            .client
            .list_organizational_units_for_parent()
            .parent_id(parent_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| api_error(ACTION, e))?;
        let items =
            out.organizational_units().iter().map(|ou| unit(ACTION, ou.id(), ou.name())).collect::<Result<_, _>>()?;
        Ok(Page { items, next: out.next_token().map(str::to_owned) })
    }

    async fn accounts_for_parent(
        &self,
        parent_id: &str,
        token: Option<String>,
    ) -> Result<Page<OrgAccount>, DiscoveryError> {
        const ACTION: &str = "organizations:ListAccountsForParent";
        self.before_call();
        let out = self
            .client
            .list_accounts_for_parent()
            .parent_id(parent_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| api_error(ACTION, e))?;
        let items = out.accounts().iter().map(|a| org_account(ACTION, a)).collect::<Result<_, _>>()?;
        Ok(Page { items, next: out.next_token().map(str::to_owned) })
    }

    async fn child_account_ids(
        &self,
        parent_id: &str,
        token: Option<String>,
    ) -> Result<Page<AccountId>, DiscoveryError> {
        const ACTION: &str = "organizations:ListChildren";
        self.before_call();
        let out = self
            .client
            .list_children()
            .parent_id(parent_id)
            .child_type(aws_sdk_organizations::types::ChildType::Account)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| api_error(ACTION, e))?;
        let items = out
            .children()
            .iter()
            .map(|c| {
                AccountId::parse(c.id().unwrap_or_default())
                    .map_err(|e| DiscoveryError::BadResponse { action: ACTION, problem: e.to_string() })
            })
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next: out.next_token().map(str::to_owned) })
    }

    async fn accounts(&self, token: Option<String>) -> Result<Page<OrgAccount>, DiscoveryError> {
        const ACTION: &str = "organizations:ListAccounts";
        self.before_call();
        let out = self.client.list_accounts().set_next_token(token).send().await.map_err(|e| api_error(ACTION, e))?;
        let items = out.accounts().iter().map(|a| org_account(ACTION, a)).collect::<Result<_, _>>()?;
        Ok(Page { items, next: out.next_token().map(str::to_owned) })
    }

    async fn parent_of(&self, account_id: &AccountId) -> Result<String, DiscoveryError> {
        const ACTION: &str = "organizations:ListParents";
        self.before_call();
        let out =
            self.client.list_parents().child_id(account_id.as_str()).send().await.map_err(|e| api_error(ACTION, e))?;
        out.parents().iter().find_map(|p| p.id()).map(str::to_owned).ok_or_else(|| DiscoveryError::BadResponse {
            action: ACTION,
            problem: format!("no parent for account {account_id}"),
        })
    }
}

fn org_account(action: &'static str, a: &aws_sdk_organizations::types::Account) -> Result<OrgAccount, DiscoveryError> {
    let id = AccountId::parse(a.id().unwrap_or_default())
        .map_err(|e| DiscoveryError::BadResponse { action, problem: e.to_string() })?;
    // `State` replaces the retiring `Status`; fall back to `Status` for older responses.
    let state = match (a.state(), a.status()) {
        (Some(s), _) => AccountState::from_api(s.as_str()),
        (None, Some(s)) => AccountState::from_api(s.as_str()),
        (None, None) => AccountState::Other("UNKNOWN".into()),
    };
    Ok(OrgAccount { id, name: a.name().unwrap_or_default().to_owned(), state })
}

/// Keeps the `Date` header of the response: AWS's clock, to compare the local one with.
#[derive(Debug, Clone, Default)]
struct ServerDate(Arc<Mutex<Option<String>>>);

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "keyaudit-server-date"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        if let (Some(date), Ok(mut slot)) = (context.response().headers().get("date"), self.0.lock()) {
            *slot = Some(date.to_owned());
        }
        Ok(())
    }
}

/// An HTTP `Date` header (`Sat, 28 Nov 2026 12:00:00 GMT`) as a timestamp.
fn http_date(value: &str) -> Option<Timestamp> {
    let t = DateTime::from_str(value.trim(), Format::HttpDate).ok()?;
    Timestamp::from_second(t.secs()).ok()
}

/// GetCallerIdentity: the caller's account, ARN and partition, and AWS's clock at the time of the answer.
pub async fn caller_identity(config: &aws_config::SdkConfig) -> Result<CallerIdentity, DiscoveryError> {
    const ACTION: &str = "sts:GetCallerIdentity";
    let date = ServerDate::default();
    let out = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .customize()
        .interceptor(date.clone())
        .send()
        .await
        .map_err(|e| api_error(ACTION, e))?;
    let bad = |problem: String| DiscoveryError::BadResponse { action: ACTION, problem };
    let account_id = AccountId::parse(out.account().unwrap_or_default()).map_err(|e| bad(e.to_string()))?;
    let arn = out.arn().unwrap_or_default().to_owned();
    let partition = Partition::from_arn(&arn).ok_or_else(|| bad(format!("caller ARN {arn:?} is not an ARN")))?;
    let aws_time = date.0.lock().ok().and_then(|d| d.as_deref().and_then(http_date));
    Ok(CallerIdentity { account_id, arn, partition, aws_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse_to_the_second() {
        assert_eq!(http_date("Sat, 28 Nov 2026 12:00:05 GMT"), Some("2026-11-28T12:00:05Z".parse().unwrap()));
        assert_eq!(http_date("yesterday"), None);
    }
}
