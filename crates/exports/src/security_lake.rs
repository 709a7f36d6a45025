//! Amazon Security Lake custom source: the report's findings as OCSF 1.3 Compliance Finding records (the OCSF
//! export's records, for the last OCSF version Security Lake takes), in Parquet, one object per account under
//! `region=<region>/accountId=<account id>/eventDay=<YYYYMMDD>/`, as Security Lake's custom-source guide asks:
//! zstd compression, data pages of at most 1 MiB, row groups far below 256 MB, records sorted by time.
//!
//! The records are shredded into Parquet columns straight from their JSON form, against [`SCHEMA`], with the
//! Apache Arrow project's `parquet` crate without Arrow: every field of a record must be in the schema (a field
//! added to the OCSF record and not here fails the unit tests, never writes a file that drops it).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Result;
use keyaudit_core::eval::Finding;
use keyaudit_core::report::{AccountRecord, AccountStatus, Report};
use parquet::basic::{Compression, Repetition, Type as Physical, ZstdLevel};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde_json::Value;

use super::ocsf::{self, Version};
use super::with_accounts;

/// The Parquet schema of a record: the OCSF 1.3 attributes the record carries, with OCSF's types (`integer_t` as
/// INT32, `long_t` and `timestamp_t` — milliseconds since the epoch — as INT64, strings as UTF-8). Required where
/// OCSF requires the attribute or keyaudit always writes it.
pub(super) const SCHEMA: &str = "
message compliance_finding {
  required int32 activity_id;
  required binary activity_name (STRING);
  required int32 category_uid;
  required binary category_name (STRING);
  required int32 class_uid;
  required binary class_name (STRING);
  required int64 type_uid;
  required binary type_name (STRING);
  required int64 time;
  required int32 severity_id;
  required binary severity (STRING);
  required int32 status_id;
  required binary status (STRING);
  required binary status_code (STRING);
  optional binary status_detail (STRING);
  required binary message (STRING);
  required group metadata {
    required binary version (STRING);
    required group profiles (LIST) { repeated group list { required binary element (STRING); } }
    required group product {
      required binary name (STRING);
      required binary vendor_name (STRING);
      required binary version (STRING);
      required binary uid (STRING);
    }
    required binary event_code (STRING);
    required binary uid (STRING);
  }
  required group finding_info {
    required binary uid (STRING);
    required binary title (STRING);
    required binary desc (STRING);
    required int64 created_time;
    required group types (LIST) { repeated group list { required binary element (STRING); } }
  }
  required group compliance {
    required int32 status_id;
    required binary control (STRING);
    required group standards (LIST) { repeated group list { required binary element (STRING); } }
    required group requirements (LIST) { repeated group list { required binary element (STRING); } }
  }
  required group cloud {
    required binary provider (STRING);
    required binary region (STRING);
    required group account {
      required binary uid (STRING);
      required binary name (STRING);
      required int32 type_id;
      required binary type (STRING);
    }
    optional group org {
      required binary uid (STRING);
      optional binary ou_name (STRING);
    }
  }
  required group resources (LIST) {
    repeated group list {
      required group element {
        required binary uid (STRING);
        optional binary name (STRING);
        required binary type (STRING);
        required binary cloud_partition (STRING);
        required binary region (STRING);
        optional binary namespace (STRING);
        optional group data {
          required int32 key_slot;
          required binary key_status (STRING);
          required binary last_rotated (STRING);
          required int64 age_days;
          optional binary due_at (STRING);
          optional binary last_used_at (STRING);
        }
      }
    }
  }
  required group remediation {
    required binary desc (STRING);
    required group references (LIST) { repeated group list { required binary element (STRING); } }
  }
  required group unmapped {
    required binary rule_name (STRING);
    required binary subject (STRING);
    required binary verdict (STRING);
    required binary compliance_status (STRING);
    required binary as_of (STRING);
    optional binary usage (STRING);
    optional binary last_used_at (STRING);
    optional binary last_used_service (STRING);
    optional binary last_used_region (STRING);
    optional binary age_source (STRING);
    required binary action (STRING);
    optional binary action_reason (STRING);
    optional binary owner (STRING);
    optional binary owner_tag (STRING);
    optional binary baseline_state (STRING);
    optional binary suppression_entry (STRING);
    optional binary enrichment (STRING);
  }
}
";

/// Rows per row group: a record is 1 to 2 KB before compression, so a row group stays under 20 MB (Security Lake
/// asks for at most 256 MB).
const ROW_GROUP_ROWS: usize = 10_000;
/// Security Lake asks for data pages of at most 1 MiB before compression.
const PAGE_BYTES: usize = 1024 * 1024;

/// One Parquet object: its key under the custom source's location, and its bytes.
pub struct LakeObject {
    pub key: String,
    pub bytes: Vec<u8>,
}

/// A record that does not fit [`SCHEMA`]: a defect, caught by the unit tests.
fn misfit(what: String) -> crate::ExportError {
    crate::ExportError::Parquet(format!("the Security Lake record does not fit its Parquet schema: {what}"))
}

/// Every finding of the report (passing ones too: a lake keeps the posture, and a pass is how a consumer closes an
/// earlier fail), one object per assessed account, named `keyaudit-<run start>-<account>.parquet` in its partition.
/// An assessed account without findings (no IAM user, no key) gets an object without rows: the partition shows it
/// was assessed that day. Accounts that could not be assessed get none (the JSON report says why).
pub fn objects(report: &Report) -> Result<Vec<LakeObject>> {
    // Findings grouped by account first; each account's records are built, written and dropped in turn, so that
    // memory holds one account's records at a time.
    let mut by_account: BTreeMap<&str, Vec<_>> = report
        .accounts
        .iter()
        .filter(|r| matches!(r.status, AccountStatus::Scanned { .. }))
        .map(|r| (r.account.id.as_str(), Vec::new()))
        .collect();
    for (f, account) in with_accounts(report) {
        by_account.entry(f.account_id.as_str()).or_default().push((f, account));
    }
    let schema = Arc::new(parquet::schema::parser::parse_message_type(SCHEMA)?);
    let started = report.run.started_at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let object = |account: &str, findings: Vec<(&Finding, Option<&AccountRecord>)>| -> Result<LakeObject> {
        let mut records = findings
            .into_iter()
            .map(|(f, a)| serde_json::to_value(ocsf::record(report, f, a, Version::V1_3)))
            .collect::<serde_json::Result<Vec<Value>>>()?;
        // Sorted by time (Security Lake's advice for cheaper queries), then by finding for a stable file.
        records.sort_by_cached_key(|v| (v["time"].as_i64(), v["finding_info"]["uid"].as_str().map(str::to_owned)));
        let day = report.run_of(account).as_of.strftime("%Y%m%d");
        let region = super::region_of(report, account);
        Ok(LakeObject {
            key: format!("region={region}/accountId={account}/eventDay={day}/keyaudit-{started}-{account}.parquet"),
            bytes: parquet_file(&schema, &records)?,
        })
    };
    // Objects are independent: written on every core (most of a small object's cost is the Parquet writer's
    // per-column set-up, zstd contexts included), then put back in account order.
    let workers = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 8);
    let mut queues: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, entry) in by_account.into_iter().enumerate() {
        queues[i % workers].push((i, entry));
    }
    let mut done: Vec<(usize, LakeObject)> = std::thread::scope(|scope| {
        let handles: Vec<_> = queues
            .into_iter()
            .map(|queue| {
                scope.spawn(|| {
                    queue
                        .into_iter()
                        .map(|(i, (account, findings))| Ok((i, object(account, findings)?)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().map_err(|_| crate::ExportError::Parquet("a Security Lake writer thread panicked".into()))?
            })
            .collect::<Result<Vec<Vec<_>>>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    done.sort_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, o)| o).collect())
}

/// The Parquet file of `records`, each a JSON object that fits `schema`.
pub(super) fn parquet_file(schema: &Arc<Type>, records: &[Value]) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_data_page_size_limit(PAGE_BYTES)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("keyaudit {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer = SerializedFileWriter::new(Vec::new(), Arc::clone(schema), Arc::new(props))?;
    for group in records.chunks(ROW_GROUP_ROWS) {
        let mut columns: Vec<Column> = Vec::new();
        leaves(schema, &mut columns);
        let mut shredder = Shredder { columns: &mut columns, next: 0 };
        for record in group {
            shredder.next = 0;
            let record = record.as_object().ok_or_else(|| misfit("a record that is not an object".into()))?;
            shredder.group(schema, record, 0, 0, 0, None)?;
        }
        let mut row_group = writer.next_row_group()?;
        let mut columns = columns.into_iter();
        while let Some(mut column) = row_group.next_column()? {
            let Column { values, defs, reps } =
                columns.next().ok_or_else(|| misfit("fewer columns than the schema's".into()))?;
            let (defs, reps) = (Some(defs.as_slice()), Some(reps.as_slice()));
            match (column.untyped(), values) {
                (ColumnWriter::ByteArrayColumnWriter(w), Values::Bytes(v)) => w.write_batch(&v, defs, reps)?,
                (ColumnWriter::Int32ColumnWriter(w), Values::Int32(v)) => w.write_batch(&v, defs, reps)?,
                (ColumnWriter::Int64ColumnWriter(w), Values::Int64(v)) => w.write_batch(&v, defs, reps)?,
                _ => return Err(misfit("a column of another type than its values".into())),
            };
            column.close()?;
        }
        row_group.close()?;
    }
    Ok(writer.into_inner()?)
}

/// A LIST in Parquet's three-level form: `<optional|required> group NAME (LIST) { repeated group list { element } }`.
fn list_element(ty: &Type) -> Option<&Type> {
    use parquet::basic::ConvertedType;
    let [list] = ty.get_fields() else { return None };
    let [element] = list.get_fields() else { return None };
    (ty.get_basic_info().converted_type() == ConvertedType::LIST).then_some(element.as_ref())
}

/// One leaf column's values and levels, in the order of the schema's leaves.
struct Column {
    values: Values,
    defs: Vec<i16>,
    reps: Vec<i16>,
}

enum Values {
    Bytes(Vec<ByteArray>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
}

/// The schema's leaf columns, depth first (Parquet's column order).
fn leaves(ty: &Type, out: &mut Vec<Column>) {
    if ty.is_primitive() {
        let values = match ty.get_physical_type() {
            Physical::INT32 => Values::Int32(Vec::new()),
            Physical::INT64 => Values::Int64(Vec::new()),
            _ => Values::Bytes(Vec::new()),
        };
        out.push(Column { values, defs: Vec::new(), reps: Vec::new() });
    } else {
        for child in ty.get_fields() {
            leaves(child, out);
        }
    }
}

/// A field's dotted path, for errors alone: made only when one is written.
struct FieldPath<'a> {
    parent: Option<&'a FieldPath<'a>>,
    name: &'a str,
}

impl std::fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}.")?;
        }
        f.write_str(self.name)
    }
}

/// Dremel's record shredding: each value goes to its leaf column with its definition level (how many of its
/// optional or repeated ancestors are present) and repetition level (at which list it repeats; 0 starts a record).
struct Shredder<'c> {
    columns: &'c mut [Column],
    /// The leaf column the walk is at.
    next: usize,
}

impl Shredder<'_> {
    /// Field `ty` of a record or group, `value` its JSON (absent or null: not there); `def` and `rep` are the levels
    /// reached by its parent, `depth` the number of lists around it.
    fn field(
        &mut self,
        ty: &Type,
        value: Option<&Value>,
        def: i16,
        rep: i16,
        depth: i16,
        path: &FieldPath<'_>,
    ) -> Result<()> {
        let value = value.filter(|v| !v.is_null());
        let (def, value) = match (ty.get_basic_info().repetition(), value) {
            (Repetition::OPTIONAL, None) => {
                self.absent(ty, def, rep);
                return Ok(());
            }
            (Repetition::REQUIRED, None) => return Err(misfit(format!("{path} is required"))),
            (Repetition::OPTIONAL, Some(v)) => (def + 1, v),
            (Repetition::REQUIRED, Some(v)) => (def, v),
            (Repetition::REPEATED, _) => {
                return Err(misfit(format!("{path}: a repeated field outside a LIST")));
            }
        };
        if ty.is_primitive() {
            return self.leaf(ty, value, def, rep, path);
        }
        if let Some(element) = list_element(ty) {
            let items = value.as_array().ok_or_else(|| misfit(format!("{path} is not a list")))?;
            if items.is_empty() {
                self.absent(element, def, rep);
            }
            // Every item goes to the same leaf columns.
            let first_column = self.next;
            for (i, item) in items.iter().enumerate() {
                self.next = first_column;
                let rep = if i == 0 { rep } else { depth + 1 };
                self.field(element, Some(item), def + 1, rep, depth + 1, path)?;
            }
            return Ok(());
        }
        let object = value.as_object().ok_or_else(|| misfit(format!("{path} is not an object")))?;
        self.group(ty, object, def, rep, depth, Some(path))
    }

    /// The fields of group `ty` (the record itself at the root, `path` `None`), from `object`, which may have no
    /// field the schema does not.
    fn group(
        &mut self,
        ty: &Type,
        object: &serde_json::Map<String, Value>,
        def: i16,
        rep: i16,
        depth: i16,
        path: Option<&FieldPath<'_>>,
    ) -> Result<()> {
        if let Some(unknown) = object.keys().find(|k| !ty.get_fields().iter().any(|f| f.name() == *k)) {
            let unknown = FieldPath { parent: path, name: unknown };
            return Err(misfit(format!("field {unknown} is not in the schema")));
        }
        for child in ty.get_fields() {
            let path = FieldPath { parent: path, name: child.name() };
            self.field(child, object.get(child.name()), def, rep, depth, &path)?;
        }
        Ok(())
    }

    /// Every leaf under `ty` gets a null at these levels.
    fn absent(&mut self, ty: &Type, def: i16, rep: i16) {
        if ty.is_primitive() {
            let column = &mut self.columns[self.next];
            column.defs.push(def);
            column.reps.push(rep);
            self.next += 1;
        } else {
            for child in ty.get_fields() {
                self.absent(child, def, rep);
            }
        }
    }

    fn leaf(&mut self, ty: &Type, value: &Value, def: i16, rep: i16, path: &FieldPath<'_>) -> Result<()> {
        let wrong = || misfit(format!("{path}: {value} is not {:?}", ty.get_physical_type()));
        let column = &mut self.columns[self.next];
        match &mut column.values {
            Values::Bytes(v) => v.push(ByteArray::from(value.as_str().ok_or_else(wrong)?)),
            Values::Int32(v) => v.push(value.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(wrong)?),
            Values::Int64(v) => v.push(value.as_i64().ok_or_else(wrong)?),
        }
        column.defs.push(def);
        column.reps.push(rep);
        self.next += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::report;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    /// The fixture's records written and read back: every field of every record, in order.
    #[test]
    fn records_round_trip_through_parquet() {
        let report = report();
        let objects = objects(&report).unwrap();
        let scanned = report.accounts.iter().filter(|r| matches!(r.status, AccountStatus::Scanned { .. }));
        let accounts: std::collections::BTreeSet<&str> = report
            .findings
            .iter()
            .map(|f| f.account_id.as_str())
            .chain(scanned.map(|r| r.account.id.as_str()))
            .collect();
        assert_eq!(objects.len(), accounts.len(), "one object per assessed account or account with findings");
        let mut read = 0;
        for object in &objects {
            let account = object.key.split("accountId=").nth(1).and_then(|s| s.split('/').next()).unwrap();
            assert!(object.key.starts_with("region="), "{}", object.key);
            let mut expected: Vec<Value> = with_accounts(&report)
                .filter(|(f, _)| f.account_id.as_str() == account)
                .map(|(f, a)| without_nulls(serde_json::to_value(ocsf::record(&report, f, a, Version::V1_3)).unwrap()))
                .collect();
            let reader = SerializedFileReader::new(bytes::Bytes::from(object.bytes.clone())).unwrap();
            let meta = reader.metadata();
            assert_eq!(meta.file_metadata().num_rows() as usize, expected.len());
            let column = meta.row_group(0).column(0);
            assert_eq!(column.compression(), Compression::ZSTD(ZstdLevel::default()));
            let mut rows: Vec<Value> =
                reader.get_row_iter(None).unwrap().map(|r| without_nulls(to_json(&Field::Group(r.unwrap())))).collect();
            let times: Vec<i64> = rows.iter().map(|r| r["time"].as_i64().unwrap()).collect();
            assert!(times.is_sorted(), "records sorted by time");
            expected.sort_by_key(|v| v["finding_info"]["uid"].as_str().map(str::to_owned));
            rows.sort_by_key(|v| v["finding_info"]["uid"].as_str().map(str::to_owned));
            assert_eq!(rows, expected);
            read += rows.len();
        }
        assert_eq!(read, report.findings.len(), "every finding, passing ones too");
    }

    /// Absent and null are one to Parquet: both sides compared without their nulls.
    fn without_nulls(value: Value) -> Value {
        match value {
            Value::Object(o) => {
                Value::Object(o.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect())
            }
            Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
            other => other,
        }
    }

    /// A row read back as JSON.
    fn to_json(field: &Field) -> Value {
        match field {
            Field::Null => Value::Null,
            Field::Int(n) => Value::from(*n),
            Field::Long(n) => Value::from(*n),
            Field::Str(s) => Value::from(s.as_str()),
            Field::Group(row) => Value::Object(
                row.get_column_iter().map(|(name, f)| (name.clone(), to_json(f))).collect::<serde_json::Map<_, _>>(),
            ),
            Field::ListInternal(list) => Value::Array(list.elements().iter().map(to_json).collect()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_field_missing_from_the_schema_is_refused() {
        let schema = Arc::new(parquet::schema::parser::parse_message_type(SCHEMA).unwrap());
        let report = report();
        let (f, a) = with_accounts(&report).next().unwrap();
        let mut record = serde_json::to_value(ocsf::record(&report, f, a, Version::V1_3)).unwrap();
        record["compliance"]["desc"] = Value::from("1.5 only");
        let err = parquet_file(&schema, &[record.clone()]).unwrap_err().to_string();
        assert!(err.contains("compliance.desc is not in the schema"), "{err}");
        record["compliance"].as_object_mut().unwrap().remove("desc");
        record["time"] = Value::from("yesterday");
        let err = parquet_file(&schema, &[record]).unwrap_err().to_string();
        assert!(err.contains("time: \"yesterday\" is not INT64"), "{err}");
    }
}
