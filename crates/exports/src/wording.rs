//! Wording and mappings shared by the exports: compliance tags and requirements from the rule metadata, the
//! export severity (written once for every format), sentences, and outside text made safe to show.

use keyaudit_core::eval::{Finding, Verdict};
use keyaudit_core::rules::{RuleMeta, Severity};

/// Every tag a rule carries in exports: one per CIS benchmark version, Security Hub and Config references.
pub(crate) fn rule_tags(m: &RuleMeta) -> Vec<String> {
    let mut tags = vec!["security".to_owned()];
    tags.extend(m.cis.iter().map(|c| format!("CIS AWS {} {}", c.version, c.control)));
    tags.extend(m.security_hub.iter().map(|c| format!("AWS Security Hub {c}")));
    tags.extend(m.aws_config.iter().map(|c| format!("AWS Config {c}")));
    tags
}

/// Compliance requirements in the form Security Hub and OCSF consumers use.
pub(crate) fn requirements(m: &RuleMeta) -> Vec<String> {
    let mut reqs: Vec<String> =
        m.cis.iter().map(|c| format!("CIS AWS Foundations Benchmark v{}/{}", c.version, c.control)).collect();
    reqs.extend(m.security_hub.iter().map(|c| format!("AWS Security Hub {c}")));
    reqs
}

/// The severity a finding is exported with, in every format: a failing finding carries its rule's severity, a
/// warning is low, anything else informational.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportSeverity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl ExportSeverity {
    pub(crate) fn of(f: &Finding) -> Self {
        match (f.verdict, f.rule.severity) {
            (Verdict::Fail, Severity::Low) | (Verdict::Warn, _) => Self::Low,
            (Verdict::Fail, Severity::Medium) => Self::Medium,
            (Verdict::Fail, Severity::High) => Self::High,
            (Verdict::Fail, Severity::Critical) => Self::Critical,
            (Verdict::Pass | Verdict::NotApplicable | Verdict::Resolved, _) => Self::Informational,
        }
    }

    /// ASFF `Severity.Label`.
    pub(crate) fn asff(self) -> &'static str {
        match self {
            Self::Informational => "INFORMATIONAL",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }

    /// OCSF `severity_id` and `severity`.
    pub(crate) fn ocsf(self) -> (u8, &'static str) {
        match self {
            Self::Informational => (1, "Informational"),
            Self::Low => (2, "Low"),
            Self::Medium => (3, "Medium"),
            Self::High => (4, "High"),
            Self::Critical => (5, "Critical"),
        }
    }
}

/// Text as a sentence ending in a period (SARIF asks for that in messages).
pub(crate) fn sentence(text: &str) -> String {
    let t = text.trim_end();
    if t.ends_with('.') { t.to_owned() } else { format!("{t}.") }
}

/// A finding's next step, for the exports' remediation text: the triage reason when there is one, then the
/// rule's remediation.
pub(crate) fn next_step(f: &Finding) -> String {
    match &f.triage.action_reason {
        Some(reason) => format!("{}: {reason}. {}", f.triage.action.as_str(), f.rule.remediation),
        None => f.rule.remediation.to_owned(),
    }
}

pub use keyaudit_core::text::shown;
