//! Issue "The CIS procedure for keys in use": a plan finishes a rotation once the older key went quiet (both last
//! uses read by the plan, re-checked by `apply`), and starts one for users who opted in, the new key's secret handed
//! over through Secrets Manager alone; through the real binary against the emulator.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use serde_json::{Value, json};

use super::harness::python;
use super::notify::parse_mime;
use super::remediation::{Org, code, journal, stdout};

/// /Root/Dev/work: users mid-rotation and users with one key in use; /Root/Dev/slow: a user mid-rotation whose
/// last-use look-ups are throttled.
pub(crate) fn setup() -> Org {
    Org::seeded(json!({
        "management": {"users": [{"name": "auditor", "keys": [{"age_days": 30, "return_secret": true}]}]},
        "ous": [{"name": "Dev", "accounts": [
            {"name": "work", "users": [
                // Old key quiet for 50 days (--rotation-quiet-days is 45), the new one used yesterday: finished.
                {"name": "mid", "keys": [{"age_days": 200, "last_used_days": 50}, {"age_days": 60, "last_used_days": 1}]},
                {"name": "still", "keys": [
                    {"age_days": 200, "last_used_days": 1}, {"age_days": 20, "last_used_days": 1}]},
                {"name": "newunused", "keys": [{"age_days": 200, "last_used_days": 30}, {"age_days": 20}]},
                {"name": "auto", "tags": {"keyaudit:rotation": "auto"},
                 "keys": [{"age_days": 200, "last_used_days": 1, "return_secret": true}]},
                {"name": "manual", "keys": [{"age_days": 200, "last_used_days": 1}]},
                {"name": "full", "tags": {"keyaudit:rotation": "auto"},
                 "keys": [{"age_days": 200, "last_used_days": 1}, {"age_days": 300, "status": "Inactive"}]}
            ]},
            {"name": "slow", "users": [
                {"name": "throttled", "keys": [
                    {"age_days": 200, "last_used_days": 30}, {"age_days": 20, "last_used_days": 1}]}
            ]}
        ]}]
    }))
}

impl Org {
    /// user → [(key id, status)] in an account, straight from the emulator.
    pub(crate) fn keys(&self, account: &str) -> BTreeMap<String, Vec<(String, String)>> {
        let keys = self.emu.control("GET", "keys", &json!({"account_id": self.s.account(account)}));
        keys.as_object()
            .unwrap()
            .iter()
            .map(|(user, ks)| {
                let ks = ks.as_array().unwrap().iter();
                (user.clone(), ks.map(|k| (text(&k["access_key_id"]), text(&k["status"]))).collect())
            })
            .collect()
    }

    /// `keyaudit plan -o NAME` (as of now: the seeded ages are relative to now), with `extra`.
    pub(crate) fn rotation_plan(&self, name: &str, extra: &[&str]) -> (Output, Value) {
        let path = self.path(name).display().to_string();
        // A look-up throttled for good fails after a second of waiting it out (and the key is unverified).
        let mut args =
            vec!["plan", "-o", &path, "--owner-tags", "", "--max-attempts", "2", "--throttle-patience", "1s"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("no plan: {}", String::from_utf8_lossy(&out.stderr)));
        (out, serde_json::from_str(&text).unwrap())
    }

    pub(crate) fn secrets(&self, account: &str) -> Vec<Value> {
        let all = self.emu.control("GET", "secrets", &json!({"account_id": self.s.account(account)}));
        all.as_array().unwrap().clone()
    }

    /// `keyaudit notify REPORT --journal-dir` (the test's directory, where apply and undo keep their journals) into an
    /// outbox: its output, and each message's text part.
    pub(crate) fn notify_with_journals(&self, report: &str) -> (Output, Vec<String>) {
        let config = self.path("notify.toml");
        std::fs::write(&config, "from = \"keyaudit@corp.example\"\ncatch-all = \"security@corp.example\"\n").unwrap();
        let (c, outbox, dir) = (
            config.display().to_string(),
            self.path("outbox").display().to_string(),
            self.dir.path().display().to_string(),
        );
        let out = self.run(&["notify", report, "--config", &c, "--outbox", &outbox, "--journal-dir", &dir]);
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        let mails = std::fs::read_dir(self.path("outbox"))
            .unwrap()
            .map(|e| parse_mime(&std::fs::read_to_string(e.unwrap().path()).unwrap()).1["text/plain"].clone())
            .collect();
        (out, mails)
    }

    pub(crate) fn backdate(&self, account: &str, user: &str, key: &str, age_days: u32, last_used_days: u32) {
        self.emu.control(
            "POST",
            "keys/backdate",
            &json!({"account_id": self.s.account(account), "user_name": user, "access_key_id": key,
                    "age_days": age_days, "last_used_days": last_used_days}),
        );
    }
}

pub(crate) fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// (action, user, reason code).
pub(crate) type Row = (String, String, String);

/// The row of each change, and the row of each key left out.
pub(crate) fn outline(plan: &Value) -> (Vec<Row>, Vec<Row>) {
    let rows = |list: &str, code: &dyn Fn(&Value) -> String| {
        plan[list].as_array().unwrap().iter().map(|c| (text(&c["action"]), text(&c["user_name"]), code(c))).collect()
    };
    (rows("changes", &|c| text(&c["why"]["reason_code"])), rows("excluded", &|e| text(&e["reason_code"])))
}

pub(crate) fn row(action: &str, user: &str, code: &str) -> Row {
    (action.to_owned(), user.to_owned(), code.to_owned())
}

/// `GetSecretValue` signed with these credentials (the user's own), through the API.
pub(crate) fn read_secret_as(org: &Org, access_key_id: &str, secret: &str, secret_id: &str) -> Result<Value, String> {
    const SCRIPT: &str = "import boto3, json, os\n\
        c = boto3.client('secretsmanager', endpoint_url=os.environ['EP'], region_name='us-east-1',\n\
            aws_access_key_id=os.environ['AK'], aws_secret_access_key=os.environ['SK'])\n\
        print(json.dumps(c.get_secret_value(SecretId=os.environ['ID'])['SecretString']))\n";
    let out = Command::new(python())
        .args(["-c", SCRIPT])
        .env("EP", &org.emu.url)
        .env("AK", access_key_id)
        .env("SK", secret)
        .env("ID", secret_id)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let string: String = serde_json::from_slice(&out.stdout).unwrap();
    Ok(serde_json::from_str(&string).unwrap())
}

#[test]
fn a_finished_rotation_deactivates_the_quiet_old_key_and_every_other_user_mid_rotation_is_listed_with_its_reason() {
    let org = setup();
    let slow = org.s.account("slow");
    org.emu.fault(json!({"service": "iam", "action": "GetAccessKeyLastUsed", "account_id": slow,
                         "error_code": "Throttling", "http_status": 400, "message": "Rate exceeded"}));
    let (out, plan) = org.rotation_plan("plan.json", &[]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(plan["plan_version"], 3);
    let (changes, mut excluded) = outline(&plan);
    excluded.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        changes,
        [row("create_key", "auto", "rotation_start"), row("deactivate", "mid", "rotation_finished")],
        "by account and user: {plan:#}"
    );
    assert_eq!(
        excluded,
        [
            row("create_key", "full", "no_free_slot"),
            row("create_key", "manual", "not_opted_in"),
            row("deactivate", "newunused", "new_key_unused"),
            row("deactivate", "still", "old_key_still_used"),
            row("deactivate", "throttled", "unverified"),
        ]
    );
    let work = org.keys("work");
    let mid = &plan["changes"][1];
    assert_eq!(text(&mid["access_key_id"]), work["mid"][0].0, "the older key");
    assert_eq!(text(&mid["expect"]["other_key"]["access_key_id"]), work["mid"][1].0, "the newer one must stay active");
    assert!(mid["expect"]["last_used_at"].is_string() && mid["expect"]["other_key"]["last_used_at"].is_string());
    let reason = text(&mid["why"]["reason"]);
    assert!(reason.starts_with("rotation finished: this is the older key (created "), "{reason}");
    assert!(reason.contains(&format!("the user's newer key {} (created ", work["mid"][1].0)), "{reason}");
    let throttled = plan["excluded"].as_array().unwrap().iter().find(|e| e["user_name"] == "throttled").unwrap();
    assert!(text(&throttled["reason"]).contains("Throttling"), "{throttled}");
    let table = stdout(&out);
    assert!(table.contains("1 key(s) in use are left to their owners"), "{table}");
    assert!(!table.contains("manual"), "not-opted-in keys are counted, not listed: {table}");

    // apply: the finished rotation is made (the creation needs --allow-create-keys); nothing in `slow` is touched.
    let p = org.path("plan.json").display().to_string();
    // The dry run says the whole command, --allow-create-keys included (the plan holds a create_key).
    let dry = org.run(&["apply", &p]);
    assert_eq!(code(&dry), 0, "{}", String::from_utf8_lossy(&dry.stderr));
    let rerun = format!("To make these changes, run:\n  keyaudit apply {p} --yes --allow-create-keys\n");
    assert!(stdout(&dry).ends_with(&rerun), "{}", stdout(&dry));
    let out = org.run(&["apply", &p, "--yes"]);
    assert_eq!(code(&out), 1, "one change not attempted\n{}", stdout(&out));
    assert!(stdout(&out).contains("a key creation needs --allow-create-keys"), "{}", stdout(&out));
    let after = org.keys("work");
    assert_eq!((after["mid"][0].1.as_str(), after["mid"][1].1.as_str()), ("Inactive", "Active"));
    assert_eq!(after["auto"].len(), 1, "no key created without --allow-create-keys");
    assert!(org.keys("slow")["throttled"].iter().all(|(_, s)| s == "Active"), "an unverified key is never changed");

    // undo re-activates it.
    let j = org.path("plan.journal.jsonl").display().to_string();
    let out = org.run(&["undo", &j, "--yes"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(org.keys("work")["mid"][0].1, "Active");

    // apply re-checks both keys right before the change: with the newer key deactivated since the plan, the older
    // one is left alone (applications may need it again).
    let (_, again) = org.rotation_plan("again.json", &[]);
    assert_eq!(outline(&again).0[1], row("deactivate", "mid", "rotation_finished"));
    org.emu.change_key(&org.s.account("work"), "mid", "deactivate", Some(&work["mid"][1].0));
    let a = org.path("again.json").display().to_string();
    let out = org.run(&["apply", &a, "--yes"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("the user's newer key {} is inactive now", work["mid"][1].0)),
        "{}",
        stdout(&out)
    );
    assert_eq!(org.keys("work")["mid"][0].1, "Active", "the older key stays active");
}

/// Every byte keyaudit wrote: each run's stdout and stderr, and every file under the test's directory.
fn everything_written(org: &Org, outputs: &[Output]) -> Vec<u8> {
    let mut all = Vec::new();
    for out in outputs {
        all.extend_from_slice(&out.stdout);
        all.extend_from_slice(&out.stderr);
    }
    let mut dirs = vec![org.dir.path().to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                if path.extension().is_some_and(|x| x == "eml") {
                    // An e-mail's bodies are base64: searched decoded.
                    let (_, parts) = parse_mime(&String::from_utf8_lossy(&bytes));
                    all.extend(parts.into_values().flat_map(String::into_bytes));
                }
                all.extend(bytes);
            }
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn an_opted_in_user_gets_a_second_key_whose_secret_is_only_in_secrets_manager_and_a_later_run_finishes_the_rotation() {
    let org = setup();
    let work = org.s.account("work");
    let old = org.keys("work")["auto"][0].0.clone();
    let old_secret = org.s.0["secrets"][&old].as_str().unwrap().to_owned();
    let mut outputs = Vec::new();
    let (out, plan) = org.rotation_plan("start.json", &[]);
    outputs.push(out);
    let create = plan["changes"].as_array().unwrap().iter().find(|c| c["action"] == "create_key").unwrap().clone();
    assert_eq!((text(&create["user_name"]), text(&create["access_key_id"])), ("auto".to_owned(), old.clone()));
    assert!(create["switch_by"].is_string(), "{create}");

    // -vvv: every log line the SDK and keyaudit write at debug level goes to stderr, searched below.
    let p = org.path("start.json").display().to_string();
    let out = org.run(&["apply", &p, "--yes", "--allow-create-keys", "-vvv"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    outputs.push(out);
    let keys = org.keys("work")["auto"].clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let new = keys.iter().find(|(id, _)| *id != old).unwrap().0.clone();
    let name = format!("keyaudit/rotation/auto/{new}");

    // The secret, as an administrator sees it: in the user's own account, tagged, with a policy for that user alone.
    let secrets = org.secrets("work");
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    let secret = &secrets[0];
    assert_eq!((text(&secret["name"]), secret["values"].as_u64()), (name.clone(), Some(1)), "{secret}");
    let tags = &secret["tags"];
    assert_eq!(
        (text(&tags["keyaudit:old-access-key-id"]), text(&tags["keyaudit:new-access-key-id"])),
        (old.clone(), new.clone())
    );
    assert_eq!(text(&tags["keyaudit:switch-by"]), text(&create["switch_by"])[..10]);
    let user_arn = format!("arn:aws:iam::{work}:user/auto");
    let statements = secret["policy"]["Statement"].as_array().unwrap();
    let allowed: Vec<&Value> =
        statements.iter().filter(|s| s["Effect"] == "Allow").map(|s| &s["Principal"]["AWS"]).collect();
    assert_eq!(allowed, [&json!(user_arn)], "the user alone is allowed");
    let deny = statements.iter().find(|s| s["Effect"] == "Deny").unwrap();
    assert_eq!(deny["Principal"], json!("*"));
    assert!(deny["Action"].as_array().unwrap().contains(&json!("secretsmanager:GetSecretValue")), "{deny}");
    assert_eq!(deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"], json!(user_arn), "everyone else is denied");

    // Readable with the user's own credentials: the new key, whole.
    let value = read_secret_as(&org, &old, &old_secret, &name).unwrap();
    assert_eq!((text(&value["UserName"]), text(&value["AccessKeyId"])), ("auto".to_owned(), new.clone()));
    let new_secret = text(&value["SecretAccessKey"]);
    assert_eq!(new_secret.len(), 40, "a secret access key");

    // The journal records the new key and the secret's ARN.
    let entries = journal(&org.path("start.journal.jsonl"));
    let done = entries.iter().find(|e| e["phase"] == "done" && e["operation"] == "create_key").unwrap();
    assert_eq!((text(&done["access_key_id"]), text(&done["created_key_id"])), (old.clone(), new.clone()));
    assert_eq!(text(&done["secret_arn"]), text(&secret["arn"]));

    // Later: applications moved to the new key a day ago, the old one has not been used for 46 days. A scan, then a
    // plan that finishes the rotation, then its deletion (with the secret's) after the waiting period.
    org.backdate("work", "auto", &new, 47, 1);
    org.backdate("work", "auto", &old, 250, 46);
    org.emu.control("DELETE", "reports", &Value::Null); // the credential reports of a week ago are 4 hours old
    let report = org.path("report.json").display().to_string();
    outputs.push(org.run(&["scan", "-o", &format!("json={report}"), "--owner-tags", ""]));
    // The owner's notice says where the new key's secret is and by when applications must switch.
    let (out, mails) = org.notify_with_journals(&report);
    outputs.push(out);
    let told = mails.iter().find(|m| m.contains("Rotation under way")).expect("a notice about the rotation");
    assert!(
        told.contains(&text(&secret["arn"]))
            && told.contains(&format!("Switch-by date {}: move every", &text(&create["switch_by"])[..10])),
        "{told}"
    );
    // Two dates, each named: the switch-by date of the hand-over, and the deadline to fix the old key.
    assert!(told.contains("Deadline to fix it: ") && told.contains("(The deadline is the date by which"), "{told}");
    let (out, finish) = org.rotation_plan("finish.json", &[]);
    outputs.push(out);
    let change = finish["changes"].as_array().unwrap().iter().find(|c| c["user_name"] == "auto").unwrap();
    assert_eq!(
        (text(&change["why"]["reason_code"]), text(&change["access_key_id"])),
        ("rotation_finished".to_owned(), old.clone())
    );
    let f = org.path("finish.json").display().to_string();
    let out = org.run(&["apply", &f, "--yes", "--max-per-account", "1"]);
    outputs.push(out);
    let dir = org.dir.path().display().to_string();
    let (out, delete) = org.rotation_plan("delete.json", &["--delete-deactivated-after", "0d", "--journal-dir", &dir]);
    outputs.push(out);
    // Other users' keys deactivated earlier in this test are due for deletion too; the plan orders by key id.
    let deletion = delete["changes"].as_array().unwrap().iter().find(|c| c["user_name"] == "auto").unwrap();
    assert_eq!(
        (text(&deletion["action"]), text(&deletion["access_key_id"])),
        ("delete".to_owned(), old.clone()),
        "{delete:#}"
    );
    assert_eq!(text(&deletion["secret_arn"]), text(&secret["arn"]));
    let d = org.path("delete.json").display().to_string();
    let out = org.run(&["apply", &d, "--yes", "--allow-delete"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    outputs.push(out);
    assert_eq!(
        org.keys("work")["auto"],
        [(new.clone(), "Active".to_owned())],
        "the old key is gone, the new one stays"
    );
    assert_eq!(org.secrets("work")[0]["deleted"], true, "the secret's deletion is scheduled with the old key's");

    let written = everything_written(&org, &outputs);
    assert!(!written.is_empty());
    assert!(!contains(&written, &new_secret), "the new key's secret reached a file or stream keyaudit wrote");
    assert!(contains(&written, &new), "the search is real: the new key's id is in the journal");
}

#[test]
fn undo_of_a_creation_deactivates_the_key_never_deletes_it_and_schedules_the_secrets_deletion() {
    // AWS records a key's last use hours late: a key an application switched to minutes ago shows none. Undo
    // deactivates the created key (re-activated by undoing the undo if something broke); a deletion plan deletes it
    // after the waiting period, as any key keyaudit deactivated.
    let org = setup();
    let (_, _) = org.rotation_plan("start.json", &[]);
    let p = org.path("start.json").display().to_string();
    let out = org.run(&["apply", &p, "--yes", "--allow-create-keys"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let old = org.keys("work")["auto"][0].0.clone();
    let new = org.keys("work")["auto"].iter().find(|k| k.0 != old).unwrap().0.clone();
    let j = org.path("start.journal.jsonl").display().to_string();
    let out = org.run(&["undo", &j]);
    assert!(stdout(&out).contains("deactivate_created"), "the dry run names it: {}", stdout(&out));
    assert!(org.keys("work")["auto"].iter().all(|k| k.1 == "Active"), "a dry run changes nothing");
    let out = org.run(&["undo", &j, "--yes"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(
        org.keys("work")["auto"],
        [(old.clone(), "Active".to_owned()), (new.clone(), "Inactive".to_owned())],
        "the created key is deactivated, not deleted"
    );
    assert_eq!(org.secrets("work")[0]["deleted"], true);
    let again = org.run(&["undo", &j, "--yes"]);
    assert!(stdout(&again).contains("Nothing to do"), "{}", stdout(&again));
    // The deletion plan deletes the deactivated created key after the waiting period (the plan's finished rotation
    // of `mid` was undone: its key is active again).
    let dir = org.dir.path().display().to_string();
    let (_, delete) = org.rotation_plan("delete.json", &["--delete-deactivated-after", "0d", "--journal-dir", &dir]);
    let ids: Vec<String> = delete["changes"].as_array().unwrap().iter().map(|c| text(&c["access_key_id"])).collect();
    assert_eq!(ids, std::slice::from_ref(&new), "{delete:#}");
    // Undoing the undo re-activates it.
    let u = org.path("start.journal.undo.jsonl").display().to_string();
    let out = org.run(&["undo", &u, "--yes", "--key", &new]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(org.keys("work")["auto"].iter().all(|k| k.1 == "Active"));
}

#[test]
fn an_account_with_150_users_is_read_whole() {
    // AWS's rotation sample reads the first 100 users only (one ListUsers page); keyaudit reads the credential report,
    // and a plan looks up every candidate it names.
    let mut users: Vec<Value> = (0..149)
        .map(|i| json!({"name": format!("u{i:03}"), "keys": [{"age_days": 200, "last_used_days": 1}]}))
        .collect();
    users.push(json!({"name": "u149", "keys": [
        {"age_days": 200, "last_used_days": 50}, {"age_days": 60, "last_used_days": 1}]}));
    let org = Org::seeded(json!({
        "management": {"users": [{"name": "auditor", "keys": [{"age_days": 30, "return_secret": true}]}]},
        "ous": [{"name": "Big", "accounts": [{"name": "big", "users": users}]}]
    }));
    let (out, plan) = org.rotation_plan("plan.json", &["--start-rotation-ou", "/Root/Big", "--iam-rps", "100"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let (changes, excluded) = outline(&plan);
    assert!(excluded.is_empty(), "{excluded:?}");
    let starts: Vec<&str> = changes.iter().filter(|c| c.0 == "create_key").map(|c| c.1.as_str()).collect();
    assert_eq!(starts.len(), 149);
    assert_eq!((starts[0], starts[148]), ("u000", "u148"));
    assert_eq!(changes.last().unwrap(), &row("deactivate", "u149", "rotation_finished"), "the 150th user too");
    let tags = org.emu.requests().iter().filter(|r| r.1 == "ListUserTags").count();
    assert_eq!(tags, 149, "each candidate's opt-in read (a user tagged keyaudit:rotation=off would be left out)");
}
