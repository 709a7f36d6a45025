//! CSV: one row per finding, with the JSON report's finding fields as columns (RFC 4180 quoting: user names
//! may contain commas). Absent values are empty cells; `evidence` is the JSON object's text in one cell.

use anyhow::Result;
use keyaudit_core::report::Report;

use super::{json, with_accounts};

pub(crate) fn render(report: &Report) -> Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    for (f, account) in with_accounts(report) {
        writer.serialize(json::csv_finding(f, account, &report.run.partition)?)?;
    }
    if report.findings.is_empty() {
        // Headers are written with the first row; an empty report still gets them.
        writer.write_record(json::FINDING_COLUMNS)?;
    }
    writer.into_inner().map_err(|e| anyhow::anyhow!("CSV output: {}", e.error()))
}
