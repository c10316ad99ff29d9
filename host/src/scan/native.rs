//! The native runner: dscan's own engine evaluates the profile on this
//! machine and reads the target through the file agent, which runs in the
//! debug container as the target's own user (the same-user strategy) and
//! serves `/proc/<pid>/root` over one exec session.

use std::io::{BufReader, BufWriter};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::io::SyncIoBridge;

use super::{RunnerOutput, ScanRunner, ScanSettings};
use crate::access::AccessMode;
use crate::access::contract::state::{AGENT as AGENT_PATH, DIR};
use crate::cluster::debug::{self, DebugHandle, VerifiedRoot};
use crate::cluster::{ClusterError, ScanIdentity};
use crate::scan_error::ScanError;

/// The file agent, built statically for this machine's architecture by
/// `build.rs` (empty when no static libc was available at build time).
pub const AGENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dscan-agent"));

/// What `virtualization` reports to profiles: dscan scans a pod.
const VIRTUALIZATION: &str = "kubepods";

/// The native runner.
pub struct NativeRunner;

fn runner_error(message: String) -> ClusterError {
    ScanError::runner("native", message)
}

impl ScanRunner for NativeRunner {
    fn name(&self) -> &'static str {
        "native"
    }

    fn needs(&self) -> AccessMode {
        AccessMode::PathPrefix
    }

    fn prepare<'a>(
        &'a self,
        id: &'a ScanIdentity,
        dc: &'a DebugHandle,
        _settings: &'a ScanSettings,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        Box::pin(upload_agent(id, dc))
    }

    fn run<'a>(
        &'a self,
        id: &'a ScanIdentity,
        dc: &'a DebugHandle,
        verified: &'a VerifiedRoot,
        settings: &'a ScanSettings,
    ) -> BoxFuture<'a, Result<RunnerOutput, ClusterError>> {
        Box::pin(run(id, dc, verified, settings))
    }
}

/// Puts the agent into the debug container (its own filesystem, never the
/// target's), after checking the node runs this build's architecture.
async fn upload_agent(id: &ScanIdentity, dc: &DebugHandle) -> Result<(), ClusterError> {
    if AGENT.is_empty() {
        return Err(runner_error(
            "this dscan was built without the file agent (no static libc at build time); \
             rebuild with a static libc (Debian: libc6-dev)"
                .into(),
        ));
    }
    let control = dc.control(&id.client);
    let out = control
        .run(
            "uname -m",
            debug::Stdin::None,
            Duration::from_secs(60),
            4096,
        )
        .await?;
    let machine = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !super::indebug::machine_names().contains(&machine.as_str()) {
        return Err(runner_error(format!(
            "the debug container runs on {machine:?}, but this dscan's file agent is built for {}; \
             run dscan from a machine of the node's architecture",
            std::env::consts::ARCH
        )));
    }
    let n = AGENT.len();
    let script = format!(
        "umask 077 && mkdir -p {DIR} && head -c {n} > {AGENT_PATH}.part && \
         [ \"$(wc -c < {AGENT_PATH}.part)\" -eq {n} ] && chmod 0700 {AGENT_PATH}.part && \
         mv -f {AGENT_PATH}.part {AGENT_PATH}"
    );
    let out = control
        .run(
            &script,
            debug::Stdin::Counted(AGENT),
            Duration::from_secs(120),
            4096,
        )
        .await?;
    if out.code != Some(0) {
        return Err(runner_error(format!(
            "uploading the file agent into the debug container failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

async fn run(
    id: &ScanIdentity,
    dc: &DebugHandle,
    verified: &VerifiedRoot,
    settings: &ScanSettings,
) -> Result<RunnerOutput, ClusterError> {
    let profile = settings.profile.clone().ok_or_else(|| {
        runner_error(
            "the native runner needs --profile (an InSpec-language profile directory)".into(),
        )
    })?;
    if !profile.is_dir() {
        return Err(runner_error(format!(
            "the native runner reads a profile directory; {} is not one",
            profile.display()
        )));
    }
    let root = format!("/proc/{}/root", verified.pid);
    let mut agent = dc.attach(&id.client, &[AGENT_PATH, &root]).await?;
    let (Some(stdout), Some(stdin)) = (agent.stdout(), agent.stdin()) else {
        return Err(runner_error(
            "the agent's exec session has no stdin or stdout".into(),
        ));
    };
    let status = agent.take_status();
    let handle = tokio::runtime::Handle::current();
    let reader = dc.run_as_user.map_or_else(
        || "the debug container's user".to_string(),
        |u| format!("uid {u}"),
    );
    let options = dscan_engine::Options {
        profile_ref: profile.display().to_string(),
        virtualization: Some(VIRTUALIZATION.into()),
        ..Default::default()
    };
    // The engine is synchronous: it runs on a blocking thread and talks to
    // the agent through bridges to the exec session's streams.
    let work = tokio::task::spawn_blocking(move || {
        let input = BufReader::new(SyncIoBridge::new_with_handle(stdout, handle.clone()));
        let output = BufWriter::new(SyncIoBridge::new_with_handle(stdin, handle));
        let fs = dscan_targetfs::wire::RemoteFs::connect(input, output)
            .map_err(|e| format!("the file agent did not start: {e}"))?
            .reading_as(reader);
        let report = dscan_engine::run(&profile, &fs, &options).map_err(|e| e.to_string());
        tracing::info!(
            "native runner: {} agent round trips ({} requests)",
            fs.round_trips(),
            fs.requests()
        );
        // The agent ends on BYE (closing an exec session's stdin is not
        // always possible from this side).
        if let Err(e) = fs.bye() {
            tracing::warn!("could not end the file agent: {e}");
        }
        report
    });
    let report = tokio::time::timeout(settings.scan_timeout, work)
        .await
        .map_err(|_| ClusterError::Timeout {
            action: "the native scan".into(),
            after: settings.scan_timeout,
        })?
        .map_err(|e| ClusterError::Internal(e.to_string()))?
        .map_err(runner_error)?;
    if let Some(status) = status {
        // The agent ends when its input does; its status is not the scan's.
        let _ = tokio::time::timeout(Duration::from_secs(10), status).await;
    }
    let limited = limited_by_permissions(&report);
    if limited > 0 {
        tracing::warn!(
            "{limited} result(s) were limited by the target's own permissions: the agent reads as the target's user, \
             and what that user cannot read is reported as not readable, never passed"
        );
    }
    let bytes = serde_json::to_vec(&report).map_err(|e| runner_error(e.to_string()))?;
    if bytes.len() > settings.max_results {
        return Err(ScanError::results(
            Some(bytes.len() as u64),
            format!(
                "the results are {} bytes, over the {}-byte cap (--max-results-mib)",
                bytes.len(),
                settings.max_results
            ),
        ));
    }
    Ok((bytes, None))
}

/// Results whose message says a read was refused by the target's own
/// permissions.
pub fn limited_by_permissions(report: &serde_json::Value) -> usize {
    report["profiles"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["controls"].as_array().into_iter().flatten())
        .flat_map(|c| c["results"].as_array().into_iter().flatten())
        .filter(|r| {
            ["message", "skip_message"].iter().any(|k| {
                r[k].as_str()
                    .is_some_and(|m| m.contains("(the target's own permissions)"))
            })
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_agent_is_a_static_executable() {
        assert!(
            AGENT.starts_with(b"\x7fELF"),
            "no agent was built (static libc missing?)"
        );
        crate::scan::toolkit::check_static_elf(AGENT)
            .expect("the agent must be static: the debug image's loader is not ours to trust");
        println!("agent: {} bytes", AGENT.len());
    }
}
