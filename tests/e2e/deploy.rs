//! The deployment kit (deploy/): every template passes cfn-lint and grants exactly the README's permission line,
//! the workflows pass zizmor with every action pinned (tests/deploy/check_deploy.py), every AWS call a full scan
//! makes is one the kit grants, and under moto's IAM enforcement each granted action is needed.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::harness::{AS_OF, Emulator, MANAGEMENT, python, repo_root};

fn check_deploy(readme: Option<&std::path::Path>) -> Output {
    let mut command = Command::new(python());
    command.arg(repo_root().join("tests/deploy/check_deploy.py"));
    if let Some(readme) = readme {
        command.arg("--readme").arg(readme);
    }
    command.output().expect("run check_deploy.py")
}

#[test]
fn every_template_passes_cfn_lint_and_grants_exactly_the_readmes_permission_line() {
    let out = check_deploy(None);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The comparison is real: a README that forgets an action the audit role grants is refused.
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let edited =
        readme.replacen("`iam:ListUserTags`, and with `--push-securityhub`", "and with `--push-securityhub`", 1);
    assert_ne!(edited, readme, "the audit role's line is where the test expects it");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("README.md");
    std::fs::write(&path, edited).unwrap();
    let out = check_deploy(Some(&path));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("only in the template ['iam:ListUserTags']"));

    // And the workflow check is real: the weekly workflow with an action by tag instead of commit is refused.
    let flow = std::fs::read_to_string(repo_root().join("deploy/github-actions/keyaudit.yml")).unwrap();
    let unpinned = flow.replace("actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1", "actions/checkout@v7");
    assert_ne!(unpinned, flow);
    let path = dir.path().join("keyaudit.yml");
    std::fs::write(&path, unpinned).unwrap();
    let out = Command::new(python())
        .arg(repo_root().join("tests/deploy/check_deploy.py"))
        .arg("--workflows")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("actions/checkout@v7 is not pinned to a full commit SHA") && text.contains("zizmor:"),
        "{text}"
    );
}

/// The actions each template's policies grant (`check_deploy.py --granted`: the same reading the README check uses).
fn granted() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(python())
        .arg(repo_root().join("tests/deploy/check_deploy.py"))
        .arg("--granted")
        .output()
        .expect("run check_deploy.py --granted");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_call_a_full_scan_makes_is_granted_by_the_kit() {
    let emu = Emulator::start();
    emu.seed(crate::org_spec());
    let run = emu.keyaudit(&["scan", "--as-of", AS_OF, "--key-ids", "all", "--owner-tags", "owner,team"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // And a push to Security Hub that has a workflow to update (a finding excepted since the first push).
    let push = ["scan", "--as-of", AS_OF, "--push-securityhub", "-q"];
    assert_eq!(emu.command(&push).status.code(), Some(1));
    let dir = tempfile::tempdir().unwrap();
    let exceptions = dir.path().join("exceptions.toml");
    std::fs::write(
        &exceptions,
        "[[suppression]]\nuser_arn = \"arn:aws:iam::*:user/*\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-31\n",
    )
    .unwrap();
    let out = emu.command(&[&push[..], &["--suppressions", exceptions.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut kit = granted();
    let (caller, audit) = (kit.remove("caller-policy.yaml").unwrap(), kit.remove("audit-role.yaml").unwrap());
    assert!(caller.contains("organizations:ListAccounts") && audit.contains("iam:GetCredentialReport"));
    let mut seen = BTreeSet::new();
    for (service, action, account) in emu.requests() {
        let call = format!("{service}:{action}");
        if call == "sts:GetCallerIdentity" {
            continue; // needs no permission
        }
        // AssumeRole is the caller's call (the log files it under the role's account).
        let (policy, name) = if account == MANAGEMENT || call == "sts:AssumeRole" {
            (&caller, "deploy/caller-policy.yaml")
        } else {
            (&audit, "deploy/audit-role.yaml")
        };
        assert!(policy.contains(&call), "{call} in account {account} is not granted by {name}");
        seen.insert(call);
    }
    for call in [
        "iam:GenerateCredentialReport",
        "iam:GetCredentialReport",
        "iam:ListAccessKeys",
        "sts:AssumeRole",
        "securityhub:BatchImportFindings",
        "securityhub:GetFindings",
        "securityhub:BatchUpdateFindings",
    ] {
        assert!(seen.contains(call), "{call} was made: {seen:?}");
    }
}

/// An organization whose audit roles and caller policy are the kit's, installed in the emulator by
/// tests/deploy/enforce.py, with moto's IAM policy enforcement turned on for the scan.
struct Enforced {
    emu: Emulator,
    seeded: crate::harness::Seeded,
    key_id: String,
    secret: String,
    members: String,
}

const EXTERNAL_ID: &str = "keyaudit-e2e-external-id";

impl Enforced {
    fn new() -> Self {
        let emu = Emulator::start();
        let seeded = emu.seed(serde_json::json!({
            "management": {"users": [
                {"name": "keyaudit-runner", "keys": [{"age_days": 5, "return_secret": true, "last_used_days": 0}]},
                {"name": "admin", "keys": [{"age_days": 200, "last_used_days": 1}]}]},
            "accounts": [
                {"name": "alpha", "users": [
                    {"name": "ci", "tags": {"owner": "ci-team"}, "keys": [{"age_days": 120, "last_used_days": 2}]},
                    {"name": "bob", "keys": [{"age_days": 10, "last_used_days": 1}]}]},
                {"name": "beta", "users": [
                    {"name": "etl", "tags": {"owner": "data", "keyaudit:rotation": "auto"},
                     "keys": [{"age_days": 300, "last_used_days": 1}]}]}
            ]
        }));
        let key_id = seeded.key(MANAGEMENT, "keyaudit-runner", 0);
        let secret = seeded.0["secrets"][&key_id].as_str().unwrap().to_owned();
        let members = format!("{},{}", seeded.account("alpha"), seeded.account("beta"));
        Self { emu, seeded, key_id, secret, members }
    }

    fn enforce(&self, args: &[&str]) {
        let out = Command::new(python())
            .arg(repo_root().join("tests/deploy/enforce.py"))
            .args(["--endpoint", &self.emu.url])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "enforce.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Installs the kit (without `omit` in account `omit_in`), turns enforcement on, runs keyaudit `command` with
    /// the runner's credentials and the kit's role and ExternalId, turns enforcement off; returns the exit code,
    /// the JSON it wrote and stderr.
    fn run(&self, command: &str, omit: Option<(&str, &str)>) -> (i32, serde_json::Value, String) {
        self.run_with(command, omit, &[])
    }

    /// [`Enforced::run`] with `extra` arguments.
    fn run_with(&self, command: &str, omit: Option<(&str, &str)>, extra: &[&str]) -> (i32, serde_json::Value, String) {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        let spec = format!("json={}", report.display());
        let mut args = vec![command, "--role-name", "KeyauditAudit", "--external-id", EXTERNAL_ID, "-o", &spec];
        if command == "scan" {
            args.extend(["--as-of", AS_OF, "--key-ids", "all", "--max-attempts", "1"]);
        }
        args.extend_from_slice(extra);
        let out = self.runner(&args, omit.map(|(action, account)| (action, account, "audit")));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = std::fs::read_to_string(&report).map(|t| serde_json::from_str(&t).unwrap()).unwrap_or_default();
        (out.status.code().unwrap(), json, stderr)
    }

    /// keyaudit `args` as the runner, with the kit installed (without `omit`: (action, account, `audit` or
    /// `remediation`)) and moto's IAM enforcement on for the run.
    fn runner(&self, args: &[&str], omit: Option<(&str, &str, &str)>) -> Output {
        self.enforce(&["off"]);
        let runner = format!("arn:aws:iam::{MANAGEMENT}:user/keyaudit-runner");
        let mut install =
            vec!["install", "--runner-arn", &runner, "--external-id", EXTERNAL_ID, "--accounts", &self.members];
        if let Some((action, account, role)) = omit {
            install.extend(["--omit", action, "--omit-in", account, "--omit-from", role]);
        }
        self.enforce(&install);
        self.enforce(&["on"]);
        let out = self
            .emu
            .command_with(args, &[("AWS_ACCESS_KEY_ID", &self.key_id), ("AWS_SECRET_ACCESS_KEY", &self.secret)]);
        self.enforce(&["off"]);
        for stream in [&out.stdout, &out.stderr] {
            assert!(!String::from_utf8_lossy(stream).contains(&self.secret), "a secret reached the output");
        }
        out
    }

    fn scan(&self, omit: Option<(&str, &str)>) -> (i32, serde_json::Value, String) {
        self.run("scan", omit)
    }
}

#[test]
fn under_moto_iam_enforcement_preflight_finds_exactly_the_missing_action() {
    let org = Enforced::new();
    let (code, report, stderr) = org.run("preflight", None);
    assert_eq!(code, 0, "the kit as written is ready: {stderr} {report}");
    let beta = org.seeded.account("beta");
    for action in ["iam:GetCredentialReport", "iam:ListAccessKeys", "iam:ListUserTags"] {
        let (code, report, stderr) = org.run("preflight", Some((action, &beta)));
        assert_eq!(code, 3, "{action}: {stderr}");
        for a in report["accounts"].as_array().unwrap() {
            let denied = crate::preflight::denied_actions(a);
            if a["account_id"] == beta.as_str() {
                assert_eq!((a["status"].as_str(), denied), (Some("missing_permissions"), vec![action]), "{a}");
            } else {
                assert_eq!(a["status"], "ready", "{a}");
            }
        }
    }
    // With --push-securityhub, the Security Hub actions it can probe.
    for action in ["securityhub:GetFindings", "securityhub:BatchUpdateFindings"] {
        let (code, report, stderr) = org.run_with("preflight", Some((action, &beta)), &["--push-securityhub"]);
        assert_eq!(code, 3, "{action}: {stderr}");
        for a in report["accounts"].as_array().unwrap() {
            let denied = crate::preflight::denied_actions(a);
            let want = if a["account_id"] == beta.as_str() { vec![action] } else { vec![] };
            assert_eq!(denied, want, "{a}");
        }
    }
    let (code, report, _) = org.run("preflight", Some(("sts:AssumeRole", MANAGEMENT)));
    assert_eq!(code, 3);
    let denied = report["accounts"].as_array().unwrap().iter().filter(|a| a["status"] == "assume_role_denied").count();
    assert_eq!(denied, 2, "both member accounts: {report}");
}

#[test]
fn under_moto_iam_enforcement_the_kits_policies_are_complete_and_each_audit_role_action_is_needed() {
    let org = Enforced::new();
    let (code, report, stderr) = org.scan(None);
    assert_eq!(code, 1, "findings, and every account assessed: {stderr}");
    let failed = &report["summary"]["accounts"]["failed"];
    assert_eq!(failed, 0, "no AccessDenied with the kit's policies: {}", report["accounts"]);
    let owners: Vec<&str> = report["findings"].as_array().unwrap().iter().filter_map(|f| f["owner"].as_str()).collect();
    assert!(owners.contains(&"ci-team") && owners.contains(&"data"), "ListUserTags was allowed: {owners:?}");

    // Each action the audit role grants and a scan uses, left out in one account: that account, and only it,
    // fails with access_denied naming the action.
    let beta = org.seeded.account("beta");
    for action in ["iam:GenerateCredentialReport", "iam:GetCredentialReport", "iam:ListAccessKeys", "iam:ListUserTags"]
    {
        let (code, report, stderr) = org.scan(Some((action, &beta)));
        assert_eq!(code, 3, "{action}: {stderr}");
        let accounts = report["accounts"].as_array().unwrap();
        let failed: Vec<&serde_json::Value> = accounts.iter().filter(|a| a["status"] == "failed").collect();
        assert_eq!(failed.len(), 1, "{action}: {failed:?}");
        assert_eq!(failed[0]["account_id"], beta.as_str());
        assert_eq!(failed[0]["reason_code"], "access_denied", "{action}: {}", failed[0]);
        assert_eq!(failed[0]["reason_action"], action, "{}", failed[0]);
    }
}

#[test]
fn under_moto_iam_enforcement_the_kit_grants_the_security_hub_push_and_each_of_its_actions_is_needed() {
    let org = Enforced::new();
    let push = |omit: Option<(&str, &str)>| org.run_with("scan", omit, &["--push-securityhub"]);
    let (code, _, stderr) = push(None);
    assert_eq!(code, 1, "findings, every import and update allowed: {stderr}");
    assert!(!stderr.contains("Security Hub:"), "{stderr}");

    // etl's stale key is deactivated: its finding must move to RESOLVED, which needs the read and the update.
    let beta = org.seeded.account("beta");
    org.emu.change_key(&beta, "etl", "deactivate", Some(&org.seeded.key(&beta, "etl", 0)));
    for (action, step) in [
        ("securityhub:GetFindings", "imported, but their workflows not brought up to date"),
        ("securityhub:BatchUpdateFindings", "not moved to RESOLVED"),
        ("securityhub:BatchImportFindings", "not imported"),
    ] {
        let (code, _, stderr) = push(Some((action, &beta)));
        assert_eq!(code, 3, "{action}: {stderr}");
        let named: Vec<&str> =
            stderr.lines().filter(|l| l.contains("Security Hub: ") && l.contains(" failed: ")).collect();
        assert_eq!(named.len(), 1, "{action}: only beta is named: {stderr}");
        assert!(
            named[0].contains(&format!("Security Hub: {beta}: ")) && named[0].contains(step),
            "{action}: {}",
            named[0]
        );
        assert!(named[0].contains(&format!("{action} failed: AccessDenied")), "{action}: {}", named[0]);
    }
    let (code, _, stderr) = push(Some(("securityhub:BatchImportFindings", MANAGEMENT)));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains(&format!("Security Hub: {MANAGEMENT}: all")), "the caller's own account: {stderr}");
    let (code, _, stderr) = push(None);
    assert_eq!(code, 1, "the kit as written: {stderr}");
    assert!(!stderr.contains("Security Hub:"), "{stderr}");
}

#[test]
fn under_moto_iam_enforcement_each_action_of_the_callers_policy_is_needed() {
    let org = Enforced::new();
    // Its own account's report, AssumeRole, and the organization walk.
    let (code, report, stderr) = org.scan(Some(("iam:GetCredentialReport", MANAGEMENT)));
    assert_eq!(code, 3, "{stderr}");
    let management = report["accounts"].as_array().unwrap().iter().find(|a| a["account_id"] == MANAGEMENT).unwrap();
    assert_eq!(
        (&management["reason_code"], &management["reason_action"]),
        (&json!("access_denied"), &json!("iam:GetCredentialReport"))
    );
    let (code, report, stderr) = org.scan(Some(("sts:AssumeRole", MANAGEMENT)));
    assert_eq!(code, 3, "{stderr}");
    let denied: Vec<&Value> =
        report["accounts"].as_array().unwrap().iter().filter(|a| a["status"] == "failed").collect();
    assert_eq!(denied.len(), 2, "every member account: {denied:?}");
    assert!(
        denied.iter().all(|a| a["reason_code"] == "assume_role_denied" && a["reason_action"] == "sts:AssumeRole"),
        "{denied:?}"
    );
    for action in ["organizations:DescribeOrganization", "organizations:ListRoots", "organizations:ListAccounts"] {
        let (code, _, stderr) = org.scan(Some((action, MANAGEMENT)));
        assert_eq!(code, 3, "{action}: {stderr}");
        assert!(stderr.contains(action), "{action} named: {stderr}");
    }
}

#[test]
fn under_moto_iam_enforcement_the_remediation_role_grants_rotations_and_each_write_is_needed() {
    let org = Enforced::new();
    let beta = org.seeded.account("beta");
    let dir = tempfile::tempdir().unwrap();
    let stdout = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let keys = || org.emu.control("GET", "keys", &json!({"account_id": beta}))["etl"].as_array().unwrap().len();
    let live_secrets = || {
        let all = org.emu.control("GET", "secrets", &json!({"account_id": beta}));
        all.as_array().unwrap().iter().filter(|s| s["deleted"] == false && s["values"] != 0).count()
    };
    let plan = |name: &str| {
        let path = dir.path().join(name).display().to_string();
        let args =
            ["plan", "-o", &path, "--role-name", "KeyauditAudit", "--external-id", EXTERNAL_ID, "--max-attempts", "1"];
        let out = org.runner(&args, None);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let plan: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let creates: Vec<&Value> =
            plan["changes"].as_array().unwrap().iter().filter(|c| c["action"] == "create_key").collect();
        assert_eq!(creates.len(), 1, "etl opted in: {plan}");
        path
    };
    let change = |args: &[&str], omit: Option<&str>| {
        let mut all = args.to_vec();
        all.extend(["--yes", "--external-id", EXTERNAL_ID]);
        org.runner(&all, omit.map(|action| (action, beta.as_str(), "remediation")))
    };

    // The kit as written: the rotation starts (the plan under enforcement too: its look-ups use the audit role), and
    // its undo deactivates the key and schedules the secret's deletion.
    let p = plan("start.json");
    let out = change(&["apply", &p, "--allow-create-keys"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!((keys(), live_secrets()), (2, 1));
    let journal = dir.path().join("start.journal.jsonl").display().to_string();
    let out = change(&["undo", &journal], Some("iam:UpdateAccessKey"));
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("iam:UpdateAccessKey AccessDenied"), "{}", stdout(&out));
    let out = change(&["undo", &journal], None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(live_secrets(), 0);
    let listed = org.emu.control("GET", "keys", &json!({"account_id": beta}))["etl"].clone();
    let created = listed.as_array().unwrap().iter().find(|k| k["status"] == "Inactive").expect("deactivated");
    // An administrator deletes it, freeing the slot for the next start.
    org.emu.change_key(&beta, "etl", "delete", created["access_key_id"].as_str());
    assert_eq!(keys(), 1);

    // Each write of a rotation's start, left out in beta: the step fails naming it, and nothing is left behind (a
    // created key whose secret could not be stored is deleted again).
    for action in [
        "iam:CreateAccessKey",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutResourcePolicy",
        "secretsmanager:PutSecretValue",
    ] {
        let p = plan(&format!("{}.json", action.replace(':', "-")));
        let out = change(&["apply", &p, "--allow-create-keys"], Some(action));
        assert_eq!(out.status.code(), Some(3), "{action}: {}", stdout(&out));
        assert!(stdout(&out).contains(&format!("{action} AccessDenied")), "{action}: {}", stdout(&out));
        assert_eq!((keys(), live_secrets()), (1, 0), "{action}: nothing left behind");
    }
}

#[test]
fn keyaudit_version_names_the_commit_it_was_built_from() {
    let emu = Emulator::start();
    let out = emu.command(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(repo_root()).output().unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(!head.is_empty(), "the tests run in a git checkout");
    assert!(text.starts_with(&format!("keyaudit {} (commit {head}", env!("CARGO_PKG_VERSION"))), "{text}");
}
