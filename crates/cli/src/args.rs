//! Command-line flags. Every scan flag is optional here so that the settings layer can tell a flag given on
//! the command line (or through its `KEYAUDIT_*` variable) from one left to the config file or the default.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

/// Audit every account of an AWS Organization's IAM access keys against the CIS AWS Foundations controls.
///
/// keyaudit checks, from each account's IAM credential report: keys rotated within 90 days (KA-IAM-001; CIS
/// 1.14 in v1.3-v4.0, 1.13 in v5.0, 2.13 in v6.0, 2.12 in v7.0; Security Hub IAM.3), no root access key
/// (KA-IAM-002; IAM.4), at most one active key per user (KA-IAM-003), keys used within 45 days (KA-IAM-004;
/// IAM.22). `keyaudit rules` lists them with every mapping. Run it from the management (or delegated-admin)
/// account: first `keyaudit preflight` (can every account be reached and read? the roles to deploy are in
/// deploy/), then `keyaudit scan` (`-o html=report.html` for a page to open or forward; --push-securityhub for
/// Security Hub); add --suppressions (exceptions) and --baseline (the last run's JSON) for scheduled runs, and
/// carry out the CIS procedure with `keyaudit plan`, `apply` and `undo`. Several organizations: scan each to JSON,
/// then `keyaudit merge` them into one report.
///
/// Exit codes of scan: 0 nothing failing; 1 at least one failing finding not under an exception (or warning one
/// with --fail-on warn; only newly failing ones with --fail-on newly-failing); 2 usage or configuration error; 3 at least one
/// account could not be assessed, or a finding was not imported into Security Hub (takes precedence over 1).
#[derive(Debug, Parser)]
#[command(
    name = "keyaudit",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("KEYAUDIT_COMMIT"), ")"),
    propagate_version = true,
    max_term_width = 110
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    /// More logs on stderr (-v: info, -vv: debug, -vvv: debug including the AWS SDK).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    /// No progress bar and only errors in the logs.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Scan the organization (or the caller's standalone account) and write the report.
    Scan(Box<ScanArgs>),
    /// List the rules keyaudit evaluates.
    Rules,
    /// Show one rule's documentation (by id or name, e.g. KA-IAM-001 or stale-access-key).
    Rule {
        /// Rule id or name.
        id: String,
    },
    /// Compare two saved JSON reports (`scan -o json`): new, updated and resolved findings, accounts that
    /// failed or were no longer assessed.
    Diff(DiffArgs),
    /// Plan the CIS rotation procedure's key changes for review: deactivate dormant or never-used failing keys
    /// (scan flags apply); finish rotations (deactivate the older of two active keys once the newer one is used and
    /// the older went quiet); start them for users who opted in (create_key); or, with --delete-deactivated-after,
    /// delete keys keyaudit deactivated long enough ago. Every other key the plan could act on is listed as left
    /// out, with its reason. Changes nothing.
    #[command(mut_arg("unused_days", |a| a.help(PLAN_UNUSED_DAYS_HELP).hide(true)))]
    Plan(Box<PlanArgs>),
    /// Carry out a reviewed plan: re-check each key, then deactivate, delete (--allow-delete) or rotate it
    /// (--allow-create-keys: a second key, its secret handed over in Secrets Manager only), journaling every change.
    /// Changes keys only with --yes.
    Apply(Box<ApplyArgs>),
    /// Check, without generating a report or changing anything, that a scan with these flags can reach and read
    /// every selected account (caller, Organizations, AssumeRole, each IAM action), and say what to deploy where
    /// when not. `-o table` (default) or `-o json[=PATH]`. Exit 0 when every account is ready, 3 otherwise.
    #[command(mut_args(preflight_arg))]
    Preflight(Box<ScanArgs>),
    /// Combine saved JSON reports (`scan -o json`), e.g. one per AWS Organization, into one report, and write it
    /// in any format. Accounts and findings keep their organization; every total is added up. Reports made with
    /// other rules or thresholds, of another schema version, or holding the same organization or account twice,
    /// are refused (exit 2). Exit codes as for scan.
    Merge(MergeArgs),
    /// Re-activate the keys a journal of `apply` deactivated (and that are still inactive), and deactivate the keys
    /// it created (if they show no use; their secrets' deletion scheduled). Changes keys only with --yes.
    Undo(Box<UndoArgs>),
    /// Print the JSON Schema (draft 2020-12) of the JSON report (`-o json`), as docs/json-schema.json holds it.
    Schema,
    /// Tell the people who must act on failing and warning keys: one message per recipient per run (e-mail through
    /// SES, Slack, Teams, a webhook, SNS), each key with its deadline; reminders before it, weekly escalations after.
    /// A dry run unless --send: the messages go to --outbox. Exit 0, or 3 when a message could not be sent.
    Notify(Box<NotifyArgs>),
}

/// Where and as whom the AWS calls of `notify`, `apply` and `undo` go.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AwsArgs {
    /// AWS shared-config profile.
    #[arg(long, value_name = "NAME")]
    pub(crate) profile: Option<String>,

    /// Region for the API endpoints (notify: SES's; SNS topics are reached in their own region) [default: from the
    /// profile or environment, else us-east-1].
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,

    /// Send every AWS call to this endpoint (also AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct NotifyArgs {
    /// The JSON report of the scan that just ran (`keyaudit scan -o json=…`).
    #[arg(value_name = "REPORT.json")]
    pub(crate) report: PathBuf,

    /// Who is told what (TOML: from, catch-all, [[route]], [owners], [slack], [teams], [webhook], …; see
    /// docs/notify.md).
    #[arg(long, value_name = "notify.toml")]
    pub(crate) config: PathBuf,

    /// Send the messages. Without it, a dry run: each message is written to --outbox and nothing is sent.
    #[arg(long)]
    pub(crate) send: bool,

    /// What was sent to whom, when (JSON lines, appended and synced before each send): what makes a re-run send
    /// nothing twice and reminders come on time. Needed with --send; a dry run reads it too.
    #[arg(long, value_name = "FILE")]
    pub(crate) state: Option<PathBuf>,

    /// Where each message is written (.eml per e-mail, .json per post); with --send, a copy of what was sent
    /// [default: keyaudit-outbox in a dry run].
    #[arg(long, value_name = "DIR")]
    pub(crate) outbox: Option<PathBuf>,

    /// A directory with your own notice.txt and/or notice.html (minijinja templates; see docs/notify.md).
    #[arg(long, value_name = "DIR")]
    pub(crate) templates: Option<PathBuf>,

    /// At most this many messages in one run, the most urgent first (escalations, overdue, reminders, then first
    /// notices); the rest are counted on stderr and go out on the next run.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub(crate) max_messages: usize,

    /// Send from a report whose deadlines restart (made without --baseline, or with an empty baseline directory)
    /// although the state file records notices of earlier reports; refused without it (exit 2), as a silent reset
    /// would re-announce every key as new, with a fresh deadline.
    #[arg(long)]
    pub(crate) allow_deadline_reset: bool,

    /// The journals of `keyaudit apply` (*.jsonl): a key whose rotation keyaudit started is listed with where its
    /// replacement's secret is (Secrets Manager) and the date applications must switch by.
    #[arg(long, value_name = "DIR")]
    pub(crate) journal_dir: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) aws: AwsArgs,
}

/// A scan flag as `preflight --help` shows it: the ones preflight has no use for (the rules' thresholds, the
/// report's formats and destinations, exceptions and baselines) are accepted, so that one settings file or
/// environment serves both commands, but not listed; S3 and Security Lake outputs, which preflight refuses, neither.
fn preflight_arg(arg: clap::Arg) -> clap::Arg {
    const NOT_USED: &[&str] = &[
        "as_of",
        "max_age_days",
        "warn_days",
        "unused_days",
        "dormant_days",
        "grace_days",
        "fail_on",
        "suppressions",
        "baseline",
        "s3_sse",
        "s3_kms_key_id",
        "s3_expected_owner",
        "security_lake_role",
        "security_lake_external_id",
        "sarif_include_pass",
        "ocsf_include_pass",
    ];
    match arg.get_id().as_str() {
        id if NOT_USED.contains(&id) => arg.hide(true),
        "outputs" => {
            arg.help("Write the preflight as table (default) or json, to stdout or a local file: -o json=PATH")
        }
        _ => arg,
    }
}

/// `plan --unused-days`: refused on plan's command line, where it was the guard that is now
/// `--deactivate-unused-days` (see [`PlanArgs::deactivate_unused_days`]).
const PLAN_UNUSED_DAYS_HELP: &str = "KA-IAM-004's threshold for the plan's scan, as in `scan`; in `plan` only from the \
    --config file or KEYAUDIT_UNUSED_DAYS: on the command line it is refused, as it was the guard that is now \
    --deactivate-unused-days.";

#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    /// Every scan flag (`keyaudit scan --help`); `-o FILE` (or `-o json=FILE`) is where the plan goes.
    /// `--unused-days` is refused on plan's command line ([`PLAN_UNUSED_DAYS_HELP`]).
    #[command(flatten)]
    pub(crate) scan: ScanArgs,

    /// A key that was used is deactivated only when its last use is this many days ago or more (it may belong to a
    /// monthly or quarterly job) [default: 90]. Keys never used are not held back by it. Not KA-IAM-004's threshold
    /// (--unused-days / KEYAUDIT_UNUSED_DAYS, which the plan's scan evaluates as `scan` does).
    #[arg(
        long,
        env = "KEYAUDIT_DEACTIVATE_UNUSED_DAYS",
        value_name = "DAYS",
        value_parser = clap::value_parser!(u32).range(1..=36500),
        help_heading = "Plan"
    )]
    pub(crate) deactivate_unused_days: Option<u32>,

    /// Plan from this saved JSON report (`scan -o json`) instead of scanning; refused when older than 24 hours.
    #[arg(long, value_name = "REPORT.json", help_heading = "Plan")]
    pub(crate) from_report: Option<PathBuf>,

    /// Never plan changes in this account (12 digits). Repeatable.
    #[arg(long = "protect-account", value_name = "ID", help_heading = "Plan")]
    pub(crate) protect_accounts: Vec<String>,

    /// Never plan changes in this OU path (e.g. /Root/Prod), its subtree included. Repeatable.
    #[arg(long = "protect-ou", value_name = "PATH", help_heading = "Plan")]
    pub(crate) protect_ous: Vec<String>,

    /// How long the plan may be applied [default: 24h].
    #[arg(long, value_name = "DURATION", help_heading = "Plan")]
    pub(crate) valid_for: Option<String>,

    /// Plan deletions instead: keys that a keyaudit journal (--journal-dir) deactivated at least this long ago
    /// (e.g. 30d) and that are still inactive and unused since. Deleting cannot be undone.
    #[arg(long, value_name = "DURATION", help_heading = "Plan")]
    pub(crate) delete_deactivated_after: Option<String>,

    /// Where the journals of earlier `keyaudit apply` runs are (*.jsonl), for --delete-deactivated-after.
    #[arg(long, value_name = "DIR", help_heading = "Plan")]
    pub(crate) journal_dir: Option<PathBuf>,

    /// Print a plan file as a table (checksum verified) and exit.
    #[arg(long, value_name = "PLAN.json", help_heading = "Plan")]
    pub(crate) show: Option<PathBuf>,

    /// Finish a rotation (deactivate the older of a user's two active keys) only when the newer key was used and the
    /// older one not for this many days, both read with iam:GetAccessKeyLastUsed (1-365). The default, 45, outlasts
    /// a monthly job's gap (KA-IAM-004 calls a key unused after as many days): a key used within the last month is
    /// never deactivated by finishing a rotation.
    #[arg(long, value_name = "DAYS", default_value_t = 45, value_parser = clap::value_parser!(u32).range(1..=365),
          help_heading = "Rotation")]
    pub(crate) rotation_quiet_days: u32,

    /// Start rotations (plan create_key) for users in this OU path, subtree included, as if each had the user tag
    /// keyaudit:rotation=auto (a user tagged keyaudit:rotation=off is left out). Repeatable.
    #[arg(long = "start-rotation-ou", value_name = "PATH", help_heading = "Rotation")]
    pub(crate) start_rotation_ous: Vec<String>,

    /// How long applications get to move to a key a rotation creates: the secret's keyaudit:switch-by date
    /// [default: 14d].
    #[arg(long, value_name = "DURATION", help_heading = "Rotation")]
    pub(crate) switch_within: Option<String>,
}

/// Where and as whom `apply` and `undo` act.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ChangeArgs {
    /// Make the changes. Without it (and without typing "yes" at a terminal prompt), print what would be done.
    #[arg(long)]
    pub(crate) yes: bool,

    /// The journal: one JSON line per step, flushed before the next change [default: beside the plan or journal].
    #[arg(long, value_name = "FILE")]
    pub(crate) journal: Option<PathBuf>,

    /// Role assumed in member accounts to change keys; write access belongs there, the audit role stays
    /// read-only [default: KeyauditRemediation].
    #[arg(long, env = "KEYAUDIT_REMEDIATION_ROLE_NAME", value_name = "NAME")]
    pub(crate) remediation_role_name: Option<String>,

    /// IAM path of the remediation role [default: /].
    #[arg(long, value_name = "PATH")]
    pub(crate) remediation_role_path: Option<String>,

    /// ExternalId for AssumeRole, when the remediation role's trust policy requires one.
    #[arg(long, env = "KEYAUDIT_EXTERNAL_ID", value_name = "ID")]
    pub(crate) external_id: Option<String>,

    #[command(flatten)]
    pub(crate) aws: AwsArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    /// The plan (`keyaudit plan -o FILE`).
    #[arg(value_name = "PLAN.json")]
    pub(crate) plan: PathBuf,

    #[command(flatten)]
    pub(crate) change: ChangeArgs,

    /// Also carry out the plan's deletions (with --yes). Deleting a key cannot be undone.
    #[arg(long)]
    pub(crate) allow_delete: bool,

    /// Also carry out the plan's key creations (rotation starts, with --yes): each new key's secret goes into AWS
    /// Secrets Manager in the user's account (keyaudit/rotation/USER/KEY_ID), readable by that user alone.
    #[arg(long)]
    pub(crate) allow_create_keys: bool,

    /// The KMS key (id, ARN or alias) rotation secrets are encrypted with [default: the account's
    /// aws/secretsmanager key].
    #[arg(long, value_name = "KEY")]
    pub(crate) kms_key_id: Option<String>,

    /// At most this many changes in one run; the rest wait for the next run.
    #[arg(long, value_name = "N", default_value_t = 25)]
    pub(crate) max_changes: usize,

    /// At most this many changes in one account per run.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub(crate) max_per_account: usize,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UndoArgs {
    /// A journal written by `keyaudit apply`.
    #[arg(value_name = "JOURNAL.jsonl")]
    pub(crate) journal_file: PathBuf,

    /// Undo only this key's change (its deactivation, or the creation of this key).
    #[arg(long = "key", value_name = "ACCESS_KEY_ID")]
    pub(crate) key: Option<String>,

    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MergeArgs {
    /// The reports to merge, in order (a merged report can be merged again; one report alone is written as it is).
    #[arg(value_name = "REPORT.json", required = true)]
    pub(crate) reports: Vec<PathBuf>,

    /// Write the merged report as FORMAT (table, json, sarif, ocsf, asff, csv, ndjson, html) to PATH, to
    /// --output-dir without =PATH when that is given, else to stdout. Repeatable [default: table to stdout].
    #[arg(long = "output", short = 'o', value_name = "FORMAT[=PATH]")]
    pub(crate) outputs: Vec<String>,

    /// Write every --output without a path into DIR as keyaudit-merged-<UTC start time>.<ext>. Created if missing.
    #[arg(long, value_name = "DIR")]
    pub(crate) output_dir: Option<PathBuf>,

    /// Which findings make the exit code 1 [default: fail]; `newly-failing` needs every report to have had a
    /// --baseline.
    #[arg(long, value_enum)]
    pub(crate) fail_on: Option<FailOnArg>,

    /// SARIF: also report passing findings, as results of kind "pass".
    #[arg(long)]
    pub(crate) sarif_include_pass: bool,

    /// OCSF: also report passing, inactive and resolved findings.
    #[arg(long)]
    pub(crate) ocsf_include_pass: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The earlier report (the baseline).
    #[arg(value_name = "OLD.json")]
    pub(crate) old: PathBuf,
    /// The later report.
    #[arg(value_name = "NEW.json")]
    pub(crate) new: PathBuf,
    /// table or json [default: table].
    #[arg(long = "output", short = 'o', value_name = "FORMAT", default_value = "table")]
    pub(crate) output: DiffFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiffFormat {
    /// Human-readable.
    Table,
    /// Machine-readable.
    Json,
}

impl From<FailOnArg> for keyaudit_core::report::FailOn {
    fn from(arg: FailOnArg) -> Self {
        match arg {
            FailOnArg::Fail => Self::Fail,
            FailOnArg::Warn => Self::Warn,
            FailOnArg::NewlyFailing | FailOnArg::New => Self::NewlyFailing,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum KeyIdsArg {
    /// ListAccessKeys for users with a failing or warning key.
    Failing,
    /// ListAccessKeys for every user with a key.
    All,
    /// Never call ListAccessKeys (key ids are null).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FailOnArg {
    /// Exit 1 when a key fails.
    Fail,
    /// Exit 1 when a key fails or warns.
    Warn,
    /// Exit 1 only for newly failing findings: failing now and not in --baseline (new ones, and ones that warned
    /// then); for CI gates that accept known debt.
    NewlyFailing,
    /// The old name of newly-failing, accepted with a deprecation warning ("new" is also a count of the table, with
    /// another meaning).
    #[value(hide = true)]
    New,
}

impl FailOnArg {
    /// The level, with a deprecation warning for the old name `new` (it keeps working: a job that ran last month
    /// must not break); `what` says where it was given.
    pub(crate) fn resolve(self, what: &str) -> keyaudit_core::report::FailOn {
        if self == FailOnArg::New {
            tracing::warn!(
                "{what} new: deprecated, say --fail-on newly-failing (the same gate: findings failing now and not in \
                 the baseline; \"new\" in the table counts findings failing or warning now and not then)"
            );
        }
        self.into()
    }
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ScanArgs {
    /// Settings file (TOML; keys are the long flag names, e.g. `max-age-days = 90`, `ou = ["/Root/Prod"]`).
    /// KEYAUDIT_* variables and flags override it.
    #[arg(long, env = "KEYAUDIT_CONFIG", value_name = "FILE", help_heading = "Configuration")]
    pub(crate) config: Option<PathBuf>,

    /// AWS shared-config profile (SSO profiles included). Default: the standard credential chain.
    #[arg(long, value_name = "NAME", help_heading = "AWS")]
    pub(crate) profile: Option<String>,

    /// Region for the API endpoints (IAM, STS and Organizations are global). Default: from the profile or
    /// environment, else us-east-1.
    #[arg(long, value_name = "REGION", help_heading = "AWS")]
    pub(crate) region: Option<String>,

    /// Send every AWS call to this endpoint (also AWS_ENDPOINT_URL), e.g. an emulator.
    #[arg(long, value_name = "URL", help_heading = "AWS")]
    pub(crate) endpoint_url: Option<String>,

    /// Audit only accounts under this OU (id like ou-ab12-cdefgh34, or exact path like /Root/Prod; write a '/'
    /// inside an OU name as '\/'), its subtree included. Repeatable; combined with --account as a union.
    #[arg(long = "ou", value_name = "ID|PATH", help_heading = "Selection")]
    pub(crate) ous: Vec<String>,

    /// Audit this account (12 digits). Repeatable.
    #[arg(long = "account", value_name = "ID", help_heading = "Selection")]
    pub(crate) accounts: Vec<String>,

    /// Leave this account out (applied after --ou and --account). Repeatable.
    #[arg(long = "exclude-account", value_name = "ID", help_heading = "Selection")]
    pub(crate) exclude_accounts: Vec<String>,

    /// Audit role assumed in member accounts [default: OrganizationAccountAccessRole].
    #[arg(long, env = "KEYAUDIT_ROLE_NAME", value_name = "NAME", help_heading = "Access")]
    pub(crate) role_name: Option<String>,

    /// IAM path of the audit role [default: /].
    #[arg(long, env = "KEYAUDIT_ROLE_PATH", value_name = "PATH", help_heading = "Access")]
    pub(crate) role_path: Option<String>,

    /// ExternalId for AssumeRole, when the role's trust policy requires one.
    #[arg(long, env = "KEYAUDIT_EXTERNAL_ID", value_name = "ID", help_heading = "Access")]
    pub(crate) external_id: Option<String>,

    /// RoleSessionName for AssumeRole (visible in CloudTrail) [default: keyaudit].
    #[arg(long, env = "KEYAUDIT_SESSION_NAME", value_name = "NAME", help_heading = "Access")]
    pub(crate) session_name: Option<String>,

    /// Assumed-role session length, renewed before expiry (15m to 12h) [default: 1h].
    #[arg(long, env = "KEYAUDIT_SESSION_DURATION", value_name = "DURATION", help_heading = "Access")]
    pub(crate) session_duration: Option<String>,

    /// The instant all ages are measured against (RFC 3339, e.g. 2026-11-28T00:00:00Z) [default: now].
    #[arg(long, env = "KEYAUDIT_AS_OF", value_name = "TIME", help_heading = "Rule")]
    pub(crate) as_of: Option<String>,

    /// Maximum age of an active key in days; exactly this old still passes [default: 90].
    #[arg(long, env = "KEYAUDIT_MAX_AGE_DAYS", value_name = "DAYS", help_heading = "Rule")]
    pub(crate) max_age_days: Option<u32>,

    /// Warn this many days before the maximum age [default: 14].
    #[arg(long, env = "KEYAUDIT_WARN_DAYS", value_name = "DAYS", help_heading = "Rule")]
    pub(crate) warn_days: Option<u32>,

    /// Days without use from which an active key fails KA-IAM-004; exactly this many fails [default: 45].
    #[arg(long, env = "KEYAUDIT_UNUSED_DAYS", value_name = "DAYS", help_heading = "Rule")]
    pub(crate) unused_days: Option<u32>,

    /// Triage: a key last used this many days ago or more is dormant, and can be deactivated [default: 90].
    #[arg(long, env = "KEYAUDIT_DORMANT_DAYS", value_name = "DAYS", help_heading = "Rule")]
    pub(crate) dormant_days: Option<u32>,

    /// Deadlines: days a failing or warning finding may stay open past the later of its first sighting (kept from
    /// --baseline) and its rule's own due date, by severity, e.g. critical=7,high=30 (severities left out keep their
    /// default) [default: critical=7,high=30,medium=30,low=30].
    #[arg(long, env = "KEYAUDIT_GRACE_DAYS", value_name = "SEVERITY=DAYS,...", help_heading = "Rule")]
    pub(crate) grace_days: Option<String>,

    /// User tag keys that name a key's owner, in order of preference, looked up (iam:ListUserTags) only for
    /// users with a failing or warning finding; "" turns the look-up off [default: owner,Owner,email,contact,team].
    #[arg(long, env = "KEYAUDIT_OWNER_TAGS", value_name = "KEYS", help_heading = "Collection")]
    pub(crate) owner_tags: Option<String>,

    /// Run only these rules (ids or names, comma-separated or repeated; `keyaudit rules` lists them)
    /// [default: every rule].
    #[arg(long, env = "KEYAUDIT_RULES", value_name = "ID", value_delimiter = ',', help_heading = "Rule")]
    pub(crate) rules: Vec<String>,

    /// Leave these rules out (ids or names, comma-separated or repeated).
    #[arg(long, env = "KEYAUDIT_SKIP_RULES", value_name = "ID", value_delimiter = ',', help_heading = "Rule")]
    pub(crate) skip_rules: Vec<String>,

    /// Which findings make the exit code 1 [default: fail].
    #[arg(long, env = "KEYAUDIT_FAIL_ON", value_enum, help_heading = "Rule")]
    pub(crate) fail_on: Option<FailOnArg>,

    /// Exceptions file (TOML, one [[suppression]] table per entry: what it matches, reason, owner, expires).
    /// Suppressed findings keep their verdict but count neither for the exit code nor in the totals.
    #[arg(long, env = "KEYAUDIT_SUPPRESSIONS", value_name = "FILE", help_heading = "Rule")]
    pub(crate) suppressions: Option<PathBuf>,

    /// The last run to compare with: a JSON report (`-o json`), or a directory, where the newest keyaudit JSON report
    /// is taken (other formats are ignored; none yet, or the --output-dir not created yet: a first run, where every
    /// failing finding is new). Each finding gets a baseline_state, and the report lists what was resolved since.
    #[arg(long, env = "KEYAUDIT_BASELINE", value_name = "FILE|DIR", help_heading = "Rule")]
    pub(crate) baseline: Option<PathBuf>,

    /// Which users get an iam:ListAccessKeys call to attach key ids [default: failing].
    #[arg(long, env = "KEYAUDIT_KEY_IDS", value_enum, help_heading = "Collection")]
    pub(crate) key_ids: Option<KeyIdsArg>,

    /// Accounts at work at once [default: 32]. An account waiting for AWS to generate its credential report
    /// gives its place up, so the waits of many accounts overlap.
    #[arg(long, env = "KEYAUDIT_CONCURRENCY", value_name = "N", help_heading = "Collection")]
    pub(crate) concurrency: Option<usize>,

    /// IAM requests per second, per target account (IAM quotas are per account) [default: 10].
    #[arg(long, env = "KEYAUDIT_IAM_RPS", value_name = "N", help_heading = "Collection")]
    pub(crate) iam_rps: Option<u32>,

    /// IAM requests per second, per target account, for the optional look-ups after the credential report (key
    /// ids, owners; they follow the report's calls, so the two rates never add up) [default: 10].
    #[arg(long, env = "KEYAUDIT_ENRICHMENT_RPS", value_name = "N", help_heading = "Collection")]
    pub(crate) enrichment_rps: Option<u32>,

    /// STS requests per second for the caller (AssumeRole, GetCallerIdentity), in bursts of a tenth of it [default:
    /// 600, AWS's quota per calling account and Region].
    #[arg(long, env = "KEYAUDIT_STS_RPS", value_name = "N", help_heading = "Collection")]
    pub(crate) sts_rps: Option<u32>,

    /// Pace one Organizations operation (and the others sharing its bucket) at RATE per second, bursts of BURST
    /// (e.g. ListChildren=6/10) [default: AWS's published throttling limits per calling account]. Repeatable.
    #[arg(long = "org-pace", value_name = "OPERATION=RATE[/BURST]", help_heading = "Collection")]
    pub(crate) org_pace: Vec<String>,

    /// Cap every Organizations bucket at N requests per second (and bursts of N) [default: no cap].
    #[arg(long, env = "KEYAUDIT_ORG_RPS", value_name = "N", help_heading = "Collection")]
    pub(crate) org_rps: Option<u32>,

    /// How long keyaudit waits out throttling that others cause (another tool, the console) for one AWS call,
    /// re-sending it after a backoff, before the call counts as failed [default: 5m]. Its own calls never exceed
    /// AWS's published rates, so a scan alone is never throttled.
    #[arg(long, env = "KEYAUDIT_THROTTLE_PATIENCE", value_name = "DURATION", help_heading = "Collection")]
    pub(crate) throttle_patience: Option<String>,

    /// Attempts per AWS call, owned by the SDK's standard retry mode (5xx, connection errors; throttling is waited
    /// out first, see --throttle-patience) [default: 5].
    #[arg(long, env = "KEYAUDIT_MAX_ATTEMPTS", value_name = "N", help_heading = "Collection")]
    pub(crate) max_attempts: Option<u32>,

    /// Attempts to get a credential report while AWS answers LimitExceeded / ReportInProgress /
    /// ReportNotPresent / ReportExpired; then the account fails with report_unavailable [default: 10].
    #[arg(long, env = "KEYAUDIT_REPORT_ATTEMPTS", value_name = "N", help_heading = "Collection")]
    pub(crate) report_attempts: Option<u32>,

    /// Budget for one account's mandatory part (connecting, the credential report); past it the account fails with
    /// reason timeout [default: 5m].
    #[arg(long, env = "KEYAUDIT_ACCOUNT_TIMEOUT", value_name = "DURATION", help_heading = "Collection")]
    pub(crate) account_timeout: Option<String>,

    /// Budget for one account's optional look-ups (key ids, owners) after its report; past it they stop, the
    /// account stays scanned with every verdict, and `enrichment` says how far they got [default: 5m].
    #[arg(long, env = "KEYAUDIT_ENRICHMENT_TIMEOUT", value_name = "DURATION", help_heading = "Collection")]
    pub(crate) enrichment_timeout: Option<String>,

    /// Write the report as FORMAT (table, json, sarif, ocsf, asff, csv, ndjson, html) to PATH, to --output-dir
    /// without =PATH when that is given, else to stdout; PATH may be s3://BUCKET/KEY. security-lake=LOCATION writes
    /// Amazon Security Lake's custom-source objects (OCSF 1.3 Parquet, one per account) under LOCATION
    /// (s3://BUCKET/ext/SOURCE/… or a directory). Repeatable [default: table to stdout].
    #[arg(long = "output", short = 'o', value_name = "FORMAT[=PATH]", help_heading = "Output")]
    pub(crate) outputs: Vec<String>,

    /// Write every --output without a path into DIR as keyaudit-<UTC start time>.<ext> (for scheduled runs;
    /// without --output: JSON there and the table on stdout). Created if missing.
    #[arg(long, env = "KEYAUDIT_OUTPUT_DIR", value_name = "DIR", help_heading = "Output")]
    pub(crate) output_dir: Option<std::path::PathBuf>,

    /// S3 outputs (FORMAT=s3://BUCKET/KEY, --output-dir s3://BUCKET/PREFIX): server-side encryption, AES256
    /// (SSE-S3) or aws:kms (SSE-KMS; with --s3-kms-key-id, that key) [default: AES256].
    #[arg(long, env = "KEYAUDIT_S3_SSE", value_enum, help_heading = "Output")]
    pub(crate) s3_sse: Option<SseArg>,

    /// S3 outputs: the KMS key (id, ARN or alias ARN) of SSE-KMS; implies --s3-sse aws:kms.
    #[arg(long, env = "KEYAUDIT_S3_KMS_KEY_ID", value_name = "KEY", help_heading = "Output")]
    pub(crate) s3_kms_key_id: Option<String>,

    /// S3 outputs: the account that must own the bucket (S3's ExpectedBucketOwner): a bucket of anyone else is
    /// refused, and the report is kept locally.
    #[arg(long, env = "KEYAUDIT_S3_EXPECTED_OWNER", value_name = "ACCOUNT", help_heading = "Output")]
    pub(crate) s3_expected_owner: Option<String>,

    /// -o security-lake: the role Security Lake made for the custom source
    /// (AmazonSecurityLake-Provider-SOURCE-REGION), assumed to write its objects [default: the caller's own
    /// credentials].
    #[arg(long, env = "KEYAUDIT_SECURITY_LAKE_ROLE", value_name = "ROLE_ARN", help_heading = "Output")]
    pub(crate) security_lake_role: Option<String>,

    /// -o security-lake: the external ID given to CreateCustomLogSource (providerIdentity), sent with
    /// --security-lake-role.
    #[arg(long, env = "KEYAUDIT_SECURITY_LAKE_EXTERNAL_ID", value_name = "ID", help_heading = "Output")]
    pub(crate) security_lake_external_id: Option<String>,

    /// SARIF: also report passing findings, as results of kind "pass".
    #[arg(long, env = "KEYAUDIT_SARIF_INCLUDE_PASS", help_heading = "Output")]
    pub(crate) sarif_include_pass: bool,

    /// OCSF: also report passing, inactive and resolved findings.
    #[arg(long, env = "KEYAUDIT_OCSF_INCLUDE_PASS", help_heading = "Output")]
    pub(crate) ocsf_include_pass: bool,

    /// Import the findings into AWS Security Hub, each account's from that account (through the audit role,
    /// which then needs securityhub:BatchImportFindings), 100 per call; a finding refused makes the exit code 3.
    #[arg(long, env = "KEYAUDIT_PUSH_SECURITYHUB", help_heading = "Security Hub")]
    pub(crate) push_securityhub: bool,

    /// The Security Hub region to import into [default: the run's region].
    #[arg(long, env = "KEYAUDIT_SECURITYHUB_REGION", value_name = "REGION", help_heading = "Security Hub")]
    pub(crate) securityhub_region: Option<String>,

    /// BatchImportFindings calls per second per account (AWS allows 10, bursts of 30) [default: 5].
    #[arg(long, env = "KEYAUDIT_SECURITYHUB_RPS", value_name = "N", help_heading = "Security Hub")]
    pub(crate) securityhub_rps: Option<u32>,
}

/// `--s3-sse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
pub(crate) enum SseArg {
    /// SSE-S3.
    #[value(name = "AES256")]
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS.
    #[value(name = "aws:kms")]
    #[serde(rename = "aws:kms")]
    AwsKms,
}
