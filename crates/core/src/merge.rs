//! Several scans' reports combined into one (`keyaudit merge`): typically one per AWS Organization, scanned in
//! parallel from each management account. Accounts and findings are kept as they were; the run becomes a
//! [`Scope::Merged`] whose parts keep each scan's own facts (as_of, caller, region), and every total is the sum.
//! Reports that cannot be added up honestly are refused: other rule settings, another partition, or the same
//! organization or account twice.

use std::collections::BTreeMap;

use jiff::SignedDuration;

use crate::baseline::{ChangeCounts, Comparison};
use crate::ids::AccountId;
use crate::report::{Part, Report, RunInfo, Scope};
use crate::suppress::{EntryState, EntryStatus};

/// Why reports cannot be merged. Each names the two inputs that disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no report to merge")]
    Empty,
    /// Other rules or thresholds: the verdicts would not mean the same thing.
    #[error(
        "{first} and {second} were made with different rule settings ({what}); scan every organization with the \
         same --rules, --skip-rules, --max-age-days, --warn-days, --unused-days and --dormant-days to merge them"
    )]
    Settings {
        /// The first input.
        first: String,
        /// The input that differs.
        second: String,
        /// What differs, with both values.
        what: String,
    },
    /// Another AWS partition: fingerprints and ARNs differ.
    #[error("{first} is of partition {a} and {second} of partition {b}; merge each partition's reports separately")]
    Partition {
        /// The first input.
        first: String,
        /// Its partition.
        a: String,
        /// The input that differs.
        second: String,
        /// Its partition.
        b: String,
    },
    /// The same organization or account in two inputs: its findings would count twice.
    #[error("{first} and {second} both hold {what}; give each organization's report once")]
    Overlap {
        /// The first input.
        first: String,
        /// The second input.
        second: String,
        /// The organization or account.
        what: String,
    },
}

/// A merged report, with what the caller should be told about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The report.
    pub report: Report,
    /// Warnings: what the merge left out or could not line up.
    pub notes: Vec<String>,
}

/// Ages are measured at each organization's own `as_of`; a wider spread than this is worth a note.
const AS_OF_SPREAD: SignedDuration = SignedDuration::from_hours(24);

/// Merges `inputs` (label, report), in that order. A merged input contributes its parts, so merges nest; one
/// report alone is returned as it is (writing a saved report in other formats).
pub fn merge(mut inputs: Vec<(String, Report)>) -> Result<Merged, MergeError> {
    if inputs.len() == 1
        && let Some((_, report)) = inputs.pop()
    {
        return Ok(Merged { report, notes: Vec::new() });
    }
    let Some((first_label, first)) = inputs.first() else {
        return Err(MergeError::Empty);
    };
    let mut notes = Vec::new();
    let mut owner_of_org: BTreeMap<&str, &str> = BTreeMap::new();
    let mut owner_of_account: BTreeMap<&AccountId, &str> = BTreeMap::new();
    for (label, report) in &inputs {
        check_settings(first_label, first, label, report)?;
        for id in report.runs().into_iter().filter_map(|run| run.scope.organization_id()) {
            if let Some(other) = owner_of_org.insert(id, label) {
                let what = format!("organization {id}");
                return Err(MergeError::Overlap { first: other.to_owned(), second: label.clone(), what });
            }
        }
        for record in &report.accounts {
            if let Some(other) = owner_of_account.insert(&record.account.id, label) {
                return Err(MergeError::Overlap {
                    first: other.to_owned(),
                    second: label.clone(),
                    what: format!("account {}", record.account.id),
                });
            }
        }
    }
    let (earliest, latest) = inputs.iter().fold((first, first), |(lo, hi), (_, r)| {
        (if r.run.as_of < lo.run.as_of { r } else { lo }, if r.run.as_of > hi.run.as_of { r } else { hi })
    });
    if latest.run.as_of.duration_since(earliest.run.as_of) > AS_OF_SPREAD {
        notes.push(format!(
            "the reports' as_of range from {} to {}: each finding's age is measured at its own organization's as_of",
            earliest.run.as_of, latest.run.as_of
        ));
    }
    let with_baseline = inputs.iter().filter(|(_, r)| r.comparison.is_some()).count();
    if with_baseline > 0 && with_baseline < inputs.len() {
        notes.push(format!(
            "only {with_baseline} of the {} reports were compared with a baseline: the merged report has no \"since \
             the last run\" section (each finding keeps its baseline_state)",
            inputs.len()
        ));
    }

    let run = RunInfo {
        as_of: earliest.run.as_of,
        started_at: inputs.iter().map(|(_, r)| r.run.started_at).min().unwrap_or(first.run.started_at),
        finished_at: inputs.iter().map(|(_, r)| r.run.finished_at).max().unwrap_or(first.run.finished_at),
        config: first.run.config,
        scope: Scope::Merged(Vec::new()),
        origin: None,
        partition: first.run.partition.clone(),
        accounts_discovered: inputs.iter().map(|(_, r)| r.run.accounts_discovered).sum(),
        discovery_complete: inputs.iter().all(|(_, r)| r.run.discovery_complete),
        clock: None,
    };
    let comparison = if with_baseline == inputs.len() {
        inputs.iter().filter_map(|(_, r)| r.comparison.clone()).reduce(add_comparisons)
    } else {
        None
    };
    let suppressions = inputs.iter().filter_map(|(_, r)| r.suppressions.clone()).reduce(|mut all, more| {
        for status in more {
            add_entry(&mut all, status);
        }
        all
    });
    let rules = first.rules.clone();
    let mut report = Report { run, rules, accounts: Vec::new(), findings: Vec::new(), suppressions, comparison };
    let mut parts = Vec::new();
    for (_, input) in inputs {
        match input.run.scope {
            Scope::Merged(inner) => parts.extend(inner),
            _ => parts
                .push(Part { accounts: input.accounts.iter().map(|r| r.account.id.clone()).collect(), run: input.run }),
        }
        report.accounts.extend(input.accounts);
        report.findings.extend(input.findings);
    }
    report.run.scope = Scope::Merged(parts);
    report.normalize();
    Ok(Merged { report, notes })
}

fn check_settings(first_label: &str, first: &Report, label: &str, report: &Report) -> Result<(), MergeError> {
    let settings =
        |what: String| MergeError::Settings { first: first_label.to_owned(), second: label.to_owned(), what };
    let ids = |r: &Report| r.rules.iter().map(|m| m.id).collect::<Vec<_>>().join(",");
    if ids(first) != ids(report) {
        return Err(settings(format!("rules {} and {}", ids(first), ids(report))));
    }
    let (a, b) = (first.run.config, report.run.config);
    for (name, x, y) in [
        ("max_age_days", a.max_age_days(), b.max_age_days()),
        ("warn_days", a.warn_days(), b.warn_days()),
        ("unused_days", a.unused_days(), b.unused_days()),
        ("dormant_days", a.dormant_days(), b.dormant_days()),
        ("grace_days.critical", a.grace_days().critical, b.grace_days().critical),
        ("grace_days.high", a.grace_days().high, b.grace_days().high),
        ("grace_days.medium", a.grace_days().medium, b.grace_days().medium),
        ("grace_days.low", a.grace_days().low, b.grace_days().low),
    ] {
        if x != y {
            return Err(settings(format!("{name} {x} and {y}")));
        }
    }
    if first.run.partition != report.run.partition {
        return Err(MergeError::Partition {
            first: first_label.to_owned(),
            a: first.run.partition.as_str().to_owned(),
            second: label.to_owned(),
            b: report.run.partition.as_str().to_owned(),
        });
    }
    Ok(())
}

fn add_comparisons(mut a: Comparison, b: Comparison) -> Comparison {
    a.baseline_as_of = a.baseline_as_of.min(b.baseline_as_of);
    for change in b.threshold_changes {
        if !a.threshold_changes.contains(&change) {
            a.threshold_changes.push(change);
        }
    }
    a.resolved.extend(b.resolved);
    a.newly_failed_accounts.extend(b.newly_failed_accounts);
    a.no_longer_assessed.extend(b.no_longer_assessed);
    let (x, y) = (a.counts, b.counts);
    a.counts = ChangeCounts {
        new: x.new + y.new,
        still_open: x.still_open + y.still_open,
        resolved: x.resolved + y.resolved,
        by_state_new: x.by_state_new + y.by_state_new,
        by_state_unchanged: x.by_state_unchanged + y.by_state_unchanged,
        by_state_updated: x.by_state_updated + y.by_state_updated,
    };
    a
}

/// Adds one organization's standing of an exception entry. The same entry (one exceptions file used for every
/// organization) stands once: what it matched is added up, it is stale only where it matched nothing anywhere,
/// and unmatched when some organization could not be fully assessed.
fn add_entry(all: &mut Vec<EntryStatus>, status: EntryStatus) {
    let Some(same) = all.iter_mut().find(|s| s.entry == status.entry) else {
        all.push(status);
        return;
    };
    same.matched += status.matched;
    same.state = match (same.state, status.state) {
        (EntryState::Expired, EntryState::Expired) => EntryState::Expired,
        (EntryState::ExpiringSoon, _) | (_, EntryState::ExpiringSoon) => EntryState::ExpiringSoon,
        (EntryState::InForce, _) | (_, EntryState::InForce) => EntryState::InForce,
        (EntryState::Unmatched, _) | (_, EntryState::Unmatched) => EntryState::Unmatched,
        // Expired in one organization's run and stale in another's (their as_of straddle the end date).
        (EntryState::Expired, _) | (_, EntryState::Expired) => EntryState::Expired,
        (EntryState::Stale, EntryState::Stale) => EntryState::Stale,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::RuleConfig;
    use crate::ids::Partition;
    use crate::report::{AccessMethod, Account, AccountRecord, AccountState, AccountStats, AccountStatus, Origin};
    use crate::suppress::{Selector, Suppression};

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    /// A scan of organization `org` holding `accounts`, at `as_of`.
    fn scan(org: &str, accounts: &[&str], as_of: &str) -> Report {
        let id = |s: &str| AccountId::parse(s).unwrap();
        Report {
            run: RunInfo {
                as_of: ts(as_of),
                started_at: ts(as_of),
                finished_at: ts(as_of),
                config: RuleConfig::default(),
                scope: Scope::Organization { id: org.into(), management_account_id: id(accounts[0]) },
                origin: Some(Origin {
                    caller_arn: format!("arn:aws:iam::{}:user/auditor", accounts[0]),
                    caller_account_id: id(accounts[0]),
                    region: "us-east-1".into(),
                }),
                partition: Partition::aws(),
                accounts_discovered: accounts.len() + 1,
                discovery_complete: true,
                clock: None,
            },
            rules: crate::rules::builtin().metas(),
            accounts: accounts
                .iter()
                .map(|a| AccountRecord {
                    account: Account {
                        id: id(a),
                        name: None,
                        ou_path: Some("/Root".into()),
                        state: AccountState::Active,
                        access: AccessMethod::CallerCredentials,
                    },
                    status: AccountStatus::Scanned {
                        report_generated_at: None,
                        keys: crate::report::KeyTally { total: 2, active: 1 },
                        enrichment: Default::default(),
                    },
                    stats: AccountStats::default(),
                })
                .collect(),
            findings: Vec::new(),
            suppressions: None,
            comparison: None,
        }
    }

    fn inputs(reports: Vec<Report>) -> Vec<(String, Report)> {
        reports.into_iter().enumerate().map(|(i, r)| (format!("r{i}.json"), r)).collect()
    }

    #[test]
    fn reports_that_do_not_add_up_are_refused_naming_both() {
        let a = || scan("o-aaaaaaaaaa", &["111111111111", "111111111112"], "2026-11-28T12:00:00Z");
        let b = || scan("o-bbbbbbbbbb", &["222222222221"], "2026-11-28T12:05:00Z");
        let with = |mut r: Report, edit: fn(&mut Report)| {
            edit(&mut r);
            r
        };
        let cases: Vec<(Vec<Report>, &str)> = vec![
            (vec![], "no report to merge"),
            (
                vec![a(), with(b(), |r| r.run.config = RuleConfig::new(60, 14, 45).unwrap())],
                "r0.json and r1.json were made with different rule settings (max_age_days 90 and 60)",
            ),
            (
                vec![a(), with(b(), |r| r.run.config = r.run.config.with_dormant_days(30).unwrap())],
                "(dormant_days 90 and 30)",
            ),
            (
                vec![a(), with(b(), |r| r.rules.truncate(1))],
                "(rules KA-IAM-001,KA-IAM-002,KA-IAM-003,KA-IAM-004 and KA-IAM-001)",
            ),
            (
                vec![a(), with(b(), |r| r.run.partition = Partition::from_arn("arn:aws-cn:x").unwrap())],
                "r0.json is of partition aws and r1.json of partition aws-cn",
            ),
            (vec![a(), b(), a()], "r0.json and r2.json both hold organization o-aaaaaaaaaa"),
            (
                vec![a(), scan("o-cccccccccc", &["333333333333", "111111111112"], "2026-11-28T12:00:00Z")],
                "r0.json and r1.json both hold account 111111111112",
            ),
        ];
        for (reports, expected) in cases {
            let err = merge(inputs(reports)).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn a_merge_adds_up_and_keeps_each_organization_apart() {
        let a = scan("o-aaaaaaaaaa", &["111111111111", "111111111112"], "2026-11-28T12:00:00Z");
        let mut b = scan("o-bbbbbbbbbb", &["222222222221"], "2026-11-30T12:05:00Z");
        b.run.discovery_complete = false;
        let merged = merge(inputs(vec![b, a])).unwrap();
        let r = &merged.report;
        assert_eq!(r.run.as_of, ts("2026-11-28T12:00:00Z"), "the earliest as_of");
        assert_eq!(r.run.finished_at, ts("2026-11-30T12:05:00Z"));
        assert_eq!((r.run.accounts_discovered, r.run.discovery_complete, &r.run.origin), (5, false, &None));
        assert_eq!(r.summary().keys_total, 6);
        let ids: Vec<&str> = r.accounts.iter().map(|a| a.account.id.as_str()).collect();
        assert_eq!(ids, ["111111111111", "111111111112", "222222222221"], "account order");
        assert_eq!(r.run_of("222222222221").scope.organization_id(), Some("o-bbbbbbbbbb"));
        assert_eq!(r.run_of("111111111112").scope.organization_id(), Some("o-aaaaaaaaaa"));
        assert_eq!(r.runs().len(), 2);
        assert!(merged.notes.iter().any(|n| n.contains("as_of range from")), "{:?}", merged.notes);
        // A merged report merges again (its parts are taken over), and still refuses its organizations twice.
        let c = scan("o-cccccccccc", &["333333333333"], "2026-11-28T12:00:00Z");
        let again = merge(inputs(vec![merged.report.clone(), c])).unwrap().report;
        assert_eq!(again.runs().len(), 3);
        let err =
            merge(inputs(vec![merged.report.clone(), scan("o-bbbbbbbbbb", &["444444444444"], "2026-11-28T12:00:00Z")]));
        assert!(err.unwrap_err().to_string().contains("organization o-bbbbbbbbbb"));
    }

    #[test]
    fn one_exceptions_file_used_everywhere_stands_once() {
        let entry = |label: &str| Suppression {
            label: label.into(),
            line: 3,
            selector: Selector::default(),
            reason: "r".into(),
            owner: "o".into(),
            expires: "2027-01-01".parse().unwrap(),
            allow_long: false,
        };
        let status =
            |label: &str, state: EntryState, matched: usize| EntryStatus { entry: entry(label), state, matched };
        let cases = [
            (EntryState::Stale, EntryState::InForce, EntryState::InForce),
            (EntryState::Stale, EntryState::Stale, EntryState::Stale),
            (EntryState::Unmatched, EntryState::Stale, EntryState::Unmatched),
            (EntryState::InForce, EntryState::ExpiringSoon, EntryState::ExpiringSoon),
            (EntryState::Expired, EntryState::Expired, EntryState::Expired),
        ];
        for (x, y, expected) in cases {
            let mut a = scan("o-aaaaaaaaaa", &["111111111111"], "2026-11-28T12:00:00Z");
            let mut b = scan("o-bbbbbbbbbb", &["222222222221"], "2026-11-28T12:00:00Z");
            a.suppressions = Some(vec![status("shared", x, 2), status("only-a", EntryState::Stale, 0)]);
            b.suppressions = Some(vec![status("shared", y, 3)]);
            let merged = merge(inputs(vec![a, b])).unwrap().report.suppressions.unwrap();
            assert_eq!(merged.len(), 2, "{x:?} + {y:?}");
            assert_eq!((merged[0].state, merged[0].matched), (expected, 5), "{x:?} + {y:?}");
        }
    }
}
