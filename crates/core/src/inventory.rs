//! What the scanner collects from one account: the IAM credential report, parsed into typed rows, optionally
//! enriched with access key ids from `ListAccessKeys`.

use jiff::Timestamp;

use crate::ids::AccessKeyId;

/// The user name AWS gives the root user's row in the credential report.
pub const ROOT_USER_NAME: &str = "<root_account>";

/// One account's collected IAM data.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountInventory {
    /// When AWS generated the credential report the data comes from (AWS reuses a report for up to 4 hours).
    pub report_generated_at: Option<Timestamp>,
    /// One entry per credential-report row (the root user included when AWS lists it).
    pub users: Vec<CredentialUser>,
}

/// One row of the credential report.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialUser {
    /// The IAM user name, or [`ROOT_USER_NAME`] for the root user.
    pub user_name: String,
    /// The user's ARN (`arn:aws:iam::{account}:root` for the root user).
    pub arn: String,
    /// The key slots that hold a key (0, 1 or 2 entries, in slot order).
    pub keys: Vec<KeySlotRecord>,
}

impl CredentialUser {
    /// Whether this row is the account's root user.
    pub fn is_root(&self) -> bool {
        self.user_name == ROOT_USER_NAME
    }
}

/// Which of the report's two access-key columns a key sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeySlot {
    /// `access_key_1_*`.
    One,
    /// `access_key_2_*`.
    Two,
}

impl KeySlot {
    /// 1 or 2, as in the report's column names.
    pub fn number(self) -> u8 {
        match self {
            KeySlot::One => 1,
            KeySlot::Two => 2,
        }
    }
}

/// Whether a key can be used to sign requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Deactivated (can be re-activated).
    Inactive,
}

impl KeyStatus {
    /// `active` or `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "inactive",
        }
    }
}

/// One existing access key as the credential report describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySlotRecord {
    /// The report column pair the key sits in.
    pub slot: KeySlot,
    /// `access_key_N_active`.
    pub status: KeyStatus,
    /// `access_key_N_last_rotated`: the key's creation or most recent re-activation, per AWS.
    pub last_rotated: Timestamp,
    /// `access_key_N_last_used_date`, when AWS has one.
    pub last_used_at: Option<Timestamp>,
    /// `access_key_N_last_used_service`, when AWS has one.
    pub last_used_service: Option<String>,
    /// `access_key_N_last_used_region`, when AWS has one.
    pub last_used_region: Option<String>,
    /// The key id, once matched from `ListAccessKeys` (the report itself has no key ids).
    pub access_key_id: Option<AccessKeyId>,
    /// `CreateDate` from `ListAccessKeys`, once matched (never changes, unlike `last_rotated`).
    pub created_at: Option<Timestamp>,
}

impl KeySlotRecord {
    /// A key known only from its report columns (no last use, no id yet).
    pub fn new(slot: KeySlot, status: KeyStatus, last_rotated: Timestamp) -> Self {
        Self {
            slot,
            status,
            last_rotated,
            last_used_at: None,
            last_used_service: None,
            last_used_region: None,
            access_key_id: None,
            created_at: None,
        }
    }
}

/// One key as `ListAccessKeys` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedKey {
    /// The key id.
    pub access_key_id: AccessKeyId,
    /// Active or inactive.
    pub status: KeyStatus,
    /// `CreateDate`.
    pub created_at: Timestamp,
}

/// Attaches key ids from `ListAccessKeys` to a user's report slots.
///
/// The report has no key ids and `ListAccessKeys` has no slot numbers, so keys are matched by evidence, never by
/// guess: first a key whose status matches and whose `CreateDate` equals the slot's `last_rotated` to the second
/// (the report's precision); then, for slots still open, the only remaining key with the slot's status. A slot
/// that stays ambiguous keeps `access_key_id: None` rather than a possibly wrong id. Returns how many slots
/// stayed unmatched.
pub fn attach_key_ids(slots: &mut [KeySlotRecord], listed: &[ListedKey]) -> usize {
    let mut used = vec![false; listed.len()];
    for slot in slots.iter_mut() {
        let exact = listed.iter().enumerate().find(|(i, k)| {
            !used[*i] && k.status == slot.status && k.created_at.as_second() == slot.last_rotated.as_second()
        });
        if let Some((i, key)) = exact {
            used[i] = true;
            set_key(slot, key);
        }
    }
    let open: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].access_key_id.is_none()).collect();
    for &i in &open {
        let status = slots[i].status;
        let open_same_status = open.iter().filter(|&&j| slots[j].status == status).count();
        let candidates: Vec<usize> = (0..listed.len()).filter(|&k| !used[k] && listed[k].status == status).collect();
        if open_same_status == 1 && candidates.len() == 1 {
            used[candidates[0]] = true;
            set_key(&mut slots[i], &listed[candidates[0]]);
        }
    }
    slots.iter().filter(|s| s.access_key_id.is_none()).count()
}

fn set_key(slot: &mut KeySlotRecord, key: &ListedKey) {
    slot.access_key_id = Some(key.access_key_id.clone());
    slot.created_at = Some(key.created_at);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn slot(slot: KeySlot, status: KeyStatus, last_rotated: &str) -> KeySlotRecord {
        KeySlotRecord::new(slot, status, ts(last_rotated))
    }

    fn key(id: &str, status: KeyStatus, created: &str) -> ListedKey {
        ListedKey { access_key_id: AccessKeyId::parse(id).unwrap(), status, created_at: ts(created) }
    }

    #[test]
    fn keys_match_slots_by_creation_time_to_the_second() {
        let mut slots = vec![
            slot(KeySlot::One, KeyStatus::Active, "2026-01-01T00:00:00Z"),
            slot(KeySlot::Two, KeyStatus::Active, "2026-05-01T00:00:00Z"),
        ];
        let listed = [
            key("AKIA0000000000000002", KeyStatus::Active, "2026-05-01T00:00:00.734Z"),
            key("AKIA0000000000000001", KeyStatus::Active, "2026-01-01T00:00:00.120Z"),
        ];
        assert_eq!(attach_key_ids(&mut slots, &listed), 0);
        assert_eq!(slots[0].access_key_id.as_ref().unwrap().as_str(), "AKIA0000000000000001");
        assert_eq!(slots[1].access_key_id.as_ref().unwrap().as_str(), "AKIA0000000000000002");
        assert_eq!(slots[1].created_at, Some(ts("2026-05-01T00:00:00.734Z")));
    }

    #[test]
    fn a_reactivated_key_matches_by_status_when_it_is_the_only_candidate() {
        // last_rotated moved on re-activation, so CreateDate no longer equals it.
        let mut slots = vec![
            slot(KeySlot::One, KeyStatus::Active, "2026-03-01T00:00:00Z"),
            slot(KeySlot::Two, KeyStatus::Inactive, "2026-04-01T00:00:00Z"),
        ];
        let listed = [
            key("AKIA0000000000000001", KeyStatus::Active, "2025-01-01T00:00:00Z"),
            key("AKIA0000000000000002", KeyStatus::Inactive, "2026-04-01T00:00:00Z"),
        ];
        assert_eq!(attach_key_ids(&mut slots, &listed), 0);
        assert_eq!(slots[0].access_key_id.as_ref().unwrap().as_str(), "AKIA0000000000000001");
        assert_eq!(slots[1].access_key_id.as_ref().unwrap().as_str(), "AKIA0000000000000002");
    }

    #[test]
    fn ambiguous_slots_stay_without_a_key_id() {
        let mut slots = vec![
            slot(KeySlot::One, KeyStatus::Active, "2026-03-01T00:00:00Z"),
            slot(KeySlot::Two, KeyStatus::Active, "2026-04-01T00:00:00Z"),
        ];
        let listed = [
            key("AKIA0000000000000001", KeyStatus::Active, "2025-01-01T00:00:00Z"),
            key("AKIA0000000000000002", KeyStatus::Active, "2025-02-01T00:00:00Z"),
        ];
        assert_eq!(attach_key_ids(&mut slots, &listed), 2);
        assert!(slots.iter().all(|s| s.access_key_id.is_none()));
    }

    #[test]
    fn a_key_deleted_since_the_report_leaves_its_slot_unmatched() {
        let mut slots = vec![slot(KeySlot::One, KeyStatus::Active, "2026-03-01T00:00:00Z")];
        assert_eq!(attach_key_ids(&mut slots, &[]), 1);
    }
}
