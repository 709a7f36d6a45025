//! The notify state file (`--state FILE`, JSON lines): what was sent to whom, for which findings, one line per step,
//! each synced to disk before the next send. A message is `sending` before it goes out and `sent` or `failed` after;
//! a `sending` line without an outcome (the run was killed while sending) is a message whose outcome is unknown: it
//! counts as sent, so that nobody is told twice, and the next reminder point brings the key up again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use keyaudit_core::notice::{Sent, Target};
use serde::{Deserialize, Serialize};

use crate::{Result, bail, err};

/// One line of the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateLine {
    /// `sending`, `sent` or `failed`.
    pub event: String,
    /// The message: SHA-256 (16 hex) of its recipient, its report's as_of and its findings.
    pub id: String,
    /// The recipient, as the config writes it.
    pub to: String,
    /// The report's as_of.
    pub at: Timestamp,
    /// The wall clock of the step.
    pub wall: Timestamp,
    /// The findings the message lists (on `sending`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
    /// The channel's id of the message (`sent`), when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// Why it failed (`failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the state file says.
#[derive(Debug, Default)]
pub struct History {
    /// Messages sent, or whose outcome is unknown: the cadence's history.
    pub sent: Vec<Sent>,
    /// Every message id that was sent or may have been: never sent again.
    pub done: BTreeSet<String>,
    /// Message ids whose outcome is unknown (`sending` without an outcome), with their recipient.
    pub unknown: BTreeMap<String, String>,
}

/// Reads the state file; a missing file is an empty history, a line that does not parse is an error with its number
/// — except a last line cut short (no line end: a run killed while writing it), which is left out with a warning.
/// (Such a line is never a lost send: a message's `sending` line is synced before it goes out, so a torn `sending`
/// line is a message that never went, and a torn outcome leaves its `sending` line, an outcome unknown: counted as
/// sent.)
pub fn read(path: &Path) -> Result<History> {
    history(path, &lines(path)?.0)
}

/// The state file's lines, a torn last line left out (with a warning), and whether there was one.
fn lines(path: &Path) -> Result<(Vec<StateLine>, bool)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => bail!("--state {}: cannot read ({e})", path.display()),
    };
    let torn = !text.is_empty() && !text.ends_with('\n');
    let all: Vec<(usize, &str)> = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).collect();
    let mut lines: Vec<StateLine> = Vec::with_capacity(all.len());
    for (n, &(i, l)) in all.iter().enumerate() {
        match serde_json::from_str(l) {
            Ok(line) => lines.push(line),
            Err(_) if torn && n + 1 == all.len() => tracing::warn!(
                "--state {}:{}: the last line was cut short (a run stopped while writing it); it is left out",
                path.display(),
                i + 1
            ),
            Err(e) => bail!("--state {}:{}: not a keyaudit notify state line ({e})", path.display(), i + 1),
        }
    }
    Ok((lines, torn))
}

fn history(path: &Path, lines: &[StateLine]) -> Result<History> {
    let outcome: BTreeMap<&str, &str> =
        lines.iter().filter(|l| l.event != "sending").map(|l| (l.id.as_str(), l.event.as_str())).collect();
    let mut history = History::default();
    for l in lines.iter().filter(|l| l.event == "sending") {
        let to = Target::parse(&l.to)
            .ok_or_else(|| err!("--state {}: recipient {:?} is not one keyaudit writes", path.display(), l.to))?;
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

/// Every message of the last `KEEP_ALL_DAYS` before the newest one is kept by compaction (a re-run of a recent
/// report must still find its messages, never to send them twice); an older one only while it is the last message
/// to its recipient about one of its findings (the cadence needs nothing else). Failed messages count for nothing.
const KEEP_ALL_DAYS: i64 = 90;

/// The lines compaction keeps, in their order.
fn compacted(lines: Vec<StateLine>) -> Vec<StateLine> {
    let outcome: BTreeMap<String, String> =
        lines.iter().filter(|l| l.event != "sending").map(|l| (l.id.clone(), l.event.clone())).collect();
    let counted = |l: &StateLine| l.event == "sending" && outcome.get(&l.id).is_none_or(|o| o != "failed");
    let newest = lines.iter().filter(|l| counted(l)).map(|l| l.at).max();
    let horizon = newest.and_then(|n| n.checked_sub(jiff::SignedDuration::from_hours(24 * KEEP_ALL_DAYS)).ok());
    let mut last: BTreeMap<(&str, &str), (Timestamp, &str)> = BTreeMap::new();
    for l in lines.iter().filter(|l| counted(l)) {
        for f in &l.fingerprints {
            let entry = last.entry((l.to.as_str(), f.as_str())).or_insert((l.at, l.id.as_str()));
            if l.at >= entry.0 {
                *entry = (l.at, l.id.as_str());
            }
        }
    }
    let mut keep: BTreeSet<String> = last.into_values().map(|(_, id)| id.to_owned()).collect();
    keep.extend(lines.iter().filter(|l| counted(l) && horizon.is_none_or(|h| l.at >= h)).map(|l| l.id.clone()));
    lines.into_iter().filter(|l| keep.contains(&l.id)).collect()
}

/// `--send`'s hold on the state file: an exclusive lock on `STATE.lock` beside it, for the whole run, so that two
/// overlapping runs never both send (the second stops at once and says why). Released when dropped (or when the
/// process ends, however it ends).
pub struct Lock {
    _file: std::fs::File,
}

/// Takes the lock of the state file `path`.
pub fn lock(path: &Path) -> Result<Lock> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| {
            err!("--state {}: cannot open its lock {} ({})", path.display(), lock_path.display(), e.kind())
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Lock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "--state {}: another `keyaudit notify --send` is running with this state file (it holds {}); nothing was \
             sent: run again once it has finished",
            path.display(),
            lock_path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            bail!("--state {}: cannot lock {} ({})", path.display(), lock_path.display(), e.kind())
        }
    }
}

/// Reads the state file under the lock, compacted: the lines [`compacted`] keeps, written beside it and renamed into
/// place (a crash leaves the old file or the new one, never half of one) when that drops anything or a torn last
/// line. The file is read once; returns its history and, when it was rewritten, its lines before and after.
pub fn read_compacted(path: &Path, _lock: &Lock) -> Result<(History, Option<(usize, usize)>)> {
    let (lines, torn) = lines(path)?;
    let before = lines.len();
    let kept = compacted(lines);
    let history = history(path, &kept)?;
    if kept.len() == before && !torn {
        return Ok((history, None));
    }
    let mut bytes = Vec::new();
    for l in &kept {
        serde_json::to_writer(&mut bytes, l)?;
        bytes.push(b'\n');
    }
    replace(path, &bytes).map_err(|e| err!("--state {}: cannot compact ({e})", path.display()))?;
    Ok((history, Some((before, kept.len()))))
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it, synced, renamed into place (a crash leaves
/// the old file or the new one, never half of one).
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Like any file the user creates (0666 less the umask), not tempfile's private 0600.
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.prefix(".keyaudit-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// The state file, appended to and synced line by line.
pub struct StateFile {
    file: std::fs::File,
    path: PathBuf,
}

impl StateFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| err!("--state {}: cannot open for appending ({})", path.display(), e.kind()))?;
        Ok(Self { file, path: path.to_owned() })
    }

    pub fn write(&mut self, line: &StateLine) -> Result<()> {
        let mut bytes = serde_json::to_vec(line)?;
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| err!("--state {}: cannot write ({})", self.path.display(), e.kind()))
    }
}

/// A message's id: SHA-256 (16 hex) of its recipient, its report's `as_of` and the findings it lists.
pub fn message_id(to: &Target, at: Timestamp, fingerprints: &[String]) -> String {
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

    fn sending(id: &str, to: &str, at: &str, fingerprints: &[&str]) -> StateLine {
        StateLine {
            to: to.into(),
            at: at.parse().unwrap(),
            fingerprints: fingerprints.iter().map(|f| (*f).to_owned()).collect(),
            ..line("sending", id)
        }
    }

    #[test]
    fn a_torn_last_line_is_left_out_and_any_other_bad_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let mut file = StateFile::open(&path).unwrap();
        file.write(&line("sending", "1")).unwrap();
        file.write(&line("sent", "1")).unwrap();
        drop(file);
        let whole = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{whole}{{\"event\":\"sending\",\"id\":\"2\",\"to")).unwrap();
        let h = read(&path).unwrap();
        assert_eq!(h.done, BTreeSet::from(["1".to_owned()]), "the torn line left out, the rest read");
        // Compaction under the lock drops it for good, so that the next line appended starts a line of its own.
        let lock = lock(&path).unwrap();
        let (history, rewritten) = read_compacted(&path, &lock).unwrap();
        assert_eq!((history.done, rewritten), (BTreeSet::from(["1".to_owned()]), Some((2, 2))));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
        // A bad line that is not the last, or the last one when complete, is an error naming it.
        std::fs::write(&path, format!("{{\"event\": 1}}\n{whole}")).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("state.jsonl:1: not a keyaudit notify state line"));
    }

    #[test]
    fn a_second_sender_is_refused_while_the_first_holds_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let held = lock(&path).unwrap();
        let err = lock(&path).err().unwrap().to_string();
        assert!(err.contains("another `keyaudit notify --send` is running with this state file"), "{err}");
        drop(held);
        assert!(lock(&path).is_ok(), "released with the first run");
    }

    #[test]
    fn compaction_keeps_the_last_word_per_recipient_and_finding_and_every_recent_message() {
        let at = |days: i64| {
            let t: Timestamp = "2027-12-01T00:00:00Z".parse().unwrap();
            (t - jiff::SignedDuration::from_hours(24 * days)).to_string()
        };
        let mut lines = Vec::new();
        // A year of weekly messages to alice about key a, and about key b until it was fixed 200 days ago.
        for week in 0..52 {
            let days = 7 * week;
            let fps: &[&str] = if days > 200 { &["a", "b"] } else { &["a"] };
            lines.push(sending(&format!("w{week}"), "alice@corp.example", &at(days), fps));
            lines.push(StateLine { event: "sent".into(), ..line("sent", &format!("w{week}")) });
        }
        // A failed message: it counts for nothing and goes.
        lines.push(sending("failed", "bob@corp.example", &at(1), &["c"]));
        lines.push(StateLine { reason: Some("HTTP 500".into()), ..line("failed", "failed") });
        let kept = compacted(lines);
        let ids: BTreeSet<&str> = kept.iter().map(|l| l.id.as_str()).collect();
        // The 13 weeks within 90 days, and the last message about b (week 29, 203 days ago).
        let want: BTreeSet<String> = (0..=12).map(|w| format!("w{w}")).chain(["w29".to_owned()]).collect();
        assert_eq!(ids, want.iter().map(String::as_str).collect(), "{ids:?}");
        assert_eq!(kept.len(), 2 * want.len(), "each with its outcome");
    }
}
