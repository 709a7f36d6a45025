//! keyaudit-org-discovery — the organization's accounts with their OU paths (Organizations), and member accounts
//! opened through STS. Depends on core.
//!
//! Finds the organization's accounts with their OU paths, and opens member accounts
//! through STS AssumeRole.
//!
//! Rate limits are not applied here but at the wire, by the HTTP client of the configuration each client is
//! built from, so that the SDK's own retries are limited too.
#![warn(missing_docs)]

pub mod api;
pub mod assume;
pub mod discover;
mod error;

pub use api::{CallerIdentity, ORG_QUOTAS, OrgQuota, OrganizationsApi, Page, SdkOrganizations, caller_identity};
pub use assume::{AssumeSettings, RoleAssumer, with_management_account_hint};
pub use discover::{AccountFilter, Discovery, ListingRates, RoleSpec, discover, parse_ou_path};
pub use error::DiscoveryError;
