//! Output writers. Each maps the core report model to its own output types; files are written atomically
//! (a temporary file in the same directory, renamed into place), so a reader never sees half a report.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use keyaudit_core::report::Report;
use keyaudit_core::rules::RuleSet;

mod json;
mod table;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Terminal summary.
    Table,
    /// Versioned JSON (schema_version 1).
    Json,
}

impl Format {
    const ALL: &[(&str, Format)] = &[("table", Format::Table), ("json", Format::Json)];

    fn parse(value: &str) -> Option<Self> {
        Self::ALL.iter().find(|(name, _)| name.eq_ignore_ascii_case(value)).map(|(_, f)| *f)
    }
}

/// Where one format goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Stdout,
    File(PathBuf),
}

/// One `--output FORMAT[=PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputSpec {
    pub(crate) format: Format,
    pub(crate) target: Target,
}

impl OutputSpec {
    /// Parses every `--output`; none means a table on stdout. At most one may go to stdout.
    pub(crate) fn parse_all(values: &[String]) -> Result<Vec<Self>> {
        let mut specs: Vec<Self> = values.iter().map(|v| Self::parse(v)).collect::<Result<_>>()?;
        if specs.is_empty() {
            specs.push(Self { format: Format::Table, target: Target::Stdout });
        }
        if specs.iter().filter(|s| s.target == Target::Stdout).count() > 1 {
            bail!("--output: at most one format can go to stdout; give the others a path (FORMAT=PATH)");
        }
        for spec in &specs {
            if let Target::File(path) = &spec.target {
                check_writable(path)?;
            }
        }
        Ok(specs)
    }

    fn parse(value: &str) -> Result<Self> {
        let (name, path) = match value.split_once('=') {
            Some((name, path)) => (name, Some(path)),
            None => (value, None),
        };
        let names: Vec<&str> = Format::ALL.iter().map(|(n, _)| *n).collect();
        let format = Format::parse(name.trim()).ok_or_else(|| {
            anyhow!("--output {value:?}: unknown format {name:?}; expected one of {}", names.join(", "))
        })?;
        let target = match path {
            None => Target::Stdout,
            Some("" | "-") => Target::Stdout,
            Some(p) => Target::File(PathBuf::from(p)),
        };
        Ok(Self { format, target })
    }
}

/// Fails early (before any AWS call) when an output file could not be written.
fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!("--output {}: is a directory; expected a file path", path.display());
    }
    let dir = parent_dir(path);
    tempfile::NamedTempFile::new_in(dir)
        .map(drop)
        .map_err(|e| anyhow!("--output {}: cannot write in {} ({e})", path.display(), dir.display()))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Renders `report` in `format`.
fn render(format: Format, report: &Report, rules: &RuleSet, color: bool) -> Result<Vec<u8>> {
    match format {
        Format::Table => Ok(table::render(report, rules, color).into_bytes()),
        Format::Json => json::render(report, rules),
    }
}

/// Writes every requested output.
pub(crate) fn write_all(specs: &[OutputSpec], report: &Report, rules: &RuleSet) -> Result<()> {
    use std::io::IsTerminal;
    for spec in specs {
        match &spec.target {
            Target::Stdout => {
                let color = std::io::stdout().is_terminal();
                let bytes = render(spec.format, report, rules, color)?;
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes).and_then(|()| out.flush()).context("writing the report to stdout")?;
            }
            Target::File(path) => {
                let bytes = render(spec.format, report, rules, false)?;
                write_atomically(path, &bytes)?;
            }
        }
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(parent_dir(path))
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
    use keyaudit_core::inventory::{AccountInventory, CredentialUser, KeySlot, KeySlotRecord, KeyStatus};
    use keyaudit_core::report::{
        AccessMethod, Account, AccountRecord, AccountState, AccountStats, AccountStatus, FailureCode, FailureReason,
        RunInfo, Scope, SkipReason,
    };
    use keyaudit_core::rules::builtin;

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
            slot,
            status,
            last_rotated: ts("2026-11-28T12:00:00Z") - SignedDuration::from_hours(24 * days),
            last_used_at: Some(ts("2026-11-27T08:00:00Z")),
            last_used_service: None,
            last_used_region: None,
            access_key_id: id.map(|i| AccessKeyId::parse(i).unwrap()),
            created_at: None,
        }
    }

    /// A fixed report covering every status and verdict.
    fn report() -> Report {
        let rules = builtin();
        let ctx = EvalContext { as_of: ts("2026-11-28T12:00:00Z"), config: RuleConfig::default() };
        let payments = account("000000000002", "payments", "/Root/Prod/Payments", AccountState::Active);
        let inv = AccountInventory {
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
            ],
        };
        let findings = evaluate(&rules, &ctx, &payments.id, &inv);
        let stats = AccountStats {
            api_calls: 4,
            enrichment_calls: 1,
            report_retries: 0,
            sdk_retries: 0,
            duration_ms: 120,
            unmatched_key_ids: 0,
        };
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
                accounts_discovered: 4,
            },
            accounts: vec![
                AccountRecord {
                    account: payments,
                    status: AccountStatus::Scanned { report_generated_at: inv.report_generated_at },
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
        insta::assert_snapshot!(table::render(&report(), &builtin(), false));
    }

    #[test]
    fn json_snapshot() {
        let value: serde_json::Value = serde_json::from_slice(&json::render(&report(), &builtin()).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, { ".tool.version" => "[version]" });
    }

    #[test]
    fn output_specs_parse_and_validate() {
        let specs = OutputSpec::parse_all(&["json".into()]).unwrap();
        assert_eq!(specs, [OutputSpec { format: Format::Json, target: Target::Stdout }]);
        assert_eq!(OutputSpec::parse_all(&[]).unwrap()[0].format, Format::Table);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let spec = format!("JSON={}", path.display());
        assert_eq!(OutputSpec::parse_all(&[spec]).unwrap()[0].target, Target::File(path));
        let err = OutputSpec::parse_all(&[format!("json={}", dir.path().display())]).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }

    #[test]
    fn files_are_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
    }
}
