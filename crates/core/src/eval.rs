//! Pure evaluation: an account's inventory plus the run's fixed `as_of` instant in, findings out.

use jiff::{SignedDuration, Timestamp};

use crate::ModelError;
use crate::ids::{AccessKeyId, AccountId, Partition};
use crate::inventory::{AccountInventory, KeyChange, KeySlot, KeyStatus};
use crate::rules::{RuleSet, Severity};

const SECONDS_PER_DAY: i64 = 86_400;

/// Validated rule settings (CIS defaults: 90-day maximum, 14-day warning window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleConfig {
    max_age_days: u32,
    warn_days: u32,
}

impl RuleConfig {
    /// The CIS default maximum key age in days.
    pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;
    /// The default warning window in days before the maximum age.
    pub const DEFAULT_WARN_DAYS: u32 = 14;

    /// Validates the settings: `max_age_days` in 1..=36500, `warn_days` below `max_age_days`.
    pub fn new(max_age_days: u32, warn_days: u32) -> Result<Self, ModelError> {
        if !(1..=36_500).contains(&max_age_days) {
            return Err(ModelError::InvalidSetting {
                name: "max-age-days",
                expected: format!("a whole number of days from 1 to 36500, got {max_age_days}"),
            });
        }
        if warn_days >= max_age_days {
            return Err(ModelError::InvalidSetting {
                name: "warn-days",
                expected: format!("fewer days than max-age-days ({max_age_days}), got {warn_days}"),
            });
        }
        Ok(Self { max_age_days, warn_days })
    }

    /// The maximum compliant age in days (a key exactly this old passes).
    pub fn max_age_days(&self) -> u32 {
        self.max_age_days
    }

    /// How many days before the maximum age a key starts to warn.
    pub fn warn_days(&self) -> u32 {
        self.warn_days
    }

    /// The maximum compliant age.
    pub fn max_age(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::from(self.max_age_days) * SECONDS_PER_DAY)
    }

    /// The age from which an active key warns.
    pub fn warn_after(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::from(self.max_age_days - self.warn_days) * SECONDS_PER_DAY)
    }
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self { max_age_days: Self::DEFAULT_MAX_AGE_DAYS, warn_days: Self::DEFAULT_WARN_DAYS }
    }
}

/// Everything a rule may know besides the inventory: one instant for the whole run and the settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalContext {
    /// The instant every age is measured against.
    pub as_of: Timestamp,
    /// Validated settings.
    pub config: RuleConfig,
}

/// The outcome for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Active and older than the maximum age.
    Fail,
    /// Active, compliant, but inside the warning window.
    Warn,
    /// Active and compliant.
    Pass,
    /// Inactive: the control covers active keys only.
    NotApplicable,
    /// In the credential report, but deleted since it was generated (`ListAccessKeys` no longer lists it).
    Resolved,
}

impl Verdict {
    /// `fail`, `warn`, `pass` or `not_applicable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Fail => "fail",
            Verdict::Warn => "warn",
            Verdict::Pass => "pass",
            Verdict::NotApplicable => "not_applicable",
            Verdict::Resolved => "resolved",
        }
    }

    /// Whether the key needs attention (`fail` or `warn`).
    pub fn is_actionable(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Warn)
    }
}

/// One rule's verdict on one existing key slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The rule's stable id.
    pub rule_id: &'static str,
    /// The rule's severity (the severity a `fail` carries).
    pub severity: Severity,
    /// The account the key belongs to.
    pub account_id: AccountId,
    /// IAM user name (`<root_account>` for the root user).
    pub user_name: String,
    /// IAM user ARN.
    pub user_arn: String,
    /// Report slot (1 or 2).
    pub key_slot: KeySlot,
    /// Key id, when it was looked up and matched.
    pub access_key_id: Option<AccessKeyId>,
    /// Active or inactive: the report's status, or `ListAccessKeys`'s when it shows a deactivation since.
    pub key_status: KeyStatus,
    /// What changed since the credential report, when `ListAccessKeys` proved it.
    pub change: Option<KeyChange>,
    /// Creation or last re-activation, per the credential report.
    pub last_rotated: Timestamp,
    /// `CreateDate`, when the key id was looked up.
    pub created_at: Option<Timestamp>,
    /// Last use, when AWS recorded one.
    pub last_used_at: Option<Timestamp>,
    /// `as_of - last_rotated`, to the second (negative when the key is newer than `as_of`).
    pub age: SignedDuration,
    /// `last_rotated + max-age`: the last compliant instant.
    pub due_at: Timestamp,
    /// The verdict.
    pub verdict: Verdict,
    /// One human sentence explaining the verdict.
    pub message: String,
}

impl Finding {
    /// Whole days of age, floored (a key 90 days and 1 second old is 90 days old, and fails).
    pub fn age_days(&self) -> i64 {
        self.age.as_secs().div_euclid(SECONDS_PER_DAY)
    }

    /// The key's state as last seen: `active`, `inactive`, or `deleted` (since the credential report).
    pub fn key_state(&self) -> &'static str {
        match self.change {
            Some(KeyChange::Deleted) => "deleted",
            _ => self.key_status.as_str(),
        }
    }

    /// Whether this is the root user's key.
    pub fn is_root(&self) -> bool {
        self.user_name == crate::inventory::ROOT_USER_NAME
    }

    /// A stable identifier of what the finding is about: SHA-256 (hex) of the rule, partition, account, user ARN
    /// and access key id (or the key slot when the id was not looked up). It does not change between runs
    /// while the key stays the same, so SIEMs and code-scanning tools can track one key's finding over time.
    pub fn fingerprint(&self, partition: &Partition) -> String {
        use sha2::Digest;
        let subject = match &self.access_key_id {
            Some(id) => format!("key:{id}"),
            None => format!("slot:{}", self.key_slot.number()),
        };
        let input = format!("keyaudit/v1|{}|{partition}|{}|{}|{subject}", self.rule_id, self.account_id, self.user_arn);
        hex::encode(sha2::Sha256::digest(input.as_bytes()))
    }
}

/// Evaluates every registered rule on one account's inventory.
pub fn evaluate(rules: &RuleSet, ctx: &EvalContext, account_id: &AccountId, inv: &AccountInventory) -> Vec<Finding> {
    rules.iter().flat_map(|rule| rule.evaluate(ctx, account_id, inv)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{CredentialUser, KeySlotRecord};
    use crate::rules::builtin;

    fn finding(key_id: Option<&str>, last_rotated: &str, as_of: &str) -> Finding {
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: "alice".into(),
                arn: "arn:aws:iam::012345678901:user/alice".into(),
                keys: vec![KeySlotRecord {
                    access_key_id: key_id.map(|k| AccessKeyId::parse(k).unwrap()),
                    ..KeySlotRecord::new(KeySlot::One, KeyStatus::Active, last_rotated.parse().unwrap())
                }],
            }],
        };
        let ctx = EvalContext { as_of: as_of.parse().unwrap(), config: RuleConfig::default() };
        evaluate(&builtin(), &ctx, &AccountId::parse("012345678901").unwrap(), &inv).remove(0)
    }

    #[test]
    fn fingerprints_stay_stable_while_the_key_stays_the_same() {
        let aws = Partition::aws();
        let a = finding(Some("AKIA0000000000000001"), "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
        let b = finding(Some("AKIA0000000000000001"), "2026-01-01T00:00:00Z", "2026-11-28T00:00:00Z");
        assert_ne!(a.verdict, b.verdict);
        assert_eq!(a.fingerprint(&aws), b.fingerprint(&aws), "another run, another verdict: same key");
        assert_eq!(a.fingerprint(&aws).len(), 64);
        let other_key = finding(Some("AKIA0000000000000002"), "2026-01-01T00:00:00Z", "2026-05-01T00:00:00Z");
        assert_ne!(a.fingerprint(&aws), other_key.fingerprint(&aws));
        let no_id = finding(None, "2026-01-01T00:00:00Z", "2026-05-01T00:00:00Z");
        assert_ne!(a.fingerprint(&aws), no_id.fingerprint(&aws));
        assert_ne!(a.fingerprint(&aws), a.fingerprint(&Partition::from_arn("arn:aws-cn:iam::x").unwrap()));
    }
}
