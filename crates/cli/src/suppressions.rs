//! `--suppressions FILE`: the exceptions file (TOML, one `[[suppression]]` table per entry), read into the core
//! model. Every problem names the file, the line and what was expected; the caller exits 2.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Result, anyhow};
use jiff::civil::Date;
use keyaudit_core::ids::{AccessKeyId, AccountId};
use keyaudit_core::rules::builtin;
use keyaudit_core::suppress::{Selector, Suppression, Suppressions, UserArnGlob};
use serde::Deserialize;
use toml::Spanned;

use keyaudit_config::toml_errors::line_of;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    suppression: Vec<Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Option<Spanned<String>>,
    fingerprint: Option<Spanned<String>>,
    access_key_id: Option<Spanned<String>>,
    user_arn: Option<Spanned<String>>,
    account_id: Option<Spanned<String>>,
    ou_path: Option<Spanned<String>>,
    rules: Option<Spanned<Vec<String>>>,
    reason: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    expires: Option<Spanned<toml::Value>>,
    allow_long: Option<bool>,
}

/// Reads and checks a suppressions file.
pub(crate) fn load(path: &Path) -> Result<Suppressions> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("--suppressions {}: cannot read the file ({e})", path.display()))?;
    parse(&text).map_err(|problems| anyhow!("--suppressions {}: {}", path.display(), problems.join("\n  ")))
}

/// Parses a suppressions file; each problem reads `line N: …`.
fn parse(text: &str) -> Result<Suppressions, Vec<String>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| vec![keyaudit_config::toml_errors::describe(text, &e)])?;
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    let mut names = HashSet::new();
    for (i, spanned) in raw.suppression.iter().enumerate() {
        let entry_line = line_of(text, spanned.span().start);
        let at = |s: Option<std::ops::Range<usize>>| line_of(text, s.map_or(spanned.span().start, |s| s.start));
        match entry(spanned.get_ref(), i, entry_line, &at) {
            Ok(e) => {
                if !names.insert(e.label.clone()) {
                    problems.push(format!("line {entry_line}: name {:?} is used by an earlier entry", e.label));
                }
                entries.push(e);
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() { Ok(Suppressions { entries }) } else { Err(problems) }
}

fn entry(
    raw: &RawEntry,
    index: usize,
    line: usize,
    at: &dyn Fn(Option<std::ops::Range<usize>>) -> usize,
) -> Result<Suppression, Vec<String>> {
    let mut problems = Vec::new();
    let label = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() || n.get_ref().starts_with('#') => {
            problems.push(format!(
                "line {}: name {:?}: expected a non-empty name that does not start with '#'",
                at(Some(n.span())),
                n.get_ref()
            ));
            String::new()
        }
        Some(n) => n.get_ref().trim().to_owned(),
        None => format!("#{}", index + 1),
    };
    let mut check = |field: &Option<Spanned<String>>, parse: &dyn Fn(&str) -> Result<(), String>| {
        if let Some(v) = field
            && let Err(e) = parse(v.get_ref())
        {
            problems.push(format!("line {}: {e}", at(Some(v.span()))));
        }
    };
    check(&raw.fingerprint, &|v| {
        (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then_some(()).ok_or_else(|| {
            format!("fingerprint {v:?}: expected the 64 hexadecimal characters of a finding's fingerprint")
        })
    });
    check(&raw.access_key_id, &|v| AccessKeyId::parse(v).map(drop).map_err(|e| format!("access_key_id: {e}")));
    check(&raw.user_arn, &|v| UserArnGlob::parse(v).map(drop).map_err(|e| format!("user_arn {e}")));
    check(&raw.account_id, &|v| AccountId::parse(v).map(drop).map_err(|e| format!("account_id: {e}")));
    check(&raw.ou_path, &|v| {
        v.starts_with('/')
            .then_some(())
            .ok_or_else(|| format!("ou_path {v:?}: expected an OU path such as /Root/Prod (its subtree is included)"))
    });
    let mut rules = None;
    if let Some(list) = &raw.rules {
        let mut ids = Vec::new();
        for name in list.get_ref() {
            match builtin().find(name) {
                Some(meta) => ids.push(meta.id),
                None => problems.push(format!(
                    "line {}: rules: no rule has the id or name {name:?} (`keyaudit rules` lists them)",
                    at(Some(list.span()))
                )),
            }
        }
        if ids.is_empty() && list.get_ref().is_empty() {
            problems.push(format!("line {}: rules = []: leave `rules` out to match every rule", at(Some(list.span()))));
        }
        rules = Some(ids);
    }
    let mut required = |field: &Option<Spanned<String>>, name: &str, what: &str| match field {
        Some(v) if !v.get_ref().trim().is_empty() => v.get_ref().trim().to_owned(),
        Some(v) => {
            problems.push(format!("line {}: {name} is empty; expected {what}", at(Some(v.span()))));
            String::new()
        }
        None => {
            problems.push(format!("line {line}: entry {label} has no `{name}`; every entry needs {what}"));
            String::new()
        }
    };
    let reason = required(&raw.reason, "reason", "a reason (why the finding is accepted)");
    let owner = required(&raw.owner, "owner", "an owner (who accepted it)");
    let expires = match &raw.expires {
        None => {
            problems.push(format!(
                "line {line}: entry {label} has no `expires`; every entry needs an end date such as expires = 2027-03-31"
            ));
            None
        }
        Some(v) => match expiry(v.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!("line {}: {e}", at(Some(v.span()))));
                None
            }
        },
    };
    let selector = Selector {
        fingerprint: raw.fingerprint.as_ref().map(|v| v.get_ref().to_ascii_lowercase()),
        access_key_id: raw.access_key_id.as_ref().and_then(|v| AccessKeyId::parse(v.get_ref()).ok()),
        user_arn: raw.user_arn.as_ref().and_then(|v| UserArnGlob::parse(v.get_ref()).ok()),
        account_id: raw.account_id.as_ref().and_then(|v| AccountId::parse(v.get_ref()).ok()),
        ou_path: raw.ou_path.as_ref().map(|v| v.get_ref().trim_end_matches('/').to_owned()),
        rules,
    };
    let names_subject = raw.fingerprint.is_some()
        || raw.access_key_id.is_some()
        || raw.user_arn.is_some()
        || raw.account_id.is_some()
        || raw.ou_path.is_some();
    if !names_subject {
        problems.push(format!(
            "line {line}: entry {label} matches nothing specific; give at least one of fingerprint, access_key_id, \
             user_arn, account_id or ou_path (to leave a rule out everywhere, use --skip-rules)"
        ));
    }
    match expires {
        Some(expires) if problems.is_empty() => Ok(Suppression {
            label,
            line,
            selector,
            reason,
            owner,
            expires,
            allow_long: raw.allow_long.unwrap_or(false),
        }),
        _ => Err(problems),
    }
}

/// `expires`: a TOML date (`2027-03-31`) or the same as a string.
fn expiry(value: &toml::Value) -> Result<Date, String> {
    let bad = |shown: &str| format!("expires {shown}: expected a date such as 2027-03-31 (the last day in force, UTC)");
    match value {
        toml::Value::String(s) => s.trim().parse::<Date>().map_err(|_| bad(&format!("{s:?}"))),
        toml::Value::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
            (Some(d), None, None) => {
                Date::new(d.year as i16, d.month as i8, d.day as i8).map_err(|_| bad(&dt.to_string()))
            }
            _ => Err(bad(&dt.to_string())),
        },
        other => Err(bad(&other.to_string())),
    }
}

/// Checks every entry against the run's `as_of` (an end date more than a year away needs `allow_long`).
pub(crate) fn check_horizon(path: &Path, suppressions: &Suppressions, as_of: jiff::Timestamp) -> Result<()> {
    let problems: Vec<String> = suppressions
        .entries
        .iter()
        .filter_map(|e| e.check_horizon(as_of).err().map(|p| format!("line {}: entry {}: {p}", e.line, e.label)))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("--suppressions {}: {}", path.display(), problems.join("\n  ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[suppression]]
name = "vendor-x"
access_key_id = "AKIA0000000000000001"
rules = ["KA-IAM-001", "unused-access-key"]
reason = "Vendor X cannot rotate before the contract renews"
owner = "alice@example.com"
expires = 2027-03-31

[[suppression]]
user_arn = "arn:aws:iam::*:user/ci-*"
ou_path = "/Root/Sandbox/"
reason = "sandbox CI users"
owner = "platform"
expires = "2027-01-15"
"#;

    #[test]
    fn a_good_file_reads_into_entries() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[0].label, "vendor-x");
        assert_eq!(s.entries[0].line, 2);
        assert_eq!(s.entries[0].selector.rules, Some(vec!["KA-IAM-001", "KA-IAM-004"]));
        assert_eq!(s.entries[1].label, "#2");
        assert_eq!(s.entries[1].line, 10);
        assert_eq!(s.entries[1].selector.ou_path.as_deref(), Some("/Root/Sandbox"));
        assert_eq!(s.entries[1].expires.to_string(), "2027-01-15");
    }

    /// Issue "Scheduled runs": each kind of bad entry is an error with its line.
    #[test]
    fn bad_entries_name_the_line_and_what_was_expected() {
        let entry = |body: &str| format!("# exceptions\n[[suppression]]\n{body}\n");
        let ok = "reason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01";
        let cases = [
            (
                entry("account_id = \"000000000001\"\nowner = \"o\"\nexpires = 2027-01-01"),
                "line 2: entry #1 has no `reason`",
            ),
            (
                entry("account_id = \"000000000001\"\nreason = \"r\"\nexpires = 2027-01-01"),
                "line 2: entry #1 has no `owner`",
            ),
            (
                entry("account_id = \"000000000001\"\nreason = \"r\"\nowner = \"o\""),
                "line 2: entry #1 has no `expires`",
            ),
            (
                entry(&format!("account_id = \"000000000001\"\nteam = \"x\"\n{ok}")),
                "line 4: unknown key `team`: expected one of `name`",
            ),
            (
                entry(&format!("user_arn = \"arn:aws:iam::*:user/**\"\n{ok}")),
                "line 3: user_arn \"arn:aws:iam::*:user/**\": `**`",
            ),
            (
                entry("account_id = \"000000000001\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"31/03/2027\""),
                "line 6: expires \"31/03/2027\": expected a date such as 2027-03-31",
            ),
            (
                entry("account_id = \"000000000001\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-03-31T10:00:00Z"),
                "line 6: expires 2027-03-31T10:00:00Z: expected a date",
            ),
            (entry(&format!("account_id = \"12345\"\n{ok}")), "line 3: account_id: invalid AWS account id"),
            (
                entry(&format!("rules = [\"KA-IAM-009\"]\naccount_id = \"000000000001\"\n{ok}")),
                "line 3: rules: no rule has the id or name \"KA-IAM-009\"",
            ),
            (entry(&format!("rules = [\"KA-IAM-001\"]\n{ok}")), "line 2: entry #1 matches nothing specific"),
            (
                entry(&format!("fingerprint = \"abc\"\n{ok}")),
                "line 3: fingerprint \"abc\": expected the 64 hexadecimal",
            ),
            (entry(&format!("ou_path = \"Root/Prod\"\n{ok}")), "line 3: ou_path \"Root/Prod\": expected an OU path"),
            (
                entry("account_id = \"000000000001\"\nreason = \"  \"\nowner = \"o\"\nexpires = 2027-01-01"),
                "line 4: reason is empty",
            ),
            ("[[suppression]\n".to_owned(), "line 1: "),
            (
                format!(
                    "{}{}",
                    entry(&format!("name = \"a\"\naccount_id = \"000000000001\"\n{ok}")),
                    entry(&format!("name = \"a\"\naccount_id = \"000000000002\"\n{ok}"))
                ),
                "name \"a\" is used by an earlier entry",
            ),
        ];
        for (text, needle) in cases {
            let problems = parse(&text).unwrap_err().join("\n");
            assert!(problems.contains(needle), "expected {needle:?} in:\n{problems}\n--- file:\n{text}");
        }
    }

    #[test]
    fn an_end_date_more_than_a_year_ahead_needs_allow_long() {
        let text =
            "[[suppression]]\naccount_id = \"000000000001\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2028-06-01\n";
        let s = parse(text).unwrap();
        let as_of = "2026-11-28T00:00:00Z".parse().unwrap();
        let err = check_horizon(Path::new("s.toml"), &s, as_of).unwrap_err().to_string();
        assert!(
            err.starts_with("--suppressions s.toml: line 1: entry #1: expires 2028-06-01 is more than 365 days"),
            "{err}"
        );
        let long = parse(&format!("{text}allow_long = true\n")).unwrap();
        check_horizon(Path::new("s.toml"), &long, as_of).unwrap();
    }
}
