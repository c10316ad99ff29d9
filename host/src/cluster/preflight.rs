//! Preflight: everything checked before anything is created, in a report a
//! human can act on — server version, whether ephemeral containers are served,
//! the namespace's Pod Security level, the caller's permissions (by
//! SelfSubjectAccessReview), and the target pod and container.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::PostParams;
use serde::Serialize;

use super::{CALL_TIMEOUT, ClusterConnection, ClusterError, bounded};

/// The container to scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container (`None`: the pod's only container, or its default container).
    pub container: Option<String>,
}

/// One permission, as SelfSubjectAccessReview asks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    /// Verb.
    pub verb: &'static str,
    /// API group ("" for core).
    pub group: &'static str,
    /// Resource.
    pub resource: &'static str,
    /// Subresource.
    pub subresource: &'static str,
    /// Object name ("" for any).
    pub name: String,
    /// Why dscan needs it.
    pub why: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let res = if self.subresource.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let group = if self.group.is_empty() {
            String::new()
        } else {
            format!(".{}", self.group)
        };
        let name = if self.name.is_empty() {
            String::new()
        } else {
            format!(" {:?}", self.name)
        };
        write!(f, "{} {res}{group}{name} ({})", self.verb, self.why)
    }
}

/// What the caller must be allowed to do for setup, the grant and cleanup.
/// The Role dscan creates grants the scan-phase verbs, and RBAC only lets a
/// caller grant what it holds, so those are required too.
pub fn required_permissions(pod: &str) -> Vec<Permission> {
    let p = |verb, group, resource, subresource, name: &str, why| Permission {
        verb,
        group,
        resource,
        subresource,
        name: name.to_string(),
        why,
    };
    // What the Role grants, the caller must hold (RBAC only lets a caller
    // grant what it holds); the table is the one the Role is built from.
    let mut out: Vec<Permission> = crate::access::ROLE_GRANTS
        .iter()
        .flat_map(|(resource, verbs)| {
            let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
            verbs
                .iter()
                .map(move |verb| p(verb, "", resource, sub, pod, grant_why(resource, sub, verb)))
        })
        .collect();
    out.extend(vec![
        p(
            "create",
            "",
            "serviceaccounts",
            "",
            "",
            "create the temporary ServiceAccount",
        ),
        p("get", "", "serviceaccounts", "", "", "verify cleanup"),
        p("delete", "", "serviceaccounts", "", "", "cleanup"),
        p(
            "create",
            "",
            "serviceaccounts",
            "token",
            "",
            "issue the short-lived token",
        ),
        p(
            "create",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            "",
            "create the pinned Role",
        ),
        p(
            "get",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            "",
            "verify cleanup",
        ),
        p(
            "delete",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            "",
            "cleanup",
        ),
        p(
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            "",
            "bind the Role",
        ),
        p(
            "get",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            "",
            "verify cleanup",
        ),
        p(
            "delete",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            "",
            "cleanup",
        ),
    ]);
    out
}

/// Why the caller needs one of the Role's grants.
fn grant_why(resource: &str, sub: &str, verb: &str) -> &'static str {
    match (resource, sub, verb) {
        ("pods", "", "get") => "read the target",
        ("pods", "ephemeralcontainers", "patch") => {
            "granted to the scan identity: adds the debug container"
        }
        ("pods", "exec", "create") => "probe the target for a shell; granted to the scan identity",
        ("pods", "exec", "get") => "WebSocket exec; granted to the scan identity",
        _ => "granted to the scan identity",
    }
}

/// Asks the API server whether the current identity may do `perm` in `namespace`.
pub async fn can_i(
    client: &kube::Client,
    namespace: &str,
    perm: &Permission,
) -> Result<bool, ClusterError> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some(perm.verb.to_string()),
                group: Some(perm.group.to_string()),
                resource: Some(perm.resource.to_string()),
                subresource: Some(perm.subresource.to_string()),
                name: (!perm.name.is_empty()).then(|| perm.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answer = bounded(
        "SelfSubjectAccessReview",
        CALL_TIMEOUT,
        api.create(&PostParams::default(), &review),
    )
    .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Checks many permissions, four at a time; returns the denied ones.
pub async fn missing_permissions(
    client: &kube::Client,
    namespace: &str,
    perms: &[Permission],
) -> Result<Vec<Permission>, ClusterError> {
    let answers: Vec<(Permission, bool)> = futures::stream::iter(perms.iter().cloned())
        .map(|perm| async move { can_i(client, namespace, &perm).await.map(|ok| (perm, ok)) })
        .buffered(4)
        .try_collect()
        .await?;
    Ok(answers
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(p, _)| p)
        .collect())
}

/// What preflight found.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    /// `v1.35.0`.
    pub server_version: String,
    /// Whether `pods/ephemeralcontainers` is served.
    pub ephemeral_containers: bool,
    /// The namespace's `pod-security.kubernetes.io/enforce` label as written
    /// (`None`: no label — a cluster-wide default may apply — or the
    /// namespace could not be read; either way the level is unknown).
    pub pod_security: Option<String>,
    /// The container to scan.
    pub container: String,
    /// The pod's UID (the pod the run checked; a recreated pod has another).
    pub pod_uid: String,
    /// The target container runs as this UID, when the spec says so.
    pub run_as_user: Option<i64>,
    /// The target container's image as the pod spec names it.
    pub image: String,
    /// The image the node reports it runs (`imageID`, a repo digest on
    /// containerd): evidence of exactly what was scanned.
    pub image_id: String,
}

/// What preflight learns about the target container from the pod.
pub(crate) struct TargetContainer {
    pub(crate) name: String,
    pub(crate) run_as_user: Option<i64>,
    pub(crate) image: String,
    pub(crate) image_id: String,
}

pub(crate) fn pod_security(ns: &Namespace) -> Option<String> {
    ns.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-security.kubernetes.io/enforce").cloned())
}

/// Runs every check; any problem is an error listing all of them.
pub async fn run(
    conn: &ClusterConnection,
    target: &Target,
    node_fallback: Option<&str>,
) -> Result<PreflightReport, ClusterError> {
    let client = &conn.client;
    let ClusterChecks {
        server_version,
        ephemeral_containers,
        mut problems,
    } = cluster_checks(client, node_fallback).await?;
    let missing = missing_permissions(
        client,
        &target.namespace,
        &required_permissions(&target.pod),
    )
    .await?;
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|p| format!("  - {p}")).collect();
        problems.push(format!(
            "your identity lacks {} permission(s) in namespace {:?}:\n{}\n  (the built-in admin and edit roles do not include pods/ephemeralcontainers; ask for a Role with these verbs)",
            missing.len(),
            target.namespace,
            list.join("\n")
        ));
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let pod_security = match bounded(
        "read the namespace",
        CALL_TIMEOUT,
        namespaces.get(&target.namespace),
    )
    .await
    {
        Ok(ns) => pod_security(&ns),
        Err(e) if e.is_not_found() => {
            return Err(ClusterError::Target(format!(
                "namespace {:?} does not exist",
                target.namespace
            )));
        }
        Err(_) => None,
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let pod = match bounded("read the target pod", CALL_TIMEOUT, pods.get(&target.pod)).await {
        Ok(p) => Some(p),
        Err(e) if e.is_not_found() => {
            return Err(ClusterError::Target(format!(
                "pod {:?} does not exist in namespace {:?}",
                target.pod, target.namespace
            )));
        }
        Err(e) if !missing.is_empty() => {
            tracing::debug!("reading the pod failed, permissions already reported: {e}");
            None
        }
        Err(e) => return Err(e),
    };
    let mut found = TargetContainer {
        name: target.container.clone().unwrap_or_default(),
        run_as_user: None,
        image: String::new(),
        image_id: String::new(),
    };
    let mut pod_uid = String::new();
    if let Some(pod) = pod {
        match check_pod(&pod, target) {
            Ok(c) => {
                found = c;
                pod_uid = pod.metadata.uid.clone().unwrap_or_default();
            }
            Err(p) => problems.push(p),
        }
    }
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(|p| format!("- {p}")).collect();
        return Err(ClusterError::Preflight(text.join("\n")));
    }
    Ok(PreflightReport {
        server_version,
        ephemeral_containers,
        pod_security,
        container: found.name,
        pod_uid,
        run_as_user: found.run_as_user,
        image: found.image,
        image_id: found.image_id,
    })
}

/// What preflight learns once per cluster.
pub(crate) struct ClusterChecks {
    /// `v1.35.0`.
    pub(crate) server_version: String,
    /// Whether `pods/ephemeralcontainers` is served.
    pub(crate) ephemeral_containers: bool,
    /// Problems found so far (none create anything).
    pub(crate) problems: Vec<String>,
}

/// The server version, whether ephemeral containers are served (a problem
/// unless the node-debug fallback is configured), and what the fallback
/// needs in its namespace.
pub(crate) async fn cluster_checks(
    client: &kube::Client,
    node_fallback: Option<&str>,
) -> Result<ClusterChecks, ClusterError> {
    let version = bounded(
        "read the server version",
        CALL_TIMEOUT,
        client.apiserver_version(),
    )
    .await?;
    let core = bounded(
        "discover the core API",
        CALL_TIMEOUT,
        client.list_core_api_resources("v1"),
    )
    .await?;
    let ephemeral_containers = core
        .resources
        .iter()
        .any(|r| r.name == "pods/ephemeralcontainers");
    let mut problems = vec![];
    if !ephemeral_containers && node_fallback.is_none() {
        problems.push(ephemeral_problem(&version.git_version));
    }
    if let Some(ns) = node_fallback {
        problems.extend(node_fallback_problems(client, ns).await?);
    }
    Ok(ClusterChecks {
        server_version: version.git_version,
        ephemeral_containers,
        problems,
    })
}

/// The problem when ephemeral containers are not served and the node-debug
/// fallback was not asked for.
pub fn ephemeral_problem(version: &str) -> String {
    format!(
        "the API server ({version}) does not serve pods/ephemeralcontainers: ephemeral containers are GA since Kubernetes 1.25 (beta, on by default, since 1.23); \
         upgrade the cluster or enable the EphemeralContainers feature gate, or let dscan fall back to a pod on the target's node: \
         add node-debug to --strategy (or pass --allow-privileged) and name a privileged namespace with --node-debug-namespace NS"
    )
}

/// What the node-debug fallback needs in its namespace: the namespace, a
/// Pod Security level that admits a hostPID pod, and the caller's right to
/// create, read and delete the pod, Role and RoleBinding there and to grant
/// what the Role grants.
pub async fn node_fallback_problems(
    client: &kube::Client,
    namespace: &str,
) -> Result<Vec<String>, ClusterError> {
    let mut problems = vec![];
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match bounded(
        "read the node-debug namespace",
        CALL_TIMEOUT,
        namespaces.get(namespace),
    )
    .await
    {
        Ok(ns) => {
            if let Some(level) = pod_security(&ns).filter(|l| l != "privileged") {
                problems.push(format!(
                    "the node-debug namespace {namespace:?} enforces Pod Security {level:?}, which refuses the node pod's hostPID; \
                     name a namespace whose level is privileged with --node-debug-namespace"
                ));
            }
        }
        Err(e) if e.is_not_found() => {
            problems.push(format!(
                "the node-debug namespace {namespace:?} does not exist (--node-debug-namespace)"
            ));
            return Ok(problems);
        }
        Err(_) => {}
    }
    let p = |verb, group, resource, subresource, why| Permission {
        verb,
        group,
        resource,
        subresource,
        name: String::new(),
        why,
    };
    let mut perms: Vec<Permission> = super::node::CALLER_NEEDS
        .iter()
        .map(|&(group, resource, verb, why)| p(verb, group, resource, "", why))
        .collect();
    for (resource, verbs) in super::node::NODE_GRANTS {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        for verb in *verbs {
            perms.push(p(
                verb,
                "",
                resource,
                sub,
                "granted to the scan identity on the node pod",
            ));
        }
    }
    let missing = missing_permissions(client, namespace, &perms).await?;
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|p| format!("  - {p}")).collect();
        problems.push(format!(
            "for the node-debug fallback your identity lacks {} permission(s) in namespace {namespace:?}:\n{}",
            missing.len(),
            list.join("\n")
        ));
    }
    Ok(problems)
}

/// Static pods, the container choice, running and ready.
pub(crate) fn check_pod(pod: &Pod, target: &Target) -> Result<TargetContainer, String> {
    let meta = &pod.metadata;
    let mirror = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let node_owned = meta
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.kind == "Node"));
    if mirror || node_owned {
        return Err(format!(
            "pod {:?} is a static (mirror) pod: the kubelet manages it from a file and ephemeral containers cannot be added to it",
            target.pod
        ));
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let names: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
    let container = match &target.container {
        Some(c) if names.contains(c) => c.clone(),
        Some(c) => {
            return Err(format!(
                "pod {:?} has no container {c:?} (it has: {})",
                target.pod,
                names.join(", ")
            ));
        }
        None => {
            let default = meta
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubectl.kubernetes.io/default-container").cloned());
            match (default, names.as_slice()) {
                (Some(d), _) if names.contains(&d) => d,
                (_, [only]) => only.clone(),
                _ => {
                    return Err(format!(
                        "pod {:?} has several containers ({}); choose one with --container",
                        target.pod,
                        names.join(", ")
                    ));
                }
            }
        }
    };
    let status = pod.status.clone().unwrap_or_default();
    let cs = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.name == container);
    let Some(cs) = cs else {
        return Err(format!(
            "container {container:?} has no status yet (pod phase {:?})",
            status.phase.unwrap_or_default()
        ));
    };
    let state = cs.state.unwrap_or_default();
    if state.running.is_none() {
        let why = state
            .waiting
            .map(|w| format!("waiting: {}", w.reason.unwrap_or_default()))
            .or_else(|| {
                state.terminated.map(|t| {
                    format!(
                        "terminated: {} (exit {})",
                        t.reason.unwrap_or_default(),
                        t.exit_code
                    )
                })
            })
            .unwrap_or_else(|| "not running".into());
        return Err(format!(
            "container {container:?} is not running ({why}); dscan scans running containers"
        ));
    }
    if !cs.ready {
        return Err(format!(
            "container {container:?} is running but not ready; wait until it is ready"
        ));
    }
    let spec_container = spec.containers.iter().find(|c| c.name == container);
    let run_as_user = spec_container
        .and_then(|c| c.security_context.as_ref()?.run_as_user)
        .or_else(|| spec.security_context.as_ref()?.run_as_user);
    Ok(TargetContainer {
        image: spec_container
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        image_id: cs.image_id,
        name: container,
        run_as_user,
    })
}
