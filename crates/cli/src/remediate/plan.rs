//! `keyaudit plan`: a reviewed list of key changes, from a fresh scan or a saved report (deactivations), or from
//! keyaudit's journals (deletions after a waiting period).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use jiff::{SignedDuration, Timestamp};
use keyaudit_core::eval::Verdict;
use keyaudit_core::ids::{AccessKeyId, AccountId};
use keyaudit_core::inventory::KeySlot;
use keyaudit_core::remediation::rotation::{
    HandedOver, Listed, OptIn, Pair, PairNow, ROTATION_TAG, RotationPolicy, Rotations, Start, handover_suspects,
    hold_open_rotations, plan_finishes, plan_starts, rotations,
};
use keyaudit_core::remediation::{
    ChangeKind, Deactivated, Excluded, Exclusion, KeyRef, PlanPolicy, PlannedChange, candidates, combine,
    plan_deactivations, plan_deletions,
};
use keyaudit_core::report::{AccountStatus, Report, Scope};
use keyaudit_scanner::remediate::KeyAdmin;
use keyaudit_scanner::{AccountConnector, IamApi};

use super::{Change, ExcludedKey, Expect, ExpectKey, PlanFile, PlanSettings, PlanSummary, Source, Why, read_journals};
use crate::args::PlanArgs;
use crate::aws::Reach;
use crate::scan::now;
use crate::settings::Settings;
use crate::{ExitStatus, Failure};

/// A plan made from a report older than this is refused: the keys may have changed since.
const MAX_REPORT_AGE: SignedDuration = SignedDuration::from_hours(24);
/// The default `--deactivate-unused-days` of a plan: a key used 45 days ago may belong to a monthly job.
pub(crate) const DEFAULT_UNUSED_DAYS: u32 = 90;

/// `unused_days_given` says where `--unused-days` came from, if it was given: the command line (refused: in `plan` it
/// was the guard now called `--deactivate-unused-days`, and a job that relied on it must not lose its guard
/// silently) or KEYAUDIT_UNUSED_DAYS (KA-IAM-004's threshold, as in `scan`).
pub(crate) async fn run(
    args: &PlanArgs,
    quiet: bool,
    unused_days_given: Option<clap::parser::ValueSource>,
) -> Result<ExitStatus, Failure> {
    if let Some(path) = &args.show {
        let plan = PlanFile::load(path).map_err(Failure::usage)?;
        return crate::print(&plan.table());
    }
    let target = plan_target(&args.scan.outputs).map_err(Failure::usage)?;
    // Before the scan: a plan that cannot be written should not cost one.
    crate::output::check_writable(&target).map_err(Failure::usage)?;
    let mut scan_args = args.scan.clone();
    scan_args.outputs.clear();
    // --deactivate-unused-days is the plan's own guard for keys that were used; the plan's scan evaluates the rules
    // as `keyaudit scan` does (KA-IAM-004 at --unused-days: KEYAUDIT_UNUSED_DAYS, the --config file, else 45), so
    // that it sees the same failing findings: a never-used key failing KA-IAM-004 is a candidate whatever the guard.
    match unused_days_given {
        Some(clap::parser::ValueSource::CommandLine) => {
            return Err(Failure::usage(anyhow!(
                "--unused-days: in `plan` this is now --deactivate-unused-days (the guard for keys that were used, \
                 default 90); --unused-days is KA-IAM-004's threshold, as in `scan`, and a plan takes it from \
                 KEYAUDIT_UNUSED_DAYS or the --config file"
            )));
        }
        Some(_) if args.deactivate_unused_days.is_none() => tracing::warn!(
            "KEYAUDIT_UNUSED_DAYS is KA-IAM-004's threshold for the plan's scan, as in `scan`; it no longer sets the \
             plan's guard for keys that were used: that is --deactivate-unused-days / \
             KEYAUDIT_DEACTIVATE_UNUSED_DAYS ({DEFAULT_UNUSED_DAYS} days by default, in force now)"
        ),
        _ => {}
    }
    let unused_days = args.deactivate_unused_days.unwrap_or(DEFAULT_UNUSED_DAYS);
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
    let protect_ous = ou_paths("--protect-ou", &args.protect_ous).map_err(Failure::usage)?;
    let start_ous = ou_paths("--start-rotation-ou", &args.start_rotation_ous).map_err(Failure::usage)?;
    let switch_within =
        crate::settings::parse_duration("--switch-within", args.switch_within.as_deref().unwrap_or("14d"))
            .map_err(Failure::usage)?;
    let rotation = RotationPolicy {
        quiet_days: args.rotation_quiet_days,
        start_ous: start_ous.clone(),
        switch_within: SignedDuration::try_from(switch_within).unwrap_or(SignedDuration::from_hours(14 * 24)),
    };
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
                    let mut report = saved_report(path, created_at).map_err(Failure::usage)?;
                    // A saved report carries the exceptions of its own run; the plan's --suppressions apply as well,
                    // as a scan applies them (a fresh scan has).
                    if let Some((_, exceptions)) = &settings.suppressions {
                        report.apply_exceptions(exceptions);
                    }
                    (report, Some(path.display().to_string()))
                }
                None => (crate::scan::collect(&settings, quiet).await?, None),
            };
            let caller_arn = report.run.origin.as_ref().map(|o| o.caller_arn.clone()).unwrap_or_default();
            let policy = PlanPolicy {
                as_of: report.run.as_of,
                unused_days,
                protect_accounts: protect_accounts.clone(),
                protect_ous: protect_ous.clone(),
                caller_user_arn: caller_arn.contains(":user/").then(|| caller_arn.clone()),
                caller_key_id: caller_key_id.clone(),
            };
            let found = rotations(&report);
            let mut reach_once = None;
            let (finishes, starts) = if found == Rotations::default() {
                (Vec::new(), Vec::new())
            } else {
                look_up(reach_once.insert(reach(&base, &settings).await?), found, &rotation).await
            };
            let (mut planned, mut excluded) = combine(vec![
                plan_deactivations(&candidates(&report), &policy),
                plan_finishes(&finishes, &policy, &rotation),
                plan_starts(&starts, &policy, &rotation),
            ]);
            // A rotation keyaudit started puts its new key beside the old one; while it is open, that key is never
            // deactivated as unused.
            let suspects = handover_suspects(&planned, &report);
            if !suspects.is_empty() {
                let reach = match reach_once {
                    Some(r) => r,
                    None => reach(&base, &settings).await?,
                };
                let found = handed_over(&reach, suspects).await;
                hold_open_rotations(&mut planned, &mut excluded, &found);
            }
            let incomplete = report.accounts.iter().any(|a| matches!(a.status, AccountStatus::Failed(_)));
            let source = Source {
                as_of: policy.as_of,
                organization_id: report.run.scope.organization_id().map(str::to_owned),
                caller_arn,
                partition: report.run.partition.to_string(),
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
            rotation_quiet_days: rotation.quiet_days,
            start_rotation_ous: start_ous,
            switch_within_days: u32::try_from(switch_within.as_secs() / 86_400).unwrap_or(u32::MAX),
        },
        summary: summary(&planned, &excluded),
        changes: planned.iter().enumerate().map(|(i, p)| change(i + 1, p)).collect(),
        excluded: excluded
            .iter()
            .map(|e| ExcludedKey {
                action: e.kind.as_str().to_owned(),
                account_id: e.key.user.account_id.to_string(),
                account_name: e.key.user.account_name.clone(),
                user_name: e.key.user.user_name.clone(),
                access_key_id: e.key.access_key_id.as_ref().map(ToString::to_string),
                key_slot: e.key.slot.map(KeySlot::number),
                rules: e.rules.clone(),
                reason_code: e.why.code().to_owned(),
                reason: e.why.describe(unused_days),
            })
            .collect(),
        checksum: String::new(),
    }
    .seal()
    .map_err(Failure::incomplete)?;
    let bytes = serde_json::to_vec_pretty(&plan).map_err(Failure::incomplete)?;
    crate::output::write_file(&target, &bytes).map_err(Failure::usage)?;
    // As `scan -q` keeps its report, `plan -q` keeps the plan's table: -q quiets the progress bar and the log.
    crate::print(&plan.table())?;
    tracing::info!(path = %target.display(), changes = plan.summary.changes, "plan written");
    if incomplete {
        tracing::warn!("some accounts could not be assessed: the plan covers only the accounts that were");
        return Ok(ExitStatus::Incomplete);
    }
    Ok(ExitStatus::Clean)
}

/// OU paths given to `flag`: each must start with `/`; a trailing `/` is dropped.
fn ou_paths(flag: &str, values: &[String]) -> Result<Vec<String>> {
    values
        .iter()
        .map(|ou| {
            if ou.starts_with('/') {
                Ok(ou.trim_end_matches('/').to_owned())
            } else {
                Err(anyhow!("{flag} {ou:?}: expected an OU path such as /Root/Prod (its subtree is included)"))
            }
        })
        .collect()
}

/// Accounts whose look-ups run at once.
const LOOKUP_ACCOUNTS_AT_ONCE: usize = 16;

/// The plan's look-ups for rotations, with the audit role: both keys' last uses of each pair
/// (`iam:GetAccessKeyLastUsed`), and the tags of each user a rotation could start for (`iam:ListUserTags`). One
/// account's calls in sequence (its IAM rate limit), several accounts at once; a failed look-up is kept as the
/// reason, never read as "not used" or "not opted in".
/// The plan's way into single accounts: the scan's audit role, role session, rates and patience.
async fn reach(base: &aws_config::SdkConfig, settings: &Settings) -> Result<Reach, Failure> {
    let (role, assume) = (settings.role.clone(), settings.assume_settings());
    Reach::new(base, role, assume, settings.sts_pace, settings.iam_rps, settings.throttle_patience).await
}

async fn look_up(
    reach: &Reach,
    found: Rotations,
    rotation: &RotationPolicy,
) -> (Vec<(Pair, PairNow)>, Vec<(Start, OptIn, Listed)>) {
    use futures::StreamExt;
    let mut by_account: BTreeMap<AccountId, (Vec<Pair>, Vec<Start>)> = BTreeMap::new();
    for pair in found.finish {
        by_account.entry(pair.user.account_id.clone()).or_default().0.push(pair);
    }
    for start in found.start {
        by_account.entry(start.key.user.account_id.clone()).or_default().1.push(start);
    }
    let per_account = futures::stream::iter(by_account.into_values())
        .map(|(pairs, starts)| async move {
            let user = pairs.first().map(|p| &p.user).or_else(|| starts.first().map(|s| &s.key.user));
            let api = match user {
                Some(user) => reach.connector.connect(&reach.account_of(user)).await.map_err(|f| f.reason.to_string()),
                None => Err("nothing to look up".to_owned()),
            };
            let last_use = |id: Option<AccessKeyId>| {
                let api = &api;
                async move {
                    match (api, id) {
                        (Ok(api), Some(id)) => api.access_key_last_used(&id).await.map_err(|e| e.to_string()),
                        (Err(reason), _) => Err(reason.clone()),
                        (_, None) => Err("its key id is unknown".to_owned()),
                    }
                }
            };
            // The user's keys now: the credential report can be 4 hours old, and only CreateDate says which key is
            // older (the report's last_rotated moves when a key is re-activated).
            let listed = |user_name: String| {
                let api = &api;
                async move {
                    match api {
                        Ok(api) => api.list_access_keys(&user_name).await.map_err(|e| e.to_string()),
                        Err(reason) => Err(reason.clone()),
                    }
                }
            };
            let mut finishes = Vec::new();
            for pair in pairs {
                let listed = listed(pair.user.user_name.clone()).await;
                let first = last_use(pair.old.access_key_id.clone()).await;
                let second = last_use(pair.new.access_key_id.clone()).await;
                finishes.push((pair, PairNow { listed, first, second }));
            }
            let mut opt_ins = Vec::new();
            for start in starts {
                let opt_in = match &api {
                    Ok(api) => match api.list_user_tags(&start.key.user.user_name).await {
                        Ok(tags) => OptIn::Tag(tags.into_iter().find(|(k, _)| k == ROTATION_TAG).map(|(_, v)| v)),
                        Err(e) => OptIn::Unknown(e.to_string()),
                    },
                    Err(reason) => OptIn::Unknown(reason.clone()),
                };
                // Listed only for users a rotation could start for: most keys in use are not opted in.
                let now = if rotation.may_start(start.key.user.ou_path.as_deref(), &opt_in) {
                    listed(start.key.user.user_name.clone()).await
                } else {
                    Ok(Vec::new())
                };
                opt_ins.push((start, opt_in, now));
            }
            (finishes, opt_ins)
        })
        .buffered(LOOKUP_ACCOUNTS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut finishes = Vec::new();
    let mut starts = Vec::new();
    for (f, s) in per_account {
        finishes.extend(f);
        starts.extend(s);
    }
    (finishes, starts)
}

/// Whether each key is the new key of a rotation keyaudit started that is still open: its hand-over secret
/// (`keyaudit/rotation/<user>/<key id>`, in the plan's region, where `apply` runs) exists and is not being deleted.
/// Read with the audit role (`secretsmanager:DescribeSecret` on `keyaudit/rotation/*`: names and tags, never a
/// value); one account's look-ups in sequence, several accounts at once.
async fn handed_over(reach: &Reach, keys: Vec<KeyRef>) -> Vec<(KeyRef, HandedOver)> {
    use futures::StreamExt;
    use keyaudit_core::remediation::rotation_secret_name;
    use keyaudit_scanner::remediate::{SdkSecrets, SecretStore};
    let mut by_account: BTreeMap<AccountId, Vec<KeyRef>> = BTreeMap::new();
    for key in keys {
        by_account.entry(key.user.account_id.clone()).or_default().push(key);
    }
    let per_account = futures::stream::iter(by_account.into_values())
        .map(|keys| async move {
            let store = match keys.first() {
                Some(key) => {
                    let account = reach.account(key);
                    match reach.connector.session(&account).await {
                        Ok(session) => Ok(SdkSecrets::new(&session.config(reach.connector.base.clone()))),
                        Err(f) => Err(f.reason.to_string()),
                    }
                }
                None => Err("nothing to look up".to_owned()),
            };
            let mut found = Vec::new();
            for key in keys {
                let state = match &store {
                    Ok(store) => {
                        match store
                            .describe_secret(&rotation_secret_name(&key.user.user_name, &key.access_key_id))
                            .await
                        {
                            Ok(Some(s)) if !s.deleting => HandedOver::Open {
                                switch_by: s
                                    .tags
                                    .iter()
                                    .find(|(k, _)| k == "keyaudit:switch-by")
                                    .and_then(|(_, v)| v.parse::<jiff::civil::Date>().ok())
                                    .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                                    .map(|z| z.timestamp()),
                                secret: s.arn,
                            },
                            Ok(_) => HandedOver::No,
                            Err(e) => HandedOver::Unknown(e.to_string()),
                        }
                    }
                    Err(reason) => HandedOver::Unknown(reason.clone()),
                };
                found.push((key, state));
            }
            found
        })
        .buffered(LOOKUP_ACCOUNTS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    per_account.into_iter().flatten().collect()
}

/// The plan file of `-o`: `-o FILE`, or `-o json=FILE` as `scan` writes a format to a file (a plan is JSON).
fn plan_target(outputs: &[String]) -> Result<std::path::PathBuf> {
    let usage = "give the plan file as -o FILE or -o json=FILE (e.g. -o plan.json); --show FILE prints one";
    let [one] = outputs else {
        bail!("keyaudit plan: {usage}");
    };
    let path = match one.split_once('=') {
        Some((format, path)) if format.eq_ignore_ascii_case("json") => path,
        Some((format, _)) if !format.contains(['/', '.']) => {
            bail!("-o {one}: a plan is a JSON file, not {format}; {usage}")
        }
        _ => one.as_str(),
    };
    if path.is_empty() || path == "-" {
        bail!("-o {one}: a plan is written to a file; {usage}");
    }
    Ok(std::path::PathBuf::from(path))
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
        create_key: planned.iter().filter(|p| p.kind == ChangeKind::CreateKey).count(),
        accounts: planned.iter().map(|p| &p.key.user.account_id).collect::<BTreeSet<_>>().len(),
        excluded: by_reason,
    }
}

fn change(n: usize, p: &PlannedChange) -> Change {
    Change {
        n,
        action: p.kind.as_str().to_owned(),
        irreversible: p.kind == ChangeKind::Delete,
        account_id: p.key.user.account_id.to_string(),
        account_name: p.key.user.account_name.clone(),
        ou_path: p.key.user.ou_path.clone(),
        user_name: p.key.user.user_name.clone(),
        user_arn: p.key.user.user_arn.clone(),
        access_key_id: p.key.access_key_id.to_string(),
        switch_by: p.switch_by,
        secret_arn: p.secret_arn.clone(),
        expect: Expect {
            status: if p.expect_active { "Active" } else { "Inactive" }.to_owned(),
            last_used_at: p.expect_last_used_at,
            other_key: p.other_key.as_ref().map(|o| ExpectKey {
                access_key_id: o.access_key_id.to_string(),
                status: "Active".to_owned(),
                last_used_at: o.last_used_at,
            }),
        },
        why: Why {
            reason_code: p.reason_code.to_owned(),
            rules: p.rules.clone(),
            verdict: (p.kind != ChangeKind::Delete).then(|| Verdict::Fail.as_str().to_owned()),
            usage: p.usage.map(|u| u.as_str().to_owned()),
            reason: p.reason.clone(),
        },
    }
}

/// A saved keyaudit JSON report, read back whole (every value checked, every finding's fingerprint recomputed:
/// an edited report is refused); refused as well when it is older than 24 hours or spans several organizations.
fn saved_report(path: &Path, now: Timestamp) -> Result<Report> {
    let shown = path.display();
    let report = crate::reload::load(&format!("--from-report {shown}"), path)?;
    if matches!(report.run.scope, Scope::Merged(_)) {
        bail!(
            "--from-report {shown}: a merged report (keyaudit merge) spans several organizations, each changed with \
             its own credentials; plan each organization from its own report"
        );
    }
    let finished = report.run.finished_at;
    if now.duration_since(finished) > MAX_REPORT_AGE {
        bail!(
            "--from-report {shown}: the report finished at {finished}, more than 24 hours ago; keys may have changed \
             since: scan again (keyaudit plan without --from-report)"
        );
    }
    Ok(report)
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
    // In time order across every journal: a key re-activated by `undo` (or deleted) after its deactivation is out.
    let entries = read_journals(dir).map_err(Failure::usage)?;
    // The rotation secrets of keys whose rotation keyaudit started, by the rotated key's id.
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries.into_iter().filter(|e| e.phase == "done") {
        match entry.operation.as_str() {
            "deactivate" | "deactivate_created" => {
                // An undone creation's key is deactivated, not deleted (`undo`): deleted after the waiting period;
                // its secret's deletion is scheduled already.
                if entry.operation == "deactivate_created" {
                    secrets.retain(|_, arn| Some(&*arn) != entry.secret_arn.as_ref());
                }
                let key = entry.key().map_err(Failure::usage)?;
                done.insert(entry.access_key_id.clone(), (key, entry.at, entry.last_used_at));
            }
            "reactivate" | "delete" => {
                done.remove(&entry.access_key_id);
            }
            "create_key" => {
                if let Some(arn) = entry.secret_arn {
                    secrets.insert(entry.access_key_id, arn);
                }
            }
            // An undone creation's secret is scheduled for deletion already (`delete_created`: journals of keyaudit
            // before undo deactivated created keys instead of deleting them).
            "delete_created" => secrets.retain(|_, arn| Some(&*arn) != entry.secret_arn.as_ref()),
            _ => {}
        }
    }
    let reach = reach(base, settings).await?;
    let mut keys = Vec::new();
    let mut unreachable = Vec::new();
    for (key, deactivated_at, last_used_then) in done.into_values() {
        match current_state(&reach, &key).await {
            Ok((inactive_now, last_used_now)) => {
                let secret_arn = secrets.get(key.access_key_id.as_str()).cloned();
                keys.push(Deactivated { key, deactivated_at, last_used_then, inactive_now, last_used_now, secret_arn });
            }
            Err(reason) => unreachable.push(Excluded {
                key: key.into(),
                kind: ChangeKind::Delete,
                rules: Vec::new(),
                why: Exclusion::Unverified(reason),
            }),
        }
    }
    keys.sort_by(|a, b| {
        (&a.key.user.account_id, &a.key.user.user_name).cmp(&(&b.key.user.account_id, &b.key.user.user_name))
    });
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
    let listed = api.list_access_keys(&key.user.user_name).await.map_err(|e| e.to_string())?;
    let inactive = listed
        .iter()
        .any(|k| k.access_key_id == key.access_key_id && k.status == keyaudit_core::inventory::KeyStatus::Inactive);
    if !inactive {
        return Ok((false, None));
    }
    let used = api.access_key_last_used(&key.access_key_id).await.map_err(|e| e.to_string())?;
    Ok((true, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_file_is_given_as_scan_gives_a_json_file() {
        let target = |v: &[&str]| plan_target(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(target(&["plan.json"]).unwrap(), std::path::PathBuf::from("plan.json"));
        assert_eq!(target(&["json=out/plan.json"]).unwrap(), std::path::PathBuf::from("out/plan.json"));
        assert_eq!(target(&["JSON=plan.json"]).unwrap(), std::path::PathBuf::from("plan.json"));
        assert_eq!(target(&["./a=b.json"]).unwrap(), std::path::PathBuf::from("./a=b.json"), "a path with '='");
        for (bad, says) in [
            (vec![], "keyaudit plan: give the plan file as -o FILE or -o json=FILE"),
            (vec!["plan.json", "other.json"], "keyaudit plan: give the plan file"),
            (vec!["sarif=plan.sarif"], "-o sarif=plan.sarif: a plan is a JSON file, not sarif"),
            (vec!["-"], "-o -: a plan is written to a file"),
            (vec!["json="], "-o json=: a plan is written to a file"),
        ] {
            let err = target(&bad).unwrap_err().to_string();
            assert!(err.starts_with(says), "{bad:?}: {err}");
        }
    }
}
