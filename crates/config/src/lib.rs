//! keyaudit-config — what keyaudit's TOML files share: errors in the user's terms, `[grace-days]`, durations. Depends
//! on core.
//!
//! Used by the settings file, the exceptions file and `notify.toml`.

use std::time::Duration;

use keyaudit_core::eval::GraceDays;
use serde::Deserialize;

pub mod toml_errors;

/// `[grace-days]` in a settings file: days by severity, each optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraceDaysTable {
    critical: Option<u32>,
    high: Option<u32>,
    medium: Option<u32>,
    low: Option<u32>,
}

impl GraceDaysTable {
    /// The days given, over `base` for the severities left out.
    pub fn over(&self, base: GraceDays) -> GraceDays {
        GraceDays {
            critical: self.critical.unwrap_or(base.critical),
            high: self.high.unwrap_or(base.high),
            medium: self.medium.unwrap_or(base.medium),
            low: self.low.unwrap_or(base.low),
        }
    }
}

/// Parses a duration such as `90s`, `5m`, `1h30m`, `30d` (days of 24 hours) or ISO 8601 `PT1H`; `flag` names the
/// flag or key in the error.
pub fn parse_duration(flag: &str, value: &str) -> Result<Duration, String> {
    let bad = || format!("{flag} {value:?}: expected a duration such as 90s, 5m, 1h30m or 30d");
    // Days of 24 hours (`30d`): jiff's absolute durations have no calendar units.
    if let Some(days) = value.trim().strip_suffix('d').and_then(|d| d.parse::<u64>().ok()) {
        return days.checked_mul(86_400).map(Duration::from_secs).ok_or_else(bad);
    }
    let d: jiff::SignedDuration = value.trim().parse().map_err(|_| bad())?;
    Duration::try_from(d).map_err(|_| format!("{flag} {value:?}: expected a positive duration"))
}
