//! Remediation's AWS side: the write operations, and each change carried out only after a re-check of the key
//! right before it (still there, in the expected state, not used since the plan); a rotation's start creates the
//! second key and hands its secret over through Secrets Manager (`SecretStore`), and nowhere else.

use aws_sdk_iam::types::StatusType;
use jiff::Timestamp;
use keyaudit_core::ids::AccessKeyId;
use keyaudit_core::inventory::KeyStatus;
use keyaudit_core::remediation::rotation::{is_sealed, secret_policy};
use keyaudit_core::remediation::{ChangeKind, KeyRef, OtherKey, UserRef, rotation_secret_name, used_after};

use crate::iam::{CollectError, IamApi, SdkIam, classify};

/// A new key's secret access key. It is never shown: no `Display`, a redacted `Debug`; it goes from
/// `CreateAccessKey`'s answer into the secret's value and is dropped.
pub struct SecretKey(String);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(redacted)")
    }
}

impl SecretKey {
    /// Wraps a secret access key.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }
}

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
    /// `iam:CreateAccessKey`: the new key's id and secret.
    fn create_access_key(
        &self,
        user_name: &str,
    ) -> impl Future<Output = Result<(AccessKeyId, SecretKey), CollectError>> + Send;
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

    async fn create_access_key(&self, user_name: &str) -> Result<(AccessKeyId, SecretKey), CollectError> {
        const ACTION: &str = "iam:CreateAccessKey";
        self.before_call();
        let out =
            self.client().create_access_key().user_name(user_name).send().await.map_err(|e| classify(ACTION, e))?;
        let key = out.access_key().ok_or_else(|| CollectError::Api {
            action: ACTION,
            code: None,
            message: "the answer holds no key".into(),
        })?;
        let id = AccessKeyId::parse(key.access_key_id()).map_err(|e| CollectError::Api {
            action: ACTION,
            code: None,
            message: format!("the new key's id: {e}"),
        })?;
        Ok((id, SecretKey(key.secret_access_key().to_owned())))
    }
}

/// A secret in Secrets Manager, as `DescribeSecret` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretState {
    /// Its ARN.
    pub arn: String,
    /// Whether it holds a value (a version).
    pub has_value: bool,
    /// Whether its deletion is scheduled.
    pub deleting: bool,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// A secret to create, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecret {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The KMS key to encrypt it with (`None`: the account's `aws/secretsmanager` key).
    pub kms_key_id: Option<String>,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// Secrets Manager in one account (and region): where a rotation's new key is handed over.
pub trait SecretStore: Send + Sync {
    /// `secretsmanager:CreateSecret`, without a value: its ARN.
    fn create_secret(&self, secret: &NewSecret) -> impl Future<Output = Result<String, CollectError>> + Send;
    /// `secretsmanager:PutResourcePolicy` (public policies blocked).
    fn put_resource_policy(&self, arn: &str, policy: &str) -> impl Future<Output = Result<(), CollectError>> + Send;
    /// `secretsmanager:PutSecretValue`.
    fn put_secret_value(&self, arn: &str, value: &SecretValue)
    -> impl Future<Output = Result<(), CollectError>> + Send;
    /// `secretsmanager:GetResourcePolicy`: the secret's policy, `None` when it has none.
    fn get_resource_policy(&self, arn: &str) -> impl Future<Output = Result<Option<String>, CollectError>> + Send;
    /// `secretsmanager:DescribeSecret`: `None` when there is no such secret.
    fn describe_secret(&self, id: &str) -> impl Future<Output = Result<Option<SecretState>, CollectError>> + Send;
    /// `kms:CreateGrant` on the customer managed key `kms_key_id`: `user_arn` may `Decrypt` with it, only the
    /// secret `secret_arn`'s values (encryption context `SecretARN`, which Secrets Manager always sets), as the
    /// user's reads through Secrets Manager need.
    fn grant_decrypt(
        &self,
        kms_key_id: &str,
        user_arn: &str,
        secret_arn: &str,
        grant_name: &str,
    ) -> impl Future<Output = Result<(), CollectError>> + Send;
    /// `secretsmanager:DeleteSecret`: scheduled after `recovery_days`, or at once (`None`: a secret that never
    /// held a value).
    fn delete_secret(
        &self,
        arn: &str,
        recovery_days: Option<i64>,
    ) -> impl Future<Output = Result<(), CollectError>> + Send;
}

/// A rotation secret's value: the new key as JSON (`{"UserName", "AccessKeyId", "SecretAccessKey"}`). Like
/// [`SecretKey`], never shown.
pub struct SecretValue(String);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(redacted)")
    }
}

impl SecretValue {
    /// The value for `user`'s new key `id` with `secret`. IAM user names, key ids and secret access keys hold no
    /// character JSON would need to escape.
    fn of(user_name: &str, id: &AccessKeyId, secret: SecretKey) -> Self {
        Self(format!(r#"{{"UserName":"{user_name}","AccessKeyId":"{id}","SecretAccessKey":"{}"}}"#, secret.0))
    }
}

/// [`SecretStore`] over the AWS SDK, in one account (Secrets Manager, and KMS for the grants of secrets encrypted
/// with a customer managed key).
pub struct SdkSecrets {
    client: aws_sdk_secretsmanager::Client,
    kms: aws_sdk_kms::Client,
}

impl SdkSecrets {
    /// Clients from `config` (the account's credentials and region).
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_secretsmanager::Client::new(config), kms: aws_sdk_kms::Client::new(config) }
    }
}

impl SecretStore for SdkSecrets {
    async fn create_secret(&self, secret: &NewSecret) -> Result<String, CollectError> {
        const ACTION: &str = "secretsmanager:CreateSecret";
        let tags = secret
            .tags
            .iter()
            .map(|(k, v)| aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build())
            .collect();
        let out = self
            .client
            .create_secret()
            .name(&secret.name)
            .description(&secret.description)
            .set_kms_key_id(secret.kms_key_id.clone())
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        out.arn().map(str::to_owned).ok_or_else(|| CollectError::Api {
            action: ACTION,
            code: None,
            message: "the answer holds no ARN".into(),
        })
    }

    async fn put_resource_policy(&self, arn: &str, policy: &str) -> Result<(), CollectError> {
        const ACTION: &str = "secretsmanager:PutResourcePolicy";
        self.client
            .put_resource_policy()
            .secret_id(arn)
            .resource_policy(policy)
            .block_public_policy(true)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(())
    }

    async fn put_secret_value(&self, arn: &str, value: &SecretValue) -> Result<(), CollectError> {
        const ACTION: &str = "secretsmanager:PutSecretValue";
        self.client
            .put_secret_value()
            .secret_id(arn)
            .secret_string(&value.0)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(())
    }

    async fn get_resource_policy(&self, arn: &str) -> Result<Option<String>, CollectError> {
        const ACTION: &str = "secretsmanager:GetResourcePolicy";
        let out = self.client.get_resource_policy().secret_id(arn).send().await.map_err(|e| classify(ACTION, e))?;
        Ok(out.resource_policy().map(str::to_owned))
    }

    async fn describe_secret(&self, id: &str) -> Result<Option<SecretState>, CollectError> {
        const ACTION: &str = "secretsmanager:DescribeSecret";
        match self.client.describe_secret().secret_id(id).send().await {
            Ok(out) => Ok(Some(SecretState {
                arn: out.arn().unwrap_or(id).to_owned(),
                has_value: out.version_ids_to_stages().is_some_and(|v| !v.is_empty()),
                deleting: out.deleted_date().is_some(),
                tags: out
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
                    .collect(),
            })),
            Err(e) => {
                let e = classify(ACTION, e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn grant_decrypt(
        &self,
        kms_key_id: &str,
        user_arn: &str,
        secret_arn: &str,
        grant_name: &str,
    ) -> Result<(), CollectError> {
        const ACTION: &str = "kms:CreateGrant";
        let constraints =
            aws_sdk_kms::types::GrantConstraints::builder().encryption_context_subset("SecretARN", secret_arn).build();
        self.kms
            .create_grant()
            .key_id(kms_key_id)
            .grantee_principal(user_arn)
            .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
            .constraints(constraints)
            .name(grant_name)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(())
    }

    async fn delete_secret(&self, arn: &str, recovery_days: Option<i64>) -> Result<(), CollectError> {
        const ACTION: &str = "secretsmanager:DeleteSecret";
        let request = self.client.delete_secret().secret_id(arn);
        let request = match recovery_days {
            Some(days) => request.recovery_window_in_days(days),
            None => request.force_delete_without_recovery(true),
        };
        request.send().await.map_err(|e| classify(ACTION, e))?;
        Ok(())
    }
}

/// Days a deleted rotation secret can still be restored (Secrets Manager's longest, and its default).
pub const SECRET_RECOVERY_DAYS: i64 = 30;

/// `t` to the whole second, as the credential report gives times (and as last uses are compared).
fn seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// A change to carry out: a plan's (deactivate, delete; a key creation is [`start_rotation`]'s) or an undo's
/// (re-activate, deactivate a created key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A plan's change.
    Plan(ChangeKind),
    /// `keyaudit undo` of a deactivation: back to active.
    Reactivate,
    /// `keyaudit undo` of a key creation: the created key deactivated (only if it shows no use). Never deleted:
    /// AWS records a key's last use hours late, so a key an application switched to minutes ago looks unused; a
    /// later `plan --delete-deactivated-after` deletes it as any key keyaudit deactivated.
    DeactivateCreated,
}

/// What happened to one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (the key was in the expected state, and the change was made).
    Done {
        /// The key's last use just before the change.
        last_used_at: Option<Timestamp>,
    },
    /// The key, or its user, no longer exists: nothing to change, now or later.
    Gone(String),
    /// The re-check found the key otherwise: nothing was changed.
    Skipped {
        /// What the re-check found.
        reason: String,
        /// The key is already as the change would leave it (deleted, re-activated): a change made by an earlier
        /// run that stopped before it could record it. Never for a deactivation: a key found inactive may have
        /// been disabled by someone else (an incident team), and recording it as keyaudit's would let `undo`
        /// re-activate it.
        already_done: bool,
    },
}

/// Re-reads the key (ListAccessKeys, GetAccessKeyLastUsed) and makes the change only if it is still there, in the
/// state the change expects, and not used after `expect_last_used_at`; for a finished rotation (`other`), only if
/// the user's newer key is still there, active and used, as the plan found it.
pub async fn carry_out<A: KeyAdmin>(
    api: &A,
    op: Operation,
    key: &KeyRef,
    expect_last_used_at: Option<Timestamp>,
    other: Option<&OtherKey>,
) -> Result<Outcome, CollectError> {
    let listed = match api.list_access_keys(&key.user.user_name).await {
        Err(e) if e.is_not_found() => return Ok(Outcome::Gone("the user no longer exists".into())),
        other => other?,
    };
    let Some(current) = listed.iter().find(|k| k.access_key_id == key.access_key_id) else {
        if op == Operation::Plan(ChangeKind::Delete) {
            return Ok(Outcome::Skipped { reason: "the key no longer exists".into(), already_done: true });
        }
        return Ok(Outcome::Gone("the key no longer exists".into()));
    };
    let wanted = match op {
        Operation::Plan(ChangeKind::Deactivate | ChangeKind::CreateKey) | Operation::DeactivateCreated => {
            KeyStatus::Active
        }
        Operation::Plan(ChangeKind::Delete) | Operation::Reactivate => KeyStatus::Inactive,
    };
    if current.status != wanted {
        let reason = format!("the key is {} now, not {} as expected", current.status.as_str(), wanted.as_str());
        return Ok(match op {
            Operation::Plan(ChangeKind::Deactivate) | Operation::DeactivateCreated => skip(format!(
                "{reason} (deactivated by someone else, or by an earlier run that stopped before recording it): not \
                 recorded as keyaudit's, so `undo` will not re-activate it"
            )),
            _ => Outcome::Skipped { reason, already_done: op == Operation::Reactivate },
        });
    }
    if let Some(other) = other {
        let newer = &other.access_key_id;
        match listed.iter().find(|k| k.access_key_id == *newer) {
            None => {
                return Ok(skip(format!(
                    "the user's newer key {newer} no longer exists: applications may need this one"
                )));
            }
            Some(k) if k.status != KeyStatus::Active => {
                return Ok(skip(format!(
                    "the user's newer key {newer} is inactive now: applications may need this one"
                )));
            }
            Some(_) => {}
        }
        if api.access_key_last_used(newer).await?.is_none() {
            return Ok(skip(format!("the user's newer key {newer} shows no use any more")));
        }
    }
    let last_used_at = api.access_key_last_used(&key.access_key_id).await?;
    match (op, last_used_at) {
        (Operation::DeactivateCreated, Some(used)) => {
            return Ok(skip(format!(
                "the key keyaudit created was used on {}: applications depend on it; deactivate it by hand if that \
                 is what you want",
                seconds(used)
            )));
        }
        (Operation::Plan(kind), Some(used)) if used_after(used, expect_last_used_at) => {
            // A deactivation's expected last use comes from the credential report the plan was made from, or from
            // the plan's own look-up when it finishes a rotation; a deletion's from the plan's re-check of the key.
            let source = match kind {
                ChangeKind::Deactivate if other.is_some() => "the plan's look-up of its last use",
                ChangeKind::Deactivate => "the credential report the plan was made from",
                ChangeKind::Delete | ChangeKind::CreateKey => "the plan's re-check of the key",
            };
            let then =
                expect_last_used_at.map_or_else(|| "no use".to_owned(), |t| format!("its last use as {}", seconds(t)));
            return Ok(skip(format!("the key was used on {}, after {source}, which showed {then}", seconds(used))));
        }
        _ => {}
    }
    let user = &key.user.user_name;
    match op {
        Operation::Plan(ChangeKind::Deactivate) | Operation::DeactivateCreated => {
            api.update_access_key(user, &key.access_key_id, KeyStatus::Inactive).await?;
        }
        Operation::Plan(ChangeKind::Delete) => api.delete_access_key(user, &key.access_key_id).await?,
        Operation::Reactivate => api.update_access_key(user, &key.access_key_id, KeyStatus::Active).await?,
        Operation::Plan(ChangeKind::CreateKey) => {
            return Ok(skip("a key creation is carried out by start_rotation".into()));
        }
    }
    Ok(Outcome::Done { last_used_at })
}

fn skip(reason: String) -> Outcome {
    Outcome::Skipped { reason, already_done: false }
}

/// How a rotation's new key is handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The KMS key the secret is encrypted with (`None`: the account's `aws/secretsmanager` key); the user is
    /// granted `kms:Decrypt` with it for this secret.
    pub kms_key_id: Option<String>,
    /// The date applications must use the new key by (the secret's `keyaudit:switch-by` tag).
    pub switch_by: Timestamp,
    /// The plan's id (the secret's `keyaudit:plan-id` tag).
    pub plan_id: String,
}

/// A key keyaudit created, and where its secret is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The new key.
    pub access_key_id: AccessKeyId,
    /// The secret holding it.
    pub secret_arn: String,
}

/// What a rotation's start did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The key was created and its secret stored.
    Created(Created),
    /// An earlier run created the key and stored its secret, then stopped before recording it.
    Recovered(Created),
    /// The re-check found the user otherwise: nothing was changed.
    Skipped(String),
    /// The key, or its user, no longer exists.
    Gone(String),
}

/// A rotation's start that failed part-way, with what was undone.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Nothing was created, or what was created was removed again.
    #[error("{0}")]
    Failed(CollectError),
    /// The new key was created but its secret could not be stored; the key was deleted again (nobody has its
    /// secret), or could not be.
    #[error("{error}; {}", match cleanup {
        None => format!("the new key {key} was deleted again (its secret was never handed over)"),
        Some(e) => format!("deleting the new key {key} failed too ({e}): delete it by hand, nobody has its secret"),
    })]
    HandoverFailed {
        /// What failed.
        error: CollectError,
        /// The key that was created.
        key: AccessKeyId,
        /// Why it could not be deleted again, if it could not.
        cleanup: Option<CollectError>,
    },
}

/// Where an earlier run of the same `create_key` change stopped, as its journal says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// No earlier run started it.
    No,
    /// An earlier run started it and recorded no key it created (it stopped before `CreateAccessKey`, or before it
    /// could record the key that call created).
    Started,
    /// An earlier run created this key (its journal says so) and stopped before recording the hand-over.
    Created(AccessKeyId),
}

/// Starts `key`'s rotation: re-checks that its user still has exactly this one key, active, creates a second key,
/// calls `created` with its id (the journal records it before anything else happens), and hands its secret over in
/// the account's Secrets Manager: the secret created empty, a policy that lets nobody but the user read it, the
/// value, then the sealed policy that lets nobody but the user read or change it ([`secret_policy`]); tagged with
/// both key ids, the switch-by date and the plan. A failure part-way deletes what was created. `resume` says what
/// an earlier run of this change did: only the key that run recorded creating is ever deleted or taken over.
pub async fn start_rotation<A: KeyAdmin, S: SecretStore>(
    api: &A,
    store: &S,
    key: &KeyRef,
    handover: &Handover,
    resume: &Resume,
    created: impl FnOnce(&AccessKeyId) -> Result<(), String> + Send,
) -> Result<Started, StartError> {
    let user = &key.user;
    let failed = StartError::Failed;
    let listed = match api.list_access_keys(&user.user_name).await {
        Err(e) if e.is_not_found() => return Ok(Started::Gone("the user no longer exists".into())),
        other => other.map_err(failed)?,
    };
    let others: Vec<_> = listed.iter().filter(|k| k.access_key_id != key.access_key_id).collect();
    let Some(current) = listed.iter().find(|k| k.access_key_id == key.access_key_id) else {
        return Ok(Started::Gone("the key no longer exists".into()));
    };
    if current.status != KeyStatus::Active {
        return Ok(Started::Skipped(format!("the key is {} now, not active", current.status.as_str())));
    }
    match (&others[..], resume) {
        ([], _) => {}
        ([second], Resume::Created(mine)) if second.access_key_id == *mine => {
            // This change's earlier run created `second`: was its secret stored?
            let name = rotation_secret_name(&user.user_name, &second.access_key_id);
            let stored = store.describe_secret(&name).await.map_err(failed)?;
            if let Some(s) = stored.as_ref().filter(|s| s.has_value && !s.deleting) {
                seal(store, &s.arn, &user.user_arn).await.map_err(failed)?;
                return Ok(Started::Recovered(Created {
                    access_key_id: second.access_key_id.clone(),
                    secret_arn: s.arn.clone(),
                }));
            }
            // Its secret never reached the store: nobody has it. Remove the key (and the empty secret) and start over.
            if let Some(s) = stored {
                store.delete_secret(&s.arn, None).await.map_err(failed)?;
            }
            api.delete_access_key(&user.user_name, &second.access_key_id).await.map_err(failed)?;
        }
        ([second], Resume::Started | Resume::Created(_)) => {
            return Ok(Started::Skipped(format!(
                "the user has a second key ({}) that this change's journal does not record creating: keyaudit leaves \
                 it alone (if an interrupted run created it and stopped before recording it, nobody has its secret: \
                 delete it by hand)",
                second.access_key_id
            )));
        }
        _ => {
            return Ok(Started::Skipped(format!(
                "the user no longer has exactly one key ({} keys now): a rotation needs a free slot",
                listed.len()
            )));
        }
    }
    let (new, secret) = api.create_access_key(&user.user_name).await.map_err(failed)?;
    let name = rotation_secret_name(&user.user_name, &new);
    let mut arn = None;
    let stored = match created(&new) {
        Ok(()) => hand_over(store, user, key, &new, &name, secret, handover, &mut arn).await,
        Err(e) => Err(CollectError::Api { action: "the journal", code: None, message: e }),
    };
    match stored {
        Ok(secret_arn) => Ok(Started::Created(Created { access_key_id: new, secret_arn })),
        Err(error) => {
            // Nobody has the key's secret: remove the key (and the secret, which never held it or cannot be read).
            if let Some(arn) = arn {
                let _ = store.delete_secret(&arn, None).await;
            }
            let cleanup = api.delete_access_key(&user.user_name, &new).await.err();
            Err(StartError::HandoverFailed { error, key: new, cleanup })
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn hand_over<S: SecretStore>(
    store: &S,
    user: &UserRef,
    old: &KeyRef,
    new: &AccessKeyId,
    name: &str,
    secret: SecretKey,
    handover: &Handover,
    arn: &mut Option<String>,
) -> Result<String, CollectError> {
    let switch_by = handover.switch_by.strftime("%Y-%m-%d").to_string();
    let created = store
        .create_secret(&NewSecret {
            name: name.to_owned(),
            description: format!(
                "keyaudit: the new access key {new} of IAM user {} (replacing {}); readable by that user alone; move \
                 applications to it by {switch_by}",
                user.user_name, old.access_key_id
            ),
            kms_key_id: handover.kms_key_id.clone(),
            tags: vec![
                ("keyaudit:user".into(), user.user_name.clone()),
                ("keyaudit:old-access-key-id".into(), old.access_key_id.to_string()),
                ("keyaudit:new-access-key-id".into(), new.to_string()),
                ("keyaudit:switch-by".into(), switch_by),
                ("keyaudit:plan-id".into(), handover.plan_id.clone()),
            ],
        })
        .await?;
    let secret_arn = arn.insert(created).clone();
    // Nobody but the user can read it before it holds anything; once it does, nobody but the user can change it.
    store.put_resource_policy(&secret_arn, &secret_policy(&user.user_arn, false)).await?;
    // With a customer managed key, the user can read the secret only if they may decrypt with that key: granted for
    // this secret alone; a grant that cannot be made fails the hand-over (nobody could read the new key).
    if let Some(kms_key_id) = &handover.kms_key_id {
        store.grant_decrypt(kms_key_id, &user.user_arn, &secret_arn, &format!("keyaudit-rotation-{new}")).await?;
    }
    store.put_secret_value(&secret_arn, &SecretValue::of(&user.user_name, new, secret)).await?;
    store.put_resource_policy(&secret_arn, &secret_policy(&user.user_arn, true)).await?;
    Ok(secret_arn)
}

/// Puts the sealed policy on a secret whose value is stored, unless it has it already (a run that stopped between
/// the value and the seal): after it, keyaudit's own role can no longer change the policy.
async fn seal<S: SecretStore>(store: &S, arn: &str, user_arn: &str) -> Result<(), CollectError> {
    if !store.get_resource_policy(arn).await?.as_deref().is_some_and(is_sealed) {
        store.put_resource_policy(arn, &secret_policy(user_arn, true)).await?;
    }
    Ok(())
}

/// Schedules a rotation secret's deletion (with [`SECRET_RECOVERY_DAYS`] to restore it); a secret already gone or
/// already scheduled is fine.
pub async fn retire_secret<S: SecretStore>(store: &S, arn: &str) -> Result<(), CollectError> {
    match store.describe_secret(arn).await? {
        Some(s) if !s.deleting => store.delete_secret(arn, Some(SECRET_RECOVERY_DAYS)).await,
        _ => Ok(()),
    }
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
        /// Last uses of other keys than the first.
        others_used: Option<Timestamp>,
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
        async fn access_key_last_used(&self, key: &AccessKeyId) -> Result<Option<Timestamp>, CollectError> {
            Ok(if key.as_str() == ID { self.last_used } else { self.others_used })
        }
        async fn update_access_key(&self, _: &str, key: &AccessKeyId, status: KeyStatus) -> Result<(), CollectError> {
            self.writes.lock().unwrap().push(format!("{key} {}", status.as_str()));
            Ok(())
        }
        async fn delete_access_key(&self, _: &str, key: &AccessKeyId) -> Result<(), CollectError> {
            self.writes.lock().unwrap().push(format!("{key} deleted"));
            self.keys.lock().unwrap().retain(|k| k.access_key_id != *key);
            Ok(())
        }
        async fn create_access_key(&self, _: &str) -> Result<(AccessKeyId, SecretKey), CollectError> {
            let id = AccessKeyId::parse(NEW).unwrap();
            self.writes.lock().unwrap().push(format!("{id} created"));
            self.keys.lock().unwrap().push(listed(NEW, KeyStatus::Active));
            Ok((id, SecretKey::new(SECRET.into())))
        }
    }

    fn listed(id: &str, status: KeyStatus) -> ListedKey {
        ListedKey {
            access_key_id: AccessKeyId::parse(id).unwrap(),
            status,
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    const ID: &str = "AKIA0000000000000001";

    const NEW: &str = "AKIA0000000000000002";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";

    fn admin(status: Option<KeyStatus>, last_used: Option<&str>) -> FakeAdmin {
        FakeAdmin {
            keys: Mutex::new(status.map(|status| listed(ID, status)).into_iter().collect()),
            last_used: last_used.map(|t| t.parse().unwrap()),
            others_used: None,
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
            let outcome = carry_out(&api, op, &key(), expected_used.map(|t| t.parse().unwrap()), None).await.unwrap();
            let writes = api.writes.lock().unwrap().clone();
            match write {
                Some(w) => {
                    assert!(matches!(outcome, Outcome::Done { .. }), "case {i}: {outcome:?}");
                    assert_eq!(writes, [w], "case {i}");
                }
                None => {
                    let gone = status.is_none();
                    assert!(
                        matches!(outcome, Outcome::Skipped { .. }) && !gone
                            || matches!(outcome, Outcome::Gone(_)) && gone,
                        "case {i}: {outcome:?}"
                    );
                    assert!(writes.is_empty(), "case {i}: nothing is changed when the re-check fails");
                }
            }
        }
        // A key found deactivated already is never recorded as keyaudit's deactivation.
        let inactive = admin(Some(Inactive), then);
        let outcome = carry_out(&inactive, deactivate, &key(), None, None).await.unwrap();
        let Outcome::Skipped { reason, already_done: false } = outcome else { panic!("{outcome:?}") };
        assert!(reason.contains("not recorded as keyaudit's"), "{reason}");
        let api = admin(Some(Active), Some("2026-06-01T00:00:01.25Z"));
        let outcome = carry_out(&api, deactivate, &key(), then.map(|t| t.parse().unwrap()), None).await.unwrap();
        let Outcome::Skipped { reason, already_done: false } = outcome else { panic!("{outcome:?}") };
        assert_eq!(
            reason,
            "the key was used on 2026-06-01T00:00:01Z, after the credential report the plan was made from, which \
             showed its last use as 2026-06-01T00:00:00Z"
        );
    }

    #[tokio::test]
    async fn a_finished_rotation_is_made_only_while_the_newer_key_is_active_and_used_and_a_created_key_is_undone_only_unused()
     {
        use KeyStatus::{Active, Inactive};
        let finish = Operation::Plan(ChangeKind::Deactivate);
        let then = Some("2026-11-20T00:00:00Z");
        let other = OtherKey { access_key_id: AccessKeyId::parse(NEW).unwrap(), last_used_at: None };
        let cases = [
            ("the newer key active and used", Some(Active), Some("2026-11-27T00:00:00Z"), true),
            ("the newer key deactivated since", Some(Inactive), Some("2026-11-27T00:00:00Z"), false),
            ("the newer key deleted since", None, None, false),
            ("the newer key shows no use", Some(Active), None, false),
        ];
        for (name, newer, newer_used, done) in cases {
            let api = admin(Some(Active), then);
            if let Some(status) = newer {
                api.keys.lock().unwrap().push(listed(NEW, status));
            }
            let api = FakeAdmin { others_used: newer_used.map(|t| t.parse().unwrap()), ..api };
            let outcome =
                carry_out(&api, finish, &key(), then.map(|t| t.parse().unwrap()), Some(&other)).await.unwrap();
            assert_eq!(matches!(outcome, Outcome::Done { .. }), done, "{name}: {outcome:?}");
            assert_eq!(api.writes.lock().unwrap().len(), usize::from(done), "{name}");
        }
        // Undo of a creation: the created key is deactivated only while it shows no use.
        let unused = admin(Some(Active), None);
        let outcome = carry_out(&unused, Operation::DeactivateCreated, &key(), None, None).await.unwrap();
        assert!(matches!(outcome, Outcome::Done { .. }), "{outcome:?}");
        assert_eq!(*unused.writes.lock().unwrap(), [format!("{ID} inactive")], "deactivated, never deleted");
        let used = admin(Some(Active), Some("2026-11-29T00:00:00Z"));
        let outcome = carry_out(&used, Operation::DeactivateCreated, &key(), None, None).await.unwrap();
        let Outcome::Skipped { reason, .. } = outcome else { panic!("{outcome:?}") };
        assert!(reason.starts_with("the key keyaudit created was used on 2026-11-29T00:00:00Z"), "{reason}");
        assert!(used.writes.lock().unwrap().is_empty());
    }

    /// Secrets Manager's calls, in order, and its secrets (name → (arn, value held)).
    #[derive(Default)]
    struct FakeStore {
        calls: Mutex<Vec<String>>,
        secrets: Mutex<Vec<(String, String, bool)>>,
        fail_value: bool,
        fail_grant: bool,
        values: Mutex<Vec<String>>,
        policies: Mutex<Vec<String>>,
    }

    impl SecretStore for FakeStore {
        async fn create_secret(&self, secret: &NewSecret) -> Result<String, CollectError> {
            let tags: Vec<String> = secret.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            self.calls.lock().unwrap().push(format!("create {} [{}]", secret.name, tags.join(" ")));
            let arn = format!("arn:aws:secretsmanager:us-east-1:000000000002:secret:{}-AbCdEf", secret.name);
            self.secrets.lock().unwrap().push((secret.name.clone(), arn.clone(), false));
            Ok(arn)
        }
        async fn put_resource_policy(&self, arn: &str, policy: &str) -> Result<(), CollectError> {
            assert!(policy.contains("arn:aws:iam::000000000002:user/u"), "{policy}");
            let sealed = is_sealed(policy);
            self.calls.lock().unwrap().push(format!("{} policy {arn}", if sealed { "sealed" } else { "read-only" }));
            self.policies.lock().unwrap().push(policy.to_owned());
            Ok(())
        }
        async fn put_secret_value(&self, arn: &str, value: &SecretValue) -> Result<(), CollectError> {
            self.calls.lock().unwrap().push(format!("value {arn}"));
            if self.fail_value {
                return Err(CollectError::Api {
                    action: "secretsmanager:PutSecretValue",
                    code: Some("InternalServiceError".into()),
                    message: "boom".into(),
                });
            }
            self.values.lock().unwrap().push(value.0.clone());
            for s in self.secrets.lock().unwrap().iter_mut().filter(|s| s.1 == arn) {
                s.2 = true;
            }
            Ok(())
        }
        async fn get_resource_policy(&self, arn: &str) -> Result<Option<String>, CollectError> {
            self.calls.lock().unwrap().push(format!("get policy {arn}"));
            Ok(self.policies.lock().unwrap().last().cloned())
        }
        async fn describe_secret(&self, id: &str) -> Result<Option<SecretState>, CollectError> {
            self.calls.lock().unwrap().push(format!("describe {id}"));
            Ok(self.secrets.lock().unwrap().iter().find(|s| s.0 == id || s.1 == id).map(|s| SecretState {
                arn: s.1.clone(),
                has_value: s.2,
                deleting: false,
                tags: Vec::new(),
            }))
        }
        async fn grant_decrypt(&self, key: &str, user: &str, arn: &str, name: &str) -> Result<(), CollectError> {
            self.calls.lock().unwrap().push(format!("grant {key} {user} {arn} {name}"));
            if self.fail_grant {
                return Err(CollectError::Api {
                    action: "kms:CreateGrant",
                    code: Some("NotFoundException".into()),
                    message: "no such key".into(),
                });
            }
            Ok(())
        }
        async fn delete_secret(&self, arn: &str, days: Option<i64>) -> Result<(), CollectError> {
            self.calls.lock().unwrap().push(format!("delete {arn} {days:?}"));
            self.secrets.lock().unwrap().retain(|s| s.1 != arn);
            Ok(())
        }
    }

    fn handover() -> Handover {
        Handover { kms_key_id: None, switch_by: "2026-12-12T12:00:00Z".parse().unwrap(), plan_id: "p1".into() }
    }

    #[tokio::test]
    async fn a_rotation_starts_only_from_one_active_key_and_its_secret_goes_to_the_store_alone() {
        let api = admin(Some(KeyStatus::Active), Some("2026-11-27T00:00:00Z"));
        let store = FakeStore::default();
        let mut recorded = None;
        let started = start_rotation(&api, &store, &key(), &handover(), &Resume::No, |id| {
            recorded = Some(id.clone());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(recorded, Some(AccessKeyId::parse(NEW).unwrap()), "the journal heard of the key");
        let name = format!("keyaudit/rotation/u/{NEW}");
        let arn = format!("arn:aws:secretsmanager:us-east-1:000000000002:secret:{name}-AbCdEf");
        assert_eq!(
            started,
            Started::Created(Created { access_key_id: AccessKeyId::parse(NEW).unwrap(), secret_arn: arn.clone() })
        );
        assert_eq!(
            *store.calls.lock().unwrap(),
            [
                format!(
                    "create {name} [keyaudit:user=u keyaudit:old-access-key-id={ID} keyaudit:new-access-key-id={NEW} \
                     keyaudit:switch-by=2026-12-12 keyaudit:plan-id=p1]"
                ),
                format!("read-only policy {arn}"),
                format!("value {arn}"),
                format!("sealed policy {arn}"),
            ],
            "created empty, a policy that lets the user alone read it, its value, then the sealed policy"
        );
        assert_eq!(
            *store.values.lock().unwrap(),
            [format!(r#"{{"UserName":"u","AccessKeyId":"{NEW}","SecretAccessKey":"{SECRET}"}}"#)]
        );
        assert!(!format!("{started:?}").contains(SECRET));

        // Once two keys exist, a second start changes nothing.
        let none = |_: &AccessKeyId| -> Result<(), String> { panic!("nothing is created") };
        let again = start_rotation(&api, &store, &key(), &handover(), &Resume::No, none).await.unwrap();
        assert!(matches!(&again, Started::Skipped(r) if r.contains("exactly one key")), "{again:?}");
        // A run that stopped after it stored the secret is recognised on resume (its seal is in place already).
        let mine = Resume::Created(AccessKeyId::parse(NEW).unwrap());
        let resumed = start_rotation(&api, &store, &key(), &handover(), &mine, none).await.unwrap();
        assert!(matches!(resumed, Started::Recovered(_)), "{resumed:?}");
        assert_eq!(*api.writes.lock().unwrap(), [format!("{NEW} created")]);
        assert_eq!(store.calls.lock().unwrap().iter().filter(|c| c.starts_with("sealed")).count(), 1);
        // A second key the journal does not record creating is never taken over or deleted.
        let started = Resume::Started;
        let other = start_rotation(&api, &store, &key(), &handover(), &started, none).await.unwrap();
        assert!(matches!(&other, Started::Skipped(r) if r.contains("does not record creating")), "{other:?}");
        let theirs = Resume::Created(AccessKeyId::parse("AKIA0000000000000003").unwrap());
        let other = start_rotation(&api, &store, &key(), &handover(), &theirs, none).await.unwrap();
        assert!(matches!(&other, Started::Skipped(_)), "{other:?}");
        assert_eq!(*api.writes.lock().unwrap(), [format!("{NEW} created")], "nothing deleted");
    }

    #[tokio::test]
    async fn with_a_customer_managed_key_the_user_is_granted_decrypt_for_this_secret_or_nothing_is_handed_over() {
        let kms = "arn:aws:kms:us-east-1:000000000002:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let handover = Handover { kms_key_id: Some(kms.into()), ..handover() };
        let api = admin(Some(KeyStatus::Active), Some("2026-11-27T00:00:00Z"));
        let store = FakeStore::default();
        start_rotation(&api, &store, &key(), &handover, &Resume::No, |_| Ok(())).await.unwrap();
        let arn = format!("arn:aws:secretsmanager:us-east-1:000000000002:secret:keyaudit/rotation/u/{NEW}-AbCdEf");
        let calls = store.calls.lock().unwrap().clone();
        assert_eq!(
            calls[1..4],
            [
                format!("read-only policy {arn}"),
                format!("grant {kms} arn:aws:iam::000000000002:user/u {arn} keyaudit-rotation-{NEW}"),
                format!("value {arn}"),
            ],
            "granted before the value exists"
        );
        // A key the grant cannot be made on: the new key is removed again, nothing is handed over.
        let api = admin(Some(KeyStatus::Active), Some("2026-11-27T00:00:00Z"));
        let store = FakeStore { fail_grant: true, ..FakeStore::default() };
        let err = start_rotation(&api, &store, &key(), &handover, &Resume::No, |_| Ok(())).await.unwrap_err();
        assert!(err.to_string().contains("kms:CreateGrant"), "{err}");
        assert_eq!(*api.writes.lock().unwrap(), [format!("{NEW} created"), format!("{NEW} deleted")]);
        assert!(store.values.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_hand_over_removes_the_new_key_and_a_resumed_one_starts_over() {
        let api = admin(Some(KeyStatus::Active), Some("2026-11-27T00:00:00Z"));
        let store = FakeStore { fail_value: true, ..FakeStore::default() };
        let err = start_rotation(&api, &store, &key(), &handover(), &Resume::No, |_| Ok(())).await.unwrap_err();
        assert!(
            err.to_string()
                .ends_with(&format!("the new key {NEW} was deleted again (its secret was never handed over)")),
            "{err}"
        );
        assert!(!format!("{err} {err:?}").contains(SECRET));
        assert_eq!(*api.writes.lock().unwrap(), [format!("{NEW} created"), format!("{NEW} deleted")]);
        assert!(store.secrets.lock().unwrap().is_empty(), "the empty secret is deleted at once");

        // A run killed after CreateAccessKey (and its journal line): on resume, the key it recorded creating, whose
        // secret was never stored, is replaced.
        let api = admin(Some(KeyStatus::Active), Some("2026-11-27T00:00:00Z"));
        api.keys.lock().unwrap().push(listed(NEW, KeyStatus::Active));
        let store = FakeStore::default();
        let mine = Resume::Created(AccessKeyId::parse(NEW).unwrap());
        let started = start_rotation(&api, &store, &key(), &handover(), &mine, |_| Ok(())).await.unwrap();
        assert!(matches!(started, Started::Created(_)), "{started:?}");
        assert_eq!(*api.writes.lock().unwrap(), [format!("{NEW} deleted"), format!("{NEW} created")]);
    }
}
