//! The scan phase, run as the temporary identity: gather facts, let the
//! access-strategy plugins plan, add and verify the debug container, and run
//! the profile with a runner.

pub mod cinc;
pub mod facts;
pub mod indebug;
pub mod native;
pub mod probe;
pub mod profile;
pub mod select;
pub mod standin;
pub mod toolkit;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::access::{AccessMode, AccessPlan};
use crate::cluster::{ClusterError, ScanContext, ScanIdentity, debug};
use crate::scan_error::ScanError;

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
    /// dscan's own engine on this machine, reading the target through the
    /// file agent in a same-user debug container (no privilege, any Pod
    /// Security level the target fits; nothing to install).
    Native,
}

impl Runner {
    /// The implementation.
    pub fn imp(self) -> &'static dyn ScanRunner {
        match self {
            Runner::Local => &LocalRunner,
            Runner::Standin => &StandinRunner,
            Runner::InDebug => &InDebugRunner,
            Runner::Native => &native::NativeRunner,
        }
    }

    /// The name users and strategies see.
    pub fn name(self) -> &'static str {
        self.imp().name()
    }

    /// The access mode this runner works with.
    pub fn needs(self) -> AccessMode {
        self.imp().needs()
    }
}

/// What a runner produced: HDF JSON, and the scanner's exit code when a
/// scanner process ran.
pub type RunnerOutput = (Vec<u8>, Option<i32>);

/// A way of running the profile against a verified debug container.
pub trait ScanRunner: Send + Sync {
    /// Its name (`--runner`).
    fn name(&self) -> &'static str;
    /// The access mode it works with; strategies are asked for a plan of
    /// this mode.
    fn needs(&self) -> AccessMode;
    /// Readies the verified debug container: the chroot wrapper's runners
    /// need the verified static toolkit in it; others need nothing here.
    fn prepare<'a>(
        &'a self,
        id: &'a ScanIdentity,
        dc: &'a debug::DebugHandle,
        settings: &'a ScanSettings,
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        if self.needs() != AccessMode::ChrootWrapper {
            return Box::pin(async { Ok(()) });
        }
        Box::pin(async move {
            let kit = settings.toolkit.as_ref().ok_or_else(|| {
                ScanError::runner(
                    self.name(),
                    "the chroot wrapper needs the static toolkit, and none was prepared".into(),
                )
            })?;
            upload_toolkit(id, dc, kit).await
        })
    }
    /// Runs the profile.
    fn run<'a>(
        &'a self,
        id: &'a ScanIdentity,
        dc: &'a debug::DebugHandle,
        verified: &'a debug::VerifiedRoot,
        settings: &'a ScanSettings,
    ) -> BoxFuture<'a, Result<RunnerOutput, ClusterError>>;
}

/// dscan's stand-in checks through the chroot wrapper.
struct StandinRunner;

impl ScanRunner for StandinRunner {
    fn name(&self) -> &'static str {
        "standin"
    }
    fn needs(&self) -> AccessMode {
        AccessMode::ChrootWrapper
    }
    fn run<'a>(
        &'a self,
        id: &'a ScanIdentity,
        dc: &'a debug::DebugHandle,
        _verified: &'a debug::VerifiedRoot,
        settings: &'a ScanSettings,
    ) -> BoxFuture<'a, Result<RunnerOutput, ClusterError>> {
        Box::pin(async move { Ok((standin::run(id, dc, settings.max_results).await?, None)) })
    }
}

/// CINC Auditor on this machine, through the chroot wrapper.
struct LocalRunner;

impl ScanRunner for LocalRunner {
    fn name(&self) -> &'static str {
        "local"
    }
    fn needs(&self) -> AccessMode {
        AccessMode::ChrootWrapper
    }
    fn run<'a>(
        &'a self,
        id: &'a ScanIdentity,
        dc: &'a debug::DebugHandle,
        verified: &'a debug::VerifiedRoot,
        settings: &'a ScanSettings,
    ) -> BoxFuture<'a, Result<RunnerOutput, ClusterError>> {
        Box::pin(async move {
            let (bytes, code) = cinc::run(id, dc, settings, &verified.root).await?;
            Ok((bytes, Some(code)))
        })
    }
}

/// CINC Auditor inside the graft strategy's debug container.
struct InDebugRunner;

impl ScanRunner for InDebugRunner {
    fn name(&self) -> &'static str {
        "in-debug"
    }
    fn needs(&self) -> AccessMode {
        AccessMode::Graft
    }
    fn run<'a>(
        &'a self,
        id: &'a ScanIdentity,
        dc: &'a debug::DebugHandle,
        verified: &'a debug::VerifiedRoot,
        settings: &'a ScanSettings,
    ) -> BoxFuture<'a, Result<RunnerOutput, ClusterError>> {
        Box::pin(async move {
            let (bytes, code) = indebug::run(id, dc, verified.pid, settings).await?;
            Ok((bytes, Some(code)))
        })
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
    /// `--node-debug-namespace`: where the node-debug fallback's pod runs.
    pub node_debug_namespace: Option<String>,
    /// Options for strategies.
    pub strategy_options: Vec<(String, String)>,
    /// Limit for the debug container to start.
    pub start_timeout: Duration,
    /// Limit for the scanner.
    pub scan_timeout: Duration,
    /// Largest results accepted, bytes.
    pub max_results: usize,
    /// The static toolkit uploaded for the chroot wrapper (runners `local`
    /// and `standin`), verified before the cluster is touched.
    pub toolkit: Option<toolkit::Toolkit>,
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
    /// The image the node reports the debug container runs (a repo digest
    /// such as `docker.io/library/busybox@sha256:…`), when it reports one.
    pub debug_image_id: Option<String>,
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
    ctx.step("gathering facts about the target");
    let mut facts = facts::gather(&ctx, &settings).await?;
    // Same-user access needs the target's user: when neither the pod spec
    // nor the node states it, a probe container reads it (an ephemeral one:
    // not when the cluster serves none).
    if settings.runner.needs() == AccessMode::PathPrefix
        && facts.run_as_user.is_none()
        && facts.ephemeral_containers
    {
        ctx.step("finding out who the target runs as (probe container)");
        let (uid, gid) =
            probe::target_user(&ctx, &facts, &settings.debug_image, settings.start_timeout).await?;
        facts.run_as_user = Some(uid);
        facts.run_as_group = Some(gid);
        facts.options.retain(|(k, _)| k != "uid-source");
        facts
            .options
            .insert(0, ("uid-source".into(), probe::SOURCE.into()));
    }
    let container_id = debug::container_id_hex(facts.container_id.as_deref())?;
    let start_by = facts
        .options
        .iter()
        .rev()
        .find(|(k, _)| k == "start-by")
        .and_then(|(_, v)| v.parse().ok());
    let ephemeral = if facts.ephemeral_containers {
        ephemeral_path(&ctx, &settings, &plugins, &facts, &container_id, start_by).await
    } else {
        Err(ScanError::access(
            "the API server does not serve pods/ephemeralcontainers (the feature is off)".into(),
        ))
    };
    match ephemeral {
        Err(e) => match refusal(&e) {
            Some(why) => {
                node_path(
                    &ctx,
                    &settings,
                    plugins,
                    facts,
                    &container_id,
                    start_by,
                    why,
                )
                .await
            }
            None => Err(e),
        },
        ok => ok,
    }
}

/// Whether an error means the cluster refuses ephemeral containers (rather
/// than a failure of this plan or of the target), and what refused them.
fn refusal(e: &ClusterError) -> Option<String> {
    match e {
        ClusterError::PodSecurityRefused(why) => Some(format!(
            "Pod Security Admission refused every admissible debug container: {why}"
        )),
        ClusterError::Api {
            action,
            code: Some(403),
            message,
        } if action == "add the debug container" => Some(format!(
            "the API server refused the debug container (403 Forbidden: {message}); an admission webhook or policy denies pods/ephemeralcontainers"
        )),
        ClusterError::Scan(ScanError::Access { message, .. })
            if message.contains("does not serve pods/ephemeralcontainers") =>
        {
            Some(message.clone())
        }
        _ => None,
    }
}

/// The node-debug fallback: when ephemeral containers are refused and the
/// user allowed it, a pod on the target's node reaches the target; when not
/// allowed, the error names the refusal and the flags that would.
async fn node_path(
    ctx: &ScanContext,
    settings: &ScanSettings,
    plugins: std::sync::Arc<crate::plugin::PluginSet>,
    mut facts: crate::access::TargetFacts,
    container_id: &str,
    start_by: Option<u64>,
    why: String,
) -> Result<ScanOutcome, ClusterError> {
    let id = &ctx.identity;
    let listed = settings.strategies.iter().any(|s| s == NODE_DEBUG);
    if !listed && !settings.allow_privileged {
        return Err(ClusterError::Target(format!(
            "{why}. dscan can fall back to a short-lived pod on the target's node (hostPID) that never touches the target pod: \
             add node-debug to --strategy (or pass --allow-privileged) and name a namespace whose Pod Security level is \
             privileged with --node-debug-namespace NS"
        )));
    }
    let Some(namespace) = settings.node_debug_namespace.clone() else {
        return Err(ClusterError::Target(format!(
            "{why}. The node-debug fallback is allowed but has nowhere to run: name a namespace whose Pod Security \
             level is privileged with --node-debug-namespace NS"
        )));
    };
    let Some(node) = facts.node.clone() else {
        return Err(ScanError::access(format!(
            "{why}; and the target pod names no node, so no pod can be placed beside it"
        )));
    };
    tracing::warn!("{why}; falling back to a pod on node {node} (node-debug)");
    ctx.step(&format!(
        "ephemeral containers refused; planning a pod on node {node}"
    ));
    facts.ephemeral_refused = Some(why);
    facts.node_debug_namespace = Some(namespace.clone());
    let mut order = settings.strategies.clone();
    if !listed {
        order.push(NODE_DEBUG.into());
    }
    let chosen = select::choose_node(
        plugins,
        &order,
        facts,
        settings.allow_privileged,
        settings.runner.needs(),
    )
    .await?;
    ctx.step(&format!(
        "creating the node pod in namespace {namespace} on node {node}"
    ));
    let handle = ctx
        .node
        .create(&namespace, &node, &chosen.plan, start_by)
        .await?;
    crate::cluster::session::wait_authorized_for(
        &id.client,
        &namespace,
        &handle.target.pod,
        crate::cluster::node::NODE_GRANTS,
        settings.start_timeout,
    )
    .await?;
    ctx.step(&format!(
        "waiting for the node pod {} to run",
        handle.target.pod
    ));
    let image_id = handle
        .wait_running(&id.client, settings.start_timeout)
        .await?;
    ctx.hold("after-debug-container").await;
    ctx.step("checking that the node pod reaches the target's root");
    let verified = handle.verify_root(&id.client, container_id).await?;
    let runner = settings.runner.imp();
    runner.prepare(id, &handle, settings).await?;
    ctx.hold("after-root-check").await;
    ctx.step(&format!("running the scanner ({} runner)", runner.name()));
    let (results, scanner_exit) = runner.run(id, &handle, &verified, settings).await?;
    let plan = AccessPlan {
        debug_container: chosen.plan.pod.clone(),
        locate: crate::access::RootLocator::ContainerId(container_id.to_string()),
        mode: chosen.plan.mode,
        rbac: vec![],
        notes: chosen.plan.notes.clone(),
    };
    Ok(ScanOutcome {
        strategy: chosen.name,
        declined: chosen.declined,
        plan,
        debug_container: format!("{namespace}/{}", handle.target.pod),
        debug_image_id: (!image_id.is_empty()).then_some(image_id),
        target_pid: verified.pid,
        results,
        scanner_exit,
    })
}

/// How a plan the server refused is listed among the declined.
const SERVER_REFUSED: &str = "the server refused its debug container";

/// The built-in node-level strategy's name.
pub const NODE_DEBUG: &str = "node-debug";

/// The ephemeral-container path: a plan, the debug container, the root
/// check, the runner.
async fn ephemeral_path(
    ctx: &ScanContext,
    settings: &ScanSettings,
    plugins: &std::sync::Arc<crate::plugin::PluginSet>,
    facts: &crate::access::TargetFacts,
    container_id: &str,
    start_by: Option<u64>,
) -> Result<ScanOutcome, ClusterError> {
    let run_id = ctx.run_id.clone();
    let id = &ctx.identity;
    let facts = facts.clone();
    let settings = settings.clone();
    ctx.step("asking the access strategies for a plan");
    let name = debug::container_name(&run_id);
    // Least privileged first: when the server refuses a plan for Pod Security
    // (the namespace's level may be unknown to us: no label, a cluster-wide
    // default), the next strategy in the order gets its turn.
    let mut order = settings.strategies.clone();
    let mut refused: Vec<(String, String)> = vec![];
    let (chosen, dc) = loop {
        let chosen = match select::choose(
            plugins.clone(),
            &order,
            facts.clone(),
            settings.allow_privileged,
            settings.runner.needs(),
            refused.clone(),
        )
        .await
        {
            Ok(c) => c,
            // The server refused what could be planned and nothing else
            // fits: Pod Security refused every admissible debug container.
            Err(e) if refused.iter().any(|(_, w)| w.starts_with(SERVER_REFUSED)) => {
                return Err(ClusterError::PodSecurityRefused(e.to_string()));
            }
            Err(e) => return Err(e),
        };
        ctx.step(&format!(
            "adding debug container {name} (strategy {})",
            chosen.name
        ));
        match debug::DebugHandle::add(
            &id.client,
            &id.target,
            &name,
            &chosen.plan.debug_container,
            start_by,
        )
        .await
        {
            Ok(handle) => break (chosen, handle),
            Err(ClusterError::PodSecurityRefused(why)) => {
                tracing::info!(
                    "Pod Security refused strategy {}'s debug container: {why}",
                    chosen.name
                );
                let rest: Vec<String> = order
                    .iter()
                    .skip_while(|n| **n != chosen.name)
                    .skip(1)
                    .cloned()
                    .collect();
                if rest.is_empty() {
                    return Err(ClusterError::PodSecurityRefused(if refused.is_empty() {
                        why
                    } else {
                        let earlier: Vec<String> = refused
                            .iter()
                            .map(|(n, w)| format!("  - {n}: {w}"))
                            .collect();
                        format!("{why}; before it:\n{}", earlier.join("\n"))
                    }));
                }
                refused = chosen.declined;
                refused.push((chosen.name.clone(), format!("{SERVER_REFUSED}: {why}")));
                order = rest;
            }
            Err(e) => return Err(e),
        }
    };
    ctx.debug.register(&dc)?;
    ctx.step(&format!(
        "waiting for {name} to run (pulling {})",
        chosen.plan.debug_container.image
    ));
    let image_id = dc.wait_running(&id.client, settings.start_timeout).await?;
    let image = &chosen.plan.debug_container.image;
    if let Some(advice) = pin_advice(image, &image_id) {
        tracing::warn!(
            "the debug container's image {image} (strategy {}) is not pinned by digest; {advice}",
            chosen.name
        );
    }
    ctx.hold("after-debug-container").await;
    ctx.step(&format!("checking that {name} reaches the target's root"));
    let verified = dc.verify_root(&id.client, container_id).await?;
    let runner = settings.runner.imp();
    ctx.step(&format!(
        "preparing {name} for the {} runner",
        runner.name()
    ));
    runner.prepare(id, &dc, &settings).await?;
    ctx.hold("after-root-check").await;
    ctx.step(&format!("running the scanner ({} runner)", runner.name()));
    let (results, scanner_exit) = runner.run(id, &dc, &verified, &settings).await?;
    Ok(ScanOutcome {
        strategy: chosen.name,
        declined: chosen.declined,
        plan: chosen.plan,
        debug_container: name,
        debug_image_id: (!image_id.is_empty()).then_some(image_id),
        target_pid: verified.pid,
        results,
        scanner_exit,
    })
}

/// Where the chroot wrapper finds the toolkit in the debug container.
pub const TOOLKIT_PATH: &str = crate::access::contract::state::TOOLKIT;

/// Uploads the verified toolkit into the debug container (its own root,
/// never the target's) and checks its digest there.
async fn upload_toolkit(
    id: &ScanIdentity,
    dc: &debug::DebugHandle,
    kit: &toolkit::Toolkit,
) -> Result<(), ClusterError> {
    let control = dc.control(&id.client);
    let script = format!(
        "umask 022 && head -c {n} > {TOOLKIT_PATH}.part && chmod 0755 {TOOLKIT_PATH}.part && \
         mv -f {TOOLKIT_PATH}.part {TOOLKIT_PATH} && {TOOLKIT_PATH} sha256sum {TOOLKIT_PATH}",
        n = kit.bytes.len()
    );
    let out = control
        .run(
            &script,
            debug::Stdin::Counted(&kit.bytes),
            Duration::from_secs(120),
            4096,
        )
        .await?;
    let seen = String::from_utf8_lossy(&out.stdout);
    if out.code != Some(0) || !seen.starts_with(&kit.sha256) {
        return Err(ScanError::debug_container(
            &dc.name,
            format!(
                "uploading the static toolkit ({}) into the debug container failed: {}{}",
                kit.path.display(),
                String::from_utf8_lossy(&out.stderr).trim(),
                if seen.is_empty() {
                    String::new()
                } else {
                    format!(" (digest there: {})", seen.trim())
                }
            ),
        ));
    }
    Ok(())
}

/// For an image not pinned by digest: how to pin it, using the digest the
/// node reports it ran (`imageID`), so the next scan runs the same bits.
fn pin_advice(image: &str, image_id: &str) -> Option<String> {
    if image.contains("@sha256:") {
        return None;
    }
    let generic = "pin it (--debug-image or --scanner-image IMAGE@sha256:…) so every scan runs \
                   the same bits";
    let Some(at) = image_id.find("@sha256:") else {
        return Some(generic.to_string());
    };
    let digest = &image_id[at + 1..];
    // The repository is the reference without its tag (a `:` after the last
    // `/`; one before it is a registry port).
    let repo = match image.rfind(':') {
        Some(c) if !image[c..].contains('/') => &image[..c],
        _ => image,
    };
    Some(format!(
        "this run's node ran it as {digest}; pin it to that with {repo}@{digest} \
         (--debug-image or --scanner-image) so every scan runs the same bits"
    ))
}

#[cfg(test)]
mod tests {
    use super::pin_advice;

    #[test]
    fn pinned_images_need_no_advice() {
        assert_eq!(
            pin_advice("busybox@sha256:ab12", "busybox@sha256:ab12"),
            None
        );
    }

    #[test]
    fn advice_names_the_digest_the_node_ran() {
        let id = "docker.io/library/busybox@sha256:0123abcd";
        let advice = pin_advice("docker.io/library/busybox:1.36", id).unwrap();
        assert!(
            advice.contains("docker.io/library/busybox@sha256:0123abcd"),
            "{advice}"
        );
        // A registry port is not a tag.
        let advice = pin_advice("registry:5000/tools/busybox", "x@sha256:99").unwrap();
        assert!(
            advice.contains("registry:5000/tools/busybox@sha256:99"),
            "{advice}"
        );
        let advice = pin_advice("registry:5000/busybox:1.36", "x@sha256:99").unwrap();
        assert!(
            advice.contains("registry:5000/busybox@sha256:99"),
            "{advice}"
        );
    }

    #[test]
    fn without_a_reported_digest_the_advice_is_generic() {
        let advice = pin_advice("busybox:1.36", "").unwrap();
        assert!(advice.contains("IMAGE@sha256:…"), "{advice}");
    }
}
