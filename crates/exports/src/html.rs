//! The HTML report: one self-contained file (inline CSS, script and SVG charts; no request of any kind when
//! opened) rendered by minijinja with HTML auto-escaping from the JSON report model, plus two views computed
//! here: active keys by age and the OU tree with failing keys.
//!
//! Names in the report come from member accounts (account, OU and user names, tag values) and are treated as
//! hostile: the template only writes values into text and double-quoted attributes, where minijinja escapes
//! `& < > " ' /`; the file carries no inline data in `<script>`; and a Content-Security-Policy `<meta>` allows
//! only the `<style>` and the two `<script>`s written here, by their SHA-256 hashes, so an injection that slipped
//! through would still not run. Without JavaScript every table is in the page; the script adds sorting,
//! filtering and the row count. Control and bidi-override characters in any value are shown escaped (`\u{1b}`), as
//! in the terminal table.

use std::collections::{BTreeMap, HashMap};

use crate::{ExportError, Result};
use base64::Engine as _;
use keyaudit_core::eval::Verdict;
use keyaudit_core::ids::AccountId;
use keyaudit_core::inventory::KeySlot;
use keyaudit_core::report::{AccountStatus, Report, Scope};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use keyaudit_report::schema::Finding;

use super::with_accounts;

const TEMPLATE: &str = include_str!("html/report.html");
const ROW_TEMPLATE: &str = include_str!("html/row.html");
const STYLE: &str = include_str!("html/report.css");
const SCRIPT: &str = include_str!("html/report.js");
/// Run first, in `<head>`: marks the page as scripted, so that the first layout holds one page of findings only.
const HEAD_SCRIPT: &str = "document.documentElement.classList.add(\"js\");";

/// The age buckets of the chart (upper bounds in whole days, inclusive), after CIS's 90 days and the default
/// 14-day warning window.
const AGE_BUCKETS: [(&str, i64); 7] =
    [("≤ 30", 30), ("31–60", 60), ("61–76", 76), ("77–90", 90), ("91–180", 180), ("181–365", 365), ("> 365", i64::MAX)];

/// The verdict classes of the chart, bottom to top.
const CHART_CLASSES: [&str; 4] = ["fail", "warn", "pass", "suppressed"];

/// Findings laid out at a time when script runs (the rest: "Show more", "Show all").
const PAGE_SIZE: usize = 250;

#[derive(Serialize)]
struct Page {
    /// The JSON report without its findings (they are in `rows`).
    report: Value,
    /// The findings table's rows, rendered one finding at a time (`row.html`): failing first, then warning,
    /// passing, not applicable; oldest key first.
    rows: minijinja::Value,
    row_count: usize,
    csp: String,
    style: &'static str,
    head_script: &'static str,
    script: &'static str,
    chart: Chart,
    ou_tree: Vec<OuNode>,
    filters: Filters,
    page_size: usize,
}

#[derive(Serialize, Default)]
struct Filters {
    rules: Vec<String>,
    actions: Vec<String>,
    ous: Vec<String>,
}

/// A stacked bar chart, laid out here (the template only writes the numbers into SVG attributes).
#[derive(Serialize)]
struct Chart {
    width: u32,
    height: u32,
    total: usize,
    bars: Vec<Bar>,
    legend: Vec<(&'static str, usize)>,
}

#[derive(Serialize)]
struct Bar {
    label: &'static str,
    total: usize,
    x: u32,
    width: u32,
    label_y: u32,
    total_y: u32,
    segments: Vec<Segment>,
}

#[derive(Serialize)]
struct Segment {
    class: &'static str,
    count: usize,
    y: u32,
    height: u32,
}

/// One OU with its accounts' counts, including every OU below it.
#[derive(Serialize, Default)]
struct OuNode {
    name: String,
    path: String,
    accounts: usize,
    failed_accounts: usize,
    fail_keys: usize,
    warn_keys: usize,
    children: Vec<OuNode>,
}

pub(crate) fn render(report: &Report) -> Result<Vec<u8>> {
    // The report's own figures, accounts and exceptions as JSON (small); the findings are written row by row below,
    // so that the page never holds every finding's data at once (2 × 1,000 accounts: 259 MiB when it did).
    let mut value = serde_json::to_value(keyaudit_report::schema::Report::without_findings(report))?;
    if matches!(report.run.scope, Scope::Merged(_)) {
        // Each organization has its own /Root: its paths shown (and filtered) under the organization's id.
        for item in value.get_mut("accounts").and_then(Value::as_array_mut).into_iter().flatten() {
            let account = item["account_id"].as_str().unwrap_or_default().to_owned();
            let path = tree_path(report, &account, item["ou_path"].as_str());
            item["ou_path"] = Value::String(path);
        }
    }
    let env = environment()?;
    let ou_tree = ou_tree(report);
    let page = Page {
        report: value,
        rows: minijinja::Value::from_safe_string(rows(report, &env)?),
        row_count: report.findings.len(),
        csp: csp(),
        style: STYLE,
        head_script: HEAD_SCRIPT,
        script: SCRIPT,
        chart: age_chart(report),
        filters: filters(report, &ou_tree),
        ou_tree,
        page_size: PAGE_SIZE,
    };
    let html = env
        .get_template("report.html")
        .and_then(|t| t.render(minijinja::value::Serde(&page)))
        .map_err(|source| ExportError::Template { what: "rendering the HTML report", source })?;
    Ok(html.into_bytes())
}

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // Every value written into the page: control and bidi-override characters shown as `\u{..}` escapes, as in the
    // terminal table (browsers draw them as boxes or let them reorder text, so look-alike names could not be told
    // apart), then HTML-escaped. Only the page's own style and scripts are written as they are (`|safe`), and the
    // rows, rendered by this same environment.
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(text) if !value.is_safe() => {
            minijinja::escape_formatter(out, state, &minijinja::Value::from(super::wording::shown(text)))
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template("report.html", TEMPLATE)
        .map_err(|source| ExportError::Template { what: "the HTML report's template", source })?;
    env.add_template("row.html", ROW_TEMPLATE)
        .map_err(|source| ExportError::Template { what: "the HTML report's row template", source })?;
    Ok(env)
}

/// The findings table's rows, each rendered from its JSON finding and dropped before the next: failing first,
/// then warning, passing, not applicable; oldest key first.
fn rows(report: &Report, env: &Environment<'_>) -> Result<String> {
    let rank = |v: Verdict| match v {
        Verdict::Fail => 0,
        Verdict::Warn => 1,
        Verdict::Pass => 2,
        Verdict::NotApplicable | Verdict::Resolved => 3,
    };
    let mut order: Vec<_> = with_accounts(report).collect();
    order.sort_by_cached_key(|(f, _)| {
        (rank(f.verdict), std::cmp::Reverse(f.key.as_ref().map_or(-1, |k| k.age.as_secs())))
    });
    let template = env
        .get_template("row.html")
        .map_err(|source| ExportError::Template { what: "the HTML report's row template", source })?;
    let (has_suppressions, has_baseline) = (report.suppressions.is_some(), report.comparison.is_some());
    let merged = matches!(report.run.scope, Scope::Merged(_));
    let mut out = String::new();
    for (i, (f, record)) in order.into_iter().enumerate() {
        let finding = Finding::of(report, f, record);
        let ou_path = record.and_then(|r| r.account.ou_path.as_deref());
        let ou_path =
            if merged { Some(tree_path(report, f.account_id.as_str(), ou_path)) } else { ou_path.map(str::to_owned) };
        let as_of = report.run_of(f.account_id.as_str()).as_of;
        let overdue_days = finding
            .due
            .filter(|due| *due < as_of)
            .map(|due| keyaudit_core::eval::calendar_days(due, as_of, &jiff::tz::TimeZone::UTC));
        let row = minijinja::context! {
            f => minijinja::Value::from(minijinja::value::Serde(&finding)),
            ou_path,
            overdue_days,
            later => i >= PAGE_SIZE,
            has_suppressions,
            has_baseline,
        };
        out.push_str(
            &template
                .render(row)
                .map_err(|source| ExportError::Template { what: "rendering the HTML report's findings", source })?,
        );
    }
    Ok(out)
}

/// Allows nothing but the page's own `<style>` and `<script>`, by hash.
fn csp() -> String {
    let hash = |text: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}' 'sha256-{}'; img-src data:; \
         base-uri 'none'; form-action 'none'",
        hash(STYLE),
        hash(HEAD_SCRIPT),
        hash(SCRIPT)
    )
}

/// The values the filter menus offer, each once, sorted: the rules and actions of the findings, and every OU of
/// the tree (so that "show findings" on an OU without findings filters to none rather than to all).
fn filters(report: &Report, tree: &[OuNode]) -> Filters {
    let rules: std::collections::BTreeSet<&str> = report.findings.iter().map(|f| f.rule.id).collect();
    let actions: std::collections::BTreeSet<&str> = report.findings.iter().map(|f| f.triage.action.as_str()).collect();
    fn paths(nodes: &[OuNode], out: &mut Vec<String>) {
        for node in nodes {
            out.push(node.path.clone());
            paths(&node.children, out);
        }
    }
    let mut ous = Vec::new();
    paths(tree, &mut ous);
    ous.sort();
    Filters {
        rules: rules.into_iter().map(str::to_owned).collect(),
        actions: actions.into_iter().map(str::to_owned).collect(),
        ous,
    }
}

/// Active keys by age, each once, coloured by its worst verdict over the findings that count (a key whose
/// findings are all under exceptions is `suppressed`) — the same rule as `summary.keys`.
fn age_chart(report: &Report) -> Chart {
    let standings = report.key_standings();
    let mut ages: BTreeMap<(&AccountId, &str, KeySlot), i64> = BTreeMap::new();
    for f in &report.findings {
        if let Some(key) = f.key.as_ref().filter(|k| k.is_active()) {
            ages.insert((&f.account_id, f.user_arn.as_str(), key.slot), key.age_days());
        }
    }
    let mut counts = [[0usize; CHART_CLASSES.len()]; AGE_BUCKETS.len()];
    for (key, age) in ages {
        let bucket = AGE_BUCKETS.iter().position(|(_, max)| age <= *max).unwrap_or(AGE_BUCKETS.len() - 1);
        let class = match standings.get(&key).and_then(|s| s.counted()) {
            Some(Verdict::Fail) => 0,
            Some(Verdict::Warn) => 1,
            Some(Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved) => 2,
            None => 3,
        };
        counts[bucket][class] += 1;
    }
    let (width, height, top, bottom, left) = (720u32, 240u32, 24u32, 40u32, 16u32);
    let plot = height - top - bottom;
    let slot = (width - 2 * left) / AGE_BUCKETS.len() as u32;
    let max = counts.iter().map(|c| c.iter().sum::<usize>()).max().unwrap_or(0).max(1);
    let scale = |n: usize| u32::try_from(n * plot as usize / max).unwrap_or(plot);
    let bars = AGE_BUCKETS
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(i, ((label, _), c))| {
            let mut y = top + plot;
            let segments = CHART_CLASSES
                .iter()
                .zip(c)
                .filter(|(_, n)| *n > 0)
                .map(|(class, count)| {
                    let h = scale(count).max(1);
                    y -= h;
                    Segment { class, count, y, height: h }
                })
                .collect();
            Bar {
                label,
                total: c.iter().sum(),
                x: left + i as u32 * slot + slot / 6,
                width: slot * 2 / 3,
                label_y: height - bottom + 18,
                total_y: y.saturating_sub(6),
                segments,
            }
        })
        .collect::<Vec<Bar>>();
    let legend = CHART_CLASSES
        .iter()
        .enumerate()
        .map(|(i, class)| (*class, counts.iter().map(|c| c[i]).sum()))
        .filter(|(class, n)| *n > 0 || *class != "suppressed")
        .collect();
    Chart { width, height, total: bars.iter().map(|b| b.total).sum(), bars, legend }
}

/// Splits an OU path at the `/` that separate OUs (keyaudit writes `\/` and `\\` inside a name).
fn split_path(path: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '/' => {
                if !current.is_empty() {
                    segments.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

fn join_path(segments: &[String]) -> String {
    segments.iter().fold(String::new(), |path, s| format!("{path}/{s}"))
}

/// Where an account sits in the OU tree: its OU path, under its organization's id (or its own account id for a
/// standalone account) in a merged report.
fn tree_path(report: &Report, account: &str, ou_path: Option<&str>) -> String {
    let ou_path = ou_path.unwrap_or("/Root");
    if !matches!(report.run.scope, Scope::Merged(_)) {
        return ou_path.to_owned();
    }
    let run = report.run_of(account);
    match run.scope.organization_id() {
        Some(org) => format!("/{org}{ou_path}"),
        None => format!("/{}", run.origin.as_ref().map_or(account, |o| o.caller_account_id.as_str())),
    }
}

/// An escaped path segment as the OU's name (`a\/b` → `a/b`).
fn segment_name(segment: &str) -> String {
    let mut name = String::new();
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        name.push(if c == '\\' { chars.next().unwrap_or(c) } else { c });
    }
    name
}

/// The OU tree of the selected accounts, with failing and warning keys (each key once, findings under an
/// exception left out) and failed accounts counted into every OU above them; largest failing count first.
fn ou_tree(report: &Report) -> Vec<OuNode> {
    #[derive(Default)]
    struct Counts {
        accounts: usize,
        failed: usize,
        fail: usize,
        warn: usize,
    }
    let mut worst: HashMap<(&AccountId, &str, KeySlot), Verdict> = HashMap::new();
    for f in report.findings.iter().filter(|f| f.counts_against()) {
        if let Some(key) = &f.key {
            let v = worst.entry((&f.account_id, f.user_arn.as_str(), key.slot)).or_insert(f.verdict);
            *v = (*v).min(f.verdict);
        }
    }
    let mut per_account: HashMap<&AccountId, (usize, usize)> = HashMap::new();
    for ((account, ..), verdict) in worst {
        let c = per_account.entry(account).or_default();
        if verdict == Verdict::Fail {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    let mut by_path: BTreeMap<Vec<String>, Counts> = BTreeMap::new();
    for record in &report.accounts {
        let segments = split_path(&tree_path(report, record.account.id.as_str(), record.account.ou_path.as_deref()));
        let (fail, warn) = per_account.get(&record.account.id).copied().unwrap_or_default();
        let failed = matches!(record.status, AccountStatus::Failed(_));
        for end in 1..=segments.len() {
            let c = by_path.entry(segments[..end].to_vec()).or_default();
            c.accounts += 1;
            c.failed += usize::from(failed);
            c.fail += fail;
            c.warn += warn;
        }
    }
    fn build(prefix: &[String], by_path: &BTreeMap<Vec<String>, Counts>) -> Vec<OuNode> {
        let mut nodes: Vec<OuNode> = by_path
            .iter()
            .filter(|(path, _)| path.len() == prefix.len() + 1 && path.starts_with(prefix))
            .map(|(path, c)| OuNode {
                name: segment_name(&path[prefix.len()]),
                path: join_path(path),
                accounts: c.accounts,
                failed_accounts: c.failed,
                fail_keys: c.fail,
                warn_keys: c.warn,
                children: build(path, by_path),
            })
            .collect();
        nodes.sort_by(|a, b| b.fail_keys.cmp(&a.fail_keys).then_with(|| a.name.cmp(&b.name)));
        nodes
    }
    build(&[], &by_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::report;

    #[test]
    fn ou_paths_split_at_unescaped_slashes() {
        assert_eq!(split_path("/Root/Prod/Payments"), ["Root", "Prod", "Payments"]);
        assert_eq!(split_path(r"/Root/a\/b/c\\"), ["Root", r"a\/b", r"c\\"]);
        assert_eq!(segment_name(r"a\/b"), "a/b");
        assert_eq!(join_path(&split_path(r"/Root/a\/b")), r"/Root/a\/b");
    }

    #[test]
    fn the_policy_names_the_exact_style_and_script() {
        let html = String::from_utf8(render(&report()).unwrap()).unwrap();
        let policy = csp();
        let escaped = policy.replace('\'', "&#x27;").replace('/', "&#x2f;");
        assert!(html.contains(&format!("content=\"{escaped}\"")), "the CSP meta is there");
        assert!(html.contains(&format!("<style>{STYLE}</style>")), "the style is written exactly as hashed");
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")), "the script is written exactly as hashed");
        assert!(html.contains(&format!("<script>{HEAD_SCRIPT}</script>")), "so is the head script");
        assert_eq!(html.matches("<script").count(), 2, "two scripts and no inline data");
        assert!(!html.contains(" style=\"") && !html.contains(" onclick="), "no inline style or handler");
    }

    #[test]
    fn hostile_names_are_text() {
        let mut report = report();
        report.accounts[0].account.name = Some("<img src=x onerror=alert(1)>".into());
        report.accounts[0].account.ou_path = Some("/Root/</script><script>alert(2)</script>".into());
        let html = String::from_utf8(render(&report).unwrap()).unwrap();
        assert!(!html.contains("<img") && !html.contains("alert(2)</script>"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("&lt;&#x2f;script&gt;&lt;script&gt;alert(2)&lt;&#x2f;script&gt;"));
    }

    #[test]
    fn control_and_bidi_characters_are_shown_escaped_and_the_pages_own_code_is_not() {
        let mut report = report();
        report.accounts[0].account.name = Some("pay\u{202e}lanigiro".into());
        report.accounts[0].account.ou_path = Some("/Root/Ops\u{1b}[2J".into());
        let html = String::from_utf8(render(&report).unwrap()).unwrap();
        assert!(!html.contains('\u{1b}') && !html.contains('\u{202e}'), "a control character reached the page");
        assert!(html.contains(r"pay\u{202e}lanigiro") && html.contains(r"Ops\u{1b}[2J"), "shown escaped");
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")), "the page's own script is as hashed");
    }

    #[test]
    fn chart_and_tree_count_keys_once() {
        let report = report();
        let chart = age_chart(&report);
        let active_with_findings: std::collections::HashSet<_> = report
            .findings
            .iter()
            .filter_map(|f| f.key.as_ref().filter(|k| k.is_active()).map(|k| (&f.account_id, &f.user_arn, k.slot)))
            .collect();
        assert_eq!(chart.total, active_with_findings.len());
        assert_eq!(chart.bars.len(), AGE_BUCKETS.len());
        let tree = ou_tree(&report);
        assert_eq!(tree.len(), 1, "one root");
        assert_eq!(tree[0].name, "Root");
        assert_eq!(tree[0].accounts, report.accounts.len());
        let s = report.summary();
        assert_eq!(tree[0].fail_keys, s.keys.fail, "the root counts every failing key, as the summary does");
        assert_eq!(tree[0].failed_accounts, s.accounts_failed);
        let menu = filters(&report, &tree).ous;
        let mut every: Vec<String> = report
            .accounts
            .iter()
            .flat_map(|r| {
                let segments = split_path(r.account.ou_path.as_deref().unwrap_or("/Root"));
                (1..=segments.len()).map(move |end| join_path(&segments[..end]))
            })
            .collect();
        every.sort();
        every.dedup();
        assert_eq!(menu, every, "every OU of every account, findings or not, is in the OU menu");
    }
}
