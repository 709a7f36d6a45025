//! keyaudit-report — the versioned JSON report: its schema types, written and read back by the same code. Depends on
//! core.
//!
//! The versioned JSON report, keyaudit's contract with every consumer and with itself (`merge`,
//! `diff`, `plan --from-report`, `--baseline`, `notify` read it back).
//!
//! The contract is written once: [`schema`] holds its types, which derive `Serialize`, `Deserialize` and
//! `JsonSchema`; `write` builds them from the core model (borrowing its strings) and `read` turns them back into
//! the model, checking every value and every finding's fingerprint; `docs/json-schema.json` is [`json_schema`]'s
//! output. Other writers (NDJSON, CSV, HTML) take these types as they are.
#![warn(missing_docs)]

mod names;
mod read;
pub mod schema;
mod write;

use keyaudit_core::report::{FailureCode, Report as CoreReport};
use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

pub use names::{Named, Tag};
pub use schema::FINDING_COLUMNS;
pub use write::{FindingRun, organization_of, resolved};

/// The JSON schema version. Bump only for breaking changes; adding fields is not one.
pub const SCHEMA_VERSION: u32 = 1;

/// Why bytes are not a keyaudit JSON report this build can read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a keyaudit JSON report at all: what the bytes are instead.
    #[error("{0}; expected a report written by `keyaudit scan -o json`")]
    NotAReport(String),
    /// A keyaudit report of another schema version.
    #[error(
        "schema_version {0}, but this keyaudit reads and writes schema_version {SCHEMA_VERSION}: use reports written \
         by the same keyaudit release"
    )]
    OtherVersion(u64),
    /// A field missing or of the wrong type.
    #[error(
        "not a complete keyaudit JSON report ({0}); reports written before `keyaudit merge` existed lack some fields: \
         scan again"
    )]
    Incomplete(serde_json::Error),
    /// A value that does not hold, where it is (`findings[3]: fingerprint … does not match …`).
    #[error("{0}")]
    Invalid(String),
}

/// What a report's first fields say: enough to tell a keyaudit JSON report from any other JSON (another export of
/// keyaudit's, say), and to order several by time. serde skips every other field without building it.
#[derive(Debug, Deserialize)]
pub struct Head {
    /// The report's schema version.
    pub schema_version: Option<u64>,
    tool: Option<HeadTool>,
    /// Its run, as far as ordering reports needs.
    pub run: Option<HeadRun>,
    /// A SARIF log's runs.
    runs: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct HeadTool {
    name: Option<String>,
}

/// A report's run, as far as ordering reports needs.
#[derive(Debug, Deserialize)]
pub struct HeadRun {
    /// Its `as_of`.
    pub as_of: Option<jiff::Timestamp>,
    /// Its start.
    pub started_at: Option<jiff::Timestamp>,
    /// `organization`, `standalone_account` or `merged`.
    pub scope: Option<String>,
}

/// Reads the header of a keyaudit JSON report, once the bytes are shown to be one (JSON, `tool.name` "keyaudit", a
/// `schema_version`); otherwise says what the bytes are (keyaudit's other exports are JSON too).
pub fn head(bytes: &[u8]) -> Result<Head, ReadError> {
    let not = |what: &str| Err(ReadError::NotAReport(what.to_owned()));
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return not("a JSON array, not a keyaudit JSON report (keyaudit's OCSF and ASFF exports are arrays)");
    }
    let head: Head = match serde_json::from_slice(bytes) {
        Ok(head) => head,
        Err(e) if e.to_string().starts_with("trailing characters") => {
            return not("JSON lines, not a keyaudit JSON report (keyaudit's NDJSON export is JSON lines)");
        }
        Err(e) => return not(&format!("not JSON ({e})")),
    };
    if head.runs.is_some() {
        return not("a SARIF log, not a keyaudit JSON report");
    }
    if head.schema_version.is_none() {
        return not("JSON without a schema_version, not a keyaudit JSON report");
    }
    if head.tool.as_ref().and_then(|t| t.name.as_deref()) != Some("keyaudit") {
        return not("not a keyaudit JSON report (tool.name is not \"keyaudit\")");
    }
    Ok(head)
}

/// The report as JSON (pretty, with a final newline).
pub fn to_json(report: &CoreReport) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    to_writer(report, &mut bytes)?;
    Ok(bytes)
}

/// Writes the report as JSON (pretty, with a final newline) to `out` as it is serialized: neither the text nor the
/// converted report is ever held whole in memory (they were most of a large scan's peak).
pub fn to_writer(report: &CoreReport, mut out: impl std::io::Write) -> serde_json::Result<()> {
    serde_json::to_writer_pretty(&mut out, &write::Streamed(report))?;
    out.write_all(b"\n").map_err(serde_json::Error::io)
}

/// Reads a keyaudit JSON report back whole into the core model: its header and version first, then every value.
pub fn from_slice(bytes: &[u8]) -> Result<CoreReport, ReadError> {
    let version = head(bytes)?.schema_version.unwrap_or_default();
    if version != u64::from(SCHEMA_VERSION) {
        return Err(ReadError::OtherVersion(version));
    }
    let report: schema::Report<'_> = serde_json::from_slice(bytes).map_err(ReadError::Incomplete)?;
    report.into_model().map_err(ReadError::Invalid)
}

/// `reason_code`: a failure code, or `not_active` for a skipped account (names from core).
fn reason_code_schema(_: &mut SchemaGenerator) -> Schema {
    let mut codes: Vec<Option<&str>> = vec![None, Some("not_active")];
    codes.extend(FailureCode::ALL.iter().map(|c| Some(c.as_str())));
    json_schema!({ "enum": codes })
}

/// Every property of every object is written, null when absent: all of them are required.
fn all_required(schema: &mut Schema) {
    let names: Option<Vec<serde_json::Value>> = schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|p| p.keys().cloned().map(serde_json::Value::String).collect());
    if let Some(names) = names {
        schema.insert("required".into(), serde_json::Value::Array(names));
    }
}

/// The JSON Schema of the report (draft 2020-12), generated from [`schema`]; `docs/json-schema.json` holds it.
pub fn json_schema() -> String {
    let mut generator = SchemaGenerator::new(SchemaSettings::draft2020_12());
    let mut schema = generator.root_schema_for::<schema::Report<'static>>();
    RecursiveTransform(all_required).transform(&mut schema);
    schema.insert("$id".into(), "https://github.com/keyaudit/keyaudit/docs/json-schema.json".into());
    schema.insert("title".into(), format!("keyaudit JSON report, schema_version {SCHEMA_VERSION}").into());
    schema.insert(
        "description".into(),
        "Written by `keyaudit scan -o json[=PATH]` (and `keyaudit merge -o json[=PATH]`). Fields may be added within \
         schema_version 1; none is removed or renamed. Generated from crates/report/src/schema.rs: \
         `cargo run -q -p keyaudit -- schema > docs/json-schema.json`."
            .into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    /// CI fails when docs/json-schema.json is not what the types generate.
    #[test]
    fn docs_json_schema_is_the_generated_one() {
        // Where the package is as the test runs (cargo and nextest say), not where it was compiled: a build cache
        // shared between two clones can hand one clone's test binary to the other.
        let package = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")), std::path::PathBuf::from);
        let path = package.join("../../docs/json-schema.json");
        let in_repository = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            in_repository == super::json_schema(),
            "docs/json-schema.json differs from the schema the report's types generate: run \
             `cargo run -q -p keyaudit -- schema > docs/json-schema.json` and review the diff"
        );
    }
}
