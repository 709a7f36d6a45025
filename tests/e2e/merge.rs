//! Issue "Deploy and operate", several organizations: two organizations in one emulator, each scanned from its
//! own management account with its own credentials (as a CI matrix would), merged with `keyaudit merge` into one
//! report, written in every format and checked by the real consumers.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::harness::{
    AS_OF, Emulator, MANAGEMENT, assert_matches_json_schema, check_exports, sarif_multitool_problems,
};

/// The second organization's management account (the first's is the emulator's default, [`MANAGEMENT`]).
const SECOND_MANAGEMENT: &str = "210987654321";

fn second_org() -> Value {
    json!({
        "management_account": SECOND_MANAGEMENT,
        "management": {"users": [{"name": "root-ops", "keys": [{"age_days": 400, "last_used_days": 2}]}]},
        "ous": [{"name": "Prod", "accounts": [{"name": "shop", "users": [
            {"name": "deploy", "tags": {"owner": "shop-team"}, "keys": [{"age_days": 120, "last_used_days": 1}]},
            {"name": "reader", "keys": [{"age_days": 20, "last_used_days": 1}]}]}]}]
    })
}

struct Scanned {
    _dir: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
    /// Organization B's caller: access key id and secret.
    b_creds: (String, String),
    a_json: Value,
    b_json: Value,
}

/// Organization A (the reference organization, `denied` refusing AssumeRole) and organization B, each scanned as
/// its own management account into its own JSON report.
fn scan_both(emu: &Emulator) -> Scanned {
    let first = emu.seed(crate::org_spec());
    crate::deny_assume_role(emu, &first.account("denied"));
    let second = emu.seed(second_org());
    let creds = &second.0["credentials"];
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let a_run = emu.command(&["scan", "--as-of", AS_OF, "-o", &format!("json={}", a.display())]);
    assert_eq!(a_run.status.code(), Some(3), "A: the denied account: {}", String::from_utf8_lossy(&a_run.stderr));
    let b_run = emu.command_with(
        &["scan", "--as-of", AS_OF, "-o", &format!("json={}", b.display())],
        &[
            ("AWS_ACCESS_KEY_ID", creds["access_key_id"].as_str().unwrap()),
            ("AWS_SECRET_ACCESS_KEY", creds["secret_access_key"].as_str().unwrap()),
        ],
    );
    assert_eq!(b_run.status.code(), Some(1), "B: failing keys: {}", String::from_utf8_lossy(&b_run.stderr));
    let read = |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (a_json, b_json) = (read(&a), read(&b));
    assert_eq!(b_json["run"]["management_account_id"], SECOND_MANAGEMENT);
    assert_eq!(a_json["run"]["management_account_id"], MANAGEMENT);
    assert_ne!(a_json["run"]["organization_id"], b_json["run"]["organization_id"]);
    let b_creds =
        (creds["access_key_id"].as_str().unwrap().to_owned(), creds["secret_access_key"].as_str().unwrap().to_owned());
    Scanned { _dir: dir, a, b, b_creds, a_json, b_json }
}

/// Every number under `path` in the merged summary is the sum of the two reports' (objects compared key by key).
fn assert_added_up(a: &Value, b: &Value, merged: &Value, path: &str) {
    match merged {
        Value::Object(m) => {
            for (k, v) in m {
                assert_added_up(&a[k], &b[k], v, &format!("{path}.{k}"));
            }
        }
        Value::Number(n) => {
            let sum = a.as_u64().unwrap_or(0) + b.as_u64().unwrap_or(0);
            assert_eq!(n.as_u64(), Some(sum), "{path}: {a} + {b}");
        }
        other => assert!(other.is_null(), "{path}: {other}"),
    }
}

fn by_fingerprint(findings: &[&Value]) -> Vec<Value> {
    let mut v: Vec<Value> = findings.iter().map(|f| (*f).clone()).collect();
    v.sort_by(|x, y| x["fingerprint"].as_str().cmp(&y["fingerprint"].as_str()));
    v
}

#[test]
fn two_organizations_merge_into_one_report_in_every_format() {
    let emu = Emulator::start();
    let s = scan_both(&emu);
    let out = tempfile::tempdir().unwrap();
    let file = |name: &str| out.path().join(name);
    let spec = |format: &str, name: &str| format!("{format}={}", file(name).display());
    let outputs = [
        ("json", "merged.json"),
        ("sarif", "merged.sarif"),
        ("ocsf", "merged.ocsf.json"),
        ("asff", "merged.asff.json"),
        ("csv", "merged.csv"),
        ("ndjson", "merged.ndjson"),
        ("html", "merged.html"),
        ("table", "merged.txt"),
    ];
    let mut args: Vec<String> = vec!["merge".into(), s.a.display().to_string(), s.b.display().to_string()];
    for (format, name) in outputs {
        args.extend(["-o".into(), spec(format, name)]);
    }
    let run = emu.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "A's denied account keeps the merged report incomplete: {stderr}");
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(file("merged.json")).unwrap()).unwrap();
    assert_matches_json_schema(&merged);

    // run: merged, each organization with its own caller and as_of; no caller of its own.
    let run_info = &merged["run"];
    assert_eq!(run_info["scope"], "merged");
    assert!(run_info["caller_arn"].is_null() && run_info["organization_id"].is_null());
    let orgs = run_info["organizations"].as_array().unwrap();
    let org_ids: Vec<&Value> = orgs.iter().map(|o| &o["organization_id"]).collect();
    assert_eq!(org_ids, [&s.a_json["run"]["organization_id"], &s.b_json["run"]["organization_id"]]);
    assert_eq!(orgs[1]["caller_account_id"], SECOND_MANAGEMENT);
    assert_eq!(orgs[1]["caller_arn"], s.b_json["run"]["caller_arn"]);
    assert_eq!(orgs[0]["as_of"], AS_OF);

    // Accounts and findings: exactly both reports', each tagged with its organization.
    let accounts = merged["accounts"].as_array().unwrap();
    let (a_accounts, b_accounts) = (s.a_json["accounts"].as_array().unwrap(), s.b_json["accounts"].as_array().unwrap());
    assert_eq!(accounts.len(), a_accounts.len() + b_accounts.len());
    for (report, org) in [(&s.a_json, &org_ids[0]), (&s.b_json, &org_ids[1])] {
        for a in report["accounts"].as_array().unwrap() {
            let m = accounts.iter().find(|m| m["account_id"] == a["account_id"]).unwrap();
            assert_eq!(m, a, "an account is carried over unchanged");
            assert_eq!(&m["organization_id"], *org);
        }
    }
    let all: Vec<&Value> =
        s.a_json["findings"].as_array().unwrap().iter().chain(s.b_json["findings"].as_array().unwrap()).collect();
    let merged_findings: Vec<&Value> = merged["findings"].as_array().unwrap().iter().collect();
    assert_eq!(by_fingerprint(&merged_findings), by_fingerprint(&all), "the findings, unchanged");
    assert!(merged_findings.iter().any(|f| f["organization_id"] == *org_ids[1] && f["verdict"] == "fail"));

    // Every total is the sum of the two.
    assert_added_up(&s.a_json["summary"], &s.b_json["summary"], &merged["summary"], "summary");
    assert_eq!(merged["summary"]["accounts"]["failed_by_reason"]["assume_role_denied"], 1);

    // Every export, checked by its consumer (Security Hub: each account's findings imported from that account).
    let arg = |name: &str| file(name).into_os_string();
    check_exports(&[
        "--report".as_ref(),
        &arg("merged.json"),
        "--sarif".as_ref(),
        &arg("merged.sarif"),
        "--ocsf".as_ref(),
        &arg("merged.ocsf.json"),
        "--asff".as_ref(),
        &arg("merged.asff.json"),
        "--endpoint".as_ref(),
        emu.url.as_ref(),
        "--csv".as_ref(),
        &arg("merged.csv"),
        "--ndjson".as_ref(),
        &arg("merged.ndjson"),
    ]);
    assert_eq!(sarif_multitool_problems(&file("merged.sarif")), Vec::<Value>::new());
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(file("merged.sarif")).unwrap()).unwrap();
    let category = sarif["runs"][0]["automationDetails"]["id"].as_str().unwrap();
    assert_eq!(category, format!("keyaudit/{}+{}/", org_ids[0].as_str().unwrap(), org_ids[1].as_str().unwrap()));
    let table = std::fs::read_to_string(file("merged.txt")).unwrap();
    assert!(table.contains("Merged report of 2 scans"), "{table}");
    for org in &org_ids {
        assert!(table.contains(&format!("Organization {}", org.as_str().unwrap())), "{table}");
    }
    crate::html::check_in_browser(&file("merged.html"), &file("merged.json"), out.path(), &[]);
}

#[test]
fn reports_that_do_not_add_up_are_refused_and_one_report_is_written_as_it_is() {
    let emu = Emulator::start();
    let s = scan_both(&emu);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (a, b) = (s.a.display().to_string(), s.b.display().to_string());
    let refused = |args: &[&str], expected: &str| {
        let out = emu.command(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
    };
    let org_a = s.a_json["run"]["organization_id"].as_str().unwrap();
    refused(&["merge", &a, &b, &a], &format!("both hold organization {org_a}"));
    // Organization B scanned again with another maximum age.
    let creds = &emu.seed(json!({"management_account": "310987654321"})).0["credentials"];
    let other = path("c.json");
    emu.command_with(
        &["scan", "--as-of", AS_OF, "--max-age-days", "60", "-o", &format!("json={other}")],
        &[
            ("AWS_ACCESS_KEY_ID", creds["access_key_id"].as_str().unwrap()),
            ("AWS_SECRET_ACCESS_KEY", creds["secret_access_key"].as_str().unwrap()),
        ],
    );
    refused(
        &["merge", &a, &other],
        &format!("{a} and {other} were made with different rule settings (max_age_days 90 and 60)"),
    );
    let mut newer = s.b_json.clone();
    newer["schema_version"] = 2.into();
    let newer_path = path("newer.json");
    std::fs::write(&newer_path, newer.to_string()).unwrap();
    refused(&["merge", &a, &newer_path], &format!("{newer_path}: schema_version 2"));
    refused(&["merge", &a, &b, "-o", &format!("json={a}")], "is one of the reports being merged");
    refused(&["merge", &a, &path("missing.json")], "missing.json: cannot read the file");

    // Since the last run: kept when every report had a baseline (added up), else left out with a warning, and then
    // --fail-on newly-failing has nothing to judge by.
    let (a2, b2) = (path("a2.json"), path("b2.json"));
    emu.command(&["scan", "--as-of", AS_OF, "--baseline", &a, "-o", &format!("json={a2}")]);
    let creds = &s.b_creds;
    emu.command_with(
        &["scan", "--as-of", AS_OF, "--baseline", &b, "-o", &format!("json={b2}")],
        &[("AWS_ACCESS_KEY_ID", &creds.0), ("AWS_SECRET_ACCESS_KEY", &creds.1)],
    );
    let since = path("since.json");
    let out = emu.command(&["merge", &a2, &b2, "--fail-on", "newly-failing", "-o", &format!("json={since}")]);
    assert_eq!(out.status.code(), Some(3), "A's denied account: {}", String::from_utf8_lossy(&out.stderr));
    let read = |p: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (ra, rb, m) = (read(&a2), read(&b2), read(&since));
    assert_added_up(
        &ra["summary"]["since_baseline"],
        &rb["summary"]["since_baseline"],
        &m["summary"]["since_baseline"],
        "since",
    );
    assert_eq!(m["baseline"]["as_of"], AS_OF);
    let out = emu.command(&["merge", &a2, &b, "-o", &format!("json={}", path("mixed.json"))]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("only 1 of the 2 reports were compared with a baseline"), "{stderr}");
    assert!(read(&path("mixed.json"))["summary"]["since_baseline"].is_null());
    refused(
        &["merge", &a2, &b, "--fail-on", "newly-failing"],
        "--fail-on newly-failing: every merged report must have been made with --baseline",
    );

    // A merged report is not a baseline: each organization compares with its own.
    let merged = path("merged.json");
    let out = emu.command(&["merge", &a, &b, "-o", &format!("json={merged}")]);
    assert_eq!(out.status.code(), Some(3));
    refused(
        &["scan", "--as-of", AS_OF, "--baseline", &merged],
        "a merged report (keyaudit merge) spans several organizations",
    );
    refused(&["diff", &a, &merged], "a merged report");

    // One report alone is written as it is: `merge` re-exports a saved report.
    let again = path("again.json");
    let out = emu.command(&["merge", &a, "-o", &format!("json={again}")]);
    assert_eq!(out.status.code(), Some(3), "its outcome: {}", String::from_utf8_lossy(&out.stderr));
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(again, s.a_json);
}
