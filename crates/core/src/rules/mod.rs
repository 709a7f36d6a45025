//! Rules: metadata, the [`Rule`] trait and the registry of built-in rules.
//!
//! Each rule lives in its own file under a service folder, with its user documentation beside it in a
//! Markdown file of the same name. Registering a rule takes one line in [`builtin`].

use crate::ModelError;

pub mod iam;
pub mod meta;
mod rule;

pub use meta::{CisRef, RuleMeta, Severity};
pub use rule::Rule;

/// The rules a run evaluates.
pub struct RuleSet {
    rules: Vec<Box<dyn Rule>>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|r| r.meta().id)).finish()
    }
}

impl RuleSet {
    /// Iterates over the rules.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Rule> {
        self.rules.iter().map(|r| r.as_ref())
    }

    /// The metadata of every rule, in registration order.
    pub fn metas(&self) -> Vec<&'static RuleMeta> {
        self.iter().map(|r| r.meta()).collect()
    }

    /// Finds a rule by id or name (case-insensitive).
    pub fn find(&self, id_or_name: &str) -> Option<&'static RuleMeta> {
        self.metas().into_iter().find(|m| m.matches(id_or_name))
    }

    /// The rules named by `only` (all when empty) less those named by `skip`, in registration order. Each value
    /// is an id or a name; an unknown one is an error naming the flag.
    pub fn select(self, only: &[String], skip: &[String]) -> Result<RuleSet, ModelError> {
        let known = || self.metas().iter().map(|m| format!("{} ({})", m.id, m.name)).collect::<Vec<_>>().join(", ");
        for (flag, values) in [("rules", only), ("skip-rules", skip)] {
            if let Some(unknown) = values.iter().find(|v| self.find(v).is_none()) {
                return Err(ModelError::UnknownRule { flag, value: unknown.clone(), known: known() });
            }
        }
        let named = |values: &[String], m: &RuleMeta| values.iter().any(|v| m.matches(v));
        let rules: Vec<Box<dyn Rule>> = self
            .rules
            .into_iter()
            .filter(|r| (only.is_empty() || named(only, r.meta())) && !named(skip, r.meta()))
            .collect();
        if rules.is_empty() {
            return Err(ModelError::NoRules);
        }
        Ok(RuleSet { rules })
    }
}

/// Every built-in rule. One line per rule.
pub fn builtin() -> RuleSet {
    RuleSet {
        rules: vec![
            Box::new(iam::stale_access_key::StaleAccessKey),
            Box::new(iam::root_access_key::RootAccessKey),
            Box::new(iam::multiple_active_keys::MultipleActiveKeys),
            Box::new(iam::unused_access_key::UnusedAccessKey),
        ],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn registry_metadata_is_unique_and_complete() {
        let metas = builtin().metas();
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        let mut cis = HashSet::new();
        for m in &metas {
            assert!(ids.insert(m.id), "duplicate id {}", m.id);
            assert!(names.insert(m.name), "duplicate name {}", m.name);
            assert!(m.id.starts_with("KA-") && m.id.len() == 10, "id {} is not KA-XXX-NNN", m.id);
            assert!(m.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "name {} is not kebab-case", m.name);
            assert!(!m.title.starts_with("Ensure"), "title of {} states a command, not the passing state", m.id);
            assert!(!m.remediation.trim().is_empty() && !m.docs.trim().is_empty(), "{} lacks docs", m.id);
            assert!(!m.description.trim().is_empty(), "{} lacks a description", m.id);
            assert!(m.docs.starts_with(&format!("# {} {}", m.id, m.name)), "{}'s docs open with its id and name", m.id);
            for r in m.cis {
                assert!(cis.insert((r.version, r.control)), "{} repeats CIS {} {}", m.id, r.version, r.control);
            }
        }
        let listed: Vec<&str> = metas.iter().map(|m| m.id).collect();
        assert_eq!(
            listed,
            ["KA-IAM-001", "KA-IAM-002", "KA-IAM-003", "KA-IAM-004"],
            "rule ids are stable forever: review any change to this list"
        );
    }

    #[test]
    fn rules_are_found_by_id_or_name() {
        let rules = builtin();
        assert_eq!(rules.find("ka-iam-001").unwrap().name, "stale-access-key");
        assert_eq!(rules.find("stale-access-key").unwrap().id, "KA-IAM-001");
        assert!(rules.find("KA-IAM-999").is_none());
    }

    #[test]
    fn rules_are_selected_by_id_or_name_and_unknown_ones_are_errors() {
        let ids = |set: RuleSet| set.metas().iter().map(|m| m.id).collect::<Vec<_>>();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(ids(builtin().select(&[], &[]).unwrap()).len(), 4, "every rule runs by default");
        assert_eq!(ids(builtin().select(&s(&["KA-IAM-001"]), &[]).unwrap()), ["KA-IAM-001"]);
        assert_eq!(
            ids(builtin().select(&[], &s(&["root-access-key", "ka-iam-004"])).unwrap()),
            ["KA-IAM-001", "KA-IAM-003"]
        );
        let err = builtin().select(&[], &s(&["KA-IAM-999"])).err().unwrap();
        assert_eq!(
            err.to_string(),
            "--skip-rules \"KA-IAM-999\": no rule has this id or name; known rules: KA-IAM-001 (stale-access-key), \
             KA-IAM-002 (root-access-key), KA-IAM-003 (multiple-active-keys), KA-IAM-004 (unused-access-key)"
        );
        assert_eq!(builtin().select(&s(&["KA-IAM-001"]), &s(&["KA-IAM-001"])).err(), Some(ModelError::NoRules));
    }
}
