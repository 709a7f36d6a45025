//! The notify state file (`--state FILE`, JSON lines): what was sent to whom, for which findings, one line per step,
//! each synced to disk before the next send. A message is `sending` before it goes out and `sent` or `failed` after;
//! a `sending` line without an outcome (the run was killed while sending) is a message whose outcome is unknown: it
//! counts as sent, so that nobody is told twice, and the next reminder point brings the key up again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use jiff::Timestamp;
use keyaudit_core::notice::{Sent, Target};
use serde::{Deserialize, Serialize};

/// One line of the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateLine {
    /// `sending`, `sent` or `failed`.
    pub(crate) event: String,
    /// The message: SHA-256 (16 hex) of its recipient, its report's as_of and its findings.
    pub(crate) id: String,
    /// The recipient, as the config writes it.
    pub(crate) to: String,
    /// The report's as_of.
    pub(crate) at: Timestamp,
    /// The wall clock of the step.
    pub(crate) wall: Timestamp,
    /// The findings the message lists (on `sending`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) fingerprints: Vec<String>,
    /// The channel's id of the message (`sent`), when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provider_id: Option<String>,
    /// Why it failed (`failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// What the state file says.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// Messages sent, or whose outcome is unknown: the cadence's history.
    pub(crate) sent: Vec<Sent>,
    /// Every message id that was sent or may have been: never sent again.
    pub(crate) done: BTreeSet<String>,
    /// Message ids whose outcome is unknown (`sending` without an outcome), with their recipient.
    pub(crate) unknown: BTreeMap<String, String>,
}

/// Reads the state file; a missing file is an empty history, a line that does not parse is an error with its number.
pub(crate) fn read(path: &Path) -> Result<History> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
        Err(e) => bail!("--state {}: cannot read ({e})", path.display()),
    };
    let mut lines: Vec<StateLine> = Vec::new();
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        lines
            .push(serde_json::from_str(l).map_err(|e| {
                anyhow!("--state {}:{}: not a keyaudit notify state line ({e})", path.display(), i + 1)
            })?);
    }
    let outcome: BTreeMap<&str, &str> =
        lines.iter().filter(|l| l.event != "sending").map(|l| (l.id.as_str(), l.event.as_str())).collect();
    let mut history = History::default();
    for l in lines.iter().filter(|l| l.event == "sending") {
        let to = Target::parse(&l.to)
            .ok_or_else(|| anyhow!("--state {}: recipient {:?} is not one keyaudit writes", path.display(), l.to))?;
        match outcome.get(l.id.as_str()) {
            Some(&"failed") => continue,
            Some(_) => {}
            None => {
                history.unknown.insert(l.id.clone(), l.to.clone());
            }
        }
        history.done.insert(l.id.clone());
        history.sent.push(Sent { to, at: l.at, fingerprints: l.fingerprints.iter().cloned().collect() });
    }
    Ok(history)
}

/// The state file, appended to and synced line by line.
pub(crate) struct StateFile {
    file: std::fs::File,
    path: PathBuf,
}

impl StateFile {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow!("--state {}: cannot open for appending ({})", path.display(), e.kind()))?;
        Ok(Self { file, path: path.to_owned() })
    }

    pub(crate) fn write(&mut self, line: &StateLine) -> Result<()> {
        let mut bytes = serde_json::to_vec(line)?;
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| anyhow!("--state {}: cannot write ({})", self.path.display(), e.kind()))
    }
}

/// A message's id: SHA-256 (16 hex) of its recipient, its report's `as_of` and the findings it lists.
pub(crate) fn message_id(to: &Target, at: Timestamp, fingerprints: &[String]) -> String {
    use sha2::Digest;
    let mut sorted: Vec<&String> = fingerprints.iter().collect();
    sorted.sort();
    let input = format!("{to}|{at}|{}", sorted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","));
    hex::encode(sha2::Sha256::digest(input.as_bytes()))[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(event: &str, id: &str) -> StateLine {
        StateLine {
            event: event.into(),
            id: id.into(),
            to: "alice@corp.example".into(),
            at: "2026-11-28T12:00:00Z".parse().unwrap(),
            wall: "2026-11-28T12:01:00Z".parse().unwrap(),
            fingerprints: if event == "sending" { vec!["ab".into()] } else { Vec::new() },
            provider_id: None,
            reason: None,
        }
    }

    #[test]
    fn sent_and_unknown_messages_count_failed_ones_are_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        assert!(read(&path).unwrap().sent.is_empty(), "no state yet: nothing sent");
        let mut file = StateFile::open(&path).unwrap();
        for l in
            [line("sending", "1"), line("sent", "1"), line("sending", "2"), line("failed", "2"), line("sending", "3")]
        {
            file.write(&l).unwrap();
        }
        let h = read(&path).unwrap();
        assert_eq!(h.done, BTreeSet::from(["1".to_owned(), "3".to_owned()]));
        assert_eq!(h.unknown.keys().collect::<Vec<_>>(), ["3"], "killed while sending: outcome unknown");
        assert_eq!(h.sent.len(), 2);
        std::fs::write(&path, "{\"event\": 1}\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("state.jsonl:1: not a keyaudit notify state line"), "{err}");
    }
}
