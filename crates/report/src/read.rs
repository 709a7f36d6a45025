//! The JSON report's types read back into the core model (`keyaudit merge`, `plan --from-report`, `notify`), the
//! inverse of `crate::write`. Each value is checked as it is read (the named ones by their type, ids and rules
//! here), and every finding's fingerprint is recomputed and must match the one saved: a report that was edited or
//! truncated is refused rather than silently re-exported or acted on.

use std::borrow::Cow;

use jiff::SignedDuration;
use keyaudit_core::baseline::{
    AccountChange as CoreAccountChange, BaselineState as CoreBaselineState, ChangeCounts, Comparison, Coverage,
    ResolvedFinding, SnapshotAccount, SnapshotFinding, thresholds,
};
use keyaudit_core::eval::{ActiveKey as CoreActiveKey, Evidence as CoreEvidence, FINGERPRINT_SCHEME, KeyFacts};
use keyaudit_core::eval::{Finding as CoreFinding, GraceDays, RuleConfig};
use keyaudit_core::ids::{AccessKeyId, AccountId, Partition};
use keyaudit_core::inventory::{KeySlot, KeyStatus, Owner};
use keyaudit_core::report::{
    AccessMethod, Account as CoreAccount, AccountRecord, AccountState, AccountStats, AccountStatus, ClockCheck,
    Enrichment, FailureCode, FailureReason, KeyTally, Origin, Part, Report as CoreReport, RunInfo, Scope, SkipReason,
};
use keyaudit_core::rules::{RuleMeta, builtin};
use keyaudit_core::suppress::{AppliedSuppression as CoreApplied, EntryStatus, Selector, Suppression, UserArnGlob};
use keyaudit_core::triage::Triage;

use crate::schema::*;

/// A problem, said where it is (`findings[3]: …`).
type Checked<T> = Result<T, String>;

fn account_id(value: &str, what: &str) -> Checked<AccountId> {
    AccountId::parse(value).map_err(|e| format!("{what}: {e}"))
}

fn key_id(value: Option<&str>, what: &str) -> Checked<Option<AccessKeyId>> {
    value.map(|v| AccessKeyId::parse(v).map_err(|e| format!("{what}: {e}"))).transpose()
}

fn slot(number: u8, what: &str) -> Checked<KeySlot> {
    match number {
        1 => Ok(KeySlot::One),
        2 => Ok(KeySlot::Two),
        other => Err(format!("{what}: key_slot {other} is not 1 or 2")),
    }
}

impl Report<'_> {
    /// The core model of the report, every value checked.
    pub fn into_model(self) -> Result<CoreReport, String> {
        let run = &self.header.run;
        if run.fingerprint_scheme != FINGERPRINT_SCHEME {
            return Err(format!(
                "run.fingerprint_scheme is {:?}, this keyaudit's is {FINGERPRINT_SCHEME:?}: use reports written by the \
                 same keyaudit release",
                run.fingerprint_scheme
            ));
        }
        let g = run.grace_days;
        let grace = GraceDays { critical: g.critical, high: g.high, medium: g.medium, low: g.low };
        let config = RuleConfig::new(run.max_age_days, run.warn_days, run.unused_days)
            .and_then(|c| c.with_dormant_days(run.dormant_days))
            .and_then(|c| c.with_grace_days(grace))
            .map_err(|e| format!("run: {e}"))?;
        let partition = Partition::named(&run.partition)
            .ok_or_else(|| format!("run.partition {:?} is not a partition name", run.partition))?;
        let rules = run
            .rules
            .iter()
            .map(|r| {
                builtin().find(&r.id).ok_or_else(|| format!("run.rules: rule {:?} is unknown to this keyaudit", r.id))
            })
            .collect::<Checked<Vec<&'static RuleMeta>>>()?;
        let accounts = self.accounts.into_iter().map(Account::into_record).collect::<Checked<Vec<_>>>()?;
        let (scope, origin, clock) = if run.scan.scope == ScopeName::Merged {
            let parts = merged_parts(&run.organizations, &accounts, config, &partition)?;
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
            accounts_discovered: self.header.summary.accounts.discovered,
            discovery_complete: run.discovery == Discovery::Complete,
            clock,
        };
        let mut report = CoreReport {
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
            .map(|(i, f)| f.into_model(&report).map_err(|e| format!("findings[{i}]: {e}")))
            .collect::<Checked<_>>()?;
        report.suppressions =
            self.suppressions.map(|entries| entries.into_iter().map(Entry::into_status).collect()).transpose()?;
        report.comparison = match (self.baseline, self.header.summary.since_baseline) {
            (Some(b), Some(since)) => Some(b.into_comparison(self.resolved, since, &report)?),
            (None, None) => None,
            _ => return Err("baseline and summary.since_baseline must both be present or both null".into()),
        };
        Ok(report)
    }
}

/// Each organization of a merged report, with the accounts tagged with it.
fn merged_parts(
    organizations: &[Organization<'_>],
    accounts: &[(AccountRecord, Option<String>)],
    config: RuleConfig,
    partition: &Partition,
) -> Checked<Vec<Part>> {
    if organizations.is_empty() {
        return Err("a merged report without run.organizations".into());
    }
    let parts = organizations
        .iter()
        .map(|o| {
            let (scope, origin, clock) = o.scan.parts()?;
            let in_part = |(r, org): &&(AccountRecord, Option<String>)| match &scope {
                Scope::Organization { id, .. } => org.as_deref() == Some(id.as_str()),
                _ => org.is_none() && origin.as_ref().is_some_and(|o| o.caller_account_id == r.account.id),
            };
            Ok(Part {
                accounts: accounts.iter().filter(in_part).map(|(r, _)| r.account.id.clone()).collect(),
                run: RunInfo {
                    as_of: o.as_of,
                    started_at: o.started_at,
                    finished_at: o.finished_at,
                    config,
                    scope,
                    origin,
                    partition: partition.clone(),
                    accounts_discovered: o.accounts_discovered,
                    discovery_complete: o.discovery == Discovery::Complete,
                    clock,
                },
            })
        })
        .collect::<Checked<Vec<Part>>>()?;
    let assigned: usize = parts.iter().map(|p| p.accounts.len()).sum();
    if assigned != accounts.len() {
        return Err("accounts[] and run.organizations[] do not line up".into());
    }
    Ok(parts)
}

impl Scan<'_> {
    /// The scope, origin and clock of one scan (an organization or a standalone account).
    fn parts(&self) -> Checked<(Scope, Option<Origin>, Option<ClockCheck>)> {
        let scope = match (self.scope, &self.organization_id, &self.management_account_id) {
            (ScopeName::Organization, Some(id), Some(management)) => Scope::Organization {
                id: id.to_string(),
                management_account_id: account_id(management, "management_account_id")?,
            },
            (ScopeName::StandaloneAccount, None, None) => Scope::StandaloneAccount,
            (other, ..) => return Err(format!("scope {other:?} with organization_id {:?}", self.organization_id)),
        };
        let (Some(caller_arn), Some(caller), Some(region)) = (&self.caller_arn, &self.caller_account_id, &self.region)
        else {
            return Err("a scan without caller_arn, caller_account_id or region".into());
        };
        let origin = Origin {
            caller_arn: caller_arn.to_string(),
            caller_account_id: account_id(caller, "caller_account_id")?,
            region: region.to_string(),
        };
        Ok((scope, Some(origin), self.clock.map(|c| ClockCheck { local: c.local, aws: c.aws })))
    }
}

impl Account<'_> {
    /// The account's record, with the organization it is tagged with.
    fn into_record(self) -> Checked<(AccountRecord, Option<String>)> {
        let what = format!("account {}", self.account_id);
        let id = account_id(&self.account_id, "accounts[].account_id")?;
        let status = match self.status.0 {
            Coverage::Scanned => AccountStatus::Scanned {
                report_generated_at: self.report_generated_at,
                keys: match (self.keys_total, self.keys_active) {
                    (Some(total), Some(active)) => KeyTally { total, active },
                    _ => {
                        return Err(format!(
                            "{what}: no keys_total / keys_active; the report was written before `keyaudit merge` \
                             existed: scan again"
                        ));
                    }
                },
                enrichment: self.enrichment.map(|e| Enrichment { wanted: e.wanted, done: e.done }).unwrap_or_default(),
            },
            Coverage::Skipped => match self.reason_code.as_deref() {
                Some("not_active") => {
                    AccountStatus::Skipped(SkipReason::NotActive(AccountState::from_api(&self.state)))
                }
                other => return Err(format!("{what}: skip reason {other:?} is not one keyaudit writes")),
            },
            Coverage::Failed => {
                let code =
                    self.reason_code.as_deref().and_then(FailureCode::parse).ok_or_else(|| {
                        format!("{what}: reason_code {:?} is not one keyaudit writes", self.reason_code)
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
                    action: self.reason_action.map(|a| Cow::Owned(a.into_owned())),
                    aws_error_code: self.reason_aws_error_code.map(Cow::into_owned),
                    message,
                })
            }
        };
        let access = match (self.access, self.role_arn) {
            (Access::CallerCredentials, None) => AccessMethod::CallerCredentials,
            (Access::AssumeRole, Some(role_arn)) => AccessMethod::AssumeRole { role_arn: role_arn.into_owned() },
            (access, role_arn) => return Err(format!("{what}: access {access:?} with role_arn {role_arn:?}")),
        };
        let record = AccountRecord {
            account: CoreAccount {
                id,
                name: self.name.map(Cow::into_owned),
                ou_path: self.ou_path.map(Cow::into_owned),
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
        Ok((record, self.organization_id.map(Cow::into_owned)))
    }
}

impl Finding<'_> {
    fn into_model(self, report: &CoreReport) -> Checked<CoreFinding> {
        let rule = report
            .rules
            .iter()
            .copied()
            .find(|m| m.id == self.rule_id)
            .ok_or_else(|| format!("rule {:?} is not in run.rules", self.rule_id))?;
        let account = account_id(&self.account_id, "account_id")?;
        let as_of = report.run_of(account.as_str()).as_of;
        let key = match self.key_slot {
            None => None,
            Some(number) => {
                let (Some(state), Some(last_rotated), Some(age), Some(source)) =
                    (self.key_status, self.last_rotated, self.age_seconds, self.age_source)
                else {
                    return Err("a key finding without key_status, last_rotated, age_seconds or age_source".into());
                };
                // A deleted key's state is `deleted`; its status is not recorded, and nothing reads it.
                let status = if state == KeyState::Inactive { KeyStatus::Inactive } else { KeyStatus::Active };
                Some(KeyFacts {
                    slot: slot(number, "key_slot")?,
                    access_key_id: key_id(self.access_key_id.as_deref(), "access_key_id")?,
                    status,
                    change: self.change_since_report.map(|c| c.0),
                    last_rotated,
                    created_at: self.created_at,
                    last_used_at: self.last_used_at,
                    last_used_service: self.last_used_service.map(Cow::into_owned),
                    last_used_region: self.last_used_region.map(Cow::into_owned),
                    age: SignedDuration::from_secs(age),
                    age_source: source.0,
                    shares_rotation_second: false,
                })
            }
        };
        let evidence = match self.evidence {
            Evidence::Rotation { max_age_days, due_at } => CoreEvidence::Rotation { due_at, max_age_days },
            Evidence::RootKey {} => CoreEvidence::RootKey,
            Evidence::ActiveKeys { active_keys, rotation_under_way } => CoreEvidence::ActiveKeys {
                keys: active_keys
                    .into_iter()
                    .map(|k| {
                        Ok(CoreActiveKey {
                            slot: slot(k.key_slot, "evidence.active_keys")?,
                            access_key_id: key_id(k.access_key_id.as_deref(), "evidence.active_keys")?,
                            last_rotated: k.last_rotated,
                        })
                    })
                    .collect::<Checked<_>>()?,
                rotation_under_way,
            },
            Evidence::Usage { unused_days, unused_since, never_used, .. } => CoreEvidence::Usage {
                unused_for: as_of.duration_since(unused_since),
                unused_since,
                never_used,
                unused_days,
            },
        };
        let baseline_state = match (self.baseline_state, self.baseline_verdict) {
            (None, _) => None,
            (Some(BaselineState::New), _) => Some(CoreBaselineState::New),
            (Some(BaselineState::Unchanged), _) => Some(CoreBaselineState::Unchanged),
            (Some(BaselineState::Updated), Some(was)) => Some(CoreBaselineState::Updated { was: was.0 }),
            (Some(BaselineState::Updated), None) => {
                return Err("baseline_state updated without baseline_verdict".into());
            }
        };
        let owner = self
            .owner
            .zip(self.owner_tag)
            .map(|(value, tag)| Owner { value: value.into_owned(), tag: tag.into_owned() });
        let mut finding = CoreFinding {
            rule,
            account_id: account,
            user_name: self.user_name.into_owned(),
            user_arn: self.user_arn.into_owned(),
            key,
            evidence,
            verdict: self.verdict.0,
            message: self.message.into_owned(),
            triage: Triage {
                usage: self.usage.map(|u| u.0),
                action: self.action.0,
                action_reason: self.action_reason.map(Cow::into_owned),
            },
            owner,
            suppression: self.suppression.map(|s| CoreApplied {
                entry: s.entry.into_owned(),
                reason: s.reason.into_owned(),
                owner: s.owner.into_owned(),
                expires: s.expires,
            }),
            baseline_state,
            // This run's own sightings are its as_of: only an earlier run's is kept.
            first_seen: Some(self.first_seen).filter(|t| *t != as_of),
        };
        // A key's identity includes its slot when the user's other key shares its rotation second: that fact is
        // not saved, so it is the one of the two that reproduces the saved fingerprint.
        if finding.fingerprint(&report.run.partition) != self.fingerprint {
            if let Some(key) = finding.key.as_mut() {
                key.shares_rotation_second = true;
            }
            if finding.fingerprint(&report.run.partition) != self.fingerprint {
                return Err(format!(
                    "fingerprint {} does not match the finding's fields: the report was changed after keyaudit wrote it",
                    self.fingerprint
                ));
            }
        }
        Ok(finding)
    }
}

impl Entry<'_> {
    fn into_status(self) -> Checked<EntryStatus> {
        let what = format!("suppressions entry {}", self.entry);
        let s = self.select;
        let rules = s
            .rules
            .map(|ids| {
                ids.iter()
                    .map(|id| builtin().find(id).map(|m| m.id).ok_or_else(|| format!("{what}: unknown rule {id:?}")))
                    .collect::<Checked<Vec<_>>>()
            })
            .transpose()?;
        let selector = Selector {
            fingerprint: s.fingerprint.map(Cow::into_owned),
            access_key_id: key_id(s.access_key_id.as_deref(), &what)?,
            user_arn: s.user_arn.map(|g| UserArnGlob::parse(&g).map_err(|e| format!("{what}: {e}"))).transpose()?,
            account_id: s.account_id.map(|a| account_id(&a, &what)).transpose()?,
            ou_path: s.ou_path.map(Cow::into_owned),
            rules,
        };
        Ok(EntryStatus {
            entry: Suppression {
                label: self.entry.into_owned(),
                line: self.line,
                selector,
                reason: self.reason.into_owned(),
                owner: self.owner.into_owned(),
                expires: self.expires,
                allow_long: self.allow_long,
            },
            state: self.state.0,
            matched: self.matched,
        })
    }
}

impl BaselineSection<'_> {
    fn into_comparison(
        self,
        resolved: Vec<ChangedFinding<'_>>,
        since: Since,
        report: &CoreReport,
    ) -> Checked<Comparison> {
        let snapshot_account =
            |id: &AccountId| report.accounts.iter().find(|r| r.account.id == *id).map(SnapshotAccount::of);
        let change = |c: AccountChange<'_>| -> Checked<CoreAccountChange> {
            let (was, now) = (c.baseline_status.map(|s| s.0), c.status.map(|s| s.0));
            Ok(CoreAccountChange {
                account: SnapshotAccount {
                    account_id: account_id(&c.account_id, "baseline account")?,
                    name: c.name.map(Cow::into_owned),
                    ou_path: c.ou_path.map(Cow::into_owned),
                    coverage: now.or(was).unwrap_or(Coverage::Failed),
                    reason_code: c.reason_code.map(Cow::into_owned),
                },
                was,
                now,
            })
        };
        let names = thresholds(0, 0, 0).map(|(name, _)| name);
        Ok(Comparison {
            baseline_as_of: self.as_of,
            threshold_changes: self
                .threshold_changes
                .into_iter()
                .map(|t| {
                    let name =
                        names.into_iter().find(|n| *n == t.name).ok_or_else(|| format!("threshold {:?}", t.name))?;
                    Ok((name, t.baseline, t.current))
                })
                .collect::<Checked<_>>()?,
            resolved: resolved
                .into_iter()
                .map(|r| {
                    let id = account_id(&r.account_id, "resolved[].account_id")?;
                    let was = r.baseline_verdict.ok_or("resolved[]: no baseline_verdict")?;
                    Ok(ResolvedFinding {
                        now: r.verdict.map(|v| v.0),
                        account: snapshot_account(&id),
                        finding: SnapshotFinding {
                            fingerprint: r.fingerprint.into_owned(),
                            rule_id: r.rule_id.into_owned(),
                            account_id: id,
                            user_name: r.user_name.into_owned(),
                            user_arn: r.user_arn.into_owned(),
                            key_slot: r.key_slot,
                            access_key_id: r.access_key_id.map(Cow::into_owned),
                            verdict: was.0,
                            message: r.message.into_owned(),
                            suppressed: r.suppressed,
                            first_seen: r.first_seen,
                        },
                    })
                })
                .collect::<Checked<_>>()?,
            newly_failed_accounts: self.accounts_newly_failed.into_iter().map(change).collect::<Checked<_>>()?,
            no_longer_assessed: self.accounts_no_longer_assessed.into_iter().map(change).collect::<Checked<_>>()?,
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
