//! The fixed report every writer's snapshot test renders: one scanned account with every verdict and rule,
//! one failed and one skipped account.

use jiff::{SignedDuration, Timestamp};
use keyaudit_core::baseline::annotate;
use keyaudit_core::baseline::{Baseline, Snapshot, SnapshotFinding};
use keyaudit_core::eval::Verdict;
use keyaudit_core::eval::{EvalContext, RuleConfig, evaluate};
use keyaudit_core::ids::{AccessKeyId, AccountId, Partition};
use keyaudit_core::inventory::{AccountInventory, CredentialUser, KeyChange, KeySlot, KeySlotRecord, KeyStatus};
use keyaudit_core::report::{
    AccessMethod, Account, AccountRecord, AccountState, AccountStats, AccountStatus, ClockCheck, Enrichment,
    FailureCode, FailureReason, KeyTally, Origin, Report, RunInfo, Scope, SkipReason,
};
use keyaudit_core::rules::{RuleSet, builtin};
use keyaudit_core::suppress::{Selector, Suppression, Suppressions, UserArnGlob};

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn account(id: &str, name: &str, ou: &str, state: AccountState) -> Account {
    Account {
        id: AccountId::parse(id).unwrap(),
        name: Some(name.into()),
        ou_path: Some(ou.into()),
        state,
        access: AccessMethod::AssumeRole { role_arn: format!("arn:aws:iam::{id}:role/OrganizationAccountAccessRole") },
    }
}

fn key(slot: KeySlot, status: KeyStatus, days: i64, id: Option<&str>) -> KeySlotRecord {
    KeySlotRecord {
        last_used_at: Some(ts("2026-11-27T08:00:00Z")),
        last_used_service: Some("s3".into()),
        last_used_region: Some("eu-west-1".into()),
        access_key_id: id.map(|i| AccessKeyId::parse(i).unwrap()),
        ..KeySlotRecord::new(slot, status, ts("2026-11-28T12:00:00Z") - SignedDuration::from_hours(24 * days))
    }
}

/// A fixed report covering every status and verdict, with every rule.
pub fn report() -> Report {
    fixture(builtin(), true)
}

/// The fixed report with `rules`; `new_rule_cases` adds the users that only the rules after KA-IAM-001 were
/// written for (a root key, a key never used), so that without them the fixture is the one-rule fixture.
pub fn fixture(rules: RuleSet, new_rule_cases: bool) -> Report {
    let ctx = EvalContext { as_of: ts("2026-11-28T12:00:00Z"), config: RuleConfig::default() };
    let payments = account("000000000002", "payments", "/Root/Prod/Payments", AccountState::Active);
    let mut inv = AccountInventory {
        report_generated_at: Some(ts("2026-11-28T11:00:00Z")),
        users: vec![
            CredentialUser {
                user_name: "ci,deployer".into(),
                arn: "arn:aws:iam::000000000002:user/ci,deployer".into(),
                keys: vec![
                    key(KeySlot::One, KeyStatus::Active, 181, Some("AKIA0000000000000001")),
                    key(KeySlot::Two, KeyStatus::Inactive, 400, Some("AKIA0000000000000002")),
                ],
                owner: None,
            },
            CredentialUser {
                user_name: "app".into(),
                arn: "arn:aws:iam::000000000002:user/app".into(),
                keys: vec![
                    key(KeySlot::One, KeyStatus::Active, 80, None),
                    key(KeySlot::Two, KeyStatus::Active, 3, None),
                ],
                owner: None,
            },
            // Fixed after the cached report was generated: key 1 deactivated, key 2 deleted.
            CredentialUser {
                user_name: "rotated".into(),
                arn: "arn:aws:iam::000000000002:user/rotated".into(),
                keys: vec![
                    KeySlotRecord {
                        change: Some(KeyChange::Deactivated),
                        ..key(KeySlot::One, KeyStatus::Active, 200, Some("AKIA0000000000000003"))
                    },
                    KeySlotRecord {
                        change: Some(KeyChange::Deleted),
                        ..key(KeySlot::Two, KeyStatus::Active, 150, None)
                    },
                ],
                owner: None,
            },
        ],
    };
    if new_rule_cases {
        inv.users[0].owner =
            Some(keyaudit_core::inventory::Owner { value: "payments-team".into(), tag: "team".into() });
        inv.users.push(CredentialUser {
            user_name: "<root_account>".into(),
            arn: "arn:aws:iam::000000000002:root".into(),
            keys: vec![key(KeySlot::One, KeyStatus::Active, 700, None)],
            owner: None,
        });
        inv.users.push(CredentialUser {
            user_name: "idle".into(),
            arn: "arn:aws:iam::000000000002:user/idle".into(),
            keys: vec![KeySlotRecord {
                last_used_at: None,
                ..key(KeySlot::One, KeyStatus::Active, 50, Some("AKIA0000000000000004"))
            }],
            owner: None,
        });
    }
    let findings = evaluate(&rules, &ctx, &payments.id, &inv);
    let stats = AccountStats {
        api_calls: 4,
        enrichment_calls: 1,
        tag_calls: 0,
        report_retries: 0,
        sdk_retries: 0,
        duration_ms: 120,
    };
    let mut report = Report {
        run: RunInfo {
            as_of: ctx.as_of,
            started_at: ts("2026-11-28T12:00:01Z"),
            finished_at: ts("2026-11-28T12:00:03Z"),
            config: ctx.config,
            scope: Scope::Organization {
                id: "o-example".into(),
                management_account_id: AccountId::parse("000000000001").unwrap(),
            },
            origin: Some(Origin {
                caller_arn: "arn:aws:iam::000000000001:user/auditor".into(),
                caller_account_id: AccountId::parse("000000000001").unwrap(),
                region: "us-east-1".into(),
            }),
            partition: Partition::aws(),
            accounts_discovered: 4,
            discovery_complete: true,
            clock: Some(ClockCheck { local: ts("2026-11-28T12:00:01Z"), aws: ts("2026-11-28T11:58:00Z") }),
        },
        rules: rules.metas(),
        accounts: vec![
            AccountRecord {
                account: payments,
                status: AccountStatus::Scanned {
                    report_generated_at: inv.report_generated_at,
                    keys: KeyTally::of(&inv),
                    // One owner look-up cut short by --enrichment-timeout.
                    enrichment: Enrichment { wanted: 3, done: 2 },
                },
                stats,
            },
            AccountRecord {
                account: account("000000000003", "forensics", "/Root/Security", AccountState::Active),
                status: AccountStatus::Failed(FailureReason {
                    code: FailureCode::AssumeRoleDenied,
                    action: Some("sts:AssumeRole".into()),
                    aws_error_code: Some("AccessDenied".into()),
                    message: "not authorized".into(),
                }),
                stats: AccountStats { api_calls: 1, ..AccountStats::default() },
            },
            AccountRecord {
                account: account("000000000004", "old", "/Root", AccountState::Suspended),
                status: AccountStatus::Skipped(SkipReason::NotActive(AccountState::Suspended)),
                stats: AccountStats::default(),
            },
        ],
        findings,
        suppressions: None,
        comparison: None,
    };
    report.normalize();
    if new_rule_cases {
        exceptions_and_baseline(&mut report);
    }
    report
}

/// Issue "Scheduled runs": an exception on idle's unused key (ending within 14 days), an expired one on
/// ci,deployer, and a baseline in which app's older key still passed and a since-deleted user had a failing key.
fn exceptions_and_baseline(report: &mut Report) {
    let entry = |label: &str, selector: Selector, expires: &str| Suppression {
        label: label.into(),
        line: 1,
        selector,
        reason: "Vendor batch job; the vendor rotates with the contract".into(),
        owner: "alice@example.com".into(),
        expires: expires.parse().unwrap(),
        allow_long: false,
    };
    let suppressions = Suppressions {
        entries: vec![
            entry(
                "idle-vendor",
                Selector {
                    user_arn: Some(UserArnGlob::parse("arn:aws:iam::*:user/idle").unwrap()),
                    rules: Some(vec!["KA-IAM-004"]),
                    ..Selector::default()
                },
                "2026-12-05",
            ),
            entry(
                "old-exception",
                Selector { account_id: Some(AccountId::parse("000000000002").unwrap()), ..Selector::default() },
                "2026-11-01",
            ),
        ],
    };
    let mut before = Snapshot::of(report);
    before.as_of = ts("2026-11-21T12:00:00Z");
    for f in &mut before.findings {
        if f.user_name == "app" && f.rule_id == "KA-IAM-001" && f.key_slot == Some(1) {
            f.verdict = Verdict::Pass;
        }
    }
    before.findings.push(SnapshotFinding {
        fingerprint: "0".repeat(64),
        rule_id: "KA-IAM-001".into(),
        account_id: AccountId::parse("000000000002").unwrap(),
        user_name: "departed".into(),
        user_arn: "arn:aws:iam::000000000002:user/departed".into(),
        key_slot: Some(1),
        access_key_id: Some("AKIA0000000000000009".into()),
        verdict: Verdict::Fail,
        message: "access key 1 of departed was last rotated 120 days ago".into(),
        suppressed: false,
        first_seen: None,
    });
    let baseline = Baseline::new(before);
    let account = report.accounts[0].account.clone();
    let (partition, as_of) = (report.run.partition.clone(), report.run.as_of);
    annotate(&mut report.findings, &account, &partition, as_of, Some(&suppressions), Some(&baseline));
    let accounts: Vec<Account> = report.accounts.iter().map(|r| r.account.clone()).collect();
    report.suppressions = Some(suppressions.statuses(
        report.findings.iter().map(|f| (f, f.fingerprint(&partition), accounts.iter().find(|a| a.id == f.account_id))),
        as_of,
        false,
    ));
    report.comparison = Some(baseline.compare(&Snapshot::of(report)));
}
