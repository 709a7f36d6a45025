//! `keyaudit preflight`: what a scan needs, checked without generating a report or changing anything.

use serde_json::{Value, json};

use crate::harness::MANAGEMENT;
use crate::{deny_assume_role, setup};

fn preflight(emu: &crate::harness::Emulator, extra: &[&str]) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("preflight.json");
    let spec = format!("json={}", file.display());
    let mut args = vec!["preflight", "-o", "table", "-o", &spec];
    args.extend_from_slice(extra);
    let out = emu.command(&args);
    let json = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    (out.status.code().unwrap(), json, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The actions a preflight account's checks found denied.
pub(crate) fn denied_actions(account: &Value) -> Vec<&str> {
    account["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] == "denied")
        .map(|c| c["action"].as_str().unwrap())
        .collect()
}

fn account<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["accounts"].as_array().unwrap().iter().find(|a| a["account_id"] == id).unwrap()
}

#[test]
fn preflight_names_what_is_missing_where_and_generates_no_report() {
    let (emu, s) = setup();
    let (denied, dev, empty) = (s.account("denied"), s.account("dev"), s.account("empty"));
    deny_assume_role(&emu, &denied);
    emu.control("POST", "accounts/state", &json!({"account_id": empty, "state": "MIGRATING"}));
    emu.fault(json!({"service": "iam", "action": "ListUserTags", "account_id": dev, "error_code": "AccessDenied",
                     "http_status": 403, "message": "User: x is not authorized to perform: iam:ListUserTags"}));
    let (code, report, table) = preflight(&emu, &[]);
    assert_eq!(code, 3, "{table}");
    assert_eq!(report["ready"], false);
    assert_eq!(report["organization_id"], s.0["organization_id"]);

    let d = account(&report, &denied);
    assert_eq!(d["status"], "assume_role_denied", "{d}");
    let fix = d["fix"].as_str().unwrap();
    assert!(fix.contains("deploy/audit-role-stackset.yaml") && fix.contains("/Root/Dev"), "{fix}");

    let v = account(&report, &dev);
    assert_eq!(v["status"], "missing_permissions", "{v}");
    let denied_actions = denied_actions(v);
    assert_eq!(denied_actions, ["iam:ListUserTags"]);
    assert!(v["fix"].as_str().unwrap().contains("the audit role lacks iam:ListUserTags"), "{v}");

    let m = account(&report, MANAGEMENT);
    assert_eq!((&m["status"], &m["access"]), (&json!("ready"), &json!("caller_credentials")), "{m}");
    let checks: Vec<(&str, &str)> = m["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["action"].as_str().unwrap(), c["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("iam:GetCredentialReport", "allowed"),
            ("iam:GenerateCredentialReport", "unverified"),
            ("iam:ListAccessKeys", "allowed"),
            ("iam:ListUserTags", "allowed")
        ]
    );
    for id in [s.account("legacy"), s.account("closing")] {
        assert_eq!(account(&report, &id)["status"], "skipped");
    }
    let e = account(&report, &empty);
    assert_eq!(e["status"], "error", "an unknown state is not skipped: a scan fails it: {e}");
    assert!(e["reason"].as_str().unwrap().contains("MIGRATING"), "{e}");
    assert!(table.contains("NOT READY: 3 of"), "{table}");

    // Nothing generated, nothing changed: no GenerateCredentialReport, and only reads.
    let calls: Vec<String> = emu.requests().into_iter().map(|(_, action, _)| action).collect();
    assert!(!calls.iter().any(|a| a == "GenerateCredentialReport"), "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|a| a.starts_with("Get") || a.starts_with("List") || a.starts_with("Describe") || a == "AssumeRole"),
        "{calls:?}"
    );
}

#[test]
fn preflight_passes_when_everything_is_in_place_and_takes_the_scan_selection() {
    let (emu, s) = setup();
    let (code, report, table) = preflight(&emu, &["--ou", "/Root/Prod"]);
    assert_eq!(code, 0, "{table}");
    assert_eq!(report["ready"], true);
    let ids: Vec<&str> =
        report["accounts"].as_array().unwrap().iter().map(|a| a["account_id"].as_str().unwrap()).collect();
    let mut want = vec![s.account("legacy"), s.account("closing"), s.account("payments")];
    want.sort();
    assert_eq!(ids, want);
    assert!(table.contains("READY: every selected account can be scanned"), "{table}");
    // --output-dir, created if missing, as for a scan: the JSON named after the run's start.
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("new");
    let out = emu.command(&["preflight", "--output-dir", out_dir.to_str().unwrap(), "--ou", "/Root/Prod"]);
    assert_eq!(out.status.code(), Some(0));
    let names: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.len() == 1 && names[0].starts_with("keyaudit-20") && names[0].ends_with(".json"), "{names:?}");
    let out = emu.command(&["preflight", "-o", "sarif"]);
    assert_eq!(out.status.code(), Some(2), "preflight writes a table or JSON only");
    assert!(String::from_utf8_lossy(&out.stderr).contains("preflight writes a table or JSON"));
}

#[test]
fn preflight_without_organizations_access_names_the_action_and_the_policy_to_attach() {
    let (emu, _s) = setup();
    emu.fault(json!({"service": "organizations", "action": "ListRoots", "error_code": "AccessDeniedException",
                     "message": "You don't have permissions to access this resource."}));
    let out = emu.command(&["preflight"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("organizations:ListRoots AccessDeniedException"), "{stderr}");
    assert!(stderr.contains("attach deploy/caller-policy.yaml"), "{stderr}");
}

#[test]
fn preflight_with_push_securityhub_checks_what_it_can_and_says_plainly_what_it_cannot() {
    let (emu, s) = setup();
    let (dev, payments) = (s.account("dev"), s.account("payments"));
    emu.control("POST", "securityhub", &json!({"account_id": dev, "enabled": false}));
    emu.fault(json!({"service": "securityhub", "action": "BatchUpdateFindings", "account_id": payments,
                     "error_code": "AccessDeniedException", "http_status": 403,
                     "message": "not authorized to perform: securityhub:BatchUpdateFindings"}));
    emu.control("DELETE", "requests", &Value::Null);
    let (code, report, table) = preflight(&emu, &["--push-securityhub"]);
    assert_eq!(code, 3, "{table}");
    // One audit-role session per account serves both the IAM and the Security Hub probes.
    let assumed: Vec<String> =
        emu.requests().into_iter().filter(|(_, action, _)| action == "AssumeRole").map(|(.., a)| a).collect();
    let distinct: std::collections::BTreeSet<&String> = assumed.iter().collect();
    assert_eq!(assumed.len(), distinct.len(), "each account's role assumed once: {assumed:?}");
    assert!(distinct.contains(&payments), "{assumed:?}");
    let checks = |a: &Value| -> Vec<(String, String)> {
        a["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"].as_str().unwrap().starts_with("securityhub:"))
            .map(|c| (c["action"].as_str().unwrap().to_owned(), c["result"].as_str().unwrap().to_owned()))
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    };
    let m = account(&report, MANAGEMENT);
    assert_eq!(m["status"], "ready", "{m}");
    assert_eq!(
        checks(m),
        pairs(&[
            ("securityhub:GetFindings", "allowed"),
            ("securityhub:BatchUpdateFindings", "allowed"),
            ("securityhub:BatchImportFindings", "unverified")
        ])
    );
    let p = account(&report, &payments);
    assert_eq!(
        (p["status"].as_str(), denied_actions(p)),
        (Some("missing_permissions"), vec!["securityhub:BatchUpdateFindings"])
    );
    assert!(p["fix"].as_str().unwrap().contains("deploy/audit-role.yaml with SecurityHubImport=true"), "{p}");
    let d = account(&report, &dev);
    assert_eq!(d["status"], "error", "{d}");
    assert!(d["fix"].as_str().unwrap().contains("enable Security Hub in us-east-1 in this account"), "{d}");
    assert!(
        table.contains(
            "securityhub:BatchImportFindings: not checked: every well-formed finding BatchImportFindings is given"
        ),
        "{table}"
    );
    // Nothing was imported or changed: no import call, and the update probe names a finding that does not exist.
    let calls: Vec<String> = emu.requests().into_iter().map(|(_, action, _)| action).collect();
    assert!(!calls.iter().any(|a| a == "BatchImportFindings"), "{calls:?}");
    assert!(calls.iter().any(|a| a == "BatchUpdateFindings"), "{calls:?}");
}

/// Issue "A new user's first hour": the emulator, as AWS, denies AssumeRole of a role that does not exist, so
/// preflight with a wrong --role-name says so for every member account instead of calling them ready.
#[test]
fn preflight_with_a_role_that_does_not_exist_finds_no_member_account_ready() {
    let (emu, s) = setup();
    let (code, report, table) = preflight(&emu, &["--role-name", "KeyauditAuditTypo", "--account", &s.account("dev")]);
    assert_eq!(code, 3, "{table}");
    let d = account(&report, &s.account("dev"));
    assert_eq!(d["status"], "assume_role_denied", "{d}");
    assert!(d["reason"].as_str().unwrap().contains("role/KeyauditAuditTypo"), "{d}");
}
