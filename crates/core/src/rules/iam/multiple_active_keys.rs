//! KA-IAM-003 `multiple-active-keys`: an IAM user has at most one active access key (CIS AWS Foundations
//! "Ensure there is only one active access key available for any single IAM user").

use jiff::SignedDuration;

use crate::finding::{ActiveKey, EvalContext, Evidence, Finding, KeyFacts, Verdict, whole_days};
use crate::ids::AccountId;
use crate::inventory::AccountInventory;
use crate::rules::meta::{CisRef, RuleMeta, Severity};
use crate::rules::rule::Rule;

static META: RuleMeta = RuleMeta {
    id: "KA-IAM-003",
    name: "multiple-active-keys",
    title: "IAM users have at most one active access key",
    description: "A user with two active access keys fails, one user-level finding per user; a newer key younger \
                  than 7 days is reported as a rotation under way.",
    severity: Severity::Medium,
    cis: &[
        CisRef { version: "1.4.0", control: "1.13" },
        CisRef { version: "1.5.0", control: "1.13" },
        CisRef { version: "2.0.0", control: "1.13" },
        CisRef { version: "3.0.0", control: "1.13" },
        CisRef { version: "4.0.1", control: "1.13" },
        CisRef { version: "5.0.0", control: "1.12" },
        CisRef { version: "6.0.0", control: "2.12" },
    ],
    security_hub: &[],
    aws_config: &[],
    remediation: "Keep the key applications use (aws iam get-access-key-last-used), move anything still on the \
                  other key to it, then deactivate the other key (aws iam update-access-key --status Inactive) and \
                  delete it once nothing broke.",
    reference_url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html",
    docs: include_str!("multiple_active_keys.md"),
};

/// A newer key younger than this suggests a rotation under way (CIS's procedure creates the second key first).
const ROTATION_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);

/// The rule (no settings).
#[derive(Debug, Clone, Copy, Default)]
pub struct MultipleActiveKeys;

impl Rule for MultipleActiveKeys {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn evaluate(&self, ctx: &EvalContext, account_id: &AccountId, inv: &AccountInventory) -> Vec<Finding> {
        inv.users
            .iter()
            .filter(|u| !u.is_root() && !u.keys.is_empty())
            .map(|user| {
                let mut active: Vec<KeyFacts> =
                    user.keys.iter().map(|k| KeyFacts::of(user, k, ctx.as_of)).filter(KeyFacts::is_active).collect();
                active.sort_by_key(|k| (k.last_rotated, k.slot));
                let newest_age = active.last().map_or(SignedDuration::MAX, |k| k.age);
                let rotation_under_way = active.len() > 1 && newest_age < ROTATION_WINDOW;
                let (verdict, message) = match &active[..] {
                    [old, new, ..] => {
                        let mut m = format!(
                            "{} has {} active access keys (slot {} last rotated {} days ago, slot {} {} days ago)",
                            user.user_name,
                            active.len(),
                            old.slot.number(),
                            old.age_days(),
                            new.slot.number(),
                            new.age_days()
                        );
                        if rotation_under_way {
                            m.push_str(&format!(
                                "; the newer key is {} days old, so a rotation is probably under way: deactivate the \
                                 old key (slot {}) once applications have moved to the new one",
                                whole_days(newest_age),
                                old.slot.number()
                            ));
                        } else {
                            m.push_str("; keep the one applications use and deactivate the other");
                        }
                        (Verdict::Fail, m)
                    }
                    [_] => (Verdict::Pass, format!("{} has one active access key", user.user_name)),
                    [] => (Verdict::Pass, format!("{} has no active access key", user.user_name)),
                };
                let keys = active
                    .iter()
                    .map(|k| ActiveKey {
                        slot: k.slot,
                        access_key_id: k.access_key_id.clone(),
                        last_rotated: k.last_rotated,
                    })
                    .collect();
                let evidence = Evidence::ActiveKeys { keys, rotation_under_way };
                Finding::new(&META, account_id, user, None, evidence, verdict, message)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::finding::RuleConfig;
    use crate::inventory::{CredentialUser, KeyChange, KeySlot, KeySlotRecord, KeyStatus, ROOT_USER_NAME};

    fn as_of() -> Timestamp {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn key(slot: KeySlot, status: KeyStatus, age_hours: i64) -> KeySlotRecord {
        KeySlotRecord::new(slot, status, as_of() - SignedDuration::from_hours(age_hours))
    }

    fn run(user: &str, keys: Vec<KeySlotRecord>) -> Vec<Finding> {
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: user.into(),
                arn: format!("arn:aws:iam::012345678901:user/{user}"),
                keys,
                owner: None,
            }],
        };
        let ctx = EvalContext { as_of: as_of(), config: RuleConfig::default() };
        MultipleActiveKeys.evaluate(&ctx, &AccountId::parse("012345678901").unwrap(), &inv)
    }

    #[test]
    fn two_active_keys_fail_once_per_user_and_anything_less_passes() {
        use KeySlot::{One, Two};
        use KeyStatus::{Active, Inactive};
        let cases: Vec<(&str, Vec<KeySlotRecord>, Option<Verdict>)> = vec![
            ("no keys", vec![], None),
            ("one active", vec![key(One, Active, 2400)], Some(Verdict::Pass)),
            ("one active, one inactive", vec![key(One, Inactive, 4800), key(Two, Active, 24)], Some(Verdict::Pass)),
            ("both inactive", vec![key(One, Inactive, 4800), key(Two, Inactive, 24)], Some(Verdict::Pass)),
            ("two active", vec![key(One, Active, 4800), key(Two, Active, 2400)], Some(Verdict::Fail)),
        ];
        for (name, keys, expected) in cases {
            let findings = run("alice", keys);
            assert_eq!(
                findings.iter().map(|f| f.verdict).collect::<Vec<_>>(),
                expected.into_iter().collect::<Vec<_>>(),
                "{name}"
            );
            assert!(findings.iter().all(|f| f.key.is_none()), "{name}: a user-level finding has no key slot");
        }
    }

    #[test]
    fn a_key_deactivated_or_deleted_since_the_report_does_not_count_as_active() {
        for change in [KeyChange::Deactivated, KeyChange::Deleted] {
            let second = KeySlotRecord { change: Some(change), ..key(KeySlot::Two, KeyStatus::Active, 24) };
            let f = run("alice", vec![key(KeySlot::One, KeyStatus::Active, 4800), second]);
            assert_eq!(f[0].verdict, Verdict::Pass, "{change:?}");
        }
    }

    #[test]
    fn a_new_second_key_reads_as_a_rotation_under_way() {
        let rotating = run(
            "alice",
            vec![key(KeySlot::One, KeyStatus::Active, 200 * 24), key(KeySlot::Two, KeyStatus::Active, 6 * 24 + 23)],
        );
        assert_eq!(rotating[0].verdict, Verdict::Fail);
        assert_eq!(
            rotating[0].message,
            "alice has 2 active access keys (slot 1 last rotated 200 days ago, slot 2 6 days ago); the newer key is 6 \
             days old, so a rotation is probably under way: deactivate the old key (slot 1) once applications have \
             moved to the new one"
        );
        let Evidence::ActiveKeys { keys, rotation_under_way } = &rotating[0].evidence else { unreachable!() };
        assert!(*rotation_under_way);
        assert_eq!(keys.iter().map(|k| k.slot).collect::<Vec<_>>(), [KeySlot::One, KeySlot::Two]);
        let settled = run(
            "bob",
            vec![key(KeySlot::One, KeyStatus::Active, 200 * 24), key(KeySlot::Two, KeyStatus::Active, 7 * 24)],
        );
        assert_eq!(
            settled[0].message,
            "bob has 2 active access keys (slot 1 last rotated 200 days ago, slot 2 7 days ago); keep the one \
             applications use and deactivate the other"
        );
    }

    #[test]
    fn the_root_user_is_left_to_ka_iam_002() {
        let f = run(
            ROOT_USER_NAME,
            vec![key(KeySlot::One, KeyStatus::Active, 24), key(KeySlot::Two, KeyStatus::Active, 24)],
        );
        assert!(f.is_empty());
    }
}
