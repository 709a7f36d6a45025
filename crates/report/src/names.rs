//! The core model's named values (verdicts, actions, …) as JSON strings: written by their core name, read back
//! only when they are one of the names core writes, and listed as an `enum` in the JSON Schema. The names come
//! from core (`as_str`), so they are written once; this module only lists which values exist.

use std::borrow::Cow;
use std::marker::PhantomData;

use keyaudit_core::baseline::{Coverage, SinceLastRun};
use keyaudit_core::eval::{AgeSource, Subject, Verdict};
use keyaudit_core::inventory::KeyChange;
use keyaudit_core::rules::Severity;
use keyaudit_core::suppress::EntryState;
use keyaudit_core::triage::{Action, Usage};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{Error as _, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A core value written by name.
pub trait Named: Copy + PartialEq + 'static {
    /// What it is, in messages and the schema (`verdict`).
    const WHAT: &'static str;
    /// Every value, in the order the schema lists them.
    const ALL: &'static [Self];
    /// Its name in every output.
    fn name(self) -> &'static str;
}

/// A [`Named`] value in a report: `"fail"`, `"deactivate"`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<T>(pub T);

impl<T: Named> Serialize for Tag<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name())
    }
}

impl<'de, T: Named> Deserialize<'de> for Tag<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names<T>(PhantomData<T>);
        impl<T: Named> Visitor<'_> for Names<T> {
            type Value = Tag<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a {}", T::WHAT)
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Tag<T>, E> {
                T::ALL.iter().copied().find(|v| v.name() == value).map(Tag).ok_or_else(|| {
                    let all: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
                    E::custom(format!("{} {value:?} is not one keyaudit writes (one of {})", T::WHAT, all.join(", ")))
                })
            }
        }
        deserializer.deserialize_str(Names(PhantomData)).map_err(D::Error::custom)
    }
}

impl<T: Named> JsonSchema for Tag<T> {
    fn schema_name() -> Cow<'static, str> {
        T::WHAT.into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
        json_schema!({ "type": "string", "enum": names })
    }
}

macro_rules! named {
    ($type:ty, $what:literal, $name:path, [$($value:expr),+ $(,)?]) => {
        impl Named for $type {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($value),+];
            fn name(self) -> &'static str {
                $name(self)
            }
        }
    };
}

named!(
    Verdict,
    "verdict",
    Verdict::as_str,
    [Verdict::Fail, Verdict::Warn, Verdict::Pass, Verdict::NotApplicable, Verdict::Resolved,]
);
named!(Severity, "severity", Severity::as_str, [Severity::Low, Severity::Medium, Severity::High, Severity::Critical]);
named!(Subject, "subject", Subject::as_str, [Subject::AccessKey, Subject::User]);
named!(AgeSource, "age_source", AgeSource::as_str, [AgeSource::LastRotated, AgeSource::CreateDate]);
named!(KeyChange, "change_since_report", KeyChange::as_str, [KeyChange::Deactivated, KeyChange::Deleted]);
named!(Usage, "usage", Usage::as_str, [Usage::NeverUsed, Usage::Dormant, Usage::InUse, Usage::Unknown]);
named!(
    Action,
    "action",
    Action::as_str,
    [Action::Deactivate, Action::Rotate, Action::FreeSlotThenRotate, Action::FinishRotation, Action::None,]
);
named!(
    SinceLastRun,
    "since_last_run",
    SinceLastRun::as_str,
    [SinceLastRun::New, SinceLastRun::StillOpen, SinceLastRun::Resolved,]
);
named!(Coverage, "account_status", Coverage::as_str, [Coverage::Scanned, Coverage::Skipped, Coverage::Failed]);
named!(
    EntryState,
    "exception_state",
    EntryState::as_str,
    [EntryState::InForce, EntryState::ExpiringSoon, EntryState::Expired, EntryState::Stale, EntryState::Unmatched,]
);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Named + std::fmt::Debug>() {
        for value in T::ALL {
            let json = serde_json::to_string(&Tag(*value)).unwrap();
            assert_eq!(json, format!("\"{}\"", value.name()));
            assert_eq!(serde_json::from_str::<Tag<T>>(&json).unwrap().0, *value);
        }
        let names: std::collections::BTreeSet<&str> = T::ALL.iter().map(|v| v.name()).collect();
        assert_eq!(names.len(), T::ALL.len(), "{}: every name once", T::WHAT);
    }

    #[test]
    fn every_name_is_written_and_read_back_and_nothing_else_is_read() {
        round_trip::<Verdict>();
        round_trip::<Severity>();
        round_trip::<Subject>();
        round_trip::<AgeSource>();
        round_trip::<KeyChange>();
        round_trip::<Usage>();
        round_trip::<Action>();
        round_trip::<SinceLastRun>();
        round_trip::<Coverage>();
        round_trip::<EntryState>();
        assert_eq!(Action::ALL, <Action as Named>::ALL, "core's own list");
        let err = serde_json::from_str::<Tag<Verdict>>("\"bogus\"").unwrap_err().to_string();
        assert!(err.starts_with("verdict \"bogus\" is not one keyaudit writes (one of fail, warn"), "{err}");
    }
}
