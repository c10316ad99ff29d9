//! Facts about the target for the strategies, read as the scan identity.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use super::ScanSettings;
use crate::access::{PsaLevel, TargetFacts};
use crate::cluster::{CALL_TIMEOUT, ClusterError, ScanContext, bounded};
use crate::scan_error::ScanError;

/// Clock skew allowed between this machine and the node for the debug
/// container's start deadline.
pub const START_SKEW: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a started debug container waits for dscan to claim it (the root
/// check) before it exits by itself.
pub const CLAIM_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);

/// Reads the pod and combines it with what preflight found.
pub async fn gather(
    ctx: &ScanContext,
    settings: &ScanSettings,
) -> Result<TargetFacts, ClusterError> {
    let id = &ctx.identity;
    let pods: Api<Pod> = Api::namespaced(id.client.clone(), &id.target.namespace);
    let pod = bounded(
        "read the target as the scan identity",
        CALL_TIMEOUT,
        pods.get(&id.target.pod),
    )
    .await?;
    let spec = pod.spec.clone().unwrap_or_default();
    if spec.host_pid == Some(true) {
        // The kubelet gives a hostPID pod's ephemeral containers the node's
        // PID namespace (`PidNamespaceForPod`: the target mode applies only to
        // per-container namespaces), so PID 1 there is the node's init.
        return Err(ScanError::access(format!(
            "pod {}/{} runs with hostPID: true, so a debug container added to it shares the node's process \
             namespace, not the target's, and /proc/1 there is the node's init; dscan does not scan hostPID pods \
             (it would read the node and label it as the target)",
            id.target.namespace, id.target.pod
        )));
    }
    let container = spec
        .containers
        .iter()
        .find(|c| c.name == id.target.container)
        .cloned()
        .unwrap_or_default();
    let sc = container.security_context.clone().unwrap_or_default();
    let psc = spec.security_context.clone().unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == id.target.container));
    let container_id = status.and_then(|c| c.container_id.clone());
    // The user the node runs the target as (Kubernetes 1.33+): the truth when
    // the image decides (no runAsUser), and for the GID, which containerd
    // takes from the image's /etc/passwd when only runAsUser is set.
    let reported = status
        .and_then(|c| c.user.as_ref())
        .and_then(|u| u.linux.as_ref());
    let (run_as_user, run_as_group) = match reported {
        Some(l) => (Some(l.uid), Some(l.gid)),
        None => (
            sc.run_as_user.or(psc.run_as_user),
            sc.run_as_group.or(psc.run_as_group),
        ),
    };
    if let Some(l) = reported {
        tracing::info!(
            "the node reports the target runs as uid {} gid {} groups {:?}",
            l.uid,
            l.gid,
            l.supplemental_groups.as_deref().unwrap_or_default()
        );
    }
    // How the target's user was found, for the strategies' notes.
    let uid_source = match (reported, run_as_user) {
        (Some(_), _) => "the node's container status",
        (None, Some(_)) => "the pod spec",
        (None, None) => "nowhere (neither the pod spec nor the node says)",
    };
    let mut options = vec![
        ("uid-source".to_string(), uid_source.to_string()),
        ("image".to_string(), settings.debug_image.clone()),
        ("scanner-image".to_string(), settings.scanner_image.clone()),
    ];
    let dead_man = settings.scan_timeout.as_secs() + settings.start_timeout.as_secs() + 300;
    options.push(("dead-man-seconds".into(), dead_man.to_string()));
    // Absolute deadlines on this machine's clock, so that a debug container
    // the node starts late (image pulls are retried) does not run unattended;
    // the start deadline allows for some clock skew with the node.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start_by = now + settings.start_timeout.as_secs() + START_SKEW.as_secs();
    options.push(("start-by".into(), start_by.to_string()));
    options.push(("dead-man-deadline".into(), (now + dead_man).to_string()));
    options.push(("claim-seconds".into(), CLAIM_WINDOW.as_secs().to_string()));
    options.extend(settings.strategy_options.iter().cloned());
    // Last, so the host's word wins: the access mode the runner needs.
    options.push((
        crate::access::contract::NEEDS_OPTION.into(),
        settings.runner.needs().name().into(),
    ));
    Ok(TargetFacts {
        server_version: ctx.preflight.server_version.clone(),
        ephemeral_containers: ctx.preflight.ephemeral_containers,
        psa_level: PsaLevel::parse(ctx.preflight.pod_security.as_deref()),
        namespace: id.target.namespace.clone(),
        pod: id.target.pod.clone(),
        container: id.target.container.clone(),
        container_id,
        run_as_user,
        run_as_group,
        run_as_non_root: sc.run_as_non_root.or(psc.run_as_non_root),
        privileged: sc.privileged == Some(true),
        capabilities_add: caps.add.unwrap_or_default(),
        capabilities_drop: caps.drop.unwrap_or_default(),
        read_only_root_filesystem: sc.read_only_root_filesystem == Some(true),
        share_process_namespace: spec.share_process_namespace == Some(true),
        node: spec.node_name.clone(),
        runner: settings.runner.name().into(),
        allow_privileged: settings.allow_privileged,
        options,
        ephemeral_refused: None,
        node_debug_namespace: None,
    })
}
