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

/// Uploads every rendered output; returns one sentence per object that could not be uploaded, each saying where
/// the report is kept instead (the run's local file of the same format, else a file written under `keep_dir`).
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
                if local.is_none()
                    && let Ok(path) = &kept
                {
                    let _ = std::fs::remove_file(path);
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
    // Only if it is empty: the directory stays while it keeps a report.
    let _ = std::fs::remove_dir(keep_dir);
    problems
}

/// Writes the report under `dir` (named after the object's key) before its upload, so that nothing is lost
/// whatever happens to the upload; removed once the object is in S3.
fn keep(dir: &Path, object: &S3Location, bytes: &[u8]) -> Result<PathBuf, String> {
    let name = object.key.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("keyaudit-report");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(name);
    super::write_file(&path, bytes).map_err(|e| format!("{e:#}"))?;
    Ok(path)
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
        assert!(!keep.join("a.json").exists(), "an uploaded report's local copy is removed");
        assert!(keep.is_dir(), "the directory stays while it keeps a failed one");
        assert_eq!(std::fs::read(keep.join("b.json")).unwrap(), b"{}\n", "a failed one is kept");
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].starts_with(
                "s3://denied/r/b.json: not uploaded (s3:PutObject to bucket denied key r/b.json: \
                                     AccessDenied: Access Denied); the report is kept at "
            ),
            "{problems:?}"
        );
        assert!(problems[1].ends_with(&format!("kept at {}", own.display())), "the run's own file: {problems:?}");

        let clean = tempfile::tempdir().unwrap();
        let keep = clean.path().join("unsent");
        assert!(upload_all(&store, vec![upload("ok-bucket", "r/d.json", None)], &keep).await.is_empty());
        assert!(!keep.exists(), "nothing is left behind when every upload went through");
    }
}
