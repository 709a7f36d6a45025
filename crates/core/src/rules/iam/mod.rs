//! Rules over IAM data.

pub mod stale_access_key;
