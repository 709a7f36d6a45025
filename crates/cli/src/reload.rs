//! A saved JSON report read back whole into the core report model (`keyaudit merge`, `plan --from-report`): the
//! inverse of `output::json`, so that every export can be written from saved reports. Each value is checked as it
//! is read, and every finding's fingerprint is recomputed and must match the one saved: a report that was edited
//! or truncated is refused rather than silently re-exported or acted on.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use keyaudit_core::baseline::{
    AccountChange, BaselineState, ChangeCounts, Comparison, Coverage, ResolvedFinding, SnapshotAccount, SnapshotFinding,
};
use keyaudit_core::eval::{ActiveKey, AgeSource, Evidence, FINGERPRINT_SCHEME, Finding, KeyFacts, RuleConfig, Verdict};
use keyaudit_core::ids::{AccessKeyId, AccountId, Partition};
use keyaudit_core::inventory::{KeyChange, KeySlot, KeyStatus, Owner};
use keyaudit_core::report::{
    AccessMethod, Account, AccountRecord, AccountState, AccountStats, AccountStatus, ClockCheck, Enrichment,
    FailureCode, FailureReason, KeyTally, Origin, Part, Report, RunInfo, Scope, SkipReason,
};
use keyaudit_core::rules::{RuleMeta, builtin};
use keyaudit_core::suppress::{AppliedSuppression, EntryState, EntryStatus, Selector, Suppression, UserArnGlob};
use keyaudit_core::triage::{Action, Triage, Usage};
use serde::Deserialize;

use crate::output::SCHEMA_VERSION;

#[derive(Deserialize)]
struct Saved {
    run: Run,
    summary: Summary,
    accounts: Vec<SavedAccount>,
    findings: Vec<SavedFinding>,
    #[serde(default)]
    resolved: Vec<SavedChanged>,
    suppressions: Option<Vec<SavedEntry>>,
    baseline: Option<SavedBaseline>,
}

#[derive(Deserialize)]
struct Run {
    as_of: Timestamp,
    started_at: Timestamp,
    finished_at: Timestamp,
    max_age_days: u32,
    warn_days: u32,
    unused_days: u32,
    dormant_days: Option<u32>,
    #[serde(flatten)]
    scan: Scan,
    partition: String,
    fingerprint_scheme: Option<String>,
    discovery: String,
    rules: Vec<RuleRef>,
    organizations: Option<Vec<Organization>>,
}

#[derive(Deserialize)]
struct Scan {
    scope: String,
    organization_id: Option<String>,
    management_account_id: Option<String>,
    caller_arn: Option<String>,
    caller_account_id: Option<String>,
    region: Option<String>,
    clock: Option<Clock>,
}

#[derive(Deserialize)]
struct Clock {
    local: Timestamp,
    aws: Timestamp,
}

#[derive(Deserialize)]
struct Organization {
    #[serde(flatten)]
    scan: Scan,
    as_of: Timestamp,
    started_at: Timestamp,
    finished_at: Timestamp,
    accounts_discovered: usize,
    discovery: String,
}

#[derive(Deserialize)]
struct RuleRef {
    id: String,
}

#[derive(Deserialize)]
struct Summary {
    accounts: SummaryAccounts,
    since_baseline: Option<Since>,
}

#[derive(Deserialize)]
struct SummaryAccounts {
    discovered: usize,
}

#[derive(Deserialize)]
struct Since {
    new: usize,
    still_open: usize,
    resolved: usize,
    findings_new: usize,
    findings_unchanged: usize,
    findings_updated: usize,
}

#[derive(Deserialize)]
struct SavedAccount {
    organization_id: Option<String>,
    account_id: String,
    name: Option<String>,
    ou_path: Option<String>,
    state: String,
    status: String,
    reason: Option<String>,
    reason_code: Option<String>,
    reason_action: Option<String>,
    reason_aws_error_code: Option<String>,
    report_generated_at: Option<Timestamp>,
    keys_total: Option<usize>,
    keys_active: Option<usize>,
    access: String,
    role_arn: Option<String>,
    api_calls: u32,
    enrichment: Option<SavedEnrichment>,
    enrichment_calls: u32,
    tag_calls: u32,
    report_retries: u32,
    sdk_retries: u32,
    duration_ms: u64,
}

#[derive(Deserialize)]
struct SavedEnrichment {
    wanted: u32,
    done: u32,
}

#[derive(Deserialize)]
struct SavedFinding {
    fingerprint: String,
    rule_id: String,
    account_id: String,
    user_name: String,
    user_arn: String,
    key_slot: Option<u8>,
    access_key_id: Option<String>,
    key_status: Option<String>,
    change_since_report: Option<String>,
    last_rotated: Option<Timestamp>,
    created_at: Option<Timestamp>,
    age_seconds: Option<i64>,
    last_used_at: Option<Timestamp>,
    last_used_service: Option<String>,
    last_used_region: Option<String>,
    age_source: Option<String>,
    verdict: String,
    message: String,
    usage: Option<String>,
    action: String,
    action_reason: Option<String>,
    owner: Option<String>,
    owner_tag: Option<String>,
    suppression: Option<SavedSuppression>,
    baseline_state: Option<String>,
    baseline_verdict: Option<String>,
    evidence: SavedEvidence,
}

#[derive(Deserialize)]
struct SavedSuppression {
    entry: String,
    reason: String,
    owner: String,
    expires: Date,
}

/// The evidence shapes of `output::json::JsonEvidence`, most specific first (`RootKey` is the empty object).
#[derive(Deserialize)]
#[serde(untagged)]
enum SavedEvidence {
    Rotation { max_age_days: u32, due_at: Timestamp },
    ActiveKeys { active_keys: Vec<SavedActiveKey>, rotation_under_way: bool },
    Usage { unused_days: u32, unused_since: Timestamp, never_used: bool },
    RootKey {},
}

#[derive(Deserialize)]
struct SavedActiveKey {
    key_slot: u8,
    access_key_id: Option<String>,
    last_rotated: Timestamp,
}

#[derive(Deserialize)]
struct SavedChanged {
    fingerprint: String,
    rule_id: String,
    account_id: String,
    user_name: String,
    user_arn: String,
    key_slot: Option<u8>,
    access_key_id: Option<String>,
    verdict: Option<String>,
    baseline_verdict: Option<String>,
    suppressed: bool,
    message: String,
}

#[derive(Deserialize)]
struct SavedEntry {
    entry: String,
    line: usize,
    state: String,
    matched: usize,
    reason: String,
    owner: String,
    expires: Date,
    allow_long: bool,
    select: SavedSelect,
}

#[derive(Deserialize)]
struct SavedSelect {
    fingerprint: Option<String>,
    access_key_id: Option<String>,
    user_arn: Option<String>,
    account_id: Option<String>,
    ou_path: Option<String>,
    rules: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct SavedBaseline {
    as_of: Timestamp,
    threshold_changes: Vec<SavedThreshold>,
    accounts_newly_failed: Vec<SavedAccountChange>,
    accounts_no_longer_assessed: Vec<SavedAccountChange>,
}

#[derive(Deserialize)]
struct SavedThreshold {
    name: String,
    baseline: u32,
    current: u32,
}

#[derive(Deserialize)]
struct SavedAccountChange {
    account_id: String,
    name: Option<String>,
    ou_path: Option<String>,
    baseline_status: Option<String>,
    status: Option<String>,
    reason_code: Option<String>,
}

/// Reads the keyaudit JSON report at `path` whole; `label` names it in messages.
pub(crate) fn load(label: &str, path: &Path) -> Result<Report> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{label}: cannot read the file ({e})"))?;
    from_slice(&bytes).with_context(|| label.to_owned())
}

/// Parses a report from its JSON bytes.
pub(crate) fn from_slice(bytes: &[u8]) -> Result<Report> {
    let version = crate::saved::schema_version(bytes)?;
    if version != u64::from(SCHEMA_VERSION) {
        bail!(
            "schema_version {version}, but this keyaudit reads and writes schema_version {SCHEMA_VERSION}: use \
             reports written by the same keyaudit release"
        );
    }
    let saved: Saved = serde_json::from_slice(bytes).map_err(|e| {
        anyhow!("not a complete keyaudit JSON report ({e}); reports written before `keyaudit merge` existed lack some fields: scan again")
    })?;
    saved.into_report()
}

fn account_id(value: &str, what: &str) -> Result<AccountId> {
    AccountId::parse(value).map_err(|e| anyhow!("{what}: {e}"))
}

fn verdict(value: &str, what: &str) -> Result<Verdict> {
    Verdict::parse(value).ok_or_else(|| anyhow!("{what}: verdict {value:?} is not one keyaudit writes"))
}

fn slot(number: u8, what: &str) -> Result<KeySlot> {
    match number {
        1 => Ok(KeySlot::One),
        2 => Ok(KeySlot::Two),
        other => bail!("{what}: key_slot {other} is not 1 or 2"),
    }
}

fn key_id(value: Option<&str>, what: &str) -> Result<Option<AccessKeyId>> {
    value.map(|v| AccessKeyId::parse(v).map_err(|e| anyhow!("{what}: {e}"))).transpose()
}

fn coverage(value: Option<&str>, what: &str) -> Result<Option<Coverage>> {
    value
        .map(|v| Coverage::parse(v).ok_or_else(|| anyhow!("{what}: status {v:?} is not one keyaudit writes")))
        .transpose()
}

impl Saved {
    fn into_report(self) -> Result<Report> {
        let run = &self.run;
        match run.fingerprint_scheme.as_deref() {
            Some(FINGERPRINT_SCHEME) => {}
            other => bail!(
                "run.fingerprint_scheme is {other:?}, this keyaudit's is {FINGERPRINT_SCHEME:?}: use reports written \
                 by the same keyaudit release"
            ),
        }
        let dormant = run.dormant_days.ok_or_else(|| {
            anyhow!("no run.dormant_days: the report was written before `keyaudit merge` existed; scan again")
        })?;
        let config = RuleConfig::new(run.max_age_days, run.warn_days, run.unused_days)
            .and_then(|c| c.with_dormant_days(dormant))
            .map_err(|e| anyhow!("run: {e}"))?;
        let partition = Partition::named(&run.partition)
            .ok_or_else(|| anyhow!("run.partition {:?} is not a partition name", run.partition))?;
        let rules = run
            .rules
            .iter()
            .map(|r| {
                builtin().find(&r.id).ok_or_else(|| anyhow!("run.rules: rule {:?} is unknown to this keyaudit", r.id))
            })
            .collect::<Result<Vec<&'static RuleMeta>>>()?;
        let accounts =
            self.accounts.into_iter().map(SavedAccount::into_record).collect::<Result<Vec<(AccountRecord, _)>>>()?;
        let (scope, origin, clock) = if run.scan.scope == "merged" {
            let organizations = run
                .organizations
                .as_deref()
                .filter(|o| !o.is_empty())
                .ok_or_else(|| anyhow!("a merged report without run.organizations"))?;
            let parts = organizations
                .iter()
                .map(|o| {
                    let (scope, origin, clock) = o.scan.parts()?;
                    let in_part = |(r, org): &(AccountRecord, Option<String>)| match &scope {
                        Scope::Organization { id, .. } => org.as_deref() == Some(id.as_str()),
                        _ => org.is_none() && origin.as_ref().is_some_and(|o| o.caller_account_id == r.account.id),
                    };
                    Ok(Part {
                        accounts: accounts.iter().filter(|a| in_part(a)).map(|(r, _)| r.account.id.clone()).collect(),
                        run: RunInfo {
                            as_of: o.as_of,
                            started_at: o.started_at,
                            finished_at: o.finished_at,
                            config,
                            scope,
                            origin,
                            partition: partition.clone(),
                            accounts_discovered: o.accounts_discovered,
                            discovery_complete: discovery_complete(&o.discovery)?,
                            clock,
                        },
                    })
                })
                .collect::<Result<Vec<Part>>>()?;
            let assigned: usize = parts.iter().map(|p| p.accounts.len()).sum();
            ensure!(assigned == accounts.len(), "accounts[] and run.organizations[] do not line up");
            (Scope::Merged(parts), None, None)
        } else {
            run.scan.parts()?
        };
        let info = RunInfo {
            as_of: run.as_of,
            started_at: run.started_at,
            finished_at: run.finished_at,
            config,
            scope,
            origin,
            partition,
            accounts_discovered: self.summary.accounts.discovered,
            discovery_complete: discovery_complete(&run.discovery)?,
            clock,
        };
        let mut report = Report {
            rules,
            accounts: accounts.into_iter().map(|(r, _)| r).collect(),
            findings: Vec::new(),
            suppressions: None,
            comparison: None,
            run: info,
        };
        report.findings = self
            .findings
            .into_iter()
            .enumerate()
            .map(|(i, f)| f.into_finding(&report).with_context(|| format!("findings[{i}]")))
            .collect::<Result<_>>()?;
        report.suppressions = self
            .suppressions
            .map(|entries| entries.into_iter().map(SavedEntry::into_status).collect::<Result<Vec<_>>>())
            .transpose()?;
        report.comparison = match (self.baseline, self.summary.since_baseline) {
            (Some(b), Some(since)) => Some(b.into_comparison(self.resolved, since, &report)?),
            (None, None) => None,
            _ => bail!("baseline and summary.since_baseline must both be present or both null"),
        };
        Ok(report)
    }
}

fn discovery_complete(value: &str) -> Result<bool> {
    match value {
        "complete" => Ok(true),
        "interrupted" => Ok(false),
        other => bail!("run.discovery {other:?} is not complete or interrupted"),
    }
}

impl Scan {
    /// The scope, origin and clock of one scan (an organization or a standalone account).
    fn parts(&self) -> Result<(Scope, Option<Origin>, Option<ClockCheck>)> {
        let scope = match (self.scope.as_str(), &self.organization_id, &self.management_account_id) {
            ("organization", Some(id), Some(management)) => Scope::Organization {
                id: id.clone(),
                management_account_id: account_id(management, "management_account_id")?,
            },
            ("standalone_account", None, None) => Scope::StandaloneAccount,
            (other, ..) => bail!("scope {other:?} with organization_id {:?}", self.organization_id),
        };
        let (Some(caller_arn), Some(caller), Some(region)) = (&self.caller_arn, &self.caller_account_id, &self.region)
        else {
            bail!("a scan without caller_arn, caller_account_id or region");
        };
        let origin = Origin {
            caller_arn: caller_arn.clone(),
            caller_account_id: account_id(caller, "caller_account_id")?,
            region: region.clone(),
        };
        Ok((scope, Some(origin), self.clock.as_ref().map(|c| ClockCheck { local: c.local, aws: c.aws })))
    }
}

impl SavedAccount {
    /// The account's record, with the organization it is tagged with.
    fn into_record(self) -> Result<(AccountRecord, Option<String>)> {
        let what = format!("account {}", self.account_id);
        let id = account_id(&self.account_id, "accounts[].account_id")?;
        let status = match self.status.as_str() {
            "scanned" => AccountStatus::Scanned {
                report_generated_at: self.report_generated_at,
                keys: match (self.keys_total, self.keys_active) {
                    (Some(total), Some(active)) => KeyTally { total, active },
                    _ => bail!(
                        "{what}: no keys_total / keys_active; the report was written before `keyaudit merge` existed: scan again"
                    ),
                },
                enrichment: self.enrichment.map(|e| Enrichment { wanted: e.wanted, done: e.done }).unwrap_or_default(),
            },
            "skipped" => match self.reason_code.as_deref() {
                Some("not_active") => {
                    AccountStatus::Skipped(SkipReason::NotActive(AccountState::from_api(&self.state)))
                }
                other => bail!("{what}: skip reason {other:?} is not one keyaudit writes"),
            },
            "failed" => {
                let code =
                    self.reason_code.as_deref().and_then(FailureCode::parse).ok_or_else(|| {
                        anyhow!("{what}: reason_code {:?} is not one keyaudit writes", self.reason_code)
                    })?;
                // `reason` is the Display of the reason: "<action> <code>: <message>" without the parts absent.
                let reason = self.reason.unwrap_or_default();
                let prefix = match (&self.reason_action, &self.reason_aws_error_code) {
                    (Some(action), Some(code)) => format!("{action} {code}: "),
                    (Some(action), None) => format!("{action}: "),
                    _ => String::new(),
                };
                let message = reason.strip_prefix(&prefix).unwrap_or(&reason).to_owned();
                AccountStatus::Failed(FailureReason {
                    code,
                    action: self.reason_action.map(Cow::Owned),
                    aws_error_code: self.reason_aws_error_code,
                    message,
                })
            }
            other => bail!("{what}: status {other:?} is not one keyaudit writes"),
        };
        let access = match (self.access.as_str(), self.role_arn) {
            ("caller_credentials", None) => AccessMethod::CallerCredentials,
            ("assume_role", Some(role_arn)) => AccessMethod::AssumeRole { role_arn },
            (other, _) => bail!("{what}: access {other:?} is not one keyaudit writes"),
        };
        let record = AccountRecord {
            account: Account {
                id,
                name: self.name,
                ou_path: self.ou_path,
                state: AccountState::from_api(&self.state),
                access,
            },
            status,
            stats: AccountStats {
                api_calls: self.api_calls,
                enrichment_calls: self.enrichment_calls,
                tag_calls: self.tag_calls,
                report_retries: self.report_retries,
                sdk_retries: self.sdk_retries,
                duration_ms: self.duration_ms,
            },
        };
        Ok((record, self.organization_id))
    }
}

fn rule(id: &str, report: &Report) -> Result<&'static RuleMeta> {
    report.rules.iter().copied().find(|m| m.id == id).ok_or_else(|| anyhow!("rule {id:?} is not in run.rules"))
}

impl SavedFinding {
    fn into_finding(self, report: &Report) -> Result<Finding> {
        let rule = rule(&self.rule_id, report)?;
        let account = account_id(&self.account_id, "account_id")?;
        let as_of = report.run_of(account.as_str()).as_of;
        let key = match self.key_slot {
            None => None,
            Some(number) => {
                let (Some(state), Some(last_rotated), Some(age), Some(source)) =
                    (&self.key_status, self.last_rotated, self.age_seconds, &self.age_source)
                else {
                    bail!("a key finding without key_status, last_rotated, age_seconds or age_source");
                };
                let change = self
                    .change_since_report
                    .as_deref()
                    .map(|c| KeyChange::parse(c).ok_or_else(|| anyhow!("change_since_report {c:?}")))
                    .transpose()?;
                // A deleted key's state is `deleted`; its status is not recorded, and nothing reads it.
                let status = match state.as_str() {
                    "deleted" => KeyStatus::Active,
                    other => KeyStatus::parse(other).ok_or_else(|| anyhow!("key_status {other:?}"))?,
                };
                Some(KeyFacts {
                    slot: slot(number, "key_slot")?,
                    access_key_id: key_id(self.access_key_id.as_deref(), "access_key_id")?,
                    status,
                    change,
                    last_rotated,
                    created_at: self.created_at,
                    last_used_at: self.last_used_at,
                    last_used_service: self.last_used_service,
                    last_used_region: self.last_used_region,
                    age: SignedDuration::from_secs(age),
                    age_source: AgeSource::parse(source).ok_or_else(|| anyhow!("age_source {source:?}"))?,
                    shares_rotation_second: false,
                })
            }
        };
        let evidence = match self.evidence {
            SavedEvidence::Rotation { max_age_days, due_at } => Evidence::Rotation { due_at, max_age_days },
            SavedEvidence::RootKey {} => Evidence::RootKey,
            SavedEvidence::ActiveKeys { active_keys, rotation_under_way } => Evidence::ActiveKeys {
                keys: active_keys
                    .into_iter()
                    .map(|k| {
                        Ok(ActiveKey {
                            slot: slot(k.key_slot, "evidence.active_keys[].key_slot")?,
                            access_key_id: key_id(k.access_key_id.as_deref(), "evidence.active_keys[].access_key_id")?,
                            last_rotated: k.last_rotated,
                        })
                    })
                    .collect::<Result<_>>()?,
                rotation_under_way,
            },
            SavedEvidence::Usage { unused_days, unused_since, never_used } => Evidence::Usage {
                unused_for: as_of.duration_since(unused_since),
                unused_since,
                never_used,
                unused_days,
            },
        };
        let verdict = verdict(&self.verdict, "verdict")?;
        let baseline_state = match (self.baseline_state.as_deref(), self.baseline_verdict.as_deref()) {
            (None, _) => None,
            (Some("new"), _) => Some(BaselineState::New),
            (Some("unchanged"), _) => Some(BaselineState::Unchanged),
            (Some("updated"), Some(was)) => {
                Some(BaselineState::Updated { was: self::verdict(was, "baseline_verdict")? })
            }
            (Some(other), _) => bail!("baseline_state {other:?} is not one keyaudit writes"),
        };
        let usage = self.usage.as_deref().map(|u| Usage::parse(u).ok_or_else(|| anyhow!("usage {u:?}"))).transpose()?;
        let action = Action::parse(&self.action).ok_or_else(|| anyhow!("action {:?}", self.action))?;
        let mut finding = Finding {
            rule,
            account_id: account,
            user_name: self.user_name,
            user_arn: self.user_arn,
            key,
            evidence,
            verdict,
            message: self.message,
            triage: Triage { usage, action, action_reason: self.action_reason },
            owner: self.owner.zip(self.owner_tag).map(|(value, tag)| Owner { value, tag }),
            suppression: self.suppression.map(|s| AppliedSuppression {
                entry: s.entry,
                reason: s.reason,
                owner: s.owner,
                expires: s.expires,
            }),
            baseline_state,
        };
        // A key's identity includes its slot when the user's other key shares its rotation second: that fact is
        // not saved, so it is the one of the two that reproduces the saved fingerprint.
        if finding.fingerprint(&report.run.partition) != self.fingerprint {
            if let Some(key) = finding.key.as_mut() {
                key.shares_rotation_second = true;
            }
            ensure!(
                finding.fingerprint(&report.run.partition) == self.fingerprint,
                "fingerprint {} does not match the finding's fields: the report was changed after keyaudit wrote it",
                self.fingerprint
            );
        }
        Ok(finding)
    }
}

impl SavedEntry {
    fn into_status(self) -> Result<EntryStatus> {
        let what = format!("suppressions entry {}", self.entry);
        let s = self.select;
        let rules = s
            .rules
            .map(|ids| {
                ids.iter()
                    .map(|id| builtin().find(id).map(|m| m.id).ok_or_else(|| anyhow!("{what}: unknown rule {id:?}")))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        let selector = Selector {
            fingerprint: s.fingerprint,
            access_key_id: key_id(s.access_key_id.as_deref(), &what)?,
            user_arn: s.user_arn.map(|g| UserArnGlob::parse(&g).map_err(|e| anyhow!("{what}: {e}"))).transpose()?,
            account_id: s.account_id.map(|a| account_id(&a, &what)).transpose()?,
            ou_path: s.ou_path,
            rules,
        };
        Ok(EntryStatus {
            entry: Suppression {
                label: self.entry,
                line: self.line,
                selector,
                reason: self.reason,
                owner: self.owner,
                expires: self.expires,
                allow_long: self.allow_long,
            },
            state: EntryState::parse(&self.state).ok_or_else(|| anyhow!("{what}: state {:?}", self.state))?,
            matched: self.matched,
        })
    }
}

impl SavedBaseline {
    fn into_comparison(self, resolved: Vec<SavedChanged>, since: Since, report: &Report) -> Result<Comparison> {
        let snapshot_account =
            |id: &AccountId| report.accounts.iter().find(|r| r.account.id == *id).map(SnapshotAccount::of);
        let change = |c: SavedAccountChange| -> Result<AccountChange> {
            let was = coverage(c.baseline_status.as_deref(), "baseline_status")?;
            let now = coverage(c.status.as_deref(), "status")?;
            Ok(AccountChange {
                account: SnapshotAccount {
                    account_id: account_id(&c.account_id, "baseline account")?,
                    name: c.name,
                    ou_path: c.ou_path,
                    coverage: now.or(was).unwrap_or(Coverage::Failed),
                    reason_code: c.reason_code,
                },
                was,
                now,
            })
        };
        let names = keyaudit_core::baseline::thresholds(0, 0, 0).map(|(name, _)| name);
        Ok(Comparison {
            baseline_as_of: self.as_of,
            threshold_changes: self
                .threshold_changes
                .into_iter()
                .map(|t| {
                    let name =
                        names.into_iter().find(|n| *n == t.name).ok_or_else(|| anyhow!("threshold {:?}", t.name))?;
                    Ok((name, t.baseline, t.current))
                })
                .collect::<Result<_>>()?,
            resolved: resolved
                .into_iter()
                .map(|r| {
                    let id = account_id(&r.account_id, "resolved[].account_id")?;
                    let was = r.baseline_verdict.ok_or_else(|| anyhow!("resolved[]: no baseline_verdict"))?;
                    Ok(ResolvedFinding {
                        now: r.verdict.map(|v| verdict(&v, "resolved[].verdict")).transpose()?,
                        account: snapshot_account(&id),
                        finding: SnapshotFinding {
                            fingerprint: r.fingerprint,
                            rule_id: r.rule_id,
                            account_id: id,
                            user_name: r.user_name,
                            user_arn: r.user_arn,
                            key_slot: r.key_slot,
                            access_key_id: r.access_key_id,
                            verdict: verdict(&was, "resolved[].baseline_verdict")?,
                            message: r.message,
                            suppressed: r.suppressed,
                        },
                    })
                })
                .collect::<Result<_>>()?,
            newly_failed_accounts: self.accounts_newly_failed.into_iter().map(change).collect::<Result<_>>()?,
            no_longer_assessed: self.accounts_no_longer_assessed.into_iter().map(change).collect::<Result<_>>()?,
            counts: ChangeCounts {
                new: since.new,
                still_open: since.still_open,
                resolved: since.resolved,
                by_state_new: since.findings_new,
                by_state_unchanged: since.findings_unchanged,
                by_state_updated: since.findings_updated,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use keyaudit_core::merge::merge;
    use keyaudit_core::rules::builtin;

    use super::*;
    use crate::output::fixture::{fixture, report};
    use crate::output::{Format, OutputOptions, json_bytes, render};

    const FORMATS: [Format; 8] = [
        Format::Table,
        Format::Json,
        Format::Sarif,
        Format::Ocsf,
        Format::Asff,
        Format::Csv,
        Format::Ndjson,
        Format::Html,
    ];

    fn reloaded(report: &Report) -> Report {
        from_slice(&json_bytes(report).unwrap()).unwrap()
    }

    /// Every export written from a report read back from its JSON is byte for byte the one written from the
    /// live report: nothing any writer uses is lost on the way through JSON.
    #[test]
    fn every_export_of_a_reloaded_report_equals_the_original() {
        let opts = OutputOptions { sarif_include_pass: true, ocsf_include_pass: true, ..OutputOptions::default() };
        // A user whose two keys share a rotation second: the slot joins the key's identity, a fact only the
        // fingerprint records.
        let mut same_second = fixture(builtin(), false);
        for key in same_second.findings.iter_mut().filter(|f| f.user_name == "app").filter_map(|f| f.key.as_mut()) {
            key.shares_rotation_second = true;
        }
        assert!(same_second.findings.iter().any(|f| f.key.as_ref().is_some_and(|k| k.shares_rotation_second)));
        for original in [report(), fixture(builtin(), false), same_second] {
            let loaded = reloaded(&original);
            let shared = |r: &Report| -> Vec<bool> {
                r.findings.iter().filter_map(|f| f.key.as_ref()).map(|k| k.shares_rotation_second).collect()
            };
            assert_eq!(shared(&loaded), shared(&original));
            for format in FORMATS {
                let (a, b) =
                    (render(format, &original, &opts, false).unwrap(), render(format, &loaded, &opts, false).unwrap());
                assert_eq!(String::from_utf8_lossy(&b), String::from_utf8_lossy(&a), "{format:?}");
            }
            assert_eq!(loaded.summary(), original.summary());
        }
    }

    /// A second organization: the fixture under another organization, caller and account ids.
    fn other_organization() -> Report {
        let mut r = fixture(builtin(), false);
        let renumber = |id: &AccountId| AccountId::parse(&format!("9{}", &id.as_str()[1..])).unwrap();
        r.run.scope = Scope::Organization {
            id: "o-second".into(),
            management_account_id: renumber(&AccountId::parse("000000000001").unwrap()),
        };
        if let Some(origin) = r.run.origin.as_mut() {
            origin.caller_account_id = renumber(&origin.caller_account_id);
            origin.region = "eu-west-1".into();
        }
        r.run.as_of -= SignedDuration::from_hours(1);
        for a in &mut r.accounts {
            a.account.id = renumber(&a.account.id);
        }
        for f in &mut r.findings {
            f.account_id = renumber(&f.account_id);
        }
        r
    }

    #[test]
    fn a_merged_report_adds_up_tags_each_organization_and_reads_back_whole() {
        let (a, b) = (report(), other_organization());
        let merged = merge(vec![("a.json".into(), reloaded(&a)), ("b.json".into(), reloaded(&b))]).unwrap();
        assert_eq!(merged.notes.len(), 1, "only one report had a baseline: {:?}", merged.notes);
        let m = merged.report;
        let (sa, sb, sm) = (a.summary(), b.summary(), m.summary());
        assert_eq!(sm.accounts_total, sa.accounts_total + sb.accounts_total);
        assert_eq!(sm.findings.fail, sa.findings.fail + sb.findings.fail);
        assert_eq!(sm.keys_total, sa.keys_total + sb.keys_total);
        assert_eq!(m.run.accounts_discovered, a.run.accounts_discovered + b.run.accounts_discovered);
        assert_eq!(m.run.as_of, b.run.as_of, "the earliest as_of");
        assert!(m.comparison.is_none());
        let json: serde_json::Value = serde_json::from_slice(&json_bytes(&m).unwrap()).unwrap();
        assert_eq!(json["run"]["scope"], "merged");
        assert_eq!(json["run"]["caller_arn"], serde_json::Value::Null);
        let orgs: Vec<&str> = json["run"]["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["organization_id"].as_str().unwrap())
            .collect();
        assert_eq!(orgs, ["o-example", "o-second"]);
        for f in json["findings"].as_array().unwrap() {
            let expected = if f["account_id"].as_str().unwrap().starts_with('9') { "o-second" } else { "o-example" };
            assert_eq!(f["organization_id"], expected, "{f}");
        }
        // Each organization's findings keep its own region and as_of in the exports.
        let asff: serde_json::Value =
            serde_json::from_slice(&render(Format::Asff, &m, &OutputOptions::default(), false).unwrap()).unwrap();
        for f in asff.as_array().unwrap() {
            let second = f["AwsAccountId"].as_str().unwrap().starts_with('9');
            assert_eq!(f["Resources"][0]["Region"], if second { "eu-west-1" } else { "us-east-1" });
            assert_eq!(f["CreatedAt"], if second { "2026-11-28T11:00:00Z" } else { "2026-11-28T12:00:00Z" });
        }
        // Read back, the merged report writes every export the same again, and merges again (nested merges).
        let again = reloaded(&m);
        for format in FORMATS {
            assert_eq!(
                render(format, &again, &OutputOptions::default(), false).unwrap(),
                render(format, &m, &OutputOptions::default(), false).unwrap(),
                "{format:?}"
            );
        }
        let nested = merge(vec![("m.json".into(), again)]).unwrap().report;
        assert_eq!(json_bytes(&nested).unwrap(), json_bytes(&m).unwrap());
        // A merged report whose organizations do not account for its accounts is refused.
        let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = json.clone();
            edit(&mut v);
            match from_slice(&serde_json::to_vec(&v).unwrap()) {
                Ok(_) => panic!("accepted"),
                Err(e) => format!("{e:#}"),
            }
        };
        let err = refused(&|v| v["run"]["organizations"] = serde_json::json!([]));
        assert!(err.contains("a merged report without run.organizations"), "{err}");
        let err = refused(&|v| v["accounts"][0]["organization_id"] = "o-nowhere".into());
        assert!(err.contains("accounts[] and run.organizations[] do not line up"), "{err}");
    }

    #[test]
    fn reports_that_cannot_be_read_back_are_refused_with_the_reason() {
        let good: serde_json::Value = serde_json::from_slice(&json_bytes(&report()).unwrap()).unwrap();
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit); 7] = [
            ("schema_version 2", |v| v["schema_version"] = 2.into()),
            ("fingerprint_scheme", |v| v["run"]["fingerprint_scheme"] = "v0".into()),
            ("no run.dormant_days", |v| {
                v["run"].as_object_mut().unwrap().remove("dormant_days");
            }),
            ("no keys_total", |v| {
                v["accounts"][0].as_object_mut().unwrap().remove("keys_total");
            }),
            ("does not match the finding's fields", |v| {
                v["findings"][0]["user_arn"] = "arn:aws:iam::000000000002:user/someone-else".into()
            }),
            ("is unknown to this keyaudit", |v| v["run"]["rules"][0]["id"] = "KA-IAM-999".into()),
            ("not a keyaudit JSON report", |v| v["tool"]["name"] = "other".into()),
        ];
        for (expected, edit) in cases {
            let mut v = good.clone();
            edit(&mut v);
            let Err(err) = from_slice(&serde_json::to_vec(&v).unwrap()) else { panic!("{expected}: accepted") };
            let err = format!("{err:#}");
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
