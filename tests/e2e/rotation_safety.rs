//! Issue "Rotation that cannot break production, and a hand-over nobody can re-open": safe defaults, the older key
//! by creation, a sealed hand-over, an open rotation's new key never deactivated, every IAM user name, no second
//! start; and the review's items (only the key a run created is ever taken over, a deactivation found done is not
//! keyaudit's, a deleted user is gone, the opt-out re-read). Through the real binary against the emulator.

use serde_json::{Value, json};

use super::harness::python_json;
use super::remediation::{Org, code, journal, stdout};
use super::rotation::{read_secret_as, text};

/// Every character IAM allows in a user name: letters, digits and `_+=,.@-`.
const EVERY_CHARACTER: &str = "Ab9_+=,.@-";

/// The organization of these tests; the user named with every IAM character opts in to rotation only when
/// `every_character` is set (elsewhere it would be a second creation in every apply).
fn org_with(every_character: bool) -> Org {
    let tags = if every_character { json!({"keyaudit:rotation": "auto"}) } else { json!({}) };
    Org::seeded(json!({
        "management": {"users": [{"name": "auditor", "keys": [{"age_days": 30, "return_secret": true}]}]},
        "ous": [{"name": "Dev", "accounts": [
            {"name": "work", "users": [
                // A monthly job still uses the old key (20 days ago); the new key carries the rest.
                {"name": "monthly", "keys": [
                    {"age_days": 400, "last_used_days": 20}, {"age_days": 60, "last_used_days": 1}]},
                {"name": "reactivated", "keys": [
                    {"age_days": 2000, "last_used_days": 60}, {"age_days": 90, "last_used_days": 1}]},
                {"name": "auto", "tags": {"keyaudit:rotation": "auto"},
                 "keys": [{"age_days": 200, "last_used_days": 1, "return_secret": true}]},
                {"name": EVERY_CHARACTER, "tags": tags,
                 "keys": [{"age_days": 200, "last_used_days": 1, "return_secret": true}]},
                {"name": "idle", "keys": [{"age_days": 200}]}
            ]}
        ]}]
    }))
}

fn org() -> Org {
    org_with(false)
}

fn changes_of<'a>(plan: &'a Value, user: &str) -> Vec<&'a Value> {
    plan["changes"].as_array().unwrap().iter().filter(|c| c["user_name"] == user).collect()
}

fn excluded_of<'a>(plan: &'a Value, user: &str) -> Vec<&'a Value> {
    plan["excluded"].as_array().unwrap().iter().filter(|c| c["user_name"] == user).collect()
}

#[test]
fn a_monthly_jobs_key_survives_the_default_plan_and_is_retired_with_a_shorter_quiet_period() {
    let org = org();
    let (out, plan) = org.rotation_plan("plan.json", &[]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(plan["settings"]["rotation_quiet_days"], 45);
    assert!(changes_of(&plan, "monthly").is_empty(), "{plan:#}");
    let left = excluded_of(&plan, "monthly");
    assert_eq!(text(&left[0]["reason_code"]), "old_key_still_used", "{left:?}");
    assert!(text(&left[0]["reason"]).contains("used 20 day(s) ago, within --rotation-quiet-days (45)"), "{left:?}");
    let (_, short) = org.rotation_plan("short.json", &["--rotation-quiet-days", "7"]);
    let finished = changes_of(&short, "monthly");
    assert_eq!(text(&finished[0]["why"]["reason_code"]), "rotation_finished", "{short:#}");
    assert_eq!(text(&finished[0]["access_key_id"]), org.keys("work")["monthly"][0].0, "the older key");
}

#[test]
fn a_re_activated_old_key_is_still_the_one_retired() {
    let org = org();
    let keys = org.keys("work")["reactivated"].clone();
    let (old, new) = (keys[0].0.clone(), keys[1].0.clone());
    // The 2000-day-old key was re-activated 3 days ago: the credential report's last_rotated shows that day, so the
    // report alone takes it for the newer key.
    org.emu.control(
        "POST",
        "keys/backdate",
        &json!({"account_id": org.s.account("work"), "user_name": "reactivated", "access_key_id": old,
                "age_days": 2000, "last_used_days": 60,
                "reactivated_days": 3}),
    );
    let (out, plan) = org.rotation_plan("plan.json", &[]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let change = changes_of(&plan, "reactivated");
    assert_eq!(change.len(), 1, "{plan:#}");
    assert_eq!(text(&change[0]["access_key_id"]), old, "the key created first is retired");
    assert_eq!(text(&change[0]["expect"]["other_key"]["access_key_id"]), new);
    let reason = text(&change[0]["why"]["reason"]);
    let as_of: jiff::Timestamp = text(&plan["source"]["as_of"]).parse().unwrap();
    let created = (as_of - jiff::SignedDuration::from_hours(2000 * 24)).strftime("%Y-%m-%d");
    assert!(reason.starts_with(&format!("rotation finished: this is the older key (created {created})")), "{reason}");
}

/// The remediation role's session in `account`, as keyaudit's apply gets it: (key id, secret, token).
fn remediation_session(org: &Org, account: &str) -> (String, String, String) {
    const SCRIPT: &str = "import boto3, json, os\n\
        c = boto3.client('sts', endpoint_url=os.environ['EP'], region_name='us-east-1',\n\
            aws_access_key_id=os.environ['AK'], aws_secret_access_key=os.environ['SK'])\n\
        r = c.assume_role(RoleArn=os.environ['ROLE'], RoleSessionName='keyaudit-remediation')['Credentials']\n\
        print(json.dumps([r['AccessKeyId'], r['SecretAccessKey'], r['SessionToken']]))\n";
    let role = format!("arn:aws:iam::{account}:role/KeyauditRemediation");
    let v = python_json(SCRIPT, &[("EP", &org.emu.url), ("AK", &org.key_id), ("SK", &org.secret), ("ROLE", &role)]);
    let text = |i: usize| v[i].as_str().unwrap().to_owned();
    (text(0), text(1), text(2))
}

/// Each way back into a secret, tried with the given credentials: call → the error code, or "ok".
fn ways_back_in(org: &Org, creds: &(String, String, String), secret: &str) -> Value {
    const SCRIPT: &str = r#"
import boto3, json, os
c = boto3.client('secretsmanager', endpoint_url=os.environ['EP'], region_name='us-east-1',
    aws_access_key_id=os.environ['AK'], aws_secret_access_key=os.environ['SK'], aws_session_token=os.environ['TK'])
s = os.environ['ID']
open_policy = json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': '*',
    'Action': 'secretsmanager:GetSecretValue', 'Resource': '*'}]})
calls = {
    'GetSecretValue': lambda: c.get_secret_value(SecretId=s),
    'PutSecretValue': lambda: c.put_secret_value(SecretId=s, SecretString='x'),
    'UpdateSecret': lambda: c.update_secret(SecretId=s, SecretString='x'),
    'PutResourcePolicy': lambda: c.put_resource_policy(SecretId=s, ResourcePolicy=open_policy),
    'DeleteResourcePolicy': lambda: c.delete_resource_policy(SecretId=s),
    'RotateSecret': lambda: c.rotate_secret(SecretId=s,
        RotationLambdaARN='arn:aws:lambda:us-east-1:' + s.split(':')[4] + ':function:x'),
}
out = {}
for name, call in calls.items():
    try:
        call()
        out[name] = 'ok'
    except Exception as e:
        out[name] = getattr(e, 'response', {}).get('Error', {}).get('Code', str(e))
print(json.dumps(out))
"#;
    python_json(SCRIPT, &[("EP", &org.emu.url), ("AK", &creds.0), ("SK", &creds.1), ("TK", &creds.2), ("ID", secret)])
}

#[test]
fn the_handed_over_secret_is_sealed_against_keyaudits_own_role_and_readable_by_its_user_alone() {
    let org = org();
    let (_, plan) = org.rotation_plan("start.json", &[]);
    assert_eq!(changes_of(&plan, "auto").len(), 1, "{plan:#}");
    let p = org.path("start.json").display().to_string();
    let out = org.run(&["apply", &p, "--yes", "--allow-create-keys"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let secret = org.secrets("work").into_iter().find(|s| s["tags"]["keyaudit:user"] == "auto").unwrap();
    let arn = text(&secret["arn"]);
    // Read back: the policy denies every way back in to everyone but the user.
    let deny = secret["policy"]["Statement"].as_array().unwrap().iter().find(|s| s["Effect"] == "Deny").unwrap();
    for action in ["GetSecretValue", "PutSecretValue", "UpdateSecret", "PutResourcePolicy", "DeleteResourcePolicy"] {
        assert!(deny["Action"].as_array().unwrap().contains(&json!(format!("secretsmanager:{action}"))), "{deny}");
    }
    // Tried: keyaudit's remediation role can neither read the secret nor change its value or its policy.
    let role = remediation_session(&org, &org.s.account("work"));
    let tried = ways_back_in(&org, &role, &arn);
    for (call, answer) in tried.as_object().unwrap() {
        assert_eq!(answer, "AccessDeniedException", "{call}: {tried}");
    }
    // The user reads it with their own credentials.
    let old = org.keys("work")["auto"][0].0.clone();
    let user_secret = org.s.0["secrets"][&old].as_str().unwrap().to_owned();
    let value = read_secret_as(&org, &old, &user_secret, &arn).unwrap();
    assert_eq!(text(&value["UserName"]), "auto");
}

#[test]
fn a_plan_right_after_a_start_proposes_none_and_a_stalled_rotations_new_key_is_never_deactivated() {
    let org = org();
    let (_, plan) = org.rotation_plan("start.json", &["--switch-within", "1s"]);
    let p = org.path("start.json").display().to_string();
    let out = org.run(&["apply", &p, "--yes", "--allow-create-keys"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(changes_of(&plan, "auto").len(), 1);
    let old = org.keys("work")["auto"][0].0.clone();
    let new = org.keys("work")["auto"].iter().find(|k| k.0 != old).unwrap().0.clone();

    // Within the credential report's 4 hours: the report still shows one key, ListAccessKeys two.
    let (_, again) = org.rotation_plan("again.json", &[]);
    assert!(changes_of(&again, "auto").is_empty(), "no second start: {again:#}");
    let left = excluded_of(&again, "auto");
    assert_eq!(text(&left[0]["reason_code"]), "changed_since_report", "{left:?}");

    // 60 days later applications have not moved: the old key is in use, the new one never was. KA-IAM-004 fails the
    // new key (never used, 60 days old), but the rotation is open: it is never planned for deactivation.
    org.backdate("work", "auto", &old, 260, 1);
    org.emu.control(
        "POST",
        "keys/backdate",
        &json!({"account_id": org.s.account("work"), "user_name": "auto", "access_key_id": new, "age_days": 60}),
    );
    org.emu.control("DELETE", "reports", &Value::Null);
    let (out, later) = org.rotation_plan("later.json", &[]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(changes_of(&later, "auto").is_empty(), "{later:#}");
    let held = excluded_of(&later, "auto").into_iter().find(|e| text(&e["access_key_id"]) == new).expect("listed");
    assert_eq!(text(&held["reason_code"]), "rotation_open", "{held}");
    assert!(text(&held["reason"]).contains("keyaudit/rotation/auto/"), "{held}");

    // The owner is told the rotation stalled, with the fetch command naming the secret's Region.
    let report = org.path("report.json").display().to_string();
    let out = org.run(&["scan", "-o", &format!("json={report}"), "--owner-tags", ""]);
    assert!(matches!(code(&out), 0 | 1), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, mails) = org.notify_with_journals(&report);
    let told = mails.iter().find(|m| m.contains("STALLED")).expect("the stalled rotation is said");
    assert!(told.contains(&format!("has passed without the rotation finishing: {old} is still active")), "{told}");
    assert!(told.contains("aws secretsmanager get-secret-value --region us-east-1 --secret-id"), "{told}");
}

#[test]
fn a_user_named_with_every_character_iam_allows_gets_the_hand_over() {
    let org = org_with(true);
    let (_, plan) = org.rotation_plan("start.json", &[]);
    assert_eq!(changes_of(&plan, EVERY_CHARACTER).len(), 1, "{plan:#}");
    let p = org.path("start.json").display().to_string();
    let out = org.run(&["apply", &p, "--yes", "--allow-create-keys"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let keys = org.keys("work")[EVERY_CHARACTER].clone();
    assert_eq!(keys.len(), 2, "the new key is kept: {}", stdout(&out));
    let (old, new) = (keys[0].0.clone(), keys[1].0.clone());
    let name = format!("keyaudit/rotation/Ab9_+=3D=2C.@-/{new}");
    let secret = org.secrets("work").into_iter().find(|s| text(&s["name"]) == name).expect("the secret");
    let user_secret = org.s.0["secrets"][&old].as_str().unwrap().to_owned();
    let value = read_secret_as(&org, &old, &user_secret, &text(&secret["arn"])).unwrap();
    assert_eq!((text(&value["UserName"]), text(&value["AccessKeyId"])), (EVERY_CHARACTER.to_owned(), new));
}

/// A journal line of an earlier run of `change` that stopped right after it (`started`).
fn started_line(plan: &Value, change: &Value) -> String {
    let line = json!({
        "at": plan["created_at"], "plan_id": plan["id"], "n": change["n"],
        "operation": change["action"], "phase": "started", "account_id": change["account_id"],
        "account_name": change["account_name"], "ou_path": change["ou_path"], "user_name": change["user_name"],
        "user_arn": change["user_arn"], "access_key_id": change["access_key_id"], "last_used_at": null, "reason": null
    });
    format!("{line}\n")
}

#[test]
fn a_resumed_run_takes_over_only_the_key_its_journal_records_and_never_claims_a_deactivation_it_did_not_make() {
    let org = org();
    let work = org.s.account("work");
    let (_, plan) = org.rotation_plan("plan.json", &[]);
    let create = changes_of(&plan, "auto")[0].clone();
    let idle = changes_of(&plan, "idle")[0].clone();
    // An earlier run stopped after `started` of both; meanwhile a person created a second key for `auto` and an
    // incident team deactivated `idle`'s key.
    let journal_path = org.path("plan.journal.jsonl");
    std::fs::write(&journal_path, started_line(&plan, &create) + &started_line(&plan, &idle)).unwrap();
    let theirs = org.emu.change_key(&work, "auto", "create", None);
    org.emu.change_key(&work, "idle", "deactivate", Some(&text(&idle["access_key_id"])));
    let p = org.path("plan.json").display().to_string();
    let out = org.run(&["apply", &p, "--yes", "--allow-create-keys"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(org.keys("work")["auto"].iter().any(|k| k.0 == theirs), "the person's key is never deleted");
    assert!(stdout(&out).contains("does not record creating"), "{}", stdout(&out));
    let lines = journal(&journal_path);
    let idle_done = lines.iter().any(|l| l["user_name"] == "idle" && l["phase"] == "done");
    assert!(!idle_done, "not recorded as keyaudit's: {lines:?}");
    assert!(stdout(&out).contains("not recorded as keyaudit's"), "{}", stdout(&out));
    let j = journal_path.display().to_string();
    let out = org.run(&["undo", &j, "--yes", "--key", &text(&idle["access_key_id"])]);
    assert_eq!(code(&out), 2, "nothing keyaudit deactivated: {}", stdout(&out));
    assert!(org.keys("work")["idle"].iter().all(|k| k.1 == "Inactive"), "the incident team's deactivation stays");
}

#[test]
fn a_deleted_user_is_gone_and_an_opt_out_since_the_plan_is_honoured() {
    let org = org_with(true);
    let work = org.s.account("work");
    let (_, plan) = org.rotation_plan("plan.json", &[]);
    assert_eq!(changes_of(&plan, "idle").len(), 1);
    assert_eq!(changes_of(&plan, "auto").len(), 1);
    org.emu.control("POST", "keys", &json!({"account_id": work, "user_name": "idle", "op": "delete_user"}));
    org.emu.control(
        "POST",
        "keys",
        &json!({"account_id": work, "user_name": "auto", "op": "tag", "tags": {"keyaudit:rotation": "off"}}),
    );
    // Another user's tags cannot be read at apply: an opt-out cannot be ruled out.
    org.emu.fault(json!({"service": "iam", "action": "ListUserTags", "account_id": work, "user_name": EVERY_CHARACTER,
                         "error_code": "AccessDenied", "http_status": 403, "message": "denied"}));
    let p = org.path("plan.json").display().to_string();
    let out = org.run(&["apply", &p, "--yes", "--allow-create-keys"]);
    assert_ne!(code(&out), 3, "a deleted user is no failure: {}", stdout(&out));
    let table = stdout(&out);
    let idle = table.lines().find(|l| l.contains(" idle ")).unwrap();
    assert!(idle.contains("gone") && idle.contains("the user no longer exists"), "{table}");
    assert!(table.contains("the user opted out since the plan"), "{table}");
    assert!(table.contains("tags could not be re-read"), "{table}");
    assert_eq!(org.keys("work")["auto"].len(), 1, "no key created");
    assert_eq!(org.keys("work")[EVERY_CHARACTER].len(), 1, "no key created");
    let again = org.run(&["apply", &p, "--yes", "--allow-create-keys"]);
    assert!(!stdout(&again).contains(" idle "), "gone is final: {}", stdout(&again));
}

/// Runs a Python snippet with boto3 signed as `access_key_id`/`secret` (an IAM user of the account), `KMS` a
/// client of it in us-east-1; prints JSON.
fn kms_as(org: &Org, access_key_id: &str, secret: &str, body: &str) -> Value {
    let script = format!(
        "import boto3, json, os\nkms = boto3.client('kms', endpoint_url=os.environ['EP'], region_name='us-east-1', \
         aws_access_key_id=os.environ['AK'], aws_secret_access_key=os.environ['SK'])\n{body}\n"
    );
    python_json(&script, &[("EP", &org.emu.url), ("AK", access_key_id), ("SK", secret)])
}

#[test]
fn with_a_customer_managed_key_the_user_is_granted_decrypt_for_their_secret_or_nothing_is_handed_over() {
    let org = org();
    let old = org.keys("work")["auto"][0].0.clone();
    let user_secret = org.s.0["secrets"][&old].as_str().unwrap().to_owned();
    let kms_key = kms_as(&org, &old, &user_secret, "print(json.dumps(kms.create_key()['KeyMetadata']['Arn']))");
    let kms_key = text(&kms_key);
    let (_, plan) = org.rotation_plan("start.json", &[]);
    assert_eq!(changes_of(&plan, "auto").len(), 1);
    let p = org.path("start.json").display().to_string();

    // A key the grant cannot be made on: each creation fails, its new key is deleted again.
    let missing = kms_key.rsplit_once('/').map(|(a, _)| format!("{a}/00000000-0000-0000-0000-000000000000")).unwrap();
    let out = org.run(&["apply", &p, "--yes", "--allow-create-keys", "--kms-key-id", &missing]);
    assert_eq!(code(&out), 3, "{}", stdout(&out));
    assert!(stdout(&out).contains("kms:CreateGrant"), "{}", stdout(&out));
    assert_eq!(org.keys("work")["auto"].len(), 1, "nothing handed over: {}", stdout(&out));

    let out = org.run(&["apply", &p, "--yes", "--allow-create-keys", "--kms-key-id", &kms_key]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let secret =
        org.secrets("work").into_iter().find(|s| s["tags"]["keyaudit:user"] == "auto" && s["deleted"] == false);
    let secret = secret.expect("the secret");
    let arn = text(&secret["arn"]);
    let grants = kms_as(
        &org,
        &old,
        &user_secret,
        &format!("print(json.dumps(kms.list_grants(KeyId='{kms_key}')['Grants'], default=str))"),
    );
    let grants = grants.as_array().unwrap();
    assert_eq!(grants.len(), 1, "one for the user handed over: {grants:?}");
    let mine =
        grants.iter().find(|g| g["GranteePrincipal"] == format!("arn:aws:iam::{}:user/auto", org.s.account("work")));
    let mine = mine.expect("a grant for the user");
    assert_eq!(mine["Operations"], json!(["Decrypt"]), "{mine}");
    assert_eq!(mine["Constraints"]["EncryptionContextSubset"]["SecretARN"], json!(arn), "this secret only: {mine}");
    let value = read_secret_as(&org, &old, &user_secret, &arn).unwrap();
    assert_eq!(text(&value["UserName"]), "auto");
}
