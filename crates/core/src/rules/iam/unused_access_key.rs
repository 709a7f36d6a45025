//! KA-IAM-004 `unused-access-key`: active access keys unused for `unused-days` (45 by default) or more fail
//! (CIS AWS Foundations "Ensure credentials unused for 45 days or greater are disabled", Security Hub IAM.22).

use crate::finding::{EvalContext, Evidence, Finding, KeyFacts, Verdict, whole_days};
use crate::ids::AccountId;
use crate::inventory::{AccountInventory, KeyChange, KeyStatus};
use crate::rules::iam::changed_since_report;
use crate::rules::meta::{CisRef, RuleMeta, Severity};
use crate::rules::rule::Rule;

static META: RuleMeta = RuleMeta {
    id: "KA-IAM-004",
    name: "unused-access-key",
    title: "Active IAM access keys have been used within the last 45 days (by default)",
    description: "An active access key fails when it has not been used for unused-days (45 by default) or more, \
                  counted from its last use or, for a key never used, from its last rotation.",
    severity: Severity::Medium,
    cis: &[
        CisRef { version: "1.4.0", control: "1.12" },
        CisRef { version: "1.5.0", control: "1.12" },
        CisRef { version: "2.0.0", control: "1.12" },
        CisRef { version: "3.0.0", control: "1.12" },
        CisRef { version: "4.0.1", control: "1.12" },
        CisRef { version: "5.0.0", control: "1.11" },
        CisRef { version: "6.0.0", control: "2.11" },
        CisRef { version: "7.0.0", control: "2.11" },
    ],
    security_hub: &["IAM.22"],
    aws_config: &["iam-user-unused-credentials-check"],
    remediation: "Confirm with the key's owner that nothing uses it, deactivate it (aws iam update-access-key \
                  --status Inactive), and delete it after a waiting period if nothing broke.",
    reference_url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_finding-unused.html",
    docs: include_str!("unused_access_key.md"),
};

/// The rule; its setting (`unused-days`) comes from [`EvalContext::config`].
#[derive(Debug, Clone, Copy, Default)]
pub struct UnusedAccessKey;

impl Rule for UnusedAccessKey {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn evaluate(&self, ctx: &EvalContext, account_id: &AccountId, inv: &AccountInventory) -> Vec<Finding> {
        let threshold = ctx.config.unused_after();
        let unused_days = ctx.config.unused_days();
        let mut findings = Vec::new();
        for user in inv.users.iter().filter(|u| !u.is_root()) {
            for slot in &user.keys {
                let key = KeyFacts::of(user, slot, ctx.as_of);
                let never_used = key.last_used_at.is_none();
                let unused_since = key.last_used_at.unwrap_or(key.last_rotated);
                let unused_for = ctx.as_of.duration_since(unused_since);
                let verdict = match key.status {
                    _ if key.change == Some(KeyChange::Deleted) => Verdict::Resolved,
                    KeyStatus::Inactive => Verdict::NotApplicable,
                    KeyStatus::Active if unused_for >= threshold => Verdict::Fail,
                    KeyStatus::Active => Verdict::Pass,
                };
                let who = format!("access key {} of {}", key.slot.number(), user.user_name);
                let days = whole_days(unused_for);
                let usage = if never_used {
                    format!("was never used and was last rotated {days} days ago")
                } else {
                    format!("was last used {days} days ago")
                };
                let message =
                    changed_since_report(&who, &key, inv.report_generated_at).unwrap_or_else(|| match verdict {
                        Verdict::Fail => {
                            format!("{who} {usage}; keys unused for {unused_days} days or more are to be disabled")
                        }
                        Verdict::Pass => format!("{who} {usage}"),
                        _ => format!("{who} is inactive; the control covers active keys only"),
                    });
                let evidence = Evidence::Usage { unused_for, unused_since, never_used, unused_days };
                findings.push(Finding::new(&META, account_id, user, Some(key), evidence, verdict, message));
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::*;
    use crate::finding::RuleConfig;
    use crate::inventory::{CredentialUser, KeySlot, KeySlotRecord, ROOT_USER_NAME};

    const DAY: i64 = 86_400;

    fn as_of() -> Timestamp {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn run_with(config: RuleConfig, user: &str, record: KeySlotRecord) -> Vec<Finding> {
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: user.into(),
                arn: format!("arn:aws:iam::012345678901:user/{user}"),
                keys: vec![record],
                owner: None,
            }],
        };
        UnusedAccessKey.evaluate(
            &EvalContext { as_of: as_of(), config },
            &AccountId::parse("012345678901").unwrap(),
            &inv,
        )
    }

    /// A key rotated 400 days ago, last used `used_secs_ago` seconds before as_of (never, when `None`).
    fn verdict(status: KeyStatus, rotated_secs_ago: i64, used_secs_ago: Option<i64>) -> Verdict {
        let ago = |s: i64| as_of() - SignedDuration::from_secs(s);
        let record = KeySlotRecord {
            last_used_at: used_secs_ago.map(ago),
            ..KeySlotRecord::new(KeySlot::One, status, ago(rotated_secs_ago))
        };
        run_with(RuleConfig::default(), "alice", record)[0].verdict
    }

    #[test]
    fn verdicts_at_every_boundary() {
        let old = 400 * DAY;
        let cases: &[(&str, KeyStatus, i64, Option<i64>, Verdict)] = &[
            ("used an hour ago", KeyStatus::Active, old, Some(3600), Verdict::Pass),
            ("used 44 d 23 h ago", KeyStatus::Active, old, Some(45 * DAY - 3600), Verdict::Pass),
            ("used 45 days ago to the second (\"or greater\")", KeyStatus::Active, old, Some(45 * DAY), Verdict::Fail),
            ("used 46 days ago", KeyStatus::Active, old, Some(46 * DAY), Verdict::Fail),
            ("never used, rotated 44 d 23 h ago", KeyStatus::Active, 45 * DAY - 3600, None, Verdict::Pass),
            ("never used, rotated 45 days ago", KeyStatus::Active, 45 * DAY, None, Verdict::Fail),
            ("never used, brand new", KeyStatus::Active, 60, None, Verdict::Pass),
            ("inactive and long unused", KeyStatus::Inactive, old, None, Verdict::NotApplicable),
        ];
        for (name, status, rotated, used, expected) in cases {
            assert_eq!(verdict(*status, *rotated, *used), *expected, "{name}");
        }
    }

    #[test]
    fn evidence_and_message_say_how_long_the_key_went_unused() {
        let record = KeySlotRecord {
            last_used_at: Some(as_of() - SignedDuration::from_secs(46 * DAY)),
            ..KeySlotRecord::new(KeySlot::Two, KeyStatus::Active, as_of() - SignedDuration::from_secs(300 * DAY))
        };
        let f = &run_with(RuleConfig::default(), "alice", record)[0];
        assert_eq!(
            f.message,
            "access key 2 of alice was last used 46 days ago; keys unused for 45 days or more are to be disabled"
        );
        assert_eq!(
            f.evidence,
            Evidence::Usage {
                unused_for: SignedDuration::from_secs(46 * DAY),
                unused_since: as_of() - SignedDuration::from_secs(46 * DAY),
                never_used: false,
                unused_days: 45,
            }
        );
        let never = KeySlotRecord::new(KeySlot::One, KeyStatus::Active, as_of() - SignedDuration::from_secs(50 * DAY));
        assert_eq!(
            run_with(RuleConfig::default(), "bob", never)[0].message,
            "access key 1 of bob was never used and was last rotated 50 days ago; keys unused for 45 days or more are to be disabled"
        );
    }

    #[test]
    fn the_threshold_is_a_setting() {
        let record = KeySlotRecord::new(KeySlot::One, KeyStatus::Active, as_of() - SignedDuration::from_secs(50 * DAY));
        let cfg = RuleConfig::new(90, 14, 60).unwrap();
        assert_eq!(run_with(cfg, "alice", record)[0].verdict, Verdict::Pass);
    }

    #[test]
    fn root_keys_and_deleted_keys() {
        let record =
            KeySlotRecord::new(KeySlot::One, KeyStatus::Active, as_of() - SignedDuration::from_secs(400 * DAY));
        assert!(run_with(RuleConfig::default(), ROOT_USER_NAME, record.clone()).is_empty(), "KA-IAM-002's business");
        let deleted = KeySlotRecord { change: Some(KeyChange::Deleted), ..record };
        assert_eq!(run_with(RuleConfig::default(), "alice", deleted)[0].verdict, Verdict::Resolved);
    }
}
