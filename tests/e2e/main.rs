//! End-to-end tests: the real `keyaudit` binary against keyaudit's moto-based emulator. Each test starts its
//! own emulator on a free loopback port, so tests are independent and may run in parallel.
#![allow(clippy::unwrap_used)]

mod aws_behaviour;
mod deadlines;
mod deploy;
mod harness;
mod html;
mod loose_ends;
mod merge;
mod multi_rule;
mod notify;
mod preflight;
mod quotas;
mod remediation;
mod rotation;
mod rotation_safety;
mod s3;
mod scheduled;
mod securityhub;
mod simulator;
mod triage;
mod where_used;

use std::process::Command;

use harness::{AS_OF, Emulator, MANAGEMENT, Run, Seeded};
use serde_json::{Value, json};

/// The reference organization (ages relative to AS_OF = 2026-11-28T12:00:00Z):
///
/// /Root                 management (admin: 331 days → fail), sandbox (user with `+=,.@_-`: exactly 90 days
///                       → warn, plus an old inactive key), empty (no users)
/// /Root/Prod            legacy (SUSPENDED), closing (PENDING_CLOSURE)
/// /Root/Prod/Payments   payments (ci: 90 days + 1 s → fail; fresh: 10 days → pass and 80 days → warn; nokeys)
/// /Root/Dev             dev (bob: 30 days → pass), denied (AssumeRole answers AccessDenied, when injected)
pub(crate) fn org_spec() -> Value {
    json!({
        "management": {"users": [{"name": "admin", "keys": [{"created": "2026-01-01T00:00:00Z"}]}]},
        "accounts": [
            {"name": "sandbox", "users": [{"name": "a+b=c,d.e@f_g-h", "keys": [
                {"created": "2026-08-30T12:00:00Z"},
                {"created": "2020-01-01T00:00:00Z", "status": "Inactive"}]}]},
            {"name": "empty"}
        ],
        "ous": [
            {"name": "Prod", "accounts": [
                {"name": "legacy", "state": "SUSPENDED"},
                {"name": "closing", "state": "PENDING_CLOSURE"}],
             "ous": [{"name": "Payments", "accounts": [{"name": "payments", "users": [
                {"name": "ci", "keys": [{"created": "2026-08-30T11:59:59Z", "last_used": "2026-11-27T08:00:00Z"}]},
                {"name": "fresh", "keys": [{"created": "2026-11-18T12:00:00Z"}, {"created": "2026-09-09T12:00:00Z"}]},
                {"name": "nokeys"}]}]}]},
            {"name": "Dev", "accounts": [
                {"name": "dev", "users": [{"name": "bob", "keys": [{"created": "2026-10-29T12:00:00Z"}]}]},
                {"name": "denied"}]}
        ]
    })
}

pub(crate) fn setup() -> (Emulator, Seeded) {
    let emu = Emulator::start();
    let seeded = emu.seed(org_spec());
    (emu, seeded)
}

pub(crate) fn deny_assume_role(emu: &Emulator, account: &str) {
    emu.fault(json!({"service": "sts", "action": "AssumeRole", "account_id": account,
                     "error_code": "AccessDenied", "http_status": 403,
                     "message": "User is not authorized to perform: sts:AssumeRole"}));
}

/// A scan with KA-IAM-001 alone and no owner look-up: the tests that use it assert the stale-key rule's behaviour
/// and the scan's API calls; `multi_rule.rs` runs every rule, `triage.rs` looks owners up.
fn scan(emu: &Emulator, extra: &[&str]) -> Run {
    let mut args = vec!["scan", "--as-of", AS_OF, "-o", "table", "--rules", "KA-IAM-001", "--owner-tags", ""];
    args.extend_from_slice(extra);
    emu.keyaudit(&args)
}

fn ids(run: &Run) -> Vec<String> {
    let mut ids: Vec<String> =
        run.report()["accounts"].as_array().unwrap().iter().map(|a| a["account_id"].as_str().unwrap().into()).collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn org_wide_scan_reports_exact_verdicts_ou_paths_and_account_statuses() {
    let (emu, s) = setup();
    deny_assume_role(&emu, &s.account("denied"));
    let run = scan(&emu, &[]);
    assert_eq!(run.code, 3, "a failed account makes the scan incomplete (exit 3)\n{}", run.stderr);
    let r = run.report();
    harness::assert_matches_json_schema(r);
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["run"]["as_of"], AS_OF);
    assert_eq!(r["run"]["scope"], "organization");
    assert_eq!(r["run"]["management_account_id"], MANAGEMENT);
    assert_eq!(r["run"]["organization_id"], s.0["organization_id"]);
    assert_eq!((r["run"]["max_age_days"].as_u64(), r["run"]["warn_days"].as_u64()), (Some(90), Some(14)));

    let expect_account = |name: &str, ou: &str, state: &str, status: &str| {
        let a = run.account(&s.account(name));
        assert_eq!(a["ou_path"], ou, "{name}");
        assert_eq!(a["state"], state, "{name}");
        assert_eq!(a["status"], status, "{name}: {a}");
        a.clone()
    };
    let mgmt = expect_account("management", "/Root", "ACTIVE", "scanned");
    assert_eq!(mgmt["access"], "caller_credentials");
    assert!(mgmt["report_generated_at"].is_string());
    expect_account("sandbox", "/Root", "ACTIVE", "scanned");
    expect_account("empty", "/Root", "ACTIVE", "scanned");
    let legacy = expect_account("legacy", "/Root/Prod", "SUSPENDED", "skipped");
    assert_eq!(legacy["reason_code"], "not_active");
    assert!(legacy["reason"].as_str().unwrap().contains("SUSPENDED"));
    expect_account("closing", "/Root/Prod", "PENDING_CLOSURE", "skipped");
    let payments = expect_account("payments", "/Root/Prod/Payments", "ACTIVE", "scanned");
    assert_eq!(payments["access"], "assume_role");
    assert_eq!(
        payments["role_arn"],
        format!("arn:aws:iam::{}:role/OrganizationAccountAccessRole", s.account("payments"))
    );
    expect_account("dev", "/Root/Dev", "ACTIVE", "scanned");
    let denied = expect_account("denied", "/Root/Dev", "ACTIVE", "failed");
    assert_eq!(denied["reason_code"], "assume_role_denied");
    assert_eq!(denied["reason_action"], "sts:AssumeRole");
    assert_eq!(denied["reason_aws_error_code"], "AccessDenied");
    assert!(denied["reason"].as_str().unwrap().starts_with("sts:AssumeRole AccessDenied: "), "{denied}");

    let (sandbox, payments, dev) = (s.account("sandbox"), s.account("payments"), s.account("dev"));
    let special = "a+b=c,d.e@f_g-h";
    let expected = sorted_findings(vec![
        (MANAGEMENT.into(), "admin".into(), 1, "fail".into(), json!(s.key(MANAGEMENT, "admin", 0))),
        (sandbox.clone(), special.into(), 1, "warn".into(), json!(s.key(&sandbox, special, 0))),
        (sandbox.clone(), special.into(), 2, "not_applicable".into(), json!(s.key(&sandbox, special, 1))),
        (payments.clone(), "ci".into(), 1, "fail".into(), json!(s.key(&payments, "ci", 0))),
        (payments.clone(), "fresh".into(), 1, "pass".into(), json!(s.key(&payments, "fresh", 0))),
        (payments.clone(), "fresh".into(), 2, "warn".into(), json!(s.key(&payments, "fresh", 1))),
        (dev.clone(), "bob".into(), 1, "pass".into(), Value::Null),
    ]);
    assert_eq!(sorted_findings(run.verdicts()), expected);

    let ci = &run.findings_of(&payments, "ci")[0];
    assert_eq!(ci["age_days"], 90, "90 days and 1 second floors to 90 days, and fails");
    assert_eq!(ci["age_seconds"], 90 * 86_400 + 1);
    assert_eq!(ci["last_rotated"], "2026-08-30T11:59:59Z");
    assert_eq!(ci["due_at"], "2026-11-28T11:59:59Z");
    assert_eq!(ci["last_used_at"], "2026-11-27T08:00:00Z");
    assert_eq!(ci["key_status"], "active");
    assert_eq!(ci["ou_path"], "/Root/Prod/Payments");
    assert_eq!(ci["account_name"], "payments");
    assert_eq!(ci["user_arn"], format!("arn:aws:iam::{payments}:user/ci"));
    assert_eq!(ci["rule_id"], "KA-IAM-001");
    let exact = &run.findings_of(&sandbox, special)[0];
    assert_eq!((exact["age_days"].as_i64(), exact["verdict"].as_str()), (Some(90), Some("warn")));
    assert_eq!(exact["due_at"], AS_OF, "exactly 90 days is still compliant");

    let summary = &r["summary"];
    assert_eq!(
        summary["accounts"],
        json!({"discovered": 8, "selected": 8, "scanned": 5, "skipped": 2, "failed": 1,
                                            "failed_by_reason": {"assume_role_denied": 1}})
    );
    assert_eq!(
        summary["keys"],
        json!({"total": 7, "active": 6, "fail": 2, "warn": 2, "pass": 2, "not_applicable": 1, "resolved": 0,
               "suppressed": 0})
    );

    for text in ["/Root/Prod/Payments", "INCOMPLETE", "assume_role_denied", "KA-IAM-001 stale-access-key", special] {
        assert!(run.stdout.contains(text), "table lacks {text:?}:\n{}", run.stdout);
    }
}

fn sorted_findings(mut v: Vec<(String, String, u64, String, Value)>) -> Vec<(String, String, u64, String, Value)> {
    v.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    v
}

#[test]
fn ou_account_and_exclude_filters_select_accounts() {
    let (emu, s) = setup();
    let by_path = scan(&emu, &["--ou", "/Root/Prod"]);
    assert_eq!(ids(&by_path), sorted(vec![s.account("legacy"), s.account("closing"), s.account("payments")]));
    assert_eq!(by_path.report()["summary"]["accounts"]["discovered"], 8);

    let by_id_and_account = scan(&emu, &["--ou", &s.ou("/Root/Prod/Payments"), "--account", &s.account("sandbox")]);
    assert_eq!(ids(&by_id_and_account), sorted(vec![s.account("payments"), s.account("sandbox")]));

    let excluded = scan(&emu, &["--ou", "Root/Dev", "--exclude-account", &s.account("denied")]);
    assert_eq!(ids(&excluded), vec![s.account("dev")]);
    assert_eq!(excluded.code, 0);
}

#[test]
fn exit_codes_follow_the_documented_contract() {
    let (emu, s) = setup();
    assert_eq!(scan(&emu, &["--account", &s.account("dev")]).code, 0, "only passing keys");
    assert_eq!(scan(&emu, &["--account", &s.account("sandbox")]).code, 0, "warnings alone pass by default");
    assert_eq!(scan(&emu, &["--account", &s.account("sandbox"), "--fail-on", "warn"]).code, 1);
    assert_eq!(scan(&emu, &["--account", &s.account("payments")]).code, 1, "a failing key");
    assert_eq!(scan(&emu, &["--account", &s.account("legacy")]).code, 0, "a skipped account is not a failure");
    deny_assume_role(&emu, &s.account("denied"));
    let run = scan(&emu, &["--account", &s.account("denied"), "--account", &s.account("payments")]);
    assert_eq!(run.code, 3, "incomplete takes precedence over failing keys");
}

#[test]
fn bad_input_exits_2_with_a_message_naming_the_input() {
    let (emu, s) = setup();
    let dir = tempfile::tempdir().unwrap();
    let bad_config = dir.path().join("keyaudit.toml");
    std::fs::write(&bad_config, "max-age-days = 90\nconcurrency = \"many\"\n").unwrap();
    let unknown_key = dir.path().join("unknown.toml");
    std::fs::write(&unknown_key, "max-age = 90\n").unwrap();
    let underscores = dir.path().join("underscores.toml");
    std::fs::write(&underscores, "max_age_days = 90\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--as-of".into(), "yesterday".into()], "--as-of \"yesterday\": expected an RFC 3339 instant"),
        (vec!["--ou".into(), "/Root/Nope".into()], "--ou \"/Root/Nope\" matches no organizational unit"),
        (vec!["--account".into(), "999999999999".into()], "--account 999999999999 is not an account of organization"),
        (vec!["--account".into(), "12345".into()], "invalid AWS account id \"12345\""),
        (
            vec!["-o".into(), "json=/nonexistent-dir/report.json".into()],
            "--output /nonexistent-dir/report.json: the directory /nonexistent-dir does not exist",
        ),
        (vec!["-o".into(), "xml".into()], "unknown format \"xml\""),
        (vec!["-o".into(), "json".into(), "-o".into(), "table".into()], "at most one format can go to stdout"),
        (vec!["--warn-days".into(), "90".into()], "warn-days"),
        (vec!["--account-timeout".into(), "soon".into()], "--account-timeout \"soon\": expected a duration"),
        (vec!["--role-path".into(), "audit".into()], "--role-path \"audit\" is invalid"),
        (vec!["--config".into(), bad_config.display().to_string()], "line 2"),
        (
            vec!["--config".into(), unknown_key.display().to_string()],
            "unknown key `max-age`: did you mean `max-age-days`?",
        ),
        (
            vec!["--config".into(), underscores.display().to_string()],
            "line 1: unknown key `max_age_days`: did you mean `max-age-days`? (keys are the long flag names",
        ),
        (vec!["--no-such-flag".into()], "unexpected argument '--no-such-flag'"),
    ];
    for (args, message) in cases {
        let mut all = vec!["scan", "--as-of", AS_OF];
        // --as-of given twice is a clap error of its own: drop the default when the case sets it.
        if args[0] == "--as-of" {
            all.truncate(1);
        }
        all.extend(args.iter().map(String::as_str));
        let out = emu.command(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: expected {message:?} in:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let own = stderr.replace(&dir.path().display().to_string(), "DIR");
        assert!(!own.contains(".tmp") && !own.contains(".keyaudit-"), "never a temporary file's name: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} wrote a report");
    }
    let _ = s;
}

#[test]
fn throttled_calls_are_retried_and_the_report_is_unchanged() {
    let (emu, s) = setup();
    let clean = scan(&emu, &[]);
    emu.control("DELETE", "requests", &Value::Null);
    for (service, action) in [
        ("organizations", "ListChildren"),
        ("organizations", "ListAccounts"),
        ("organizations", "ListOrganizationalUnitsForParent"),
        ("sts", "AssumeRole"),
        ("iam", "GenerateCredentialReport"),
        ("iam", "GetCredentialReport"),
        ("iam", "ListAccessKeys"),
    ] {
        let code = if service == "organizations" { "TooManyRequestsException" } else { "Throttling" };
        emu.fault(json!({"service": service, "action": action, "error_code": code, "http_status": 400, "times": 2}));
    }
    let throttled = scan(&emu, &[]);
    assert_eq!(throttled.code, clean.code, "{}", throttled.stderr);
    assert_eq!(sorted_findings(throttled.verdicts()), sorted_findings(clean.verdicts()));
    assert_eq!(throttled.report()["summary"], clean.report()["summary"]);
    let faults = emu.control("GET", "faults", &Value::Null);
    for fault in faults.as_array().unwrap() {
        assert_eq!(fault["hits"], 2, "every fault was hit and waited out: {fault}");
    }
    // Waited out at the wire, and counted for the account whose calls they were.
    let accounts = throttled.report()["accounts"].as_array().unwrap().clone();
    let retries: u64 = accounts.iter().map(|a| a["sdk_retries"].as_u64().unwrap()).sum();
    assert_eq!(retries, 8, "2 AssumeRole, 2 + 2 for the credential report, 2 ListAccessKeys: {accounts:?}");
    let _ = s;
}

#[test]
fn an_account_outside_an_organization_is_scanned_alone() {
    let emu = Emulator::start();
    emu.seed(json!({"organization": false,
                    "management": {"users": [{"name": "solo", "keys": [{"created": "2026-01-01T00:00:00Z"}]}]}}));
    let run = scan(&emu, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.report();
    assert_eq!(r["run"]["scope"], "standalone_account");
    assert_eq!(r["run"]["organization_id"], Value::Null);
    assert_eq!(ids(&run), vec![MANAGEMENT.to_owned()]);
    assert_eq!(run.findings_of(MANAGEMENT, "solo")[0]["verdict"], "fail");
    assert!(run.stdout.contains("is not in an AWS Organization"), "{}", run.stdout);
}

#[test]
fn a_malformed_credential_report_fails_only_that_account() {
    let (emu, s) = setup();
    emu.fault(json!({"service": "iam", "action": "GetCredentialReport", "account_id": s.account("dev"),
                     "report_content": "user,arn,access_key_1_active\nbob,arn:aws:iam::1:user/bob,true\n"}));
    let run = scan(&emu, &[]);
    assert_eq!(run.code, 3);
    let dev = run.account(&s.account("dev"));
    assert_eq!(dev["status"], "failed");
    assert_eq!(dev["reason_code"], "malformed_report");
    assert!(dev["reason"].as_str().unwrap().contains("no column \"access_key_1_last_rotated\""), "{dev}");
    assert_eq!(run.account(&s.account("payments"))["status"], "scanned");
    assert!(run.findings_of(&s.account("dev"), "bob").is_empty(), "no findings invented for a failed account");
}

#[test]
fn a_credential_report_that_never_comes_fails_the_account_as_report_unavailable() {
    let (emu, s) = setup();
    emu.fault(json!({"service": "iam", "action": "GenerateCredentialReport", "account_id": s.account("payments"),
                     "error_code": "LimitExceeded", "http_status": 409,
                     "message": "No more capacity to launch new report generation tasks"}));
    let run = scan(&emu, &["--report-attempts", "2"]);
    assert_eq!(run.code, 3);
    let payments = run.account(&s.account("payments"));
    assert_eq!(payments["status"], "failed");
    assert_eq!(payments["reason_code"], "report_unavailable");
    assert_eq!(payments["reason_aws_error_code"], "LimitExceeded");
    assert!(run.findings_of(&s.account("payments"), "ci").is_empty());
    assert_eq!(run.account(&s.account("dev"))["status"], "scanned");
}

#[test]
fn stdout_carries_only_the_report_and_logs_go_to_stderr() {
    let (emu, s) = setup();
    let out = emu.command(&["scan", "--as-of", AS_OF, "-vv", "-o", "json", "--account", &s.account("dev")]);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(report["summary"]["accounts"]["scanned"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("organization discovered"), "-vv logs reach stderr:\n{stderr}");
    assert!(!stderr.contains(harness::FAKE_SECRET));
}

#[test]
fn key_id_lookups_follow_the_key_ids_mode() {
    let (emu, s) = setup();
    let (payments, dev) = (s.account("payments"), s.account("dev"));
    let all = scan(&emu, &["--account", &payments, "--account", &dev, "--key-ids", "all"]);
    let bob = all.findings_of(&dev, "bob");
    assert_eq!(bob[0]["verdict"], "pass");
    assert_eq!(bob[0]["access_key_id"], s.key(&dev, "bob", 0), "--key-ids all names passing keys too");
    assert_eq!(bob[0]["created_at"], "2026-10-29T12:00:00Z");
    assert_eq!(all.account(&dev)["enrichment_calls"], 1);
    assert_eq!(all.account(&payments)["enrichment_calls"], 2, "users without keys are never listed");

    let failing = scan(&emu, &["--account", &payments, "--account", &dev]);
    assert_eq!(failing.account(&dev)["enrichment_calls"], 0, "bob's key passes: no ListAccessKeys");
    assert!(failing.findings_of(&dev, "bob")[0]["access_key_id"].is_null());
    assert_eq!(failing.account(&payments)["enrichment_calls"], 2, "ci fails, fresh warns");
    // AssumeRole + GenerateCredentialReport + GetCredentialReport are the base calls; the rest are enrichment.
    assert_eq!(failing.account(&dev)["api_calls"], 3);
    assert_eq!(failing.account(&payments)["api_calls"], 5);

    let none = scan(&emu, &["--account", &payments, "--key-ids", "none"]);
    assert!(none.findings_of(&payments, "ci")[0]["access_key_id"].is_null());
    assert_eq!(none.account(&payments)["enrichment_calls"], 0);
}

// ---- Scale and faults ---------------------------------------------------------------------------------------

#[test]
fn a_quarter_of_all_calls_throttled_yields_the_clean_report_key_for_key() {
    let (emu, _s) = setup();
    let clean = scan(&emu, &["--key-ids", "all"]);
    for (service, code) in [("iam", "Throttling"), ("sts", "Throttling"), ("organizations", "TooManyRequestsException")]
    {
        emu.fault(json!({"service": service, "error_code": code, "http_status": 400, "probability": 0.25}));
    }
    // Throttling is waited out at the wire, never by the SDK's attempts: one attempt per call is enough.
    let throttled = scan(&emu, &["--key-ids", "all", "--max-attempts", "1"]);
    assert_eq!(throttled.code, clean.code, "{}", throttled.stderr);
    assert_eq!(sorted_findings(throttled.verdicts()), sorted_findings(clean.verdicts()));
    assert_eq!(throttled.report()["summary"], clean.report()["summary"]);
    let hits: u64 = emu
        .control("GET", "faults", &Value::Null)
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["hits"].as_u64().unwrap_or(0))
        .sum();
    assert!(hits >= 5, "the faults were hit ({hits} times)");
    let sdk_retries: u64 =
        throttled.report()["accounts"].as_array().unwrap().iter().map(|a| a["sdk_retries"].as_u64().unwrap()).sum();
    assert!(sdk_retries > 0, "the accounts' waited-out answers are counted per account");
}

/// Issue "Organization scale": AssumeRole's waited-out answers count in the account's `sdk_retries` too.
#[test]
fn assume_role_retries_are_counted_for_their_account() {
    let (emu, s) = setup();
    let payments = s.account("payments");
    emu.fault(json!({"service": "sts", "action": "AssumeRole", "account_id": payments, "error_code": "Throttling",
                     "http_status": 400, "times": 2}));
    let run = scan(&emu, &["--account", &payments]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let account = run.account(&payments);
    assert_eq!(account["status"], "scanned");
    assert_eq!(account["sdk_retries"], 2, "two throttled AssumeRole attempts, waited out: {account}");
}

#[test]
fn report_capacity_and_in_progress_answers_are_waited_out() {
    let (emu, s) = setup();
    let clean = scan(&emu, &[]);
    let payments = s.account("payments");
    emu.fault(json!({"service": "iam", "action": "GenerateCredentialReport", "account_id": payments,
                     "error_code": "LimitExceeded", "http_status": 409, "times": 3,
                     "message": "No more capacity to launch new report generation tasks"}));
    emu.fault(json!({"service": "iam", "action": "GetCredentialReport", "account_id": payments,
                     "error_code": "ReportInProgress", "http_status": 404, "times": 3,
                     "message": "Report generation in progress"}));
    let waited = scan(&emu, &[]);
    assert_eq!(waited.code, clean.code, "{}", waited.stderr);
    assert_eq!(sorted_findings(waited.verdicts()), sorted_findings(clean.verdicts()));
    assert_eq!(waited.account(&payments)["report_retries"], 6);
    assert_eq!(waited.account(&payments)["status"], "scanned");
}

#[test]
fn a_hung_account_times_out_and_the_rest_finish() {
    let (emu, s) = setup();
    let payments = s.account("payments");
    emu.fault(json!({"service": "iam", "action": "GetCredentialReport", "account_id": payments, "latency_ms": 8000}));
    let run = scan(&emu, &["--account-timeout", "1s"]);
    assert_eq!(run.code, 3);
    let hung = run.account(&payments);
    assert_eq!(hung["status"], "failed");
    assert_eq!(hung["reason_code"], "timeout");
    assert!(hung["duration_ms"].as_u64().unwrap() < 5000, "abandoned at the timeout: {hung}");
    assert_eq!(run.report()["summary"]["accounts"]["scanned"], 5, "every other active account was scanned");
}

/// Request times the emulator saw for one service (and account), in order.
fn request_times(emu: &Emulator, service: &str, account: Option<&str>) -> Vec<f64> {
    let log = emu.control("GET", "requests", &Value::Null);
    let mut times: Vec<f64> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["service"] == service && account.is_none_or(|a| r["account_id"] == a))
        .map(|r| r["t"].as_f64().unwrap())
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// No window of one second holds more than `rate` requests (20 ms allowed for arrival jitter at the emulator on a
/// loaded 2-core machine; a burst of one more request would show as a window shorter by a whole interval).
fn assert_rate_held(times: &[f64], rate: usize, what: &str) {
    assert!(times.len() > rate, "{what}: too few requests ({}) to test a rate of {rate}/s", times.len());
    for (i, window) in times.windows(rate + 1).enumerate() {
        let span = window[rate] - window[0];
        assert!(span >= 0.98, "{what}: requests {i}..={} within {span:.3}s exceed {rate}/s", i + rate);
    }
}

#[test]
fn the_rate_limiters_hold_at_the_wire() {
    let emu = Emulator::start();
    let users: Vec<Value> =
        (0..5).map(|i| json!({"name": format!("u{i}"), "keys": [{"created": "2026-01-01T00:00:00Z"}]})).collect();
    let accounts: Vec<Value> = (0..5).map(|i| json!({"name": format!("a{i}"), "users": users})).collect();
    let s = emu.seed(json!({"accounts": accounts}));
    // Throttled calls are sent again: each time after waiting for the limiter too.
    emu.fault(json!({"service": "iam", "action": "ListAccessKeys", "error_code": "Throttling", "times": 3}));
    let run = scan(&emu, &["--iam-rps", "3", "--enrichment-rps", "2", "--sts-rps", "2", "--concurrency", "8"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let a0 = s.account("a0");
    let times = request_times(&emu, "iam", Some(&a0));
    assert!(times.len() >= 7, "generate, get and 5 ListAccessKeys for a0: {}", times.len());
    let log = emu.control("GET", "requests", &Value::Null);
    for i in 0..5 {
        let account = s.account(&format!("a{i}"));
        // The optional look-ups (ListAccessKeys here) have a rate of their own; they follow the report's calls.
        let mut look_ups: Vec<f64> = log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "ListAccessKeys" && r["account_id"] == account.as_str())
            .map(|r| r["t"].as_f64().unwrap())
            .collect();
        look_ups.sort_by(f64::total_cmp);
        assert_rate_held(&look_ups, 2, &format!("ListAccessKeys in {account}"));
        let all = request_times(&emu, "iam", Some(&account));
        let report_calls = all.len() - look_ups.len();
        assert!(look_ups[0] >= all[report_calls - 1], "the look-ups follow the report's calls in {account}");
    }
    // STS: GetCallerIdentity and one AssumeRole per member account, all under one limiter.
    assert_rate_held(&request_times(&emu, "sts", None), 2, "STS");
    let retried: u64 =
        run.report()["accounts"].as_array().unwrap().iter().map(|a| a["sdk_retries"].as_u64().unwrap()).sum();
    assert_eq!(retried, 3, "the three throttled calls were sent again");
}

#[test]
fn an_interrupt_marks_unfinished_accounts_and_still_writes_the_report() {
    let (emu, s) = setup();
    emu.fault(json!({"service": "iam", "action": "GetCredentialReport", "latency_ms": 4000}));
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let child = emu.spawn(&["scan", "--as-of", AS_OF, "-o", "table"], &report);
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let json = serde_json::from_str(&std::fs::read_to_string(&report).expect("the report was written")).unwrap();
    let run = Run::new(output, Some(json));
    assert_eq!(run.code, 3, "{}", run.stderr);
    let summary = &run.report()["summary"]["accounts"];
    assert_eq!(summary["selected"], 8, "every account is in the report");
    assert_eq!(summary["skipped"], 2);
    assert_eq!(summary["failed_by_reason"]["interrupted"], 6, "the 6 active accounts were all in flight: {summary}");
    assert_eq!(run.account(&s.account("dev"))["reason_code"], "interrupted");
    assert!(run.stdout.contains("INCOMPLETE"));
}

/// Issue "Organization scale": discovery hands accounts over as it walks, so scanning starts before the walk ends;
/// an interrupt during the walk still writes the report, saying that discovery was cut short.
#[test]
fn scanning_starts_during_discovery_and_an_interrupt_there_still_writes_the_report() {
    let (emu, _s) = setup();
    emu.fault(json!({"service": "organizations", "action": "ListOrganizationalUnitsForParent", "latency_ms": 600}));
    emu.control("DELETE", "requests", &Value::Null);
    let run = scan(&emu, &[]);
    assert_eq!(run.report()["run"]["discovery"], "complete");
    assert_eq!(run.report()["summary"]["accounts"]["selected"], 8);
    let first_iam = request_times(&emu, "iam", None)[0];
    let last_org = *request_times(&emu, "organizations", None).last().unwrap();
    assert!(first_iam < last_org, "the first IAM call ({first_iam}) comes before the walk ends ({last_org})");

    // Interrupted during the walk: the accounts found so far are in the report, and the run says the rest is not.
    emu.control("DELETE", "faults", &Value::Null);
    emu.fault(json!({"service": "organizations", "action": "ListOrganizationalUnitsForParent", "latency_ms": 2500}));
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let child = emu.spawn(&["scan", "--as-of", AS_OF, "-o", "table", "--rules", "KA-IAM-001"], &report);
    std::thread::sleep(std::time::Duration::from_millis(4000));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let json = serde_json::from_str(&std::fs::read_to_string(&report).expect("the report was written")).unwrap();
    let run = Run::new(output, Some(json));
    assert_eq!(run.code, 3, "an interrupted discovery cannot claim compliance\n{}", run.stderr);
    assert_eq!(run.report()["run"]["discovery"], "interrupted");
    let selected = run.report()["summary"]["accounts"]["selected"].as_u64().unwrap();
    assert!((1..8).contains(&selected), "the upper levels' accounts were found, Prod/Payments' not yet: {selected}");
    assert!(run.stdout.contains("Discovery was interrupted"), "{}", run.stdout);
    harness::assert_matches_json_schema(run.report());
}

// ---- Exports ------------------------------------------------------------------------------------------------

fn file_with_suffix(dir: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().ends_with(suffix)
                && !p.to_string_lossy().ends_with(&format!(".ocsf{suffix}"))
                && !p.to_string_lossy().ends_with(&format!(".asff{suffix}"))
        })
        .unwrap_or_else(|| panic!("no *{suffix} in {}", dir.display()))
}

fn export_all(emu: &Emulator, dir: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec!["--rules", "KA-IAM-001"];
    args.extend_from_slice(extra);
    export_files(emu, dir, &args)
}

/// Checks every export that `export_files` wrote into `dir` with its real consumer (sarif-multitool, the SARIF
/// schema and GitHub's ingestion rules, py-ocsf-models, Security Hub in the emulator, Python's csv, the JSON
/// report for NDJSON); returns the SARIF file. The JSON report is saved beside them as `report.json`.
fn check_every_export(emu: &Emulator, dir: &std::path::Path, run: &Run) -> std::path::PathBuf {
    let report_file = dir.join("report.json");
    std::fs::write(&report_file, run.report().to_string()).unwrap();
    let sarif = file_with_suffix(dir, ".sarif");
    let problems = harness::sarif_multitool_problems(&sarif);
    assert!(problems.is_empty(), "sarif-multitool found errors or warnings: {problems:#?}");
    let mut args: Vec<std::ffi::OsString> =
        vec!["--report".into(), report_file.into(), "--sarif".into(), sarif.clone().into()];
    for (flag, suffix) in
        [("--ocsf", ".ocsf.json"), ("--asff", ".asff.json"), ("--csv", ".csv"), ("--ndjson", ".ndjson")]
    {
        args.extend([flag.into(), file_with_suffix(dir, suffix).into()]);
    }
    args.extend(["--endpoint".into(), emu.url.clone().into()]);
    harness::check_exports(&args.iter().map(std::ffi::OsString::as_os_str).collect::<Vec<_>>());
    sarif
}

/// A quiet scan writing every export format into `dir` (as of AS_OF unless `extra` says otherwise).
fn export_files(emu: &Emulator, dir: &std::path::Path, extra: &[&str]) -> Run {
    let d = dir.display().to_string();
    let mut args = vec!["scan", "-q", "--output-dir", &d];
    if !extra.contains(&"--as-of") {
        args.extend(["--as-of", AS_OF]);
    }
    for f in ["sarif", "ocsf", "asff", "csv", "ndjson"] {
        args.extend(["-o", f]);
    }
    args.extend_from_slice(extra);
    emu.keyaudit(&args)
}

#[test]
fn every_export_is_accepted_by_its_real_consumer() {
    let (emu, s) = setup();
    deny_assume_role(&emu, &s.account("denied"));
    let dir = tempfile::tempdir().unwrap();
    let run = export_all(&emu, dir.path(), &[]);
    assert_eq!(run.code, 3);
    let sarif = check_every_export(&emu, dir.path(), &run);
    assert!(sarif.file_name().unwrap().to_string_lossy().starts_with("keyaudit-2026"), "timestamped names");

    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let run0 = &log["runs"][0];
    let tags: Vec<&str> = run0["tool"]["driver"]["rules"][0]["properties"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for tag in [
        "CIS AWS 1.4.0 1.14",
        "CIS AWS 5.0.0 1.13",
        "CIS AWS 6.0.0 2.13",
        "CIS AWS 7.0.0 2.12",
        "AWS Security Hub IAM.3",
    ] {
        assert!(tags.contains(&tag), "missing tag {tag}: {tags:?}");
    }
    let invocation = &run0["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false, "an account was not assessed");
    let notes = invocation["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["properties"]["account_id"], s.account("denied"));
    assert_eq!(notes[0]["descriptor"]["id"], "assume_role_denied");
    assert_eq!(invocation["properties"]["as_of"], AS_OF);
    assert_eq!(run0["properties"]["skipped_accounts"].as_array().unwrap().len(), 2);
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "2 fail + 2 warn; passing keys only with --sarif-include-pass");
    let levels: Vec<&str> = results.iter().map(|r| r["level"].as_str().unwrap()).collect();
    assert_eq!(levels.iter().filter(|l| **l == "error").count(), 2);
    let json_fingerprints: Vec<&Value> =
        run.report()["findings"].as_array().unwrap().iter().map(|f| &f["fingerprint"]).collect();
    for r in results {
        assert!(json_fingerprints.contains(&&r["partialFingerprints"]["keyaudit/v2"]), "SARIF and JSON agree");
        let chain = r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].as_str().unwrap();
        assert!(chain.starts_with(s.0["organization_id"].as_str().unwrap()), "{chain}");
    }

    // A second run: the same keys keep the same fingerprints.
    let again = tempfile::tempdir().unwrap();
    export_all(&emu, again.path(), &["--sarif-include-pass"]);
    let log2: Value =
        serde_json::from_str(&std::fs::read_to_string(file_with_suffix(again.path(), ".sarif")).unwrap()).unwrap();
    let prints = |l: &Value| -> Vec<String> {
        let mut v: Vec<String> = l["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "fail")
            .map(|r| r["partialFingerprints"]["keyaudit/v2"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(prints(&log), prints(&log2));
    assert_eq!(log2["runs"][0]["results"].as_array().unwrap().len(), 6, "--sarif-include-pass adds the 2 passing keys");
}

#[test]
fn ndjson_lines_are_complete_even_when_the_scan_is_interrupted() {
    let (emu, _s) = setup();
    emu.fault(json!({"service": "iam", "action": "GetCredentialReport", "latency_ms": 4000, "account_id": MANAGEMENT}));
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("stream.ndjson");
    let spec = format!("ndjson={}", stream.display());
    let child = emu.spawn(&["scan", "--as-of", AS_OF, "-o", &spec], &dir.path().join("report.json"));
    // The other accounts finish while the management account hangs: their lines are already there.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let partial = std::fs::read_to_string(&stream).unwrap();
    assert!(partial.lines().any(|l| l.contains("\"type\":\"finding\"")), "lines are streamed during the scan");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let text = std::fs::read_to_string(&stream).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("every line is whole JSON")).collect();
    assert_eq!(lines.last().unwrap()["type"], "summary");
    assert_eq!(lines.last().unwrap()["summary"]["accounts"]["failed_by_reason"]["interrupted"], 1);
    assert!(text.ends_with('\n'));
}

#[test]
fn environment_failures_name_the_permission_and_map_to_their_exit_codes() {
    let (emu, _s) = setup();
    emu.fault(json!({"service": "organizations", "action": "ListRoots", "error_code": "AccessDeniedException",
                     "message": "You don't have permissions to access this resource.", "times": 1}));
    let out = emu.command(&["scan", "--as-of", AS_OF]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "discovery failing leaves the organization unassessed: {stderr}");
    assert!(stderr.contains("organizations:ListRoots AccessDeniedException"), "{stderr}");
    assert!(stderr.contains("management or a delegated-admin account"), "{stderr}");

    emu.fault(json!({"service": "sts", "action": "GetCallerIdentity", "error_code": "InvalidClientTokenId",
                     "http_status": 403, "message": "The security token included in the request is invalid.", "times": 1}));
    let out = emu.command(&["scan", "--as-of", AS_OF]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "unusable credentials are a configuration error: {stderr}");
    assert!(stderr.contains("sts:GetCallerIdentity InvalidClientTokenId"), "{stderr}");
    assert!(!stderr.contains(harness::FAKE_SECRET));
}

#[test]
fn assumed_role_sessions_renew_before_they_expire() {
    let (emu, s) = setup();
    let payments = s.account("payments");
    // Sessions that expire 13 s after issue. The SDK's identity cache treats them as expired 10 s before that,
    // give or take up to 5 s of jitter added back: 3–8 s after issue. The account's second IAM call comes 9 s
    // after its first, so it must run on a renewed session.
    emu.control("POST", "sts", &json!({"expiry_seconds": 13}));
    emu.fault(
        json!({"service": "iam", "action": "GenerateCredentialReport", "account_id": payments, "latency_ms": 9000}),
    );
    let run = scan(&emu, &["--account", &payments, "--key-ids", "none"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.account(&payments)["status"], "scanned");
    // STS calls attributed to the account are its AssumeRole calls (GetCallerIdentity is the caller's).
    let assumed = request_times(&emu, "sts", Some(&payments)).len();
    assert_eq!(assumed, 2, "one AssumeRole to open the account, one renewal before the session expired");
}

#[test]
fn a_config_file_sets_defaults_that_flags_override() {
    let (emu, s) = setup();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keyaudit.toml");
    std::fs::write(&config, "max-age-days = 400\nwarn-days = 30\nou = [\"/Root/Dev\"]\nkey-ids = \"none\"\n").unwrap();
    let config = config.display().to_string();
    let from_file = scan(&emu, &["--config", &config]);
    let run = &from_file.report()["run"];
    assert_eq!((run["max_age_days"].as_u64(), run["warn_days"].as_u64()), (Some(400), Some(30)));
    assert_eq!(ids(&from_file), sorted(vec![s.account("dev"), s.account("denied")]));
    let overridden = scan(&emu, &["--config", &config, "--max-age-days", "100", "--ou", "/Root/Prod"]);
    assert_eq!(overridden.report()["run"]["max_age_days"], 100);
    assert_eq!(overridden.report()["run"]["warn_days"], 30, "what the flags leave alone still comes from the file");
    assert_eq!(ids(&overridden), sorted(vec![s.account("legacy"), s.account("closing"), s.account("payments")]));
}

#[test]
fn a_closed_pipe_ends_the_run_quietly_instead_of_panicking() {
    let (emu, s) = setup();
    // -vv writes a log line at once, so `head` has its line and closes the pipe while keyaudit still logs and
    // has the table to write: both stdout and stderr are closed under it.
    let keyaudit = env!("CARGO_BIN_EXE_keyaudit");
    let script = format!(
        "{keyaudit} scan --as-of {AS_OF} -vv --account {} 2>&1 | head -1 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\"",
        s.account("payments")
    );
    let out = emu.shell(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(text.trim(), "status=1", "the exit code still reports the failing key: {text}");
}

#[test]
fn error_messages_are_whole_sentences_without_debug_dumps() {
    let (emu, _s) = setup();
    let whole = |args: &[&str]| {
        let out = emu.command(args);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).trim().to_owned())
    };
    assert_eq!(
        whole(&["scan", "--as-of", AS_OF, "--warn-days", "100"]),
        (Some(2), "keyaudit: error: --warn-days: expected fewer days than --max-age-days (90), got 100".to_owned())
    );
    // Nothing listens on port 1: the transport error is told as its chain of causes, not as SDK structures.
    assert_eq!(
        whole(&["scan", "--as-of", AS_OF, "--max-attempts", "1", "--endpoint-url", "http://127.0.0.1:1"]),
        (
            Some(2),
            "keyaudit: error: cannot identify the caller (sts:GetCallerIdentity); check the AWS credentials \
             (AWS_PROFILE or --profile, AWS_ACCESS_KEY_ID, SSO login) and --endpoint-url: sts:GetCallerIdentity \
             error: dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os \
             error 111)"
                .to_owned()
        )
    );
}

#[test]
fn the_tables_verdict_line_follows_fail_on() {
    let (emu, s) = setup();
    let sandbox = s.account("sandbox");
    let default = scan(&emu, &["--account", &sandbox]);
    assert_eq!(default.code, 0);
    assert!(default.stdout.contains("PASS with warnings"), "{}", default.stdout);
    let strict = scan(&emu, &["--account", &sandbox, "--fail-on", "warn"]);
    assert_eq!(strict.code, 1);
    assert!(
        strict.stdout.contains("FAIL: findings within a warning window were found (--fail-on warn)"),
        "{}",
        strict.stdout
    );
    assert!(!strict.stdout.contains("PASS"), "{}", strict.stdout);
}
