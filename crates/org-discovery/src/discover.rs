//! Walks the organization's tree (roots, OUs, accounts under each parent) so every account gets its OU path,
//! then applies the user's filters. Calls grow with the number of OUs, not accounts.

use std::collections::{BTreeMap, HashSet};

use keyaudit_core::ids::{AccountId, Partition};
use keyaudit_core::report::{AccessMethod, Account, AccountState, Scope};

use crate::DiscoveryError;
use crate::api::{CallerIdentity, OrgAccount, OrganizationsApi};

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

/// The accounts to audit and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Organization or standalone account.
    pub scope: Scope,
    /// The selected accounts, in id order.
    pub accounts: Vec<Account>,
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
    let invalid =
        |problem: &str| DiscoveryError::InvalidOuPath { value: value.to_owned(), problem: problem.to_owned() };
    let body = value.trim();
    let body = body.strip_prefix('/').unwrap_or(body);
    let (mut names, mut name) = (Vec::new(), String::new());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('/' | '\\')) => name.push(e),
                _ => return Err(invalid("a '\\' must be followed by '/' or '\\' (write a/b as a\\/b)")),
            },
            '/' => names.push(std::mem::take(&mut name)),
            c => name.push(c),
        }
    }
    // A trailing '/' leaves an empty last name behind: it is optional, so it is dropped.
    if !name.is_empty() || names.is_empty() {
        names.push(name);
    }
    if names.iter().any(String::is_empty) {
        return Err(invalid("an OU name in the path is empty"));
    }
    Ok(names)
}

/// Discovers the organization's accounts and their OU paths, and applies `filter`.
///
/// The tree walk gives every account its OU path. Accounts can move while it runs, so it is cross-checked with
/// one listing of the whole organization (`ListAccounts`): an account listed under two parents, or found only
/// in that listing, gets its parent from `ListParents`. Neither happens unless an account moves mid-walk.
///
/// `emit` sees every selected account once, as early as it can: with no `--ou` / `--account` selection, as the
/// walk finds it (so that scanning starts while the walk goes on); otherwise once the tree is known. An account
/// that moves during the walk is emitted under the parent it was first seen under.
pub async fn discover(
    api: &impl OrganizationsApi,
    caller: &CallerIdentity,
    filter: &AccountFilter,
    role: &RoleSpec,
    emit: &(dyn Fn(Account) + Sync),
) -> Result<Discovery, DiscoveryError> {
    let Some(org) = api.describe_organization().await? else {
        let discovery = standalone(caller, filter)?;
        discovery.accounts.iter().cloned().for_each(emit);
        return Ok(discovery);
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
    let mut emitted: HashSet<AccountId> = HashSet::new();
    // Depth-first walk; `nodes` maps every root/OU id to its names and lineage.
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut queue: Vec<String> = Vec::new();
    for root in api.list_roots().await? {
        nodes.insert(root.id.clone(), Node { names: vec!["Root".into()], lineage: vec![root.id.clone()] });
        queue.push(root.id);
    }
    // Account id -> (account, every parent it was listed under).
    let mut placed: BTreeMap<AccountId, (OrgAccount, Vec<String>)> = BTreeMap::new();
    while let Some(parent) = queue.pop() {
        let (names, lineage) = {
            let n = &nodes[&parent];
            (n.names.clone(), n.lineage.clone())
        };
        for ou in api.list_child_ous(&parent).await? {
            let mut child = Node { names: names.clone(), lineage: lineage.clone() };
            child.names.push(ou.name);
            child.lineage.push(ou.id.clone());
            nodes.insert(ou.id.clone(), child);
            queue.push(ou.id);
        }
        for account in api.list_accounts_for_parent(&parent).await? {
            if select_all && !filter.exclude.contains(&account.id) && emitted.insert(account.id.clone()) {
                emit(make(&account, &parent, &nodes));
            }
            placed.entry(account.id.clone()).or_insert_with(|| (account, Vec::new())).1.push(parent.clone());
        }
    }
    let mut found: Vec<(OrgAccount, String)> = Vec::new();
    let listed = api.list_accounts().await?;
    let walked: HashSet<AccountId> = placed.keys().cloned().collect();
    for (id, (account, parents)) in placed {
        let parent = match &parents[..] {
            [one] => one.clone(),
            _ => {
                tracing::info!(account = %id, "account listed under {} parents during the walk (moved)", parents.len());
                api.parent_of(&id).await?
            }
        };
        found.push((account, parent));
    }
    for account in listed.into_iter().filter(|a| !walked.contains(&a.id)) {
        tracing::info!(account = %account.id, "account missed by the walk (moved during it); asking for its parent");
        let parent = api.parent_of(&account.id).await?;
        found.push((account, parent));
    }
    let discovered = found.len();

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
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    for account in accounts.iter().filter(|a| !emitted.contains(&a.id)) {
        emit(account.clone());
    }
    Ok(Discovery {
        scope: Scope::Organization { id: org.id, management_account_id: org.management_account_id },
        accounts,
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
                let mut known: Vec<String> = nodes.values().map(|n| ou_path(&n.names)).collect();
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
fn standalone(caller: &CallerIdentity, filter: &AccountFilter) -> Result<Discovery, DiscoveryError> {
    let scope = "the caller's standalone account (it is not in an AWS Organization)".to_owned();
    if let Some(ou) = filter.ous.first() {
        return Err(DiscoveryError::UnknownOu { value: ou.clone(), known: scope });
    }
    if let Some(other) = filter.accounts.iter().find(|id| **id != caller.account_id) {
        return Err(DiscoveryError::UnknownAccount { value: other.to_string(), scope });
    }
    let accounts = if filter.exclude.contains(&caller.account_id) {
        Vec::new()
    } else {
        vec![Account {
            id: caller.account_id.clone(),
            name: None,
            ou_path: None,
            state: AccountState::Active,
            access: AccessMethod::CallerCredentials,
        }]
    };
    Ok(Discovery { scope: Scope::StandaloneAccount, accounts, discovered: 1 })
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
    }

    impl FakeOrg {
        fn count(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
        fn called(&self, action: &str) -> usize {
            self.calls.lock().unwrap().iter().filter(|a| **a == action).count()
        }
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
        async fn list_child_ous(&self, parent: &str) -> Result<Vec<OrgUnit>, DiscoveryError> {
            self.calls.lock().unwrap().push("ListOrganizationalUnitsForParent");
            Ok(self.children.get(parent).map(|c| c.0.clone()).unwrap_or_default())
        }
        async fn list_accounts_for_parent(&self, parent: &str) -> Result<Vec<OrgAccount>, DiscoveryError> {
            self.calls.lock().unwrap().push("ListAccountsForParent");
            Ok(self.children.get(parent).map(|c| c.1.clone()).unwrap_or_default())
        }
        async fn list_accounts(&self) -> Result<Vec<OrgAccount>, DiscoveryError> {
            self.calls.lock().unwrap().push("ListAccounts");
            let mut all: Vec<OrgAccount> = self.children.values().flat_map(|c| c.1.clone()).collect();
            all.extend(self.extra.clone());
            all.sort_by(|a, b| a.id.cmp(&b.id));
            all.dedup_by(|a, b| a.id == b.id);
            Ok(all)
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

    async fn run(filter: AccountFilter) -> Result<Discovery, DiscoveryError> {
        discover(&org(), &caller(), &filter, &role(), &|_| {}).await
    }

    fn ids(d: &Discovery) -> Vec<&str> {
        d.accounts.iter().map(|a| a.id.as_str()).collect()
    }

    #[tokio::test]
    async fn every_account_gets_its_ou_path_and_access_method() {
        let fake = org();
        let d = discover(&fake, &caller(), &AccountFilter::default(), &role(), &|_| {}).await.unwrap();
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
        // describe + roots + (OUs + accounts) for each of the 4 parents + one ListAccounts page to cross-check:
        // grows with OUs, not accounts; no ListParents while nothing moves.
        assert_eq!(fake.count(), 2 + 2 * 4 + 1);
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
            let seen = Mutex::new(Vec::new());
            let d = discover(&org(), &caller(), &filter, &role(), &|a| seen.lock().unwrap().push(a)).await.unwrap();
            let mut emitted = seen.into_inner().unwrap();
            emitted.sort_by(|a, b| a.id.cmp(&b.id));
            assert_eq!(emitted, d.accounts, "{filter:?}");
            assert_eq!(ids(&d), expected);
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
        };
        let d = discover(&fake, &caller(), &AccountFilter::default(), &role(), &|_| {}).await.unwrap();
        assert_eq!(d.scope, Scope::StandaloneAccount);
        assert_eq!(ids(&d), ["000000000001"]);
        assert_eq!(d.accounts[0].access, AccessMethod::CallerCredentials);
        let err = discover(
            &fake,
            &caller(),
            &AccountFilter { ous: vec!["/Root".into()], ..Default::default() },
            &role(),
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
        let d = discover(&org(), &delegated, &AccountFilter::default(), &role(), &|_| {}).await.unwrap();
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
            async move { discover(fake, &caller(), &filter, &role(), &|_| {}).await }
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

    /// An account moved between OUs during the walk: listed under both parents, or under neither. Each is
    /// reported once, under the parent ListParents names.
    #[tokio::test]
    async fn accounts_moved_during_the_walk_are_neither_lost_nor_listed_twice() {
        let mut fake = org();
        // 000000000003 seen under Payments and again under Dev (moved after Payments was listed).
        fake.children.get_mut("ou-dev").unwrap().1.push(acct("000000000003", "payments", AccountState::Active));
        // 000000000009 moved from an unlisted parent into one already listed: only ListAccounts sees it.
        fake.extra.push(acct("000000000009", "mover", AccountState::Active));
        fake.parents.insert("000000000003", "ou-dev");
        fake.parents.insert("000000000009", "ou-prod");
        let d = discover(&fake, &caller(), &AccountFilter::default(), &role(), &|_| {}).await.unwrap();
        assert_eq!(ids(&d), ["000000000001", "000000000002", "000000000003", "000000000004", "000000000009"]);
        assert_eq!(d.discovered, 5);
        let path = |acct: &str| d.accounts.iter().find(|a| a.id.as_str() == acct).unwrap().ou_path.as_deref();
        assert_eq!(path("000000000003"), Some("/Root/Dev"));
        assert_eq!(path("000000000009"), Some("/Root/Prod"));
        assert_eq!(fake.called("ListParents"), 2);
        assert_eq!(fake.called("ListAccounts"), 1);
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
