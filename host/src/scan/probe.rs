//! Finding out who the target runs as when neither the pod spec nor the
//! node says (clusters before Kubernetes 1.33 report no container user):
//! a minimal probe container — nobody, every capability dropped,
//! RuntimeDefault seccomp, admissible at every Pod Security level — reads
//! the target's `/proc/<pid>/status`, which any user may read. It costs one
//! more ephemeral container, which stays in the pod spec for the pod's
//! lifetime; dscan says so.

use std::time::Duration;

use crate::access::contract::locate_target_script;
use crate::access::contract::state::{DIR, MAIN_PID, TARGET_PID};
use crate::access::{DebugContainer, Security, TargetFacts};
use crate::cluster::debug::{self, DebugHandle};
use crate::cluster::{ClusterError, ScanContext};
use crate::scan_error::ScanError;

/// How long the probe container lives at most.
const PROBE_SECONDS: u32 = 300;

/// What the strategies' notes say about where the UID came from.
pub const SOURCE: &str = "a probe container that read its /proc/<pid>/status (one more ephemeral container, which stays in the pod spec)";

/// The target's real UID and GID, read by a probe container.
pub async fn target_user(
    ctx: &ScanContext,
    facts: &TargetFacts,
    image: &str,
    start_timeout: Duration,
) -> Result<(i64, i64), ClusterError> {
    let id = &ctx.identity;
    let name = format!("dscan-probe-{}", ctx.run_id);
    let spec = DebugContainer {
        image: image.to_string(),
        command: vec![
            "sh".into(),
            "-c".into(),
            format!("mkdir -p {DIR} && echo $$ > {MAIN_PID} && exec sleep {PROBE_SECONDS}"),
        ],
        env: Vec::new(),
        security: Security {
            run_as_user: Some(65534),
            run_as_group: Some(65534),
            run_as_non_root: Some(true),
            privileged: false,
            allow_privilege_escalation: false,
            capabilities_add: Vec::new(),
            capabilities_drop: vec!["ALL".into()],
            seccomp_runtime_default: true,
        },
        dead_man_seconds: PROBE_SECONDS,
    };
    tracing::warn!(
        "neither the pod spec nor the node says which user {} runs as; adding probe container {name} to read it \
         (one more ephemeral container, which stays in the pod spec for the pod's lifetime)",
        id.target
    );
    let probe = DebugHandle::add(&id.client, &id.target, &name, &spec, None).await?;
    // Recorded first, so cleanup stops it if the run ends here.
    ctx.debug.register(&probe)?;
    let read = async {
        probe.wait_running(&id.client, start_timeout).await?;
        // The target found as the debug containers find it.
        let find = locate_target_script(
            facts.share_process_namespace,
            facts.container_id.as_deref().unwrap_or_default(),
        );
        let out = probe
            .control(&id.client)
            .run(
                &format!("{find}\ncat /proc/$(cat {TARGET_PID})/status"),
                debug::Stdin::None,
                Duration::from_secs(30),
                64 * 1024,
            )
            .await?;
        let status = String::from_utf8_lossy(&out.stdout);
        parse_status(&status).ok_or_else(|| {
            ScanError::runner(
                "native",
                format!(
                    "the probe container could not read the target's user ({}): {}",
                    out.code
                        .map_or("no exit code".into(), |c| format!("exit {c}")),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            )
        })
    }
    .await;
    if let Err(e) = probe.stop(&id.client).await {
        tracing::warn!("could not stop the probe container {name}: {e}");
    }
    read
}

/// The real UID and GID from a `/proc/<pid>/status` text.
fn parse_status(text: &str) -> Option<(i64, i64)> {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((field("Uid:")?, field("Gid:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_ids_are_read_from_status() {
        let s =
            "Name:\tserver\nUid:\t65532\t65532\t65532\t65532\nGid:\t65533\t65533\t65533\t65533\n";
        assert_eq!(parse_status(s), Some((65532, 65533)));
        assert_eq!(parse_status("Name:\tx\n"), None);
    }
}
