"""Reads back what Security Hub holds in each account (used by the end-to-end test of --push-securityhub).

    securityhub_readback.py --endpoint URL --accounts ID,ID,... [--by-hand ACCOUNT:ID:STATUS ...]

For each account, with that account's own credentials (the caller's for the management account, the
OrganizationAccountAccessRole session for the others), GetFindings returns every finding stored there. Prints
one JSON object: account id → [{Id, ProductArn, AwsAccountId, RecordState, ComplianceStatus, SeverityLabel,
Workflow, NoteBy, NoteText}].

`--by-hand` first does what a person does in the console: BatchUpdateFindings of that finding to that workflow
status, with a note by `arn:aws:iam::ACCOUNT:user/alice`.
"""

from __future__ import annotations

import argparse
import json

import boto3

from check_exports import account_credentials

MANAGEMENT = "123456789012"
CALLER = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "readback"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--accounts", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--by-hand", nargs="*", default=[])
    a = p.parse_args()
    session = dict(endpoint_url=a.endpoint, region_name=a.region)
    sts = boto3.client("sts", **session, **CALLER)
    for change in a.by_hand:
        account, finding, status = change.split(":")
        hub = boto3.client("securityhub", **session, **account_credentials(sts, account, CALLER, MANAGEMENT))
        product = f"arn:aws:securityhub:{a.region}:{account}:product/{account}/default"
        answer = hub.batch_update_findings(FindingIdentifiers=[{"Id": finding, "ProductArn": product}],
                                           Workflow={"Status": status},
                                           Note={"Text": "changed by hand", "UpdatedBy": f"arn:aws:iam::{account}:user/alice"})
        assert not answer["UnprocessedFindings"], answer
    out: dict[str, list[dict]] = {}
    for account in a.accounts.split(","):
        creds = account_credentials(sts, account, CALLER, MANAGEMENT)
        hub = boto3.client("securityhub", **session, **creds)
        found = []
        for page in hub.get_paginator("get_findings").paginate():
            for f in page["Findings"]:
                found.append({"Id": f["Id"], "ProductArn": f["ProductArn"], "AwsAccountId": f["AwsAccountId"],
                              "RecordState": f.get("RecordState"),
                              "ComplianceStatus": f.get("Compliance", {}).get("Status"),
                              "SeverityLabel": f.get("FindingProviderFields", {}).get("Severity", {}).get("Label"),
                              "Workflow": f.get("Workflow", {}).get("Status"),
                              "NoteBy": f.get("Note", {}).get("UpdatedBy"),
                              "NoteText": f.get("Note", {}).get("Text")})
        out[account] = found
    print(json.dumps(out))


if __name__ == "__main__":
    main()
