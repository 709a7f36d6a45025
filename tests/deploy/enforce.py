"""Installs deploy/'s policies in the emulator and turns moto's IAM policy enforcement on or off (used by the
end-to-end test that proves the policies complete).

    enforce.py --endpoint URL install --runner-arn ARN --external-id X --accounts ID,ID [--omit ACTION --omit-in ID]
               [--omit-from audit|remediation]
    enforce.py --endpoint URL on|off

`install` (run with enforcement off) attaches deploy/caller-policy.yaml's policy to the runner (an IAM user of the
management account) and creates deploy/audit-role.yaml's role and deploy/remediation-role.yaml's role (their trust
policies and their policies, every optional statement included: AllowDelete, AllowKeyRotation) in each member
account, with the templates' own statements; `--omit` leaves one action out of the audit role's policy (or the
remediation role's, with `--omit-from remediation`) in account `--omit-in`, or out of the caller's policy when
`--omit-in` is the management account.

What moto cannot enforce (docs/deploy.md says so too): it evaluates IAM actions against the resource `*`, so a
statement scoped to `arn:…:user/*` would never match; every `Resource` is therefore installed as `*`, and the
test proves the action lists, not the resource scoping. moto does not evaluate `Condition` blocks in identity
policies either, nor the permissions an action needs beyond its own (secretsmanager:TagResource for CreateSecret
with tags, KMS for a customer managed key).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import urllib.request

import boto3
from botocore.config import Config
from cfnlint.decode import decode_str

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANAGEMENT = "123456789012"
CREDS = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "x" * 40, "region_name": "us-east-1"}


def statements(template: str, path: list[str]) -> list[dict]:
    """The policy statements at `path` in a deploy/ template, with every Resource as `*` (see above)."""
    node: object = decode_str((ROOT / "deploy" / template).read_text())[0]
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    out = []
    for st in node:  # type: ignore[union-attr]
        if "Fn::If" in st:  # an optional statement: installed as if its condition held
            st = st["Fn::If"][1]
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        out.append({"Effect": st["Effect"], "Action": list(actions), "Resource": "*"})
    return out


def without(sts: list[dict], action: str | None) -> dict:
    kept = [{**s, "Action": [a for a in s["Action"] if a != action]} for s in sts]
    return {"Version": "2012-10-17", "Statement": [s for s in kept if s["Action"]]}


def reset_auth(endpoint: str, value: str) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=value.encode(), method="POST",
                                 headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req, timeout=30).read()


def install(a: argparse.Namespace) -> None:
    cfg = Config(retries={"max_attempts": 1})
    client = lambda svc, **c: boto3.client(svc, endpoint_url=a.endpoint, config=cfg, **{**CREDS, **c})  # noqa: E731
    caller = statements("caller-policy.yaml", ["Resources", "CallerPolicy", "Properties", "PolicyDocument", "Statement"])
    audit = statements("audit-role.yaml",
                       ["Resources", "AuditRole", "Properties", "Policies", "0", "PolicyDocument", "Statement"])
    remediation = statements("remediation-role.yaml", ["Resources", "RemediationRole", "Properties", "Policies", "0",
                                                       "PolicyDocument", "Statement"])
    runner = a.runner_arn.rsplit("/", 1)[1]
    iam = client("iam")
    omit_here = a.omit if a.omit_in == MANAGEMENT else None
    iam.put_user_policy(UserName=runner, PolicyName="keyaudit-caller",
                        PolicyDocument=json.dumps(without(caller, omit_here)))
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": a.runner_arn}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": a.external_id}}}]}
    sts = client("sts")
    for account in filter(None, a.accounts.split(",")):
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                            RoleSessionName="install")["Credentials"]
        member = client("iam", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                        aws_session_token=c["SessionToken"])
        for role, name, sts_ in (("KeyauditAudit", "audit", audit), ("KeyauditRemediation", "remediation", remediation)):
            try:
                member.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
            except member.exceptions.EntityAlreadyExistsException:
                pass
            omit = a.omit if a.omit_in == account and a.omit_from == name else None
            member.put_role_policy(RoleName=role, PolicyName=f"keyaudit-{name}",
                                   PolicyDocument=json.dumps(without(sts_, omit)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True)
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("install")
    i.add_argument("--runner-arn", required=True)
    i.add_argument("--external-id", required=True)
    i.add_argument("--accounts", required=True)
    i.add_argument("--omit")
    i.add_argument("--omit-in")
    i.add_argument("--omit-from", choices=["audit", "remediation"], default="audit")
    sub.add_parser("on")
    sub.add_parser("off")
    a = p.parse_args()
    if a.command == "install":
        install(a)
    else:
        reset_auth(a.endpoint, "0" if a.command == "on" else "inf")


if __name__ == "__main__":
    main()
