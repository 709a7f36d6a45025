//! What a rule is, as data: its id, name, severity, CIS references and thresholds' wording.

/// How much a failing finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Informational.
    Low,
    /// Security Hub's rating for IAM.3 and IAM.22.
    Medium,
    /// Serious.
    High,
    /// Security Hub's rating for IAM.4 (a root access key).
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A control in one version of the CIS AWS Foundations Benchmark (the numbering moves between versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CisRef {
    /// Benchmark version, e.g. `5.0.0`.
    pub version: &'static str,
    /// Control number in that version, e.g. `1.13`.
    pub control: &'static str,
}

/// Static description of a rule. Writers take every word they print about a rule from here.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleMeta {
    /// Stable id, never reused (`KA-<SERVICE>-NNN`).
    pub id: &'static str,
    /// Kebab-case name of the problem.
    pub name: &'static str,
    /// The passing state, in one line.
    pub title: &'static str,
    /// What the rule checks and how, in one or two sentences (SARIF's full description).
    pub description: &'static str,
    /// Severity of a failing finding.
    pub severity: Severity,
    /// CIS AWS Foundations references, one per benchmark version.
    pub cis: &'static [CisRef],
    /// AWS Security Hub control ids.
    pub security_hub: &'static [&'static str],
    /// AWS Config managed rule identifiers.
    pub aws_config: &'static [&'static str],
    /// Short remediation, one paragraph.
    pub remediation: &'static str,
    /// AWS's documentation of the remediation.
    pub reference_url: &'static str,
    /// Full documentation (Markdown): what, why, remediation, references.
    pub docs: &'static str,
}

impl RuleMeta {
    /// Whether `id_or_name` names this rule (case-insensitive).
    pub fn matches(&self, id_or_name: &str) -> bool {
        let v = id_or_name.trim();
        self.id.eq_ignore_ascii_case(v) || self.name.eq_ignore_ascii_case(v)
    }
}
