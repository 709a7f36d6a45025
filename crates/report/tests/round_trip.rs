//! Round trip of the JSON report: arbitrary reports (every status, verdict and scope, merged reports, baselines,
//! exceptions, absent optional fields, hostile text) are written, read back into an equal model, and written again
//! byte for byte the same.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use keyaudit_core::baseline::{
    AccountChange, BaselineState, ChangeCounts, Comparison, Coverage, ResolvedFinding, SnapshotAccount,
    SnapshotFinding, thresholds,
};
use keyaudit_core::eval::{ActiveKey, AgeSource, Evidence, Finding, GraceDays, KeyFacts, RuleConfig, Verdict};
use keyaudit_core::ids::{AccessKeyId, AccountId, Partition};
use keyaudit_core::inventory::{KeyChange, KeySlot, KeyStatus, Owner};
use keyaudit_core::report::{
    AccessMethod, Account, AccountRecord, AccountState, AccountStats, AccountStatus, ClockCheck, Enrichment,
    FailureCode, FailureReason, KeyTally, Origin, Part, Report, RunInfo, Scope, SkipReason,
};
use keyaudit_core::rules::{RuleMeta, builtin};
use keyaudit_core::suppress::{AppliedSuppression, EntryState, EntryStatus, Selector, Suppression, UserArnGlob};
use keyaudit_core::triage::{Action, Triage, Usage};
use proptest::prelude::*;
use proptest::sample::select;

const VERDICTS: [Verdict; 5] = [Verdict::Fail, Verdict::Warn, Verdict::Pass, Verdict::NotApplicable, Verdict::Resolved];

/// Text that others control: plain, or any Unicode (quotes, control characters, escapes).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-z][a-z0-9-]{0,10}", 1 => "\\PC{0,12}", 1 => any::<String>().prop_map(|s| s.chars().take(16).collect())]
}

fn time() -> impl Strategy<Value = Timestamp> {
    (1_500_000_000i64..1_900_000_000, prop_oneof![Just(0i32), 0i32..1_000_000_000])
        .prop_map(|(s, ns)| Timestamp::new(s, ns).unwrap())
}

fn day() -> impl Strategy<Value = jiff::civil::Date> {
    (2026i16..2029, 1i8..13, 1i8..29).prop_map(|(y, m, d)| jiff::civil::date(y, m, d))
}

fn key_id() -> impl Strategy<Value = AccessKeyId> {
    "AKIA[A-Z0-9]{16}".prop_map(|s| AccessKeyId::parse(&s).unwrap())
}

/// A key: slot, id, change since the report (0 none, 1 deactivated, 2 deleted), last rotated, created, last used,
/// age in seconds, re-activated, shares its rotation second with the other slot.
type KeySpec = (KeySlot, Option<AccessKeyId>, u8, Timestamp, Option<Timestamp>, Option<Timestamp>, i64, bool, bool);
/// An exception's label, state, matches, reason, owner, end, allow_long and which selector field it uses.
type ExceptionSpec = (String, EntryState, usize, String, String, jiff::civil::Date, bool, u8);
/// A resolved finding's verdict then and now, whether it was suppressed, and its message.
type ResolvedSpec = (Verdict, Option<Verdict>, bool, String);
/// The baseline's as_of, accounts whose coverage changed, resolved findings, counts, thresholds changed.
type BaselineSpec = (Timestamp, Vec<usize>, Vec<ResolvedSpec>, ChangeCounts, Vec<u8>);

/// Everything about one finding but its account, rule and run.
#[derive(Debug, Clone)]
struct FindingSpec {
    user: String,
    root: bool,
    key: Option<KeySpec>,
    evidence: u8,
    verdict: Verdict,
    message: String,
    usage: Option<Usage>,
    action: Action,
    action_reason: Option<String>,
    owner: Option<(String, String)>,
    suppression: Option<(String, String, String, jiff::civil::Date)>,
    baseline: Option<u8>,
    was: Verdict,
    service: Option<String>,
    first_seen: Option<Timestamp>,
}

fn finding_spec() -> impl Strategy<Value = FindingSpec> {
    let key = (
        select(vec![KeySlot::One, KeySlot::Two]),
        proptest::option::of(key_id()),
        0u8..3,
        time(),
        proptest::option::of(time()),
        proptest::option::of(time()),
        -1_000_000i64..100_000_000,
        any::<bool>(),
        any::<bool>(),
    );
    (
        (text(), any::<bool>(), proptest::option::of(key), 0u8..4, select(VERDICTS.to_vec()), text()),
        (
            proptest::option::of(select(vec![Usage::NeverUsed, Usage::Dormant, Usage::InUse, Usage::Unknown])),
            select(Action::ALL.to_vec()),
            proptest::option::of(text()),
            proptest::option::of((text(), text())),
            proptest::option::of((text(), text(), text(), day())),
            proptest::option::of(0u8..3),
            select(VERDICTS.to_vec()),
            proptest::option::of(text()),
            proptest::option::of(time()),
        ),
    )
        .prop_map(
            |(
                (user, root, key, evidence, verdict, message),
                (usage, action, action_reason, owner, suppression, baseline, was, service, first_seen),
            )| FindingSpec {
                user,
                root,
                key,
                evidence,
                verdict,
                message,
                usage,
                action,
                action_reason,
                owner,
                suppression,
                baseline,
                was,
                service,
                first_seen,
            },
        )
}

#[derive(Debug, Clone)]
struct AccountSpec {
    name: Option<String>,
    ou: Option<Vec<String>>,
    status: u8,
    state: u8,
    code: FailureCode,
    action: Option<String>,
    aws_code: Option<String>,
    message: String,
    generated: Option<Timestamp>,
    keys: (usize, usize),
    enrichment: (u32, u32),
    stats: (u32, u32, u32, u32, u32, u64),
    assumed: bool,
    findings: Vec<FindingSpec>,
}

fn account_spec() -> impl Strategy<Value = AccountSpec> {
    (
        (
            proptest::option::of(text()),
            proptest::option::of(proptest::collection::vec(text(), 0..3)),
            0u8..3,
            0u8..3,
            select(FailureCode::ALL.to_vec()),
            proptest::option::of("[a-z]{3}:[A-Za-z]{4,12}"),
            proptest::option::of("[A-Za-z]{4,12}"),
        ),
        (
            text(),
            proptest::option::of(time()),
            (0usize..50, 0usize..50),
            (0u32..5, 0u32..5),
            (any::<u32>(), 0u32..9, 0u32..9, 0u32..9, 0u32..9, any::<u64>()),
            any::<bool>(),
            proptest::collection::vec(finding_spec(), 0..5),
        ),
    )
        .prop_map(
            |(
                (name, ou, status, state, code, action, aws_code),
                (message, generated, keys, enrichment, stats, assumed, findings),
            )| AccountSpec {
                name,
                ou,
                status,
                state,
                code,
                action,
                aws_code,
                message,
                generated,
                keys,
                enrichment,
                stats,
                assumed,
                findings,
            },
        )
}

#[derive(Debug, Clone)]
struct Spec {
    scope: u8,
    accounts: Vec<AccountSpec>,
    rules: Vec<&'static RuleMeta>,
    config: (u32, u32, u32, u32),
    grace: (u32, u32, u32, u32),
    times: (Timestamp, Timestamp, Timestamp),
    clock: Option<(Timestamp, i64)>,
    complete: bool,
    discovered: usize,
    exceptions: Option<Vec<ExceptionSpec>>,
    baseline: Option<BaselineSpec>,
}

fn spec() -> impl Strategy<Value = Spec> {
    let metas: Vec<&'static RuleMeta> = builtin().metas();
    let exception = (
        text(),
        select(vec![EntryState::InForce, EntryState::ExpiringSoon, EntryState::Expired, EntryState::Stale]),
        0usize..9,
        text(),
        text(),
        day(),
        any::<bool>(),
        0u8..6,
    );
    let counts = (0usize..9, 0usize..9, 0usize..9, 0usize..9, 0usize..9, 0usize..9).prop_map(|(a, b, c, d, e, f)| {
        ChangeCounts { new: a, still_open: b, resolved: c, by_state_new: d, by_state_unchanged: e, by_state_updated: f }
    });
    let resolved = (
        select(vec![Verdict::Fail, Verdict::Warn]),
        proptest::option::of(select(VERDICTS.to_vec())),
        any::<bool>(),
        text(),
    );
    (
        0u8..3,
        proptest::collection::vec(account_spec(), 1..5),
        proptest::sample::subsequence(metas.clone(), 1..=metas.len()),
        ((1u32..400, 0u32..30, 1u32..400, 1u32..400), (0u32..3651, 0u32..3651, 0u32..90, 0u32..90)),
        (time(), time(), time()),
        proptest::option::of((time(), -500i64..500)),
        any::<bool>(),
        0usize..100,
        proptest::option::of(proptest::collection::vec(exception, 0..4)),
        proptest::option::of((
            time(),
            proptest::collection::vec(0usize..8, 0..3),
            proptest::collection::vec(resolved, 0..3),
            counts,
            proptest::collection::vec(0u8..3, 0..3),
        )),
    )
        .prop_map(
            |(scope, accounts, rules, (config, grace), times, clock, complete, discovered, exceptions, baseline)| {
                Spec { scope, accounts, rules, config, grace, times, clock, complete, discovered, exceptions, baseline }
            },
        )
}

fn id(n: usize, second: bool) -> AccountId {
    AccountId::parse(&format!("{}{n:011}", if second { 9 } else { 0 })).unwrap()
}

fn state_of(n: u8) -> AccountState {
    match n {
        0 => AccountState::Active,
        1 => AccountState::Suspended,
        _ => AccountState::Other("MIGRATING".into()),
    }
}

fn record(n: usize, second: bool, a: &AccountSpec) -> AccountRecord {
    let account_id = id(n, second);
    let state = state_of(a.state);
    let status = match a.status {
        0 => AccountStatus::Scanned {
            report_generated_at: a.generated,
            keys: KeyTally { total: a.keys.0, active: a.keys.1 },
            enrichment: Enrichment { wanted: a.enrichment.0, done: a.enrichment.1 },
        },
        1 => AccountStatus::Skipped(SkipReason::NotActive(state.clone())),
        _ => AccountStatus::Failed(FailureReason {
            code: a.code,
            action: a.action.clone().map(Cow::Owned),
            aws_error_code: a.aws_code.clone(),
            message: a.message.clone(),
        }),
    };
    AccountRecord {
        account: Account {
            access: if a.assumed {
                AccessMethod::AssumeRole { role_arn: format!("arn:aws:iam::{account_id}:role/Audit") }
            } else {
                AccessMethod::CallerCredentials
            },
            id: account_id,
            name: a.name.clone(),
            ou_path: a
                .ou
                .as_ref()
                .map(|names| format!("/Root{}", names.iter().map(|n| format!("/{n}")).collect::<String>())),
            state,
        },
        status,
        stats: AccountStats {
            api_calls: a.stats.0,
            enrichment_calls: a.stats.1,
            tag_calls: a.stats.2,
            report_retries: a.stats.3,
            sdk_retries: a.stats.4,
            duration_ms: a.stats.5,
        },
    }
}

fn finding(account: &AccountId, rule: &'static RuleMeta, f: &FindingSpec, as_of: Timestamp) -> Finding {
    let user_name = if f.root { keyaudit_core::inventory::ROOT_USER_NAME.to_owned() } else { f.user.clone() };
    let user_arn =
        if f.root { format!("arn:aws:iam::{account}:root") } else { format!("arn:aws:iam::{account}:user/{}", f.user) };
    let key = f.key.as_ref().map(|(slot, key_id, change, rotated, created, used, age, reactivated, shares)| {
        let change = match change {
            0 => None,
            1 => Some(KeyChange::Deactivated),
            _ => Some(KeyChange::Deleted),
        };
        // A deactivated key is inactive as last seen; a deleted key's status is not recorded (active).
        let status = match change {
            Some(KeyChange::Deactivated) => KeyStatus::Inactive,
            Some(KeyChange::Deleted) => KeyStatus::Active,
            None if *shares => KeyStatus::Inactive,
            None => KeyStatus::Active,
        };
        KeyFacts {
            slot: *slot,
            access_key_id: key_id.clone(),
            status,
            change,
            last_rotated: *rotated,
            created_at: *created,
            last_used_at: *used,
            last_used_service: f.service.clone(),
            last_used_region: f.service.as_ref().map(|_| "eu-west-1".to_owned()),
            age: SignedDuration::from_secs(*age),
            age_source: if *reactivated { AgeSource::CreateDate } else { AgeSource::LastRotated },
            shares_rotation_second: *shares,
        }
    });
    let since = f.key.as_ref().map_or(as_of, |k| k.3);
    let evidence = match f.evidence {
        0 => Evidence::Rotation { due_at: since, max_age_days: 90 },
        1 => Evidence::RootKey,
        2 => Evidence::ActiveKeys {
            keys: vec![ActiveKey { slot: KeySlot::One, access_key_id: None, last_rotated: since }],
            rotation_under_way: f.root,
        },
        _ => Evidence::Usage {
            unused_for: as_of.duration_since(since),
            unused_since: since,
            never_used: f.root,
            unused_days: 45,
        },
    };
    Finding {
        rule,
        account_id: account.clone(),
        user_name,
        user_arn,
        key,
        evidence,
        verdict: f.verdict,
        message: f.message.clone(),
        triage: Triage { usage: f.usage, action: f.action, action_reason: f.action_reason.clone() },
        owner: f.owner.clone().map(|(value, tag)| Owner { value, tag }),
        suppression: f.suppression.clone().map(|(entry, reason, owner, expires)| AppliedSuppression {
            entry,
            reason,
            owner,
            expires,
        }),
        baseline_state: f.baseline.map(|b| match b {
            0 => BaselineState::New,
            1 => BaselineState::Unchanged,
            _ => BaselineState::Updated { was: f.was },
        }),
        // The run's own as_of is "first seen by this run", which the model says with None.
        first_seen: f.first_seen.filter(|t| *t != as_of),
    }
}

fn run(spec: &Spec, scope: Scope, origin: Option<Origin>, as_of: Timestamp, config: RuleConfig) -> RunInfo {
    RunInfo {
        as_of,
        started_at: spec.times.1,
        finished_at: spec.times.2,
        config,
        scope,
        clock: origin
            .as_ref()
            .and(spec.clock)
            .map(|(aws, skew)| ClockCheck { local: aws + SignedDuration::from_secs(skew), aws }),
        origin,
        partition: Partition::aws(),
        accounts_discovered: spec.discovered,
        discovery_complete: spec.complete,
    }
}

fn origin(caller: &AccountId) -> Origin {
    Origin {
        caller_arn: format!("arn:aws:iam::{caller}:user/auditor"),
        caller_account_id: caller.clone(),
        region: "eu-west-1".into(),
    }
}

/// The report a spec describes.
fn report(spec: &Spec) -> Report {
    let (max_age, warn, unused, dormant) = spec.config;
    let (critical, high, medium, low) = spec.grace;
    let config = RuleConfig::new(max_age.max(warn + 1), warn, unused)
        .and_then(|c| c.with_dormant_days(dormant))
        .and_then(|c| c.with_grace_days(GraceDays { critical, high, medium, low }))
        .unwrap();
    let as_of = spec.times.0;
    // Merged: the accounts of the first organization, then a second one's (ids from 9…), then a standalone account.
    let second_from = if spec.scope == 2 { spec.accounts.len().div_ceil(2) } else { spec.accounts.len() };
    let accounts: Vec<AccountRecord> =
        spec.accounts.iter().enumerate().map(|(n, a)| record(n, n >= second_from, a)).collect();
    let first = id(0, false);
    let (scope, run_origin) = match spec.scope {
        0 => (Scope::Organization { id: "o-first".into(), management_account_id: first.clone() }, Some(origin(&first))),
        1 => (Scope::StandaloneAccount, Some(origin(&first))),
        _ => {
            let part = |org: &str, second: bool, ids: BTreeSet<AccountId>| {
                let caller = ids.iter().next().cloned().unwrap_or_else(|| id(0, second));
                Part {
                    run: run(
                        spec,
                        Scope::Organization { id: org.into(), management_account_id: caller.clone() },
                        Some(origin(&caller)),
                        as_of - SignedDuration::from_hours(i64::from(second)),
                        config,
                    ),
                    accounts: ids,
                }
            };
            let ids = |second: bool| {
                accounts
                    .iter()
                    .map(|r| r.account.id.clone())
                    .filter(|a| a.as_str().starts_with('9') == second)
                    .collect()
            };
            (Scope::Merged(vec![part("o-first", false, ids(false)), part("o-second", true, ids(true))]), None)
        }
    };
    let mut report = Report {
        run: run(spec, scope, run_origin, as_of, config),
        rules: spec.rules.clone(),
        findings: Vec::new(),
        accounts,
        suppressions: None,
        comparison: None,
    };
    for (r, a) in report.accounts.iter().zip(&spec.accounts) {
        for (i, f) in a.findings.iter().enumerate() {
            let rule = spec.rules[i % spec.rules.len()];
            let as_of = report.run_of(r.account.id.as_str()).as_of;
            report.findings.push(finding(&r.account.id, rule, f, as_of));
        }
    }
    report.suppressions = spec.exceptions.as_ref().map(|entries| {
        entries
            .iter()
            .enumerate()
            .map(|(i, (label, state, matched, reason, owner, expires, allow_long, select))| EntryStatus {
                entry: Suppression {
                    label: format!("{label}{i}"),
                    line: i * 7 + 1,
                    selector: Selector {
                        fingerprint: (*select == 0).then(|| "ab".repeat(32)),
                        access_key_id: (*select == 1).then(|| AccessKeyId::parse("AKIAEXAMPLEEXAMPLE01").unwrap()),
                        user_arn: (*select == 2).then(|| UserArnGlob::parse("arn:aws:iam::*:user/ci-*").unwrap()),
                        account_id: (*select == 3).then(|| id(1, false)),
                        ou_path: (*select == 4).then(|| "/Root/Prod".to_owned()),
                        rules: (*select == 5).then(|| vec![report.rules[0].id]),
                    },
                    reason: reason.clone(),
                    owner: owner.clone(),
                    expires: *expires,
                    allow_long: *allow_long,
                },
                state: *state,
                matched: *matched,
            })
            .collect()
    });
    report.comparison =
        spec.baseline.as_ref().map(|(baseline_as_of, changed, resolved, counts, thresholds_changed)| {
            let names = thresholds(0, 0, 0).map(|(name, _)| name);
            let snapshot = |n: usize| report.accounts.get(n % report.accounts.len()).map(SnapshotAccount::of);
            Comparison {
                baseline_as_of: *baseline_as_of,
                threshold_changes: thresholds_changed.iter().map(|n| (names[usize::from(*n)], 90, 60)).collect(),
                resolved: resolved
                    .iter()
                    .enumerate()
                    .map(|(i, (was, now, suppressed, message))| {
                        let account = snapshot(i).unwrap();
                        ResolvedFinding {
                            finding: SnapshotFinding {
                                fingerprint: format!("{i:064x}"),
                                rule_id: "KA-IAM-001".into(),
                                account_id: account.account_id.clone(),
                                user_name: "gone".into(),
                                user_arn: format!("arn:aws:iam::{}:user/gone", account.account_id),
                                key_slot: Some(1),
                                access_key_id: None,
                                verdict: *was,
                                message: message.clone(),
                                suppressed: *suppressed,
                                first_seen: (i % 2 == 0).then_some(*baseline_as_of),
                            },
                            now: *now,
                            account: Some(account),
                        }
                    })
                    .collect(),
                newly_failed_accounts: changed
                    .iter()
                    .filter_map(|n| snapshot(*n))
                    .map(|a| AccountChange {
                        account: SnapshotAccount { coverage: Coverage::Failed, ..a },
                        was: Some(Coverage::Scanned),
                        now: Some(Coverage::Failed),
                    })
                    .collect(),
                no_longer_assessed: changed
                    .iter()
                    .filter_map(|n| snapshot(*n))
                    .map(|a| AccountChange {
                        account: SnapshotAccount { coverage: Coverage::Scanned, ..a },
                        was: Some(Coverage::Scanned),
                        now: None,
                    })
                    .collect(),
                counts: *counts,
            }
        });
    report
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_report_written_and_read_back_is_the_same_report_and_the_same_bytes(spec in spec()) {
        let original = report(&spec);
        let bytes = keyaudit_report::to_json(&original).unwrap();
        // The streamed writer writes exactly the document of the schema's types.
        let mut whole = serde_json::to_vec_pretty(&keyaudit_report::schema::Report::of(&original)).unwrap();
        whole.push(b'\n');
        prop_assert_eq!(&bytes, &whole);
        let read = keyaudit_report::from_slice(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&read, &original);
        let again = keyaudit_report::to_json(&read).unwrap();
        prop_assert_eq!(String::from_utf8(again).unwrap(), String::from_utf8(bytes).unwrap());
    }
}
