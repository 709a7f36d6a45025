//! `keyaudit preflight`: checks, without generating a credential report or changing anything, what a scan needs —
//! the caller's identity, Organizations access, and per selected account: AssumeRole (role, path, ExternalId) and
//! each IAM action (an answer other than AccessDenied proves it) — and says what to deploy where when something is
//! missing. A table (and JSON with `-o json[=PATH]`); exit 0 when every account is ready, 3 otherwise.

use anyhow::{Context, anyhow};
use futures::StreamExt;
use keyaudit_core::ids::AccountId;
use keyaudit_core::report::{AccessMethod, Account, AccountState, FailureCode, Scope};
use keyaudit_org_discovery::{OrganizationsApi, SdkOrganizations, discover};
use keyaudit_scanner::{Probe, ProbeOutcome, probe_permissions};
use serde::Serialize;

use crate::aws::{Connector, Session};
use crate::output::{Format, OutputSpec, columns, write_spec_file, write_stdout};
use crate::settings::Settings;
use crate::{ExitStatus, Failure};

#[derive(Serialize)]
struct PreflightReport {
    schema_version: u32,
    tool: &'static str,
    version: &'static str,
    caller_arn: String,
    caller_account_id: String,
    /// `organization` or `standalone_account`.
    scope: &'static str,
    organization_id: Option<String>,
    management_account_id: Option<String>,
    ready: bool,
    accounts: Vec<AccountCheck>,
}

#[derive(Serialize)]
struct AccountCheck {
    account_id: String,
    name: Option<String>,
    ou_path: Option<String>,
    state: String,
    /// `ready`, `missing_permissions`, `assume_role_denied`, `error` or `skipped` (not ACTIVE: a scan skips it too).
    status: &'static str,
    /// `caller_credentials` or the role assumed.
    access: String,
    reason: Option<String>,
    checks: Vec<ActionCheck>,
    /// What to deploy where, when the account is not ready.
    fix: Option<String>,
}

#[derive(Serialize)]
struct ActionCheck {
    action: &'static str,
    /// `allowed`, `denied`, `unverified` or `error`.
    result: &'static str,
    detail: String,
}

fn action_check(p: &Probe) -> ActionCheck {
    let (result, detail) = match &p.outcome {
        ProbeOutcome::Allowed(d) => ("allowed", d.clone()),
        ProbeOutcome::Denied(d) => ("denied", d.clone()),
        ProbeOutcome::Unverified(d) => ("unverified", (*d).to_owned()),
        ProbeOutcome::Error(d) => ("error", d.clone()),
    };
    ActionCheck { action: p.action, result, detail }
}

/// Where `--push-securityhub` would import: the probes' configuration (region set), partition and region.
struct HubTarget {
    base: aws_config::SdkConfig,
    partition: String,
    region: String,
}

/// What to deploy where.
fn fix(account: &Account, status: &str, missing: &[&str], caller_arn: &str, management: Option<&AccountId>) -> String {
    let own = matches!(account.access, AccessMethod::CallerCredentials);
    let import =
        if missing.iter().any(|a| a.starts_with("securityhub:")) { " with SecurityHubImport=true" } else { "" };
    match status {
        "assume_role_denied" if management == Some(&account.id) => format!(
            "create the audit role in the management account with deploy/audit-role.yaml (service-managed StackSets \
             do not deploy there), trusting {caller_arn} with the ExternalId keyaudit is given"
        ),
        "assume_role_denied" => format!(
            "deploy the audit role: the StackSet deploy/audit-role-stackset.yaml to {} (or deploy/audit-role.yaml in \
             this account), trusting {caller_arn}; check --role-name, --role-path and --external-id against it",
            account.ou_path.as_deref().map_or_else(|| "its OU".to_owned(), |p| format!("the OU {p}"))
        ),
        "missing_permissions" if own => {
            format!("the caller lacks {}: attach deploy/caller-policy.yaml{import} to {caller_arn}", missing.join(", "))
        }
        "missing_permissions" => format!(
            "the audit role lacks {}: update it from deploy/audit-role.yaml{import} (or update the StackSet \
             deploy/audit-role-stackset.yaml)",
            missing.join(", ")
        ),
        _ => "run again; if it persists, run with -vv to see the AWS answers".to_owned(),
    }
}

async fn check_account(
    connector: &Connector,
    owner_tags: bool,
    hub: Option<&HubTarget>,
    account: Account,
    caller_arn: &str,
    management: Option<&AccountId>,
) -> AccountCheck {
    let access = match &account.access {
        AccessMethod::CallerCredentials => "caller_credentials".to_owned(),
        AccessMethod::AssumeRole { role_arn } => role_arn.clone(),
    };
    let mut out = AccountCheck {
        account_id: account.id.to_string(),
        name: account.name.clone(),
        ou_path: account.ou_path.clone(),
        state: account.state.as_str().to_owned(),
        status: "skipped",
        access,
        reason: None,
        checks: Vec::new(),
        fix: None,
    };
    let mut missing: Vec<&str> = Vec::new();
    if account.state.is_known_inactive() {
        out.reason = Some(format!("account state is {}; a scan skips it too", account.state.as_str()));
        return out;
    } else if account.state != AccountState::Active {
        out.status = "error";
        out.reason = Some(format!("account state {} is unknown to keyaudit; a scan fails it", account.state.as_str()));
    } else {
        // One session for every probe: the IAM ones and Security Hub's share the audit role's AssumeRole.
        match connector.session(&account).await {
            Err(failure) => {
                out.status =
                    if failure.reason.code == FailureCode::AssumeRoleDenied { "assume_role_denied" } else { "error" };
                out.reason = Some(failure.reason.to_string());
            }
            Ok(session) => {
                let mut probes = probe_permissions(&connector.iam(&account, &session), owner_tags).await;
                if let Some(hub) = hub {
                    let config = session.config(hub.base.clone());
                    let product = crate::securityhub::product_arn(&hub.partition, &hub.region, account.id.as_str());
                    let api = crate::securityhub::SdkHub::new(&config, account.id.as_str(), product);
                    probes.extend(crate::securityhub::probe(&api).await);
                }
                let denied = |p: &&Probe| matches!(p.outcome, ProbeOutcome::Denied(_));
                missing = probes.iter().filter(denied).map(|p| p.action).collect();
                out.status = if !missing.is_empty() {
                    out.reason = Some(format!("denied: {}", missing.join(", ")));
                    "missing_permissions"
                } else if probes.iter().any(|p| matches!(p.outcome, ProbeOutcome::Error(_))) {
                    "error"
                } else {
                    "ready"
                };
                out.checks = probes.iter().map(action_check).collect();
            }
        }
    }
    if out.status != "ready" {
        let hub_error = out.checks.iter().find(|c| c.action.starts_with("securityhub:") && c.result == "error");
        out.fix = Some(match (hub_error, hub) {
            (Some(check), Some(hub)) if out.status == "error" => format!(
                "{}: enable Security Hub in {} in this account (--push-securityhub imports each account's findings \
                 there), or check --securityhub-region",
                check.action, hub.region
            ),
            _ => fix(&account, out.status, &missing, caller_arn, management),
        });
    }
    out
}

pub(crate) async fn run(settings: Settings) -> Result<ExitStatus, Failure> {
    let outputs: Vec<&OutputSpec> = settings.outputs.iter().collect();
    if outputs.iter().any(|s| s.is_s3()) {
        return Err(Failure::usage(anyhow!("--output s3://…: preflight writes to stdout or local files")));
    }
    if let Some(other) = outputs.iter().find(|s| !matches!(s.format, Format::Table | Format::Json)) {
        return Err(Failure::usage(anyhow!(
            "--output: preflight writes a table or JSON, not {:?}",
            format!("{:?}", other.format).to_lowercase()
        )));
    }
    crate::output::prepare(&settings.outputs).map_err(Failure::usage)?;
    let started_at = crate::scan::now();
    let Session { base, sts_config, org_config, caller, region } = Session::open(&settings).await?;
    let hub = settings.push_securityhub.as_ref().map(|(hub_region, rps)| {
        let region = hub_region.clone().unwrap_or(region);
        let (limited, _) = crate::aws::limited(&base, keyaudit_scanner::Pace::even(*rps), settings.throttle_patience);
        let base = limited.to_builder().region(aws_config::Region::new(region.clone())).build();
        HubTarget { base, partition: caller.partition.to_string(), region }
    });
    let orgs = SdkOrganizations::new(&org_config);
    let org_denied = |e: keyaudit_org_discovery::DiscoveryError| {
        Failure::incomplete(anyhow::Error::new(e).context(format!(
            "Organizations access: not ready; attach deploy/caller-policy.yaml to {} and run keyaudit from the \
             management or a delegated-admin account",
            caller.arn
        )))
    };
    let scope = match orgs.describe_organization().await.map_err(org_denied)? {
        Some(org) => Scope::Organization { id: org.id, management_account_id: org.management_account_id },
        None => Scope::StandaloneAccount,
    };
    let found = std::sync::Mutex::new(Vec::new());
    let keep = |account| found.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(account);
    discover(&orgs, &caller, &settings.filter, &settings.role, settings.org_paces.listing_rates(), &keep)
        .await
        .map_err(org_denied)?;
    let management = scope.management_account_id().cloned();
    let connector = Connector::new(&settings, base, &sts_config, management.clone());
    let found = found.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut accounts: Vec<AccountCheck> = futures::stream::iter(found)
        .map(|account| {
            let owner_tags = !settings.scan.owner_tags.is_empty();
            check_account(&connector, owner_tags, hub.as_ref(), account, &caller.arn, management.as_ref())
        })
        .buffer_unordered(settings.scan.concurrency.max(1))
        .collect()
        .await;
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let ready = accounts.iter().all(|a| matches!(a.status, "ready" | "skipped"));
    let (organization_id, management_account_id) =
        (scope.organization_id().map(str::to_owned), scope.management_account_id().map(|m| m.to_string()));
    let report = PreflightReport {
        schema_version: 1,
        tool: "keyaudit",
        version: env!("CARGO_PKG_VERSION"),
        caller_arn: caller.arn.clone(),
        caller_account_id: caller.account_id.to_string(),
        scope: if organization_id.is_some() { "organization" } else { "standalone_account" },
        organization_id,
        management_account_id,
        ready,
        accounts,
    };
    for spec in outputs {
        let bytes = match spec.format {
            Format::Json => {
                let mut b =
                    serde_json::to_vec_pretty(&report).context("preflight JSON").map_err(Failure::incomplete)?;
                b.push(b'\n');
                b
            }
            _ => table(&report).into_bytes(),
        };
        match spec.path(started_at, false) {
            None => write_stdout(&bytes).map_err(|e| Failure::incomplete(anyhow!("writing to stdout: {e}")))?,
            Some(_) => {
                let write = |out: &mut dyn std::io::Write| Ok(out.write_all(&bytes)?);
                write_spec_file(spec, (started_at, false), write).map_err(Failure::incomplete)?;
            }
        }
    }
    Ok(if ready { ExitStatus::Clean } else { ExitStatus::Incomplete })
}

fn table(r: &PreflightReport) -> String {
    let mut out = format!(
        "keyaudit preflight: caller {} ({}); {}\n",
        r.caller_arn,
        r.caller_account_id,
        match (&r.organization_id, &r.management_account_id) {
            (Some(id), Some(m)) => format!("organization {id} (management account {m}): Organizations access ok"),
            _ => "not in an AWS Organization: only the caller's account".to_owned(),
        }
    );
    let rows: Vec<Vec<String>> = r
        .accounts
        .iter()
        .map(|a| {
            vec![
                a.account_id.clone(),
                a.name.clone().unwrap_or_else(|| "-".into()),
                a.ou_path.clone().unwrap_or_else(|| "-".into()),
                a.status.to_owned(),
                match (&a.reason, &a.fix) {
                    (Some(reason), Some(fix)) if a.status == "error" => format!("{reason}; {fix}"),
                    (reason, fix) => fix.clone().or_else(|| reason.clone()).unwrap_or_default(),
                },
            ]
        })
        .collect();
    columns(&mut out, &["ACCOUNT", "NAME", "OU PATH", "STATUS", "FIX"], &rows);
    let unchecked = r
        .accounts
        .iter()
        .flat_map(|a| &a.checks)
        .find(|c| c.result == "unverified" && c.action.starts_with("securityhub:"));
    if let Some(check) = unchecked {
        out.push_str(&format!("{}: {}\n", check.action, check.detail));
    }
    let not_ready = r.accounts.iter().filter(|a| !matches!(a.status, "ready" | "skipped")).count();
    out.push_str(&if r.ready {
        format!("READY: every selected account can be scanned ({} account(s))\n", r.accounts.len())
    } else {
        format!("NOT READY: {not_ready} of {} account(s) need the fix above\n", r.accounts.len())
    });
    out
}
