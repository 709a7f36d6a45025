//! A saved JSON report read back whole into the core model (`keyaudit merge`, `plan --from-report`), by the
//! report's own reader (`keyaudit_report::from_slice`): every value checked, every finding's fingerprint
//! recomputed, so that a report that was edited or truncated is refused rather than re-exported or acted on.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use keyaudit_core::report::Report;

/// Reads the keyaudit JSON report at `path` whole; `label` names it in messages.
pub(crate) fn load(label: &str, path: &Path) -> Result<Report> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{label}: cannot read the file ({e})"))?;
    from_slice(&bytes).with_context(|| label.to_owned())
}

/// Parses a report from its JSON bytes.
pub(crate) fn from_slice(bytes: &[u8]) -> Result<Report> {
    Ok(keyaudit_report::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use keyaudit_core::ids::AccountId;
    use keyaudit_core::merge::merge;
    use keyaudit_core::report::Scope;
    use keyaudit_core::rules::builtin;

    use super::*;
    use crate::output::fixture::{fixture, report};
    use crate::output::{Format, OutputOptions, render};
    use keyaudit_exports::json_bytes;

    const FORMATS: [Format; 8] = [
        Format::Table,
        Format::Json,
        Format::Sarif,
        Format::Ocsf,
        Format::Asff,
        Format::Csv,
        Format::Ndjson,
        Format::Html,
    ];

    fn reloaded(report: &Report) -> Report {
        from_slice(&json_bytes(report).unwrap()).unwrap()
    }

    /// Every export written from a report read back from its JSON is byte for byte the one written from the
    /// live report: nothing any writer uses is lost on the way through JSON.
    #[test]
    fn every_export_of_a_reloaded_report_equals_the_original() {
        let opts = OutputOptions { sarif_include_pass: true, ocsf_include_pass: true, ..OutputOptions::default() };
        // A user whose two keys share a rotation second: the slot joins the key's identity, a fact only the
        // fingerprint records.
        let mut same_second = fixture(builtin(), false);
        for key in same_second.findings.iter_mut().filter(|f| f.user_name == "app").filter_map(|f| f.key.as_mut()) {
            key.shares_rotation_second = true;
        }
        assert!(same_second.findings.iter().any(|f| f.key.as_ref().is_some_and(|k| k.shares_rotation_second)));
        for original in [report(), fixture(builtin(), false), same_second] {
            let loaded = reloaded(&original);
            let shared = |r: &Report| -> Vec<bool> {
                r.findings.iter().filter_map(|f| f.key.as_ref()).map(|k| k.shares_rotation_second).collect()
            };
            assert_eq!(shared(&loaded), shared(&original));
            for format in FORMATS {
                let (a, b) =
                    (render(format, &original, &opts, false).unwrap(), render(format, &loaded, &opts, false).unwrap());
                assert_eq!(String::from_utf8_lossy(&b), String::from_utf8_lossy(&a), "{format:?}");
            }
            assert_eq!(loaded.summary(), original.summary());
        }
    }

    /// A second organization: the fixture under another organization, caller and account ids.
    fn other_organization() -> Report {
        let mut r = fixture(builtin(), false);
        let renumber = |id: &AccountId| AccountId::parse(&format!("9{}", &id.as_str()[1..])).unwrap();
        r.run.scope = Scope::Organization {
            id: "o-second".into(),
            management_account_id: renumber(&AccountId::parse("000000000001").unwrap()),
        };
        if let Some(origin) = r.run.origin.as_mut() {
            origin.caller_account_id = renumber(&origin.caller_account_id);
            origin.region = "eu-west-1".into();
        }
        r.run.as_of -= SignedDuration::from_hours(1);
        for a in &mut r.accounts {
            a.account.id = renumber(&a.account.id);
        }
        for f in &mut r.findings {
            f.account_id = renumber(&f.account_id);
        }
        r
    }

    #[test]
    fn a_merged_report_adds_up_tags_each_organization_and_reads_back_whole() {
        let (a, b) = (report(), other_organization());
        let merged = merge(vec![("a.json".into(), reloaded(&a)), ("b.json".into(), reloaded(&b))]).unwrap();
        assert_eq!(merged.notes.len(), 1, "only one report had a baseline: {:?}", merged.notes);
        let m = merged.report;
        let (sa, sb, sm) = (a.summary(), b.summary(), m.summary());
        assert_eq!(sm.accounts_total, sa.accounts_total + sb.accounts_total);
        assert_eq!(sm.findings.fail, sa.findings.fail + sb.findings.fail);
        assert_eq!(sm.keys_total, sa.keys_total + sb.keys_total);
        assert_eq!(m.run.accounts_discovered, a.run.accounts_discovered + b.run.accounts_discovered);
        assert_eq!(m.run.as_of, b.run.as_of, "the earliest as_of");
        assert!(m.comparison.is_none());
        let json: serde_json::Value = serde_json::from_slice(&json_bytes(&m).unwrap()).unwrap();
        assert_eq!(json["run"]["scope"], "merged");
        assert_eq!(json["run"]["caller_arn"], serde_json::Value::Null);
        let orgs: Vec<&str> = json["run"]["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["organization_id"].as_str().unwrap())
            .collect();
        assert_eq!(orgs, ["o-example", "o-second"]);
        for f in json["findings"].as_array().unwrap() {
            let expected = if f["account_id"].as_str().unwrap().starts_with('9') { "o-second" } else { "o-example" };
            assert_eq!(f["organization_id"], expected, "{f}");
        }
        // Each organization's findings keep its own region and as_of in the exports.
        let asff: serde_json::Value =
            serde_json::from_slice(&render(Format::Asff, &m, &OutputOptions::default(), false).unwrap()).unwrap();
        for f in asff.as_array().unwrap() {
            let second = f["AwsAccountId"].as_str().unwrap().starts_with('9');
            assert_eq!(f["Resources"][0]["Region"], if second { "eu-west-1" } else { "us-east-1" });
            assert_eq!(f["CreatedAt"], if second { "2026-11-28T11:00:00Z" } else { "2026-11-28T12:00:00Z" });
        }
        // Read back, the merged report writes every export the same again, and merges again (nested merges).
        let again = reloaded(&m);
        for format in FORMATS {
            assert_eq!(
                render(format, &again, &OutputOptions::default(), false).unwrap(),
                render(format, &m, &OutputOptions::default(), false).unwrap(),
                "{format:?}"
            );
        }
        let nested = merge(vec![("m.json".into(), again)]).unwrap().report;
        assert_eq!(json_bytes(&nested).unwrap(), json_bytes(&m).unwrap());
        // A merged report whose organizations do not account for its accounts is refused.
        let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = json.clone();
            edit(&mut v);
            match from_slice(&serde_json::to_vec(&v).unwrap()) {
                Ok(_) => panic!("accepted"),
                Err(e) => format!("{e:#}"),
            }
        };
        let err = refused(&|v| v["run"]["organizations"] = serde_json::json!([]));
        assert!(err.contains("a merged report without run.organizations"), "{err}");
        let err = refused(&|v| v["accounts"][0]["organization_id"] = "o-nowhere".into());
        assert!(err.contains("accounts[] and run.organizations[] do not line up"), "{err}");
    }

    #[test]
    fn reports_that_cannot_be_read_back_are_refused_with_the_reason() {
        let good: serde_json::Value = serde_json::from_slice(&json_bytes(&report()).unwrap()).unwrap();
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit); 7] = [
            ("schema_version 2", |v| v["schema_version"] = 2.into()),
            ("fingerprint_scheme", |v| v["run"]["fingerprint_scheme"] = "v0".into()),
            ("not a complete keyaudit JSON report (missing field `dormant_days`", |v| {
                v["run"].as_object_mut().unwrap().remove("dormant_days");
            }),
            ("no keys_total", |v| {
                v["accounts"][0].as_object_mut().unwrap().remove("keys_total");
            }),
            ("does not match the finding's fields", |v| {
                v["findings"][0]["user_arn"] = "arn:aws:iam::000000000002:user/someone-else".into()
            }),
            ("is unknown to this keyaudit", |v| v["run"]["rules"][0]["id"] = "KA-IAM-999".into()),
            ("not a keyaudit JSON report", |v| v["tool"]["name"] = "other".into()),
        ];
        for (expected, edit) in cases {
            let mut v = good.clone();
            edit(&mut v);
            let Err(err) = from_slice(&serde_json::to_vec(&v).unwrap()) else { panic!("{expected}: accepted") };
            let err = format!("{err:#}");
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
