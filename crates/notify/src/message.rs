//! A notice rendered for its channel: an e-mail (MIME, plain text and HTML from the templates), a Slack or Teams
//! post, a generic webhook's JSON, an SNS message.
//!
//! Values others control (account names, OU names, user names, tag values) reach every channel inert: control and
//! bidi characters are escaped first (`shown`), then each format escapes its own markup (HTML by minijinja, Slack's
//! `& < >`, Teams' Markdown). No header carries outside text: the subject holds counts and dates, the recipient is a
//! checked address, and every other header is keyaudit's own.

use std::path::Path;

use base64::Engine as _;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use keyaudit_core::eval::{Finding, calendar_days};
use keyaudit_core::notice::{Item, Line, Notice, RoutedBy, Target, Trigger};
use keyaudit_core::report::Report;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use keyaudit_core::text::shown;

use crate::{Result, StartedRotation, err};

const TEXT: &str = include_str!("templates/notice.txt");
const HTML: &str = include_str!("templates/notice.html");

/// At most this many keys are itemised in a Slack or Teams post (Slack allows 50 blocks); the rest are counted.
const CHAT_ITEMS: usize = 40;
/// Slack takes at most 3,000 characters in a section's text.
const SLACK_SECTION_CHARS: usize = 3_000;

/// `text` cut to at most `max` characters, an ellipsis marking the cut.
fn within_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// One key as a notice shows it; every text from outside keyaudit already escaped for display.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub account: String,
    pub account_id: String,
    pub ou_path: Option<String>,
    pub user: String,
    /// The key id, `slot N` when it is unknown, or `both keys` for a user-level finding.
    pub key: String,
    pub age_days: Option<i64>,
    pub last_used: String,
    pub rules: Vec<String>,
    pub verdict: &'static str,
    pub action: &'static str,
    pub action_reason: String,
    pub steps: Vec<String>,
    /// A rotation keyaudit started for the key's user: where the new key's secret is and when to switch by.
    pub rotation: Option<String>,
    pub due: Option<String>,
    pub days_left: Option<i64>,
    pub overdue_days: Option<i64>,
    /// `new`, `reminder`, `overdue`, or empty.
    pub status: &'static str,
    /// Who the key's notices go to (its owner, the route of its OU or account, or the catch-all): kept under this
    /// name for templates written before `sent_to`.
    pub owner: String,
    /// Who the key's notices go to, and why: `owner alice@…`, `the route of its OU or account: team@…`, `the
    /// catch-all, as it has no owner keyaudit could reach (reason): sec@…`.
    pub sent_to: String,
    pub fingerprints: Vec<String>,
}

/// What every channel renders.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub message_id: String,
    pub recipient: String,
    pub subject: String,
    /// `the AWS Organization o-…` or `the AWS account …`.
    pub scope: String,
    pub as_of: String,
    pub report_url: Option<String>,
    pub exceptions: String,
    pub own: Vec<KeyView>,
    pub escalated: Vec<KeyView>,
    /// Keys left out of this message to keep it within its channel's size (`and N more: see the report`).
    pub more: usize,
    /// Why `own` came to this recipient, for the opening sentence: `that you own`, `in the OUs or accounts routed
    /// to you`, `that have no owner keyaudit could reach`, or `that you own or that are routed to you`.
    pub why_you: &'static str,
}

/// The open rotations keyaudit started, by user ARN.
pub type Rotations = std::collections::BTreeMap<String, StartedRotation>;

/// The rotation line of a notice: where the new key is (the fetch command names the secret's Region: it lives in
/// the Region `apply` ran in, which need not be the user's default), and by when to switch; once the switch-by date
/// has passed with the rotation still open, it says the rotation stalled and what to do.
fn rotation_line(user: &str, r: &StartedRotation, as_of: Timestamp) -> String {
    let arn = &r.secret_arn;
    let region = keyaudit_core::ids::region_of_arn(arn).map(|r| format!(" --region {r}")).unwrap_or_default();
    let fetch = format!("aws secretsmanager get-secret-value{region} --secret-id {arn}");
    let by = r.switch_by.strftime("%Y-%m-%d");
    let (key, old) = (&r.new_key, &r.old_key);
    if r.switch_by < as_of {
        return format!(
            "STALLED: keyaudit created a new access key {key} for {user} to replace {old}, and the switch-by date {by} \
             has passed without the rotation finishing: {old} is still active (in use, or the new key is not). Move \
             the remaining applications to {key} now (its secret: {fetch}, with {user}'s own credentials); keyaudit \
             deactivates {old} once it has gone unused for the quiet period. If the new key is not wanted, ask your \
             security team to undo the rotation (keyaudit undo --key {key}). Until then keyaudit never deactivates \
             {key} as unused."
        );
    }
    format!(
        "keyaudit created a new access key {key} for {user}; its secret is in AWS Secrets Manager as {arn}, readable \
         with {user}'s own credentials only ({fetch}). Switch-by date {by}: move every application to the new key by \
         then; once this old key is no longer used, keyaudit deactivates it, and it can be re-activated if something \
         breaks. (The deadline is the date by which the old key must be fixed, rotated or gone, as the control \
         requires.)"
    )
}

fn key_view(
    report: &Report,
    item: &Item<'_>,
    line: &Line<'_>,
    as_of: Timestamp,
    rotations: &Rotations,
    tz: &TimeZone,
) -> KeyView {
    let f: &Finding = item.lead();
    let record = report.accounts.iter().find(|r| r.account.id == f.account_id);
    let account_name = record.and_then(|r| r.account.name.as_deref());
    let key = match &f.key {
        Some(k) => k.access_key_id.as_ref().map_or_else(|| format!("slot {}", k.slot.number()), |id| id.to_string()),
        None => "both keys".to_owned(),
    };
    let last_used = match f.key.as_ref().and_then(|k| k.last_used_at) {
        Some(t) => {
            let service = f.key.as_ref().and_then(|k| k.last_used_service.as_deref());
            format!(
                "last used {}{}",
                t.strftime("%Y-%m-%d"),
                service.map(|s| format!(" by {}", shown(s))).unwrap_or_default()
            )
        }
        None if f.key.is_some() => "never used".to_owned(),
        None => "-".to_owned(),
    };
    let overdue = item.due.filter(|due| *due < as_of);
    KeyView {
        account: account_name.map_or_else(|| f.account_id.to_string(), |n| format!("{} ({})", shown(n), f.account_id)),
        account_id: f.account_id.to_string(),
        ou_path: record.and_then(|r| r.account.ou_path.as_deref()).map(shown),
        user: shown(&f.user_name),
        key: shown(&key),
        age_days: f.key.as_ref().map(|k| k.age_days()),
        last_used,
        rules: item.findings.iter().map(|f| format!("{} {}", f.rule.id, f.rule.name)).collect(),
        verdict: f.verdict.as_str(),
        action: f.triage.action.as_str(),
        action_reason: f.triage.action_reason.as_deref().map(shown).unwrap_or_default(),
        steps: keyaudit_core::triage::steps(f).iter().map(|s| shown(s)).collect(),
        rotation: rotations.get(&f.user_arn).map(|r| shown(&rotation_line(&f.user_name, r, as_of))),
        due: item.due.map(|d| {
            let zone = tz.iana_name().unwrap_or("UTC");
            format!("{} {zone}", d.to_zoned(tz.clone()).strftime("%Y-%m-%d"))
        }),
        days_left: item.due.filter(|_| overdue.is_none()).map(|due| calendar_days(as_of, due, tz)),
        overdue_days: overdue.map(|due| calendar_days(due, as_of, tz)),
        status: line.trigger.map_or("", Trigger::as_str),
        owner: shown(&item.to.to_string()),
        sent_to: shown(&match &item.routed_by {
            RoutedBy::OwnerAddress | RoutedBy::OwnerMapping => format!("owner {}", item.to),
            RoutedBy::Route(_) => format!("the route of its OU or account: {}", item.to),
            RoutedBy::CatchAll(why) => {
                format!("the catch-all, as it has no owner keyaudit could reach ({why}): {}", item.to)
            }
        }),
        fingerprints: item.fingerprints(report),
    }
}

/// The view of one notice.
pub fn view(
    report: &Report,
    notice: &Notice<'_>,
    id: &str,
    report_url: Option<&str>,
    exceptions: &str,
    rotations: &Rotations,
    tz: &TimeZone,
) -> View {
    let as_of = report.run.as_of;
    let (mut own, mut escalated) = (Vec::new(), Vec::new());
    for line in &notice.lines {
        let k = key_view(report, line.item, line, as_of, rotations, tz);
        if line.escalated { escalated.push(k) } else { own.push(k) }
    }
    let owned = |l: &&Line<'_>| matches!(l.item.routed_by, RoutedBy::OwnerAddress | RoutedBy::OwnerMapping);
    let mine: Vec<&Line<'_>> = notice.lines.iter().filter(|l| !l.escalated).collect();
    let why_you = if mine.iter().all(owned) {
        "that you own"
    } else if mine.iter().all(|l| matches!(l.item.routed_by, RoutedBy::Route(_))) {
        "in the OUs or accounts routed to you"
    } else if mine.iter().all(|l| matches!(l.item.routed_by, RoutedBy::CatchAll(_))) {
        "that have no owner keyaudit could reach"
    } else {
        "that you own or that are routed to you"
    };
    let keys = own.len() + escalated.len();
    let overdue = own.iter().chain(&escalated).filter(|k| k.overdue_days.is_some()).count();
    let first_due = own.iter().chain(&escalated).filter_map(|k| k.due.clone()).min();
    let subject = format!(
        "[keyaudit] {keys} AWS access key{} to act on{}{}",
        if keys == 1 { "" } else { "s" },
        if overdue > 0 { format!(", {overdue} overdue") } else { String::new() },
        first_due.map(|d| format!(", first deadline {d}")).unwrap_or_default()
    );
    View {
        message_id: id.to_owned(),
        recipient: notice.to.to_string(),
        subject,
        scope: match report.run.scope.organization_id() {
            Some(org) => format!("the AWS Organization {org}"),
            None => "your AWS accounts".to_owned(),
        },
        as_of: as_of.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        report_url: report_url.map(str::to_owned),
        exceptions: exceptions.to_owned(),
        own,
        escalated,
        more: 0,
        why_you,
    }
}

/// The text and HTML templates: keyaudit's, or those of `--templates DIR` (`notice.txt`, `notice.html`).
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn load(dir: Option<&Path>) -> Result<Self> {
        let read = |name: &str, default: &'static str| -> Result<String> {
            match dir {
                Some(dir) if dir.join(name).is_file() => std::fs::read_to_string(dir.join(name))
                    .map_err(|e| err!("--templates {}: cannot read {name} ({e})", dir.display())),
                _ => Ok(default.to_owned()),
            }
        };
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, default) in [("notice.txt", TEXT), ("notice.html", HTML)] {
            let source = read(name, default)?;
            env.add_template_owned(name.to_owned(), source).map_err(|e| err!("--templates: {name}: {e}"))?;
        }
        Ok(Self { env })
    }

    fn render(&self, name: &str, view: &View) -> Result<String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(view)))
            .map_err(|e| err!("rendering {name}: {e}"))
    }

    /// The plain-text body (e-mail, SNS).
    pub fn text(&self, view: &View) -> Result<String> {
        self.render("notice.txt", view)
    }
}

/// A message ready for its channel.
#[derive(Debug, Clone)]
pub enum Rendered {
    /// An RFC 5322 message (MIME, UTF-8, plain text and HTML).
    Email { raw: Vec<u8> },
    /// A JSON body to POST (Slack, Teams, generic webhook).
    Post { body: Vec<u8> },
    /// An SNS message.
    Sns { subject: String, message: String },
}

impl Rendered {
    /// The outbox file's extension and contents.
    pub fn outbox(&self) -> (&'static str, Vec<u8>) {
        match self {
            Rendered::Email { raw } => ("eml", raw.clone()),
            Rendered::Post { body } => ("json", body.clone()),
            Rendered::Sns { subject, message } => (
                "json",
                serde_json::to_vec_pretty(&serde_json::json!({"Subject": subject, "Message": message}))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// What each channel delivers at most (bytes of the whole message, or of the JSON body), with a margin below the
/// service's own limit: SNS 256 KB per message, a Teams incoming-webhook card about 28 KB, SES 10 MB per message;
/// Slack's limits are per block (3,000 characters a section, 50 blocks), kept by `slack` itself; a generic webhook
/// has none published: 1 MiB, which common receivers take.
fn budget(to: &Target) -> usize {
    match to {
        Target::Sns(_) => 250_000,
        Target::Teams(_) => 27_000,
        Target::Email(_) => 9_000_000,
        Target::Slack(_) | Target::Webhook(_) => 1 << 20,
    }
}

impl Rendered {
    fn size(&self) -> usize {
        match self {
            Rendered::Email { raw } => raw.len(),
            Rendered::Post { body } => body.len(),
            Rendered::Sns { subject, message } => subject.len() + message.len(),
        }
    }
}

/// Renders `view` for `to`'s channel within the channel's size ([`budget`]): when the whole list does not fit, the
/// least urgent keys are left out (first notices before reminders, before overdue keys, escalations last) and the
/// message says `and N more: see the report` — never a message the channel cannot deliver. `from` is the e-mail
/// sender, `date` the message's date.
pub fn render(templates: &Templates, view: &View, to: &Target, from: &str, date: Timestamp) -> Result<Rendered> {
    let budget = budget(to);
    let whole = render_whole(templates, view, to, from, date)?;
    if whole.size() <= budget {
        return Ok(whole);
    }
    let total = view.own.len() + view.escalated.len();
    // The keys in the order they are kept: escalations, then the owner's keys by urgency.
    let rank = |k: &KeyView| match k.status {
        "overdue" => 0,
        "reminder" => 1,
        "new" => 2,
        _ => 3,
    };
    let mut own: Vec<&KeyView> = view.own.iter().collect();
    own.sort_by_key(|k| rank(k));
    let cut = |keep: usize| View {
        escalated: view.escalated.iter().take(keep).cloned().collect(),
        own: own.iter().take(keep.saturating_sub(view.escalated.len())).map(|k| (*k).clone()).collect(),
        more: total - keep.min(total),
        ..view.clone()
    };
    // The largest number of keys that fits (sizes grow with the keys kept): a binary search, a few renders.
    let (mut fits, mut over) = (0, total);
    while over - fits > 1 {
        let mid = (fits + over) / 2;
        if render_whole(templates, &cut(mid), to, from, date)?.size() <= budget {
            fits = mid;
        } else {
            over = mid;
        }
    }
    render_whole(templates, &cut(fits), to, from, date)
}

fn render_whole(templates: &Templates, view: &View, to: &Target, from: &str, date: Timestamp) -> Result<Rendered> {
    Ok(match to {
        Target::Email(address) => {
            let text = templates.text(view)?;
            let html = templates.render("notice.html", view)?;
            Rendered::Email { raw: mime(from, address.as_str(), &view.subject, &view.message_id, date, &text, &html) }
        }
        Target::Slack(_) => Rendered::Post { body: serde_json::to_vec(&slack(view))? },
        Target::Teams(_) => Rendered::Post { body: serde_json::to_vec(&teams(view))? },
        Target::Webhook(_) => Rendered::Post {
            body: serde_json::to_vec(&serde_json::json!({
                "type": "keyaudit.notice",
                "version": 1,
                "id": view.message_id,
                "recipient": view.recipient,
                "subject": view.subject,
                "scope": view.scope,
                "as_of": view.as_of,
                "report_url": view.report_url,
                "keys": view.own,
                "escalated": view.escalated,
                "more": view.more,
            }))?,
        },
        Target::Sns(_) => Rendered::Sns { subject: sns_subject(&view.subject), message: templates.text(view)? },
    })
}

/// SNS subjects: ASCII, no line breaks, at most 100 characters.
fn sns_subject(subject: &str) -> String {
    subject.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '-' }).take(100).collect()
}

/// A header value as RFC 2047 encoded words when it is not plain ASCII (it never carries a line break).
fn header_text(value: &str) -> String {
    if value.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return value.to_owned();
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    // Encoded words of at most 75 characters: chunks of whole characters of at most 45 bytes.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars().filter(|c| !c.is_control()) {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", b64.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", b64.encode(&chunk)));
    }
    words.join("\r\n ")
}

/// Base64 in lines of 76 characters (RFC 2045).
fn base64_lines(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    encoded.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("\r\n")
}

/// The e-mail, MIME multipart/alternative; the bodies in base64, so that no body line can be read as a header.
fn mime(from: &str, to: &str, subject: &str, id: &str, date: Timestamp, text: &str, html: &str) -> Vec<u8> {
    let boundary = format!("keyaudit-{id}");
    let part = |kind: &str, body: &str| {
        format!(
            "--{boundary}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64_lines(body)
        )
    };
    format!(
        "From: keyaudit <{from}>\r\nTo: <{to}>\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{id}@keyaudit.invalid>\r\n\
         MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\nContent-Type: multipart/alternative; \
         boundary=\"{boundary}\"\r\n\r\n{}{}--{boundary}--\r\n",
        header_text(subject),
        date.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        part("text/plain", text),
        part("text/html", html),
    )
    .into_bytes()
}

/// Slack `mrkdwn`: `&`, `<` and `>` are its control characters (links, mentions such as `<!channel>`).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn key_lines(k: &KeyView, escalated: bool) -> String {
    let deadline = match (&k.due, k.overdue_days, k.days_left) {
        (Some(due), Some(over), _) => format!("deadline to fix it {due}, OVERDUE by {over} days"),
        (Some(due), None, Some(left)) => format!("deadline to fix it {due}, in {left} days"),
        _ => "no deadline".to_owned(),
    };
    let status = if k.status.is_empty() { String::new() } else { format!("[{}] ", k.status.to_uppercase()) };
    let tail = if escalated {
        format!("sent to {}", k.sent_to)
    } else {
        format!(
            "what to do ({}): {}{}",
            k.action,
            k.action_reason,
            k.rotation.as_ref().map(|r| format!("\nrotation under way: {r}")).unwrap_or_default()
        )
    };
    format!(
        "{status}{} of user {} in account {}{}\n{} · {} · {}\n{tail}",
        k.key,
        k.user,
        k.account,
        k.ou_path.as_ref().map(|p| format!(", OU {p}")).unwrap_or_default(),
        k.rules.join(", "),
        k.last_used,
        deadline
    )
}

fn chat_sections(view: &View) -> Vec<(String, bool)> {
    view.own
        .iter()
        .map(|k| (key_lines(k, false), false))
        .chain(view.escalated.iter().map(|k| (key_lines(k, true), true)))
        .collect()
}

fn slack(view: &View) -> serde_json::Value {
    let mut blocks = vec![serde_json::json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{}*\n{} ({})", slack_escape(&view.subject), slack_escape(&view.scope), view.as_of)},
    })];
    let sections = chat_sections(view);
    for (text, escalated) in sections.iter().take(CHAT_ITEMS) {
        let prefix = if *escalated { "Escalated to you: " } else { "" };
        let text = within_chars(&format!("{prefix}{}", slack_escape(text)), SLACK_SECTION_CHARS);
        blocks.push(serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    let more = sections.len().saturating_sub(CHAT_ITEMS) + view.more;
    if more > 0 {
        blocks.push(serde_json::json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("and {more} more: see the report")}]}));
    }
    let mut footer = within_chars(&slack_escape(&view.exceptions), SLACK_SECTION_CHARS - 200);
    if let Some(url) = &view.report_url {
        footer.push_str(&format!(" <{}|Open the report>", slack_escape(url)));
    }
    blocks.push(serde_json::json!({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]}));
    serde_json::json!({"text": slack_escape(&view.subject), "blocks": blocks})
}

/// Teams' Markdown: the characters that make emphasis, code, links or tags are backslash-escaped, so that text
/// stays text (list markers cannot start a value: each sits after keyaudit's own words).
fn teams_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]()<>~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn teams(view: &View) -> serde_json::Value {
    let text = |t: &str, weight: &str| serde_json::json!({"type": "TextBlock", "text": teams_escape(t), "wrap": true, "weight": weight});
    let mut body = vec![text(&view.subject, "Bolder"), text(&format!("{} ({})", view.scope, view.as_of), "Default")];
    let sections = chat_sections(view);
    for (section, escalated) in sections.iter().take(CHAT_ITEMS) {
        let prefix = if *escalated { "Escalated to you: " } else { "" };
        body.push(text(&format!("{prefix}{section}"), "Default"));
    }
    let more = sections.len().saturating_sub(CHAT_ITEMS) + view.more;
    if more > 0 {
        body.push(text(&format!("and {more} more: see the report"), "Default"));
    }
    body.push(text(&view.exceptions, "Default"));
    let actions: Vec<serde_json::Value> = view
        .report_url
        .iter()
        .map(|url| serde_json::json!({"type": "Action.OpenUrl", "title": "Open the report", "url": url}))
        .collect();
    serde_json::json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions,
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_ascii_or_encoded_words_and_never_break_a_line() {
        assert_eq!(header_text("[keyaudit] 2 keys"), "[keyaudit] 2 keys");
        let encoded = header_text("Zahlungsverkehr – Süd\r\nBcc: all@corp.example");
        assert!(encoded.starts_with("=?UTF-8?B?"), "{encoded}");
        assert!(!encoded.replace("\r\n ", "").contains('\r') && !encoded.replace("\r\n ", "").contains('\n'));
        assert_eq!(sns_subject("a\r\nb – c"), "a--b - c");
    }

    #[test]
    fn chat_markup_of_outside_text_is_inert() {
        assert_eq!(slack_escape("<!channel> payments & <@U123>"), "&lt;!channel&gt; payments &amp; &lt;@U123&gt;");
        assert_eq!(
            teams_escape("[x](http://evil) **b** <at>all</at>"),
            "\\[x\\]\\(http://evil\\) \\*\\*b\\*\\* \\<at\\>all\\</at\\>"
        );
    }

    fn key(n: usize) -> KeyView {
        KeyView {
            account: format!("payments-{n} (000000000002)"),
            account_id: "000000000002".into(),
            ou_path: Some("/Root/Prod/Payments".into()),
            user: format!("svc-{n}"),
            key: format!("AKIA{n:016}"),
            age_days: Some(200),
            last_used: "last used 2026-11-27 by s3".into(),
            rules: vec!["KA-IAM-001 stale-access-key".into()],
            verdict: "fail",
            action: "rotate",
            action_reason: "in use; the user has a free key slot: create a second key, move the applications".into(),
            steps: keyaudit_core::triage::Action::Rotate.steps(&format!("svc-{n}"), Some(&format!("AKIA{n:016}"))),
            rotation: None,
            due: Some("2026-12-28".into()),
            days_left: Some(30),
            overdue_days: None,
            status: if n.is_multiple_of(3) { "new" } else { "" },
            owner: "team@corp.example".into(),
            sent_to: "owner team@corp.example".into(),
            fingerprints: vec![format!("{n:064}")],
        }
    }

    #[test]
    fn a_recipient_of_500_keys_gets_a_message_each_channel_can_deliver() {
        let templates = Templates::load(None).unwrap();
        let view = View {
            message_id: "0123456789abcdef".into(),
            recipient: "team@corp.example".into(),
            subject: "[keyaudit] 500 AWS access keys to act on".into(),
            scope: "the AWS Organization o-example".into(),
            as_of: "2026-11-28 12:00 UTC".into(),
            report_url: Some("https://reports.corp.example/keyaudit.html".into()),
            exceptions: "To ask for an exception, write to security@corp.example.".into(),
            own: (0..490).map(key).collect(),
            escalated: (490..500).map(key).collect(),
            more: 0,
            why_you: "that you own",
        };
        let date: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let targets =
            ["sns:arn:aws:sns:us-east-1:123456789012:t", "teams:t", "slack:s", "webhook:w", "team@corp.example"];
        for to in targets.map(|t| Target::parse(t).unwrap()) {
            let rendered = render(&templates, &view, &to, "keyaudit@corp.example", date).unwrap();
            let (limit, text) = match &rendered {
                Rendered::Sns { message, .. } => (256 * 1024, message.clone()),
                Rendered::Email { raw } => (10 * 1024 * 1024, String::from_utf8_lossy(raw).into_owned()),
                Rendered::Post { body } if matches!(to, Target::Teams(_)) => {
                    (28 * 1024, String::from_utf8_lossy(body).into_owned())
                }
                Rendered::Post { body } => (1 << 20, String::from_utf8_lossy(body).into_owned()),
            };
            assert!(rendered.size() <= limit, "{to}: {} bytes", rendered.size());
            if let Target::Slack(_) = to {
                let body: serde_json::Value = serde_json::from_str(&text).unwrap();
                let blocks = body["blocks"].as_array().unwrap();
                assert!(blocks.len() <= 50, "{} blocks", blocks.len());
                for b in blocks {
                    let t = b["text"]["text"].as_str().or(b["elements"][0]["text"].as_str()).unwrap();
                    assert!(t.chars().count() <= 3_000, "a section of {} characters", t.chars().count());
                }
            }
            // What is left out is said: the SNS text has room for a part of the list only.
            if matches!(to, Target::Sns(_) | Target::Teams(_) | Target::Slack(_)) {
                assert!(text.contains("more"), "{to}: the cut is not said");
            }
            if let Target::Webhook(_) = to {
                let body: serde_json::Value = serde_json::from_str(&text).unwrap();
                let listed = body["keys"].as_array().unwrap().len() + body["escalated"].as_array().unwrap().len();
                assert_eq!(listed + body["more"].as_u64().unwrap() as usize, 500);
            }
        }
        // The escalations are never the ones left out.
        if let Rendered::Sns { message, .. } =
            render(&templates, &view, &targets.map(|t| Target::parse(t).unwrap())[0], "k@corp.example", date).unwrap()
        {
            assert!(message.contains("OVERDUE KEYS ESCALATED TO YOU (10)"), "{}", &message[..300]);
            assert!(message.contains("more key(s): see the report"));
        }
    }
}
