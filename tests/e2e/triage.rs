//! Issue "Triage": every finding says how its key is used, what to do next (the CIS procedure), who owns it,
//! and how old its secret really is; owners cost one iam:ListUserTags per user with an actionable finding.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::harness::{self, AS_OF, Emulator, Run, Seeded};
use super::{check_every_export, export_files, file_with_suffix};

/// Ages relative to AS_OF = 2026-11-28T12:00:00Z; every user's first key is 200 days old (failing KA-IAM-001)
/// unless said otherwise.
fn seed() -> (Emulator, Seeded, String) {
    let emu = Emulator::start();
    let old = "2026-05-12T12:00:00Z";
    let yesterday = "2026-11-27T12:00:00Z";
    let used = |when: &str, service: &str, region: &str| json!({"created": old, "last_used": when, "last_used_service": service, "last_used_region": region});
    let s = emu.seed(json!({"accounts": [{"name": "work", "users": [
        {"name": "idle", "tags": {"owner": "ana@example.com", "team": "payments"}, "keys": [{"created": old}]},
        {"name": "sleepy", "tags": {"email": "ops@example.com"},
         "keys": [used("2026-08-30T12:00:00Z", "s3", "eu-west-1")]},
        {"name": "busy", "tags": {"team": "payments", "Owner": "bob"}, "keys": [used(yesterday, "sts", "us-west-2")]},
        {"name": "cramped", "keys": [used(yesterday, "s3", "us-east-1"),
                                     {"created": "2026-01-01T00:00:00Z", "status": "Inactive"}]},
        {"name": "rotating", "tags": {"contact": "#team-ci"}, "keys": [
            used(yesterday, "ec2", "us-east-1"),
            {"created": "2026-11-25T12:00:00Z", "last_used": yesterday, "last_used_service": "ec2"}]},
        {"name": "revived", "tags": {"owner": "carol"}, "keys": [
            {"created": old, "reactivated": "2026-11-18T12:00:00Z", "last_used": yesterday,
             "last_used_service": "lambda", "last_used_region": "eu-central-1"}]},
        {"name": "fine", "tags": {"owner": "dave"}, "keys": [
            {"created": "2026-11-18T12:00:00Z", "last_used": yesterday}]}
    ]}]}));
    let work = s.account("work");
    (emu, s, work)
}

fn key1(run: &Run, work: &str, user: &str) -> Value {
    run.findings_of(work, user)
        .into_iter()
        .find(|f| f["rule_id"] == "KA-IAM-001" && f["key_slot"] == 1)
        .unwrap_or_else(|| panic!("no KA-IAM-001 finding for {user}"))
        .clone()
}

fn tag_lookups(emu: &Emulator) -> Vec<String> {
    let log = emu.control("GET", "requests", &Value::Null);
    let mut users: Vec<String> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "ListUserTags")
        .map(|r| r["user_name"].as_str().unwrap_or("?").to_owned())
        .collect();
    users.sort();
    users
}

#[test]
fn every_actionable_key_says_its_usage_action_owner_and_real_age() {
    let (emu, _s, work) = seed();
    emu.control("DELETE", "requests", &Value::Null);
    let run = emu.keyaudit(&["scan", "--as-of", AS_OF, "--account", &work, "--key-ids", "all", "-o", "table"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    harness::assert_matches_json_schema(run.report());
    let got: BTreeMap<&str, (Value, Value, Value, Value, Value, Value)> =
        ["idle", "sleepy", "busy", "cramped", "rotating", "revived", "fine"]
            .into_iter()
            .map(|user| {
                let f = key1(&run, &work, user);
                (
                    user,
                    (
                        f["verdict"].clone(),
                        f["usage"].clone(),
                        f["action"].clone(),
                        f["owner"].clone(),
                        f["owner_tag"].clone(),
                        f["age_source"].clone(),
                    ),
                )
            })
            .collect();
    let want = |v: &str, u: &str, a: &str, o: Value, t: Value, s: &str| (json!(v), json!(u), json!(a), o, t, json!(s));
    let expected: BTreeMap<&str, _> = BTreeMap::from([
        ("idle", want("fail", "never_used", "deactivate", json!("ana@example.com"), json!("owner"), "last_rotated")),
        ("sleepy", want("fail", "dormant", "deactivate", json!("ops@example.com"), json!("email"), "last_rotated")),
        ("busy", want("fail", "in_use", "rotate", json!("bob"), json!("Owner"), "last_rotated")),
        ("cramped", want("fail", "in_use", "free_slot_then_rotate", Value::Null, Value::Null, "last_rotated")),
        ("rotating", want("fail", "in_use", "finish_rotation", json!("#team-ci"), json!("contact"), "last_rotated")),
        // The report says re-activated 10 days ago; CreateDate says the secret is 200 days old.
        ("revived", want("fail", "in_use", "rotate", json!("carol"), json!("owner"), "create_date")),
        ("fine", want("pass", "in_use", "none", Value::Null, Value::Null, "last_rotated")),
    ]);
    assert_eq!(got, expected);

    let busy = key1(&run, &work, "busy");
    assert_eq!(
        (busy["last_used_service"].as_str(), busy["last_used_region"].as_str()),
        (Some("sts"), Some("us-west-2"))
    );
    assert!(
        busy["action_reason"]
            .as_str()
            .unwrap()
            .starts_with("in use (last used 2026-11-27 by sts); the user has a free key slot")
    );
    let revived = key1(&run, &work, "revived");
    assert_eq!(revived["age_days"], 200);
    assert!(
        revived["message"]
            .as_str()
            .unwrap()
            .contains("re-activated on 2026-11-18, not rotated: the secret dates from 2026-05-12")
    );
    assert!(key1(&run, &work, "fine")["action_reason"].is_null());
    let unused = run.findings_of(&work, "idle").into_iter().find(|f| f["rule_id"] == "KA-IAM-004").unwrap().clone();
    assert_eq!(unused["action"], "deactivate", "the CIS remedy for unused credentials");
    let actions = &run.report()["summary"]["actions"];
    assert!(actions["deactivate"].as_u64().unwrap() >= 2 && actions["rotate"].as_u64().unwrap() >= 2, "{actions}");
    assert!(run.stdout.contains("What to do"), "{}", run.stdout);

    // One ListUserTags per user with an actionable finding; none for `fine`, whose keys all pass.
    assert_eq!(tag_lookups(&emu), ["busy", "cramped", "idle", "revived", "rotating", "sleepy"]);
    assert_eq!(run.account(&work)["tag_calls"], 6);
}

#[test]
fn by_default_a_reactivated_key_is_judged_by_the_report_and_owner_tags_can_be_turned_off() {
    let (emu, _s, work) = seed();
    // --key-ids failing (the default) lists only users that already fail: revived passes by the report.
    let run = emu.keyaudit(&["scan", "--as-of", AS_OF, "--account", &work, "--rules", "KA-IAM-001"]);
    let revived = key1(&run, &work, "revived");
    assert_eq!((revived["verdict"].as_str(), revived["age_source"].as_str()), (Some("pass"), Some("last_rotated")));
    emu.control("DELETE", "requests", &Value::Null);
    let off = emu.keyaudit(&["scan", "--as-of", AS_OF, "--account", &work, "--owner-tags", ""]);
    assert!(tag_lookups(&emu).is_empty(), "--owner-tags \"\" turns the look-up off");
    assert!(key1(&off, &work, "idle")["owner"].is_null());
    assert_eq!(off.account(&work)["tag_calls"], 0);
}

#[test]
fn every_export_carries_the_triage() {
    let (emu, _s, work) = seed();
    let dir = tempfile::tempdir().unwrap();
    let run = export_files(&emu, dir.path(), &["--account", &work, "--rules", "KA-IAM-001"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let sarif = check_every_export(&emu, dir.path(), &run);
    let read = |p: std::path::PathBuf| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let log = read(sarif);
    let idle =
        log["runs"][0]["results"].as_array().unwrap().iter().find(|r| r["properties"]["user_name"] == "idle").unwrap();
    assert_eq!(
        (idle["properties"]["action"].as_str(), idle["properties"]["owner"].as_str()),
        (Some("deactivate"), Some("ana@example.com"))
    );
    let ocsf = read(file_with_suffix(dir.path(), ".ocsf.json"));
    let idle = ocsf.as_array().unwrap().iter().find(|r| r["resources"][0]["name"] == "idle").unwrap();
    assert_eq!(
        (idle["unmapped"]["usage"].as_str(), idle["unmapped"]["action"].as_str()),
        (Some("never_used"), Some("deactivate"))
    );
    assert!(idle["remediation"]["desc"].as_str().unwrap().starts_with("deactivate: never used"));
    let asff = read(file_with_suffix(dir.path(), ".asff.json"));
    let busy =
        asff.as_array().unwrap().iter().find(|f| f["Resources"][0]["Id"].as_str().unwrap().ends_with("/busy")).unwrap();
    assert_eq!(busy["ProductFields"]["keyaudit/action"], "rotate");
    assert_eq!(busy["ProductFields"]["keyaudit/owner"], "bob");
    assert!(busy["Remediation"]["Recommendation"]["Text"].as_str().unwrap().starts_with("rotate: in use"));

    // Every finding's triage, format by format, matched to the JSON report by fingerprint.
    let json_triage: BTreeMap<String, (Value, Value, Value)> = run.report()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["fingerprint"].as_str().unwrap().to_owned(),
                (f["usage"].clone(), f["action"].clone(), f["owner"].clone()),
            )
        })
        .collect();
    let triage_of = |usage: &Value, action: &Value, owner: &Value| (usage.clone(), action.clone(), owner.clone());
    for r in log["runs"][0]["results"].as_array().unwrap() {
        let p = &r["properties"];
        let fp = r["partialFingerprints"]["keyaudit/v2"].as_str().unwrap();
        assert_eq!(triage_of(&p["usage"], &p["action"], &p["owner"]), json_triage[fp], "SARIF {fp}");
    }
    for r in ocsf.as_array().unwrap() {
        let u = &r["unmapped"];
        let fp = r["metadata"]["uid"].as_str().unwrap();
        assert_eq!(triage_of(&u["usage"], &u["action"], &u["owner"]), json_triage[fp], "OCSF {fp}");
    }
    for f in asff.as_array().unwrap() {
        let p = &f["ProductFields"];
        let fp = f["Id"].as_str().unwrap();
        // ProductFields holds strings only: absent means null.
        let usage = if p["keyaudit/usage"].is_null() { Value::Null } else { p["keyaudit/usage"].clone() };
        let owner = if p["keyaudit/owner"].is_null() { Value::Null } else { p["keyaudit/owner"].clone() };
        assert_eq!(triage_of(&usage, &p["keyaudit/action"], &owner), json_triage[fp], "ASFF {fp}");
    }
}
