//! The debug container: add it (strategic-merge patch of
//! `pods/ephemeralcontainers`), watch until it runs, prove it reaches the
//! target's root, run commands in it, and stop it.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::Api;
use kube::api::{AttachParams, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::json;

use super::{CALL_TIMEOUT, ClusterError, TargetRef, bounded};
use crate::access::DebugContainer;
use crate::access::contract::state::{CLAIMED, MAIN_PID, READY, ROOT_FD, TARGET_PID};
use crate::scan_error::ScanError;

/// Output of one command.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// stdout (capped).
    pub stdout: Vec<u8>,
    /// stderr (capped).
    pub stderr: Vec<u8>,
    /// Exit code when the command ran.
    pub code: Option<i32>,
    /// The status message when it did not (or failed).
    pub message: String,
}

/// What an exec writes to the command's stdin.
#[derive(Debug, Clone, Copy)]
pub enum Stdin<'a> {
    /// No stdin.
    None,
    /// The command reads exactly these bytes (`head -c N`); stdin stays open
    /// until the command ends. Works over every exec protocol: on v4
    /// (API servers before 1.30) there is no way to signal end of input, and
    /// closing our side closes the whole WebSocket before the status arrives.
    Counted(&'a [u8]),
}

/// Runs `argv` in a container, with a deadline and an output cap.
pub async fn exec(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    argv: &[&str],
    limit: Duration,
    cap: usize,
) -> Result<ExecOutput, ClusterError> {
    exec_with_input(
        client,
        namespace,
        pod,
        container,
        argv,
        Stdin::None,
        limit,
        cap,
    )
    .await
}

/// [`exec`] that also writes `input` to the command's stdin (see [`Stdin`]).
#[allow(clippy::too_many_arguments)] // one exec call's parameters, all needed
pub async fn exec_with_input(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    argv: &[&str],
    input: Stdin<'_>,
    limit: Duration,
    cap: usize,
) -> Result<ExecOutput, ClusterError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = AttachParams::default()
        .container(container)
        .stdin(!matches!(input, Stdin::None))
        .stdout(true)
        .stderr(true);
    let action = format!(
        "exec {:?} in {namespace}/{pod}/{container}",
        argv.first().copied().unwrap_or_default()
    );
    let mut attached = bounded(
        &action,
        CALL_TIMEOUT,
        api.exec(pod, argv.iter().copied(), &params),
    )
    .await?;
    let (mut out, mut err) = (attached.stdout(), attached.stderr());
    let writer = attached.stdin();
    let status = attached.take_status();
    // The writer is handed back and kept until the command's status has
    // arrived: dropping it ends stdin, which on v4 closes the WebSocket.
    let feed = async move {
        let (Some(mut w), Stdin::Counted(data)) = (writer, input) else {
            return None;
        };
        use tokio::io::AsyncWriteExt;
        // A command that stops reading early ends the stream; its exit
        // status tells what happened, so a failed write is not an error here.
        let _ = w.write_all(data).await;
        let _ = w.flush().await;
        Some(w)
    };
    let read = |stream: Option<_>| async move {
        let mut buf = Vec::new();
        if let Some(mut s) = stream {
            let mut chunk = [0u8; 16 * 1024];
            loop {
                let n: usize = match tokio::io::AsyncReadExt::read(&mut s, &mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if buf.len() + n > cap {
                    return Err(buf.len() + n);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
        Ok(buf)
    };
    let work = async {
        let (o, e, s, _stdin_kept_open) = tokio::join!(
            read(out.take()),
            read(err.take()),
            async {
                match status {
                    Some(s) => s.await,
                    None => None,
                }
            },
            feed
        );
        (o, e, s)
    };
    let (o, e, s) = tokio::time::timeout(limit, work)
        .await
        .map_err(|_| ClusterError::Timeout {
            action: action.clone(),
            after: limit,
        })?;
    let (stdout, stderr) = match (o, e) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(n), _) | (_, Err(n)) => {
            return Err(ScanError::debug_container(
                container,
                format!("{action}: output exceeded the {cap}-byte cap ({n} bytes so far)"),
            ));
        }
    };
    let Some(status) = s else {
        return Err(ClusterError::Api {
            action,
            message: "the exec stream ended without a status".into(),
            code: None,
        });
    };
    let code = if status.status.as_deref() == Some("Success") {
        Some(0)
    } else if status.reason.as_deref() == Some("NonZeroExitCode") {
        status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref()?.parse().ok())
    } else {
        None
    };
    Ok(ExecOutput {
        stdout,
        stderr,
        code,
        message: status.message.unwrap_or_default(),
    })
}

/// This run's debug container: the one handle that adds it, waits for it,
/// verifies it reaches the target's root, drives it and stops it. The
/// session's cleanup stops it through the same handle (recorded in the
/// session's slot as soon as it is added), also after errors and signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugHandle {
    /// The target whose pod holds it.
    pub target: TargetRef,
    /// Its name.
    pub name: String,
    /// Its control shell ([`control_shell`]).
    pub shell: Vec<String>,
    /// It exits at once if started after this (Unix seconds).
    pub start_by: Option<u64>,
    /// The UID it runs as, when the plan set one.
    pub run_as_user: Option<i64>,
}

impl DebugHandle {
    /// Adds the plan's debug container `name` to the target's pod.
    pub async fn add(
        client: &kube::Client,
        target: &TargetRef,
        name: &str,
        spec: &DebugContainer,
        start_by: Option<u64>,
    ) -> Result<DebugHandle, ClusterError> {
        add(client, target, name, spec).await?;
        Ok(DebugHandle {
            target: target.clone(),
            name: name.to_string(),
            shell: control_shell(&spec.command),
            start_by,
            run_as_user: spec.security.run_as_user,
        })
    }

    /// The container of a node-level pod (the node-debug fallback): driven
    /// like a debug container, but it is the pod's own container.
    pub fn node_pod(pod: TargetRef, spec: &DebugContainer, start_by: Option<u64>) -> DebugHandle {
        DebugHandle {
            name: pod.container.clone(),
            target: pod,
            shell: control_shell(&spec.command),
            start_by,
            run_as_user: spec.security.run_as_user,
        }
    }

    /// A debug container a crashed run left behind (from its journal): only
    /// stopping it is possible.
    pub fn left_behind(
        namespace: &str,
        pod: &str,
        name: &str,
        start_by: Option<u64>,
    ) -> DebugHandle {
        DebugHandle {
            target: TargetRef {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                container: String::new(),
                pod_uid: String::new(),
            },
            name: name.to_string(),
            shell: Vec::new(),
            start_by,
            run_as_user: None,
        }
    }

    /// Waits until it runs; returns the image ID the node reports.
    pub async fn wait_running(
        &self,
        client: &kube::Client,
        limit: Duration,
    ) -> Result<String, ClusterError> {
        wait_running(
            client,
            &self.target.namespace,
            &self.target.pod,
            &self.name,
            limit,
        )
        .await
    }

    /// Proves it reaches the target's root (see [`verify_root`]); if it
    /// exited meanwhile, that is the error reported.
    pub async fn verify_root(
        &self,
        client: &kube::Client,
        container_id: &str,
    ) -> Result<VerifiedRoot, ClusterError> {
        let (ns, pod) = (&self.target.namespace, &self.target.pod);
        match verify_root(client, ns, pod, &self.name, &self.shell, container_id).await {
            Ok(v) => Ok(v),
            Err(e) => Err(explain_exit(client, ns, pod, &self.name, e).await),
        }
    }

    /// Drives it with its control shell as `client`'s identity.
    pub fn control<'a>(&'a self, client: &'a kube::Client) -> Control<'a> {
        Control {
            client,
            namespace: &self.target.namespace,
            pod: &self.target.pod,
            name: &self.name,
            shell: &self.shell,
        }
    }

    /// Runs `argv` in it directly (no control shell).
    pub async fn exec(
        &self,
        client: &kube::Client,
        argv: &[&str],
        limit: Duration,
        cap: usize,
    ) -> Result<ExecOutput, ClusterError> {
        exec(
            client,
            &self.target.namespace,
            &self.target.pod,
            &self.name,
            argv,
            limit,
            cap,
        )
        .await
    }

    /// Starts `argv` in it with stdin, stdout and stderr attached, for a
    /// conversation (the file agent's). The caller reads the exit status.
    pub async fn attach(
        &self,
        client: &kube::Client,
        argv: &[&str],
    ) -> Result<kube::api::AttachedProcess, ClusterError> {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.target.namespace);
        let params = AttachParams::default()
            .container(&self.name)
            .stdin(true)
            .stdout(true)
            .stderr(true);
        bounded(
            &format!(
                "attach {:?} in debug container {}",
                argv.first().copied().unwrap_or_default(),
                self.name
            ),
            CALL_TIMEOUT,
            api.exec(&self.target.pod, argv.iter().copied(), &params),
        )
        .await
    }

    /// Stops it (see [`stop`]).
    pub async fn stop(&self, client: &kube::Client) -> Result<Stopped, ClusterError> {
        stop(client, &self.target.namespace, &self.target.pod, &self.name).await
    }

    /// The note for a container that never started.
    pub fn not_started_note(&self, why: &str) -> String {
        not_started_note(&self.name, why, self.start_by)
    }
}

/// A name for the debug container that no earlier run used.
pub fn container_name(run_id: &str) -> String {
    format!("dscan-debug-{run_id}")
}

/// A container spec for a plan's debug container (or node pod): image,
/// command, environment and the plan's security context, nothing else.
pub(crate) fn container_spec(name: &str, dc: &DebugContainer) -> serde_json::Value {
    let sec = &dc.security;
    let mut security = json!({
        "privileged": sec.privileged,
        "allowPrivilegeEscalation": sec.allow_privilege_escalation,
        "capabilities": {"add": sec.capabilities_add, "drop": sec.capabilities_drop},
    });
    if let Some(u) = sec.run_as_user {
        security["runAsUser"] = json!(u);
    }
    if let Some(g) = sec.run_as_group {
        security["runAsGroup"] = json!(g);
    }
    if let Some(n) = sec.run_as_non_root {
        security["runAsNonRoot"] = json!(n);
    }
    if sec.seccomp_runtime_default {
        security["seccompProfile"] = json!({"type": "RuntimeDefault"});
    }
    let env: Vec<_> = dc
        .env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    json!({
        "name": name,
        "image": dc.image,
        "command": dc.command,
        "env": env,
        "imagePullPolicy": "IfNotPresent",
        "securityContext": security,
        "stdin": false,
        "tty": false,
    })
}

/// Adds the plan's debug container (strategic-merge patch).
async fn add(
    client: &kube::Client,
    target: &TargetRef,
    name: &str,
    dc: &DebugContainer,
) -> Result<(), ClusterError> {
    let (namespace, pod) = (target.namespace.as_str(), target.pod.as_str());
    let mut container = container_spec(name, dc);
    container["targetContainerName"] = json!(target.container);
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"spec": {"ephemeralContainers": [container]}});
    let result = bounded(
        "add the debug container",
        CALL_TIMEOUT,
        api.patch_ephemeral_containers(pod, &PatchParams::default(), &Patch::Strategic(patch)),
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(ClusterError::Api { code: Some(404), message, .. }) if message.contains("could not find the requested resource") => {
            Err(ScanError::access(
                "the cluster does not serve pods/ephemeralcontainers (404): ephemeral containers are GA since Kubernetes 1.25; upgrade the cluster or enable the EphemeralContainers feature gate".into(),
            ))
        }
        Err(ClusterError::Api { code: Some(403), message, .. }) if message.contains("violates PodSecurity") => {
            Err(ClusterError::PodSecurityRefused(message))
        }
        Err(e) => Err(e),
    }
}

/// The status of container `name`: an ephemeral container, or (a node
/// pod's) a regular one.
fn status_of(pod: &Pod, name: &str) -> Option<ContainerStatus> {
    let status = pod.status.as_ref()?;
    status
        .ephemeral_container_statuses
        .iter()
        .chain(status.container_statuses.iter())
        .flatten()
        .find(|s| s.name == name)
        .cloned()
}

/// Why the debug container ended before it was used, as an error: what the
/// node reports (reason, exit code, message).
fn exited_early(
    name: &str,
    t: k8s_openapi::api::core::v1::ContainerStateTerminated,
) -> ClusterError {
    ScanError::debug_container(
        name,
        format!(
            "the debug container {name} exited before it was used: {} (exit {}){}",
            t.reason.unwrap_or_default(),
            t.exit_code,
            t.message.map(|m| format!(": {m}")).unwrap_or_default()
        ),
    )
}

/// When a call into the debug container failed: if the container has
/// exited meanwhile, that is the error to report (the call's own error
/// would only say the container was not found).
pub async fn explain_exit(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    name: &str,
    error: ClusterError,
) -> ClusterError {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match bounded("read the pod", CALL_TIMEOUT, api.get(pod)).await {
        Ok(p) => match status_of(&p, name)
            .and_then(|s| s.state)
            .and_then(|s| s.terminated)
        {
            Some(t) => exited_early(name, t),
            None => error,
        },
        Err(_) => error,
    }
}

/// Watches the pod until the debug container runs; distinct errors for the
/// waiting reasons that will not resolve by themselves. Returns the image ID
/// the node reports for it (the digest it actually runs; empty if the
/// runtime reports none).
pub async fn wait_running(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    name: &str,
    limit: Duration,
) -> Result<String, ClusterError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + limit;
    let mut last_reason = String::from("no status yet");
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return Err(ClusterError::Timeout {
                action: format!(
                    "waiting for the debug container {name} to run (last state: {last_reason})"
                ),
                after: limit,
            });
        }
        let secs = u32::try_from(remaining.as_secs().clamp(1, 290)).unwrap_or(290);
        let wp = WatchParams::default()
            .fields(&format!("metadata.name={pod}"))
            .timeout(secs);
        let stream = bounded("watch the target pod", CALL_TIMEOUT, api.watch(&wp, "0")).await?;
        let mut stream = stream.boxed();
        loop {
            let next = tokio::time::timeout(remaining, stream.try_next()).await;
            let event = match next {
                Err(_) => break,
                Ok(Err(e)) => {
                    tracing::debug!("watch ended with {e}; resuming");
                    break;
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(e))) => e,
            };
            let pod = match event {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => p,
                WatchEvent::Deleted(_) => {
                    return Err(ClusterError::Target(format!(
                        "pod {pod} was deleted while the debug container started"
                    )));
                }
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => {
                    tracing::debug!("watch error {}: {}; resuming", e.code, e.message);
                    break;
                }
            };
            let Some(status) = status_of(&pod, name) else {
                continue;
            };
            let state = status.state.unwrap_or_default();
            if state.running.is_some() {
                return Ok(status.image_id);
            }
            if let Some(t) = state.terminated {
                return Err(exited_early(name, t));
            }
            if let Some(w) = state.waiting {
                let reason = w.reason.unwrap_or_default();
                let message = w.message.unwrap_or_default();
                match reason.as_str() {
                    "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => {
                        return Err(ScanError::debug_container(
                            name,
                            format!(
                                "the debug image cannot be pulled ({reason}): {message}. Check --debug-image and that the node can reach its registry"
                            ),
                        ));
                    }
                    "CreateContainerConfigError" | "CreateContainerError" => {
                        return Err(ScanError::debug_container(
                            name,
                            format!("the debug container cannot be created ({reason}): {message}"),
                        ));
                    }
                    _ => last_reason = format!("waiting: {reason} {message}"),
                }
            }
        }
    }
}

/// The shell dscan drives the debug container with: the one its start-up
/// command runs under (`SHELL... -c SCRIPT`). The chroot-wrapper replaces the
/// container's `/bin/sh`, so a fixed `/bin/sh` would land in the target.
pub fn control_shell(command: &[String]) -> Vec<String> {
    match command {
        [shell @ .., dash_c, _] if dash_c == "-c" && !shell.is_empty() => shell.to_vec(),
        _ => vec!["/bin/sh".into()],
    }
}

/// A debug container and the shell dscan drives it with.
pub struct Control<'a> {
    /// Client of the identity making the calls.
    pub client: &'a kube::Client,
    /// Namespace.
    pub namespace: &'a str,
    /// Pod.
    pub pod: &'a str,
    /// The debug container.
    pub name: &'a str,
    /// Its control shell ([`control_shell`]).
    pub shell: &'a [String],
}

impl Control<'_> {
    /// Runs `script` with the control shell, writing `input` to its stdin.
    pub async fn run(
        &self,
        script: &str,
        input: Stdin<'_>,
        limit: Duration,
        cap: usize,
    ) -> Result<ExecOutput, ClusterError> {
        let mut argv: Vec<&str> = self.shell.iter().map(String::as_str).collect();
        argv.extend(["-c", script]);
        exec_with_input(
            self.client,
            self.namespace,
            self.pod,
            self.name,
            &argv,
            input,
            limit,
            cap,
        )
        .await
    }
}

/// The target's root, as the root check found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRoot {
    /// The target's PID as the debug container sees it.
    pub pid: i64,
    /// `device:inode` of the target's root directory (`stat -L -c %d:%i`),
    /// what only the target's root answers: the canary of the local runner.
    pub root: String,
}

/// The hex part of a container ID as the node reports it
/// (`containerd://<hex>`, `cri-o://<hex>`…), checked to be plain lower-case
/// hex of a sane length: it is matched inside the debug container, and an
/// empty or odd ID would match any process.
pub fn container_id_hex(reported: Option<&str>) -> Result<String, ClusterError> {
    let reported = reported.unwrap_or_default();
    let hex = reported.rsplit("://").next().unwrap_or_default();
    if (12..=128).contains(&hex.len())
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex.to_string())
    } else {
        Err(ClusterError::Target(format!(
            "the node reports the target container's ID as {reported:?}, which is not a container runtime ID; \
             dscan identifies the target's process by that ID and cannot scan without it (is the container running?)"
        )))
    }
}

/// Waits for the start-up script to finish, then checks that the located
/// process is the target — its cgroup (the full ID on real nodes) or its
/// mounts (the runtime's state directory) name the target's container ID —
/// and that its root is not the debug container's own (a runtime that
/// ignored `targetContainerName`, or a hostPID pod whose PID 1 is the node's
/// init, would otherwise make us audit the wrong filesystem). The root must
/// be its mount namespace's root (`..` is itself), not a subdirectory the
/// target chrooted into; and where the start-up script captured the root as
/// a descriptor (`root-fd`), the capture must be that root: later commands
/// use the capture, so a target that chroots afterwards changes nothing.
/// Only portable commands: the debug image may be busybox or a full distro.
pub async fn verify_root(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    name: &str,
    shell: &[String],
    container_id: &str,
) -> Result<VerifiedRoot, ClusterError> {
    // The 12-digit prefix is what runtime state paths carry; cgroup paths
    // carry the whole ID, which contains it. `container_id` is checked hex.
    let short: String = container_id.chars().take(12).collect();
    let script = format!(
        r#"i=0; while [ ! -f {READY} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -f {READY} ] || {{ echo "the debug container never became ready" >&2; exit 3; }}
: > {CLAIMED}
t=$(cat {TARGET_PID})
case "$t" in ''|*[!0-9]*) echo "the start-up script recorded no target PID" >&2; exit 3;; esac
a=$(stat -L -c %d:%i /proc/$t/root/ 2>&1) || {{ echo "cannot read /proc/$t/root: $a" >&2; exit 4; }}
b=$(stat -L -c %d:%i /)
[ "$a" != "$b" ] || {{ echo "/proc/$t/root is the debug container's own root" >&2; exit 5; }}
u=$(stat -L -c %d:%i /proc/$t/root/..)
[ "$u" = "$a" ] || {{ echo "the target's root is a subdirectory of its filesystem (its process chrooted into it), so it is not the container's root; dscan does not scan a tree the target chose" >&2; exit 8; }}
grep -qsF "{short}" /proc/$t/cgroup /proc/$t/mountinfo || {{ echo "process $t is not the target: neither its cgroup nor its mounts name container {short}" >&2; exit 6; }}
n=$(readlink /proc/$t/ns/mnt 2>&1) || {{ echo "cannot read the mount namespace of process $t: $n" >&2; exit 9; }}
[ "$n" != "$(readlink /proc/self/ns/mnt)" ] || {{ echo "process $t shares the debug container's mount namespace, so it is not the target" >&2; exit 9; }}
if [ -f {ROOT_FD} ]; then
  m=$(cat {MAIN_PID}); f=$(cat {ROOT_FD})
  case "$m$f" in *[!0-9]*) echo "bad root capture record" >&2; exit 7;; esac
  c=$(stat -L -c %d:%i /proc/$m/fd/$f/ 2>&1) || {{ echo "cannot read the captured root: $c" >&2; exit 7; }}
  [ "$c" = "$a" ] || {{ echo "the root captured at start-up is not the target's root now (the target changed its root)" >&2; exit 7; }}
fi
echo "$t $a""#
    );
    let control = Control {
        client,
        namespace,
        pod,
        name,
        shell,
    };
    let out = control
        .run(&script, Stdin::None, Duration::from_secs(30), 64 * 1024)
        .await?;
    if out.code == Some(0) {
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        let pid = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let root = words.next().unwrap_or_default().to_string();
        return Ok(VerifiedRoot { pid, root });
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(ScanError::debug_container(
        name,
        format!(
            "the debug container cannot reach the target's root filesystem: {}",
            if why.is_empty() { out.message } else { why }
        ),
    ))
}

/// How stopping a debug container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It was running; it was told to stop and seen terminated.
    Stopped,
    /// It had already exited.
    AlreadyExited,
    /// It never started (the node reports why, e.g. ImagePullBackOff). The
    /// node may still start it later; its start-up script then exits at once
    /// (start deadline) or when nobody claims it.
    NotStarted(String),
}

/// Stops the debug container (its start-up script exits on SIGTERM) and waits
/// until it is seen terminated. The entry stays in the pod spec. A container
/// that never started cannot be stopped: that is reported, not hidden.
pub async fn stop(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    name: &str,
) -> Result<Stopped, ClusterError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let current = bounded("read the pod", CALL_TIMEOUT, api.get(pod)).await?;
    let state = status_of(&current, name).and_then(|s| s.state);
    match &state {
        None => {
            return Ok(Stopped::NotStarted(
                "the node reports no status for it yet".into(),
            ));
        }
        Some(s) if s.terminated.is_some() => return Ok(Stopped::AlreadyExited),
        Some(s) if s.running.is_none() => {
            let why = s
                .waiting
                .as_ref()
                .map(|w| {
                    format!(
                        "waiting: {}{}",
                        w.reason.clone().unwrap_or_default(),
                        w.message
                            .as_ref()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "not running".into());
            return Ok(Stopped::NotStarted(why));
        }
        Some(_) => {}
    }
    let command = current
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .and_then(|ecs| ecs.iter().find(|c| c.name == name))
        .and_then(|c| c.command.clone())
        .unwrap_or_default();
    let kill = format!("kill -TERM $(cat {MAIN_PID})");
    let shell = control_shell(&command);
    let control = Control {
        client,
        namespace,
        pod,
        name,
        shell: &shell,
    };
    let _ = control
        .run(&kill, Stdin::None, Duration::from_secs(20), 4096)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pod_now = bounded("read the pod", CALL_TIMEOUT, api.get(pod)).await?;
        if status_of(&pod_now, name)
            .and_then(|s| s.state)
            .is_some_and(|s| s.terminated.is_some())
        {
            return Ok(Stopped::Stopped);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ClusterError::Timeout {
                action: format!("stopping the debug container {name}"),
                after: Duration::from_secs(30),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a never-started debug container will do, for reports.
pub fn not_started_note(name: &str, why: &str, start_by: Option<u64>) -> String {
    let deadline = start_by
        .and_then(|t| k8s_openapi::jiff::Timestamp::from_second(i64::try_from(t).ok()?).ok())
        .map_or_else(
            || "when nobody claims it within its claim window".to_string(),
            |t| format!("at once if it starts after {t}, and otherwise when nobody claims it"),
        );
    format!(
        "debug container {name} was not started ({why}); the node may still start it (image pulls are retried): it then exits by itself {deadline}"
    )
}

#[cfg(test)]
mod tests {
    use super::{container_id_hex, control_shell};

    #[test]
    fn container_ids_must_be_runtime_hex() {
        let id = "containerd://0123456789abcdef0123456789abcdef";
        assert_eq!(
            container_id_hex(Some(id)).unwrap(),
            "0123456789abcdef0123456789abcdef"
        );
        assert!(container_id_hex(Some("cri-o://abcdef012345")).is_ok());
        for bad in [
            "",
            "containerd://",
            "containerd://abc",
            "containerd://0123456789ab; rm -rf /",
            "containerd://0123456789AB",
            "containerd://0123456789ab$(x)",
        ] {
            assert!(container_id_hex(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(container_id_hex(None).is_err());
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_control_shell_is_the_start_up_commands_shell() {
        assert_eq!(
            control_shell(&strings(&["/bin/busybox", "sh", "-c", "x"])),
            strings(&["/bin/busybox", "sh"])
        );
        assert_eq!(
            control_shell(&strings(&["/bin/sh", "-c", "x"])),
            strings(&["/bin/sh"])
        );
        assert_eq!(
            control_shell(&strings(&["sleep", "3600"])),
            strings(&["/bin/sh"])
        );
        assert_eq!(control_shell(&strings(&["-c", "x"])), strings(&["/bin/sh"]));
    }
}
