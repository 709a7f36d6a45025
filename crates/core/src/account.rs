//! An account as keyaudit knows it: its id, name, OU path, Organizations state, and how keyaudit reaches it.

use crate::ids::AccountId;

/// An Organizations account state (`State`, not the retiring `Status`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccountState {
    /// ACTIVE: the only state that is scanned.
    Active,
    /// SUSPENDED.
    Suspended,
    /// PENDING_CLOSURE.
    PendingClosure,
    /// CLOSED.
    Closed,
    /// PENDING_ACTIVATION.
    PendingActivation,
    /// A state this version does not know, kept verbatim.
    Other(String),
}

impl AccountState {
    /// Maps the API's upper-case state name.
    pub fn from_api(value: &str) -> Self {
        match value {
            "ACTIVE" => Self::Active,
            "SUSPENDED" => Self::Suspended,
            "PENDING_CLOSURE" => Self::PendingClosure,
            "CLOSED" => Self::Closed,
            "PENDING_ACTIVATION" => Self::PendingActivation,
            other => Self::Other(other.to_owned()),
        }
    }

    /// One of the non-active states AWS documents: such an account is skipped. A state this version does not
    /// know is neither active nor known to be inactive, so it is never skipped.
    pub fn is_known_inactive(&self) -> bool {
        matches!(self, Self::Suspended | Self::PendingClosure | Self::Closed | Self::PendingActivation)
    }

    /// The API's upper-case state name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::PendingClosure => "PENDING_CLOSURE",
            Self::Closed => "CLOSED",
            Self::PendingActivation => "PENDING_ACTIVATION",
            Self::Other(s) => s,
        }
    }
}

/// An account to audit, as discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account id.
    pub id: AccountId,
    /// The account name from Organizations (absent outside an organization).
    pub name: Option<String>,
    /// OU path such as `/Root/Prod/Payments` (absent outside an organization).
    pub ou_path: Option<String>,
    /// The account's state.
    pub state: AccountState,
    /// How keyaudit reaches the account.
    pub access: AccessMethod,
}

/// How an account's IAM data is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessMethod {
    /// With the caller's own credentials (the management account, the caller's account).
    CallerCredentials,
    /// Through STS AssumeRole of this role ARN.
    AssumeRole {
        /// `arn:{partition}:iam::{account}:role/{path}{name}`.
        role_arn: String,
    },
}
