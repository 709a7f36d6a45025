//! Guarded remediation, the pure part: which keys a plan may change, and why the others are left alone.
//!
//! A plan deactivates only active keys that fail a rule whose triage action is `deactivate`, whose id is known,
//! that were never used or not for `unused_days`, that no exception covers, and that are not the root user's,
//! the caller's own, or in a protected account or OU. It deletes only keys that a keyaudit journal deactivated
//! long enough ago and that are still inactive and unused since. Everything else is listed with its reason.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::eval::Verdict;
use crate::ids::{AccessKeyId, AccountId};
use crate::inventory::ROOT_USER_NAME;

/// What a plan does to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// `UpdateAccessKey --status Inactive` (reversible).
    Deactivate,
    /// `DeleteAccessKey` (irreversible).
    Delete,
}

impl ChangeKind {
    /// `deactivate` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Deactivate => "deactivate",
            ChangeKind::Delete => "delete",
        }
    }

    /// Parses [`ChangeKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deactivate" => Some(ChangeKind::Deactivate),
            "delete" => Some(ChangeKind::Delete),
            _ => None,
        }
    }
}

/// Where a key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// The account.
    pub account_id: AccountId,
    /// Its name.
    pub account_name: Option<String>,
    /// Its OU path.
    pub ou_path: Option<String>,
    /// The user.
    pub user_name: String,
    /// The user's ARN.
    pub user_arn: String,
    /// The key.
    pub access_key_id: AccessKeyId,
}

/// One finding about one key, as a plan sees it (from a report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The key (its id is required: a plan never acts on a report slot).
    pub key: KeyRef,
    /// The finding's rule.
    pub rule_id: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// Triage's action (`deactivate`, `rotate`, …).
    pub action: String,
    /// Why, in one sentence.
    pub action_reason: Option<String>,
    /// Triage's usage (`never_used`, `dormant`, …).
    pub usage: Option<String>,
    /// The key's state as last seen (`active`, `inactive`, `deleted`).
    pub key_status: String,
    /// The last use AWS recorded.
    pub last_used_at: Option<Timestamp>,
    /// Whether an exception covers the finding.
    pub suppressed: bool,
}

/// One change of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    /// What to do.
    pub kind: ChangeKind,
    /// To which key.
    pub key: KeyRef,
    /// The status the key must still have (`Active` to deactivate, `Inactive` to delete).
    pub expect_active: bool,
    /// The last use the key must still show (a newer one means it was used since the plan).
    pub expect_last_used_at: Option<Timestamp>,
    /// The rules that failed (deactivation; none for a deletion).
    pub rules: Vec<String>,
    /// Triage's usage of the key (deactivation).
    pub usage: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
}

/// Why a key that failed with action `deactivate` (or that a journal deactivated) is not in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// The root user's keys are never changed by keyaudit.
    RootUser,
    /// The key keyaudit runs with, or a key of the caller's own IAM user.
    CallerKey,
    /// `--protect-account`.
    ProtectedAccount,
    /// `--protect-ou`: the OU path given.
    ProtectedOu(String),
    /// An exception covers one of the key's findings.
    Suppressed,
    /// Used within `unused_days` (it may belong to a monthly job).
    RecentlyUsed {
        /// Days since the last use.
        days: i64,
    },
    /// Deletion: deactivated less than the waiting period ago.
    WaitingPeriod {
        /// Days since the deactivation.
        days: i64,
    },
    /// Deletion: active again (re-activated, e.g. by `undo`) or gone.
    NotInactive,
    /// Deletion: used since it was deactivated.
    UsedSinceDeactivation,
    /// Deletion: the key could not be re-checked (the account could not be reached): the reason.
    Unverified(String),
}

impl Exclusion {
    /// A stable code: `root_user`, `caller_key`, `protected_account`, `protected_ou`, `suppressed`,
    /// `recently_used`, `waiting_period`, `not_inactive`, `used_since_deactivation`, `unverified`.
    pub fn code(&self) -> &'static str {
        match self {
            Exclusion::RootUser => "root_user",
            Exclusion::CallerKey => "caller_key",
            Exclusion::ProtectedAccount => "protected_account",
            Exclusion::ProtectedOu(_) => "protected_ou",
            Exclusion::Suppressed => "suppressed",
            Exclusion::RecentlyUsed { .. } => "recently_used",
            Exclusion::WaitingPeriod { .. } => "waiting_period",
            Exclusion::NotInactive => "not_inactive",
            Exclusion::UsedSinceDeactivation => "used_since_deactivation",
            Exclusion::Unverified(_) => "unverified",
        }
    }

    /// One sentence.
    pub fn describe(&self, unused_days: u32) -> String {
        match self {
            Exclusion::RootUser => "a root user key: keyaudit never changes those (delete it as the root user)".into(),
            Exclusion::CallerKey => "the caller's own key (keyaudit runs with it)".into(),
            Exclusion::ProtectedAccount => "in a protected account (--protect-account)".into(),
            Exclusion::ProtectedOu(ou) => format!("in a protected OU ({ou}, --protect-ou)"),
            Exclusion::Suppressed => "under an exception (--suppressions)".into(),
            Exclusion::RecentlyUsed { days } => {
                format!("used {days} days ago, within --unused-days ({unused_days}): it may belong to a periodic job")
            }
            Exclusion::WaitingPeriod { days } => format!("deactivated only {days} days ago"),
            Exclusion::NotInactive => "no longer inactive (re-activated) or gone".into(),
            Exclusion::UsedSinceDeactivation => "used since it was deactivated".into(),
            Exclusion::Unverified(reason) => format!("could not be re-checked: {reason}"),
        }
    }
}

/// A key left out of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The key.
    pub key: KeyRef,
    /// The change it would have had.
    pub kind: ChangeKind,
    /// Why not.
    pub why: Exclusion,
}

/// What a deactivation plan may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPolicy {
    /// The plan's instant (its report's `as_of`).
    pub as_of: Timestamp,
    /// A key used fewer days ago than this is left alone.
    pub unused_days: u32,
    /// Accounts never touched.
    pub protect_accounts: Vec<AccountId>,
    /// OU paths never touched (subtrees included).
    pub protect_ous: Vec<String>,
    /// The caller's IAM user ARN, when the caller is an IAM user (its keys are never touched).
    pub caller_user_arn: Option<String>,
    /// The access key id keyaudit runs with, when known.
    pub caller_key_id: Option<AccessKeyId>,
}

fn under(ou_path: Option<&str>, protected: &str) -> bool {
    let protected = protected.trim_end_matches('/');
    ou_path.is_some_and(|p| p == protected || p.strip_prefix(protected).is_some_and(|rest| rest.starts_with('/')))
}

const SECONDS_PER_DAY: i64 = 86_400;

/// The deactivations a report allows, and the keys left out with their reason; both in (account, user, key)
/// order. A key appears once, whatever the number of its findings.
pub fn plan_deactivations(candidates: &[Candidate], policy: &PlanPolicy) -> (Vec<PlannedChange>, Vec<Excluded>) {
    let mut by_key: BTreeMap<(&AccountId, &str, &AccessKeyId), Vec<&Candidate>> = BTreeMap::new();
    for c in candidates {
        by_key.entry((&c.key.account_id, c.key.user_arn.as_str(), &c.key.access_key_id)).or_default().push(c);
    }
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    for findings in by_key.into_values() {
        let key = &findings[0].key;
        let deactivating: Vec<&&Candidate> =
            findings.iter().filter(|c| c.verdict == Verdict::Fail && c.action == "deactivate").collect();
        if deactivating.is_empty() || findings.iter().any(|c| c.key_status != "active") {
            continue;
        }
        let last_used_at = findings.iter().find_map(|c| c.last_used_at);
        let why = if key.user_name == ROOT_USER_NAME || key.user_arn.ends_with(":root") {
            Some(Exclusion::RootUser)
        } else if policy.caller_key_id.as_ref() == Some(&key.access_key_id)
            || policy.caller_user_arn.as_deref() == Some(key.user_arn.as_str())
        {
            Some(Exclusion::CallerKey)
        } else if policy.protect_accounts.contains(&key.account_id) {
            Some(Exclusion::ProtectedAccount)
        } else if let Some(ou) = policy.protect_ous.iter().find(|ou| under(key.ou_path.as_deref(), ou)) {
            Some(Exclusion::ProtectedOu(ou.clone()))
        } else if findings.iter().any(|c| c.suppressed) {
            Some(Exclusion::Suppressed)
        } else {
            last_used_at
                .map(|t| policy.as_of.duration_since(t).as_secs().div_euclid(SECONDS_PER_DAY))
                .filter(|days| *days < i64::from(policy.unused_days))
                .map(|days| Exclusion::RecentlyUsed { days })
        };
        match why {
            Some(why) => excluded.push(Excluded { key: key.clone(), kind: ChangeKind::Deactivate, why }),
            None => {
                let first = deactivating[0];
                planned.push(PlannedChange {
                    kind: ChangeKind::Deactivate,
                    key: key.clone(),
                    expect_active: true,
                    expect_last_used_at: last_used_at,
                    rules: deactivating.iter().map(|c| c.rule_id.clone()).collect(),
                    usage: first.usage.clone(),
                    reason: first.action_reason.clone().unwrap_or_else(|| format!("{} fails", first.rule_id)),
                });
            }
        }
    }
    (planned, excluded)
}

/// A key a keyaudit journal deactivated, with what AWS says about it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivated {
    /// The key.
    pub key: KeyRef,
    /// When keyaudit deactivated it.
    pub deactivated_at: Timestamp,
    /// Its last use then.
    pub last_used_then: Option<Timestamp>,
    /// Whether it is inactive now (`false`: active again, or gone).
    pub inactive_now: bool,
    /// Its last use now.
    pub last_used_now: Option<Timestamp>,
}

/// The deletions (the CIS procedure's last step): keys deactivated at least `wait` before `now`, still inactive
/// and not used since.
pub fn plan_deletions(
    keys: &[Deactivated],
    now: Timestamp,
    wait: SignedDuration,
) -> (Vec<PlannedChange>, Vec<Excluded>) {
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    for k in keys {
        let days = now.duration_since(k.deactivated_at).as_secs().div_euclid(SECONDS_PER_DAY);
        let used_since = match (k.last_used_now, k.last_used_then) {
            (Some(now_used), Some(then)) => now_used > then,
            (Some(now_used), None) => now_used > k.deactivated_at,
            (None, _) => false,
        };
        let why = if !k.inactive_now {
            Some(Exclusion::NotInactive)
        } else if used_since {
            Some(Exclusion::UsedSinceDeactivation)
        } else if now.duration_since(k.deactivated_at) < wait {
            Some(Exclusion::WaitingPeriod { days })
        } else {
            None
        };
        match why {
            Some(why) => excluded.push(Excluded { key: k.key.clone(), kind: ChangeKind::Delete, why }),
            None => planned.push(PlannedChange {
                kind: ChangeKind::Delete,
                key: k.key.clone(),
                expect_active: false,
                expect_last_used_at: k.last_used_now,
                rules: Vec::new(),
                usage: None,
                reason: format!(
                    "deactivated by keyaudit on {} ({days} days ago) and not used since: the CIS procedure's last \
                     step; deleting cannot be undone",
                    k.deactivated_at.strftime("%Y-%m-%d")
                ),
            }),
        }
    }
    (planned, excluded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn key(account: &str, user: &str, id: &str, ou: &str) -> KeyRef {
        KeyRef {
            account_id: AccountId::parse(account).unwrap(),
            account_name: None,
            ou_path: Some(ou.into()),
            user_name: user.into(),
            user_arn: if user == ROOT_USER_NAME {
                format!("arn:aws:iam::{account}:root")
            } else {
                format!("arn:aws:iam::{account}:user/{user}")
            },
            access_key_id: AccessKeyId::parse(id).unwrap(),
        }
    }

    fn candidate(k: KeyRef, rule: &str, verdict: Verdict, action: &str, last_used: Option<&str>) -> Candidate {
        Candidate {
            key: k,
            rule_id: rule.into(),
            verdict,
            action: action.into(),
            action_reason: Some("dormant".into()),
            usage: Some("dormant".into()),
            key_status: "active".into(),
            last_used_at: last_used.map(ts),
            suppressed: false,
        }
    }

    fn policy() -> PlanPolicy {
        PlanPolicy {
            as_of: ts("2026-11-28T12:00:00Z"),
            unused_days: 90,
            protect_accounts: vec![AccountId::parse("000000000009").unwrap()],
            protect_ous: vec!["/Root/Prod/Core".into()],
            caller_user_arn: Some("arn:aws:iam::000000000001:user/auditor".into()),
            caller_key_id: Some(AccessKeyId::parse("AKIACALLER0000000001").unwrap()),
        }
    }

    #[test]
    fn only_failing_deactivate_findings_of_keys_nobody_protects_are_planned() {
        use Verdict::*;
        let a = "000000000002";
        let old = Some("2026-06-01T00:00:00Z");
        let cases = vec![
            candidate(key(a, "dormant", "AKIA0000000000000001", "/Root/Dev"), "KA-IAM-001", Fail, "deactivate", old),
            candidate(key(a, "dormant", "AKIA0000000000000001", "/Root/Dev"), "KA-IAM-004", Fail, "deactivate", old),
            candidate(
                key(a, "busy", "AKIA0000000000000002", "/Root/Dev"),
                "KA-IAM-001",
                Fail,
                "rotate",
                Some("2026-11-27T00:00:00Z"),
            ),
            candidate(
                key(a, "monthly", "AKIA0000000000000003", "/Root/Dev"),
                "KA-IAM-004",
                Fail,
                "deactivate",
                Some("2026-10-14T00:00:00Z"),
            ),
            candidate(key(a, "warned", "AKIA0000000000000004", "/Root/Dev"), "KA-IAM-001", Warn, "deactivate", None),
            candidate(
                key(a, ROOT_USER_NAME, "AKIA0000000000000005", "/Root/Dev"),
                "KA-IAM-002",
                Fail,
                "deactivate",
                None,
            ),
            candidate(
                key("000000000001", "auditor", "AKIA0000000000000006", "/Root"),
                "KA-IAM-001",
                Fail,
                "deactivate",
                None,
            ),
            candidate(key(a, "other", "AKIACALLER0000000001", "/Root/Dev"), "KA-IAM-001", Fail, "deactivate", None),
            candidate(
                key("000000000009", "x", "AKIA0000000000000007", "/Root"),
                "KA-IAM-001",
                Fail,
                "deactivate",
                None,
            ),
            candidate(
                key(a, "core", "AKIA0000000000000008", "/Root/Prod/Core/Db"),
                "KA-IAM-001",
                Fail,
                "deactivate",
                None,
            ),
            candidate(
                key(a, "corex", "AKIA0000000000000009", "/Root/Prod/CoreX"),
                "KA-IAM-001",
                Fail,
                "deactivate",
                None,
            ),
            Candidate {
                suppressed: true,
                ..candidate(
                    key(a, "vendor", "AKIA0000000000000010", "/Root/Dev"),
                    "KA-IAM-004",
                    Fail,
                    "deactivate",
                    None,
                )
            },
            candidate(key(a, "vendor", "AKIA0000000000000010", "/Root/Dev"), "KA-IAM-001", Fail, "deactivate", None),
            Candidate {
                key_status: "inactive".into(),
                ..candidate(key(a, "off", "AKIA0000000000000011", "/Root/Dev"), "KA-IAM-001", Fail, "deactivate", None)
            },
        ];
        let (planned, excluded) = plan_deactivations(&cases, &policy());
        let users: Vec<(&str, Vec<String>)> =
            planned.iter().map(|p| (p.key.user_name.as_str(), p.rules.clone())).collect();
        assert_eq!(
            users,
            [
                ("corex", vec!["KA-IAM-001".to_owned()]),
                ("dormant", vec!["KA-IAM-001".to_owned(), "KA-IAM-004".to_owned()])
            ],
            "one change per key, with every rule that failed"
        );
        let why: BTreeMap<&str, &str> = excluded.iter().map(|e| (e.key.user_name.as_str(), e.why.code())).collect();
        assert_eq!(
            why,
            BTreeMap::from([
                (ROOT_USER_NAME, "root_user"),
                ("auditor", "caller_key"),
                ("core", "protected_ou"),
                ("monthly", "recently_used"),
                ("other", "caller_key"),
                ("vendor", "suppressed"),
                ("x", "protected_account"),
            ])
        );
        assert!(planned.iter().all(|p| p.expect_active && p.kind == ChangeKind::Deactivate));
        assert_eq!(planned[1].expect_last_used_at, old.map(ts));
    }

    #[test]
    fn deletions_wait_and_need_the_key_inactive_and_unused_since() {
        let now = ts("2026-12-28T12:00:00Z");
        let at = |s: &str| ts(s);
        let k = |id: &str| key("000000000002", "u", id, "/Root");
        let entry = |id: &str, when: &str, inactive: bool, used_now: Option<&str>| Deactivated {
            key: k(id),
            deactivated_at: at(when),
            last_used_then: Some(at("2026-06-01T00:00:00Z")),
            inactive_now: inactive,
            last_used_now: used_now.map(at),
        };
        let keys = [
            entry("AKIA0000000000000001", "2026-11-28T12:00:00Z", true, Some("2026-06-01T00:00:00Z")),
            entry("AKIA0000000000000002", "2026-12-20T12:00:00Z", true, Some("2026-06-01T00:00:00Z")),
            entry("AKIA0000000000000003", "2026-11-28T12:00:00Z", false, Some("2026-06-01T00:00:00Z")),
            entry("AKIA0000000000000004", "2026-11-28T12:00:00Z", true, Some("2026-12-01T00:00:00Z")),
        ];
        let (planned, excluded) = plan_deletions(&keys, now, SignedDuration::from_hours(24 * 30));
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].key.access_key_id.as_str(), "AKIA0000000000000001");
        assert!(planned[0].reason.contains("cannot be undone"));
        let codes: Vec<&str> = excluded.iter().map(|e| e.why.code()).collect();
        assert_eq!(codes, ["waiting_period", "not_inactive", "used_since_deactivation"]);
    }
}
