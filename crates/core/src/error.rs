//! Errors raised when input cannot be turned into a valid domain value.

/// A value that does not satisfy the domain's invariants (a malformed identifier, an impossible setting).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// An AWS account id is not exactly 12 ASCII digits.
    #[error("invalid AWS account id {value:?}: expected exactly 12 digits (leading zeros included)")]
    InvalidAccountId {
        /// The rejected text.
        value: String,
    },
    /// An access key id is not 16 to 128 upper-case letters and digits.
    #[error("invalid access key id {value:?}: expected 16 to 128 upper-case letters and digits")]
    InvalidAccessKeyId {
        /// The rejected text.
        value: String,
    },
    /// A rule setting is outside its allowed range.
    #[error("--{name}: {expected}")]
    InvalidSetting {
        /// The setting's name as the user writes it (e.g. `max-age-days`).
        name: &'static str,
        /// What was expected instead.
        expected: String,
    },
    /// `--rules` or `--skip-rules` names no rule.
    #[error("--{flag} {value:?}: no rule has this id or name; known rules: {known}")]
    UnknownRule {
        /// `rules` or `skip-rules`.
        flag: &'static str,
        /// The value given.
        value: String,
        /// Every rule's id and name.
        known: String,
    },
    /// A pattern (a suppression's `user_arn`) is malformed.
    #[error("{value:?}: {problem}")]
    InvalidPattern {
        /// The rejected pattern.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The rule selection leaves no rule to run.
    #[error("--rules / --skip-rules leave no rule to run")]
    NoRules,
}
