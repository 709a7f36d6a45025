//! Issue "Never wrong, never lost": the report holds under the behaviours AWS documents and the plain emulator
//! did not have. The emulator serves credential reports as AWS does (content frozen at generation, reused for
//! 4 hours, `GeneratedTime` = generation time, `<root_account>` row first), so a second scan within the window
//! reads the first scan's report while `ListAccessKeys` already shows the keys as they are now.

use serde_json::{Value, json};

use super::harness::{self, AS_OF, Emulator, Run, Seeded};
use super::scan;

/// One account, `work`, with user `app` holding OLD: active, created 200 days before AS_OF, so failing.
fn one_stale_key() -> (Emulator, Seeded, String) {
    let emu = Emulator::start();
    let s = emu.seed(json!({"accounts": [
        {"name": "work", "users": [{"name": "app", "keys": [{"created": "2026-05-12T12:00:00Z"}]}]}
    ]}));
    let work = s.account("work");
    (emu, s, work)
}

fn scan_work(emu: &Emulator, work: &str) -> Run {
    scan(emu, &["--account", work])
}

/// Every key id anywhere in the report's findings.
fn key_ids(run: &Run) -> Vec<String> {
    run.report()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["access_key_id"].as_str().map(str::to_owned))
        .collect()
}

/// The first scan generates the report; it shows OLD failing with its id. Returns OLD's id and the report's
/// generation time.
fn first_scan(emu: &Emulator, s: &Seeded, work: &str) -> (String, Value) {
    let old = s.key(work, "app", 0);
    let first = scan_work(emu, work);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let app = first.findings_of(work, "app");
    assert_eq!((app[0]["verdict"].as_str(), app[0]["access_key_id"].as_str()), (Some("fail"), Some(old.as_str())));
    let generated = first.account(work)["report_generated_at"].clone();
    assert!(generated.is_string());
    (old, generated)
}

#[test]
fn a_rotation_between_two_scans_never_reports_the_new_key_as_the_stale_one() {
    let (emu, s, work) = one_stale_key();
    let (old, generated) = first_scan(&emu, &s, &work);
    // The user rotates as CIS says: a new key first, then the old one deactivated.
    let new = emu.change_key(&work, "app", "create", None);
    emu.change_key(&work, "app", "deactivate", Some(&old));
    emu.control("DELETE", "requests", &Value::Null);

    let second = scan_work(&emu, &work);
    assert_eq!(second.account(&work)["report_generated_at"], generated, "AWS reused the cached report");
    assert_eq!(second.code, 0, "OLD is inactive now: nothing fails\n{}", second.stderr);
    let app = second.findings_of(&work, "app");
    assert_eq!(app.len(), 1, "NEW is not in the cached report: no finding for it");
    assert_eq!(app[0]["access_key_id"], old.as_str());
    assert_eq!(app[0]["verdict"], "not_applicable");
    assert_eq!(app[0]["key_status"], "inactive");
    assert_eq!(app[0]["change_since_report"], "deactivated");
    let message = app[0]["message"].as_str().unwrap();
    assert!(message.contains("was deactivated after the credential report of 20"), "{message}");
    assert!(!key_ids(&second).contains(&new), "no finding carries NEW's id");
    assert_eq!(second.report()["summary"]["keys"]["active"], 0);
    assert!(second.stdout.contains("Keys fixed since their account's credential report"), "{}", second.stdout);

    // No extra call for any of this: AssumeRole, Generate, Get, and the ListAccessKeys made anyway for the
    // user whose key fails in the report.
    let mut calls: Vec<String> =
        emu.requests().into_iter().filter(|(_, _, account)| *account == work).map(|(_, action, _)| action).collect();
    calls.sort();
    assert_eq!(calls, ["AssumeRole", "GenerateCredentialReport", "GetCredentialReport", "ListAccessKeys"]);
    assert_eq!(second.account(&work)["api_calls"], 4);
}

#[test]
fn a_key_deleted_between_two_scans_is_resolved_not_failing() {
    let (emu, s, work) = one_stale_key();
    let (old, generated) = first_scan(&emu, &s, &work);
    emu.change_key(&work, "app", "delete", Some(&old));

    let second = scan_work(&emu, &work);
    assert_eq!(second.account(&work)["report_generated_at"], generated);
    assert_eq!(second.code, 0, "a deleted key no longer fails\n{}", second.stderr);
    let app = second.findings_of(&work, "app");
    assert_eq!(app[0]["verdict"], "resolved");
    assert_eq!(app[0]["key_status"], "deleted");
    assert_eq!(app[0]["change_since_report"], "deleted");
    assert!(app[0]["access_key_id"].is_null(), "a deleted key cannot be looked up");
    let message = app[0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("deleted after the credential report of {}", generated.as_str().unwrap())));
    assert_eq!(second.report()["summary"]["keys"]["resolved"], 1);
    assert_eq!(second.report()["summary"]["keys"]["fail"], 0);
    super::harness::assert_matches_json_schema(second.report());
}

#[test]
fn a_key_created_between_report_and_scan_is_never_attached_to_an_older_slot() {
    let (emu, s, work) = one_stale_key();
    let (old, _) = first_scan(&emu, &s, &work);
    // OLD deleted and NEW created: NEW is the user's only active key, the very key the old fallback attached.
    emu.change_key(&work, "app", "delete", Some(&old));
    let new = emu.change_key(&work, "app", "create", None);

    let second = scan_work(&emu, &work);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let app = second.findings_of(&work, "app");
    assert_eq!((app[0]["key_slot"].as_u64(), app[0]["verdict"].as_str()), (Some(1), Some("resolved")));
    assert!(!key_ids(&second).contains(&new), "NEW was created after the report: never in it");

    // Once the cached report is gone (4 hours later), a new one shows NEW in slot 1, young and passing. Report
    // times have whole seconds: wait for the next one, so that the new report's time differs from the old one's.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    emu.control("DELETE", "reports", &Value::Null);
    let third = emu.keyaudit(&[
        "scan",
        "--account",
        &work,
        "--key-ids",
        "all",
        "--as-of",
        "2026-12-01T00:00:00Z",
        "--rules",
        "KA-IAM-001",
    ]);
    assert_ne!(third.account(&work)["report_generated_at"], second.account(&work)["report_generated_at"]);
    let app = third.findings_of(&work, "app");
    assert_eq!(app.len(), 1);
    assert_eq!(app[0]["access_key_id"], new.as_str());
    assert_eq!(app[0]["verdict"], "pass");
}

#[test]
fn a_credential_report_without_the_root_row_is_malformed_not_clean() {
    let (emu, _s, work) = one_stale_key();
    let header = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
    emu.fault(json!({"service": "iam", "action": "GetCredentialReport", "account_id": work,
                     "report_content": format!("{header}\n")}));
    let run = scan_work(&emu, &work);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let account = run.account(&work);
    assert_eq!(account["status"], "failed");
    assert_eq!(account["reason_code"], "malformed_report");
    assert_eq!(
        account["reason"],
        "iam:GetCredentialReport: the credential report has no <root_account> row (AWS always lists the root user)"
    );
}

#[test]
fn an_account_in_a_state_keyaudit_does_not_know_is_failed_not_skipped() {
    let (emu, _s, work) = one_stale_key();
    emu.control("POST", "accounts/state", &json!({"account_id": work, "state": "MIGRATING"}));
    let run = scan(&emu, &[]);
    assert_eq!(run.code, 3, "an account that was not assessed makes the run incomplete\n{}", run.stderr);
    let account = run.account(&work);
    assert_eq!((account["status"].as_str(), account["state"].as_str()), (Some("failed"), Some("MIGRATING")));
    assert_eq!(account["reason_code"], "unknown_state");
    assert_eq!(run.report()["summary"]["accounts"]["skipped"], 0);
    emu.control("POST", "accounts/state", &json!({"account_id": work, "state": "SUSPENDED"}));
    let documented = scan(&emu, &[]);
    assert_eq!(documented.account(&work)["status"], "skipped", "a documented non-active state is skipped");
}

#[test]
fn ou_names_containing_a_slash_get_distinct_paths_and_ou_selects_exactly_one() {
    let emu = Emulator::start();
    let s = emu.seed(json!({"ous": [
        {"name": "a/b", "accounts": [{"name": "slash"}]},
        {"name": "a", "ous": [{"name": "b", "accounts": [{"name": "nested"}]}]}
    ]}));
    let all = scan(&emu, &[]);
    assert_eq!(all.account(&s.account("slash"))["ou_path"], "/Root/a\\/b");
    assert_eq!(all.account(&s.account("nested"))["ou_path"], "/Root/a/b");
    super::harness::assert_matches_json_schema(all.report());
    assert_eq!(s.ou("/Root/a\\/b"), s.0["ous"]["/Root/a\\/b"].as_str().unwrap());
    let escaped = scan(&emu, &["--ou", "/Root/a\\/b"]);
    assert_eq!(ids_of(&escaped), [s.account("slash")]);
    let nested = scan(&emu, &["--ou", "/Root/a/b"]);
    assert_eq!(ids_of(&nested), [s.account("nested")]);
    let out = emu.command(&["scan", "--as-of", AS_OF, "--ou", "/Root/a\\b"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--ou \"/Root/a\\\\b\" is not a valid OU path"), "{stderr}");
}

fn ids_of(run: &Run) -> Vec<String> {
    run.report()["accounts"].as_array().unwrap().iter().map(|a| a["account_id"].as_str().unwrap().into()).collect()
}

#[test]
fn discovery_cross_checks_the_walk_with_one_listing_and_no_more() {
    let (emu, _s, _work) = one_stale_key();
    emu.control("DELETE", "requests", &Value::Null);
    let run = scan(&emu, &[]);
    assert_eq!(run.report()["summary"]["accounts"]["discovered"], 2);
    let count = |action: &str| emu.requests().iter().filter(|(_, a, _)| a == action).count();
    assert_eq!(count("ListAccounts"), 1);
    assert_eq!(count("ListParents"), 0, "nothing moved: no account needs its parent looked up");
    assert_eq!((count("DescribeOrganization"), count("ListRoots")), (1, 1), "the organization is asked for once");
}

#[test]
fn credentials_of_another_partition_without_a_region_are_told_to_set_one() {
    let (emu, _s, _work) = one_stale_key();
    emu.fault(json!({"service": "sts", "action": "GetCallerIdentity", "error_code": "InvalidClientTokenId",
                     "http_status": 403, "message": "The security token included in the request is invalid."}));
    let out = emu.command_without(&["scan", "--as-of", AS_OF], &["AWS_REGION"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "no region is set, so keyaudit used us-east-1 (the aws partition): credentials of the aws-cn or \
             aws-us-gov partitions need --region or AWS_REGION"
        ),
        "{stderr}"
    );
    let with_region = emu.command(&["scan", "--as-of", AS_OF]);
    assert!(!String::from_utf8_lossy(&with_region.stderr).contains("no region is set"), "a region was set");
}

#[test]
fn a_local_clock_off_from_aws_by_more_than_a_minute_is_a_warning_with_both_times_in_the_run() {
    let (emu, _s, work) = one_stale_key();
    let in_step = emu.keyaudit(&["scan", "--account", &work]);
    let clock = &in_step.report()["run"]["clock"];
    assert!(clock["skew_seconds"].as_i64().unwrap().abs() <= 2, "{clock}");
    assert!(!in_step.stderr.contains("local clock"), "{}", in_step.stderr);

    emu.control("POST", "clock", &json!({"skew_seconds": 600}));
    let skewed = emu.keyaudit(&["scan", "--account", &work]);
    let clock = &skewed.report()["run"]["clock"];
    let skew = clock["skew_seconds"].as_i64().unwrap();
    assert!((-602..=-598).contains(&skew), "the local clock is 10 minutes behind AWS's: {clock}");
    assert!(clock["local"].is_string() && clock["aws"].is_string());
    assert!(skewed.stderr.contains("behind AWS's"), "{}", skewed.stderr);
    assert!(skewed.stderr.contains("as_of defaults to the local clock"), "{}", skewed.stderr);
}

#[test]
fn a_key_deactivated_after_it_failed_turns_its_security_hub_finding_passed() {
    let (emu, s, work) = one_stale_key();
    let old = s.key(&work, "app", 0);
    let asff_of = |dir: &std::path::Path| -> (std::path::PathBuf, Value) {
        let file = dir.join("findings.asff.json");
        let spec = format!("asff={}", file.display());
        let run = emu.keyaudit(&["scan", "--as-of", AS_OF, "--account", &work, "--rules", "KA-IAM-001", "-o", &spec]);
        let report = dir.join("report.json");
        std::fs::write(&report, run.report().to_string()).unwrap();
        // Import into the emulator's Security Hub and read every finding back.
        super::harness::check_exports(&[
            "--report".as_ref(),
            report.as_os_str(),
            "--asff".as_ref(),
            file.as_os_str(),
            "--endpoint".as_ref(),
            emu.url.as_ref(),
        ]);
        let findings: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let key = findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["Resources"][0]["Details"]["Other"]["AccessKeyId"] == old.as_str())
            .unwrap()
            .clone();
        (file, key)
    };
    let first = tempfile::tempdir().unwrap();
    let (_, failed) = asff_of(first.path());
    assert_eq!(failed["Compliance"]["Status"], "FAILED");
    emu.change_key(&work, "app", "deactivate", Some(&old));
    let second = tempfile::tempdir().unwrap();
    let (_, passed) = asff_of(second.path());
    assert_eq!(passed["Id"], failed["Id"], "the same finding, updated in place");
    assert_eq!(passed["Compliance"]["Status"], "PASSED");
    assert_eq!(passed["Resources"][0]["Details"]["Other"]["KeyStatus"], "inactive");
}

/// Issue "Organization scale": an account too large for its look-ups to finish keeps every verdict; the account is
/// scanned and says how far the look-ups got.
#[test]
fn a_large_account_whose_look_ups_run_out_of_time_keeps_every_verdict() {
    let emu = Emulator::start();
    let users: Vec<Value> = (0..60)
        .map(|i| json!({"name": format!("user-{i:02}"), "keys": [{"created": "2026-05-12T12:00:00Z"}]}))
        .collect();
    let s = emu.seed(json!({"accounts": [{"name": "big", "users": users}]}));
    let big = s.account("big");
    let run = emu.keyaudit(&[
        "scan",
        "--as-of",
        AS_OF,
        "--account",
        &big,
        "--rules",
        "KA-IAM-001",
        "--iam-rps",
        "5",
        "--enrichment-timeout",
        "3s",
        "-o",
        "table",
    ]);
    assert_eq!(run.code, 1, "failing keys, and the account was assessed\n{}", run.stderr);
    harness::assert_matches_json_schema(run.report());
    let account = run.account(&big);
    assert_eq!(account["status"], "scanned");
    let enrichment = &account["enrichment"];
    assert_eq!(enrichment["status"], "partial", "{enrichment}");
    let done = enrichment["done"].as_u64().unwrap();
    assert!((1..60).contains(&done), "{enrichment}");
    let findings = run.report()["findings"].as_array().unwrap();
    let failing: Vec<&Value> =
        findings.iter().filter(|f| f["account_id"] == big.as_str() && f["verdict"] == "fail").collect();
    assert_eq!(failing.len(), 60, "every verdict is in");
    let with_ids = failing.iter().filter(|f| !f["access_key_id"].is_null()).count();
    assert_eq!(with_ids as u64, done, "the look-ups that finished attached their key ids; the rest are null");
    assert!(run.stdout.contains("Look-ups cut short by --enrichment-timeout"), "{}", run.stdout);
}
