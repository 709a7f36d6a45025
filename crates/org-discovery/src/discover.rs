//! Walks the organization's tree (roots, OUs, accounts under each parent) so every account gets its OU path,
//! then applies the user's filters. Calls grow with the number of OUs, not accounts.

use std::collections::{BTreeMap, HashSet, VecDeque};

use keyaudit_core::ids::{AccountId, Partition};
use keyaudit_core::report::{AccessMethod, Account, AccountState, Scope};

use crate::DiscoveryError;
use crate::api::{CallerIdentity, OrgAccount, OrgUnit, OrganizationsApi, Page};

/// Which accounts to audit. Empty `ous` and `accounts` select every account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// OU ids (`ou-…`, `r-…`) or paths (`/Root/Prod`); each includes its whole subtree.
    pub ous: Vec<String>,
    /// Account ids to include.
    pub accounts: Vec<AccountId>,
    /// Account ids to leave out (applied last).
    pub exclude: Vec<AccountId>,
}

/// The audit role in member accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    name: String,
    path: String,
}

impl RoleSpec {
    /// Validates a role name and path (`/` by default; must start and end with `/`).
    pub fn new(name: &str, path: &str) -> Result<Self, DiscoveryError> {
        let ok_path = path.starts_with('/') && path.ends_with('/') && !path.contains("//") || path == "/";
        if !ok_path {
            return Err(DiscoveryError::InvalidRolePath { value: path.to_owned() });
        }
        Ok(Self { name: name.to_owned(), path: path.to_owned() })
    }

    /// `arn:{partition}:iam::{account}:role/{path}{name}` (the path written without its leading `/`).
    pub fn arn(&self, partition: &Partition, account: &AccountId) -> String {
        format!("arn:{partition}:iam::{account}:role{}{}", self.path, self.name)
    }
}

/// What was found. The selected accounts themselves are handed over one by one as they are found (see
/// [`discover`]), and not kept: at 50,000 accounts a second copy of them would be most of a scan's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Organization or standalone account.
    pub scope: Scope,
    /// Accounts selected (handed over).
    pub selected: usize,
    /// Accounts found before filters.
    pub discovered: usize,
}

struct Node {
    /// The names from the root down (`Root` first), as Organizations has them (unescaped).
    names: Vec<String>,
    /// This node and all its ancestors.
    lineage: Vec<String>,
}

/// An OU name as one segment of an OU path: `\` becomes `\\` and `/` becomes `\/`, so that a path names
/// exactly one OU even when names contain the separator (OU names may contain any character).
pub fn escape_ou_name(name: &str) -> String {
    name.replace('\\', "\\\\").replace('/', "\\/")
}

/// The OU path of a node: `/` followed by its escaped names joined with `/` (`/Root/Prod/a\/b`).
pub fn ou_path(names: &[String]) -> String {
    names.iter().map(|n| format!("/{}", escape_ou_name(n))).collect()
}

/// Splits an `--ou` path into OU names, undoing [`escape_ou_name`]. The leading and a trailing `/` are
/// optional; an empty name or a `\` before anything but `/` or `\` is an error.
pub fn parse_ou_path(value: &str) -> Result<Vec<String>, DiscoveryError> {
    keyaudit_core::ou::split_ou_path(value)
        .map_err(|problem| DiscoveryError::InvalidOuPath { value: value.to_owned(), problem: problem.to_owned() })
}

/// How fast discovery's two account listings are served, per second: ListAccountsForParent's bucket (which it
/// shares with ListOrganizationalUnitsForParent and ListParents) and ListChildren's. Discovery spreads the
/// accounts' listings over both by their backlogs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListingRates {
    /// ListAccountsForParent / ListOrganizationalUnitsForParent / ListParents.
    pub for_parent: f64,
    /// ListChildren.
    pub children: f64,
    /// ListAccounts.
    pub accounts: f64,
}

impl Default for ListingRates {
    /// AWS's published rates ([`crate::api::ORG_QUOTAS`]).
    fn default() -> Self {
        let rate = |op: &str| {
            crate::api::ORG_QUOTAS.iter().find(|q| q.operations.contains(&op)).map_or(1.0, |q| f64::from(q.rate))
        };
        Self {
            for_parent: rate("ListAccountsForParent"),
            children: rate("ListChildren"),
            accounts: rate("ListAccounts"),
        }
    }
}

/// Which listing a parent's accounts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// ListAccountsForParent: ids, names and states.
    ForParent,
    /// ListChildren: ids only (names and states from ListAccounts).
    Children,
}

/// One page to fetch.
#[derive(Debug, Clone)]
enum Job {
    /// A parent's child OUs.
    Ous { parent: String, token: Option<String> },
    /// A parent's accounts.
    Accounts { parent: String, token: Option<String>, via: Via },
    /// The organization's accounts (ListAccounts).
    All { token: Option<String> },
}

/// A fetched page, with the parent it lists.
enum Answer {
    Ous(String, Page<OrgUnit>),
    ForParent(String, Page<OrgAccount>),
    Children(String, Page<AccountId>),
    All(Page<OrgAccount>),
}

/// The throttling buckets discovery's pages wait for (at the wire): ListAccountsForParent's (`A`), ListChildren's
/// (`B`), ListAccounts' (`C`).
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

impl Job {
    fn bucket(&self) -> usize {
        match self {
            Job::Ous { .. } | Job::Accounts { via: Via::ForParent, .. } => A,
            Job::Accounts { via: Via::Children, .. } => B,
            Job::All { .. } => C,
        }
    }

    async fn fetch(self, api: &impl OrganizationsApi) -> (Job, Result<Answer, DiscoveryError>) {
        let answer = match &self {
            Job::Ous { parent, token } => {
                api.child_ous(parent, token.clone()).await.map(|p| Answer::Ous(parent.clone(), p))
            }
            Job::Accounts { parent, token, via: Via::ForParent } => {
                api.accounts_for_parent(parent, token.clone()).await.map(|p| Answer::ForParent(parent.clone(), p))
            }
            Job::Accounts { parent, token, via: Via::Children } => {
                api.child_account_ids(parent, token.clone()).await.map(|p| Answer::Children(parent.clone(), p))
            }
            Job::All { token } => api.accounts(token.clone()).await.map(Answer::All),
        };
        (self, answer)
    }
}

/// What the walk knows of one account: its details (once a listing with names gave them), and every parent it was
/// listed under.
#[derive(Default)]
struct Placed {
    details: Option<OrgAccount>,
    parents: Vec<String>,
}

/// The accounts the walk has seen: what it knows of those not handed over yet, and only the ids of the others.
#[derive(Default)]
struct Seen {
    placed: BTreeMap<AccountId, Placed>,
    /// The details ListAccounts gave, for accounts no ListAccountsForParent page named yet.
    listed: BTreeMap<AccountId, OrgAccount>,
    handed_over: HashSet<AccountId>,
}

impl Seen {
    /// `id` listed under `parent`, named or not. An account listed again after it was handed over moved during the
    /// walk: it keeps the parent it was handed over with.
    fn under(&mut self, id: &AccountId, parent: &str, details: Option<OrgAccount>) {
        if self.handed_over.contains(id) {
            tracing::info!(account = %id, "account listed under a second parent during the walk (moved); it keeps the first");
            return;
        }
        let p = self.placed.entry(id.clone()).or_default();
        if details.is_some() {
            p.details = details;
        }
        if !p.parents.iter().any(|known| known == parent) {
            p.parents.push(parent.to_owned());
        }
    }

    /// `account` named by the ListAccounts sweep.
    fn listed(&mut self, account: OrgAccount) {
        if !self.handed_over.contains(&account.id) {
            self.listed.insert(account.id.clone(), account);
        }
    }

    /// The first parent and the details of `id`, once both are known.
    fn ready(&self, id: &AccountId) -> Option<(&str, &OrgAccount)> {
        let p = self.placed.get(id)?;
        Some((p.parents.first()?, p.details.as_ref().or_else(|| self.listed.get(id))?))
    }

    /// `id` was handed over: from now on only its id is kept.
    fn hand_over(&mut self, id: &AccountId) {
        self.placed.remove(id);
        self.listed.remove(id);
        self.handed_over.insert(id.clone());
    }
}

/// Discovers the organization's accounts and their OU paths, and applies `filter`.
///
/// Every parent (root and OU) needs its child OUs listed (ListOrganizationalUnitsForParent, the only listing that
/// names OUs) and its accounts listed, 20 per page. The pages wait for AWS's throttling buckets at the wire (see
/// `keyaudit_scanner::ratelimit`); here they are spread over the buckets that can serve them and kept in flight:
/// OU pages (which open the next level) first on ListAccountsForParent's bucket; each parent's accounts on
/// ListChildren's bucket (ids only) or ListAccountsForParent's (with names), whichever has the shorter backlog at the
/// rates `rates`; and one ListAccounts sweep of the whole organization on its own bucket, which names the accounts
/// ListChildren found and cross-checks the walk. No call is made per account.
///
/// Accounts can move while the walk runs: an account listed under two parents, or found only by ListAccounts, gets
/// its parent from `ListParents`. Neither happens unless an account moves mid-walk.
///
/// `emit` sees every selected account once, as early as it can: with no `--ou` / `--account` selection, as soon as
/// its parent and its name are known (so that scanning starts while the walk goes on; the walk keeps only its id
/// from then on); otherwise once the tree is known, in id order. An account that moves during the walk is emitted
/// under the parent it was first seen under.
pub async fn discover(
    api: &impl OrganizationsApi,
    caller: &CallerIdentity,
    filter: &AccountFilter,
    role: &RoleSpec,
    rates: ListingRates,
    emit: &(dyn Fn(Account) + Sync),
) -> Result<Discovery, DiscoveryError> {
    use futures::StreamExt;

    let Some(org) = api.describe_organization().await? else {
        return standalone(caller, filter, emit);
    };
    let select_all = filter.ous.is_empty() && filter.accounts.is_empty();
    let make = |a: &OrgAccount, parent: &str, nodes: &BTreeMap<String, Node>| {
        // Only the caller's own account is read with the caller's credentials. The management account is
        // assumed like any other: run from a delegated-admin account, the caller's credentials would read the
        // delegated admin's own IAM data and report it as the management account's.
        let access = if a.id == caller.account_id {
            AccessMethod::CallerCredentials
        } else {
            AccessMethod::AssumeRole { role_arn: role.arn(&caller.partition, &a.id) }
        };
        let ou_path = nodes.get(parent).map(|n| ou_path(&n.names));
        if ou_path.is_none() {
            tracing::warn!(account = %a.id, parent = %parent, "the account's parent appeared after the walk; no OU path");
        }
        Account { id: a.id.clone(), name: Some(a.name.clone()), ou_path, state: a.state.clone(), access }
    };
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut seen = Seen::default();
    let try_emit = |id: &AccountId, seen: &mut Seen, nodes: &BTreeMap<String, Node>| {
        if !select_all || filter.exclude.contains(id) {
            return;
        }
        if let Some((parent, details)) = seen.ready(id) {
            emit(make(details, parent, nodes));
            seen.hand_over(id);
        }
    };

    // Queues by bucket (OU pages ahead of account pages on A), and at most `cap` pages in flight per bucket: enough
    // to keep each bucket busy, few enough that the backlogs are known here rather than hidden at the wire.
    let per_second = [rates.for_parent, rates.children, rates.accounts];
    let cap: Vec<usize> = per_second.iter().map(|r| (r * 2.0).ceil().max(2.0) as usize).collect();
    let mut ou_queue: VecDeque<Job> = VecDeque::new();
    let mut queues: [VecDeque<Job>; 3] = Default::default();
    let mut in_flight = [0usize; 3];
    let mut children_denied = false;
    let mut in_progress = futures::stream::FuturesUnordered::new();
    // A parent's accounts go to the bucket with the shorter backlog (in seconds at its rate).
    let choose = |ou_queue: &VecDeque<Job>, queues: &[VecDeque<Job>; 3], in_flight: &[usize; 3], denied: bool| {
        let backlog = |b: usize, extra: usize| (queues[b].len() + in_flight[b] + extra) as f64 / per_second[b];
        if !denied && backlog(B, 0) <= backlog(A, ou_queue.len()) { Via::Children } else { Via::ForParent }
    };
    queues[C].push_back(Job::All { token: None });
    for root in api.list_roots().await? {
        nodes.insert(root.id.clone(), Node { names: vec!["Root".into()], lineage: vec![root.id.clone()] });
        ou_queue.push_back(Job::Ous { parent: root.id.clone(), token: None });
        let job = Job::Accounts { parent: root.id, token: None, via: choose(&ou_queue, &queues, &in_flight, false) };
        queues[job.bucket()].push_back(job);
    }
    loop {
        // Launch what the caps allow, OU pages first.
        for b in [A, B, C] {
            while in_flight[b] < cap[b] {
                let next =
                    if b == A { ou_queue.pop_front().or_else(|| queues[A].pop_front()) } else { queues[b].pop_front() };
                let Some(job) = next else { break };
                in_flight[b] += 1;
                in_progress.push(job.fetch(api));
            }
        }
        let Some((job, answer)) = in_progress.next().await else { break };
        in_flight[job.bucket()] -= 1;
        let answer = match (answer, &job) {
            (Err(e), Job::Accounts { parent, via: Via::Children, .. }) if e.is_access_denied() => {
                // Without organizations:ListChildren, every parent's accounts come from ListAccountsForParent.
                if !children_denied {
                    tracing::warn!(
                        "organizations:ListChildren is denied: discovery lists accounts with ListAccountsForParent \
                         alone, which shares its bucket with the OU listings and is slower; grant it (the caller \
                         policy of deploy/ does)"
                    );
                }
                children_denied = true;
                queues[A].push_back(Job::Accounts { parent: parent.clone(), token: None, via: Via::ForParent });
                continue;
            }
            (answer, _) => answer?,
        };
        match answer {
            Answer::Ous(parent, page) => {
                let (names, lineage) = {
                    let n = &nodes[&parent];
                    (n.names.clone(), n.lineage.clone())
                };
                for ou in page.items {
                    let mut child = Node { names: names.clone(), lineage: lineage.clone() };
                    child.names.push(ou.name);
                    child.lineage.push(ou.id.clone());
                    nodes.insert(ou.id.clone(), child);
                    ou_queue.push_back(Job::Ous { parent: ou.id.clone(), token: None });
                    let via = choose(&ou_queue, &queues, &in_flight, children_denied);
                    let job = Job::Accounts { parent: ou.id, token: None, via };
                    queues[job.bucket()].push_back(job);
                }
                if let Some(token) = page.next {
                    ou_queue.push_front(Job::Ous { parent, token: Some(token) });
                }
            }
            Answer::ForParent(parent, page) => {
                for account in page.items {
                    let id = account.id.clone();
                    seen.under(&id, &parent, Some(account));
                    try_emit(&id, &mut seen, &nodes);
                }
                if let Some(token) = page.next {
                    queues[A].push_front(Job::Accounts { parent, token: Some(token), via: Via::ForParent });
                }
            }
            Answer::Children(parent, page) => {
                for id in page.items {
                    seen.under(&id, &parent, None);
                    try_emit(&id, &mut seen, &nodes);
                }
                if let Some(token) = page.next {
                    queues[B].push_front(Job::Accounts { parent, token: Some(token), via: Via::Children });
                }
            }
            Answer::All(page) => {
                for account in page.items {
                    let id = account.id.clone();
                    seen.listed(account);
                    try_emit(&id, &mut seen, &nodes);
                }
                if let Some(token) = page.next {
                    queues[C].push_back(Job::All { token: Some(token) });
                }
            }
        }
    }

    // What is left of the walk's maps (accounts not handed over yet) is consumed as the accounts are placed.
    let Seen { placed, mut listed, handed_over } = seen;
    let mut found: Vec<(OrgAccount, String)> = Vec::new();
    for (id, p) in placed {
        let from_list = listed.remove(&id);
        let Some(details) = p.details.or(from_list) else {
            tracing::info!(account = %id, "account listed under a parent but not by ListAccounts: it left the organization during the walk");
            continue;
        };
        let parent = match &p.parents[..] {
            [one] => one.clone(),
            _ => {
                tracing::info!(account = %id, "account listed under {} parents during the walk (moved)", p.parents.len());
                api.parent_of(&id).await?
            }
        };
        found.push((details, parent));
    }
    // What is left was listed by ListAccounts alone.
    for (id, account) in listed {
        tracing::info!(account = %id, "account missed by the walk (moved during it); asking for its parent");
        let parent = api.parent_of(&id).await?;
        found.push((account, parent));
    }
    let discovered = found.len() + handed_over.len();

    let selected_ous = resolve_ous(&filter.ous, &nodes)?;
    let known: HashSet<&AccountId> = found.iter().map(|(a, _)| &a.id).collect();
    if let Some(missing) = filter.accounts.iter().find(|id| !known.contains(id)) {
        return Err(DiscoveryError::UnknownAccount {
            value: missing.to_string(),
            scope: format!("organization {}", org.id),
        });
    }
    let mut accounts: Vec<Account> = found
        .into_iter()
        .filter(|(a, parent)| {
            select_all
                || filter.accounts.contains(&a.id)
                || nodes.get(parent).is_some_and(|n| n.lineage.iter().any(|id| selected_ous.contains(id.as_str())))
        })
        .filter(|(a, _)| !filter.exclude.contains(&a.id))
        .map(|(a, parent)| make(&a, &parent, &nodes))
        .collect();
    accounts.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let selected = handed_over.len() + accounts.len();
    accounts.into_iter().for_each(emit);
    Ok(Discovery {
        scope: Scope::Organization { id: org.id, management_account_id: org.management_account_id },
        selected,
        discovered,
    })
}

/// The ids of the OUs that `--ou` values name: an id (`ou-…`, `r-…`) or an exact path.
fn resolve_ous<'a>(wanted: &[String], nodes: &'a BTreeMap<String, Node>) -> Result<HashSet<&'a str>, DiscoveryError> {
    let mut ids = HashSet::new();
    for value in wanted {
        if let Some((id, _)) = nodes.get_key_value(value.trim()) {
            ids.insert(id.as_str());
            continue;
        }
        let names = parse_ou_path(value)?;
        let hits: Vec<&str> = nodes.iter().filter(|(_, n)| n.names == names).map(|(id, _)| id.as_str()).collect();
        match hits[..] {
            [id] => {
                ids.insert(id);
            }
            [] => {
                // OU names are any characters: shown inert (a name may clear or rewrite the terminal).
                let mut known: Vec<String> =
                    nodes.values().map(|n| keyaudit_core::text::shown(&ou_path(&n.names))).collect();
                known.sort_unstable();
                known.truncate(20);
                return Err(DiscoveryError::UnknownOu { value: value.clone(), known: known.join(", ") });
            }
            _ => return Err(DiscoveryError::AmbiguousOu { value: value.clone(), ids: hits.join(", ") }),
        }
    }
    Ok(ids)
}

/// The caller's account is not in an organization: audit just that account.
fn standalone(
    caller: &CallerIdentity,
    filter: &AccountFilter,
    emit: &(dyn Fn(Account) + Sync),
) -> Result<Discovery, DiscoveryError> {
    let scope = "the caller's standalone account (it is not in an AWS Organization)".to_owned();
    if let Some(ou) = filter.ous.first() {
        return Err(DiscoveryError::UnknownOu { value: ou.clone(), known: scope });
    }
    if let Some(other) = filter.accounts.iter().find(|id| **id != caller.account_id) {
        return Err(DiscoveryError::UnknownAccount { value: other.to_string(), scope });
    }
    let selected = usize::from(!filter.exclude.contains(&caller.account_id));
    if selected == 1 {
        emit(Account {
            id: caller.account_id.clone(),
            name: None,
            ou_path: None,
            state: AccountState::Active,
            access: AccessMethod::CallerCredentials,
        });
    }
    Ok(Discovery { scope: Scope::StandaloneAccount, selected, discovered: 1 })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::api::{OrgAccount, OrgInfo, OrgUnit};

    /// A fake organization: parent id → (child OUs, accounts). `ListAccounts` answers every account of the
    /// tree plus `extra`; `ListParents` answers from `parents`.
    struct FakeOrg {
        org: Option<OrgInfo>,
        children: HashMap<&'static str, (Vec<OrgUnit>, Vec<OrgAccount>)>,
        extra: Vec<OrgAccount>,
        parents: HashMap<&'static str, &'static str>,
        calls: Mutex<Vec<&'static str>>,
        children_denied: bool,
    }

    impl FakeOrg {
        fn count(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
        fn called(&self, action: &str) -> usize {
            self.calls.lock().unwrap().iter().filter(|a| **a == action).count()
        }
    }

    /// Pages of `PAGE` items, the token being the next item's index.
    const PAGE: usize = 2;

    fn page<T: Clone>(items: &[T], token: Option<String>) -> Page<T> {
        let start: usize = token.map_or(0, |t| t.parse().unwrap());
        let end = (start + PAGE).min(items.len());
        Page { items: items[start..end].to_vec(), next: (end < items.len()).then(|| end.to_string()) }
    }

    impl OrganizationsApi for FakeOrg {
        async fn describe_organization(&self) -> Result<Option<OrgInfo>, DiscoveryError> {
            self.calls.lock().unwrap().push("DescribeOrganization");
            Ok(self.org.clone())
        }
        async fn list_roots(&self) -> Result<Vec<OrgUnit>, DiscoveryError> {
            self.calls.lock().unwrap().push("ListRoots");
            Ok(vec![OrgUnit { id: "r-root".into(), name: "Root".into() }])
        }
        async fn child_ous(&self, parent: &str, token: Option<String>) -> Result<Page<OrgUnit>, DiscoveryError> {
            self.calls.lock().unwrap().push("ListOrganizationalUnitsForParent");
            Ok(page(&self.children.get(parent).map(|c| c.0.clone()).unwrap_or_default(), token))
        }
        async fn accounts_for_parent(
            &self,
            parent: &str,
            token: Option<String>,
        ) -> Result<Page<OrgAccount>, DiscoveryError> {
            self.calls.lock().unwrap().push("ListAccountsForParent");
            Ok(page(&self.children.get(parent).map(|c| c.1.clone()).unwrap_or_default(), token))
        }
        async fn child_account_ids(
            &self,
            parent: &str,
            token: Option<String>,
        ) -> Result<Page<AccountId>, DiscoveryError> {
            self.calls.lock().unwrap().push("ListChildren");
            if self.children_denied {
                return Err(DiscoveryError::Api {
                    action: "organizations:ListChildren",
                    code: Some("AccessDeniedException".into()),
                    message: "denied".into(),
                });
            }
            let ids: Vec<AccountId> =
                self.children.get(parent).map(|c| c.1.iter().map(|a| a.id.clone()).collect()).unwrap_or_default();
            Ok(page(&ids, token))
        }
        async fn accounts(&self, token: Option<String>) -> Result<Page<OrgAccount>, DiscoveryError> {
            self.calls.lock().unwrap().push("ListAccounts");
            let mut all: Vec<OrgAccount> = self.children.values().flat_map(|c| c.1.clone()).collect();
            all.extend(self.extra.clone());
            all.sort_by(|a, b| a.id.cmp(&b.id));
            all.dedup_by(|a, b| a.id == b.id);
            Ok(page(&all, token))
        }
        async fn parent_of(&self, account_id: &AccountId) -> Result<String, DiscoveryError> {
            self.calls.lock().unwrap().push("ListParents");
            Ok(self.parents[account_id.as_str()].to_owned())
        }
    }

    fn id(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }
    fn ou(id: &str, name: &str) -> OrgUnit {
        OrgUnit { id: id.into(), name: name.into() }
    }
    fn acct(i: &str, name: &str, state: AccountState) -> OrgAccount {
        OrgAccount { id: id(i), name: name.into(), state }
    }

    fn org() -> FakeOrg {
        let mut children = HashMap::new();
        children.insert(
            "r-root",
            (
                vec![ou("ou-prod", "Prod"), ou("ou-dev", "Dev")],
                vec![acct("000000000001", "management", AccountState::Active)],
            ),
        );
        children.insert(
            "ou-prod",
            (vec![ou("ou-pay", "Payments")], vec![acct("000000000002", "prod-shared", AccountState::Suspended)]),
        );
        children.insert("ou-pay", (vec![], vec![acct("000000000003", "payments", AccountState::Active)]));
        children.insert("ou-dev", (vec![], vec![acct("000000000004", "sandbox", AccountState::Active)]));
        FakeOrg {
            org: Some(OrgInfo { id: "o-test".into(), management_account_id: id("000000000001") }),
            children,
            extra: Vec::new(),
            parents: HashMap::new(),
            calls: Mutex::default(),
            children_denied: false,
        }
    }

    fn caller() -> CallerIdentity {
        CallerIdentity {
            account_id: id("000000000001"),
            arn: "arn:aws:iam::000000000001:user/admin".into(),
            partition: Partition::aws(),
            aws_time: None,
        }
    }

    fn role() -> RoleSpec {
        RoleSpec::new("OrganizationAccountAccessRole", "/").unwrap()
    }

    /// What discovery handed over (in id order), with what it returned.
    #[derive(Debug)]
    struct Collected {
        scope: Scope,
        accounts: Vec<Account>,
        discovered: usize,
    }

    async fn collect(
        api: &impl OrganizationsApi,
        caller: &CallerIdentity,
        filter: &AccountFilter,
    ) -> Result<Collected, DiscoveryError> {
        let seen = Mutex::new(Vec::new());
        let d =
            discover(api, caller, filter, &role(), ListingRates::default(), &|a| seen.lock().unwrap().push(a)).await?;
        let mut accounts = seen.into_inner().unwrap();
        let handed_over = accounts.len();
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        accounts.dedup_by(|a, b| a.id == b.id);
        assert_eq!((handed_over, accounts.len()), (d.selected, d.selected), "each selected account handed over once");
        Ok(Collected { scope: d.scope, accounts, discovered: d.discovered })
    }

    async fn run(filter: AccountFilter) -> Result<Collected, DiscoveryError> {
        collect(&org(), &caller(), &filter).await
    }

    fn ids(d: &Collected) -> Vec<&str> {
        d.accounts.iter().map(|a| a.id.as_str()).collect()
    }

    #[tokio::test]
    async fn every_account_gets_its_ou_path_and_access_method() {
        let fake = org();
        let d = collect(&fake, &caller(), &AccountFilter::default()).await.unwrap();
        let paths: Vec<(&str, &str)> =
            d.accounts.iter().map(|a| (a.id.as_str(), a.ou_path.as_deref().unwrap())).collect();
        assert_eq!(
            paths,
            [
                ("000000000001", "/Root"),
                ("000000000002", "/Root/Prod"),
                ("000000000003", "/Root/Prod/Payments"),
                ("000000000004", "/Root/Dev")
            ]
        );
        assert_eq!(d.accounts[0].access, AccessMethod::CallerCredentials);
        assert_eq!(
            d.accounts[2].access,
            AccessMethod::AssumeRole {
                role_arn: "arn:aws:iam::000000000003:role/OrganizationAccountAccessRole".into()
            }
        );
        assert_eq!(d.accounts[1].state, AccountState::Suspended);
        assert_eq!(d.discovered, 4);
        // describe + roots + (OUs + accounts) for each of the 4 parents (one page each here) + the ListAccounts
        // sweep (two pages of two here): no call per account; no ListParents while nothing moves.
        assert_eq!(fake.count(), 2 + 2 * 4 + 2);
        assert_eq!(fake.called("ListOrganizationalUnitsForParent"), 4);
        assert_eq!(fake.called("ListAccountsForParent") + fake.called("ListChildren"), 4);
        assert_eq!(fake.called("ListParents"), 0);
    }

    /// Issue "Organization scale": every selected account is handed over once, during the walk when nothing is
    /// selected by OU or account (scanning can start before the walk ends), after it otherwise.
    #[tokio::test]
    async fn every_selected_account_is_emitted_once() {
        for (filter, expected) in [
            (AccountFilter::default(), vec!["000000000001", "000000000002", "000000000003", "000000000004"]),
            (
                AccountFilter { exclude: vec![AccountId::parse("000000000002").unwrap()], ..AccountFilter::default() },
                vec!["000000000001", "000000000003", "000000000004"],
            ),
            (
                AccountFilter { ous: vec!["/Root/Prod".into()], ..AccountFilter::default() },
                vec!["000000000002", "000000000003"],
            ),
        ] {
            // `collect` checks that each is handed over once, and that `selected` counts them.
            let d = run(filter.clone()).await.unwrap();
            assert_eq!(ids(&d), expected, "{filter:?}");
        }
    }

    #[tokio::test]
    async fn ou_filters_take_ids_or_paths_and_include_the_subtree() {
        for value in ["/Root/Prod", "Root/Prod", "/Root/Prod/", "ou-prod"] {
            let d = run(AccountFilter { ous: vec![value.into()], ..Default::default() }).await.unwrap();
            assert_eq!(ids(&d), ["000000000002", "000000000003"], "--ou {value}");
        }
        let d = run(AccountFilter {
            ous: vec!["/Root/Prod/Payments".into()],
            accounts: vec![id("000000000004")],
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(ids(&d), ["000000000003", "000000000004"]);
    }

    #[tokio::test]
    async fn exclusions_apply_last() {
        let d = run(AccountFilter { exclude: vec![id("000000000003")], ..Default::default() }).await.unwrap();
        assert_eq!(ids(&d), ["000000000001", "000000000002", "000000000004"]);
    }

    #[tokio::test]
    async fn unknown_ous_and_accounts_are_errors_naming_the_value() {
        let err = run(AccountFilter { ous: vec!["/Root/Nope".into()], ..Default::default() }).await.unwrap_err();
        assert!(err.to_string().starts_with("--ou \"/Root/Nope\" matches no organizational unit"), "{err}");
        assert!(err.to_string().contains("/Root/Prod/Payments"), "{err}");
        let err = run(AccountFilter { accounts: vec![id("999999999999")], ..Default::default() }).await.unwrap_err();
        assert_eq!(err.to_string(), "--account 999999999999 is not an account of organization o-test");
    }

    #[tokio::test]
    async fn outside_an_organization_only_the_callers_account_is_audited() {
        let fake = FakeOrg {
            org: None,
            children: HashMap::new(),
            extra: Vec::new(),
            parents: HashMap::new(),
            calls: Mutex::default(),
            children_denied: false,
        };
        let d = collect(&fake, &caller(), &AccountFilter::default()).await.unwrap();
        assert_eq!(d.scope, Scope::StandaloneAccount);
        assert_eq!(ids(&d), ["000000000001"]);
        assert_eq!(d.accounts[0].access, AccessMethod::CallerCredentials);
        let err = discover(
            &fake,
            &caller(),
            &AccountFilter { ous: vec!["/Root".into()], ..Default::default() },
            &role(),
            ListingRates::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DiscoveryError::UnknownOu { .. }));
    }

    /// Issue "Never wrong, never lost", item 3: run from a delegated-admin account (000000000004), only that
    /// account uses the caller's credentials; the management account is assumed like any other.
    #[tokio::test]
    async fn from_a_delegated_admin_the_management_account_is_assumed_and_only_the_callers_account_is_not() {
        let delegated = CallerIdentity {
            account_id: id("000000000004"),
            arn: "arn:aws:sts::000000000004:assumed-role/Audit/keyaudit".into(),
            partition: Partition::aws(),
            aws_time: None,
        };
        let d = collect(&org(), &delegated, &AccountFilter::default()).await.unwrap();
        let access: Vec<(&str, &AccessMethod)> = d.accounts.iter().map(|a| (a.id.as_str(), &a.access)).collect();
        let assumed = |acct: &str| AccessMethod::AssumeRole {
            role_arn: format!("arn:aws:iam::{acct}:role/OrganizationAccountAccessRole"),
        };
        assert_eq!(access[0], ("000000000001", &assumed("000000000001")), "the management account");
        assert_eq!(access[3], ("000000000004", &AccessMethod::CallerCredentials), "the caller's own account");
    }

    /// Issue "Never wrong, never lost", item 5: an OU named `a/b` under the root and OU `b` under OU `a` get
    /// different paths, and `--ou` picks exactly the one it names.
    #[tokio::test]
    async fn ou_names_with_slashes_are_escaped_and_ou_paths_are_exact() {
        let mut fake = org();
        fake.children.get_mut("r-root").unwrap().0.extend([ou("ou-slash", "a/b"), ou("ou-a", "a")]);
        fake.children.insert("ou-slash", (vec![], vec![acct("000000000005", "slash", AccountState::Active)]));
        fake.children.insert("ou-a", (vec![ou("ou-a-b", "b")], vec![]));
        fake.children.insert("ou-a-b", (vec![], vec![acct("000000000006", "nested", AccountState::Active)]));
        fake.children.get_mut("ou-prod").unwrap().0.push(ou("ou-bs", "back\\slash"));
        fake.children.insert("ou-bs", (vec![], vec![acct("000000000007", "bs", AccountState::Active)]));
        let fake = &fake;
        let run = |ous: &[&str]| {
            let filter = AccountFilter { ous: ous.iter().map(|o| (*o).to_owned()).collect(), ..Default::default() };
            async move { collect(fake, &caller(), &filter).await }
        };
        let d = run(&[]).await.unwrap();
        let path = |acct: &str| d.accounts.iter().find(|a| a.id.as_str() == acct).unwrap().ou_path.clone().unwrap();
        assert_eq!(path("000000000005"), "/Root/a\\/b");
        assert_eq!(path("000000000006"), "/Root/a/b");
        assert_eq!(path("000000000007"), "/Root/Prod/back\\\\slash");
        assert_eq!(ids(&run(&["/Root/a\\/b"]).await.unwrap()), ["000000000005"]);
        assert_eq!(ids(&run(&["Root/a\\/b/"]).await.unwrap()), ["000000000005"]);
        assert_eq!(ids(&run(&["/Root/a/b"]).await.unwrap()), ["000000000006"]);
        assert_eq!(ids(&run(&["/Root/a"]).await.unwrap()), ["000000000006"]);
        assert_eq!(ids(&run(&["/Root/Prod/back\\\\slash"]).await.unwrap()), ["000000000007"]);
        let err = run(&["/Root/a\\b"]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "--ou \"/Root/a\\\\b\" is not a valid OU path: a '\\' must be followed by '/' or '\\' (write a/b as a\\/b)"
        );
        assert!(err.is_usage());
    }

    #[test]
    fn ou_paths_round_trip_through_escaping() {
        for names in [vec!["Root"], vec!["Root", "a/b", "c\\d", "/", "\\/", "x y"]] {
            let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
            assert_eq!(parse_ou_path(&ou_path(&names)).unwrap(), names);
        }
        for bad in ["", "/", "//", "/Root//Prod", "/Root/\\"] {
            assert!(parse_ou_path(bad).is_err(), "{bad:?}");
        }
    }

    /// An account moved between OUs during the walk: listed under both parents, or under neither. Each is handed
    /// over once. Without a selection an account is handed over as soon as it is seen, so it keeps the parent it was
    /// first seen under and costs no ListParents; with a selection, after the walk, under the parent ListParents
    /// names. An account only ListAccounts saw gets its parent from ListParents either way.
    #[tokio::test]
    async fn accounts_moved_during_the_walk_are_neither_lost_nor_listed_twice() {
        let mut fake = org();
        // 000000000003 seen under Payments and under Dev (moved between the two listings).
        fake.children.get_mut("ou-dev").unwrap().1.push(acct("000000000003", "payments", AccountState::Active));
        // 000000000009 moved from an unlisted parent into one already listed: only ListAccounts sees it.
        fake.extra.push(acct("000000000009", "mover", AccountState::Active));
        fake.parents.insert("000000000003", "ou-dev");
        fake.parents.insert("000000000009", "ou-prod");
        let every = AccountFilter::default();
        let selected = AccountFilter { ous: vec!["/Root".into()], ..AccountFilter::default() };
        // The paths 000000000003 may have: the first parent it was seen under is either listing's.
        let (first_seen, named): (&[&str], &[&str]) = (&["/Root/Dev", "/Root/Prod/Payments"], &["/Root/Dev"]);
        for (filter, list_parents, moved_to) in [(every, 1, first_seen), (selected, 2, named)] {
            fake.calls.lock().unwrap().clear();
            let d = collect(&fake, &caller(), &filter).await.unwrap();
            assert_eq!(ids(&d), ["000000000001", "000000000002", "000000000003", "000000000004", "000000000009"]);
            assert_eq!(d.discovered, 5);
            let path = |acct: &str| d.accounts.iter().find(|a| a.id.as_str() == acct).unwrap().ou_path.as_deref();
            let moved = path("000000000003").unwrap();
            assert!(moved_to.contains(&moved), "{filter:?}: {moved}");
            assert_eq!(path("000000000009"), Some("/Root/Prod"));
            assert_eq!(fake.called("ListParents"), list_parents, "{filter:?}");
            assert_eq!(fake.called("ListAccounts"), 3, "one sweep, three pages of two");
        }
    }

    /// Issue "10,000 accounts under AWS's published quotas": parents with more children than a page, their accounts
    /// listed by ListChildren or ListAccountsForParent, whichever bucket is less busy; without ListChildren (denied),
    /// by ListAccountsForParent alone; the same accounts and paths either way.
    #[tokio::test]
    async fn paged_listings_spread_over_the_buckets_find_every_account_with_or_without_list_children() {
        let mut fake = org();
        let many: Vec<OrgAccount> =
            (10..19).map(|i| acct(&format!("0000000000{i}"), &format!("a{i}"), AccountState::Active)).collect();
        let ous: Vec<OrgUnit> = (0..5).map(|i| ou(&format!("ou-x{i}"), &format!("X{i}"))).collect();
        fake.children.insert("ou-dev", (ous, many));
        for i in 0..5 {
            let id: &'static str = Box::leak(format!("ou-x{i}").into_boxed_str());
            let account: &'static str = Box::leak(format!("00000000002{i}").into_boxed_str());
            fake.children.insert(id, (vec![], vec![acct(account, "x", AccountState::Active)]));
        }
        let expected: Vec<(String, String)> = {
            let mut v: Vec<(String, String)> =
                (10..19).map(|i| (format!("0000000000{i}"), "/Root/Dev".to_owned())).collect();
            v.extend((0..5).map(|i| (format!("00000000002{i}"), format!("/Root/Dev/X{i}"))));
            v.extend([
                ("000000000001".to_owned(), "/Root".to_owned()),
                ("000000000002".to_owned(), "/Root/Prod".to_owned()),
                ("000000000003".to_owned(), "/Root/Prod/Payments".to_owned()),
            ]);
            v.sort();
            v
        };
        for denied in [false, true] {
            fake.children_denied = denied;
            fake.calls.lock().unwrap().clear();
            let d = collect(&fake, &caller(), &AccountFilter::default()).await.unwrap();
            let got: Vec<(String, String)> =
                d.accounts.iter().map(|a| (a.id.to_string(), a.ou_path.clone().unwrap())).collect();
            assert_eq!(got, expected, "denied: {denied}");
            assert_eq!(fake.called("ListParents"), 0);
            if !denied {
                assert!(fake.called("ListChildren") > 0, "ListChildren's bucket is used");
            }
        }
    }

    #[test]
    fn role_arns_carry_partition_and_path() {
        let r = RoleSpec::new("Audit", "/security/").unwrap();
        assert_eq!(
            r.arn(&Partition::from_arn("arn:aws-cn:iam::x").unwrap(), &id("012345678901")),
            "arn:aws-cn:iam::012345678901:role/security/Audit"
        );
        for bad in ["security/", "/security", "", "//"] {
            assert!(RoleSpec::new("Audit", bad).is_err(), "{bad:?}");
        }
    }
}
