//! TOML files' errors in the user's terms (the settings file, the exceptions file): `line N: what`, and for an
//! unknown key the known key it most likely meant, instead of toml's list of every key.

/// The line (1-based) of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// `err` as `line N: …`; an unknown key says which known key is closest (`max_age_days` → `max-age-days`).
pub fn describe(text: &str, err: &toml::de::Error) -> String {
    let line = err.span().map_or(String::new(), |s| format!("line {}: ", line_of(text, s.start)));
    let message = err.message().trim_end();
    match unknown_key(message) {
        Some((key, known)) => {
            let hint = match closest(&key, &known) {
                Some(best) => format!("did you mean `{best}`?"),
                None => {
                    format!("expected one of {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
                }
            };
            format!("{line}unknown key `{key}`: {hint}")
        }
        None => format!("{line}{message}"),
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"): the key and the known ones.
fn unknown_key(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected")?.1;
    let known = expected.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    Some((key.to_owned(), known))
}

/// The known key `key` most likely meant: the same but for case and `_` / `-`, else the only one it begins, else one
/// within a small edit distance (a typo).
fn closest<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    let fold = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    if let Some(same) = known.iter().find(|k| fold(k) == fold(key)) {
        return Some(same);
    }
    if let [only] = known.iter().filter(|k| fold(k).starts_with(&fold(key))).collect::<Vec<_>>()[..] {
        return Some(only);
    }
    let limit = if key.len() > 10 { 3 } else { 2 };
    known
        .iter()
        .map(|k| (edit_distance(&fold(key), &fold(k)), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    #[allow(dead_code)]
    struct Example {
        max_age_days: Option<u32>,
        role_name: Option<String>,
        output: Option<String>,
    }

    fn error_of(text: &str) -> String {
        describe(text, &toml::from_str::<Example>(text).unwrap_err())
    }

    #[test]
    fn an_unknown_key_names_its_line_and_the_key_it_most_likely_meant() {
        assert_eq!(
            error_of("\nmax_age_days = 90\n"),
            "line 2: unknown key `max_age_days`: did you mean `max-age-days`?"
        );
        assert_eq!(error_of("role-nme = \"x\""), "line 1: unknown key `role-nme`: did you mean `role-name`?");
        assert_eq!(error_of("max-age = 1"), "line 1: unknown key `max-age`: did you mean `max-age-days`?");
        assert_eq!(
            error_of("colour = 1"),
            "line 1: unknown key `colour`: expected one of `max-age-days`, `role-name`, `output`"
        );
        assert_eq!(error_of("max-age-days = \"x\""), "line 1: invalid type: string \"x\", expected u32");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
