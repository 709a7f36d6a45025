//! The wire protocols of the calls keyaudit makes: Organizations (JSON 1.1, `X-Amz-Target`), STS and IAM (query
//! requests, XML answers), and AWS's error shapes for each.

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::Full;
use hyper::Response;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::model::Org;

/// One AWS request: which service and operation, the calling (or target) account, and its parameters.
pub(crate) struct Call {
    pub(crate) service: String,
    pub(crate) action: String,
    /// The account the signing key belongs to.
    pub(crate) account: String,
    /// Query parameters (STS, IAM) or the JSON body's top-level strings (Organizations).
    params: HashMap<String, String>,
}

impl Call {
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8], management: &str) -> Option<Self> {
        let auth = headers.get("authorization")?.to_str().ok()?;
        let scope = auth.split("Credential=").nth(1)?;
        let mut parts = scope.split('/');
        let key = parts.next()?;
        let service = parts.nth(2)?.to_owned();
        let account = match key.get(4..16) {
            Some(digits) if key.starts_with("ASIA") && digits.bytes().all(|b| b.is_ascii_digit()) => digits.to_owned(),
            _ => management.to_owned(),
        };
        if let Some(target) = headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
            let action = target.rsplit('.').next()?.to_owned();
            let json: Value = if body.is_empty() { json!({}) } else { serde_json::from_slice(body).ok()? };
            let params = json
                .as_object()
                .map(|o| o.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect())
                .unwrap_or_default();
            return Some(Self { service, action, account, params });
        }
        let text = std::str::from_utf8(body).ok()?;
        let params: HashMap<String, String> =
            text.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect();
        let action = params.get("Action")?.clone();
        Some(Self { service, action, account, params })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Form decoding: `+` is a space, `%XX` a byte.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer: status, content type, body.
pub(crate) struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    error_type: Option<&'static str>,
    /// For errors: which protocol's shape (JSON for Organizations, XML otherwise) is decided when sent.
    error: Option<(&'static str, String)>,
}

const IAM_XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

impl Answer {
    pub(crate) fn error(status: u16, code: &'static str, message: &str) -> Self {
        Self {
            status,
            content_type: "text/xml",
            body: String::new(),
            error_type: None,
            error: Some((code, message.into())),
        }
    }

    pub(crate) fn internal() -> Self {
        Self::error(500, "InternalFailure", "the simulator failed")
    }

    fn xml(body: String) -> Self {
        Self { status: 200, content_type: "text/xml", body, error_type: None, error: None }
    }

    fn json(value: &Value) -> Self {
        Self {
            status: 200,
            content_type: "application/x-amz-json-1.1",
            body: value.to_string(),
            error_type: None,
            error: None,
        }
    }

    /// Errors in the JSON protocol's shape (Organizations).
    pub(crate) fn in_json(mut self) -> Self {
        if let Some((code, message)) = self.error.take() {
            self.content_type = "application/x-amz-json-1.1";
            self.body = json!({"__type": code, "Message": message}).to_string();
            self.error_type = Some(code);
        }
        self
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let mut body = self.body;
        if let Some((code, message)) = &self.error {
            body = format!(
                "<ErrorResponse xmlns=\"{IAM_XMLNS}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}\
                 </Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                escape(message),
                request_id()
            );
        }
        let mut builder = Response::builder()
            .status(self.status)
            .header("content-type", self.content_type)
            .header("x-amzn-requestid", request_id())
            .header("date", crate::now().strftime("%a, %d %b %Y %H:%M:%S GMT").to_string());
        if let Some(kind) = self.error_type {
            builder = builder.header("x-amzn-errortype", kind);
        }
        builder.body(Full::new(Bytes::from(body))).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

pub(crate) fn json_response(status: u16, value: &Value) -> Response<Full<Bytes>> {
    let mut answer = Answer::json(value);
    answer.status = status;
    answer.content_type = "application/json";
    answer.into_response()
}

fn request_id() -> String {
    let n: u128 = rand::random();
    let h = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn stamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn query_answer(xmlns: &str, action: &str, result: &str) -> Answer {
    Answer::xml(format!(
        "<{action}Response xmlns=\"{xmlns}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{}\
         </RequestId></ResponseMetadata></{action}Response>",
        request_id()
    ))
}

pub(crate) fn generate_report(state: &str) -> Answer {
    query_answer(IAM_XMLNS, "GenerateCredentialReport", &format!("<State>{state}</State>"))
}

pub(crate) fn credential_report(csv: &str, generated: Timestamp) -> Answer {
    let content = base64::engine::general_purpose::STANDARD.encode(csv);
    query_answer(
        IAM_XMLNS,
        "GetCredentialReport",
        &format!(
            "<Content>{content}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>{}</GeneratedTime>",
            stamp(generated)
        ),
    )
}

/// IAM: ListAccessKeys and ListUserTags (the credential report is the simulator's own state).
pub(crate) fn iam(org: &Org, call: &Call) -> Answer {
    let Some(name) = call.param("UserName") else {
        return Answer::error(400, "ValidationError", "UserName is required");
    };
    let Some(user) = org.iam(&call.account).and_then(|i| i.users.iter().find(|u| u.name == name)) else {
        return Answer::error(404, "NoSuchEntity", &format!("The user with name {name} cannot be found."));
    };
    match call.action.as_str() {
        "ListAccessKeys" => {
            let members: String = user
                .keys
                .iter()
                .map(|k| {
                    format!(
                        "<member><UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>{}</Status>\
                         <CreateDate>{}</CreateDate></member>",
                        escape(&user.name),
                        k.id,
                        k.status,
                        stamp(k.created)
                    )
                })
                .collect();
            query_answer(
                IAM_XMLNS,
                "ListAccessKeys",
                &format!("<AccessKeyMetadata>{members}</AccessKeyMetadata><IsTruncated>false</IsTruncated>"),
            )
        }
        "ListUserTags" => {
            let members: String = user
                .tags
                .iter()
                .map(|(k, v)| format!("<member><Key>{}</Key><Value>{}</Value></member>", escape(k), escape(v)))
                .collect();
            query_answer(IAM_XMLNS, "ListUserTags", &format!("<Tags>{members}</Tags><IsTruncated>false</IsTruncated>"))
        }
        _ => Answer::error(400, "InvalidAction", "not simulated"),
    }
}

/// STS: GetCallerIdentity and AssumeRole (sessions whose key names the account: `ASIA` + id + `SIMK`).
pub(crate) fn sts(org: &Org, call: &Call, caller_arn: &str) -> Answer {
    match call.action.as_str() {
        "GetCallerIdentity" => {
            let (arn, account) = if call.account == org.management() {
                (caller_arn.to_owned(), org.management().to_owned())
            } else {
                (format!("arn:aws:sts::{0}:assumed-role/audit/keyaudit", call.account), call.account.clone())
            };
            query_answer(
                STS_XMLNS,
                "GetCallerIdentity",
                &format!(
                    "<Arn>{}</Arn><UserId>AIDASIMULATOR0000000</UserId><Account>{account}</Account>",
                    escape(&arn)
                ),
            )
        }
        "AssumeRole" => {
            let role = call.param("RoleArn").unwrap_or_default();
            let account = role.strip_prefix("arn:aws:iam::").and_then(|r| r.get(..12)).unwrap_or_default();
            if org.account(account).is_none() {
                return Answer::error(
                    403,
                    "AccessDenied",
                    &format!("User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role}"),
                );
            }
            let session = call.param("RoleSessionName").unwrap_or("keyaudit");
            let seconds: i64 = call.param("DurationSeconds").and_then(|d| d.parse().ok()).unwrap_or(3600);
            let expires = crate::now() + jiff::SignedDuration::from_secs(seconds);
            let role_name = role.rsplit('/').next().unwrap_or("role");
            query_answer(
                STS_XMLNS,
                "AssumeRole",
                &format!(
                    "<Credentials><AccessKeyId>ASIA{account}SIMK</AccessKeyId><SecretAccessKey>\
                     simulatorsimulatorsimulatorsimulator0000</SecretAccessKey><SessionToken>SIMULATED{account}\
                     </SessionToken><Expiration>{}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>\
                     AROASIMULATOR:{}</AssumedRoleId><Arn>arn:aws:sts::{account}:assumed-role/{}/{}</Arn>\
                     </AssumedRoleUser>",
                    stamp(expires),
                    escape(session),
                    escape(role_name),
                    escape(session)
                ),
            )
        }
        _ => Answer::error(400, "InvalidAction", "not simulated"),
    }
}

/// Organizations pages: at most 20 items, `NextToken` the next index.
const PAGE: usize = 20;

fn page<T>(items: &[T], call: &Call) -> (std::ops::Range<usize>, Option<String>) {
    let size = call.param("MaxResults").and_then(|m| m.parse().ok()).unwrap_or(PAGE).clamp(1, PAGE);
    let start = call.param("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0).min(items.len());
    let end = (start + size).min(items.len());
    (start..end, (end < items.len()).then(|| end.to_string()))
}

fn with_token(mut value: Value, token: Option<String>) -> Value {
    if let (Some(t), Some(o)) = (token, value.as_object_mut()) {
        o.insert("NextToken".into(), Value::String(t));
    }
    value
}

fn account_json(org: &Org, index: usize) -> Value {
    let a = &org.spec.organization.accounts[index];
    let status = match a.state.as_str() {
        "ACTIVE" | "PENDING_ACTIVATION" => "ACTIVE",
        "PENDING_CLOSURE" => "PENDING_CLOSURE",
        _ => "SUSPENDED",
    };
    json!({
        "Id": a.id,
        "Arn": format!("arn:aws:organizations::{}:account/{}/{}", org.management(), org.spec.organization.id, a.id),
        "Email": a.email,
        "Name": a.name,
        "Status": status,
        "State": a.state,
        "JoinedMethod": "CREATED",
        "JoinedTimestamp": 1_700_000_000.0,
    })
}

pub(crate) fn organizations(org: &Org, call: &Call) -> Answer {
    organizations_answer(org, call).in_json()
}

fn organizations_answer(org: &Org, call: &Call) -> Answer {
    let o = &org.spec.organization;
    let parent = call.param("ParentId").unwrap_or_default();
    let unknown_parent = || {
        Answer::error(
            400,
            "ParentNotFoundException",
            "We can't find a root or OU with the ParentId that you specified.",
        )
    };
    match call.action.as_str() {
        "DescribeOrganization" => Answer::json(&json!({"Organization": {
            "Id": o.id,
            "Arn": format!("arn:aws:organizations::{}:organization/{}", o.management_account_id, o.id),
            "FeatureSet": "ALL",
            "MasterAccountArn": format!("arn:aws:organizations::{0}:account/{1}/{0}", o.management_account_id, o.id),
            "MasterAccountId": o.management_account_id,
            "MasterAccountEmail": "management@example.com",
            "AvailablePolicyTypes": [],
        }})),
        "ListRoots" => Answer::json(&json!({"Roots": [{
            "Id": o.root_id,
            "Arn": format!("arn:aws:organizations::{}:root/{}/{}", o.management_account_id, o.id, o.root_id),
            "Name": "Root",
            "PolicyTypes": [],
        }]})),
        "ListOrganizationalUnitsForParent" => {
            if !org.is_parent(parent) {
                return unknown_parent();
            }
            let ids = org.child_ous.get(parent).map_or(&[][..], Vec::as_slice);
            let (range, token) = page(ids, call);
            let units: Vec<Value> = ids[range]
                .iter()
                .map(|&i| {
                    let ou = &o.ous[i];
                    json!({"Id": ou.id, "Name": ou.name,
                           "Arn": format!("arn:aws:organizations::{}:ou/{}/{}", o.management_account_id, o.id, ou.id)})
                })
                .collect();
            Answer::json(&with_token(json!({"OrganizationalUnits": units}), token))
        }
        "ListAccountsForParent" => {
            if !org.is_parent(parent) {
                return unknown_parent();
            }
            let ids = org.child_accounts.get(parent).map_or(&[][..], Vec::as_slice);
            let (range, token) = page(ids, call);
            let accounts: Vec<Value> = ids[range].iter().map(|&i| account_json(org, i)).collect();
            Answer::json(&with_token(json!({"Accounts": accounts}), token))
        }
        "ListChildren" => {
            if !org.is_parent(parent) {
                return unknown_parent();
            }
            let (ids, kind): (Vec<&str>, &str) = match call.param("ChildType") {
                Some("ACCOUNT") => (
                    org.child_accounts
                        .get(parent)
                        .map_or(&[][..], Vec::as_slice)
                        .iter()
                        .map(|&i| o.accounts[i].id.as_str())
                        .collect(),
                    "ACCOUNT",
                ),
                Some("ORGANIZATIONAL_UNIT") => (
                    org.child_ous
                        .get(parent)
                        .map_or(&[][..], Vec::as_slice)
                        .iter()
                        .map(|&i| o.ous[i].id.as_str())
                        .collect(),
                    "ORGANIZATIONAL_UNIT",
                ),
                _ => {
                    return Answer::error(
                        400,
                        "InvalidInputException",
                        "ChildType must be ACCOUNT or ORGANIZATIONAL_UNIT",
                    );
                }
            };
            let (range, token) = page(&ids, call);
            let children: Vec<Value> = ids[range].iter().map(|id| json!({"Id": id, "Type": kind})).collect();
            Answer::json(&with_token(json!({"Children": children}), token))
        }
        "ListAccounts" => {
            let all: Vec<usize> = (0..o.accounts.len()).collect();
            let (range, token) = page(&all, call);
            let accounts: Vec<Value> = range.map(|i| account_json(org, i)).collect();
            Answer::json(&with_token(json!({"Accounts": accounts}), token))
        }
        "ListParents" => {
            let child = call.param("ChildId").unwrap_or_default();
            match org.account(child) {
                Some(a) => {
                    let kind = if a.parent_id == o.root_id { "ROOT" } else { "ORGANIZATIONAL_UNIT" };
                    Answer::json(&json!({"Parents": [{"Id": a.parent_id, "Type": kind}]}))
                }
                None => Answer::error(
                    400,
                    "ChildNotFoundException",
                    "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.",
                ),
            }
        }
        _ => Answer::error(400, "InvalidAction", "not simulated"),
    }
}

/// The truth a scan must find: every account with its OU path and state, and its users' keys.
pub(crate) fn oracle(org: &Org) -> Value {
    let accounts: Vec<Value> = org
        .spec
        .organization
        .accounts
        .iter()
        .map(|a| {
            let keys: Vec<Value> = org
                .iam(&a.id)
                .map(|i| {
                    i.users
                        .iter()
                        .flat_map(|u| {
                            u.keys.iter().map(|k| {
                                json!({"user": u.name, "id": k.id, "status": k.status,
                                       "last_rotated": stamp(k.last_rotated)})
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({"id": a.id, "name": a.name, "state": a.state, "parent_id": a.parent_id,
                   "ou_path": org.ou_path(&a.parent_id), "keys": keys})
        })
        .collect();
    let o = &org.spec.organization;
    let ous: Vec<Value> = o.ous.iter().map(|ou| json!({"id": ou.id, "parent_id": ou.parent_id})).collect();
    json!({"management_account_id": org.management(), "root_id": o.root_id, "ous": ous, "accounts": accounts})
}
