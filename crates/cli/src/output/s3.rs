//! Reports to S3: one `PutObject` per file (an object is never half-written), server-side encryption (SSE-S3 by
//! default, SSE-KMS with a key), the bucket's expected owner, and a failed upload that loses nothing: the report
//! stays in a local file (the run's own, or one written for the purpose) and the error names the object.

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::Upload;
use super::spec::S3Location;

/// How objects are written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct S3Options {
    /// SSE-KMS with this key (id, ARN or alias), or SSE-S3 (`None`).
    pub(crate) kms_key_id: Option<String>,
    /// `--s3-sse aws:kms` without a key: the account's AWS managed key for S3.
    pub(crate) kms: bool,
    /// Refuse a bucket that this account does not own (`ExpectedBucketOwner`).
    pub(crate) expected_owner: Option<String>,
}

/// The role an output is written with instead of the caller's credentials: Security Lake's provider role for a
/// custom source, which trusts the caller's account with an external ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderRole {
    pub(crate) arn: String,
    pub(crate) external_id: Option<String>,
}

/// Writes objects (the AWS SDK in the product, a fake in unit tests).
pub(crate) trait ObjectStore {
    /// Puts one object whole; the error is `CODE: message` as AWS answered.
    async fn put(&self, object: &S3Location, content_type: &str, bytes: Vec<u8>) -> Result<(), String>;
}

/// [`ObjectStore`] over the AWS SDK.
pub(crate) struct SdkS3 {
    client: aws_sdk_s3::Client,
    options: S3Options,
}

impl SdkS3 {
    /// A client from the run's configuration. With an endpoint override (`--endpoint-url`, `AWS_ENDPOINT_URL`),
    /// buckets are addressed by path: S3-compatible endpoints and emulators do not resolve bucket host names.
    pub(crate) fn new(config: &aws_config::SdkConfig, options: S3Options) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some()).build();
        Self { client: aws_sdk_s3::Client::from_conf(s3), options }
    }

    /// A client that writes as `role`, assumed from the run's credentials with its external ID (and renewed
    /// before it expires); a role that cannot be assumed is one error, AWS's own, for every object.
    pub(crate) async fn as_role(
        config: &aws_config::SdkConfig,
        options: S3Options,
        role: &ProviderRole,
    ) -> Result<Self, String> {
        use keyaudit_org_discovery::{AssumeSettings, RoleAssumer};
        let settings = AssumeSettings {
            session_name: "keyaudit-security-lake".into(),
            external_id: role.external_id.clone(),
            duration: std::time::Duration::from_secs(3600),
        };
        let retries = std::sync::atomic::AtomicU32::new(0);
        let credentials = RoleAssumer::new(config, settings).assume(&role.arn, &retries).await;
        let credentials = credentials.map_err(|e| {
            format!(
                "cannot assume --security-lake-role: {}: {}",
                e.aws_error_code.as_deref().unwrap_or("error"),
                e.message
            )
        })?;
        Ok(Self::new(&config.to_builder().credentials_provider(credentials).build(), options))
    }
}

/// A store that refuses every object with one reason (the role to write with could not be assumed): the objects
/// are kept locally as any failed upload's are.
pub(crate) struct Refused(pub(crate) String);

impl ObjectStore for Refused {
    async fn put(&self, _: &S3Location, _: &str, _: Vec<u8>) -> Result<(), String> {
        Err(self.0.clone())
    }
}

impl ObjectStore for SdkS3 {
    async fn put(&self, object: &S3Location, content_type: &str, bytes: Vec<u8>) -> Result<(), String> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        let encryption = if self.options.kms { ServerSideEncryption::AwsKms } else { ServerSideEncryption::Aes256 };
        self.client
            .put_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .content_type(content_type)
            .server_side_encryption(encryption)
            .set_ssekms_key_id(self.options.kms_key_id.clone())
            .set_expected_bucket_owner(self.options.expected_owner.clone())
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(drop)
            .map_err(|e| match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => keyaudit_core::aws_error::describe(&e),
            })
    }
}

/// Uploads every rendered output; returns one sentence per object that could not be uploaded, each naming the file
/// that holds the report instead (the run's local file of the same format, else a copy kept under `keep_dir`).
///
/// A copy kept under `keep_dir` is named after its object (`BUCKET/KEY`, see [`kept_path`]), so two objects never
/// share a file, and it never replaces an earlier run's copy of the same object (that one stays, the new one is
/// `…~2`). A copy stays until a person removes it or a later upload of that very object goes through: then every
/// kept copy of that object is removed, as the object it was waiting for is in S3.
pub(crate) async fn upload_all(store: &impl ObjectStore, uploads: Vec<Upload>, keep_dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for upload in uploads {
        let Upload { format, object, bytes, local } = upload;
        let kept = match &local {
            Some(path) => Ok(path.clone()),
            None => keep(keep_dir, &object, &bytes),
        };
        match store.put(&object, format.content_type(), bytes).await {
            Ok(()) => {
                if local.is_none() {
                    forget(keep_dir, &object);
                }
                tracing::info!(object = %object, "report uploaded");
            }
            Err(error) => problems.push(match kept {
                Ok(path) => format!(
                    "{object}: not uploaded (s3:PutObject to bucket {} key {}: {error}); the report is kept at {}",
                    object.bucket,
                    object.key,
                    path.display()
                ),
                Err(why) => format!(
                    "{object}: not uploaded (s3:PutObject to bucket {} key {}: {error}); and it could not be kept \
                     locally: {why}",
                    object.bucket, object.key
                ),
            }),
        }
    }
    problems
}

/// The file that keeps `object` while its upload is pending or failed: `dir/BUCKET/KEY`, each segment of the key a
/// directory or file name as it is, except the bytes a portable file name cannot hold (and `%`, `~`), which are
/// percent-encoded, and the segments `.`, `..` and empty ones, encoded whole: two objects never share a file, and
/// a key never leaves `dir`.
pub(crate) fn kept_path(dir: &Path, object: &S3Location) -> PathBuf {
    let mut path = dir.join(&object.bucket);
    for segment in object.key.split('/') {
        let whole = matches!(segment, "" | "." | "..");
        let mut name = String::with_capacity(segment.len());
        for byte in segment.bytes() {
            if !whole && (byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'=' | b'+' | b',')) {
                name.push(char::from(byte));
            } else {
                name.push_str(&format!("%{byte:02X}"));
            }
        }
        path.push(if name.is_empty() { "%" } else { &name });
    }
    path
}

/// Writes the report under `dir` before its upload, so that nothing is lost whatever happens to the upload: at
/// [`kept_path`], or beside it (`~2`, `~3`, …) when an earlier run keeps a copy of the same object there.
fn keep(dir: &Path, object: &S3Location, bytes: &[u8]) -> Result<PathBuf, String> {
    let first = kept_path(dir, object);
    let parent = super::spec::parent_dir(&first);
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    super::write_new_file(&first, bytes).map_err(|e| format!("{e:#}"))
}

/// Removes every kept copy of `object` (its upload went through), and the directories that held only them.
fn forget(dir: &Path, object: &S3Location) {
    let path = kept_path(dir, object);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else { return };
    let copy = |file: &str| {
        file == name
            || file.strip_prefix(name).and_then(|rest| rest.strip_prefix('~')).is_some_and(|n| n.parse::<u32>().is_ok())
    };
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            if entry.file_name().to_str().is_some_and(copy) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    // Only empty directories go, up to and including `dir`: the directory stays while it keeps a report.
    let mut parent = Some(parent);
    while let Some(p) = parent.filter(|p| p.starts_with(dir)) {
        if std::fs::remove_dir(p).is_err() {
            break;
        }
        parent = p.parent();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::output::Format;

    /// Records puts; refuses the bucket `denied`.
    #[derive(Default)]
    struct Fake(Mutex<Vec<(String, String, usize)>>);

    impl ObjectStore for Fake {
        async fn put(&self, object: &S3Location, content_type: &str, bytes: Vec<u8>) -> Result<(), String> {
            if object.bucket == "denied" {
                return Err("AccessDenied: Access Denied".into());
            }
            self.0.lock().unwrap().push((object.to_string(), content_type.to_owned(), bytes.len()));
            Ok(())
        }
    }

    fn upload(bucket: &str, key: &str, local: Option<PathBuf>) -> Upload {
        let object = S3Location { bucket: bucket.into(), key: key.into() };
        Upload { format: Format::Json, object, bytes: b"{}\n".to_vec(), local }
    }

    #[tokio::test]
    async fn an_upload_that_fails_keeps_the_report_and_names_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("unsent");
        let store = Fake::default();
        let own = dir.path().join("own.json");
        let problems = upload_all(
            &store,
            vec![
                upload("ok-bucket", "r/a.json", None),
                upload("denied", "r/b.json", None),
                upload("denied", "r/c.json", Some(own.clone())),
            ],
            &keep,
        )
        .await;
        assert_eq!(
            *store.0.lock().unwrap(),
            [("s3://ok-bucket/r/a.json".to_owned(), "application/json".to_owned(), 3)]
        );
        assert!(!keep.join("ok-bucket").exists(), "an uploaded report's local copy is removed, with its directories");
        assert_eq!(std::fs::read(keep.join("denied/r/b.json")).unwrap(), b"{}\n", "a failed one is kept");
        assert_eq!(problems.len(), 2);
        let kept = keep.join("denied/r/b.json");
        assert_eq!(
            problems[0],
            format!(
                "s3://denied/r/b.json: not uploaded (s3:PutObject to bucket denied key r/b.json: AccessDenied: \
                 Access Denied); the report is kept at {}",
                kept.display()
            )
        );
        assert!(problems[1].ends_with(&format!("kept at {}", own.display())), "the run's own file: {problems:?}");

        let clean = tempfile::tempdir().unwrap();
        let keep = clean.path().join("unsent");
        assert!(upload_all(&store, vec![upload("ok-bucket", "r/d.json", None)], &keep).await.is_empty());
        assert!(!keep.exists(), "nothing is left behind when every upload went through");
    }

    #[tokio::test]
    async fn kept_copies_never_replace_each_other_and_leave_only_with_their_own_object() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("unsent");
        let store = Fake::default();
        let with = |key: &str, body: &[u8]| {
            let mut u = upload("denied", key, None);
            u.bytes = body.to_vec();
            u
        };
        // Two objects with the same file name, in one run: two files, each message naming its own.
        let problems =
            upload_all(&store, vec![with("a/keyaudit.json", b"json"), with("b/keyaudit.json", b"html")], &keep).await;
        assert_eq!(std::fs::read(keep.join("denied/a/keyaudit.json")).unwrap(), b"json");
        assert_eq!(std::fs::read(keep.join("denied/b/keyaudit.json")).unwrap(), b"html");
        assert!(problems[0].ends_with(&keep.join("denied/a/keyaudit.json").display().to_string()), "{problems:?}");
        assert!(problems[1].ends_with(&keep.join("denied/b/keyaudit.json").display().to_string()), "{problems:?}");

        // A later run that fails the same object again: the earlier copy stays as it was, the new one beside it.
        let problems = upload_all(&store, vec![with("a/keyaudit.json", b"json, later")], &keep).await;
        assert_eq!(std::fs::read(keep.join("denied/a/keyaudit.json")).unwrap(), b"json");
        assert_eq!(std::fs::read(keep.join("denied/a/keyaudit.json~2")).unwrap(), b"json, later");
        assert!(problems[0].ends_with("keyaudit.json~2"), "{problems:?}");

        // A later run whose uploads all go through, of other objects: every kept copy stays.
        assert!(upload_all(&store, vec![upload("ok-bucket", "a/keyaudit.json", None)], &keep).await.is_empty());
        assert_eq!(std::fs::read_dir(keep.join("denied/a")).unwrap().count(), 2);
        assert!(keep.join("denied/b/keyaudit.json").exists());

        // An upload of that very object goes through: its copies go, the other object's stays.
        let ok = |key: &str| upload("ok-bucket", key, None);
        let moved = S3Location { bucket: "ok-bucket".into(), key: "a/keyaudit.json".into() };
        std::fs::create_dir_all(kept_path(&keep, &moved).parent().unwrap()).unwrap();
        std::fs::write(kept_path(&keep, &moved), "earlier").unwrap();
        assert!(upload_all(&store, vec![ok("a/keyaudit.json")], &keep).await.is_empty());
        assert!(!keep.join("ok-bucket").exists());
        assert!(keep.join("denied/b/keyaudit.json").exists());
    }

    #[test]
    fn a_kept_copy_is_named_after_its_bucket_and_key_and_never_leaves_its_directory() {
        let dir = Path::new("unsent");
        let path = |bucket: &str, key: &str| {
            kept_path(dir, &S3Location { bucket: bucket.into(), key: key.into() }).display().to_string()
        };
        assert_eq!(path("b", "r/keyaudit-20261128T120000Z.json"), "unsent/b/r/keyaudit-20261128T120000Z.json");
        assert_eq!(path("b", "ext/src/region=eu-west-1/x.parquet"), "unsent/b/ext/src/region=eu-west-1/x.parquet");
        assert_eq!(path("b", "../../etc/passwd"), "unsent/b/%2E%2E/%2E%2E/etc/passwd");
        assert_eq!(path("b", "a//b"), "unsent/b/a/%/b");
        assert_eq!(path("b", "/abs"), "unsent/b/%/abs");
        assert_eq!(path("b", "x~2 %/\u{202e}\r\n"), "unsent/b/x%7E2%20%25/%E2%80%AE%0D%0A");
    }
}
