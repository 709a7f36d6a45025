//! Evaluation: every rule of a set on one account's inventory at one `as_of`, then triage. The finding model it
//! produces is [`crate::finding`]'s (re-exported here, where it has always been).

use crate::ids::AccountId;
use crate::inventory::AccountInventory;
use crate::rules::RuleSet;

pub use crate::finding::*;

/// Evaluates every rule of the set on one account's inventory, then triages the findings (usage, action, owner).
pub fn evaluate(rules: &RuleSet, ctx: &EvalContext, account_id: &AccountId, inv: &AccountInventory) -> Vec<Finding> {
    let mut findings: Vec<Finding> = rules.iter().flat_map(|rule| rule.evaluate(ctx, account_id, inv)).collect();
    crate::triage::triage(&mut findings, inv, ctx);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use jiff::tz::TimeZone;

    use crate::ids::{AccessKeyId, Partition};
    use crate::inventory::{CredentialUser, KeySlot, KeySlotRecord, KeyStatus};
    use crate::rules::builtin;

    const ARN: &str = "arn:aws:iam::012345678901:user/alice";

    /// One of alice's keys: slot, key id, last_rotated.
    type Key<'a> = (KeySlot, Option<&'a str>, &'a str);

    /// alice's keys, evaluated by KA-IAM-001 at `as_of`.
    fn findings(keys: &[Key<'_>], as_of: &str) -> Vec<Finding> {
        let inv = AccountInventory {
            report_generated_at: None,
            users: vec![CredentialUser {
                user_name: "alice".into(),
                arn: ARN.into(),
                keys: keys
                    .iter()
                    .map(|(slot, id, rotated)| KeySlotRecord {
                        access_key_id: id.map(|k| AccessKeyId::parse(k).unwrap()),
                        ..KeySlotRecord::new(*slot, KeyStatus::Active, rotated.parse().unwrap())
                    })
                    .collect(),
                owner: None,
            }],
        };
        let ctx = EvalContext { as_of: as_of.parse().unwrap(), config: RuleConfig::default() };
        let only = builtin().select(&["KA-IAM-001".to_owned()], &[]).unwrap();
        evaluate(&only, &ctx, &AccountId::parse("012345678901").unwrap(), &inv)
    }

    /// Issue "Scheduled runs": a key keeps its fingerprint through pass, warn and fail, whether or not its id was
    /// looked up, and through the slot shift when the user's other key is deleted.
    #[test]
    fn a_key_keeps_its_fingerprint_through_verdicts_look_ups_and_slot_shifts() {
        let aws = Partition::aws();
        let (old, new) = ("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z");
        let id = Some("AKIA0000000000000001");
        let cases: [(&[Key<'_>], &str, Verdict); 4] = [
            (&[(KeySlot::One, None, old), (KeySlot::Two, None, new)], "2026-03-01T00:00:00Z", Verdict::Pass),
            (&[(KeySlot::One, None, old), (KeySlot::Two, None, new)], "2026-03-25T00:00:00Z", Verdict::Warn),
            (&[(KeySlot::One, id, old), (KeySlot::Two, None, new)], "2026-11-28T00:00:00Z", Verdict::Fail),
            // The other key (slot 1) deleted: ours moves to slot 1.
            (&[(KeySlot::One, None, new)], "2026-11-28T00:00:00Z", Verdict::Fail),
        ];
        let mut prints = Vec::new();
        for (i, (keys, as_of, verdict)) in cases.iter().enumerate() {
            let all = findings(keys, as_of);
            let ours = if i == 3 {
                &all[0]
            } else {
                all.iter().find(|f| f.key.as_ref().unwrap().last_rotated.to_string() == old).unwrap()
            };
            if i < 3 {
                assert_eq!(ours.verdict, *verdict, "case {i}");
            }
            prints.push((ours.fingerprint(&aws), all.iter().map(|f| f.fingerprint(&aws)).collect::<Vec<_>>()));
        }
        assert!(prints[..3].iter().all(|(p, _)| *p == prints[0].0), "pass, warn, fail: one key, one fingerprint");
        assert_eq!(prints[0].0.len(), 64);
        // The newer key: slot 2 in the first runs, slot 1 once the older one is gone.
        assert_eq!(prints[0].1[1], prints[3].1[0], "the slot shift keeps the newer key's fingerprint");
        assert_ne!(prints[0].1[0], prints[0].1[1], "two keys, two fingerprints");
        let other_partition = findings(&[(KeySlot::One, None, old)], "2026-11-28T00:00:00Z")[0]
            .fingerprint(&Partition::from_arn("arn:aws-cn:iam::x").unwrap());
        assert_ne!(prints[0].0, other_partition);
    }

    /// Issue "Owners hear about their keys": a deadline is the later of the first sighting and the rule's own due
    /// date, plus the grace of the rule's severity; only findings that count have one.
    #[test]
    fn a_deadline_starts_at_the_later_of_first_sighting_and_the_rules_due_date() {
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        let as_of = "2026-11-28T12:00:00Z";
        // Rotated 2026-07-01: KA-IAM-001 falls due 90 days later, on 2026-09-29T12:00:00Z.
        let base = findings(&[(KeySlot::One, None, "2026-07-01T12:00:00Z")], as_of).remove(0);
        assert_eq!(base.rule_due(), Some(ts("2026-09-29T12:00:00Z")));
        let grace = GraceDays { critical: 7, high: 14, medium: 30, low: 30 };
        let with = |first_seen: Option<&str>, verdict: Verdict, suppressed: bool| {
            let mut f = base.clone();
            f.first_seen = first_seen.map(ts);
            f.verdict = verdict;
            f.suppression = suppressed.then(|| AppliedSuppression {
                entry: "e".into(),
                reason: "r".into(),
                owner: "o".into(),
                expires: jiff::civil::date(2027, 1, 1),
            });
            f.due(ts(as_of), &grace)
        };
        let cases = [
            // Seen before it fell due: the rule's date plus 30 days.
            (Some("2026-08-01T00:00:00Z"), Verdict::Fail, false, Some("2026-10-29T23:59:59Z")),
            // First seen by this run, after it fell due: this run plus 30 days, through the end of that day (UTC).
            (None, Verdict::Fail, false, Some("2026-12-28T23:59:59Z")),
            (Some("2026-11-01T00:00:00Z"), Verdict::Fail, false, Some("2026-12-01T23:59:59Z")),
            (Some("2026-11-01T23:59:59Z"), Verdict::Fail, false, Some("2026-12-01T23:59:59Z")),
            (Some("2026-08-01T00:00:00Z"), Verdict::Warn, false, Some("2026-10-29T23:59:59Z")),
            (Some("2026-08-01T00:00:00Z"), Verdict::Pass, false, None),
            (Some("2026-08-01T00:00:00Z"), Verdict::Fail, true, None),
        ];
        for (first_seen, verdict, suppressed, due) in cases {
            assert_eq!(with(first_seen, verdict, suppressed), due.map(ts), "{first_seen:?} {verdict:?} {suppressed}");
        }
        assert!(RuleConfig::default().with_grace_days(GraceDays { critical: 3651, ..GraceDays::DEFAULT }).is_err());
    }

    #[test]
    fn a_deadline_is_the_end_of_its_day_in_the_zone_and_days_are_calendar_days() {
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        let zone = |name: &str| TimeZone::get(name).unwrap();
        let t = ts("2026-12-28T12:00:00Z");
        assert_eq!(end_of_day(t, &TimeZone::UTC), ts("2026-12-28T23:59:59Z"));
        // 12:00 UTC is already the 29th at UTC+14, still the 28th in Los Angeles.
        assert_eq!(end_of_day(t, &zone("Pacific/Kiritimati")), ts("2026-12-29T09:59:59Z"));
        assert_eq!(end_of_day(t, &zone("America/Los_Angeles")), ts("2026-12-29T07:59:59Z"));
        // A day of 23 hours (Europe/Berlin, the last Sunday of March).
        assert_eq!(end_of_day(ts("2027-03-28T05:00:00Z"), &zone("Europe/Berlin")), ts("2027-03-28T21:59:59Z"));
        assert_eq!(start_of_day(ts("2027-03-28T05:00:00Z"), &zone("Europe/Berlin")), ts("2027-03-27T23:00:00Z"));
        let utc = &TimeZone::UTC;
        assert_eq!(calendar_days(ts("2026-11-28T12:00:00Z"), ts("2026-12-28T23:59:59Z"), utc), 30);
        assert_eq!(calendar_days(ts("2026-12-28T23:59:59Z"), ts("2026-12-29T00:00:00Z"), utc), 1, "one second past");
        assert_eq!(calendar_days(ts("2026-12-28T23:59:59Z"), ts("2026-12-28T08:00:00Z"), utc), 0, "the due day itself");
    }

    #[test]
    fn two_keys_rotated_in_the_same_second_are_told_apart_by_slot() {
        let same = "2026-01-01T00:00:00Z";
        let all = findings(&[(KeySlot::One, None, same), (KeySlot::Two, None, same)], "2026-11-28T00:00:00Z");
        let aws = Partition::aws();
        assert_ne!(all[0].fingerprint(&aws), all[1].fingerprint(&aws));
        assert_eq!(all[0].key.as_ref().unwrap().identity(), "rotated:1767225600|slot:1");
        let alone = findings(&[(KeySlot::Two, None, same)], "2026-11-28T00:00:00Z");
        assert_eq!(alone[0].key.as_ref().unwrap().identity(), "rotated:1767225600");
    }
}
