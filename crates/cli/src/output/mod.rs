//! Output writers. Each maps the core report model to its own output types; files are written atomically
//! (a temporary file in the same directory, renamed into place), so a reader never sees half a report. The
//! one exception is NDJSON, which is streamed line by line as accounts finish.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use jiff::Timestamp;
use keyaudit_core::eval::Finding;
use keyaudit_core::ids::AccountId;
use keyaudit_core::report::{AccountRecord, Report};

mod asff;
mod csv;
pub(crate) mod diff;
#[cfg(test)]
pub(crate) mod fixture;
mod html;
mod json;
mod ndjson;
mod ocsf;
pub(crate) mod s3;
mod sarif;
mod security_lake;
mod spec;
mod table;
mod wording;

pub(crate) use asff::{HubFinding, for_security_hub};
#[cfg(test)]
pub(crate) use json::render as json_bytes;
pub(crate) use ndjson::NdjsonStream;
use spec::parent_dir;
pub(crate) use spec::{Format, OutputOptions, OutputSpec, check_writable, prepare};
pub(crate) use table::columns;
pub(crate) use wording::{ExportSeverity, next_step, requirements, rule_tags, sentence, shown};

/// Each finding with its account's record (name, OU path), in the report's order.
pub(crate) fn with_accounts(report: &Report) -> impl Iterator<Item = (&Finding, Option<&AccountRecord>)> {
    let by_id: HashMap<&AccountId, &AccountRecord> = report.accounts.iter().map(|r| (&r.account.id, r)).collect();
    report.findings.iter().map(move |f| (f, by_id.get(&f.account_id).copied()))
}

/// The region of the scan `account` comes from (each organization of a merged report has its own).
pub(crate) fn region_of<'a>(report: &'a Report, account: &str) -> &'a str {
    report.run_of(account).origin.as_ref().map_or(crate::aws::DEFAULT_REGION, |o| o.region.as_str())
}

/// The account's enrichment status when its optional look-ups were cut short (`partial`, `skipped`), else `None`.
pub(crate) fn enrichment_cut_short(record: Option<&AccountRecord>) -> Option<&'static str> {
    match record.map(|r| &r.status) {
        Some(keyaudit_core::report::AccountStatus::Scanned { enrichment, .. }) if !enrichment.is_complete() => {
            Some(enrichment.status())
        }
        _ => None,
    }
}

/// Renders `report` in `format` (a scan streams NDJSON instead, see [`open_streams`]).
pub(crate) fn render(format: Format, report: &Report, opts: &OutputOptions, color: bool) -> Result<Vec<u8>> {
    Ok(match format {
        Format::Table => table::render(report, opts.fail_on, color).into_bytes(),
        Format::Json => json::render(report)?,
        Format::Sarif => sarif::render(report, opts)?,
        Format::Ocsf => ocsf::render(report, opts)?,
        Format::Asff => asff::render(report)?,
        Format::Csv => csv::render(report)?,
        Format::Html => html::render(report)?,
        Format::Ndjson => ndjson::render(report)?,
        Format::SecurityLake => anyhow::bail!("security-lake is one Parquet object per account, not one file"),
    })
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
                Some(path) => Box::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("--output {}: cannot create", path.display()))?,
                ),
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
    let mut uploads = Vec::new();
    for spec in specs.iter().filter(|s| !(streamed && s.format == Format::Ndjson && !s.is_s3())) {
        if spec.format == Format::SecurityLake {
            uploads.extend(write_security_lake(spec, report)?);
            continue;
        }
        if let Some(object) = spec.object(report.run.started_at, merged) {
            let local =
                specs.iter().filter(|s| s.format == spec.format).find_map(|s| s.path(report.run.started_at, merged));
            uploads.push(Upload {
                format: spec.format,
                object,
                bytes: render(spec.format, report, opts, false)?,
                local,
            });
            continue;
        }
        match spec.path(report.run.started_at, merged) {
            None => {
                let color = std::io::stdout().is_terminal();
                let bytes = render(spec.format, report, opts, color)?;
                write_stdout(&bytes).context("writing the report to stdout")?;
            }
            // JSON, the largest, is streamed into its file as it is serialized.
            Some(path) if spec.format == Format::Json => {
                write_file_with(&path, |out| Ok(keyaudit_report::to_writer(report, out)?))?;
                tracing::info!(path = %path.display(), "report written");
            }
            Some(path) => {
                let bytes = render(spec.format, report, opts, false)?;
                write_file(&path, &bytes)?;
                tracing::info!(path = %path.display(), "report written");
            }
        }
    }
    Ok(uploads)
}

/// The Security Lake objects: written under a local directory, or returned for upload under the S3 location.
fn write_security_lake(spec: &OutputSpec, report: &Report) -> Result<Vec<Upload>> {
    let objects = security_lake::objects(report)?;
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

/// Writes `bytes` to `path` atomically (a temporary file beside it, renamed into place).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_with(path, |out| Ok(out.write_all(bytes)?))
}

/// Writes to `path` atomically what `write` writes into the (buffered) temporary file beside it.
pub(crate) fn write_file_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
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
    tmp.persist(path)
        .map_err(|e| anyhow!("--output {}: cannot move the report into place ({})", path.display(), e.error))?;
    Ok(())
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
