"""CloudTrail's LookupEvents as AWS's API reference documents it, for keyaudit's emulator (moto has no LookupEvents).

What is modelled, each from the reference (CloudTrail API, LookupEvents; CloudTrail quotas):
- The JSON 1.1 protocol (`X-Amz-Target: CloudTrail_20131101.LookupEvents`), answered per calling account and the
  Region of the call's signature: each account and Region has its own event history.
- `LookupAttributes`: at most one, `AttributeKey` one of EventId, EventName, ReadOnly, Username, ResourceType,
  ResourceName, EventSource, AccessKeyId (else InvalidLookupAttributesException); the value matched exactly.
- `StartTime` / `EndTime` (epoch seconds): events at or after the start and at or before the end; a start after the
  end is InvalidTimeRangeException. Only the last 90 days are kept: older events are never returned.
- Newest first; `MaxResults` 1 to 50 (default 50; else InvalidMaxResultsException); `NextToken` for the next page
  (a token this history did not give is InvalidNextTokenException).
- Each event: `EventId`, `EventName`, `ReadOnly`, `AccessKeyId`, `EventTime`, `EventSource`, `Username`,
  `Resources` (empty) and `CloudTrailEvent`, the record as a JSON string with `userIdentity.accessKeyId`,
  `sourceIPAddress`, `userAgent`, `eventSource`, `eventName`, `awsRegion`, `eventTime`.
- The quota: 2 requests per second per account and Region (a bucket of 2 refilled at 2 per second); beyond it
  `ThrottlingException` (HTTP 400).

Control (through the launcher): `POST /_keyaudit/cloudtrail {account_id, region, events: [...]}` adds events, each
`{access_key_id, event_source, event_name?, source_ip?, user_agent?, username?, read_only?, event_time? |
minutes_ago? | days_ago?}`; `GET /_keyaudit/cloudtrail` answers `{served, throttled}` by "account/region".
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from typing import Any

KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId")
WINDOW = dt.timedelta(days=90)
RATE = 2.0


class CloudTrail:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.events: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.buckets: dict[tuple[str, str], list[float]] = {}
        self.tokens: dict[str, int] = {}
        self.served: dict[str, int] = {}
        self.throttled: dict[str, int] = {}

    # ---- control ----------------------------------------------------------------------------------------
    def control(self, args: dict[str, Any]) -> dict[str, Any]:
        now = dt.datetime.now(dt.timezone.utc)
        added = []
        with self.lock:
            history = self.events.setdefault((args["account_id"], args.get("region", "us-east-1")), [])
            for e in args.get("events", []):
                if "event_time" in e:
                    at = dt.datetime.fromisoformat(e["event_time"].replace("Z", "+00:00"))
                else:
                    at = now - dt.timedelta(days=e.get("days_ago", 0), minutes=e.get("minutes_ago", 0))
                event = {"id": str(uuid.uuid4()), "time": at, "region": args.get("region", "us-east-1"), **e}
                history.append(event)
                added.append(event["id"])
            history.sort(key=lambda e: e["time"], reverse=True)
        return {"added": added}

    def counts(self) -> dict[str, Any]:
        with self.lock:
            return {"served": dict(self.served), "throttled": dict(self.throttled)}

    # ---- the API ----------------------------------------------------------------------------------------
    def handle(self, action: str, account: str, region: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if action != "LookupEvents":
            return 400, error("UnsupportedOperationException", f"{action} is not modelled by keyaudit's emulator")
        where = f"{account}/{region}"
        with self.lock:
            now = time.monotonic()
            bucket = self.buckets.setdefault((account, region), [RATE, now])
            bucket[0] = min(RATE, bucket[0] + (now - bucket[1]) * RATE)
            bucket[1] = now
            if bucket[0] < 1.0:
                self.throttled[where] = self.throttled.get(where, 0) + 1
                return 400, error("ThrottlingException", "Rate exceeded")
            bucket[0] -= 1.0
            self.served[where] = self.served.get(where, 0) + 1
            return self.lookup(account, region, json.loads(body or b"{}"))

    def lookup(self, account: str, region: str, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        attrs = req.get("LookupAttributes") or []
        if len(attrs) > 1 or any(a.get("AttributeKey") not in KEYS for a in attrs):
            return 400, error("InvalidLookupAttributesException",
                              "Only one lookup attribute is allowed, one of " + ", ".join(KEYS))
        start, end = req.get("StartTime"), req.get("EndTime")
        if start is not None and end is not None and float(start) > float(end):
            return 400, error("InvalidTimeRangeException", "StartTime is after EndTime")
        limit = req.get("MaxResults", 50)
        if not isinstance(limit, int) or not 1 <= limit <= 50:
            return 400, error("InvalidMaxResultsException", "MaxResults must be between 1 and 50")
        now = dt.datetime.now(dt.timezone.utc)
        history = [e for e in self.events.get((account, region), []) if e["time"] >= now - WINDOW]
        if attrs:
            key, value = attrs[0]["AttributeKey"], attrs[0].get("AttributeValue")
            history = [e for e in history if field(e, key) == value]
        if start is not None:
            history = [e for e in history if e["time"].timestamp() >= float(start)]
        if end is not None:
            history = [e for e in history if e["time"].timestamp() <= float(end)]
        offset = 0
        if req.get("NextToken"):
            if req["NextToken"] not in self.tokens:
                return 400, error("InvalidNextTokenException", "The token is not valid")
            offset = self.tokens[req["NextToken"]]
        page = history[offset:offset + limit]
        answer: dict[str, Any] = {"Events": [record(e) for e in page]}
        if offset + limit < len(history):
            token = uuid.uuid4().hex
            self.tokens[token] = offset + limit
            answer["NextToken"] = token
        return 200, answer


def field(e: dict[str, Any], key: str) -> Any:
    return {
        "EventId": e["id"], "EventName": e.get("event_name", "GetCallerIdentity"),
        "ReadOnly": "true" if e.get("read_only", True) else "false", "Username": e.get("username"),
        "EventSource": e["event_source"], "AccessKeyId": e["access_key_id"],
    }.get(key)


def record(e: dict[str, Any]) -> dict[str, Any]:
    at = e["time"].strftime("%Y-%m-%dT%H:%M:%SZ")
    trail = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "userName": e.get("username"), "accessKeyId": e["access_key_id"]},
        "eventTime": at, "eventSource": e["event_source"], "eventName": e.get("event_name", "GetCallerIdentity"),
        "awsRegion": e["region"], "sourceIPAddress": e.get("source_ip", "203.0.113.10"),
        "userAgent": e.get("user_agent", "aws-cli/2.15.0"), "readOnly": e.get("read_only", True),
        "eventID": e["id"],
    }
    return {
        "EventId": e["id"], "EventName": trail["eventName"], "ReadOnly": field(e, "ReadOnly"),
        "AccessKeyId": e["access_key_id"], "EventTime": e["time"].timestamp(), "EventSource": e["event_source"],
        "Username": e.get("username"), "Resources": [], "CloudTrailEvent": json.dumps(trail),
    }


def error(code: str, message: str) -> dict[str, Any]:
    return {"__type": code, "Message": message}
