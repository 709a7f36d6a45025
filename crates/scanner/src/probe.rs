//! Permission probes for `keyaudit preflight`: each IAM action a scan needs, tried in a way that changes nothing
//! and reads no user data, so that an answer other than AccessDenied proves the permission.

use crate::iam::{CollectError, IamApi};

/// A user name no account is expected to have. Asking for its keys or tags answers NoSuchEntity when the action is
/// allowed, AccessDenied when it is not (the resource `arn:…:user/<name>` matches the audit role's `user/*`).
pub const PROBE_USER: &str = "keyaudit-preflight-probe-no-such-user";

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// AWS answered in a way only an allowed caller gets; the evidence says how.
    Allowed(String),
    /// AccessDenied (or another authorization error): the permission is missing.
    Denied(String),
    /// Not tried, and why.
    Unverified(&'static str),
    /// Something else went wrong (throttling, network): the permission is unknown.
    Error(String),
}

/// One action's probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// e.g. `iam:ListAccessKeys`.
    pub action: &'static str,
    /// What the probe found.
    pub outcome: ProbeOutcome,
}

/// Which answer, besides success, only an allowed caller gets.
#[derive(Debug, Clone, Copy)]
enum Proof {
    /// GetCredentialReport: ReportNotPresent, ReportExpired or ReportInProgress.
    ReportNotReady,
    /// A call about [`PROBE_USER`]: NoSuchEntity.
    NoSuchUser,
}

fn judge<T>(result: Result<T, CollectError>, proof: Proof) -> ProbeOutcome {
    match (result, proof) {
        (Ok(_), Proof::ReportNotReady) => ProbeOutcome::Allowed("a credential report was returned".to_owned()),
        (Ok(_), Proof::NoSuchUser) => ProbeOutcome::Allowed("listed".to_owned()),
        (Err(CollectError::AccessDenied { code, message, .. }), _) => {
            ProbeOutcome::Denied(format!("{code}: {message}"))
        }
        (Err(CollectError::ReportNotReady { code, .. }), Proof::ReportNotReady) => {
            ProbeOutcome::Allowed(format!("answered {code}, which only an allowed caller gets"))
        }
        (Err(CollectError::Api { code: Some(code), .. }), Proof::NoSuchUser) if code == "NoSuchEntity" => {
            ProbeOutcome::Allowed(format!("answered {code} for a user that does not exist"))
        }
        (Err(other), _) => ProbeOutcome::Error(other.to_string()),
    }
}

/// Probes the actions a scan makes in one account. Nothing is generated or changed: GenerateCredentialReport
/// is not called (it would start a report) and is reported unverified; ListUserTags only when `owner_tags` (a scan
/// with `--owner-tags ""` does not need it).
pub async fn probe_permissions(api: &impl IamApi, owner_tags: bool) -> Vec<Probe> {
    let tags = async {
        if owner_tags {
            judge(api.list_user_tags(PROBE_USER).await, Proof::NoSuchUser)
        } else {
            ProbeOutcome::Unverified("not needed: --owner-tags is empty")
        }
    };
    // The three at once: they are independent, and the account's rate limit still applies.
    let (report, keys, tags) = futures::join!(
        async { judge(api.get_credential_report().await, Proof::ReportNotReady) },
        async { judge(api.list_access_keys(PROBE_USER).await, Proof::NoSuchUser) },
        tags
    );
    vec![
        Probe { action: "iam:GetCredentialReport", outcome: report },
        Probe {
            action: "iam:GenerateCredentialReport",
            outcome: ProbeOutcome::Unverified("not called: it would start a credential report"),
        },
        Probe { action: "iam:ListAccessKeys", outcome: keys },
        Probe { action: "iam:ListUserTags", outcome: tags },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(action: &'static str) -> CollectError {
        CollectError::AccessDenied { action, code: "AccessDenied".into(), message: "not authorized".into() }
    }

    fn kind(o: &ProbeOutcome) -> &'static str {
        match o {
            ProbeOutcome::Allowed(_) => "allowed",
            ProbeOutcome::Denied(_) => "denied",
            ProbeOutcome::Unverified(_) => "unverified",
            ProbeOutcome::Error(_) => "error",
        }
    }

    #[test]
    fn only_accessdenied_disproves_and_only_the_expected_answers_prove() {
        let no_such = |action| CollectError::Api { action, code: Some("NoSuchEntity".into()), message: "x".into() };
        let not_present = CollectError::ReportNotReady {
            action: "iam:GetCredentialReport",
            code: "ReportNotPresent".into(),
            message: "x".into(),
        };
        let throttled = CollectError::Throttled { action: "iam:ListAccessKeys", code: "Throttling".into() };
        let cases: Vec<(Result<(), CollectError>, Proof, &str)> = vec![
            (Ok(()), Proof::NoSuchUser, "allowed"),
            (Err(no_such("iam:ListAccessKeys")), Proof::NoSuchUser, "allowed"),
            (Err(denied("iam:ListAccessKeys")), Proof::NoSuchUser, "denied"),
            (Err(not_present), Proof::ReportNotReady, "allowed"),
            (Err(throttled), Proof::NoSuchUser, "error"),
            (Err(no_such("iam:GetCredentialReport")), Proof::ReportNotReady, "error"),
        ];
        for (result, proof, want) in cases {
            let shown = format!("{result:?} {proof:?}");
            assert_eq!(kind(&judge(result, proof)), want, "{shown}");
        }
    }
}
