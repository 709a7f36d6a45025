"""Security Hub's findings as AWS documents them, for keyaudit's emulator (moto's own Security Hub keeps none of
these rules: its import replaces a finding whole, it has no BatchUpdateFindings and ignores GetFindings' filters).

What is modelled, each from AWS's documentation:
- BatchImportFindings (POST /findings/import), 1 to 100 findings: a finding is imported only from its own account
  (`AwsAccountId` is the caller's) into that account's default product in the call's region; larger than 240 KB
  or missing a required field is refused in `FailedFindings`. An account whose Security Hub is not enabled refuses
  every finding with `InvalidAccess`. A new finding takes the given `Workflow` (NEW when none) and `Note`; an
  existing one takes every provider field but keeps its `Workflow`, `Note`, `UserDefinedFields` and
  `VerificationState` ("after a finding is created, BatchImportFindings cannot be used to update" them), and its
  workflow is reset from NOTIFIED or RESOLVED to NEW when `RecordState` goes from ARCHIVED to ACTIVE or
  `Compliance.Status` from PASSED to WARNING, FAILED or NOT_AVAILABLE.
- BatchUpdateFindings (PATCH /findings/batchupdate), 1 to 100 identifiers: sets `Workflow.Status` and `Note`
  (`Text` and `UpdatedBy` both required, at most 512 characters each) of the caller's own findings; an unknown
  finding is answered in `UnprocessedFindings`. Not enabled: `InvalidAccessException`.
- GetFindings (POST /findings): the caller's own findings in the call's region, filtered by the `StringFilter`s of
  `Id`, `ProductArn`, `AwsAccountId`, `GeneratorId`, `RecordState`, `WorkflowStatus` and `ComplianceStatus`
  (EQUALS, PREFIX, NOT_EQUALS, PREFIX_NOT_EQUALS) and the `MapFilter` of `ProductFields` (EQUALS, NOT_EQUALS); the
  same field's positive filters are ORed, its negative ones ANDed, and fields are ANDed. Any other filter is
  refused with InvalidInputException, so that a test never passes on a filter the emulator ignores. At most 100
  per page, with NextToken. Not enabled: `InvalidAccessException`.

Control (through the launcher's `POST /_keyaudit/securityhub`): `{account_id, enabled?: bool, unprocessed?:
{finding id: error code}}` turns an account's Security Hub off or on (on by default) or makes BatchUpdateFindings
answer chosen findings in `UnprocessedFindings`.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import threading
from typing import Any

REGION_RE = re.compile(r"Credential=[A-Z0-9]+/\d{8}/([^/]+)/securityhub/aws4_request")
MAX_FINDING_BYTES = 240 * 1024
REQUIRED = ("SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId", "CreatedAt", "UpdatedAt", "Title",
            "Description", "Resources")
STRING_FILTERS = {
    "Id": lambda f: f.get("Id"),
    "ProductArn": lambda f: f.get("ProductArn"),
    "AwsAccountId": lambda f: f.get("AwsAccountId"),
    "GeneratorId": lambda f: f.get("GeneratorId"),
    "RecordState": lambda f: f.get("RecordState"),
    "WorkflowStatus": lambda f: f.get("Workflow", {}).get("Status"),
    "ComplianceStatus": lambda f: f.get("Compliance", {}).get("Status"),
}
# Fields a finding provider cannot change once the finding exists.
CUSTOMER_FIELDS = ("Workflow", "Note", "UserDefinedFields", "VerificationState")
RESETS_TO_NEW = ("NOTIFIED", "RESOLVED")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def string_match(value: str | None, f: dict[str, Any]) -> tuple[bool, bool]:
    """(is the filter positive, does it match)."""
    want, how = f.get("Value", ""), f.get("Comparison", "EQUALS")
    v = value or ""
    if how == "EQUALS":
        return True, v == want
    if how == "PREFIX":
        return True, v.startswith(want)
    if how == "NOT_EQUALS":
        return False, v != want
    if how == "PREFIX_NOT_EQUALS":
        return False, not v.startswith(want)
    raise ApiError(400, "InvalidInputException", f"the keyaudit emulator does not implement the comparison {how}")


def combine(results: list[tuple[bool, bool]]) -> bool:
    positive = [m for p, m in results if p]
    negative = [m for p, m in results if not p]
    return (not positive or any(positive)) and all(negative)


def matches(finding: dict[str, Any], filters: dict[str, Any]) -> bool:
    for field, given in filters.items():
        if field in STRING_FILTERS:
            value = STRING_FILTERS[field](finding)
            if not combine([string_match(value, f) for f in given]):
                return False
        elif field == "ProductFields":
            fields = finding.get("ProductFields", {})
            results = []
            for f in given:
                how = f.get("Comparison", "EQUALS")
                if how not in ("EQUALS", "NOT_EQUALS"):
                    raise ApiError(400, "InvalidInputException", f"MapFilter comparison {how} is not implemented")
                hit = fields.get(f.get("Key")) == f.get("Value")
                results.append((how == "EQUALS", hit if how == "EQUALS" else not hit))
            if not combine(results):
                return False
        else:
            raise ApiError(400, "InvalidInputException",
                           f"the keyaudit emulator does not implement the GetFindings filter {field}")
    return True


class SecurityHub:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        # (account, region) -> finding id -> finding
        self.findings: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.disabled: set[str] = set()
        self.unprocessed: dict[str, str] = {}

    def control(self, args: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            account = args["account_id"]
            if "enabled" in args:
                (self.disabled.discard if args["enabled"] else self.disabled.add)(account)
            self.unprocessed.update(args.get("unprocessed", {}))
        return {"ok": True}

    def handle(self, action: str, account: str, environ: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any]]:
        scope = REGION_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = scope.group(1) if scope else "us-east-1"
        try:
            request = json.loads(body or b"{}")
            with self.lock:
                handler = {"BatchImportFindings": self.import_findings, "GetFindings": self.get_findings,
                           "BatchUpdateFindings": self.update_findings}[action]
                return 200, handler(account, region, request)
        except ApiError as e:
            return e.status, {"__type": e.code, "Message": e.message}

    def store(self, account: str, region: str) -> dict[str, dict[str, Any]]:
        return self.findings.setdefault((account, region), {})

    def check_enabled(self, account: str) -> None:
        if account in self.disabled:
            raise ApiError(401, "InvalidAccessException", f"Account {account} is not subscribed to AWS Security Hub")

    def import_findings(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        findings = request.get("Findings")
        if not isinstance(findings, list) or not 1 <= len(findings) <= 100:
            raise ApiError(400, "InvalidInputException", "Findings must hold 1 to 100 findings")
        product = f"arn:aws:securityhub:{region}:{account}:product/{account}/default"
        store = self.store(account, region)
        failed = []
        for f in findings:
            refusal = None
            missing = [k for k in REQUIRED if not f.get(k)]
            if account in self.disabled:
                refusal = ("InvalidAccess", f"Account {account} is not subscribed to AWS Security Hub")
            elif missing:
                refusal = ("InvalidInput", f"missing required fields: {', '.join(missing)}")
            elif f["AwsAccountId"] != account:
                refusal = ("AccessDeniedException",
                           f"AwsAccountId {f['AwsAccountId']} is not the calling account {account}: the default "
                           f"product takes each account's findings from that account only")
            elif f["ProductArn"] != product:
                refusal = ("AccessDeniedException", f"ProductArn {f['ProductArn']} is not {product}")
            elif len(json.dumps(f).encode()) > MAX_FINDING_BYTES:
                refusal = ("InvalidInput", "Finding size exceeded 240 KB")
            if refusal:
                failed.append({"Id": f.get("Id", ""), "ErrorCode": refusal[0], "ErrorMessage": refusal[1]})
                continue
            old = store.get(f["Id"])
            new = copy.deepcopy(f)
            if old is None:
                new.setdefault("Workflow", {"Status": "NEW"})
                new.setdefault("RecordState", "ACTIVE")
                if "Note" in new:
                    new["Note"].setdefault("UpdatedAt", now())
            else:
                for k in CUSTOMER_FIELDS:
                    new.pop(k, None)
                    if k in old:
                        new[k] = old[k]
                new.setdefault("RecordState", old.get("RecordState", "ACTIVE"))
                status = new.get("Workflow", {}).get("Status")
                reopened = old.get("RecordState") == "ARCHIVED" and new["RecordState"] == "ACTIVE"
                failing = (old.get("Compliance", {}).get("Status") == "PASSED"
                           and new.get("Compliance", {}).get("Status") in ("WARNING", "FAILED", "NOT_AVAILABLE"))
                if status in RESETS_TO_NEW and (reopened or failing):
                    new["Workflow"] = {"Status": "NEW"}
            new["ProcessedAt"] = now()
            store[f["Id"]] = new
        return {"FailedCount": len(failed), "SuccessCount": len(findings) - len(failed), "FailedFindings": failed}

    def get_findings(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        self.check_enabled(account)
        size = int(request.get("MaxResults") or 100)
        if not 1 <= size <= 100:
            raise ApiError(400, "InvalidInputException", "MaxResults must be a number between 1 and 100")
        if request.get("SortCriteria"):
            raise ApiError(400, "InvalidInputException", "the keyaudit emulator does not implement SortCriteria")
        found = [f for f in self.store(account, region).values() if matches(f, request.get("Filters") or {})]
        start = int(request.get("NextToken") or 0)
        page = found[start:start + size]
        out: dict[str, Any] = {"Findings": copy.deepcopy(page)}
        if start + size < len(found):
            out["NextToken"] = str(start + size)
        return out

    def update_findings(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        self.check_enabled(account)
        ids = request.get("FindingIdentifiers")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError(400, "InvalidInputException", "FindingIdentifiers must hold 1 to 100 identifiers")
        note = request.get("Note")
        if note is not None:
            text, by = note.get("Text"), note.get("UpdatedBy")
            if not text or not by or len(text) > 512 or len(by) > 512:
                raise ApiError(400, "InvalidInputException", "Note needs Text and UpdatedBy, each 1 to 512 characters")
        workflow = (request.get("Workflow") or {}).get("Status")
        if workflow is not None and workflow not in ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"):
            raise ApiError(400, "InvalidInputException", f"Workflow.Status {workflow} is not a workflow status")
        store = self.store(account, region)
        processed, unprocessed = [], []
        for ident in ids:
            f = store.get(ident.get("Id"))
            code = self.unprocessed.get(ident.get("Id", ""))
            if f is None or f.get("ProductArn") != ident.get("ProductArn"):
                code, message = "FindingNotFound", "Finding not found"
            elif code:
                message = "Injected by the keyaudit emulator"
            if code:
                unprocessed.append({"FindingIdentifier": ident, "ErrorCode": code, "ErrorMessage": message})
                continue
            if workflow is not None:
                f["Workflow"] = {"Status": workflow}
            if note is not None:
                f["Note"] = {"Text": note["Text"], "UpdatedBy": note["UpdatedBy"], "UpdatedAt": now()}
            processed.append(ident)
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}
