//! `--push-securityhub`: each account's findings imported from that account, read back there with that
//! account's credentials; a second run updates instead of duplicating; refused imports make the exit code 3.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{AS_OF, Emulator, MANAGEMENT, python, repo_root};

fn readback(emu: &Emulator, accounts: &[String]) -> BTreeMap<String, Vec<Value>> {
    by_hand(emu, accounts, &[])
}

/// Reads back every account's findings, after doing what a person does in the console: each
/// `account:finding id:STATUS` set by BatchUpdateFindings, with a note by `alice`.
fn by_hand(emu: &Emulator, accounts: &[String], changes: &[String]) -> BTreeMap<String, Vec<Value>> {
    let out = Command::new(python())
        .arg(repo_root().join("tests/consumers/securityhub_readback.py"))
        .args(["--endpoint", &emu.url, "--accounts", &accounts.join(",")])
        .arg("--by-hand")
        .args(changes)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn push(emu: &Emulator, dir: &std::path::Path, extra: &[&str]) -> (i32, Value, Vec<Value>, String) {
    let (json, asff) = (dir.join("report.json"), dir.join("report.asff.json"));
    let (j, a) = (format!("json={}", json.display()), format!("asff={}", asff.display()));
    let mut args = vec!["scan", "--push-securityhub", "-o", &j, "-o", &a];
    if !extra.contains(&"--as-of") {
        args.extend(["--as-of", AS_OF]);
    }
    args.extend_from_slice(extra);
    let out = emu.command(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&std::fs::read_to_string(&json).expect(&stderr)).unwrap();
    let file: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&asff).unwrap()).unwrap();
    (out.status.code().unwrap(), report, file, stderr)
}

fn by_account(findings: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in findings {
        out.entry(f["AwsAccountId"].as_str().unwrap().to_owned()).or_default().insert(f["Id"].as_str().unwrap().into());
    }
    out
}

#[test]
fn each_accounts_findings_are_imported_from_that_account_and_a_second_run_updates_them() {
    let (emu, s) = crate::setup();
    let first = tempfile::tempdir().unwrap();
    let (code, report, file, stderr) = push(&emu, first.path(), &[]);
    assert_eq!(code, 1, "failing findings, every import accepted: {stderr}");
    let want = by_account(&file);
    assert!(want.len() >= 3 && want.contains_key(MANAGEMENT), "member and management findings: {want:?}");
    let accounts: Vec<String> = want.keys().cloned().collect();
    let stored = readback(&emu, &accounts);
    for (account, ids) in &want {
        let got: BTreeSet<String> = stored[account].iter().map(|f| f["Id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(&got, ids, "account {account} holds exactly its own findings");
        for f in &stored[account] {
            assert_eq!(f["AwsAccountId"], account.as_str());
            assert_eq!(f["ProductArn"], format!("arn:aws:securityhub:us-east-1:{account}:product/{account}/default"));
        }
    }
    let failing = stored.values().flatten().filter(|f| f["ComplianceStatus"] == "FAILED").count();
    let fails = report["findings"].as_array().unwrap().iter().filter(|f| f["verdict"] == "fail").count();
    assert_eq!(failing, fails, "one FAILED finding per failing finding");

    // Between runs: a stale key deleted. The second run (with the first as its baseline) updates in place: the
    // same ids, none duplicated, the deleted key's findings archived.
    let baseline = first.path().join("report.json");
    let payments = s.account("payments");
    let ci_key = s.key(&payments, "ci", 0);
    emu.change_key(&payments, "ci", "delete", Some(&ci_key));
    let second = tempfile::tempdir().unwrap();
    let (code, _, file2, stderr) = push(&emu, second.path(), &["--baseline", baseline.to_str().unwrap()]);
    assert!(code == 0 || code == 1, "{stderr}");
    let again = readback(&emu, &accounts);
    let second_ids = by_account(&file2);
    for account in &accounts {
        let ids: Vec<&str> = again[account].iter().map(|f| f["Id"].as_str().unwrap()).collect();
        let unique: BTreeSet<String> = ids.iter().map(|id| (*id).to_owned()).collect();
        assert_eq!(ids.len(), unique.len(), "no duplicates in {account}");
        let mut both = want[account].clone();
        both.extend(second_ids.get(account).cloned().unwrap_or_default());
        assert_eq!(unique, both, "account {account} holds the first run's ids, updated, and the second run's");
    }
    let archived: Vec<&Value> = again[&payments]
        .iter()
        .filter(|f| f["RecordState"] == "ARCHIVED" && f["ComplianceStatus"] == "PASSED")
        .collect();
    assert!(!archived.is_empty(), "the deleted key's findings are archived: {:?}", again[&payments]);
}

#[test]
fn an_account_whose_import_is_refused_is_reported_finding_by_finding_and_the_exit_code_is_3() {
    let (emu, s) = crate::setup();
    let dev = s.account("dev");
    emu.fault(json!({"service": "securityhub", "account_id": dev, "error_code": "AccessDeniedException",
                     "http_status": 403, "message": "not authorized to perform: securityhub:BatchImportFindings"}));
    let dir = tempfile::tempdir().unwrap();
    let (code, _, file, stderr) = push(&emu, dir.path(), &[]);
    assert_eq!(code, 3, "{stderr}");
    let dev_ids = &by_account(&file)[&dev];
    assert!(
        stderr.contains(&format!(
            "Security Hub: {dev}: all {} finding(s) not imported: securityhub:BatchImportFindings failed: \
             AccessDeniedException: not authorized to perform: securityhub:BatchImportFindings (grant",
            dev_ids.len()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} finding(s) in 1 account(s) not imported or not updated", dev_ids.len())),
        "{stderr}"
    );
    // The other accounts were imported all the same; and the region flag alone is a usage error.
    let out = emu.command(&["scan", "--securityhub-region", "eu-west-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("need --push-securityhub"));
    let out = emu.command(&["plan", "-o", "plan.json", "--push-securityhub"]);
    assert_eq!(out.status.code(), Some(2), "a plan writes no findings to push");
    let stored = readback(&emu, &[MANAGEMENT.to_owned(), s.account("payments")]);
    assert!(!stored[MANAGEMENT].is_empty() && !stored[&s.account("payments")].is_empty());
}

const OLD: &str = "2026-05-12T12:00:00Z";
const YESTERDAY: &str = "2026-11-27T12:00:00Z";

/// An organization whose findings are easy to follow: in `payments`, vendor (never used, under an exception that
/// expires 2026-11-30), ci, etl, alice and bob (all stale and in use), fresh (passing); in `dev`, old.
fn lifecycle_org() -> (Emulator, crate::harness::Seeded, Vec<String>) {
    let emu = Emulator::start();
    let stale = || json!([{"created": OLD, "last_used": YESTERDAY}]);
    let s = emu.seed(json!({
        "management": {"users": [{"name": "admin", "keys": [{"created": "2026-11-18T12:00:00Z", "last_used": YESTERDAY}]}]},
        "accounts": [
            {"name": "payments", "users": [
                {"name": "vendor", "keys": [{"created": OLD}]},
                {"name": "ci", "keys": stale()},
                {"name": "etl", "keys": stale()},
                {"name": "alice", "keys": stale()},
                {"name": "bob", "keys": stale()},
                {"name": "fresh", "keys": [{"created": "2026-11-18T12:00:00Z", "last_used": YESTERDAY}]}
            ]},
            {"name": "dev", "users": [{"name": "old", "keys": [{"created": OLD}]}]}
        ]
    }));
    let accounts = vec![MANAGEMENT.to_owned(), s.account("payments"), s.account("dev")];
    (emu, s, accounts)
}

fn exceptions(dir: &std::path::Path, users: &[(&str, &str)]) -> String {
    let path = dir.join("exceptions.toml");
    let entries: Vec<String> = users
        .iter()
        .map(|(user, expires)| {
            format!(
                "[[suppression]]\nname = \"{user}\"\nuser_arn = \"arn:aws:iam::*:user/{user}\"\nreason = \"{user} is \
                 accepted\"\nowner = \"sec@example.com\"\nexpires = {expires}\n"
            )
        })
        .collect();
    std::fs::write(&path, entries.join("\n")).unwrap();
    path.display().to_string()
}

/// Finding id → (workflow, note author) in every account.
fn workflows(stored: &BTreeMap<String, Vec<Value>>) -> BTreeMap<String, (String, Option<String>)> {
    stored
        .values()
        .flatten()
        .map(|f| {
            let text = |k: &str| f[k].as_str().map(str::to_owned);
            (text("Id").unwrap(), (text("Workflow").unwrap(), text("NoteBy")))
        })
        .collect()
}

/// The id of `user`'s finding of `rule` in a JSON report.
fn id_of(report: &Value, user: &str, rule: &str) -> String {
    let f = report["findings"].as_array().unwrap().iter().find(|f| f["user_name"] == user && f["rule_id"] == rule);
    f.unwrap_or_else(|| panic!("no {rule} finding of {user}"))["fingerprint"].as_str().unwrap().to_owned()
}

fn security_hub_calls(emu: &Emulator, action: &str) -> usize {
    emu.requests().iter().filter(|(service, a, _)| service == "securityhub" && a == action).count()
}

/// Issue "Security Hub lifecycle": over three weekly runs, exactly the findings whose keyaudit state changed move
/// in Security Hub's workflow, a person's own changes stay, and a run with nothing new updates nothing.
#[test]
fn each_findings_workflow_follows_keyaudits_state_across_runs_and_a_persons_changes_stay() {
    let (emu, s, accounts) = lifecycle_org();
    let payments = s.account("payments");
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();

    // Week 1: vendor is under an exception.
    let sup = exceptions(dirs[0].path(), &[("vendor", "2026-11-30")]);
    let (code, first, _, stderr) = push(&emu, dirs[0].path(), &["--suppressions", &sup]);
    assert_eq!(code, 1, "{stderr}");
    let created = workflows(&readback(&emu, &accounts));
    for (id, (workflow, by)) in &created {
        let f = first["findings"].as_array().unwrap().iter().find(|f| f["fingerprint"] == id.as_str()).unwrap();
        let want = match (f["verdict"].as_str().unwrap(), f["suppression"].is_null()) {
            ("fail" | "warn", false) => "SUPPRESSED",
            ("fail" | "warn", true) => "NEW",
            _ => "RESOLVED",
        };
        assert_eq!(workflow, want, "created where keyaudit's state puts it: {f}");
        assert_eq!(by.as_deref(), (want == "SUPPRESSED").then_some("keyaudit"), "{f}");
    }

    // In the console, a person suppresses alice's stale key finding and resolves bob's.
    let (alice, bob) = (id_of(&first, "alice", "KA-IAM-001"), id_of(&first, "bob", "KA-IAM-001"));
    let hand = [format!("{payments}:{alice}:SUPPRESSED"), format!("{payments}:{bob}:RESOLVED")];
    let before = workflows(&by_hand(&emu, &accounts, &hand));

    // Week 2 (as of 2026-12-01): vendor's exception has expired, ci gets one, etl's key was deactivated.
    emu.change_key(&payments, "etl", "deactivate", Some(&s.key(&payments, "etl", 0)));
    let sup = exceptions(dirs[1].path(), &[("vendor", "2026-11-30"), ("ci", "2027-01-31")]);
    let baseline = dirs[0].path().join("report.json").display().to_string();
    let week2 = ["--suppressions", &sup, "--as-of", "2026-12-01T12:00:00Z", "--baseline", &baseline];
    let (code, second, _, stderr) = push(&emu, dirs[1].path(), &week2);
    assert_eq!(code, 1, "{stderr}");
    let after_stored = readback(&emu, &accounts);
    let after = workflows(&after_stored);
    let changed: BTreeMap<&str, (&str, &str)> = after
        .iter()
        .filter(|(id, now)| before.get(*id) != Some(*now))
        .map(|(id, (workflow, _))| (id.as_str(), (before[id].0.as_str(), workflow.as_str())))
        .collect();
    let (vendor1, vendor4) = (id_of(&second, "vendor", "KA-IAM-001"), id_of(&second, "vendor", "KA-IAM-004"));
    let (ci, etl) = (id_of(&second, "ci", "KA-IAM-001"), id_of(&second, "etl", "KA-IAM-001"));
    let want = BTreeMap::from([
        (vendor1.as_str(), ("SUPPRESSED", "NOTIFIED")),
        (vendor4.as_str(), ("SUPPRESSED", "NOTIFIED")),
        (ci.as_str(), ("NEW", "SUPPRESSED")),
        (etl.as_str(), ("NEW", "RESOLVED")),
    ]);
    assert_eq!(changed, want, "exactly these findings moved");
    assert_eq!((&after[&alice], &after[&bob]), (&before[&alice], &before[&bob]), "the person's changes stay");
    let note = |id: &str| {
        let f = after_stored[&payments].iter().find(|f| f["Id"] == id).unwrap();
        (f["NoteBy"].as_str().unwrap().to_owned(), f["NoteText"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        note(&ci),
        ("keyaudit".into(), "keyaudit exception ci (owner sec@example.com, until 2027-01-31): ci is accepted".into())
    );
    assert!(note(&vendor1).1.contains("no longer covers this finding"), "{:?}", note(&vendor1));
    assert_eq!(note(&alice), ("arn:aws:iam::".to_owned() + &payments + ":user/alice", "changed by hand".into()));
    let etl_stored = after_stored[&payments].iter().find(|f| f["Id"] == etl.as_str()).unwrap();
    assert_eq!(etl_stored["ComplianceStatus"], "PASSED", "the import itself updated the finding");

    // Week 3, nothing new: no update call at all.
    emu.control("DELETE", "requests", &Value::Null);
    let baseline = dirs[1].path().join("report.json").display().to_string();
    let week3 = ["--suppressions", &sup, "--as-of", "2026-12-01T12:00:00Z", "--baseline", &baseline];
    let (code, _, _, stderr) = push(&emu, dirs[2].path(), &week3);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(security_hub_calls(&emu, "BatchUpdateFindings"), 0);
    assert_eq!(security_hub_calls(&emu, "GetFindings"), accounts.len(), "one read per account");
    assert!(security_hub_calls(&emu, "BatchImportFindings") >= accounts.len());
    assert_eq!(workflows(&readback(&emu, &accounts)), after);
}

/// A Security Hub not enabled, a denied or throttled update, a finding left unprocessed: each named per account
/// (and by finding), exit 3, and what was imported stays imported.
#[test]
fn a_push_that_cannot_finish_says_where_and_why_and_keeps_the_import() {
    let (emu, s, accounts) = lifecycle_org();
    let (payments, dev) = (s.account("payments"), s.account("dev"));
    let dir = tempfile::tempdir().unwrap();
    emu.control("POST", "securityhub", &json!({"account_id": dev, "enabled": false}));
    let (code, first, _, stderr) = push(&emu, dir.path(), &[]);
    assert_eq!(code, 3, "{stderr}");
    let dev_findings = first["findings"].as_array().unwrap().iter().filter(|f| f["account_id"] == dev.as_str()).count();
    assert!(
        stderr.contains(&format!(
            "Security Hub: {dev}: all {dev_findings} finding(s) not imported: InvalidAccess: Account {dev} is not \
             subscribed to AWS Security Hub"
        )),
        "{stderr}"
    );
    let stored = readback(&emu, &accounts[..2]);
    assert!(!stored[&payments].is_empty() && !stored[MANAGEMENT].is_empty(), "the other accounts were imported");
    emu.control("POST", "securityhub", &json!({"account_id": dev, "enabled": true}));

    // Between runs etl's key is deactivated: its finding must move to RESOLVED, and the update is denied.
    emu.change_key(&payments, "etl", "deactivate", Some(&s.key(&payments, "etl", 0)));
    let etl = id_of(&first, "etl", "KA-IAM-001");
    emu.fault(json!({"service": "securityhub", "action": "BatchUpdateFindings", "account_id": payments,
                     "error_code": "AccessDeniedException", "http_status": 403,
                     "message": "not authorized to perform: securityhub:BatchUpdateFindings"}));
    let (code, _, _, stderr) = push(&emu, dir.path(), &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Security Hub: {payments}: 1 finding(s) not moved to RESOLVED ({etl}): securityhub:BatchUpdateFindings \
             failed: AccessDeniedException: not authorized to perform: securityhub:BatchUpdateFindings (grant"
        )),
        "{stderr}"
    );
    let stored = readback(&emu, &accounts);
    let etl_stored = stored[&payments].iter().find(|f| f["Id"] == etl.as_str()).unwrap();
    assert_eq!((&etl_stored["ComplianceStatus"], &etl_stored["Workflow"]), (&json!("PASSED"), &json!("NEW")));
    assert!(!stored[&dev].is_empty(), "dev's findings imported this time");

    // Throttled: waited out (once: done); throttled for good (past --throttle-patience): named, exit 3.
    emu.control("DELETE", "faults", &Value::Null);
    let throttle = |times: Option<u32>| {
        emu.fault(json!({"service": "securityhub", "action": "BatchUpdateFindings", "account_id": payments,
                         "error_code": "TooManyRequestsException", "http_status": 429, "times": times}));
    };
    throttle(None);
    let (code, _, _, stderr) = push(&emu, dir.path(), &["--max-attempts", "2", "--throttle-patience", "2s"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "not moved to RESOLVED ({etl}): securityhub:BatchUpdateFindings failed: TooManyRequestsException"
        )),
        "{stderr}"
    );
    emu.control("DELETE", "faults", &Value::Null);
    throttle(Some(1));
    let (code, _, _, stderr) = push(&emu, dir.path(), &[]);
    assert_eq!(code, 1, "the retry went through: {stderr}");
    let stored = readback(&emu, &accounts);
    assert_eq!(stored[&payments].iter().find(|f| f["Id"] == etl.as_str()).unwrap()["Workflow"], "RESOLVED");

    // AWS leaves one finding unprocessed: named by id.
    emu.change_key(&payments, "ci", "deactivate", Some(&s.key(&payments, "ci", 0)));
    let ci = id_of(&first, "ci", "KA-IAM-001");
    emu.control(
        "POST",
        "securityhub",
        &json!({"account_id": payments, "unprocessed": {ci.clone(): "InternalFailure"}}),
    );
    let (code, _, _, stderr) = push(&emu, dir.path(), &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr
            .contains(&format!("Security Hub: {payments}: 1 finding(s) not moved to RESOLVED ({ci}): InternalFailure")),
        "{stderr}"
    );
}
