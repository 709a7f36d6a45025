//! Errors of organization discovery and account access.

/// Discovery failed, or the user's filters do not match the organization.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// An `--ou` value names no OU (by id or path).
    #[error(
        "--ou {value:?} matches no organizational unit (give an id like ou-ab12-cdefgh34 or a path like /Root/Prod); known paths: {known}"
    )]
    UnknownOu {
        /// The value given.
        value: String,
        /// Some known OU paths, to help.
        known: String,
    },
    /// An `--ou` path cannot be read.
    #[error("--ou {value:?} is not a valid OU path: {problem}")]
    InvalidOuPath {
        /// The value given.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// An `--ou` path names more than one OU (possible only if sibling OUs share a name).
    #[error("--ou {value:?} names more than one organizational unit ({ids}); give the OU id instead")]
    AmbiguousOu {
        /// The value given.
        value: String,
        /// The matching OU ids.
        ids: String,
    },
    /// An `--account` value is not an account of the organization.
    #[error("--account {value} is not an account of {scope}")]
    UnknownAccount {
        /// The id given.
        value: String,
        /// The organization id, or a note that there is none.
        scope: String,
    },
    /// `--role-path` is malformed.
    #[error("--role-path {value:?} is invalid: expected a path that starts and ends with '/', such as /audit/")]
    InvalidRolePath {
        /// The value given.
        value: String,
    },
    /// An Organizations or STS call failed.
    #[error("{action} {}: {message}", code.as_deref().unwrap_or("error"))]
    Api {
        /// e.g. `organizations:ListRoots`.
        action: &'static str,
        /// AWS error code.
        code: Option<String>,
        /// The error with context (never includes credentials).
        message: String,
    },
    /// The service returned data keyaudit cannot use.
    #[error("{action} returned unusable data: {problem}")]
    BadResponse {
        /// The action.
        action: &'static str,
        /// What was wrong.
        problem: String,
    },
}

impl DiscoveryError {
    /// Whether the error is in the user's input (a filter that does not fit the organization): exit code 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DiscoveryError::UnknownOu { .. }
                | DiscoveryError::InvalidOuPath { .. }
                | DiscoveryError::AmbiguousOu { .. }
                | DiscoveryError::UnknownAccount { .. }
                | DiscoveryError::InvalidRolePath { .. }
        )
    }

    /// Whether AWS refused the call for want of a permission.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, DiscoveryError::Api { code, .. }
            if keyaudit_core::aws_error::classify(code.as_deref()) == keyaudit_core::aws_error::ErrorClass::AccessDenied)
    }
}
