//! The node-debug fallback's objects: when the cluster refuses ephemeral
//! containers, a short-lived `hostPID` pod on the target's node, in a
//! namespace the user names, plus a Role and RoleBinding there that let the
//! run's temporary identity — and only it — read and exec into that one pod.
//!
//! Created by the caller's identity (setup's), recorded before they are
//! created (`node-objects*` beside the run's journal, so `dscan gc` finds
//! them after a crash), removed and verified gone at cleanup. The target pod
//! is never touched.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::debug::{self, DebugHandle};
use super::identity::{self, ObjectKind, ObjectRef};
use super::{CALL_TIMEOUT, ClusterError, TargetRef, bounded, cleanup, kubeconfig};
use crate::access::NodePlan;

/// The prefix of the files recording node objects in a run directory.
pub const NODE_RECORD: &str = "node-objects";

/// The node pod's one container.
pub const CONTAINER: &str = "dscan-node";

/// What the temporary identity may do to the node pod (by name): read and
/// watch it, exec into it. No ephemeral containers: nothing is added to it.
pub const NODE_GRANTS: &[(&str, &[&str])] = &[
    ("pods", &["get", "watch"]),
    ("pods/exec", &["create", "get"]),
];

/// What the caller needs in the node-debug namespace besides holding
/// [`NODE_GRANTS`] (RBAC lets it grant only what it holds): API group,
/// resource, verb, and why. The preflight checks these; `dscan fleet job`
/// grants them.
pub const CALLER_NEEDS: &[(&str, &str, &str, &str)] = &[
    ("", "pods", "create", "create the node-debug pod"),
    ("", "pods", "delete", "remove the node-debug pod"),
    (RBAC, "roles", "create", "the node pod's Role"),
    (RBAC, "roles", "get", "verify cleanup"),
    (RBAC, "roles", "delete", "cleanup"),
    (RBAC, "rolebindings", "create", "bind the node pod's Role"),
    (RBAC, "rolebindings", "get", "verify cleanup"),
    (RBAC, "rolebindings", "delete", "cleanup"),
];

const RBAC: &str = "rbac.authorization.k8s.io";

/// The Role's rules: [`NODE_GRANTS`] pinned to the node pod.
pub fn node_rules(pod: &str) -> Vec<PolicyRule> {
    NODE_GRANTS
        .iter()
        .map(|(resource, verbs)| PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec![(*resource).to_string()]),
            resource_names: Some(vec![pod.to_string()]),
            verbs: verbs.iter().map(|v| (*v).to_string()).collect(),
            ..Default::default()
        })
        .collect()
}

/// Where a run creates node objects, and what it created (shared with the
/// session's cleanup, which removes them).
#[derive(Clone)]
pub struct NodeSlot {
    /// The caller's client (node objects are setup, not scan work).
    client: kube::Client,
    /// The run directory (the record goes there).
    dir: PathBuf,
    /// The record's file name.
    file: String,
    /// Node objects are named `dscan-<name_id>`.
    name_id: String,
    /// The journal's run id (the objects' run-id label).
    run_id: String,
    /// The run's ServiceAccount, and its namespace.
    service_account: (String, String),
    /// Who runs dscan (annotation).
    created_by: String,
    /// The run's token lifetime: the objects' expiry annotation.
    token_seconds: i64,
    created: Arc<Mutex<Vec<ObjectRef>>>,
}

/// The names, labels and annotations a node slot gives its objects.
#[derive(Debug, Clone)]
pub struct NodeNaming {
    /// Node objects are named `dscan-<name_id>` (unique per target).
    pub name_id: String,
    /// The journal's run id (the run-id label).
    pub run_id: String,
    /// The run's ServiceAccount name and namespace.
    pub service_account: (String, String),
    /// Who runs dscan.
    pub created_by: String,
    /// The run's token lifetime, seconds (the expiry annotation).
    pub token_seconds: i64,
}

impl std::fmt::Debug for NodeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSlot")
            .field("name_id", &self.name_id)
            .field("created", &self.recorded())
            .finish()
    }
}

impl NodeSlot {
    /// A slot recording into `dir` (file `node-objects` or
    /// `node-objects.<suffix>`).
    pub fn new(
        client: kube::Client,
        dir: PathBuf,
        suffix: Option<&str>,
        naming: NodeNaming,
    ) -> Self {
        NodeSlot {
            client,
            dir,
            file: suffix.map_or_else(|| NODE_RECORD.to_string(), |s| format!("{NODE_RECORD}.{s}")),
            name_id: naming.name_id,
            run_id: naming.run_id,
            service_account: naming.service_account,
            created_by: naming.created_by,
            token_seconds: naming.token_seconds,
            created: Arc::default(),
        }
    }

    /// The objects this slot creates in `namespace`, in creation order.
    pub fn planned(&self, namespace: &str) -> Vec<ObjectRef> {
        identity::named_objects(
            namespace,
            &format!("dscan-{}", self.name_id),
            &[ObjectKind::Role, ObjectKind::RoleBinding, ObjectKind::Pod],
        )
    }

    /// What was recorded so far (created, or about to be).
    pub fn recorded(&self) -> Vec<ObjectRef> {
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, objects: &[ObjectRef]) -> Result<(), ClusterError> {
        kubeconfig::private_dir(&self.dir)?;
        let text =
            serde_json::to_vec(objects).map_err(|e| ClusterError::Internal(e.to_string()))?;
        std::fs::write(self.dir.join(&self.file), text).map_err(|source| ClusterError::Io {
            what: "record the node-debug objects",
            path: self.dir.display().to_string(),
            source,
        })?;
        *self.created.lock().unwrap_or_else(|p| p.into_inner()) = objects.to_vec();
        Ok(())
    }

    /// Creates the Role, RoleBinding and pod in `namespace` (recorded
    /// first), the pod pinned to `node` with `hostPID`; returns the handle
    /// that drives its container.
    pub async fn create(
        &self,
        namespace: &str,
        node: &str,
        plan: &NodePlan,
        start_by: Option<u64>,
    ) -> Result<DebugHandle, ClusterError> {
        let objects = self.planned(namespace);
        self.record(&objects)?;
        let now = identity::now_rfc3339();
        let expires = identity::rfc3339_in(self.token_seconds + 60);
        let pod_name = objects[2].name.clone();
        for obj in &objects {
            let meta = identity::metadata(obj, &self.run_id, &now, &expires, &self.created_by);
            match obj.kind {
                ObjectKind::Pod => {
                    let mut container = debug::container_spec(CONTAINER, &plan.pod);
                    if let Some(o) = container.as_object_mut() {
                        o.remove("stdin");
                        o.remove("tty");
                    }
                    let pod = json!({
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": meta,
                        "spec": {
                            "nodeName": node,
                            "hostPID": true,
                            "restartPolicy": "Never",
                            "automountServiceAccountToken": false,
                            "enableServiceLinks": false,
                            // Its start-up script exits on TERM at once.
                            "terminationGracePeriodSeconds": 2,
                            "activeDeadlineSeconds": plan.pod.dead_man_seconds,
                            // It must run on the target's node whatever its taints.
                            "tolerations": [{"operator": "Exists"}],
                            "containers": [container],
                        }
                    });
                    let pod: Pod = serde_json::from_value(pod)
                        .map_err(|e| ClusterError::Internal(e.to_string()))?;
                    let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                    match bounded(
                        &format!("create the node pod {namespace}/{pod_name}"),
                        CALL_TIMEOUT,
                        api.create(&PostParams::default(), &pod),
                    )
                    .await
                    {
                        Ok(_) => {}
                        Err(ClusterError::Api {
                            code: Some(403),
                            message,
                            ..
                        }) if message.contains("violates PodSecurity") => {
                            return Err(ClusterError::Target(format!(
                                "namespace {namespace:?} does not admit the node pod (it needs hostPID): {message}; \
                                 name a namespace whose Pod Security level is privileged with --node-debug-namespace"
                            )));
                        }
                        Err(e) => return Err(e),
                    }
                }
                _ => {
                    identity::create_with(
                        &self.client,
                        obj,
                        meta,
                        node_rules(&pod_name),
                        &self.service_account.1,
                    )
                    .await?;
                }
            }
        }
        Ok(DebugHandle::node_pod(
            TargetRef {
                namespace: namespace.to_string(),
                pod: pod_name,
                container: CONTAINER.to_string(),
                pod_uid: String::new(),
            },
            &plan.pod,
            start_by,
        ))
    }

    /// Removes what was recorded, pod first, and verifies each is gone;
    /// the record goes when nothing remains.
    pub async fn remove_all(&self) -> (Vec<ObjectRef>, Vec<(ObjectRef, String)>) {
        let (removed, remaining) = remove_objects(&self.client, &self.recorded(), None).await;
        if remaining.is_empty() {
            let _ = std::fs::remove_file(self.dir.join(&self.file));
            self.created
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        (removed, remaining)
    }
}

/// Deletes node objects, pod first (so nothing runs once its grants go);
/// with `owner`, only objects labelled as that run's (for `gc`).
pub async fn remove_objects(
    client: &kube::Client,
    objects: &[ObjectRef],
    owner: Option<&str>,
) -> (Vec<ObjectRef>, Vec<(ObjectRef, String)>) {
    let mut ordered: Vec<&ObjectRef> = objects.iter().collect();
    ordered.sort_by_key(|o| match o.kind {
        ObjectKind::Pod => 0,
        ObjectKind::RoleBinding => 1,
        _ => 2,
    });
    let mut removed = vec![];
    let mut remaining = vec![];
    for obj in ordered {
        let result = match owner {
            Some(run) => cleanup::remove_owned(client, obj, run).await,
            None => cleanup::remove(client, obj).await,
        };
        match result {
            Ok(()) => removed.push(obj.clone()),
            Err(e) => remaining.push((obj.clone(), e.to_string())),
        }
    }
    (removed, remaining)
}

/// Reads a node-objects record; `None` when it is not one.
pub fn read_record(text: &str) -> Option<Vec<ObjectRef>> {
    serde_json::from_str(text).ok()
}

/// Whether a recorded object is one a run with `run_id` could have created:
/// a Role, RoleBinding or Pod named `dscan-<run_id>` or `dscan-<run_id>-<n>`.
pub fn plausible(obj: &ObjectRef, run_id: &str) -> bool {
    let base = format!("dscan-{run_id}");
    let named = obj.name == base
        || obj
            .name
            .strip_prefix(&format!("{base}-"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    named && obj.kind != ObjectKind::ServiceAccount
}

/// Node-objects records in a run directory.
pub fn records(dir: &std::path::Path) -> Vec<Vec<ObjectRef>> {
    super::journal::side_records(dir, NODE_RECORD, read_record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_name_only_what_the_run_could_create() {
        let obj = |kind, name: &str| ObjectRef {
            kind,
            namespace: "dbg".into(),
            name: name.into(),
        };
        assert!(plausible(&obj(ObjectKind::Pod, "dscan-abc"), "abc"));
        assert!(plausible(&obj(ObjectKind::Role, "dscan-abc-3"), "abc"));
        assert!(!plausible(&obj(ObjectKind::Pod, "kube-apiserver"), "abc"));
        assert!(!plausible(&obj(ObjectKind::Pod, "dscan-abc-x"), "abc"));
        assert!(!plausible(
            &obj(ObjectKind::ServiceAccount, "dscan-abc"),
            "abc"
        ));
        let rules = node_rules("dscan-abc");
        assert!(
            rules
                .iter()
                .all(|r| r.resource_names.as_deref() == Some(&["dscan-abc".to_string()][..]))
        );
        assert!(
            !rules.iter().any(|r| r
                .resources
                .as_ref()
                .unwrap()
                .iter()
                .any(|x| x.contains("ephemeral"))),
            "nothing is added to the node pod"
        );
    }
}
