//! Settings: the config file < `KEYAUDIT_*` variables < flags, merged and validated into one [`Settings`].
//! Every problem names the flag or file and what was expected; the caller turns it into exit code 2.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use jiff::Timestamp;
use keyaudit_core::eval::{GraceDays, RuleConfig};
use keyaudit_core::ids::AccountId;
use keyaudit_core::report::FailOn;
use keyaudit_core::rules::{RuleSet, builtin};
use keyaudit_core::suppress::Suppressions;
use keyaudit_org_discovery::{AccountFilter, RoleSpec};
use keyaudit_scanner::{KeyIdMode, ReportPolicy, ScanOptions};
use serde::Deserialize;

use crate::args::{FailOnArg, KeyIdsArg, ScanArgs};
use crate::output::{OutputOptions, OutputSpec};

/// The config file: the same settings as the flags, all optional. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    profile: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    #[serde(default)]
    ou: Vec<String>,
    #[serde(default)]
    account: Vec<String>,
    #[serde(default)]
    exclude_account: Vec<String>,
    role_name: Option<String>,
    role_path: Option<String>,
    external_id: Option<String>,
    session_name: Option<String>,
    session_duration: Option<String>,
    max_age_days: Option<u32>,
    warn_days: Option<u32>,
    unused_days: Option<u32>,
    dormant_days: Option<u32>,
    grace_days: Option<GraceDaysTable>,
    owner_tags: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    skip_rules: Vec<String>,
    fail_on: Option<FailOnArg>,
    suppressions: Option<std::path::PathBuf>,
    baseline: Option<std::path::PathBuf>,
    key_ids: Option<KeyIdsArg>,
    concurrency: Option<usize>,
    iam_rps: Option<u32>,
    enrichment_rps: Option<u32>,
    sts_rps: Option<u32>,
    org_rps: Option<u32>,
    #[serde(default)]
    org_pace: Vec<String>,
    max_attempts: Option<u32>,
    throttle_patience: Option<String>,
    report_attempts: Option<u32>,
    account_timeout: Option<String>,
    enrichment_timeout: Option<String>,
    #[serde(default)]
    output: Vec<String>,
    output_dir: Option<std::path::PathBuf>,
    sarif_include_pass: Option<bool>,
    ocsf_include_pass: Option<bool>,
    s3_sse: Option<crate::args::SseArg>,
    s3_kms_key_id: Option<String>,
    s3_expected_owner: Option<String>,
    security_lake_role: Option<String>,
    security_lake_external_id: Option<String>,
}

pub(crate) use keyaudit_config::GraceDaysTable;

/// Where and how to reach AWS: the flags every command that calls AWS shares.
#[derive(Debug, Clone)]
pub(crate) struct AwsSettings {
    pub(crate) profile: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) max_attempts: u32,
}

impl AwsSettings {
    /// The connection settings of a command's `--profile`, `--region`, `--endpoint-url` (5 attempts per call, the
    /// SDK's standard retry mode).
    pub(crate) fn of(args: &crate::args::AwsArgs) -> Self {
        Self {
            profile: args.profile.clone(),
            region: args.region.clone(),
            endpoint_url: args.endpoint_url.clone(),
            max_attempts: 5,
        }
    }
}

/// `--grace-days critical=7,high=30`: days by severity; the ones left out keep `base`'s.
pub(crate) fn parse_grace_days(value: &str, base: GraceDays) -> Result<GraceDays> {
    let mut grace = base;
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            anyhow!(
                "--grace-days {value:?}: expected SEVERITY=DAYS pairs such as critical=7,high=30 (severities: critical, high, medium, low)"
            )
        };
        let (severity, days) = part.split_once('=').ok_or_else(bad)?;
        let days: u32 = days.trim().parse().map_err(|_| bad())?;
        match severity.trim() {
            "critical" => grace.critical = days,
            "high" => grace.high = days,
            "medium" => grace.medium = days,
            "low" => grace.low = days,
            _ => return Err(bad()),
        }
    }
    Ok(grace)
}

/// Validated settings for one scan.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) profile: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) filter: AccountFilter,
    pub(crate) role: RoleSpec,
    pub(crate) external_id: Option<String>,
    pub(crate) session_name: String,
    pub(crate) session_duration: Duration,
    /// `None`: now, read once when the scan starts.
    pub(crate) as_of: Option<Timestamp>,
    pub(crate) rule_config: RuleConfig,
    /// The rules to run (`--rules`, `--skip-rules`).
    pub(crate) rules: RuleSet,
    pub(crate) fail_on: FailOn,
    pub(crate) scan: ScanOptions,
    pub(crate) iam_rps: NonZeroU32,
    /// The rate of the optional look-ups (key ids, owners) per account.
    pub(crate) enrichment_rps: NonZeroU32,
    /// STS's bucket (AssumeRole, GetCallerIdentity).
    pub(crate) sts_pace: keyaudit_scanner::Pace,
    /// Organizations' buckets.
    pub(crate) org_paces: crate::pacing::OrgPaces,
    pub(crate) max_attempts: u32,
    /// How long one call's throttled answers are waited out.
    pub(crate) throttle_patience: Duration,
    pub(crate) outputs: Vec<OutputSpec>,
    pub(crate) output_options: OutputOptions,
    /// How S3 outputs are written.
    pub(crate) s3: crate::output::s3::S3Options,
    /// `--security-lake-role`: the custom source's provider role, assumed for the Security Lake objects.
    pub(crate) security_lake_role: Option<crate::output::s3::ProviderRole>,
    /// `--suppressions`: the file and its entries.
    pub(crate) suppressions: Option<(std::path::PathBuf, Suppressions)>,
    /// `--baseline`: the report it names (a file, or the newest in a directory), or a first run.
    pub(crate) baseline: Option<crate::saved::BaselineSource>,
    /// `--push-securityhub`: the region to import into (`None`: the run's) and the calls per second per account.
    pub(crate) push_securityhub: Option<(Option<String>, NonZeroU32)>,
}

impl Settings {
    /// Assumes the audit role as `--session-name`, with `--external-id`, for `--session-duration`.
    pub(crate) fn assumer(&self, sts_config: &aws_config::SdkConfig) -> keyaudit_org_discovery::RoleAssumer {
        keyaudit_org_discovery::RoleAssumer::new(
            sts_config,
            keyaudit_org_discovery::AssumeSettings {
                session_name: self.session_name.clone(),
                external_id: self.external_id.clone(),
                duration: self.session_duration,
            },
        )
    }
}

fn load_file(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--config {}: cannot read the file", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        anyhow!(
            "--config {}: {} (keys are the long flag names of `keyaudit scan --help`)",
            path.display(),
            keyaudit_config::toml_errors::describe(&text, &e)
        )
    })
}

/// Parses a duration such as `90s`, `5m`, `1h30m` or ISO 8601 `PT1H`.
pub(crate) fn parse_duration(flag: &str, value: &str) -> Result<Duration> {
    keyaudit_config::parse_duration(flag, value).map_err(|e| anyhow!(e))
}

fn positive(flag: &str, value: u32) -> Result<NonZeroU32> {
    NonZeroU32::new(value).ok_or_else(|| anyhow!("{flag} 0: expected a whole number of at least 1"))
}

fn account_ids(flag: &str, values: &[String]) -> Result<Vec<AccountId>> {
    values.iter().map(|v| AccountId::parse(v.trim()).map_err(|e| anyhow!("{flag}: {e}"))).collect()
}

impl Settings {
    /// AssumeRole's parameters.
    pub(crate) fn assume_settings(&self) -> keyaudit_org_discovery::AssumeSettings {
        keyaudit_org_discovery::AssumeSettings {
            session_name: self.session_name.clone(),
            external_id: self.external_id.clone(),
            duration: self.session_duration,
        }
    }

    /// The AWS connection settings.
    pub(crate) fn aws(&self) -> AwsSettings {
        AwsSettings {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            max_attempts: self.max_attempts,
        }
    }

    pub(crate) fn resolve(args: &ScanArgs) -> Result<Self> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let pick = |flag: Option<String>, file: Option<String>| flag.or(file);
        let list = |flag: &[String], file: Vec<String>| if flag.is_empty() { file } else { flag.to_vec() };

        let as_of = args
            .as_of
            .as_deref()
            .map(|v| {
                v.trim().parse::<Timestamp>().map_err(|_| {
                    anyhow!(
                        "--as-of {v:?}: expected an RFC 3339 instant with a time zone, such as 2026-11-28T00:00:00Z"
                    )
                })
            })
            .transpose()?;
        let max_age_days = args.max_age_days.or(file.max_age_days).unwrap_or(RuleConfig::DEFAULT_MAX_AGE_DAYS);
        let warn_days = args.warn_days.or(file.warn_days).unwrap_or(RuleConfig::DEFAULT_WARN_DAYS);
        let unused_days = args.unused_days.or(file.unused_days).unwrap_or(RuleConfig::DEFAULT_UNUSED_DAYS);
        let dormant_days = args.dormant_days.or(file.dormant_days).unwrap_or(RuleConfig::DEFAULT_DORMANT_DAYS);
        let file_grace = file.grace_days.as_ref().map_or(GraceDays::DEFAULT, |g| g.over(GraceDays::DEFAULT));
        let grace_days = match &args.grace_days {
            Some(flag) => parse_grace_days(flag, file_grace)?,
            None => file_grace,
        };
        let rule_config = RuleConfig::new(max_age_days, warn_days, unused_days)?
            .with_dormant_days(dormant_days)?
            .with_grace_days(grace_days)?;
        let rules = builtin().select(&list(&args.rules, file.rules), &list(&args.skip_rules, file.skip_rules))?;

        let role_name =
            pick(args.role_name.clone(), file.role_name).unwrap_or_else(|| "OrganizationAccountAccessRole".into());
        if role_name.is_empty() || role_name.len() > 64 {
            bail!("--role-name {role_name:?}: expected an IAM role name of 1 to 64 characters");
        }
        let role_path = pick(args.role_path.clone(), file.role_path).unwrap_or_else(|| "/".into());
        let role = RoleSpec::new(&role_name, &role_path)?;

        let session_name = pick(args.session_name.clone(), file.session_name).unwrap_or_else(|| "keyaudit".into());
        let valid_session = (2..=64).contains(&session_name.len())
            && session_name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c));
        if !valid_session {
            bail!("--session-name {session_name:?}: expected 2 to 64 characters from A-Z a-z 0-9 +=,.@-_");
        }
        let session_duration = parse_duration(
            "--session-duration",
            &pick(args.session_duration.clone(), file.session_duration).unwrap_or_else(|| "1h".into()),
        )?;
        if !(Duration::from_secs(900)..=Duration::from_secs(43_200)).contains(&session_duration) {
            bail!("--session-duration: expected between 15m and 12h (AWS's AssumeRole limits)");
        }
        let account_timeout = parse_duration(
            "--account-timeout",
            &pick(args.account_timeout.clone(), file.account_timeout).unwrap_or_else(|| "5m".into()),
        )?;
        let enrichment_timeout = parse_duration(
            "--enrichment-timeout",
            &pick(args.enrichment_timeout.clone(), file.enrichment_timeout).unwrap_or_else(|| "5m".into()),
        )?;
        let throttle_patience = match pick(args.throttle_patience.clone(), file.throttle_patience) {
            Some(value) => parse_duration("--throttle-patience", &value)?,
            None => keyaudit_scanner::THROTTLE_PATIENCE,
        };
        if account_timeout.is_zero() {
            bail!("--account-timeout: expected a duration above zero");
        }

        let defaults = ScanOptions::default();
        let owner_tags = match pick(args.owner_tags.clone(), file.owner_tags) {
            Some(list) => owner_tag_keys(&list)?,
            None => defaults.owner_tags.clone(),
        };
        let concurrency = args.concurrency.or(file.concurrency).unwrap_or(defaults.concurrency);
        if !(1..=256).contains(&concurrency) {
            bail!("--concurrency {concurrency}: expected 1 to 256");
        }
        let max_attempts = positive("--max-attempts", args.max_attempts.or(file.max_attempts).unwrap_or(5))?.get();
        let report_attempts = positive(
            "--report-attempts",
            args.report_attempts.or(file.report_attempts).unwrap_or(defaults.report_policy.max_attempts),
        )?
        .get();
        let key_ids = match args.key_ids.or(file.key_ids).unwrap_or(KeyIdsArg::Failing) {
            KeyIdsArg::Failing => KeyIdMode::Failing,
            KeyIdsArg::All => KeyIdMode::All,
            KeyIdsArg::None => KeyIdMode::None,
        };
        let fail_on = match (args.fail_on, file.fail_on) {
            (Some(arg), _) => arg.resolve("--fail-on"),
            (None, Some(arg)) => arg.resolve("fail-on (the --config file)"),
            (None, None) => FailOn::Fail,
        };
        let suppressions = match args.suppressions.clone().or(file.suppressions) {
            Some(path) => {
                let loaded = crate::suppressions::load(&path)?;
                Some((path, loaded))
            }
            None => None,
        };
        let output_dir = args.output_dir.clone().or(file.output_dir);
        let baseline = args
            .baseline
            .clone()
            .or(file.baseline)
            .map(|path| crate::saved::baseline(&path, output_dir.as_deref()))
            .transpose()?;
        if fail_on == FailOn::NewlyFailing && baseline.is_none() {
            bail!(
                "--fail-on newly-failing: needs --baseline PREVIOUS.json or DIR (a finding is newly failing only \
                 against a baseline; a directory without a report yet makes a first run, where every failing finding \
                 is newly failing)"
            );
        }

        let filter = AccountFilter {
            ous: list(&args.ous, file.ou),
            accounts: account_ids("--account", &list(&args.accounts, file.account))?,
            exclude: account_ids("--exclude-account", &list(&args.exclude_accounts, file.exclude_account))?,
        };
        let outputs = OutputSpec::parse_all(&list(&args.outputs, file.output), output_dir.as_deref())?;
        let s3 = s3_options(
            args.s3_sse.or(file.s3_sse),
            pick(args.s3_kms_key_id.clone(), file.s3_kms_key_id),
            pick(args.s3_expected_owner.clone(), file.s3_expected_owner),
        )?;
        let security_lake_role = provider_role(
            pick(args.security_lake_role.clone(), file.security_lake_role),
            pick(args.security_lake_external_id.clone(), file.security_lake_external_id),
            &outputs,
        )?;
        let output_options = OutputOptions {
            sarif_include_pass: args.sarif_include_pass || file.sarif_include_pass.unwrap_or(false),
            ocsf_include_pass: args.ocsf_include_pass || file.ocsf_include_pass.unwrap_or(false),
            fail_on,
        };

        let securityhub_rps = positive("--securityhub-rps", args.securityhub_rps.unwrap_or(5))?;
        if !args.push_securityhub && (args.securityhub_region.is_some() || args.securityhub_rps.is_some()) {
            bail!("--securityhub-region and --securityhub-rps need --push-securityhub");
        }
        let push_securityhub = args.push_securityhub.then(|| (args.securityhub_region.clone(), securityhub_rps));

        Ok(Self {
            push_securityhub,
            profile: pick(args.profile.clone(), file.profile),
            region: pick(args.region.clone(), file.region),
            endpoint_url: pick(args.endpoint_url.clone(), file.endpoint_url),
            filter,
            role,
            external_id: pick(args.external_id.clone(), file.external_id),
            session_name,
            session_duration,
            as_of,
            rule_config,
            rules,
            fail_on,
            scan: ScanOptions {
                concurrency,
                report_policy: ReportPolicy { max_attempts: report_attempts, ..defaults.report_policy },
                key_ids,
                account_timeout,
                enrichment_timeout,
                owner_tags,
                ..defaults
            },
            iam_rps: positive("--iam-rps", args.iam_rps.or(file.iam_rps).unwrap_or(10))?,
            enrichment_rps: positive("--enrichment-rps", args.enrichment_rps.or(file.enrichment_rps).unwrap_or(10))?,
            sts_pace: crate::pacing::sts_pace(positive(
                "--sts-rps",
                args.sts_rps.or(file.sts_rps).unwrap_or(crate::pacing::STS_RATE),
            )?),
            org_paces: crate::pacing::OrgPaces::resolve(
                if args.org_pace.is_empty() { &file.org_pace } else { &args.org_pace },
                args.org_rps.or(file.org_rps).map(|n| positive("--org-rps", n)).transpose()?,
            )?,
            max_attempts,
            throttle_patience,
            outputs,
            output_options,
            s3,
            security_lake_role,
            suppressions,
            baseline,
        })
    }
}

/// `--s3-sse`, `--s3-kms-key-id`, `--s3-expected-owner`: a key implies SSE-KMS; SSE-S3 with a key is a
/// contradiction; the owner is a 12-digit account id.
fn s3_options(
    sse: Option<crate::args::SseArg>,
    kms_key_id: Option<String>,
    expected_owner: Option<String>,
) -> Result<crate::output::s3::S3Options> {
    use crate::args::SseArg;
    if sse == Some(SseArg::Aes256) && kms_key_id.is_some() {
        bail!("--s3-kms-key-id: SSE-KMS needs --s3-sse aws:kms (or no --s3-sse), not AES256");
    }
    if let Some(owner) = &expected_owner {
        keyaudit_core::ids::AccountId::parse(owner)
            .map_err(|e| anyhow::anyhow!("--s3-expected-owner {owner}: {e}; expected a 12-digit account id"))?;
    }
    let kms = sse == Some(SseArg::AwsKms) || kms_key_id.is_some();
    Ok(crate::output::s3::S3Options { kms_key_id, kms, expected_owner })
}

/// `--security-lake-role`, `--security-lake-external-id`: an IAM role ARN, for a Security Lake output in S3.
fn provider_role(
    arn: Option<String>,
    external_id: Option<String>,
    outputs: &[OutputSpec],
) -> Result<Option<crate::output::s3::ProviderRole>> {
    let Some(arn) = arn else {
        if external_id.is_some() {
            bail!("--security-lake-external-id needs --security-lake-role (the role it is given to)");
        }
        return Ok(None);
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let is_role = matches!(parts[..], ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && keyaudit_core::ids::AccountId::parse(account).is_ok()
            && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty()));
    if !is_role {
        bail!(
            "--security-lake-role {arn}: expected an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME (the custom \
             source's provider role, AmazonSecurityLake-Provider-SOURCE-REGION)"
        );
    }
    if !outputs.iter().any(|o| o.format == crate::output::Format::SecurityLake && o.is_s3()) {
        bail!(
            "--security-lake-role: no Security Lake output in S3 to write with it (-o security-lake=s3://BUCKET/ext/SOURCE/)"
        );
    }
    Ok(Some(crate::output::s3::ProviderRole { arn, external_id }))
}

/// `--owner-tags`: comma-separated IAM tag keys (1 to 128 characters each); "" means none.
fn owner_tag_keys(list: &str) -> Result<Vec<String>> {
    let keys: Vec<String> = list.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect();
    if let Some(bad) = keys.iter().find(|k| k.chars().count() > 128) {
        bail!("--owner-tags {bad:?}: expected IAM tag keys of at most 128 characters, separated by commas");
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tags_are_a_comma_list_and_empty_turns_them_off() {
        assert_eq!(owner_tag_keys("owner, email ,").unwrap(), ["owner", "email"]);
        assert!(owner_tag_keys("").unwrap().is_empty());
        assert!(owner_tag_keys(&"x".repeat(129)).is_err());
    }

    #[test]
    fn grace_days_are_severity_pairs_over_the_defaults() {
        let d = GraceDays::DEFAULT;
        assert_eq!(parse_grace_days("critical=3, low=60", d).unwrap(), GraceDays { critical: 3, low: 60, ..d });
        assert_eq!(parse_grace_days("", d).unwrap(), d);
        for bad in ["critical", "urgent=3", "high=soon", "high=-1"] {
            let err = parse_grace_days(bad, d).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--grace-days {bad:?}: expected SEVERITY=DAYS pairs")), "{err}");
        }
    }

    #[test]
    fn durations_accept_friendly_and_iso_forms() {
        assert_eq!(parse_duration("--x", "90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("--x", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("--x", "1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("--x", "PT1H").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("--x", "30d").unwrap(), Duration::from_secs(30 * 86_400), "days are 24 hours");
        let err = parse_duration("--account-timeout", "soon").unwrap_err().to_string();
        assert_eq!(err, "--account-timeout \"soon\": expected a duration such as 90s, 5m, 1h30m or 30d");
        assert!(parse_duration("--x", "-5s").is_err());
    }
}
