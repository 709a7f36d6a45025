//! Issue "Owners hear about their keys": `keyaudit notify` end to end — SES and SNS in the emulator, Slack, Teams and
//! a generic webhook at the tests' HTTPS receiver — one message per recipient with exactly their keys, hostile
//! names inert in every channel, nothing sent twice, reminders and escalations on time, failures reported per
//! recipient, a killed run resumed without a duplicate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use serde_json::{Value, json};

use super::harness::{AS_OF, Emulator, FAKE_SECRET, Receiver, Seeded};

const OLD: &str = "2026-05-12T12:00:00Z";
/// The deadline of every key first seen at AS_OF: 30 days later (their rules fell due long before).
const SIX_DAYS_BEFORE: &str = "2026-12-22T12:00:00Z";
const PAST_DUE: &str = "2026-12-29T12:00:00Z";
const HOSTILE_OU: &str = "x\r\nBcc: all@corp.example";
const HOSTILE_ACCOUNT: &str = "<!channel> payments";
const SCRIPT_TAG: &str = "</td><script>alert(1)</script>";
const HOOK_SECRET: &str = "whsec-keyaudit-test-0123456789";

struct Org {
    emu: Emulator,
    s: Seeded,
    hooks: Receiver,
    dir: tempfile::TempDir,
}

fn key() -> Value {
    json!({"created": OLD, "last_used_days": 1})
}

fn user(name: &str, tags: Value) -> Value {
    json!({"name": name, "keys": [key()], "tags": tags})
}

/// /Root/Prod (routed to Teams, escalated to the CISO) holds the hostile OU with the hostile account: alice's key
/// (an address), svc-pay's (a team mapped to Slack), batch's (no owner: the route), two hostile owner tags (the
/// route); /Root holds sandbox (no route): an unowned key and an owner tag of 256 characters (the catch-all), and
/// the keys of the teams reached by SNS and by the generic webhook.
fn setup() -> Org {
    let emu = Emulator::start();
    let long_tag = "o".repeat(256);
    let s = emu.seed(json!({
        "sns_topics": ["keyaudit-ops"],
        "ses_identities": ["keyaudit@corp.example"],
        "ous": [{"name": "Prod", "ous": [{"name": HOSTILE_OU, "accounts": [{"name": HOSTILE_ACCOUNT, "users": [
            user("alice-app", json!({"owner": "alice@corp.example"})),
            user("svc-pay", json!({"team": "team-payments"})),
            user("batch", json!({})),
            user("twoaddr", json!({"owner": "alice@corp.example mallory@evil.example"})),
            user("script", json!({"owner": SCRIPT_TAG}))
        ]}]}]}],
        "accounts": [{"name": "sandbox", "users": [
            user("orphan", json!({})),
            user("longtag", json!({"owner": long_tag})),
            user("ops-user", json!({"team": "ops"})),
            user("ticket-user", json!({"team": "tickets"}))
        ]}]
    }));
    Org { emu, s, hooks: Receiver::start(), dir: tempfile::tempdir().unwrap() }
}

impl Org {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        let topic = self.s.0["sns_topics"]["keyaudit-ops"].as_str().unwrap();
        let text = format!(
            r#"from = "keyaudit@corp.example"
catch-all = "security@corp.example"
report-url = "https://reports.corp.example/keyaudit.html"

[[route]]
ou = "/Root/Prod"
to = "teams:platform"
escalate-to = "ciso@corp.example"

[owners]
team-payments = "slack:payments"
ops = "sns:{topic}"
tickets = "webhook:snow"

[slack]
payments = {{ url-env = "SLACK_PAYMENTS_URL" }}

[teams]
platform = "{hooks}/teams/platform"

[webhook]
snow = {{ url = "{hooks}/snow", secret-env = "SNOW_SECRET" }}
"#,
            hooks = self.hooks.url
        );
        let path = self.path("notify.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A scan at `as_of` (with the previous report as the baseline), its JSON report at `name`.
    fn scan(&self, as_of: &str, baseline: Option<&Path>, name: &str) -> PathBuf {
        let report = self.path(name);
        let out = format!("json={}", report.display());
        let mut args = vec!["scan", "-q", "--as-of", as_of, "--rules", "KA-IAM-001", "-o", &out];
        let b = baseline.map(|b| b.display().to_string());
        if let Some(b) = &b {
            args.extend(["--baseline", b]);
        }
        let run = self.emu.command(&args);
        assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stderr));
        report
    }

    fn notify(&self, report: &Path, extra: &[&str]) -> Output {
        let (r, config, state) = (
            report.display().to_string(),
            self.config().display().to_string(),
            self.path("state.jsonl").display().to_string(),
        );
        let mut args = vec!["notify", &r, "--config", &config, "--state", &state];
        args.extend_from_slice(extra);
        let ca = self.hooks.ca.display().to_string();
        let slack = format!("{}/slack/payments", self.hooks.url);
        let out = self.emu.command_with(
            &args,
            &[("SSL_CERT_FILE", ca.as_str()), ("SLACK_PAYMENTS_URL", slack.as_str()), ("SNOW_SECRET", HOOK_SECRET)],
        );
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(!text.contains("panicked"), "{text}");
            assert!(!text.contains(FAKE_SECRET) && !text.contains(HOOK_SECRET), "a secret reached the output: {text}");
            assert!(!text.contains("/slack/payments"), "a webhook URL (its secret) reached the output: {text}");
        }
        out
    }

    /// Every e-mail SES accepted: recipient → raw MIME.
    fn emails(&self) -> Vec<(String, String)> {
        let sent = self.emu.control("GET", "ses/sent", &Value::Null);
        sent.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let to = m["destinations"].as_array().unwrap()[0].as_str().unwrap().to_owned();
                (to, m["raw"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    fn posts(&self, path: &str) -> Vec<Value> {
        self.hooks.received().into_iter().filter(|p| p["path"] == path && p["status"] == 200).collect()
    }

    fn published(&self) -> Vec<Value> {
        self.emu.control("GET", "sns/published", &Value::Null).as_array().cloned().unwrap_or_default()
    }

    /// How many messages each recipient got so far, over every channel.
    fn tally(&self) -> BTreeMap<String, usize> {
        let mut t = BTreeMap::new();
        for (to, _) in self.emails() {
            *t.entry(to).or_default() += 1;
        }
        for p in ["/slack/payments", "/teams/platform", "/snow"] {
            let n = self.posts(p).len();
            if n > 0 {
                t.insert(p.to_owned(), n);
            }
        }
        if !self.published().is_empty() {
            t.insert("sns".to_owned(), self.published().len());
        }
        t
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An e-mail's headers (unfolded) and its decoded parts by content type.
pub(crate) fn parse_mime(raw: &str) -> (Vec<(String, String)>, BTreeMap<String, String>) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            headers.last_mut().unwrap().1.push_str(line.trim_start());
        } else {
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.to_owned(), v.trim().to_owned()));
        }
    }
    let mut parts = BTreeMap::new();
    for part in body.split("--keyaudit-").skip(1) {
        let Some((part_head, content)) = part.split_once("\r\n\r\n") else { continue };
        let Some(kind) = part_head.lines().find_map(|l| l.strip_prefix("Content-Type: ")) else { continue };
        let kind = kind.split(';').next().unwrap().to_owned();
        let b64: String = content.split("\r\n").take_while(|l| !l.is_empty()).collect();
        let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
        parts.insert(kind, text);
    }
    (headers, parts)
}

#[test]
fn one_message_per_recipient_with_exactly_their_keys_and_hostile_names_inert_everywhere() {
    let org = setup();
    let report = org.scan(AS_OF, None, "week1.json");

    // A dry run writes every message to the outbox and sends nothing.
    let outbox = org.path("outbox");
    let dry = org.notify(&report, &["--outbox", &outbox.display().to_string()]);
    assert_eq!(dry.status.code(), Some(0), "{}{}", stdout(&dry), String::from_utf8_lossy(&dry.stderr));
    let mut written: Vec<String> =
        std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    written.sort();
    assert_eq!(written.len(), 6, "{written:?}");
    assert!(org.tally().is_empty(), "a dry run sends nothing");
    assert!(!org.path("state.jsonl").exists(), "and records nothing");

    let run = org.notify(&report, &["--send"]);
    assert_eq!(run.status.code(), Some(0), "{}{}", stdout(&run), String::from_utf8_lossy(&run.stderr));
    let table = stdout(&run);
    assert_eq!(
        org.tally(),
        BTreeMap::from([
            ("/slack/payments".to_owned(), 1),
            ("/snow".to_owned(), 1),
            ("/teams/platform".to_owned(), 1),
            ("alice@corp.example".to_owned(), 1),
            ("security@corp.example".to_owned(), 1),
            ("sns".to_owned(), 1),
        ]),
        "exactly one message per recipient\n{table}"
    );
    // Unowned keys at the catch-all, and the table says why.
    assert!(table.contains("Keys whose owner could not be told"), "{table}");
    assert!(table.contains("no owner tag and no route"), "{table}");

    let keys = |s: &Seeded, account: &str, users: &[&str]| -> Vec<String> {
        let mut ids: Vec<String> = users.iter().map(|u| s.key(&s.account(account), u, 0)).collect();
        ids.sort();
        ids
    };
    let listed = |text: &str, all: &[String]| -> Vec<String> {
        let mut found: Vec<String> = all.iter().filter(|k| text.contains(k.as_str())).cloned().collect();
        found.sort();
        found
    };
    let all: Vec<String> = [
        (HOSTILE_ACCOUNT, vec!["alice-app", "svc-pay", "batch", "twoaddr", "script"]),
        ("sandbox", vec!["orphan", "longtag", "ops-user", "ticket-user"]),
    ]
    .iter()
    .flat_map(|(a, us)| keys(&org.s, a, us))
    .collect();

    // E-mail: exactly one To, no header from the hostile names, each its keys only; the HTML inert.
    for (to, raw) in org.emails() {
        let (headers, parts) = parse_mime(&raw);
        let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Auto-Submitted", "Content-Type"],
            "no header but keyaudit's own"
        );
        assert_eq!(headers[1].1, format!("<{to}>"));
        assert!(
            !raw.contains("mallory") || to == "security@corp.example",
            "a second address never becomes a recipient"
        );
        let text = &parts["text/plain"];
        let html = &parts["text/html"];
        let want = match to.as_str() {
            "alice@corp.example" => keys(&org.s, HOSTILE_ACCOUNT, &["alice-app"]),
            "security@corp.example" => keys(&org.s, "sandbox", &["longtag", "orphan"]),
            other => panic!("unexpected e-mail to {other}"),
        };
        assert_eq!(listed(text, &all), want, "{to}: exactly their keys");
        assert_eq!(listed(html, &all), want, "{to}: exactly their keys (HTML)");
        assert!(!html.contains("<script>") && !html.contains("<!channel>"), "{html}");
        if to == "alice@corp.example" {
            assert!(html.contains("&lt;!channel&gt; payments"), "the account's name, escaped: {html}");
            assert!(text.contains("x\\u{d}\\u{a}Bcc: all@corp.example"), "the OU's line break shown escaped: {text}");
            assert!(text.contains("aws iam create-access-key --user-name alice-app"), "the CIS steps: {text}");
            assert!(text.contains("Deadline to fix it: 2026-12-28 UTC (in 30 days)"), "{text}");
            assert!(text.contains("https://reports.corp.example/keyaudit.html"), "{text}");
            assert!(text.contains("found AWS access keys that you own that fail"), "{text}");
        } else {
            // The catch-all owns none of its keys, and is told why they came to it.
            assert!(text.contains("found AWS access keys that have no owner keyaudit could reach"), "{text}");
            assert!(!text.contains("that you own") && !html.contains("that you own"), "{text}");
        }
    }
    // Slack: the mention and the markup inert; exactly svc-pay's key.
    let slack = &org.posts("/slack/payments")[0]["body"];
    let slack = slack.as_str().unwrap();
    assert!(!slack.contains("<!channel>") && slack.contains("&lt;!channel&gt; payments"), "{slack}");
    assert_eq!(listed(slack, &all), keys(&org.s, HOSTILE_ACCOUNT, &["svc-pay"]));
    // Teams (the /Root/Prod route): batch, and the two keys whose owner tag is not one address.
    let teams = org.posts("/teams/platform")[0]["body"].as_str().unwrap().to_owned();
    assert_eq!(listed(&teams, &all), keys(&org.s, HOSTILE_ACCOUNT, &["batch", "script", "twoaddr"]));
    assert!(!teams.contains("<script>") && !teams.contains("<!channel>"), "{teams}");
    let card: Value = serde_json::from_str(&teams).unwrap();
    assert_eq!(card["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    // The generic webhook: signed with the secret, exactly the tickets team's key.
    let snow = &org.posts("/snow")[0];
    let body = snow["body"].as_str().unwrap();
    let timestamp = snow["headers"]["x-keyaudit-timestamp"].as_str().unwrap();
    let signature = {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.{body}").as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    assert_eq!(snow["headers"]["x-keyaudit-signature"], signature.as_str());
    assert_eq!(listed(body, &all), keys(&org.s, "sandbox", &["ticket-user"]));
    // SNS: the ops team's key, an ASCII subject.
    let sns = &org.published()[0];
    assert!(sns["subject"].as_str().unwrap().is_ascii(), "{sns}");
    assert_eq!(listed(sns["message"].as_str().unwrap(), &all), keys(&org.s, "sandbox", &["ops-user"]));
    // The state file records what went out, and no secret.
    let state = std::fs::read_to_string(org.path("state.jsonl")).unwrap();
    assert_eq!(state.lines().filter(|l| l.contains("\"event\":\"sent\"")).count(), 6);
    assert!(!state.contains(HOOK_SECRET) && !state.contains("/slack/payments"));

    // The same report again: nothing is sent.
    let again = org.notify(&report, &["--send"]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(org.tally().values().sum::<usize>(), 6, "nothing sent twice\n{}", stdout(&again));

    // Six days before the deadline: one reminder per recipient.
    let week2 = org.scan(SIX_DAYS_BEFORE, Some(&report), "week2.json");
    let reminder = org.notify(&week2, &["--send"]);
    assert_eq!(reminder.status.code(), Some(0), "{}", stdout(&reminder));
    assert_eq!(org.tally().values().copied().collect::<Vec<_>>(), vec![2; 6], "{}", stdout(&reminder));
    let latest = org.emails().into_iter().rev().find(|(to, _)| to == "alice@corp.example").unwrap().1;
    let (_, parts) = parse_mime(&latest);
    assert!(
        parts["text/plain"].contains("[REMINDER]") && parts["text/plain"].contains("(in 6 days)"),
        "{}",
        parts["text/plain"]
    );

    // Past the deadline: the owners again, and the /Root/Prod route's escalation contact once.
    let week3 = org.scan(PAST_DUE, Some(&week2), "week3.json");
    let overdue = org.notify(&week3, &["--send"]);
    assert_eq!(overdue.status.code(), Some(0), "{}", stdout(&overdue));
    let tally = org.tally();
    assert_eq!(tally["ciso@corp.example"], 1, "{tally:?}");
    assert_eq!(tally["alice@corp.example"], 3);
    let ciso = org.emails().into_iter().find(|(to, _)| to == "ciso@corp.example").unwrap().1;
    let (headers, parts) = parse_mime(&ciso);
    assert!(headers.iter().any(|(k, v)| k == "Subject" && v.contains("overdue")), "{headers:?}");
    assert_eq!(
        listed(&parts["text/plain"], &all),
        keys(&org.s, HOSTILE_ACCOUNT, &["alice-app", "batch", "script", "svc-pay", "twoaddr"]),
        "every overdue key of /Root/Prod"
    );
    assert!(parts["text/plain"].contains("OVERDUE KEYS ESCALATED TO YOU (5)"), "{}", parts["text/plain"]);
    // Each escalated key says who was told: the owner, or the route (never a route labelled as the owner).
    let text = &parts["text/plain"];
    assert!(text.contains("Sent to owner alice@corp.example. Deadline to fix it"), "{text}");
    assert!(text.contains("Sent to the route of its OU or account: "), "{text}");
    assert!(!text.contains("Owner:"), "{text}");
}

#[test]
fn a_failing_webhook_does_not_stop_the_others_and_a_killed_run_sends_nothing_twice() {
    let org = setup();
    let report = org.scan(AS_OF, None, "week1.json");
    // Slack answers 429 with Retry-After 1 once (waited out); Teams refuses for good.
    org.hooks.behave("/slack/payments", json!({"status": 429, "retry_after": 1, "times": 1}));
    org.hooks.behave("/teams/platform", json!({"status": 403, "times": 1}));
    let run = org.notify(&report, &["--send"]);
    assert_eq!(run.status.code(), Some(3), "a recipient not reached is exit 3\n{}", stdout(&run));
    let table = stdout(&run);
    assert!(table.contains("FAILED: teams:platform: HTTP 403"), "{table}");
    let tally = org.tally();
    assert_eq!(tally.len(), 5, "every other recipient was reached: {tally:?}");
    assert_eq!(tally["/slack/payments"], 1, "the 429 was waited out and the post made once");
    // The next run sends the one that failed, and nothing else.
    let retry = org.notify(&report, &["--send"]);
    assert_eq!(retry.status.code(), Some(0), "{}", stdout(&retry));
    assert_eq!(org.tally().get("/teams/platform"), Some(&1));
    assert_eq!(org.tally().values().sum::<usize>(), 6);

    // Killed while sending: the message in flight is not sent again, the ones after it are sent on the re-run.
    let later = org.scan(SIX_DAYS_BEFORE, Some(&report), "week2.json");
    org.hooks.behave("/teams/platform", json!({"delay_ms": 4000, "times": 1}));
    let (r, config, state) = (
        later.display().to_string(),
        org.config().display().to_string(),
        org.path("state.jsonl").display().to_string(),
    );
    let ca = org.hooks.ca.display().to_string();
    let slack = format!("{}/slack/payments", org.hooks.url);
    let mut child = org.emu.launch_with(
        &["notify", &r, "--config", &config, "--state", &state, "--send"],
        &[("SSL_CERT_FILE", ca.as_str()), ("SLACK_PAYMENTS_URL", slack.as_str()), ("SNOW_SECRET", HOOK_SECRET)],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_to_string(&state)
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains("\"event\":\"sending\"") && l.contains("teams:platform") && l.contains(SIX_DAYS_BEFORE))
    {
        assert!(std::time::Instant::now() < deadline, "the Teams post never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let resumed = org.notify(&later, &["--send"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stdout(&resumed));
    assert!(
        String::from_utf8_lossy(&resumed.stderr).contains("whether it arrived is unknown"),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    std::thread::sleep(std::time::Duration::from_secs(4)); // the delayed post lands at the receiver
    let tally = org.tally();
    assert!(tally.values().all(|n| *n <= 2), "no recipient got the reminder twice: {tally:?}");
    // The Teams post was in flight when the run was killed: it reached the receiver or not (the kill can come
    // before its bytes left), and either way it is never sent again. Every other recipient got its reminder once.
    let others: Vec<usize> = tally.iter().filter(|(to, _)| to.as_str() != "/teams/platform").map(|(_, n)| *n).collect();
    assert_eq!(others, [2; 5], "every other recipient got its reminder once: {tally:?}");
    assert!(matches!(tally.get("/teams/platform"), Some(1 | 2)), "{tally:?}");
}

#[test]
fn bad_notify_input_is_exit_2_naming_the_file_and_line() {
    let org = setup();
    let report = org.scan(AS_OF, None, "week1.json");
    let r = report.display().to_string();
    let bad = org.path("bad.toml");
    std::fs::write(&bad, "from = \"keyaudit@corp.example\"\ncatch-all = \"security@corp.example\"\n[[route]]\nou = \"Prod\"\nto = \"x@y.example\"\n")
        .unwrap();
    let b = bad.display().to_string();
    // An undefined target is named at its own line, not at the [[route]] line.
    let undefined = org.path("undefined.toml");
    std::fs::write(&undefined, "from = \"keyaudit@corp.example\"\ncatch-all = \"security@corp.example\"\n[[route]]\nou = \"/Root/Prod\"\n\nto = \"slack:nope\"\n")
        .unwrap();
    let u = undefined.display().to_string();
    let cases: [(Vec<&str>, String); 4] = [
        (
            vec!["notify", &r, "--config", &b],
            format!("--config {b}: line 3: [[route]] ou \"Prod\": expected an OU path"),
        ),
        (
            vec!["notify", &r, "--config", &u],
            format!("--config {u}: line 6: to \"slack:nope\": no such entry in [slack]"),
        ),
        (vec!["notify", &r, "--config", &b, "--send"], "--send needs --state FILE".to_owned()),
        (vec!["notify", &b, "--config", &b], format!("notify {b}: not JSON")),
    ];
    for (args, says) in cases {
        let out = org.emu.command(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&says), "{args:?}: expected {says:?} in {stderr}");
    }
    assert!(org.tally().is_empty(), "nothing sent");
}

/// Issue "Deadlines that hold": escalation is its own duty. Notify turned on over a backlog (keys already past their
/// deadline in the reports' history): the escalation contact is told in that first run, not a week later; when its
/// message is refused, it goes out the next day, though no owner is due again.
#[test]
fn a_late_start_escalates_at_once_and_a_refused_escalation_goes_out_the_next_day() {
    let org = setup();
    let week1 = org.scan(AS_OF, None, "week1.json");
    let late = org.scan(PAST_DUE, Some(&week1), "late.json");
    // SES in its sandbox: only verified recipients; the CISO is not verified yet, so the escalation is refused.
    let verified = ["keyaudit@corp.example", "alice@corp.example", "security@corp.example"];
    org.emu.control("POST", "ses", &json!({"identities": verified, "sandbox": true}));
    let first = org.notify(&late, &["--send"]);
    let table = stdout(&first);
    assert_eq!(first.status.code(), Some(3), "the refused escalation is exit 3\n{table}");
    assert!(
        table.lines().any(|l| l.trim_start().starts_with("ciso@corp.example") && l.contains("FAILED")),
        "the escalation was attempted in the first run:\n{table}"
    );
    assert_eq!(org.tally()["alice@corp.example"], 1, "the owner's first notice, overdue");
    assert!(!org.tally().contains_key("ciso@corp.example"));

    // The next day: the CISO hears of every overdue key under /Root/Prod; no owner is told again.
    org.emu.control("POST", "ses", &json!({"identities": ["ciso@corp.example"], "sandbox": true}));
    let next_day = org.scan("2026-12-30T12:00:00Z", Some(&late), "next-day.json");
    let before = org.tally();
    let second = org.notify(&next_day, &["--send"]);
    assert_eq!(second.status.code(), Some(0), "{}", stdout(&second));
    let after = org.tally();
    assert_eq!(after["ciso@corp.example"], 1, "{after:?}");
    assert_eq!(after.values().sum::<usize>(), before.values().sum::<usize>() + 1, "only the escalation: {after:?}");
    let ciso = org.emails().into_iter().find(|(to, _)| to == "ciso@corp.example").unwrap().1;
    assert!(parse_mime(&ciso).1["text/plain"].contains("OVERDUE KEYS ESCALATED TO YOU (5)"));
}

/// Two `notify --send` runs at once send once: the second finds the state file held (here, by this test, as a
/// running notify holds it) and stops at once, exit 3, having sent nothing; once released, a run sends.
#[test]
fn a_second_notify_run_at_once_sends_nothing_and_says_why() {
    let org = setup();
    let report = org.scan(AS_OF, None, "week1.json");
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(org.path("state.jsonl.lock"));
    let lock = lock.unwrap();
    lock.try_lock().unwrap();
    let blocked = org.notify(&report, &["--send"]);
    assert_eq!(blocked.status.code(), Some(3), "{}", stdout(&blocked));
    let err = String::from_utf8_lossy(&blocked.stderr);
    assert!(err.contains("another `keyaudit notify --send` is running with this state file"), "{err}");
    assert!(org.tally().is_empty(), "nothing sent while the other run holds the state file");
    drop(lock);
    let run = org.notify(&report, &["--send"]);
    assert_eq!(run.status.code(), Some(0), "{}", stdout(&run));
    assert_eq!(org.tally().values().sum::<usize>(), 6);
}

/// `--max-messages` lets the most urgent out first (an escalation, then overdue notices, then reminders, then first
/// notices), says on stderr how many it held back, and those go out on the next run.
#[test]
fn max_messages_sends_the_most_urgent_first_and_says_what_it_held_back() {
    let org = setup();
    let week1 = org.scan(AS_OF, None, "week1.json");
    assert_eq!(org.notify(&week1, &["--send"]).status.code(), Some(0));
    let late = org.scan(PAST_DUE, Some(&week1), "late.json");
    let before: usize = org.tally().values().sum();
    let capped = org.notify(&late, &["--send", "--max-messages", "1"]);
    assert_eq!(capped.status.code(), Some(3), "{}", stdout(&capped));
    let after = org.tally();
    assert_eq!(after.get("ciso@corp.example"), Some(&1), "the escalation first, not the first recipient by name");
    assert_eq!(after.values().sum::<usize>(), before + 1, "{after:?}");
    let err = String::from_utf8_lossy(&capped.stderr);
    assert!(err.contains("--max-messages 1: 6 message(s) held back"), "{err}");
    // The next run sends what was held back, and nothing twice.
    let rest = org.notify(&late, &["--send"]);
    assert_eq!(rest.status.code(), Some(0), "{}", stdout(&rest));
    assert_eq!(org.tally().values().sum::<usize>(), before + 7);
    assert_eq!(org.tally()["ciso@corp.example"], 1);
}

/// A recipient of 500 keys gets a message every channel can deliver (SNS 256 KB, Teams' card about 28 KB, Slack's
/// 3,000 characters a section and 50 blocks, SES 10 MB), the keys that did not fit counted: "and N more".
#[test]
fn a_recipient_of_500_keys_gets_a_deliverable_message_on_every_channel() {
    let emu = Emulator::start();
    let users: Vec<Value> =
        (0..500).map(|n| json!({"name": format!("svc-{n:03}"), "keys": [key()], "tags": {"team": "big"}})).collect();
    let s = emu.seed(json!({"sns_topics": ["big"], "ses_identities": ["keyaudit@corp.example"],
                            "accounts": [{"name": "big", "users": users}]}));
    let hooks = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    // Owners from tags, faster than the default look-up pace (500 ListUserTags), and no key id look-ups.
    let json_out = format!("json={}", report.display());
    let args = ["scan", "-q", "--as-of", AS_OF, "--rules", "KA-IAM-001", "-o", &json_out];
    let out = emu.command(&[&args[..], &["--key-ids", "none", "--enrichment-rps", "200"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let topic = s.0["sns_topics"]["big"].as_str().unwrap().to_owned();
    let ca = hooks.ca.display().to_string();
    for target in [
        format!("sns:{topic}"),
        "slack:big".into(),
        "teams:big".into(),
        "webhook:big".into(),
        "big@corp.example".into(),
    ] {
        let config = dir.path().join("notify.toml");
        std::fs::write(
            &config,
            format!(
                "from = \"keyaudit@corp.example\"\ncatch-all = \"security@corp.example\"\n[owners]\nbig = \"{target}\"\n\
                 [slack]\nbig = \"{h}/slack/big\"\n[teams]\nbig = \"{h}/teams/big\"\n[webhook]\nbig = \"{h}/webhook/big\"\n",
                h = hooks.url
            ),
        )
        .unwrap();
        let state = dir.path().join(format!("state-{}.jsonl", target.split(':').next().unwrap()));
        let args = [
            "notify",
            report.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--send",
        ];
        let out = emu.command_with(&args, &[("SSL_CERT_FILE", ca.as_str())]);
        assert_eq!(out.status.code(), Some(0), "{target}: {}", String::from_utf8_lossy(&out.stdout));
    }
    let published = emu.control("GET", "sns/published", &Value::Null);
    let sns = published.as_array().unwrap()[0]["message"].as_str().unwrap().to_owned();
    assert!(sns.len() <= 256 * 1024 && sns.contains("more key(s): see the report"), "{} bytes", sns.len());
    let post = |path: &str| {
        let body =
            hooks.received().into_iter().find(|p| p["path"] == path).unwrap()["body"].as_str().unwrap().to_owned();
        serde_json::from_str::<Value>(&body).map(|v| (body.len(), v)).unwrap()
    };
    let (teams_len, teams) = post("/teams/big");
    assert!(teams_len <= 28 * 1024 && teams.to_string().contains("more: see the report"), "{teams_len} bytes");
    let (_, slack) = post("/slack/big");
    let blocks = slack["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    assert!(blocks.iter().all(|b| b.to_string().chars().count() <= 3_200), "a Slack section over 3,000 characters");
    assert!(slack.to_string().contains("and 460 more: see the report"), "{slack}");
    let (_, webhook) = post("/webhook/big");
    let listed = webhook["keys"].as_array().unwrap().len() + webhook["escalated"].as_array().unwrap().len();
    assert_eq!(listed + webhook["more"].as_u64().unwrap() as usize, 500);
    let sent = emu.control("GET", "ses/sent", &Value::Null);
    let mail = sent.as_array().unwrap().iter().find(|m| m["destinations"][0] == "big@corp.example").unwrap();
    let text = &parse_mime(mail["raw"].as_str().unwrap()).1["text/plain"];
    assert_eq!(text.matches(" of IAM user svc-").count(), 500, "e-mail holds all 500");
}

/// A report whose deadlines restart (scanned without --baseline), given with a state file that records notices about
/// earlier reports, is refused with a message naming --baseline — never a silent reset that re-announces every key;
/// --allow-deadline-reset sends all the same.
#[test]
fn a_report_without_its_history_does_not_silently_reset_the_deadlines() {
    let org = setup();
    let week1 = org.scan(AS_OF, None, "week1.json");
    assert_eq!(org.notify(&week1, &["--send"]).status.code(), Some(0));
    let sent = org.tally().values().sum::<usize>();
    let orphan = org.scan(SIX_DAYS_BEFORE, None, "no-baseline.json");
    let refused = org.notify(&orphan, &["--send"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("every deadline in it restarts") && err.contains("Scan with --baseline DIR"), "{err}");
    assert_eq!(org.tally().values().sum::<usize>(), sent, "nothing sent");
    // With its history, the same day: the reminders, 6 days before the deadlines set at the first sighting.
    let with_history = org.scan(SIX_DAYS_BEFORE, Some(&week1), "week2.json");
    let reminded = org.notify(&with_history, &["--send"]);
    assert_eq!(reminded.status.code(), Some(0), "{}", stdout(&reminded));
    assert_eq!(org.tally().values().sum::<usize>(), sent + 6, "one reminder per recipient\n{}", stdout(&reminded));
    // Forced: the restarted deadlines are a month away, so nothing is due.
    let forced = org.notify(&orphan, &["--send", "--allow-deadline-reset"]);
    assert_eq!(forced.status.code(), Some(0), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_eq!(org.tally().values().sum::<usize>(), sent + 6);
}
