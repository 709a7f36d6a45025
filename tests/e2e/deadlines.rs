//! Issue "Deadlines that hold": a finding's clock starts at its first failing or warning sighting (a pass in between
//! ends it), and an exception that ended starts a fresh grace from its end; over a timeline of scans, each with the
//! last one's report as its baseline.

use serde_json::{Value, json};

use crate::harness::{AS_OF, Emulator};

/// 40 days after AS_OF.
const LATER: &str = "2027-01-07T12:00:00Z";

fn finding<'a>(report: &'a Value, user: &str, rule: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["user_name"] == user && f["rule_id"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding for {user}"))
}

#[test]
fn a_second_key_gets_its_grace_from_its_first_failing_sighting_and_an_ended_exception_from_its_end() {
    let emu = Emulator::start();
    let seeded = emu.seed(json!({
        "management": {"users": [{"name": "admin", "keys": [{"created": "2026-11-01T00:00:00Z", "last_used": "2026-11-27T00:00:00Z"}]}]},
        "accounts": [{"name": "work", "users": [
            // One key, in use: KA-IAM-003 passes at AS_OF (the user is seen, passing, for 40 days).
            {"name": "rotator", "keys": [{"created": "2026-10-15T00:00:00Z", "last_used": "2026-11-27T00:00:00Z"}]},
            // Stale and in use, under an exception that ends on 2026-12-15.
            {"name": "vendor", "keys": [{"created": "2026-05-01T00:00:00Z", "last_used": "2026-11-27T00:00:00Z"}]}
        ]}]
    }));
    let dir = tempfile::tempdir().unwrap();
    let exceptions = dir.path().join("exceptions.toml");
    std::fs::write(
        &exceptions,
        "[[suppression]]\nuser_arn = \"arn:aws:iam::*:user/vendor\"\nreason = \"contract\"\nowner = \"o\"\nexpires = 2026-12-15\n",
    )
    .unwrap();
    let e = exceptions.display().to_string();
    let first = emu.keyaudit(&["scan", "--as-of", AS_OF, "--owner-tags", "", "--suppressions", &e]);
    assert_eq!(finding(first.report(), "rotator", "KA-IAM-003")["verdict"], "pass");
    assert!(finding(first.report(), "vendor", "KA-IAM-001")["suppression"].is_object());
    let baseline = dir.path().join("first.json");
    std::fs::write(&baseline, serde_json::to_vec(first.report()).unwrap()).unwrap();

    // The user starts a rotation: a second key. The next scan is 40 days after the first.
    emu.change_key(&seeded.account("work"), "rotator", "create", None);
    emu.control("DELETE", "reports", &Value::Null);
    let b = baseline.display().to_string();
    let second = emu.keyaudit(&["scan", "--as-of", LATER, "--owner-tags", "", "--suppressions", &e, "--baseline", &b]);
    let r = second.report();

    // KA-IAM-003 fails from now: its 30 days run from this sighting, not from the first, passing one.
    let two = finding(r, "rotator", "KA-IAM-003");
    assert_eq!((two["verdict"].as_str(), two["first_seen"].as_str()), (Some("fail"), Some(LATER)), "{two}");
    assert_eq!(two["due"], "2027-02-06T23:59:59Z", "{two}");
    // The exception ended on 2026-12-15: a fresh grace (30 days, medium) from its end, not overdue the next day.
    let vendor = finding(r, "vendor", "KA-IAM-001");
    assert!(vendor["suppression"].is_null(), "{vendor}");
    assert_eq!(vendor["first_seen"], "2026-12-16T00:00:00Z", "{vendor}");
    assert_eq!(vendor["due"], "2027-01-15T23:59:59Z", "{vendor}");
}

/// A run limited to one OU (or one where an account failed) does not restart the other accounts' clocks: the next
/// full run takes each account's last known state from the newest report in the baseline directory that assessed it.
#[test]
fn a_run_limited_to_one_ou_does_not_move_other_keys_deadlines() {
    let emu = Emulator::start();
    emu.seed(json!({
        "management": {"users": [{"name": "admin", "keys": [{"created": "2026-11-01T00:00:00Z", "last_used": "2026-11-27T00:00:00Z"}]}]},
        "ous": [
            {"name": "Prod", "accounts": [{"name": "prod", "users": [
                {"name": "prod-stale", "keys": [{"created": "2026-05-01T00:00:00Z", "last_used": "2026-11-27T00:00:00Z"}]}]}]},
            {"name": "Dev", "accounts": [{"name": "dev", "users": [
                {"name": "dev-stale", "keys": [{"created": "2026-05-01T00:00:00Z", "last_used": "2026-11-27T00:00:00Z"}]}]}]}
        ]
    }));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let scan = |as_of: &str, extra: &[&str]| {
        let args = [
            "scan",
            "--as-of",
            as_of,
            "--rules",
            "KA-IAM-001",
            "--owner-tags",
            "",
            "--baseline",
            &d,
            "--output-dir",
            &d,
            "-o",
            "json",
        ];
        let out = emu.command(&[&args[..], extra].concat());
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        // The report of this run: the one with this as_of.
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| serde_json::from_slice::<Value>(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
            .find(|r| r["run"]["as_of"] == as_of)
            .unwrap()
    };
    scan(AS_OF, &[]);
    let limited = scan("2026-12-08T12:00:00Z", &["--ou", "/Root/Dev"]);
    assert!(limited["findings"].as_array().unwrap().iter().all(|f| f["user_name"] != "prod-stale"));
    emu.control("DELETE", "reports", &Value::Null);
    let full = scan("2026-12-18T12:00:00Z", &[]);
    for user in ["prod-stale", "dev-stale"] {
        let f = finding(&full, user, "KA-IAM-001");
        assert_eq!(
            (f["first_seen"].as_str(), f["due"].as_str()),
            (Some(AS_OF), Some("2026-12-28T23:59:59Z")),
            "{user}: {f}"
        );
    }
}

/// `allowed-domains`: an owner tag's address outside the organization's domains is never written to; the key is
/// routed as unowned (here to the catch-all) and the table says why.
#[test]
fn owner_addresses_outside_the_allowed_domains_are_routed_as_unowned_with_the_reason() {
    let emu = Emulator::start();
    let key = json!({"created": "2026-05-01T00:00:00Z", "last_used": "2026-11-27T00:00:00Z"});
    emu.seed(json!({"accounts": [{"name": "work", "users": [
        {"name": "inside", "tags": {"owner": "alice@eu.corp.example"}, "keys": [key.clone()]},
        {"name": "outside", "tags": {"owner": "bob@gmail.example"}, "keys": [key]}
    ]}]}));
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out =
        emu.command(&["scan", "--as-of", AS_OF, "--rules", "KA-IAM-001", "-o", &format!("json={}", report.display())]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let config = dir.path().join("notify.toml");
    std::fs::write(
        &config,
        "from = \"keyaudit@corp.example\"\ncatch-all = \"security@corp.example\"\nallowed-domains = [\"corp.example\"]\n\
         timezone = \"Pacific/Kiritimati\"\n",
    )
    .unwrap();
    let outbox = dir.path().join("outbox");
    let out = emu.command(&[
        "notify",
        report.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--outbox",
        outbox.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{table}");
    let mails: Vec<String> =
        std::fs::read_dir(&outbox).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    let alice = mails.iter().find(|m| m.contains("To: <alice@eu.corp.example>")).expect("a subdomain is inside");
    // `timezone`: due through the end of the due day there. 30 days after AS_OF (12:00 UTC) is already the 29th at
    // UTC+14, so that is the date, shown with its zone.
    let text = &crate::notify::parse_mime(alice).1["text/plain"];
    assert!(text.contains("Deadline to fix it: 2026-12-29 Pacific/Kiritimati (in 30 days)"), "{text}");
    assert!(!mails.iter().any(|m| m.contains("bob@gmail.example>")), "never written to");
    assert!(mails.iter().any(|m| m.contains("To: <security@corp.example>")), "the catch-all instead");
    assert!(
        table.lines().any(|l| l.contains("outside") && l.contains("outside allowed-domains (corp.example)")),
        "{table}"
    );
    // A zone that is not one, and a domain that is not one, are refused, naming their line.
    std::fs::write(
        &config,
        "from = \"keyaudit@corp.example\"\ncatch-all = \"security@corp.example\"\ntimezone = \"Mars/Olympus\"\n",
    )
    .unwrap();
    let out = emu.command(&["notify", report.to_str().unwrap(), "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 3: timezone \"Mars/Olympus\": expected an IANA time zone")
    );
    std::fs::write(&config, "from = \"keyaudit@corp.example\"\ncatch-all = \"security@corp.example\"\nallowed-domains = [\"not a domain\"]\n").unwrap();
    let out = emu.command(&["notify", report.to_str().unwrap(), "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3: allowed-domains \"not a domain\""));
}
