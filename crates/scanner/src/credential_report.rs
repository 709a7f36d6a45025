//! Parsing of the IAM credential report (CSV, 22 columns on AWS) into typed rows.
//!
//! Columns are found by header name, never by position. Values `N/A`, `not_supported`, `no_information` and
//! the empty string mean "absent". AWS documents `access_key_N_last_rotated` as `N/A` when the slot holds no
//! active key, so an inactive key may be invisible here; inactive keys cannot fail the control.
//!
//! AWS always lists the root user first, as `<root_account>`: a report without that row is rejected as
//! malformed rather than read as an account whose root user has no keys.
//!
//! IAM user names may contain commas. A report whose names are not quoted (moto writes them that way) has
//! `2·m` extra fields on such a row; the row is repaired only when the name it rebuilds is exactly the last
//! segment of the ARN it rebuilds, and rejected otherwise.

use jiff::Timestamp;
use keyaudit_core::inventory::{CredentialUser, KeySlot, KeySlotRecord, KeyStatus};

/// A credential report that cannot be read. `line` is 1-based and counts the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportParseError {
    /// The report is empty or has no header line.
    #[error("the credential report is empty")]
    Empty,
    /// The report has no `<root_account>` row. AWS always lists the root user first; a report without it is not
    /// one keyaudit can vouch for (the root user's keys would go unaudited without a word).
    #[error("the credential report has no <root_account> row (AWS always lists the root user)")]
    NoRootRow,
    /// A required column is missing from the header.
    #[error("the credential report header has no column {column:?}")]
    MissingColumn {
        /// The missing column.
        column: &'static str,
    },
    /// A row or value is malformed.
    #[error("credential report line {line}: {problem}")]
    Malformed {
        /// 1-based line number (the header is line 1).
        line: u64,
        /// What was wrong, and what was expected.
        problem: String,
    },
}

const USER: &str = "user";
const ARN: &str = "arn";

struct SlotColumns {
    slot: KeySlot,
    active: usize,
    last_rotated: usize,
    last_used_date: usize,
    last_used_region: Option<usize>,
    last_used_service: Option<usize>,
}

struct Columns {
    count: usize,
    user: usize,
    arn: usize,
    slots: [SlotColumns; 2],
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, ReportParseError> {
        let find = |name: &'static str| {
            header.iter().position(|h| h.trim() == name).ok_or(ReportParseError::MissingColumn { column: name })
        };
        let optional = |name: &'static str| header.iter().position(|h| h.trim() == name);
        let slot = |slot: KeySlot, names: [&'static str; 5]| -> Result<SlotColumns, ReportParseError> {
            Ok(SlotColumns {
                slot,
                active: find(names[0])?,
                last_rotated: find(names[1])?,
                last_used_date: find(names[2])?,
                last_used_region: optional(names[3]),
                last_used_service: optional(names[4]),
            })
        };
        Ok(Self {
            count: header.len(),
            user: find(USER)?,
            arn: find(ARN)?,
            slots: [
                slot(
                    KeySlot::One,
                    [
                        "access_key_1_active",
                        "access_key_1_last_rotated",
                        "access_key_1_last_used_date",
                        "access_key_1_last_used_region",
                        "access_key_1_last_used_service",
                    ],
                )?,
                slot(
                    KeySlot::Two,
                    [
                        "access_key_2_active",
                        "access_key_2_last_rotated",
                        "access_key_2_last_used_date",
                        "access_key_2_last_used_region",
                        "access_key_2_last_used_service",
                    ],
                )?,
            ],
        })
    }
}

/// Parses a decoded credential report.
pub fn parse_credential_report(content: &[u8]) -> Result<Vec<CredentialUser>, ReportParseError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(content);
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) if h.iter().any(|f| !f.trim().is_empty()) => h,
        Some(Err(e)) => return Err(csv_error(1, &e)),
        _ => return Err(ReportParseError::Empty),
    };
    let cols = Columns::from_header(&header)?;
    let mut users = Vec::new();
    for (index, record) in records.enumerate() {
        let line = index as u64 + 2;
        let record = record.map_err(|e| csv_error(line, &e))?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let fields = normalize_fields(&record, &cols, line)?;
        users.push(parse_row(&fields, &cols, line)?);
    }
    if !users.iter().any(CredentialUser::is_root) {
        return Err(ReportParseError::NoRootRow);
    }
    Ok(users)
}

fn csv_error(line: u64, e: &csv::Error) -> ReportParseError {
    ReportParseError::Malformed { line, problem: format!("not valid CSV ({e})") }
}

/// Returns the row's fields with `user` and `arn` re-joined when unquoted commas split them.
fn normalize_fields(record: &csv::StringRecord, cols: &Columns, line: u64) -> Result<Vec<String>, ReportParseError> {
    let fields: Vec<String> = record.iter().map(str::to_owned).collect();
    if fields.len() == cols.count {
        return Ok(fields);
    }
    let extra = fields.len().checked_sub(cols.count).filter(|e| e % 2 == 0 && *e > 0);
    let repairable = cols.user == 0 && cols.arn == 1;
    let Some(extra) = extra.filter(|_| repairable) else {
        return Err(ReportParseError::Malformed {
            line,
            problem: format!("expected {} fields as in the header, found {}", cols.count, fields.len()),
        });
    };
    let commas = extra / 2;
    let user = fields[..=commas].join(",");
    let arn = fields[commas + 1..=2 * commas + 1].join(",");
    if !arn.ends_with(&format!("/{user}")) {
        return Err(ReportParseError::Malformed {
            line,
            problem: format!(
                "expected {} fields as in the header, found {} (an unquoted comma that is not in the user name)",
                cols.count,
                fields.len()
            ),
        });
    }
    let mut repaired = vec![user, arn];
    repaired.extend(fields[2 * commas + 2..].iter().cloned());
    Ok(repaired)
}

fn parse_row(fields: &[String], cols: &Columns, line: u64) -> Result<CredentialUser, ReportParseError> {
    let user_name = fields[cols.user].trim().to_owned();
    if user_name.is_empty() {
        return Err(ReportParseError::Malformed { line, problem: "the user column is empty".into() });
    }
    let mut keys = Vec::new();
    for slot in &cols.slots {
        if let Some(key) = parse_slot(fields, slot, line)? {
            keys.push(key);
        }
    }
    Ok(CredentialUser { user_name, arn: fields[cols.arn].trim().to_owned(), keys, owner: None })
}

fn parse_slot(fields: &[String], c: &SlotColumns, line: u64) -> Result<Option<KeySlotRecord>, ReportParseError> {
    let n = c.slot.number();
    let active = parse_bool(&fields[c.active], line, &format!("access_key_{n}_active"))?;
    let last_rotated = parse_time(&fields[c.last_rotated], line, &format!("access_key_{n}_last_rotated"))?;
    let last_rotated = match (active, last_rotated) {
        (_, Some(t)) => t,
        (false, None) => return Ok(None),
        (true, None) => {
            return Err(ReportParseError::Malformed {
                line,
                problem: format!("access key {n} is active but access_key_{n}_last_rotated has no date"),
            });
        }
    };
    let text = |i: Option<usize>| i.and_then(|i| absent_or(&fields[i])).map(str::to_owned);
    Ok(Some(KeySlotRecord {
        slot: c.slot,
        status: if active { KeyStatus::Active } else { KeyStatus::Inactive },
        last_rotated,
        last_used_at: parse_time(&fields[c.last_used_date], line, &format!("access_key_{n}_last_used_date"))?,
        last_used_service: text(c.last_used_service),
        last_used_region: text(c.last_used_region),
        access_key_id: None,
        created_at: None,
        change: None,
    }))
}

/// `None` for the report's "no value" markers.
fn absent_or(value: &str) -> Option<&str> {
    let v = value.trim();
    match v {
        "" | "N/A" | "not_supported" | "no_information" => None,
        _ => Some(v),
    }
}

fn parse_bool(value: &str, line: u64, column: &str) -> Result<bool, ReportParseError> {
    match absent_or(value) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => {
            Err(ReportParseError::Malformed { line, problem: format!("{column} is {v:?}; expected true or false") })
        }
    }
}

fn parse_time(value: &str, line: u64, column: &str) -> Result<Option<Timestamp>, ReportParseError> {
    absent_or(value)
        .map(|v| {
            v.parse::<Timestamp>().map_err(|_| ReportParseError::Malformed {
                line,
                problem: format!("{column} is {v:?}; expected an ISO 8601 date-time such as 2026-01-31T12:00:00+00:00"),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    /// The root user's row without keys, as AWS writes it for an account whose root has no access key.
    const ROOT: &str = "<root_account>,arn:aws:iam::012345678901:root,2019-01-01T00:00:00+00:00,not_supported,no_information,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";

    /// A report with `rows`, after the root row when `rows` does not start with one (line 2 is the root row).
    fn report(rows: &[&str]) -> Vec<u8> {
        let mut s = String::from(HEADER);
        if !rows.first().is_some_and(|r| r.starts_with("<root_account>")) {
            s.push('\n');
            s.push_str(ROOT);
        }
        for r in rows {
            s.push('\n');
            s.push_str(r);
        }
        s.push('\n');
        s.into_bytes()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// An AWS-shaped report: root row first, with its markers, then users with 0, 1 and 2 keys.
    const AWS_ROWS: &[&str] = &[
        "<root_account>,arn:aws:iam::012345678901:root,2019-01-01T00:00:00+00:00,not_supported,2026-11-01T10:00:00+00:00,not_supported,not_supported,true,true,2024-02-03T04:05:06+00:00,2026-11-20T08:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        "nokeys,arn:aws:iam::012345678901:user/nokeys,2020-01-01T00:00:00+00:00,true,no_information,2020-01-01T00:00:00+00:00,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        "two,arn:aws:iam::012345678901:user/team/two,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-01T00:00:00+00:00,no_information,N/A,N/A,false,2025-06-01T00:00:00+00:00,2025-07-01T00:00:00+00:00,eu-west-1,iam,false,N/A,false,N/A",
    ];

    #[test]
    fn an_aws_shaped_report_parses_root_row_and_every_marker() {
        let users = parse_credential_report(&report(AWS_ROWS)).unwrap();
        assert_eq!(users.len(), 3);
        let root = &users[0];
        assert!(root.is_root());
        assert_eq!(root.arn, "arn:aws:iam::012345678901:root");
        assert_eq!(root.keys.len(), 1);
        assert_eq!(root.keys[0].status, KeyStatus::Active);
        assert_eq!(root.keys[0].last_rotated, ts("2024-02-03T04:05:06Z"));
        assert_eq!(root.keys[0].last_used_at, Some(ts("2026-11-20T08:00:00Z")));
        assert_eq!(root.keys[0].last_used_service.as_deref(), Some("s3"));
        assert!(users[1].keys.is_empty());
        let two = &users[2];
        assert_eq!(two.keys.len(), 2);
        assert_eq!(two.keys[0].last_used_at, None, "no_information is absent");
        assert_eq!(two.keys[1].slot, KeySlot::Two);
        assert_eq!(two.keys[1].status, KeyStatus::Inactive);
        assert_eq!(two.keys[1].last_used_region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let csv = "access_key_2_last_used_date,access_key_2_last_rotated,access_key_2_active,arn,user,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date\n\
                   N/A,N/A,false,arn:aws:iam::012345678901:root,<root_account>,false,N/A,N/A\n\
                   N/A,N/A,false,arn:aws:iam::012345678901:user/x,x,true,2026-01-01T00:00:00+00:00,N/A\n";
        let users = parse_credential_report(csv.as_bytes()).unwrap();
        assert_eq!(users[1].user_name, "x");
        assert_eq!(users[1].keys[0].last_rotated, ts("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn quoted_user_names_with_every_allowed_character_parse() {
        let row = "\"a+b=c,d.e@f_g-h\",\"arn:aws:iam::012345678901:user/a+b=c,d.e@f_g-h\",2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";
        let users = parse_credential_report(&report(&[row])).unwrap();
        assert_eq!(users[1].user_name, "a+b=c,d.e@f_g-h");
    }

    #[test]
    fn unquoted_commas_in_user_names_are_repaired_when_the_arn_confirms_them() {
        let row = "x,y,,z,arn:aws:iam::012345678901:user/x,y,,z,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";
        let users = parse_credential_report(&report(&[row])).unwrap();
        assert_eq!(users[1].user_name, "x,y,,z");
        assert_eq!(users[1].arn, "arn:aws:iam::012345678901:user/x,y,,z");
        assert_eq!(users[1].keys.len(), 1);
    }

    #[test]
    fn a_row_with_an_unexplained_field_count_is_rejected_with_its_line() {
        let row = "x,arn:aws:iam::012345678901:user/x,extra,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";
        let err = parse_credential_report(&report(&[AWS_ROWS[1], row])).unwrap_err();
        assert!(matches!(err, ReportParseError::Malformed { line: 4, .. }), "{err:?}");
        let short = "x,arn:aws:iam::012345678901:user/x,2020";
        assert!(matches!(parse_credential_report(&report(&[short])), Err(ReportParseError::Malformed { line: 3, .. })));
    }

    #[test]
    fn bad_values_name_the_column_and_what_was_expected() {
        let bad_bool = AWS_ROWS[2].replacen(",true,2026", ",yes,2026", 1);
        let err = parse_credential_report(&report(&[&bad_bool])).unwrap_err();
        assert_eq!(err.to_string(), "credential report line 3: access_key_1_active is \"yes\"; expected true or false");
        let bad_date = AWS_ROWS[2].replacen("2026-01-01T00:00:00+00:00", "01/01/2026", 1);
        let err = parse_credential_report(&report(&[&bad_date])).unwrap_err();
        assert!(err.to_string().contains("access_key_1_last_rotated is \"01/01/2026\""), "{err}");
        let active_without_date = AWS_ROWS[2].replacen("2026-01-01T00:00:00+00:00", "N/A", 1);
        let err = parse_credential_report(&report(&[&active_without_date])).unwrap_err();
        assert!(err.to_string().contains("active but access_key_1_last_rotated has no date"), "{err}");
    }

    #[test]
    fn missing_columns_and_empty_reports_are_errors() {
        assert_eq!(parse_credential_report(b""), Err(ReportParseError::Empty));
        assert_eq!(parse_credential_report(b"\n"), Err(ReportParseError::Empty));
        assert_eq!(
            parse_credential_report(b"user,arn\nx,y\n"),
            Err(ReportParseError::MissingColumn { column: "access_key_1_active" })
        );
        assert!(matches!(
            parse_credential_report(b"\xff\xfe,\n"),
            Err(ReportParseError::MissingColumn { .. } | ReportParseError::Malformed { .. })
        ));
    }

    #[test]
    fn blank_lines_are_skipped_and_a_root_row_alone_is_an_account_without_users() {
        assert_eq!(parse_credential_report(&report(&[])).unwrap().len(), 1);
        assert_eq!(parse_credential_report(&report(&["", AWS_ROWS[1]])).unwrap().len(), 2);
    }

    #[test]
    fn a_report_without_the_root_row_is_malformed_not_clean() {
        let header_only = format!("{HEADER}\n");
        assert_eq!(parse_credential_report(header_only.as_bytes()), Err(ReportParseError::NoRootRow));
        let users_only = format!("{HEADER}\n{}\n", AWS_ROWS[2]);
        assert_eq!(parse_credential_report(users_only.as_bytes()), Err(ReportParseError::NoRootRow));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// One key slot as a report can hold it: absent, or (active, last rotated, last used) in whole seconds.
        type SlotSpec = Option<(bool, i64, Option<i64>)>;

        fn time(secs: i64) -> String {
            Timestamp::from_second(secs).unwrap().strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
        }

        fn slot_fields(slot: &SlotSpec) -> [String; 5] {
            match slot {
                None => ["false".into(), "N/A".into(), "N/A".into(), "N/A".into(), "N/A".into()],
                Some((active, rotated, used)) => [
                    active.to_string(),
                    time(*rotated),
                    used.map_or_else(|| "N/A".into(), time),
                    used.map_or_else(|| "N/A".into(), |_| "us-east-1".into()),
                    used.map_or_else(|| "N/A".into(), |_| "iam".into()),
                ],
            }
        }

        /// A report in AWS's shape (22 columns, RFC 4180 quoting), the root row first.
        fn write_report(users: &[(String, [SlotSpec; 2])]) -> Vec<u8> {
            let mut w = ::csv::Writer::from_writer(Vec::new());
            w.write_record(HEADER.split(',')).unwrap();
            let root = ("<root_account>".to_owned(), [None, None]);
            for (i, (name, slots)) in std::iter::once(&root).chain(users).enumerate() {
                let arn = if i == 0 {
                    "arn:aws:iam::012345678901:root".to_owned()
                } else {
                    format!("arn:aws:iam::012345678901:user/{name}")
                };
                let mut row = vec![name.clone(), arn, time(1_500_000_000)];
                row.extend(["false", "N/A", "N/A", "N/A", "false"].map(str::to_owned));
                row.extend(slot_fields(&slots[0]));
                row.extend(slot_fields(&slots[1]));
                row.extend(["false", "N/A", "false", "N/A"].map(str::to_owned));
                w.write_record(&row).unwrap();
            }
            w.into_inner().unwrap()
        }

        fn slot() -> impl Strategy<Value = SlotSpec> {
            proptest::option::of((any::<bool>(), 0..4_000_000_000i64, proptest::option::of(0..4_000_000_000i64)))
        }

        proptest! {
            #[test]
            fn any_bytes_parse_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let _ = parse_credential_report(&bytes);
            }

            #[test]
            fn any_header_prefix_with_any_rows_parses_or_fails_without_panicking(
                rows in proptest::collection::vec("[ -~]{0,120}", 0..6)
            ) {
                let text = format!("{HEADER}\n{ROOT}\n{}\n", rows.join("\n"));
                let _ = parse_credential_report(text.as_bytes());
            }

            #[test]
            fn a_report_in_awss_shape_round_trips(
                users in proptest::collection::vec(("[A-Za-z0-9+=,.@_-]{1,64}", [slot(), slot()]), 0..8)
            ) {
                let parsed = parse_credential_report(&write_report(&users)).unwrap();
                prop_assert_eq!(parsed.len(), users.len() + 1);
                prop_assert!(parsed[0].is_root());
                for ((name, slots), user) in users.iter().zip(&parsed[1..]) {
                    prop_assert_eq!(&user.user_name, name);
                    prop_assert_eq!(&user.arn, &format!("arn:aws:iam::012345678901:user/{name}"));
                    let want: Vec<(KeySlot, KeyStatus, i64, Option<i64>)> = slots
                        .iter()
                        .zip([KeySlot::One, KeySlot::Two])
                        .filter_map(|(s, n)| s.map(|(active, rotated, used)| {
                            (n, if active { KeyStatus::Active } else { KeyStatus::Inactive }, rotated, used)
                        }))
                        .collect();
                    let got: Vec<(KeySlot, KeyStatus, i64, Option<i64>)> = user
                        .keys
                        .iter()
                        .map(|k| (k.slot, k.status, k.last_rotated.as_second(), k.last_used_at.map(|t| t.as_second())))
                        .collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
