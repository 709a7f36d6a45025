//! Owner notices, the pure part: who is told about which key, and whether this run tells them — one message per
//! recipient per run, a first notice when a key becomes actionable, reminders before its deadline, and after it a
//! weekly reminder that also goes to the route's escalation contact. `keyaudit notify` renders and sends what this
//! decides; the history of earlier sends is its input, so that re-running sends nothing twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};

use crate::eval::{Finding, GraceDays};
use crate::ids::AccountId;
use crate::inventory::KeySlot;
use crate::report::Report;

/// An e-mail address, checked strictly: one `local@domain` address and nothing else (no display name, no second
/// address, no spaces, quotes, angle brackets or line breaks), so that a value from a tag can never add a header,
/// a recipient or a mention.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);

impl Address {
    /// The address, when `value` is exactly one plausible address (at most 254 characters, local part at most 64,
    /// a dot-atom local part, a domain of letter/digit/hyphen labels with a dot).
    pub fn parse(value: &str) -> Option<Self> {
        let (local, domain) = value.split_once('@')?;
        let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local.split('.').all(|part| !part.is_empty() && part.chars().all(atom));
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let domain_ok = domain.contains('.') && domain.split('.').all(label_ok);
        (value.len() <= 254 && local_ok && domain_ok).then(|| Self(value.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the address is in one of `domains` (a domain or any of its subdomains, case-insensitively); every
    /// address is when `domains` is empty.
    pub fn in_domains(&self, domains: &[String]) -> bool {
        let domain = self.0.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
        domains.is_empty()
            || domains.iter().any(|d| {
                let d = d.to_ascii_lowercase();
                domain == d || domain.strip_suffix(&d).is_some_and(|rest| rest.ends_with('.'))
            })
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a notice goes to, and by which channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// An e-mail (Amazon SES).
    Email(Address),
    /// A Slack incoming webhook, by its name in the config.
    Slack(String),
    /// A Microsoft Teams incoming webhook, by its name in the config.
    Teams(String),
    /// A generic JSON webhook, by its name in the config.
    Webhook(String),
    /// An SNS topic, by its ARN.
    Sns(String),
}

impl Target {
    /// `alice@corp.example`, `slack:payments`, `teams:NAME`, `webhook:NAME`, `sns:ARN`: as the config writes it.
    pub fn parse(value: &str) -> Option<Self> {
        let named = |rest: &str| {
            (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
                .then(|| rest.to_owned())
        };
        match value.split_once(':') {
            Some(("slack", rest)) => named(rest).map(Self::Slack),
            Some(("teams", rest)) => named(rest).map(Self::Teams),
            Some(("webhook", rest)) => named(rest).map(Self::Webhook),
            Some(("sns", rest)) if is_topic_arn(rest) => Some(Self::Sns(rest.to_owned())),
            Some(_) => None,
            None => Address::parse(value).map(Self::Email),
        }
    }

    /// The channel: `email`, `slack`, `teams`, `webhook` or `sns`.
    pub fn channel(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Slack(_) => "slack",
            Self::Teams(_) => "teams",
            Self::Webhook(_) => "webhook",
            Self::Sns(_) => "sns",
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Email(a) => write!(f, "{a}"),
            Self::Slack(n) => write!(f, "slack:{n}"),
            Self::Teams(n) => write!(f, "teams:{n}"),
            Self::Webhook(n) => write!(f, "webhook:{n}"),
            Self::Sns(arn) => write!(f, "sns:{arn}"),
        }
    }
}

fn is_topic_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.split(':').collect();
    matches!(parts[..], ["arn", partition, "sns", region, account, topic]
        if partition.starts_with("aws") && !region.is_empty() && AccountId::parse(account).is_ok()
            && !topic.is_empty() && topic.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)))
}

/// What a route covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteScope {
    /// An OU path and its subtree (`/Root/Prod`).
    Ou(String),
    /// One account.
    Account(AccountId),
}

/// Where the keys of an OU (or account) go when their owner cannot be told, and who hears when they are overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// What it covers.
    pub scope: RouteScope,
    /// Who is told about keys without a reachable owner.
    pub to: Target,
    /// Who is also told when a key is past its deadline.
    pub escalate_to: Option<Target>,
}

/// When notices go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cadence {
    /// Reminders this long before a deadline (a week and a day by default).
    pub reminders: Vec<SignedDuration>,
    /// After the deadline, a reminder (with escalation) this often.
    pub overdue_every: SignedDuration,
    /// No two messages to one recipient within this, unless a new key appeared for them.
    pub min_interval: SignedDuration,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            reminders: vec![SignedDuration::from_hours(7 * 24), SignedDuration::from_hours(24)],
            overdue_every: SignedDuration::from_hours(7 * 24),
            min_interval: SignedDuration::from_hours(20),
        }
    }
}

/// Who is told what: owner tag values mapped to targets, routes, the catch-all contact, the cadence, and the grace
/// days deadlines are computed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Owner tag values that are not an address (a team name), mapped to where that owner is reached.
    pub owners: BTreeMap<String, Target>,
    /// Routes by OU path or account.
    pub routes: Vec<Route>,
    /// Told about every key nobody else can be told about, and the escalation contact when no route names one.
    pub catch_all: Address,
    /// The zone deadlines are dates in (`timezone`, default UTC): a key is due through the end of its due day there.
    pub timezone: jiff::tz::TimeZone,
    /// Owner addresses (from tags) are used only in these domains, when any are given (`allowed-domains`); an owner
    /// elsewhere is routed as unowned, with the reason.
    pub allowed_domains: Vec<String>,
    /// When.
    pub cadence: Cadence,
    /// The deadlines' grace days (the report's, unless the notify config sets its own).
    pub grace_days: GraceDays,
}

/// How an item's recipient was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutedBy {
    /// The owner tag holds an address.
    OwnerAddress,
    /// The owner tag's value is mapped in the config.
    OwnerMapping,
    /// A route, by OU or account (the reason the owner could not be used, if it was set).
    Route(Option<String>),
    /// Nobody else: the catch-all, with the reason.
    CatchAll(String),
}

impl RoutedBy {
    /// `owner`, `owner mapping`, `route`, `catch-all`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OwnerAddress => "owner",
            Self::OwnerMapping => "owner mapping",
            Self::Route(_) => "route",
            Self::CatchAll(_) => "catch-all",
        }
    }
}

/// One actionable key (or user, for a user-level finding) and its findings.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    /// The failing or warning findings about it, most severe first.
    pub findings: Vec<&'a Finding>,
    /// Its deadline: the earliest of its findings'.
    pub due: Option<Timestamp>,
    /// Who owns it, and how that was found.
    pub to: Target,
    /// How.
    pub routed_by: RoutedBy,
    /// Who hears when it is overdue.
    pub escalate_to: Target,
}

impl Item<'_> {
    /// The finding that speaks for the item (its worst verdict, then its deadline).
    pub fn lead(&self) -> &Finding {
        self.findings[0]
    }

    /// Its findings' fingerprints, by which the history knows it.
    pub fn fingerprints(&self, report: &Report) -> Vec<String> {
        self.findings.iter().map(|f| f.fingerprint(&report.run.partition)).collect()
    }
}

/// Why an item is in this run's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trigger {
    /// First notice.
    New,
    /// A reminder before the deadline.
    Reminder,
    /// Past the deadline (escalated).
    Overdue,
}

impl Trigger {
    /// `new`, `reminder`, `overdue`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Reminder => "reminder",
            Self::Overdue => "overdue",
        }
    }
}

/// An earlier message, as the history records it: to whom, at which report's `as_of`, about which findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The recipient.
    pub to: Target,
    /// The `as_of` of the report it was made from.
    pub at: Timestamp,
    /// The fingerprints of the findings it listed.
    pub fingerprints: BTreeSet<String>,
}

/// One item in one message, and why.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// The item.
    pub item: &'a Item<'a>,
    /// Why it is in the message now (`None`: listed because its recipient is told anyway).
    pub trigger: Option<Trigger>,
    /// Listed for its escalation (the recipient is the escalation contact, not the owner).
    pub escalated: bool,
}

/// What this run does for one recipient.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// Who.
    pub to: Target,
    /// Every item they are told about, their own first, each once.
    pub lines: Vec<Line<'a>>,
    /// Whether a message goes out; when not, why not.
    pub decision: Decision,
}

/// Whether a recipient gets a message in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A message goes out.
    Send,
    /// Nothing new, no reminder or overdue point reached since the last message.
    NothingDue,
    /// The last message was sent less than `min-interval` ago, and no new key appeared.
    TooSoon {
        /// When the last one went.
        last: Timestamp,
    },
}

/// Every actionable key of `report` (failing or warning, no exception), grouped per key (per user for a user-level
/// finding), with its recipient.
pub fn items<'a>(report: &'a Report, routing: &Routing) -> Vec<Item<'a>> {
    let accounts: BTreeMap<&AccountId, Option<&str>> =
        report.accounts.iter().map(|r| (&r.account.id, r.account.ou_path.as_deref())).collect();
    let mut grouped: BTreeMap<(&AccountId, &str, Option<KeySlot>), Vec<&Finding>> = BTreeMap::new();
    for f in report.findings.iter().filter(|f| f.counts_against()) {
        grouped.entry((&f.account_id, f.user_arn.as_str(), f.key.as_ref().map(|k| k.slot))).or_default().push(f);
    }
    grouped
        .into_iter()
        .map(|((account, ..), mut findings)| {
            let as_of = report.run_of(account.as_str()).as_of;
            let due_of = |f: &Finding| f.due_in(as_of, &routing.grace_days, &routing.timezone);
            findings.sort_by_key(|f| (f.verdict, due_of(f), f.rule.id));
            let due = findings.iter().filter_map(|f| due_of(f)).min();
            let routes = routes_for(account, accounts.get(account).copied().flatten(), routing);
            let (to, routed_by) = recipient(findings[0], routes.first().copied(), routing);
            // The most specific route that names an escalation contact, else the catch-all.
            let escalate_to = routes
                .iter()
                .find_map(|r| r.escalate_to.clone())
                .unwrap_or_else(|| Target::Email(routing.catch_all.clone()));
            Item { findings, due, to, routed_by, escalate_to }
        })
        .collect()
}

/// The routes over an account, most specific first: its own, then the OU routes over its OU path, deepest first.
fn routes_for<'r>(account: &AccountId, ou_path: Option<&str>, routing: &'r Routing) -> Vec<&'r Route> {
    let under = |path: &str, ou: &str| {
        let ou = ou.trim_end_matches('/');
        path == ou || path.strip_prefix(ou).is_some_and(|rest| rest.starts_with('/'))
    };
    let mut matching: Vec<(usize, &Route)> = routing
        .routes
        .iter()
        .filter_map(|r| match &r.scope {
            RouteScope::Account(id) if id == account => Some((usize::MAX, r)),
            RouteScope::Ou(ou) if ou_path.is_some_and(|p| under(p, ou)) => Some((ou.len(), r)),
            _ => None,
        })
        .collect();
    matching.sort_by_key(|(depth, _)| std::cmp::Reverse(*depth));
    matching.into_iter().map(|(_, r)| r).collect()
}

/// Who is told about a key: its owner (an address, or a mapped team), else its most specific route, else the
/// catch-all.
fn recipient(f: &Finding, route: Option<&Route>, routing: &Routing) -> (Target, RoutedBy) {
    let owner_problem = match &f.owner {
        Some(owner) => match Address::parse(&owner.value) {
            Some(address) if address.in_domains(&routing.allowed_domains) => {
                return (Target::Email(address), RoutedBy::OwnerAddress);
            }
            Some(address) => Some(format!(
                "owner tag {}={address} is outside allowed-domains ({})",
                owner.tag,
                routing.allowed_domains.join(", ")
            )),
            None => {
                if let Some(target) = routing.owners.get(&owner.value) {
                    return (target.clone(), RoutedBy::OwnerMapping);
                }
                Some(format!(
                    "owner tag {}={:?} is neither one address nor in [owners]",
                    owner.tag,
                    owner.value.chars().take(60).collect::<String>()
                ))
            }
        },
        None => None,
    };
    match route {
        Some(r) => (r.to.clone(), RoutedBy::Route(owner_problem)),
        None => (
            Target::Email(routing.catch_all.clone()),
            RoutedBy::CatchAll(owner_problem.unwrap_or_else(|| "no owner tag and no route".to_owned())),
        ),
    }
}

/// The history, indexed once: the last message to each recipient, and the last one to each recipient about each
/// finding (planning is linear in the items and the history, not their product).
struct LastSent<'h> {
    to: HashMap<&'h Target, Timestamp>,
    about: HashMap<(&'h Target, &'h str), Timestamp>,
}

impl<'h> LastSent<'h> {
    fn of(history: &'h [Sent]) -> Self {
        let mut last = Self { to: HashMap::new(), about: HashMap::new() };
        for s in history {
            let at = last.to.entry(&s.to).or_insert(s.at);
            *at = (*at).max(s.at);
            for f in &s.fingerprints {
                let at = last.about.entry((&s.to, f.as_str())).or_insert(s.at);
                *at = (*at).max(s.at);
            }
        }
        last
    }

    /// The last message to `to` that listed any of `fingerprints`.
    fn about(&self, to: &Target, fingerprints: &[String]) -> Option<Timestamp> {
        fingerprints.iter().filter_map(|f| self.about.get(&(to, f.as_str())).copied()).max()
    }
}

/// Why an item is due a notice to `to` at `as_of`, given the history (`None`: it is not).
fn trigger(
    item: &Item<'_>,
    fingerprints: &[String],
    to: &Target,
    history: &LastSent<'_>,
    as_of: Timestamp,
    c: &Cadence,
    tz: &jiff::tz::TimeZone,
) -> Option<Trigger> {
    let Some(last) = history.about(to, fingerprints) else { return Some(Trigger::New) };
    let due = item.due?;
    if as_of >= due {
        let overdue_point = due.max(last.checked_add(c.overdue_every).unwrap_or(Timestamp::MAX));
        return (last < due || as_of >= overdue_point).then_some(Trigger::Overdue);
    }
    // Reminder points are days before the due day, from the start of their day: the 1-day reminder is due all of
    // the day before the deadline's day.
    let due_day = crate::eval::start_of_day(due, tz);
    c.reminders
        .iter()
        .filter_map(|before| due_day.checked_sub(*before).ok())
        .any(|point| as_of >= point && last < point)
        .then_some(Trigger::Reminder)
}

/// What this run does for every recipient, in recipient order: each recipient's items and escalations in one
/// notice, sent when one of them is due a notice and `min-interval` has passed (or a new key appeared).
pub fn plan<'a>(report: &Report, items: &'a [Item<'a>], history: &[Sent], routing: &Routing) -> Vec<Notice<'a>> {
    let as_of = report.run.as_of;
    let c = &routing.cadence;
    let history = LastSent::of(history);
    let mut by_recipient: BTreeMap<Target, Vec<Line<'a>>> = BTreeMap::new();
    for item in items {
        let fingerprints = item.fingerprints(report);
        let trigger_for = |to: &Target| trigger(item, &fingerprints, to, &history, as_of, c, &routing.timezone);
        let own = trigger_for(&item.to);
        by_recipient.entry(item.to.clone()).or_default().push(Line { item, trigger: own, escalated: false });
        if item.escalate_to != item.to && item.due.is_some_and(|due| as_of >= due) {
            // Escalation is a duty of its own, judged on the escalation contact's own history: told in the first run
            // past the deadline whatever happened to the owner's message (a late start, an owner held by
            // min-interval, a channel that always fails), then every overdue-every; never twice for one overdue
            // period. One that failed, was held or was capped left no record as sent, so the next run retries it.
            let escalation = trigger_for(&item.escalate_to).map(|_| Trigger::Overdue);
            by_recipient.entry(item.escalate_to.clone()).or_default().push(Line {
                item,
                trigger: escalation,
                escalated: true,
            });
        }
    }
    by_recipient
        .into_iter()
        .map(|(to, lines)| {
            let last = history.to.get(&to).copied();
            let any_new = lines.iter().any(|l| l.trigger == Some(Trigger::New) && !l.escalated);
            let decision = if lines.iter().all(|l| l.trigger.is_none()) {
                Decision::NothingDue
            } else if let Some(last) = last.filter(|last| as_of.duration_since(*last) < c.min_interval && !any_new) {
                Decision::TooSoon { last }
            } else {
                Decision::Send
            };
            Notice { to, lines, decision }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_one_plain_address_or_nothing() {
        for ok in ["alice@corp.example", "a.b+tag@sub.corp-x.example", "o'neil@x.io"] {
            assert!(Address::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "alice@corp.example mallory@evil.example",
            "alice@corp.example,mallory@evil.example",
            "Alice <alice@corp.example>",
            "alice@corp.example\r\nBcc: all@corp.example",
            "alice",
            "@corp.example",
            "alice@localhost",
            "al ice@corp.example",
            "alice@-corp.example",
            "alice..b@corp.example",
            "alice@corp..example",
            "\"alice\"@corp.example",
            "</td><script>@x.example",
        ] {
            assert!(Address::parse(bad).is_none(), "{bad:?}");
        }
        assert!(Address::parse(&format!("{}@corp.example", "a".repeat(65))).is_none());
    }

    use crate::eval::{EvalContext, RuleConfig, evaluate};
    use crate::ids::Partition;
    use crate::inventory::{AccountInventory, CredentialUser, KeySlotRecord, KeyStatus, Owner};
    use crate::report::{
        AccessMethod, Account, AccountRecord, AccountState, AccountStats, AccountStatus, RunInfo, Scope,
    };

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const AS_OF: &str = "2026-11-28T12:00:00Z";

    /// Users with one key each, last rotated `rotated`, owned by `owner` (a tag value), in two accounts:
    /// 000000000002 under /Root/Prod/Payments, 000000000003 under /Root/Dev.
    fn report(as_of: &str, users: &[(&str, &str, &str, Option<&str>)]) -> Report {
        let as_of = ts(as_of);
        let config = RuleConfig::default();
        let ctx = EvalContext { as_of, config };
        let mut accounts = Vec::new();
        let mut findings = Vec::new();
        for (id, ou) in [("000000000002", "/Root/Prod/Payments"), ("000000000003", "/Root/Dev")] {
            let account = Account {
                id: AccountId::parse(id).unwrap(),
                name: Some(format!("acct-{id}")),
                ou_path: Some(ou.into()),
                state: AccountState::Active,
                access: AccessMethod::CallerCredentials,
            };
            let inv = AccountInventory {
                report_generated_at: None,
                users: users
                    .iter()
                    .filter(|(_, account, ..)| *account == id)
                    .map(|(name, _, rotated, owner)| CredentialUser {
                        user_name: (*name).into(),
                        arn: format!("arn:aws:iam::{id}:user/{name}"),
                        keys: vec![KeySlotRecord {
                            last_used_at: Some(as_of - SignedDuration::from_hours(24)),
                            ..KeySlotRecord::new(KeySlot::One, KeyStatus::Active, ts(rotated))
                        }],
                        owner: owner.map(|v| Owner { value: v.into(), tag: "owner".into() }),
                    })
                    .collect(),
            };
            let only = crate::rules::builtin().select(&["KA-IAM-001".to_owned()], &[]).unwrap();
            findings.extend(evaluate(&only, &ctx, &account.id, &inv));
            accounts.push(AccountRecord {
                account,
                status: AccountStatus::Scanned {
                    report_generated_at: None,
                    keys: Default::default(),
                    enrichment: Default::default(),
                },
                stats: AccountStats::default(),
            });
        }
        Report {
            run: RunInfo {
                as_of,
                started_at: as_of,
                finished_at: as_of,
                config,
                scope: Scope::StandaloneAccount,
                origin: None,
                partition: Partition::aws(),
                accounts_discovered: 2,
                discovery_complete: true,
                clock: None,
            },
            rules: crate::rules::builtin().metas(),
            accounts,
            findings,
            suppressions: None,
            comparison: None,
        }
    }

    fn target(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn routing() -> Routing {
        Routing {
            owners: BTreeMap::from([("team-payments".to_owned(), target("slack:payments"))]),
            routes: vec![
                Route {
                    scope: RouteScope::Ou("/Root/Prod".into()),
                    to: target("prod@corp.example"),
                    escalate_to: Some(target("ciso@corp.example")),
                },
                Route {
                    scope: RouteScope::Ou("/Root/Prod/Payments".into()),
                    to: target("pay@corp.example"),
                    escalate_to: None,
                },
                Route {
                    scope: RouteScope::Account(AccountId::parse("000000000003").unwrap()),
                    to: target("dev@corp.example"),
                    escalate_to: None,
                },
            ],
            catch_all: Address::parse("security@corp.example").unwrap(),
            allowed_domains: Vec::new(),
            timezone: jiff::tz::TimeZone::UTC,
            cadence: Cadence::default(),
            grace_days: GraceDays::DEFAULT,
        }
    }

    #[test]
    fn owner_addresses_outside_the_allowed_domains_are_routed_as_unowned() {
        let old = "2026-01-01T00:00:00Z";
        let users = [
            ("alice", "000000000002", old, Some("alice@corp.example")),
            ("sub", "000000000002", old, Some("bob@eu.CORP.example")),
            ("outside", "000000000002", old, Some("mallory@corp.example.evil.example")),
            ("gmail", "000000000003", old, Some("someone@gmail.example")),
        ];
        let r = report(AS_OF, &users);
        let routing = Routing { allowed_domains: vec!["corp.example".into()], ..routing() };
        let got: BTreeMap<String, (String, String)> = items(&r, &routing)
            .iter()
            .map(|i| (i.lead().user_name.clone(), (i.to.to_string(), format!("{:?}", i.routed_by))))
            .collect();
        assert_eq!(got["alice"].0, "alice@corp.example");
        assert_eq!(got["sub"].0, "bob@eu.CORP.example", "a subdomain, whatever its case");
        assert_eq!(got["outside"].0, "pay@corp.example", "routed by its OU instead");
        assert!(got["outside"].1.contains("outside allowed-domains (corp.example)"), "{:?}", got["outside"]);
        assert_eq!(got["gmail"].0, "dev@corp.example");
    }

    #[test]
    fn every_key_reaches_its_owner_else_its_most_specific_route_else_the_catch_all() {
        let old = "2026-01-01T00:00:00Z";
        let users = [
            ("alice", "000000000002", old, Some("alice@corp.example")),
            ("svc", "000000000002", old, Some("team-payments")),
            ("two", "000000000002", old, Some("alice@corp.example mallory@evil.example")),
            ("nobody", "000000000002", old, None),
            ("dev", "000000000003", old, Some("unknown-team")),
        ];
        let r = report(AS_OF, &users);
        let routed = |routing: &Routing| -> BTreeMap<String, (String, &'static str, String)> {
            items(&r, routing)
                .iter()
                .map(|i| {
                    let who = (i.to.to_string(), i.routed_by.as_str(), i.escalate_to.to_string());
                    (i.lead().user_name.clone(), who)
                })
                .collect()
        };
        let want = |to: &str, by: &'static str, esc: &str| (to.to_owned(), by, esc.to_owned());
        let got = routed(&routing());
        assert_eq!(got["alice"], want("alice@corp.example", "owner", "ciso@corp.example"), "escalation: /Root/Prod's");
        assert_eq!(got["svc"], want("slack:payments", "owner mapping", "ciso@corp.example"));
        assert_eq!(got["two"], want("pay@corp.example", "route", "ciso@corp.example"), "two addresses: unowned");
        assert_eq!(got["nobody"], want("pay@corp.example", "route", "ciso@corp.example"), "the deepest OU route");
        assert_eq!(got["dev"], want("dev@corp.example", "route", "security@corp.example"), "the account's route");
        let without_routes = Routing { routes: Vec::new(), ..routing() };
        let items = items(&r, &without_routes);
        let dev = items.iter().find(|i| i.lead().user_name == "dev").unwrap();
        assert_eq!(dev.to.to_string(), "security@corp.example");
        let RoutedBy::CatchAll(reason) = &dev.routed_by else { panic!("{:?}", dev.routed_by) };
        assert_eq!(reason, "owner tag owner=\"unknown-team\" is neither one address nor in [owners]");
    }

    /// A report of `users` at `as_of` whose findings were first seen at `first_seen`.
    fn at(as_of: &str, first_seen: &str, users: &[(&str, &str, &str, Option<&str>)]) -> Report {
        let mut r = report(as_of, users);
        for f in &mut r.findings {
            f.first_seen = Some(ts(first_seen));
        }
        r
    }

    /// (recipient, decision, [(user, trigger, escalated)]) of a run.
    type Planned = Vec<(String, String, Vec<(String, Option<Trigger>, bool)>)>;

    fn planned(report: &Report, history: &[Sent]) -> Planned {
        let routing = routing();
        let items = items(report, &routing);
        plan(report, &items, history, &routing)
            .iter()
            .map(|n| {
                let lines = n.lines.iter().map(|l| (l.item.lead().user_name.clone(), l.trigger, l.escalated)).collect();
                (n.to.to_string(), format!("{:?}", n.decision), lines)
            })
            .collect()
    }

    /// What a run sent, as the next run's history.
    fn sent(report: &Report, history: &[Sent]) -> Vec<Sent> {
        let routing = routing();
        let items = items(report, &routing);
        let mut all = history.to_vec();
        for n in plan(report, &items, history, &routing).iter().filter(|n| n.decision == Decision::Send) {
            let fingerprints = n.lines.iter().flat_map(|l| l.item.fingerprints(report)).collect();
            all.push(Sent { to: n.to.clone(), at: report.run.as_of, fingerprints });
        }
        all
    }

    #[test]
    fn a_key_gets_a_first_notice_reminders_before_its_deadline_and_weekly_escalations_after_it() {
        // Rotated 2026-08-01: KA-IAM-001 fell due on 2026-10-30; first seen 2026-11-28, so due 2026-12-28.
        let users = [("alice", "000000000002", "2026-08-01T00:00:00Z", Some("alice@corp.example"))];
        let first_seen = AS_OF;
        let run = |as_of: &str| at(as_of, first_seen, &users);
        use Trigger::{New, Overdue, Reminder};
        let line = |trigger: Option<Trigger>, escalated: bool| vec![("alice".to_owned(), trigger, escalated)];
        let alice = |decision: &str, trigger: Option<Trigger>| {
            ("alice@corp.example".to_owned(), decision.to_owned(), line(trigger, false))
        };

        let first = run(AS_OF);
        assert_eq!(planned(&first, &[]), [alice("Send", Some(New))]);
        let history = sent(&first, &[]);
        assert_eq!(planned(&first, &history), [alice("NothingDue", None)], "the same report again: nothing");
        // Three days later: nothing until a week before the deadline (2026-12-21T12:00).
        let quiet = run("2026-12-01T12:00:00Z");
        assert_eq!(planned(&quiet, &history), [alice("NothingDue", None)]);
        let week_before = run("2026-12-22T12:00:00Z");
        assert_eq!(planned(&week_before, &history), [alice("Send", Some(Reminder))], "6 days before the deadline");
        let history = sent(&week_before, &history);
        let day_before = run("2026-12-27T13:00:00Z");
        assert_eq!(planned(&day_before, &history), [alice("Send", Some(Reminder))], "a day before");
        let history = sent(&day_before, &history);
        // Past the deadline: the owner, and the escalation contact (/Root/Prod's), each once.
        let overdue = run("2026-12-29T12:00:00Z");
        let escalated = ("ciso@corp.example".to_owned(), "Send".to_owned(), line(Some(Overdue), true));
        assert_eq!(planned(&overdue, &history), [alice("Send", Some(Overdue)), escalated.clone()]);
        let history = sent(&overdue, &history);
        assert_eq!(planned(&run("2027-01-02T12:00:00Z"), &history).len(), 2, "listed, but nothing due");
        assert!(planned(&run("2027-01-02T12:00:00Z"), &history).iter().all(|(_, d, _)| d == "NothingDue"));
        // A week after the last overdue notice: again, both.
        assert_eq!(planned(&run("2027-01-05T12:00:00Z"), &history), [alice("Send", Some(Overdue)), escalated]);
    }

    #[test]
    fn escalation_is_told_in_the_first_run_past_the_deadline_and_retried_until_it_is_sent() {
        // Rotated 2026-06-01 (fell due 2026-08-30), first failing 2026-09-01: due 2026-10-01, long past at AS_OF.
        let users = [("alice", "000000000002", "2026-06-01T00:00:00Z", Some("alice@corp.example"))];
        let run = |as_of: &str| at(as_of, "2026-09-01T00:00:00Z", &users);
        use Trigger::{New, Overdue};
        let line = |trigger: Option<Trigger>, escalated: bool| vec![("alice".to_owned(), trigger, escalated)];
        let alice =
            |decision: &str, trigger| ("alice@corp.example".to_owned(), decision.to_owned(), line(trigger, false));
        let ciso = |decision: &str, trigger| ("ciso@corp.example".to_owned(), decision.to_owned(), line(trigger, true));

        // A late start: the owner's first notice, and the escalation in the same run (not a week later).
        let late = run(AS_OF);
        assert_eq!(planned(&late, &[]), [alice("Send", Some(New)), ciso("Send", Some(Overdue))]);
        // The escalation failed (or was held, or capped): no record of it. The next day it goes out, though the
        // owner is not due again for a week.
        let owner_only: Vec<Sent> =
            sent(&late, &[]).into_iter().filter(|s| s.to.to_string() == "alice@corp.example").collect();
        let next_day = run("2026-11-29T12:00:00Z");
        assert_eq!(planned(&next_day, &owner_only), [alice("NothingDue", None), ciso("Send", Some(Overdue))]);
        // An owner whose channel always fails never holds it back either.
        assert_eq!(planned(&next_day, &[])[1], ciso("Send", Some(Overdue)));
        // Once sent, never twice for the same overdue period.
        let history = sent(&next_day, &owner_only);
        assert_eq!(planned(&run("2026-12-02T12:00:00Z"), &history)[1], ciso("NothingDue", None));
    }

    #[test]
    fn one_message_per_recipient_and_none_within_min_interval_unless_a_key_is_new() {
        let old = "2026-08-01T00:00:00Z";
        let one = [("alice", "000000000002", old, Some("alice@corp.example"))];
        let first = at(AS_OF, AS_OF, &one);
        let history = sent(&first, &[]);
        // A reminder point reached 14 hours later is held back by the 20-hour minimum.
        let mut soon = at("2026-11-29T02:00:00Z", AS_OF, &one);
        for f in &mut soon.findings {
            // Due on 2026-11-30: its one-day reminder point, the start of 2026-11-29, falls between the two runs.
            f.first_seen = Some(ts("2026-10-31T18:00:00Z"));
        }
        let plans = planned(&soon, &history);
        assert!(plans[0].1.starts_with("TooSoon"), "{plans:?}");
        // A new key for the same recipient goes out at once, in the one message, with the other key listed.
        let two = [
            ("alice", "000000000002", old, Some("alice@corp.example")),
            ("bob", "000000000002", old, Some("alice@corp.example")),
        ];
        let plans = planned(&at("2026-11-29T02:00:00Z", AS_OF, &two), &history);
        assert_eq!(plans.len(), 1, "one message per recipient");
        assert_eq!(plans[0].1, "Send");
        assert_eq!(plans[0].2, [("alice".to_owned(), None, false), ("bob".to_owned(), Some(Trigger::New), false)]);
    }

    #[test]
    fn targets_read_as_the_config_writes_them() {
        assert_eq!(Target::parse("slack:payments"), Some(Target::Slack("payments".into())));
        assert_eq!(Target::parse("teams:platform-team"), Some(Target::Teams("platform-team".into())));
        assert_eq!(Target::parse("webhook:snow"), Some(Target::Webhook("snow".into())));
        let arn = "arn:aws:sns:us-east-1:123456789012:keyaudit";
        assert_eq!(Target::parse(&format!("sns:{arn}")), Some(Target::Sns(arn.into())));
        for bad in ["slack:", "slack:a b", "sms:123", "sns:arn:aws:sqs:us-east-1:123456789012:q", "not an address"] {
            assert_eq!(Target::parse(bad), None, "{bad}");
        }
        assert_eq!(Target::parse("bob@x.example").unwrap().to_string(), "bob@x.example");
    }
}
