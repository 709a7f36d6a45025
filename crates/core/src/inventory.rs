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
    /// Who owns the user, from its tags, once looked up (`iam:ListUserTags`).
    pub owner: Option<Owner>,
}

/// A user's owner, from the first of the owner tag keys it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The tag's value (a person, an e-mail address, a team).
    pub value: String,
    /// The tag key it came from.
    pub tag: String,
}

impl Owner {
    /// The first tag among `tag_keys` (in that order of preference, case-sensitive as IAM tags are) that the
    /// user carries with a non-empty value.
    pub fn from_tags(tags: &[(String, String)], tag_keys: &[String]) -> Option<Owner> {
        tag_keys.iter().find_map(|wanted| {
            tags.iter()
                .find(|(k, v)| k == wanted && !v.trim().is_empty())
                .map(|(k, v)| Owner { value: v.trim().to_owned(), tag: k.clone() })
        })
    }
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

    /// Parses [`KeyStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [KeyStatus::Active, KeyStatus::Inactive].into_iter().find(|v| v.as_str() == s)
    }
}

/// What `ListAccessKeys`, read after the credential report was generated, says changed about a key since then.
///
/// AWS reuses a credential report for up to 4 hours, so a key fixed in that window still looks stale in it.
/// keyaudit lists the keys of every user with a non-passing key anyway (to attach key ids), and that listing
/// is fresher evidence: the finding follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyChange {
    /// Active in the report, inactive now.
    Deactivated,
    /// In the report, but `ListAccessKeys` lists no key that can be it: deleted since.
    Deleted,
}

impl KeyChange {
    /// `deactivated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyChange::Deactivated => "deactivated",
            KeyChange::Deleted => "deleted",
        }
    }

    /// Parses [`KeyChange::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [KeyChange::Deactivated, KeyChange::Deleted].into_iter().find(|v| v.as_str() == s)
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
    /// What changed since the report, when `ListAccessKeys` proved it.
    pub change: Option<KeyChange>,
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
            change: None,
        }
    }

    /// The key's status as last seen: the report's, unless `ListAccessKeys` showed it deactivated since.
    pub fn current_status(&self) -> KeyStatus {
        match self.change {
            Some(KeyChange::Deactivated) => KeyStatus::Inactive,
            _ => self.status,
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

/// What matching a user's `ListAccessKeys` answer to its report slots found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyMatch {
    /// Slots that got a key id.
    pub matched: usize,
    /// Slots whose key is gone (`KeyChange::Deleted`).
    pub deleted: usize,
    /// Slots left without an id because more than one listed key could be theirs.
    pub ambiguous: usize,
}

/// Attaches key ids from `ListAccessKeys` to a user's report slots, and records what changed since the report.
///
/// The report has no key ids and `ListAccessKeys` has no slot numbers, so keys are matched by evidence only.
/// A listed key can be a slot's key only if its `CreateDate` is no later than the slot's `last_rotated`
/// (creation or re-activation) and no later than the report's `generated_at`, both to the second (the report's
/// precision): a key created after the report cannot be in it. Within that:
/// 1. a slot takes the one key whose `CreateDate` equals its `last_rotated` to the second;
/// 2. a slot still open takes the only remaining candidate, if no other open slot could take it too;
/// 3. a slot with no remaining candidate at all held a key that `ListAccessKeys` no longer lists: deleted.
///
/// A matched key that is inactive now while the report said active was deactivated since. A slot that stays
/// ambiguous keeps `access_key_id: None` rather than a possibly wrong id. A key re-activated since the report
/// keeps the report's status: its new `last_rotated` is not known before the next report.
pub fn attach_key_ids(slots: &mut [KeySlotRecord], listed: &[ListedKey], generated_at: Option<Timestamp>) -> KeyMatch {
    let can_be = |slot: &KeySlotRecord, key: &ListedKey| {
        let created = key.created_at.as_second();
        created <= slot.last_rotated.as_second() && generated_at.is_none_or(|g| created <= g.as_second())
    };
    let mut owner: Vec<Option<usize>> = vec![None; listed.len()];
    for (s, slot) in slots.iter().enumerate() {
        let mut exact = (0..listed.len())
            .filter(|&k| can_be(slot, &listed[k]) && listed[k].created_at.as_second() == slot.last_rotated.as_second());
        if let (Some(k), None) = (exact.next(), exact.next())
            && owner[k].is_none()
        {
            owner[k] = Some(s);
        }
    }
    let is_open = |owner: &[Option<usize>], s: usize| !owner.contains(&Some(s));
    let candidates = |owner: &[Option<usize>], s: usize| -> Vec<usize> {
        (0..listed.len()).filter(|&k| owner[k].is_none() && can_be(&slots[s], &listed[k])).collect()
    };
    for s in 0..slots.len() {
        if !is_open(&owner, s) {
            continue;
        }
        if let [k] = candidates(&owner, s)[..] {
            let contested = (0..slots.len()).any(|o| o != s && is_open(&owner, o) && can_be(&slots[o], &listed[k]));
            if !contested {
                owner[k] = Some(s);
            }
        }
    }
    let mut result = KeyMatch::default();
    let deleted: Vec<bool> = (0..slots.len()).map(|s| is_open(&owner, s) && candidates(&owner, s).is_empty()).collect();
    for (k, s) in owner.iter().enumerate() {
        if let Some(s) = *s {
            let (slot, key) = (&mut slots[s], &listed[k]);
            slot.access_key_id = Some(key.access_key_id.clone());
            slot.created_at = Some(key.created_at);
            if slot.status == KeyStatus::Active && key.status == KeyStatus::Inactive {
                slot.change = Some(KeyChange::Deactivated);
            }
            result.matched += 1;
        }
    }
    for (slot, gone) in slots.iter_mut().zip(deleted) {
        if gone {
            slot.change = Some(KeyChange::Deleted);
            result.deleted += 1;
        } else if slot.access_key_id.is_none() {
            result.ambiguous += 1;
        }
    }
    result
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

    fn ids(slots: &[KeySlotRecord]) -> Vec<Option<&str>> {
        slots.iter().map(|s| s.access_key_id.as_ref().map(AccessKeyId::as_str)).collect()
    }

    fn changes(slots: &[KeySlotRecord]) -> Vec<Option<KeyChange>> {
        slots.iter().map(|s| s.change).collect()
    }

    const OLD: &str = "AKIA0000000000000OLD";
    const NEW: &str = "AKIA0000000000000NEW";
    /// The report was generated at noon; it shows OLD, created 200 days earlier, active.
    const GENERATED: &str = "2026-11-28T12:00:00Z";
    const OLD_CREATED: &str = "2026-05-12T12:00:00Z";

    fn cached_report_slot() -> Vec<KeySlotRecord> {
        vec![slot(KeySlot::One, KeyStatus::Active, OLD_CREATED)]
    }

    #[test]
    fn the_owner_is_the_first_owner_tag_present_in_the_order_given() {
        let tags =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        let keys: Vec<String> = ["owner", "Owner", "email", "team"].map(str::to_owned).to_vec();
        let t = tags(&[("team", "payments"), ("email", "ana@example.com"), ("cost-center", "42")]);
        assert_eq!(Owner::from_tags(&t, &keys), Some(Owner { value: "ana@example.com".into(), tag: "email".into() }));
        assert_eq!(
            Owner::from_tags(&tags(&[("owner", "  "), ("team", "x")]), &keys).unwrap().tag,
            "team",
            "blank values skip"
        );
        assert_eq!(Owner::from_tags(&tags(&[("OWNER", "x")]), &keys), None, "tag keys are case-sensitive");
        assert_eq!(Owner::from_tags(&t, &[]), None);
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
        let m = attach_key_ids(&mut slots, &listed, Some(ts(GENERATED)));
        assert_eq!(m, KeyMatch { matched: 2, deleted: 0, ambiguous: 0 });
        assert_eq!(ids(&slots), [Some("AKIA0000000000000001"), Some("AKIA0000000000000002")]);
        assert_eq!(slots[1].created_at, Some(ts("2026-05-01T00:00:00.734Z")));
        assert_eq!(changes(&slots), [None, None]);
    }

    #[test]
    fn a_reactivated_key_matches_when_it_is_the_only_key_old_enough() {
        // last_rotated moved on re-activation, so CreateDate no longer equals it; the other key is newer.
        let mut slots = vec![
            slot(KeySlot::One, KeyStatus::Active, "2026-03-01T00:00:00Z"),
            slot(KeySlot::Two, KeyStatus::Inactive, "2026-04-01T00:00:00Z"),
        ];
        let listed = [
            key("AKIA0000000000000001", KeyStatus::Active, "2025-01-01T00:00:00Z"),
            key("AKIA0000000000000002", KeyStatus::Inactive, "2026-04-01T00:00:00Z"),
        ];
        assert_eq!(attach_key_ids(&mut slots, &listed, Some(ts(GENERATED))).matched, 2);
        assert_eq!(ids(&slots), [Some("AKIA0000000000000001"), Some("AKIA0000000000000002")]);
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
        let m = attach_key_ids(&mut slots, &listed, Some(ts(GENERATED)));
        assert_eq!(m, KeyMatch { matched: 0, deleted: 0, ambiguous: 2 });
        assert_eq!(ids(&slots), [None, None]);
        assert_eq!(changes(&slots), [None, None]);
    }

    /// Issue "Never wrong, never lost", item 1: the user rotated after the cached report (created NEW,
    /// deactivated OLD). NEW must never be attached to OLD's stale slot; OLD is reported deactivated.
    #[test]
    fn a_rotation_after_the_report_never_attaches_the_new_key_to_the_old_slot() {
        let mut slots = cached_report_slot();
        let listed = [key(OLD, KeyStatus::Inactive, OLD_CREATED), key(NEW, KeyStatus::Active, "2026-11-28T12:30:00Z")];
        let m = attach_key_ids(&mut slots, &listed, Some(ts(GENERATED)));
        assert_eq!(m, KeyMatch { matched: 1, deleted: 0, ambiguous: 0 });
        assert_eq!(ids(&slots), [Some(OLD)]);
        assert_eq!(changes(&slots), [Some(KeyChange::Deactivated)]);
        assert_eq!(slots[0].current_status(), KeyStatus::Inactive);
    }

    #[test]
    fn a_key_deleted_since_the_report_is_recorded_as_deleted() {
        let mut slots = cached_report_slot();
        let m = attach_key_ids(&mut slots, &[], Some(ts(GENERATED)));
        assert_eq!(m, KeyMatch { matched: 0, deleted: 1, ambiguous: 0 });
        assert_eq!(changes(&slots), [Some(KeyChange::Deleted)]);
    }

    /// Deleted OLD, created NEW: the only active key is NEW, but it is younger than the slot, so it is not it.
    #[test]
    fn a_key_created_after_the_slot_is_never_attached_to_it() {
        let mut slots = cached_report_slot();
        let listed = [key(NEW, KeyStatus::Active, "2026-11-28T12:30:00Z")];
        let m = attach_key_ids(&mut slots, &listed, Some(ts(GENERATED)));
        assert_eq!(m, KeyMatch { matched: 0, deleted: 1, ambiguous: 0 });
        assert_eq!(ids(&slots), [None]);
    }

    /// A slot re-activated after its creation has last_rotated later than CreateDate; a key created after the
    /// report was generated cannot be in the report, even though it is older than that last_rotated.
    #[test]
    fn a_key_created_after_the_report_was_generated_is_never_attached() {
        let mut slots = vec![slot(KeySlot::One, KeyStatus::Active, "2026-11-28T13:00:00Z")];
        let listed = [key(NEW, KeyStatus::Active, "2026-11-28T12:00:01Z")];
        let m = attach_key_ids(&mut slots, &listed, Some(ts(GENERATED)));
        assert_eq!(m.matched, 0);
        assert_eq!(ids(&slots), [None]);
        // Without a generation time only last_rotated bounds it, and the key may be the slot's.
        let mut slots = vec![slot(KeySlot::One, KeyStatus::Active, "2026-11-28T13:00:00Z")];
        assert_eq!(attach_key_ids(&mut slots, &listed, None).matched, 1);
    }

    #[test]
    fn one_of_two_slots_deleted_and_the_other_matched() {
        let mut slots = vec![
            slot(KeySlot::One, KeyStatus::Active, "2026-01-01T00:00:00Z"),
            slot(KeySlot::Two, KeyStatus::Active, "2026-06-01T00:00:00Z"),
        ];
        let listed = [
            key("AKIA0000000000000002", KeyStatus::Active, "2026-06-01T00:00:00Z"),
            key(NEW, KeyStatus::Active, "2026-11-28T12:30:00Z"),
        ];
        let m = attach_key_ids(&mut slots, &listed, Some(ts(GENERATED)));
        assert_eq!(m, KeyMatch { matched: 1, deleted: 1, ambiguous: 0 });
        assert_eq!(ids(&slots), [None, Some("AKIA0000000000000002")]);
        assert_eq!(changes(&slots), [Some(KeyChange::Deleted), None]);
    }

    #[test]
    fn a_key_reactivated_since_the_report_keeps_the_reports_status() {
        let mut slots = vec![slot(KeySlot::One, KeyStatus::Inactive, OLD_CREATED)];
        let listed = [key(OLD, KeyStatus::Active, OLD_CREATED)];
        attach_key_ids(&mut slots, &listed, Some(ts(GENERATED)));
        assert_eq!(ids(&slots), [Some(OLD)]);
        assert_eq!(slots[0].change, None);
        assert_eq!(slots[0].current_status(), KeyStatus::Inactive);
    }

    mod properties {
        use std::collections::HashSet;

        use proptest::prelude::*;

        use super::*;

        const BASE: i64 = 1_700_000_000;

        fn slot_strategy() -> impl Strategy<Value = (bool, i64)> {
            (any::<bool>(), 0..400i64)
        }

        fn key_strategy() -> impl Strategy<Value = (bool, i64)> {
            (any::<bool>(), 0..500i64)
        }

        proptest! {
            /// Whatever the report and the listing say, a key id is attached only where the evidence allows it:
            /// CreateDate no later than the slot's last_rotated and the report's generation, each key at most
            /// once, and a slot is called deleted only when no listed key could be it.
            #[test]
            fn key_ids_are_attached_only_where_the_evidence_allows(
                slots in proptest::collection::vec(slot_strategy(), 0..=2),
                keys in proptest::collection::vec(key_strategy(), 0..=3),
                generated in proptest::option::of(0..500i64),
            ) {
                let t = |hours: i64| Timestamp::from_second(BASE + hours * 3600).unwrap();
                let mut records: Vec<KeySlotRecord> = slots
                    .iter()
                    .zip([KeySlot::One, KeySlot::Two])
                    .map(|((active, rotated), slot)| {
                        let status = if *active { KeyStatus::Active } else { KeyStatus::Inactive };
                        KeySlotRecord::new(slot, status, t(*rotated))
                    })
                    .collect();
                let listed: Vec<ListedKey> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, (active, created))| ListedKey {
                        access_key_id: AccessKeyId::parse(&format!("AKIA{i:016}")).unwrap(),
                        status: if *active { KeyStatus::Active } else { KeyStatus::Inactive },
                        created_at: t(*created),
                    })
                    .collect();
                let generated_at = generated.map(t);
                let found = attach_key_ids(&mut records, &listed, generated_at);

                let mut seen = HashSet::new();
                for r in &records {
                    if let Some(id) = &r.access_key_id {
                        prop_assert!(seen.insert(id.clone()), "{id} attached twice");
                        let key = listed.iter().find(|k| &k.access_key_id == id).unwrap();
                        prop_assert!(key.created_at <= r.last_rotated, "a key newer than its slot");
                        prop_assert!(generated_at.is_none_or(|g| key.created_at <= g), "a key newer than the report");
                        prop_assert_eq!(r.created_at, Some(key.created_at));
                        prop_assert_ne!(r.change, Some(KeyChange::Deleted));
                    }
                    if r.change == Some(KeyChange::Deleted) {
                        let possible = listed.iter().any(|k| {
                            k.created_at <= r.last_rotated
                                && generated_at.is_none_or(|g| k.created_at <= g)
                                && !records.iter().any(|o| o.access_key_id.as_ref() == Some(&k.access_key_id))
                        });
                        prop_assert!(!possible, "called deleted while a listed key could be it");
                    }
                }
                prop_assert_eq!(found.matched + found.deleted + found.ambiguous, records.len());
            }
        }
    }
}
