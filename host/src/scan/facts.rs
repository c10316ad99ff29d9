//! Facts about the target for the strategies, read as the scan identity.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use super::ScanSettings;
use crate::access::{PsaLevel, TargetFacts};
use crate::cluster::{CALL_TIMEOUT, ClusterError, ScanContext, bounded};

/// Reads the pod and combines it with what preflight found.
pub async fn gather(
    ctx: &ScanContext,
    settings: &ScanSettings,
) -> Result<TargetFacts, ClusterError> {
    let id = &ctx.identity;
    let pods: Api<Pod> = Api::namespaced(id.client.clone(), &id.namespace);
    let pod = bounded(
        "read the target as the scan identity",
        CALL_TIMEOUT,
        pods.get(&id.pod),
    )
    .await?;
    let spec = pod.spec.clone().unwrap_or_default();
    let container = spec
        .containers
        .iter()
        .find(|c| c.name == id.container)
        .cloned()
        .unwrap_or_default();
    let sc = container.security_context.clone().unwrap_or_default();
    let psc = spec.security_context.clone().unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    let container_id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == id.container))
        .and_then(|c| c.container_id.clone());
    let mut options = vec![
        ("image".to_string(), settings.debug_image.clone()),
        ("scanner-image".to_string(), settings.scanner_image.clone()),
    ];
    let dead_man = settings.scan_timeout.as_secs() + settings.start_timeout.as_secs() + 300;
    options.push(("dead-man-seconds".into(), dead_man.to_string()));
    options.extend(settings.strategy_options.iter().cloned());
    Ok(TargetFacts {
        server_version: ctx.preflight.server_version.clone(),
        ephemeral_containers: ctx.preflight.ephemeral_containers,
        psa_level: PsaLevel::parse(ctx.preflight.pod_security.as_deref()),
        namespace: id.namespace.clone(),
        pod: id.pod.clone(),
        container: id.container.clone(),
        container_id,
        run_as_user: sc.run_as_user.or(psc.run_as_user),
        run_as_group: sc.run_as_group.or(psc.run_as_group),
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
    })
}
