"""Checks the deployment kit in deploy/ (used by the end-to-end tests).

    check_deploy.py [--root DIR] [--readme FILE] [--workflows FILE...]
    check_deploy.py --granted        (only prints each template's granted actions as JSON, for the tests)

- Every CloudFormation template in deploy/ passes cfn-lint (PyPI, pinned in tests/emulator/requirements.txt).
- The StackSet's TemplateBody is deploy/audit-role.yaml, verbatim.
- The actions each template grants equal the README's permission line for that template (the README's
  "### Permissions" list names each template; an action is any backticked `service:Action`).
- The GitHub workflows (.github/workflows/, deploy/github-actions/) pass `zizmor --offline --persona pedantic`
  (PyPI, pinned), and every `uses:` names an action by a full commit SHA.
Prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import subprocess
import sys

from cfnlint.decode import decode_str

problems: list[str] = []


def check(ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)


def templates(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in (root / "deploy").rglob("*.yaml")
                  if "AWSTemplateFormatVersion" in p.read_text())


def granted(node: object) -> set[str]:
    """Every action in an Allow statement of the template's policies (they may sit under Fn::If); trust policies
    (who may assume a role) grant nothing and are skipped."""
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("Effect") == "Allow" and "Action" in node:
            actions = node["Action"]
            found.update([actions] if isinstance(actions, str) else actions)
        for key, value in node.items():
            if key != "AssumeRolePolicyDocument":
                found |= granted(value)
    elif isinstance(node, list):
        for value in node:
            found |= granted(value)
    return found


def readme_lines(readme: pathlib.Path) -> dict[str, set[str]]:
    """The permission list: template path → the actions on its line (a bullet may name several templates)."""
    text = readme.read_text()
    section = text.split("### Permissions", 1)[1].split("\n### ", 1)[0]
    out: dict[str, set[str]] = {}
    for bullet in re.split(r"\n- ", section)[1:]:
        bullet = bullet.split("\n\n", 1)[0]
        actions = set(re.findall(r"`([a-z0-9-]+:[A-Za-z]+)`", bullet)) - {"sts:GetCallerIdentity"}
        for path in re.findall(r"\(deploy/([\w./-]+\.yaml)\)", bullet):
            out[path] = actions
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parents[2]))
    p.add_argument("--readme", help="the README to compare with (default: ROOT/README.md)")
    p.add_argument("--workflows", nargs="*", help="the workflow files to check (default: the project's)")
    p.add_argument("--granted", action="store_true", help="print {template: [actions]} and exit")
    a = p.parse_args()
    root = pathlib.Path(a.root)
    files = templates(root)
    if a.granted:
        out = {f.relative_to(root / "deploy").as_posix(): sorted(granted(decode_str(f.read_text())[0] or {}))
               for f in files}
        print(json.dumps(out))
        return
    check(len(files) >= 4, f"only {len(files)} templates in deploy/")

    cfn_lint = pathlib.Path(sys.executable).parent / "cfn-lint"
    lint = subprocess.run([str(cfn_lint), *map(str, files)], capture_output=True, text=True)
    check(lint.returncode == 0, f"cfn-lint:\n{lint.stdout}{lint.stderr}")

    parsed = {}
    for f in files:
        template, errors = decode_str(f.read_text())
        check(not errors, f"{f}: {errors}")
        parsed[f.relative_to(root / "deploy").as_posix()] = template or {}

    stackset = parsed.get("audit-role-stackset.yaml", {})
    body = stackset.get("Resources", {}).get("AuditRoleStackSet", {}).get("Properties", {}).get("TemplateBody")
    check(body == (root / "deploy/audit-role.yaml").read_text(),
          "deploy/audit-role-stackset.yaml: TemplateBody differs from deploy/audit-role.yaml")

    lines = readme_lines(pathlib.Path(a.readme) if a.readme else root / "README.md")
    for name, template in parsed.items():
        if name == "audit-role-stackset.yaml":
            continue  # its role is audit-role.yaml's (checked above)
        want = lines.get(name)
        if want is None:
            problems.append(f"README: no permission line names deploy/{name}")
            continue
        got = granted(template)
        check(got == want, f"deploy/{name} grants {sorted(got)}, the README lists {sorted(want)}: "
                           f"only in the template {sorted(got - want)}, only in the README {sorted(want - got)}")

    flows = [pathlib.Path(w) for w in a.workflows] if a.workflows is not None else sorted(
        [*(root / ".github/workflows").glob("*.yml"), *(root / "deploy/github-actions").glob("*.yml")])
    check(bool(flows), "no workflow files")
    zizmor = pathlib.Path(sys.executable).parent / "zizmor"
    audit = subprocess.run([str(zizmor), "--offline", "--persona", "pedantic", "--no-progress", *map(str, flows)],
                           capture_output=True, text=True)
    check(audit.returncode == 0, f"zizmor:\n{audit.stdout}")
    for flow in flows:
        for n, line in enumerate(flow.read_text().splitlines(), 1):
            m = re.match(r"\s*(?:-\s*)?uses:\s*([^\s#]+)", line)
            if m and not re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", m.group(1)):
                problems.append(f"{flow}:{n}: {m.group(1)} is not pinned to a full commit SHA")

    for line in problems:
        print(line)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
