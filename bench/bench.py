"""keyaudit benchmark: keyaudit vs a sequential boto3 reference scan, side by side, on the same emulated org.

For each organization size N: reset the emulator, seed N member accounts (USERS users each, one stale key and
one fresh key per user), inject LATENCY ms on every AWS call, then
  1. run `keyaudit scan` (wall time, peak RSS of the keyaudit process, API calls per account from its report,
     maximum requests in flight as the emulator saw them);
  2. run the reference: one account after another, AssumeRole + GenerateCredentialReport +
     GetCredentialReport (waiting out ReportInProgress) + CSV parse, with boto3.
Prints one table and writes bench-output/results.json. Run it through bench/run (which builds keyaudit).

With --simulator 1000,10000,50000, keyaudit scans organizations of those sizes served by the benchmark's simulator
(bench/simulator: AWS's throttling buckets, log-normal latency, 10-second credential report generation) instead of
the emulator, and each run prints keyaudit's wall time against the floor the simulator's parameters imply, calls
per account, throttled answers, peak RSS and CPU seconds, and checks every account and KA-IAM-001 verdict against
the simulator's oracle.

With --security-lake (implies --merge's second organization), the merged report (2 × N accounts) is also written
as Security Lake objects: the Parquet writer's time and peak memory over a merge to the table alone, the objects'
count and size.

With --notify, only `keyaudit notify` is timed (a dry run over 10,000 findings and 2,000 owners).

With --html, keyaudit also writes its HTML report, and tests/browser/check_html.mjs --bench opens it in headless
chromium: the file's size, the time from navigation to the page being interactive (its script has run over
every row), and how long one filter, one sort and one search take.
"""

from __future__ import annotations

import argparse
import shutil
import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
CREDS = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "bench-not-a-secret",
         "region_name": "us-east-1"}


def control(url: str, method: str, route: str, body: object = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{url}/_keyaudit/{route}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def start_emulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/emulator/keyaudit_emulator.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("KEYAUDIT_EMULATOR_READY "):
        proc.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def org_spec(accounts: int, users: int) -> dict:
    # Realistic: most keys are fresh; user-0 of every third account has a stale key (and one user in ten an
    # inactive old one), so per-user enrichment calls stay a minority, as in a well-run organization.
    def user(i: int, u: int) -> dict:
        keys = [{"age_days": 200 + u if (u == 0 and i % 3 == 0) else 10 + u}]
        if (i + u) % 10 == 0:
            keys.append({"age_days": 400, "status": "Inactive"})
        return {"name": f"user-{u}", "keys": keys}

    def account(i: int) -> dict:
        return {"name": f"acct-{i:04d}", "users": [user(i, u) for u in range(users)]}
    ous = [{"name": f"OU{o}", "accounts": [account(i) for i in range(o, accounts, 4)]} for o in range(4)]
    return {"ous": ous}


def bench_env(url: str) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_ENDPOINT_URL": url, "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": CREDS["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": CREDS["aws_secret_access_key"]}


# Every measured keyaudit run is started by this small helper process, not by the benchmark itself: on Linux a
# child's ru_maxrss starts from its parent's resident size at fork, so keyaudit started from this Python, which
# holds whole parsed reports, "peaked" at this Python's size (a `keyaudit diff` of 62 MiB was measured as 185 MiB).
SPAWNER = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    out = open(job["stdout"], "wb") if job["stdout"] else subprocess.DEVNULL
    start = time.perf_counter()
    proc = subprocess.Popen(job["cmd"], env=job["env"], stdout=out, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    print(json.dumps({"code": os.waitstatus_to_exitcode(status), "wall_s": time.perf_counter() - start,
                      "peak_rss_mib": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime,
                      "stderr": err.decode(errors="replace")}), flush=True)
"""
_spawner: subprocess.Popen | None = None


def measured(cmd: list[str], env: dict, stdout: Path | None = None) -> dict:
    """Runs `cmd` to its end through the spawner: exit code, wall time, peak RSS (MiB) and stderr."""
    global _spawner
    if _spawner is None:
        _spawner = subprocess.Popen([sys.executable, "-c", SPAWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
    _spawner.stdin.write(json.dumps({"cmd": cmd, "env": env, "stdout": str(stdout) if stdout else None}) + "\n")
    _spawner.stdin.flush()
    return json.loads(_spawner.stdout.readline())


def run_keyaudit(binary: str, url: str, extra: list[str], creds: dict | None = None) -> dict:
    out = Path(tempfile.mkdtemp()) / "report.json"
    env = bench_env(url)
    if creds:
        env.update(AWS_ACCESS_KEY_ID=creds["access_key_id"], AWS_SECRET_ACCESS_KEY=creds["secret_access_key"])
    run = measured([binary, "scan", "--quiet", "-o", f"json={out}", *extra], env)
    if run["code"] not in (0, 1):
        raise SystemExit(f"keyaudit exited {run['code']}: {run['stderr']}")
    report = json.loads(out.read_text())
    return {"wall_s": run["wall_s"], "peak_rss_mib": run["peak_rss_mib"], "cpu_s": run["cpu_s"], "report": report,
            "path": out}


def merge_figures(binary: str, url: str, first: Path, accounts: int, users: int, out: Path, lake: bool) -> dict:
    """A second organization of the same size, scanned as its own management account, then `keyaudit merge` of the
    two reports into JSON, SARIF, OCSF, CSV and HTML (timed), and the re-export of one report alone. With `lake`,
    the merged report is also written as Security Lake objects alone (`-o security-lake=DIR`), beside a merge to
    the table alone: the difference is the Parquet writer's time and memory."""
    control(url, "POST", "faults", {"latency_ms": 0})
    creds = control(url, "POST", "seed", {**org_spec(accounts, users), "management_account": "210987654321"})["credentials"]
    second = run_keyaudit(binary, url, [], creds)["path"]
    formats = [("json", "json"), ("sarif", "sarif"), ("ocsf", "ocsf.json"), ("csv", "csv"), ("html", "html")]
    outputs = [a for f, ext in formats for a in ("-o", f"{f}={out / f'merged.{ext}'}")]
    figures = {}
    runs = [("merge", [str(first), str(second), *outputs]), ("reexport", [str(first), "-o", f"json={out / 'again.json'}"])]
    lake_dir = out / "security-lake"
    if lake:
        shutil.rmtree(lake_dir, ignore_errors=True)
        runs += [("merge_table_only", [str(first), str(second), "-o", f"table={out / 'merged.txt'}"]),
                 ("security_lake", [str(first), str(second), "-o", f"security-lake={lake_dir}"])]
    for name, args in runs:
        run = measured([binary, "merge", "--quiet", *args], bench_env(url))
        figures[f"{name}_wall_s"] = round(run["wall_s"], 3)
        figures[f"{name}_peak_rss_mib"] = round(run["peak_rss_mib"], 1)
        if run["code"] not in (0, 1):
            raise SystemExit(f"keyaudit merge exited {run['code']}: {run['stderr']}")
    merged = json.loads((out / "merged.json").read_text())
    figures["merged_accounts"] = len(merged["accounts"])
    figures["merged_findings"] = len(merged["findings"])
    figures["inputs_mib"] = round((first.stat().st_size + second.stat().st_size) / 2**20, 2)
    figures["merged_json_mib"] = round((out / "merged.json").stat().st_size / 2**20, 2)
    if lake:
        objects = [p for p in lake_dir.rglob("*.parquet")]
        figures["security_lake_objects"] = len(objects)
        figures["security_lake_mib"] = round(sum(p.stat().st_size for p in objects) / 2**20, 2)
        figures["parquet_writer_s"] = round(figures["security_lake_wall_s"] - figures["merge_table_only_wall_s"], 3)
        figures["parquet_writer_rss_mib"] = round(
            figures["security_lake_peak_rss_mib"] - figures["merge_table_only_peak_rss_mib"], 1)
    return figures


def diff_figures(binary: str, url: str, first: Path, out: Path) -> dict:
    """A second scan of the same organization 30 days later (`--as-of`: keys age, verdicts change), then
    `keyaudit diff` of the two reports, as a table and as JSON (timed, with peak RSS)."""
    control(url, "POST", "faults", {"latency_ms": 0})
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    second = run_keyaudit(binary, url, ["--as-of", later.strftime("%Y-%m-%dT%H:%M:%SZ")])["path"]
    figures = {"diff_findings_per_report": len(json.loads(first.read_text())["findings"]),
               "diff_inputs_mib": round((first.stat().st_size + second.stat().st_size) / 2**20, 2)}
    for fmt in ["table", "json"]:
        target = out / f"diff.{fmt}"
        run = measured([binary, "diff", str(first), str(second), "-o", fmt], bench_env(url), target)
        if run["code"] != 0:
            raise SystemExit(f"keyaudit diff exited {run['code']}: {run['stderr']}")
        figures[f"diff_{fmt}_wall_s"] = round(run["wall_s"], 3)
        figures[f"diff_{fmt}_peak_rss_mib"] = round(run["peak_rss_mib"], 1)
        figures[f"diff_{fmt}_out_kib"] = round(target.stat().st_size / 1024, 1)
    return figures


def notify_figures(binary: str, url: str, out: Path) -> dict:
    """`keyaudit notify` (a dry run) over a report of 10,000 findings and 2,000 owners: 50 accounts of 100 users,
    each with two stale keys (KA-IAM-001 alone), owner tags naming 2,000 addresses; the outbox in a temporary
    folder. Timed, with peak RSS."""
    control(url, "POST", "reset", {})
    def user(a: int, u: int) -> dict:
        owner = f"owner-{(a * 100 + u) % 2000:04d}@corp.example"
        return {"name": f"user-{u:03d}", "keys": [{"age_days": 200}, {"age_days": 150}], "tags": {"owner": owner}}
    control(url, "POST", "seed", {"accounts": [{"name": f"acct-{a:02d}", "users": [user(a, u) for u in range(100)]}
                                               for a in range(50)]})
    scan = run_keyaudit(binary, url, ["--rules", "KA-IAM-001", "--concurrency", "8"])
    config = out / "notify.toml"
    config.write_text('from = "keyaudit@corp.example"\ncatch-all = "security@corp.example"\n')
    outbox = Path(tempfile.mkdtemp())
    run = measured([binary, "notify", str(scan["path"]), "--config", str(config), "--outbox", str(outbox),
                    "--max-messages", "5000"], bench_env(url))
    if run["code"] != 0:
        raise SystemExit(f"keyaudit notify exited {run['code']}: {run['stderr']}")
    findings = len(scan["report"]["findings"])
    owners = len({f["owner"] for f in scan["report"]["findings"] if f["owner"]})
    figures = {"notify_findings": findings, "notify_owners": owners, "notify_messages": len(list(outbox.iterdir())),
               "notify_wall_s": round(run["wall_s"], 3), "notify_peak_rss_mib": round(run["peak_rss_mib"], 1),
               "notify_outbox_mib": round(sum(f.stat().st_size for f in outbox.iterdir()) / 2**20, 1)}
    # The same run with a year of weekly history in the state file: every owner told every week for 52 weeks about
    # their keys (the worst case: a message a week each), so that planning's cost in the history shows.
    by_owner: dict[str, list[str]] = {}
    for f in scan["report"]["findings"]:
        if f["owner"]:
            by_owner.setdefault(f["owner"], []).append(f["fingerprint"])
    as_of = dt.datetime.fromisoformat(scan["report"]["run"]["as_of"].replace("Z", "+00:00"))
    state = out / "notify-state.jsonl"
    with state.open("w") as fh:
        for week in range(52, 0, -1):
            at = (as_of - dt.timedelta(days=7 * week)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for i, (owner, fps) in enumerate(by_owner.items()):
                mid = f"w{week:02d}-{i:05d}"
                fh.write(json.dumps({"event": "sending", "id": mid, "to": owner, "at": at, "wall": at,
                                     "fingerprints": fps}) + "\n")
                fh.write(json.dumps({"event": "sent", "id": mid, "to": owner, "at": at, "wall": at}) + "\n")
    outbox = Path(tempfile.mkdtemp())
    # (The report has no baseline behind it: the history is made up, so the deadline reset is allowed.)
    run = measured([binary, "notify", str(scan["path"]), "--config", str(config), "--outbox", str(outbox),
                    "--state", str(state), "--max-messages", "5000", "--allow-deadline-reset"], bench_env(url))
    if run["code"] != 0:
        raise SystemExit(f"keyaudit notify --state exited {run['code']}: {run['stderr']}")
    figures.update({"notify_history_lines": sum(1 for _ in state.open()),
                    "notify_history_mib": round(state.stat().st_size / 2**20, 1),
                    "notify_history_wall_s": round(run["wall_s"], 3),
                    "notify_history_peak_rss_mib": round(run["peak_rss_mib"], 1),
                    "notify_history_messages": len(list(outbox.iterdir()))})
    return figures


def reference_scan(url: str, threads: int = 1) -> tuple[float, int]:
    """The reference: what a careful script does, one account after another (threads=1), or with a thread pool
    doing the same calls for `threads` accounts at once."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=max(10, threads))
    start = time.perf_counter()
    org = boto3.client("organizations", endpoint_url=url, config=cfg, **CREDS)
    sts = boto3.client("sts", endpoint_url=url, config=cfg, **CREDS)
    me = sts.get_caller_identity()["Account"]
    accounts = [a["Id"] for page in org.get_paginator("list_accounts").paginate() for a in page["Accounts"]]

    def one(account_id: str) -> int:
        if account_id == me:
            creds = CREDS
        else:
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                                RoleSessionName="reference")["Credentials"]
            creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                     "aws_session_token": c["SessionToken"], "region_name": "us-east-1"}
        iam = boto3.client("iam", endpoint_url=url, config=cfg, **creds)
        iam.generate_credential_report()
        while True:
            try:
                content = iam.get_credential_report()["Content"]
                break
            except iam.exceptions.CredentialReportNotReadyException:
                time.sleep(0.25)
        return sum(1 for _ in csv.DictReader(io.StringIO(content.decode())))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        rows = sum(pool.map(one, accounts))
    return time.perf_counter() - start, rows


def html_figures(html: Path) -> dict:
    """The HTML report's size and its timings in headless chromium (best of three page loads)."""
    runs = []
    for _ in range(3):
        out = subprocess.run(["node", str(ROOT / "tests/browser/check_html.mjs"), "--html", str(html), "--bench"],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["ready_ms"])
    return {"html_mib": round(html.stat().st_size / 2**20, 2), "html_rows": best["rows"],
            "html_ready_ms": best["ready_ms"], "html_filter_ms": best["filter_ms"], "html_sort_ms": best["sort_ms"],
            "html_search_ms": best["search_ms"]}


# The simulator's parameters in the benchmark (AWS-like): median latency and the report generation time.
SIM_LATENCY_MS = 40.0
SIM_GENERATION_S = 10.0
# AWS's published Organizations buckets (rate/s, burst) and STS's rate, as the simulator enforces them.
ORG_FOR_PARENT, ORG_CHILDREN, ORG_ACCOUNTS, STS_RATE = (5, 8), (6, 10), (8, 12), 600


def simulator_floor(oracle: dict, ous: list[tuple[str, str]]) -> dict:
    """The fastest any scan of the simulated organization can be: discovery's pages over the buckets that serve
    them, AssumeRole at 600/s, and one report generation after the last account is reached (plus a few calls'
    latency). Scanning overlaps discovery, so the floor is the later of the two, then the generation."""
    parents: dict[str, int] = {}
    for _, parent in ous:
        parents[parent] = parents.get(parent, 0) + 1
    child_accounts: dict[str, int] = {}
    for a in oracle["accounts"]:
        child_accounts[a["parent_id"]] = child_accounts.get(a["parent_id"], 0) + 1
    all_parents = {oid for oid, _ in ous} | {oracle["root_id"]}
    ou_pages = sum(max(1, -(-parents.get(p, 0) // 20)) for p in all_parents)
    account_pages = sum(max(1, -(-child_accounts.get(p, 0) // 20)) for p in all_parents)
    list_pages = -(-len(oracle["accounts"]) // 20)
    (ra, ba), (rb, bb), (rc, bc) = ORG_FOR_PARENT, ORG_CHILDREN, ORG_ACCOUNTS
    discovery = max((ou_pages - ba) / ra, (ou_pages + account_pages - ba - bb) / (ra + rb), (list_pages - bc) / rc, 0)
    members = sum(1 for a in oracle["accounts"] if a["state"] == "ACTIVE") - 1
    assume = max(members - STS_RATE, 0) / STS_RATE
    floor = max(discovery, assume) + SIM_GENERATION_S + 4 * SIM_LATENCY_MS / 1000
    return {"ou_pages": ou_pages, "account_pages": account_pages, "list_accounts_pages": list_pages,
            "discovery_floor_s": round(discovery, 1), "assume_role_floor_s": round(assume, 1),
            "floor_s": round(floor, 1)}


def simulator_runs(binary: str, sizes: list[int], extra: list[str], out: Path) -> list[dict]:
    simulator = Path(binary).with_name("keyaudit-simulator")
    results = []
    for n in sizes:
        # Large organizations are mostly workload accounts without IAM users: at 50,000, one account in ten has any.
        users_every = 1 if n <= 10_000 else 10
        proc = subprocess.Popen([str(simulator), "--accounts", str(n), "--users-every", str(users_every),
                                 "--latency-ms", str(SIM_LATENCY_MS),
                                 "--report-generation-ms", str(int(SIM_GENERATION_S * 1000))],
                                stdout=subprocess.PIPE, text=True)
        try:
            url = proc.stdout.readline().strip().split(" ", 1)[1]
            sim = lambda method, route: json.loads(urllib.request.urlopen(  # noqa: E731
                urllib.request.Request(f"{url}/_sim/{route}", method=method), timeout=600).read())
            oracle = sim("GET", "oracle")
            floor = simulator_floor(oracle, [(o["id"], o["parent_id"]) for o in oracle["ous"]])
            sim("POST", "stats")
            as_of = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            env_creds = {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "bench-not-a-secret"}
            ka = run_keyaudit(binary, url, ["--as-of", as_of, "--rules", "KA-IAM-001", *extra], env_creds)
            stats = sim("GET", "stats")
        finally:
            proc.kill()
        report = ka.pop("report")
        lost = oracle_mismatches(oracle, report, as_of)
        scanned = [a for a in report["accounts"] if a["status"] == "scanned"]
        row = {
            "accounts": len(oracle["accounts"]),
            "ous": len(oracle["ous"]),
            **floor,
            "keyaudit_wall_s": round(ka["wall_s"], 1),
            "wall_over_floor": round(ka["wall_s"] / floor["floor_s"], 3),
            "failed": report["summary"]["accounts"]["failed"],
            "throttled_answers": sum(stats["throttled"].values()),
            "requests": stats["requests"],
            "calls_per_account": round(stats["requests"] / max(len(scanned), 1), 2),
            "sdk_retries": sum(a.get("sdk_retries", 0) for a in report["accounts"]),
            "max_generating": stats["max_generating"],
            "peak_rss_mib": round(ka["peak_rss_mib"], 1),
            "cpu_s": round(ka["cpu_s"], 1),
            "cpu_ms_per_account": round(1000 * ka["cpu_s"] / len(oracle["accounts"]), 3),
            "oracle_mismatches": lost,
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    Path(out, "simulator.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def oracle_mismatches(oracle: dict, report: dict, as_of: str) -> int:
    """Accounts or KA-IAM-001 verdicts that differ from the simulator's truth (0: nothing lost)."""
    now = dt.datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    seen = {a["account_id"]: a for a in report["accounts"]}
    failing = {(f["account_id"], f["access_key_id"]) for f in report["findings"]
               if f["rule_id"] == "KA-IAM-001" and f["verdict"] == "fail"}
    wrong = 0
    for truth in oracle["accounts"]:
        got = seen.get(truth["id"])
        status = "scanned" if truth["state"] == "ACTIVE" else "skipped"
        if got is None or got["status"] != status or got["ou_path"] != truth["ou_path"]:
            wrong += 1
            continue
        for key in truth["keys"]:
            rotated = dt.datetime.fromisoformat(key["last_rotated"].replace("Z", "+00:00"))
            stale = key["status"] == "Active" and (now - rotated).days > 90
            if status == "scanned" and stale != ((truth["id"], key["id"]) in failing):
                wrong += 1
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keyaudit", required=True, help="path to the keyaudit binary")
    parser.add_argument("--accounts", default="50,150,300", help="organization sizes (comma-separated)")
    parser.add_argument("--users", type=int, default=3, help="IAM users per account")
    parser.add_argument("--latency-ms", type=int, default=25, help="latency injected on every AWS call")
    parser.add_argument("--keyaudit-args", default="", help="extra flags for keyaudit scan")
    parser.add_argument("--no-reference", action="store_true", help="skip the boto3 reference (memory runs)")
    parser.add_argument("--report-delay", default="0",
                        help="credential report generation time in ms, or MIN-MAX per account (e.g. 2000-8000): "
                             "runs keyaudit cold (no report) then warm (reports reused, as AWS does for 4 hours)")
    parser.add_argument("--big-account-users", type=int, default=0,
                        help="add one account with this many users, most keys stale (large-account check)")
    parser.add_argument("--out", default=str(ROOT / "bench-output"), help="results folder")
    parser.add_argument("--html", action="store_true", help="also measure the HTML report in headless chromium")
    parser.add_argument("--preflight", action="store_true", help="also time `keyaudit preflight` on the same org")
    parser.add_argument("--diff", action="store_true",
                        help="also scan again 30 days later (--as-of) and time `keyaudit diff` of the two reports")
    parser.add_argument("--merge", action="store_true",
                        help="also scan a second organization of the same size and time `keyaudit merge` of the two")
    parser.add_argument("--security-lake", action="store_true",
                        help="with the merge's second organization: time the Security Lake output (Parquet) of the "
                             "merged report against a merge to the table alone")
    parser.add_argument("--notify", action="store_true",
                        help="only time `keyaudit notify` (a dry run) over 10,000 findings and 2,000 owners")
    parser.add_argument("--simulator", default="",
                        help="organization sizes to scan on the benchmark's simulator instead (e.g. 1000,10000,50000)")
    args = parser.parse_args()

    if args.simulator:
        simulator_runs(args.keyaudit, [int(x) for x in args.simulator.split(",")], args.keyaudit_args.split(),
                       Path(args.out))
        return
    emulator, url = start_emulator()
    if args.notify:
        try:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            figures = notify_figures(args.keyaudit, url, Path(args.out))
            print(json.dumps(figures), flush=True)
            Path(args.out, "notify.json").write_text(json.dumps(figures, indent=2) + "\n")
        finally:
            emulator.kill()
        return
    results = []
    try:
        for n in [int(x) for x in args.accounts.split(",")]:
            control(url, "POST", "reset", {})
            t = time.perf_counter()
            spec = org_spec(n, args.users)
            if args.big_account_users:
                stale = [{"name": f"big-{u:05d}", "keys": [{"age_days": 200 if u % 10 else 20}]}
                         for u in range(args.big_account_users)]
                spec["accounts"] = [{"name": "big", "users": stale}]
            control(url, "POST", "seed", spec)
            seed_s = time.perf_counter() - t
            low, _, high = args.report_delay.partition("-")
            control(url, "POST", "reports", {"generation_ms": int(low), "generation_ms_max": int(high or 0)})
            control(url, "DELETE", "reports")
            control(url, "POST", "faults", {"latency_ms": args.latency_ms})
            control(url, "DELETE", "requests")
            html = Path(args.out, f"report-{n}.html")
            Path(args.out).mkdir(parents=True, exist_ok=True)
            extra = args.keyaudit_args.split() + (["-o", f"html={html}"] if args.html else [])
            ka = run_keyaudit(args.keyaudit, url, extra)
            log = control(url, "GET", "requests")
            control(url, "DELETE", "requests")
            warm = run_keyaudit(args.keyaudit, url, args.keyaudit_args.split()) if int(low) else None
            control(url, "DELETE", "requests")
            ref_s, ref_rows = reference_scan(url) if not args.no_reference else (float("nan"), 0)
            par_s, _ = reference_scan(url, threads=32) if not args.no_reference else (float("nan"), 0)
            report = ka.pop("report")
            scanned = [a for a in report["accounts"] if a["status"] == "scanned"]
            calls = sum(a["api_calls"] for a in scanned)
            enrich = sum(a["enrichment_calls"] for a in scanned)
            tags = sum(a.get("tag_calls", 0) for a in scanned)
            row = {
                "accounts": n + 1,
                "users_per_account": args.users,
                "latency_ms": args.latency_ms,
                "seed_s": round(seed_s, 2),
                "keyaudit_wall_s": round(ka["wall_s"], 3),
                "report_delay_ms": args.report_delay,
                "warm_wall_s": round(warm["wall_s"], 3) if warm else None,
                "cold_minus_warm_s": round(ka["wall_s"] - warm["wall_s"], 3) if warm else None,
                "findings": len(report["findings"]),
                "enrichment_partial": sum(1 for a in scanned if (a.get("enrichment") or {}).get("status") != "complete"),
                "accounts_per_s": round(len(scanned) / ka["wall_s"], 1),
                "scanned": len(scanned),
                "failed": report["summary"]["accounts"]["failed"],
                "base_calls_per_account": round((calls - enrich - tags) / len(scanned), 2),
                "enrichment_calls_per_account": round(enrich / len(scanned), 2),
                "tag_calls_per_account": round(tags / len(scanned), 2),
                "requests_seen_by_emulator": len(log["requests"]),
                "max_in_flight": log["max_in_flight"],
                "peak_rss_mib": round(ka["peak_rss_mib"], 1),
                "reference_wall_s": round(ref_s, 3),
                "reference_rows": ref_rows,
                "speedup": round(ref_s / ka["wall_s"], 1),
                "parallel_reference_wall_s": round(par_s, 3),
            }
            if args.html:
                row.update(html_figures(html))
            if args.preflight:
                control(url, "DELETE", "requests")
                t = time.perf_counter()
                pre = subprocess.run([args.keyaudit, "preflight", "--quiet", "-o", "json"], capture_output=True,
                                     env={**bench_env(url)}, text=True)
                row["preflight_wall_s"] = round(time.perf_counter() - t, 3)
                row["preflight_exit"] = pre.returncode
                calls = control(url, "GET", "requests")["requests"]
                row["preflight_calls_per_account"] = round(len(calls) / (n + 1), 2)
                row["preflight_reports_generated"] = sum(1 for c in calls if c["action"] == "GenerateCredentialReport")
            if args.diff:
                row.update(diff_figures(args.keyaudit, url, ka["path"], Path(args.out)))
            if args.merge or args.security_lake:
                row.update(merge_figures(args.keyaudit, url, ka["path"], n, args.users, Path(args.out),
                                         args.security_lake))
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        emulator.kill()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "results.json").write_text(json.dumps(results, indent=2) + "\n")
    cols = ["accounts", "keyaudit_wall_s", "warm_wall_s", "cold_minus_warm_s", "accounts_per_s", "base_calls_per_account",
            "enrichment_calls_per_account", "tag_calls_per_account", "max_in_flight", "peak_rss_mib", "reference_wall_s",
            "parallel_reference_wall_s", "speedup"]
    print("\n" + "  ".join(f"{c:>16}" for c in cols))
    for r in results:
        print("  ".join(f"{'-' if r[c] is None else r[c]:>16}" for c in cols))


if __name__ == "__main__":
    main()
