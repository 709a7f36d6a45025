//! The core model as the JSON report's types, borrowing the model's strings (nothing is copied but numbers and
//! times).

use std::borrow::Cow;
use std::collections::HashMap;

use keyaudit_core::baseline::{
    AccountChange as CoreAccountChange, ChangeCounts, Comparison, Coverage, SnapshotAccount,
};
use keyaudit_core::baseline::{BaselineState as CoreBaselineState, SnapshotFinding};
use keyaudit_core::eval::GraceDays as GraceDaysCore;
use keyaudit_core::eval::{Evidence as CoreEvidence, FINGERPRINT_SCHEME, Finding as CoreFinding, Verdict, whole_days};
use keyaudit_core::ids::{AccountId, Partition};
use keyaudit_core::inventory::{KeyChange, KeyStatus};
use keyaudit_core::report::{AccessMethod, AccountRecord, AccountStatus, Report as CoreReport, RunInfo, Scope};
use keyaudit_core::report::{Enrichment, VerdictCounts};
use keyaudit_core::suppress::EntryStatus;

use crate::names::Tag;
use crate::schema::*;

fn text(s: &str) -> Text<'_> {
    Cow::Borrowed(s)
}

fn opt(s: Option<&str>) -> Option<Text<'_>> {
    s.map(text)
}

impl<'a> Report<'a> {
    /// The whole report.
    pub fn of(report: &'a CoreReport) -> Self {
        Report { findings: findings_of(report).collect(), ..Self::without_findings(report) }
    }

    /// The report with an empty `findings` (the HTML page writes its findings one at a time).
    pub fn without_findings(report: &'a CoreReport) -> Self {
        Report { accounts: accounts_of(report).collect(), ..Self::without_lists(report) }
    }

    /// The report without its accounts and findings (empty lists).
    fn without_lists(report: &'a CoreReport) -> Self {
        Report {
            header: Header::of(report),
            accounts: Vec::new(),
            findings: Vec::new(),
            resolved: report.comparison.as_ref().map(resolved).unwrap_or_default(),
            suppressions: report.suppressions.as_ref().map(|v| v.iter().map(Entry::of).collect()),
            baseline: report.comparison.as_ref().map(BaselineSection::of),
        }
    }
}

/// The report's accounts, converted one at a time.
fn accounts_of(report: &CoreReport) -> impl Iterator<Item = Account<'_>> {
    report.accounts.iter().map(|r| Account::of(r, organization_of(report, &r.account.id)))
}

/// The report's findings, converted one at a time (each with its account's record).
fn findings_of(report: &CoreReport) -> impl Iterator<Item = Finding<'_>> {
    let records: HashMap<&AccountId, &AccountRecord> = report.accounts.iter().map(|r| (&r.account.id, r)).collect();
    report.findings.iter().map(move |f| Finding::of(report, f, records.get(&f.account_id).copied()))
}

/// The report's JSON document as it is serialized: the same document as [`Report::of`] (same fields, same order),
/// its accounts and findings converted one at a time as they are written, so that the converted report is never
/// held whole (for a 50,000-account scan it is tens of MiB).
pub(crate) struct Streamed<'a>(pub(crate) &'a CoreReport);

/// [`Report`]'s layout, with the accounts and findings as sequences written from iterators.
#[derive(serde::Serialize)]
struct StreamedLayout<'a, A, F> {
    #[serde(flatten)]
    header: Header<'a>,
    accounts: A,
    findings: F,
    resolved: Vec<ChangedFinding<'a>>,
    suppressions: Option<Vec<Entry<'a>>>,
    baseline: Option<BaselineSection<'a>>,
}

/// A sequence serialized from an iterator (once).
struct Lazy<I>(std::cell::RefCell<Option<I>>);

impl<I: Iterator<Item: serde::Serialize>> serde::Serialize for Lazy<I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let items = self.0.borrow_mut().take().ok_or_else(|| serde::ser::Error::custom("a sequence written twice"))?;
        serializer.collect_seq(items)
    }
}

impl serde::Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Report { header, resolved, suppressions, baseline, .. } = Report::without_lists(self.0);
        StreamedLayout {
            header,
            accounts: Lazy(std::cell::RefCell::new(Some(accounts_of(self.0)))),
            findings: Lazy(std::cell::RefCell::new(Some(findings_of(self.0)))),
            resolved,
            suppressions,
            baseline,
        }
        .serialize(serializer)
    }
}

/// The organization an account belongs to (`None` for a standalone account).
pub fn organization_of<'a>(report: &'a CoreReport, account: &AccountId) -> Option<&'a str> {
    report.run_of(account.as_str()).scope.organization_id()
}

impl<'a> Header<'a> {
    /// The report without its accounts and findings.
    pub fn of(report: &'a CoreReport) -> Self {
        let s = report.summary();
        let run = &report.run;
        Header {
            schema_version: crate::SCHEMA_VERSION,
            tool: Tool { name: text("keyaudit"), version: text(env!("CARGO_PKG_VERSION")) },
            run: Run {
                as_of: run.as_of,
                started_at: run.started_at,
                finished_at: run.finished_at,
                max_age_days: run.config.max_age_days(),
                warn_days: run.config.warn_days(),
                unused_days: run.config.unused_days(),
                dormant_days: run.config.dormant_days(),
                grace_days: GraceDays::of(run.config.grace_days()),
                scan: Scan::of(run),
                partition: text(run.partition.as_str()),
                fingerprint_scheme: text(FINGERPRINT_SCHEME),
                discovery: Discovery::of(run.discovery_complete),
                rules: report
                    .rules
                    .iter()
                    .map(|m| Rule {
                        id: text(m.id),
                        name: text(m.name),
                        title: text(m.title),
                        severity: Tag(m.severity),
                        cis: m.cis.iter().map(|c| Cis { version: text(c.version), control: text(c.control) }).collect(),
                        security_hub: m.security_hub.iter().copied().map(text).collect(),
                        aws_config: m.aws_config.iter().copied().map(text).collect(),
                    })
                    .collect(),
                organizations: report.runs().into_iter().map(Organization::of).collect(),
            },
            summary: Summary {
                accounts: AccountCounts {
                    discovered: run.accounts_discovered,
                    selected: s.accounts_total,
                    scanned: s.accounts_scanned,
                    skipped: s.accounts_skipped,
                    failed: s.accounts_failed,
                    failed_by_reason: s.failures_by_code.into_iter().map(|(k, v)| (text(k), v)).collect(),
                },
                keys: KeyCounts {
                    total: s.keys_total,
                    active: s.keys_active,
                    by_verdict: s.keys.into(),
                    suppressed: s.keys_suppressed,
                },
                findings_by_rule: s.findings_by_rule.into_iter().map(|(id, c)| (text(id), c.into())).collect(),
                actions: s.actions.into_iter().map(|(k, v)| (text(k), v)).collect(),
                suppressed: s.suppressed.into(),
                since_baseline: report.comparison.as_ref().map(|c| c.counts.into()),
            },
        }
    }
}

impl GraceDays {
    fn of(g: keyaudit_core::eval::GraceDays) -> Self {
        GraceDays { critical: g.critical, high: g.high, medium: g.medium, low: g.low }
    }
}

impl Discovery {
    fn of(complete: bool) -> Self {
        if complete { Discovery::Complete } else { Discovery::Interrupted }
    }
}

impl<'a> Scan<'a> {
    fn of(run: &'a RunInfo) -> Self {
        let origin = run.origin.as_ref();
        Scan {
            scope: match run.scope {
                Scope::Organization { .. } => ScopeName::Organization,
                Scope::StandaloneAccount => ScopeName::StandaloneAccount,
                Scope::Merged(_) => ScopeName::Merged,
            },
            organization_id: opt(run.scope.organization_id()),
            management_account_id: opt(run.scope.management_account_id().map(AccountId::as_str)),
            caller_arn: opt(origin.map(|o| o.caller_arn.as_str())),
            caller_account_id: opt(origin.map(|o| o.caller_account_id.as_str())),
            region: opt(origin.map(|o| o.region.as_str())),
            clock: run.clock.map(|c| Clock { local: c.local, aws: c.aws, skew_seconds: c.skew().as_secs() }),
        }
    }
}

impl<'a> Organization<'a> {
    fn of(run: &'a RunInfo) -> Self {
        Organization {
            scan: Scan::of(run),
            as_of: run.as_of,
            started_at: run.started_at,
            finished_at: run.finished_at,
            accounts_discovered: run.accounts_discovered,
            discovery: Discovery::of(run.discovery_complete),
        }
    }
}

impl From<VerdictCounts> for Counts {
    fn from(c: VerdictCounts) -> Self {
        Self { fail: c.fail, warn: c.warn, pass: c.pass, not_applicable: c.not_applicable, resolved: c.resolved }
    }
}

impl From<ChangeCounts> for Since {
    fn from(c: ChangeCounts) -> Self {
        Self {
            new: c.new,
            still_open: c.still_open,
            resolved: c.resolved,
            findings_new: c.by_state_new,
            findings_unchanged: c.by_state_unchanged,
            findings_updated: c.by_state_updated,
        }
    }
}

impl EnrichmentState {
    fn of(e: &Enrichment) -> Self {
        let status = if e.is_complete() {
            EnrichmentStatus::Complete
        } else if e.done == 0 {
            EnrichmentStatus::Skipped
        } else {
            EnrichmentStatus::Partial
        };
        EnrichmentState { status, wanted: e.wanted, done: e.done }
    }
}

impl<'a> Account<'a> {
    /// One account, tagged with its organization (`None` for a standalone account).
    pub fn of(r: &'a AccountRecord, organization_id: Option<&'a str>) -> Self {
        let (status, reason, reason_code, reason_action, reason_aws_error_code) = match &r.status {
            AccountStatus::Scanned { .. } => (Coverage::Scanned, None, None, None, None),
            AccountStatus::Skipped(skip) => (Coverage::Skipped, Some(skip.to_string()), Some(skip.code()), None, None),
            AccountStatus::Failed(f) => (
                Coverage::Failed,
                Some(f.to_string()),
                Some(f.code.as_str()),
                f.action.as_deref(),
                f.aws_error_code.as_deref(),
            ),
        };
        let (access, role_arn) = match &r.account.access {
            AccessMethod::CallerCredentials => (Access::CallerCredentials, None),
            AccessMethod::AssumeRole { role_arn } => (Access::AssumeRole, Some(role_arn.as_str())),
        };
        let scanned = match &r.status {
            AccountStatus::Scanned { report_generated_at, keys, enrichment } => {
                Some((report_generated_at, keys, enrichment))
            }
            _ => None,
        };
        Account {
            organization_id: opt(organization_id),
            account_id: text(r.account.id.as_str()),
            name: opt(r.account.name.as_deref()),
            ou_path: opt(r.account.ou_path.as_deref()),
            state: text(r.account.state.as_str()),
            status: Tag(status),
            reason: reason.map(Cow::Owned),
            reason_code: reason_code.map(text),
            reason_action: opt(reason_action),
            reason_aws_error_code: opt(reason_aws_error_code),
            report_generated_at: scanned.and_then(|(generated, ..)| *generated),
            keys_total: scanned.map(|(_, k, _)| k.total),
            keys_active: scanned.map(|(_, k, _)| k.active),
            access,
            role_arn: opt(role_arn),
            api_calls: r.stats.api_calls,
            enrichment: scanned.map(|(.., e)| EnrichmentState::of(e)),
            enrichment_calls: r.stats.enrichment_calls,
            tag_calls: r.stats.tag_calls,
            report_retries: r.stats.report_retries,
            sdk_retries: r.stats.sdk_retries,
            duration_ms: r.stats.duration_ms,
        }
    }
}

/// What a finding's JSON takes from its scan: the partition (its fingerprint), its organization, the scan's `as_of`
/// (its first sighting, when no earlier run saw it) and grace days (its deadline). A streamed scan has these before
/// it has a report.
#[derive(Debug, Clone, Copy)]
pub struct FindingRun<'a> {
    /// The partition.
    pub partition: &'a Partition,
    /// The organization (`None`: a standalone account).
    pub organization_id: Option<&'a str>,
    /// The scan's `as_of`.
    pub as_of: jiff::Timestamp,
    /// The run's grace days.
    pub grace_days: GraceDaysCore,
}

impl<'a> FindingRun<'a> {
    /// The scan of `report` that `account` comes from.
    pub fn of(report: &'a CoreReport, account: &AccountId) -> Self {
        let run = report.run_of(account.as_str());
        FindingRun {
            partition: &report.run.partition,
            organization_id: run.scope.organization_id(),
            as_of: run.as_of,
            grace_days: report.run.config.grace_days(),
        }
    }
}

impl<'a> Finding<'a> {
    /// One finding of `report`, with its account's name and OU path from `record`.
    pub fn of(report: &'a CoreReport, f: &'a CoreFinding, record: Option<&'a AccountRecord>) -> Self {
        Self::with(f, record, &FindingRun::of(report, &f.account_id))
    }

    /// One finding of the scan `run` says, with its account's name and OU path from `record`.
    pub fn with(f: &'a CoreFinding, record: Option<&'a AccountRecord>, run: &FindingRun<'a>) -> Self {
        let key = f.key.as_ref();
        let (partition, organization_id) = (run.partition, run.organization_id);
        Finding {
            fingerprint: Cow::Owned(f.fingerprint(partition)),
            rule_id: text(f.rule.id),
            rule_name: text(f.rule.name),
            title: text(f.rule.title),
            severity: Tag(f.rule.severity),
            subject: Tag(f.subject()),
            organization_id: opt(organization_id),
            account_id: text(f.account_id.as_str()),
            account_name: opt(record.and_then(|r| r.account.name.as_deref())),
            ou_path: opt(record.and_then(|r| r.account.ou_path.as_deref())),
            user_name: text(&f.user_name),
            user_arn: text(&f.user_arn),
            key_slot: key.map(|k| k.slot.number()),
            access_key_id: opt(key.and_then(|k| k.access_key_id.as_ref()).map(|k| k.as_str())),
            key_status: key.map(|k| match (k.change, k.status) {
                (Some(KeyChange::Deleted), _) => KeyState::Deleted,
                (_, KeyStatus::Inactive) => KeyState::Inactive,
                (_, KeyStatus::Active) => KeyState::Active,
            }),
            change_since_report: key.and_then(|k| k.change).map(Tag),
            last_rotated: key.map(|k| k.last_rotated),
            created_at: key.and_then(|k| k.created_at),
            age_days: key.map(|k| k.age_days()),
            age_seconds: key.map(|k| k.age.as_secs()),
            due_at: f.due_at(),
            last_used_at: key.and_then(|k| k.last_used_at),
            last_used_service: opt(key.and_then(|k| k.last_used_service.as_deref())),
            last_used_region: opt(key.and_then(|k| k.last_used_region.as_deref())),
            age_source: key.map(|k| Tag(k.age_source)),
            verdict: Tag(f.verdict),
            message: text(&f.message),
            usage: f.triage.usage.map(Tag),
            action: Tag(f.triage.action),
            action_reason: opt(f.triage.action_reason.as_deref()),
            owner: opt(f.owner.as_ref().map(|o| o.value.as_str())),
            owner_tag: opt(f.owner.as_ref().map(|o| o.tag.as_str())),
            suppression: f.suppression.as_ref().map(|s| AppliedSuppression {
                entry: text(&s.entry),
                reason: text(&s.reason),
                owner: text(&s.owner),
                expires: s.expires,
            }),
            baseline_state: f.baseline_state.map(|s| match s {
                CoreBaselineState::New => BaselineState::New,
                CoreBaselineState::Unchanged => BaselineState::Unchanged,
                CoreBaselineState::Updated { .. } => BaselineState::Updated,
            }),
            baseline_verdict: f.was().map(Tag),
            since_last_run: f.since_last_run().map(Tag),
            evidence: Evidence::of(&f.evidence),
            first_seen: f.first_seen.unwrap_or(run.as_of),
            due: f.due(run.as_of, &run.grace_days),
        }
    }
}

impl<'a> Evidence<'a> {
    fn of(e: &'a CoreEvidence) -> Self {
        match e {
            CoreEvidence::Rotation { due_at, max_age_days } => {
                Evidence::Rotation { max_age_days: *max_age_days, due_at: *due_at }
            }
            CoreEvidence::RootKey => Evidence::RootKey {},
            CoreEvidence::ActiveKeys { keys, rotation_under_way } => Evidence::ActiveKeys {
                active_keys: keys
                    .iter()
                    .map(|k| ActiveKey {
                        key_slot: k.slot.number(),
                        access_key_id: opt(k.access_key_id.as_ref().map(|id| id.as_str())),
                        last_rotated: k.last_rotated,
                    })
                    .collect(),
                rotation_under_way: *rotation_under_way,
            },
            CoreEvidence::Usage { unused_for, unused_since, never_used, unused_days } => Evidence::Usage {
                unused_days: *unused_days,
                days_unused: whole_days(*unused_for),
                unused_since: *unused_since,
                never_used: *never_used,
            },
        }
    }
}

impl<'a> ChangedFinding<'a> {
    /// A finding of a comparison, with its verdict now (`None`: gone) and in the baseline.
    pub fn of(
        f: &'a SnapshotFinding,
        account: Option<&'a SnapshotAccount>,
        verdict: Option<Verdict>,
        baseline_verdict: Option<Verdict>,
    ) -> Self {
        ChangedFinding {
            fingerprint: text(&f.fingerprint),
            rule_id: text(&f.rule_id),
            account_id: text(f.account_id.as_str()),
            account_name: opt(account.and_then(|a| a.name.as_deref())),
            ou_path: opt(account.and_then(|a| a.ou_path.as_deref())),
            user_name: text(&f.user_name),
            user_arn: text(&f.user_arn),
            key_slot: f.key_slot,
            access_key_id: opt(f.access_key_id.as_deref()),
            verdict: verdict.map(Tag),
            baseline_verdict: baseline_verdict.map(Tag),
            suppressed: f.suppressed,
            message: text(&f.message),
            first_seen: f.first_seen,
        }
    }
}

/// The resolved findings of a comparison.
pub fn resolved(c: &Comparison) -> Vec<ChangedFinding<'_>> {
    c.resolved
        .iter()
        .map(|r| ChangedFinding::of(&r.finding, r.account.as_ref(), r.now, Some(r.finding.verdict)))
        .collect()
}

impl<'a> Entry<'a> {
    fn of(s: &'a EntryStatus) -> Self {
        let (e, sel) = (&s.entry, &s.entry.selector);
        Entry {
            entry: text(&e.label),
            line: e.line,
            state: Tag(s.state),
            matched: s.matched,
            reason: text(&e.reason),
            owner: text(&e.owner),
            expires: e.expires,
            allow_long: e.allow_long,
            select: Select {
                fingerprint: opt(sel.fingerprint.as_deref()),
                access_key_id: opt(sel.access_key_id.as_ref().map(|k| k.as_str())),
                user_arn: opt(sel.user_arn.as_ref().map(|g| g.as_str())),
                account_id: opt(sel.account_id.as_ref().map(|a| a.as_str())),
                ou_path: opt(sel.ou_path.as_deref()),
                rules: sel.rules.as_ref().map(|r| r.iter().copied().map(text).collect()),
            },
        }
    }
}

impl<'a> BaselineSection<'a> {
    /// The comparison with a baseline.
    pub fn of(c: &'a Comparison) -> Self {
        let change = |a: &'a CoreAccountChange| AccountChange {
            account_id: text(a.account.account_id.as_str()),
            name: opt(a.account.name.as_deref()),
            ou_path: opt(a.account.ou_path.as_deref()),
            baseline_status: a.was.map(Tag),
            status: a.now.map(Tag),
            reason_code: opt(a.account.reason_code.as_deref()),
        };
        BaselineSection {
            as_of: c.baseline_as_of,
            threshold_changes: c
                .threshold_changes
                .iter()
                .map(|(name, baseline, current)| ThresholdChange {
                    name: text(name),
                    baseline: *baseline,
                    current: *current,
                })
                .collect(),
            accounts_newly_failed: c.newly_failed_accounts.iter().map(change).collect(),
            accounts_no_longer_assessed: c.no_longer_assessed.iter().map(change).collect(),
        }
    }
}
