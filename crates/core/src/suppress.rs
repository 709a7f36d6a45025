//! Exceptions: findings accepted for a while, each written down with a reason, an owner and an end date.
//!
//! An entry selects findings by any of fingerprint, access key id, user ARN glob, account and OU subtree (all
//! that it names must match), optionally narrowed to some rules. Only failing and warning findings are
//! suppressed: a suppressed finding keeps its verdict but no longer counts for the exit code or the totals. An
//! entry is in force up to and including its `expires` day (UTC); after that it matches nothing and the
//! finding counts again. Accounts that could not be assessed are not findings, so no entry can hide them.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use crate::ModelError;
use crate::account::Account;
pub use crate::finding::AppliedSuppression;
use crate::finding::{Evidence, Finding};
use crate::ids::{AccessKeyId, AccountId};

/// An entry expiring within this many days is listed as expiring soon.
pub const EXPIRING_SOON_DAYS: i64 = 14;

/// An `expires` more than this many days after `as_of` needs the entry's `allow_long = true`.
pub const LONGEST_WITHOUT_ALLOW_LONG_DAYS: i64 = 365;

/// A user ARN pattern: `*` matches any run of characters within one `/`-separated segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserArnGlob {
    pattern: String,
}

impl UserArnGlob {
    /// Parses a pattern: an ARN (`arn:…`) whose only wildcard is `*`, never two in a row.
    pub fn parse(pattern: &str) -> Result<Self, ModelError> {
        let invalid =
            |problem: &str| ModelError::InvalidPattern { value: pattern.to_owned(), problem: problem.to_owned() };
        if !pattern.starts_with("arn:") {
            return Err(invalid("expected an IAM user ARN such as arn:aws:iam::123456789012:user/ci-*"));
        }
        if pattern.contains("**") {
            return Err(invalid("`**` is not supported: `*` matches within one path segment, write one per segment"));
        }
        if let Some(c) = pattern.chars().find(|c| matches!(c, '?' | '[' | ']' | '{' | '}')) {
            return Err(invalid(&format!("{c:?} is not a wildcard here: only `*` is (within one path segment)")));
        }
        Ok(Self { pattern: pattern.to_owned() })
    }

    /// Whether `arn` matches, segment by segment.
    pub fn matches(&self, arn: &str) -> bool {
        let (mut pattern, mut subject) = (self.pattern.split('/'), arn.split('/'));
        loop {
            match (pattern.next(), subject.next()) {
                (None, None) => return true,
                (Some(p), Some(s)) if segment_matches(p, s) => {}
                _ => return false,
            }
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

/// Wildcard match of one segment, `*` matching any run of characters.
fn segment_matches(pattern: &str, subject: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = subject.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// What an entry matches: every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// A finding's fingerprint.
    pub fingerprint: Option<String>,
    /// A key id: the key's findings, and user-level findings that list the key.
    pub access_key_id: Option<AccessKeyId>,
    /// A user ARN pattern.
    pub user_arn: Option<UserArnGlob>,
    /// An account.
    pub account_id: Option<AccountId>,
    /// An OU path, its subtree included (`/Root/Prod` matches `/Root/Prod` and `/Root/Prod/Payments`).
    pub ou_path: Option<String>,
    /// Rule ids; every rule when `None`.
    pub rules: Option<Vec<&'static str>>,
}

/// What a selector is matched against: a finding's fields (from the live model or from a saved report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The finding's fingerprint.
    pub fingerprint: &'a str,
    /// Its rule.
    pub rule_id: &'a str,
    /// Its account.
    pub account_id: &'a AccountId,
    /// The account's OU path.
    pub ou_path: Option<&'a str>,
    /// The user's ARN.
    pub user_arn: &'a str,
    /// The key ids it is about (its key's; for a user-level finding, the keys its evidence lists).
    pub key_ids: Vec<&'a AccessKeyId>,
}

impl<'a> Subject<'a> {
    /// A live finding's subject.
    pub fn of(finding: &'a Finding, fingerprint: &'a str, account: Option<&'a Account>) -> Self {
        let mut key_ids: Vec<&AccessKeyId> = finding.key.iter().filter_map(|k| k.access_key_id.as_ref()).collect();
        if let Evidence::ActiveKeys { keys, .. } = &finding.evidence {
            key_ids.extend(keys.iter().filter_map(|k| k.access_key_id.as_ref()));
        }
        Self {
            fingerprint,
            rule_id: finding.rule.id,
            account_id: &finding.account_id,
            ou_path: account.and_then(|a| a.ou_path.as_deref()),
            user_arn: &finding.user_arn,
            key_ids,
        }
    }
}

impl Selector {
    /// Whether the subject matches every criterion the selector names.
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        let ou_matches = |wanted: &str| {
            subject.ou_path.is_some_and(|path| {
                path == wanted || path.strip_prefix(wanted).is_some_and(|rest| rest.starts_with('/'))
            })
        };
        self.fingerprint.as_deref().is_none_or(|f| f == subject.fingerprint)
            && self.access_key_id.as_ref().is_none_or(|id| subject.key_ids.contains(&id))
            && self.user_arn.as_ref().is_none_or(|g| g.matches(subject.user_arn))
            && self.account_id.as_ref().is_none_or(|a| a == subject.account_id)
            && self.ou_path.as_deref().is_none_or(ou_matches)
            && self.rules.as_ref().is_none_or(|rules| rules.contains(&subject.rule_id))
    }
}

/// One exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The entry's `name`, or `#N` (its 1-based position in the file).
    pub label: String,
    /// The line the entry starts on, for messages.
    pub line: usize,
    /// What it matches.
    pub selector: Selector,
    /// Why the finding is accepted.
    pub reason: String,
    /// Who accepted it (a person or team to ask).
    pub owner: String,
    /// The last day (UTC) the entry is in force.
    pub expires: Date,
    /// The entry may run for more than a year.
    pub allow_long: bool,
}

impl Suppression {
    /// The first instant the entry is no longer in force: the day after `expires`, 00:00 UTC.
    pub fn ends_at(&self) -> Timestamp {
        self.expires
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map_or(Timestamp::MAX, |z| z.timestamp())
    }

    /// Whether the entry is in force at `as_of`.
    pub fn in_force(&self, as_of: Timestamp) -> bool {
        as_of < self.ends_at()
    }

    /// Checks the entry against the run's `as_of`: an end date more than a year away needs `allow_long`.
    pub fn check_horizon(&self, as_of: Timestamp) -> Result<(), String> {
        let limit = as_of.checked_add(SignedDuration::from_hours(24 * LONGEST_WITHOUT_ALLOW_LONG_DAYS));
        if !self.allow_long && limit.is_ok_and(|limit| self.ends_at() > limit) {
            return Err(format!(
                "expires {} is more than {LONGEST_WITHOUT_ALLOW_LONG_DAYS} days after as_of ({as_of}); exceptions \
                 are meant to be reviewed: choose an earlier date, or add `allow_long = true` to the entry",
                self.expires
            ));
        }
        Ok(())
    }

    fn applied(&self) -> AppliedSuppression {
        AppliedSuppression {
            entry: self.label.clone(),
            reason: self.reason.clone(),
            owner: self.owner.clone(),
            expires: self.expires,
        }
    }
}

/// Every entry of a suppressions file, in file order (the first matching entry applies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppressions {
    /// The entries.
    pub entries: Vec<Suppression>,
}

/// Where an entry stands after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// In force and suppressing at least one finding.
    InForce,
    /// In force, suppressing findings, and ending within [`EXPIRING_SOON_DAYS`].
    ExpiringSoon,
    /// Past its end date: it matches nothing, and the findings it would match count again.
    Expired,
    /// In force, but it matched nothing in a complete run: the key was fixed, the entry can go.
    Stale,
    /// In force and matched nothing, but some accounts could not be assessed: it may match there.
    Unmatched,
}

impl EntryState {
    /// `in_force`, `expiring_soon`, `expired`, `stale` or `unmatched`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::InForce => "in_force",
            EntryState::ExpiringSoon => "expiring_soon",
            EntryState::Expired => "expired",
            EntryState::Stale => "stale",
            EntryState::Unmatched => "unmatched",
        }
    }

    /// Parses [`EntryState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [EntryState::InForce, EntryState::ExpiringSoon, EntryState::Expired, EntryState::Stale, EntryState::Unmatched]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// An entry's standing after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryStatus {
    /// The entry.
    pub entry: Suppression,
    /// Where it stands.
    pub state: EntryState,
    /// Findings it suppressed; for an expired entry, the failing or warning findings it would have matched.
    pub matched: usize,
}

impl Suppressions {
    /// The entry in force at `as_of` that suppresses `finding`, if any. Only failing and warning findings are
    /// suppressed.
    pub fn find(
        &self,
        finding: &Finding,
        fingerprint: &str,
        account: Option<&Account>,
        as_of: Timestamp,
    ) -> Option<AppliedSuppression> {
        if !finding.verdict.is_actionable() {
            return None;
        }
        self.in_force_for(&Subject::of(finding, fingerprint, account), as_of).map(Suppression::applied)
    }

    /// When the last entry that matches `subject` and has ended by `as_of` ended (its [`Suppression::ends_at`]), if
    /// one has: a finding that comes out from under an exception gets its grace from then.
    pub fn last_ended_for(&self, subject: &Subject<'_>, as_of: Timestamp) -> Option<Timestamp> {
        self.entries
            .iter()
            .filter(|e| !e.in_force(as_of) && e.selector.matches(subject))
            .map(Suppression::ends_at)
            .max()
    }

    /// The first entry in force at `as_of` that matches `subject` (whatever its verdict).
    pub fn in_force_for(&self, subject: &Subject<'_>, as_of: Timestamp) -> Option<&Suppression> {
        self.entries.iter().find(|e| e.in_force(as_of) && e.selector.matches(subject))
    }

    /// Each entry's standing after a run: `findings` with their fingerprints and accounts, `complete` when every
    /// selected account was assessed.
    pub fn statuses<'a>(
        &self,
        findings: impl Iterator<Item = (&'a Finding, String, Option<&'a Account>)>,
        as_of: Timestamp,
        complete: bool,
    ) -> Vec<EntryStatus> {
        let mut matched = vec![0usize; self.entries.len()];
        for (finding, fingerprint, account) in findings.filter(|(f, ..)| f.verdict.is_actionable()) {
            if let Some(applied) = &finding.suppression {
                if let Some(i) = self.entries.iter().position(|e| e.label == applied.entry) {
                    matched[i] += 1;
                }
            } else if let Some(i) = self
                .entries
                .iter()
                .position(|e| !e.in_force(as_of) && e.selector.matches(&Subject::of(finding, &fingerprint, account)))
            {
                matched[i] += 1;
            }
        }
        let soon = as_of.checked_add(SignedDuration::from_hours(24 * EXPIRING_SOON_DAYS)).unwrap_or(Timestamp::MAX);
        self.entries
            .iter()
            .zip(matched)
            .map(|(entry, matched)| {
                let state = if !entry.in_force(as_of) {
                    EntryState::Expired
                } else if matched == 0 {
                    if complete { EntryState::Stale } else { EntryState::Unmatched }
                } else if entry.ends_at() <= soon {
                    EntryState::ExpiringSoon
                } else {
                    EntryState::InForce
                };
                EntryStatus { entry: entry.clone(), state, matched }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_one_segment() {
        let cases = [
            ("arn:aws:iam::*:user/ci-*", "arn:aws:iam::123456789012:user/ci-deploy", true),
            ("arn:aws:iam::*:user/ci-*", "arn:aws:iam::123456789012:user/build/ci-deploy", false),
            ("arn:aws:iam::*:user/*/ci-*", "arn:aws:iam::123456789012:user/build/ci-deploy", true),
            ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice", true),
            ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice2", false),
            ("arn:aws:iam::*:user/*", "arn:aws:iam::123456789012:user/", true),
            ("arn:aws:iam::*:user/a*b*c", "arn:aws:iam::1:user/abc", true),
            ("arn:aws:iam::*:user/a*b*c", "arn:aws:iam::1:user/aXbYc", true),
            ("arn:aws:iam::*:user/a*b*c", "arn:aws:iam::1:user/acb", false),
            ("arn:aws:iam::*:user/ab*ba", "arn:aws:iam::1:user/aba", false),
            ("arn:aws:iam::*:root", "arn:aws:iam::1:root", true),
        ];
        for (pattern, arn, expected) in cases {
            assert_eq!(UserArnGlob::parse(pattern).unwrap().matches(arn), expected, "{pattern} ~ {arn}");
        }
    }

    #[test]
    fn bad_globs_say_what_is_wrong() {
        for (pattern, needle) in [
            ("alice", "expected an IAM user ARN"),
            ("arn:aws:iam::*:user/**", "`**` is not supported"),
            ("arn:aws:iam::*:user/a?", "'?' is not a wildcard"),
            ("arn:aws:iam::*:user/[ab]", "'[' is not a wildcard"),
        ] {
            let err = UserArnGlob::parse(pattern).unwrap_err().to_string();
            assert!(err.contains(needle), "{pattern}: {err}");
        }
    }

    fn entry(expires: &str, allow_long: bool) -> Suppression {
        Suppression {
            label: "#1".into(),
            line: 1,
            selector: Selector { account_id: Some(AccountId::parse("000000000001").unwrap()), ..Selector::default() },
            reason: "vendor".into(),
            owner: "sec".into(),
            expires: expires.parse().unwrap(),
            allow_long,
        }
    }

    #[test]
    fn an_entry_is_in_force_through_its_last_day_utc() {
        let e = entry("2027-03-31", false);
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(e.in_force(at("2027-03-31T23:59:59Z")));
        assert!(!e.in_force(at("2027-04-01T00:00:00Z")));
        assert_eq!(e.ends_at(), at("2027-04-01T00:00:00Z"));
    }

    #[test]
    fn more_than_a_year_ahead_needs_allow_long() {
        let as_of: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        assert!(entry("2027-11-27", false).check_horizon(as_of).is_ok(), "ends 2027-11-28T00:00Z: 365 days");
        let err = entry("2027-11-28", false).check_horizon(as_of).unwrap_err();
        assert!(err.contains("more than 365 days after as_of") && err.contains("allow_long = true"), "{err}");
        assert!(entry("2030-01-01", true).check_horizon(as_of).is_ok());
    }

    #[test]
    fn the_last_ended_entry_that_matches_gives_a_fresh_grace_from_its_end() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let account = AccountId::parse("000000000001").unwrap();
        let subject = Subject {
            fingerprint: "f",
            rule_id: "KA-IAM-001",
            account_id: &account,
            ou_path: None,
            user_arn: "arn:aws:iam::000000000001:user/u",
            key_ids: Vec::new(),
        };
        let other = Suppression {
            selector: Selector { account_id: Some(AccountId::parse("000000000002").unwrap()), ..Selector::default() },
            ..entry("2026-12-20", false)
        };
        let s = Suppressions { entries: vec![entry("2026-10-31", false), entry("2026-11-15", false), other] };
        assert_eq!(s.last_ended_for(&subject, at("2026-11-10T00:00:00Z")), Some(at("2026-11-01T00:00:00Z")));
        assert_eq!(s.last_ended_for(&subject, at("2026-12-31T00:00:00Z")), Some(at("2026-11-16T00:00:00Z")));
        assert_eq!(s.last_ended_for(&subject, at("2026-10-31T12:00:00Z")), None, "still in force through its day");
    }
}
