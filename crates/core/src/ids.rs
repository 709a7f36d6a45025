//! Identifiers validated on construction, so that the rest of the code never handles a malformed one.

use std::fmt;

use crate::ModelError;

/// The AWS Region keyaudit works in when none is configured (`--region`, the profile): where global services
/// such as IAM and STS answer.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A 12-digit AWS account id. Kept as text: ids may start with `0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Validates `value` as an account id.
    pub fn parse(value: &str) -> Result<Self, ModelError> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(ModelError::InvalidAccountId { value: value.to_owned() })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Ordered and compared as its text, so sets of ids can be searched with a `&str`.
impl std::borrow::Borrow<str> for AccountId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for AccountId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An IAM access key id (`AKIA…`). Never a secret: the secret access key is never modelled anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessKeyId(String);

impl AccessKeyId {
    /// Validates `value` as an access key id.
    pub fn parse(value: &str) -> Result<Self, ModelError> {
        let ok =
            (16..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok { Ok(Self(value.to_owned())) } else { Err(ModelError::InvalidAccessKeyId { value: value.to_owned() }) }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The AWS partition (`aws`, `aws-us-gov`, `aws-cn`, …), read from the caller's ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Partition(String);

impl Partition {
    /// The commercial partition.
    pub fn aws() -> Self {
        Self("aws".to_owned())
    }

    /// The partition named in an ARN (`arn:PARTITION:…`), if the text is an ARN.
    pub fn from_arn(arn: &str) -> Option<Self> {
        let mut parts = arn.split(':');
        match (parts.next(), parts.next()) {
            (Some("arn"), Some(p)) if !p.is_empty() => Some(Self(p.to_owned())),
            _ => None,
        }
    }

    /// A partition by its name, as `as_str` writes it (lower-case letters, digits and `-`).
    pub fn named(name: &str) -> Option<Self> {
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then(|| Self(name.to_owned()))
    }

    /// The partition as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Region named in an ARN (`arn:PARTITION:SERVICE:REGION:…`), if the text is an ARN of a regional resource.
pub fn region_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    match (parts.next(), parts.nth(2)) {
        (Some("arn"), Some(region)) if !region.is_empty() => Some(region),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_keep_leading_zeros_and_reject_anything_but_12_digits() {
        assert_eq!(AccountId::parse("012345678901").unwrap().as_str(), "012345678901");
        for bad in ["", "12345678901", "1234567890123", "12345678901a", " 12345678901", "１２３４５６７８９０１２"]
        {
            assert!(AccountId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn access_key_ids_are_upper_case_alphanumerics() {
        assert!(AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").is_ok());
        assert!(AccessKeyId::parse("akiaiosfodnn7example").is_err());
        assert!(AccessKeyId::parse("AKIA").is_err());
        assert!(AccessKeyId::parse("AKIA-OSFODNN7EXAMPLE").is_err());
    }

    #[test]
    fn the_region_comes_from_a_regional_arn() {
        assert_eq!(region_of_arn("arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"), Some("eu-west-1"));
        assert_eq!(region_of_arn("arn:aws:iam::123456789012:user/alice"), None, "IAM is global");
        assert_eq!(region_of_arn("eu-west-1"), None);
    }

    #[test]
    fn partition_comes_from_the_arn() {
        assert_eq!(Partition::from_arn("arn:aws-us-gov:iam::123456789012:root").unwrap().as_str(), "aws-us-gov");
        assert_eq!(Partition::from_arn("not-an-arn"), None);
    }
}
