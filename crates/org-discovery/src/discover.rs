//! Walks the organization's tree (roots, OUs, accounts under each parent) so every account gets its OU path,
//! then applies the user's filters. Calls grow with the number of OUs, not accounts.

use std::collections::{BTreeMap, HashSet};

use keyaudit_core::ids::{AccountId, Partition};
use keyaudit_core::report::{AccessMethod, Account, AccountState, Scope};

use crate::DiscoveryError;
use crate::api::{CallerIdentity, OrganizationsApi};

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
    path: String,
    /// This node and all its ancestors.
    lineage: Vec<String>,
}

/// Discovers the organization's accounts and their OU paths, and applies `filter`.
pub async fn discover(
    api: &impl OrganizationsApi,
    caller: &CallerIdentity,
    filter: &AccountFilter,
    role: &RoleSpec,
) -> Result<Discovery, DiscoveryError> {
    let Some(org) = api.describe_organization().await? else {
        return standalone(caller, filter);
    };
    // Breadth-first walk; `nodes` maps every root/OU id to its path and lineage.
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut queue: Vec<String> = Vec::new();
    for root in api.list_roots().await? {
        nodes.insert(root.id.clone(), Node { path: "/Root".into(), lineage: vec![root.id.clone()] });
        queue.push(root.id);
    }
    let mut found: Vec<(crate::api::OrgAccount, String)> = Vec::new();
    while let Some(parent) = queue.pop() {
        let (parent_path, parent_lineage) = {
            let n = &nodes[&parent];
            (n.path.clone(), n.lineage.clone())
        };
        for ou in api.list_child_ous(&parent).await? {
            let mut lineage = parent_lineage.clone();
            lineage.push(ou.id.clone());
            nodes.insert(ou.id.clone(), Node { path: format!("{parent_path}/{}", ou.name), lineage });
            queue.push(ou.id);
        }
        for account in api.list_accounts_for_parent(&parent).await? {
            found.push((account, parent.clone()));
        }
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
    let select_all = filter.ous.is_empty() && filter.accounts.is_empty();
    let mut accounts: Vec<Account> = found
        .into_iter()
        .filter(|(a, parent)| {
            select_all
                || filter.accounts.contains(&a.id)
                || nodes[parent].lineage.iter().any(|id| selected_ous.contains(id.as_str()))
        })
        .filter(|(a, _)| !filter.exclude.contains(&a.id))
        .map(|(a, parent)| {
            let access = if a.id == org.management_account_id || a.id == caller.account_id {
                AccessMethod::CallerCredentials
            } else {
                AccessMethod::AssumeRole { role_arn: role.arn(&caller.partition, &a.id) }
            };
            Account { id: a.id, name: Some(a.name), ou_path: Some(nodes[&parent].path.clone()), state: a.state, access }
        })
        .collect();
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Discovery {
        scope: Scope::Organization { id: org.id, management_account_id: org.management_account_id },
        accounts,
        discovered,
    })
}

fn resolve_ous<'a>(wanted: &[String], nodes: &'a BTreeMap<String, Node>) -> Result<HashSet<&'a str>, DiscoveryError> {
    let mut ids = HashSet::new();
    for value in wanted {
        let path = format!("/{}", value.trim().trim_matches('/'));
        let hit = nodes.iter().find(|(id, node)| *id == value.trim() || node.path == path);
        match hit {
            Some((id, _)) => ids.insert(id.as_str()),
            None => {
                let mut known: Vec<&str> = nodes.values().map(|n| n.path.as_str()).collect();
                known.sort_unstable();
                known.truncate(20);
                return Err(DiscoveryError::UnknownOu { value: value.clone(), known: known.join(", ") });
            }
        };
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

    /// A fake organization: parent id → (child OUs, accounts).
    struct FakeOrg {
        org: Option<OrgInfo>,
        children: HashMap<&'static str, (Vec<OrgUnit>, Vec<OrgAccount>)>,
        calls: Mutex<u32>,
    }

    impl OrganizationsApi for FakeOrg {
        async fn describe_organization(&self) -> Result<Option<OrgInfo>, DiscoveryError> {
            *self.calls.lock().unwrap() += 1;
            Ok(self.org.clone())
        }
        async fn list_roots(&self) -> Result<Vec<OrgUnit>, DiscoveryError> {
            *self.calls.lock().unwrap() += 1;
            Ok(vec![OrgUnit { id: "r-root".into(), name: "Root".into() }])
        }
        async fn list_child_ous(&self, parent: &str) -> Result<Vec<OrgUnit>, DiscoveryError> {
            *self.calls.lock().unwrap() += 1;
            Ok(self.children.get(parent).map(|c| c.0.clone()).unwrap_or_default())
        }
        async fn list_accounts_for_parent(&self, parent: &str) -> Result<Vec<OrgAccount>, DiscoveryError> {
            *self.calls.lock().unwrap() += 1;
            Ok(self.children.get(parent).map(|c| c.1.clone()).unwrap_or_default())
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
            calls: Mutex::new(0),
        }
    }

    fn caller() -> CallerIdentity {
        CallerIdentity {
            account_id: id("000000000001"),
            arn: "arn:aws:iam::000000000001:user/admin".into(),
            partition: Partition::aws(),
        }
    }

    fn role() -> RoleSpec {
        RoleSpec::new("OrganizationAccountAccessRole", "/").unwrap()
    }

    async fn run(filter: AccountFilter) -> Result<Discovery, DiscoveryError> {
        discover(&org(), &caller(), &filter, &role()).await
    }

    fn ids(d: &Discovery) -> Vec<&str> {
        d.accounts.iter().map(|a| a.id.as_str()).collect()
    }

    #[tokio::test]
    async fn every_account_gets_its_ou_path_and_access_method() {
        let fake = org();
        let d = discover(&fake, &caller(), &AccountFilter::default(), &role()).await.unwrap();
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
        // describe + roots + (OUs + accounts) for each of the 4 parents: grows with OUs, not accounts.
        assert_eq!(*fake.calls.lock().unwrap(), 2 + 2 * 4);
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
        let fake = FakeOrg { org: None, children: HashMap::new(), calls: Mutex::new(0) };
        let d = discover(&fake, &caller(), &AccountFilter::default(), &role()).await.unwrap();
        assert_eq!(d.scope, Scope::StandaloneAccount);
        assert_eq!(ids(&d), ["000000000001"]);
        assert_eq!(d.accounts[0].access, AccessMethod::CallerCredentials);
        let err =
            discover(&fake, &caller(), &AccountFilter { ous: vec!["/Root".into()], ..Default::default() }, &role())
                .await
                .unwrap_err();
        assert!(matches!(err, DiscoveryError::UnknownOu { .. }));
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
