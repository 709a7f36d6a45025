//! Remediation's IAM side: the write operations, and each change carried out only after a re-check of the key
//! right before it (still there, in the expected state, not used since the plan).

use aws_sdk_iam::types::StatusType;
use jiff::Timestamp;
use keyaudit_core::ids::AccessKeyId;
use keyaudit_core::inventory::KeyStatus;
use keyaudit_core::remediation::{ChangeKind, KeyRef, used_after};

use crate::iam::{CollectError, IamApi, SdkIam, classify};

/// The IAM operations remediation adds to the read-only ones.
pub trait KeyAdmin: IamApi {
    /// `iam:GetAccessKeyLastUsed`: the last use, `None` when AWS recorded none.
    fn access_key_last_used(
        &self,
        key: &AccessKeyId,
    ) -> impl Future<Output = Result<Option<Timestamp>, CollectError>> + Send;
    /// `iam:UpdateAccessKey`.
    fn update_access_key(
        &self,
        user_name: &str,
        key: &AccessKeyId,
        status: KeyStatus,
    ) -> impl Future<Output = Result<(), CollectError>> + Send;
    /// `iam:DeleteAccessKey`.
    fn delete_access_key(
        &self,
        user_name: &str,
        key: &AccessKeyId,
    ) -> impl Future<Output = Result<(), CollectError>> + Send;
}

impl KeyAdmin for SdkIam {
    async fn access_key_last_used(&self, key: &AccessKeyId) -> Result<Option<Timestamp>, CollectError> {
        const ACTION: &str = "iam:GetAccessKeyLastUsed";
        self.before_call();
        let out = self
            .client()
            .get_access_key_last_used()
            .access_key_id(key.as_str())
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(out.access_key_last_used().and_then(|u| u.last_used_date()).and_then(crate::iam::timestamp))
    }

    async fn update_access_key(
        &self,
        user_name: &str,
        key: &AccessKeyId,
        status: KeyStatus,
    ) -> Result<(), CollectError> {
        const ACTION: &str = "iam:UpdateAccessKey";
        self.before_call();
        let status = match status {
            KeyStatus::Active => StatusType::Active,
            KeyStatus::Inactive => StatusType::Inactive,
        };
        self.client()
            .update_access_key()
            .user_name(user_name)
            .access_key_id(key.as_str())
            .status(status)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(())
    }

    async fn delete_access_key(&self, user_name: &str, key: &AccessKeyId) -> Result<(), CollectError> {
        const ACTION: &str = "iam:DeleteAccessKey";
        self.before_call();
        self.client()
            .delete_access_key()
            .user_name(user_name)
            .access_key_id(key.as_str())
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(())
    }
}

/// `t` to the whole second, as the credential report gives times (and as last uses are compared).
fn seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// A change to carry out: a plan's (deactivate, delete) or an undo's (re-activate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A plan's change.
    Plan(ChangeKind),
    /// `keyaudit undo`: back to active.
    Reactivate,
}

/// What happened to one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (the key was in the expected state, and the change was made).
    Done {
        /// The key's last use just before the change.
        last_used_at: Option<Timestamp>,
    },
    /// The re-check found the key otherwise: nothing was changed.
    Skipped {
        /// What the re-check found.
        reason: String,
        /// The key is already as the change would leave it (deactivated, deleted, re-activated): a change made
        /// by an earlier run that stopped before it could record it.
        already_done: bool,
    },
}

/// Re-reads the key (ListAccessKeys, GetAccessKeyLastUsed) and makes the change only if it is still there, in the
/// state the change expects, and not used after `expect_last_used_at`.
pub async fn carry_out<A: KeyAdmin>(
    api: &A,
    op: Operation,
    key: &KeyRef,
    expect_last_used_at: Option<Timestamp>,
) -> Result<Outcome, CollectError> {
    let listed = api.list_access_keys(&key.user.user_name).await?;
    let Some(current) = listed.iter().find(|k| k.access_key_id == key.access_key_id) else {
        let already_done = op == Operation::Plan(ChangeKind::Delete);
        return Ok(Outcome::Skipped { reason: "the key no longer exists".into(), already_done });
    };
    let wanted = match op {
        Operation::Plan(ChangeKind::Deactivate) => KeyStatus::Active,
        Operation::Plan(ChangeKind::Delete) | Operation::Reactivate => KeyStatus::Inactive,
    };
    if current.status != wanted {
        return Ok(Outcome::Skipped {
            reason: format!("the key is {} now, not {} as expected", current.status.as_str(), wanted.as_str()),
            already_done: op != Operation::Plan(ChangeKind::Delete),
        });
    }
    let last_used_at = api.access_key_last_used(&key.access_key_id).await?;
    if let Operation::Plan(kind) = op
        && let Some(used) = last_used_at
        && used_after(used, expect_last_used_at)
    {
        // A deactivation's expected last use comes from the credential report the plan was made from; a deletion's
        // from the plan's own re-check of the key.
        let source = match kind {
            ChangeKind::Deactivate => "the credential report the plan was made from",
            ChangeKind::Delete => "the plan's re-check of the key",
        };
        let then =
            expect_last_used_at.map_or_else(|| "no use".to_owned(), |t| format!("its last use as {}", seconds(t)));
        return Ok(Outcome::Skipped {
            reason: format!("the key was used on {}, after {source}, which showed {then}", seconds(used)),
            already_done: false,
        });
    }
    match op {
        Operation::Plan(ChangeKind::Deactivate) => {
            api.update_access_key(&key.user.user_name, &key.access_key_id, KeyStatus::Inactive).await?;
        }
        Operation::Plan(ChangeKind::Delete) => api.delete_access_key(&key.user.user_name, &key.access_key_id).await?,
        Operation::Reactivate => {
            api.update_access_key(&key.user.user_name, &key.access_key_id, KeyStatus::Active).await?;
        }
    }
    Ok(Outcome::Done { last_used_at })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use keyaudit_core::ids::AccountId;
    use keyaudit_core::inventory::ListedKey;
    use keyaudit_core::remediation::UserRef;

    use super::*;
    use crate::iam::{RawReport, ReportState};

    /// One user's keys, and every write made.
    struct FakeAdmin {
        keys: Mutex<Vec<ListedKey>>,
        last_used: Option<Timestamp>,
        writes: Mutex<Vec<String>>,
    }

    impl IamApi for FakeAdmin {
        async fn generate_credential_report(&self) -> Result<ReportState, CollectError> {
            unreachable!()
        }
        async fn get_credential_report(&self) -> Result<RawReport, CollectError> {
            unreachable!()
        }
        async fn list_access_keys(&self, _: &str) -> Result<Vec<ListedKey>, CollectError> {
            Ok(self.keys.lock().unwrap().clone())
        }
        async fn list_user_tags(&self, _: &str) -> Result<Vec<(String, String)>, CollectError> {
            unreachable!()
        }
        fn api_calls(&self) -> u32 {
            0
        }
    }

    impl KeyAdmin for FakeAdmin {
        async fn access_key_last_used(&self, _: &AccessKeyId) -> Result<Option<Timestamp>, CollectError> {
            Ok(self.last_used)
        }
        async fn update_access_key(&self, _: &str, key: &AccessKeyId, status: KeyStatus) -> Result<(), CollectError> {
            self.writes.lock().unwrap().push(format!("{key} {}", status.as_str()));
            Ok(())
        }
        async fn delete_access_key(&self, _: &str, key: &AccessKeyId) -> Result<(), CollectError> {
            self.writes.lock().unwrap().push(format!("{key} deleted"));
            Ok(())
        }
    }

    const ID: &str = "AKIA0000000000000001";

    fn admin(status: Option<KeyStatus>, last_used: Option<&str>) -> FakeAdmin {
        FakeAdmin {
            keys: Mutex::new(
                status
                    .map(|status| ListedKey {
                        access_key_id: AccessKeyId::parse(ID).unwrap(),
                        status,
                        created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
                    })
                    .into_iter()
                    .collect(),
            ),
            last_used: last_used.map(|t| t.parse().unwrap()),
            writes: Mutex::new(Vec::new()),
        }
    }

    fn key() -> KeyRef {
        KeyRef {
            user: UserRef {
                account_id: AccountId::parse("000000000002").unwrap(),
                account_name: None,
                ou_path: None,
                user_name: "u".into(),
                user_arn: "arn:aws:iam::000000000002:user/u".into(),
            },
            access_key_id: AccessKeyId::parse(ID).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_change_is_made_only_when_the_re_check_finds_the_key_as_planned() {
        use KeyStatus::{Active, Inactive};
        let deactivate = Operation::Plan(ChangeKind::Deactivate);
        let delete = Operation::Plan(ChangeKind::Delete);
        let then = Some("2026-06-01T00:00:00Z");
        let cases = [
            (deactivate, Some(Active), then, then, Some("AKIA0000000000000001 inactive")),
            (deactivate, Some(Active), None, None, Some("AKIA0000000000000001 inactive")),
            (deactivate, None, then, then, None),
            (deactivate, Some(Inactive), then, then, None),
            (deactivate, Some(Active), Some("2026-11-29T00:00:00Z"), then, None),
            (deactivate, Some(Active), Some("2026-11-29T00:00:00Z"), None, None),
            // GetAccessKeyLastUsed answers in fractions of a second, the credential report in whole seconds: the
            // same instant read from both is not a later use, one second more is.
            (
                deactivate,
                Some(Active),
                Some("2026-06-01T00:00:00.747603Z"),
                then,
                Some("AKIA0000000000000001 inactive"),
            ),
            (deactivate, Some(Active), Some("2026-06-01T00:00:01.000001Z"), then, None),
            (delete, Some(Inactive), Some("2026-06-01T00:00:00.5Z"), then, Some("AKIA0000000000000001 deleted")),
            (delete, Some(Inactive), then, then, Some("AKIA0000000000000001 deleted")),
            (delete, Some(Active), then, then, None),
            (
                Operation::Reactivate,
                Some(Inactive),
                Some("2026-11-29T00:00:00Z"),
                None,
                Some("AKIA0000000000000001 active"),
            ),
            (Operation::Reactivate, Some(Active), then, then, None),
        ];
        for (i, (op, status, used, expected_used, write)) in cases.into_iter().enumerate() {
            let api = admin(status, used);
            let outcome = carry_out(&api, op, &key(), expected_used.map(|t| t.parse().unwrap())).await.unwrap();
            let writes = api.writes.lock().unwrap().clone();
            match write {
                Some(w) => {
                    assert!(matches!(outcome, Outcome::Done { .. }), "case {i}: {outcome:?}");
                    assert_eq!(writes, [w], "case {i}");
                }
                None => {
                    assert!(matches!(outcome, Outcome::Skipped { .. }), "case {i}: {outcome:?}");
                    assert!(writes.is_empty(), "case {i}: nothing is changed when the re-check fails");
                }
            }
        }
        let api = admin(Some(Active), Some("2026-06-01T00:00:01.25Z"));
        let outcome = carry_out(&api, deactivate, &key(), then.map(|t| t.parse().unwrap())).await.unwrap();
        let Outcome::Skipped { reason, already_done: false } = outcome else { panic!("{outcome:?}") };
        assert_eq!(
            reason,
            "the key was used on 2026-06-01T00:00:01Z, after the credential report the plan was made from, which \
             showed its last use as 2026-06-01T00:00:00Z"
        );
    }
}
