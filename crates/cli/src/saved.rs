//! Saved JSON reports read back (`--baseline`, `keyaudit diff`): only what a comparison needs, checked for
//! what it must be (a keyaudit report of a schema version this build understands). Unknown fields are ignored,
//! so reports from newer builds of the same schema version read fine.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use jiff::{SignedDuration, Timestamp};
use keyaudit_core::baseline::{Baseline, Coverage, Snapshot, SnapshotAccount, SnapshotFinding, thresholds};
use keyaudit_core::eval::Verdict;
use keyaudit_core::ids::AccountId;
use serde::Deserialize;

use keyaudit_report::SCHEMA_VERSION;

#[derive(Deserialize)]
struct Saved {
    run: Run,
    /// `summary.accounts.discovered`: accounts in the organization before filters.
    #[serde(default)]
    summary: Option<SavedSummary>,
    #[serde(default)]
    accounts: Vec<Account>,
    #[serde(default)]
    findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct Run {
    as_of: Timestamp,
    scope: Option<String>,
    organization_id: Option<String>,
    caller_account_id: Option<String>,
    partition: String,
    fingerprint_scheme: Option<String>,
    max_age_days: u32,
    warn_days: u32,
    unused_days: u32,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct SavedSummary {
    accounts: SavedAccountCounts,
}

#[derive(Deserialize)]
struct SavedAccountCounts {
    discovered: usize,
}

#[derive(Deserialize)]
struct Rule {
    id: String,
}

#[derive(Deserialize)]
struct Account {
    account_id: String,
    name: Option<String>,
    ou_path: Option<String>,
    status: String,
    reason_code: Option<String>,
}

#[derive(Deserialize)]
struct Finding {
    fingerprint: String,
    rule_id: String,
    account_id: String,
    user_name: String,
    user_arn: String,
    key_slot: Option<u8>,
    access_key_id: Option<String>,
    verdict: String,
    message: String,
    suppression: Option<serde_json::Value>,
    /// Written since keyaudit tracks deadlines; an older report's findings were first seen by its own as_of.
    first_seen: Option<Timestamp>,
}

/// The `schema_version` of a keyaudit JSON report, once the bytes are shown to be one (see
/// [`keyaudit_report::head`]). Only the header is read, so that a report of a newer version gets its version's message
/// rather than one about whatever field that version changed.
fn schema_version(bytes: &[u8]) -> Result<u64> {
    Ok(keyaudit_report::head(bytes)?.schema_version.unwrap_or_default())
}

/// Where `--baseline` points: a report, or a directory of them (scheduled runs keep theirs there).
#[derive(Debug)]
pub(crate) enum BaselineSource {
    /// The newest keyaudit JSON report: a file given, or the one found in the directory given.
    Report(std::path::PathBuf, Box<Baseline>),
    /// A directory without a keyaudit JSON report yet: this is the first run, every failing finding is new.
    FirstRun(std::path::PathBuf),
}

/// Reads `--baseline PATH`: a report, or the newest keyaudit JSON report in a directory (see [`reports_in`]).
/// The run's own `--output-dir` may not exist yet: it is created with the first report, so that is a first run.
pub(crate) fn baseline(path: &Path, output_dir: Option<&Path>) -> Result<BaselineSource> {
    if !path.exists() && output_dir == Some(path) {
        return Ok(BaselineSource::FirstRun(path.to_owned()));
    }
    if !path.is_dir() {
        return Ok(BaselineSource::Report(path.to_owned(), Box::new(Baseline::new(load("--baseline", path)?))));
    }
    let mut reports = reports_in(path)?.into_iter();
    let Some((newest_as_of, report)) = reports.next() else { return Ok(BaselineSource::FirstRun(path.to_owned())) };
    tracing::info!(report = %report.display(), "--baseline {}: the newest keyaudit JSON report there", path.display());
    let (snapshot, discovered) = load_saved("--baseline", &report)?;
    let mut baseline = Box::new(Baseline::new(snapshot));
    // Deadlines survive gaps: when the newest report left accounts without a state (a run limited by --ou, an
    // account that failed), each of them takes its last known state from the newest older report that assessed it,
    // within CARRY_DAYS. A complete newest report reads nothing more.
    if baseline.is_partial(discovered) {
        let horizon = newest_as_of.checked_sub(SignedDuration::from_hours(24 * CARRY_DAYS)).unwrap_or(newest_as_of);
        for (as_of, older) in reports.take_while(|(as_of, _)| *as_of >= horizon) {
            match load_saved("--baseline", &older) {
                Ok((snapshot, _)) => {
                    tracing::info!(report = %older.display(), %as_of, "--baseline: carrying accounts the newest report did not assess");
                    baseline.carry(&snapshot);
                }
                Err(e) => tracing::warn!("--baseline {}: skipping an older report: {e:#}", path.display()),
            }
        }
    }
    Ok(BaselineSource::Report(report, baseline))
}

/// How far back `--baseline DIR` looks for the last known state of accounts the newest report did not assess.
const CARRY_DAYS: i64 = 90;

/// Every keyaudit JSON report in `dir`, newest first (by its run's `as_of`, then its start, then its name), with its
/// `as_of`. Only `*.json` files count, never keyaudit's other formats (`*.ocsf.json`, `*.asff.json`, SARIF, NDJSON)
/// nor a merged report; another JSON file is skipped with a note in the log.
fn reports_in(dir: &Path) -> Result<Vec<(Timestamp, std::path::PathBuf)>> {
    let shown = dir.display();
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow!("--baseline {shown}: cannot list the directory ({e})"))?;
    let mut found: Vec<(Timestamp, Timestamp, std::path::PathBuf)> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| anyhow!("--baseline {shown}: cannot list the directory ({e})"))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.ends_with(".json") || name.ends_with(".ocsf.json") || name.ends_with(".asff.json") || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| anyhow!("--baseline {}: cannot read ({e})", path.display()))?;
        let run = match keyaudit_report::head(&bytes) {
            Ok(keyaudit_report::Head { run: Some(run), .. }) if run.scope.as_deref() != Some("merged") => run,
            Ok(_) => {
                tracing::info!("--baseline {shown}: skipping {name}: a merged report or no run");
                continue;
            }
            Err(e) => {
                tracing::warn!("--baseline {shown}: skipping {name}: {e}");
                continue;
            }
        };
        let (Some(as_of), Some(started)) = (run.as_of, run.started_at) else { continue };
        found.push((as_of, started, path));
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found.into_iter().map(|(as_of, _, path)| (as_of, path)).collect())
}

/// Reads a keyaudit JSON report; `flag` names where it came from in messages (`--baseline`, `diff`).
pub(crate) fn load(flag: &str, path: &Path) -> Result<Snapshot> {
    load_saved(flag, path).map(|(snapshot, _)| snapshot)
}

/// [`load`], with the report's `run.accounts_discovered` when it has one.
fn load_saved(flag: &str, path: &Path) -> Result<(Snapshot, Option<usize>)> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{flag} {shown}: cannot read the file ({e})"))?;
    let version = schema_version(&bytes).map_err(|e| anyhow!("{flag} {shown}: {e}"))?;
    if version > u64::from(SCHEMA_VERSION) {
        bail!(
            "{flag} {shown}: schema_version {version} is newer than this keyaudit understands ({SCHEMA_VERSION}); \
             upgrade keyaudit or compare with a report of this version"
        );
    }
    // Only the fields a comparison needs, straight from the bytes.
    let saved: Saved =
        serde_json::from_slice(&bytes).map_err(|e| anyhow!("{flag} {shown}: not a keyaudit JSON report ({e})"))?;
    if saved.run.scope.as_deref() == Some("merged") {
        bail!(
            "{flag} {shown}: a merged report (keyaudit merge) spans several organizations; compare each \
             organization's own reports (merge reports that were each made with --baseline to see the change across \
             all of them)"
        );
    }
    let Some(caller_account_id) = saved.run.caller_account_id else {
        bail!("{flag} {shown}: not a keyaudit JSON report (no run.caller_account_id)");
    };
    let Some(scheme) = saved.run.fingerprint_scheme else {
        bail!(
            "{flag} {shown}: the report has no run.fingerprint_scheme (written by an older keyaudit whose \
             fingerprints cannot be matched); start a new baseline with this version's report"
        );
    };
    let account_id = |s: &str, what: &str| AccountId::parse(s).map_err(|e| anyhow!("{flag} {shown}: {what}: {e}"));
    let accounts = saved
        .accounts
        .into_iter()
        .map(|a| {
            Ok(SnapshotAccount {
                account_id: account_id(&a.account_id, "accounts[].account_id")?,
                name: a.name,
                ou_path: a.ou_path,
                coverage: Coverage::parse(&a.status).ok_or_else(|| {
                    anyhow!("{flag} {shown}: account status {:?} is not one keyaudit writes", a.status)
                })?,
                reason_code: a.reason_code,
            })
        })
        .collect::<Result<_>>()?;
    let findings = saved
        .findings
        .into_iter()
        .map(|f| {
            Ok(SnapshotFinding {
                verdict: Verdict::parse(&f.verdict).ok_or_else(|| {
                    anyhow!("{flag} {shown}: finding verdict {:?} is not one keyaudit writes", f.verdict)
                })?,
                fingerprint: f.fingerprint,
                rule_id: f.rule_id,
                account_id: account_id(&f.account_id, "findings[].account_id")?,
                user_name: f.user_name,
                user_arn: f.user_arn,
                key_slot: f.key_slot,
                access_key_id: f.access_key_id,
                message: f.message,
                suppressed: f.suppression.is_some_and(|s| !s.is_null()),
                first_seen: f.first_seen,
            })
        })
        .collect::<Result<_>>()?;
    let snapshot = Snapshot {
        as_of: saved.run.as_of,
        organization_id: saved.run.organization_id,
        caller_account_id,
        partition: saved.run.partition,
        fingerprint_scheme: scheme,
        rules: saved.run.rules.into_iter().map(|r| r.id).collect::<BTreeSet<_>>(),
        thresholds: thresholds(saved.run.max_age_days, saved.run.warn_days, saved.run.unused_days),
        accounts,
        findings,
    };
    Ok((snapshot, saved.summary.map(|s| s.accounts.discovered)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_comparable_report_is_refused_with_the_reason() {
        let run = |extra: &str| {
            format!(
                r#"{{"schema_version": 1, "tool": {{"name": "keyaudit"}}, "run": {{"as_of": "2026-11-28T12:00:00Z",
                "partition": "aws", "fingerprint_scheme": "keyaudit/v2", "max_age_days": 90, "warn_days": 14,
                "unused_days": 45, "rules": [] {extra}}}}}"#
            )
        };
        let cases = [
            ("{".to_owned(), "not JSON"),
            ("{}".to_owned(), "JSON without a schema_version"),
            (r#"{"schema_version": 1, "tool": {"name": "other"}}"#.to_owned(), "not a keyaudit JSON report (tool.name"),
            (r#"{"schema_version": 9, "tool": {"name": "keyaudit"}}"#.to_owned(), "schema_version 9 is newer"),
            (run(r#", "scope": "merged""#), "a merged report (keyaudit merge) spans several organizations"),
            (run(""), "not a keyaudit JSON report (no run.caller_account_id)"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        for (text, expected) in cases {
            std::fs::write(&path, &text).unwrap();
            let err = load("--baseline", &path).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--baseline {}: ", path.display())), "{err}");
            assert!(err.contains(expected), "{expected}: {err}");
        }
        std::fs::write(&path, run(r#", "caller_account_id": "000000000001""#)).unwrap();
        assert_eq!(load("--baseline", &path).unwrap().caller_account_id, "000000000001");
    }

    #[test]
    fn the_newest_keyaudit_json_report_of_a_directory_is_the_baseline_and_nothing_else_counts() {
        let dir = tempfile::tempdir().unwrap();
        let report = |as_of: &str, started: &str, scope: &str| {
            format!(
                r#"{{"schema_version": 1, "tool": {{"name": "keyaudit"}}, "run": {{"as_of": "{as_of}",
                "started_at": "{started}", "scope": "{scope}"}}}}"#
            )
        };
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        assert_eq!(
            reports_in(dir.path()).unwrap().into_iter().next().map(|(_, path)| path),
            None,
            "an empty directory: a first run"
        );
        write("week1.json", &report("2026-11-28T12:00:00Z", "2026-11-28T12:00:00Z", "organization"));
        write("week2.json", &report("2026-12-05T12:00:00Z", "2026-12-05T12:00:00Z", "organization"));
        // Written later, but of an earlier instant (--as-of): not the newest.
        write("rerun.json", &report("2026-12-01T00:00:00Z", "2026-12-06T00:00:00Z", "organization"));
        write("merged.json", &report("2026-12-31T00:00:00Z", "2026-12-31T00:00:00Z", "merged"));
        write("later.ocsf.json", "[]");
        write("later.asff.json", "[]");
        write("other.json", r#"{"name": "not a report"}"#);
        write("broken.json", "{");
        write("later.sarif", r#"{"runs": []}"#);
        assert_eq!(
            reports_in(dir.path()).unwrap().into_iter().next().map(|(_, path)| path),
            Some(dir.path().join("week2.json"))
        );
    }
}
