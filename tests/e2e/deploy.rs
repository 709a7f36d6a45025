//! The deployment kit (deploy/): every template passes cfn-lint and grants exactly the README's permission line
//! (tests/deploy/check_deploy.py), and every AWS call a full scan makes is one the kit grants.

use std::collections::BTreeSet;
use std::process::{Command, Output};

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
    let edited = readme.replacen("`iam:ListUserTags`. The last two", "The last two", 1);
    assert_ne!(edited, readme, "the audit role's line is where the test expects it");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("README.md");
    std::fs::write(&path, edited).unwrap();
    let out = check_deploy(Some(&path));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("only in the template ['iam:ListUserTags']"));
}

/// The actions a template's policies list (`- service:Action` lines; trust policies use `Action: sts:AssumeRole`).
fn granted(template: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_root().join("deploy").join(template)).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter(|a| {
            a.split_once(':').is_some_and(|(s, n)| {
                s.chars().all(|c| c.is_ascii_lowercase()) && !n.is_empty() && n.chars().all(|c| c.is_ascii_alphabetic())
            })
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_call_a_full_scan_makes_is_granted_by_the_kit() {
    let emu = Emulator::start();
    let seeded = emu.seed(crate::org_spec());
    let run = emu.keyaudit(&["scan", "--as-of", AS_OF, "--key-ids", "all", "--owner-tags", "owner,team"]);
    assert!(run.code == 1, "{}", run.stderr);
    let caller = granted("caller-policy.yaml");
    let audit = granted("audit-role.yaml");
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
    for call in ["iam:GenerateCredentialReport", "iam:GetCredentialReport", "iam:ListAccessKeys", "sts:AssumeRole"] {
        assert!(seen.contains(call), "{call} was made: {seen:?}");
    }
    let _ = seeded;
}
