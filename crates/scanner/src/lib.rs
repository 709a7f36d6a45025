//! keyaudit-scanner — each account's IAM facts (credential report, keys, tags), paced and retried; CloudTrail's
//! record of where a key is used; and remediation's writes to IAM, Secrets Manager and KMS. Depends on core.
//!
//! Per-account IAM collection.
//!
//! For each account: the IAM credential report (a few API calls however many users), parsed by header name,
//! evaluated by the core rules at the run's `as_of`, then `ListAccessKeys` only for the users whose keys need
//! attention, to attach key ids. Accounts run concurrently; IAM calls are rate limited per target account
//! (IAM quotas are per account); transport retries and throttling backoff belong to the AWS SDK, and the only
//! waits here are the ones credential-report semantics require.
#![warn(missing_docs)]

pub mod collect;
pub mod credential_report;
pub mod iam;
pub mod probe;
pub mod ratelimit;
pub mod remediate;
pub mod scan;
pub mod where_used;

pub use collect::{KeyIdMode, ReportPolicy};
pub use iam::{CollectError, IamApi, SdkIam};
pub use probe::{PROBE_USER, Probe, ProbeOutcome, probe_permissions};
pub use ratelimit::{Bucket, Buckets, Pace, RateLimitedHttpClient, THROTTLE_PATIENCE, bucket};
pub use scan::{AccountConnector, AccountDone, ConnectFailure, ScanOptions, ScanOutput, Watch, scan_accounts};
