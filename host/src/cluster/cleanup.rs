//! Cleanup: delete what a run created, retrying transient failures with
//! backoff, and verify by reading back that every object is gone.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::DeleteParams;
use serde::Serialize;

use super::identity::{ObjectKind, ObjectRef};
use super::{CALL_TIMEOUT, ClusterError, bounded};

/// What cleanup did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    /// Objects verified gone.
    pub removed: Vec<ObjectRef>,
    /// Objects that may remain, with why.
    pub remaining: Vec<(ObjectRef, String)>,
    /// Whether the restricted kubeconfig was overwritten and deleted.
    pub kubeconfig_removed: bool,
    /// The debug container the run added, if any (it stays in the pod spec as
    /// a terminated entry: ephemeral containers cannot be removed).
    pub debug_container: Option<String>,
    /// Whether it was stopped and seen terminated.
    pub debug_container_stopped: bool,
    /// Whether it was left running on request.
    pub debug_container_kept: bool,
    /// Set when it never started: what the node said and what it will do
    /// if it starts later (it cannot be stopped before it runs).
    pub debug_container_not_started: Option<String>,
}

impl CleanupReport {
    /// Nothing left behind.
    pub fn complete(&self) -> bool {
        self.remaining.is_empty()
            && self.kubeconfig_removed
            && (self.debug_container.is_none()
                || self.debug_container_stopped
                || self.debug_container_kept
                || self.debug_container_not_started.is_some())
    }
}

const ATTEMPTS: u32 = 6;

/// What the typed calls below need of the three kinds dscan creates.
pub(super) trait Kind:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> Kind for K where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
{
}

async fn delete_typed<K: Kind>(client: &kube::Client, obj: &ObjectRef) -> Result<(), ClusterError> {
    let api = Api::<K>::namespaced(client.clone(), &obj.namespace);
    let result = bounded(
        &format!("delete {obj}"),
        CALL_TIMEOUT,
        api.delete(&obj.name, &DeleteParams::default()),
    )
    .await;
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map(|_| ()),
    }
}

async fn exists_typed<K: Kind>(
    client: &kube::Client,
    obj: &ObjectRef,
) -> Result<bool, ClusterError> {
    let api = Api::<K>::namespaced(client.clone(), &obj.namespace);
    bounded(
        &format!("verify {obj} is gone"),
        CALL_TIMEOUT,
        api.get_opt(&obj.name),
    )
    .await
    .map(|found| found.is_some())
}

async fn delete_once(client: &kube::Client, obj: &ObjectRef) -> Result<(), ClusterError> {
    match obj.kind {
        ObjectKind::ServiceAccount => delete_typed::<ServiceAccount>(client, obj).await,
        ObjectKind::Role => delete_typed::<Role>(client, obj).await,
        ObjectKind::RoleBinding => delete_typed::<RoleBinding>(client, obj).await,
        ObjectKind::Pod => delete_typed::<Pod>(client, obj).await,
    }
}

/// Whether the object still exists.
async fn exists(client: &kube::Client, obj: &ObjectRef) -> Result<bool, ClusterError> {
    match obj.kind {
        ObjectKind::ServiceAccount => exists_typed::<ServiceAccount>(client, obj).await,
        ObjectKind::Role => exists_typed::<Role>(client, obj).await,
        ObjectKind::RoleBinding => exists_typed::<RoleBinding>(client, obj).await,
        ObjectKind::Pod => exists_typed::<Pod>(client, obj).await,
    }
}

/// The labels of the object, or `None` when it does not exist.
async fn labels_typed<K: Kind>(
    client: &kube::Client,
    obj: &ObjectRef,
) -> Result<Option<std::collections::BTreeMap<String, String>>, ClusterError> {
    let api = Api::<K>::namespaced(client.clone(), &obj.namespace);
    let found = bounded(&format!("read {obj}"), CALL_TIMEOUT, api.get_opt(&obj.name)).await?;
    Ok(found.map(|o| o.meta().labels.clone().unwrap_or_default()))
}

/// [`remove`], for `dscan gc`: only an object labelled as run `run_id`'s
/// (`app.kubernetes.io/managed-by=dscan`, `dscan.dev/run-id`) is deleted;
/// anything else under that name is left alone with the reason.
pub async fn remove_owned(
    client: &kube::Client,
    obj: &ObjectRef,
    run_id: &str,
) -> Result<(), ClusterError> {
    let labels = match obj.kind {
        ObjectKind::ServiceAccount => labels_typed::<ServiceAccount>(client, obj).await?,
        ObjectKind::Role => labels_typed::<Role>(client, obj).await?,
        ObjectKind::RoleBinding => labels_typed::<RoleBinding>(client, obj).await?,
        ObjectKind::Pod => labels_typed::<Pod>(client, obj).await?,
    };
    let Some(labels) = labels else {
        return Ok(());
    };
    let ours = labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        == Some(super::MANAGED_BY)
        && labels.get(super::RUN_ID_LABEL).map(String::as_str) == Some(run_id);
    if !ours {
        return Err(ClusterError::Target(format!(
            "{obj} is not labelled as dscan run {run_id}'s; left alone"
        )));
    }
    remove(client, obj).await
}

/// Deletes one object and verifies it is gone, retrying transient failures.
pub async fn remove(client: &kube::Client, obj: &ObjectRef) -> Result<(), ClusterError> {
    let mut delay = Duration::from_millis(100);
    let mut last = None;
    // A pod goes only once the kubelet has stopped it (its grace period).
    let attempts = if obj.kind == ObjectKind::Pod {
        ATTEMPTS * 3
    } else {
        ATTEMPTS
    };
    for attempt in 1..=attempts {
        let result = async {
            delete_once(client, obj).await?;
            if exists(client, obj).await? {
                return Err(ClusterError::Api {
                    action: format!("verify {obj} is gone"),
                    message: "it still exists after deletion".into(),
                    code: Some(409),
                });
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            Err(e)
                if (e.is_transient()
                    || matches!(
                        e,
                        ClusterError::Api {
                            code: Some(409),
                            ..
                        }
                    ))
                    && attempt < attempts =>
            {
                tracing::debug!(
                    "cleanup attempt {attempt} for {obj} failed, retrying in {delay:?}: {e}"
                );
                last = Some(e);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(ClusterError::Internal("cleanup retries exhausted".into())))
}
