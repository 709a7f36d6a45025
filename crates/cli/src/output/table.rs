//! The terminal summary: accounts by status, keys by verdict, the accounts that could not be assessed, and
//! the failing and warning keys, oldest first.

use std::fmt::Write;

use keyaudit_core::eval::{Finding, Verdict};
use keyaudit_core::report::{AccountRecord, AccountStatus, FailOn, Outcome, Report, Scope};
use keyaudit_core::rules::RuleSet;

use super::with_accounts;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }
    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    fn red(&self, text: &str) -> String {
        self.paint("31;1", text)
    }
    fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
    fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }
}

/// Lays out rows in columns separated by two spaces (widths in characters).
fn columns(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
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
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

fn opt(s: Option<&str>) -> String {
    s.unwrap_or("-").to_owned()
}

fn report_time(record: &AccountRecord) -> Option<String> {
    match record.status {
        AccountStatus::Scanned { report_generated_at } => report_generated_at.map(|t| t.to_string()),
        _ => None,
    }
}

pub(crate) fn render(report: &Report, rules: &RuleSet, color: bool) -> String {
    let st = Style { color };
    let s = report.summary();
    let cfg = report.run.config;
    let mut out = String::new();
    let rule_ids: Vec<&str> = rules.metas().iter().map(|m| m.id).collect();
    let _ = writeln!(
        out,
        "{} {} ({}): active access keys older than {} days fail, older than {} days warn; as of {}",
        st.bold("keyaudit"),
        env!("CARGO_PKG_VERSION"),
        rule_ids.join(", "),
        cfg.max_age_days(),
        cfg.max_age_days() - cfg.warn_days(),
        report.run.as_of
    );
    match &report.run.scope {
        Scope::Organization { id, management_account_id } => {
            let _ = writeln!(
                out,
                "Organization {id} (management account {management_account_id}), caller {}",
                report.run.caller_arn
            );
        }
        Scope::StandaloneAccount => {
            let _ = writeln!(
                out,
                "Account {} is not in an AWS Organization: only it was scanned (caller {})",
                report.run.caller_account_id, report.run.caller_arn
            );
        }
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
    let _ = writeln!(
        out,
        "Keys      {} found ({} active): {}, {}, {} pass, {} not applicable (inactive){}",
        s.keys_total,
        s.keys_active,
        if s.fail > 0 { st.red(&format!("{} fail", s.fail)) } else { "0 fail".into() },
        if s.warn > 0 { st.yellow(&format!("{} warn", s.warn)) } else { "0 warn".into() },
        s.pass,
        s.not_applicable,
        if s.resolved > 0 { format!(", {} resolved (deleted since the report)", s.resolved) } else { String::new() }
    );

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

    for (verdict, title) in
        [(Verdict::Fail, "Failing keys (oldest first)"), (Verdict::Warn, "Keys due soon (oldest first)")]
    {
        let mut keys: Vec<(&Finding, Option<&AccountRecord>)> =
            with_accounts(report).filter(|(f, _)| f.verdict == verdict).collect();
        if keys.is_empty() {
            continue;
        }
        keys.sort_by(|(a, _), (b, _)| b.age.cmp(&a.age).then_with(|| a.account_id.cmp(&b.account_id)));
        let rows: Vec<Vec<String>> = keys
            .iter()
            .map(|(f, record)| {
                vec![
                    format!("{}d", f.age_days()),
                    f.account_id.to_string(),
                    opt(record.and_then(|r| r.account.name.as_deref())),
                    opt(record.and_then(|r| r.account.ou_path.as_deref())),
                    f.user_name.clone(),
                    f.key_slot.number().to_string(),
                    opt(f.access_key_id.as_ref().map(|k| k.as_str())),
                    f.last_rotated.strftime("%Y-%m-%d").to_string(),
                    f.due_at.strftime("%Y-%m-%d").to_string(),
                ]
            })
            .collect();
        let heading = if verdict == Verdict::Fail { st.red(title) } else { st.yellow(title) };
        let _ = writeln!(out, "\n{heading}");
        columns(&mut out, &["AGE", "ACCOUNT", "NAME", "OU PATH", "USER", "SLOT", "KEY ID", "ROTATED", "DUE"], &rows);
    }

    let changed: Vec<Vec<String>> = with_accounts(report)
        .filter_map(|(f, record)| {
            let change = f.change?;
            Some(vec![
                change.as_str().to_owned(),
                f.account_id.to_string(),
                opt(record.and_then(|r| r.account.name.as_deref())),
                f.user_name.clone(),
                f.key_slot.number().to_string(),
                opt(f.access_key_id.as_ref().map(|k| k.as_str())),
                format!("{}d", f.age_days()),
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

    let verdict_line = match report.outcome(FailOn::Fail) {
        Outcome::Incomplete => st.red("INCOMPLETE: some accounts could not be assessed; compliance cannot be claimed"),
        Outcome::Findings => st.red("FAIL: active access keys older than the maximum age were found"),
        Outcome::Clean if s.warn > 0 => st.yellow("PASS with warnings: keys are due for rotation soon"),
        Outcome::Clean => st.green("PASS: no active access key is older than the maximum age"),
    };
    let _ = writeln!(out, "\n{verdict_line}");
    out
}
