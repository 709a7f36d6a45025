//! `notify.toml`: who is told what, read and checked into core's [`Routing`] plus the channels' endpoints. Every
//! problem names its line (exit 2); webhook URLs and secrets may come from environment variables, so that they stay
//! out of the file.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::SignedDuration;
use keyaudit_core::eval::GraceDays;
use keyaudit_core::ids::AccountId;
use keyaudit_core::notice::{Address, Cadence, Route, RouteScope, Routing, Target};
use serde::Deserialize;
use toml::Spanned;

use keyaudit_config::GraceDaysTable;
use keyaudit_config::toml_errors::{describe, line_of};

use crate::{Result, bail, err};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    from: Spanned<String>,
    catch_all: Spanned<String>,
    allowed_domains: Option<Spanned<Vec<String>>>,
    timezone: Option<Spanned<String>>,
    report_url: Option<Spanned<String>>,
    exceptions: Option<String>,
    ses_configuration_set: Option<String>,
    min_interval: Option<Spanned<String>>,
    reminders: Option<Spanned<Vec<String>>>,
    overdue_every: Option<Spanned<String>>,
    grace_days: Option<GraceDaysTable>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    owners: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    slack: BTreeMap<String, Spanned<RawEndpoint>>,
    #[serde(default)]
    teams: BTreeMap<String, Spanned<RawEndpoint>>,
    #[serde(default)]
    webhook: BTreeMap<String, Spanned<RawEndpoint>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRoute {
    ou: Option<String>,
    account: Option<String>,
    /// Spanned, so that an error about the target names its own line, not the table's.
    to: Spanned<String>,
    escalate_to: Option<Spanned<String>>,
}

/// A webhook: its URL in the file, or the name of the environment variable that holds it; for a generic webhook,
/// optionally the variable holding its signing secret.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawEndpoint {
    Url(String),
    Table(EndpointTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct EndpointTable {
    url: Option<String>,
    url_env: Option<String>,
    secret_env: Option<String>,
}

/// Where a webhook's URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// Written in the file.
    Literal(String),
    /// In this environment variable.
    Env(String),
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: UrlSource,
    /// The environment variable with the HMAC-SHA256 signing secret (generic webhooks).
    pub secret_env: Option<String>,
}

/// The checked config.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The SES sender (a verified identity).
    pub from: Address,
    pub report_url: Option<String>,
    /// How to ask for an exception, in the notices.
    pub exceptions: String,
    pub ses_configuration_set: Option<String>,
    pub routing: Routing,
    /// `[grace-days]` given: deadlines in the notices use it instead of the report's.
    pub grace_days_given: bool,
    pub slack: BTreeMap<String, Endpoint>,
    pub teams: BTreeMap<String, Endpoint>,
    pub webhook: BTreeMap<String, Endpoint>,
}

impl NotifyConfig {
    /// The endpoint a webhook target names.
    pub fn endpoint(&self, target: &Target) -> Option<&Endpoint> {
        match target {
            Target::Slack(name) => self.slack.get(name),
            Target::Teams(name) => self.teams.get(name),
            Target::Webhook(name) => self.webhook.get(name),
            Target::Email(_) | Target::Sns(_) => None,
        }
    }
}

/// Reads and checks `path`; `report_grace` is the report's (used when the file has no `[grace-days]`).
pub fn load(path: &Path, report_grace: GraceDays) -> Result<NotifyConfig> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| err!("--config {shown}: cannot read the file ({e})"))?;
    parse(&text, report_grace).map_err(|e| err!("--config {shown}: {e}"))
}

fn duration(value: &Spanned<String>, key: &str, text: &str) -> Result<SignedDuration> {
    let at = line_of(text, value.span().start);
    let parsed = keyaudit_config::parse_duration(key, value.get_ref()).map_err(|e| err!("line {at}: {e}"))?;
    SignedDuration::try_from(parsed).map_err(|_| err!("line {at}: {key}: too long"))
}

fn parse(text: &str, report_grace: GraceDays) -> Result<NotifyConfig> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| err!("{}", describe(text, &e)))?;
    let line = |span: std::ops::Range<usize>| line_of(text, span.start);
    let address = |value: &Spanned<String>, key: &str| {
        Address::parse(value.get_ref()).ok_or_else(|| {
            err!(
                "line {}: {key} {:?}: expected one e-mail address such as security@corp.example",
                line(value.span()),
                value.get_ref()
            )
        })
    };
    let from = address(&raw.from, "from")?;
    let catch_all = address(&raw.catch_all, "catch-all")?;
    let timezone = match &raw.timezone {
        None => jiff::tz::TimeZone::UTC,
        Some(name) => jiff::tz::TimeZone::get(name.get_ref()).map_err(|_| {
            err!(
                "line {}: timezone {:?}: expected an IANA time zone such as Europe/Berlin or UTC",
                line(name.span()),
                name.get_ref()
            )
        })?,
    };
    let allowed_domains = raw.allowed_domains.as_ref().map_or_else(Vec::new, |d| d.get_ref().clone());
    if let (Some(bad), Some(given)) =
        (allowed_domains.iter().find(|d| Address::parse(&format!("x@{d}")).is_none()), &raw.allowed_domains)
    {
        bail!("line {}: allowed-domains {bad:?}: expected a domain such as corp.example", line(given.span()));
    }
    let report_url = match raw.report_url {
        Some(url) if !url.get_ref().starts_with("https://") => {
            bail!("line {}: report-url {:?}: expected an https:// URL", line(url.span()), url.get_ref())
        }
        other => other.map(Spanned::into_inner),
    };

    let endpoints = |table: BTreeMap<String, Spanned<RawEndpoint>>, kind: &str, signed: bool| {
        table
            .into_iter()
            .map(|(name, raw)| {
                let at = line(raw.span());
                if Target::parse(&format!("{kind}:{name}")).is_none() {
                    bail!("line {at}: [{kind}] {name:?}: a name is letters, digits, '-', '_' and '.'");
                }
                let (url, secret_env) = match raw.into_inner() {
                    RawEndpoint::Url(url) => (Some(url), None),
                    RawEndpoint::Table(t) => match (t.url, t.url_env) {
                        (Some(url), None) => (Some(url), t.secret_env),
                        (None, Some(var)) => {
                            let endpoint = Endpoint { url: UrlSource::Env(var), secret_env: t.secret_env };
                            check_secret(&endpoint, kind, &name, signed, at)?;
                            return Ok((name, endpoint));
                        }
                        _ => bail!("line {at}: [{kind}] {name}: give url = \"https://…\" or url-env = \"VARIABLE\""),
                    },
                };
                let url = url.unwrap_or_default();
                if !url.starts_with("https://") {
                    bail!("line {at}: [{kind}] {name}: expected an https:// URL (webhooks are sent over HTTPS only)");
                }
                let endpoint = Endpoint { url: UrlSource::Literal(url), secret_env };
                check_secret(&endpoint, kind, &name, signed, at)?;
                Ok((name, endpoint))
            })
            .collect::<Result<BTreeMap<_, _>>>()
    };
    let slack = endpoints(raw.slack, "slack", false)?;
    let teams = endpoints(raw.teams, "teams", false)?;
    let webhook = endpoints(raw.webhook, "webhook", true)?;

    let target = |value: &str, at: usize, key: &str| -> Result<Target> {
        let target = Target::parse(value).ok_or_else(|| {
            err!(
                "line {at}: {key} {value:?}: expected one e-mail address, or slack:NAME, teams:NAME, webhook:NAME \
                 (named in [slack], [teams], [webhook]) or sns:TOPIC-ARN"
            )
        })?;
        let known = match &target {
            Target::Slack(name) => slack.contains_key(name),
            Target::Teams(name) => teams.contains_key(name),
            Target::Webhook(name) => webhook.contains_key(name),
            Target::Email(_) | Target::Sns(_) => true,
        };
        if !known {
            bail!("line {at}: {key} {value:?}: no such entry in [{}]", target.channel());
        }
        Ok(target)
    };
    let routes = raw
        .route
        .into_iter()
        .map(|spanned| {
            let at = line(spanned.span());
            let r = spanned.into_inner();
            let scope = match (r.ou, r.account) {
                (Some(ou), None) => {
                    if !ou.starts_with('/') {
                        bail!("line {at}: [[route]] ou {ou:?}: expected an OU path such as /Root/Prod");
                    }
                    keyaudit_core::ou::split_ou_path(&ou)
                        .map_err(|p| err!("line {at}: [[route]] --ou {ou:?} is not a valid OU path: {p}"))?;
                    RouteScope::Ou(ou.trim_end_matches('/').to_owned())
                }
                (None, Some(account)) => {
                    RouteScope::Account(AccountId::parse(&account).map_err(|e| err!("line {at}: [[route]] {e}"))?)
                }
                _ => bail!("line {at}: [[route]]: give exactly one of ou = \"/Root/…\" or account = \"123456789012\""),
            };
            let to = target(r.to.get_ref(), line(r.to.span()), "to")?;
            let escalate_to = r.escalate_to.map(|e| target(e.get_ref(), line(e.span()), "escalate-to")).transpose()?;
            Ok(Route { scope, to, escalate_to })
        })
        .collect::<Result<Vec<_>>>()?;
    let owners = raw
        .owners
        .into_iter()
        .map(|(value, to)| Ok((value, target(to.get_ref(), line(to.span()), "owner")?)))
        .collect::<Result<BTreeMap<_, _>>>()?;

    let defaults = Cadence::default();
    let reminders = match raw.reminders {
        Some(list) => {
            let at = line(list.span());
            list.get_ref()
                .iter()
                .map(|r| duration(&Spanned::new(list.span(), r.clone()), "reminders", text))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| err!("{e} (line {at})"))?
        }
        None => defaults.reminders,
    };
    let cadence = Cadence {
        reminders,
        overdue_every: raw
            .overdue_every
            .map(|d| duration(&d, "overdue-every", text))
            .transpose()?
            .unwrap_or(defaults.overdue_every),
        min_interval: raw
            .min_interval
            .map(|d| duration(&d, "min-interval", text))
            .transpose()?
            .unwrap_or(defaults.min_interval),
    };
    if cadence.overdue_every.is_zero() {
        bail!("overdue-every: expected a duration above zero");
    }
    let grace_days_given = raw.grace_days.is_some();
    Ok(NotifyConfig {
        exceptions: raw.exceptions.unwrap_or_else(|| {
            format!("To ask for an exception, write to {catch_all} with the key id, the reason and an end date.")
        }),
        routing: Routing {
            owners,
            routes,
            catch_all,
            allowed_domains,
            timezone,
            cadence,
            grace_days: raw.grace_days.map_or(report_grace, |g| g.over(report_grace)),
        },
        grace_days_given,
        from,
        report_url,
        ses_configuration_set: raw.ses_configuration_set,
        slack,
        teams,
        webhook,
    })
}

fn check_secret(endpoint: &Endpoint, kind: &str, name: &str, signed: bool, at: usize) -> Result<()> {
    if endpoint.secret_env.is_some() && !signed {
        bail!("line {at}: [{kind}] {name}: secret-env is for [webhook] entries (Slack and Teams URLs carry their own)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
from = "keyaudit@corp.example"
catch-all = "security@corp.example"
report-url = "https://reports.corp.example/keyaudit/latest.html"
reminders = ["7d", "2d"]

[grace-days]
critical = 3

[[route]]
ou = "/Root/Prod"
to = "prod-oncall@corp.example"
escalate-to = "ciso@corp.example"

[[route]]
account = "123456789012"
to = "slack:payments"

[owners]
team-payments = "slack:payments"
platform = "teams:platform"
ops = "sns:arn:aws:sns:us-east-1:123456789012:keyaudit"
tickets = "webhook:servicenow"

[slack]
payments = "https://hooks.slack.com/services/T/B/x"

[teams]
platform = { url-env = "TEAMS_URL" }

[webhook]
servicenow = { url = "https://snow.corp.example/hook", secret-env = "SNOW_SECRET" }
"#;

    #[test]
    fn a_good_config_reads_into_routing_and_endpoints() {
        let c = parse(GOOD, GraceDays::DEFAULT).unwrap();
        assert_eq!(c.routing.routes.len(), 2);
        assert_eq!(c.routing.owners["platform"], Target::Teams("platform".into()));
        assert_eq!(c.routing.grace_days, GraceDays { critical: 3, ..GraceDays::DEFAULT });
        assert!(c.grace_days_given);
        assert_eq!(c.routing.cadence.reminders, [SignedDuration::from_hours(168), SignedDuration::from_hours(48)]);
        assert_eq!(c.teams["platform"].url, UrlSource::Env("TEAMS_URL".into()));
        assert_eq!(c.webhook["servicenow"].secret_env.as_deref(), Some("SNOW_SECRET"));
    }

    #[test]
    fn bad_configs_name_the_line_and_what_was_expected() {
        let base = "from = \"keyaudit@corp.example\"\ncatch-all = \"security@corp.example\"\n";
        let cases = [
            (
                "from = \"x\"\ncatch-all = \"security@corp.example\"\n",
                "line 1: from \"x\": expected one e-mail address",
            ),
            (&format!("{base}colour = 1\n") as &str, "line 3: unknown key `colour`"),
            (
                &format!("{base}[[route]]\nou = \"Prod\"\nto = \"a@b.example\"\n"),
                "line 3: [[route]] ou \"Prod\": expected an OU path",
            ),
            (&format!("{base}[[route]]\nou = \"/Root/a\\\\b\"\nto = \"a@b.example\"\n"), "line 3: [[route]] --ou"),
            (&format!("{base}[[route]]\nto = \"a@b.example\"\n"), "line 3: [[route]]: give exactly one of ou"),
            (
                &format!("{base}[[route]]\naccount = \"12\"\nto = \"a@b.example\"\n"),
                "line 3: [[route]] invalid AWS account id",
            ),
            (
                &format!("{base}[[route]]\nou = \"/Root/Prod\"\nto = \"slack:nope\"\n"),
                "line 5: to \"slack:nope\": no such entry in [slack]",
            ),
            (
                &format!("{base}[[route]]\nou = \"/Root/Prod\"\nto = \"a@b.example\"\nescalate-to = \"teams:x\"\n"),
                "line 6: escalate-to \"teams:x\": no such entry in [teams]",
            ),
            (
                &format!("{base}[owners]\nteam = \"slack:nowhere\"\n"),
                "line 4: owner \"slack:nowhere\": no such entry in [slack]",
            ),
            (
                &format!("{base}[owners]\nteam = \"a@b.example c@d.example\"\n"),
                "line 4: owner \"a@b.example c@d.example\": expected one e-mail address",
            ),
            (&format!("{base}[slack]\nx = \"http://hooks.example\"\n"), "line 4: [slack] x: expected an https:// URL"),
            (
                &format!("{base}[slack]\nx = {{ url-env = \"X\", secret-env = \"Y\" }}\n"),
                "line 4: [slack] x: secret-env is for [webhook] entries",
            ),
            (&format!("{base}min-interval = \"soon\"\n"), "line 3: min-interval \"soon\": expected a duration"),
            (
                &format!("{base}report-url = \"http://x.example\"\n"),
                "line 3: report-url \"http://x.example\": expected an https:// URL",
            ),
        ];
        for (text, says) in cases {
            let err = parse(text, GraceDays::DEFAULT).unwrap_err().to_string();
            assert!(err.starts_with(says), "expected {says:?}, got {err:?}\n--- file:\n{text}");
        }
    }
}
