//! The change since the last run: findings compared by fingerprint with a previous report (the baseline).
//!
//! Both sides are [`Snapshot`]s: the live report's (see [`Snapshot::of`]) or one read back from a saved JSON
//! report. A finding is `new` (its fingerprint is not in the baseline), `unchanged` (same verdict) or `updated`
//! (verdict changed). A baseline finding that failed or warned is `resolved` when it is now passing, inactive or
//! deleted, or gone from an account this run assessed; a finding of an account this run could not assess is
//! never called resolved: the account is listed as no longer assessed instead.

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::Timestamp;

pub use crate::comparison::{
    AccountChange, ChangeCounts, Comparison, Coverage, ResolvedFinding, SnapshotAccount, SnapshotFinding,
};
use crate::finding::Finding;
pub use crate::finding::{BaselineState, SinceLastRun};
use crate::finding::{FINGERPRINT_SCHEME, RuleConfig, Verdict};
use crate::ids::{AccountId, Partition};
use crate::report::{Account, AccountRecord, AccountStatus, Report, Scope};
use crate::rules::meta::RuleMeta;
use crate::suppress::{Subject, Suppressions};

impl SnapshotAccount {
    /// An account of a live report as a snapshot records it.
    pub fn of(record: &AccountRecord) -> Self {
        let (coverage, reason_code) = match &record.status {
            AccountStatus::Scanned { .. } => (Coverage::Scanned, None),
            AccountStatus::Skipped(s) => (Coverage::Skipped, Some(s.code().to_owned())),
            AccountStatus::Failed(f) => (Coverage::Failed, Some(f.code.as_str().to_owned())),
        };
        SnapshotAccount {
            account_id: record.account.id.clone(),
            name: record.account.name.clone(),
            ou_path: record.account.ou_path.clone(),
            coverage,
            reason_code,
        }
    }
}

/// What a comparison needs of one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The report's `as_of`.
    pub as_of: Timestamp,
    /// The organization, for an organization-wide run.
    pub organization_id: Option<String>,
    /// The caller's account (what a standalone run audits).
    pub caller_account_id: String,
    /// The partition.
    pub partition: String,
    /// The fingerprint scheme the report's fingerprints were computed with.
    pub fingerprint_scheme: String,
    /// The rule ids that ran.
    pub rules: BTreeSet<String>,
    /// `max_age_days`, `warn_days`, `unused_days`.
    pub thresholds: [(&'static str, u32); 3],
    /// Every selected account.
    pub accounts: Vec<SnapshotAccount>,
    /// Every finding.
    pub findings: Vec<SnapshotFinding>,
}

impl Snapshot {
    /// A run's snapshot before it has accounts or findings: enough to check a baseline's compatibility.
    pub fn header(
        as_of: Timestamp,
        scope: &Scope,
        caller_account_id: &str,
        partition: &Partition,
        rules: &[&RuleMeta],
        config: &RuleConfig,
    ) -> Self {
        Snapshot {
            as_of,
            organization_id: scope.organization_id().map(str::to_owned),
            caller_account_id: caller_account_id.to_owned(),
            partition: partition.as_str().to_owned(),
            fingerprint_scheme: FINGERPRINT_SCHEME.to_owned(),
            rules: rules.iter().map(|r| r.id.to_owned()).collect(),
            thresholds: thresholds(config.max_age_days(), config.warn_days(), config.unused_days()),
            accounts: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// The live report's snapshot.
    pub fn of(report: &Report) -> Self {
        let partition = &report.run.partition;
        let run = &report.run;
        Snapshot {
            accounts: report.accounts.iter().map(SnapshotAccount::of).collect(),
            findings: report
                .findings
                .iter()
                .map(|f| SnapshotFinding {
                    fingerprint: f.fingerprint(partition),
                    rule_id: f.rule.id.to_owned(),
                    account_id: f.account_id.clone(),
                    user_name: f.user_name.clone(),
                    user_arn: f.user_arn.clone(),
                    key_slot: f.key.as_ref().map(|k| k.slot.number()),
                    access_key_id: f.key.as_ref().and_then(|k| k.access_key_id.as_ref()).map(|k| k.to_string()),
                    verdict: f.verdict,
                    message: f.message.clone(),
                    suppressed: f.suppression.is_some(),
                    first_seen: Some(f.first_seen.unwrap_or(report.run_of(f.account_id.as_str()).as_of)),
                })
                .collect(),
            ..Self::header(
                run.as_of,
                &run.scope,
                run.origin.as_ref().map_or("", |o| o.caller_account_id.as_str()),
                partition,
                &report.rules,
                &run.config,
            )
        }
    }
}

/// The thresholds as a snapshot records them.
pub fn thresholds(max_age_days: u32, warn_days: u32, unused_days: u32) -> [(&'static str, u32); 3] {
    [("max_age_days", max_age_days), ("warn_days", warn_days), ("unused_days", unused_days)]
}

/// How the two reports are called in messages, in the user's own words: a scan's `--baseline` compares "the
/// baseline" with "this run", `keyaudit diff` compares OLD with NEW.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sides {
    /// The earlier report.
    pub old: String,
    /// The later report.
    pub new: String,
}

impl Sides {
    /// A scan compared with its `--baseline`.
    pub fn baseline_and_run() -> Self {
        Self { old: "the baseline".into(), new: "this run".into() }
    }
}

/// Why two reports cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    /// They audit different organizations (or accounts).
    #[error("{} audits {old}, {} audits {new}: compare reports of the same organization", sides.old, sides.new)]
    OtherScope {
        /// What the earlier report audits.
        old: String,
        /// What the later one audits.
        new: String,
        /// Their names.
        sides: Sides,
    },
    /// They come from different partitions.
    #[error("{} is from partition {old}, {} from {new}", sides.old, sides.new)]
    OtherPartition {
        /// The earlier report's partition.
        old: String,
        /// The later one's.
        new: String,
        /// Their names.
        sides: Sides,
    },
    /// Their fingerprints were computed differently.
    #[error(
        "{}'s fingerprints use scheme {old:?}, {}'s use {new:?}: findings cannot be matched; compare reports of the \
         same keyaudit release (for a scheduled run: start a new baseline with this release's report)",
        sides.old,
        sides.new
    )]
    OtherFingerprints {
        /// The earlier report's scheme.
        old: String,
        /// The later one's.
        new: String,
        /// Their names.
        sides: Sides,
    },
    /// They ran different rules.
    #[error(
        "{} and {} ran other rules (only in {}: {only_old}; only in {}: {only_new}): compare runs of the same --rules \
         / --skip-rules, or start a new baseline",
        sides.old,
        sides.new,
        sides.old,
        sides.new
    )]
    OtherRules {
        /// Rules only the earlier report ran.
        only_old: String,
        /// Rules only the later one ran.
        only_new: String,
        /// Their names.
        sides: Sides,
    },
}

fn scope_name(s: &Snapshot) -> String {
    match &s.organization_id {
        Some(id) => format!("organization {id}"),
        None => format!("standalone account {}", s.caller_account_id),
    }
}

/// The baseline, indexed for look-ups by fingerprint.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The baseline report.
    pub snapshot: Snapshot,
    by_fingerprint: HashMap<String, usize>,
    /// Accounts whose last known state is known: scanned by the baseline report, or by an older report carried in.
    assessed: HashSet<AccountId>,
    /// From older reports, for accounts the baseline report did not assess (a run limited by `--ou`, an account that
    /// failed): each finding's verdict and when its clock started, so that deadlines survive the gap.
    carried: HashMap<String, (Verdict, Timestamp)>,
}

/// The accounts a snapshot scanned.
fn scanned(snapshot: &Snapshot) -> impl Iterator<Item = &AccountId> {
    snapshot.accounts.iter().filter(|a| a.coverage == Coverage::Scanned).map(|a| &a.account_id)
}

impl Baseline {
    /// Indexes a baseline snapshot.
    pub fn new(snapshot: Snapshot) -> Self {
        let by_fingerprint = snapshot.findings.iter().enumerate().map(|(i, f)| (f.fingerprint.clone(), i)).collect();
        let assessed = scanned(&snapshot).cloned().collect();
        Self { snapshot, by_fingerprint, assessed, carried: HashMap::new() }
    }

    /// Whether the baseline report left accounts without a state: some failed, or fewer were selected than
    /// `discovered` (a run limited by `--ou`, `--account` or `--exclude-account`). Then older reports are worth
    /// [`carry`](Self::carry)ing in.
    pub fn is_partial(&self, discovered: Option<usize>) -> bool {
        self.snapshot.accounts.iter().any(|a| a.coverage == Coverage::Failed)
            || discovered.is_some_and(|d| d > self.snapshot.accounts.len())
    }

    /// Carries in an older report: for each account it scanned and no newer report did, its findings' verdicts and
    /// clocks (the newest report that assessed an account speaks for it). Call from newest to oldest.
    pub fn carry(&mut self, older: &Snapshot) {
        let fresh: HashSet<&AccountId> = scanned(older).filter(|a| !self.assessed.contains(*a)).collect();
        for f in older.findings.iter().filter(|f| fresh.contains(&f.account_id)) {
            self.carried.insert(f.fingerprint.clone(), (f.verdict, f.first_seen.unwrap_or(older.as_of)));
        }
        self.assessed.extend(fresh.into_iter().cloned());
    }

    /// Checks that the baseline can be compared with a report of `current`'s organization, partition, scheme
    /// and rules (`current.findings` and `accounts` are not looked at). Different thresholds are allowed: they
    /// are listed in [`Comparison::threshold_changes`].
    pub fn check_compatible(&self, current: &Snapshot, sides: &Sides) -> Result<(), BaselineError> {
        let b = &self.snapshot;
        let sides = sides.clone();
        if b.partition != current.partition {
            return Err(BaselineError::OtherPartition {
                old: b.partition.clone(),
                new: current.partition.clone(),
                sides,
            });
        }
        let (old, new) = (scope_name(b), scope_name(current));
        if old != new {
            return Err(BaselineError::OtherScope { old, new, sides });
        }
        if b.fingerprint_scheme != current.fingerprint_scheme {
            return Err(BaselineError::OtherFingerprints {
                old: b.fingerprint_scheme.clone(),
                new: current.fingerprint_scheme.clone(),
                sides,
            });
        }
        if b.rules != current.rules {
            let list = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
                let v: Vec<&str> = a.difference(b).map(String::as_str).collect();
                if v.is_empty() { "none".to_owned() } else { v.join(", ") }
            };
            return Err(BaselineError::OtherRules {
                only_old: list(&b.rules, &current.rules),
                only_new: list(&current.rules, &b.rules),
                sides,
            });
        }
        Ok(())
    }

    /// Since when the baseline's finding `fingerprint` has been failing or warning without a break: its own
    /// `first_seen`, or the baseline's `as_of` for a report that did not record it; `None` when the baseline does not
    /// have it, or had it passing (or not applicable, or resolved): a finding's clock starts at its first failing or
    /// warning sighting, and a pass in between ends it.
    pub fn failing_since(&self, fingerprint: &str) -> Option<Timestamp> {
        let (verdict, since) = match self.by_fingerprint.get(fingerprint) {
            Some(&i) => {
                let f = &self.snapshot.findings[i];
                (f.verdict, f.first_seen.unwrap_or(self.snapshot.as_of))
            }
            None => *self.carried.get(fingerprint)?,
        };
        verdict.is_actionable().then_some(since)
    }

    /// How a finding with `fingerprint` and `verdict` compares with the baseline.
    pub fn state_of(&self, fingerprint: &str, verdict: Verdict) -> BaselineState {
        match self.by_fingerprint.get(fingerprint).map(|&i| self.snapshot.findings[i].verdict) {
            None => BaselineState::New,
            Some(was) if was == verdict => BaselineState::Unchanged,
            Some(was) => BaselineState::Updated { was },
        }
    }

    /// Compares `current` with the baseline.
    pub fn compare(&self, current: &Snapshot) -> Comparison {
        let b = &self.snapshot;
        let threshold_changes = b
            .thresholds
            .iter()
            .zip(&current.thresholds)
            .filter(|((_, was), (_, now))| was != now)
            .map(|((name, was), (_, now))| (*name, *was, *now))
            .collect();

        let coverage_now: HashMap<&AccountId, &SnapshotAccount> =
            current.accounts.iter().map(|a| (&a.account_id, a)).collect();
        let coverage_then: HashMap<&AccountId, &SnapshotAccount> =
            b.accounts.iter().map(|a| (&a.account_id, a)).collect();
        let scanned_now: HashSet<&AccountId> =
            current.accounts.iter().filter(|a| a.coverage == Coverage::Scanned).map(|a| &a.account_id).collect();

        let mut counts = ChangeCounts::default();
        let mut current_verdicts: HashMap<&str, Verdict> = HashMap::new();
        for f in &current.findings {
            current_verdicts.insert(&f.fingerprint, f.verdict);
            let state = self.state_of(&f.fingerprint, f.verdict);
            match state {
                BaselineState::New => counts.by_state_new += 1,
                BaselineState::Unchanged => counts.by_state_unchanged += 1,
                BaselineState::Updated { .. } => counts.by_state_updated += 1,
            }
            match state.since_last_run(f.verdict, f.suppressed) {
                Some(SinceLastRun::New) => counts.new += 1,
                Some(SinceLastRun::StillOpen) => counts.still_open += 1,
                // Resolved findings are counted from the baseline's side (below), gone ones included.
                Some(SinceLastRun::Resolved) | None => {}
            }
        }

        let resolved: Vec<ResolvedFinding> = b
            .findings
            .iter()
            .filter(|f| f.verdict.is_actionable())
            .filter_map(|f| {
                let now = match current_verdicts.get(f.fingerprint.as_str()) {
                    Some(now) if now.is_actionable() => return None,
                    Some(now) => Some(*now),
                    None if scanned_now.contains(&f.account_id) && current.rules.contains(&f.rule_id) => None,
                    None => return None,
                };
                let account = coverage_now.get(&f.account_id).map(|a| (*a).clone());
                Some(ResolvedFinding { finding: f.clone(), now, account })
            })
            .collect();
        counts.resolved = resolved.len();

        let newly_failed_accounts = current
            .accounts
            .iter()
            .filter(|a| a.coverage == Coverage::Failed)
            .filter_map(|a| {
                let was = coverage_then.get(&a.account_id).map(|t| t.coverage);
                (was != Some(Coverage::Failed)).then(|| AccountChange {
                    account: a.clone(),
                    was,
                    now: Some(a.coverage),
                })
            })
            .collect();
        let no_longer_assessed = b
            .accounts
            .iter()
            .filter(|a| a.coverage == Coverage::Scanned)
            .filter_map(|then| match coverage_now.get(&then.account_id) {
                Some(now) if now.coverage == Coverage::Scanned => None,
                Some(now) => {
                    Some(AccountChange { account: (*now).clone(), was: Some(then.coverage), now: Some(now.coverage) })
                }
                None => Some(AccountChange { account: then.clone(), was: Some(then.coverage), now: None }),
            })
            .collect();

        Comparison {
            baseline_as_of: b.as_of,
            threshold_changes,
            resolved,
            newly_failed_accounts,
            no_longer_assessed,
            counts,
        }
    }
}

/// Marks one account's findings with the exception each is under, how each compares with the baseline, and when the
/// baseline first saw it.
pub fn annotate(
    findings: &mut [Finding],
    account: &Account,
    partition: &Partition,
    as_of: Timestamp,
    suppressions: Option<&Suppressions>,
    baseline: Option<&Baseline>,
) {
    if suppressions.is_none() && baseline.is_none() {
        return;
    }
    for f in findings {
        let fingerprint = f.fingerprint(partition);
        f.suppression = suppressions.and_then(|s| s.find(f, &fingerprint, Some(account), as_of));
        f.baseline_state = baseline.map(|b| b.state_of(&fingerprint, f.verdict));
        // The clock (docs/notify.md, "When the clock starts"): from the first failing or warning sighting, carried
        // while the finding keeps failing or warning; an exception that has ended since starts a fresh grace from
        // its end, so that an expired exception never makes a key overdue the next day.
        let failing_since = baseline.and_then(|b| b.failing_since(&fingerprint));
        let exception_ended = match (suppressions, &f.suppression) {
            (Some(s), None) if f.verdict.is_actionable() => {
                s.last_ended_for(&Subject::of(f, &fingerprint, Some(account)), as_of)
            }
            _ => None,
        };
        // (Without an earlier failing sighting the clock starts now, which is after any exception's end.)
        f.first_seen = failing_since.map(|since| exception_ended.map_or(since, |ended| since.max(ended)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, coverage: Coverage) -> SnapshotAccount {
        SnapshotAccount {
            account_id: AccountId::parse(id).unwrap(),
            name: None,
            ou_path: None,
            coverage,
            reason_code: None,
        }
    }

    fn finding(fingerprint: &str, account: &str, verdict: Verdict) -> SnapshotFinding {
        SnapshotFinding {
            fingerprint: fingerprint.into(),
            rule_id: "KA-IAM-001".into(),
            account_id: AccountId::parse(account).unwrap(),
            user_name: "u".into(),
            user_arn: format!("arn:aws:iam::{account}:user/u"),
            key_slot: Some(1),
            access_key_id: None,
            verdict,
            message: String::new(),
            suppressed: false,
            first_seen: None,
        }
    }

    fn snapshot(accounts: Vec<SnapshotAccount>, findings: Vec<SnapshotFinding>) -> Snapshot {
        Snapshot {
            as_of: "2026-11-01T00:00:00Z".parse().unwrap(),
            organization_id: Some("o-abc".into()),
            caller_account_id: "000000000001".into(),
            partition: "aws".into(),
            fingerprint_scheme: FINGERPRINT_SCHEME.into(),
            rules: ["KA-IAM-001".to_owned()].into(),
            thresholds: thresholds(90, 14, 45),
            accounts,
            findings,
        }
    }

    const A: &str = "000000000001";
    const B: &str = "000000000002";
    const C: &str = "000000000003";

    #[test]
    fn accounts_the_newest_report_did_not_assess_keep_their_clock_from_the_newest_report_that_did() {
        use Verdict::*;
        let seen = |f: SnapshotFinding, at: &str| SnapshotFinding { first_seen: Some(at.parse().unwrap()), ..f };
        // The newest report: limited to A (B not selected), C failed.
        let mut newest = Baseline::new(snapshot(
            vec![account(A, Coverage::Scanned), account(C, Coverage::Failed)],
            vec![seen(finding("a", A, Fail), "2026-10-01T00:00:00Z")],
        ));
        assert!(
            newest.is_partial(Some(3))
                && !Baseline::new(snapshot(vec![account(A, Coverage::Scanned)], vec![])).is_partial(Some(1))
        );
        let older = Snapshot {
            as_of: "2026-10-20T00:00:00Z".parse().unwrap(),
            ..snapshot(
                vec![account(A, Coverage::Scanned), account(B, Coverage::Scanned), account(C, Coverage::Scanned)],
                vec![
                    seen(finding("a", A, Fail), "2026-09-01T00:00:00Z"),
                    seen(finding("a-gone", A, Fail), "2026-09-01T00:00:00Z"),
                    seen(finding("b", B, Fail), "2026-09-15T00:00:00Z"),
                    finding("c", C, Warn),
                    finding("c-passing", C, Pass),
                ],
            )
        };
        let oldest = Snapshot {
            as_of: "2026-06-01T00:00:00Z".parse().unwrap(),
            ..snapshot(vec![account(B, Coverage::Scanned)], vec![seen(finding("b", B, Fail), "2026-01-01T00:00:00Z")])
        };
        newest.carry(&older);
        newest.carry(&oldest);
        let at = |t: &str| Some(t.parse::<Timestamp>().unwrap());
        assert_eq!(newest.failing_since("a"), at("2026-10-01T00:00:00Z"), "A: the newest report speaks");
        assert_eq!(newest.failing_since("a-gone"), None, "A assessed by the newest: gone is gone");
        assert_eq!(newest.failing_since("b"), at("2026-09-15T00:00:00Z"), "B: the newer of the older reports");
        assert_eq!(newest.failing_since("c"), at("2026-10-20T00:00:00Z"), "C failed: its last assessment");
        assert_eq!(newest.failing_since("c-passing"), None);
        // The comparison ("since the last run") is still against the newest report alone.
        assert_eq!(newest.state_of("b", Fail), BaselineState::New);
    }

    #[test]
    fn the_clock_is_carried_only_from_a_failing_or_warning_sighting() {
        use Verdict::*;
        let seen =
            |f: SnapshotFinding, at: Option<&str>| SnapshotFinding { first_seen: at.map(|t| t.parse().unwrap()), ..f };
        let before = Baseline::new(snapshot(
            vec![account(A, Coverage::Scanned)],
            vec![
                seen(finding("failing", A, Fail), Some("2026-09-01T00:00:00Z")),
                seen(finding("warning", A, Warn), Some("2026-10-01T00:00:00Z")),
                seen(finding("passing", A, Pass), Some("2026-01-01T00:00:00Z")),
                seen(finding("inactive", A, NotApplicable), Some("2026-01-01T00:00:00Z")),
                seen(finding("unrecorded", A, Fail), None),
            ],
        ));
        let cases = [
            ("failing", Some("2026-09-01T00:00:00Z")),
            ("warning", Some("2026-10-01T00:00:00Z")),
            ("passing", None),
            ("inactive", None),
            ("unrecorded", Some("2026-11-01T00:00:00Z")),
            ("absent", None),
        ];
        for (fingerprint, want) in cases {
            let want: Option<Timestamp> = want.map(|t| t.parse().unwrap());
            assert_eq!(before.failing_since(fingerprint), want, "{fingerprint}");
        }
    }

    #[test]
    fn findings_are_new_unchanged_updated_or_resolved_and_unassessed_accounts_resolve_nothing() {
        use Verdict::*;
        let before = Baseline::new(snapshot(
            vec![account(A, Coverage::Scanned), account(B, Coverage::Scanned), account(C, Coverage::Failed)],
            vec![
                finding("same", A, Fail),
                finding("aging", A, Pass),
                finding("rotated", A, Fail),
                finding("deactivated", A, Warn),
                finding("in-b", B, Fail),
                finding("was-passing", A, Pass),
            ],
        ));
        let now = snapshot(
            vec![account(A, Coverage::Scanned), account(B, Coverage::Failed), account(C, Coverage::Failed)],
            vec![
                finding("same", A, Fail),
                finding("aging", A, Warn),
                finding("deactivated", A, NotApplicable),
                finding("fresh", A, Fail),
            ],
        );
        before.check_compatible(&now, &Sides::baseline_and_run()).unwrap();
        assert_eq!(before.state_of("same", Fail), BaselineState::Unchanged);
        assert_eq!(before.state_of("aging", Warn), BaselineState::Updated { was: Pass });
        assert_eq!(before.state_of("fresh", Fail), BaselineState::New);
        let c = before.compare(&now);
        let resolved: Vec<(&str, Option<Verdict>)> =
            c.resolved.iter().map(|r| (r.finding.fingerprint.as_str(), r.now)).collect();
        assert_eq!(resolved, [("rotated", None), ("deactivated", Some(NotApplicable))], "in-b: B was not assessed");
        assert_eq!(
            (c.counts.new, c.counts.still_open, c.counts.resolved),
            (2, 1, 2),
            "aging counts as new: it warns now"
        );
        let ids = |v: &[AccountChange]| v.iter().map(|a| a.account.account_id.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(ids(&c.newly_failed_accounts), [B], "C failed in both runs");
        assert_eq!(ids(&c.no_longer_assessed), [B]);
        assert!(c.threshold_changes.is_empty());
    }

    #[test]
    fn a_finding_stands_new_still_open_or_resolved_in_the_words_of_since_the_last_run() {
        use SinceLastRun::{New, Resolved, StillOpen};
        use Verdict::{Fail, Pass, Warn};
        let updated = |was| BaselineState::Updated { was };
        let cases = [
            (BaselineState::New, Fail, false, Some(New)),
            (updated(Pass), Fail, false, Some(New)),
            (updated(Pass), Warn, false, Some(New)),
            (BaselineState::Unchanged, Fail, false, Some(StillOpen)),
            (updated(Warn), Fail, false, Some(StillOpen)),
            (updated(Fail), Warn, false, Some(StillOpen)),
            (updated(Fail), Pass, false, Some(Resolved)),
            (updated(Warn), Verdict::NotApplicable, false, Some(Resolved)),
            (BaselineState::Unchanged, Pass, false, None),
            (BaselineState::New, Pass, false, None),
            (BaselineState::New, Fail, true, None),
        ];
        for (state, now, suppressed, expected) in cases {
            assert_eq!(state.since_last_run(now, suppressed), expected, "{state:?} → {now:?}, suppressed {suppressed}");
        }
    }

    #[test]
    fn other_organizations_partitions_schemes_and_rules_are_refused_and_thresholds_are_listed() {
        let base = snapshot(vec![], vec![]);
        let b = Baseline::new(base.clone());
        let cases: [(Snapshot, &str); 4] = [
            (Snapshot { organization_id: Some("o-other".into()), ..base.clone() }, "audits organization o-abc"),
            (Snapshot { partition: "aws-cn".into(), ..base.clone() }, "partition aws"),
            (
                Snapshot { fingerprint_scheme: "keyaudit/v1".into(), ..base.clone() },
                "the baseline's fingerprints use scheme",
            ),
            (
                Snapshot { rules: ["KA-IAM-001".to_owned(), "KA-IAM-004".to_owned()].into(), ..base.clone() },
                "the baseline and this run ran other rules (only in the baseline: none; only in this run: KA-IAM-004)",
            ),
        ];
        for (current, needle) in cases {
            let err = b.check_compatible(&current, &Sides::baseline_and_run()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        let stricter = Snapshot { thresholds: thresholds(60, 14, 45), ..base };
        b.check_compatible(&stricter, &Sides::baseline_and_run()).unwrap();
        assert_eq!(b.compare(&stricter).threshold_changes, [("max_age_days", 90, 60)]);
    }
}
