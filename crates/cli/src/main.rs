//! keyaudit — the binary: flags, settings (file < environment < flags), progress, exit codes, dispatch; and the
//! deliveries that are the command's own (S3 uploads, the Security Hub push, sending notices, the plan and journal
//! files). Depends on every crate above.
//!
//! keyaudit: audits every account of an AWS Organization's IAM access keys against the CIS AWS Foundations
//! access-key controls.
//!
//! Exit codes: 0 clean; 1 failing findings at or above `--fail-on`; 2 usage or configuration error;
//! 3 at least one account not assessed (or the organization could not be discovered).

use std::io::Write;
use std::process::ExitCode;

use anyhow::anyhow;
use keyaudit_core::rules::builtin;
use tracing_subscriber::EnvFilter;

mod args;
mod aws;
mod merge;
mod notify;
mod output;
mod pacing;
mod preflight;
mod progress;
mod reload;
mod remediate;
mod saved;
mod scan;
mod securityhub;
mod settings;
mod suppressions;

use args::{Cli, Command};

/// The documented exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    Clean = 0,
    Findings = 1,
    Usage = 2,
    Incomplete = 3,
}

impl From<keyaudit_core::report::Outcome> for ExitStatus {
    fn from(outcome: keyaudit_core::report::Outcome) -> Self {
        use keyaudit_core::report::Outcome;
        match outcome {
            Outcome::Clean => Self::Clean,
            Outcome::Findings => Self::Findings,
            Outcome::Incomplete => Self::Incomplete,
        }
    }
}

/// An error with the exit status it maps to.
pub(crate) struct Failure {
    status: ExitStatus,
    error: anyhow::Error,
}

impl Failure {
    pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self { status: ExitStatus::Usage, error: error.into() }
    }
    pub(crate) fn incomplete(error: impl Into<anyhow::Error>) -> Self {
        Self { status: ExitStatus::Incomplete, error: error.into() }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let filter = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,keyaudit=info,keyaudit_scanner=info,keyaudit_org_discovery=info",
        (false, 2) => "warn,keyaudit=debug,keyaudit_scanner=debug,keyaudit_org_discovery=debug",
        (false, _) => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(progress::LogWriter)
        // No colours: the log writer escapes every control character, ESC included (see `progress::LogWriter`).
        .with_ansi(false)
        .with_target(false)
        .init();
}

/// `keyaudit rules`: every rule with its severity, title and compliance mappings.
fn rules_listing() -> String {
    let none = |v: &[&str]| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
    let mut out = String::new();
    for meta in builtin().metas() {
        let cis: Vec<String> = meta.cis.iter().map(|c| format!("{} {}", c.version, c.control)).collect();
        out.push_str(&format!("{}  {}  [{}]  {}\n", meta.id, meta.name, meta.severity.as_str(), meta.title));
        out.push_str(&format!("    CIS AWS Foundations: {}\n", cis.join(", ")));
        out.push_str(&format!("    AWS Security Hub: {}\n", none(meta.security_hub)));
        out.push_str(&format!("    AWS Config: {}\n", none(meta.aws_config)));
    }
    out
}

pub(crate) fn print(text: &str) -> Result<ExitStatus, Failure> {
    output::write_stdout(text.as_bytes()).map_err(|e| Failure::incomplete(anyhow!("writing to stdout: {e}")))?;
    Ok(ExitStatus::Clean)
}

/// One thread drives every command's calls: keyaudit waits on AWS far more than it computes (a 50,000-account
/// scan keeps its thread busy under a tenth of the time), and with worker threads each answer woke another thread
/// (futex and eventfd wake-ups, task switches): a quarter more CPU per account, measured.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::incomplete(anyhow!("cannot start the async runtime: {e}")))
}

/// `keyaudit diff OLD NEW`: the comparison of two saved reports.
fn diff(args: &args::DiffArgs) -> Result<ExitStatus, Failure> {
    use keyaudit_core::baseline::{Baseline, Sides};
    let old = Baseline::new(saved::load("diff OLD", &args.old).map_err(Failure::usage)?);
    let new = saved::load("diff NEW", &args.new).map_err(Failure::usage)?;
    let sides = Sides { old: format!("OLD ({})", args.old.display()), new: format!("NEW ({})", args.new.display()) };
    old.check_compatible(&new, &sides).map_err(|e| Failure::usage(anyhow::Error::new(e).context("keyaudit diff")))?;
    let comparison = old.compare(&new);
    let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let bytes = output::diff::render(
        &old,
        &new,
        &comparison,
        (&args.old, &args.new),
        args.output == args::DiffFormat::Json,
        color,
    )
    .map_err(Failure::incomplete)?;
    output::write_stdout(&bytes).map_err(|e| Failure::incomplete(anyhow!("writing to stdout: {e}")))?;
    Ok(ExitStatus::Clean)
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<ExitStatus, Failure> {
    match cli.command {
        Command::Rules => print(&rules_listing()),
        Command::Rule { id } => {
            let meta = builtin()
                .find(&id)
                .ok_or_else(|| Failure::usage(anyhow!("unknown rule {id:?}; `keyaudit rules` lists them")))?;
            print(meta.docs)
        }
        Command::Schema => print(&keyaudit_report::json_schema()),
        Command::Notify(args) => runtime()?.block_on(notify::run(&args)),
        Command::Diff(args) => diff(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Plan(args) => {
            let unused_days = matches.subcommand_matches("plan").and_then(|m| m.value_source("unused_days"));
            runtime()?.block_on(remediate::plan::run(&args, cli.quiet, unused_days))
        }
        Command::Apply(args) => runtime()?.block_on(remediate::apply::apply(&args)),
        Command::Undo(args) => runtime()?.block_on(remediate::apply::undo(&args)),
        Command::Preflight(args) => {
            let settings = settings::Settings::resolve(&args).map_err(Failure::usage)?;
            runtime()?.block_on(preflight::run(settings))
        }
        Command::Scan(args) => {
            let settings = settings::Settings::resolve(&args).map_err(Failure::usage)?;
            runtime()?.block_on(scan::run(settings, cli.quiet))
        }
    }
}

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.verbose, cli.quiet);
    match run(cli, &matches) {
        Ok(status) => ExitCode::from(status as u8),
        Err(Failure { status, error }) => {
            // A closed stderr (`2>&1 | head`) must not turn an error into a panic.
            // Inert: an error can carry names from member accounts; keyaudit's own line breaks stay.
            let message = keyaudit_core::text::shown_lines(&keyaudit_core::aws_error::describe(error.as_ref()));
            let _ = writeln!(std::io::stderr(), "keyaudit: error: {message}");
            ExitCode::from(status as u8)
        }
    }
}

/// mimalloc rather than the system allocator: each AWS call allocates and frees many small objects (the SDK's
/// configuration layers, signing, headers), and glibc's malloc and free were a fifth of a scan's CPU (profiled).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
