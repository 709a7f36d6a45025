//! The terminal summary: accounts by status, keys and findings by verdict, the accounts that could not be
//! assessed, then a section per rule with failing or warning findings (most severe rule first), and the keys
//! fixed since their account's cached credential report. Rule wording comes from the rule metadata.

use std::fmt::Write;

use keyaudit_core::baseline::{Comparison, Coverage, SinceLastRun};
use keyaudit_core::eval::{Evidence, Finding, Verdict, whole_days};
use keyaudit_core::report::{AccountRecord, AccountStatus, FailOn, Outcome, Report, RunInfo, Scope};
use keyaudit_core::suppress::{EntryState, EntryStatus};
use keyaudit_core::triage::Action;

use super::with_accounts;
use super::wording::shown;

pub(crate) struct Style {
    pub(crate) color: bool,
}

impl Style {
    pub(crate) fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }
    pub(crate) fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    pub(crate) fn red(&self, text: &str) -> String {
        self.paint("31;1", text)
    }
    pub(crate) fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
    pub(crate) fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }
}

/// Lays out rows in columns separated by two spaces (widths in characters). Every cell goes through [`shown`]:
/// cells hold names from member accounts, so they never carry colour or any other control sequence.
pub fn columns(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| shown(c)).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let _ = write!(s, "{cell:<w$}  ");
            }
        }
        s.trim_end().to_owned()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

pub(crate) fn opt(s: Option<&str>) -> String {
    s.unwrap_or("-").to_owned()
}

fn report_time(record: &AccountRecord) -> Option<String> {
    match record.status {
        AccountStatus::Scanned { report_generated_at, .. } => report_generated_at.map(|t| t.to_string()),
        _ => None,
    }
}

/// One line per action for the "What to do" block.
fn action_meaning(a: Action) -> &'static str {
    match a {
        Action::Deactivate => "nothing depends on them (or they must not exist): deactivate now, delete later",
        Action::Rotate => "in use: create a second key, move the applications, then deactivate the old one",
        Action::FreeSlotThenRotate => {
            "in use, no free key slot: delete the user's inactive (or finish its other) key first"
        }
        Action::FinishRotation => "a newer key exists: check the old key's last use, then deactivate it",
        Action::None => "",
    }
}

/// Usage and last use, for the USAGE column (`in_use 2026-11-27`, `never_used`).
fn usage(f: &Finding) -> String {
    match (f.triage.usage, f.key.as_ref().and_then(|k| k.last_used_at)) {
        (Some(u), Some(t)) => format!("{} {}", u.as_str(), t.strftime("%Y-%m-%d")),
        (Some(u), None) => u.as_str().to_owned(),
        (None, _) => "-".to_owned(),
    }
}

/// What the evidence says, in a few words, for the table's DETAIL column.
fn detail(f: &Finding) -> String {
    match &f.evidence {
        Evidence::Rotation { due_at, .. } => format!("due {}", due_at.strftime("%Y-%m-%d")),
        Evidence::RootKey => "root user key".to_owned(),
        Evidence::ActiveKeys { keys, rotation_under_way } => {
            let note = if *rotation_under_way { ", rotation under way" } else { "" };
            format!("{} active keys{note}", keys.len())
        }
        Evidence::Usage { unused_for, never_used, .. } => {
            let days = whole_days(*unused_for);
            if *never_used { format!("never used, {days}d old") } else { format!("unused {days}d") }
        }
    }
}

/// The finding's deadline: its date, or how many whole days it is past it.
fn deadline(f: &Finding, report: &Report) -> String {
    let as_of = report.run_of(f.account_id.as_str()).as_of;
    match f.due(as_of, &report.run.config.grace_days()) {
        Some(due) if due < as_of => {
            format!("overdue {}d", keyaudit_core::eval::calendar_days(due, as_of, &jiff::tz::TimeZone::UTC))
        }
        Some(due) => due.strftime("%Y-%m-%d").to_string(),
        None => "-".to_owned(),
    }
}

/// What one scan was of and who ran it (each organization of a merged report on its own line, with its as_of).
fn scope_line(out: &mut String, st: &Style, run: &RunInfo, merged: bool) {
    let caller = run.origin.as_ref().map_or("unknown", |o| o.caller_arn.as_str());
    let indent = if merged { "  " } else { "" };
    let as_of = if merged { format!(", as of {}", run.as_of) } else { String::new() };
    let _ = match &run.scope {
        Scope::Organization { id, management_account_id } => {
            writeln!(
                out,
                "{indent}Organization {id} (management account {management_account_id}), caller {caller}{as_of}"
            )
        }
        Scope::StandaloneAccount => {
            let account = run.origin.as_ref().map_or("unknown", |o| o.caller_account_id.as_str());
            writeln!(
                out,
                "{indent}Account {account} is not in an AWS Organization: only it was scanned (caller {caller}){as_of}"
            )
        }
        Scope::Merged(_) => Ok(()),
    };
    if merged && !run.discovery_complete {
        let _ = writeln!(out, "{indent}{}", st.red("its discovery was interrupted"));
    }
}

pub(crate) fn render(report: &Report, fail_on: FailOn, color: bool) -> String {
    let st = Style { color };
    let s = report.summary();
    let cfg = report.run.config;
    let mut out = String::new();
    let rule_ids: Vec<&str> = report.rules.iter().map(|m| m.id).collect();
    let _ = writeln!(
        out,
        "{} {}: rules {}; maximum key age {} days (warn after {}), unused after {} days; as of {}",
        st.bold("keyaudit"),
        env!("CARGO_PKG_VERSION"),
        rule_ids.join(", "),
        cfg.max_age_days(),
        cfg.max_age_days() - cfg.warn_days(),
        cfg.unused_days(),
        report.run.as_of
    );
    let merged = matches!(report.run.scope, Scope::Merged(_));
    if merged {
        let _ = writeln!(out, "Merged report of {} scans (as of the earliest; each one's below):", report.runs().len());
    }
    for run in report.runs() {
        scope_line(&mut out, &st, run, merged);
    }
    if let Some(c) = &report.comparison {
        let _ = writeln!(out, "{}", since_line(&st, c, newly_failing(report)));
    }
    if !report.run.discovery_complete {
        let _ = writeln!(
            out,
            "{}",
            st.red("Discovery was interrupted: accounts it had not found yet are not in this report")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Accounts  {} selected of {} discovered: {} scanned, {} skipped, {}",
        s.accounts_total,
        report.run.accounts_discovered,
        s.accounts_scanned,
        s.accounts_skipped,
        if s.accounts_failed > 0 { st.red(&format!("{} failed", s.accounts_failed)) } else { "0 failed".into() }
    );
    let k = s.keys;
    let _ = writeln!(
        out,
        "Keys      {} found ({} active): {}, {}, {} pass, {} not applicable (inactive){}{}{}",
        s.keys_total,
        s.keys_active,
        if k.fail > 0 { st.red(&format!("{} fail", k.fail)) } else { "0 fail".into() },
        if k.warn > 0 { st.yellow(&format!("{} warn", k.warn)) } else { "0 warn".into() },
        k.pass,
        k.not_applicable,
        if k.resolved > 0 { format!(", {} resolved (deleted since the report)", k.resolved) } else { String::new() },
        if s.keys_suppressed > 0 { format!(", {} under exceptions", s.keys_suppressed) } else { String::new() },
        match s.keys_total.checked_sub(k.fail + k.warn + k.pass + k.not_applicable + k.resolved + s.keys_suppressed) {
            Some(0) | None => String::new(),
            Some(n) => format!(", {n} not evaluated by the selected rules"),
        }
    );
    let sup = s.suppressed;
    if sup.fail + sup.warn > 0 {
        let _ = writeln!(
            out,
            "Suppressed {} fail, {} warn under exceptions (not counted above or in the exit code)",
            sup.fail, sup.warn
        );
    }
    for rule in &report.rules {
        let c = s.findings_by_rule.get(rule.id).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<10}  {:<20}  {} fail, {} warn, {} pass",
            rule.id,
            rule.name,
            if c.fail > 0 { st.red(&c.fail.to_string()) } else { "0".into() },
            c.warn,
            c.pass
        );
    }

    let failed: Vec<Vec<String>> = report
        .accounts
        .iter()
        .filter_map(|r| match &r.status {
            AccountStatus::Failed(reason) => Some(vec![
                r.account.id.to_string(),
                opt(r.account.name.as_deref()),
                opt(r.account.ou_path.as_deref()),
                reason.code.as_str().to_owned(),
                reason.to_string(),
            ]),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\n{}", st.red("Accounts not assessed (the audit is incomplete)"));
        columns(&mut out, &["ACCOUNT", "NAME", "OU PATH", "CODE", "REASON"], &failed);
    }
    let skipped: Vec<Vec<String>> = report
        .accounts
        .iter()
        .filter_map(|r| match &r.status {
            AccountStatus::Skipped(reason) => Some(vec![
                r.account.id.to_string(),
                opt(r.account.name.as_deref()),
                opt(r.account.ou_path.as_deref()),
                reason.to_string(),
            ]),
            _ => None,
        })
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "\n{}", st.bold("Accounts skipped"));
        columns(&mut out, &["ACCOUNT", "NAME", "OU PATH", "REASON"], &skipped);
    }
    let cut_short: Vec<Vec<String>> = report
        .accounts
        .iter()
        .filter_map(|r| match &r.status {
            AccountStatus::Scanned { enrichment, .. } if !enrichment.is_complete() => Some(vec![
                r.account.id.to_string(),
                opt(r.account.name.as_deref()),
                opt(r.account.ou_path.as_deref()),
                enrichment.status().to_owned(),
                format!("{} of {}", enrichment.done, enrichment.wanted),
            ]),
            _ => None,
        })
        .collect();
    if !cut_short.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            st.yellow(
                "Look-ups cut short by --enrichment-timeout (every verdict is in; some key ids or owners are empty)"
            )
        );
        columns(&mut out, &["ACCOUNT", "NAME", "OU PATH", "ENRICHMENT", "LOOK-UPS"], &cut_short);
    }

    // What to do: findings by triage action, and the accounts with the most keys that can be switched off today.
    if !s.actions.is_empty() {
        let _ = writeln!(out, "\n{}", st.bold("What to do"));
        for action in Action::ALL {
            if let Some(n) = s.actions.get(action.as_str()) {
                let _ = writeln!(out, "  {:<22} {n:>5}  {}", action.as_str(), action_meaning(action));
            }
        }
        // Keys, each once, whichever rules said to deactivate it.
        let mut keys = std::collections::HashSet::new();
        let mut by_account: std::collections::BTreeMap<&str, (usize, Option<&AccountRecord>)> = Default::default();
        for (f, record) in with_accounts(report).filter(|(f, _)| f.triage.action == Action::Deactivate) {
            let Some(key) = &f.key else { continue };
            if keys.insert((&f.account_id, &f.user_arn, key.slot)) {
                by_account.entry(f.account_id.as_str()).or_insert((0, record)).0 += 1;
            }
        }
        let mut top: Vec<_> = by_account.into_iter().collect();
        top.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(b.0)));
        if !top.is_empty() {
            let rows: Vec<Vec<String>> = top
                .iter()
                .take(5)
                .map(|(id, (n, record))| {
                    vec![
                        n.to_string(),
                        (*id).to_owned(),
                        opt(record.and_then(|r| r.account.name.as_deref())),
                        opt(record.and_then(|r| r.account.ou_path.as_deref())),
                    ]
                })
                .collect();
            let _ = writeln!(out, "  Most keys to deactivate:");
            columns(&mut out, &["KEYS", "ACCOUNT", "NAME", "OU PATH"], &rows);
        }
    }

    // A section per rule with failing or warning findings, most severe rule first; failures before warnings,
    // then the oldest key first.
    let mut rules = report.rules.clone();
    rules.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(b.id)));
    for rule in rules {
        let mut rows: Vec<(&Finding, Option<&AccountRecord>)> =
            with_accounts(report).filter(|(f, _)| f.rule.id == rule.id && f.counts_against()).collect();
        if rows.is_empty() {
            continue;
        }
        let age = |f: &Finding| f.key.as_ref().map(|k| k.age);
        rows.sort_by(|(a, _), (b, _)| {
            a.verdict.cmp(&b.verdict).then_with(|| age(b).cmp(&age(a))).then_with(|| a.account_id.cmp(&b.account_id))
        });
        let (fails, warns) = rows.iter().fold((0, 0), |(f, w), (x, _)| match x.verdict {
            Verdict::Fail => (f + 1, w),
            _ => (f, w + 1),
        });
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|(f, record)| {
                let key = f.key.as_ref();
                let verdict = match f.since_last_run() {
                    Some(SinceLastRun::StillOpen) if f.was() != Some(f.verdict) => {
                        format!("{} (still open, was {})", f.verdict.as_str(), f.was().map_or("-", Verdict::as_str))
                    }
                    Some(standing) => format!("{} ({})", f.verdict.as_str(), standing.words()),
                    None => f.verdict.as_str().to_owned(),
                };
                vec![
                    verdict,
                    f.account_id.to_string(),
                    opt(record.and_then(|r| r.account.name.as_deref())),
                    opt(record.and_then(|r| r.account.ou_path.as_deref())),
                    f.user_name.clone(),
                    key.map_or_else(|| "-".to_owned(), |k| k.slot.number().to_string()),
                    opt(key.and_then(|k| k.access_key_id.as_ref()).map(|k| k.as_str())),
                    key.map_or_else(|| "-".to_owned(), |k| format!("{}d", k.age_days())),
                    detail(f),
                    deadline(f, report),
                    usage(f),
                    opt(f.owner.as_ref().map(|o| o.value.as_str())),
                    f.triage.action.as_str().to_owned(),
                ]
            })
            .collect();
        let counts = if warns > 0 { format!("{fails} failing, {warns} due soon") } else { format!("{fails} failing") };
        let heading = format!("{} {} [{}]: {} — {counts}", rule.id, rule.name, rule.severity.as_str(), rule.title);
        let _ = writeln!(out, "\n{}", if fails > 0 { st.red(&heading) } else { st.yellow(&heading) });
        columns(
            &mut out,
            &[
                "VERDICT", "ACCOUNT", "NAME", "OU PATH", "USER", "SLOT", "KEY ID", "AGE", "DETAIL", "DEADLINE",
                "USAGE", "OWNER", "ACTION",
            ],
            &cells,
        );
    }

    // Each key once, whichever rules reported it.
    let mut seen = std::collections::HashSet::new();
    let changed: Vec<Vec<String>> = with_accounts(report)
        .filter_map(|(f, record)| {
            let key = f.key.as_ref()?;
            key.change?;
            if !seen.insert((&f.account_id, &f.user_arn, key.slot)) {
                return None;
            }
            Some(vec![
                key.change?.as_str().to_owned(),
                f.account_id.to_string(),
                opt(record.and_then(|r| r.account.name.as_deref())),
                f.user_name.clone(),
                key.slot.number().to_string(),
                opt(key.access_key_id.as_ref().map(|k| k.as_str())),
                format!("{}d", key.age_days()),
                opt(record.and_then(report_time).as_deref()),
            ])
        })
        .collect();
    if !changed.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            st.bold("Keys fixed since their account's credential report (AWS reuses one for 4 hours)")
        );
        columns(&mut out, &["CHANGE", "ACCOUNT", "NAME", "USER", "SLOT", "KEY ID", "AGE", "REPORT OF"], &changed);
    }

    if let Some(statuses) = &report.suppressions {
        suppressions_section(&mut out, &st, statuses, report.run.as_of);
    }
    if let Some(c) = &report.comparison {
        comparison_sections(&mut out, &st, c);
    }

    let verdict_line = match report.outcome(fail_on) {
        Outcome::Incomplete => st.red("INCOMPLETE: some accounts could not be assessed; compliance cannot be claimed"),
        Outcome::Findings if fail_on == FailOn::NewlyFailing => st.red(&format!(
            "FAIL (--fail-on newly-failing): {} finding(s) newly failing (failing now and not in the last run: new, \
             or warning then)",
            newly_failing(report)
        )),
        Outcome::Clean if fail_on == FailOn::NewlyFailing && s.findings.fail > 0 => st.yellow(&format!(
            "PASS (--fail-on newly-failing): 0 newly failing; {} failing finding(s) still open",
            s.findings.fail
        )),
        Outcome::Findings if s.findings.fail > 0 => st.red("FAIL: findings that fail a control were found"),
        Outcome::Findings => st.red("FAIL: findings within a warning window were found (--fail-on warn)"),
        Outcome::Clean if s.findings.warn > 0 => st.yellow("PASS with warnings: keys are due for rotation soon"),
        Outcome::Clean => st.green("PASS: no finding fails a control"),
    };
    let _ = writeln!(out, "\n{verdict_line}");
    out
}

/// Findings newly failing, not under an exception: what `--fail-on newly-failing` counts.
fn newly_failing(report: &Report) -> usize {
    report.findings.iter().filter(|f| f.suppression.is_none() && f.is_newly_failing()).count()
}

/// "Since the last run: N new, M resolved, K still open; J newly failing" (the rows say the same words, see
/// [`SinceLastRun`]; newly failing is what `--fail-on newly-failing` counts: new ones that fail, and still-open ones
/// that warned then).
pub(crate) fn since_line(st: &Style, c: &Comparison, newly_failing: usize) -> String {
    let n = c.counts;
    let new = if n.new > 0 { st.red(&format!("{} new", n.new)) } else { "0 new".to_owned() };
    let resolved = if n.resolved > 0 { st.green(&format!("{} resolved", n.resolved)) } else { "0 resolved".to_owned() };
    let failing = if newly_failing > 0 {
        st.red(&format!("{newly_failing} newly failing"))
    } else {
        "0 newly failing".to_owned()
    };
    format!(
        "Since the last run: {new}, {resolved}, {} still open; {failing} (baseline as of {})",
        n.still_open, c.baseline_as_of
    )
}

/// Exceptions in force (those ending within 14 days first), then the expired and stale ones.
fn suppressions_section(out: &mut String, st: &Style, statuses: &[EntryStatus], as_of: jiff::Timestamp) {
    if statuses.is_empty() {
        return;
    }
    let mut sorted: Vec<&EntryStatus> = statuses.iter().collect();
    let rank = |s: &EntryStatus| match s.state {
        EntryState::Expired => 0,
        EntryState::ExpiringSoon => 1,
        EntryState::Stale => 2,
        EntryState::Unmatched => 3,
        EntryState::InForce => 4,
    };
    sorted.sort_by_key(|s| (rank(s), s.entry.expires));
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|s| {
            let days_left = s.entry.ends_at().duration_since(as_of).as_secs().div_euclid(86_400);
            let state = match s.state {
                EntryState::ExpiringSoon => format!("expires in {days_left}d"),
                EntryState::Expired => "expired".to_owned(),
                EntryState::Stale => "stale: remove".to_owned(),
                other => other.as_str().to_owned(),
            };
            vec![
                s.entry.label.clone(),
                state,
                s.matched.to_string(),
                s.entry.expires.to_string(),
                s.entry.owner.clone(),
                s.entry.reason.clone(),
            ]
        })
        .collect();
    let _ = writeln!(out, "\n{}", st.bold("Exceptions (--suppressions)"));
    columns(out, &["ENTRY", "STATE", "MATCHED", "EXPIRES", "OWNER", "REASON"], &rows);
}

fn coverage(c: Option<Coverage>) -> String {
    c.map_or_else(|| "not selected".to_owned(), |c| c.as_str().to_owned())
}

/// Resolved findings and accounts whose coverage got worse since the baseline.
pub(crate) fn comparison_sections(out: &mut String, st: &Style, c: &Comparison) {
    for (name, was, now) in &c.threshold_changes {
        let _ = writeln!(out, "\n{}", st.yellow(&format!("The baseline used {name} {was}, this run {now}")));
    }
    if !c.resolved.is_empty() {
        let rows: Vec<Vec<String>> = c
            .resolved
            .iter()
            .map(|r| {
                let f = &r.finding;
                vec![
                    f.rule_id.clone(),
                    f.account_id.to_string(),
                    opt(r.account.as_ref().and_then(|a| a.name.as_deref())),
                    f.user_name.clone(),
                    opt(f.access_key_id.as_deref()),
                    f.verdict.as_str().to_owned(),
                    r.now.map_or("gone", Verdict::as_str).to_owned(),
                ]
            })
            .collect();
        let _ = writeln!(out, "\n{}", st.green("Resolved since the last run"));
        columns(out, &["RULE", "ACCOUNT", "NAME", "USER", "KEY ID", "WAS", "NOW"], &rows);
    }
    for (title, list) in [
        ("Accounts that newly failed", &c.newly_failed_accounts),
        ("Accounts the baseline assessed and this run did not", &c.no_longer_assessed),
    ] {
        if list.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|a| {
                vec![
                    a.account.account_id.to_string(),
                    opt(a.account.name.as_deref()),
                    opt(a.account.ou_path.as_deref()),
                    coverage(a.was).replace("not selected", "-"),
                    coverage(a.now),
                    opt(a.account.reason_code.as_deref()),
                ]
            })
            .collect();
        let _ = writeln!(out, "\n{}", st.red(title));
        columns(out, &["ACCOUNT", "NAME", "OU PATH", "WAS", "NOW", "CODE"], &rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::report;

    #[test]
    fn outside_text_cannot_drive_the_terminal() {
        for (raw, want) in [
            ("payments", "payments"),
            ("a\x1b[2Jb", "a\\u{1b}[2Jb"),
            ("x\ny", "x\\u{a}y"),
            ("evil\u{202e}gpj.exe", "evil\\u{202e}gpj.exe"),
            ("Zahlungsverkehr – Süd", "Zahlungsverkehr – Süd"),
        ] {
            assert_eq!(shown(raw), want, "{raw:?}");
        }
        let mut report = report();
        report.accounts[0].account.name = Some("\x1b]0;owned\x07\x1b[8mhidden".into());
        report.accounts[0].account.ou_path = Some("/Root/\x1b[2J".into());
        let id = report.accounts[0].account.id.clone();
        for f in report.findings.iter_mut().filter(|f| f.account_id == id) {
            f.user_name = "bob\x1b[31m".into();
        }
        let out = render(&report, FailOn::Fail, false);
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out}");
        assert!(out.contains("\\u{1b}[8mhidden") && out.contains("/Root/\\u{1b}[2J") && out.contains("bob\\u{1b}[31m"));
    }

    #[test]
    fn table_snapshot() {
        insta::assert_snapshot!(render(&report(), FailOn::Fail, false));
    }
}
