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
