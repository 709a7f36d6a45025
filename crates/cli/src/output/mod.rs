//! Where the exports go: `--output` specifications, files written atomically (a temporary file in the same
//! directory, renamed into place, so a reader never sees half a report; NDJSON is streamed line by line as accounts
//! finish), stdout, and S3 uploads. The formats themselves are rendered by `keyaudit_exports`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use jiff::Timestamp;
use keyaudit_core::report::Report;

pub(crate) mod s3;
mod spec;

#[cfg(test)]
pub(crate) use keyaudit_exports::fixture;
pub(crate) use keyaudit_exports::{Format, NdjsonStream, OutputOptions, columns, diff, shown};
use spec::parent_dir;
pub(crate) use spec::{OutputSpec, check_writable, prepare};

/// Renders `report` in `format` (a scan streams NDJSON instead, see [`open_streams`]).
pub(crate) fn render(format: Format, report: &Report, opts: &OutputOptions, color: bool) -> Result<Vec<u8>> {
    Ok(keyaudit_exports::render(format, report, opts, color)?)
}

/// Opens the NDJSON streams requested, before the scan starts.
pub(crate) fn open_streams(
    specs: &[OutputSpec],
    report_start: Timestamp,
    run: &keyaudit_report::FindingRun<'_>,
) -> Result<Vec<NdjsonStream>> {
    specs
        .iter()
        // An S3 target gets its NDJSON whole when the scan ends (one PutObject: an object is never half-written).
        .filter(|s| s.format == Format::Ndjson && !s.is_s3())
        .map(|s| {
            let out: Box<dyn Write + Send> = match s.path(report_start, false) {
                None => Box::new(std::io::stdout()),
                Some(path) if !s.names_its_file() => Box::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("--output {}: cannot create", path.display()))?,
                ),
                Some(path) => Box::new(create_new(&path, &|n| s.numbered_path(report_start, false, n))?),
            };
            Ok(NdjsonStream::new(
                out,
                run.partition.clone(),
                run.organization_id.map(str::to_owned),
                run.as_of,
                run.grace_days,
            ))
        })
        .collect()
}

/// Writes the file of `spec` (a run started at `run.0`, merged or not: `run.1`) atomically: a path the user named
/// is replaced, a file keyaudit names in `--output-dir` never is (see [`Existing::Keep`]). Returns the path written;
/// `None` from `spec.path` (stdout, S3) is the caller's to handle first.
pub(crate) fn write_spec_file(
    spec: &OutputSpec,
    run: (Timestamp, bool),
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<std::path::PathBuf> {
    let (started_at, merged) = run;
    let path = spec.path(started_at, merged).ok_or_else(|| anyhow!("--output: not a file"))?;
    let numbered = |n| spec.numbered_path(started_at, merged, n);
    let existing = if spec.names_its_file() { Existing::Keep(&numbered) } else { Existing::Replace };
    write_file_with(&path, &existing, write)
}

/// Creates `path`, or the first of `numbered(2)`, `numbered(3)`, … that is free: never an earlier run's file.
fn create_new(path: &Path, numbered: &dyn Fn(u32) -> std::path::PathBuf) -> Result<std::fs::File> {
    first_free(path, numbered, |target: &Path| std::fs::File::create_new(target))
        .map(|(file, _)| file)
        .map_err(|e| anyhow!("--output {}: cannot create ({e})", path.display()))
}

/// `at(path)`, or `at(numbered(2))`, `at(numbered(3))`, … while the name is taken (`AlreadyExists`): the first free
/// name, with what `at` made there. `at` itself must refuse a taken name, so that two runs at once never share one.
fn first_free<T>(
    path: &Path,
    numbered: &dyn Fn(u32) -> std::path::PathBuf,
    mut at: impl FnMut(&Path) -> std::io::Result<T>,
) -> std::io::Result<(T, std::path::PathBuf)> {
    let mut target = path.to_owned();
    for n in 2..10_000 {
        match at(&target) {
            Ok(made) => return Ok((made, target)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => target = numbered(n),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("every name is taken (too many reports of the same second)"))
}

/// A rendered output for S3, uploaded by [`s3::upload_all`].
pub(crate) struct Upload {
    pub(crate) format: Format,
    pub(crate) object: spec::S3Location,
    pub(crate) bytes: Vec<u8>,
    /// The same format written to a local file in this run, if it was.
    pub(crate) local: Option<std::path::PathBuf>,
}

/// Writes every requested local output (NDJSON only when `streamed` is false: a scan has streamed it already) and
/// returns the S3 ones rendered, for [`s3::upload_all`].
pub(crate) fn write_all(
    specs: &[OutputSpec],
    report: &Report,
    opts: &OutputOptions,
    streamed: bool,
) -> Result<Vec<Upload>> {
    use std::io::IsTerminal;
    let merged = matches!(report.run.scope, keyaudit_core::report::Scope::Merged(_));
    let started_at = report.run.started_at;
    let mut uploads = Vec::new();
    // The file each format was written to in this run: a failed upload names it as the report's local copy.
    let mut written: HashMap<Format, std::path::PathBuf> = HashMap::new();
    for spec in specs.iter().filter(|s| !(streamed && s.format == Format::Ndjson && !s.is_s3())) {
        if spec.format == Format::SecurityLake {
            uploads.extend(write_security_lake(spec, report)?);
            continue;
        }
        if let Some(object) = spec.object(started_at, merged) {
            uploads.push(Upload {
                format: spec.format,
                object,
                bytes: render(spec.format, report, opts, false)?,
                local: None,
            });
            continue;
        }
        if spec.path(started_at, merged).is_none() {
            let color = std::io::stdout().is_terminal();
            let bytes = render(spec.format, report, opts, color)?;
            write_stdout(&bytes).context("writing the report to stdout")?;
            continue;
        }
        // JSON, the largest, is streamed into its file as it is serialized.
        let path = if spec.format == Format::Json {
            write_spec_file(spec, (started_at, merged), |out| Ok(keyaudit_report::to_writer(report, out)?))?
        } else {
            let bytes = render(spec.format, report, opts, false)?;
            write_spec_file(spec, (started_at, merged), |out| Ok(out.write_all(&bytes)?))?
        };
        tracing::info!(path = %path.display(), "report written");
        written.insert(spec.format, path);
    }
    for upload in &mut uploads {
        // A streamed NDJSON file is named before the scan: only one the user named is certain to be this run's.
        upload.local = written.get(&upload.format).cloned().or_else(|| {
            specs
                .iter()
                .filter(|s| s.format == upload.format && !s.names_its_file())
                .find_map(|s| s.path(started_at, merged))
        });
    }
    Ok(uploads)
}

/// The Security Lake objects: written under a local directory, or returned for upload under the S3 location.
fn write_security_lake(spec: &OutputSpec, report: &Report) -> Result<Vec<Upload>> {
    let objects = keyaudit_exports::security_lake::objects(report)?;
    match &spec.target {
        spec::Target::S3Dir(location) => Ok(objects
            .into_iter()
            .map(|o| Upload {
                format: spec.format,
                object: spec::S3Location { bucket: location.bucket.clone(), key: format!("{}{}", location.key, o.key) },
                bytes: o.bytes,
                local: None,
            })
            .collect()),
        spec::Target::Dir(dir) => {
            for object in objects {
                let path = dir.join(&object.key);
                std::fs::create_dir_all(parent_dir(&path))
                    .with_context(|| format!("--output security-lake={}: cannot create", dir.display()))?;
                write_file(&path, &object.bytes)?;
            }
            tracing::info!(dir = %dir.display(), "Security Lake objects written");
            Ok(Vec::new())
        }
        _ => anyhow::bail!("security-lake writes to an S3 location or a directory"),
    }
}

/// Writes to stdout. A reader that went away (`keyaudit scan | head`) is not an error: the output simply ends
/// there, as with ripgrep, and the exit code still reports the outcome.
pub(crate) fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, renamed into place), replacing the file there:
/// for paths the user named.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_with(path, &Existing::Replace, |out| Ok(out.write_all(bytes)?)).map(drop)
}

/// Writes `bytes` atomically to `path`, or to `path~2`, `path~3`, … when a file is there: an earlier file is
/// never replaced. Returns the path written.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<std::path::PathBuf> {
    let numbered = |n: u32| {
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(format!("~{n}"));
        path.with_file_name(name)
    };
    write_file_with(path, &Existing::Keep(&numbered), |out| Ok(out.write_all(bytes)?))
}

/// What a write does when its file is already there.
pub(crate) enum Existing<'a> {
    /// Replaces it (a path the user named: the same file each run).
    Replace,
    /// Keeps it, and writes under the `n`-th other name instead (`n` = 2, 3, …), the first one free: files keyaudit
    /// names itself (`--output-dir`, kept uploads), where a file there is an earlier run's report.
    Keep(&'a dyn Fn(u32) -> std::path::PathBuf),
}

/// Writes atomically what `write` writes into the (buffered) temporary file beside `path`, then moves it into place
/// as `existing` says. Returns the path written.
pub(crate) fn write_file_with(
    path: &Path,
    existing: &Existing<'_>,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<std::path::PathBuf> {
    // Like any file the user creates (0666 less the umask), not tempfile's private 0600: a SIEM forwarder
    // running as another user must be able to read the reports.
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Errors name the file the user asked for and what went wrong, never the temporary file.
    let mut tmp = builder.prefix(".keyaudit-").tempfile_in(parent_dir(path)).map_err(|e| {
        anyhow!("--output {}: cannot write in {} ({})", path.display(), parent_dir(path).display(), e.kind())
    })?;
    let failed = |e: std::io::Error| anyhow!("writing {}: {}", path.display(), e.kind());
    let mut out = std::io::BufWriter::new(tmp.as_file_mut());
    write(&mut out).with_context(|| format!("writing {}", path.display()))?;
    out.flush().map_err(failed)?;
    drop(out);
    tmp.as_file().sync_all().map_err(failed)?;
    let cannot_move =
        |e: std::io::Error| anyhow!("--output {}: cannot move the report into place ({e})", path.display());
    let Existing::Keep(numbered) = existing else {
        tmp.persist(path).map_err(|e| cannot_move(e.error))?;
        return Ok(path.to_owned());
    };
    // No check-then-rename: the rename itself refuses an existing file, so two runs at once never replace each
    // other's report either.
    let mut pending = Some(tmp);
    let persist = |target: &Path| {
        let Some(file) = pending.take() else { return Err(std::io::Error::other("already moved")) };
        file.persist_noclobber(target).map(drop).map_err(|e| {
            pending = Some(e.file);
            e.error
        })
    };
    let ((), target) = first_free(path, *numbered, persist).map_err(cannot_move)?;
    if target != path {
        tracing::warn!("{} is an earlier report, kept as it is: this one is {}", path.display(), target.display());
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old").unwrap();
        write_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".keyaudit-"))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The same mode as a file created the ordinary way (0666 less the umask).
            let reference = dir.path().join("reference");
            std::fs::write(&reference, "x").unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode(&path), mode(&reference));
        }
    }
}
