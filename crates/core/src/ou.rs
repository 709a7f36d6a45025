//! OU paths as keyaudit writes them: `/` followed by each OU's name, a `/` or `\` inside a name escaped with `\`
//! (`/Root/Prod/a\/b`).

/// Splits an OU path into OU names, undoing the escapes. The leading and a trailing `/` are optional; an empty
/// name or a `\` before anything but `/` or `\` is an error: the problem, in words.
pub fn split_ou_path(value: &str) -> Result<Vec<String>, &'static str> {
    let body = value.trim();
    let body = body.strip_prefix('/').unwrap_or(body);
    let (mut names, mut name) = (Vec::new(), String::new());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('/' | '\\')) => name.push(e),
                _ => return Err("a '\\' must be followed by '/' or '\\' (write a/b as a\\/b)"),
            },
            '/' => names.push(std::mem::take(&mut name)),
            c => name.push(c),
        }
    }
    // A trailing '/' leaves an empty last name behind: it is optional, so it is dropped.
    if !name.is_empty() || names.is_empty() {
        names.push(name);
    }
    if names.iter().any(String::is_empty) {
        return Err("an OU name in the path is empty");
    }
    Ok(names)
}
