//! The scan phase, run as the temporary identity: gather facts, let the
//! access-strategy plugins plan, add and verify the debug container, and run
//! the profile with a runner.

pub mod cinc;
pub mod facts;
pub mod indebug;
pub mod profile;
pub mod select;
pub mod standin;

use std::time::Duration;

use crate::access::{AccessMode, AccessPlan};
use crate::cluster::{ClusterError, ScanContext, debug};

/// How the profile is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runner {
    /// CINC Auditor (or InSpec) on this machine through `train-k8s-container`,
    /// pointed at the debug container with the restricted kubeconfig.
    Local,
    /// dscan's built-in stand-in checks (not CINC; for demos and clusters
    /// without a scanner): a few container-baseline checks run through the
    /// debug container's chroot wrapper against the target's real files.
    Standin,
    /// CINC Auditor inside the debug container (the scanner image), in a
    /// grafted view of the target's root (graft strategy); the profile goes
    /// in over exec stdin, the results come back over exec stdout.
    InDebug,
}

impl Runner {
    /// The name strategies see (`facts.runner`).
    pub fn name(self) -> &'static str {
        match self {
            Runner::Local => "local",
            Runner::Standin => "standin",
            Runner::InDebug => "in-debug",
        }
    }

    /// The access mode this runner works with.
    pub fn needs(self) -> AccessMode {
        match self {
            Runner::Local | Runner::Standin => AccessMode::ChrootWrapper,
            Runner::InDebug => AccessMode::Graft,
        }
    }
}

/// Settings of the scan phase.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    /// Strategy plugin names, in the order tried.
    pub strategies: Vec<String>,
    /// The runner.
    pub runner: Runner,
    /// Profile (directory or archive) for CINC.
    pub profile: Option<std::path::PathBuf>,
    /// Scanner executable: on this machine for the local runner (default:
    /// `cinc-auditor`, then `inspec`, on PATH); inside the scanner image for
    /// the in-debug runner (default [`indebug::DEFAULT_SCANNER`]).
    pub scanner: Option<std::path::PathBuf>,
    /// The scanner's runtime directory in its image, grafted into the view
    /// (in-debug; default: two levels above the scanner).
    pub scanner_runtime: Option<std::path::PathBuf>,
    /// The scanner image (in-debug runner, graft strategy).
    pub scanner_image: String,
    /// The profile, packed and checked before the cluster is touched (in-debug).
    pub profile_tar: Option<std::sync::Arc<Vec<u8>>>,
    /// Debug image reference.
    pub debug_image: String,
    /// `--allow-privileged`.
    pub allow_privileged: bool,
    /// Options for strategies.
    pub strategy_options: Vec<(String, String)>,
    /// Limit for the debug container to start.
    pub start_timeout: Duration,
    /// Limit for the scanner.
    pub scan_timeout: Duration,
    /// Largest results accepted, bytes.
    pub max_results: usize,
}

/// What the scan phase produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanOutcome {
    /// The strategy used.
    pub strategy: String,
    /// Why the others declined.
    pub declined: Vec<(String, String)>,
    /// The plan executed.
    pub plan: AccessPlan,
    /// The debug container.
    pub debug_container: String,
    /// The target's PID as seen from the debug container.
    pub target_pid: i64,
    /// HDF JSON.
    #[serde(skip)]
    pub results: Vec<u8>,
    /// Scanner exit code, when a scanner process ran.
    pub scanner_exit: Option<i32>,
}

/// Runs the scan phase.
pub async fn run(
    ctx: ScanContext,
    settings: ScanSettings,
    plugins: std::sync::Arc<crate::plugin::PluginSet>,
) -> Result<ScanOutcome, ClusterError> {
    let run_id = ctx.run_id.clone();
    let id = &ctx.identity;
    let facts = facts::gather(&ctx, &settings).await?;
    let chosen = select::choose(
        plugins,
        &settings.strategies,
        facts,
        settings.allow_privileged,
        settings.runner.needs(),
    )
    .await?;
    let image = &chosen.plan.debug_container.image;
    if !image.contains("@sha256:") {
        tracing::warn!(
            "the debug container's image {image} (strategy {}) is not pinned by digest; pin it \
             (--debug-image or --scanner-image IMAGE@sha256:…) so every scan runs the same bits",
            chosen.name
        );
    }
    let name = debug::container_name(&run_id);
    debug::add(
        &id.client,
        &id.namespace,
        &id.pod,
        &id.container,
        &name,
        &chosen.plan.debug_container,
    )
    .await?;
    ctx.debug.register(&name)?;
    debug::wait_running(
        &id.client,
        &id.namespace,
        &id.pod,
        &name,
        settings.start_timeout,
    )
    .await?;
    ctx.hold("after-debug-container").await;
    let shell = debug::control_shell(&chosen.plan.debug_container.command);
    let target_pid = debug::verify_root(&id.client, &id.namespace, &id.pod, &name, &shell).await?;
    let (results, scanner_exit) = match settings.runner {
        Runner::Standin => (standin::run(id, &name, settings.max_results).await?, None),
        Runner::Local => {
            let (bytes, code) = cinc::run(id, &name, &settings).await?;
            (bytes, Some(code))
        }
        Runner::InDebug => {
            let (bytes, code) = indebug::run(id, &name, &shell, target_pid, &settings).await?;
            (bytes, Some(code))
        }
    };
    Ok(ScanOutcome {
        strategy: chosen.name,
        declined: chosen.declined,
        plan: chosen.plan,
        debug_container: name,
        target_pid,
        results,
        scanner_exit,
    })
}
