//! Issue "Nothing lost, nothing raw": kept uploads that never overwrite each other, reports of the same second
//! that never replace each other, and names from member accounts inert in every message (errors, warnings, logs).

use serde_json::json;

use crate::harness::{AS_OF, Emulator};
use crate::org_spec;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Two outputs whose objects share a file name, to a bucket that refuses them: each is kept in its own file, and
/// each message names the file that really holds it. A later run whose uploads all go through leaves them alone; a
/// later failed upload of the same object keeps the earlier copy as it was.
#[test]
fn failed_uploads_with_the_same_file_name_are_kept_apart_and_stay() {
    let emu = Emulator::start();
    let mut spec = org_spec();
    spec["buckets"] = json!([{"name": "reports"}, {"name": "nob1"}]);
    emu.seed(spec);
    let refuse = || {
        emu.fault(json!({"service": "s3", "action": "PutObject", "error_code": "NoSuchBucket", "http_status": 404,
                         "message": "The specified bucket does not exist"}));
    };
    refuse();
    let dir = tempfile::tempdir().unwrap();
    let failing = ["-o", "json=s3://nob1/a/keyaudit.json", "-o", "html=s3://nob1/b/keyaudit.json"];
    let out = emu.command_in(dir.path(), &[&["scan", "--as-of", AS_OF][..], &failing].concat());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let json_copy = dir.path().join("keyaudit-unsent/nob1/a/keyaudit.json");
    let html_copy = dir.path().join("keyaudit-unsent/nob1/b/keyaudit.json");
    let first_json = std::fs::read(&json_copy).unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&first_json).unwrap()["schema_version"], 1);
    assert!(std::fs::read_to_string(&html_copy).unwrap().starts_with("<!DOCTYPE html>"), "the HTML is its own file");
    for (object, kept) in
        [("s3://nob1/a/keyaudit.json", "nob1/a/keyaudit.json"), ("s3://nob1/b/keyaudit.json", "nob1/b/keyaudit.json")]
    {
        let said = format!("the report is kept at keyaudit-unsent/{kept}");
        assert!(stderr(&out).lines().any(|l| l.contains(object) && l.ends_with(&said)), "{object}: {}", stderr(&out));
    }

    // A later run whose uploads all go through (another object): the earlier run's copies stay.
    emu.control("DELETE", "faults", &json!({}));
    let out = emu.command_in(dir.path(), &["scan", "--as-of", AS_OF, "-o", "json=s3://reports/ok.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(&json_copy).unwrap(), first_json, "an earlier run's only copy is never removed");
    assert!(html_copy.exists());

    // The same object fails again: the earlier copy is kept as it was, the new one beside it, and named.
    refuse();
    let out = emu.command_in(dir.path(), &["scan", "--as-of", "2026-11-29T12:00:00Z", "-o", failing[1]]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(std::fs::read(&json_copy).unwrap(), first_json);
    let second = dir.path().join("keyaudit-unsent/nob1/a/keyaudit.json~2");
    assert!(std::fs::read_to_string(&second).unwrap().contains("2026-11-29T12:00:00Z"));
    assert!(stderr(&out).contains("the report is kept at keyaudit-unsent/nob1/a/keyaudit.json~2"), "{}", stderr(&out));

    // Once that very object is uploaded, its kept copies go; the other object's stays.
    emu.control("DELETE", "faults", &json!({}));
    let out = emu.command_in(dir.path(), &["scan", "--as-of", AS_OF, "-o", failing[1]]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!json_copy.exists() && !second.exists(), "the object they waited for is in S3");
    assert!(html_copy.exists(), "another object's copy stays until it is uploaded or removed by a person");
}

/// Two runs started in the same second write into one --output-dir: the second never replaces the first's report.
/// (Every name the run could take, for the next minute, is taken by an "earlier report" first.)
#[test]
fn a_report_of_the_same_second_never_replaces_an_earlier_one_in_the_output_dir() {
    let emu = Emulator::start();
    emu.seed(org_spec());
    let dir = tempfile::tempdir().unwrap();
    #[allow(clippy::disallowed_methods)] // the names a run started in the next minute would take
    let now = jiff::Timestamp::now();
    for s in 0..60 {
        let t = now + jiff::SignedDuration::from_secs(s);
        for ext in ["json", "html", "ndjson"] {
            let name = format!("keyaudit-{}.{ext}", t.strftime("%Y%m%dT%H%M%SZ"));
            std::fs::write(dir.path().join(name), "earlier").unwrap();
        }
    }
    let d = dir.path().to_str().unwrap();
    let out = emu.command(&["scan", "--as-of", AS_OF, "--output-dir", d, "-o", "json", "-o", "html", "-o", "ndjson"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let mut ours = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if text != "earlier" {
            ours.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    ours.sort();
    assert_eq!(ours.len(), 3, "each format written once, under a name of its own: {ours:?}");
    for (name, ext) in ours.iter().zip(["html", "json", "ndjson"]) {
        assert!(name.ends_with(&format!("Z-2.{ext}")), "{name}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 183, "no earlier report replaced");
    assert!(stderr(&out).contains("is an earlier report, kept as it is: this one is"), "{}", stderr(&out));
}

/// OU and user names that would clear the screen, recolour it, forge a line or reverse the text: every message that
/// carries one shows it escaped (the error of an unknown --ou, which lists the known OU paths; a warning that names
/// a user; the verbose log).
#[test]
fn hostile_names_are_inert_in_errors_warnings_and_logs() {
    const CLEAR: &str = "Evil\u{1b}[2J\u{1b}[31mRED";
    const FORGE: &str = "Ops\r\nkeyaudit: error: forged";
    const REVERSE: &str = "abc\u{202e}fed";
    let emu = Emulator::start();
    let seeded = emu.seed(json!({
        "management": {"users": [{"name": "admin", "keys": [{"age_days": 10}]}]},
        "ous": [
            {"name": CLEAR, "accounts": [{"name": "a", "users": [{"name": "u", "keys": [{"age_days": 100}]}]}]},
            {"name": FORGE, "accounts": [{"name": "b"}]},
            {"name": REVERSE, "accounts": [{"name": "c\u{1b}]0;title\u{7}"}]}
        ]
    }));
    let raw = |text: &str| text.contains('\u{1b}') || text.contains('\r') || text.contains('\u{202e}');

    let out = emu.command(&["scan", "--as-of", AS_OF, "--ou", "/Root/Nope"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!raw(&err), "a raw name reached the terminal: {err:?}");
    assert_eq!(err.lines().count(), 1, "one error line, none forged: {err:?}");
    for shown in
        [r"/Root/Evil\u{1b}[2J\u{1b}[31mRED", r"/Root/Ops\u{d}\u{a}keyaudit: error: forged", r"/Root/abc\u{202e}fed"]
    {
        assert!(err.contains(shown), "{shown} in {err:?}");
    }

    // A log line that carries AWS's message about a member account (its text is the account's to shape: here a line
    // break that would forge a log line, and a bidirectional override), and the verbose log of a whole scan.
    emu.fault(json!({"service": "iam", "action": "ListUserTags", "account_id": seeded.account("a"),
                     "error_code": "AccessDenied", "http_status": 403,
                     "message": "denied\nkeyaudit: error: forged \u{202e}desrever"}));
    let out = emu.command(&["scan", "--as-of", AS_OF, "-vv", "-o", "table"]);
    let err = stderr(&out);
    assert!(err.contains(r"denied\u{a}keyaudit: error: forged \u{202e}desrever"), "the warning, escaped: {err}");
    assert!(!raw(&err), "a raw name reached the log: {err:?}");
    assert!(!err.lines().any(|l| l.starts_with("keyaudit: error: forged")), "a forged line: {err}");
    assert!(!raw(&String::from_utf8_lossy(&out.stdout)), "a raw name reached the table");
}

/// Every key is counted once: a key whose failing finding is under an exception is counted as such, so the table's
/// and the JSON report's key counts add up to the keys found.
#[test]
fn key_counts_add_up_with_a_key_under_an_exception() {
    let emu = Emulator::start();
    emu.seed(org_spec());
    let dir = tempfile::tempdir().unwrap();
    let exceptions = dir.path().join("exceptions.toml");
    std::fs::write(
        &exceptions,
        "[[suppression]]\nuser_arn = \"arn:aws:iam::*:user/ci\"\nreason = \"vendor\"\nowner = \"o\"\nexpires = 2027-01-31\n",
    )
    .unwrap();
    let e = exceptions.display().to_string();
    let run = emu.keyaudit(&["scan", "--as-of", AS_OF, "-o", "table", "--suppressions", &e, "--owner-tags", ""]);
    let keys = &run.report()["summary"]["keys"];
    let counted: u64 = ["fail", "warn", "pass", "not_applicable", "resolved", "suppressed"]
        .iter()
        .map(|k| keys[k].as_u64().unwrap())
        .sum();
    assert_eq!(counted, keys["total"].as_u64().unwrap(), "{keys}");
    assert_eq!(keys["suppressed"], 1, "ci's key: {keys}");
    let line = run.stdout.lines().find(|l| l.starts_with("Keys ")).unwrap();
    assert!(line.ends_with(", 1 under exceptions"), "{line}");
    let numbers: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).map(|w| w.parse().unwrap()).collect();
    // found, active, then fail, warn, pass, not applicable, and the keys under exceptions.
    assert_eq!(numbers[2..].iter().sum::<u64>(), numbers[0], "{line}");
}

/// A root key's notice gives the root user's procedure (no `aws iam` command with `--user-name <root_account>` can act
/// on it), and a user with two active keys gets both ids in its steps.
#[test]
fn a_root_key_notice_gives_the_root_procedure_and_two_keys_get_both_ids() {
    let emu = Emulator::start();
    let seeded = emu.seed(json!({
        "management": {"users": [{"name": "admin", "keys": [{"age_days": 10}]}]},
        "accounts": [{"name": "legacy", "root_keys": [{"age_days": 400}],
                      "users": [{"name": "two", "keys": [{"age_days": 30}, {"age_days": 20}]}]}]
    }));
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = emu.command(&["scan", "--as-of", AS_OF, "--owner-tags", "", "-o", &format!("json={}", report.display())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let config = dir.path().join("notify.toml");
    std::fs::write(&config, "from = \"keyaudit@corp.example\"\ncatch-all = \"security@corp.example\"\n").unwrap();
    let outbox = dir.path().join("outbox");
    let args = ["notify", report.to_str().unwrap(), "--config", config.to_str().unwrap()];
    let out = emu.command(&[&args[..], &["--outbox", outbox.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mails: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|m| m.contains("To: <security@corp.example>"))
        .collect();
    assert_eq!(mails.len(), 1, "one message to the catch-all");
    let text = &crate::notify::parse_mime(&mails[0]).1["text/plain"];
    let account = seeded.account("legacy");
    assert!(!text.contains("--user-name <root_account>"), "{text}");
    assert!(text.contains(&format!("as the root user of account {account}")), "{text}");
    assert!(text.contains(&format!("aws sts assume-root --target-principal {account}")), "{text}");
    let keys = [seeded.key(&account, "two", 0), seeded.key(&account, "two", 1)];
    assert!(text.contains(&format!("--access-key-id {} (the newer key)", keys[1])), "{text}");
    assert!(text.contains(&format!("--access-key-id {} --status Inactive", keys[0])), "{text}");
    assert!(!text.contains("<its key id, from"), "both ids are known: {text}");
    assert!(text.contains("found AWS access keys that have no owner keyaudit could reach"), "{text}");
}

/// `preflight --help` lists what preflight uses, not the report flags it has no use for or refuses.
#[test]
fn preflight_help_lists_only_what_preflight_uses() {
    let emu = Emulator::start();
    let out = emu.command(&["preflight", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for shown in ["--ou", "--role-name", "--owner-tags", "--push-securityhub", "--output"] {
        assert!(help.contains(shown), "{shown} missing:\n{help}");
    }
    for hidden in
        ["--s3-sse", "--security-lake-role", "--sarif-include-pass", "--fail-on", "--baseline", "--max-age-days"]
    {
        assert!(!help.contains(hidden), "{hidden} listed:\n{help}");
    }
    // Accepted all the same, so that one settings file or environment serves scan and preflight.
    let scan_help = String::from_utf8_lossy(&emu.command(&["scan", "--help"]).stdout).into_owned();
    assert!(scan_help.contains("--s3-sse") && scan_help.contains("--fail-on"));
}
