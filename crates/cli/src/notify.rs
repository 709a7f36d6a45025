//! `keyaudit notify REPORT.json --config notify.toml`: tells the people who must act on stale keys, one message per
//! recipient per run, with a deadline per key, reminders before it and weekly escalations after it.
//!
//! Who gets what and when is decided in core (`keyaudit_core::notice`) from the report and the state file's history;
//! this module reads the config, renders each message for its channel (`message`), and writes it to `--outbox`
//! (the default, a dry run) or sends it (`--send`, `send`), recording every step in the state file (`state`) first,
//! so that a run killed while sending is resumed without telling anyone twice.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use keyaudit_core::notice::{Decision, Notice, RoutedBy, Target, Trigger, items, plan};

use crate::args::NotifyArgs;
use crate::{ExitStatus, Failure};

mod send;

use keyaudit_notify::{config, message, state};

/// What happened to one recipient's notice.
struct Outcome {
    to: String,
    channel: &'static str,
    keys: usize,
    counts: [usize; 4],
    result: String,
    failed: bool,
}

pub(crate) async fn run(args: &NotifyArgs) -> Result<ExitStatus, Failure> {
    if args.send && args.state.is_none() {
        return Err(Failure::usage(anyhow!(
            "--send needs --state FILE: the record of what was sent to whom, without which a re-run would send again"
        )));
    }
    if args.max_messages == 0 {
        return Err(Failure::usage(anyhow!("--max-messages 0: expected at least 1")));
    }
    let report =
        crate::reload::load(&format!("notify {}", args.report.display()), &args.report).map_err(Failure::usage)?;
    let config = config::load(&args.config, report.run.config.grace_days()).map_err(Failure::usage)?;
    if config.grace_days_given && config.routing.grace_days != report.run.config.grace_days() {
        tracing::warn!(
            "--config {}: its [grace-days] differ from the report's (scan --grace-days): the notices' deadlines follow \
             the config, the report's table and HTML page the scan's",
            args.config.display()
        );
    }
    let templates = message::Templates::load(args.templates.as_deref()).map_err(Failure::usage)?;
    // With --send, the state file is held for the whole run (a second run stops at once), and read compacted under
    // that hold.
    let (_lock, history) = match (&args.state, args.send) {
        (Some(path), true) => {
            let lock = state::lock(path).map_err(Failure::incomplete)?;
            let (history, rewritten) = state::read_compacted(path, &lock).map_err(Failure::usage)?;
            if let Some((before, after)) = rewritten {
                tracing::info!("--state {}: compacted from {before} to {after} lines", path.display());
            }
            (Some(lock), history)
        }
        (Some(path), false) => (None, state::read(path).map_err(Failure::usage)?),
        (None, _) => (None, state::History::default()),
    };
    // Never a silent reset: a report whose deadlines restart at its own as_of (no earlier report behind it), given
    // with a history of notices about earlier reports, would tell every owner again, as new, with a fresh deadline.
    let restarts = report.comparison.as_ref().is_none_or(|c| c.baseline_as_of >= report.run.as_of);
    if let Some(first) = history.sent.iter().map(|s| s.at).filter(|at| *at < report.run.as_of).min()
        && restarts
        && !args.allow_deadline_reset
    {
        let told = history.sent.iter().filter(|s| s.at < report.run.as_of).count();
        return Err(Failure::usage(anyhow!(
            "notify {}: the report has no earlier report behind it (scanned without --baseline, or with an empty \
             baseline directory), so every deadline in it restarts at its as_of {}; but --state records {told} \
             notice(s) since {first} about earlier reports. Scan with --baseline DIR (the directory of the earlier \
             reports) so that deadlines carry over, or pass --allow-deadline-reset to send with restarted deadlines",
            args.report.display(),
            report.run.as_of
        )));
    }
    for (id, to) in &history.unknown {
        tracing::warn!(
            "--state: message {id} to {to} was being sent when an earlier run stopped; whether it arrived is unknown: \
             it is not sent again (its keys come up again at their next reminder)"
        );
    }
    let rotations = match &args.journal_dir {
        Some(dir) => {
            crate::remediate::started_rotations(&crate::remediate::read_journals(dir).map_err(Failure::usage)?)
        }
        None => message::Rotations::new(),
    };
    let items = items(&report, &config.routing);
    let notices = plan(&report, &items, &history.sent, &config.routing);
    let outbox = match (&args.outbox, args.send) {
        (Some(dir), _) => Some(dir.clone()),
        (None, false) => Some(PathBuf::from("keyaudit-outbox")),
        (None, true) => None,
    };
    if let Some(dir) = &outbox {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::usage(anyhow!("--outbox {}: cannot create the directory ({})", dir.display(), e.kind()))
        })?;
    }
    let to_send: Vec<&Notice<'_>> = notices.iter().filter(|n| n.decision == Decision::Send).collect();
    if args.send {
        check_endpoints(&config, &to_send).map_err(Failure::usage)?;
    }
    let channels = if args.send {
        let (base, _) = crate::aws::base_config(&crate::settings::AwsSettings::of(&args.aws)).await;
        let emails = to_send.iter().any(|n| matches!(n.to, Target::Email(_)));
        Some(send::Channels::open(&config, base, emails).await.map_err(Failure::incomplete)?)
    } else {
        None
    };
    let mut state_file = match (&args.state, args.send) {
        (Some(path), true) => Some(state::StateFile::open(path).map_err(Failure::usage)?),
        _ => None,
    };

    let as_of = report.run.as_of;
    // Each message's findings and id, once.
    let listed: Vec<Vec<String>> =
        notices.iter().map(|n| n.lines.iter().flat_map(|l| l.item.fingerprints(&report)).collect()).collect();
    let ids: Vec<String> =
        notices.iter().zip(&listed).map(|(n, fingerprints)| state::message_id(&n.to, as_of, fingerprints)).collect();
    let allowed = within_cap(&notices, &ids, &history.done, args.max_messages);
    let mut outcomes = Vec::new();
    for (n, notice) in notices.iter().enumerate() {
        let counts = counts(notice);
        let keys = notice.lines.len();
        let outcome = |result: String, failed: bool| Outcome {
            to: notice.to.to_string(),
            channel: notice.to.channel(),
            keys,
            counts,
            result,
            failed,
        };
        match &notice.decision {
            Decision::NothingDue => {
                outcomes.push(outcome("nothing new or due".into(), false));
                continue;
            }
            Decision::TooSoon { last } => {
                outcomes.push(outcome(format!("held back: last message {last}, within min-interval"), false));
                continue;
            }
            Decision::Send => {}
        }
        let (fingerprints, id) = (&listed[n], ids[n].clone());
        if history.done.contains(&id) {
            outcomes.push(outcome("already sent by an earlier run".into(), false));
            continue;
        }
        if !allowed.contains(&n) {
            outcomes.push(outcome(format!("not sent: --max-messages {} reached (next run)", args.max_messages), true));
            continue;
        }
        let view = message::view(
            &report,
            notice,
            &id,
            config.report_url.as_deref(),
            &config.exceptions,
            &rotations,
            &config.routing.timezone,
        );
        let rendered = message::render(&templates, &view, &notice.to, config.from.as_str(), crate::scan::now())
            .map_err(|e| Failure::usage(anyhow::Error::new(e).context("--templates")))?;
        let file = match &outbox {
            Some(dir) => Some(write_outbox(dir, n + 1, &notice.to, &rendered).map_err(Failure::incomplete)?),
            None => None,
        };
        let (Some(channels), Some(state_file)) = (&channels, state_file.as_mut()) else {
            let file = file.map(|f| f.display().to_string()).unwrap_or_default();
            outcomes.push(outcome(format!("would send ({file})"), false));
            continue;
        };
        let line = |event: &str, provider_id: Option<String>, reason: Option<String>| state::StateLine {
            event: event.into(),
            id: id.clone(),
            to: notice.to.to_string(),
            at: as_of,
            wall: crate::scan::now(),
            fingerprints: if event == "sending" { fingerprints.clone() } else { Vec::new() },
            provider_id,
            reason,
        };
        state_file.write(&line("sending", None, None)).map_err(Failure::incomplete)?;
        match channels.send(&notice.to, &rendered, &id).await {
            Ok(provider_id) => {
                state_file.write(&line("sent", provider_id, None)).map_err(Failure::incomplete)?;
                outcomes.push(outcome("sent".into(), false));
            }
            Err(reason) => {
                tracing::warn!("{}: not sent: {reason}", notice.to);
                state_file.write(&line("failed", None, Some(reason.clone()))).map_err(Failure::incomplete)?;
                outcomes.push(outcome(format!("FAILED: {reason} (sent again next run)"), true));
            }
        }
    }
    let held = notices.iter().enumerate().filter(|(n, x)| x.decision == Decision::Send && !allowed.contains(n));
    let held = held.filter(|(n, _)| !history.done.contains(&ids[*n])).count();
    if held > 0 {
        tracing::warn!(
            "--max-messages {}: {held} message(s) held back, the least urgent (first notices before reminders, \
             reminders before overdue notices and escalations); they go out on the next run",
            args.max_messages
        );
    }
    crate::print(&table(&report, &items, &outcomes, args.send, outbox.as_deref()))?;
    Ok(if outcomes.iter().any(|o| o.failed) && args.send { ExitStatus::Incomplete } else { ExitStatus::Clean })
}

/// The notices (by position) that `--max-messages` lets out, the most urgent first: those with an escalation, then
/// an overdue key, then a reminder, then first notices (then recipient order). Notices not due, or sent by an
/// earlier run, take no place.
fn within_cap(
    notices: &[Notice<'_>],
    ids: &[String],
    done: &std::collections::BTreeSet<String>,
    cap: usize,
) -> std::collections::BTreeSet<usize> {
    let urgency = |notice: &Notice<'_>| {
        let rank = |l: &keyaudit_core::notice::Line<'_>| match (l.escalated, l.trigger?) {
            (true, _) => Some(0),
            (false, Trigger::Overdue) => Some(1),
            (false, Trigger::Reminder) => Some(2),
            (false, Trigger::New) => Some(3),
        };
        notice.lines.iter().filter_map(rank).min().unwrap_or(4)
    };
    let mut due: Vec<usize> =
        (0..notices.len()).filter(|&n| notices[n].decision == Decision::Send && !done.contains(&ids[n])).collect();
    due.sort_by_key(|&n| (urgency(&notices[n]), n));
    due.into_iter().take(cap).collect()
}

/// Every webhook a message goes to has its URL (and a generic webhook's signing secret) before anything is sent.
fn check_endpoints(config: &config::NotifyConfig, notices: &[&Notice<'_>]) -> anyhow::Result<()> {
    for notice in notices {
        let Some(endpoint) = config.endpoint(&notice.to) else { continue };
        if send::url_of(endpoint).is_none() {
            let config::UrlSource::Env(var) = &endpoint.url else { continue };
            anyhow::bail!("{}: the environment variable {var} is not set to an https:// URL", notice.to);
        }
        if let Some(var) = &endpoint.secret_env
            && send::env(var).is_none()
        {
            anyhow::bail!("{}: the environment variable {var} (its signing secret) is not set", notice.to);
        }
    }
    Ok(())
}

/// Keys by why they are in the message: new, reminder, overdue, escalated.
fn counts(notice: &Notice<'_>) -> [usize; 4] {
    let mut c = [0; 4];
    for l in &notice.lines {
        match (l.escalated, l.trigger) {
            (true, _) => c[3] += 1,
            (false, Some(Trigger::New)) => c[0] += 1,
            (false, Some(Trigger::Reminder)) => c[1] += 1,
            (false, Some(Trigger::Overdue)) => c[2] += 1,
            (false, None) => {}
        }
    }
    c
}

/// `DIR/NNN-CHANNEL-RECIPIENT.EXT`, the recipient reduced to safe file-name characters.
fn write_outbox(dir: &Path, n: usize, to: &Target, rendered: &message::Rendered) -> anyhow::Result<PathBuf> {
    let (ext, bytes) = rendered.outbox();
    let slug: String = to
        .to_string()
        .split_once(':')
        .map_or_else(|| to.to_string(), |(_, rest)| rest.to_owned())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "@.-_".contains(c) { c } else { '_' })
        .take(80)
        .collect();
    let path = dir.join(format!("{n:03}-{}-{slug}.{ext}", to.channel()));
    crate::output::write_file(&path, &bytes)?;
    Ok(path)
}

fn table(
    report: &keyaudit_core::report::Report,
    items: &[keyaudit_core::notice::Item<'_>],
    outcomes: &[Outcome],
    sending: bool,
    outbox: Option<&Path>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let messages = outcomes.iter().filter(|o| o.result == "sent" || o.result.starts_with("would send")).count();
    let _ = writeln!(
        out,
        "Notices for the report as of {} ({} actionable key(s), {} recipient(s)): {messages} message(s) {}",
        report.run.as_of,
        items.len(),
        outcomes.len(),
        match (sending, outbox) {
            (true, _) => "sent".to_owned(),
            (false, Some(dir)) => format!("written to {} (a dry run: --send sends them)", dir.display()),
            (false, None) => "(a dry run)".to_owned(),
        }
    );
    if !outcomes.is_empty() {
        let rows: Vec<Vec<String>> = outcomes
            .iter()
            .map(|o| {
                let [new, reminder, overdue, escalated] = o.counts;
                vec![
                    o.to.clone(),
                    o.channel.to_owned(),
                    o.keys.to_string(),
                    new.to_string(),
                    reminder.to_string(),
                    overdue.to_string(),
                    escalated.to_string(),
                    o.result.clone(),
                ]
            })
            .collect();
        let _ = writeln!(out);
        crate::output::columns(
            &mut out,
            &["RECIPIENT", "CHANNEL", "KEYS", "NEW", "REMINDER", "OVERDUE", "ESCALATED", "RESULT"],
            &rows,
        );
    }
    let unowned: Vec<Vec<String>> = items
        .iter()
        .filter_map(|i| {
            let why = match &i.routed_by {
                RoutedBy::CatchAll(why) => why.clone(),
                RoutedBy::Route(Some(why)) => format!("{why}; routed by OU or account"),
                _ => return None,
            };
            let f = i.lead();
            let key = f.key.as_ref().map_or_else(
                || "-".to_owned(),
                |k| k.access_key_id.as_ref().map_or_else(|| format!("slot {}", k.slot.number()), |id| id.to_string()),
            );
            Some(vec![f.account_id.to_string(), f.user_name.clone(), key, i.to.to_string(), why])
        })
        .collect();
    if !unowned.is_empty() {
        let _ = writeln!(
            out,
            "\nKeys whose owner could not be told ({}): sent to their route or the catch-all",
            unowned.len()
        );
        crate::output::columns(&mut out, &["ACCOUNT", "USER", "KEY", "SENT TO", "WHY"], &unowned);
    }
    out
}
