//! KA-IAM-002 `root-access-key`: the root user must have no active access key (CIS AWS Foundations "Ensure no
//! 'root' user account access key exists", Security Hub IAM.4).

use crate::finding::{EvalContext, Evidence, Finding, KeyFacts, Verdict};
use crate::ids::AccountId;
use crate::inventory::AccountInventory;
use crate::rules::meta::{CisRef, RuleMeta, Severity};
use crate::rules::rule::Rule;

static META: RuleMeta = RuleMeta {
    id: "KA-IAM-002",
    name: "root-access-key",
    title: "The root user has no active access key",
    description: "The root user's row of the credential report must show no active access key: one finding per \
                  active root key slot; none when both slots are inactive or empty.",
    severity: Severity::Critical,
    cis: &[
        CisRef { version: "1.4.0", control: "1.4" },
        CisRef { version: "1.5.0", control: "1.4" },
        CisRef { version: "2.0.0", control: "1.4" },
        CisRef { version: "3.0.0", control: "1.4" },
        CisRef { version: "4.0.1", control: "1.4" },
        CisRef { version: "5.0.0", control: "1.3" },
        CisRef { version: "6.0.0", control: "2.3" },
        CisRef { version: "7.0.0", control: "2.4" },
    ],
    security_hub: &["IAM.4"],
    aws_config: &["iam-root-access-key-check"],
    remediation: "Sign in as the root user, open Security credentials, and delete the access key (deactivate it \
                  first if you must confirm nothing uses it). Use IAM roles or IAM Identity Center for programmatic \
                  access instead.",
    reference_url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_delete-key.html",
    docs: include_str!("root_access_key.md"),
};

/// The rule (no settings).
#[derive(Debug, Clone, Copy, Default)]
pub struct RootAccessKey;

impl Rule for RootAccessKey {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn evaluate(&self, ctx: &EvalContext, account_id: &AccountId, inv: &AccountInventory) -> Vec<Finding> {
        inv.users
            .iter()
            .filter(|u| u.is_root())
            .flat_map(|root| root.keys.iter().map(move |k| (root, KeyFacts::of(root, k, ctx.as_of))))
            .filter(|(_, key)| key.is_active())
            .map(|(root, key)| {
                let used = key.last_used_at.map_or_else(|| "never used".to_owned(), |t| format!("last used {t}"));
                let message = format!(
                    "the root user of account {account_id} has an active access key in slot {} (last rotated {} \
                         days ago, {used}); delete it",
                    key.slot.number(),
                    key.age_days()
                );
                Finding::new(&META, account_id, root, Some(key), Evidence::RootKey, Verdict::Fail, message)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::*;
    use crate::finding::RuleConfig;
    use crate::inventory::{CredentialUser, KeySlot, KeySlotRecord, KeyStatus, ROOT_USER_NAME};

    fn as_of() -> Timestamp {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn run(user: &str, keys: &[(KeySlot, KeyStatus)]) -> Vec<Finding> {
        let arn = if user == ROOT_USER_NAME {
            "arn:aws:iam::012345678901:root".to_owned()
        } else {
            format!("arn:aws:iam::012345678901:user/{user}")
        };
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: user.into(),
                arn,
                keys: keys
                    .iter()
                    .map(|(slot, status)| KeySlotRecord::new(*slot, *status, as_of() - SignedDuration::from_hours(24)))
                    .collect(),
                owner: None,
            }],
        };
        let ctx = EvalContext { as_of: as_of(), config: RuleConfig::default() };
        RootAccessKey.evaluate(&ctx, &AccountId::parse("012345678901").unwrap(), &inv)
    }

    #[test]
    fn one_critical_finding_per_active_root_key_and_none_otherwise() {
        use KeySlot::{One, Two};
        use KeyStatus::{Active, Inactive};
        type Case<'a> = (&'a str, &'a [(KeySlot, KeyStatus)], &'a [KeySlot]);
        let cases: &[Case<'_>] = &[
            ("no root key", &[], &[]),
            ("both inactive", &[(One, Inactive), (Two, Inactive)], &[]),
            ("one active", &[(One, Inactive), (Two, Active)], &[Two]),
            ("both active", &[(One, Active), (Two, Active)], &[One, Two]),
        ];
        for (name, keys, failing) in cases {
            let findings = run(ROOT_USER_NAME, keys);
            let slots: Vec<KeySlot> = findings.iter().map(|f| f.key.as_ref().unwrap().slot).collect();
            assert_eq!(&slots, failing, "{name}");
            assert!(findings.iter().all(|f| f.verdict == Verdict::Fail && f.rule.severity == Severity::Critical));
        }
        assert!(run("alice", &[(One, Active)]).is_empty(), "IAM users are other rules' business");
    }

    #[test]
    fn the_message_says_what_to_do() {
        let f = run(ROOT_USER_NAME, &[(KeySlot::One, KeyStatus::Active)]);
        assert_eq!(
            f[0].message,
            "the root user of account 012345678901 has an active access key in slot 1 (last rotated 1 days ago, never \
             used); delete it"
        );
    }
}
