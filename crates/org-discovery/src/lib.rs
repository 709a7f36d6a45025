//! keyaudit-org-discovery: finds the organization's accounts with their OU paths, and opens member accounts
//! through STS AssumeRole.
//!
//! Organizations calls run under one rate limiter for the organization, STS calls under one for the caller.
#![warn(missing_docs)]

pub mod api;
pub mod assume;
pub mod discover;
mod error;

pub use api::{CallerIdentity, OrganizationsApi, SdkOrganizations, caller_identity, rate_limiter};
pub use assume::{AssumeSettings, RoleAssumer};
pub use discover::{AccountFilter, Discovery, RoleSpec, discover};
pub use error::DiscoveryError;
