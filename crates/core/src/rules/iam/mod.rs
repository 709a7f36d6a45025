//! Rules over IAM access keys, all answered by the credential report (and the key ids keyaudit looks up).

pub mod multiple_active_keys;
pub mod root_access_key;
pub mod stale_access_key;
pub mod unused_access_key;
