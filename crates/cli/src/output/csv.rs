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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixture::report;

    #[test]
    fn csv_snapshot_and_round_trip() {
        let bytes = render(&report()).unwrap();
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
}
