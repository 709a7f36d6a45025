//! `keyaudit scan`: discovery, the concurrent scan, the merged report and its outputs.

use anyhow::{Context, Result};
use futures::FutureExt;
use jiff::Timestamp;
use keyaudit_core::baseline::annotate;
use keyaudit_core::baseline::{Baseline, Sides, Snapshot};
use keyaudit_core::eval::EvalContext;
use keyaudit_core::report::Scope;
use keyaudit_core::report::{ClockCheck, Origin, Report, RunInfo};
use keyaudit_core::suppress::{EntryState, EntryStatus, Suppressions};
use keyaudit_org_discovery::{DiscoveryError, OrganizationsApi, SdkOrganizations, discover};
use keyaudit_scanner::scan_accounts;

use crate::aws::{Connector, Session};
use crate::output::{open_streams, prepare, write_all};
use crate::progress::Progress;
use crate::saved::BaselineSource;
use crate::settings::Settings;
use crate::{ExitStatus, Failure};
use keyaudit_report::FindingRun;

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM: the scan then stops, marks unfinished accounts
/// `interrupted` and still writes its report.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::warn!("interrupted: finishing the report with what was scanned");
}

/// The one place keyaudit reads the wall clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Timestamp {
    Timestamp::now()
}

pub(crate) async fn run(settings: Settings, quiet: bool) -> Result<ExitStatus, Failure> {
    let report = collect(&settings, quiet).await?;
    let uploads = write_all(&settings.outputs, &report, &settings.output_options, true)
        .context("writing the report")
        .map_err(Failure::incomplete)?;
    let mut status = ExitStatus::from(report.outcome(settings.fail_on));
    if !uploads.is_empty() {
        use crate::output::s3::{SdkS3, upload_all};
        let (base, _) = crate::aws::base_config(&settings.aws()).await;
        let keep = std::path::Path::new(UNSENT_DIR);
        let (lake, others): (Vec<_>, Vec<_>) = uploads
            .into_iter()
            .partition(|u| u.format == crate::output::Format::SecurityLake && settings.security_lake_role.is_some());
        let mut problems = upload_all(&SdkS3::new(&base, settings.s3.clone()), others, keep).await;
        if let Some(role) = settings.security_lake_role.as_ref().filter(|_| !lake.is_empty()) {
            problems.extend(match SdkS3::as_role(&base, settings.s3.clone(), role).await {
                Ok(store) => upload_all(&store, lake, keep).await,
                Err(why) => upload_all(&crate::output::s3::Refused(why), lake, keep).await,
            });
        }
        for problem in &problems {
            tracing::error!("{problem}");
        }
        if !problems.is_empty() {
            status = ExitStatus::Incomplete;
        }
    }
    if let Some((region, rps)) = &settings.push_securityhub {
        let pushed = crate::securityhub::push(&settings, &report, region.as_deref(), *rps).await;
        for problem in &pushed.problems {
            tracing::warn!("Security Hub: {problem}");
        }
        if !pushed.problems.is_empty() {
            let findings: usize = pushed.problems.iter().map(|p| p.count()).sum();
            let accounts: std::collections::BTreeSet<&str> =
                pushed.problems.iter().map(|p| p.account.as_str()).collect();
            tracing::error!(
                "Security Hub: {} finding(s) imported, workflow updates: {}; {findings} finding(s) in {} account(s) \
                 not imported or not updated (above): the exit code says incomplete",
                pushed.imported,
                pushed.moved_summary(),
                accounts.len()
            );
            return Ok(ExitStatus::Incomplete);
        }
    }
    Ok(status)
}

/// Where a report bound for S3 waits for its upload (in the working directory), and stays if it fails.
const UNSENT_DIR: &str = "keyaudit-unsent";

/// Discovers and scans the organization and builds the report (exceptions and baseline applied); streamed
/// outputs are written as accounts finish, the others are left to the caller.
pub(crate) async fn collect(settings: &Settings, quiet: bool) -> Result<Report, Failure> {
    prepare(&settings.outputs).map_err(Failure::usage)?;
    let started_at = now();
    let as_of = settings.as_of.unwrap_or(started_at);
    if let Some((path, entries)) = &settings.suppressions {
        crate::suppressions::check_horizon(path, entries, as_of).map_err(Failure::usage)?;
    }
    let rules = &settings.rules;
    let Session { base, region, sts_config, org_config, caller } = Session::open(settings).await?;
    // To the second on both sides: the Date header has no finer precision.
    let local = Timestamp::from_second(now().as_second()).unwrap_or(started_at);
    let clock = caller.aws_time.map(|aws| ClockCheck { local, aws });
    if let Some(check) = clock.filter(ClockCheck::is_skewed) {
        let as_of_note = if settings.as_of.is_none() {
            "; as_of defaults to the local clock, so ages are off by as much"
        } else {
            ""
        };
        tracing::warn!(
            "the local clock is {:#} {} AWS's (local {}, AWS {}){as_of_note}: fix the clock or set --as-of",
            check.skew().abs(),
            if check.skew().is_positive() { "ahead of" } else { "behind" },
            check.local,
            check.aws,
        );
    }
    tracing::info!(caller = %caller.arn, "caller identified");

    let orgs = SdkOrganizations::new(&org_config);
    let discovery_failed = |e: DiscoveryError| {
        if e.is_usage() {
            return Failure::usage(e);
        }
        Failure::incomplete(anyhow::Error::new(e).context(
            "cannot discover the organization's accounts; run keyaudit from the management or a delegated-admin \
             account with organizations:Describe*/List* permissions",
        ))
    };
    // The scope first (one call): the baseline is checked against it before any account is touched.
    let scope = match orgs.describe_organization().await.map_err(discovery_failed)? {
        Some(org) => Scope::Organization { id: org.id, management_account_id: org.management_account_id },
        None => Scope::StandaloneAccount,
    };

    let header = Snapshot::header(
        as_of,
        &scope,
        caller.account_id.as_str(),
        &caller.partition,
        &rules.metas(),
        &settings.rule_config,
    );
    // A first run (`--baseline DIR` without a report yet) compares with nothing: every failing finding is new.
    let first_run;
    let baseline = match &settings.baseline {
        Some(BaselineSource::Report(_, baseline)) => Some(&**baseline),
        Some(BaselineSource::FirstRun(dir)) => {
            tracing::warn!(
                "--baseline {}: no keyaudit JSON report there yet: this is the first run, so every failing or warning \
                 finding is new",
                dir.display()
            );
            first_run = Baseline::new(header.clone());
            Some(&first_run)
        }
        None => None,
    };
    if let Some(BaselineSource::Report(path, baseline)) = &settings.baseline {
        baseline
            .check_compatible(&header, &Sides::baseline_and_run())
            .map_err(|e| Failure::usage(anyhow::Error::new(e).context(format!("--baseline {}", path.display()))))?;
        for (name, was, now) in baseline.compare(&header).threshold_changes {
            tracing::warn!(
                "--baseline {}: it was made with {name} {was}, this run uses {now}: some verdicts may change for \
                 that reason alone",
                path.display()
            );
        }
    }

    let connector = Connector::new(settings, base, &sts_config, scope.management_account_id().cloned());
    let ctx = EvalContext { as_of, config: settings.rule_config };
    let run = FindingRun {
        partition: &caller.partition,
        organization_id: scope.organization_id(),
        as_of,
        grace_days: settings.rule_config.grace_days(),
    };
    let streams = open_streams(&settings.outputs, started_at, &run).map_err(Failure::usage)?;
    let progress = Progress::new(0, quiet);
    let suppressions = settings.suppressions.as_ref().map(|(_, s)| s);
    let partition = caller.partition.clone();
    let on_done = |done: keyaudit_scanner::AccountDone<'_>| {
        annotate(done.findings, &done.record.account, &partition, as_of, suppressions, baseline);
        progress.account_done(&done);
        for stream in &streams {
            stream.account_done(done.record, done.findings);
        }
    };
    let waiting = std::sync::atomic::AtomicUsize::new(0);
    let watch = keyaudit_scanner::Watch { on_done: &on_done, waiting: &waiting };
    // Discovery hands accounts over as it finds them, and scanning starts on the first ones while the walk goes
    // on. One Ctrl-C or SIGTERM stops both: the report is still written, saying what discovery had not reached.
    let shutdown = shutdown_signal().shared();
    let (found, accounts) = futures::channel::mpsc::unbounded();
    let emit = |account: keyaudit_core::report::Account| {
        progress.account_found();
        let _ = found.unbounded_send(account);
    };
    let discovering = async {
        let result = tokio::select! {
            result = discover(&orgs, &caller, &settings.filter, &settings.role, settings.org_paces.listing_rates(), &emit) => Some(result),
            () = shutdown.clone() => None,
        };
        found.close_channel();
        result
    };
    let scan = scan_accounts(&connector, accounts, rules, &ctx, &settings.scan, watch, shutdown.clone());
    let (discovery, output) = tokio::join!(discovering, progress.while_running(scan, &waiting));
    progress.finish();
    let (accounts_discovered, discovery_complete) = match discovery {
        Some(result) => {
            let discovery = result.map_err(discovery_failed)?;
            tracing::info!(
                accounts = discovery.selected,
                discovered = discovery.discovered,
                calls = orgs.api_calls(),
                "organization discovered"
            );
            (discovery.discovered, true)
        }
        None => {
            tracing::warn!("interrupted during discovery: accounts not found by then are not in the report");
            (output.accounts.len(), false)
        }
    };

    let mut report = Report {
        run: RunInfo {
            as_of,
            started_at,
            finished_at: now(),
            config: settings.rule_config,
            scope,
            origin: Some(Origin { caller_arn: caller.arn, caller_account_id: caller.account_id, region }),
            partition: caller.partition,
            accounts_discovered,
            discovery_complete,
            clock,
        },
        rules: rules.metas(),
        accounts: output.accounts,
        findings: output.findings,
        suppressions: None,
        comparison: None,
    };
    report.normalize();
    if let Some((path, entries)) = &settings.suppressions {
        report.suppressions = Some(suppression_statuses(&report, entries, &path.display().to_string()));
    }
    report.comparison = baseline.map(|b| b.compare(&Snapshot::of(&report)));
    for stream in &streams {
        stream.finish(&report).map_err(Failure::incomplete)?;
    }
    Ok(report)
}

/// Each exception's standing after the run, with a warning for every entry that needs attention.
fn suppression_statuses(report: &Report, entries: &Suppressions, file: &str) -> Vec<EntryStatus> {
    let accounts: std::collections::HashMap<_, _> =
        report.accounts.iter().map(|r| (&r.account.id, &r.account)).collect();
    let complete = report.summary().accounts_failed == 0;
    let statuses = entries.statuses(
        report.findings.iter().map(|f| (f, f.fingerprint(&report.run.partition), accounts.get(&f.account_id).copied())),
        report.run.as_of,
        complete,
    );
    for s in &statuses {
        let (label, line) = (&s.entry.label, s.entry.line);
        match s.state {
            EntryState::Expired => tracing::warn!(
                "--suppressions {file}: entry {label} (line {line}) expired on {} and no longer applies: {} finding(s) \
                 it matched count again; renew it with a new date and reason, or remove it",
                s.entry.expires,
                s.matched
            ),
            EntryState::Stale => tracing::warn!(
                "--suppressions {file}: entry {label} (line {line}) matched no failing or warning finding in a complete \
                 run: the key was fixed or is gone; remove the entry"
            ),
            EntryState::ExpiringSoon => tracing::warn!(
                "--suppressions {file}: entry {label} (line {line}) expires on {}; {} finding(s) will count again after it",
                s.entry.expires,
                s.matched
            ),
            EntryState::InForce | EntryState::Unmatched => {}
        }
    }
    statuses
}
