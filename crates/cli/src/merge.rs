//! `keyaudit merge`: saved JSON reports (one per organization, typically from a CI matrix) combined into one
//! report and written in any format, with the exit code a scan of all of them would have had.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use keyaudit_core::merge::merge;
use keyaudit_core::report::FailOn;

use crate::args::MergeArgs;
use crate::output::{OutputOptions, OutputSpec, prepare, write_all};
use crate::{ExitStatus, Failure};

pub(crate) fn run(args: &MergeArgs) -> Result<ExitStatus, Failure> {
    let outputs = OutputSpec::parse_all(&args.outputs, args.output_dir.as_deref()).map_err(Failure::usage)?;
    if outputs.iter().any(OutputSpec::is_s3) {
        return Err(Failure::usage(anyhow!(
            "--output s3://…: keyaudit merge writes local files; upload them with `aws s3 cp`, or let each `keyaudit \
             scan` write to S3"
        )));
    }
    refuse_overwriting_inputs(&args.reports, &outputs).map_err(Failure::usage)?;
    let fail_on = args.fail_on.map_or(FailOn::Fail, |arg| arg.resolve("--fail-on"));
    let mut inputs = Vec::with_capacity(args.reports.len());
    for path in &args.reports {
        let label = path.display().to_string();
        inputs.push((label.clone(), crate::reload::load(&label, path).map_err(Failure::usage)?));
    }
    let merged = merge(inputs).map_err(|e| Failure::usage(anyhow::Error::new(e).context("keyaudit merge")))?;
    for note in &merged.notes {
        tracing::warn!("{note}");
    }
    let report = merged.report;
    if fail_on == FailOn::NewlyFailing && report.comparison.is_none() {
        return Err(Failure::usage(anyhow!(
            "--fail-on newly-failing: every merged report must have been made with --baseline (the merged report \
             has no comparison to judge what is newly failing)"
        )));
    }
    prepare(&outputs).map_err(Failure::usage)?;
    let options = OutputOptions {
        sarif_include_pass: args.sarif_include_pass,
        ocsf_include_pass: args.ocsf_include_pass,
        fail_on,
    };
    write_all(&outputs, &report, &options, false).context("writing the merged report").map_err(Failure::incomplete)?;
    Ok(report.outcome(fail_on).into())
}

/// An output written over one of the reports being merged would destroy it (the write replaces the file). Files
/// in --output-dir are named keyaudit-merged-…, which no scan writes; only explicit paths can clash.
fn refuse_overwriting_inputs(inputs: &[PathBuf], outputs: &[OutputSpec]) -> anyhow::Result<()> {
    let inputs: Vec<PathBuf> = inputs.iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect();
    for path in outputs.iter().filter_map(OutputSpec::file) {
        if std::fs::canonicalize(path).is_ok_and(|p| inputs.contains(&p)) {
            bail!("--output {}: is one of the reports being merged; write the merged report elsewhere", path.display());
        }
    }
    Ok(())
}
