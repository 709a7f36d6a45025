//! `keyaudit diff OLD.json NEW.json`: the comparison a scan with `--baseline` makes, for two saved reports, as
//! a table or as JSON.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use crate::Result;
use keyaudit_core::baseline::{Baseline, BaselineState, Comparison, SinceLastRun, Snapshot, SnapshotFinding};
use keyaudit_core::eval::Verdict;
use serde::Serialize;

use keyaudit_report::resolved;
use keyaudit_report::schema::{BaselineSection, ChangedFinding, Since};

use super::table::{Style, columns, comparison_sections, opt, since_line};

/// A finding of the later report with its baseline verdict.
type Changed<'a> = (&'a SnapshotFinding, Option<Verdict>);

/// The findings of `new` that are new since the last run (fail or warn, not suppressed, and did not fail or warn
/// in OLD), then those still open whose verdict changed (warn → fail, fail → warn).
fn changed<'a>(baseline: &Baseline, new: &'a Snapshot) -> (Vec<Changed<'a>>, Vec<Changed<'a>>) {
    let mut fresh = Vec::new();
    let mut updated = Vec::new();
    for f in &new.findings {
        let state = baseline.state_of(&f.fingerprint, f.verdict);
        let was = state.was(f.verdict);
        match state.since_last_run(f.verdict, f.suppressed) {
            Some(SinceLastRun::New) => fresh.push((f, was)),
            Some(SinceLastRun::StillOpen) if matches!(state, BaselineState::Updated { .. }) => updated.push((f, was)),
            _ => {}
        }
    }
    (fresh, updated)
}

#[derive(Serialize)]
struct JsonDiff<'a> {
    old: Side,
    new: Side,
    summary: Since,
    new_findings: Vec<ChangedFinding<'a>>,
    updated: Vec<ChangedFinding<'a>>,
    resolved: Vec<ChangedFinding<'a>>,
    #[serde(flatten)]
    baseline: BaselineSection<'a>,
}

#[derive(Serialize)]
struct Side {
    path: String,
    as_of: String,
}

/// Renders the comparison of `new` with `baseline` (read from `old_path`, `new_path`).
pub fn render<'a>(
    baseline: &Baseline,
    new: &'a Snapshot,
    comparison: &'a Comparison,
    paths: (&Path, &Path),
    as_json: bool,
    color: bool,
) -> Result<Vec<u8>> {
    let accounts: HashMap<_, _> = new.accounts.iter().map(|a| (&a.account_id, a)).collect();
    let (fresh, updated) = changed(baseline, new);
    if as_json {
        let list = |v: Vec<Changed<'a>>| -> Vec<ChangedFinding<'a>> {
            v.into_iter()
                .map(|(f, was)| ChangedFinding::of(f, accounts.get(&f.account_id).copied(), Some(f.verdict), was))
                .collect()
        };
        let side = |path: &Path, snapshot: &Snapshot| Side {
            path: path.display().to_string(),
            as_of: snapshot.as_of.to_string(),
        };
        let doc = JsonDiff {
            old: side(paths.0, &baseline.snapshot),
            new: side(paths.1, new),
            summary: comparison.counts.into(),
            new_findings: list(fresh),
            updated: list(updated),
            resolved: resolved(comparison),
            baseline: BaselineSection::of(comparison),
        };
        let mut bytes = serde_json::to_vec_pretty(&doc)?;
        bytes.push(b'\n');
        return Ok(bytes);
    }
    let st = Style { color };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} diff: {} (as of {}) -> {} (as of {})",
        st.bold("keyaudit"),
        paths.0.display(),
        baseline.snapshot.as_of,
        paths.1.display(),
        new.as_of
    );
    // Newly failing (what --fail-on newly-failing counts): new ones that fail, and still-open ones that warned.
    let newly_failing = fresh
        .iter()
        .chain(&updated)
        .filter(|(f, was)| f.verdict == Verdict::Fail && *was != Some(Verdict::Fail))
        .count();
    let _ = writeln!(out, "{}", since_line(&st, comparison, newly_failing));
    for (title, list) in [("New since the last run", &fresh), ("Still open, with another verdict", &updated)] {
        if list.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|(f, was)| {
                let account = accounts.get(&f.account_id);
                vec![
                    f.verdict.as_str().to_owned(),
                    was.map_or("-", Verdict::as_str).to_owned(),
                    f.rule_id.clone(),
                    f.account_id.to_string(),
                    opt(account.and_then(|a| a.name.as_deref())),
                    f.user_name.clone(),
                    opt(f.access_key_id.as_deref()),
                ]
            })
            .collect();
        let _ = writeln!(out, "\n{}", st.red(title));
        columns(&mut out, &["VERDICT", "WAS", "RULE", "ACCOUNT", "NAME", "USER", "KEY ID"], &rows);
    }
    comparison_sections(&mut out, &st, comparison);
    Ok(out.into_bytes())
}
