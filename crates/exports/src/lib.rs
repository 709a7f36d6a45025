//! keyaudit-exports — every file format keyaudit writes, rendered from the report model. Depends on core and report;
//! no AWS SDK.
//!
//! The formats: the terminal table and the diff, JSON (the report crate's schema), SARIF, OCSF, ASFF (and Security Hub's
//! workflow decisions), CSV, NDJSON, the HTML page and Security Lake's Parquet objects. No AWS SDK, no network, no
//! flags: where a file goes and how it is uploaded is the binary's.

use std::collections::HashMap;

use keyaudit_core::eval::Finding;
use keyaudit_core::ids::AccountId;
use keyaudit_core::report::{AccountRecord, FailOn, Report};

pub mod asff;
mod csv;
pub mod diff;
/// The test report every format's snapshot is made from (for tests: feature `fixture`).
#[cfg(any(test, feature = "fixture"))]
#[allow(clippy::unwrap_used)]
pub mod fixture;
mod html;
mod json;
pub mod ndjson;
mod ocsf;
mod sarif;
pub mod security_lake;
pub mod table;
mod wording;
pub mod workflow;

pub use json::render as json_bytes;
pub use ndjson::NdjsonStream;
pub use table::columns;
pub use wording::shown;
use wording::{ExportSeverity, next_step, requirements, rule_tags, sentence};

/// Why an export could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A value could not be serialized as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// CSV output failed.
    #[error("CSV output: {0}")]
    Csv(#[from] ::csv::Error),
    /// The HTML page's templates failed.
    #[error("{what}: {source}")]
    Template {
        /// Which step.
        what: &'static str,
        /// The template engine's error.
        #[source]
        source: minijinja::Error,
    },
    /// A Security Lake record did not fit its Parquet schema, or the Parquet writer failed.
    #[error("{0}")]
    Parquet(String),
    /// Writing a stream failed.
    #[error("{0}")]
    Write(String),
}

impl From<parquet::errors::ParquetError> for ExportError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        ExportError::Parquet(e.to_string())
    }
}

/// What rendering returns.
pub type Result<T> = std::result::Result<T, ExportError>;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
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
    /// One self-contained HTML page.
    Html,
    /// Amazon Security Lake custom source: OCSF 1.3 in Parquet, one object per account in its partition.
    SecurityLake,
}

impl Format {
    /// Every format: its name in `--output`, and the extension of the file keyaudit names for it.
    pub const ALL: &[(&str, Format, &str)] = &[
        ("table", Format::Table, "txt"),
        ("json", Format::Json, "json"),
        ("sarif", Format::Sarif, "sarif"),
        ("ocsf", Format::Ocsf, "ocsf.json"),
        ("asff", Format::Asff, "asff.json"),
        ("csv", Format::Csv, "csv"),
        ("ndjson", Format::Ndjson, "ndjson"),
        ("html", Format::Html, "html"),
        ("security-lake", Format::SecurityLake, "parquet"),
    ];

    /// The format named `value` (any case).
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.iter().find(|(name, ..)| name.eq_ignore_ascii_case(value)).map(|(_, f, _)| *f)
    }

    /// The extension of the file keyaudit names for it.
    pub fn extension(self) -> &'static str {
        Self::ALL.iter().find(|(_, f, _)| *f == self).map_or("out", |(.., ext)| ext)
    }

    /// The `Content-Type` of an uploaded file.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Json | Format::Ocsf | Format::Asff => "application/json",
            Format::Sarif => "application/sarif+json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
            Format::Html => "text/html; charset=utf-8",
            Format::SecurityLake => "application/vnd.apache.parquet",
        }
    }
}

/// Per-format options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputOptions {
    /// SARIF: passing findings too (`--sarif-include-pass`).
    pub sarif_include_pass: bool,
    /// OCSF: passing findings too (`--ocsf-include-pass`).
    pub ocsf_include_pass: bool,
    /// The level from which findings fail the run: the table's verdict line follows it.
    pub fail_on: FailOn,
}

impl Default for OutputOptions {
    fn default() -> Self {
        Self { sarif_include_pass: false, ocsf_include_pass: false, fail_on: FailOn::Fail }
    }
}

/// Each finding with its account's record (name, OU path), in the report's order.
pub fn with_accounts(report: &Report) -> impl Iterator<Item = (&Finding, Option<&AccountRecord>)> {
    let by_id: HashMap<&AccountId, &AccountRecord> = report.accounts.iter().map(|r| (&r.account.id, r)).collect();
    report.findings.iter().map(move |f| (f, by_id.get(&f.account_id).copied()))
}

/// The region of the scan `account` comes from (each organization of a merged report has its own).
pub fn region_of<'a>(report: &'a Report, account: &str) -> &'a str {
    report.run_of(account).origin.as_ref().map_or(keyaudit_core::ids::DEFAULT_REGION, |o| o.region.as_str())
}

/// The account's enrichment status when its optional look-ups were cut short (`partial`, `skipped`), else `None`.
fn enrichment_cut_short(record: Option<&AccountRecord>) -> Option<&'static str> {
    match record.map(|r| &r.status) {
        Some(keyaudit_core::report::AccountStatus::Scanned { enrichment, .. }) if !enrichment.is_complete() => {
            Some(enrichment.status())
        }
        _ => None,
    }
}

/// Renders `report` in `format` (NDJSON can be streamed instead, see [`NdjsonStream`]; Security Lake is one object
/// per account, see [`security_lake::objects`]).
pub fn render(format: Format, report: &Report, opts: &OutputOptions, color: bool) -> Result<Vec<u8>> {
    Ok(match format {
        Format::Table => table::render(report, opts.fail_on, color).into_bytes(),
        Format::Json => json::render(report)?,
        Format::Sarif => sarif::render(report, opts)?,
        Format::Ocsf => ocsf::render(report, opts)?,
        Format::Asff => asff::render(report)?,
        Format::Csv => csv::render(report)?,
        Format::Html => html::render(report)?,
        Format::Ndjson => ndjson::render(report)?,
        Format::SecurityLake => {
            return Err(ExportError::Write("security-lake is one Parquet object per account, not one file".into()));
        }
    })
}
