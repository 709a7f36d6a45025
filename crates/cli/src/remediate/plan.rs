//! `keyaudit plan`: a reviewed list of key changes, from a fresh scan or a saved report (deactivations), or from
//! keyaudit's journals (deletions after a waiting period).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use jiff::{SignedDuration, Timestamp};
use keyaudit_core::eval::Verdict;
use keyaudit_core::ids::{AccessKeyId, AccountId};
use keyaudit_core::remediation::{
    Candidate, ChangeKind, Deactivated, Excluded, Exclusion, KeyRef, PlanPolicy, PlannedChange, plan_deactivations,
    plan_deletions,
};
use keyaudit_core::suppress::{Subject, Suppressions};
use keyaudit_scanner::remediate::KeyAdmin;
use keyaudit_scanner::{AccountConnector, IamApi};
use serde_json::Value;

use super::{Change, ExcludedKey, Expect, PlanFile, PlanSettings, PlanSummary, Source, Why, read_journal};
use crate::args::PlanArgs;
use crate::aws::Reach;
use crate::scan::now;
use crate::settings::Settings;
use crate::{ExitStatus, Failure};

/// A plan made from a report older than this is refused: the keys may have changed since.
const MAX_REPORT_AGE: SignedDuration = SignedDuration::from_hours(24);
/// The default `--unused-days` of a plan: a key used 45 days ago may belong to a monthly job.
pub(crate) const DEFAULT_UNUSED_DAYS: u32 = 90;

pub(crate) async fn run(args: &PlanArgs, quiet: bool) -> Result<ExitStatus, Failure> {
    if let Some(path) = &args.show {
        let plan = PlanFile::load(path).map_err(Failure::usage)?;
        return crate::print(&plan.table());
    }
    let target = match args.scan.outputs.as_slice() {
        [one] if !one.is_empty() && one != "-" => std::path::PathBuf::from(one),
        _ => {
            return Err(Failure::usage(anyhow!(
                "keyaudit plan: give the plan file as -o FILE (e.g. -o plan.json); --show FILE prints one"
            )));
        }
    };
    let mut scan_args = args.scan.clone();
    scan_args.outputs.clear();
    let unused_days = *scan_args.unused_days.get_or_insert(DEFAULT_UNUSED_DAYS);
    let settings = Settings::resolve(&scan_args).map_err(Failure::usage)?;
    if settings.push_securityhub.is_some() {
        return Err(Failure::usage(anyhow!(
            "--push-securityhub: a plan writes no findings; push them with `keyaudit scan --push-securityhub`"
        )));
    }
    let protect_accounts: Vec<AccountId> = args
        .protect_accounts
        .iter()
        .map(|a| AccountId::parse(a.trim()).map_err(|e| anyhow!("--protect-account: {e}")))
        .collect::<Result<_>>()
        .map_err(Failure::usage)?;
    let protect_ous: Vec<String> = args
        .protect_ous
        .iter()
        .map(|ou| {
            if ou.starts_with('/') {
                Ok(ou.trim_end_matches('/').to_owned())
            } else {
                Err(anyhow!("--protect-ou {ou:?}: expected an OU path such as /Root/Prod (its subtree is included)"))
            }
        })
        .collect::<Result<_>>()
        .map_err(Failure::usage)?;
    let created_at = now();
    let valid_for = crate::settings::parse_duration("--valid-for", args.valid_for.as_deref().unwrap_or("24h"))
        .map_err(Failure::usage)?;
    let expires_at = created_at + SignedDuration::try_from(valid_for).unwrap_or(SignedDuration::from_hours(24));

    let (base, _) = crate::aws::base_config(&settings.aws()).await;
    let caller_key_id = crate::aws::caller_key_id(&base).await;

    let (source, planned, excluded, incomplete, delete_after) = match &args.delete_deactivated_after {
        Some(after) => {
            let Some(dir) = &args.journal_dir else {
                return Err(Failure::usage(anyhow!(
                    "--delete-deactivated-after: needs --journal-dir DIR (the journals of earlier `keyaudit apply` runs)"
                )));
            };
            let wait = crate::settings::parse_duration("--delete-deactivated-after", after).map_err(Failure::usage)?;
            let days = u32::try_from(wait.as_secs() / 86_400).unwrap_or(u32::MAX);
            let (source, planned, excluded) = deletions(&settings, &base, dir, created_at, wait).await?;
            (source, planned, excluded, false, Some(days))
        }
        None => {
            let (report, from_report) = match &args.from_report {
                Some(path) => {
                    (saved_report(path, created_at).map_err(Failure::usage)?, Some(path.display().to_string()))
                }
                None => {
                    let report = crate::scan::collect(&settings, quiet).await?;
                    let value: Value =
                        serde_json::from_slice(&crate::output::json_bytes(&report).map_err(Failure::incomplete)?)
                            .map_err(|e| Failure::incomplete(e.into()))?;
                    (value, None)
                }
            };
            let run = &report["run"];
            let caller_arn = run["caller_arn"].as_str().unwrap_or_default().to_owned();
            let policy = PlanPolicy {
                as_of: run["as_of"].as_str().and_then(|t| t.parse().ok()).unwrap_or(created_at),
                unused_days,
                protect_accounts: protect_accounts.clone(),
                protect_ous: protect_ous.clone(),
                caller_user_arn: caller_arn.contains(":user/").then(|| caller_arn.clone()),
                caller_key_id: caller_key_id.clone(),
            };
            // A saved report carries the exceptions of its own run; the plan's --suppressions apply as well.
            let exceptions = settings.suppressions.as_ref().map(|(_, s)| s);
            let (planned, excluded) = plan_deactivations(&candidates(&report, exceptions, policy.as_of), &policy);
            let incomplete = report["summary"]["accounts"]["failed"].as_u64().unwrap_or(0) > 0;
            let source = Source {
                as_of: policy.as_of,
                organization_id: run["organization_id"].as_str().map(str::to_owned),
                caller_arn,
                partition: run["partition"].as_str().unwrap_or("aws").to_owned(),
                from_report,
            };
            (source, planned, excluded, incomplete, None)
        }
    };

    let plan = PlanFile {
        kind: super::PLAN_KIND.to_owned(),
        plan_version: super::PLAN_VERSION,
        id: String::new(),
        created_at,
        expires_at,
        source,
        settings: PlanSettings {
            unused_days,
            protect_accounts: protect_accounts.iter().map(|a| a.to_string()).collect(),
            protect_ous,
            delete_deactivated_after_days: delete_after,
        },
        summary: summary(&planned, &excluded),
        changes: planned.iter().enumerate().map(|(i, p)| change(i + 1, p)).collect(),
        excluded: excluded
            .iter()
            .map(|e| ExcludedKey {
                action: e.kind.as_str().to_owned(),
                account_id: e.key.account_id.to_string(),
                user_name: e.key.user_name.clone(),
                access_key_id: e.key.access_key_id.to_string(),
                reason_code: e.why.code().to_owned(),
                reason: e.why.describe(unused_days),
            })
            .collect(),
        checksum: String::new(),
    }
    .seal()
    .map_err(Failure::incomplete)?;
    let bytes = serde_json::to_vec_pretty(&plan).map_err(|e| Failure::incomplete(e.into()))?;
    crate::output::write_file(&target, &bytes).map_err(Failure::usage)?;
    if !quiet {
        crate::print(&plan.table())?;
    }
    tracing::info!(path = %target.display(), changes = plan.summary.changes, "plan written");
    if incomplete {
        tracing::warn!("some accounts could not be assessed: the plan covers only the accounts that were");
        return Ok(ExitStatus::Incomplete);
    }
    Ok(ExitStatus::Clean)
}

fn summary(planned: &[PlannedChange], excluded: &[Excluded]) -> PlanSummary {
    let mut by_reason = BTreeMap::new();
    for e in excluded {
        *by_reason.entry(e.why.code().to_owned()).or_insert(0) += 1;
    }
    PlanSummary {
        changes: planned.len(),
        deactivate: planned.iter().filter(|p| p.kind == ChangeKind::Deactivate).count(),
        delete: planned.iter().filter(|p| p.kind == ChangeKind::Delete).count(),
        accounts: planned.iter().map(|p| &p.key.account_id).collect::<BTreeSet<_>>().len(),
        excluded: by_reason,
    }
}

fn change(n: usize, p: &PlannedChange) -> Change {
    Change {
        n,
        action: p.kind.as_str().to_owned(),
        irreversible: p.kind == ChangeKind::Delete,
        account_id: p.key.account_id.to_string(),
        account_name: p.key.account_name.clone(),
        ou_path: p.key.ou_path.clone(),
        user_name: p.key.user_name.clone(),
        user_arn: p.key.user_arn.clone(),
        access_key_id: p.key.access_key_id.to_string(),
        expect: Expect {
            status: if p.expect_active { "Active" } else { "Inactive" }.to_owned(),
            last_used_at: p.expect_last_used_at,
        },
        why: Why {
            rules: p.rules.clone(),
            verdict: (p.kind == ChangeKind::Deactivate).then(|| Verdict::Fail.as_str().to_owned()),
            usage: p.usage.clone(),
            reason: p.reason.clone(),
        },
    }
}

/// A saved keyaudit JSON report, refused when it is older than 24 hours.
fn saved_report(path: &Path, now: Timestamp) -> Result<Value> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("--from-report {shown}: cannot read ({e})"))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| anyhow!("--from-report {shown}: not JSON ({e})"))?;
    if value["tool"]["name"] != "keyaudit" || value["schema_version"] != crate::output::SCHEMA_VERSION {
        bail!("--from-report {shown}: not a keyaudit JSON report of schema_version {}", crate::output::SCHEMA_VERSION);
    }
    if value["run"]["scope"] == "merged" {
        bail!(
            "--from-report {shown}: a merged report (keyaudit merge) spans several organizations, each changed with \
             its own credentials; plan each organization from its own report"
        );
    }
    let finished: Timestamp = value["run"]["finished_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| anyhow!("--from-report {shown}: no run.finished_at"))?;
    if now.duration_since(finished) > MAX_REPORT_AGE {
        bail!(
            "--from-report {shown}: the report finished at {finished}, more than 24 hours ago; keys may have changed \
             since: scan again (keyaudit plan without --from-report)"
        );
    }
    Ok(value)
}

/// Every key-level finding with a key id, as a plan candidate; suppressed when the report says so or when one
/// of `exceptions` in force at `as_of` matches it.
fn candidates(report: &Value, exceptions: Option<&Suppressions>, as_of: Timestamp) -> Vec<Candidate> {
    let text = |f: &Value, k: &str| f[k].as_str().map(str::to_owned);
    report["findings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            let key = KeyRef {
                account_id: AccountId::parse(f["account_id"].as_str()?).ok()?,
                account_name: text(f, "account_name"),
                ou_path: text(f, "ou_path"),
                user_name: text(f, "user_name")?,
                user_arn: text(f, "user_arn")?,
                access_key_id: AccessKeyId::parse(f["access_key_id"].as_str()?).ok()?,
            };
            let rule_id = text(f, "rule_id")?;
            let subject = Subject {
                fingerprint: f["fingerprint"].as_str().unwrap_or_default(),
                rule_id: &rule_id,
                account_id: &key.account_id,
                ou_path: key.ou_path.as_deref(),
                user_arn: &key.user_arn,
                key_ids: vec![&key.access_key_id],
            };
            let suppressed =
                !f["suppression"].is_null() || exceptions.is_some_and(|e| e.in_force_for(&subject, as_of).is_some());
            Some(Candidate {
                rule_id: rule_id.clone(),
                verdict: Verdict::parse(f["verdict"].as_str()?)?,
                action: text(f, "action").unwrap_or_default(),
                action_reason: text(f, "action_reason"),
                usage: text(f, "usage"),
                key_status: text(f, "key_status")?,
                last_used_at: f["last_used_at"].as_str().and_then(|t| t.parse().ok()),
                suppressed,
                key,
            })
        })
        .collect()
}

/// Deletions: every key a journal in `dir` deactivated, re-checked now with the audit role.
async fn deletions(
    settings: &Settings,
    base: &aws_config::SdkConfig,
    dir: &Path,
    now: Timestamp,
    wait: std::time::Duration,
) -> Result<(Source, Vec<PlannedChange>, Vec<Excluded>), Failure> {
    let mut done: BTreeMap<String, (KeyRef, Timestamp, Option<Timestamp>)> = BTreeMap::new();
    let listing = std::fs::read_dir(dir)
        .map_err(|e| Failure::usage(anyhow!("--journal-dir {}: cannot read ({e})", dir.display())))?;
    let mut entries = Vec::new();
    for file in listing.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
    {
        entries.extend(read_journal(&file).map_err(Failure::usage)?);
    }
    // In time order across every journal: a key re-activated by `undo` (or deleted) after its deactivation is out.
    entries.sort_by_key(|e| e.at);
    for entry in entries.into_iter().filter(|e| e.phase == "done") {
        match entry.operation.as_str() {
            "deactivate" => {
                let key = entry.key().map_err(Failure::usage)?;
                done.insert(entry.access_key_id.clone(), (key, entry.at, entry.last_used_at));
            }
            "reactivate" | "delete" => {
                done.remove(&entry.access_key_id);
            }
            _ => {}
        }
    }
    let reach =
        Reach::new(base, settings.role.clone(), settings.assume_settings(), settings.sts_rps, settings.iam_rps).await?;
    let mut keys = Vec::new();
    let mut unreachable = Vec::new();
    for (key, deactivated_at, last_used_then) in done.into_values() {
        match current_state(&reach, &key).await {
            Ok((inactive_now, last_used_now)) => {
                keys.push(Deactivated { key, deactivated_at, last_used_then, inactive_now, last_used_now });
            }
            Err(reason) => {
                unreachable.push(Excluded { key, kind: ChangeKind::Delete, why: Exclusion::Unverified(reason) })
            }
        }
    }
    keys.sort_by(|a, b| (&a.key.account_id, &a.key.user_name).cmp(&(&b.key.account_id, &b.key.user_name)));
    let (planned, mut excluded) =
        plan_deletions(&keys, now, SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX));
    excluded.extend(unreachable);
    let source = Source {
        as_of: now,
        organization_id: None,
        caller_arn: reach.caller_arn.clone(),
        partition: reach.partition.to_string(),
        from_report: None,
    };
    Ok((source, planned, excluded))
}

/// Whether the key is inactive now (false: active or gone), and its last use.
async fn current_state(reach: &Reach, key: &KeyRef) -> std::result::Result<(bool, Option<Timestamp>), String> {
    let api = reach.connector.connect(&reach.account(key)).await.map_err(|f| f.reason.to_string())?;
    let listed = api.list_access_keys(&key.user_name).await.map_err(|e| e.to_string())?;
    let inactive = listed
        .iter()
        .any(|k| k.access_key_id == key.access_key_id && k.status == keyaudit_core::inventory::KeyStatus::Inactive);
    if !inactive {
        return Ok((false, None));
    }
    let used = api.access_key_last_used(&key.access_key_id).await.map_err(|e| e.to_string())?;
    Ok((true, used))
}
