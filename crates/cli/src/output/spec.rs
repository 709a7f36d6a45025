//! Output specifications: the format registry, `--output FORMAT[=PATH]` and `--output-dir` parsed and checked
//! into [`OutputSpec`]s, and [`prepare`], which creates `--output-dir` when the scan starts (validating
//! settings has no side effect on the file system).

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use jiff::Timestamp;
use keyaudit_exports::Format;

/// An S3 object (or, for `--output-dir`, a prefix): `s3://BUCKET/KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Location {
    pub(crate) bucket: String,
    pub(crate) key: String,
}

impl S3Location {
    /// `value` as an S3 location, if it is one (`s3://…`); `what` names the flag in errors. An object's key must
    /// name an object (`prefix: false`); a prefix may be empty and gets a trailing `/`.
    pub(crate) fn parse(value: &str, what: &str, prefix: bool) -> Result<Option<Self>> {
        let Some(rest) = value.strip_prefix("s3://") else { return Ok(None) };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            bail!(
                "{what} {value}: {bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and \
                 hyphens); expected s3://BUCKET/{}",
                if prefix { "PREFIX" } else { "KEY" }
            );
        }
        let key = if prefix {
            if key.is_empty() || key.ends_with('/') { key.to_owned() } else { format!("{key}/") }
        } else if key.is_empty() || key.ends_with('/') {
            bail!("{what} {value}: expected s3://BUCKET/KEY, the key of an object (a prefix is --output-dir's)");
        } else {
            key.to_owned()
        };
        Ok(Some(Self { bucket: bucket.to_owned(), key }))
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Where one format goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Stdout,
    File(PathBuf),
    /// `--output-dir`: a timestamped file in this directory, named when the run starts.
    Dir(PathBuf),
    /// `FORMAT=s3://BUCKET/KEY`: one object, uploaded when the report is complete.
    S3(S3Location),
    /// `--output-dir s3://BUCKET/PREFIX`: an object named as a file in `Dir` would be, under the prefix.
    S3Dir(S3Location),
}

/// One `--output FORMAT[=PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputSpec {
    pub(crate) format: Format,
    pub(crate) target: Target,
}

impl OutputSpec {
    /// Parses every `--output`. Without `--output`: a table on stdout (and JSON into `--output-dir`, if given).
    /// Formats without a path go to `--output-dir` when it is given, else to stdout (at most one may).
    pub(crate) fn parse_all(values: &[String], output_dir: Option<&Path>) -> Result<Vec<Self>> {
        let s3_dir = match output_dir.and_then(Path::to_str) {
            Some(dir) => S3Location::parse(dir, "--output-dir", true)?,
            None => None,
        };
        let output_dir = output_dir.filter(|_| s3_dir.is_none());
        let dir_target = |dir: Option<&Path>| match (&s3_dir, dir) {
            (Some(s3), _) => Some(Target::S3Dir(s3.clone())),
            (None, Some(dir)) => Some(Target::Dir(dir.to_owned())),
            (None, None) => None,
        };
        let mut specs: Vec<Self> =
            values.iter().map(|v| Self::parse(v, dir_target(output_dir))).collect::<Result<_>>()?;
        if specs.is_empty() {
            specs.push(Self { format: Format::Table, target: Target::Stdout });
            if let Some(target) = dir_target(output_dir) {
                specs.push(Self { format: Format::Json, target });
            }
        }
        if specs.iter().filter(|s| s.target == Target::Stdout).count() > 1 {
            bail!(
                "--output: at most one format can go to stdout; give the others a path (FORMAT=PATH) or --output-dir"
            );
        }
        if let Some(dir) = output_dir.filter(|d| d.exists() && !d.is_dir()) {
            bail!("--output-dir {}: is a file; expected a directory", dir.display());
        }
        for spec in &specs {
            if let Target::File(path) = &spec.target {
                // A file inside --output-dir: the directory is created with it (`prepare`), as for the other
                // formats, so it need not exist yet.
                let dir = parent_dir(path);
                let created_later = output_dir.is_some_and(|out| dir.starts_with(out)) && !dir.exists();
                if !created_later {
                    check_writable(path)?;
                }
            }
        }
        Ok(specs)
    }

    fn parse(value: &str, dir: Option<Target>) -> Result<Self> {
        let (name, path) = match value.split_once('=') {
            Some((name, path)) => (name, Some(path)),
            None => (value, None),
        };
        let names: Vec<&str> = Format::ALL.iter().map(|(n, ..)| *n).collect();
        let format = Format::parse(name.trim()).ok_or_else(|| {
            anyhow!("--output {value:?}: unknown format {name:?}; expected one of {}", names.join(", "))
        })?;
        if format == Format::SecurityLake {
            return Self::security_lake(value, path.unwrap_or_default());
        }
        let target = match (path, dir) {
            (Some("-"), _) => Target::Stdout,
            (Some(p), _) if !p.is_empty() => match S3Location::parse(p, "--output", false)? {
                Some(object) => Target::S3(object),
                None => Target::File(PathBuf::from(p)),
            },
            (_, Some(dir)) => dir,
            (_, None) => Target::Stdout,
        };
        Ok(Self { format, target })
    }

    /// `security-lake=LOCATION`: the custom source's S3 location (a prefix), or a local directory that gets the same
    /// tree of objects (for another way into the bucket, or a look first).
    fn security_lake(value: &str, location: &str) -> Result<Self> {
        let target = match S3Location::parse(location, "--output security-lake", true)? {
            Some(prefix) => Target::S3Dir(prefix),
            None if location.is_empty() || location == "-" => bail!(
                "--output {value:?}: security-lake needs the custom source's location: -o \
                 security-lake=s3://BUCKET/ext/SOURCE/ (the location CreateCustomLogSource gave), or a local directory"
            ),
            None => Target::Dir(PathBuf::from(location)),
        };
        Ok(Self { format: Format::SecurityLake, target })
    }

    /// The explicit file of `FORMAT=PATH`.
    pub(crate) fn file(&self) -> Option<&Path> {
        match &self.target {
            Target::File(p) => Some(p),
            _ => None,
        }
    }

    /// The file this spec writes to (`None` for stdout and S3), given the run's start time for `--output-dir`
    /// names (`keyaudit-merged-<time>` for a merged report, so that it never replaces one of the reports it merges).
    pub(crate) fn path(&self, started_at: Timestamp, merged: bool) -> Option<PathBuf> {
        match &self.target {
            Target::Stdout | Target::S3(_) | Target::S3Dir(_) => None,
            Target::File(p) => Some(p.clone()),
            Target::Dir(dir) => Some(dir.join(self.file_name(started_at, merged))),
        }
    }

    /// The S3 object this spec uploads to, if any.
    pub(crate) fn object(&self, started_at: Timestamp, merged: bool) -> Option<S3Location> {
        match &self.target {
            Target::S3(object) => Some(object.clone()),
            Target::S3Dir(prefix) => Some(S3Location {
                bucket: prefix.bucket.clone(),
                key: format!("{}{}", prefix.key, self.file_name(started_at, merged)),
            }),
            _ => None,
        }
    }

    /// Whether this spec goes to S3.
    pub(crate) fn is_s3(&self) -> bool {
        matches!(self.target, Target::S3(_) | Target::S3Dir(_))
    }

    /// Whether keyaudit names this spec's file itself (`--output-dir`): a file already there is then an earlier
    /// run's report, never replaced (see [`numbered_path`](Self::numbered_path)). A path the user named is theirs
    /// to replace each run.
    pub(crate) fn names_its_file(&self) -> bool {
        matches!(self.target, Target::Dir(_))
    }

    /// The `n`-th other name of an `--output-dir` file, for a run that finds its name taken by an earlier report
    /// (two runs started in the same second): `keyaudit-<time>-<n>.<ext>`. Other targets keep their path.
    pub(crate) fn numbered_path(&self, started_at: Timestamp, merged: bool, n: u32) -> PathBuf {
        match &self.target {
            Target::Dir(dir) => dir.join(self.numbered_file_name(started_at, merged, Some(n))),
            _ => self.path(started_at, merged).unwrap_or_default(),
        }
    }

    fn file_name(&self, started_at: Timestamp, merged: bool) -> String {
        self.numbered_file_name(started_at, merged, None)
    }

    fn numbered_file_name(&self, started_at: Timestamp, merged: bool, n: Option<u32>) -> String {
        format!(
            "keyaudit-{}{}{}.{}",
            if merged { "merged-" } else { "" },
            started_at.strftime("%Y%m%dT%H%M%SZ"),
            n.map(|n| format!("-{n}")).unwrap_or_default(),
            self.format.extension()
        )
    }
}

/// Creates the `--output-dir` directories (and the directories of files inside it, `-o html=DIR/report.html`) and
/// checks that they take files: done when the scan starts, before any AWS call, so that a run that cannot write its
/// report fails at once (exit 2). A file elsewhere was checked by `parse_all`: its directory exists.
pub(crate) fn prepare(specs: &[OutputSpec]) -> Result<()> {
    for spec in specs {
        let (dir, what) = match &spec.target {
            Target::Dir(dir) => (dir.as_path(), "--output-dir"),
            Target::File(path) if !parent_dir(path).exists() => (parent_dir(path), "--output"),
            _ => continue,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow!("{what} {}: cannot create the directory ({e})", dir.display()))?;
        probe(dir).map_err(|e| anyhow!("{what} {}: cannot write there ({e})", dir.display()))?;
    }
    Ok(())
}

/// Fails early (before any AWS call) when an output file could not be written.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!("--output {}: is a directory; expected a file path", path.display());
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        bail!(
            "--output {}: the directory {} does not exist; create it first (or write into --output-dir, which is \
             created)",
            path.display(),
            dir.display()
        );
    }
    probe(dir).map_err(|e| anyhow!("--output {}: cannot write in {} ({e})", path.display(), dir.display()))
}

/// Creates and removes a temporary file in `dir`: the same operation the atomic write will need. The error names
/// what went wrong, never the temporary file.
fn probe(dir: &Path) -> std::io::Result<()> {
    tempfile::NamedTempFile::new_in(dir).map(drop).map_err(|e| std::io::Error::from(e.kind()))
}

pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs_parse_and_validate() {
        let specs = OutputSpec::parse_all(&["json".into()], None).unwrap();
        assert_eq!(specs, [OutputSpec { format: Format::Json, target: Target::Stdout }]);
        assert_eq!(OutputSpec::parse_all(&[], None).unwrap()[0].format, Format::Table);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let spec = format!("JSON={}", path.display());
        assert_eq!(OutputSpec::parse_all(&[spec], None).unwrap()[0].target, Target::File(path));
        let err = OutputSpec::parse_all(&[format!("json={}", dir.path().display())], None).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let out = dir.path().join("out");
        let specs = OutputSpec::parse_all(&["sarif".into(), "csv".into()], Some(&out)).unwrap();
        let started: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        assert_eq!(specs[0].path(started, false), Some(out.join("keyaudit-20261128T120000Z.sarif")));
        assert_eq!(specs[1].path(started, false), Some(out.join("keyaudit-20261128T120000Z.csv")));
        assert_eq!(specs[1].path(started, true), Some(out.join("keyaudit-merged-20261128T120000Z.csv")));
        assert!(!out.exists(), "validating settings touches nothing");
        prepare(&specs).unwrap();
        assert!(out.is_dir(), "--output-dir is created when the scan starts");
        let defaults = OutputSpec::parse_all(&[], Some(&out)).unwrap();
        assert_eq!(defaults.len(), 2, "table on stdout and JSON in the directory");
        let a_file = dir.path().join("r.json");
        std::fs::write(&a_file, "x").unwrap();
        let err = OutputSpec::parse_all(&["json".into()], Some(&a_file)).unwrap_err();
        assert_eq!(err.to_string(), format!("--output-dir {}: is a file; expected a directory", a_file.display()));
        let under_a_file = OutputSpec::parse_all(&["json".into()], Some(&a_file.join("sub"))).unwrap();
        let err = prepare(&under_a_file).unwrap_err();
        assert!(err.to_string().starts_with("--output-dir "), "{err}");
        assert!(err.to_string().contains("cannot create the directory"), "{err}");
    }

    #[test]
    fn s3_targets_parse_and_name_objects_as_files() {
        let started: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let specs = OutputSpec::parse_all(&["json=s3://reports/weekly/r.json".into()], None).unwrap();
        let object = S3Location { bucket: "reports".into(), key: "weekly/r.json".into() };
        assert_eq!(specs[0].target, Target::S3(object.clone()));
        assert_eq!((specs[0].object(started, false), specs[0].path(started, false)), (Some(object), None));
        let dir = PathBuf::from("s3://reports/daily");
        let specs = OutputSpec::parse_all(&["csv".into()], Some(&dir)).unwrap();
        assert_eq!(
            specs[0].object(started, false).unwrap().to_string(),
            "s3://reports/daily/keyaudit-20261128T120000Z.csv"
        );
        prepare(&specs).unwrap();
        assert!(!Path::new("s3:").exists(), "an S3 prefix is not a directory");
        let defaults = OutputSpec::parse_all(&[], Some(&dir)).unwrap();
        assert!(defaults[1].is_s3(), "JSON to the S3 prefix when no -o is given");
        for (value, says) in [
            ("json=s3://Reports/r.json", "\"Reports\" is not an S3 bucket name"),
            ("json=s3://reports/", "expected s3://BUCKET/KEY, the key of an object"),
            ("json=s3://reports", "expected s3://BUCKET/KEY"),
        ] {
            let err = OutputSpec::parse_all(&[value.into()], None).unwrap_err().to_string();
            assert!(err.contains(says), "{value}: {err}");
        }
    }

    #[test]
    fn a_file_inside_a_new_output_dir_is_created_with_it_and_one_elsewhere_must_have_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reports");
        let html = format!("html={}", out.join("week").join("report.html").display());
        let specs = OutputSpec::parse_all(&["json".into(), html], Some(&out)).unwrap();
        assert!(!out.exists(), "validating settings touches nothing");
        prepare(&specs).unwrap();
        assert!(out.join("week").is_dir(), "created with --output-dir");
        let elsewhere = format!("html={}", dir.path().join("nowhere").join("report.html").display());
        let err = OutputSpec::parse_all(&[elsewhere], Some(&out)).unwrap_err();
        assert!(err.to_string().contains("nowhere does not exist; create it first"), "{err}");
    }
}
