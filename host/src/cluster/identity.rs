//! The temporary identity: a ServiceAccount, a Role pinned to the target pod,
//! a RoleBinding, and a short-lived token.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{
    CALL_TIMEOUT, CREATED_AT, CREATED_BY, ClusterError, EXPIRES_AT, MANAGED_BY, RUN_ID_LABEL,
    bounded,
};

/// The kinds dscan creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectKind {
    /// `v1/ServiceAccount`.
    ServiceAccount,
    /// `rbac.authorization.k8s.io/v1/Role`.
    Role,
    /// `rbac.authorization.k8s.io/v1/RoleBinding`.
    RoleBinding,
    /// `v1/Pod`: the node-debug fallback's pod on the target's node.
    Pod,
}

/// One object dscan created (or is about to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Kind.
    pub kind: ObjectKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// A new run id: 10 lowercase letters and digits (part of every object name).
pub fn new_run_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..10)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The objects of a run, in creation order.
pub fn planned_objects(namespace: &str, run_id: &str) -> Vec<ObjectRef> {
    named_objects(
        namespace,
        &format!("dscan-{run_id}"),
        &[
            ObjectKind::ServiceAccount,
            ObjectKind::Role,
            ObjectKind::RoleBinding,
        ],
    )
}

/// One object of each kind, all named `name` in `namespace`.
pub fn named_objects(namespace: &str, name: &str, kinds: &[ObjectKind]) -> Vec<ObjectRef> {
    kinds
        .iter()
        .map(|&kind| ObjectRef {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
        .collect()
}

/// Labels and annotations every object of a run carries.
pub fn metadata(
    obj: &ObjectRef,
    run_id: &str,
    created_at: &str,
    expires_at: &str,
    created_by: &str,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(obj.name.clone()),
        namespace: Some(obj.namespace.clone()),
        labels: Some(BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_string(),
                MANAGED_BY.to_string(),
            ),
            (RUN_ID_LABEL.to_string(), run_id.to_string()),
        ])),
        annotations: Some(BTreeMap::from([
            (CREATED_AT.to_string(), created_at.to_string()),
            (EXPIRES_AT.to_string(), expires_at.to_string()),
            (CREATED_BY.to_string(), created_by.to_string()),
        ])),
        ..Default::default()
    }
}

/// The scan phase's rules: [`crate::access::ROLE_GRANTS`] (DESIGN §5), pinned
/// by name to the pods of the run (one for a single scan; a fleet's
/// namespace lists exactly its selected pods). Plans are checked against the
/// same table.
pub fn scan_rules(pods: &[String]) -> Vec<PolicyRule> {
    crate::access::ROLE_GRANTS
        .iter()
        .map(|(resource, verbs)| PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec![(*resource).to_string()]),
            resource_names: Some(pods.to_vec()),
            verbs: verbs.iter().map(|v| (*v).to_string()).collect(),
            ..Default::default()
        })
        .collect()
}

/// Creates one object of the run (a Role with [`scan_rules`] for `pods`).
pub async fn create(
    client: &kube::Client,
    obj: &ObjectRef,
    meta: ObjectMeta,
    pods: &[String],
) -> Result<(), ClusterError> {
    create_with(client, obj, meta, scan_rules(pods), &obj.namespace).await
}

/// Creates one object of the run: a Role gets `rules`; a RoleBinding binds
/// the run's ServiceAccount, which lives in `sa_namespace`.
pub async fn create_with(
    client: &kube::Client,
    obj: &ObjectRef,
    meta: ObjectMeta,
    rules: Vec<PolicyRule>,
    sa_namespace: &str,
) -> Result<(), ClusterError> {
    let action = format!("create {obj}");
    let pp = PostParams::default();
    match obj.kind {
        ObjectKind::ServiceAccount => {
            let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &obj.namespace);
            // No auto-mounted token: this account only ever uses TokenRequest tokens.
            let sa = ServiceAccount {
                metadata: meta,
                automount_service_account_token: Some(false),
                ..Default::default()
            };
            bounded(&action, CALL_TIMEOUT, api.create(&pp, &sa)).await?;
        }
        ObjectKind::Role => {
            let api: Api<Role> = Api::namespaced(client.clone(), &obj.namespace);
            let role = Role {
                metadata: meta,
                rules: Some(rules),
            };
            bounded(&action, CALL_TIMEOUT, api.create(&pp, &role)).await?;
        }
        ObjectKind::RoleBinding => {
            let api: Api<RoleBinding> = Api::namespaced(client.clone(), &obj.namespace);
            let binding = RoleBinding {
                metadata: meta,
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: obj.name.clone(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: obj.name.clone(),
                    namespace: Some(sa_namespace.to_string()),
                    ..Default::default()
                }]),
            };
            bounded(&action, CALL_TIMEOUT, api.create(&pp, &binding)).await?;
        }
        ObjectKind::Pod => {
            return Err(ClusterError::Internal(format!(
                "{obj}: pods are created by the node-debug fallback, not here"
            )));
        }
    }
    Ok(())
}

/// A token from TokenRequest.
pub struct IssuedToken {
    /// The bearer token (never printed or logged).
    pub token: SecretString,
    /// `status.expirationTimestamp` as the server wrote it.
    pub expires_at: String,
    /// The lifetime the server granted (it may clamp).
    pub seconds: i64,
}

/// The shortest lifetime that covers the run, never under the API's 600 s minimum.
pub fn token_seconds(requested: i64) -> i64 {
    requested.max(600)
}

/// Requests a token for the run's ServiceAccount.
///
/// The token is not bound to the target pod: the API server binds a token to
/// a pod only when the pod runs as that ServiceAccount (`TokenREST.Create`
/// answers 400 "cannot bind token for serviceaccount … to pod running with
/// different serviceaccount name"), and the target runs as its own account.
/// The token dies at its short expiry, and at once when cleanup deletes the
/// ServiceAccount.
pub async fn request_token(
    client: &kube::Client,
    namespace: &str,
    service_account: &str,
    seconds: i64,
) -> Result<IssuedToken, ClusterError> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(token_seconds(seconds)),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let action = format!("request a token for ServiceAccount {namespace}/{service_account}");
    let answer = bounded(
        &action,
        CALL_TIMEOUT,
        api.create_token_request(service_account, &PostParams::default(), &request),
    )
    .await?;
    let status = answer.status.ok_or_else(|| ClusterError::Api {
        action: action.clone(),
        message: "the TokenRequest came back without a status".into(),
        code: None,
    })?;
    let seconds = answer.spec.expiration_seconds.unwrap_or(seconds);
    let expires_at = status.expiration_timestamp.0.to_string();
    Ok(IssuedToken {
        token: SecretString::from(status.token),
        expires_at,
        seconds,
    })
}

/// The identity the scan phase runs as.
pub struct ScanIdentity {
    /// A client that authenticates only with the temporary token.
    pub client: kube::Client,
    /// The restricted kubeconfig (mode 0600 in a 0700 directory).
    pub kubeconfig: std::path::PathBuf,
    /// `system:serviceaccount:<ns>:<name>`.
    pub username: String,
    /// The target it is pinned to.
    pub target: super::TargetRef,
}

impl std::fmt::Debug for ScanIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanIdentity")
            .field("username", &self.username)
            .field("kubeconfig", &self.kubeconfig)
            .finish()
    }
}

/// RFC 3339, `seconds` from now.
pub(crate) fn rfc3339_in(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
        .map(|t| {
            t.round(k8s_openapi::jiff::Unit::Second)
                .unwrap_or(t)
                .to_string()
        })
        .unwrap_or_default()
}

/// Now, RFC 3339 to the second (object annotations).
pub(crate) fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now())
        .to_string()
}
