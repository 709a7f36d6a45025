//! Guarded remediation: `keyaudit plan`, `apply` and `undo`. The plan file and the journal are this module's;
//! which keys may be changed is decided in core (`keyaudit_core::remediation`), and each change is re-checked and
//! made by the scanner (`keyaudit_scanner::remediate`).
//!
//! A plan is JSON with a checksum over its content: `apply` refuses a plan that was edited or has expired. The
//! journal is JSON lines, one per step (`started`, then `done`, `skipped` or `failed`), each flushed to disk before
//! the next AWS call, so an interrupted `apply` can be re-run: what is done is skipped, and a change that was made
//! but not yet recorded is recognised by its re-check and recorded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use jiff::Timestamp;
use keyaudit_core::ids::{AccessKeyId, AccountId};
use keyaudit_core::remediation::{ChangeKind, KeyRef, OtherKey, UserRef};
use serde::{Deserialize, Serialize};
use sha2::Digest;

pub(crate) mod apply;
pub(crate) mod plan;

/// The plan file format's version (2: `excluded[]` lists every left-out key, by report slot when its id is unknown;
/// 3: rotations: `create_key` changes, `expect.other_key`, `switch_by`, `secret_arn`, `why.reason_code`).
const PLAN_VERSION: u32 = 3;
const PLAN_KIND: &str = "keyaudit-plan";

/// A reviewed plan, as written to and read from disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanFile {
    pub(crate) kind: String,
    pub(crate) plan_version: u32,
    pub(crate) id: String,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) source: Source,
    pub(crate) settings: PlanSettings,
    pub(crate) summary: PlanSummary,
    pub(crate) changes: Vec<Change>,
    pub(crate) excluded: Vec<ExcludedKey>,
    /// SHA-256 of the plan's canonical JSON with this field empty.
    pub(crate) checksum: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Source {
    /// The report's `as_of` (deactivations), or the plan's creation (deletions).
    pub(crate) as_of: Timestamp,
    pub(crate) organization_id: Option<String>,
    pub(crate) caller_arn: String,
    pub(crate) partition: String,
    /// `--from-report`, when the plan was made from a saved report.
    pub(crate) from_report: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanSettings {
    pub(crate) unused_days: u32,
    pub(crate) protect_accounts: Vec<String>,
    pub(crate) protect_ous: Vec<String>,
    pub(crate) delete_deactivated_after_days: Option<u32>,
    /// `--rotation-quiet-days`.
    pub(crate) rotation_quiet_days: u32,
    /// `--start-rotation-ou`.
    pub(crate) start_rotation_ous: Vec<String>,
    /// `--switch-within`, in days.
    pub(crate) switch_within_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanSummary {
    pub(crate) changes: usize,
    pub(crate) deactivate: usize,
    pub(crate) delete: usize,
    pub(crate) create_key: usize,
    pub(crate) accounts: usize,
    /// Keys left out, by reason code.
    pub(crate) excluded: BTreeMap<String, usize>,
}

/// One change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Change {
    /// 1-based position.
    pub(crate) n: usize,
    /// `deactivate`, `delete` or `create_key`.
    pub(crate) action: String,
    /// A deletion cannot be undone.
    pub(crate) irreversible: bool,
    pub(crate) account_id: String,
    pub(crate) account_name: Option<String>,
    pub(crate) ou_path: Option<String>,
    pub(crate) user_name: String,
    pub(crate) user_arn: String,
    /// The key changed (`create_key`: the key being rotated; the new key is created by `apply`).
    pub(crate) access_key_id: String,
    /// `create_key`: the date applications must use the new key by.
    pub(crate) switch_by: Option<Timestamp>,
    /// `delete` of a rotated key: the rotation secret whose deletion is scheduled with it.
    pub(crate) secret_arn: Option<String>,
    pub(crate) expect: Expect,
    pub(crate) why: Why,
}

/// The state the key must still be in when `apply` re-checks it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expect {
    /// `Active` or `Inactive`.
    pub(crate) status: String,
    /// The last use then; a newer one means it was used since the plan.
    pub(crate) last_used_at: Option<Timestamp>,
    /// A finished rotation: the user's newer key, which must still be active and used.
    pub(crate) other_key: Option<ExpectKey>,
}

/// The user's other key, as a finished rotation expects it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectKey {
    pub(crate) access_key_id: String,
    /// `Active`.
    pub(crate) status: String,
    /// Its last use, as the plan's look-up found it.
    pub(crate) last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Why {
    /// `unused`, `rotation_finished`, `rotation_start` or `waiting_period_over`.
    pub(crate) reason_code: String,
    /// The failing rules (none for a deletion).
    pub(crate) rules: Vec<String>,
    /// `fail` (only failing findings are acted on); null for a deletion.
    pub(crate) verdict: Option<String>,
    /// Triage's usage (`never_used`, `dormant`, `in_use`, `unknown`).
    pub(crate) usage: Option<String>,
    pub(crate) reason: String,
}

/// A key left out of the plan, with the reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExcludedKey {
    pub(crate) action: String,
    pub(crate) account_id: String,
    pub(crate) account_name: Option<String>,
    pub(crate) user_name: String,
    /// Null when the report has no id for the key (`unknown_key_id`, the root user's keys).
    pub(crate) access_key_id: Option<String>,
    /// The credential report slot (1 or 2), for a key from a report.
    pub(crate) key_slot: Option<u8>,
    /// The failing rules that made the key a candidate (deactivation).
    #[serde(default)]
    pub(crate) rules: Vec<String>,
    pub(crate) reason_code: String,
    pub(crate) reason: String,
}

impl ExcludedKey {
    /// The key id, or its report slot when the id is unknown.
    fn shown_key(&self) -> String {
        match (&self.access_key_id, self.key_slot) {
            (Some(id), _) => id.clone(),
            (None, Some(slot)) => format!("slot {slot}, id unknown"),
            (None, None) => "id unknown".to_owned(),
        }
    }
}

impl Change {
    /// The change's kind and key, and the other key a finished rotation expects, checked.
    pub(crate) fn parsed(&self) -> Result<(ChangeKind, KeyRef, Option<OtherKey>)> {
        let kind = ChangeKind::parse(&self.action)
            .ok_or_else(|| anyhow!("change {}: unknown action {:?}", self.n, self.action))?;
        let other = match &self.expect.other_key {
            Some(o) => Some(OtherKey {
                access_key_id: AccessKeyId::parse(&o.access_key_id).map_err(|e| anyhow!("change {}: {e}", self.n))?,
                last_used_at: o.last_used_at,
            }),
            None => None,
        };
        let key = KeyRef {
            user: UserRef {
                account_id: AccountId::parse(&self.account_id).map_err(|e| anyhow!("change {}: {e}", self.n))?,
                account_name: self.account_name.clone(),
                ou_path: self.ou_path.clone(),
                user_name: self.user_name.clone(),
                user_arn: self.user_arn.clone(),
            },
            access_key_id: AccessKeyId::parse(&self.access_key_id).map_err(|e| anyhow!("change {}: {e}", self.n))?,
        };
        Ok((kind, key, other))
    }
}

fn checksum_of(plan: &PlanFile) -> Result<String> {
    let mut blank = plan.clone();
    blank.checksum = String::new();
    Ok(hex::encode(sha2::Sha256::digest(serde_json::to_vec(&blank)?)))
}

impl PlanFile {
    /// Seals the plan: its id (from its content) and checksum.
    pub(crate) fn seal(mut self) -> Result<Self> {
        self.id = String::new();
        self.checksum = String::new();
        self.id = checksum_of(&self)?[..16].to_owned();
        self.checksum = checksum_of(&self)?;
        Ok(self)
    }

    /// Reads a plan and checks that it is one and was not edited.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{shown}: cannot read the plan ({e})"))?;
        let plan: PlanFile = serde_json::from_str(&text)
            .map_err(|e| anyhow!("{shown}: not a keyaudit plan ({e}); make one with `keyaudit plan -o FILE`"))?;
        if plan.kind != PLAN_KIND || plan.plan_version != PLAN_VERSION {
            bail!(
                "{shown}: not a keyaudit plan of version {PLAN_VERSION} (kind {:?}, version {})",
                plan.kind,
                plan.plan_version
            );
        }
        if checksum_of(&plan)? != plan.checksum {
            bail!(
                "{shown}: the plan was edited after keyaudit wrote it (checksum mismatch); make a new plan and review it"
            );
        }
        Ok(plan)
    }

    /// The summary as a table (`keyaudit plan --show`, `apply` without `--yes`).
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Plan {} (created {}, expires {}), from the report as of {}{}",
            self.id,
            self.created_at,
            self.expires_at,
            self.source.as_of,
            self.source.from_report.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
        );
        let s = &self.summary;
        let _ = writeln!(
            out,
            "{} change(s) in {} account(s): {} deactivate, {} delete, {} create_key; {} key(s) left out",
            s.changes,
            s.accounts,
            s.deactivate,
            s.delete,
            s.create_key,
            s.excluded.values().sum::<usize>()
        );
        if s.delete > 0 {
            let _ =
                writeln!(out, "DELETING A KEY CANNOT BE UNDONE: `apply` deletes only with --allow-delete and --yes.");
        }
        if s.create_key > 0 {
            let _ = writeln!(
                out,
                "`apply` creates keys only with --allow-create-keys and --yes; each new key's secret goes to AWS Secrets \
                 Manager in its user's account (keyaudit/rotation/USER/NEW_KEY_ID), readable by that user alone."
            );
        }
        if !self.changes.is_empty() {
            let rows: Vec<Vec<String>> = self
                .changes
                .iter()
                .map(|c| {
                    vec![
                        c.n.to_string(),
                        c.action.to_uppercase(),
                        c.account_id.clone(),
                        c.account_name.clone().unwrap_or_else(|| "-".into()),
                        c.user_name.clone(),
                        c.access_key_id.clone(),
                        c.expect
                            .last_used_at
                            .map_or_else(|| "never".to_owned(), |t| t.strftime("%Y-%m-%d").to_string()),
                        c.why.rules.join(","),
                        match (&c.switch_by, &c.secret_arn) {
                            (Some(by), _) => format!("{} Switch by {}.", c.why.reason, by.strftime("%Y-%m-%d")),
                            (None, Some(arn)) => format!("{} Secret: {arn}.", c.why.reason),
                            (None, None) => c.why.reason.clone(),
                        },
                    ]
                })
                .collect();
            let _ = writeln!(out);
            crate::output::columns(
                &mut out,
                &["#", "ACTION", "ACCOUNT", "NAME", "USER", "KEY ID", "LAST USED", "RULES", "WHY"],
                &rows,
            );
        }
        if !self.excluded.is_empty() {
            let by_reason: Vec<String> = s.excluded.iter().map(|(code, n)| format!("{n} {code}")).collect();
            let _ = writeln!(out, "\nLeft out: {} key(s) ({})", self.excluded.len(), by_reason.join(", "));
            // Keys in use whose users did not opt in are the common case, left to their owners: counted, not listed
            // (the plan file lists them).
            let not_opted_in = s.excluded.get("not_opted_in").copied().unwrap_or(0);
            if not_opted_in > 0 {
                let _ = writeln!(
                    out,
                    "{not_opted_in} key(s) in use are left to their owners (not opted in to rotation: user tag \
                     keyaudit:rotation=auto or --start-rotation-ou); the plan file lists them under excluded."
                );
            }
            let rows: Vec<Vec<String>> = self
                .excluded
                .iter()
                .filter(|e| e.reason_code != "not_opted_in")
                .map(|e| {
                    vec![
                        e.action.to_uppercase(),
                        e.account_id.clone(),
                        e.user_name.clone(),
                        e.shown_key(),
                        if e.rules.is_empty() { "-".to_owned() } else { e.rules.join(",") },
                        e.reason.clone(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                crate::output::columns(&mut out, &["ACTION", "ACCOUNT", "USER", "KEY ID", "RULES", "WHY"], &rows);
            }
        }
        out
    }
}

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JournalEntry {
    pub(crate) at: Timestamp,
    /// The plan's id (`undo:<plan id>` in an undo journal).
    pub(crate) plan_id: String,
    /// The change's position in the plan (or in the undone journal's list).
    pub(crate) n: usize,
    /// `deactivate`, `delete`, `create_key`, `reactivate` or `deactivate_created` (undo of a `create_key`;
    /// `delete_created` in journals of earlier versions).
    pub(crate) operation: String,
    /// `started`, then `done`, `skipped`, `gone` (the key or its user no longer exists) or `failed`; a
    /// `create_key` writes `key_created` (with `created_key_id`) between `started` and the hand-over.
    pub(crate) phase: String,
    pub(crate) account_id: String,
    pub(crate) account_name: Option<String>,
    pub(crate) ou_path: Option<String>,
    pub(crate) user_name: String,
    pub(crate) user_arn: String,
    /// The key changed (`create_key`: the key being rotated; `deactivate_created`: the key keyaudit had created).
    pub(crate) access_key_id: String,
    /// `create_key`: the key created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created_key_id: Option<String>,
    /// `create_key`: the secret its secret access key is in; `delete` and `deactivate_created`: the rotation secret
    /// whose deletion was scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret_arn: Option<String>,
    /// `create_key`: the date applications must use the new key by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) switch_by: Option<Timestamp>,
    /// The key's last use just before the change.
    pub(crate) last_used_at: Option<Timestamp>,
    /// Why a change was skipped or failed.
    pub(crate) reason: Option<String>,
    /// A change an earlier run made but could not record, found done by this run's re-check.
    #[serde(default)]
    pub(crate) recovered: bool,
}

impl JournalEntry {
    pub(crate) fn key(&self) -> Result<KeyRef> {
        Ok(KeyRef {
            user: UserRef {
                account_id: AccountId::parse(&self.account_id)?,
                account_name: self.account_name.clone(),
                ou_path: self.ou_path.clone(),
                user_name: self.user_name.clone(),
                user_arn: self.user_arn.clone(),
            },
            access_key_id: AccessKeyId::parse(&self.access_key_id)?,
        })
    }
}

/// Reads a journal (a missing file is an empty journal); a line that does not parse is an error with its number.
pub(crate) fn read_journal(path: &Path) -> Result<Vec<JournalEntry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("{}: cannot read the journal ({e})", path.display()),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| anyhow!("{}:{}: not a journal line ({e})", path.display(), i + 1))
        })
        .collect()
}

/// Every journal in `dir` (`*.jsonl`), their lines in time order.
pub(crate) fn read_journals(dir: &Path) -> Result<Vec<JournalEntry>> {
    let listing = std::fs::read_dir(dir).map_err(|e| anyhow!("--journal-dir {}: cannot read ({e})", dir.display()))?;
    let mut entries = Vec::new();
    for file in listing.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
    {
        entries.extend(read_journal(&file)?);
    }
    entries.sort_by_key(|e| e.at);
    Ok(entries)
}

pub(crate) use keyaudit_notify::StartedRotation;

/// The rotations keyaudit started that are still open, by the user's ARN (`keyaudit notify --journal-dir` tells the
/// key's owner): a rotation ends when its old key is deactivated or deleted by keyaudit (finished), or its creation
/// is undone.
pub(crate) fn started_rotations(entries: &[JournalEntry]) -> BTreeMap<String, StartedRotation> {
    let mut started: BTreeMap<String, StartedRotation> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.phase == "done") {
        match (e.operation.as_str(), &e.created_key_id, &e.secret_arn, e.switch_by) {
            ("create_key", Some(key), Some(arn), Some(by)) => {
                let rotation = StartedRotation {
                    old_key: e.access_key_id.clone(),
                    new_key: key.clone(),
                    secret_arn: arn.clone(),
                    switch_by: by,
                };
                started.insert(e.user_arn.clone(), rotation);
            }
            ("delete_created" | "deactivate_created", ..) => {
                started.retain(|_, r| r.new_key != e.access_key_id);
            }
            ("deactivate" | "delete", ..) => started.retain(|_, r| r.old_key != e.access_key_id),
            _ => {}
        }
    }
    started
}

/// An append-only journal, each line written and synced to disk before the next step.
pub(crate) struct Journal {
    file: std::fs::File,
    pub(crate) path: PathBuf,
}

impl Journal {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow!("--journal {}: cannot open for appending ({e})", path.display()))?;
        Ok(Self { file, path: path.to_owned() })
    }

    pub(crate) fn write(&mut self, entry: &JournalEntry) -> Result<()> {
        use std::io::Write;
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| anyhow!("{}: cannot write the journal ({e})", self.path.display()))
    }
}

/// The journal beside a file: `plan.json` → `plan.journal.jsonl`.
pub(crate) fn journal_beside(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().map_or_else(|| "keyaudit".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}.{suffix}.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_line_that_does_not_parse_names_its_line_and_a_missing_journal_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        assert!(read_journal(&path).unwrap().is_empty(), "no journal yet: nothing done");
        std::fs::write(&path, "\n{\"not\": \"an entry\"}\n").unwrap();
        let err = read_journal(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:2: not a journal line", path.display())), "{err}");
    }

    #[test]
    fn a_rotation_is_open_from_its_creation_until_its_old_key_is_retired_or_the_creation_undone() {
        let line = |operation: &str, key: &str, created: Option<&str>| JournalEntry {
            at: "2026-12-01T00:00:00Z".parse().unwrap(),
            plan_id: "p".into(),
            n: 1,
            operation: operation.into(),
            phase: "done".into(),
            account_id: "000000000002".into(),
            account_name: None,
            ou_path: None,
            user_name: "u".into(),
            user_arn: "arn:aws:iam::000000000002:user/u".into(),
            access_key_id: key.into(),
            created_key_id: created.map(str::to_owned),
            secret_arn: created.map(|_| "arn:aws:secretsmanager:eu-west-1:000000000002:secret:s".to_owned()),
            switch_by: created.map(|_| "2026-12-15T00:00:00Z".parse().unwrap()),
            last_used_at: None,
            reason: None,
            recovered: false,
        };
        let start = line("create_key", "AKIAOLD0000000000001", Some("AKIANEW0000000000001"));
        assert_eq!(started_rotations(std::slice::from_ref(&start)).len(), 1);
        for (end, open) in [
            (line("deactivate", "AKIAOLD0000000000001", None), false),
            (line("delete", "AKIAOLD0000000000001", None), false),
            (line("deactivate_created", "AKIANEW0000000000001", None), false),
            (line("delete_created", "AKIANEW0000000000001", None), false),
            (line("deactivate", "AKIAOTHER00000000001", None), true),
        ] {
            assert_eq!(started_rotations(&[start.clone(), end.clone()]).len(), usize::from(open), "{end:?}");
        }
    }

    #[test]
    fn the_journal_sits_beside_its_plan_or_journal() {
        assert_eq!(journal_beside(Path::new("/x/plan.json"), "journal"), Path::new("/x/plan.journal.jsonl"));
        assert_eq!(journal_beside(Path::new("/x/plan.journal.jsonl"), "undo"), Path::new("/x/plan.journal.undo.jsonl"));
    }
}
