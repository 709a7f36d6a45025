//! Issue "10,000 accounts under AWS's published quotas": the benchmark's simulator (bench/simulator) answers as
//! moto does for everything keyaudit reads. The same organization, scanned through each, gives the same report
//! (times aside), so the benchmark's figures are about keyaudit, not about a simulator that answers differently.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::harness::{AS_OF, Emulator};
use crate::setup;

/// The simulator binary, built beside keyaudit (`cargo build --workspace`; `scripts/test` builds it first).
fn simulator_binary() -> PathBuf {
    let keyaudit = PathBuf::from(env!("CARGO_BIN_EXE_keyaudit"));
    let path = keyaudit.with_file_name("keyaudit-simulator");
    assert!(path.exists(), "{} is missing: cargo build -p keyaudit-simulator", path.display());
    path
}

struct Simulator {
    child: Child,
    url: String,
}

impl Simulator {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(simulator_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the simulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url =
            line.trim().strip_prefix("KEYAUDIT_SIMULATOR_READY ").unwrap_or_else(|| panic!("{line:?}")).to_owned();
        Self { child, url }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every value that carries the time of the run (or of a credential report's generation) set to null.
fn mask_times(value: &mut Value) {
    const TIMES: [&str; 6] =
        ["started_at", "finished_at", "duration_ms", "clock", "report_generated_at", "generated_at"];
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if TIMES.contains(&key.as_str()) {
                    *v = Value::Null;
                } else {
                    mask_times(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_times),
        _ => {}
    }
}

fn scan(emu: &Emulator, url: &str, dir: &std::path::Path, name: &str) -> (i32, Value) {
    let path = dir.join(name);
    let json = format!("json={}", path.display());
    let args = ["scan", "--as-of", AS_OF, "--key-ids", "all", "-o", &json, "-o", "table"];
    let out = emu.command_with(&args, &[("AWS_ENDPOINT_URL", url)]);
    let code = out.status.code().unwrap();
    assert!(code <= 1, "{}", String::from_utf8_lossy(&out.stderr));
    let mut report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    mask_times(&mut report);
    (code, report)
}

#[test]
fn the_same_organization_scanned_through_moto_and_through_the_simulator_gives_the_same_report() {
    let (emu, s) = setup();
    // A user with an owner tag, and root keys: the look-ups and the root rule are read from both too.
    emu.control(
        "POST",
        "root-keys",
        &json!({"account_id": s.account("dev"), "keys": [{"created": "2025-01-01T00:00:00Z", "last_used": "2026-11-01T00:00:00Z"}]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let (moto_code, moto) = scan(&emu, &emu.url, dir.path(), "moto.json");

    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, emu.control("GET", "export", &Value::Null).to_string()).unwrap();
    let caller = moto["run"]["caller_arn"].as_str().unwrap();
    let sim = Simulator::start(&["--spec", &spec.display().to_string(), "--caller-arn", caller]);
    let (sim_code, simulated) = scan(&emu, &sim.url, dir.path(), "simulator.json");

    assert_eq!(sim_code, moto_code);
    assert!(moto["findings"].as_array().unwrap().iter().any(|f| f["verdict"] == "fail"), "a report with failures");
    for part in ["accounts", "findings", "summary", "run"] {
        assert_eq!(simulated[part], moto[part], "{part} differ");
    }
    assert_eq!(simulated, moto);
}

#[test]
fn the_simulator_enforces_aws_quotas_and_its_oracle_matches_a_scan() {
    let sim = Simulator::start(&["--accounts", "300", "--ous", "40", "--report-generation-ms", "200"]);
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let (_, report) = scan(&emu, &sim.url, dir.path(), "report.json");
    let oracle: Value = ureq_get(&format!("{}/_sim/oracle", sim.url));
    let stats: Value = ureq_get(&format!("{}/_sim/stats", sim.url));
    assert_eq!(stats["throttled"], json!({}), "keyaudit's pacing stays within AWS's buckets: {stats}");
    let accounts = oracle["accounts"].as_array().unwrap();
    assert_eq!(report["accounts"].as_array().unwrap().len(), accounts.len());
    for truth in accounts {
        let id = truth["id"].as_str().unwrap();
        let seen = report["accounts"].as_array().unwrap().iter().find(|a| a["account_id"] == id).unwrap();
        assert_eq!(seen["ou_path"], truth["ou_path"], "{id}");
        let status = if truth["state"] == "ACTIVE" { "scanned" } else { "skipped" };
        assert_eq!(seen["status"], status, "{id}");
    }
    // Reports are asked for when this scan's generations have been taking, not polled through them: asked at once
    // and then with backoff, a 200 ms generation costs two asks per account.
    let scanned = report["summary"]["accounts"]["scanned"].as_u64().unwrap();
    let asks = stats["served"]["GetCredentialReport"].as_u64().unwrap();
    assert!(asks * 2 < scanned * 3, "{asks} GetCredentialReport for {scanned} accounts: {stats}");
}

/// A GET with the standard library alone (the simulator's control routes are plain HTTP/1.1 on loopback).
fn ureq_get(url: &str) -> Value {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
