//! The HTML report in a real browser (Debian's chromium, driven by playwright-core: tests/browser/check_html.mjs),
//! and hostile names (account, OU, user names and tag values written by whoever runs a member account) in every
//! format: shown as text in the HTML, neutralised in CSV, escaped in the terminal table.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{AS_OF, Emulator, check_exports, repo_root};

const IMG: &str = "<img src=x onerror=alert(1)>";
const SCRIPT_OU: &str = "</script><script>alert(2)</script>";
/// An OU name that would clear the screen and recolour the terminal if printed as is.
const TERMINAL_OU: &str = "Ops\u{1b}[2J\u{1b}[31m";
const FORMULA_USER: &str = "=1+2@evil";

fn hostile_org() -> Value {
    json!({
        "management": {"users": [{"name": "admin", "keys": [{"created": "2026-01-01T00:00:00Z"}]}]},
        "accounts": [{"name": IMG, "users": [
            {"name": FORMULA_USER, "tags": {"owner": "@SUM(1+1)"}, "keys": [{"age_days": 200, "last_used_days": 1}]},
            {"name": "alice", "keys": [{"age_days": 10}, {"age_days": 85, "last_used_days": 3}]}]}],
        "ous": [
            {"name": SCRIPT_OU, "accounts": [{"name": "payments", "users": [
                {"name": "ci", "tags": {"owner": "-payments"}, "keys": [{"age_days": 400, "last_used_days": 200}]},
                {"name": "bob", "keys": [{"age_days": 30, "last_used_days": 2}]}]}]},
            {"name": TERMINAL_OU, "accounts": [{"name": "ops", "users": [
                {"name": "deployer", "keys": [{"age_days": 95, "last_used_days": 1}]}]},
                {"name": "denied"}]}
        ]
    })
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the browser check; panics with its problems.
pub(crate) fn check_in_browser(html: &Path, json: &Path, out: &Path, extra: &[&str]) -> Value {
    let script = repo_root().join("tests/browser/check_html.mjs");
    let output = Command::new("node")
        .arg(script)
        .args([
            "--html".as_ref(),
            html.as_os_str(),
            "--json".as_ref(),
            json.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .args(extra)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the HTML report failed its browser checks:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn the_html_report_shows_the_json_figures_sorts_filters_searches_and_runs_no_hostile_name() {
    let emu = Emulator::start();
    let seeded = emu.seed(hostile_org());
    emu.fault(json!({"service": "sts", "action": "AssumeRole", "account_id": seeded.account("denied"),
                     "error_code": "AccessDenied", "http_status": 403,
                     "message": "User is not authorized to perform: sts:AssumeRole"}));
    let dir = tempfile::tempdir().unwrap();
    // The page goes into an --output-dir that does not exist yet: created with it, as for the other formats.
    let reports = dir.path().join("reports");
    let (html, csv) = (reports.join("report.html"), dir.path().join("report.csv"));
    let run = emu.keyaudit(&[
        "scan",
        "--as-of",
        AS_OF,
        "--output-dir",
        reports.to_str().unwrap(),
        "-o",
        "table=-",
        "-o",
        &format!("html={}", html.display()),
        "-o",
        &format!("csv={}", csv.display()),
    ]);
    assert_eq!(run.code, 3, "the denied account makes the audit incomplete: {}", run.stderr);
    let report = run.report();
    let json_path = dir.path().join("report.json");
    std::fs::write(&json_path, serde_json::to_vec(report).unwrap()).unwrap();

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("The audit is incomplete") && page.contains(&seeded.account("denied")), "the banner");
    let measured = check_in_browser(
        &html,
        &json_path,
        &output_dir(),
        &[
            "--search",
            "deployer",
            "--text",
            IMG,
            "--text",
            SCRIPT_OU,
            "--text",
            FORMULA_USER,
            "--text",
            "@SUM(1+1)",
            "--text",
            r"Ops\u{1b}[2J\u{1b}[31m",
        ],
    );
    assert!(measured["figures"].as_u64().unwrap() >= 20, "{measured}");
    assert!(output_dir().join("report.png").exists(), "the screenshot is written");

    // CSV: formula-like names and tag values are neutralised, and the file still equals the JSON report.
    let text = std::fs::read_to_string(&csv).unwrap();
    for cell in [format!("'{FORMULA_USER}"), "'@SUM(1+1)".to_owned(), "'-payments".to_owned()] {
        assert!(text.contains(&cell), "CSV cell {cell} missing:\n{text}");
    }
    check_exports(&["--report".as_ref(), json_path.as_os_str(), "--csv".as_ref(), csv.as_os_str()]);

    // The terminal table: the OU's escape sequences are shown escaped, never sent to the terminal.
    assert!(!run.stdout.contains('\u{1b}'), "an escape sequence reached the terminal:\n{}", run.stdout);
    assert!(run.stdout.contains(r"Ops\u{1b}[2J\u{1b}[31m"), "{}", run.stdout);
    assert!(run.stdout.contains(IMG), "other names are shown as they are");
    assert!(!run.stderr.contains('\u{1b}'), "an escape sequence reached the log:\n{}", run.stderr);
}

#[test]
fn the_html_report_shows_exceptions_and_what_changed_since_the_baseline() {
    let emu = Emulator::start();
    let seeded = emu.seed(hostile_org());
    let dir = tempfile::tempdir().unwrap();
    let first = emu.keyaudit(&["scan", "--as-of", AS_OF, "--owner-tags", ""]);
    let baseline = dir.path().join("baseline.json");
    std::fs::write(&baseline, serde_json::to_vec(first.report()).unwrap()).unwrap();

    // Between the runs: ci's stale key is deleted (resolved); an exception covers the deployer.
    let ops = seeded.account("ops");
    let payments = seeded.account("payments");
    let ci_key = seeded.key(&payments, "ci", 0);
    emu.change_key(&payments, "ci", "delete", Some(&ci_key));
    let exceptions = dir.path().join("exceptions.toml");
    std::fs::write(
        &exceptions,
        format!(
            "[[suppression]]\nname = \"deployer\"\naccess_key_id = \"{}\"\nreason = \"vendor\"\nowner = \"ops\"\nexpires = 2026-12-31\n",
            seeded.key(&ops, "deployer", 0)
        ),
    )
    .unwrap();
    let html = dir.path().join("report.html");
    let second = emu.keyaudit(&[
        "scan",
        "--as-of",
        AS_OF,
        "--owner-tags",
        "",
        "--baseline",
        baseline.to_str().unwrap(),
        "--suppressions",
        exceptions.to_str().unwrap(),
        "-o",
        &format!("html={}", html.display()),
    ]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    let json_path = dir.path().join("report.json");
    std::fs::write(&json_path, serde_json::to_vec(second.report()).unwrap()).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(
        second.report()["summary"]["since_baseline"]["resolved"],
        2,
        "ci's deleted key: KA-IAM-001 and KA-IAM-004"
    );
    for figure in ["summary.since_baseline.new", "summary.since_baseline.resolved", "summary.suppressed.fail"] {
        assert!(page.contains(&format!("data-figure=\"{figure}\"")), "{figure} is shown");
    }
    assert!(page.contains("<th data-col=\"exception\">") && page.contains("<th data-col=\"baseline\">"));
    assert!(page.contains("Resolved since the last run (2)"));
    // The rows' "Since last run" cells use the headline's words and add up to its figures.
    let since = &second.report()["summary"]["since_baseline"];
    assert!(since["still_open"].as_u64().unwrap() > 0, "{since}");
    assert_eq!(page.matches("<td>new</td></tr>").count() as u64, since["new"].as_u64().unwrap());
    assert_eq!(page.matches("<td>still open</td></tr>").count() as u64, since["still_open"].as_u64().unwrap());
    assert!(!page.contains("<td>updated</td>") && !page.contains("<td>unchanged</td>"));
    check_in_browser(&html, &json_path, &dir.path().join("shots"), &["--search", "bob"]);
}

#[test]
fn a_large_html_report_lays_out_one_page_of_findings_at_a_time() {
    let emu = Emulator::start();
    let users: Vec<Value> = (0..130)
        .map(|u| json!({"name": format!("user-{u:03}"), "keys": [{"age_days": 10 + u}, {"age_days": 200 + u}]}))
        .collect();
    emu.seed(json!({"accounts": [{"name": "big", "users": users}]}));
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let run = emu.keyaudit(&[
        "scan",
        "--as-of",
        AS_OF,
        "--rules",
        "KA-IAM-001",
        "--owner-tags",
        "",
        "-o",
        &format!("html={}", html.display()),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let findings = run.report()["findings"].as_array().unwrap().len();
    assert!(findings > 250, "more findings than one page: {findings}");
    let json_path = dir.path().join("report.json");
    std::fs::write(&json_path, serde_json::to_vec(run.report()).unwrap()).unwrap();
    check_in_browser(&html, &json_path, &dir.path().join("shots"), &["--search", "user-042"]);
}
