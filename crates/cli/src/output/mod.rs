//! Output writers. Each maps the core report model to its own output types; files are written atomically
//! (a temporary file in the same directory, renamed into place), so a reader never sees half a report. The
//! one exception is NDJSON, which is streamed line by line as accounts finish.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use jiff::Timestamp;
use std::collections::HashMap;

use keyaudit_core::eval::{Finding, Verdict};
use keyaudit_core::ids::AccountId;
use keyaudit_core::report::{AccountRecord, FailOn, Report};
use keyaudit_core::rules::{RuleMeta, Severity};

mod asff;
mod csv;
mod json;
mod ndjson;
mod ocsf;
mod sarif;
mod table;

pub(crate) use ndjson::NdjsonStream;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Terminal summary.
    Table,
    /// Versioned JSON (schema_version 1).
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// OCSF 1.5 Compliance Finding records.
    Ocsf,
    /// AWS Security Finding Format for Security Hub.
    Asff,
    /// One CSV row per finding.
    Csv,
    /// Streamed JSON lines.
    Ndjson,
}

impl Format {
    const ALL: &[(&str, Format, &str)] = &[
        ("table", Format::Table, "txt"),
        ("json", Format::Json, "json"),
        ("sarif", Format::Sarif, "sarif"),
        ("ocsf", Format::Ocsf, "ocsf.json"),
        ("asff", Format::Asff, "asff.json"),
        ("csv", Format::Csv, "csv"),
        ("ndjson", Format::Ndjson, "ndjson"),
    ];

    fn parse(value: &str) -> Option<Self> {
        Self::ALL.iter().find(|(name, ..)| name.eq_ignore_ascii_case(value)).map(|(_, f, _)| *f)
    }

    fn extension(self) -> &'static str {
        Self::ALL.iter().find(|(_, f, _)| *f == self).map_or("out", |(.., ext)| ext)
    }
}

/// Where one format goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Stdout,
    File(PathBuf),
    /// `--output-dir`: a timestamped file in this directory, named when the run starts.
    Dir(PathBuf),
}

/// One `--output FORMAT[=PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputSpec {
    pub(crate) format: Format,
    pub(crate) target: Target,
}

/// Per-format options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputOptions {
    pub(crate) sarif_include_pass: bool,
    pub(crate) ocsf_include_pass: bool,
    /// The level from which findings fail the run: the table's verdict line follows it.
    pub(crate) fail_on: FailOn,
}

impl Default for OutputOptions {
    fn default() -> Self {
        Self { sarif_include_pass: false, ocsf_include_pass: false, fail_on: FailOn::Fail }
    }
}

impl OutputSpec {
    /// Parses every `--output`. Without `--output`: a table on stdout (and JSON into `--output-dir`, if given).
    /// Formats without a path go to `--output-dir` when it is given, else to stdout (at most one may).
    pub(crate) fn parse_all(values: &[String], output_dir: Option<&Path>) -> Result<Vec<Self>> {
        let mut specs: Vec<Self> = values.iter().map(|v| Self::parse(v, output_dir)).collect::<Result<_>>()?;
        if specs.is_empty() {
            specs.push(Self { format: Format::Table, target: Target::Stdout });
            if let Some(dir) = output_dir {
                specs.push(Self { format: Format::Json, target: Target::Dir(dir.to_owned()) });
            }
        }
        if specs.iter().filter(|s| s.target == Target::Stdout).count() > 1 {
            bail!(
                "--output: at most one format can go to stdout; give the others a path (FORMAT=PATH) or --output-dir"
            );
        }
        if let Some(dir) = output_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow!("--output-dir {}: cannot create the directory ({e})", dir.display()))?;
            probe(dir).map_err(|e| anyhow!("--output-dir {}: cannot write there ({e})", dir.display()))?;
        }
        for spec in &specs {
            if let Target::File(path) = &spec.target {
                check_writable(path)?;
            }
        }
        Ok(specs)
    }

    fn parse(value: &str, output_dir: Option<&Path>) -> Result<Self> {
        let (name, path) = match value.split_once('=') {
            Some((name, path)) => (name, Some(path)),
            None => (value, None),
        };
        let names: Vec<&str> = Format::ALL.iter().map(|(n, ..)| *n).collect();
        let format = Format::parse(name.trim()).ok_or_else(|| {
            anyhow!("--output {value:?}: unknown format {name:?}; expected one of {}", names.join(", "))
        })?;
        let target = match (path, output_dir) {
            (Some("-"), _) => Target::Stdout,
            (Some(p), _) if !p.is_empty() => Target::File(PathBuf::from(p)),
            (_, Some(dir)) => Target::Dir(dir.to_owned()),
            (_, None) => Target::Stdout,
        };
        Ok(Self { format, target })
    }

    /// The file this spec writes to (`None` for stdout), given the run's start time for `--output-dir` names.
    pub(crate) fn path(&self, started_at: Timestamp) -> Option<PathBuf> {
        match &self.target {
            Target::Stdout => None,
            Target::File(p) => Some(p.clone()),
            Target::Dir(dir) => Some(dir.join(format!(
                "keyaudit-{}.{}",
                started_at.strftime("%Y%m%dT%H%M%SZ"),
                self.format.extension()
            ))),
        }
    }
}

/// Fails early (before any AWS call) when an output file could not be written.
fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!("--output {}: is a directory; expected a file path", path.display());
    }
    let dir = parent_dir(path);
    probe(dir).map_err(|e| anyhow!("--output {}: cannot write in {} ({e})", path.display(), dir.display()))
}

/// Creates and removes a temporary file in `dir`: the same operation the atomic write will need.
fn probe(dir: &Path) -> std::io::Result<()> {
    tempfile::NamedTempFile::new_in(dir).map(drop)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Each finding with its account's record (name, OU path), in the report's order.
pub(crate) fn with_accounts(report: &Report) -> impl Iterator<Item = (&Finding, Option<&AccountRecord>)> {
    let by_id: HashMap<&AccountId, &AccountRecord> = report.accounts.iter().map(|r| (&r.account.id, r)).collect();
    report.findings.iter().map(move |f| (f, by_id.get(&f.account_id).copied()))
}

/// Every tag a rule carries in exports: one per CIS benchmark version, Security Hub and Config references.
pub(crate) fn rule_tags(m: &RuleMeta) -> Vec<String> {
    let mut tags = vec!["security".to_owned()];
    tags.extend(m.cis.iter().map(|c| format!("CIS AWS {} {}", c.version, c.control)));
    tags.extend(m.security_hub.iter().map(|c| format!("AWS Security Hub {c}")));
    tags.extend(m.aws_config.iter().map(|c| format!("AWS Config {c}")));
    tags
}

/// Compliance requirements in the form Security Hub and OCSF consumers use.
pub(crate) fn requirements(m: &RuleMeta) -> Vec<String> {
    let mut reqs: Vec<String> =
        m.cis.iter().map(|c| format!("CIS AWS Foundations Benchmark v{}/{}", c.version, c.control)).collect();
    reqs.extend(m.security_hub.iter().map(|c| format!("AWS Security Hub {c}")));
    reqs
}

/// The severity a finding is exported with, in every format: a failing finding carries its rule's severity, a
/// warning is low, anything else informational.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportSeverity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl ExportSeverity {
    pub(crate) fn of(f: &Finding) -> Self {
        match (f.verdict, f.rule.severity) {
            (Verdict::Fail, Severity::Low) | (Verdict::Warn, _) => Self::Low,
            (Verdict::Fail, Severity::Medium) => Self::Medium,
            (Verdict::Fail, Severity::High) => Self::High,
            (Verdict::Fail, Severity::Critical) => Self::Critical,
            (Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved, _) => Self::Informational,
        }
    }

    /// ASFF `Severity.Label`.
    pub(crate) fn asff(self) -> &'static str {
        match self {
            Self::Informational => "INFORMATIONAL",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }

    /// OCSF `severity_id` and `severity`.
    pub(crate) fn ocsf(self) -> (u8, &'static str) {
        match self {
            Self::Informational => (1, "Informational"),
            Self::Low => (2, "Low"),
            Self::Medium => (3, "Medium"),
            Self::High => (4, "High"),
            Self::Critical => (5, "Critical"),
        }
    }
}

/// Text as a sentence ending in a period (SARIF asks for that in messages).
pub(crate) fn sentence(text: &str) -> String {
    let t = text.trim_end();
    if t.ends_with('.') { t.to_owned() } else { format!("{t}.") }
}

/// Renders `report` in `format` (NDJSON only as a whole-report fallback: the scan streams it).
fn render(format: Format, report: &Report, opts: &OutputOptions, color: bool) -> Result<Vec<u8>> {
    Ok(match format {
        Format::Table => table::render(report, opts.fail_on, color).into_bytes(),
        Format::Json => json::render(report)?,
        Format::Sarif => sarif::render(report, opts)?,
        Format::Ocsf => ocsf::render(report, opts)?,
        Format::Asff => asff::render(report)?,
        Format::Csv => csv::render(report)?,
        Format::Ndjson => bail!("NDJSON is streamed during the scan"),
    })
}

/// Opens the NDJSON streams requested, before the scan starts.
pub(crate) fn open_streams(
    specs: &[OutputSpec],
    report_start: Timestamp,
    partition: &keyaudit_core::ids::Partition,
) -> Result<Vec<NdjsonStream>> {
    specs
        .iter()
        .filter(|s| s.format == Format::Ndjson)
        .map(|s| {
            let out: Box<dyn Write + Send> = match s.path(report_start) {
                None => Box::new(std::io::stdout()),
                Some(path) => Box::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("--output {}: cannot create", path.display()))?,
                ),
            };
            Ok(NdjsonStream::new(out, partition.clone()))
        })
        .collect()
}

/// Writes every requested output except the streamed ones.
pub(crate) fn write_all(specs: &[OutputSpec], report: &Report, opts: &OutputOptions) -> Result<()> {
    use std::io::IsTerminal;
    for spec in specs.iter().filter(|s| s.format != Format::Ndjson) {
        match spec.path(report.run.started_at) {
            None => {
                let color = std::io::stdout().is_terminal();
                let bytes = render(spec.format, report, opts, color)?;
                write_stdout(&bytes).context("writing the report to stdout")?;
            }
            Some(path) => {
                let bytes = render(spec.format, report, opts, false)?;
                write_atomically(&path, &bytes)?;
                tracing::info!(path = %path.display(), "report written");
            }
        }
    }
    Ok(())
}

/// Writes to stdout. A reader that went away (`keyaudit scan | head`) is not an error: the output simply ends
/// there, as with ripgrep, and the exit code still reports the outcome.
pub(crate) fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    // Like any file the user creates (0666 less the umask), not tempfile's private 0600: a SIEM forwarder
    // running as another user must be able to read the reports.
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .prefix(".keyaudit-")
        .tempfile_in(parent_dir(path))
        .with_context(|| format!("--output {}: cannot create a temporary file beside it", path.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| anyhow!("--output {}: cannot move the report into place ({})", path.display(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};
    use keyaudit_core::eval::{EvalContext, RuleConfig, evaluate};
    use keyaudit_core::ids::{AccessKeyId, AccountId, Partition};
    use keyaudit_core::inventory::{AccountInventory, CredentialUser, KeyChange, KeySlot, KeySlotRecord, KeyStatus};
    use keyaudit_core::report::{
        AccessMethod, Account, AccountRecord, AccountState, AccountStats, AccountStatus, ClockCheck, FailureCode,
        FailureReason, KeyTally, RunInfo, Scope, SkipReason,
    };
    use keyaudit_core::rules::{RuleSet, builtin};

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn account(id: &str, name: &str, ou: &str, state: AccountState) -> Account {
        Account {
            id: AccountId::parse(id).unwrap(),
            name: Some(name.into()),
            ou_path: Some(ou.into()),
            state,
            access: AccessMethod::AssumeRole {
                role_arn: format!("arn:aws:iam::{id}:role/OrganizationAccountAccessRole"),
            },
        }
    }

    fn key(slot: KeySlot, status: KeyStatus, days: i64, id: Option<&str>) -> KeySlotRecord {
        KeySlotRecord {
            last_used_at: Some(ts("2026-11-27T08:00:00Z")),
            access_key_id: id.map(|i| AccessKeyId::parse(i).unwrap()),
            ..KeySlotRecord::new(slot, status, ts("2026-11-28T12:00:00Z") - SignedDuration::from_hours(24 * days))
        }
    }

    /// A fixed report covering every status and verdict, with every rule.
    fn report() -> Report {
        fixture(builtin(), true)
    }

    /// The fixed report with `rules`; `new_rule_cases` adds the users that only the rules after KA-IAM-001 were
    /// written for (a root key, a key never used), so that without them the fixture is the one-rule fixture.
    fn fixture(rules: RuleSet, new_rule_cases: bool) -> Report {
        let ctx = EvalContext { as_of: ts("2026-11-28T12:00:00Z"), config: RuleConfig::default() };
        let payments = account("000000000002", "payments", "/Root/Prod/Payments", AccountState::Active);
        let mut inv = AccountInventory {
            report_generated_at: Some(ts("2026-11-28T11:00:00Z")),
            users: vec![
                CredentialUser {
                    user_name: "ci,deployer".into(),
                    arn: "arn:aws:iam::000000000002:user/ci,deployer".into(),
                    keys: vec![
                        key(KeySlot::One, KeyStatus::Active, 181, Some("AKIA0000000000000001")),
                        key(KeySlot::Two, KeyStatus::Inactive, 400, Some("AKIA0000000000000002")),
                    ],
                },
                CredentialUser {
                    user_name: "app".into(),
                    arn: "arn:aws:iam::000000000002:user/app".into(),
                    keys: vec![
                        key(KeySlot::One, KeyStatus::Active, 80, None),
                        key(KeySlot::Two, KeyStatus::Active, 3, None),
                    ],
                },
                // Fixed after the cached report was generated: key 1 deactivated, key 2 deleted.
                CredentialUser {
                    user_name: "rotated".into(),
                    arn: "arn:aws:iam::000000000002:user/rotated".into(),
                    keys: vec![
                        KeySlotRecord {
                            change: Some(KeyChange::Deactivated),
                            ..key(KeySlot::One, KeyStatus::Active, 200, Some("AKIA0000000000000003"))
                        },
                        KeySlotRecord {
                            change: Some(KeyChange::Deleted),
                            ..key(KeySlot::Two, KeyStatus::Active, 150, None)
                        },
                    ],
                },
            ],
        };
        if new_rule_cases {
            inv.users.push(CredentialUser {
                user_name: "<root_account>".into(),
                arn: "arn:aws:iam::000000000002:root".into(),
                keys: vec![key(KeySlot::One, KeyStatus::Active, 700, None)],
            });
            inv.users.push(CredentialUser {
                user_name: "idle".into(),
                arn: "arn:aws:iam::000000000002:user/idle".into(),
                keys: vec![KeySlotRecord {
                    last_used_at: None,
                    ..key(KeySlot::One, KeyStatus::Active, 50, Some("AKIA0000000000000004"))
                }],
            });
        }
        let findings = evaluate(&rules, &ctx, &payments.id, &inv);
        let stats =
            AccountStats { api_calls: 4, enrichment_calls: 1, report_retries: 0, sdk_retries: 0, duration_ms: 120 };
        let mut report = Report {
            run: RunInfo {
                as_of: ctx.as_of,
                started_at: ts("2026-11-28T12:00:01Z"),
                finished_at: ts("2026-11-28T12:00:03Z"),
                config: ctx.config,
                scope: Scope::Organization {
                    id: "o-example".into(),
                    management_account_id: AccountId::parse("000000000001").unwrap(),
                },
                caller_arn: "arn:aws:iam::000000000001:user/auditor".into(),
                caller_account_id: AccountId::parse("000000000001").unwrap(),
                partition: Partition::aws(),
                region: "us-east-1".into(),
                accounts_discovered: 4,
                clock: Some(ClockCheck { local: ts("2026-11-28T12:00:01Z"), aws: ts("2026-11-28T11:58:00Z") }),
            },
            rules: rules.metas(),
            accounts: vec![
                AccountRecord {
                    account: payments,
                    status: AccountStatus::Scanned {
                        report_generated_at: inv.report_generated_at,
                        keys: KeyTally::of(&inv),
                    },
                    stats,
                },
                AccountRecord {
                    account: account("000000000003", "forensics", "/Root/Security", AccountState::Active),
                    status: AccountStatus::Failed(FailureReason {
                        code: FailureCode::AssumeRoleDenied,
                        action: Some("sts:AssumeRole"),
                        aws_error_code: Some("AccessDenied".into()),
                        message: "not authorized".into(),
                    }),
                    stats: AccountStats { api_calls: 1, ..AccountStats::default() },
                },
                AccountRecord {
                    account: account("000000000004", "old", "/Root", AccountState::Suspended),
                    status: AccountStatus::Skipped(SkipReason::NotActive(AccountState::Suspended)),
                    stats: AccountStats::default(),
                },
            ],
            findings,
        };
        report.normalize();
        report
    }

    #[test]
    fn table_snapshot() {
        insta::assert_snapshot!(table::render(&report(), FailOn::Fail, false));
    }

    #[test]
    fn json_snapshot() {
        let value: serde_json::Value = serde_json::from_slice(&json::render(&report()).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, { ".tool.version" => "[version]" });
    }

    /// Issue "Findings for many rules": `--rules KA-IAM-001` reproduces the one-rule report exactly; what the
    /// multi-rule model added is additive (these fields), nothing else moved.
    #[test]
    fn ka_iam_001_alone_reproduces_the_single_rule_report() {
        let only = builtin().select(&["KA-IAM-001".to_owned()], &[]).unwrap();
        let mut value: serde_json::Value =
            serde_json::from_slice(&json::render(&fixture(only, false)).unwrap()).unwrap();
        for f in value["findings"].as_array_mut().unwrap() {
            for added in ["subject", "title", "rule_name", "evidence"] {
                assert!(f.as_object_mut().unwrap().remove(added).is_some(), "{added}");
            }
        }
        value["summary"].as_object_mut().unwrap().remove("findings_by_rule").unwrap();
        value["run"].as_object_mut().unwrap().remove("unused_days").unwrap();
        value["tool"]["version"] = "[version]".into();
        let before: serde_json::Value = serde_json::from_str(include_str!("testdata/ka-iam-001-report.json")).unwrap();
        assert_eq!(value, before);
    }

    #[test]
    fn sarif_snapshot() {
        let opts = OutputOptions { sarif_include_pass: true, ..OutputOptions::default() };
        let value: serde_json::Value = serde_json::from_slice(&sarif::render(&report(), &opts).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, {
            ".runs[0].tool.driver.version" => "[version]",
            ".runs[0].tool.driver.semanticVersion" => "[version]",
            ".runs[0].tool.driver.rules[0].help.markdown" => "[docs]",
        });
    }

    #[test]
    fn ocsf_snapshot() {
        let value: serde_json::Value =
            serde_json::from_slice(&ocsf::render(&report(), &OutputOptions::default()).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, { "[].metadata.product.version" => "[version]" });
    }

    #[test]
    fn asff_snapshot() {
        let value: serde_json::Value = serde_json::from_slice(&asff::render(&report()).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, { "[].ProductFields.ProviderVersion" => "[version]" });
    }

    #[test]
    fn csv_snapshot_and_round_trip() {
        let bytes = csv::render(&report()).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        insta::assert_snapshot!(text);
        let mut reader = ::csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), json::FINDING_COLUMNS);
        let rows: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), report().findings.len());
        let user = json::FINDING_COLUMNS.iter().position(|c| *c == "user_name").unwrap();
        let evidence = json::FINDING_COLUMNS.iter().position(|c| *c == "evidence").unwrap();
        assert!(rows.iter().any(|r| &r[user] == "ci,deployer"), "a user name with a comma survives quoting");
        for row in &rows {
            let parsed: serde_json::Value = serde_json::from_str(&row[evidence]).expect("evidence is JSON text");
            assert!(parsed.is_object());
        }
    }

    #[test]
    fn csv_columns_match_the_json_finding_fields() {
        let r = report();
        let value =
            serde_json::to_value(json::finding(&r.findings[0], Some(&r.accounts[0]), &r.run.partition)).unwrap();
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut columns = json::FINDING_COLUMNS.to_vec();
        columns.sort_unstable();
        let mut keys = keys.clone();
        keys.sort_unstable();
        assert_eq!(keys, columns);
    }

    #[test]
    fn ndjson_lines_are_whole_objects_ending_with_a_summary() {
        let r = report();
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().write(b)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let stream = NdjsonStream::new(Box::new(Shared(buf.clone())), r.run.partition.clone());
        for record in &r.accounts {
            let findings: Vec<_> = r.findings.iter().filter(|f| f.account_id == record.account.id).cloned().collect();
            stream.account_done(&keyaudit_scanner::AccountDone { record, findings: &findings });
        }
        stream.finish(&r).unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "finding").count(), r.findings.len());
        assert_eq!(kinds.iter().filter(|k| **k == "account").count(), r.accounts.len());
        assert_eq!(kinds.last(), Some(&"summary"));
        assert_eq!(lines.last().unwrap()["summary"]["keys"]["fail"], 3, "ci, the root key and idle");
    }

    #[test]
    fn output_specs_parse_and_validate() {
        let specs = OutputSpec::parse_all(&["json".into()], None).unwrap();
        assert_eq!(specs, [OutputSpec { format: Format::Json, target: Target::Stdout }]);
        assert_eq!(OutputSpec::parse_all(&[], None).unwrap()[0].format, Format::Table);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let spec = format!("JSON={}", path.display());
        assert_eq!(OutputSpec::parse_all(&[spec], None).unwrap()[0].target, Target::File(path));
        let err = OutputSpec::parse_all(&[format!("json={}", dir.path().display())], None).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let out = dir.path().join("out");
        let specs = OutputSpec::parse_all(&["sarif".into(), "csv".into()], Some(&out)).unwrap();
        let started: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        assert_eq!(specs[0].path(started), Some(out.join("keyaudit-20261128T120000Z.sarif")));
        assert_eq!(specs[1].path(started), Some(out.join("keyaudit-20261128T120000Z.csv")));
        assert!(out.is_dir(), "--output-dir is created");
        let defaults = OutputSpec::parse_all(&[], Some(&out)).unwrap();
        assert_eq!(defaults.len(), 2, "table on stdout and JSON in the directory");
        let a_file = dir.path().join("r.json");
        std::fs::write(&a_file, "x").unwrap();
        let err = OutputSpec::parse_all(&["json".into()], Some(&a_file.join("sub"))).unwrap_err();
        assert!(err.to_string().starts_with("--output-dir "), "{err}");
        assert!(err.to_string().contains("cannot create the directory"), "{err}");
    }

    #[test]
    fn files_are_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".keyaudit-"))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The same mode as a file created the ordinary way (0666 less the umask).
            let reference = dir.path().join("reference");
            std::fs::write(&reference, "x").unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode(&path), mode(&reference));
        }
    }
}
