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
    #[error("invalid setting {name}: {expected}")]
    InvalidSetting {
        /// The setting's name as the user writes it (e.g. `max-age-days`).
        name: &'static str,
        /// What was expected instead.
        expected: String,
    },
}
