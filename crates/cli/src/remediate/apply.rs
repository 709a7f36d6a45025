//! `keyaudit apply PLAN` and `keyaudit undo JOURNAL`: each change re-checked right before it is made, and
//! journaled step by step.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::Path;

use anyhow::anyhow;
use jiff::Timestamp;
use keyaudit_core::ids::AccessKeyId;
use keyaudit_core::ids::AccountId;
use keyaudit_core::inventory::ROOT_USER_NAME;
use keyaudit_core::remediation::rotation::ROTATION_TAG;
use keyaudit_core::remediation::{ChangeKind, KeyRef, OtherKey};
use keyaudit_org_discovery::{AssumeSettings, RoleSpec};
use keyaudit_scanner::IamApi;
use keyaudit_scanner::SdkIam;
use keyaudit_scanner::remediate::{
    Created, Handover, Operation, Outcome, Resume, SdkSecrets, Started, carry_out, retire_secret, start_rotation,
};

use super::{Journal, JournalEntry, PlanFile, journal_beside, read_journal};
use crate::args::{ApplyArgs, ChangeArgs, UndoArgs};
use crate::aws::{Reach, base_config, caller_key_id};
use crate::scan::now;
use crate::{ExitStatus, Failure};

/// One change to carry out.
struct Step {
    n: usize,
    op: Operation,
    key: KeyRef,
    expect_last_used_at: Option<Timestamp>,
    /// A finished rotation: the user's newer key, as the plan found it.
    other_key: Option<OtherKey>,
    /// A key creation: the date applications must use the new key by.
    switch_by: Option<Timestamp>,
    /// A deletion of a rotated key, or an undone creation: the rotation secret to retire with it.
    secret_arn: Option<String>,
}

impl Step {
    fn new(n: usize, op: Operation, key: KeyRef) -> Self {
        Self { n, op, key, expect_last_used_at: None, other_key: None, switch_by: None, secret_arn: None }
    }
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Plan(kind) => kind.as_str(),
        Operation::Reactivate => "reactivate",
        Operation::DeactivateCreated => "deactivate_created",
    }
}

/// Run limits, and what the run may do beyond deactivations.
struct Caps {
    max_changes: usize,
    max_per_account: usize,
    allow_delete: bool,
    allow_create_keys: bool,
    kms_key_id: Option<String>,
}

pub(crate) async fn apply(args: &ApplyArgs) -> Result<ExitStatus, Failure> {
    let plan = PlanFile::load(&args.plan).map_err(Failure::usage)?;
    let at = now();
    if at >= plan.expires_at {
        return Err(Failure::usage(anyhow!(
            "{}: the plan expired at {} (keys may have changed since it was reviewed); make a new plan",
            args.plan.display(),
            plan.expires_at
        )));
    }
    if args.max_changes == 0 || args.max_per_account == 0 {
        return Err(Failure::usage(anyhow!("--max-changes and --max-per-account: expected at least 1")));
    }
    let steps = plan
        .changes
        .iter()
        .map(|c| {
            let (kind, key, other_key) = c.parsed()?;
            Ok(Step {
                expect_last_used_at: c.expect.last_used_at,
                other_key,
                switch_by: c.switch_by,
                secret_arn: c.secret_arn.clone(),
                ..Step::new(c.n, Operation::Plan(kind), key)
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| Failure::usage(e.context(args.plan.display().to_string())))?;
    let journal = args.change.journal.clone().unwrap_or_else(|| journal_beside(&args.plan, "journal"));
    let caps = Caps {
        max_changes: args.max_changes,
        max_per_account: args.max_per_account,
        allow_delete: args.allow_delete,
        allow_create_keys: args.allow_create_keys,
        kms_key_id: args.kms_key_id.clone(),
    };
    execute(steps, &plan.id, &journal, &args.change, &caps).await
}

pub(crate) async fn undo(args: &UndoArgs) -> Result<ExitStatus, Failure> {
    let shown = args.journal_file.display();
    if !args.journal_file.is_file() {
        return Err(Failure::usage(anyhow!(
            "{shown}: no such journal; `keyaudit apply PLAN.json` writes one beside the plan (PLAN.journal.jsonl) or \
             at its --journal"
        )));
    }
    let entries = read_journal(&args.journal_file).map_err(Failure::usage)?;
    let undoable = |e: &&JournalEntry| {
        e.phase == "done" && matches!(e.operation.as_str(), "deactivate" | "deactivate_created" | "create_key")
    };
    if !entries.iter().any(|e| undoable(&e)) {
        return Err(Failure::usage(anyhow!(
            "{shown}: the journal records no deactivation or key creation that was done, so there is nothing to undo"
        )));
    }
    // Numbered over every undoable change the journal records (and named after every plan in it), whatever `--key`
    // says, so that undoing one key and later all of them share one undo journal without doing anything twice.
    let mut seen = BTreeSet::new();
    let mut steps = Vec::new();
    let mut plan_ids = BTreeSet::new();
    for e in entries.iter().filter(undoable) {
        let bad = |err: anyhow::Error| Failure::usage(anyhow!("{shown}: {err}"));
        let mut key = e.key().map_err(bad)?;
        // A creation is undone by deactivating the key it created.
        let created = e.operation == "create_key";
        if created {
            let id =
                e.created_key_id.as_deref().ok_or_else(|| bad(anyhow!("a create_key line without created_key_id")))?;
            key.access_key_id = keyaudit_core::ids::AccessKeyId::parse(id).map_err(|err| bad(err.into()))?;
        }
        if !seen.insert(key.access_key_id.to_string()) {
            continue;
        }
        plan_ids.insert(e.plan_id.clone());
        let n = seen.len();
        if args.key.as_deref().is_some_and(|k| k != key.access_key_id.as_str()) {
            continue;
        }
        steps.push(if created {
            Step { secret_arn: e.secret_arn.clone(), ..Step::new(n, Operation::DeactivateCreated, key) }
        } else {
            Step::new(n, Operation::Reactivate, key)
        });
    }
    if let Some(k) = &args.key
        && steps.is_empty()
    {
        return Err(Failure::usage(anyhow!(
            "--key {k}: {shown} records no deactivation of that key and no creation of it"
        )));
    }
    let plan_id = format!("undo:{}", plan_ids.into_iter().collect::<Vec<_>>().join("+"));
    let journal = args.change.journal.clone().unwrap_or_else(|| journal_beside(&args.journal_file, "undo"));
    let caps = Caps {
        max_changes: usize::MAX,
        max_per_account: usize::MAX,
        allow_delete: false,
        allow_create_keys: false,
        kms_key_id: None,
    };
    execute(steps, &plan_id, &journal, &args.change, &caps).await
}

/// The whole command that makes a dry run's changes: the one that ran, with `--yes` and every `--allow-*` flag the
/// pending changes need (a plan with `create_key` needs --allow-create-keys, one with `delete` --allow-delete), each
/// word quoted for a POSIX shell where it has to be.
fn rerun_command(pending: &[&Step], caps: &Caps) -> String {
    let mut words: Vec<String> = std::iter::once("keyaudit".to_owned())
        .chain(std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()))
        .collect();
    let needs = |kind: ChangeKind| pending.iter().any(|s| s.op == Operation::Plan(kind));
    for (flag, needed) in [
        ("--yes", true),
        ("--allow-create-keys", needs(ChangeKind::CreateKey) && !caps.allow_create_keys),
        ("--allow-delete", needs(ChangeKind::Delete) && !caps.allow_delete),
    ] {
        if needed && !words.iter().any(|w| w == flag) {
            words.push(flag.to_owned());
        }
    }
    let quoted = |w: &String| {
        let plain = !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./=:@%+,-".contains(&b));
        if plain { w.clone() } else { format!("'{}'", w.replace('\'', r"'\''")) }
    };
    crate::output::shown(&words.iter().map(quoted).collect::<Vec<_>>().join(" "))
}

/// Asks for "yes" on a terminal; `false` when stdin or stdout is not one.
fn confirmed(prompt: &str) -> bool {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return false;
    }
    let mut out = std::io::stdout();
    let _ = write!(out, "{prompt} Type yes to continue: ");
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

/// What one step came to.
enum StepResult {
    /// Done: the journal's line (without its reason) and a note for the summary.
    Done {
        entry: Box<JournalEntry>,
        note: Option<String>,
    },
    Skipped(String),
    /// The key or its user no longer exists: final, never retried.
    Gone(String),
    Failed(String),
}

/// A rotation's start, done: the journal line records the new key and its secret (never the secret itself), and the
/// summary says where the secret is.
fn created(entry: JournalEntry, c: Created, switch_by: Timestamp, how: Option<&str>) -> StepResult {
    let region = keyaudit_core::ids::region_of_arn(&c.secret_arn).unwrap_or_default();
    let note = format!(
        "{}new key {}; its secret is in Secrets Manager: {} in {region} (readable by the user alone); switch \
         applications by {}",
        how.map(|h| format!("{h}: ")).unwrap_or_default(),
        c.access_key_id,
        c.secret_arn,
        switch_by.strftime("%Y-%m-%d")
    );
    let entry = JournalEntry {
        created_key_id: Some(c.access_key_id.to_string()),
        secret_arn: Some(c.secret_arn),
        switch_by: Some(switch_by),
        ..entry
    };
    StepResult::Done { entry: Box::new(entry), note: Some(note) }
}

/// What happened to one step, for the summary.
struct Done {
    step_n: usize,
    op: &'static str,
    key: KeyRef,
    result: &'static str,
    reason: Option<String>,
}

async fn execute(
    steps: Vec<Step>,
    plan_id: &str,
    journal_path: &Path,
    change: &ChangeArgs,
    caps: &Caps,
) -> Result<ExitStatus, Failure> {
    let previous: Vec<JournalEntry> =
        read_journal(journal_path).map_err(Failure::usage)?.into_iter().filter(|e| e.plan_id == plan_id).collect();
    // The last phase each step reached in earlier runs, by (position, key id).
    let mut last_phase: HashMap<(usize, &str), &str> = HashMap::new();
    // A key creation's key, recorded by an earlier run that stopped before the hand-over was recorded.
    let mut created_by_earlier: HashMap<(usize, &str), AccessKeyId> = HashMap::new();
    for e in &previous {
        let step = (e.n, e.access_key_id.as_str());
        last_phase.insert(step, e.phase.as_str());
        match e.phase.as_str() {
            "key_created" => {
                if let Some(id) = e.created_key_id.as_deref().and_then(|id| AccessKeyId::parse(id).ok()) {
                    created_by_earlier.insert(step, id);
                }
            }
            "started" => {}
            _ => {
                created_by_earlier.remove(&step);
            }
        }
    }
    let phase = |s: &Step| last_phase.get(&(s.n, s.key.access_key_id.as_str())).copied();
    // Done, or gone (the key or its user no longer exists): nothing left to do.
    let finished = |s: &&Step| matches!(phase(s), Some("done" | "gone"));
    let already: usize = steps.iter().filter(finished).count();
    let pending: Vec<&Step> = steps.iter().filter(|s| !finished(s)).collect();
    if pending.is_empty() {
        crate::print(&format!(
            "Nothing to do: all {} change(s) are done (journal {}).\n",
            steps.len(),
            journal_path.display()
        ))?;
        return Ok(ExitStatus::Clean);
    }
    let mut listing = String::new();
    for s in &pending {
        listing.push_str(&format!(
            "  {:>3}  {:<14}  {}  {}  {}{}\n",
            s.n,
            op_name(s.op),
            s.key.user.account_id,
            crate::output::shown(&s.key.user.user_name),
            s.key.access_key_id,
            match s.op {
                Operation::Plan(ChangeKind::Delete) => "  (cannot be undone)",
                Operation::Plan(ChangeKind::CreateKey) =>
                    "  (a second key for this user; its secret to Secrets Manager)",
                Operation::DeactivateCreated => "  (deactivates the key keyaudit created, if it shows no use)",
                _ => "",
            }
        ));
    }
    let heading = format!(
        "{} change(s) to make ({already} already done), journal {}:\n{listing}",
        pending.len(),
        journal_path.display()
    );
    if !change.yes && !confirmed(&heading) {
        crate::print(&format!(
            "{heading}Dry run: nothing was changed. To make these changes, run:\n  {}\n",
            rerun_command(&pending, caps)
        ))?;
        return Ok(ExitStatus::Clean);
    }

    let aws = crate::settings::AwsSettings::of(&change.aws);
    let role = RoleSpec::new(
        change.remediation_role_name.as_deref().unwrap_or("KeyauditRemediation"),
        change.remediation_role_path.as_deref().unwrap_or("/"),
    )
    .map_err(Failure::usage)?;
    let (base, _) = base_config(&aws).await;
    let own_key = caller_key_id(&base).await;
    let per_second = |n| std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN);
    let assume = AssumeSettings {
        session_name: "keyaudit-remediation".into(),
        external_id: change.external_id.clone(),
        duration: std::time::Duration::from_secs(3600),
    };
    let sts = crate::pacing::sts_pace(per_second(200));
    let reach = Reach::new(&base, role, assume, sts, per_second(10), keyaudit_scanner::THROTTLE_PATIENCE).await?;
    let mut journal = Journal::open(journal_path).map_err(Failure::usage)?;

    let mut apis: HashMap<AccountId, Result<(SdkIam, SdkSecrets), String>> = HashMap::new();
    let mut per_account: HashMap<AccountId, usize> = HashMap::new();
    let mut attempted = 0usize;
    let mut report: Vec<Done> = Vec::new();
    let mut unreachable = false;
    for step in pending {
        let record = |result: &'static str, reason: Option<String>| Done {
            step_n: step.n,
            op: op_name(step.op),
            key: step.key.clone(),
            result,
            reason,
        };
        // Defence in depth: a plan never holds these, and an edited one is refused, but apply checks again.
        let never = if step.key.user.user_name == ROOT_USER_NAME || step.key.user.user_arn.ends_with(":root") {
            Some("a root user key: keyaudit never changes those")
        } else if own_key.as_ref() == Some(&step.key.access_key_id) || step.key.user.user_arn == reach.caller_arn {
            Some("the caller's own key")
        } else {
            None
        };
        if let Some(why) = never {
            report.push(record("not attempted", Some(why.into())));
            continue;
        }
        if step.op == Operation::Plan(ChangeKind::Delete) && !caps.allow_delete {
            report.push(record("not attempted", Some("deletion needs --allow-delete (it cannot be undone)".into())));
            continue;
        }
        if step.op == Operation::Plan(ChangeKind::CreateKey) && !caps.allow_create_keys {
            report.push(record(
                "not attempted",
                Some("a key creation needs --allow-create-keys (its secret goes to Secrets Manager)".into()),
            ));
            continue;
        }
        if attempted >= caps.max_changes {
            report.push(record("not attempted", Some(format!("--max-changes {} reached", caps.max_changes))));
            continue;
        }
        let in_account = per_account.entry(step.key.user.account_id.clone()).or_default();
        if *in_account >= caps.max_per_account {
            report.push(record("not attempted", Some(format!("--max-per-account {} reached", caps.max_per_account))));
            continue;
        }
        *in_account += 1;
        attempted += 1;
        let entry = |phase: &str| JournalEntry {
            at: now(),
            plan_id: plan_id.to_owned(),
            n: step.n,
            operation: op_name(step.op).to_owned(),
            phase: phase.to_owned(),
            account_id: step.key.user.account_id.to_string(),
            account_name: step.key.user.account_name.clone(),
            ou_path: step.key.user.ou_path.clone(),
            user_name: step.key.user.user_name.clone(),
            user_arn: step.key.user.user_arn.clone(),
            access_key_id: step.key.access_key_id.to_string(),
            created_key_id: None,
            secret_arn: None,
            switch_by: None,
            last_used_at: None,
            reason: None,
            recovered: false,
        };
        if !apis.contains_key(&step.key.user.account_id) {
            let account = reach.account(&step.key);
            let api = match reach.connector.session(&account).await {
                Ok(session) => Ok((
                    reach.connector.iam(&account, &session),
                    SdkSecrets::new(&session.config(reach.connector.base.clone())),
                )),
                Err(f) => Err(f.reason.to_string()),
            };
            apis.insert(step.key.user.account_id.clone(), api);
        }
        let (api, secrets) = match apis.get(&step.key.user.account_id) {
            Some(Ok((api, secrets))) => (api, secrets),
            other => {
                let reason = match other {
                    Some(Err(reason)) => reason.clone(),
                    _ => "the account could not be reached".to_owned(),
                };
                unreachable = true;
                journal
                    .write(&JournalEntry { reason: Some(reason.clone()), ..entry("failed") })
                    .map_err(Failure::incomplete)?;
                report.push(record("failed", Some(reason)));
                continue;
            }
        };
        let was_started = matches!(phase(step), Some("started" | "key_created"));
        journal.write(&entry("started")).map_err(Failure::incomplete)?;
        let result = if step.op == Operation::Plan(ChangeKind::CreateKey) {
            let handover = Handover {
                kms_key_id: caps.kms_key_id.clone(),
                switch_by: step.switch_by.unwrap_or_else(now),
                plan_id: plan_id.to_owned(),
            };
            let resume = match created_by_earlier.get(&(step.n, step.key.access_key_id.as_str())) {
                Some(id) => Resume::Created(id.clone()),
                None if was_started => Resume::Started,
                None => Resume::No,
            };
            // The opt-out is re-read: a user who tagged keyaudit:rotation=off since the plan gets no key, and tags that
            // cannot be read cannot rule an opt-out out.
            let held = match api.list_user_tags(&step.key.user.user_name).await {
                Ok(tags) if tags.iter().any(|(k, v)| k == ROTATION_TAG && v == "off") => Some(StepResult::Skipped(
                    format!("the user opted out since the plan (user tag {ROTATION_TAG}=off): no key created"),
                )),
                Ok(_) => None,
                Err(e) if e.is_not_found() => Some(StepResult::Gone("the user no longer exists".to_owned())),
                Err(e) => Some(StepResult::Skipped(format!(
                    "the user's tags could not be re-read ({e}), so an opt-out ({ROTATION_TAG}=off) since the plan \
                     cannot be ruled out: no key created"
                ))),
            };
            // The created key's id is journaled before its hand-over: a resumed run deletes or takes over only
            // that key.
            let journal = &mut journal;
            let record = |id: &AccessKeyId| {
                journal
                    .write(&JournalEntry { created_key_id: Some(id.to_string()), ..entry("key_created") })
                    .map_err(|e| e.to_string())
            };
            if let Some(held) = held {
                held
            } else {
                match start_rotation(api, secrets, &step.key, &handover, &resume, record).await {
                    Ok(Started::Created(c)) => created(entry("done"), c, handover.switch_by, None),
                    Ok(Started::Recovered(c)) => created(
                        JournalEntry { recovered: true, ..entry("done") },
                        c,
                        handover.switch_by,
                        Some("created by an earlier run that stopped before recording it"),
                    ),
                    Ok(Started::Skipped(reason)) => StepResult::Skipped(reason),
                    Ok(Started::Gone(reason)) => StepResult::Gone(reason),
                    Err(e) => StepResult::Failed(e.to_string()),
                }
            }
        } else {
            match carry_out(api, step.op, &step.key, step.expect_last_used_at, step.other_key.as_ref()).await {
                Ok(Outcome::Done { last_used_at }) => {
                    let mut note = None;
                    if let Some(arn) = &step.secret_arn {
                        // The rotation secret of a deleted key, or of an undone creation.
                        if let Err(e) = retire_secret(secrets, arn).await {
                            note = Some(format!(
                                "the key is gone, but scheduling the deletion of its rotation secret {arn} failed \
                                 ({e}): delete the secret by hand"
                            ));
                        }
                    }
                    let entry = JournalEntry { last_used_at, secret_arn: step.secret_arn.clone(), ..entry("done") };
                    StepResult::Done { entry: Box::new(entry), note }
                }
                Ok(Outcome::Skipped { already_done: true, reason }) if was_started => {
                    // An earlier run made this change and stopped before recording it.
                    let note = format!("made by an earlier run that stopped before recording it ({reason})");
                    StepResult::Done {
                        entry: Box::new(JournalEntry { recovered: true, ..entry("done") }),
                        note: Some(note),
                    }
                }
                Ok(Outcome::Skipped { reason, .. }) => StepResult::Skipped(reason),
                Ok(Outcome::Gone(reason)) => StepResult::Gone(reason),
                Err(e) => StepResult::Failed(e.to_string()),
            }
        };
        let (line, result, reason) = match result {
            StepResult::Done { entry, note } => (JournalEntry { reason: note.clone(), ..*entry }, "done", note),
            StepResult::Skipped(reason) => {
                (JournalEntry { reason: Some(reason.clone()), ..entry("skipped") }, "skipped", Some(reason))
            }
            StepResult::Gone(reason) => {
                (JournalEntry { reason: Some(reason.clone()), ..entry("gone") }, "gone", Some(reason))
            }
            StepResult::Failed(reason) => {
                unreachable = true;
                (JournalEntry { reason: Some(reason.clone()), ..entry("failed") }, "failed", Some(reason))
            }
        };
        journal.write(&line).map_err(Failure::incomplete)?;
        report.push(record(result, reason));
    }

    let rows: Vec<Vec<String>> = report
        .iter()
        .map(|d| {
            vec![
                d.step_n.to_string(),
                d.op.to_owned(),
                d.key.user.account_id.to_string(),
                d.key.user.user_name.clone(),
                d.key.access_key_id.to_string(),
                d.result.to_owned(),
                d.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = String::new();
    crate::output::columns(&mut out, &["#", "ACTION", "ACCOUNT", "USER", "KEY ID", "RESULT", "WHY"], &rows);
    let done = report.iter().filter(|d| d.result == "done").count();
    let gone = report.iter().filter(|d| d.result == "gone").count();
    out.push_str(&format!(
        "{done} of {} change(s) done in this run ({already} before){}; journal {}\n",
        report.len(),
        if gone > 0 { format!("; {gone} gone (the key or its user no longer exists)") } else { String::new() },
        journal_path.display()
    ));
    crate::print(&out)?;
    Ok(if unreachable {
        ExitStatus::Incomplete
    } else if done + gone < report.len() {
        ExitStatus::Findings
    } else {
        ExitStatus::Clean
    })
}
