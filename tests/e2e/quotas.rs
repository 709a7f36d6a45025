//! Issue "10,000 accounts under AWS's published quotas": discovery of an organization with hundreds of OUs, with the
//! emulator enforcing AWS Organizations' throttling buckets (per calling account, one per row of AWS's table).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::{AS_OF, Emulator};

/// An OU tree: `widths[level]` is (OUs under each parent of that level, how many of them have children); accounts
/// (no users) in some OUs of every level. Returns the spec's `ous`; `accounts` gets each account's expected OU path.
fn tree(path: &str, level: usize, widths: &[(usize, usize)], accounts: &mut BTreeMap<String, String>) -> Vec<Value> {
    let Some(&(width, fanning)) = widths.get(level) else { return Vec::new() };
    (0..width)
        .map(|i| {
            let name = format!("L{level}-{i}");
            let child_path = format!("{path}/{name}");
            let children = if i < fanning { tree(&child_path, level + 1, widths, accounts) } else { Vec::new() };
            // One account in every OU of the deepest levels and in every fifth OU elsewhere; a crowd in the first.
            let count = match (level, i) {
                (0, 0) => 25,
                (l, _) if l + 2 >= widths.len() && i % 2 == 0 => 1,
                (_, i) if i % 5 == 4 => 1,
                _ => 0,
            };
            let members: Vec<Value> = (0..count)
                .map(|n| {
                    // Named after the OU's path: unique in the organization.
                    let account = format!("{}-a{n}", child_path.trim_start_matches("/Root/").replace('/', "."));
                    accounts.insert(account.clone(), child_path.clone());
                    json!({"name": account})
                })
                .collect();
            json!({"name": name, "ous": children, "accounts": members})
        })
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

#[test]
fn a_discovery_of_hundreds_of_ous_under_aws_quotas_finds_every_account_with_its_path_and_is_never_throttled() {
    let emu = Emulator::start();
    let mut expected = BTreeMap::new();
    // 22 + 20 + 60 + 60 + 30 = 192 OUs, five levels deep; 22 under the root (two pages of child OUs).
    let ous = tree("/Root", 0, &[(22, 5), (4, 4), (3, 3), (1, 1), (1, 0)], &mut expected);
    let spec = json!({"accounts": [{"name": "top"}], "ous": ous});
    expected.insert("top".to_owned(), "/Root".to_owned());
    let s = emu.seed(spec);
    let ou_count = s.0["ous"].as_object().unwrap().len() - 1;
    assert!(ou_count >= 190, "{ou_count} OUs");

    emu.control("POST", "quotas", &json!({"organizations": true}));
    let run = emu.keyaudit(&["scan", "--as-of", AS_OF, "-o", "table", "--rules", "KA-IAM-001", "--owner-tags", ""]);
    assert_eq!(run.code, 0, "no keys anywhere\n{}", run.stderr);
    let report = run.report();
    assert_eq!(report["run"]["discovery"], "complete");
    let management = s.account("management");
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for account in report["accounts"].as_array().unwrap() {
        assert_eq!(account["status"], "scanned", "{account}");
        if account["account_id"] != management.as_str() {
            found.insert(text(&account["name"]), text(&account["ou_path"]));
        }
    }
    assert_eq!(found.len(), expected.len());
    assert_eq!(found, expected, "every account, with its OU path");

    let quotas = emu.control("GET", "quotas", &Value::Null);
    assert_eq!(quotas["throttled"], json!({}), "keyaudit's own pacing is never throttled: {quotas}");
    let served = &quotas["served"];
    let listings = ["ListOrganizationalUnitsForParent", "ListChildren", "ListAccountsForParent", "ListAccounts"]
        .map(|op| served[op].as_u64().unwrap_or(0));
    assert!(listings[0] as usize > ou_count, "every OU's child OUs were listed: {served}");
    assert!(listings[1] > 0 && listings[3] > 0, "the accounts' listings are spread over the buckets: {served}");
    assert!(listings.iter().sum::<u64>() < 2 * ou_count as u64 + 20, "no call per account: {served}");
}
