//! Saved JSON reports read back (`--baseline`, `keyaudit diff`): only what a comparison needs, checked for
//! what it must be (a keyaudit report of a schema version this build understands). Unknown fields are ignored,
//! so reports from newer builds of the same schema version read fine.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use jiff::Timestamp;
use keyaudit_core::baseline::{Coverage, Snapshot, SnapshotAccount, SnapshotFinding, thresholds};
use keyaudit_core::eval::Verdict;
use keyaudit_core::ids::AccountId;
use serde::Deserialize;

use crate::output::SCHEMA_VERSION;

#[derive(Deserialize)]
struct Version {
    schema_version: Option<u64>,
}

#[derive(Deserialize)]
struct Saved {
    schema_version: Option<u32>,
    tool: Option<Tool>,
    run: Run,
    #[serde(default)]
    accounts: Vec<Account>,
    #[serde(default)]
    findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct Tool {
    name: String,
}

#[derive(Deserialize)]
struct Run {
    as_of: Timestamp,
    scope: Option<String>,
    organization_id: Option<String>,
    caller_account_id: Option<String>,
    partition: String,
    fingerprint_scheme: Option<String>,
    max_age_days: u32,
    warn_days: u32,
    unused_days: u32,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    id: String,
}

#[derive(Deserialize)]
struct Account {
    account_id: String,
    name: Option<String>,
    ou_path: Option<String>,
    status: String,
    reason_code: Option<String>,
}

#[derive(Deserialize)]
struct Finding {
    fingerprint: String,
    rule_id: String,
    account_id: String,
    user_name: String,
    user_arn: String,
    key_slot: Option<u8>,
    access_key_id: Option<String>,
    verdict: String,
    message: String,
    suppression: Option<serde_json::Value>,
}

/// Reads a keyaudit JSON report; `flag` names where it came from in messages (`--baseline`, `diff`).
pub(crate) fn load(flag: &str, path: &Path) -> Result<Snapshot> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{flag} {shown}: cannot read the file ({e})"))?;
    // The version first (other fields skipped, nothing kept), so that a newer report gets that message rather
    // than whatever field it changed; then only the fields a comparison needs, straight from the bytes.
    let version: Version = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("{flag} {shown}: not JSON ({e}); expected a report written by `keyaudit scan -o json`"))?;
    match version.schema_version {
        None => bail!("{flag} {shown}: no schema_version; expected a report written by `keyaudit scan -o json`"),
        Some(v) if v > u64::from(SCHEMA_VERSION) => bail!(
            "{flag} {shown}: schema_version {v} is newer than this keyaudit understands ({SCHEMA_VERSION}); \
             upgrade keyaudit or compare with a report of this version"
        ),
        Some(_) => {}
    }
    let saved: Saved =
        serde_json::from_slice(&bytes).map_err(|e| anyhow!("{flag} {shown}: not a keyaudit JSON report ({e})"))?;
    if saved.tool.as_ref().is_none_or(|t| t.name != "keyaudit") || saved.schema_version.is_none() {
        bail!("{flag} {shown}: not a keyaudit JSON report (tool.name is not \"keyaudit\")");
    }
    let Some(caller_account_id) = saved.run.caller_account_id.filter(|_| saved.run.scope.as_deref() != Some("merged"))
    else {
        bail!(
            "{flag} {shown}: a merged report (keyaudit merge) spans several organizations; compare each \
             organization's own reports (merge reports that were each made with --baseline to see the change across \
             all of them)"
        );
    };
    let Some(scheme) = saved.run.fingerprint_scheme else {
        bail!(
            "{flag} {shown}: the report has no run.fingerprint_scheme (written by an older keyaudit whose \
             fingerprints cannot be matched); start a new baseline with this version's report"
        );
    };
    let account_id = |s: &str, what: &str| AccountId::parse(s).map_err(|e| anyhow!("{flag} {shown}: {what}: {e}"));
    let accounts = saved
        .accounts
        .into_iter()
        .map(|a| {
            Ok(SnapshotAccount {
                account_id: account_id(&a.account_id, "accounts[].account_id")?,
                name: a.name,
                ou_path: a.ou_path,
                coverage: Coverage::parse(&a.status).ok_or_else(|| {
                    anyhow!("{flag} {shown}: account status {:?} is not one keyaudit writes", a.status)
                })?,
                reason_code: a.reason_code,
            })
        })
        .collect::<Result<_>>()?;
    let findings = saved
        .findings
        .into_iter()
        .map(|f| {
            Ok(SnapshotFinding {
                verdict: Verdict::parse(&f.verdict).ok_or_else(|| {
                    anyhow!("{flag} {shown}: finding verdict {:?} is not one keyaudit writes", f.verdict)
                })?,
                fingerprint: f.fingerprint,
                rule_id: f.rule_id,
                account_id: account_id(&f.account_id, "findings[].account_id")?,
                user_name: f.user_name,
                user_arn: f.user_arn,
                key_slot: f.key_slot,
                access_key_id: f.access_key_id,
                message: f.message,
                suppressed: f.suppression.is_some_and(|s| !s.is_null()),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Snapshot {
        as_of: saved.run.as_of,
        organization_id: saved.run.organization_id,
        caller_account_id,
        partition: saved.run.partition,
        fingerprint_scheme: scheme,
        rules: saved.run.rules.into_iter().map(|r| r.id).collect::<BTreeSet<_>>(),
        thresholds: thresholds(saved.run.max_age_days, saved.run.warn_days, saved.run.unused_days),
        accounts,
        findings,
    })
}
