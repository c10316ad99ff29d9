//! Which containers a fleet run scans: pods listed like kubectl lists them
//! (namespaces, label and field selectors), every regular container (or the
//! one named), and what is skipped, each with its reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde::{Deserialize, Serialize};

use crate::cluster::preflight::{self, Permission, Target};
use crate::cluster::{CALL_TIMEOUT, ClusterConnection, ClusterError, bounded};

/// What to select.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Namespaces to list (`-n`, repeatable); empty with `all` false means
    /// the context's namespace.
    pub namespaces: Vec<String>,
    /// Every namespace (`-A`).
    pub all_namespaces: bool,
    /// One pod by name (`-p`).
    pub pod: Option<String>,
    /// `-l`.
    pub label_selector: Option<String>,
    /// `--field-selector`.
    pub field_selector: Option<String>,
    /// `-c`: this container in each pod (default: every regular container).
    pub container: Option<String>,
}

/// One container a fleet run scans, with what listing learnt about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetTarget {
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Container.
    pub container: String,
    /// The pod's UID.
    pub pod_uid: String,
    /// The image as the spec names it.
    pub image: String,
    /// The image the node runs (`imageID`: a digest on containerd).
    pub image_id: String,
    /// The container's UID, when the spec states it.
    pub run_as_user: Option<i64>,
}

impl FleetTarget {
    /// `namespace/pod/container`: unique in a cluster, stable, and the key
    /// shards are computed from.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.pod, self.container)
    }

    /// A file name for the target's results: `namespace_pod_container.json`
    /// (Kubernetes names hold no `_`, so it is unambiguous).
    pub fn results_file(&self, dir: &Path) -> PathBuf {
        dir.join(format!(
            "{}_{}_{}.json",
            self.namespace, self.pod, self.container
        ))
    }

    /// The target's identity in its HDF `results`, where the scanner left
    /// it empty.
    pub fn stamp(&self, results: &[u8]) -> Vec<u8> {
        let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(results) else {
            return results.to_vec();
        };
        let empty = doc["platform"]["target_id"]
            .as_str()
            .is_none_or(str::is_empty);
        if doc["platform"].is_object() && empty {
            doc["platform"]["target_id"] = serde_json::json!(self.key());
            return serde_json::to_vec_pretty(&doc).unwrap_or_else(|_| results.to_vec());
        }
        results.to_vec()
    }

    /// The key for `--per-image`: replicas share an image digest and a
    /// container name. Without a digest, every container is its own image.
    pub fn image_key(&self) -> String {
        if self.image_id.is_empty() {
            format!("unknown-image:{}", self.key())
        } else {
            format!("{}|{}", self.image_id, self.container)
        }
    }
}

impl std::fmt::Display for FleetTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} container {}",
            self.namespace, self.pod, self.container
        )
    }
}

/// A pod or container left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// The container, when the reason is about one container.
    pub container: Option<String>,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.container {
            Some(c) => write!(
                f,
                "{}/{} container {}: {}",
                self.namespace, self.pod, c, self.reason
            ),
            None => write!(f, "{}/{}: {}", self.namespace, self.pod, self.reason),
        }
    }
}

/// The permission listing needs, where it is asked for.
pub fn list_permission(all_namespaces: bool) -> Permission {
    Permission {
        verb: "list",
        group: "",
        resource: "pods",
        subresource: "",
        name: String::new(),
        why: if all_namespaces {
            "select pods in every namespace (-A)"
        } else {
            "select pods (-l, --field-selector)"
        },
    }
}

/// Lists the pods of the selection, in (namespace, name) order. The caller
/// must be allowed to list pods where it asks: checked first, and every
/// namespace lacking it is named.
pub async fn list(
    conn: &ClusterConnection,
    selection: &Selection,
    default_namespace: &str,
) -> Result<Vec<Pod>, ClusterError> {
    let mut lp = ListParams::default();
    if let Some(l) = &selection.label_selector {
        lp = lp.labels(l);
    }
    let mut fields: Vec<String> = selection.field_selector.iter().cloned().collect();
    if let Some(p) = &selection.pod {
        fields.push(format!("metadata.name={p}"));
    }
    if !fields.is_empty() {
        lp = lp.fields(&fields.join(","));
    }
    let scopes: Vec<Option<String>> = if selection.all_namespaces {
        vec![None]
    } else if selection.namespaces.is_empty() {
        vec![Some(default_namespace.to_string())]
    } else {
        let mut ns = selection.namespaces.clone();
        ns.sort();
        ns.dedup();
        ns.into_iter().map(Some).collect()
    };
    let perm = list_permission(selection.all_namespaces);
    let mut denied = vec![];
    for scope in &scopes {
        // An empty namespace in a SelfSubjectAccessReview asks about every namespace.
        if !preflight::can_i(&conn.client, scope.as_deref().unwrap_or(""), &perm).await? {
            denied.push(match scope {
                Some(ns) => format!("  - {perm} in namespace {ns:?}"),
                None => format!("  - {perm} in every namespace (a ClusterRole)"),
            });
        }
    }
    if !denied.is_empty() {
        return Err(ClusterError::Preflight(format!(
            "- your identity cannot list the pods to select from:\n{}\n  (grant `list pods` there, or name one pod with -p)",
            denied.join("\n")
        )));
    }
    let mut pods = vec![];
    for scope in scopes {
        let api: Api<Pod> = match &scope {
            Some(ns) => Api::namespaced(conn.client.clone(), ns),
            None => Api::all(conn.client.clone()),
        };
        let action = match &scope {
            Some(ns) => format!("list pods in namespace {ns}"),
            None => "list pods in every namespace".to_string(),
        };
        let list = bounded(&action, CALL_TIMEOUT, api.list(&lp)).await?;
        pods.extend(list.items);
    }
    pods.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    Ok(pods)
}

/// The containers of `pods` to scan, and what is skipped with its reason:
/// static (mirror) pods, pods not running, containers not running or not
/// ready, a `-c` name the pod lacks or that names an init or ephemeral
/// container (dscan scans the containers that serve; its own debug
/// containers are ephemeral).
pub fn classify(pods: &[Pod], container: Option<&str>) -> (Vec<FleetTarget>, Vec<Skipped>) {
    let mut targets = vec![];
    let mut skipped = vec![];
    for pod in pods {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let skip = |container: Option<&str>, reason: String| Skipped {
            namespace: namespace.clone(),
            pod: name.clone(),
            container: container.map(str::to_string),
            reason,
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let names: Vec<String> = match container {
            Some(c) => {
                let init = spec.init_containers.iter().flatten().any(|i| i.name == c);
                let ephemeral = spec
                    .ephemeral_containers
                    .iter()
                    .flatten()
                    .any(|e| e.name == c);
                if init || ephemeral {
                    let kind = if init { "an init" } else { "an ephemeral" };
                    skipped.push(skip(
                        Some(c),
                        format!("{kind} container: dscan scans the pod's regular containers"),
                    ));
                    continue;
                }
                if !spec.containers.iter().any(|x| x.name == c) {
                    skipped.push(skip(None, format!("has no container {c:?}")));
                    continue;
                }
                vec![c.to_string()]
            }
            None => spec.containers.iter().map(|c| c.name.clone()).collect(),
        };
        if phase != "Running" {
            let why = if phase.is_empty() {
                "no phase yet".to_string()
            } else {
                format!("phase {phase}")
            };
            skipped.push(skip(None, format!("the pod is not running ({why})")));
            continue;
        }
        for c in names {
            let target = Target {
                namespace: namespace.clone(),
                pod: name.clone(),
                container: Some(c.clone()),
            };
            match preflight::check_pod(pod, &target) {
                Ok(found) => targets.push(FleetTarget {
                    namespace: namespace.clone(),
                    pod: name.clone(),
                    container: found.name,
                    pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
                    image: found.image,
                    image_id: found.image_id,
                    run_as_user: found.run_as_user,
                }),
                // A static pod is a property of the pod: say it once.
                Err(why) if why.contains("static (mirror) pod") => {
                    skipped.push(skip(None, why));
                    break;
                }
                Err(why) => skipped.push(skip(Some(&c), why)),
            }
        }
    }
    (targets, skipped)
}

/// `--per-image`: one target per (image digest, container name), the first
/// in key order; every other replica is covered by it.
pub fn per_image(targets: Vec<FleetTarget>) -> (Vec<FleetTarget>, Vec<(FleetTarget, String)>) {
    let mut first: BTreeMap<String, FleetTarget> = BTreeMap::new();
    let mut sorted = targets;
    sorted.sort_by_key(FleetTarget::key);
    let mut covered = vec![];
    for t in sorted {
        match first.get(&t.image_key()) {
            Some(rep) => covered.push((t, rep.key())),
            None => {
                first.insert(t.image_key(), t);
            }
        }
    }
    let mut scanned: Vec<FleetTarget> = first.into_values().collect();
    scanned.sort_by_key(FleetTarget::key);
    (scanned, covered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_files_are_named_by_target_and_stamped() {
        let t = FleetTarget {
            namespace: "ns".into(),
            pod: "web-1".into(),
            container: "app".into(),
            pod_uid: String::new(),
            image: String::new(),
            image_id: String::new(),
            run_as_user: None,
        };
        assert_eq!(
            t.results_file(Path::new("d")),
            PathBuf::from("d/ns_web-1_app.json")
        );
        let stamped = t.stamp(br#"{"platform": {"name": "x", "target_id": ""}}"#);
        let doc: serde_json::Value = serde_json::from_slice(&stamped).unwrap();
        assert_eq!(doc["platform"]["target_id"], "ns/web-1/app");
        // A scanner's own id is kept.
        let kept = t.stamp(br#"{"platform": {"target_id": "theirs"}}"#);
        assert!(String::from_utf8_lossy(&kept).contains("theirs"));
    }

    fn pod(ns: &str, name: &str, extra: serde_json::Value) -> Pod {
        let mut p = json!({
            "metadata": {"namespace": ns, "name": name, "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "app", "image": "img:1"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "image": "img:1",
                 "imageID": "img@sha256:aa", "state": {"running": {}}}]}
        });
        merge(&mut p, extra);
        serde_json::from_value(p).unwrap()
    }

    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    #[test]
    fn running_ready_containers_are_scanned_and_the_rest_skipped_with_reasons() {
        let pods = vec![
            pod("a", "ok", json!({})),
            pod(
                "a",
                "pending",
                json!({"status": {"phase": "Pending", "containerStatuses": []}}),
            ),
            pod(
                "a",
                "static",
                json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}}),
            ),
            pod(
                "a",
                "unready",
                json!({"status": {"containerStatuses": [{"name": "app", "ready": false,
                    "restartCount": 0, "image": "img:1", "imageID": "", "state": {"running": {}}}]}}),
            ),
        ];
        let (targets, skipped) = classify(&pods, None);
        assert_eq!(
            targets.iter().map(FleetTarget::key).collect::<Vec<_>>(),
            ["a/ok/app"]
        );
        let reasons: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("a/pending: the pod is not running (phase Pending)"));
        assert!(reasons[1].contains("a/static: ") && reasons[1].contains("static (mirror) pod"));
        assert!(
            reasons[2].contains("a/unready container app: ") && reasons[2].contains("not ready")
        );
    }

    #[test]
    fn a_named_container_must_be_a_regular_one() {
        let pods = vec![pod(
            "a",
            "p",
            json!({"spec": {"initContainers": [{"name": "init"}]}}),
        )];
        let (t, s) = classify(&pods, Some("init"));
        assert!(t.is_empty());
        assert!(s[0].reason.contains("an init container"), "{s:?}");
        let (t, s) = classify(&pods, Some("nope"));
        assert!(t.is_empty());
        assert!(s[0].reason.contains("has no container \"nope\""), "{s:?}");
        let (t, _) = classify(&pods, Some("app"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn per_image_keeps_one_per_digest_and_container_and_names_the_rest() {
        let t = |ns: &str, pod: &str, digest: &str| FleetTarget {
            namespace: ns.into(),
            pod: pod.into(),
            container: "app".into(),
            pod_uid: String::new(),
            image: "x".into(),
            image_id: digest.into(),
            run_as_user: None,
        };
        let (scanned, covered) = per_image(vec![
            t("b", "web-2", "d1"),
            t("a", "web-1", "d1"),
            t("a", "db-0", "d2"),
            t("a", "odd", ""),
            t("a", "odd2", ""),
        ]);
        let keys: Vec<String> = scanned.iter().map(FleetTarget::key).collect();
        assert_eq!(
            keys,
            ["a/db-0/app", "a/odd/app", "a/odd2/app", "a/web-1/app"]
        );
        assert_eq!(covered.len(), 1);
        assert_eq!(covered[0].0.key(), "b/web-2/app");
        assert_eq!(covered[0].1, "a/web-1/app");
    }
}
