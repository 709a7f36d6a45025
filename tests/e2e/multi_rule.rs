//! Issue "Findings for many rules": every rule runs by default; each rule's verdicts are exact in JSON and in
//! every export, and every export still passes its real consumer (GitHub code scanning's ingestion rules
//! included). No API call is added: the credential report answers all four rules.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::harness::{self, AS_OF, Emulator, MANAGEMENT, Run, Seeded};
use super::{check_every_export, export_files, file_with_suffix};

/// Ages relative to AS_OF = 2026-11-28T12:00:00Z.
/// - management: the root user has an active key from 2025-01-01.
/// - rooted: root key 1 active (30 days), key 2 inactive; cleanroot: both root keys inactive.
/// - keys: rotating (200 d + 3 d, both active, never used), doubled (100 d + 60 d, used yesterday),
///   never (50 d, never used), u44 / u45 / u46 (60 d old, last used 44 d 23 h, 45 d, 46 d before AS_OF).
fn seed() -> (Emulator, Seeded) {
    let emu = Emulator::start();
    let used = |secs_before: i64| {
        let t: jiff::Timestamp = AS_OF.parse().unwrap();
        (t - jiff::SignedDuration::from_secs(secs_before)).to_string()
    };
    let day = 86_400;
    let s = emu.seed(json!({"accounts": [
        {"name": "rooted"},
        {"name": "cleanroot"},
        {"name": "keys", "users": [
            {"name": "rotating", "keys": [{"created": "2026-05-12T12:00:00Z"}, {"created": "2026-11-25T12:00:00Z"}]},
            {"name": "doubled", "keys": [
                {"created": "2026-08-20T12:00:00Z", "last_used": "2026-11-27T12:00:00Z"},
                {"created": "2026-09-29T12:00:00Z", "last_used": "2026-11-27T12:00:00Z"}]},
            {"name": "never", "keys": [{"created": "2026-10-09T12:00:00Z"}]},
            {"name": "u44", "keys": [{"created": "2026-09-29T12:00:00Z", "last_used": used(45 * day - 3600)}]},
            {"name": "u45", "keys": [{"created": "2026-09-29T12:00:00Z", "last_used": used(45 * day)}]},
            {"name": "u46", "keys": [{"created": "2026-09-29T12:00:00Z", "last_used": used(46 * day)}]}
        ]}
    ]}));
    let root_keys = |account: &str, keys: Value| {
        emu.control("POST", "root-keys", &json!({"account_id": account, "keys": keys}));
    };
    root_keys(MANAGEMENT, json!([{"created": "2025-01-01T00:00:00Z"}]));
    root_keys(
        &s.account("rooted"),
        json!([{"created": "2026-10-29T12:00:00Z"}, {"created": "2020-01-01T00:00:00Z", "status": "Inactive"}]),
    );
    root_keys(
        &s.account("cleanroot"),
        json!([{"created": "2020-01-01T00:00:00Z", "status": "Inactive"}, {"created": "2021-01-01T00:00:00Z", "status": "Inactive"}]),
    );
    (emu, s)
}

/// rule id → sorted (account name, user, slot or 0, verdict).
fn by_rule(run: &Run, names: &BTreeMap<String, String>) -> BTreeMap<String, Vec<(String, String, u64, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String, u64, String)>> = BTreeMap::new();
    for f in run.report()["findings"].as_array().unwrap() {
        out.entry(f["rule_id"].as_str().unwrap().to_owned()).or_default().push((
            names[f["account_id"].as_str().unwrap()].clone(),
            f["user_name"].as_str().unwrap().to_owned(),
            f["key_slot"].as_u64().unwrap_or(0),
            f["verdict"].as_str().unwrap().to_owned(),
        ));
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

fn rows(v: &[(&str, &str, u64, &str)]) -> Vec<(String, String, u64, String)> {
    let mut rows: Vec<_> = v.iter().map(|(a, u, s, v)| ((*a).into(), (*u).into(), *s, (*v).into())).collect();
    rows.sort();
    rows
}

#[test]
fn every_rule_runs_by_default_with_exact_verdicts_and_no_extra_api_call() {
    let (emu, s) = seed();
    emu.control("DELETE", "requests", &Value::Null);
    // Owner look-ups (triage, iam:ListUserTags) are off here: this test counts what the rules cost.
    let run = emu.keyaudit(&["scan", "--as-of", AS_OF, "-o", "table", "--owner-tags", ""]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    harness::assert_matches_json_schema(run.report());
    let names: BTreeMap<String, String> =
        ["management", "rooted", "cleanroot", "keys"].iter().map(|n| (s.account(n), (*n).to_owned())).collect();
    let got = by_rule(&run, &names);
    let root = "<root_account>";
    assert_eq!(
        got["KA-IAM-001"],
        rows(&[
            ("management", root, 1, "fail"),
            ("rooted", root, 1, "pass"),
            ("rooted", root, 2, "not_applicable"),
            ("cleanroot", root, 1, "not_applicable"),
            ("cleanroot", root, 2, "not_applicable"),
            ("keys", "rotating", 1, "fail"),
            ("keys", "rotating", 2, "pass"),
            ("keys", "doubled", 1, "fail"),
            ("keys", "doubled", 2, "pass"),
            ("keys", "never", 1, "pass"),
            ("keys", "u44", 1, "pass"),
            ("keys", "u45", 1, "pass"),
            ("keys", "u46", 1, "pass"),
        ])
    );
    assert_eq!(got["KA-IAM-002"], rows(&[("management", root, 1, "fail"), ("rooted", root, 1, "fail")]));
    assert_eq!(
        got["KA-IAM-003"],
        rows(&[
            ("keys", "rotating", 0, "fail"),
            ("keys", "doubled", 0, "fail"),
            ("keys", "never", 0, "pass"),
            ("keys", "u44", 0, "pass"),
            ("keys", "u45", 0, "pass"),
            ("keys", "u46", 0, "pass"),
        ])
    );
    assert_eq!(
        got["KA-IAM-004"],
        rows(&[
            ("keys", "rotating", 1, "fail"),
            ("keys", "rotating", 2, "pass"),
            ("keys", "doubled", 1, "pass"),
            ("keys", "doubled", 2, "pass"),
            ("keys", "never", 1, "fail"),
            ("keys", "u44", 1, "pass"),
            ("keys", "u45", 1, "fail"),
            ("keys", "u46", 1, "fail"),
        ])
    );

    let finding = |rule: &str, user: &str| {
        run.report()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule_id"] == rule && f["user_name"] == user)
            .unwrap()
            .clone()
    };
    let rotating = finding("KA-IAM-003", "rotating");
    assert_eq!((rotating["subject"].as_str(), rotating["key_slot"].as_u64()), (Some("user"), None));
    assert_eq!(rotating["evidence"]["rotation_under_way"], true);
    assert_eq!(rotating["evidence"]["active_keys"].as_array().unwrap().len(), 2);
    assert!(rotating["message"].as_str().unwrap().contains("a rotation is probably under way"));
    assert_eq!(finding("KA-IAM-003", "doubled")["evidence"]["rotation_under_way"], false);
    let u45 = finding("KA-IAM-004", "u45");
    assert_eq!(
        u45["evidence"],
        json!({"unused_days": 45, "days_unused": 45, "unused_since": "2026-10-14T12:00:00Z", "never_used": false})
    );
    assert_eq!(finding("KA-IAM-004", "never")["evidence"]["never_used"], true);
    assert_eq!(finding("KA-IAM-002", root)["severity"], "critical");

    let summary = &run.report()["summary"];
    assert_eq!(
        summary["findings_by_rule"]["KA-IAM-002"],
        json!({"fail": 2, "warn": 0, "pass": 0, "not_applicable": 0, "resolved": 0})
    );
    assert_eq!(summary["keys"]["total"], 13, "each key counted once, whatever the rules");
    assert_eq!(summary["keys"]["fail"], 7, "both active root keys, rotating 1, doubled 1, never, u45, u46");
    let rules: Vec<&str> =
        run.report()["run"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(rules, ["KA-IAM-001", "KA-IAM-002", "KA-IAM-003", "KA-IAM-004"]);
    for section in
        ["KA-IAM-002 root-access-key [critical]", "KA-IAM-003 multiple-active-keys", "KA-IAM-004 unused-access-key"]
    {
        assert!(run.stdout.contains(section), "table lacks {section:?}:\n{}", run.stdout);
    }
    let critical_first = run.stdout.find("KA-IAM-002 root-access-key [critical]").unwrap();
    assert!(
        critical_first < run.stdout.find("KA-IAM-001 stale-access-key [medium]").unwrap(),
        "most severe rule first"
    );

    // Calls per account stay 3 (AssumeRole, Generate, Get) plus one ListAccessKeys per user with a failing key
    // (rotating, doubled, never, u45, u46); the root user is never listed.
    let keys = run.account(&s.account("keys"));
    assert_eq!((keys["api_calls"].as_u64(), keys["enrichment_calls"].as_u64()), (Some(8), Some(5)));
    for account in ["rooted", "cleanroot"] {
        assert_eq!(run.account(&s.account(account))["api_calls"], 3, "{account}");
    }
    assert_eq!(run.account(MANAGEMENT)["api_calls"], 2, "the caller's own account: no AssumeRole");
    let listed = emu.requests().iter().filter(|(_, action, _)| action == "ListAccessKeys").count();
    assert_eq!(listed, 5);
}

#[test]
fn rules_are_selected_by_id_or_name_and_unknown_ones_exit_2() {
    let (emu, _s) = seed();
    let only_root = emu.keyaudit(&["scan", "--as-of", AS_OF, "--rules", "root-access-key"]);
    let ids: Vec<&str> =
        only_root.report()["findings"].as_array().unwrap().iter().map(|f| f["rule_id"].as_str().unwrap()).collect();
    assert!(!ids.is_empty() && ids.iter().all(|id| *id == "KA-IAM-002"), "{ids:?}");
    let skipped = emu.keyaudit(&["scan", "--as-of", AS_OF, "--skip-rules", "KA-IAM-001,KA-IAM-002,unused-access-key"]);
    assert!(skipped.report()["findings"].as_array().unwrap().iter().all(|f| f["rule_id"] == "KA-IAM-003"));
    assert_eq!(skipped.report()["run"]["rules"].as_array().unwrap().len(), 1);
    let out = emu.command(&["scan", "--as-of", AS_OF, "--rules", "KA-IAM-001,nope"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--rules \"nope\": no rule has this id or name; known rules: KA-IAM-001 (stale-access-key)"),
        "{stderr}"
    );
    let out = emu.command(&["scan", "--as-of", AS_OF, "--unused-days", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "keyaudit: error: --unused-days: expected a whole number of days from 1 to 36500, got 0"
    );
    let lenient = emu.keyaudit(&["scan", "--as-of", AS_OF, "--rules", "KA-IAM-004", "--unused-days", "47"]);
    assert!(
        lenient.report()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["verdict"] == "fail")
            .all(|f| f["user_name"] == "rotating" || f["user_name"] == "never")
    );
}

#[test]
fn every_export_carries_every_rule_and_passes_its_consumers_and_githubs_ingestion_rules() {
    let (emu, _s) = seed();
    let dir = tempfile::tempdir().unwrap();
    let run = export_files(&emu, dir.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let sarif = check_every_export(&emu, dir.path(), &run);
    let (ocsf, asff) = (file_with_suffix(dir.path(), ".ocsf.json"), file_with_suffix(dir.path(), ".asff.json"));
    let report_file = dir.path().join("report.json");

    let failing: BTreeMap<String, usize> =
        run.report()["findings"].as_array().unwrap().iter().filter(|f| f["verdict"] == "fail").fold(
            BTreeMap::new(),
            |mut m, f| {
                *m.entry(f["rule_id"].as_str().unwrap().to_owned()).or_default() += 1;
                m
            },
        );
    let count = |values: Vec<&str>| {
        values.into_iter().fold(BTreeMap::<String, usize>::new(), |mut m, v| {
            *m.entry(v.to_owned()).or_default() += 1;
            m
        })
    };
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let run0 = &log["runs"][0];
    let descriptors: Vec<&str> =
        run0["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(descriptors, ["KA-IAM-001", "KA-IAM-002", "KA-IAM-003", "KA-IAM-004"]);
    let root_tags = &run0["tool"]["driver"]["rules"][1]["properties"]["tags"];
    assert!(root_tags.as_array().unwrap().contains(&json!("CIS AWS 5.0.0 1.3")), "{root_tags}");
    assert!(root_tags.as_array().unwrap().contains(&json!("AWS Security Hub IAM.4")), "{root_tags}");
    let sarif_fails = count(
        run0["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["level"] == "error")
            .map(|r| r["ruleId"].as_str().unwrap())
            .collect(),
    );
    assert_eq!(sarif_fails, failing, "SARIF has one error result per failing finding of each rule");
    for r in run0["results"].as_array().unwrap() {
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap();
        assert!(uri.starts_with(&format!("aws/{}/iam/", r["properties"]["account_id"].as_str().unwrap())), "{uri}");
    }
    let asff: Value = serde_json::from_str(&std::fs::read_to_string(&asff).unwrap()).unwrap();
    let asff_fails = count(
        asff.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["Compliance"]["Status"] == "FAILED")
            .map(|f| f["GeneratorId"].as_str().unwrap())
            .collect(),
    );
    assert_eq!(asff_fails, failing);
    let ocsf: Value = serde_json::from_str(&std::fs::read_to_string(&ocsf).unwrap()).unwrap();
    let ocsf_fails = count(
        ocsf.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["compliance"]["status_id"] == 3)
            .map(|f| f["metadata"]["event_code"].as_str().unwrap())
            .collect(),
    );
    assert_eq!(ocsf_fails, failing);
    assert_eq!(
        asff.as_array().unwrap().iter().find(|f| f["GeneratorId"] == "KA-IAM-002").unwrap()["Severity"]["Label"],
        "CRITICAL"
    );

    // The ingestion check is real: the same file without physical locations (what keyaudit wrote before) fails.
    let mut stripped = log.clone();
    for r in stripped["runs"][0]["results"].as_array_mut().unwrap() {
        r["locations"][0].as_object_mut().unwrap().remove("physicalLocation");
    }
    let bad = dir.path().join("no-physical-location.sarif");
    std::fs::write(&bad, stripped.to_string()).unwrap();
    let out = harness::run_check_exports(&[
        "--report".as_ref(),
        report_file.as_os_str(),
        "--github-sarif".as_ref(),
        bad.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("no physicalLocation.artifactLocation.uri (expected artifact location)")
    );

    // Every ASFF finding names its own account's product, and the consumer check (which imports each account's
    // findings from that account) refuses what keyaudit wrote before: the caller's product on member findings.
    let findings = asff.as_array().unwrap();
    assert!(findings.iter().any(|f| f["AwsAccountId"] != MANAGEMENT), "member-account findings");
    for f in findings {
        let account = f["AwsAccountId"].as_str().unwrap();
        assert_eq!(f["ProductArn"], format!("arn:aws:securityhub:us-east-1:{account}:product/{account}/default"));
    }
    let mut old = asff.clone();
    for f in old.as_array_mut().unwrap() {
        f["ProductArn"] = json!(format!("arn:aws:securityhub:us-east-1:{MANAGEMENT}:product/{MANAGEMENT}/default"));
    }
    let bad = dir.path().join("callers-product.asff.json");
    std::fs::write(&bad, old.to_string()).unwrap();
    let out = harness::run_check_exports(&[
        "--report".as_ref(),
        report_file.as_os_str(),
        "--asff".as_ref(),
        bad.as_os_str(),
        "--endpoint".as_ref(),
        emu.url.as_ref(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(", AWS accepts only arn:aws:securityhub:us-east-1:"));
}

#[test]
fn the_rules_command_lists_every_rule_with_its_mappings_and_rule_prints_its_docs() {
    let emu = Emulator::start();
    let out = emu.command(&["rules"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "KA-IAM-001  stale-access-key  [medium]",
        "KA-IAM-002  root-access-key  [critical]",
        "KA-IAM-003  multiple-active-keys  [medium]",
        "KA-IAM-004  unused-access-key  [medium]",
        "AWS Security Hub: IAM.22",
        "AWS Config: iam-root-access-key-check",
        "CIS AWS Foundations: 1.4.0 1.12, 1.5.0 1.12, 2.0.0 1.12, 3.0.0 1.12, 4.0.1 1.12, 5.0.0 1.11, 6.0.0 2.11, 7.0.0 2.11",
    ] {
        assert!(text.contains(needle), "`keyaudit rules` lacks {needle:?}:\n{text}");
    }
    let doc = emu.command(&["rule", "multiple-active-keys"]);
    assert!(String::from_utf8_lossy(&doc.stdout).starts_with("# KA-IAM-003 multiple-active-keys"));
    assert_eq!(emu.command(&["rule", "KA-IAM-999"]).status.code(), Some(2));
}

#[test]
fn per_rule_settings_and_rule_selection_come_from_the_config_file_too() {
    let (emu, s) = seed();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keyaudit.toml");
    std::fs::write(&config, "rules = [\"unused-access-key\"]\nunused-days = 47\n").unwrap();
    let config = config.display().to_string();
    let run = emu.keyaudit(&["scan", "--as-of", AS_OF, "--config", &config, "--account", &s.account("keys")]);
    assert_eq!(run.report()["run"]["unused_days"], 47);
    let failing: Vec<&str> = run.report()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"] == "fail")
        .map(|f| f["user_name"].as_str().unwrap())
        .collect();
    assert!(run.report()["findings"].as_array().unwrap().iter().all(|f| f["rule_id"] == "KA-IAM-004"));
    assert_eq!(failing, ["never", "rotating"], "47 days: u45 and u46 pass now");
}
