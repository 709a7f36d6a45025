//! `--push-securityhub`: each account's findings imported from that account, read back there with that
//! account's credentials; a second run updates instead of duplicating; refused imports make the exit code 3.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{AS_OF, Emulator, MANAGEMENT, python, repo_root};

fn readback(emu: &Emulator, accounts: &[String]) -> BTreeMap<String, Vec<Value>> {
    let out = Command::new(python())
        .arg(repo_root().join("tests/consumers/securityhub_readback.py"))
        .args(["--endpoint", &emu.url, "--accounts", &accounts.join(",")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn push(emu: &Emulator, dir: &std::path::Path, extra: &[&str]) -> (i32, Value, Vec<Value>, String) {
    let (json, asff) = (dir.join("report.json"), dir.join("report.asff.json"));
    let (j, a) = (format!("json={}", json.display()), format!("asff={}", asff.display()));
    let mut args = vec!["scan", "--as-of", AS_OF, "--push-securityhub", "-o", &j, "-o", &a];
    args.extend_from_slice(extra);
    let out = emu.command(&args);
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let file: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&asff).unwrap()).unwrap();
    (out.status.code().unwrap(), report, file, String::from_utf8_lossy(&out.stderr).into_owned())
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
    for id in dev_ids {
        assert!(stderr.contains(&format!("Security Hub: {dev}: {id}: BatchImportFindings failed")), "{id}: {stderr}");
    }
    assert!(stderr.contains(&format!("{} not", dev_ids.len())), "{stderr}");
    // The other accounts were imported all the same; and the region flag alone is a usage error.
    let out = emu.command(&["scan", "--securityhub-region", "eu-west-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("need --push-securityhub"));
    let out = emu.command(&["plan", "-o", "plan.json", "--push-securityhub"]);
    assert_eq!(out.status.code(), Some(2), "a plan writes no findings to push");
    let stored = readback(&emu, &[MANAGEMENT.to_owned(), s.account("payments")]);
    assert!(!stored[MANAGEMENT].is_empty() && !stored[&s.account("payments")].is_empty());
}
