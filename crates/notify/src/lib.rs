//! keyaudit-notify — owner notices, all but the sending: `notify.toml`, the messages, the state file. Depends on core
//! and config.
//!
//! `notify.toml` read and checked into core's routing
//! ([`config`]), each notice rendered from the report into its message for every channel ([`message`]), and the
//! state file of what was sent, locked, compacted and appended line by line ([`state`]). Who is told what and when
//! is core's (`keyaudit_core::notice`); the network side (SES, SNS, HTTPS webhooks) is the binary's.

use jiff::Timestamp;

pub mod config;
pub mod message;
pub mod state;

/// Why a notice could not be configured, rendered or recorded: one sentence that names the file (and line).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotifyError(String);

/// What this crate returns.
pub type Result<T> = std::result::Result<T, NotifyError>;

macro_rules! err {
    ($($arg:tt)*) => { $crate::NotifyError(format!($($arg)*)) };
}
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::err!($($arg)*)) };
}
pub(crate) use {bail, err};

impl From<serde_json::Error> for NotifyError {
    fn from(e: serde_json::Error) -> Self {
        NotifyError(e.to_string())
    }
}

/// A rotation keyaudit started, as its journals tell it: the owner's notice says where the new key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedRotation {
    /// The key being rotated.
    pub old_key: String,
    /// The key keyaudit created.
    pub new_key: String,
    /// Its secret's ARN.
    pub secret_arn: String,
    /// The date applications must use the new key by.
    pub switch_by: Timestamp,
}
