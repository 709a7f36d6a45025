//! NDJSON, streamed: as each account finishes, one line per finding (`"type": "finding"`) and one for the
//! account (`"type": "account"`, its coverage status), then a final `"type": "summary"` line with the run and
//! the counts. Every line is written whole and flushed, so a SIEM tailing the file sees results during a long
//! scan, and an interrupted scan leaves only complete lines.

use std::io::Write;
use std::sync::Mutex;

use crate::{ExportError, Result};
use keyaudit_core::eval::Finding;
use keyaudit_core::ids::Partition;
use keyaudit_core::report::{AccountRecord, Report};
use serde::Serialize;

use keyaudit_core::eval::GraceDays;
use keyaudit_report::{FindingRun, schema};

#[derive(Serialize)]
struct Line<T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: T,
}

/// One account's finding lines and its account line.
fn lines(
    record: &AccountRecord,
    findings: &[Finding],
    run: &FindingRun<'_>,
    buf: &mut Vec<u8>,
) -> serde_json::Result<()> {
    findings
        .iter()
        .try_for_each(|f| line("finding", schema::Finding::with(f, Some(record), run), buf))
        .and_then(|()| line("account", schema::Account::of(record, run.organization_id), buf))
}

/// The whole report at once, in the stream's shape (`keyaudit merge`): each account's findings and account line,
/// in account order, then the summary.
pub(crate) fn render(report: &Report) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut findings = report.findings.as_slice();
    for record in &report.accounts {
        let n = findings.iter().take_while(|f| f.account_id == record.account.id).count();
        let (own, rest) = findings.split_at(n);
        lines(record, own, &FindingRun::of(report, &record.account.id), &mut buf)?;
        findings = rest;
    }
    line("summary", schema::Header::of(report), &mut buf)?;
    Ok(buf)
}

/// An open NDJSON stream.
pub struct NdjsonStream {
    out: Mutex<Box<dyn Write + Send>>,
    partition: Partition,
    /// The organization every account of the scan belongs to (`None` outside one).
    organization_id: Option<String>,
    /// The scan's as_of and grace days (each finding's first sighting and deadline).
    as_of: jiff::Timestamp,
    grace_days: GraceDays,
    error: Mutex<Option<String>>,
}

fn line<T: Serialize>(kind: &'static str, body: T, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *buf, &Line { kind, body })?;
    buf.push(b'\n');
    Ok(())
}

impl NdjsonStream {
    pub fn new(
        out: Box<dyn Write + Send>,
        partition: Partition,
        organization_id: Option<String>,
        as_of: jiff::Timestamp,
        grace_days: GraceDays,
    ) -> Self {
        Self { out: Mutex::new(out), partition, organization_id, as_of, grace_days, error: Mutex::new(None) }
    }

    fn write(&self, bytes: &[u8]) {
        let result = match self.out.lock() {
            Ok(mut out) => out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| e.to_string()),
            Err(_) => Err("the NDJSON writer was poisoned".into()),
        };
        if let Err(e) = result
            && let Ok(mut slot) = self.error.lock()
        {
            slot.get_or_insert(e);
        }
    }

    /// Writes one account's findings and its coverage line, in one write.
    pub fn account_done(&self, record: &AccountRecord, findings: &[Finding]) {
        let mut buf = Vec::new();
        let run = FindingRun {
            partition: &self.partition,
            organization_id: self.organization_id.as_deref(),
            as_of: self.as_of,
            grace_days: self.grace_days,
        };
        let result = lines(record, findings, &run, &mut buf);
        match result {
            Ok(()) => self.write(&buf),
            Err(e) => {
                if let Ok(mut slot) = self.error.lock() {
                    slot.get_or_insert(e.to_string());
                }
            }
        }
    }

    /// Writes the summary line and reports the first write error, if any.
    pub fn finish(&self, report: &Report) -> Result<()> {
        let mut buf = Vec::new();
        line("summary", schema::Header::of(report), &mut buf)?;
        self.write(&buf);
        match self.error.lock().map(|e| e.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(ExportError::Write(format!("writing the NDJSON stream: {e}"))),
            Err(_) => Err(ExportError::Write("writing the NDJSON stream: poisoned".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::report;

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
        let stream = NdjsonStream::new(
            Box::new(Shared(buf.clone())),
            r.run.partition.clone(),
            None,
            r.run.as_of,
            r.run.config.grace_days(),
        );
        for record in &r.accounts {
            let findings: Vec<_> = r.findings.iter().filter(|f| f.account_id == record.account.id).cloned().collect();
            stream.account_done(record, &findings);
        }
        stream.finish(&r).unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "finding").count(), r.findings.len());
        assert_eq!(kinds.iter().filter(|k| **k == "account").count(), r.accounts.len());
        assert_eq!(kinds.last(), Some(&"summary"));
        assert_eq!(lines.last().unwrap()["summary"]["keys"]["fail"], 2, "ci and the root key; idle's is suppressed");
        assert_eq!(lines.last().unwrap()["summary"]["suppressed"]["fail"], 1);
    }
}
