//! The end-to-end harness: starts keyaudit's emulator launcher (moto in-process plus control routes) on a free
//! loopback port, seeds it through the AWS API, runs the real `keyaudit` binary against it and hands back its
//! exit code, stdout, stderr and JSON report.
//!
//! No emulator is a test failure, never a skip: the launcher's Python comes from `KEYAUDIT_EMULATOR_PYTHON`
//! (set by `.ci/run` to the project's venv) or `python3`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The value of the fake secret key every run uses; it must never appear in any output.
pub(crate) const FAKE_SECRET: &str = "kEyAuDiTtEsTsEcReTdOnOtLeAkThIsVaLuE0000";
pub(crate) const MANAGEMENT: &str = "123456789012";
/// The instant every test scans at.
pub(crate) const AS_OF: &str = "2026-11-28T12:00:00Z";

pub(crate) struct Emulator {
    child: Child,
    pub(crate) url: String,
    host_port: String,
}

/// The repository the tests run in: cargo and nextest say where the package is when they run a test, and that is
/// preferred to where it was when the test was compiled (a build cache shared between two clones can hand one
/// clone's test binary to the other, which would then read the first clone's files).
pub(crate) fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
}

#[allow(clippy::disallowed_methods)] // the harness reads its own environment, as documented above
pub(crate) fn python() -> String {
    std::env::var("KEYAUDIT_EMULATOR_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a Python `script` (the emulator's interpreter, with boto3) with `env`, expects it to succeed, and reads what
/// it prints as JSON.
pub(crate) fn python_json(script: &str, env: &[(&str, &str)]) -> Value {
    let out = Command::new(python()).args(["-c", script]).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

impl Emulator {
    pub(crate) fn start() -> Self {
        let launcher = repo_root().join("tests/emulator/keyaudit_emulator.py");
        let mut child = Command::new(python())
            .arg(&launcher)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the emulator with {} {}: {e}", python(), launcher.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            for _ in lines {}
        });
        let ready = rx.recv_timeout(Duration::from_secs(60)).ok().flatten();
        let Some(url) = ready.as_deref().and_then(|l| l.strip_prefix("KEYAUDIT_EMULATOR_READY ")) else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!(
                "the emulator did not start (is `pip install -r tests/emulator/requirements.txt` done for {}?)\n{err}",
                python()
            );
        };
        // Drain stderr so the emulator never blocks on a full pipe.
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink);
        });
        let url = url.to_owned();
        let host_port = url.trim_start_matches("http://").to_owned();
        Self { child, url, host_port }
    }

    /// One control-route call; panics with the emulator's message on failure.
    pub(crate) fn control(&self, method: &str, route: &str, body: &Value) -> Value {
        let payload = body.to_string();
        let mut stream = TcpStream::connect(&self.host_port).expect("connect to the emulator");
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        write!(
            stream,
            "{method} /_keyaudit/{route} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
            self.host_port,
            payload.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("bad control response {body:?}: {e}"));
        assert!(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"), "{route}: {value}");
        value
    }

    pub(crate) fn seed(&self, spec: Value) -> Seeded {
        Seeded(self.control("POST", "seed", &spec))
    }

    pub(crate) fn fault(&self, fault: Value) {
        self.control("POST", "faults", &fault);
    }

    /// Runs `keyaudit` with the emulator's endpoint and fake credentials.
    pub(crate) fn keyaudit(&self, args: &[&str]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        all.push("-o".into());
        all.push(format!("json={}", report.display()));
        let output = self.command(&all.iter().map(String::as_str).collect::<Vec<_>>());
        let json = std::fs::read_to_string(&report).ok().map(|s| serde_json::from_str(&s).expect("the report is JSON"));
        Run::new(output, json)
    }

    /// Runs `keyaudit` exactly with `args` (no JSON report added).
    pub(crate) fn command(&self, args: &[&str]) -> Output {
        self.prepare(args).output().expect("run keyaudit")
    }

    /// Runs a bash script with keyaudit's environment (endpoint, credentials), for pipelines.
    pub(crate) fn shell(&self, script: &str) -> Output {
        let mut command = self.prepare(&[]);
        let program = std::path::Path::new("/bin/bash");
        let mut bash = Command::new(program);
        bash.arg("-c").arg(script).env_clear();
        for (k, v) in command.get_envs() {
            if let Some(v) = v {
                bash.env(k, v);
            }
        }
        let _ = &mut command;
        bash.output().expect("run bash")
    }

    /// Like [`Emulator::command`], with these environment variables set (e.g. other credentials).
    pub(crate) fn command_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.prepare(args);
        command.envs(env.iter().copied());
        command.output().expect("run keyaudit")
    }

    /// Like [`Emulator::command`], run in the directory `dir`.
    pub(crate) fn command_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.prepare(args).current_dir(dir).output().expect("run keyaudit")
    }

    /// Like [`Emulator::command`], without the environment variables `unset`.
    pub(crate) fn command_without(&self, args: &[&str], unset: &[&str]) -> Output {
        let mut command = self.prepare(args);
        for name in unset {
            command.env_remove(name);
        }
        command.output().expect("run keyaudit")
    }

    /// Changes a user's keys between two scans (`create`, `deactivate`, `activate`, `delete`); returns the key id.
    pub(crate) fn change_key(&self, account: &str, user: &str, op: &str, key: Option<&str>) -> String {
        let answer = self.control(
            "POST",
            "keys",
            &serde_json::json!({"account_id": account, "user_name": user, "op": op, "access_key_id": key}),
        );
        answer["access_key_id"].as_str().unwrap().to_owned()
    }

    /// The emulator's request log: (service, action, account) of every AWS call since the last clear.
    pub(crate) fn requests(&self) -> Vec<(String, String, String)> {
        let log = self.control("GET", "requests", &Value::Null);
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                (text("service"), text("action"), text("account_id"))
            })
            .collect()
    }

    /// Starts `keyaudit` with `args` and a JSON report at `report`, without waiting for it.
    pub(crate) fn spawn(&self, args: &[&str], report: &Path) -> Child {
        let spec = format!("json={}", report.display());
        let mut all = args.to_vec();
        all.extend(["-o", &spec]);
        self.prepare(&all).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start keyaudit")
    }

    /// Starts `keyaudit` with exactly `args`, without waiting for it.
    pub(crate) fn launch(&self, args: &[&str]) -> Child {
        self.launch_with(args, &[])
    }

    /// Like [`Emulator::launch`], with these environment variables set.
    pub(crate) fn launch_with(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        let mut command = self.prepare(args);
        command.envs(env.iter().copied());
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start keyaudit")
    }

    fn prepare(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyaudit"));
        command
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", std::env::temp_dir())
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Seeded(pub Value);

impl Seeded {
    pub(crate) fn account(&self, name: &str) -> String {
        self.0["accounts"][name].as_str().unwrap_or_else(|| panic!("no account {name}")).to_owned()
    }
    pub(crate) fn ou(&self, path: &str) -> String {
        self.0["ous"][path].as_str().unwrap_or_else(|| panic!("no OU {path}")).to_owned()
    }
    pub(crate) fn key(&self, account: &str, user: &str, index: usize) -> String {
        self.0["keys"][format!("{account}/{user}")][index].as_str().unwrap().to_owned()
    }
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) json: Option<Value>,
}

impl Run {
    pub(crate) fn new(output: Output, json: Option<Value>) -> Self {
        let run = Self {
            code: output.status.code().expect("keyaudit exited normally"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
            json,
        };
        assert!(!run.stderr.contains("panicked"), "keyaudit panicked:\n{}", run.stderr);
        for text in [&run.stdout, &run.stderr, &run.json.as_ref().map(|j| j.to_string()).unwrap_or_default()] {
            assert!(!text.contains(FAKE_SECRET), "a secret reached the output:\n{text}");
        }
        run
    }

    pub(crate) fn report(&self) -> &Value {
        self.json.as_ref().unwrap_or_else(|| panic!("no report; exit {} stderr:\n{}", self.code, self.stderr))
    }

    pub(crate) fn account(&self, id: &str) -> &Value {
        self.report()["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_id"] == id)
            .unwrap_or_else(|| panic!("account {id} not in the report"))
    }

    pub(crate) fn findings_of(&self, account: &str, user: &str) -> Vec<&Value> {
        self.report()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["account_id"] == account && f["user_name"] == user)
            .collect()
    }

    /// (account_id, user, slot (0 for a user-level finding), verdict, key id) of every finding, for whole-report
    /// comparisons.
    pub(crate) fn verdicts(&self) -> Vec<(String, String, u64, String, Value)> {
        self.report()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["account_id"].as_str().unwrap().to_owned(),
                    f["user_name"].as_str().unwrap().to_owned(),
                    f["key_slot"].as_u64().unwrap_or(0),
                    f["verdict"].as_str().unwrap().to_owned(),
                    f["access_key_id"].clone(),
                )
            })
            .collect()
    }
}

/// Validates `report` against docs/json-schema.json with Python's `jsonschema` (a real consumer).
pub(crate) fn assert_matches_json_schema(report: &Value) {
    let schema = repo_root().join("docs/json-schema.json");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    std::fs::write(&file, report.to_string()).unwrap();
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1])); doc=json.load(open(sys.argv[2]))\n\
        v=jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())\n\
        errors=[f'{list(e.absolute_path)}: {e.message}' for e in v.iter_errors(doc)]\n\
        print('\\n'.join(errors)); sys.exit(1 if errors else 0)";
    let out = Command::new(python()).args(["-c", script]).arg(&schema).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "the report does not match docs/json-schema.json:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[allow(clippy::disallowed_methods)] // set by scripts/lib.sh, as documented in the README
fn tool_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test, which installs the export validators")
    })
}

/// Runs Microsoft's SARIF validator on `file` and returns its (error and warning level) results.
pub(crate) fn sarif_multitool_problems(file: &Path) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("validation.sarif");
    let status = Command::new(tool_env("KEYAUDIT_SARIF_MULTITOOL"))
        .args(["validate", "--level", "Error", "Warning", "--log", "ForceOverwrite", "-o"])
        .arg(&out)
        .arg(file)
        .status()
        .expect("run sarif-multitool");
    assert!(status.success() || out.exists(), "sarif-multitool failed to run on {}", file.display());
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("a validation log")).unwrap();
    log["runs"][0]["results"].as_array().cloned().unwrap_or_default()
}

/// Runs tests/consumers/check_exports.py with `args` and returns its output (one line per problem).
pub(crate) fn run_check_exports(args: &[&std::ffi::OsStr]) -> Output {
    let script = repo_root().join("tests/consumers/check_exports.py");
    Command::new(python())
        .arg(script)
        .args(args)
        .arg("--sarif-schema")
        .arg(tool_env("KEYAUDIT_SARIF_SCHEMA"))
        .output()
        .unwrap()
}

/// Runs tests/consumers/check_exports.py with `args`; panics with its report on any problem.
pub(crate) fn check_exports(args: &[&std::ffi::OsStr]) {
    let out = run_check_exports(args);
    assert!(
        out.status.success(),
        "an export was rejected by its consumer:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tests' webhook receiver (tests/emulator/webhook_receiver.py): HTTPS with its own CA (give keyaudit
/// `SSL_CERT_FILE` = [`Receiver::ca`]), every POST recorded; a plain-HTTP control port for the test.
pub(crate) struct Receiver {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub(crate) url: String,
    control: String,
    /// The CA that signed the receiver's certificate (PEM).
    pub(crate) ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = repo_root().join("tests/emulator/webhook_receiver.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the webhook receiver: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).ok().flatten().unwrap_or_default();
        let parts: Vec<&str> = line.split_whitespace().collect();
        let ["WEBHOOK_RECEIVER_READY", url, control, ca] = parts[..] else {
            let _ = child.kill();
            panic!("the webhook receiver did not start: {line:?}");
        };
        Self {
            url: url.to_owned(),
            control: control.trim_start_matches("http://").to_owned(),
            ca: PathBuf::from(ca),
            child,
            _dir: dir,
        }
    }

    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        let payload = body.to_string();
        let mut stream = TcpStream::connect(&self.control).expect("connect to the webhook receiver");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
            self.control,
            payload.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        serde_json::from_str(body).unwrap()
    }

    /// Every POST received: `{path, headers, body, status}`.
    pub(crate) fn received(&self) -> Vec<Value> {
        self.call("GET", "/received", &Value::Null).as_array().cloned().unwrap_or_default()
    }

    /// How the next posts to `path` are answered: `{status?, times?, retry_after?, delay_ms?}`.
    pub(crate) fn behave(&self, path: &str, mut rule: Value) {
        rule["path"] = path.into();
        self.call("POST", "/behaviour", &rule);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
