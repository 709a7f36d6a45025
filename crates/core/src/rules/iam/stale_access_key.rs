//! KA-IAM-001 `stale-access-key`: active access keys must be rotated within the maximum age (90 days by
//! default, CIS AWS Foundations "access keys are rotated every 90 days or less").

use jiff::Timestamp;

use crate::finding::{AgeSource, EvalContext, Evidence, Finding, KeyFacts, Verdict};
use crate::ids::AccountId;
use crate::inventory::{AccountInventory, CredentialUser, KeyChange, KeySlotRecord, KeyStatus};
use crate::rules::iam::changed_since_report;
use crate::rules::meta::{CisRef, RuleMeta, Severity};
use crate::rules::rule::Rule;

static META: RuleMeta = RuleMeta {
    id: "KA-IAM-001",
    name: "stale-access-key",
    title: "Active IAM access keys are rotated within the maximum key age (90 days by default)",
    description: "An active access key fails when its last rotation is older than the maximum key age; inactive keys \
                  are not evaluated.",
    severity: Severity::Medium,
    cis: &[
        CisRef { version: "1.2.0", control: "1.4" },
        CisRef { version: "1.3.0", control: "1.14" },
        CisRef { version: "1.4.0", control: "1.14" },
        CisRef { version: "1.5.0", control: "1.14" },
        CisRef { version: "2.0.0", control: "1.14" },
        CisRef { version: "3.0.0", control: "1.14" },
        CisRef { version: "4.0.0", control: "1.14" },
        CisRef { version: "4.0.1", control: "1.14" },
        CisRef { version: "5.0.0", control: "1.13" },
        CisRef { version: "6.0.0", control: "2.13" },
        CisRef { version: "7.0.0", control: "2.12" },
    ],
    security_hub: &["IAM.3"],
    aws_config: &["access-keys-rotated"],
    remediation: "Create a second access key while the old one is still active (aws iam create-access-key), move \
                  every application to the new key, confirm the old key is no longer used (aws iam \
                  get-access-key-last-used), deactivate it (aws iam update-access-key --status Inactive), confirm \
                  nothing broke, then delete it (aws iam delete-access-key).",
    reference_url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html#rotating_access_keys_console",
    docs: include_str!("stale_access_key.md"),
};

/// The rule; its settings come from [`EvalContext::config`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StaleAccessKey;

impl Rule for StaleAccessKey {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn evaluate(&self, ctx: &EvalContext, account_id: &AccountId, inv: &AccountInventory) -> Vec<Finding> {
        inv.users
            .iter()
            .flat_map(|user| user.keys.iter().map(move |key| (user, key)))
            .map(|(user, key)| evaluate_key(ctx, account_id, inv.report_generated_at, user, key))
            .collect()
    }
}

fn evaluate_key(
    ctx: &EvalContext,
    account_id: &AccountId,
    generated_at: Option<Timestamp>,
    user: &CredentialUser,
    slot: &KeySlotRecord,
) -> Finding {
    let cfg = ctx.config;
    let key = KeyFacts::of(user, slot, ctx.as_of);
    // Saturate on absurd inputs instead of failing: a year-9999 due date is still correct for the verdict.
    let due_at = key.age_since().checked_add(cfg.max_age()).unwrap_or(Timestamp::MAX);
    let verdict = match key.status {
        _ if key.change == Some(KeyChange::Deleted) => Verdict::Resolved,
        KeyStatus::Inactive => Verdict::NotApplicable,
        KeyStatus::Active if key.age > cfg.max_age() => Verdict::Fail,
        KeyStatus::Active if key.age > cfg.warn_after() => Verdict::Warn,
        KeyStatus::Active => Verdict::Pass,
    };
    let who = format!("access key {} of {}", key.slot.number(), user.user_name);
    let message = message(&who, &key, verdict, due_at, cfg.max_age_days(), generated_at);
    let evidence = Evidence::Rotation { due_at, max_age_days: cfg.max_age_days() };
    Finding::new(&META, account_id, user, Some(key), evidence, verdict, message)
}

fn message(
    who: &str,
    key: &KeyFacts,
    verdict: Verdict,
    due_at: Timestamp,
    max_age_days: u32,
    generated_at: Option<Timestamp>,
) -> String {
    let days = key.age_days();
    let due = due_at.strftime("%Y-%m-%d");
    if let Some(change) = changed_since_report(who, key, generated_at) {
        return change;
    }
    let aged = match key.age_source {
        AgeSource::CreateDate => format!(
            "{who} was re-activated on {}, not rotated: the secret dates from {} ({days} days ago)",
            key.last_rotated.strftime("%Y-%m-%d"),
            key.age_since().strftime("%Y-%m-%d")
        ),
        AgeSource::LastRotated => format!("{who} was last rotated {days} days ago"),
    };
    match verdict {
        Verdict::Fail => format!("{aged}; the maximum is {max_age_days} days (overdue since {due})"),
        Verdict::Warn => format!("{aged}; rotate it before {due} (maximum {max_age_days} days)"),
        Verdict::Pass => format!("{aged}; due for rotation by {due}"),
        Verdict::NotApplicable | Verdict::Resolved => format!("{who} is inactive; the control covers active keys only"),
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::finding::RuleConfig;
    use crate::inventory::KeySlot;

    const AS_OF: &str = "2026-11-28T12:00:00Z";
    const DAY: i64 = 86_400;

    fn as_of() -> Timestamp {
        AS_OF.parse().unwrap()
    }

    fn eval_with(config: RuleConfig, age: SignedDuration, status: KeyStatus) -> Finding {
        let ctx = EvalContext { as_of: as_of(), config };
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: "alice".into(),
                arn: "arn:aws:iam::012345678901:user/alice".into(),
                keys: vec![KeySlotRecord::new(KeySlot::One, status, as_of() - age)],
                owner: None,
            }],
        };
        let account = AccountId::parse("012345678901").unwrap();
        let mut findings = StaleAccessKey.evaluate(&ctx, &account, &inv);
        assert_eq!(findings.len(), 1);
        findings.remove(0)
    }

    fn eval_key(age: SignedDuration, status: KeyStatus) -> Finding {
        eval_with(RuleConfig::default(), age, status)
    }

    #[test]
    fn verdicts_at_every_boundary() {
        let secs = |s: i64| SignedDuration::from_secs(s);
        let cases: &[(&str, SignedDuration, KeyStatus, Verdict, i64)] = &[
            ("brand new", secs(0), KeyStatus::Active, Verdict::Pass, 0),
            ("newer than as_of", secs(-3600), KeyStatus::Active, Verdict::Pass, -1),
            ("exactly 76 days is the last pass", secs(76 * DAY), KeyStatus::Active, Verdict::Pass, 76),
            ("one second into the warn window", secs(76 * DAY + 1), KeyStatus::Active, Verdict::Warn, 76),
            ("exactly 90 days passes (CIS: less than or equal)", secs(90 * DAY), KeyStatus::Active, Verdict::Warn, 90),
            ("one second over 90 days fails", secs(90 * DAY + 1), KeyStatus::Active, Verdict::Fail, 90),
            ("a year old", secs(365 * DAY), KeyStatus::Active, Verdict::Fail, 365),
            ("inactive and ancient", secs(900 * DAY), KeyStatus::Inactive, Verdict::NotApplicable, 900),
            ("inactive and new", secs(DAY), KeyStatus::Inactive, Verdict::NotApplicable, 1),
        ];
        for (name, age, status, verdict, days) in cases {
            let f = eval_key(*age, *status);
            assert_eq!(f.verdict, *verdict, "{name}");
            assert_eq!(f.key.as_ref().unwrap().age_days(), *days, "{name}");
            assert_eq!(f.key.as_ref().unwrap().age, *age, "{name}");
        }
    }

    #[test]
    fn exactly_90_days_is_compliant_and_due_now() {
        let f = eval_key(SignedDuration::from_secs(90 * DAY), KeyStatus::Active);
        assert_ne!(f.verdict, Verdict::Fail);
        assert_eq!(f.due_at(), Some(as_of()));
    }

    #[test]
    fn a_custom_threshold_moves_every_boundary() {
        let cfg = RuleConfig::new(365, 30, 45).unwrap();
        let at = |d: i64, s: i64| eval_with(cfg, SignedDuration::from_secs(d * DAY + s), KeyStatus::Active).verdict;
        assert_eq!(at(335, 0), Verdict::Pass);
        assert_eq!(at(335, 1), Verdict::Warn);
        assert_eq!(at(365, 0), Verdict::Warn);
        assert_eq!(at(365, 1), Verdict::Fail);
        let no_warn = RuleConfig::new(90, 0, 45).unwrap();
        assert_eq!(eval_with(no_warn, SignedDuration::from_secs(90 * DAY), KeyStatus::Active).verdict, Verdict::Pass);
    }

    #[test]
    fn messages_name_the_key_and_the_deadline() {
        let f = eval_key(SignedDuration::from_secs(120 * DAY), KeyStatus::Active);
        assert_eq!(
            f.message,
            "access key 1 of alice was last rotated 120 days ago; the maximum is 90 days (overdue since 2026-10-29)"
        );
        let f = eval_key(SignedDuration::from_secs(DAY), KeyStatus::Inactive);
        assert_eq!(f.message, "access key 1 of alice is inactive; the control covers active keys only");
    }

    #[test]
    fn keys_fixed_since_the_cached_report_follow_the_fresher_evidence() {
        let ctx = EvalContext { as_of: as_of(), config: RuleConfig::default() };
        let generated: Timestamp = "2026-11-28T10:00:00Z".parse().unwrap();
        let stale = as_of() - SignedDuration::from_secs(200 * DAY);
        let key = |change| KeySlotRecord { change, ..KeySlotRecord::new(KeySlot::One, KeyStatus::Active, stale) };
        let inv = AccountInventory {
            report_generated_at: Some(generated),
            users: vec![CredentialUser {
                user_name: "alice".into(),
                arn: "arn:aws:iam::012345678901:user/alice".into(),
                keys: vec![key(Some(KeyChange::Deleted)), key(Some(KeyChange::Deactivated)), key(None)],
                owner: None,
            }],
        };
        let f = StaleAccessKey.evaluate(&ctx, &AccountId::parse("012345678901").unwrap(), &inv);
        let got: Vec<_> =
            f.iter().map(|f| (f.verdict, f.key.as_ref().unwrap().status, f.key.as_ref().unwrap().change)).collect();
        assert_eq!(
            got,
            [
                (Verdict::Resolved, KeyStatus::Active, Some(KeyChange::Deleted)),
                (Verdict::NotApplicable, KeyStatus::Inactive, Some(KeyChange::Deactivated)),
                (Verdict::Fail, KeyStatus::Active, None),
            ]
        );
        assert_eq!(
            f[0].message,
            "access key 1 of alice (last rotated 200 days ago) was deleted after the credential report of \
             2026-11-28T10:00:00Z was generated: ListAccessKeys no longer lists it"
        );
        assert_eq!(
            f[1].message,
            "access key 1 of alice (last rotated 200 days ago) was deactivated after the credential report of \
             2026-11-28T10:00:00Z was generated; the control covers active keys only"
        );
    }

    #[test]
    fn a_reactivated_key_is_as_old_as_its_secret() {
        // Created 200 days ago, re-activated 10 days ago: the report says 10 days, the secret is 200 days old.
        let ctx = EvalContext { as_of: as_of(), config: RuleConfig::default() };
        let created = as_of() - SignedDuration::from_secs(200 * DAY);
        let key = |created_at| KeySlotRecord {
            created_at: Some(created_at),
            ..KeySlotRecord::new(KeySlot::One, KeyStatus::Active, as_of() - SignedDuration::from_secs(10 * DAY))
        };
        let inv = |k| AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: "alice".into(),
                arn: "arn:aws:iam::012345678901:user/alice".into(),
                keys: vec![k],
                owner: None,
            }],
        };
        let account = AccountId::parse("012345678901").unwrap();
        let f = StaleAccessKey.evaluate(&ctx, &account, &inv(key(created))).remove(0);
        assert_eq!(f.verdict, Verdict::Fail);
        assert_eq!(f.key.as_ref().unwrap().age_source, AgeSource::CreateDate);
        assert_eq!(f.key.as_ref().unwrap().age_days(), 200);
        assert_eq!(
            f.message,
            "access key 1 of alice was re-activated on 2026-11-18, not rotated: the secret dates from 2026-05-12 (200 \
             days ago); the maximum is 90 days (overdue since 2026-08-10)"
        );
        // CreateDate within the hour of last_rotated: an ordinary creation, measured from last_rotated.
        let near = as_of() - SignedDuration::from_secs(10 * DAY) - SignedDuration::from_secs(3599);
        let f = StaleAccessKey.evaluate(&ctx, &account, &inv(key(near))).remove(0);
        assert_eq!((f.verdict, f.key.as_ref().unwrap().age_source), (Verdict::Pass, AgeSource::LastRotated));
    }

    #[test]
    fn invalid_settings_are_rejected() {
        assert!(RuleConfig::new(0, 0, 45).is_err());
        assert!(RuleConfig::new(36_501, 0, 45).is_err());
        assert!(RuleConfig::new(90, 0, 0).is_err());
        assert_eq!(
            RuleConfig::default().with_dormant_days(0).unwrap_err().to_string(),
            "--dormant-days: expected a whole number of days from 1 to 36500, got 0"
        );
        assert_eq!(RuleConfig::default().with_dormant_days(30).unwrap().dormant_days(), 30);
        assert_eq!(
            RuleConfig::new(90, 100, 45).unwrap_err().to_string(),
            "--warn-days: expected fewer days than --max-age-days (90), got 100"
        );
        assert_eq!(
            RuleConfig::new(90, 90, 45).unwrap_err().to_string(),
            "--warn-days: expected fewer days than --max-age-days (90), got 90"
        );
    }

    #[test]
    fn root_keys_are_evaluated_like_any_other() {
        let ctx = EvalContext { as_of: as_of(), config: RuleConfig::default() };
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: crate::inventory::ROOT_USER_NAME.into(),
                arn: "arn:aws:iam::012345678901:root".into(),
                keys: vec![KeySlotRecord::new(
                    KeySlot::Two,
                    KeyStatus::Active,
                    as_of() - SignedDuration::from_secs(200 * DAY),
                )],
                owner: None,
            }],
        };
        let findings = StaleAccessKey.evaluate(&ctx, &AccountId::parse("012345678901").unwrap(), &inv);
        assert_eq!(findings[0].verdict, Verdict::Fail);
        assert!(findings[0].is_root());
        assert_eq!(findings[0].key.as_ref().unwrap().slot, KeySlot::Two);
    }
}
