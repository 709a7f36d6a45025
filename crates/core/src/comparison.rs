//! The change since the last run, as data: a report's comparison with its baseline (resolved findings, accounts
//! whose coverage got worse, the counts), and what a snapshot records of an account and a finding. Computed by
//! [`crate::baseline`]; carried by the report.

use jiff::Timestamp;

use crate::finding::Verdict;
use crate::ids::AccountId;

/// Whether an account was assessed, as a snapshot records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Scanned.
    Scanned,
    /// Skipped (not active).
    Skipped,
    /// Could not be assessed.
    Failed,
}

impl Coverage {
    /// `scanned`, `skipped` or `failed` (the JSON report's account `status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Scanned => "scanned",
            Coverage::Skipped => "skipped",
            Coverage::Failed => "failed",
        }
    }

    /// Parses the JSON report's account `status`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scanned" => Some(Coverage::Scanned),
            "skipped" => Some(Coverage::Skipped),
            "failed" => Some(Coverage::Failed),
            _ => None,
        }
    }
}

/// One account of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotAccount {
    /// The account.
    pub account_id: AccountId,
    /// Its name.
    pub name: Option<String>,
    /// Its OU path.
    pub ou_path: Option<String>,
    /// Whether it was assessed.
    pub coverage: Coverage,
    /// Why not, when it failed or was skipped (the stable reason code).
    pub reason_code: Option<String>,
}

/// One finding of a snapshot: what the comparison needs and what a resolved finding shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFinding {
    /// The finding's fingerprint.
    pub fingerprint: String,
    /// Its rule id.
    pub rule_id: String,
    /// The account.
    pub account_id: AccountId,
    /// The user.
    pub user_name: String,
    /// The user's ARN.
    pub user_arn: String,
    /// The key slot, for a key-level finding.
    pub key_slot: Option<u8>,
    /// The key id, when it was looked up.
    pub access_key_id: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// The finding's sentence.
    pub message: String,
    /// Whether an exception covered it.
    pub suppressed: bool,
    /// When it was first seen (`None`: a report written before keyaudit recorded it).
    pub first_seen: Option<Timestamp>,
}

/// An account whose coverage got worse since the baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    /// The account (as this run knows it, else as the baseline did).
    pub account: SnapshotAccount,
    /// Its coverage in the baseline (`None`: not in the baseline).
    pub was: Option<Coverage>,
    /// Its coverage now (`None`: not selected in this run).
    pub now: Option<Coverage>,
}

/// A baseline finding that failed or warned and no longer does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFinding {
    /// The finding as the baseline reported it (its verdict is the baseline's).
    pub finding: SnapshotFinding,
    /// Its verdict now (`pass`, `not_applicable`, `resolved`), or `None` when it is gone from the report.
    pub now: Option<Verdict>,
    /// Its account as this run knows it.
    pub account: Option<SnapshotAccount>,
}

/// Counts for "since the last run".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeCounts {
    /// Failing or warning findings (not suppressed) that did not fail or warn in the baseline.
    pub new: usize,
    /// Failing or warning findings (not suppressed) that failed or warned in the baseline too.
    pub still_open: usize,
    /// Resolved findings.
    pub resolved: usize,
    /// Findings by state, every verdict included.
    pub by_state_new: usize,
    /// Findings with the baseline's verdict.
    pub by_state_unchanged: usize,
    /// Findings whose verdict changed.
    pub by_state_updated: usize,
}

/// The comparison of a report with its baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The baseline's `as_of`.
    pub baseline_as_of: Timestamp,
    /// Thresholds that differ, as (name, baseline, now).
    pub threshold_changes: Vec<(&'static str, u32, u32)>,
    /// Findings that failed or warned in the baseline and no longer do.
    pub resolved: Vec<ResolvedFinding>,
    /// Accounts failed now that were not failed in the baseline.
    pub newly_failed_accounts: Vec<AccountChange>,
    /// Accounts the baseline scanned that this run did not (failed, skipped, or not selected).
    pub no_longer_assessed: Vec<AccountChange>,
    /// The counts.
    pub counts: ChangeCounts,
}
