//! Where a key is used, the pure part (issue "Where each key is used"): the calls CloudTrail recorded for one access
//! key, summarized by source (source address and user agent) with counts, first and last time, services and Regions;
//! each source classified as a person, a workload or unknown, with the reason; and the temporary credentials that
//! should replace the key (IAM best practices: a role for workloads on AWS compute, OIDC federation for CI, IAM Roles
//! Anywhere for servers outside AWS, IAM Identity Center for people).
//!
//! The summary holds no event: memory is bounded by [`MAX_SOURCES`] sources per key, each with at most
//! [`MAX_SET`] services and Regions. User agents and addresses are written by whoever holds the key: they are kept
//! as data, cut to [`MAX_TEXT`] characters, and every output must make them inert (see `text::shown`).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

/// Sources kept per key; calls from further sources are counted in [`WhereUsed::other_calls`].
pub const MAX_SOURCES: usize = 20;
/// Services (and Regions) kept per source.
pub const MAX_SET: usize = 10;
/// Characters kept of a user agent or a source address.
pub const MAX_TEXT: usize = 256;

/// One call CloudTrail recorded with the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `eventTime`.
    pub time: Timestamp,
    /// `sourceIPAddress`: an address, or an AWS service's name when a service called on the key's behalf.
    pub source_ip: String,
    /// `userAgent`.
    pub user_agent: String,
    /// `eventSource` (`s3.amazonaws.com`).
    pub event_source: String,
    /// `awsRegion`.
    pub region: String,
}

/// Who a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A person: the console, or the CLI from a workstation.
    Person,
    /// A program: an SDK, Terraform or another tool, a CI system, an AWS service calling on the key's behalf.
    Workload,
    /// Nothing in the user agent says.
    Unknown,
}

impl Kind {
    /// `person`, `workload` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Workload => "workload",
            Kind::Unknown => "unknown",
        }
    }
}

/// What should replace a long-lived access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// An IAM role, for workloads on EC2, ECS, EKS or Lambda.
    IamRole,
    /// OIDC federation (`AssumeRoleWithWebIdentity`), for CI systems.
    OidcFederation,
    /// IAM Roles Anywhere (X.509), for servers outside AWS.
    RolesAnywhere,
    /// IAM Identity Center, for people.
    IdentityCenter,
}

impl Replacement {
    /// `iam_role`, `oidc_federation`, `roles_anywhere` or `identity_center`.
    pub fn as_str(self) -> &'static str {
        match self {
            Replacement::IamRole => "iam_role",
            Replacement::OidcFederation => "oidc_federation",
            Replacement::RolesAnywhere => "roles_anywhere",
            Replacement::IdentityCenter => "identity_center",
        }
    }

    /// AWS's documentation of it.
    pub fn url(self) -> &'static str {
        match self {
            Replacement::IamRole => {
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2.html"
            }
            Replacement::OidcFederation => {
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_create_oidc.html"
            }
            Replacement::RolesAnywhere => {
                "https://docs.aws.amazon.com/rolesanywhere/latest/userguide/introduction.html"
            }
            Replacement::IdentityCenter => "https://docs.aws.amazon.com/singlesignon/latest/userguide/what-is.html",
        }
    }
}

/// One place the key is used from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The source address (cut to [`MAX_TEXT`]).
    pub source_ip: String,
    /// The user agent (cut to [`MAX_TEXT`]).
    pub user_agent: String,
    /// Calls seen.
    pub calls: u64,
    /// The first call.
    pub first: Timestamp,
    /// The last call.
    pub last: Timestamp,
    /// The services called (event sources), at most [`MAX_SET`].
    pub services: BTreeSet<String>,
    /// The Regions called, at most [`MAX_SET`].
    pub regions: BTreeSet<String>,
    /// Who it is.
    pub kind: Kind,
    /// Why, in a few words.
    pub why: &'static str,
    /// What it points to, beyond its kind: a CI system, or AWS compute.
    hint: Hint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    None,
    Ci,
    AwsCompute,
}

/// Where one key is used, from the calls looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhereUsed {
    /// The sources, most calls first.
    pub sources: Vec<Source>,
    /// Calls from sources beyond [`MAX_SOURCES`].
    pub other_calls: u64,
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

/// Who a caller is, from its user agent and source address (both chosen by the caller: a hint, never proof).
fn classify(user_agent: &str, source_ip: &str) -> (Kind, &'static str, Hint) {
    let ua = user_agent.to_ascii_lowercase();
    let has = |needle: &str| ua.contains(needle);
    if source_ip.ends_with(".amazonaws.com") {
        return (Kind::Workload, "an AWS service calling on the key's behalf", Hint::AwsCompute);
    }
    if has("console.amazonaws.com") || has("signin.amazonaws.com") || has("aws-internal/3") {
        return (Kind::Person, "the AWS console", Hint::None);
    }
    if has("github") || has("gitlab") || has("circleci") || has("jenkins") || has("buildkite") || has("bitbucket") {
        return (Kind::Workload, "a CI system", Hint::Ci);
    }
    if has("exec-env/aws_lambda") || has("exec-env/aws_ecs") || has("exec-env/aws_ec2") || has("exec-env/aws_eks") {
        return (Kind::Workload, "code running on AWS compute", Hint::AwsCompute);
    }
    if has("terraform") || has("pulumi") || has("cloudformation") || has("ansible") {
        return (Kind::Workload, "an infrastructure tool", Hint::None);
    }
    if has("aws-cli/") || has("aws-powershell") || has("awspowershell") {
        if has("exec-env/cloudshell") {
            return (Kind::Person, "AWS CloudShell", Hint::None);
        }
        return (Kind::Person, "the AWS CLI from a workstation", Hint::None);
    }
    if has("boto3/") || has("botocore/") || has("aws-sdk-") || has("aws-sdk/") || has("aws-go-sdk") {
        return (Kind::Workload, "an AWS SDK", Hint::None);
    }
    (Kind::Unknown, "the user agent names no known client", Hint::None)
}

/// The calls summarized by source, most calls first (then the latest first).
pub fn summarize(calls: impl IntoIterator<Item = Call>) -> WhereUsed {
    let mut by_source: BTreeMap<(String, String), Source> = BTreeMap::new();
    let mut other_calls = 0;
    for call in calls {
        let key = (cut(&call.source_ip), cut(&call.user_agent));
        if !by_source.contains_key(&key) && by_source.len() >= MAX_SOURCES {
            other_calls += 1;
            continue;
        }
        let source = by_source.entry(key.clone()).or_insert_with(|| {
            let (kind, why, hint) = classify(&key.1, &key.0);
            Source {
                source_ip: key.0.clone(),
                user_agent: key.1.clone(),
                calls: 0,
                first: call.time,
                last: call.time,
                services: BTreeSet::new(),
                regions: BTreeSet::new(),
                kind,
                why,
                hint,
            }
        });
        source.calls += 1;
        source.first = source.first.min(call.time);
        source.last = source.last.max(call.time);
        if source.services.len() < MAX_SET {
            source.services.insert(cut(&call.event_source));
        }
        if source.regions.len() < MAX_SET {
            source.regions.insert(cut(&call.region));
        }
    }
    let mut sources: Vec<Source> = by_source.into_values().collect();
    sources.sort_by(|a, b| b.calls.cmp(&a.calls).then(b.last.cmp(&a.last)));
    WhereUsed { sources, other_calls }
}

impl WhereUsed {
    /// What should replace the key, with the reason: for the workloads first (a key in a program is the one that
    /// leaks), a CI system → OIDC federation, AWS compute → an IAM role, any other program → IAM Roles Anywhere;
    /// only people → IAM Identity Center; nothing known → `None`.
    pub fn replacement(&self) -> Option<(Replacement, &'static str)> {
        let workloads: Vec<&Source> = self.sources.iter().filter(|s| s.kind == Kind::Workload).collect();
        if workloads.iter().any(|s| s.hint == Hint::Ci) {
            return Some((Replacement::OidcFederation, "a CI system uses the key: federate it with OIDC"));
        }
        if workloads.iter().any(|s| s.hint == Hint::AwsCompute) {
            return Some((Replacement::IamRole, "code on AWS compute uses the key: give it an IAM role"));
        }
        if !workloads.is_empty() {
            return Some((
                Replacement::RolesAnywhere,
                "a program uses the key from outside AWS (or from a place CloudTrail does not name): IAM Roles \
                 Anywhere, or an IAM role if it runs on AWS",
            ));
        }
        if self.sources.iter().any(|s| s.kind == Kind::Person) {
            return Some((Replacement::IdentityCenter, "people use the key: sign them in with IAM Identity Center"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_second(1_796_000_000).unwrap() + SignedDuration::from_mins(minutes)
    }

    fn call(minutes: i64, ip: &str, ua: &str, service: &str, region: &str) -> Call {
        Call {
            time: at(minutes),
            source_ip: ip.into(),
            user_agent: ua.into(),
            event_source: service.into(),
            region: region.into(),
        }
    }

    #[test]
    fn sources_are_classified_from_their_user_agent_and_address() {
        let cases = [
            ("aws-cli/2.15.0 Python/3.11 Darwin/23.1.0 exe/x86_64 prompt/off", "198.51.100.7", Kind::Person),
            ("aws-cli/2.15.0 md/installer#exe exec-env/CloudShell", "198.51.100.7", Kind::Person),
            ("console.amazonaws.com", "198.51.100.7", Kind::Person),
            ("Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux", "203.0.113.5", Kind::Workload),
            ("aws-sdk-java/2.20.0 Linux/5.10 OpenJDK_64-Bit_Server_VM", "203.0.113.5", Kind::Workload),
            (
                "APN/1.0 HashiCorp/1.0 Terraform/1.6.0 (+https://www.terraform.io) terraform-provider-aws/5.0",
                "x",
                Kind::Workload,
            ),
            ("aws-sdk-js/3.0 exec-env/AWS_Lambda_nodejs18.x", "203.0.113.5", Kind::Workload),
            ("aws-cli/2.15.0 exec-env/GitHubActions", "203.0.113.5", Kind::Workload),
            ("ec2.amazonaws.com", "ec2.amazonaws.com", Kind::Workload),
            ("curl/8.4.0", "203.0.113.5", Kind::Unknown),
            ("\u{1b}[2J<script>alert(1)</script>", "203.0.113.5", Kind::Unknown),
        ];
        for (ua, ip, want) in cases {
            assert_eq!(classify(ua, ip).0, want, "{ua}");
        }
    }

    #[test]
    fn calls_are_summarized_by_source_with_their_counts_times_services_and_regions() {
        let laptop = "aws-cli/2.15.0 Python/3.11 Darwin/23.1.0";
        let job = "Boto3/1.34.0 md/Botocore#1.34.0";
        let used = summarize([
            call(0, "198.51.100.7", laptop, "iam.amazonaws.com", "us-east-1"),
            call(5, "203.0.113.5", job, "s3.amazonaws.com", "eu-west-1"),
            call(9, "203.0.113.5", job, "sqs.amazonaws.com", "eu-west-1"),
            call(7, "203.0.113.5", job, "s3.amazonaws.com", "us-east-1"),
        ]);
        /// (user agent, calls, first, last, services, regions, kind)
        type Row<'a> = (&'a str, u64, Timestamp, Timestamp, Vec<&'a str>, Vec<&'a str>, Kind);
        let rows: Vec<Row<'_>> = used
            .sources
            .iter()
            .map(|s| {
                (
                    s.user_agent.as_str(),
                    s.calls,
                    s.first,
                    s.last,
                    s.services.iter().map(String::as_str).collect(),
                    s.regions.iter().map(String::as_str).collect(),
                    s.kind,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    job,
                    3,
                    at(5),
                    at(9),
                    vec!["s3.amazonaws.com", "sqs.amazonaws.com"],
                    vec!["eu-west-1", "us-east-1"],
                    Kind::Workload
                ),
                (laptop, 1, at(0), at(0), vec!["iam.amazonaws.com"], vec!["us-east-1"], Kind::Person),
            ]
        );
        assert_eq!(used.replacement().map(|r| r.0), Some(Replacement::RolesAnywhere), "the program comes first");
    }

    #[test]
    fn the_summary_is_bounded_whatever_the_callers_write() {
        let long = "x".repeat(10_000);
        let used = summarize((0..100).map(|i| call(i, &format!("203.0.113.{i}"), &long, &format!("s{i}"), "r")));
        assert_eq!(used.sources.len(), MAX_SOURCES);
        assert_eq!(used.other_calls, 100 - MAX_SOURCES as u64);
        assert!(used.sources.iter().all(|s| s.user_agent.chars().count() == MAX_TEXT));
        let one = summarize((0..100).map(|i| call(i, "203.0.113.5", "Boto3/1", &format!("svc{i}"), &format!("r{i}"))));
        assert_eq!((one.sources[0].services.len(), one.sources[0].regions.len()), (MAX_SET, MAX_SET));
        assert_eq!(one.sources[0].calls, 100);
    }

    #[test]
    fn the_replacement_follows_who_uses_the_key() {
        let with = |ua: &str, ip: &str| summarize([call(0, ip, ua, "s3.amazonaws.com", "us-east-1")]).replacement();
        assert_eq!(
            with("aws-cli/2.15.0 exec-env/GitHubActions", "1.2.3.4").map(|r| r.0),
            Some(Replacement::OidcFederation)
        );
        assert_eq!(with("aws-sdk-go/1.0 exec-env/AWS_ECS_EC2", "1.2.3.4").map(|r| r.0), Some(Replacement::IamRole));
        assert_eq!(with("ec2.amazonaws.com", "ec2.amazonaws.com").map(|r| r.0), Some(Replacement::IamRole));
        assert_eq!(with("Boto3/1.34", "1.2.3.4").map(|r| r.0), Some(Replacement::RolesAnywhere));
        assert_eq!(with("aws-cli/2.15.0 Darwin/23", "1.2.3.4").map(|r| r.0), Some(Replacement::IdentityCenter));
        assert_eq!(with("curl/8", "1.2.3.4"), None);
        assert_eq!(WhereUsed::default().replacement(), None);
        assert!(Replacement::IdentityCenter.url().starts_with("https://docs.aws.amazon.com/"));
    }
}
