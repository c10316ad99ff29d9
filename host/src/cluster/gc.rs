//! `dscan gc`: removes what dead or expired runs left in the cluster — from
//! local journals of runs whose process is gone, and by label for objects
//! whose expiry annotation has passed (runs from other machines).

use std::path::Path;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

use super::identity::{ObjectKind, ObjectRef};
use super::journal;
use super::{
    CALL_TIMEOUT, ClusterConnection, ClusterError, EXPIRES_AT, MANAGED_BY, RUN_ID_LABEL, bounded,
    cleanup, debug, kubeconfig,
};

/// One thing gc did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct GcAction {
    /// The object.
    pub object: ObjectRef,
    /// Why it is garbage.
    pub reason: String,
    /// Whether it was removed (false in a dry run or on failure).
    pub removed: bool,
    /// The failure, if any.
    pub error: Option<String>,
}

/// What gc found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Objects handled.
    pub actions: Vec<GcAction>,
    /// Runs still in progress (left alone).
    pub live_runs: Vec<String>,
    /// Journals removed.
    pub journals_removed: Vec<String>,
    /// Journals for another API server (left alone).
    pub other_clusters: Vec<String>,
    /// Debug containers of dead runs: `(pod/container, error)`; stopped when
    /// the error is empty (ephemeral containers can only be made to exit).
    pub debug_containers: Vec<(String, Option<String>)>,
    /// Debug containers of dead runs that never started, with what they will
    /// do if the node starts them later.
    pub not_started: Vec<String>,
    /// Journals left alone because they name things their run could not have
    /// created (a file outside the run directory, another object).
    pub untrusted: Vec<String>,
}

impl GcReport {
    /// Whether everything found was removed.
    pub fn complete(&self) -> bool {
        self.actions.iter().all(|a| a.removed || a.error.is_none())
            && self.debug_containers.iter().all(|(_, e)| e.is_none())
            && self.untrusted.is_empty()
    }
}

fn expired(meta: &ObjectMeta, now: k8s_openapi::jiff::Timestamp) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(EXPIRES_AT))
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .is_some_and(|t| t < now)
}

async fn act(
    conn: &ClusterConnection,
    object: ObjectRef,
    run_id: &str,
    reason: String,
    dry_run: bool,
) -> GcAction {
    if dry_run {
        return GcAction {
            object,
            reason,
            removed: false,
            error: None,
        };
    }
    match cleanup::remove_owned(&conn.client, &object, run_id).await {
        Ok(()) => GcAction {
            object,
            reason,
            removed: true,
            error: None,
        },
        Err(e) => GcAction {
            object,
            reason,
            removed: false,
            error: Some(e.to_string()),
        },
    }
}

/// Sweeps journals under `state_dir` and, by label, the given namespaces.
pub async fn run(
    conn: &ClusterConnection,
    state_dir: &Path,
    namespaces: &[String],
    dry_run: bool,
) -> Result<GcReport, ClusterError> {
    let mut report = GcReport::default();
    let mut swept: Vec<String> = namespaces.to_vec();
    let mut live: Vec<String> = vec![];
    for (dir, journal) in journal::list(state_dir) {
        let Ok(journal) = journal else {
            tracing::warn!("skipping unreadable journal in {}", dir.display());
            continue;
        };
        if journal.owner_alive() {
            live.push(journal.run_id.clone());
            continue;
        }
        if journal.server != conn.server {
            report.other_clusters.push(journal.run_id.clone());
            continue;
        }
        if let Err(why) = journal.check_consistent(&dir) {
            tracing::warn!("leaving the journal in {} alone: {why}", dir.display());
            report.untrusted.push(format!("{}: {why}", dir.display()));
            continue;
        }
        if !swept.contains(&journal.namespace) {
            swept.push(journal.namespace.clone());
        }
        if let Some(path) = &journal.kubeconfig
            && !dry_run
        {
            kubeconfig::shred(path)?;
        }
        let mut all_gone = true;
        for record in debug_records(&dir) {
            let pod = record.pod.as_deref().unwrap_or(&journal.pod);
            let (name, start_by) = (&record.name, record.start_by);
            // The record is a file: it may only name a dscan debug container
            // in a pod of the journal's namespace.
            if !name.starts_with("dscan-") || !is_dns_label(pod) {
                report.untrusted.push(format!(
                    "{}: a debug container record names {pod:?}/{name:?}, which this run could not have added",
                    dir.display()
                ));
                all_gone = false;
                continue;
            }
            let label = format!("{}/{pod}/{name}", journal.namespace);
            if dry_run {
                report.debug_containers.push((label, None));
            } else {
                let handle =
                    debug::DebugHandle::left_behind(&journal.namespace, pod, name, start_by);
                match handle.stop(&conn.client).await {
                    Ok(debug::Stopped::NotStarted(why)) => {
                        report
                            .not_started
                            .push(debug::not_started_note(&label, &why, start_by));
                    }
                    Ok(_) => report.debug_containers.push((label, None)),
                    Err(e) if e.is_not_found() => report.debug_containers.push((label, None)),
                    Err(e) => {
                        all_gone = false;
                        report.debug_containers.push((label, Some(e.to_string())));
                    }
                }
            }
        }
        let gone = format!(
            "run {} ended without cleanup (process {} is gone)",
            journal.run_id, journal.pid
        );
        // The node-debug fallback's pod and grants (in another namespace),
        // pod first, then what the journal still lists.
        let mut node_objects: Vec<ObjectRef> =
            super::node::records(&dir).into_iter().flatten().collect();
        node_objects.sort_by_key(|o| o.kind != ObjectKind::Pod);
        let mut pending = vec![];
        for object in node_objects {
            if !super::node::plausible(&object, &journal.run_id) {
                report.untrusted.push(format!(
                    "{}: a node-debug record names {object}, which this run could not have created",
                    dir.display()
                ));
                all_gone = false;
                continue;
            }
            pending.push((object, format!("{gone}: its node-debug pod and grants")));
        }
        pending.extend(journal.outstanding().into_iter().map(|o| (o, gone.clone())));
        for (object, why) in pending {
            let action = act(conn, object, &journal.run_id, why, dry_run).await;
            all_gone &= action.removed;
            report.actions.push(action);
        }
        if all_gone && !dry_run {
            std::fs::remove_dir_all(&dir).map_err(|source| ClusterError::Io {
                what: "remove journal",
                path: dir.display().to_string(),
                source,
            })?;
            report.journals_removed.push(journal.run_id.clone());
        }
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    let selector = format!("app.kubernetes.io/managed-by={MANAGED_BY}");
    for ns in &swept {
        let lp = ListParams::default().labels(&selector);
        let mut found =
            list_managed::<ServiceAccount>(conn, ns, ObjectKind::ServiceAccount, &lp).await?;
        found.extend(list_managed::<Role>(conn, ns, ObjectKind::Role, &lp).await?);
        found.extend(list_managed::<RoleBinding>(conn, ns, ObjectKind::RoleBinding, &lp).await?);
        for (object, meta) in found {
            if report.actions.iter().any(|a| a.object == object) {
                continue;
            }
            let run = meta
                .labels
                .as_ref()
                .and_then(|l| l.get(RUN_ID_LABEL).cloned())
                .unwrap_or_default();
            if live.contains(&run) {
                continue;
            }
            if expired(&meta, now) {
                report
                    .actions
                    .push(act(conn, object, &run, format!("run {run} expired"), dry_run).await);
            }
        }
    }
    report.live_runs = live;
    Ok(report)
}

/// The debug container records of a run directory (one for a single scan,
/// one per pod for a fleet's namespace), in name order.
fn debug_records(dir: &Path) -> Vec<super::session::DebugRecord> {
    super::journal::side_records(
        dir,
        super::session::DEBUG_RECORD,
        super::session::read_debug_record,
    )
}

/// A pod name as Kubernetes allows it (RFC 1123 subdomain).
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
}

/// The dscan-labelled objects of one kind in a namespace, with their metadata.
async fn list_managed<K: cleanup::Kind>(
    conn: &ClusterConnection,
    ns: &str,
    kind: ObjectKind,
    lp: &ListParams,
) -> Result<Vec<(ObjectRef, ObjectMeta)>, ClusterError> {
    let api = Api::<K>::namespaced(conn.client.clone(), ns);
    let list = bounded(
        &format!("list dscan objects in {ns}"),
        CALL_TIMEOUT,
        api.list(lp),
    )
    .await?;
    Ok(list
        .into_iter()
        .map(|o| {
            let meta = o.meta().clone();
            let object = ObjectRef {
                kind,
                namespace: ns.to_string(),
                name: meta.name.clone().unwrap_or_default(),
            };
            (object, meta)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn expiry_comes_from_the_annotation() {
        let now: k8s_openapi::jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let meta = |t: &str| ObjectMeta {
            annotations: Some(BTreeMap::from([(EXPIRES_AT.to_string(), t.to_string())])),
            ..Default::default()
        };
        assert!(expired(&meta("2026-05-31T23:59:59Z"), now));
        assert!(!expired(&meta("2026-06-01T00:10:00Z"), now));
        assert!(
            !expired(&ObjectMeta::default(), now),
            "no annotation: never swept by label"
        );
    }
}
