//! The kubelet: starts each pod's containers, reports their status through
//! the API (waiting → running → terminated), runs execs, and stops containers
//! when their pod is deleted.
//!
//! With root and the runtime helper, containers are real processes in Linux
//! namespaces (see [`crate::runtime`]). Without root it runs in *status-only*
//! mode: statuses move as in a cluster, but nothing runs and exec fails with a
//! message saying why.

pub mod images;
mod security;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::faults::Faults;
use crate::runtime::{ExecSpec, ProcessSpec, Report, RunSpec};
use crate::status::ApiError;
use crate::store::{EventType, Key, Kind, Store};
use images::Images;

/// How the kubelet runs containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeletMode {
    /// Real processes in namespaces.
    Namespaces,
    /// Statuses only; the reason real containers are not possible.
    StatusOnly(String),
}

/// How to start the runtime helper: a program and leading arguments (the
/// helper's `run`/`exec` arguments follow).
#[derive(Debug, Clone)]
pub struct RuntimeCommand {
    /// The program.
    pub program: PathBuf,
    /// Arguments before `run`/`exec`.
    pub args: Vec<String>,
}

#[derive(Debug, Clone)]
struct ContainerState {
    id: String,
    pid: Option<i32>,
    process: Option<ProcessSpec>,
    running: bool,
}

#[derive(Default)]
struct PodState {
    containers: HashMap<String, ContainerState>,
    sandbox_pid: Option<i32>,
    stopping: bool,
}

struct Inner {
    mode: KubeletMode,
    images: Images,
    runtime: Option<RuntimeCommand>,
    dir: PathBuf,
    store: Arc<Store>,
    clock: Clock,
    faults: Faults,
    pods: Mutex<HashMap<String, PodState>>,
    pod_ips: Mutex<u32>,
    /// Runtime helpers still starting, and whether the kubelet has stopped.
    starting: Mutex<Starting>,
}

/// Helpers between spawn and report are not in `pods` yet; shutdown must
/// kill them too, or they go on creating directories and mounts after the
/// simulator's work directory is gone.
#[derive(Default)]
struct Starting {
    stopped: bool,
    next: u64,
    helpers: HashMap<u64, i32>,
}

/// Forgets a starting helper when `spawn_run` ends (also when its task is dropped).
struct StartingGuard<'a> {
    inner: &'a Inner,
    token: u64,
}

impl Drop for StartingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.inner.starting.lock() {
            s.helpers.remove(&self.token);
        }
    }
}

/// The kubelet handle.
#[derive(Clone)]
pub struct Kubelet {
    inner: Arc<Inner>,
}

/// A running exec.
pub struct ExecProcess {
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: ChildStderr,
    waiter: ExecWaiter,
}

/// Waits for (or kills) a running exec.
pub struct ExecWaiter {
    child: Child,
    status_path: PathBuf,
}

impl ExecProcess {
    /// The command's stdin, stdout and stderr, and its waiter.
    pub fn split(self) -> (Option<ChildStdin>, ChildStdout, ChildStderr, ExecWaiter) {
        (self.stdin, self.stdout, self.stderr, self.waiter)
    }
}

/// How an exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The command ran and exited.
    Exited(i32),
    /// The command could not be started (e.g. no such executable).
    StartFailed(String),
}

impl ExecWaiter {
    /// Waits for the command and reports its outcome.
    pub async fn wait(mut self) -> ExecOutcome {
        let code = self
            .child
            .wait()
            .await
            .ok()
            .and_then(|s| s.code())
            .unwrap_or(255);
        let report = tokio::fs::read(&self.status_path)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<Report>(&b).ok());
        let _ = tokio::fs::remove_file(&self.status_path).await;
        match report {
            Some(Report::Exited { code }) => ExecOutcome::Exited(code),
            Some(Report::Failed { message }) => ExecOutcome::StartFailed(message),
            _ => ExecOutcome::StartFailed(format!(
                "the runtime helper ended with code {code} before running the command"
            )),
        }
    }

    /// Kills the command.
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn container_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl Kubelet {
    /// Starts the kubelet loop over the store's pods.
    pub(crate) fn start(
        store: Arc<Store>,
        clock: Clock,
        faults: Faults,
        images: Images,
        runtime: Option<RuntimeCommand>,
        dir: PathBuf,
    ) -> Self {
        let mode = if !nix::unistd::geteuid().is_root() {
            KubeletMode::StatusOnly(
                "containers run as real processes only when the simulator runs as root".into(),
            )
        } else if runtime.is_none() {
            KubeletMode::StatusOnly("no runtime helper was configured".into())
        } else {
            KubeletMode::Namespaces
        };
        let kubelet = Kubelet {
            inner: Arc::new(Inner {
                mode,
                images,
                runtime,
                dir,
                store,
                clock,
                faults,
                pods: Mutex::new(HashMap::new()),
                pod_ips: Mutex::new(0),
                starting: Mutex::new(Starting::default()),
            }),
        };
        let k = kubelet.clone();
        tokio::spawn(async move { k.run().await });
        kubelet
    }

    /// The mode the kubelet runs in.
    pub fn mode(&self) -> &KubeletMode {
        &self.inner.mode
    }

    /// The images it knows.
    pub fn images(&self) -> &Images {
        &self.inner.images
    }

    fn pods(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodState>> {
        self.inner.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(self) {
        let Ok((backlog, mut events)) = self.inner.store.watch(Kind::Pod, None, None) else {
            return;
        };
        for e in backlog {
            self.sync(e.kind, e.object).await;
        }
        loop {
            match events.recv().await {
                Ok(e) if e.key.kind == Kind::Pod => self.sync(e.kind, e.object).await,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    for pod in self.inner.store.list(Kind::Pod, None).0 {
                        self.sync(EventType::Modified, pod).await;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn sync(&self, event: EventType, pod: Value) {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if event == EventType::Deleted {
            self.stop_pod(&uid, Duration::ZERO).await;
            self.forget(&uid);
            return;
        }
        if pod["metadata"]["deletionTimestamp"].is_string() {
            let begin = {
                let mut pods = self.pods();
                let state = pods.entry(uid.clone()).or_default();
                !std::mem::replace(&mut state.stopping, true)
            };
            if begin {
                let grace = pod["metadata"]["deletionGracePeriodSeconds"]
                    .as_u64()
                    .unwrap_or(30);
                let k = self.clone();
                tokio::spawn(async move {
                    k.stop_pod(&uid, Duration::from_secs(grace)).await;
                    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
                    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
                    let _ = k.inner.store.delete(&Key::new(Kind::Pod, ns, name));
                });
            }
            return;
        }
        let mut todo: Vec<(String, bool)> = vec![];
        {
            let mut pods = self.pods();
            let state = pods.entry(uid.clone()).or_default();
            if state.stopping {
                return;
            }
            for (list, ephemeral) in [("containers", false), ("ephemeralContainers", true)] {
                for c in pod["spec"][list].as_array().into_iter().flatten() {
                    let name = c["name"].as_str().unwrap_or_default().to_string();
                    if !state.containers.contains_key(&name) {
                        state.containers.insert(
                            name.clone(),
                            ContainerState {
                                id: container_id(),
                                pid: None,
                                process: None,
                                running: false,
                            },
                        );
                        todo.push((name, ephemeral));
                    }
                }
            }
        }
        if todo.iter().any(|(_, e)| !e) {
            self.set_pod_started(&pod);
        }
        if pod["spec"]["shareProcessNamespace"].as_bool() == Some(true)
            && self.inner.mode == KubeletMode::Namespaces
        {
            self.ensure_sandbox(&pod).await;
        }
        for (name, ephemeral) in todo {
            let k = self.clone();
            let pod = pod.clone();
            tokio::spawn(async move { k.start_container(pod, name, ephemeral).await });
        }
    }

    fn forget(&self, uid: &str) {
        self.pods().remove(uid);
        let _ = std::fs::remove_dir_all(self.inner.dir.join(uid));
    }

    fn set_pod_started(&self, pod: &Value) {
        let ip = {
            let mut n = self.inner.pod_ips.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            format!("10.244.{}.{}", (*n / 250) % 250, *n % 250 + 2)
        };
        let now = self.inner.clock.now_rfc3339();
        let _ = self.inner.store.update(&pod_key(pod), |p| {
            if p["status"]["startTime"].is_null() {
                p["spec"]["nodeName"] = json!("sim-node");
                p["status"]["startTime"] = json!(now);
                p["status"]["hostIP"] = json!("127.0.0.1");
                p["status"]["podIP"] = json!(ip);
                p["status"]["podIPs"] = json!([{"ip": ip}]);
            }
            Ok(())
        });
    }

    async fn ensure_sandbox(&self, pod: &Value) {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if self.pods().get(&uid).and_then(|s| s.sandbox_pid).is_some() {
            return;
        }
        let Some((_, image)) = self.inner.images.resolve(images::DISTROLESS) else {
            return;
        };
        let process = ProcessSpec {
            args: vec!["/app/server".into()],
            env: image.env.clone(),
            cwd: "/".into(),
            uid: 65535,
            gid: 65535,
            groups: vec![],
            capabilities: Some(vec![]),
            no_new_privs: true,
        };
        let dir = self.inner.dir.join(&uid).join("sandbox");
        let spec = RunSpec {
            rootfs: image.rootfs.clone(),
            state_dir: dir.clone(),
            hostname: pod["metadata"]["name"].as_str().unwrap_or_default().into(),
            join_pid: None,
            host_pid: false,
            read_only_root: true,
            log_path: dir.join("log"),
            process,
        };
        if let Ok((pid, mut child)) = self.spawn_run(&spec).await {
            if let Some(state) = self.pods().get_mut(&uid) {
                state.sandbox_pid = Some(pid);
            }
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
    }

    async fn spawn_run(&self, spec: &RunSpec) -> Result<(i32, Child), String> {
        let runtime = self.inner.runtime.as_ref().ok_or("no runtime helper")?;
        let spec_json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
        // Checked, created and registered under one lock with shutdown.
        let (mut child, _guard) = {
            let mut starting = self
                .inner
                .starting
                .lock()
                .map_err(|_| "kubelet state poisoned")?;
            if starting.stopped {
                return Err("the simulator is shutting down".into());
            }
            std::fs::create_dir_all(&spec.state_dir).map_err(|e| e.to_string())?;
            let child = Command::new(&runtime.program)
                .args(&runtime.args)
                .args(["run", "--spec", &spec_json])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(false)
                .spawn()
                .map_err(|e| {
                    format!(
                        "start the runtime helper {}: {e}",
                        runtime.program.display()
                    )
                })?;
            starting.next += 1;
            let token = starting.next;
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                starting.helpers.insert(token, pid);
            }
            (
                child,
                StartingGuard {
                    inner: &self.inner,
                    token,
                },
            )
        };
        let stdout = child.stdout.take().ok_or("runtime helper has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        let report = match first {
            Ok(Ok(Some(line))) => serde_json::from_str::<Report>(&line)
                .map_err(|e| format!("runtime helper said {line:?}: {e}"))?,
            _ => {
                let _ = child.start_kill();
                return Err("the runtime helper did not report".into());
            }
        };
        match report {
            Report::Started { pid } => {
                // Keep reading so the helper never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                Ok((pid, child))
            }
            Report::Failed { message } => {
                let _ = child.wait().await;
                Err(message)
            }
            Report::Exited { .. } => Err("the container exited before it started".into()),
        }
    }

    async fn start_container(&self, pod: Value, name: String, ephemeral: bool) {
        let list = if ephemeral {
            "ephemeralContainers"
        } else {
            "containers"
        };
        let Some(container) = pod["spec"][list]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name.as_str()))
            .cloned()
        else {
            return;
        };
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let image_ref = container["image"].as_str().unwrap_or_default().to_string();
        let status_list = if ephemeral {
            "ephemeralContainerStatuses"
        } else {
            "containerStatuses"
        };
        let base = json!({"name": name, "image": image_ref, "imageID": "", "ready": false, "restartCount": 0, "started": false});
        let waiting = |reason: &str, message: &str| {
            let mut s = base.clone();
            s["state"] = json!({"waiting": {"reason": reason, "message": message}});
            s
        };
        self.write_status(&pod, status_list, waiting("ContainerCreating", ""));
        let (pull_fault, pull_for, config_fault) = {
            let knobs = self.inner.faults.knobs();
            (
                knobs.image_pull.get(&image_ref).cloned(),
                knobs.image_pull_for.get(&image_ref).copied(),
                knobs.config_error.get(&image_ref).cloned(),
            )
        };
        if let Some(message) = pull_fault {
            self.write_status(&pod, status_list, waiting("ImagePullBackOff", &message));
            let Some(after) = pull_for else {
                return;
            };
            // The kubelet retries the pull until it succeeds (or the pod goes).
            tokio::time::sleep(after).await;
            if self.pods().get(&uid).is_none_or(|s| s.stopping) {
                return;
            }
        }
        let Some((_, image)) = self.inner.images.resolve(&image_ref) else {
            let why = self
                .inner
                .images
                .missing_reason(&image_ref)
                .unwrap_or("not found");
            let message = format!(
                "Back-off pulling image {image_ref:?}: ErrImagePull: failed to pull and unpack image {image_ref:?}: {why}"
            );
            self.write_status(&pod, status_list, waiting("ImagePullBackOff", &message));
            return;
        };
        let image = image.clone();
        let image_id = self.inner.images.pinned(&image_ref).unwrap_or_default();
        if let Some(message) = config_fault {
            self.write_status(
                &pod,
                status_list,
                waiting("CreateContainerConfigError", &message),
            );
            return;
        }
        let process = match security::process_spec(&pod, &container, &image) {
            Ok(p) => p,
            Err(message) => {
                self.write_status(
                    &pod,
                    status_list,
                    waiting("CreateContainerConfigError", &message),
                );
                return;
            }
        };
        let id = self
            .pods()
            .get(&uid)
            .and_then(|s| s.containers.get(&name))
            .map(|c| c.id.clone())
            .unwrap_or_default();
        let container_id = format!("containerd://{id}");
        let mut running = base.clone();
        running["imageID"] = json!(image_id);
        running["containerID"] = json!(container_id);
        running["started"] = json!(true);
        // The simulator runs no probes: a readinessProbe whose exec command
        // is exactly `false` never passes (a pod that runs but is not
        // ready); any other counts as passing once the container runs.
        let never_ready = container["readinessProbe"]["exec"]["command"] == json!(["false"]);
        running["ready"] = json!(!ephemeral && !never_ready);
        let started_at = self.inner.clock.now_rfc3339();
        running["state"] = json!({"running": {"startedAt": started_at}});
        // What the runtime really runs the process as (Kubernetes 1.33+
        // reports it; the spec alone does not say when the image decides).
        let mut all_groups = vec![process.gid];
        all_groups.extend(process.groups.iter().filter(|g| **g != process.gid));
        if self.inner.faults.reports_container_user() {
            running["user"] = json!({"linux": {"uid": process.uid, "gid": process.gid,
                "supplementalGroups": all_groups}});
        }

        if let KubeletMode::StatusOnly(_) = self.inner.mode {
            self.update_container(&uid, &name, None, Some(process), true);
            self.write_status(&pod, status_list, running);
            return;
        }
        let join_pid = self.join_target(&uid, &container, ephemeral);
        let dir = self.inner.dir.join(&uid).join(&id[..12]);
        let spec = RunSpec {
            rootfs: image.rootfs.clone(),
            state_dir: dir.clone(),
            hostname: pod["metadata"]["name"].as_str().unwrap_or_default().into(),
            join_pid,
            // An ephemeral container joins its target's namespace, which for a
            // hostPID pod is the host's: PID 1 there is the node's init.
            host_pid: !ephemeral && pod["spec"]["hostPID"].as_bool() == Some(true),
            read_only_root: container["securityContext"]["readOnlyRootFilesystem"].as_bool()
                == Some(true),
            log_path: dir.join("log"),
            process: process.clone(),
        };
        match self.spawn_run(&spec).await {
            Err(message) => {
                let mut s = base.clone();
                s["containerID"] = json!(container_id);
                s["imageID"] = json!(image_id);
                s["state"] = json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": message,
                    "startedAt": "1970-01-01T00:00:00Z", "finishedAt": self.inner.clock.now_rfc3339(), "containerID": container_id}});
                self.write_status(&pod, status_list, s);
                self.update_phase(&pod);
            }
            Ok((pid, mut child)) => {
                self.update_container(&uid, &name, Some(pid), Some(process), true);
                self.write_status(&pod, status_list, running);
                self.update_phase(&pod);
                let code = child
                    .wait()
                    .await
                    .ok()
                    .and_then(|s| s.code())
                    .unwrap_or(255);
                self.update_container(&uid, &name, None, None, false);
                let mut s = base.clone();
                s["containerID"] = json!(container_id);
                s["imageID"] = json!(image_id);
                s["started"] = json!(false);
                s["state"] = json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                    "startedAt": started_at, "finishedAt": self.inner.clock.now_rfc3339(), "containerID": container_id}});
                self.write_status(&pod, status_list, s);
                self.update_phase(&pod);
            }
        }
    }

    /// The PID whose namespaces a container joins: the target container (for
    /// an ephemeral container with `targetContainerName`) or the pod sandbox
    /// (with `shareProcessNamespace`).
    fn join_target(&self, uid: &str, container: &Value, ephemeral: bool) -> Option<i32> {
        let pods = self.pods();
        let state = pods.get(uid)?;
        if let Some(pid) = state.sandbox_pid {
            return Some(pid);
        }
        if !ephemeral {
            return None;
        }
        let target = container["targetContainerName"].as_str()?;
        state.containers.get(target).and_then(|c| c.pid)
    }

    fn update_container(
        &self,
        uid: &str,
        name: &str,
        pid: Option<i32>,
        process: Option<ProcessSpec>,
        running: bool,
    ) {
        if let Some(c) = self
            .pods()
            .get_mut(uid)
            .and_then(|s| s.containers.get_mut(name))
        {
            c.pid = pid;
            c.running = running;
            if process.is_some() {
                c.process = process;
            }
        }
    }

    fn write_status(&self, pod: &Value, list: &str, status: Value) {
        let _ = self.inner.store.update(&pod_key(pod), |p| {
            if p["metadata"]["uid"] != pod["metadata"]["uid"] {
                return Ok(());
            }
            let entries = p["status"][list].as_array().cloned().unwrap_or_default();
            let mut entries: Vec<Value> = entries
                .into_iter()
                .filter(|s| s["name"] != status["name"])
                .collect();
            entries.push(status);
            // Statuses in spec order, as the kubelet reports them.
            let spec_list = if list == "containerStatuses" {
                "containers"
            } else {
                "ephemeralContainers"
            };
            let order: Vec<Value> = p["spec"][spec_list]
                .as_array()
                .map(|a| a.iter().map(|c| c["name"].clone()).collect())
                .unwrap_or_default();
            entries.sort_by_key(|s| {
                order
                    .iter()
                    .position(|n| *n == s["name"])
                    .unwrap_or(usize::MAX)
            });
            p["status"][list] = Value::Array(entries);
            Ok(())
        });
    }

    fn update_phase(&self, pod: &Value) {
        let now = self.inner.clock.now_rfc3339();
        let _ = self.inner.store.update(&pod_key(pod), |p| {
            let statuses = p["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
            let total = p["spec"]["containers"].as_array().map_or(0, Vec::len);
            let running = statuses.iter().filter(|s| s["state"]["running"].is_object()).count();
            let terminated: Vec<i64> =
                statuses.iter().filter_map(|s| s["state"]["terminated"]["exitCode"].as_i64()).collect();
            let phase = if terminated.len() == total && total > 0 {
                if terminated.iter().all(|c| *c == 0) { "Succeeded" } else { "Failed" }
            } else if running + terminated.len() == total && running > 0 {
                "Running"
            } else {
                "Pending"
            };
            let ready_count = statuses.iter().filter(|s| s["ready"] == json!(true)).count();
            let ready = ready_count == total && total > 0;
            let cond = |t: &str, ok: bool| json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now, "lastProbeTime": null});
            p["status"]["phase"] = json!(phase);
            p["status"]["conditions"] = json!([
                cond("PodReadyToStartContainers", true),
                cond("Initialized", true),
                cond("Ready", ready),
                cond("ContainersReady", ready),
                cond("PodScheduled", true),
            ]);
            Ok(())
        });
    }

    /// Stops all of a pod's processes: SIGTERM, then SIGKILL after `grace`.
    async fn stop_pod(&self, uid: &str, grace: Duration) {
        let pids: Vec<i32> = {
            let pods = self.pods();
            let Some(state) = pods.get(uid) else { return };
            state
                .containers
                .values()
                .filter_map(|c| c.pid)
                .chain(state.sandbox_pid)
                .collect()
        };
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Marks a pod for graceful deletion (the kubelet finishes it), or removes
    /// it at once for a zero grace period.
    pub(crate) fn delete_pod(
        &self,
        store: &Store,
        key: &Key,
        grace: i64,
        clock: &Clock,
    ) -> Result<Value, ApiError> {
        let grace = grace.max(0);
        let marked = store.update(key, |p| {
            if p["metadata"]["deletionTimestamp"].is_null() {
                p["metadata"]["deletionTimestamp"] = json!(clock.now_rfc3339());
                p["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            }
            Ok(())
        })?;
        if grace == 0 {
            // Forced: the object goes now; processes are killed from the DELETED event.
            return store.delete(key).or(Ok(marked));
        }
        Ok(marked)
    }

    /// Starts a command in a container.
    pub(crate) async fn exec(
        &self,
        pod: &Value,
        container: &str,
        command: Vec<String>,
    ) -> Result<ExecProcess, ApiError> {
        if let KubeletMode::StatusOnly(why) = &self.inner.mode {
            return Err(ApiError::internal(format!(
                "error executing command in container: the simulator's kubelet runs in status-only mode ({why})"
            )));
        }
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        let state = self
            .pods()
            .get(uid)
            .and_then(|s| s.containers.get(container).cloned());
        let Some(ContainerState {
            pid: Some(pid),
            process: Some(process),
            running: true,
            ..
        }) = state
        else {
            return Err(ApiError::bad_request(format!(
                "unable to upgrade connection: container not found ({container:?})"
            )));
        };
        let runtime = self
            .inner
            .runtime
            .as_ref()
            .ok_or_else(|| ApiError::internal("no runtime helper"))?;
        let status_path = self.inner.dir.join(format!("exec-{}.json", container_id()));
        let spec = ExecSpec {
            pid,
            process: ProcessSpec {
                args: command,
                ..process
            },
            status_path: status_path.clone(),
        };
        let spec_json =
            serde_json::to_string(&spec).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut child = Command::new(&runtime.program)
            .args(&runtime.args)
            .args(["exec", "--spec", &spec_json])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ApiError::internal(format!("start the runtime helper: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ApiError::internal("exec has no stdout"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| ApiError::internal("exec has no stderr"))?;
        Ok(ExecProcess {
            stdin,
            stdout,
            stderr,
            waiter: ExecWaiter { child, status_path },
        })
    }

    /// Host PID of a running container's main process (for tests).
    pub fn container_pid(&self, pod_uid: &str, container: &str) -> Option<i32> {
        self.pods().get(pod_uid)?.containers.get(container)?.pid
    }

    /// Kills every container now (simulator shutdown).
    pub(crate) fn kill_all(&self) {
        // Helpers still starting die too (their containers follow by
        // parent-death signal); none start after this.
        let starting: Vec<i32> = match self.inner.starting.lock() {
            Ok(mut s) => {
                s.stopped = true;
                s.helpers.values().copied().collect()
            }
            Err(_) => vec![],
        };
        let pids: Vec<i32> = self
            .pods()
            .values()
            .flat_map(|s| {
                s.containers
                    .values()
                    .filter_map(|c| c.pid)
                    .chain(s.sandbox_pid)
                    .collect::<Vec<_>>()
            })
            .chain(starting)
            .collect();
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn alive(pid: i32) -> bool {
    // A zombie counts as gone: its namespaces and mounts are already released.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn pod_key(pod: &Value) -> Key {
    Key::new(
        Kind::Pod,
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default(),
    )
}
