//! NDJSON, streamed: as each account finishes, one line per finding (`"type": "finding"`) and one for the
//! account (`"type": "account"`, its coverage status), then a final `"type": "summary"` line with the run and
//! the counts. Every line is written whole and flushed, so a SIEM tailing the file sees results during a long
//! scan, and an interrupted scan leaves only complete lines.

use std::io::Write;
use std::sync::Mutex;

use anyhow::{Result, anyhow};
use keyaudit_core::ids::Partition;
use keyaudit_core::report::Report;
use keyaudit_scanner::AccountDone;
use serde::Serialize;

use super::json;

#[derive(Serialize)]
struct Line<T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: T,
}

/// An open NDJSON stream.
pub(crate) struct NdjsonStream {
    out: Mutex<Box<dyn Write + Send>>,
    partition: Partition,
    error: Mutex<Option<String>>,
}

fn line<T: Serialize>(kind: &'static str, body: T, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *buf, &Line { kind, body })?;
    buf.push(b'\n');
    Ok(())
}

impl NdjsonStream {
    pub(crate) fn new(out: Box<dyn Write + Send>, partition: Partition) -> Self {
        Self { out: Mutex::new(out), partition, error: Mutex::new(None) }
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
    pub(crate) fn account_done(&self, done: &AccountDone<'_>) {
        let mut buf = Vec::new();
        let result = done
            .findings
            .iter()
            .try_for_each(|f| line("finding", json::finding(f, Some(done.record), &self.partition), &mut buf))
            .and_then(|()| line("account", json::account(done.record), &mut buf));
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
    pub(crate) fn finish(&self, report: &Report) -> Result<()> {
        let mut buf = Vec::new();
        line("summary", json::header(report), &mut buf)?;
        self.write(&buf);
        match self.error.lock().map(|e| e.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(anyhow!("writing the NDJSON stream: {e}")),
            Err(_) => Err(anyhow!("writing the NDJSON stream: poisoned")),
        }
    }
}
