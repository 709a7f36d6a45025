//! AWS errors, classified once for every adapter (IAM, STS, Organizations) from the error code the SDK reads
//! out of the response (`ProvideErrorMetadata::code`), and error text without the SDK's `Debug` dumps.

/// What an AWS error code means to keyaudit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The caller lacks a permission (or a trust policy, SCP or external id refused it).
    AccessDenied,
    /// AWS throttled the call (keyaudit waits it out at the wire before the SDK sees it).
    Throttled,
    /// The credential report is not ready (yet or any more), or no generation could be started.
    ReportNotReady,
    /// The account is not in an organization.
    NotInOrganization,
    /// The thing asked about does not exist (an IAM user, a secret).
    NotFound,
    /// Anything else.
    Other,
}

/// Classifies an AWS error code; `None` (a transport failure, no response) is [`ErrorClass::Other`].
pub fn classify(code: Option<&str>) -> ErrorClass {
    match code {
        Some(c) if c.starts_with("AccessDenied") || c == "UnauthorizedOperation" => ErrorClass::AccessDenied,
        Some("Throttling" | "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded") => {
            ErrorClass::Throttled
        }
        Some("LimitExceeded" | "ReportInProgress" | "ReportNotPresent" | "ReportExpired") => ErrorClass::ReportNotReady,
        Some("AWSOrganizationsNotInUseException") => ErrorClass::NotInOrganization,
        Some("NoSuchEntity" | "ResourceNotFoundException") => ErrorClass::NotFound,
        _ => ErrorClass::Other,
    }
}

/// The response header in which keyaudit's wire limiter says how many times it re-sent a throttled request before
/// this answer (absent: never). Callers that count an operation's attempts add it to the SDK's.
pub const RESENT_HEADER: &str = "x-keyaudit-resent";

/// The error code of an AWS error response body: `__type` of the JSON protocols (after its `#` namespace, if any),
/// or the first `<Code>` of the query (XML) protocols. Read where the SDK is not involved (the wire limiter, which
/// waits out throttling before the SDK sees it).
pub fn code_in_body(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    if let Some(start) = text.find("<Code>") {
        let rest = &text[start + "<Code>".len()..];
        return rest.find("</Code>").map(|end| rest[..end].trim());
    }
    let at = text.find("\"__type\"")?;
    let rest = text[at + "\"__type\"".len()..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let value = &rest[..rest.find('"')?];
    Some(value.rsplit('#').next().unwrap_or(value))
}

/// An error and its sources as `message: cause: cause`, each text once (SDK errors often repeat their source
/// in their own message), from `Display` only: never a `Debug` structure, never a credential.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_json_and_xml_error_bodies() {
        let cases: [(&str, Option<&str>); 6] = [
            (r#"{"__type":"TooManyRequestsException","Message":"slow down"}"#, Some("TooManyRequestsException")),
            (
                r#"{"Message": "x", "__type" : "com.amazonaws.organizations#TooManyRequestsException"}"#,
                Some("TooManyRequestsException"),
            ),
            (
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
                Some("Throttling"),
            ),
            (
                "<Response><Errors><Error><Code> RequestLimitExceeded </Code></Error></Errors></Response>",
                Some("RequestLimitExceeded"),
            ),
            ("not an error body", None),
            (r#"{"__type": 5}"#, None),
        ];
        for (body, code) in cases {
            assert_eq!(code_in_body(body.as_bytes()), code, "{body}");
        }
    }

    #[test]
    fn codes_are_classified_in_one_place() {
        let cases = [
            ("AccessDenied", ErrorClass::AccessDenied),
            ("AccessDeniedException", ErrorClass::AccessDenied),
            ("UnauthorizedOperation", ErrorClass::AccessDenied),
            ("Throttling", ErrorClass::Throttled),
            ("TooManyRequestsException", ErrorClass::Throttled),
            ("ReportInProgress", ErrorClass::ReportNotReady),
            ("LimitExceeded", ErrorClass::ReportNotReady),
            ("AWSOrganizationsNotInUseException", ErrorClass::NotInOrganization),
            ("NoSuchEntity", ErrorClass::NotFound),
            ("ResourceNotFoundException", ErrorClass::NotFound),
            ("InvalidClientTokenId", ErrorClass::Other),
        ];
        for (code, class) in cases {
            assert_eq!(classify(Some(code)), class, "{code}");
        }
        assert_eq!(classify(None), ErrorClass::Other);
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn errors_read_as_their_display_chain_each_text_once() {
        let refused = Layer("Connection refused (os error 111)", None);
        let io = Layer("io error: Connection refused (os error 111)", Some(Box::new(refused)));
        let top = Layer("dispatch failure", Some(Box::new(io)));
        assert_eq!(describe(&top), "dispatch failure: io error: Connection refused (os error 111)");
    }
}
