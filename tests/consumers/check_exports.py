"""Checks keyaudit's exports with their real consumers (used by the end-to-end tests).

    check_exports.py --report R.json [--sarif F --sarif-schema S] [--ocsf F] [--asff F --endpoint URL]
                     [--csv F] [--ndjson F] [--security-lake DIR]

- SARIF: the official SARIF 2.1.0 JSON schema shipped with @microsoft/sarif-multitool (the multitool itself is
  run by the Rust test; once a log deserializes it no longer reports schema errors, hence this second check),
  and GitHub code scanning's documented ingestion rules, which are stricter than both (see check_github).
- OCSF: every record must validate as py-ocsf-models' ComplianceFinding, and no top-level field may be dropped.
- ASFF: AWS's rule for custom integrations (each finding's ProductArn is its own account's default product, and
  is imported from that account: moto checks neither), then BatchImportFindings into the emulator's Security Hub
  with each account's own credentials, FailedCount 0, and GetFindings in each account reads back its Ids.
- CSV: parsed with Python's csv module, equal to the JSON report's findings, row for row (formula-like text
  neutralised with a leading `'`).
- Security Lake: DIR holds the custom source's objects as they were stored under its location (the key's path).
  Each key is parsed as Security Lake partitions it (region=/accountId=/eventDay=/OBJECT); each object is read
  with pyarrow: zstd in every column chunk, row groups under 256 MB as Security Lake asks, records sorted by time, every record in its partition's account, region and day, valid for
  py-ocsf-models' ComplianceFinding once converted to JSON and an OCSF 1.3 record (metadata.version 1.3.0, no
  attribute that came later); one object per scanned account (without rows when it has no finding), and every
  finding of the report once.
- NDJSON: every line parses; finding lines equal the JSON report's findings; the last line is the summary.
Prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys

problems: list[str] = []


def check(cond: bool, message: str) -> None:
    if not cond:
        problems.append(message)


def stringify(v: object) -> str:
    """A CSV cell as keyaudit writes it: text a spreadsheet would take for a formula gets a leading `'`."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return "" if v is None else str(v)


def check_sarif(path: str, schema_path: str) -> None:
    import jsonschema

    schema = json.load(open(schema_path))
    log = json.load(open(path))
    for e in jsonschema.Draft7Validator(schema).iter_errors(log):
        problems.append(f"SARIF schema: {list(e.absolute_path)}: {e.message}")


def check_github(path: str) -> None:
    """GitHub code scanning's upload rules (docs.github.com, "SARIF support for code scanning"): at most 20 runs
    per file, 25,000 results per run, 10 MB gzipped; every result needs a location with
    physicalLocation.artifactLocation.uri relative to the repository, or the whole upload fails with
    "locationFromSarifResult: expected artifact location"."""
    import gzip
    from urllib.parse import urlparse

    raw = open(path, "rb").read()
    check(len(gzip.compress(raw)) <= 10 * 1024 * 1024, "GitHub: the gzipped SARIF file is over 10 MB")
    log = json.loads(raw)
    runs = log.get("runs", [])
    check(1 <= len(runs) <= 20, f"GitHub: {len(runs)} runs (1 to 20 allowed)")
    for r, run in enumerate(runs):
        results = run.get("results", [])
        check(len(results) <= 25000, f"GitHub: run {r} has {len(results)} results (25,000 allowed)")
        for i, result in enumerate(results):
            uris = [loc.get("physicalLocation", {}).get("artifactLocation", {}).get("uri")
                    for loc in result.get("locations", [])]
            uris = [u for u in uris if u]
            where = f"GitHub: run {r} result {i}"
            check(bool(uris), f"{where}: no physicalLocation.artifactLocation.uri (expected artifact location)")
            for uri in uris:
                parsed = urlparse(uri)
                check(not parsed.scheme and not uri.startswith("/"), f"{where}: {uri!r} is not repository-relative")
            check(bool(result.get("ruleId")), f"{where}: no ruleId")


def check_ocsf(path: str) -> None:
    from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
    from py_ocsf_models.objects.cloud import Cloud

    records = json.load(open(path))
    check(isinstance(records, list) and records, "OCSF: expected a non-empty JSON array")
    fields = set(ComplianceFinding.model_fields)
    for i, r in enumerate(records):
        try:
            ComplianceFinding.model_validate(r)
        except Exception as e:  # pydantic's ValidationError, reported verbatim
            problems.append(f"OCSF record {i}: {e}")
        # `cloud` comes from OCSF's cloud profile, which the record must declare; validate it on its own.
        profiles = r.get("metadata", {}).get("profiles", [])
        if "cloud" in r:
            check("cloud" in profiles, f"OCSF record {i}: `cloud` without the cloud profile in metadata.profiles")
            try:
                Cloud.model_validate(r["cloud"])
            except Exception as e:
                problems.append(f"OCSF record {i} cloud: {e}")
        dropped = set(r) - fields - ({"cloud", "api"} if "cloud" in profiles else set())
        check(not dropped, f"OCSF record {i}: fields the model does not know: {sorted(dropped)}")
        check(r.get("class_uid") == 2003, f"OCSF record {i}: class_uid {r.get('class_uid')}")


# Compliance Finding attributes keyaudit writes that OCSF added after 1.3 (ocsf-schema's CHANGELOG): none may
# reach a 1.3 record.
AFTER_1_3 = {("compliance", "desc"), ("compliance", "checks"), ("compliance", "assessments"), ("cloud", "cloud_partition")}


def check_security_lake(root: str, report: dict) -> None:
    import datetime
    import pathlib

    import pyarrow.parquet as pq
    from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding

    def without_nulls(v: object) -> object:
        if isinstance(v, dict):
            return {k: without_nulls(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [without_nulls(x) for x in v]
        return v

    seen: dict[str, int] = {}
    for path in sorted(pathlib.Path(root).rglob("*")):
        if path.is_dir():
            continue
        key = path.relative_to(root).as_posix()
        parts = key.split("/")
        partition = dict(p.split("=", 1) for p in parts[:-1] if "=" in p)
        if [p.split("=", 1)[0] for p in parts[:-1]] != ["region", "accountId", "eventDay"]:
            problems.append(f"Security Lake {key}: not under region=/accountId=/eventDay=/")
            continue
        account, day = partition["accountId"], partition["eventDay"]
        check(len(account) == 12 and account.isdigit(), f"Security Lake {key}: accountId {account!r}")
        check(len(day) == 8 and day.isdigit(), f"Security Lake {key}: eventDay {day!r} is not YYYYMMDD")
        check(parts[-1].endswith(".parquet"), f"Security Lake {key}: not a .parquet object")
        check(account not in seen, f"Security Lake: a second object for account {account}: {key}")
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            check(group.total_byte_size < 256 * 1024 * 1024, f"Security Lake {key}: row group {g} over 256 MB")
            for c in range(group.num_columns):
                column = group.column(c)
                check(column.compression == "ZSTD", f"Security Lake {key}: column {column.path_in_schema} is {column.compression}")
        records = [without_nulls(r) for r in pq.ParquetFile(path).read().to_pylist()]
        seen[account] = len(records)
        times = [r["time"] for r in records]
        check(times == sorted(times), f"Security Lake {key}: records not sorted by time")
        for i, r in enumerate(records):
            where = f"Security Lake {key} record {i}"
            try:
                ComplianceFinding.model_validate(r)
            except Exception as e:  # pydantic's ValidationError, reported verbatim
                problems.append(f"{where}: {e}")
            check(r.get("class_uid") == 2003 and r.get("type_uid") == 200301, f"{where}: class {r.get('class_uid')}")
            check(r["metadata"]["version"] == "1.3.0", f"{where}: OCSF {r['metadata']['version']}, not 1.3.0")
            later = [f"{o}.{a}" for o, a in AFTER_1_3 if a in r.get(o, {})]
            check(not later, f"{where}: attributes OCSF added after 1.3: {later}")
            check(r["cloud"]["account"]["uid"] == account, f"{where}: account {r['cloud']['account']['uid']} in {account}'s partition")
            check(r["cloud"]["region"] == partition["region"], f"{where}: region {r['cloud']['region']}")
            when = datetime.datetime.fromtimestamp(r["time"] / 1000, datetime.timezone.utc).strftime("%Y%m%d")
            check(when == day, f"{where}: time {r['time']} is not on eventDay {day}")
    expected = {a["account_id"]: 0 for a in report["accounts"] if a["status"] == "scanned"}
    for f in report["findings"]:
        expected[f["account_id"]] = expected.get(f["account_id"], 0) + 1
    check(seen == expected, f"Security Lake: records per account {seen}, the report has {expected}")


def account_credentials(sts: object, account: str, caller: dict, management: str) -> dict:
    """An account's own credentials in the emulator: the caller's for its own account, else a session of the
    account's OrganizationAccountAccessRole (Security Hub keeps each account's findings apart by them)."""
    import boto3
    from botocore.exceptions import ClientError

    if account == management:
        return caller
    role = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
    try:
        c = sts.assume_role(RoleArn=role, RoleSessionName="keyaudit-check")["Credentials"]  # type: ignore[attr-defined]
    except ClientError as e:
        if e.response["Error"]["Code"] != "AccessDenied":
            raise
        # Another organization's management account (a merged report) has no OrganizationAccountAccessRole, as on
        # AWS: the check makes one there, through moto's account header, to read that account's hub.
        iam = boto3.client("iam", endpoint_url=sts.meta.endpoint_url, region_name="us-east-1", **caller)  # type: ignore[attr-defined]
        iam.meta.events.register("before-send.iam.*",
                                 lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
        iam.create_role(RoleName="OrganizationAccountAccessRole", AssumeRolePolicyDocument="{}")
        c = sts.assume_role(RoleArn=role, RoleSessionName="keyaudit-check")["Credentials"]  # type: ignore[attr-defined]
    return dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                aws_session_token=c["SessionToken"])


def check_asff(path: str, endpoint: str) -> None:
    """Imports the file as AWS documents for a custom integration (the default product): each finding's
    ProductArn is `product/<AwsAccountId>/default`, and each account's findings are imported with that account's
    own credentials (moto does not check either rule, so they are checked here), 100 per call; then each
    account's findings are read back there."""
    import boto3

    findings = json.load(open(path))
    check(bool(findings), "ASFF: no findings")
    session = dict(endpoint_url=endpoint, region_name="us-east-1")
    caller = dict(aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="consumer-check")
    sts = boto3.client("sts", **session, **caller)
    me = sts.get_caller_identity()["Account"]
    by_account: dict[str, list[dict]] = {}
    for f in findings:
        account = f["AwsAccountId"]
        region = f["Resources"][0]["Region"]
        partition = f["Resources"][0]["Partition"]
        want = f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"
        check(f["ProductArn"] == want, f"ASFF {f['Id']}: ProductArn {f['ProductArn']}, AWS accepts only {want}")
        check(f.get("FindingProviderFields", {}).get("Severity") is not None, f"ASFF {f['Id']}: no FindingProviderFields.Severity")
        by_account.setdefault(account, []).append(f)
    order = [f["AwsAccountId"] for f in findings]
    check(order == sorted(order), "ASFF: the file is not grouped by account")
    failed = 0
    for account, group in by_account.items():
        creds = account_credentials(sts, account, caller, me)
        hub = boto3.client("securityhub", **session, **creds)
        check(boto3.client("sts", **session, **creds).get_caller_identity()["Account"] == account,
              f"ASFF: importing {account}'s findings with another account's credentials")
        for start in range(0, len(group), 100):  # BatchImportFindings takes at most 100 findings
            out = hub.batch_import_findings(Findings=group[start:start + 100])
            failed += out["FailedCount"]
            for f in out.get("FailedFindings", []):
                problems.append(f"ASFF import failed: {f}")
        got = []
        for page in hub.get_paginator("get_findings").paginate():
            got.extend(page["Findings"])
        by_id = {f["Id"]: f for f in got}
        missing = {f["Id"] for f in group} - set(by_id)
        check(not missing, f"ASFF: {len(missing)} of account {account}'s findings not read back there")
        for f in group:
            back = by_id.get(f["Id"])
            if back:
                check(back["Compliance"]["Status"] == f["Compliance"]["Status"], f"ASFF {f['Id']}: status changed")
                check(back["AwsAccountId"] == f["AwsAccountId"], f"ASFF {f['Id']}: account changed")
    check(failed == 0, f"ASFF: FailedCount {failed}")


def check_csv(path: str, report: dict) -> None:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected = report["findings"]
    check(len(rows) == len(expected), f"CSV: {len(rows)} rows, {len(expected)} findings")
    for i, (row, f) in enumerate(zip(rows, expected)):
        # `evidence` is an object in JSON and its JSON text in one CSV cell; `suppression`'s fields are
        # `suppression_<field>` columns.
        check(json.loads(row.pop("evidence", "null")) == f.get("evidence"), f"CSV row {i}: evidence differs")
        want = {k: stringify(v) for k, v in f.items() if k not in ("evidence", "suppression")}
        for field in ("entry", "reason", "owner", "expires"):
            want[f"suppression_{field}"] = stringify((f.get("suppression") or {}).get(field))
        check(row == want, f"CSV row {i} differs: {row} != {want}")


def check_ndjson(path: str, report: dict) -> None:
    lines = [json.loads(line) for line in open(path) if line.strip()]
    check(bool(lines) and lines[-1].get("type") == "summary", "NDJSON: the last line is not the summary")
    findings = [{k: v for k, v in line.items() if k != "type"} for line in lines if line.get("type") == "finding"]
    key = lambda f: f["fingerprint"]  # noqa: E731
    check(sorted(findings, key=key) == sorted(report["findings"], key=key), "NDJSON findings differ from the JSON report")
    accounts = [line for line in lines if line.get("type") == "account"]
    check(len(accounts) == len(report["accounts"]), "NDJSON: one account line per account")
    check(lines[-1].get("summary") == report["summary"], "NDJSON: the summary differs from the JSON report")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--report", required=True)
    p.add_argument("--sarif")
    p.add_argument("--sarif-schema")
    p.add_argument("--github-sarif", help="check only GitHub code scanning's ingestion rules on this SARIF file")
    p.add_argument("--ocsf")
    p.add_argument("--asff")
    p.add_argument("--endpoint")
    p.add_argument("--csv")
    p.add_argument("--ndjson")
    p.add_argument("--security-lake")
    a = p.parse_args()
    report = json.load(open(a.report))
    if a.sarif:
        check_sarif(a.sarif, a.sarif_schema)
        check_github(a.sarif)
    if a.github_sarif:
        check_github(a.github_sarif)
    if a.ocsf:
        check_ocsf(a.ocsf)
    if a.asff:
        check_asff(a.asff, a.endpoint)
    if a.csv:
        check_csv(a.csv, report)
    if a.ndjson:
        check_ndjson(a.ndjson, report)
    if a.security_lake:
        check_security_lake(a.security_lake, report)
    for line in problems:
        print(line)
    print(f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
