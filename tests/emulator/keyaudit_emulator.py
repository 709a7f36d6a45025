"""keyaudit's AWS emulator: moto's WSGI app, served in-process, plus test-only control routes.

Plain moto cannot age keys, change an account's state or inject faults. This launcher runs moto's own WSGI
application (``DomainDispatcherApplication(create_backend_app)``) behind a small middleware that adds:

  POST   /_keyaudit/reset            moto reset + clear faults and the request log
  POST   /_keyaudit/seed             seed an organization from a JSON spec (through the AWS API, with boto3)
  POST   /_keyaudit/keys/backdate    set a key's CreateDate (and last-used date) in moto's IAM backend:
                                     {account_id, user_name, access_key_id, created | age_days,
                                     last_used? | last_used_days?}
  POST   /_keyaudit/keys             change a user's keys as the user would, between two scans:
                                     {account_id, user_name, op: create|deactivate|activate|delete, access_key_id?}
                                     answers {access_key_id}; op tag (with tags: {key: value}) tags the user, op
                                     delete_user deletes the user with its keys
  POST   /_keyaudit/root-keys        give an account's root user access keys (moto has none):
                                     {account_id, keys: [{created, status?: Active|Inactive, last_used?}]}
  POST   /_keyaudit/reports          {generation_ms?: N}: a new credential report takes N ms to generate
  GET    /_keyaudit/reports          the cached credential reports: {account_id: generated_time}
  DELETE /_keyaudit/reports          forget every cached report (as if their 4 hours had passed)
  POST   /_keyaudit/clock            {skew_seconds: N}: every AWS answer's Date header is N seconds off
  POST   /_keyaudit/accounts/state   set an Organizations account's State (SUSPENDED, PENDING_CLOSURE, ...)
  POST   /_keyaudit/faults           add a fault rule for matching requests: {service?, action?, account_id?, user_name?,
                                     error_code?, http_status?, message?, latency_ms?, probability?, times?,
                                     report_content? (a successful GetCredentialReport with this CSV)}
  DELETE /_keyaudit/faults           remove every fault rule
  POST   /_keyaudit/securityhub      {account_id, enabled?: bool, unprocessed?: {finding id: error code}}: turn an
                                     account's Security Hub off or on (on by default), or make BatchUpdateFindings
                                     leave chosen findings unprocessed
  POST   /_keyaudit/sts              {"expiry_seconds": N}: AssumeRole credentials expire N seconds after issue
                                     (moto issues them for the requested duration; null restores that)
  POST   /_keyaudit/ses              {identities?: [address], sandbox?: bool, max_send_rate?: N}: verify SES identities
                                     (as CreateEmailIdentity does) and set GetAccount's answer; in the sandbox
                                     SendEmail refuses unverified recipients (MessageRejected), as on AWS
  GET    /_keyaudit/ses/sent         every message SES accepted (source, destinations, raw MIME)
  GET    /_keyaudit/sns/published    every message published to an SNS topic (topic, subject, message)
  GET    /_keyaudit/secrets          {account_id}: the account's Secrets Manager secrets as an administrator sees them
                                     (name, ARN, region, KMS key, tags, policy, deleted, number of values; no values)
  POST   /_keyaudit/quotas           {organizations: bool}: enforce AWS Organizations' published throttling limits
                                     (also the launcher's --org-quotas): one token bucket per row of AWS's table and
                                     calling account, TooManyRequestsException (HTTP 400) when it is empty
  GET    /_keyaudit/quotas           {enabled, served: {action: n}, throttled: {action: n}}
  GET    /_keyaudit/export           the organization (OUs, accounts with their parents and states) and every
                                     account's IAM users (keys, last uses, tags, root keys), as the benchmark's
                                     simulator (bench/simulator) takes them: the same organization served there
  GET    /_keyaudit/s3/objects       {bucket}: the bucket's objects as S3 stores them (key, size, content type,
                                     server-side encryption, KMS key id, the body as text and in base64)
  GET    /_keyaudit/requests         the request log: time, service, action, account (and IAM user) of every AWS call
  DELETE /_keyaudit/requests         clear the request log

Credential reports behave as AWS documents, not as plain moto (which rebuilds the report on every request):
GenerateCredentialReport freezes the account's report content at that moment (with the `<root_account>` row
AWS always writes first), answers STARTED, then INPROGRESS until `generation_ms` have passed, then COMPLETE,
and reuses that report for 4 hours; GetCredentialReport answers ReportNotPresent before any generation,
ReportInProgress while generating, ReportExpired after 4 hours, else the frozen content with GeneratedTime =
the generation time.

CloudTrail's LookupEvents (which moto lacks) is answered by cloudtrail.py as AWS's API reference documents it, quota
included (2 per second per account and Region): seed events with `POST /_keyaudit/cloudtrail {account_id, region,
events}`, read `{served, throttled}` with `GET /_keyaudit/cloudtrail`.

Security Hub's finding calls (BatchImportFindings, GetFindings, BatchUpdateFindings) are answered by securityhub.py
as AWS documents them (a new finding's workflow is set by its import, an existing one's only by
BatchUpdateFindings), not by moto's Security Hub.

Secrets Manager evaluates a secret's resource policy's explicit denies (principal, action, conditions on
aws:PrincipalArn) as AWS does and moto does not, and refuses a CreateSecret Name AWS would refuse.

S3 checks `x-amz-expected-bucket-owner` as AWS documents it (moto ignores it): a bucket owned by another account
answers 403 AccessDenied.

Requests are matched by service (SigV4 credential scope), action (X-Amz-Target or the Action= form field) and
account (the RoleArn of AssumeRole, else the account that owns the signing access key).

Usage: python keyaudit_emulator.py [--host 127.0.0.1] [--port 0]
Prints ``KEYAUDIT_EMULATOR_READY http://HOST:PORT`` on stdout once it accepts connections.
It binds to loopback only. It is a test tool: never point it at, or expose it to, anything else.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import email.utils
import io
import json
import random
import re
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.config import Config
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.access_control import IAMRequest
from moto.iam.models import get_account_id_from, iam_backends
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.organizations.models import organizations_backends
from moto.s3.models import s3_backends
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

from cloudtrail import CloudTrail
from securityhub import SecurityHub

CONTROL = "/_keyaudit/"
SCOPE_RE = re.compile(r"Credential=([A-Z0-9]+)/\d{8}/([^/]+)/([a-z0-9-]+)/aws4_request")
ROLE_ARN_RE = re.compile(r"arn:[a-z-]+:iam::(\d{12}):role/")
MANAGEMENT_ACCOUNT = "123456789012"
REPORT_TTL_SECONDS = 4 * 3600
REPORT_HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,"
    "access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,"
    "access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
IAM_XMLNS = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}


def parse_time(value: str) -> dt.datetime:
    """RFC 3339 -> naive UTC datetime, as moto's models keep them."""
    t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return t


# AWS Organizations' throttling limits ("Quotas for AWS Organizations", "Throttling limits"), per calling account:
# (operations, requests per second, burst). Whether one row is one bucket is not documented: the worst case (shared).
ORG_QUOTAS = [
    (("ListAccounts",), 8, 12),
    (("ListChildren",), 6, 10),
    (("ListParents", "ListAccountsForParent", "ListOrganizationalUnitsForParent"), 5, 8),
    (("DescribeOrganization", "ListRoots"), 1, 2),
    (("DescribeAccount",), 20, 30),
    (("ListTagsForResource",), 10, 15),
]


class Quotas:
    """Token buckets for Organizations, per (calling account, row), refilled continuously."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.enabled = False
        self.buckets: dict[tuple[str, int], list[float]] = {}
        self.served: dict[str, int] = {}
        self.throttled: dict[str, int] = {}

    def reset(self, enabled: bool = False) -> None:
        with self.lock:
            self.enabled = enabled
            self.buckets.clear()
            self.served.clear()
            self.throttled.clear()

    def admit(self, req: dict[str, Any]) -> bool:
        """Whether the request gets a token (always, when off or for another service)."""
        if not self.enabled or req.get("service") != "organizations":
            return True
        action = req.get("action") or ""
        row = next((i for i, (ops, _, _) in enumerate(ORG_QUOTAS) if action in ops), None)
        if row is None:
            return True
        _, rate, burst = ORG_QUOTAS[row]
        now = time.monotonic()
        with self.lock:
            bucket = self.buckets.setdefault((req.get("account_id") or "", row), [float(burst), now])
            bucket[0] = min(float(burst), bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                self.served[action] = self.served.get(action, 0) + 1
                return True
            self.throttled[action] = self.throttled.get(action, 0) + 1
            return False

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"enabled": self.enabled, "served": dict(self.served), "throttled": dict(self.throttled)}


THROTTLED = {
    "error_code": "TooManyRequestsException",
    "http_status": 400,
    "message": "You have sent too many requests in too short a period of time. The quota helps protect against "
               "denial-of-service attacks. Try again later.",
}


class State:
    """Faults and the request log, shared by every request thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.rng = random.Random(1234)
        self.assume_role_expiry: float | None = None
        # account id -> {"content": CSV, "generated": epoch seconds, "ready": epoch seconds}
        self.reports: dict[str, dict[str, Any]] = {}
        self.report_generation_ms = 0
        self.report_generation_ms_max = 0
        self.root_keys: dict[str, list[dict[str, Any]]] = {}
        self.clock_skew = 0.0
        # SES v2 GetAccount's answer (moto has none): production access by default, or the sandbox.
        self.ses = {"sandbox": False, "max_send_rate": 14.0}

    def reset(self) -> None:
        with self.lock:
            self.ses = {"sandbox": False, "max_send_rate": 14.0}
            self.assume_role_expiry = None
            self.reports.clear()
            self.report_generation_ms = 0
            self.report_generation_ms_max = 0
            self.root_keys.clear()
            self.clock_skew = 0.0
            self.faults.clear()
            self.requests.clear()
            self.max_in_flight = 0
            self.rng = random.Random(1234)

    def match_fault(self, req: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            for fault in self.faults:
                if any(fault.get(k) not in (None, req.get(k)) for k in ("service", "action", "account_id", "user_name")):
                    continue
                if fault.get("times") is not None and fault["times"] <= 0:
                    continue
                if self.rng.random() >= fault.get("probability", 1.0):
                    continue
                if fault.get("times") is not None:
                    fault["times"] -= 1
                fault["hits"] = fault.get("hits", 0) + 1
                return dict(fault)
        return None


# Security Hub and SES v2 are REST APIs: their actions are named by method and path.
REST_ACTIONS = {
    "securityhub": {
        ("POST", "/findings/import"): "BatchImportFindings",
        ("POST", "/findings"): "GetFindings",
        ("PATCH", "/findings/batchupdate"): "BatchUpdateFindings",
    },
    "ses": {
        ("POST", "/v2/email/outbound-emails"): "SendEmail",
        ("GET", "/v2/email/account"): "GetAccount",
    },
}


def describe_request(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = SCOPE_RE.search(auth)
    access_key, region, service = (scope.group(1), scope.group(2), scope.group(3)) if scope else (None, None, None)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    form = {}
    if service in REST_ACTIONS:
        target = REST_ACTIONS[service].get((environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")), "")
    elif not target and body:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    action = target.rsplit(".", 1)[-1] if target else form.get("Action")
    if service == "s3":  # path-style: /BUCKET/KEY
        _, _, key = environ.get("PATH_INFO", "").lstrip("/").partition("/")
        method = environ.get("REQUEST_METHOD", "")
        action = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
            method) if key else {"PUT": "CreateBucket", "HEAD": "HeadBucket"}.get(method)
    account_id = None
    role_arn = form.get("RoleArn")
    if role_arn and ROLE_ARN_RE.match(role_arn):
        account_id = ROLE_ARN_RE.match(role_arn).group(1)
    elif access_key:
        account_id = get_account_id_from(access_key)
    return {"service": service, "action": action, "account_id": account_id, "region": region,
            "user_name": form.get("UserName")}


SECRET_NAME_RE = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


def secret_name_invalid(body: bytes, req: dict[str, Any]) -> dict[str, Any] | None:
    """CreateSecret's Name as AWS's API reference constrains it (moto accepts any): ASCII letters, digits and
    /_+=.@- only, 1 to 512 characters; else ValidationException."""
    if req.get("service") != "secretsmanager" or req.get("action") != "CreateSecret":
        return None
    try:
        name = json.loads(body or b"{}").get("Name", "")
    except ValueError:
        return None
    if SECRET_NAME_RE.fullmatch(name):
        return None
    return {"error_code": "ValidationException", "http_status": 400,
            "message": "Invalid name. Must be a valid name containing alphanumeric characters, or any of the "
                       "following: -/_+=.@!"}


def principal_arn(environ: dict[str, Any]) -> str | None:
    """aws:PrincipalArn of the signing credentials: an IAM user's ARN, or an assumed role's role ARN."""
    from moto.sts.models import sts_backends

    scope = SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not scope:
        return None
    access_key = scope.group(1)
    account = get_account_id_from(access_key)
    for user in iam_backend(account).users.values():
        if any(k.access_key_id == access_key for k in user.access_keys):
            return user.arn
    for role in sts_backends[account]["aws"].assumed_roles:
        if role.access_key_id == access_key:
            return role.role_arn
    return None


def secret_policy_denial(environ: dict[str, Any], body: bytes, req: dict[str, Any]) -> dict[str, Any] | None:
    """A secret's resource policy, as AWS evaluates it and moto does not: an explicit Deny that matches the call
    (principal, action with wildcards, and conditions on aws:PrincipalArn: StringEquals, StringNotEquals, ArnEquals,
    ArnNotEquals, ArnLike, ArnNotLike) refuses it with AccessDeniedException, whatever the caller's identity policies
    allow. Allow statements add nothing here (the caller's own policies are moto's to check); a condition on another
    key keeps its statement from applying."""
    if req.get("service") != "secretsmanager" or not req.get("action"):
        return None
    try:
        secret_id = json.loads(body or b"{}").get("SecretId")
    except ValueError:
        return None
    if not secret_id or not req.get("region") or not req.get("account_id"):
        return None
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[req["account_id"]][req["region"]]
    if secret_id not in backend.secrets:
        return None
    policy = getattr(backend.secrets[secret_id], "policy", None)
    if not policy:
        return None
    caller = principal_arn(environ) or ""
    action = f"secretsmanager:{req['action']}"

    def listed(value: Any) -> list[str]:
        return value if isinstance(value, list) else [value]

    def like(pattern: str, value: str) -> bool:
        return re.fullmatch(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), value) is not None

    def conditions_hold(conditions: dict[str, Any]) -> bool:
        for operator, pairs in conditions.items():
            for key, wanted in pairs.items():
                if key.lower() != "aws:principalarn":
                    return False
                values = listed(wanted)
                matched = any(like(v, caller) if "Like" in operator else v == caller for v in values)
                if operator in ("StringEquals", "ArnEquals", "ArnLike", "StringLike") and not matched:
                    return False
                if operator in ("StringNotEquals", "ArnNotEquals", "ArnNotLike", "StringNotLike") and matched:
                    return False
                if operator not in ("StringEquals", "ArnEquals", "ArnLike", "StringLike", "StringNotEquals",
                                    "ArnNotEquals", "ArnNotLike", "StringNotLike"):
                    return False
        return True

    for statement in listed(json.loads(policy).get("Statement", [])):
        if statement.get("Effect") != "Deny":
            continue
        principal = statement.get("Principal")
        principals = ["*"] if principal == "*" else listed((principal or {}).get("AWS", []))
        if "*" not in principals and caller not in principals:
            continue
        if not any(like(a.lower(), action.lower()) for a in listed(statement.get("Action", []))):
            continue
        if conditions_hold(statement.get("Condition", {})):
            return {"error_code": "AccessDeniedException", "http_status": 400,
                    "message": f"User: {caller} is not authorized to perform: {action} on resource: {secret_id} "
                               "with an explicit deny in a resource-based policy"}
    return None


def error_response(req: dict[str, Any], fault: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    code = fault.get("error_code", "Throttling")
    message = fault.get("message", "Injected by the keyaudit emulator")
    status = int(fault.get("http_status", 400))
    reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 410: "Gone"}.get(status, "Error")
    request_id = str(uuid.uuid4())
    if req.get("service") == "s3":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{request_id}</RequestId></Error>")
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    elif req.get("service") in ("iam", "sts"):
        xmlns = IAM_XMLNS[req["service"]]
        body = (
            f'<ErrorResponse xmlns="{xmlns}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    else:
        body = json.dumps({"__type": code, "Message": message})
        headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", code),
        ]
    return f"{status} {reason}", headers, body.encode()


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def credential_report_response(content: str, generated: float | None = None) -> bytes:
    """A successful GetCredentialReport answer carrying `content`, generated at `generated` (default now)."""
    encoded = base64.b64encode(content.encode()).decode()
    return (
        f'<GetCredentialReportResponse xmlns="{IAM_XMLNS["iam"]}"><GetCredentialReportResult>'
        f"<Content>{encoded}</Content><ReportFormat>text/csv</ReportFormat>"
        f"<GeneratedTime>{iso(generated if generated is not None else time.time())}</GeneratedTime>"
        f"</GetCredentialReportResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</GetCredentialReportResponse>"
    ).encode()


def generate_report_response(state: str) -> bytes:
    return (
        f'<GenerateCredentialReportResponse xmlns="{IAM_XMLNS["iam"]}"><GenerateCredentialReportResult>'
        f"<State>{state}</State></GenerateCredentialReportResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</GenerateCredentialReportResponse>"
    ).encode()


def report_time(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def credential_report_csv(account_id: str, root_keys: list[dict[str, Any]]) -> str:
    """The account's credential report as AWS writes it: the header, the `<root_account>` row, then one row per
    IAM user, quoted as CSV. Unlike moto's own report, a key's last use carries its service and region, and a key
    re-activated after its creation shows the re-activation as `last_rotated` (see `backdate_key`)."""
    out = io.StringIO()
    out.write(REPORT_HEADER + "\n" + root_row(account_id, root_keys) + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for user in iam_backend(account_id).users.values():
        row = [user.name, user.arn, report_time(user.create_date), "false", "not_supported", "N/A", "N/A", "false"]
        for i in range(2):
            if i >= len(user.access_keys):
                row += ["false", "N/A", "N/A", "N/A", "N/A"]
                continue
            key = user.access_keys[i]
            last_rotated = getattr(key, "keyaudit_last_rotated", None) or key.create_date
            used = key.last_used
            row += ["true" if key.status == "Active" else "false", report_time(last_rotated)]
            row += [report_time(used.timestamp), used.region, used.service] if used else ["N/A", "N/A", "N/A"]
        row += ["false", "N/A", "false", "N/A"]
        writer.writerow(row)
    return out.getvalue()


def root_row(account_id: str, keys: list[dict[str, Any]]) -> str:
    """The `<root_account>` row AWS writes first in every credential report (moto writes none)."""
    slots = []
    for i in range(2):
        key = keys[i] if i < len(keys) else None
        if key is None:
            slots.append("false,N/A,N/A,N/A,N/A")
            continue
        active = "true" if key.get("status", "Active") == "Active" else "false"
        created = parse_time(key["created"]).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        used = key.get("last_used")
        used_cols = (f"{parse_time(used).strftime('%Y-%m-%dT%H:%M:%S+00:00')},us-east-1,iam" if used
                     else "N/A,N/A,N/A")
        slots.append(f"{active},{created},{used_cols}")
    return (f"<root_account>,arn:aws:iam::{account_id}:root,2019-01-01T00:00:00+00:00,not_supported,"
            f"no_information,not_supported,not_supported,true,{slots[0]},{slots[1]},false,N/A,false,N/A")


class Emulator:
    def __init__(self) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.state = State()
        self.hub = SecurityHub()
        self.trail = CloudTrail()
        self.quotas = Quotas()
        # --org-quotas: whether a reset leaves the quotas on.
        self.org_quotas = False
        self.url = ""

    # ---- WSGI entry point -------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL):
            return self.control(environ, start_response, path[len(CONTROL):].strip("/"))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        req = describe_request(environ, body)
        entry = {"t": time.time(), **req, "status": None}
        with self.state.lock:
            self.state.in_flight += 1
            self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
            self.state.requests.append(entry)
        real_start_response = start_response

        def start_response(status: str, headers: list, exc_info: Any = None) -> Any:  # noqa: F811
            entry["status"] = int(status.split(" ", 1)[0])
            return real_start_response(status, headers, exc_info)

        try:
            fault = self.state.match_fault(req)
            if fault and fault.get("latency_ms"):
                time.sleep(fault["latency_ms"] / 1000.0)
            if fault and fault.get("report_content") is not None:
                payload = credential_report_response(fault["report_content"])
                start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))])
                return [payload]
            if fault and fault.get("error_code"):
                return self.respond_error(start_response, req, fault)
            if not self.quotas.admit(req):
                return self.respond_error(start_response, req, THROTTLED)
            denied = (self.authorize(environ, body, req) or self.missing_role(body, req)
                      or self.bucket_owner(environ, req) or secret_name_invalid(body, req)
                      or secret_policy_denial(environ, body, req))
            if denied:
                return self.respond_error(start_response, req, denied)
            if req.get("service") == "iam" and req.get("action") in ("GenerateCredentialReport", "GetCredentialReport"):
                return self.credential_report(start_response, req)
            if req.get("service") == "ses" and req.get("action") in ("GetAccount", "SendEmail"):
                answer = self.ses_call(req, body)
                if answer is not None:
                    return answer(start_response)
            account = req.get("account_id") or MANAGEMENT_ACCOUNT
            if req.get("service") == "securityhub" and req.get("action"):
                answer = self.hub.handle(req["action"], account, environ, body)
                return self.respond_modelled(start_response, req, answer, "application/json")
            if req.get("service") == "cloudtrail" and req.get("action"):
                answer = self.trail.handle(req["action"], account, req.get("region") or "us-east-1", body)
                return self.respond_modelled(start_response, req, answer, "application/x-amz-json-1.1")
            return self.passthrough(environ, start_response, req)
        finally:
            with self.state.lock:
                self.state.in_flight -= 1

    @classmethod
    def respond_modelled(cls, start_response: Any, req: dict[str, Any], answer: tuple[int, dict[str, Any]],
                         content_type: str) -> Any:
        """The answer of a service this emulator models itself (Security Hub, CloudTrail): `(status, body)`, an
        error body being `{__type, Message}`."""
        status, body = answer
        if status != 200:
            return cls.respond_error(start_response, req, {"error_code": body["__type"], "http_status": status,
                                                           "message": body["Message"]})
        payload = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
        return [payload]

    @staticmethod
    def respond_error(start_response: Any, req: dict[str, Any], fault: dict[str, Any]) -> Any:
        status, headers, payload = error_response(req, fault)
        start_response(status, headers + [("Content-Length", str(len(payload)))])
        return [payload]

    @staticmethod
    def respond_xml(start_response: Any, payload: bytes) -> Any:
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))])
        return [payload]

    @staticmethod
    def authorize(environ: dict[str, Any], body: bytes, req: dict[str, Any]) -> dict[str, Any] | None:
        """With moto's IAM policy enforcement on (`POST /moto-api/reset-auth` with `0`; off by default), every call
        is checked here the way moto checks the calls it answers: the signature, then the caller's policies for the
        action (against resource `*`, as moto does; AssumeRole against the role, with its trust policy). Checking
        here covers the credential-report calls this emulator answers itself, and answers a denial in AWS's own
        error shape for the service (moto's IAM/STS denials use an `<Errors>` wrapper the SDKs do not parse).
        Returns the error to answer with, or None."""
        if ActionAuthenticatorMixin.request_count < moto_settings.INITIAL_NO_AUTH_ACTION_COUNT or not req.get("action"):
            return None
        if req.get("action") == "GetCallerIdentity":
            return None
        resource = "*"
        if req.get("action") == "AssumeRole":
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            resource = form.get("RoleArn", "*")
        query = environ.get("QUERY_STRING")
        path = environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
        scope = SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        caller_account = get_account_id_from(scope.group(1)) if scope else MANAGEMENT_ACCOUNT
        try:
            request = IAMRequest(account_id=caller_account,
                                 method=environ["REQUEST_METHOD"], path=path, data={}, body=body,
                                 headers=EnvironHeaders(environ), action=req["action"])
            request.check_signature()
            request.check_action_permitted(resource)
        except HTTPException as e:
            code = getattr(e, "error_type", "AccessDenied")
            if req.get("service") == "securityhub" and code == "AccessDenied":
                code = "AccessDeniedException"  # the JSON services' name for it
            return {"error_code": code, "http_status": e.code, "message": getattr(e, "message", str(e))}
        return None

    @staticmethod
    def bucket_owner(environ: dict[str, Any], req: dict[str, Any]) -> dict[str, Any] | None:
        """S3's ExpectedBucketOwner: the bucket must belong to that account, else AccessDenied (403)."""
        expected = environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER")
        if req.get("service") != "s3" or not expected:
            return None
        bucket = environ.get("PATH_INFO", "").lstrip("/").partition("/")[0]
        owner = s3_backends.bucket_accounts.get(bucket)
        if owner is None or owner[1] == expected:
            return None
        return {"error_code": "AccessDenied", "http_status": 403, "message": "Access Denied"}

    @staticmethod
    def missing_role(body: bytes, req: dict[str, Any]) -> dict[str, Any] | None:
        """AssumeRole of a role that does not exist answers AccessDenied, as on AWS (moto answers every AssumeRole
        with credentials, so a scan with a wrong --role-name would look fine). Organizations creates
        OrganizationAccountAccessRole in every account it creates; the seeder creates the other roles a test
        names (`"roles"` in the seed spec). Returns the error to answer with, or None."""
        if req.get("service") != "sts" or req.get("action") != "AssumeRole":
            return None
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        role_arn = form.get("RoleArn", "")
        match = re.match(r"arn:[a-z-]+:iam::(\d{12}):role(/(?:[^/]+/)*)?([^/]+)$", role_arn)
        if match:
            account, path, name = match.group(1), match.group(2) or "/", match.group(3)
            roles = iam_backend(account).roles.values()
            if any(r.name == name and r.path == path for r in roles):
                return None
        return {"error_code": "AccessDenied", "http_status": 403,
                "message": f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"}

    def ses_call(self, req: dict[str, Any], body: bytes) -> Any:
        """SES v2 as AWS documents it where moto differs: GetAccount (moto has none) answers the send quota, and in the
        sandbox SendEmail refuses a recipient that is not a verified identity (MessageRejected). Returns a responder,
        or None to let moto answer."""
        from moto.ses.models import ses_backends

        account = req.get("account_id") or MANAGEMENT_ACCOUNT
        with self.state.lock:
            ses = dict(self.state.ses)
        if req["action"] == "GetAccount":
            payload = json.dumps({
                "SendQuota": {"Max24HourSend": 200.0 if ses["sandbox"] else 50000.0,
                              "MaxSendRate": ses["max_send_rate"], "SentLast24Hours": 0.0},
                "ProductionAccessEnabled": not ses["sandbox"], "SendingEnabled": True,
                "EnforcementStatus": "HEALTHY", "DedicatedIpAutoWarmupEnabled": False,
            }).encode()
            return lambda start_response: (start_response("200 OK", [("Content-Type", "application/json"),
                                                                     ("Content-Length", str(len(payload)))]), [payload])[1]
        if not ses["sandbox"]:
            return None
        params = json.loads(body or b"{}")
        recipients = params.get("Destination", {}).get("ToAddresses", [])
        backend = ses_backends[account][req.get("region") or "us-east-1"]
        refused = [r for r in recipients if not backend._is_verified_address(r)]
        if not refused:
            return None
        fault = {"error_code": "MessageRejected", "http_status": 400,
                 "message": f"Email address is not verified. The following identities failed the check in region "
                            f"US-EAST-1: {', '.join(refused)}"}
        return lambda start_response: self.respond_error(start_response, req, fault)

    def credential_report(self, start_response: Any, req: dict[str, Any]) -> Any:
        """GenerateCredentialReport / GetCredentialReport as AWS documents them (see the module docstring)."""
        account = req.get("account_id") or MANAGEMENT_ACCOUNT
        now = time.time()
        with self.state.lock:
            report = self.state.reports.get(account)
            expired = report is not None and now - report["generated"] > REPORT_TTL_SECONDS
            if req["action"] == "GenerateCredentialReport":
                if report is None or expired:
                    content = credential_report_csv(account, self.state.root_keys.get(account, []))
                    low, high = self.state.report_generation_ms, self.state.report_generation_ms_max
                    ms = self.state.rng.uniform(low, high) if high > low else low
                    ready = now + ms / 1000.0
                    self.state.reports[account] = {"content": content, "generated": now, "ready": ready}
                    state = "STARTED"
                else:
                    state = "INPROGRESS" if now < report["ready"] else "COMPLETE"
                return self.respond_xml(start_response, generate_report_response(state))
            if report is None:
                error = ("ReportNotPresent", 410, "Credential report not present")
            elif expired:
                error = ("ReportExpired", 410, "Credential report expired")
            elif now < report["ready"]:
                error = ("ReportInProgress", 404, "Report generation in progress")
            else:
                payload = credential_report_response(report["content"], report["generated"])
                return self.respond_xml(start_response, payload)
        code, status, message = error
        return self.respond_error(start_response, req, {"error_code": code, "http_status": status, "message": message})

    def passthrough(self, environ: dict[str, Any], start_response: Any, req: dict[str, Any]) -> Any:
        expiry = self.state.assume_role_expiry
        rewrite = {
            # Short-lived sessions, to test credential renewal without waiting an hour.
            "AssumeRole": lambda p: re.sub(
                rb"<Expiration>[^<]*</Expiration>",
                ("<Expiration>" + (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=expiry or 0))
                 .strftime("%Y-%m-%dT%H:%M:%SZ") + "</Expiration>").encode(), p),
        }.get(req.get("action") or "")
        if rewrite is None or (req.get("action") == "AssumeRole" and expiry is None):
            return self.moto(environ, start_response)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        payload = rewrite(b"".join(self.moto(environ, capture)))
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], headers + [("Content-Length", str(len(payload)))])
        return [payload]

    # ---- control routes ---------------------------------------------------------------------------------
    def ses_control(self, args: dict[str, Any]) -> dict[str, Any]:
        """{identities?: [address], sandbox?: bool, max_send_rate?: number, account_id?, region?}: verifies identities
        (as CreateEmailIdentity does) and sets what GetAccount answers."""
        from moto.ses.models import ses_backends

        backend = ses_backends[args.get("account_id", MANAGEMENT_ACCOUNT)][args.get("region", "us-east-1")]
        for identity in args.get("identities", []):
            backend.verify_email_identity(identity)
        with self.state.lock:
            for key in ("sandbox", "max_send_rate"):
                if key in args:
                    self.state.ses[key] = args[key]
        return {"ok": True}

    def control(self, environ: dict[str, Any], start_response: Any, route: str) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            args = json.loads(raw) if raw else {}
            result = self.dispatch(method, route, args)
            status, payload = "200 OK", result
        except Exception as exc:  # a control-route failure is a test bug: say exactly what went wrong
            status, payload = "400 Bad Request", {"error": f"{type(exc).__name__}: {exc}"}
        body = json.dumps(payload, default=str).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def dispatch(self, method: str, route: str, args: dict[str, Any]) -> Any:
        if (method, route) == ("POST", "reset"):
            moto_api_backend.reset()
            self.state.reset()
            with self.hub.lock:
                self.hub.reset()
            with self.trail.lock:
                self.trail.reset()
            self.quotas.reset(self.org_quotas)
            return {"ok": True}
        if (method, route) == ("POST", "seed"):
            result = Seeder(self.url, self.state).seed(args)
            with self.state.lock:
                self.state.requests.clear()
                self.state.max_in_flight = 0
            return result
        if (method, route) == ("POST", "securityhub"):
            return self.hub.control(args)
        if (method, route) == ("POST", "cloudtrail"):
            return self.trail.control(args)
        if (method, route) == ("GET", "cloudtrail"):
            return self.trail.counts()
        if (method, route) == ("POST", "ses"):
            return self.ses_control(args)
        if (method, route) == ("GET", "ses/sent"):
            return ses_sent()
        if (method, route) == ("GET", "sns/published"):
            return sns_published()
        if (method, route) == ("GET", "secrets"):
            return secrets_of(args["account_id"])
        if (method, route) == ("POST", "sts"):
            self.state.assume_role_expiry = args.get("expiry_seconds")
            return {"ok": True}
        if (method, route) == ("POST", "keys/backdate"):
            # Ages relative to now, as the seed spec takes them: "age_days" for "created", "last_used_days".
            if "age_days" in args:
                args["created"] = days_ago(args.pop("age_days"))
            if "last_used_days" in args:
                args["last_used"] = days_ago(args.pop("last_used_days"))
            if "reactivated_days" in args:
                args["reactivated"] = days_ago(args.pop("reactivated_days"))
            return backdate_key(**args)
        if (method, route) == ("POST", "keys"):
            return change_key(**args)
        if (method, route) == ("GET", "keys"):
            return list_keys(args["account_id"])
        if (method, route) == ("POST", "root-keys"):
            with self.state.lock:
                self.state.root_keys[args["account_id"]] = list(args["keys"])
            return {"ok": True}
        if (method, route) == ("POST", "reports"):
            with self.state.lock:
                self.state.report_generation_ms = int(args.get("generation_ms", 0))
                # Optional: each account's generation time drawn from [generation_ms, generation_ms_max].
                self.state.report_generation_ms_max = int(args.get("generation_ms_max", 0))
            return {"ok": True}
        if (method, route) == ("GET", "reports"):
            with self.state.lock:
                return {a: iso(r["generated"]) for a, r in self.state.reports.items()}
        if (method, route) == ("DELETE", "reports"):
            with self.state.lock:
                self.state.reports.clear()
            return {"ok": True}
        if (method, route) == ("POST", "clock"):
            with self.state.lock:
                self.state.clock_skew = float(args.get("skew_seconds", 0))
            return {"ok": True}
        if (method, route) == ("POST", "accounts/state"):
            return set_account_state(**args)
        if (method, route) == ("POST", "faults"):
            fault = {"id": str(uuid.uuid4()), **args}
            with self.state.lock:
                self.state.faults.append(fault)
            return fault
        if (method, route) == ("GET", "faults"):
            with self.state.lock:
                return list(self.state.faults)
        if (method, route) == ("DELETE", "faults"):
            with self.state.lock:
                self.state.faults.clear()
            return {"ok": True}
        if (method, route) == ("POST", "quotas"):
            self.quotas.reset(bool(args.get("organizations", False)))
            return self.quotas.snapshot()
        if (method, route) == ("GET", "quotas"):
            return self.quotas.snapshot()
        if (method, route) == ("GET", "export"):
            with self.state.lock:
                root_keys = {a: list(k) for a, k in self.state.root_keys.items()}
            return export(root_keys)
        if (method, route) == ("GET", "s3/objects"):
            return s3_objects(args["bucket"])
        if (method, route) == ("GET", "requests"):
            with self.state.lock:
                return {"max_in_flight": self.state.max_in_flight, "requests": list(self.state.requests)}
        if (method, route) == ("DELETE", "requests"):
            with self.state.lock:
                self.state.requests.clear()
                self.state.max_in_flight = 0
            return {"ok": True}
        raise KeyError(f"no control route {method} /_keyaudit/{route}")


def ses_sent() -> list[dict[str, Any]]:
    """Every message SES accepted, in order: its account, region, source, destinations and raw MIME text."""
    from moto.ses.models import ses_backends

    out = []
    for account, regions in ses_backends.items():
        for region, backend in regions.items():
            for m in backend.sent_messages:
                out.append({"account_id": account, "region": region, "id": m.id, "source": m.source,
                            "destinations": list(m.destinations) if isinstance(m.destinations, list)
                            else m.destinations, "raw": getattr(m, "raw_data", None)})
    return out


def sns_published() -> list[dict[str, Any]]:
    """Every message published to an SNS topic: its topic ARN, id, subject and message."""
    from moto.sns.models import sns_backends

    out = []
    for regions in sns_backends.values():
        for backend in regions.values():
            for arn, topic in backend.topics.items():
                for message_id, message, subject, *_ in topic.sent_notifications:
                    out.append({"topic_arn": arn, "id": message_id, "subject": subject, "message": message})
    return out


def secrets_of(account_id: str) -> list[dict[str, Any]]:
    """Every Secrets Manager secret of an account (any region), as an administrator would see it: name, ARN,
    region, KMS key, tags, resource policy, whether its deletion is scheduled, and how many values it holds (never
    the values: tests read those with the owner's credentials, through the API)."""
    from moto.secretsmanager.models import secretsmanager_backends

    out = []
    for region, backend in secretsmanager_backends.get(account_id, {}).items():
        for secret in backend.secrets.values():
            out.append({"name": secret.name, "arn": secret.arn, "region": region, "kms_key_id": secret.kms_key_id,
                        "tags": {t["Key"]: t["Value"] for t in (secret.tags or [])},
                        "policy": json.loads(secret.policy) if getattr(secret, "policy", None) else None,
                        "deleted": secret.is_deleted(),
                        "values": sum(1 for v in secret.versions.values()
                                      if "secret_string" in v or "secret_binary" in v)})
    return out


def iam_backend(account_id: str) -> Any:
    return iam_backends[account_id]["global"]


def backdate_key(account_id: str, user_name: str, access_key_id: str, created: str,
                 last_used: str | None = None, last_used_service: str = "iam", last_used_region: str = "us-east-1",
                 reactivated: str | None = None) -> dict[str, Any]:
    """Sets a key's CreateDate, its last use (service and region as the report shows them), and optionally a
    re-activation time: the report's `last_rotated` then shows it, while ListAccessKeys keeps CreateDate."""
    user = iam_backend(account_id).get_user(user_name)
    for key in user.access_keys:
        if key.access_key_id == access_key_id:
            key.create_date = parse_time(created)
            if last_used:
                from moto.iam.models import AccessKeyLastUsed

                key.last_used = AccessKeyLastUsed(timestamp=parse_time(last_used), service=last_used_service,
                                                  region=last_used_region)
            key.keyaudit_last_rotated = parse_time(reactivated) if reactivated else None
            return {"ok": True}
    raise KeyError(f"user {user_name} in {account_id} has no key {access_key_id}")


def days_ago(days: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).isoformat()


def change_key(account_id: str, user_name: str, op: str, access_key_id: str | None = None,
               tags: dict[str, str] | None = None) -> dict[str, Any]:
    """What a user (or an administrator) does between two runs: create a key, deactivate, re-activate or delete one;
    tag the user (`tag`, with `tags`), or delete the user with its keys (`delete_user`)."""
    backend = iam_backend(account_id)
    if op == "create":
        return {"access_key_id": backend.create_access_key(user_name).access_key_id}
    if op == "tag":
        backend.tag_user(user_name, [{"Key": k, "Value": v} for k, v in (tags or {}).items()])
        return {"ok": True}
    if op == "delete_user":
        for key in list(backend.get_user(user_name).access_keys):
            backend.delete_access_key(key.access_key_id, user_name)
        backend.delete_user(user_name)
        return {"ok": True}
    if access_key_id is None:
        raise ValueError(f"op {op!r} needs access_key_id")
    if op in ("deactivate", "activate"):
        backend.update_access_key(user_name, access_key_id, "Inactive" if op == "deactivate" else "Active")
    elif op == "delete":
        backend.delete_access_key(access_key_id, user_name)
    else:
        raise ValueError(f"unknown op {op!r}: expected create, deactivate, activate or delete")
    return {"access_key_id": access_key_id}


def list_keys(account_id: str) -> dict[str, list[dict[str, str]]]:
    """Every user's keys in an account, as moto holds them: what remediation tests check directly."""
    return {user.name: [{"access_key_id": k.access_key_id, "status": k.status} for k in user.access_keys]
            for user in iam_backend(account_id).users.values()}


def export(root_keys: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The management account's organization and every member's IAM users, in the simulator's spec format."""
    backend = organizations_backends[MANAGEMENT_ACCOUNT]["aws"]
    org = backend.org
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    accounts = [{"id": a.id, "name": a.name, "email": a.email, "state": a.state, "parent_id": a.parent_id}
                for a in backend.accounts]
    iam = {}
    for account in accounts:
        users = []
        for user in iam_backend(account["id"]).users.values():
            keys = []
            for key in user.access_keys:
                used = key.last_used
                keys.append({
                    "id": key.access_key_id, "status": key.status, "created": stamp(key.create_date),
                    "last_rotated": stamp(getattr(key, "keyaudit_last_rotated", None) or key.create_date),
                    "last_used": {"date": stamp(used.timestamp), "region": used.region, "service": used.service}
                    if used else None,
                })
            tags = {t["Key"]: t["Value"] for t in iam_backend(account["id"]).list_user_tags(user.name)}
            users.append({"name": user.name, "arn": user.arn, "created": stamp(user.create_date), "keys": keys,
                          "tags": tags})
        iam[account["id"]] = {"users": users, "root_keys": root_keys.get(account["id"], [])}
    return {
        "organization": {
            "id": org.id, "management_account_id": org.master_account_id, "root_id": org.root_id,
            "ous": [{"id": ou.id, "name": ou.name, "parent_id": ou.parent_id} for ou in backend.ou
                    if ou.id != org.root_id],
            "accounts": accounts,
        },
        "iam": iam,
    }


def s3_objects(bucket_name: str) -> list[dict[str, Any]]:
    owner = s3_backends.bucket_accounts[bucket_name]
    bucket = s3_backends[owner[1]][owner[0]].get_bucket(bucket_name)
    return [{"key": key.name, "size": len(key.value), "content_type": key.metadata.get("Content-Type"),
             "sse": key.encryption, "kms_key_id": key.kms_key_id, "owner": owner[1],
             "body": key.value.decode("utf-8", "replace"), "body_base64": base64.b64encode(key.value).decode()}
            for key in bucket.keys.values()]


def set_account_state(account_id: str, state: str) -> dict[str, Any]:
    status = {"ACTIVE": "ACTIVE", "PENDING_ACTIVATION": "ACTIVE", "PENDING_CLOSURE": "PENDING_CLOSURE"}.get(state, "SUSPENDED")
    for backends in organizations_backends.values():
        for backend in backends.values():
            for account in getattr(backend, "accounts", []):
                if account.id == account_id:
                    account.state, account.status = state, status
                    return {"ok": True}
    raise KeyError(f"no organization account {account_id}")


class Seeder:
    """Builds an organization from a declarative spec, through the AWS API (boto3 against this emulator).

    Spec: {"organization"?: false, "management_account"?: "12 digits", "management": {"users": [USER]},
           "accounts": [ACCOUNT], "ous": [OU]}
      "sns_topics": [NAME]: SNS topics created in the management account (us-east-1); their ARNs are returned.
      "ses_identities": [ADDRESS]: SES identities verified in the management account (us-east-1).
      "buckets": [{"name": str, "account_id"?: 12 digits}]: S3 buckets (us-east-1), the management account's
      unless another account is named.
      "kms_keys": [NAME]: KMS keys created in the management account; their ARNs are returned by name.
      "roles": [NAME]: roles created (path /, trusting the management account) in every member account the
      seeder creates, beside the OrganizationAccountAccessRole that Organizations creates: AssumeRole of a role
      that does not exist is AccessDenied, as on AWS.
      "management_account": a second organization (or standalone account) in the same emulator, managed from
      that account: seeded as a user "keyaudit-caller" created there, whose key is returned as "credentials"
      for running keyaudit as that organization's caller.
      OU      = {"name": str, "accounts": [ACCOUNT], "ous": [OU]}
      ACCOUNT = {"name": str, "state"?: "SUSPENDED"|..., "users": [USER]}
      ACCOUNT may also say "deny_assume_role": true (AssumeRole into it answers AccessDenied, for demos), and
      ACCOUNT or "management" may say "root_keys": [ROOT_KEY] (active root access keys, as /root-keys does)
      USER    = {"name": str, "keys": [KEY], "tags"?: {key: value}}
      KEY     = {"created": RFC3339 | "age_days": number, "status"?: "Active"|"Inactive",
                 "last_used"?: RFC3339 | "last_used_days": number, "last_used_service"?: str,
                 "last_used_region"?: str, "reactivated"?: RFC3339, "return_secret"?: bool}
      ROOT_KEY = {"created": RFC3339 | "age_days": number, "status"?: "Active"|"Inactive"}
    Returns account ids by name, OU ids by path, key ids by "account_id/user", the secrets of keys seeded with
    "return_secret" by key id, and "credentials" with "management_account".
    """

    def __init__(self, url: str, state: State) -> None:
        self.url = url
        self.state = state
        self.cfg = Config(retries={"max_attempts": 1})
        self.creds = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "x" * 40,
                      "region_name": "us-east-1"}
        self.result: dict[str, Any] = {"accounts": {}, "ous": {}, "keys": {}}
        self.roles: list[str] = []

    def client(self, service: str, **creds: Any) -> Any:
        return boto3.client(service, endpoint_url=self.url, config=self.cfg, **{**self.creds, **creds})

    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        management = spec.get("management_account", MANAGEMENT_ACCOUNT)
        if management != MANAGEMENT_ACCOUNT:  # a second organization: seeded and scanned as that account
            self.creds = {**self.creds, **self.caller_in(management)}
            self.result["credentials"] = {"access_key_id": self.creds["aws_access_key_id"],
                                          "secret_access_key": self.creds["aws_secret_access_key"]}
        if spec.get("organization", True) is False:  # a standalone account, outside any organization
            self.users(management, self.client("iam"), spec.get("management", {}).get("users", []))
            self.result["accounts"]["management"] = management
            return self.result
        org = self.client("organizations")
        org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        root = org.list_roots()["Roots"][0]["Id"]
        self.result.update(organization_id=org_id, management_account_id=management, root_id=root)
        self.roles = spec.get("roles", [])
        self.result["ous"]["/Root"] = root
        self.users(management, self.client("iam"), spec.get("management", {}).get("users", []))
        self.root_keys(management, spec.get("management", {}).get("root_keys", []))
        self.result["accounts"]["management"] = management
        for topic in spec.get("sns_topics", []):
            arn = self.client("sns").create_topic(Name=topic)["TopicArn"]
            self.result.setdefault("sns_topics", {})[topic] = arn
        for identity in spec.get("ses_identities", []):
            self.client("sesv2").create_email_identity(EmailIdentity=identity)
        for bucket in spec.get("buckets", []):
            s3 = self.client("s3")
            if bucket.get("account_id"):
                owner = bucket["account_id"]
                s3.meta.events.register("before-send.s3.*", lambda request, **_: request.headers.__setitem__(
                    "x-moto-account-id", owner))
            s3.create_bucket(Bucket=bucket["name"])
        for name in spec.get("kms_keys", []):
            arn = self.client("kms").create_key(Description=name)["KeyMetadata"]["Arn"]
            self.result.setdefault("kms_keys", {})[name] = arn
        self.populate(org, root, "/Root", spec)
        return self.result

    def caller_in(self, account_id: str) -> dict[str, str]:
        """An IAM user with an access key in `account_id` (created there through moto's account header): its
        credentials make every later call, keyaudit's included, that account's."""
        iam = self.client("iam")
        iam.meta.events.register("before-send.iam.*",
                                 lambda request, **_: request.headers.__setitem__("x-moto-account-id", account_id))
        iam.create_user(UserName="keyaudit-caller")
        key = iam.create_access_key(UserName="keyaudit-caller")["AccessKey"]
        return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}

    def populate(self, org: Any, parent: str, path: str, node: dict[str, Any]) -> None:
        for account in node.get("accounts", []):
            self.account(org, parent, account)
        for ou in node.get("ous", []):
            ou_id = org.create_organizational_unit(ParentId=parent, Name=ou["name"])["OrganizationalUnit"]["Id"]
            # The path keyaudit prints: '\\' and '/' inside a name are escaped, so every path names one OU.
            ou_path = f"{path}/{ou['name'].replace(chr(92), chr(92) * 2).replace('/', chr(92) + '/')}"
            self.result["ous"][ou_path] = ou_id
            self.populate(org, ou_id, ou_path, ou)

    def account(self, org: Any, parent: str, spec: dict[str, Any]) -> None:
        name = spec["name"]
        email = spec.get("email", f"{re.sub(r'[^a-z0-9]', '-', name.lower())}@example.com")
        status = org.create_account(Email=email, AccountName=name)["CreateAccountStatus"]
        account_id = status["AccountId"]
        root = self.result["root_id"]
        if parent != root:
            org.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
        self.result["accounts"][name] = account_id
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"AWS": f"arn:aws:iam::{self.result['management_account_id']}:root"}}]}
        for role in self.roles:
            iam_backend(account_id).create_role(role_name=role, assume_role_policy_document=json.dumps(trust), path="/",
                                                permissions_boundary=None, description="", tags=[],
                                                max_session_duration="3600")
        if spec.get("users"):
            sts = self.client("sts")
            creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                                    RoleSessionName="seed")["Credentials"]
            iam = self.client("iam", aws_access_key_id=creds["AccessKeyId"],
                              aws_secret_access_key=creds["SecretAccessKey"],
                              aws_session_token=creds["SessionToken"])
            self.users(account_id, iam, spec["users"])
        self.root_keys(account_id, spec.get("root_keys", []))
        if spec.get("state", "ACTIVE") != "ACTIVE":
            set_account_state(account_id, spec["state"])
        if spec.get("deny_assume_role"):
            with self.state.lock:
                self.state.faults.append({
                    "id": str(uuid.uuid4()), "service": "sts", "action": "AssumeRole", "account_id": account_id,
                    "error_code": "AccessDenied", "http_status": 403,
                    "message": f"User is not authorized to perform: sts:AssumeRole on resource: "
                               f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"})

    def root_keys(self, account_id: str, keys: list[dict[str, Any]]) -> None:
        if keys:
            with self.state.lock:
                self.state.root_keys[account_id] = [
                    {**k, "created": k.get("created") or days_ago(k["age_days"])} for k in keys]

    def users(self, account_id: str, iam: Any, users: list[dict[str, Any]]) -> None:
        for user in users:
            iam.create_user(UserName=user["name"], Path=user.get("path", "/"))
            if user.get("tags"):
                iam.tag_user(UserName=user["name"], Tags=[{"Key": k, "Value": v} for k, v in user["tags"].items()])
            ids = []
            for key in user.get("keys", []):
                created_key = iam.create_access_key(UserName=user["name"])["AccessKey"]
                key_id = created_key["AccessKeyId"]
                if key.get("return_secret"):  # for tests that run keyaudit as this user
                    self.result.setdefault("secrets", {})[key_id] = created_key["SecretAccessKey"]
                if key.get("status", "Active") != "Active":
                    iam.update_access_key(UserName=user["name"], AccessKeyId=key_id, Status=key["status"])
                created = key.get("created") or days_ago(key["age_days"])
                last_used = key.get("last_used") or (
                    days_ago(key["last_used_days"]) if "last_used_days" in key else None)
                backdate_key(account_id, user["name"], key_id, created, last_used,
                             key.get("last_used_service", "iam"), key.get("last_used_region", "us-east-1"),
                             key.get("reactivated"))
                ids.append(key_id)
            self.result["keys"][f"{account_id}/{user['name']}"] = ids


class SkewedClockHandler(WSGIRequestHandler):
    """Writes the Date header of every answer from a clock `state.clock_skew` seconds off (the base handler
    always sends its own Date first, so the header cannot be changed from inside the WSGI app)."""

    state: State | None = None

    def date_time_string(self, timestamp: float | None = None) -> str:
        skew = self.state.clock_skew if self.state else 0.0
        return email.utils.formatdate((timestamp if timestamp is not None else time.time()) + skew, usegmt=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument("--org-quotas", action="store_true",
                        help="enforce AWS Organizations' published throttling limits (per calling account)")
    args = parser.parse_args()
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("the emulator binds to loopback only")
    emulator = Emulator()
    emulator.org_quotas = args.org_quotas
    emulator.quotas.reset(args.org_quotas)
    SkewedClockHandler.state = emulator.state
    server = make_server(args.host, args.port, emulator, threaded=True, request_handler=SkewedClockHandler)
    emulator.url = f"http://{args.host}:{server.server_port}"
    print(f"KEYAUDIT_EMULATOR_READY {emulator.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
