//! Issue "Reports where the pipelines pick them up": S3 as an output target, read back from the emulator's S3.

use serde_json::{Value, json};

use crate::harness::{AS_OF, Emulator, Seeded};
use crate::org_spec;

const OTHER_ACCOUNT: &str = "210987654321";

fn setup() -> (Emulator, Seeded) {
    let emu = Emulator::start();
    let mut spec = org_spec();
    spec["buckets"] = json!([{"name": "reports"}, {"name": "theirs", "account_id": OTHER_ACCOUNT}]);
    spec["kms_keys"] = json!(["reports"]);
    let seeded = emu.seed(spec);
    (emu, seeded)
}

fn objects(emu: &Emulator, bucket: &str) -> Vec<Value> {
    emu.control("GET", "s3/objects", &json!({"bucket": bucket})).as_array().unwrap().clone()
}

/// Every file under `dir`, as paths relative to it.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.extend(walk(&path).into_iter().map(|f| format!("{name}/{f}")));
        } else {
            files.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    files
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_format_is_uploaded_whole_and_reads_back_equal_to_the_local_file() {
    let (emu, _s) = setup();
    let dir = tempfile::tempdir().unwrap();
    let formats = [
        ("json", "json"),
        ("sarif", "sarif"),
        ("ocsf", "ocsf.json"),
        ("asff", "asff.json"),
        ("csv", "csv"),
        ("ndjson", "ndjson"),
        ("html", "html"),
        ("table", "txt"),
    ];
    let mut args: Vec<String> = vec!["scan".into(), "--as-of".into(), AS_OF.into()];
    for (format, ext) in formats {
        args.extend(["-o".into(), format!("{format}={}", dir.path().join(format!("r.{ext}")).display())]);
        args.extend(["-o".into(), format!("{format}=s3://reports/weekly/r.{ext}")]);
    }
    let out = emu.command_in(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let stored = objects(&emu, "reports");
    assert_eq!(stored.len(), formats.len(), "{stored:?}");
    for (format, ext) in formats {
        let object = stored.iter().find(|o| o["key"] == format!("weekly/r.{ext}")).unwrap();
        let local = std::fs::read_to_string(dir.path().join(format!("r.{ext}"))).unwrap();
        let body = object["body"].as_str().unwrap();
        if format == "ndjson" {
            // The local file is streamed as accounts finish; the object is written whole at the end, in the
            // report's order: the same lines.
            let sorted = |text: &str| {
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                lines.sort();
                lines
            };
            assert!(sorted(body) == sorted(&local), "ndjson: the object has the local file's lines");
        } else {
            assert!(body == local, "{format}: the object is the local file");
        }
        assert_eq!(object["sse"], "AES256", "SSE-S3 by default");
        let content_type = object["content_type"].as_str().unwrap();
        let expected = match format {
            "json" | "ocsf" | "asff" => "application/json",
            "sarif" => "application/sarif+json",
            "csv" => "text/csv; charset=utf-8",
            "ndjson" => "application/x-ndjson",
            "html" => "text/html; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        assert_eq!(content_type, expected, "{format}");
    }
    assert!(!dir.path().join("keyaudit-unsent").exists(), "nothing waits for an upload once it is done");
}

#[test]
fn an_s3_output_dir_names_objects_as_files_and_sse_kms_carries_its_key() {
    let (emu, s) = setup();
    let key = s.0["kms_keys"]["reports"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "scan",
        "--as-of",
        AS_OF,
        "-o",
        "json",
        "-o",
        "csv",
        "--output-dir",
        "s3://reports/daily",
        "--s3-kms-key-id",
        &key,
        "--s3-expected-owner",
        "123456789012",
    ];
    let out = emu.command_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let mut keys: Vec<String> =
        objects(&emu, "reports").iter().map(|o| o["key"].as_str().unwrap().to_owned()).collect();
    keys.sort();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].starts_with("daily/keyaudit-") && keys[0].ends_with(".csv"), "{keys:?}");
    assert!(keys[1].starts_with("daily/keyaudit-") && keys[1].ends_with(".json"), "{keys:?}");
    for object in objects(&emu, "reports") {
        assert_eq!((&object["sse"], &object["kms_key_id"]), (&json!("aws:kms"), &json!(key)), "{}", object["key"]);
    }
    assert!(!dir.path().join("keyaudit-unsent").exists(), "the reports waited there, and left when uploaded");
    let bad = emu.command_in(dir.path(), &["scan", "-o", "json=s3://reports/", "--as-of", AS_OF]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--output s3://reports/: expected s3://BUCKET/KEY"), "{}", stderr(&bad));
    let bad = emu.command_in(dir.path(), &["scan", "--s3-sse", "AES256", "--s3-kms-key-id", &key, "--as-of", AS_OF]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--s3-kms-key-id: SSE-KMS needs --s3-sse aws:kms"), "{}", stderr(&bad));
}

#[test]
fn a_bucket_of_another_owner_or_a_denied_put_keeps_the_report_locally_and_exits_3() {
    let (emu, _s) = setup();
    let dir = tempfile::tempdir().unwrap();
    let args = ["scan", "--as-of", AS_OF, "-o", "json=s3://theirs/r.json", "--s3-expected-owner", "123456789012"];
    let out = emu.command_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let kept = dir.path().join("keyaudit-unsent/theirs/r.json");
    assert!(
        stderr(&out).contains(
            "s3://theirs/r.json: not uploaded (s3:PutObject to bucket theirs key r.json: AccessDenied: Access Denied); \
             the report is kept at keyaudit-unsent/theirs/r.json"
        ),
        "{}",
        stderr(&out)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&kept).unwrap()).unwrap();
    assert_eq!(report["schema_version"], 1);
    assert!(objects(&emu, "theirs").is_empty());

    // A denied PutObject with a local copy written by the same run: that copy is named.
    emu.fault(json!({"service": "s3", "action": "PutObject", "error_code": "AccessDenied", "http_status": 403,
                     "message": "User is not authorized to perform: s3:PutObject"}));
    let local = dir.path().join("local.csv");
    let l = format!("csv={}", local.display());
    let out = emu.command_in(dir.path(), &["scan", "--as-of", AS_OF, "-o", &l, "-o", "csv=s3://reports/r.csv"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "s3://reports/r.csv: not uploaded (s3:PutObject to bucket reports key r.csv: AccessDenied: \
                               User is not authorized to perform: s3:PutObject); the report is kept at"
        ),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&local.display().to_string()), "{}", stderr(&out));
    assert!(local.exists());
}

/// Security Lake custom source: the demo organization's findings (demo/org.json) as OCSF 1.3 Parquet, one object per
/// scanned account in its partition (none for the account whose audit role is denied, or the suspended ones), read
/// back from the bucket and checked with pyarrow and py-ocsf-models; the same tree written to a local directory is
/// byte for byte what was uploaded.
#[test]
fn security_lake_gets_one_parquet_object_per_account_in_its_partition() {
    use base64::Engine;
    let emu = Emulator::start();
    let demo = std::fs::read_to_string(crate::harness::repo_root().join("demo/org.json")).unwrap();
    let mut spec: Value = serde_json::from_str(&demo).unwrap();
    spec["buckets"] = json!([{"name": "reports"}]);
    emu.seed(spec);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("lake");
    let report = dir.path().join("r.json");
    let args = [
        "scan",
        "--as-of",
        AS_OF,
        "-o",
        "security-lake=s3://reports/ext/keyaudit/1.0/",
        "-o",
        &format!("security-lake={}", local.display()),
        "-o",
        &format!("json={}", report.display()),
    ];
    let out = emu.command_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(3), "the demo's forensics account is not assessed: {}", stderr(&out));
    let uploaded = dir.path().join("uploaded");
    let stored = objects(&emu, "reports");
    for object in &stored {
        let key = object["key"].as_str().unwrap();
        let rest = key.strip_prefix("ext/keyaudit/1.0/").unwrap_or_else(|| panic!("{key}: outside the location"));
        assert_eq!(object["content_type"], "application/vnd.apache.parquet", "{key}");
        let bytes = base64::engine::general_purpose::STANDARD.decode(object["body_base64"].as_str().unwrap()).unwrap();
        assert_eq!(std::fs::read(local.join(rest)).unwrap(), bytes, "{key}: the local tree holds the same object");
        std::fs::create_dir_all(uploaded.join(rest).parent().unwrap()).unwrap();
        std::fs::write(uploaded.join(rest), bytes).unwrap();
    }
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let scanned: Vec<&Value> =
        json["accounts"].as_array().unwrap().iter().filter(|a| a["status"] == "scanned").collect();
    assert!(scanned.len() >= 8, "{scanned:?}");
    assert!(json["accounts"].as_array().unwrap().iter().any(|a| a["status"] == "failed"), "the demo's denied account");
    assert_eq!(stored.len(), scanned.len(), "one object per scanned account");
    for account in scanned {
        let id = account["account_id"].as_str().unwrap();
        let prefix = format!("ext/keyaudit/1.0/region=us-east-1/accountId={id}/eventDay=20261128/");
        assert!(stored.iter().any(|o| o["key"].as_str().unwrap().starts_with(&prefix)), "{prefix}: {stored:?}");
    }
    crate::harness::check_exports(&[
        "--report".as_ref(),
        report.as_os_str(),
        "--security-lake".as_ref(),
        uploaded.as_os_str(),
    ]);
    let bad = emu.command_in(dir.path(), &["scan", "-o", "security-lake", "--as-of", AS_OF]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("security-lake needs the custom source's location"), "{}", stderr(&bad));
}

/// `--security-lake-role`: the Security Lake objects are written with the custom source's provider role (assumed
/// with the external ID), the other outputs with the caller's credentials; a role that cannot be assumed keeps
/// every object locally and exits 3 naming the objects and the role.
#[test]
fn security_lake_objects_are_written_with_the_provider_role() {
    const ROLE: &str = "AmazonSecurityLake-Provider-keyaudit-us-east-1";
    let emu = Emulator::start();
    let mut spec = org_spec();
    spec["buckets"] = json!([{"name": "lake"}]);
    spec["roles"] = json!([ROLE]);
    let s = emu.seed(spec);
    let security = s.account("dev");
    let dir = tempfile::tempdir().unwrap();
    let role = format!("arn:aws:iam::{security}:role/{ROLE}");
    emu.control("DELETE", "requests", &Value::Null);
    let args = [
        "scan",
        "--as-of",
        AS_OF,
        "-o",
        "security-lake=s3://lake/ext/keyaudit/",
        "-o",
        "json=s3://lake/reports/r.json",
        "--security-lake-role",
        &role,
        "--security-lake-external-id",
        "keyaudit-7f3a",
    ];
    let out = emu.command_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let puts: Vec<(String, String, String)> =
        emu.requests().into_iter().filter(|(service, action, _)| service == "s3" && action == "PutObject").collect();
    let lake_objects = objects(&emu, "lake").iter().filter(|o| o["key"].as_str().unwrap().starts_with("ext/")).count();
    assert!(lake_objects >= 3, "{lake_objects}");
    assert_eq!(puts.iter().filter(|(.., account)| *account == security).count(), lake_objects, "{puts:?}");
    assert_eq!(puts.len(), lake_objects + 1, "the JSON report with the caller's own credentials: {puts:?}");

    let absent = format!("arn:aws:iam::{security}:role/NotThere");
    let args = ["scan", "--as-of", AS_OF, "-o", "security-lake=s3://lake/ext/again/", "--security-lake-role", &absent];
    let out = emu.command_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Kept under their bucket and key: keyaudit-unsent/lake/ext/again/region=…/accountId=…/eventDay=…/….parquet.
    let kept: Vec<String> = walk(&dir.path().join("keyaudit-unsent/lake/ext/again"));
    assert_eq!(kept.len(), lake_objects, "every object kept, one file per account: {kept:?}");
    assert!(kept.iter().all(|k| k.contains("/accountId=") && k.ends_with(".parquet")), "{kept:?}");
    let err = stderr(&out);
    assert!(err.contains("s3://lake/ext/again/region=us-east-1/accountId="), "{err}");
    assert!(err.contains("cannot assume --security-lake-role: AccessDenied: "), "{err}");
    assert!(err.contains(&absent), "the error names the role: {err}");
    for (value, says) in
        [("arn:aws:iam::123456789012:user/bob", "expected an IAM role ARN"), ("role/x", "expected an IAM role ARN")]
    {
        let bad =
            emu.command_in(dir.path(), &["scan", "-o", "security-lake=s3://lake/x/", "--security-lake-role", value]);
        assert_eq!(bad.status.code(), Some(2));
        assert!(stderr(&bad).contains(says), "{value}: {}", stderr(&bad));
    }
    for (args, says) in [
        (vec!["scan", "--security-lake-role", &role], "no Security Lake output in S3"),
        (
            vec!["scan", "-o", "security-lake=s3://lake/x/", "--security-lake-external-id", "x"],
            "--security-lake-external-id needs --security-lake-role",
        ),
    ] {
        let bad = emu.command_in(dir.path(), &args);
        assert_eq!(bad.status.code(), Some(2));
        assert!(stderr(&bad).contains(says), "{args:?}: {}", stderr(&bad));
    }
}
