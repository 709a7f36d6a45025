//! Rules over IAM access keys, all answered by the credential report (and the key ids keyaudit looks up).

pub mod multiple_active_keys;
pub mod root_access_key;
pub mod stale_access_key;
pub mod unused_access_key;

use jiff::Timestamp;

use crate::finding::KeyFacts;
use crate::inventory::KeyChange;

/// The sentence for a key that `ListAccessKeys` shows deactivated or deleted since the (cached) credential
/// report, shared by every key rule; `None` when nothing changed.
pub(crate) fn changed_since_report(who: &str, key: &KeyFacts, generated_at: Option<Timestamp>) -> Option<String> {
    let report =
        generated_at.map_or_else(|| "the credential report".to_owned(), |g| format!("the credential report of {g}"));
    let days = key.age_days();
    match key.change? {
        KeyChange::Deleted => Some(format!(
            "{who} (last rotated {days} days ago) was deleted after {report} was generated: ListAccessKeys no longer \
             lists it"
        )),
        KeyChange::Deactivated => Some(format!(
            "{who} (last rotated {days} days ago) was deactivated after {report} was generated; the control covers \
             active keys only"
        )),
    }
}
