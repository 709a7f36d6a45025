//! The simulated organization: its OU tree, accounts and every account's IAM users, from a spec (the emulator's
//! `GET /_keyaudit/export`) or generated at any size; and the credential report AWS would write for an account.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct Spec {
    pub(crate) organization: OrgSpec,
    #[serde(default)]
    pub(crate) iam: HashMap<String, AccountIam>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct OrgSpec {
    pub(crate) id: String,
    pub(crate) management_account_id: String,
    pub(crate) root_id: String,
    pub(crate) ous: Vec<Ou>,
    pub(crate) accounts: Vec<Account>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct Ou {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) parent_id: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct Account {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) state: String,
    pub(crate) parent_id: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct AccountIam {
    #[serde(default)]
    pub(crate) users: Vec<User>,
    #[serde(default)]
    pub(crate) root_keys: Vec<RootKey>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) created: Timestamp,
    pub(crate) keys: Vec<Key>,
    #[serde(default)]
    pub(crate) tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct Key {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) created: Timestamp,
    pub(crate) last_rotated: Timestamp,
    pub(crate) last_used: Option<LastUsed>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct LastUsed {
    pub(crate) date: Timestamp,
    pub(crate) region: String,
    pub(crate) service: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct RootKey {
    pub(crate) created: String,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) last_used: Option<String>,
}

/// The organization, indexed for the calls keyaudit makes.
pub(crate) struct Org {
    pub(crate) spec: Spec,
    /// Parent id → child OU indexes, in creation order.
    pub(crate) child_ous: HashMap<String, Vec<usize>>,
    /// Parent id → child account indexes.
    pub(crate) child_accounts: HashMap<String, Vec<usize>>,
    pub(crate) account_index: HashMap<String, usize>,
    /// Root and OU id → its OU path as keyaudit writes it (`/Root/a/b`, `/` and `\` in names escaped).
    ou_paths: HashMap<String, String>,
}

impl Org {
    pub(crate) fn new(spec: Spec) -> Result<Self> {
        let mut child_ous: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, ou) in spec.organization.ous.iter().enumerate() {
            child_ous.entry(ou.parent_id.clone()).or_default().push(i);
        }
        let mut child_accounts: HashMap<String, Vec<usize>> = HashMap::new();
        let mut account_index = HashMap::new();
        for (i, a) in spec.organization.accounts.iter().enumerate() {
            child_accounts.entry(a.parent_id.clone()).or_default().push(i);
            if account_index.insert(a.id.clone(), i).is_some() {
                bail!("account {} is in the spec twice", a.id);
            }
        }
        let mut ou_paths = HashMap::from([(spec.organization.root_id.clone(), "/Root".to_owned())]);
        // Parents before children: walk down from the root.
        let mut queue = vec![spec.organization.root_id.clone()];
        while let Some(parent) = queue.pop() {
            let base = ou_paths.get(&parent).cloned().unwrap_or_default();
            for &i in child_ous.get(&parent).map_or(&[][..], Vec::as_slice) {
                let ou = &spec.organization.ous[i];
                let name = ou.name.replace('\\', "\\\\").replace('/', "\\/");
                ou_paths.insert(ou.id.clone(), format!("{base}/{name}"));
                queue.push(ou.id.clone());
            }
        }
        Ok(Self { spec, child_ous, child_accounts, account_index, ou_paths })
    }

    pub(crate) fn management(&self) -> &str {
        &self.spec.organization.management_account_id
    }

    pub(crate) fn account(&self, id: &str) -> Option<&Account> {
        self.account_index.get(id).map(|&i| &self.spec.organization.accounts[i])
    }

    pub(crate) fn iam(&self, account: &str) -> Option<&AccountIam> {
        self.spec.iam.get(account)
    }

    /// Whether `id` is the root or an OU.
    pub(crate) fn is_parent(&self, id: &str) -> bool {
        self.ou_paths.contains_key(id)
    }

    /// A parent's OU path (`None`: no such parent).
    pub(crate) fn ou_path(&self, parent: &str) -> Option<&str> {
        self.ou_paths.get(parent).map(String::as_str)
    }
}

/// What a generated organization looks like.
pub(crate) struct Shape {
    pub(crate) accounts: usize,
    pub(crate) ous: usize,
    pub(crate) depth: usize,
    /// One account in `users_every` has `users` IAM users; the others none (most accounts of large organizations
    /// are workload accounts without IAM users).
    pub(crate) users_every: usize,
    pub(crate) users: usize,
}

/// A generated organization: `shape.ous` OUs up to `shape.depth` levels deep, accounts spread over the root and
/// the OUs; user 0 of every third account with users has a key 200+ days old (failing), the rest fresh keys, and
/// one user in ten an inactive old key.
pub(crate) fn generate(shape: &Shape, now: Timestamp) -> Spec {
    let management = "111111111111".to_owned();
    let root_id = "r-sim0".to_owned();
    let mut rng = Lcg(0x5eed);
    let mut ous: Vec<Ou> = Vec::with_capacity(shape.ous);
    let mut depth_of: Vec<usize> = Vec::with_capacity(shape.ous);
    for i in 0..shape.ous {
        let top = i < shape.ous.min(10);
        let parent = if top { None } else { Some(rng.below(i)) }.filter(|&p| depth_of[p] < shape.depth);
        let (parent_id, depth) = match parent {
            Some(p) => (ous[p].id.clone(), depth_of[p] + 1),
            None => (root_id.clone(), 1),
        };
        ous.push(Ou { id: format!("ou-sim0-{i:08x}"), name: format!("OU-{i}"), parent_id });
        depth_of.push(depth);
    }
    let mut accounts = Vec::with_capacity(shape.accounts + 1);
    let mut iam = HashMap::new();
    let days_ts = |d: i64| now - jiff::SignedDuration::from_hours(24 * d);
    accounts.push(Account {
        id: management.clone(),
        name: "management".into(),
        email: "management@example.com".into(),
        state: "ACTIVE".into(),
        parent_id: root_id.clone(),
    });
    for a in 0..shape.accounts {
        let id = format!("{:012}", 200_000_000_000u64 + a as u64);
        let parent_id =
            if ous.is_empty() || a % 20 == 0 { root_id.clone() } else { ous[rng.below(ous.len())].id.clone() };
        let state = if a % 97 == 96 { "SUSPENDED" } else { "ACTIVE" };
        accounts.push(Account {
            id: id.clone(),
            name: format!("acct-{a:05}"),
            email: format!("acct-{a:05}@example.com"),
            state: state.into(),
            parent_id,
        });
        if shape.users_every == 0 || a % shape.users_every != 0 {
            continue;
        }
        let users = (0..shape.users)
            .map(|u| {
                let age = if u == 0 && a % 3 == 0 { 200 + u as i64 } else { 10 + u as i64 };
                let mut keys = vec![Key {
                    id: format!("AKIA{a:010}{u:02}K{:03}", 0),
                    status: "Active".into(),
                    created: days_ts(age),
                    last_rotated: days_ts(age),
                    last_used: Some(LastUsed { date: days_ts(1), region: "us-east-1".into(), service: "s3".into() }),
                }];
                if (a + u) % 10 == 0 {
                    keys.push(Key {
                        id: format!("AKIA{a:010}{u:02}K{:03}", 1),
                        status: "Inactive".into(),
                        created: days_ts(400),
                        last_rotated: days_ts(400),
                        last_used: None,
                    });
                }
                User {
                    name: format!("user-{u}"),
                    arn: format!("arn:aws:iam::{id}:user/user-{u}"),
                    created: days_ts(500),
                    keys,
                    tags: std::collections::BTreeMap::new(),
                }
            })
            .collect();
        iam.insert(id, AccountIam { users, root_keys: Vec::new() });
    }
    Spec {
        organization: OrgSpec { id: "o-simulated0".into(), management_account_id: management, root_id, ous, accounts },
        iam,
    }
}

/// A small deterministic generator (the same organization for the same shape, run after run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n.max(1) as u64) as usize
    }
}

pub(crate) const REPORT_HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,\
password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,\
access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,\
access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,\
cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

fn report_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// A CSV field, quoted when it has to be (as AWS quotes user names with commas).
fn field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// The account's credential report as AWS writes it: the header, the `<root_account>` row, a row per user.
pub(crate) fn credential_report(account: &str, iam: Option<&AccountIam>) -> Result<String> {
    let mut out = String::with_capacity(512);
    out.push_str(REPORT_HEADER);
    out.push('\n');
    let root_keys = iam.map_or(&[][..], |i| &i.root_keys[..]);
    let mut slots = Vec::new();
    for i in 0..2 {
        let Some(key) = root_keys.get(i) else {
            slots.push("false,N/A,N/A,N/A,N/A".to_owned());
            continue;
        };
        let active = if key.status.as_deref().unwrap_or("Active") == "Active" { "true" } else { "false" };
        let at = |v: &str| -> Result<String> {
            Ok(report_time(v.parse::<Timestamp>().with_context(|| format!("root key time {v:?}"))?))
        };
        let used = match &key.last_used {
            Some(u) => format!("{},us-east-1,iam", at(u)?),
            None => "N/A,N/A,N/A".to_owned(),
        };
        slots.push(format!("{active},{},{used}", at(&key.created)?));
    }
    out.push_str(&format!(
        "<root_account>,arn:aws:iam::{account}:root,2019-01-01T00:00:00+00:00,not_supported,no_information,\
         not_supported,not_supported,true,{},{},false,N/A,false,N/A\n",
        slots[0], slots[1]
    ));
    for user in iam.map_or(&[][..], |i| &i.users[..]) {
        let mut row = vec![
            field(&user.name),
            field(&user.arn),
            report_time(user.created),
            "false".into(),
            "not_supported".into(),
            "N/A".into(),
            "N/A".into(),
            "false".into(),
        ];
        for i in 0..2 {
            match user.keys.get(i) {
                None => row.extend(["false", "N/A", "N/A", "N/A", "N/A"].map(String::from)),
                Some(key) => {
                    row.push(if key.status == "Active" { "true" } else { "false" }.into());
                    row.push(report_time(key.last_rotated));
                    match &key.last_used {
                        Some(u) => row.extend([report_time(u.date), u.region.clone(), u.service.clone()]),
                        None => row.extend(["N/A", "N/A", "N/A"].map(String::from)),
                    }
                }
            }
        }
        row.extend(["false", "N/A", "false", "N/A"].map(String::from));
        out.push_str(&row.join(","));
        out.push('\n');
    }
    Ok(out)
}
