//! How fast keyaudit calls each AWS API: AWS's published throttling buckets where AWS publishes them
//! (Organizations per API, STS per caller and Region), keyaudit's own per target account otherwise (IAM, Security
//! Hub). Each is overridable; the buckets apply at the wire (`keyaudit_scanner::ratelimit`).

use std::collections::HashMap;
use std::num::NonZeroU32;

use anyhow::{Result, anyhow, bail};
use keyaudit_org_discovery::{ListingRates, ORG_QUOTAS};
use keyaudit_scanner::{Buckets, Pace, bucket};

/// The STS pace for `rate` requests per second (AWS allows 600 per caller and Region, shared by AssumeRole and
/// GetCallerIdentity; it publishes no burst): bursts of a tenth of a second.
pub(crate) fn sts_pace(rate: NonZeroU32) -> Pace {
    Pace::new(rate, NonZeroU32::new(rate.get() / 10).unwrap_or(NonZeroU32::MIN))
}

/// The default STS rate: AWS's quota.
pub(crate) const STS_RATE: u32 = 600;

/// Organizations' buckets: each row of AWS's table ([`ORG_QUOTAS`]) with its pace, AWS's or `--org-pace`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrgPaces(Vec<(&'static [&'static str], Pace)>);

/// Tokens of each published burst keyaudit leaves unused by default (a quarter, at most 2): requests the network
/// bunches up (sent at the rate, arriving closer together) then find AWS's bucket with these spare, never empty. At
/// 5 requests per second, 2 tokens absorb 0.4 s of jitter; the rate, which sets the floor, stays AWS's. The small
/// buckets (DescribeOrganization and ListRoots, bursts of 2, a few calls per run) keep their whole burst.
fn burst_reserve(burst: u32) -> u32 {
    (burst / 4).min(2)
}

/// Operations AWS publishes no limit for (none that keyaudit calls today) get the slowest published one.
const UNLISTED: Pace = Pace::new(NonZeroU32::MIN, NonZeroU32::MIN);

impl OrgPaces {
    /// AWS's published paces (bursts less [`burst_reserve`]), with `overrides` (`OPERATION=RATE[/BURST]`, from `--org-pace` or `org-pace` in the
    /// config file; an operation sets its whole row's bucket), each bucket's rate capped at `cap` (`--org-rps`).
    pub(crate) fn resolve(overrides: &[String], cap: Option<NonZeroU32>) -> Result<Self> {
        let mut rows: Vec<(&'static [&'static str], Pace)> = ORG_QUOTAS
            .iter()
            .map(|q| {
                let n = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
                (q.operations, Pace::new(n(q.rate), n(q.burst - burst_reserve(q.burst))))
            })
            .collect();
        for value in overrides {
            let (operation, pace) = parse_override(value)?;
            let row = rows.iter_mut().find(|(ops, _)| ops.contains(&operation)).ok_or_else(|| {
                let known: Vec<&str> = ORG_QUOTAS.iter().flat_map(|q| q.operations.iter().copied()).collect();
                anyhow!("--org-pace {value}: {operation:?} is not an Organizations operation keyaudit paces; expected one of {}", known.join(", "))
            })?;
            row.1 = pace;
        }
        if let Some(cap) = cap {
            for (_, pace) in &mut rows {
                pace.rate = pace.rate.min(cap);
                pace.burst = pace.burst.min(cap);
            }
        }
        Ok(Self(rows))
    }

    /// One bucket per row, shared by the row's operations.
    pub(crate) fn buckets(&self) -> Buckets {
        let mut by_operation = HashMap::new();
        for (operations, pace) in &self.0 {
            let shared = bucket(*pace);
            for op in *operations {
                by_operation.insert((*op).to_owned(), shared.clone());
            }
        }
        Buckets::new(bucket(UNLISTED), by_operation)
    }

    fn rate_of(&self, operation: &str) -> f64 {
        self.0.iter().find(|(ops, _)| ops.contains(&operation)).map_or(1.0, |(_, p)| f64::from(p.rate.get()))
    }

    /// The rates discovery spreads its listings by.
    pub(crate) fn listing_rates(&self) -> ListingRates {
        ListingRates {
            for_parent: self.rate_of("ListAccountsForParent"),
            children: self.rate_of("ListChildren"),
            accounts: self.rate_of("ListAccounts"),
        }
    }
}

/// `OPERATION=RATE[/BURST]` (a missing burst is the rate).
fn parse_override(value: &str) -> Result<(&str, Pace)> {
    let expected = "expected OPERATION=RATE or OPERATION=RATE/BURST, e.g. ListChildren=6/10";
    let Some((operation, pace)) = value.split_once('=') else { bail!("--org-pace {value}: {expected}") };
    let (rate, burst) = pace.split_once('/').map_or((pace, None), |(r, b)| (r, Some(b)));
    let number = |s: &str| {
        s.trim().parse::<u32>().ok().and_then(NonZeroU32::new).ok_or_else(|| anyhow!("--org-pace {value}: {expected}"))
    };
    let rate = number(rate)?;
    let burst = burst.map(number).transpose()?.unwrap_or(rate);
    Ok((operation.trim(), Pace::new(rate, burst)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    #[test]
    fn aws_published_paces_are_the_default_and_each_row_is_overridable() {
        let paces = OrgPaces::resolve(&[], None).unwrap();
        let of = |p: &OrgPaces, op: &str| p.0.iter().find(|(ops, _)| ops.contains(&op)).unwrap().1;
        // AWS's rates; its bursts less a reserve (a quarter, at most 2).
        assert_eq!(of(&paces, "ListAccounts"), Pace::new(n(8), n(10)));
        assert_eq!(of(&paces, "ListChildren"), Pace::new(n(6), n(8)));
        assert_eq!(of(&paces, "ListOrganizationalUnitsForParent"), Pace::new(n(5), n(6)));
        assert_eq!(of(&paces, "ListRoots"), Pace::new(n(1), n(2)));
        assert_eq!(paces.listing_rates(), ListingRates { for_parent: 5.0, children: 6.0, accounts: 8.0 });

        let set = OrgPaces::resolve(&["ListParents=3/4".into(), "ListChildren=2".into()], None).unwrap();
        assert_eq!(of(&set, "ListAccountsForParent"), Pace::new(n(3), n(4)), "one operation sets its row");
        assert_eq!(of(&set, "ListChildren"), Pace::new(n(2), n(2)));
        let capped = OrgPaces::resolve(&[], Some(n(4))).unwrap();
        assert_eq!(of(&capped, "ListAccounts"), Pace::new(n(4), n(4)));
        assert_eq!(of(&capped, "ListRoots"), Pace::new(n(1), n(2)));

        for (bad, says) in [
            ("ListAccounts", "expected OPERATION=RATE"),
            ("ListAccounts=0", "expected OPERATION=RATE"),
            ("ListAccounts=5/x", "expected OPERATION=RATE"),
            ("CreateAccount=5", "\"CreateAccount\" is not an Organizations operation keyaudit paces"),
        ] {
            let err = OrgPaces::resolve(&[bad.into()], None).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--org-pace {bad}: ")) && err.contains(says), "{err}");
        }
        assert_eq!(sts_pace(n(600)), Pace::new(n(600), n(60)));
        assert_eq!(sts_pace(n(2)), Pace::new(n(2), n(1)));
    }
}
