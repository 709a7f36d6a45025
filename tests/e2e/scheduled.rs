//! Issue "Scheduled runs": exceptions that expire (`--suppressions`) and the change since the last run
//! (`--baseline`, `keyaudit diff`, `--fail-on newly-failing`), through the real binary, the emulator and the exports'
//! consumers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::harness::{self, AS_OF, Emulator, Run, Seeded};
use super::{check_every_export, export_files, file_with_suffix};

/// Ten days after AS_OF: the second scheduled run.
const AS_OF_2: &str = "2026-12-08T12:00:00Z";
/// Thirty days after AS_OF.
const AS_OF_3: &str = "2026-12-28T12:00:00Z";

const OLD: &str = "2026-05-12T12:00:00Z";

fn seed(emu: &Emulator) -> Seeded {
    let key = |created: &str| json!({"created": created, "last_used": "2026-11-27T12:00:00Z"});
    emu.seed(json!({"ous": [{"name": "Prod", "accounts": [{"name": "work", "users": [
        // Rotated between the runs: a new key created, the stale one deleted.
        {"name": "rotator", "keys": [key(OLD)]},
        // Deactivated between the runs.
        {"name": "deactivator", "keys": [key(OLD)]},
        // Two keys: the stale one deleted between the runs, the other (74 days old at AS_OF) ages into warn,
        // then fail, keeping its fingerprint through the slot shift.
        {"name": "ager", "keys": [key("2026-06-01T12:00:00Z"), key("2026-09-15T12:00:00Z")]},
        // Under an exception that ends on 2026-12-01: suppressed in the first run, back in the second.
        {"name": "vendor", "keys": [key(OLD)]},
        // Under an exception in force in every run.
        {"name": "steady", "keys": [key("2026-02-01T12:00:00Z")]},
        // Gets a stale key between the runs.
        {"name": "newbie", "keys": []}
    ]}]}]}))
}

const SUPPRESSIONS: &str = r#"
# Accepted exceptions, reviewed monthly by the security team.
[[suppression]]
name = "vendor-contract"
user_arn = "arn:aws:iam::*:user/vendor"
rules = ["stale-access-key"]
reason = "Vendor X rotates only when the contract renews"
owner = "alice@example.com"
expires = 2026-12-01

[[suppression]]
name = "steady-ok"
ou_path = "/Root/Prod"
user_arn = "arn:aws:iam::*:user/st*"
reason = "Legacy batch host, decommissioned in Q1"
owner = "platform-team"
expires = "2027-03-31"

[[suppression]]
name = "nobody"
user_arn = "arn:aws:iam::*:user/nobody"
reason = "A user that no longer exists"
owner = "bob"
expires = 2027-01-31
"#;

fn scan(emu: &Emulator, as_of: &str, extra: &[&str]) -> Run {
    let mut args = vec!["scan", "--as-of", as_of, "-o", "table", "--rules", "KA-IAM-001", "--owner-tags", ""];
    args.extend_from_slice(extra);
    emu.keyaudit(&args)
}

fn save(dir: &Path, name: &str, run: &Run) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, run.report().to_string()).unwrap();
    path
}

/// user → (verdict, baseline_state, suppression entry, fingerprint) of each KA-IAM-001 finding.
fn by_user(run: &Run) -> BTreeMap<String, Vec<(Value, Value, Value, String)>> {
    let mut map: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for f in run.report()["findings"].as_array().unwrap() {
        map.entry(f["user_name"].as_str().unwrap().to_owned()).or_default().push((
            f["verdict"].clone(),
            f["baseline_state"].clone(),
            f["suppression"]["entry"].clone(),
            f["fingerprint"].as_str().unwrap().to_owned(),
        ));
    }
    map
}

fn stderr_lines<'a>(run: &'a Run, needle: &str) -> Vec<&'a str> {
    run.stderr.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn a_second_run_reports_exactly_what_changed_and_the_exit_code_follows_fail_on() {
    let emu = Emulator::start();
    let s = seed(&emu);
    let work = s.account("work");
    let dir = tempfile::tempdir().unwrap();
    let suppressions = dir.path().join("suppressions.toml");
    std::fs::write(&suppressions, SUPPRESSIONS).unwrap();
    let sup = suppressions.display().to_string();

    // Run 1: the baseline.
    let run1 = scan(&emu, AS_OF, &["--suppressions", &sup]);
    assert_eq!(run1.code, 1, "rotator, deactivator, ager's old key fail\n{}", run1.stderr);
    harness::assert_matches_json_schema(run1.report());
    let first = by_user(&run1);
    assert_eq!(first["vendor"][0].2, "vendor-contract", "suppressed while in force");
    assert_eq!(first["steady"][0].2, "steady-ok");
    assert_eq!(first["ager"][1].0, "pass");
    assert!(first["ager"].iter().all(|f| f.1.is_null()), "no baseline, no baseline_state");
    assert_eq!(run1.report()["summary"]["suppressed"]["fail"], 2);
    let r1_states: BTreeMap<&str, &Value> = run1.report()["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["entry"].as_str().unwrap(), &e["state"]))
        .collect();
    assert_eq!(
        r1_states,
        BTreeMap::from([
            ("nobody", &json!("stale")),
            ("steady-ok", &json!("in_force")),
            ("vendor-contract", &json!("expiring_soon"))
        ])
    );
    assert_eq!(stderr_lines(&run1, "entry nobody (line 19) matched no failing or warning finding").len(), 1);
    assert!(run1.stdout.contains("Exceptions (--suppressions)"), "{}", run1.stdout);
    let baseline = save(dir.path(), "run1.json", &run1);

    // Between the runs.
    let ager_old = s.key(&work, "ager", 0);
    let rotator_old = s.key(&work, "rotator", 0);
    let new_key = emu.change_key(&work, "rotator", "create", None);
    emu.control(
        "POST",
        "keys/backdate",
        &json!({"account_id": work, "user_name": "rotator", "access_key_id": new_key, "created": "2026-12-01T12:00:00Z"}),
    );
    emu.change_key(&work, "rotator", "delete", Some(&rotator_old));
    emu.change_key(&work, "deactivator", "deactivate", Some(&s.key(&work, "deactivator", 0)));
    emu.change_key(&work, "ager", "delete", Some(&ager_old));
    let newbie_key = emu.change_key(&work, "newbie", "create", None);
    emu.control(
        "POST",
        "keys/backdate",
        &json!({"account_id": work, "user_name": "newbie", "access_key_id": newbie_key, "created": OLD}),
    );
    emu.control("DELETE", "reports", &Value::Null);

    // Run 2, ten days later: with the baseline, the exceptions, and --fail-on newly-failing.
    let b = baseline.display().to_string();
    let out = dir.path().join("run2");
    let mut args = vec![
        "--suppressions",
        sup.as_str(),
        "--baseline",
        b.as_str(),
        "--fail-on",
        "newly-failing",
        "--as-of",
        AS_OF_2,
    ];
    args.extend(["--rules", "KA-IAM-001", "--owner-tags", "", "-o", "table=-"]);
    let run2 = export_files(&emu, &out, &args);
    assert_eq!(run2.code, 1, "newbie's key is a new failing finding\n{}", run2.stderr);
    harness::assert_matches_json_schema(run2.report());
    let second = by_user(&run2);
    let states = |user: &str| -> Vec<(Value, Value, Value)> {
        second.get(user).map_or_else(Vec::new, |v| v.iter().map(|f| (f.0.clone(), f.1.clone(), f.2.clone())).collect())
    };
    assert_eq!(states("rotator"), [(json!("pass"), json!("new"), Value::Null)], "the new key, 7 days old");
    assert_eq!(states("ager"), [(json!("warn"), json!("updated"), Value::Null)], "aged into warn");
    assert_eq!(second["ager"][0].3, first["ager"][1].3, "same key, same fingerprint after the slot shift");
    assert_eq!(states("vendor"), [(json!("fail"), json!("unchanged"), Value::Null)], "its exception expired");
    assert_eq!(states("steady"), [(json!("fail"), json!("unchanged"), json!("steady-ok"))]);
    assert_eq!(states("newbie"), [(json!("fail"), json!("new"), Value::Null)]);
    // The emulator, like moto, keeps an inactive key's last_rotated in the report (AWS may show N/A, and the
    // finding is then gone instead: resolved either way, which core's baseline tests cover).
    assert_eq!(states("deactivator"), [(json!("not_applicable"), json!("updated"), Value::Null)]);

    let report = run2.report();
    let mut resolved: Vec<(String, String, Value)> = report["resolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["user_name"].as_str().unwrap().to_owned(),
                r["baseline_verdict"].as_str().unwrap().to_owned(),
                r["verdict"].clone(),
            )
        })
        .collect();
    resolved.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        resolved,
        [
            ("ager".to_owned(), "fail".to_owned(), Value::Null),
            ("deactivator".to_owned(), "fail".to_owned(), json!("not_applicable")),
            ("rotator".to_owned(), "fail".to_owned(), Value::Null),
        ]
    );
    assert_eq!(report["summary"]["since_baseline"]["new"], 2, "newbie fails, ager warns");
    assert_eq!(report["summary"]["since_baseline"]["still_open"], 1, "vendor");
    assert_eq!(report["summary"]["since_baseline"]["resolved"], 3);
    // One vocabulary (issue "A new user's first hour"): each finding's since_last_run, the table's rows and the
    // headline say the same "new" and "still open".
    let standing: BTreeMap<&str, &str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| Some((f["user_name"].as_str().unwrap(), f["since_last_run"].as_str()?)))
        .collect();
    assert_eq!(
        standing,
        BTreeMap::from([("ager", "new"), ("deactivator", "resolved"), ("newbie", "new"), ("vendor", "still_open")])
    );
    let table = &run2.stdout;
    assert!(table.contains("Since the last run: 2 new, 3 resolved, 1 still open; 1 newly failing"), "{table}");
    for (user, label) in [("newbie", "fail (new)"), ("ager", "warn (new)"), ("vendor", "fail (still open)")] {
        assert!(table.lines().any(|l| l.contains(label) && l.contains(user)), "{user}: {label}\n{table}");
    }
    assert!(!table.contains("(updated)") && !table.contains("(unchanged)"), "{table}");
    assert_eq!(report["baseline"]["as_of"], AS_OF);
    assert!(report["baseline"]["accounts_newly_failed"].as_array().unwrap().is_empty());
    let vendor_entry =
        report["suppressions"].as_array().unwrap().iter().find(|e| e["entry"] == "vendor-contract").unwrap();
    assert_eq!((&vendor_entry["state"], &vendor_entry["matched"]), (&json!("expired"), &json!(1)));

    // The exports say the same, and their consumers accept them.
    check_every_export(&emu, &out, &run2);
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(file_with_suffix(&out, ".sarif")).unwrap()).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let fingerprint = |r: &Value| r["partialFingerprints"]["keyaudit/v2"].as_str().unwrap().to_owned();
    let absent: Vec<&Value> = results.iter().filter(|r| r["baselineState"] == "absent").collect();
    assert_eq!(absent.len(), 3, "the resolved findings, as absent results");
    assert!(absent.iter().all(|r| r["kind"] == "pass"));
    let steady = results.iter().find(|r| r["properties"]["user_name"] == "steady").unwrap();
    assert_eq!(steady["suppressions"][0]["kind"], "external");
    assert_eq!(steady["suppressions"][0]["status"], "accepted");
    assert_eq!(steady["suppressions"][0]["justification"], "Legacy batch host, decommissioned in Q1");
    let newbie = results.iter().find(|r| r["properties"]["user_name"] == "newbie").unwrap();
    assert_eq!(newbie["baselineState"], "new");
    let asff: Value =
        serde_json::from_str(&std::fs::read_to_string(file_with_suffix(&out, ".asff.json")).unwrap()).unwrap();
    let asff = asff.as_array().unwrap();
    let find = |id: &str| asff.iter().find(|f| f["Id"] == id);
    // A resolved finding gone from the report is archived; one still in it (its key deactivated) stays active,
    // passing, and resolved in Security Hub's workflow.
    let resolved = run2.report()["resolved"].as_array().unwrap();
    for r in &absent {
        let f = find(&fingerprint(r)).unwrap_or_else(|| panic!("no ASFF finding for resolved {}", fingerprint(r)));
        let gone = resolved.iter().find(|x| x["fingerprint"] == f["Id"]).unwrap()["verdict"].is_null();
        let record = if gone { "ARCHIVED" } else { "ACTIVE" };
        assert_eq!(
            (&f["RecordState"], &f["Compliance"]["Status"], &f["Workflow"]["Status"]),
            (&json!(record), &json!("PASSED"), &json!("RESOLVED")),
            "{f}"
        );
    }
    let steady_asff = find(&fingerprint(steady)).unwrap();
    assert_eq!(steady_asff["Workflow"]["Status"], "SUPPRESSED");
    let ocsf: Value =
        serde_json::from_str(&std::fs::read_to_string(file_with_suffix(&out, ".ocsf.json")).unwrap()).unwrap();
    let steady_ocsf =
        ocsf.as_array().unwrap().iter().find(|r| r["finding_info"]["uid"] == fingerprint(steady)).unwrap();
    assert_eq!(steady_ocsf["status_id"], 3);
    assert!(steady_ocsf["status_detail"].as_str().unwrap().starts_with("Legacy batch host"));

    // The table opens with the change.
    let table = scan(&emu, AS_OF_2, &["--suppressions", &sup, "--baseline", &b]);
    assert_eq!(table.code, 1, "--fail-on fail: known debt fails");
    assert!(
        table.stdout.contains("Since the last run: 2 new, 3 resolved, 1 still open; 1 newly failing"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("Resolved since the last run"));
    let expired = stderr_lines(&table, "entry vendor-contract (line 3) expired on 2026-12-01");
    assert_eq!(expired.len(), 1, "a warning names the expired entry:\n{}", table.stderr);

    // `keyaudit diff` makes the same comparison from the two saved reports.
    let second_report = save(dir.path(), "run2.json", &run2);
    let diff = emu.command(&["diff", &b, &second_report.display().to_string()]);
    let diff_out = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(diff.status.code(), Some(0), "{}", String::from_utf8_lossy(&diff.stderr));
    assert!(diff_out.contains("Since the last run: 2 new, 3 resolved, 1 still open; 1 newly failing"), "{diff_out}");
    let diff_json = emu.command(&["diff", &b, &second_report.display().to_string(), "-o", "json"]);
    let d: Value = serde_json::from_slice(&diff_json.stdout).unwrap();
    let users = |k: &str| -> Vec<&str> {
        let mut v: Vec<&str> = d[k].as_array().unwrap().iter().map(|f| f["user_name"].as_str().unwrap()).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(users("new_findings"), ["ager", "newbie"]);
    assert_eq!(users("resolved"), ["ager", "deactivator", "rotator"]);
    assert_eq!(d["summary"]["still_open"], 1);

    // Run 3, same day, against run 2: known debt only, so --fail-on newly-failing passes.
    let run3 = scan(
        &emu,
        AS_OF_2,
        &["--suppressions", &sup, "--baseline", &second_report.display().to_string(), "--fail-on", "newly-failing"],
    );
    assert_eq!(run3.code, 0, "nothing new since run 2\n{}", run3.stdout);
    assert!(run3.stdout.contains("PASS (--fail-on newly-failing): 0 newly failing;"), "{}", run3.stdout);

    // Run 4, thirty days after the first: ager's key now fails, with the same fingerprint; warn → fail is new.
    // (The old name of the gate, `new`, still works, with a deprecation warning.)
    let run4 = scan(
        &emu,
        AS_OF_3,
        &["--suppressions", &sup, "--baseline", &second_report.display().to_string(), "--fail-on", "new"],
    );
    assert_eq!(run4.code, 1);
    assert!(run4.stderr.contains("--fail-on new: deprecated, say --fail-on newly-failing"), "{}", run4.stderr);
    // One word, one meaning: warn → fail is still open, not new, and it is what the gate counts: newly failing.
    assert!(run4.stdout.contains("still open; 1 newly failing (baseline as of"), "{}", run4.stdout);
    assert!(run4.stdout.contains("FAIL (--fail-on newly-failing): 1 finding(s) newly failing"), "{}", run4.stdout);
    let fourth = by_user(&run4);
    assert_eq!((&fourth["ager"][0].0, &fourth["ager"][0].1), (&json!("fail"), &json!("updated")));
    assert_eq!(fourth["ager"][0].3, first["ager"][1].3, "pass, warn, fail: one fingerprint");
}

#[test]
fn an_account_that_stops_being_assessed_is_listed_never_resolved_and_never_suppressed() {
    let emu = Emulator::start();
    let s = emu.seed(json!({"accounts": [
        {"name": "ok", "users": [{"name": "a", "keys": [{"created": OLD}]}]},
        {"name": "flaky", "users": [{"name": "b", "keys": [{"created": OLD}]}]}
    ]}));
    let flaky = s.account("flaky");
    let dir = tempfile::tempdir().unwrap();
    let run1 = scan(&emu, AS_OF, &[]);
    assert_eq!(run1.code, 1);
    let baseline = save(dir.path(), "run1.json", &run1);
    let suppressions = dir.path().join("s.toml");
    std::fs::write(
        &suppressions,
        format!("[[suppression]]\naccount_id = \"{flaky}\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\n"),
    )
    .unwrap();
    super::deny_assume_role(&emu, &flaky);
    let run2 = scan(
        &emu,
        AS_OF,
        &[
            "--baseline",
            &baseline.display().to_string(),
            "--suppressions",
            &suppressions.display().to_string(),
            "--fail-on",
            "newly-failing",
        ],
    );
    assert_eq!(run2.code, 3, "an account not assessed is never suppressed into passing\n{}", run2.stderr);
    let r = run2.report();
    assert!(r["resolved"].as_array().unwrap().is_empty(), "b's key was not seen, so it is not resolved");
    assert_eq!(r["baseline"]["accounts_newly_failed"][0]["account_id"], flaky.as_str());
    assert_eq!(r["baseline"]["accounts_no_longer_assessed"][0]["account_id"], flaky.as_str());
    assert_eq!(r["baseline"]["accounts_no_longer_assessed"][0]["status"], "failed");
    let entry = &r["suppressions"][0];
    assert_eq!(entry["state"], "unmatched", "not stale: the run was incomplete");
    assert!(run2.stdout.contains("Accounts that newly failed"), "{}", run2.stdout);
}

/// Each kind of bad input is exit 2 with a message that names the file, the line and what was expected.
#[test]
fn bad_suppression_files_and_bad_baselines_are_usage_errors_that_say_what_is_wrong() {
    let emu = Emulator::start();
    emu.seed(json!({"accounts": [{"name": "work", "users": [{"name": "a", "keys": [{"created": OLD}]}]}]}));
    let dir = tempfile::tempdir().unwrap();
    let good = scan(&emu, AS_OF, &[]);
    let baseline = save(dir.path(), "good.json", &good);
    let b = baseline.display().to_string();

    let entry = "[[suppression]]\naccount_id = \"000000000001\"\nreason = \"r\"\nowner = \"o\"\n";
    let files = [
        (
            "missing.toml",
            "[[suppression]]\naccount_id = \"000000000001\"\nowner = \"o\"\nexpires = 2027-01-01\n".to_owned(),
            "line 1: entry #1 has no `reason`",
        ),
        ("unknown.toml", format!("{entry}expires = 2027-01-01\nteam = \"x\"\n"), "line 6: unknown key `team`"),
        (
            "glob.toml",
            format!("{entry}expires = 2027-01-01\nuser_arn = \"arn:aws:iam::*:user/**\"\n"),
            "line 6: user_arn",
        ),
        (
            "date.toml",
            format!("{entry}expires = \"next year\"\n"),
            "line 5: expires \"next year\": expected a date such as 2027-03-31",
        ),
        (
            "long.toml",
            format!("{entry}expires = 2028-06-01\n"),
            "line 1: entry #1: expires 2028-06-01 is more than 365 days after as_of",
        ),
    ];
    for (name, text, needle) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let run = scan(&emu, AS_OF, &["--suppressions", &path.display().to_string()]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        let expected = format!("--suppressions {}: {needle}", path.display());
        assert!(run.stderr.contains(&expected), "{name}: expected {expected:?} in\n{}", run.stderr);
    }

    let report: Value = good.report().clone();
    let variant = |name: &str, edit: &dyn Fn(&mut Value)| -> String {
        let mut v = report.clone();
        edit(&mut v);
        let path = dir.path().join(name);
        std::fs::write(&path, v.to_string()).unwrap();
        path.display().to_string()
    };
    let other_org = variant("org.json", &|v| v["run"]["organization_id"] = json!("o-someoneelse"));
    let future = variant("future.json", &|v| v["schema_version"] = json!(2));
    let old_scheme = variant("scheme.json", &|v| {
        v["run"].as_object_mut().unwrap().remove("fingerprint_scheme");
    });
    let partition = variant("partition.json", &|v| v["run"]["partition"] = json!("aws-cn"));
    let stricter = variant("stricter.json", &|v| v["run"]["max_age_days"] = json!(60));
    let not_json = dir.path().join("notes.txt");
    std::fs::write(&not_json, "hello").unwrap();
    let not_json = not_json.display().to_string();
    let cases: [(Vec<&str>, &str); 7] = [
        (
            vec!["--baseline", &other_org],
            "the baseline audits organization o-someoneelse, this run audits organization",
        ),
        (vec!["--baseline", &future], "schema_version 2 is newer than this keyaudit understands (1)"),
        (vec!["--baseline", &old_scheme], "the report has no run.fingerprint_scheme"),
        (vec!["--baseline", &partition], "the baseline is from partition aws-cn, this run from aws"),
        (vec!["--baseline", &not_json], "not JSON"),
        (vec!["--baseline", &b, "--rules", "KA-IAM-001,KA-IAM-004"], "only in this run: KA-IAM-004"),
        (vec!["--fail-on", "newly-failing"], "--fail-on newly-failing: needs --baseline"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["scan", "--as-of", AS_OF, "-o", "table", "--owner-tags", ""];
        if !args.contains(&"--rules") {
            all.extend(["--rules", "KA-IAM-001"]);
        }
        all.extend(args.iter().copied());
        let run = emu.keyaudit(&all);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: expected {needle:?} in\n{}", run.stderr);
    }
    // Other thresholds are allowed, with a warning that says what differs.
    let run = scan(&emu, AS_OF, &["--baseline", &stricter]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("it was made with max_age_days 60, this run uses 90"), "{}", run.stderr);
    let diff = emu.command(&["diff", &b, &other_org]);
    assert_eq!(diff.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&diff.stderr);
    assert!(stderr.contains("keyaudit diff: OLD ("), "{stderr}");
    assert!(
        stderr.contains(&format!(", NEW ({other_org}) audits organization o-someoneelse: compare reports")),
        "the user's own words: {stderr}"
    );
}

/// Issue "A new user's first hour": the weekly recipe, exactly as docs/scheduled-runs.md writes it, needs no shell
/// logic: `--baseline DIR` takes the newest keyaudit JSON report there (never another format written beside it),
/// and the first run, into a directory that does not exist yet, is a first run (every failing finding new).
#[test]
fn the_weekly_recipe_runs_from_an_empty_directory_without_shell_logic() {
    let emu = Emulator::start();
    let s = emu.seed(json!({"accounts": [{"name": "work", "users": [
        {"name": "stale", "keys": [{"created": OLD, "last_used": "2026-11-27T12:00:00Z"}]},
        {"name": "fresh", "keys": [{"created": "2026-11-01T12:00:00Z"}]},
        {"name": "newbie", "keys": []}
    ]}]}));
    let work = s.account("work");
    let root = tempfile::tempdir().unwrap();
    let weekly = root.path().join("weekly");
    let w = weekly.display().to_string();
    let week = |as_of: &str| {
        // The recipe: one command, the same every week (without --quiet: its warnings belong in the job's log).
        let out = emu.command(&[
            "scan",
            "--as-of",
            as_of,
            "--rules",
            "KA-IAM-001",
            "--owner-tags",
            "",
            "--output-dir",
            &w,
            "-o",
            "json",
            "-o",
            "sarif",
            "-o",
            "ocsf",
            "--baseline",
            &w,
            "--fail-on",
            "newly-failing",
        ]);
        // Files are named after the run's start, to the second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let report = std::fs::read_dir(&weekly)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.ends_with(".json") && !name.ends_with(".ocsf.json")
            })
            .max()
            .unwrap();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        Run::new(out, Some(json))
    };

    // Week 1: the directory does not exist yet. A first run: every failing finding is new, said so on stderr.
    let first = week(AS_OF);
    assert_eq!(first.code, 1, "the stale key is new, and --fail-on newly-failing fails on it\n{}", first.stderr);
    assert!(first.stderr.contains("this is the first run"), "{}", first.stderr);
    let r = first.report();
    assert_eq!(r["summary"]["since_baseline"]["new"], 1, "{}", r["summary"]);
    assert_eq!(by_user(&first)["stale"][0].1, "new");
    assert!(r["resolved"].as_array().unwrap().is_empty());

    // Week 2: nothing changed. The baseline is week 1's JSON report, not the OCSF file written beside it.
    let second = week(AS_OF_2);
    assert_eq!(second.code, 0, "nothing new\n{}", second.stderr);
    assert!(!second.stderr.contains("first run"), "{}", second.stderr);
    let r = second.report();
    assert_eq!(r["baseline"]["as_of"], AS_OF, "compared with week 1");
    assert_eq!(
        (&r["summary"]["since_baseline"]["new"], &r["summary"]["since_baseline"]["still_open"]),
        (&json!(0), &json!(1))
    );

    // Week 3: a new stale key.
    let key = emu.change_key(&work, "newbie", "create", None);
    emu.control(
        "POST",
        "keys/backdate",
        &json!({"account_id": work, "user_name": "newbie", "access_key_id": key, "created": OLD}),
    );
    emu.control("DELETE", "reports", &Value::Null); // a week later: AWS generates a new credential report
    let third = week(AS_OF_3);
    assert_eq!(third.code, 1, "one new failing finding\n{}", third.stderr);
    let r = third.report();
    assert_eq!(r["baseline"]["as_of"], AS_OF_2, "compared with week 2, the newest");
    assert_eq!(r["summary"]["since_baseline"]["new"], 1);
    assert_eq!(by_user(&third)["newbie"][0].1, "new");
    assert_eq!(by_user(&third)["stale"][0].1, "unchanged");
}

/// Issue "A new user's first hour": another export given as --baseline is named for what it is.
#[test]
fn a_baseline_that_is_another_export_says_what_it_is_and_what_was_expected() {
    let emu = Emulator::start();
    emu.seed(json!({"accounts": [{"name": "work", "users": [{"name": "a", "keys": [{"created": OLD}]}]}]}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out =
        emu.command(&["scan", "-q", "--as-of", AS_OF, "--output-dir", &d, "-o", "ocsf", "-o", "sarif", "-o", "ndjson"]);
    assert_eq!(out.status.code(), Some(1));
    for (suffix, says) in [
        (".ocsf.json", "a JSON array, not a keyaudit JSON report (keyaudit's OCSF and ASFF exports are arrays)"),
        (".sarif", "a SARIF log, not a keyaudit JSON report"),
        (".ndjson", "JSON lines, not a keyaudit JSON report (keyaudit's NDJSON export is JSON lines)"),
    ] {
        let file = super::file_with_suffix(dir.path(), suffix);
        let out = emu.command(&["scan", "-q", "--as-of", AS_OF, "--baseline", &file.display().to_string()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "--baseline {}: {says}; expected a report written by `keyaudit scan -o json`",
                file.display()
            )),
            "{stderr}"
        );
    }
    // A directory with exports but no keyaudit JSON report is a first run only with --fail-on newly-failing's consent: it
    // compares with nothing, and says so.
    let out = emu.command(&["scan", "--as-of", AS_OF, "--baseline", &d, "--fail-on", "newly-failing", "-o", "table"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("this is the first run"));
}
