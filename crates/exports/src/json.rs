//! The versioned JSON report (`schema_version` 1): the contract's types, their conversions and the JSON Schema live
//! in `keyaudit-report` (crates/report), so that the writer and every reader of saved reports share them.

use crate::Result;
use keyaudit_core::report::Report;

pub fn render(report: &Report) -> Result<Vec<u8>> {
    Ok(keyaudit_report::to_json(report)?)
}
#[cfg(test)]
mod tests {
    use keyaudit_core::rules::builtin;

    use super::*;
    use crate::fixture::{fixture, report};

    #[test]
    fn json_snapshot() {
        let value: serde_json::Value = serde_json::from_slice(&render(&report()).unwrap()).unwrap();
        insta::assert_json_snapshot!(value, { ".tool.version" => "[version]" });
    }

    /// Issue "Findings for many rules": `--rules KA-IAM-001` reproduces the one-rule report exactly; what the
    /// multi-rule model added is additive (these fields), nothing else moved.
    #[test]
    fn ka_iam_001_alone_reproduces_the_single_rule_report() {
        let only = builtin().select(&["KA-IAM-001".to_owned()], &[]).unwrap();
        let mut value: serde_json::Value = serde_json::from_slice(&render(&fixture(only, false)).unwrap()).unwrap();
        for f in value["findings"].as_array_mut().unwrap() {
            for added in [
                "subject",
                "title",
                "rule_name",
                "evidence",
                "last_used_service",
                "last_used_region",
                "age_source",
                "usage",
                "action",
                "action_reason",
                "owner",
                "owner_tag",
                // Issue "Scheduled runs": exceptions, baselines, and fingerprints that no longer depend on
                // whether the key id was looked up (the identity changed on purpose).
                "suppression",
                "baseline_state",
                "baseline_verdict",
                "since_last_run",
                // Issue "Owners hear about their keys": deadlines.
                "first_seen",
                "due",
                "fingerprint",
                // Issue "Deploy and operate": merged reports tag findings with their organization.
                "organization_id",
            ] {
                assert!(f.as_object_mut().unwrap().remove(added).is_some(), "{added}");
            }
        }
        value["summary"].as_object_mut().unwrap().remove("findings_by_rule").unwrap();
        value["summary"].as_object_mut().unwrap().remove("actions").unwrap();
        value["summary"].as_object_mut().unwrap().remove("suppressed").unwrap();
        value["summary"].as_object_mut().unwrap().remove("since_baseline").unwrap();
        value["summary"]["keys"].as_object_mut().unwrap().remove("suppressed").unwrap();
        for added in ["resolved", "suppressions", "baseline"] {
            value.as_object_mut().unwrap().remove(added).unwrap();
        }
        value["run"].as_object_mut().unwrap().remove("fingerprint_scheme").unwrap();
        value["run"].as_object_mut().unwrap().remove("discovery").unwrap();
        for a in value["accounts"].as_array_mut().unwrap() {
            a.as_object_mut().unwrap().remove("tag_calls").unwrap();
            a.as_object_mut().unwrap().remove("enrichment").unwrap();
        }
        value["run"].as_object_mut().unwrap().remove("unused_days").unwrap();
        for added in ["dormant_days", "organizations", "grace_days"] {
            value["run"].as_object_mut().unwrap().remove(added).unwrap();
        }
        for a in value["accounts"].as_array_mut().unwrap() {
            for added in ["organization_id", "keys_total", "keys_active"] {
                a.as_object_mut().unwrap().remove(added).unwrap();
            }
        }
        value["tool"]["version"] = "[version]".into();
        let mut before: serde_json::Value =
            serde_json::from_str(include_str!("testdata/ka-iam-001-report.json")).unwrap();
        for f in before["findings"].as_array_mut().unwrap() {
            f.as_object_mut().unwrap().remove("fingerprint").unwrap();
        }
        assert_eq!(value, before);
    }
}
