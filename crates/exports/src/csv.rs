//! CSV: one row per finding, with the JSON report's finding fields as columns (RFC 4180 quoting: user names
//! may contain commas). Absent values are empty cells; the `suppression` object is spread over
//! `suppression_<field>` columns; `evidence` is the JSON object's text in one cell. A text cell that a spreadsheet
//! would take for a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return: user names and tag values
//! may) is written with a leading `'`, as OWASP recommends against CSV injection.

use crate::{ExportError, Result};
use keyaudit_core::report::Report;
use serde_json::Value;

use keyaudit_report::FINDING_COLUMNS;
use keyaudit_report::schema::Finding;

use super::with_accounts;

/// One cell: text as is (neutralised when a spreadsheet would run it), `null` empty, numbers and booleans as JSON
/// writes them, objects as JSON text.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub(crate) fn render(report: &Report) -> Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    writer.write_record(FINDING_COLUMNS)?;
    for (f, account) in with_accounts(report) {
        let value = serde_json::to_value(Finding::of(report, f, account))?;
        let row = FINDING_COLUMNS.iter().map(|column| {
            let nested = column.strip_prefix("suppression_").map(|field| &value["suppression"][field]);
            cell(value.get(*column).or(nested))
        });
        writer.write_record(row)?;
    }
    writer.into_inner().map_err(|e| ExportError::Write(format!("CSV output: {}", e.error())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::report;

    #[test]
    fn the_columns_are_the_json_finding_fields() {
        let r = report();
        let value = serde_json::to_value(Finding::of(&r, &r.findings[0], Some(&r.accounts[0]))).unwrap();
        let mut keys: Vec<String> =
            value.as_object().unwrap().keys().filter(|k| *k != "suppression").cloned().collect();
        keys.extend(["entry", "reason", "owner", "expires"].map(|f| format!("suppression_{f}")));
        let mut columns: Vec<String> = FINDING_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        columns.sort_unstable();
        keys.sort_unstable();
        assert_eq!(keys, columns);
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for (text, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("a=b", "a=b"),
            ("ci,deployer", "ci,deployer"),
        ] {
            assert_eq!(cell(Some(&Value::String(text.into()))), want, "{text:?}");
        }
        assert_eq!(cell(Some(&serde_json::json!(-1))), "-1", "numbers are numbers");
        let mut report = report();
        report.findings[0].user_name = "=cmd|' /C calc'!A0".into();
        let text = String::from_utf8(render(&report).unwrap()).unwrap();
        assert!(text.contains("'=cmd|' /C calc'!A0") && !text.contains(",=cmd"), "{text}");
    }

    #[test]
    fn csv_snapshot_and_round_trip() {
        let bytes = render(&report()).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        insta::assert_snapshot!(text);
        let mut reader = ::csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), FINDING_COLUMNS);
        let rows: Vec<::csv::StringRecord> = reader.records().map(std::result::Result::unwrap).collect();
        assert_eq!(rows.len(), report().findings.len());
        let user = FINDING_COLUMNS.iter().position(|c| *c == "user_name").unwrap();
        let evidence = FINDING_COLUMNS.iter().position(|c| *c == "evidence").unwrap();
        assert!(rows.iter().any(|r| &r[user] == "ci,deployer"), "a user name with a comma survives quoting");
        for row in &rows {
            let parsed: serde_json::Value = serde_json::from_str(&row[evidence]).expect("evidence is JSON text");
            assert!(parsed.is_object());
        }
    }
}
