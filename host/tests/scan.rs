//! `dscan scan` and `dscan demo` against the simulator's real-namespace
//! kubelet (root only; skipped with the reason otherwise): the chroot-wrapper
//! strategy reads the target's real files and changes nothing, strategy
//! selection and its refusals, a third-party strategy plugin, the local runner's
//! contract with a stand-in scanner, the request log, and the demo.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dscan_sim::{KubeletMode, Level, Sim};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::{Value, json};
use tokio::process::Command;

struct Env {
    sim: Sim,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn env(ns_level: Level) -> Env {
    env_labelled(Default::default(), Some(ns_level.as_str())).await
}

/// A simulator with `config` whose namespace `apps` has this `enforce` label
/// verbatim, or none.
async fn env_labelled(config: dscan_sim::SimConfig, enforce: Option<&str>) -> Env {
    let sim = Sim::start_with(config).await.unwrap();
    if let KubeletMode::StatusOnly(why) = sim.kubelet_mode() {
        panic!("the scan needs the simulator's real-namespace kubelet (run as root): {why}");
    }
    sim.create_namespace_labelled("apps", enforce).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("admin.kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml().unwrap()).unwrap();
    Env {
        sim,
        dir,
        kubeconfig,
    }
}

impl Env {
    async fn pod(&self, name: &str, spec: Value) {
        let pod = json!({"metadata": {"name": name}, "spec": spec});
        self.sim
            .run_pod("apps", pod, Duration::from_secs(10))
            .await
            .unwrap();
    }

    fn debug_image(&self) -> String {
        self.sim
            .images()
            .pinned(dscan_sim::images::BUSYBOX)
            .unwrap()
    }

    /// `scan --output json`: exit code, the parsed JSON, stderr.
    async fn scan(&self, pod: &str, extra: &[&str]) -> (i32, Value, String) {
        let (code, stdout, stderr) = self.scan_as(pod, "json", extra).await;
        let doc: Value = serde_json::from_str(&stdout).unwrap_or(json!({"unparsed": stdout}));
        (code, doc, stderr)
    }

    /// `scan --output OUTPUT`: exit code, stdout, stderr.
    async fn scan_as(&self, pod: &str, output: &str, extra: &[&str]) -> (i32, String, String) {
        let results = self.dir.path().join(format!("{pod}-results.json"));
        // The simulator's busybox image unless the test names another.
        let default_image = ["--debug-image".to_string(), self.debug_image()];
        let image: &[String] = if extra.contains(&"--debug-image") {
            &[]
        } else {
            &default_image
        };
        let out = Command::new(env!("CARGO_BIN_EXE_dscan"))
            .args(["scan", "-n", "apps", "-p", pod, "--output", output])
            .args(image)
            .arg("--results")
            .arg(&results)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .args(extra)
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// `scan` with the local runner, this profile and scanner.
    async fn scan_local(
        &self,
        pod: &str,
        profile: &Path,
        scanner: &Path,
        extra: &[&str],
    ) -> (i32, Value, String) {
        let mut args = vec![
            "--runner",
            "local",
            "--profile",
            profile.to_str().unwrap(),
            "--scanner",
            scanner.to_str().unwrap(),
        ];
        args.extend(extra);
        self.scan(pod, &args).await
    }

    /// A simulator image pinned by digest; the test fails with the reason
    /// when the machine could not build it.
    fn image(&self, name: &str) -> String {
        self.sim.images().pinned(name).unwrap_or_else(|| {
            panic!(
                "the image {name}: {:?}",
                self.sim.images().missing_reason(name)
            )
        })
    }

    fn pod_pid(&self, pod: &str) -> i32 {
        self.sim.container_pid("apps", pod, "app").unwrap()
    }
}

/// sha256 of every file, plus modes and link targets, under the target's root
/// (read from the host side), and its mount table.
fn fingerprint(pid: i32) -> (BTreeMap<String, String>, String) {
    use sha2::{Digest, Sha256};
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(&root).unwrap().display().to_string();
            if rel == "proc" || rel == "dev" || rel == "sys" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mut value = format!("{:o}", meta.permissions().mode());
            if meta.is_dir() {
                stack.push(path.clone());
            } else if meta.file_type().is_symlink() {
                value.push_str(&std::fs::read_link(&path).unwrap().display().to_string());
            } else if meta.is_file() {
                value.push_str(&hex::encode(Sha256::digest(std::fs::read(&path).unwrap())));
            }
            out.insert(rel, value);
        }
    }
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    (out, mounts)
}

fn distroless() -> Value {
    json!({"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS}]})
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn chroot_wrapper_scan_reads_the_targets_files_and_changes_nothing() {
    let env = env(Level::Baseline).await;
    env.pod("web", distroless()).await;
    let before = fingerprint(env.pod_pid("web"));
    env.sim.faults().clear_requests();
    let (code, doc, stderr) = env
        .scan(
            "web",
            &[
                "--runner",
                "standin",
                "--report",
                "markdown=report.md",
                // A user's option cannot change the verdict a report shows.
                "--plugin-opt",
                "markdown:verdict=failed",
            ],
        )
        .await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    let report = std::fs::read_to_string(env.dir.path().join("report.md")).unwrap();
    assert!(report.contains("Verdict: thresholds passed"), "{report}");
    assert_eq!(doc["scan"]["strategy"], "chroot-wrapper");
    assert_eq!(doc["scan"]["target_pid"], 1);
    // The image the node reports the debug container ran, on record.
    assert_eq!(doc["scan"]["debug_image_id"], env.debug_image());
    // ...and the target's image, as the spec names it and as the node runs it.
    let preflight = &doc["run"]["preflight"];
    assert_eq!(preflight["image"], dscan_sim::images::DISTROLESS);
    assert_eq!(
        preflight["image_id"],
        env.sim
            .images()
            .pinned(dscan_sim::images::DISTROLESS)
            .unwrap()
    );
    assert_eq!(doc["verdict"]["passed"], true);
    let results: Value =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("web-results.json")).unwrap())
            .unwrap();
    // The platform and every check come from the target's root, not the busybox debug image.
    assert_eq!(results["platform"]["name"], "debian");
    assert_eq!(results["platform"]["release"], "12");
    let controls = results["profiles"][0]["controls"].as_array().unwrap();
    let status =
        |id: &str| controls.iter().find(|c| c["id"] == id).unwrap()["results"][0]["status"].clone();
    assert_eq!(
        status("SB-01"),
        "passed",
        "no shell in the target (the debug container has one)"
    );
    assert_eq!(status("SB-09"), "passed", "the target's dpkg status.d");
    assert!(
        std::fs::read_to_string(env.dir.path().join("report.md"))
            .unwrap()
            .contains("dscan-standin-baseline")
    );
    // Nothing in the target changed: files, modes, links, mount table.
    let after = fingerprint(env.pod_pid("web"));
    assert_eq!(before.0, after.0, "the target's files changed");
    assert_eq!(before.1, after.1, "the target's mount table changed");
    // The debug container was stopped; it stays as a terminated entry.
    let pod = Api::<Pod>::namespaced(env.sim.client().await.unwrap(), "apps")
        .get("web")
        .await
        .unwrap();
    let statuses = pod.status.unwrap().ephemeral_container_statuses.unwrap();
    assert!(
        statuses[0].state.as_ref().unwrap().terminated.is_some(),
        "{statuses:?}"
    );
    // Between setup and cleanup only the temporary identity calls the API.
    let identity = doc["run"]["identity"].as_str().unwrap().to_string();
    let log = env.sim.faults().requests();
    let first = log.iter().position(|r| r.user == identity).unwrap();
    let last = log.iter().rposition(|r| r.user == identity).unwrap();
    let others: Vec<_> = log[first..=last]
        .iter()
        .filter(|r| r.user != identity)
        .collect();
    assert!(others.is_empty(), "admin calls during the scan: {others:?}");
    assert!(
        log[first..=last]
            .iter()
            .any(|r| r.resource == "pods/ephemeralcontainers" && r.verb == "patch")
    );
    assert!(
        log[first..=last]
            .iter()
            .filter(|r| r.resource == "pods/exec")
            .count()
            >= 9
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn strategy_selection_declines_with_reasons() {
    let env = env(Level::Baseline).await;
    env.pod(
        "nonroot",
        json!({"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
        "securityContext": {"runAsUser": 65532, "runAsNonRoot": true}}]}),
    )
    .await;
    let (code, _, stderr) = env.scan("nonroot", &["--runner", "standin"]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("no access strategy can reach apps/nonroot"),
        "{stderr}"
    );
    assert!(stderr.contains("the target runs as UID 65532"), "{stderr}");

    // A third-party strategy loaded with --plugin changes the plan: its debug
    // image does not exist, which surfaces as the distinct pull error.
    env.pod("web", distroless()).await;
    let probe = support::guest("strategy_probe");
    let (code, _, stderr) = env
        .scan(
            "web",
            &[
                "--runner",
                "standin",
                "--plugin",
                probe.to_str().unwrap(),
                "--strategy",
                "strategy-probe",
            ],
        )
        .await;
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("the debug image cannot be pulled (ImagePullBackOff)"),
        "{stderr}"
    );
    assert!(stderr.contains("busybox@sha256:0"), "{stderr}");
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn restricted_namespaces_and_disabled_ephemeral_containers_are_refused_clearly() {
    let env = env(Level::Restricted).await;
    env.pod("web", json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
            "securityContext": {"runAsUser": 65532, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}))
    .await;
    let (code, _, stderr) = env.scan("web", &["--runner", "standin"]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("enforces Pod Security \"restricted\""),
        "{stderr}"
    );
    env.sim.faults().set_ephemeral_containers(false);
    let (code, _, stderr) = env.scan("web", &["--runner", "standin"]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("does not serve pods/ephemeralcontainers"),
        "{stderr}"
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn share_process_namespace_locates_the_target_not_pid_1() {
    let env = env(Level::Baseline).await;
    env.pod("shared", json!({"shareProcessNamespace": true, "containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS}]}))
        .await;
    let (code, doc, stderr) = env.scan("shared", &["--runner", "standin"]).await;
    assert_eq!(code, 0, "{stderr}");
    let pid = doc["scan"]["target_pid"].as_i64().unwrap();
    assert!(
        pid > 1,
        "the target is found by container ID, not as PID 1: {pid}"
    );
}

/// The ephemeral containers in a pod's spec.
async fn ephemeral_containers(env: &Env, pod: &str) -> usize {
    let admin = env.sim.client().await.unwrap();
    let pod = Api::<Pod>::namespaced(admin, "apps")
        .get(pod)
        .await
        .unwrap();
    pod.spec
        .and_then(|s| s.ephemeral_containers)
        .map_or(0, |e| e.len())
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn host_pid_pods_are_refused_before_a_debug_container_is_added() {
    // In a hostPID pod the debug container shares the node's PID namespace
    // (the simulator models the kubelet's rule): PID 1 is the node's init.
    let env = env(Level::Privileged).await;
    env.pod(
        "hostpid",
        json!({"hostPID": true, "containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS}]}),
    )
    .await;
    for runner in [
        &["--runner", "standin"][..],
        &[
            "--runner",
            "in-debug",
            "--allow-privileged",
            "--scanner-image",
            dscan_sim::images::CINC_STANDIN,
            "--profile",
        ][..],
    ] {
        let mut args: Vec<String> = runner.iter().map(|s| s.to_string()).collect();
        if args.last().map(String::as_str) == Some("--profile") {
            args.push(profile_dir(env.dir.path()).display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, doc, stderr) = env.scan("hostpid", &args).await;
        assert_eq!(code, 3, "{stderr}\n{doc}");
        assert!(stderr.contains("hostPID: true"), "{stderr}");
        assert!(stderr.contains("node's init"), "{stderr}");
        assert_eq!(doc["run"]["cleanup"]["remaining"], json!([]), "{doc}");
    }
    assert_eq!(ephemeral_containers(&env, "hostpid").await, 0);
}

/// The state of the debug container `name` in `pod`, as the node reports it.
async fn debug_state(env: &Env, pod: &str, name: &str) -> Value {
    let admin = env.sim.client().await.unwrap();
    let pod = Api::<Pod>::namespaced(admin, "apps")
        .get(pod)
        .await
        .unwrap();
    let statuses = pod
        .status
        .and_then(|s| s.ephemeral_container_statuses)
        .unwrap_or_default();
    statuses
        .into_iter()
        .find(|s| s.name == name)
        .map_or(Value::Null, |s| serde_json::to_value(s.state).unwrap())
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn a_debug_container_the_node_starts_late_exits_by_itself() {
    let env = env(Level::Baseline).await;
    env.pod("web", distroless()).await;
    // The node retries the pull; it succeeds 4 s after the first failure,
    // after dscan gave up.
    env.sim
        .faults()
        .fail_image_pull_for(&env.debug_image(), Duration::from_secs(4));
    let (code, doc, stderr) = env
        .scan(
            "web",
            &["--runner", "standin", "--strategy-opt", "claim-seconds=2"],
        )
        .await;
    assert_eq!(code, 4, "{stderr}\n{doc}");
    assert!(
        stderr.contains("cannot be pulled (ImagePullBackOff)"),
        "{stderr}"
    );
    let cleanup = &doc["run"]["cleanup"];
    assert_eq!(cleanup["debug_container_stopped"], false, "{doc}");
    let note = cleanup["debug_container_not_started"].as_str().unwrap();
    assert!(
        note.contains("was not started (waiting: ImagePullBackOff"),
        "{note}"
    );
    assert!(
        note.contains("it then exits by itself at once if it starts after"),
        "{note}"
    );
    assert_eq!(cleanup["remaining"], json!([]));
    let name = cleanup["debug_container"].as_str().unwrap().to_string();

    // The node starts it late; nobody claims it, so it exits by itself.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut ran = false;
    loop {
        let state = debug_state(&env, "web", &name).await;
        ran |= state["running"].is_object();
        if state["terminated"].is_object() {
            assert_eq!(state["terminated"]["exitCode"], 0, "{state}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the late debug container still runs unattended: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ran, "the node did start it");

    // A container started after its start deadline exits at once.
    env.sim.faults().clear_image_faults();
    let (code, _, stderr) = env
        .scan(
            "web",
            &["--runner", "standin", "--strategy-opt", "start-by=1"],
        )
        .await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("exited before it was used"), "{stderr}");
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn the_user_the_node_reports_decides_not_the_spec_alone() {
    // The nonroot image runs as 65532 by its own USER; the spec says nothing.
    // The node reports the real user (status.containerStatuses[].user), so
    // the root-only strategy declines with the reason instead of adding a
    // debug container that would get EACCES on the target's root.
    let env = env(Level::Baseline).await;
    env.pod(
        "imageuser",
        json!({"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT}]}),
    )
    .await;
    let (code, doc, stderr) = env.scan("imageuser", &["--runner", "standin"]).await;
    assert_eq!(code, 3, "{stderr}\n{doc}");
    assert!(stderr.contains("the target runs as UID 65532"), "{stderr}");
    assert_eq!(ephemeral_containers(&env, "imageuser").await, 0);
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn an_invalid_enforce_label_is_restricted() {
    // Pod Security Admission cannot parse "Baseline" and enforces restricted.
    let env = env_labelled(Default::default(), Some("Baseline")).await;
    env.pod("web", json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
            "securityContext": {"runAsUser": 65532, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}))
    .await;
    let (code, _, stderr) = env.scan("web", &["--runner", "standin"]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("enforces Pod Security \"restricted\""),
        "{stderr}"
    );
    assert_eq!(ephemeral_containers(&env, "web").await, 0);
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn an_unlabelled_namespace_is_unknown_and_a_refused_plan_passes_the_turn() {
    // No enforce label: the cluster's default (here restricted) applies,
    // which dscan cannot see. It plans the least privileged strategy first;
    // when the server refuses that plan, the next strategy is asked.
    let config = dscan_sim::SimConfig {
        psa_default: Level::Restricted,
        ..Default::default()
    };
    // The target started while the namespace was labelled privileged; the
    // label was removed since (admission does not re-check running pods).
    let env = env_labelled(config, Some("privileged")).await;
    env.pod("web", distroless()).await;
    env.sim.set_namespace_enforce("apps", None).unwrap();
    let (code, doc, stderr) = env.scan("web", &["--runner", "standin"]).await;
    assert_eq!(code, 3, "{stderr}\n{doc}");
    assert_eq!(doc["run"]["preflight"]["pod_security"], Value::Null);
    assert!(
        stderr.contains("chroot-wrapper: the server refused its debug container")
            && stderr.contains("violates PodSecurity \"restricted:latest\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("graft: graft runs the scanner inside the debug container"),
        "the next strategy was asked: {stderr}"
    );
    assert_eq!(ephemeral_containers(&env, "web").await, 0);
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn no_token_in_a_scans_trace_logs_output_or_results() {
    let env = env(Level::Baseline).await;
    env.pod("web", distroless()).await;
    let results = env.dir.path().join("trace-results.json");
    // A warm plugin cache: compiling plugins under trace logging would log
    // every compiler pass (minutes, and nothing of ours).
    let cache = env.dir.path().join("plugin-cache");
    let warm = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .arg("--plugin-cache")
        .arg(&cache)
        .args(["plugins", "list"])
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    assert!(warm.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .arg("--plugin-cache")
        .arg(&cache)
        .args([
            "scan", "-vvv", "-n", "apps", "-p", "web", "--runner", "standin", "--output", "json",
        ])
        .args([
            "--debug-image",
            &env.debug_image(),
            "--report",
            "json=report.json",
            "--results",
        ])
        .arg(&results)
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .arg("--state-dir")
        .arg(env.dir.path().join("state"))
        .env("RUST_LOG", "trace")
        .current_dir(env.dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    assert!(stderr.lines().count() > 50, "trace logging is on");
    let written = [
        std::fs::read_to_string(&results).unwrap(),
        std::fs::read_to_string(env.dir.path().join("report.json")).unwrap(),
    ];
    let tokens = env.sim.issued_tokens();
    assert!(!tokens.is_empty());
    for t in tokens {
        for text in [&*stdout, &*stderr, &written[0], &written[1]] {
            assert!(!text.contains(&t), "a token leaked");
        }
    }
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn a_target_that_chroots_cannot_steer_the_scan() {
    let env = env(Level::Baseline).await;
    env.pod(
        "web",
        json!({"containers": [{"name": "app", "image": dscan_sim::images::HOSTILE_CHROOT}]}),
    )
    .await;
    let pid = env.pod_pid("web");
    let release = env.dir.path().join("release");
    let results = env.dir.path().join("steer-results.json");
    // Held right after the root check; the target then chroots into /fake
    // (whose os-release says "Fake"), and the scan goes on.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dscan"));
    cmd.args([
        "scan", "-n", "apps", "-p", "web", "--runner", "standin", "--output", "json",
    ])
    .args(["--debug-image", &env.debug_image(), "--results"])
    .arg(&results)
    .arg("--kubeconfig")
    .arg(&env.kubeconfig)
    .arg("--state-dir")
    .arg(env.dir.path().join("state"))
    .env("DSCAN_TEST_HOLD_RELEASE", &release)
    .stdout(std::process::Stdio::piped());
    let (child, _rest) =
        support::spawn_held(&mut cmd, "after-root-check", 1, Duration::from_secs(60)).await;
    std::fs::write(format!("/proc/{pid}/root/dscan-test-trigger"), "").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/root/etc/os-release"))
        .unwrap_or_default()
        .contains("Distroless")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the target never chrooted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(&release, "").unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The checks read the root captured before the chroot, not /fake.
    let hdf: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    let text = hdf.to_string();
    assert!(
        !text.contains("ID=fake"),
        "the scan was steered into /fake: {text}"
    );
    assert!(text.contains("ID=debian"), "{text}");

    // A target that chrooted before the check is refused, not scanned.
    let (code, _, stderr) = env.scan("web", &["--runner", "standin"]).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("its process chrooted into it"), "{stderr}");
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn the_debug_container_holds_no_capability_the_target_dropped() {
    let env = env(Level::Baseline).await;
    env.pod(
        "dropped",
        json!({"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS,
            "securityContext": {"capabilities": {"drop": ["ALL"]}}}]}),
    )
    .await;
    let (code, doc, stderr) = env.scan("dropped", &["--runner", "standin"]).await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    let sec = &doc["scan"]["plan"]["debug_container"]["security"];
    assert_eq!(sec["capabilities_drop"], json!(["ALL"]), "{doc}");
    assert_eq!(sec["capabilities_add"], json!(["SYS_CHROOT"]), "{doc}");
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn programs_planted_in_the_target_never_run() {
    let env = env(Level::Baseline).await;
    env.pod(
        "planted",
        json!({"containers": [{"name": "app", "image": dscan_sim::images::HOSTILE_PLANTED}]}),
    )
    .await;
    let pid = env.pod_pid("planted");
    let marker = format!("/proc/{pid}/root/dscan-planted-ran");
    // The checks run cat, stat, find and awk inside the target's root: the
    // uploaded static toolkit's applets, not the planted /bin/cat, and no ELF
    // interpreter or ld.so.preload of the target is ever consulted.
    let (code, doc, stderr) = env.scan("planted", &["--runner", "standin"]).await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    assert!(
        !Path::new(&marker).exists(),
        "a planted program ran: {:?}",
        std::fs::read_to_string(&marker)
    );
    let results = std::fs::read_to_string(env.dir.path().join("planted-results.json")).unwrap();
    assert!(results.contains("ID=debian"), "{results}");

    // The same with a debug image like docker-library's default busybox
    // (dynamically linked, no standalone shell): its busybox runs only in its
    // own root, so neither the planted loader nor the planted cat runs, and
    // on a static distroless target (no loader at all) the scan still works.
    let glibc = env.image(dscan_sim::images::BUSYBOX_GLIBC);
    let (code, doc, stderr) = env
        .scan("planted", &["--runner", "standin", "--debug-image", &glibc])
        .await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    assert!(
        !Path::new(&marker).exists(),
        "a planted program ran: {:?}",
        std::fs::read_to_string(&marker)
    );
    env.pod("static", distroless()).await;
    let (code, doc, stderr) = env
        .scan("static", &["--runner", "standin", "--debug-image", &glibc])
        .await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    let results = std::fs::read_to_string(env.dir.path().join("static-results.json")).unwrap();
    assert!(results.contains("ID=debian"), "{results}");

    // And with a musl busybox built as Alpine builds it (dynamic, its loader
    // at /lib/ld-musl-x86_64.so.1, which the target plants too).
    let musl = env.image(dscan_sim::images::BUSYBOX_MUSL);
    for pod in ["planted", "static"] {
        let (code, doc, stderr) = env
            .scan(pod, &["--runner", "standin", "--debug-image", &musl])
            .await;
        assert_eq!(code, 0, "{pod}: {stderr}\n{doc}");
        let results =
            std::fs::read_to_string(env.dir.path().join(format!("{pod}-results.json"))).unwrap();
        assert!(results.contains("ID=debian"), "{results}");
    }
    assert!(
        !Path::new(&marker).exists(),
        "a planted program ran: {:?}",
        std::fs::read_to_string(&marker)
    );

    // A toolkit that is not a static ELF with a standalone shell is refused
    // before anything is created.
    env.sim.faults().clear_requests();
    let (code, _, stderr) = env
        .scan("planted", &["--runner", "standin", "--toolkit", "/bin/ls"])
        .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("dynamically linked"), "{stderr}");
    assert!(
        env.sim.faults().requests().is_empty(),
        "no API call was made"
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn bad_gate_input_exits_2_before_any_api_request() {
    let env = env(Level::Baseline).await;
    env.pod("web", distroless()).await;
    let bad_file = env.dir.path().join("bad.yml");
    std::fs::write(&bad_file, "compliance:\n  min: lots\n").unwrap();
    let bad_file = bad_file.to_str().unwrap().to_string();
    for (extra, says) in [
        (vec!["-T", bad_file.as_str()], "compliance.min"),
        (vec!["-I", "{compliance.min: abc}"], "is not a number"),
        (
            vec!["--plugin-opt", "saf-thresholds:strict=yes"],
            "unknown option `strict`",
        ),
        (
            vec![
                "--plugin-opt",
                "markdown:titel-table=false",
                "--report",
                "markdown=r.md",
            ],
            "unknown option `titel-table`",
        ),
        (
            vec!["--plugin-opt", "no-such-plugin:k=v"],
            "no plugin named no-such-plugin",
        ),
        (vec!["--report", "docx=r.docx"], "docx"),
    ] {
        env.sim.faults().clear_requests();
        let mut args = vec!["--runner", "standin"];
        args.extend(extra.iter().copied());
        let (code, _, stderr) = env.scan("web", &args).await;
        assert_eq!(code, 2, "{extra:?}: {stderr}");
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
        assert!(
            env.sim.faults().requests().is_empty(),
            "{extra:?}: the API was called: {:?}",
            env.sim.faults().requests()
        );
    }
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn a_users_strategy_option_wins_over_the_hosts_default() {
    // The facts carry the --debug-image value first and the user's
    // --strategy-opt after it; every strategy reads the last value.
    let env = env(Level::Baseline).await;
    env.pod("web", distroless()).await;
    let musl = env.image(dscan_sim::images::BUSYBOX_MUSL);
    let opt = format!("image={musl}");
    let (code, doc, stderr) = env
        .scan("web", &["--runner", "standin", "--strategy-opt", &opt])
        .await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    assert_eq!(doc["scan"]["strategy"], "chroot-wrapper");
    assert_eq!(
        doc["scan"]["plan"]["debug_container"]["image"],
        musl.as_str(),
        "{doc}"
    );
    assert_ne!(
        musl,
        env.debug_image(),
        "the test needs two different images"
    );
}

/// A report without what differs run to run (times).
fn comparable(doc: &Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in ["run_time", "start_time", "duration"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = doc.clone();
    strip(&mut v);
    v
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn the_native_engine_scans_through_a_same_user_agent_without_privilege() {
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/profiles/container-baseline");
    let restricted_nonroot = json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
            "securityContext": {"runAsUser": 65532, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]});
    let nonroot = json!({"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
        "securityContext": {"runAsUser": 65532, "runAsNonRoot": true}}]});
    for (level, spec, uid) in [
        (Level::Restricted, restricted_nonroot, 65532),
        (Level::Baseline, nonroot.clone(), 65532),
        (Level::Baseline, distroless(), 0),
        (Level::Privileged, nonroot, 65532),
        (Level::Privileged, distroless(), 0),
    ] {
        let cell = format!("{} uid {uid}", level.as_str());
        let env = env(level).await;
        env.pod("web", spec).await;
        let before = fingerprint(env.pod_pid("web"));
        let (code, doc, stderr) = env
            .scan(
                "web",
                &[
                    "--runner",
                    "native",
                    "--profile",
                    profile.to_str().unwrap(),
                    "-I",
                    "{compliance.min: 0}",
                ],
            )
            .await;
        assert_eq!(code, 0, "{cell}: {stderr}\n{doc}");
        assert_eq!(doc["scan"]["strategy"], "same-user", "{cell}");
        let security = &doc["scan"]["plan"]["debug_container"]["security"];
        assert_eq!(security["privileged"], false, "{cell}");
        assert_eq!(
            security["capabilities_add"],
            json!([]),
            "{cell}: no capability added"
        );
        assert_eq!(security["run_as_user"], uid, "{cell}");
        let results: Value = serde_json::from_slice(
            &std::fs::read(env.dir.path().join("web-results.json")).unwrap(),
        )
        .unwrap();
        // The same profile on the image's own directory, with `dscan exec`.
        let rootfs = env
            .sim
            .images()
            .resolve(dscan_sim::images::DISTROLESS)
            .unwrap()
            .1
            .rootfs
            .clone();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dscan"))
            .args(["exec", profile.to_str().unwrap(), "--target-root"])
            .arg(&rootfs)
            .args(["--reporter", "json"])
            .output()
            .unwrap();
        let local: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            comparable(&results),
            comparable(&local),
            "{cell}: native scan vs exec --target-root"
        );
        let passed = results["profiles"][0]["controls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["results"].as_array().unwrap())
            .filter(|r| r["status"] == "passed")
            .count();
        assert!(passed > 20, "{cell}: real checks ran ({passed} passed)");
        let after = fingerprint(env.pod_pid("web"));
        assert_eq!(before.0, after.0, "{cell}: the target's files changed");
        assert_eq!(
            before.1, after.1,
            "{cell}: the target's mount table changed"
        );
    }
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn what_the_targets_user_cannot_read_is_never_passed() {
    let env = env(Level::Restricted).await;
    env.pod("web", json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
            "securityContext": {"runAsUser": 65532, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}))
    .await;
    let profile = env.dir.path().join("perm");
    std::fs::create_dir_all(profile.join("controls")).unwrap();
    std::fs::write(profile.join("inspec.yml"), "name: perm\nversion: 0.1.0\n").unwrap();
    // /root is 0700 root in the image: the target's user cannot look in.
    std::fs::write(
        profile.join("controls/perm.rb"),
        "control 'hidden' do\n  describe file('/root/.secret') do\n    it { should_not exist }\n  end\nend\n\
         control 'visible' do\n  describe directory('/root') do\n    its('mode') { should cmp '0700' }\n  end\nend\n",
    )
    .unwrap();
    let (code, doc, stderr) = env
        .scan(
            "web",
            &[
                "--runner",
                "native",
                "--profile",
                profile.to_str().unwrap(),
                "-I",
                "{compliance.min: 0}",
            ],
        )
        .await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    let results: Value =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("web-results.json")).unwrap())
            .unwrap();
    let controls = results["profiles"][0]["controls"].as_array().unwrap();
    let hidden = &controls[0]["results"][0];
    assert_eq!(hidden["status"], "skipped", "{hidden}");
    assert!(
        hidden["skip_message"]
            .as_str()
            .unwrap()
            .contains("not readable as uid 65532 (the target's own permissions)"),
        "{hidden}"
    );
    assert_eq!(controls[1]["results"][0]["status"], "passed");
    assert!(
        stderr.contains("1 result(s) were limited by the target's own permissions"),
        "{stderr}"
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn a_probe_finds_the_user_when_neither_the_spec_nor_the_node_says() {
    let env = env(Level::Baseline).await;
    // As before Kubernetes 1.33: container statuses say nothing of the user.
    env.sim.faults().set_report_container_user(false);
    // The nonroot image runs as 65532 by its own USER; the spec is silent.
    env.pod(
        "web",
        json!({"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT}]}),
    )
    .await;
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/profiles/container-baseline");
    let (code, doc, stderr) = env
        .scan(
            "web",
            &["--runner", "native", "--profile", profile.to_str().unwrap()],
        )
        .await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    assert_eq!(
        doc["scan"]["plan"]["debug_container"]["security"]["run_as_user"],
        65532
    );
    let notes = doc["scan"]["plan"]["notes"].to_string();
    assert!(
        notes.contains("a probe container that read its /proc/<pid>/status"),
        "{notes}"
    );
    assert!(
        stderr.contains("one more ephemeral container, which stays in the pod spec"),
        "the cost is said: {stderr}"
    );
    assert_eq!(
        ephemeral_containers(&env, "web").await,
        2,
        "the probe and the debug container"
    );
}

fn profile_dir(dir: &Path) -> PathBuf {
    let profile = dir.join("profile");
    std::fs::create_dir_all(profile.join("controls")).unwrap();
    std::fs::write(
        profile.join("inspec.yml"),
        "name: container-baseline\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(profile.join("controls/base.rb"), "control 'x' do\nend\n").unwrap();
    profile
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn graft_runs_the_scanner_in_a_private_view_of_the_target_and_changes_nothing() {
    let env = env(Level::Privileged).await;
    env.pod("web", distroless()).await;
    let pid = env.pod_pid("web");
    let before = fingerprint(pid);
    let profile = profile_dir(env.dir.path());
    let image = env
        .sim
        .images()
        .pinned(dscan_sim::images::CINC_STANDIN)
        .unwrap();
    let args = [
        "--runner",
        "in-debug",
        "--profile",
        profile.to_str().unwrap(),
        "--scanner-image",
        &image,
        "-I",
        "{compliance.min: 100}",
    ];
    // Privileged plans need consent.
    let (code, _, stderr) = env.scan("web", &args).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("pass --allow-privileged"), "{stderr}");

    let mut with = args.to_vec();
    with.push("--allow-privileged");
    let (code, doc, stderr) = env.scan("web", &with).await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    assert_eq!(doc["scan"]["strategy"], "graft");
    assert_eq!(doc["scan"]["scanner_exit"], 0);
    // The strategies before graft in the default order said why not.
    let declined = |name: &str| {
        doc["scan"]["declined"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d[0] == name)
            .and_then(|d| d[1].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        declined("chroot-wrapper").contains("use --strategy graft"),
        "{doc}"
    );
    assert!(
        declined("same-user").contains("use --runner native"),
        "{doc}"
    );
    let results: Value =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("web-results.json")).unwrap())
            .unwrap();
    let profile0 = &results["profiles"][0];
    assert_eq!(
        profile0["name"], "container-baseline",
        "the uploaded profile"
    );
    let desc = |id: &str| {
        let c = profile0["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap();
        (
            c["results"][0]["status"].as_str().unwrap().to_string(),
            c["results"][0]["code_desc"].as_str().unwrap().to_string(),
        )
    };
    // The scanner saw the target's root at / (not the scanner image, whose
    // os-release is Debian's and which has /bin/sh) and its runtime at its path.
    assert_eq!(
        desc("standin-os-release"),
        ("passed".into(), "PRETTY_NAME is Distroless".into())
    );
    assert_eq!(
        desc("standin-passwd-owner"),
        ("passed".into(), "/etc/passwd is root:root 644".into())
    );
    let mut target_root: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/root"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    // The view adds the runtime graft's mount point /opt in its tmpfs upper
    // layer (`ls` hides the other one, /.dscan).
    target_root.push("opt".to_string());
    target_root.sort();
    let (shell, listing) = desc("standin-no-shell");
    assert_eq!(shell, "passed");
    let mut seen: Vec<String> = listing
        .trim_start_matches("/ holds: ")
        .split(' ')
        .map(String::from)
        .collect();
    seen.sort();
    assert_eq!(seen, target_root);
    assert_eq!(desc("standin-runtime").0, "passed");
    assert_eq!(desc("standin-profile").0, "passed");
    // The scanner ran in the target's view with the target's own privileges
    // at most: its UID, only CAP_DAC_READ_SEARCH (bit 2) even in its bounding
    // set, no_new_privs, a seccomp filter — not the privileged container's.
    let (_, held) = desc("standin-privileges");
    for want in [
        "Uid: 0 0 0 0",
        "CapEff: 0000000000000004",
        "CapBnd: 0000000000000004",
        "NoNewPrivs: 1",
        "Seccomp: 2",
    ] {
        assert!(held.contains(want), "{want:?} in {held:?}");
    }
    // Nothing in the target changed: files, modes, links, mount table.
    let after = fingerprint(pid);
    assert_eq!(before.0, after.0, "the target's files changed");
    assert_eq!(before.1, after.1, "the target's mount table changed");

    // An API server before 1.30 serves only the v4 exec protocol, which has
    // no end-of-stdin signal: the uploads read a counted number of bytes and
    // keep stdin open, so the same scan works there.
    env.sim.faults().exec_v4_only(true);
    let (code, doc, stderr) = env.scan("web", &with).await;
    env.sim.faults().exec_v4_only(false);
    assert_eq!(code, 0, "over v4 exec: {stderr}\n{doc}");
    assert_eq!(doc["scan"]["scanner_exit"], 0);

    // Results over the cap are refused; a scanner missing from the image is named.
    // (By tag this time: dscan warns that the image is not pinned.)
    let mut capped = with.clone();
    assert_eq!(capped[4], "--scanner-image");
    capped[5] = dscan_sim::images::CINC_STANDIN;
    capped.extend(["--max-results-mib", "0"]);
    let (code, _, stderr) = env.scan("web", &capped).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("over the 0-byte cap"), "{stderr}");
    assert!(
        stderr.contains("sim.local/cinc-auditor:standin (strategy graft) is not pinned by digest"),
        "{stderr}"
    );
    // ...and names the digest the node ran, ready to pin.
    let ran = env
        .sim
        .images()
        .pinned(dscan_sim::images::CINC_STANDIN)
        .unwrap();
    assert!(
        stderr.contains(&format!("ran it as {}", ran.split_once('@').unwrap().1))
            && stderr.contains(&format!("pin it to that with {ran}")),
        "{stderr}"
    );
    let mut missing = with.clone();
    missing.extend(["--scanner", "/opt/cinc-auditor/bin/nope"]);
    let (code, _, stderr) = env.scan("web", &missing).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("cannot run in the scanner image (exit 127)"),
        "{stderr}"
    );

    // A plan whose access mode the runner cannot use is a decline, so the
    // next strategy is asked (the probe plugin plans chroot-wrapper access).
    let probe = support::guest("strategy_probe");
    let mut probe_first = with.clone();
    probe_first.extend([
        "--plugin",
        probe.to_str().unwrap(),
        "--strategy",
        "strategy-probe,graft",
    ]);
    let (code, doc, stderr) = env.scan("web", &probe_first).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["scan"]["strategy"], "graft");
    assert_eq!(doc["scan"]["declined"][0][0], "strategy-probe");
    assert!(
        doc["scan"]["declined"][0][1]
            .as_str()
            .unwrap()
            .contains("the in-debug runner needs Graft"),
        "{doc}"
    );

    // Non-root targets, out of the chroot wrapper's reach, work with graft.
    env.pod(
        "nonroot",
        json!({"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
        "securityContext": {"runAsUser": 65532, "runAsNonRoot": true}}]}),
    )
    .await;
    let nonroot_before = fingerprint(env.pod_pid("nonroot"));
    let (code, doc, stderr) = env.scan("nonroot", &with).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["scan"]["strategy"], "graft");
    assert_eq!(nonroot_before, fingerprint(env.pod_pid("nonroot")));
    // ...and the scanner ran as the target's user, with no capability.
    let results: Value = serde_json::from_slice(
        &std::fs::read(env.dir.path().join("nonroot-results.json")).unwrap(),
    )
    .unwrap();
    let held = results["profiles"][0]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "standin-privileges")
        .unwrap()["results"][0]["code_desc"]
        .as_str()
        .unwrap()
        .to_string();
    for want in [
        "Uid: 65532 65532 65532 65532",
        "CapEff: 0000000000000000",
        "NoNewPrivs: 1",
        "Seccomp: 2",
    ] {
        assert!(held.contains(want), "{want:?} in {held:?}");
    }

    // A target whose /opt is a symlink (into its own tree): the graft does not
    // follow it, and nothing is created in the target.
    env.pod(
        "optlink",
        json!({"containers": [{"name": "app", "image": dscan_sim::images::HOSTILE_OPT_LINK}]}),
    )
    .await;
    let optlink_pid = env.pod_pid("optlink");
    let before = fingerprint(optlink_pid);
    let (code, _, stderr) = env.scan("optlink", &with).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("is a symlink in the target; dscan does not follow the target's links"),
        "{stderr}"
    );
    assert_eq!(before, fingerprint(optlink_pid), "the target changed");

    // A target that plants a loader, an ld.so.preload and /bin/cat: the
    // static stand-in scanner runs and none of them does; a dynamically
    // linked scanner (as the real CINC Auditor's Ruby is) would load the
    // target's loader in the view, so graft refuses it before it runs.
    env.pod(
        "planted",
        json!({"containers": [{"name": "app", "image": dscan_sim::images::HOSTILE_PLANTED}]}),
    )
    .await;
    let planted_pid = env.pod_pid("planted");
    let marker = format!("/proc/{planted_pid}/root/dscan-planted-ran");
    let (code, doc, stderr) = env.scan("planted", &with).await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    assert!(
        !Path::new(&marker).exists(),
        "a planted program ran: {:?}",
        std::fs::read_to_string(&marker)
    );
    let dynamic = env.image(dscan_sim::images::CINC_DYNAMIC);
    let mut dynamic_args = with.clone();
    dynamic_args[5] = dynamic.as_str();
    let (code, _, stderr) = env.scan("planted", &dynamic_args).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("is dynamically linked")
            && stderr.contains("graft runs only static scanners"),
        "{stderr}"
    );
    assert!(
        !Path::new(&marker).exists(),
        "a planted program ran: {:?}",
        std::fs::read_to_string(&marker)
    );

    // A profile that tries to leave its directory never reaches the cluster.
    let evil = env.dir.path().join("evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(evil.join("inspec.yml"), "name: evil\n").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", evil.join("shadow")).unwrap();
    let mut bad = with.clone();
    bad[3] = evil.to_str().unwrap();
    env.sim.faults().clear_requests();
    let (code, _, stderr) = env.scan("web", &bad).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("leaves the profile"), "{stderr}");
    assert!(
        env.sim.faults().requests().is_empty(),
        "no API call was made"
    );
}

fn fake_scanner(dir: &Path, body: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("fake-cinc-auditor-{n}"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The stand-in CINC Auditor with a train-k8s-container transport.
fn standin_scanner() -> PathBuf {
    let standin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("standin-cinc-auditor");
    assert!(
        standin.is_file(),
        "{} is built by `cargo test --workspace`",
        standin.display()
    );
    standin
}

/// A fake scanner running `body`, except for dscan's transport canary
/// profile, which it hands to the stand-in (whose transport reaches the
/// target through the debug container's /bin/sh).
fn fake_scanner_with_canary(dir: &Path, body: &str) -> PathBuf {
    fake_scanner(
        dir,
        &format!(
            "case \"$2\" in */dscan-canary) exec {} \"$@\";; esac\n{body}",
            standin_scanner().display()
        ),
    )
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn the_local_runner_drives_the_scanner_with_the_restricted_kubeconfig() {
    let env = env(Level::Baseline).await;
    env.pod("web", distroless()).await;
    let standin = standin_scanner();
    let log = env.dir.path().join("scanner.log");
    // Records how it was called and what KUBECONFIG it got, then hands over
    // to the stand-in transport, which execs into the debug container with
    // that kubeconfig and reports what it read.
    let scanner = fake_scanner(
        env.dir.path(),
        &format!(
            "echo \"$@\" >> {log}\nstat -c '%a' \"$KUBECONFIG\" >> {log}\ngrep -c token \"$KUBECONFIG\" >> {log}\nexec {standin} \"$@\"",
            log = log.display(),
            standin = standin.display()
        ),
    );
    let profile = profile_dir(env.dir.path());
    let target_pid = env.pod_pid("web");
    let before = fingerprint(target_pid);
    env.sim.faults().clear_requests();
    let (code, doc, stderr) = env
        .scan_local(
            "web",
            &profile,
            &scanner,
            &["-I", "{compliance.min: 100}", "--report", "junit=junit.xml"],
        )
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["scan"]["scanner_exit"], 0);
    assert_eq!(doc["verdict"]["passed"], true);
    let called = std::fs::read_to_string(&log).unwrap();
    let debug = doc["scan"]["debug_container"].as_str().unwrap();
    assert!(
        called.contains(&format!("-t k8s-container://apps/web/{debug}")),
        "{called}"
    );
    // Three runs: the transport canary, the profile, the canary again.
    let lines: Vec<&str> = called.lines().collect();
    assert_eq!(lines.len(), 9, "{called}");
    assert!(lines[0].contains("/dscan-canary "), "{called}");
    assert!(
        lines[3].starts_with(&format!("exec {} ", profile.display())),
        "{called}"
    );
    assert!(lines[6].contains("/dscan-canary "), "{called}");
    assert_eq!(lines[4], "600", "the restricted kubeconfig is private");
    assert_eq!(lines[5], "1", "it carries a token");
    // The commands the transport ran through the debug container's /bin/sh
    // read the target's files (the busybox debug image has a shell and no
    // os-release).
    let results: Value =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("web-results.json")).unwrap())
            .unwrap();
    let descs: Vec<&str> = results["profiles"][0]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["results"][0]["code_desc"].as_str().unwrap())
        .collect();
    let mut root: Vec<String> = std::fs::read_dir(format!("/proc/{target_pid}/root"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    root.sort();
    assert_eq!(
        descs,
        [
            "PRETTY_NAME is Distroless".to_string(),
            "/etc/passwd is root:root 644".to_string(),
            format!("/bin/sh is absent; / holds: {}", root.join(" ")),
        ]
    );
    assert_eq!(results["profiles"][0]["name"], "container-baseline");
    assert!(
        std::fs::read_to_string(env.dir.path().join("junit.xml"))
            .unwrap()
            .contains("standin-passwd-owner")
    );
    let after = fingerprint(target_pid);
    assert_eq!(before, after, "the target changed");
    // The transport's execs ran as the temporary identity: between its first
    // and last call (setup and cleanup run as the caller) nobody else called.
    let identity = doc["run"]["identity"].as_str().unwrap();
    let log = env.sim.faults().requests();
    let first = log.iter().position(|r| r.user == identity).unwrap();
    let last = log.iter().rposition(|r| r.user == identity).unwrap();
    let during = &log[first..=last];
    assert!(during.iter().all(|r| r.user == identity), "{during:?}");
    // verify_root, the canary's command, the transport's four, the canary's.
    assert!(
        during.iter().filter(|r| r.resource == "pods/exec").count() >= 7,
        "{during:?}"
    );

    // A transport that runs commands directly in the debug container (a
    // fork's fallback when it finds no /bin/bash) is caught by the canary
    // before the profile runs, whatever its results would say.
    let direct = fake_scanner(
        env.dir.path(),
        &format!("STANDIN_TRANSPORT=direct exec {} \"$@\"", standin.display()),
    );
    let (code, doc, stderr) = env.scan_local("web", &profile, &direct, &[]).await;
    assert_eq!(code, 4, "{stderr}\n{doc}");
    assert!(
        stderr.contains(
            "the scanner's transport did not run commands in the target's root (before the scan)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("expected: "), "{stderr}");

    // Failed controls are results (exit 100), not errors.
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/results/distroless-baseline.json");
    let failing = fake_scanner_with_canary(
        env.dir.path(),
        &format!(
            "for a in \"$@\"; do case \"$a\" in json:*) cp {} \"${{a#json:}}\";; esac; done\nexit 100",
            example.display()
        ),
    );
    let (code, doc, stderr) = env
        .scan_local("web", &profile, &failing, &["-I", "{compliance.min: 0}"])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["scan"]["scanner_exit"], 100);

    // Non-HDF output and oversized results are scan errors.
    let bad = fake_scanner_with_canary(
        env.dir.path(),
        "for a in \"$@\"; do case \"$a\" in json:*) echo 'not json' > \"${a#json:}\";; esac; done; exit 0",
    );
    let (code, _, stderr) = env.scan_local("web", &profile, &bad, &[]).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("not valid HDF"), "{stderr}");
    let (code, _, stderr) = env
        .scan_local("web", &profile, &scanner, &["--max-results-mib", "0"])
        .await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("over the 0-byte cap"), "{stderr}");
    let crash = fake_scanner_with_canary(
        env.dir.path(),
        "echo 'train-k8s-container: boom' >&2; exit 1",
    );
    let (code, _, stderr) = env.scan_local("web", &profile, &crash, &[]).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("the scanner exited with 1") && stderr.contains("boom"),
        "{stderr}"
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn demo_runs_end_to_end() {
    let probe = Sim::start().await.unwrap();
    if let KubeletMode::StatusOnly(why) = probe.kubelet_mode() {
        panic!("the demo needs root: {why}");
    }
    drop(probe);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .arg("demo")
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("NOT a real cluster") && stderr.contains("dscan's native engine"),
        "{stderr}"
    );
    // The real profile's results, not stand-in checks.
    assert!(stdout.contains("# container-baseline"), "{stdout}");
    assert!(stdout.contains("Verdict: thresholds passed"), "{stdout}");
    assert!(
        stderr.contains("namespace demo (Pod Security restricted)")
            && stderr.contains("strategy: same-user"),
        "the default is the hardest cell: {stderr}"
    );
    assert!(
        stderr.contains("debug container") && stderr.contains("stopped"),
        "{stderr}"
    );
    assert!(dir.path().join("dscan-demo-results.json").is_file());
    assert!(
        stderr.contains("target: demo/distroless-app container app: sim.local/distroless:nonroot (the node runs sim.local/distroless@sha256:"),
        "the scanned image is named: {stderr}"
    );
    assert!(
        !stderr.contains("not pinned"),
        "the demo pins its image: {stderr}"
    );
    // The privilege the run took, one line each, and what cleanup removed.
    let line = |prefix: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?}: {stderr}"))
            .to_string()
    };
    let sa = line("created ServiceAccount demo/dscan-");
    assert!(sa.ends_with(": no automounted token"), "{sa}");
    let name = sa
        .trim_start_matches("created ServiceAccount demo/")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        line("created Role demo/"),
        format!(
            "created Role demo/{name}: pods get,watch; pods/ephemeralcontainers get,patch; pods/exec create,get; only on pod \"distroless-app\" (resourceNames)"
        )
    );
    assert_eq!(
        line("created RoleBinding demo/"),
        format!("created RoleBinding demo/{name}: Role {name} to ServiceAccount demo/{name}")
    );
    let token = line("token: ");
    let seconds: u32 = token
        .trim_start_matches("token: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds >= 600, "{token}");
    assert!(token.contains(" s, expires 20"), "{token}");
    let kubeconfig = line("kubeconfig: ");
    assert!(
        kubeconfig.ends_with("/kubeconfig (0600, overwritten and removed at cleanup)"),
        "{kubeconfig}"
    );
    let debug = stderr
        .lines()
        .find(|l| l.starts_with("debug container dscan-debug-") && l.contains(": user "))
        .unwrap_or_else(|| panic!("no debug container line: {stderr}"));
    assert!(
        debug.contains(": user 65532 group 65532, capabilities add none drop ALL, privileged no, allowPrivilegeEscalation no, seccomp RuntimeDefault"),
        "{debug}"
    );
    assert_eq!(
        line("cleanup: "),
        format!(
            "cleanup: removed and verified gone: ServiceAccount demo/{name}, Role demo/{name}, RoleBinding demo/{name}; debug container dscan-debug-{} stopped (it stays in the pod spec as a terminated entry)",
            name.trim_start_matches("dscan-")
        )
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn every_demo_cell_runs_the_real_profile_without_privilege() {
    for (psa, user, uid) in [
        ("privileged", "root", "0"),
        ("privileged", "nonroot", "65532"),
        ("baseline", "root", "0"),
        ("baseline", "nonroot", "65532"),
        ("restricted", "nonroot", "65532"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_dscan"))
            .args(["demo", "--psa", psa, "--user", user])
            .current_dir(dir.path())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{psa} {user}: {stderr}");
        assert!(
            stdout.contains("# container-baseline"),
            "{psa} {user}: {stdout}"
        );
        assert!(
            stderr.contains(&format!(": user {uid} group {uid}, capabilities add none"))
                && stderr.contains("privileged no"),
            "{psa} {user}: {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args(["demo", "--psa", "restricted", "--user", "root"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("admits no container running as root"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `command` under `script` (a pseudo-terminal) with every API call
/// slowed so live progress has time to draw; it must succeed. Returns what
/// the terminal showed, without escape sequences.
async fn on_a_terminal(env: &Env, command: &str) -> String {
    env.sim
        .faults()
        .latency(dscan_sim::Matcher::any(), Duration::from_millis(40));
    let out = Command::new("script")
        .args(["-q", "-e", "-c", command, "/dev/null"])
        .env_remove("RUST_LOG")
        .env("TERM", "xterm")
        .current_dir(env.dir.path())
        .output()
        .await
        .unwrap();
    env.sim.faults().clear();
    let raw = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{raw}");
    strip_ansi(&raw)
}

/// On a terminal the running phase is a spinner and each phase that ends
/// leaves its line; log lines written meanwhile are whole lines, not glued to
/// the spinner. Run under `script` for a pseudo-terminal; every API call is
/// slowed so the spinner has time to draw.
#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn on_a_terminal_phases_spin_and_log_lines_stay_whole() {
    let env = env(Level::Baseline).await;
    assert!(
        std::process::Command::new("script")
            .arg("--version")
            .output()
            .is_ok(),
        "`script` (util-linux) is needed for a pseudo-terminal"
    );
    env.pod("web", distroless()).await;
    let command = format!(
        "{} scan -v -n apps -p web --runner standin --debug-image {} --kubeconfig {} --state-dir {} --results {}",
        env!("CARGO_BIN_EXE_dscan"),
        env.debug_image(),
        env.kubeconfig.display(),
        env.dir.path().join("state").display(),
        env.dir.path().join("tty-results.json").display(),
    );
    let text = on_a_terminal(&env, &command).await;
    let fragments: Vec<&str> = text.split(['\r', '\n']).map(str::trim_end).collect();
    for phase in ["preflight", "probe", "setup", "scan", "cleanup"] {
        assert!(
            fragments
                .iter()
                .any(|f| f.starts_with(&format!("ok   {phase} "))),
            "no line for {phase}: {text}"
        );
    }
    // The spinner was drawn: a frame, the phase name, the elapsed time.
    assert!(
        fragments.iter().any(|f| f.len() > 2
            && !f.starts_with("ok")
            && f.contains(" preflight")
            && f.ends_with('s')),
        "no spinner frame: {text:?}"
    );
    // The scan phase says what it waits for beside the spinner.
    assert!(
        fragments.iter().any(|f| !f.contains(" INFO ")
            && f.contains(" scan ")
            && f.contains("waiting for dscan-debug-")),
        "no scan step beside the spinner: {text:?}"
    );
    let logs: Vec<&&str> = fragments.iter().filter(|f| f.contains(" INFO ")).collect();
    assert!(!logs.is_empty(), "-v shows info logs: {text}");
    for line in logs {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()),
            "a log line shares its line with something else: {line:?}"
        );
    }
}

/// `--output quiet` prints only what went wrong; the exit code tells the rest.
/// `--output json` with a report on stdout is refused before any API call.
#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn quiet_output_prints_only_failures_and_json_keeps_stdout_parseable() {
    let env = env(Level::Baseline).await;
    env.pod("web", distroless()).await;
    let (code, stdout, stderr) = env.scan_as("web", "quiet", &["--runner", "standin"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr, "", "quiet output printed something on success");
    let (code, stdout, stderr) = env
        .scan_as(
            "web",
            "quiet",
            &[
                "--runner",
                "standin",
                "-I",
                "{compliance.min: 101}",
                "--report",
                "csv",
            ],
        )
        .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(!stderr.contains("ok   "), "{stderr}");
    assert!(
        stdout.starts_with("Results Set,Status,ID"),
        "the asked-for report is still written: {stdout}"
    );

    env.sim.faults().clear_requests();
    let (code, doc, stderr) = env.scan("web", &["--report", "markdown"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("write it to a file with --report markdown=PATH"),
        "{stderr}"
    );
    assert!(doc.get("unparsed").is_some_and(|u| u == ""), "{doc}");
    assert!(
        env.sim.faults().requests().is_empty(),
        "API calls were made"
    );
}

/// Removes CSI escape sequences (colours, cursor moves, line clears).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Starts `dscan scan` on pod `web` and waits until it holds (test hook) with
/// its debug container running; the task collects the rest of its stderr.
async fn scan_held_at_the_debug_container(
    env: &Env,
    state: &Path,
) -> (tokio::process::Child, tokio::task::JoinHandle<Vec<String>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dscan"));
    cmd.args([
        "scan",
        "-n",
        "apps",
        "-p",
        "web",
        "--runner",
        "standin",
        "--debug-image",
        &env.debug_image(),
        "--kubeconfig",
    ])
    .arg(&env.kubeconfig)
    .arg("--state-dir")
    .arg(state)
    .current_dir(env.dir.path())
    .stdout(std::process::Stdio::null());
    support::spawn_held(
        &mut cmd,
        "after-debug-container",
        1,
        Duration::from_secs(60),
    )
    .await
}

fn debug_container_running(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .is_some_and(|v| {
            v.iter()
                .any(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
        })
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn sigint_during_the_scan_stops_the_debug_container_and_cleans_up() {
    let env = env(Level::Baseline).await;
    env.pod("web", distroless()).await;
    let state = env.dir.path().join("state");
    let (mut child, stderr) = scan_held_at_the_debug_container(&env, &state).await;
    let started = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(45), child.wait())
        .await
        .expect("dscan exits after cleanup")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "it did not wait for the held scan"
    );
    // The interrupted scan phase is on record as failed; cleanup succeeded.
    let stderr = stderr.await.unwrap();
    let phase = |p: &str| stderr.iter().any(|l| l.starts_with(p));
    assert!(phase("FAIL scan") && phase("ok   cleanup"), "{stderr:?}");
    let pods: Api<Pod> = Api::namespaced(env.sim.client().await.unwrap(), "apps");
    assert!(!debug_container_running(&pods.get("web").await.unwrap()));
    let lp = kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=dscan");
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(env.sim.client().await.unwrap(), "apps");
    assert!(sas.list(&lp).await.unwrap().items.is_empty());
    let runs = state.join("runs");
    assert!(
        !runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none(),
        "no journal is left"
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn kill_9_during_the_scan_then_gc_stops_the_debug_container_and_removes_everything() {
    let env = env(Level::Baseline).await;
    env.pod("web", distroless()).await;
    let state = env.dir.path().join("state");
    let (mut child, _) = scan_held_at_the_debug_container(&env, &state).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(env.sim.client().await.unwrap(), "apps");
    let running = debug_container_running;
    assert!(
        running(&pods.get("web").await.unwrap()),
        "the killed run left its debug container running"
    );
    let gc = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args(["gc", "--kubeconfig"])
        .arg(&env.kubeconfig)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&gc.stdout);
    assert_eq!(gc.status.code(), Some(0), "{out}");
    assert!(
        out.contains("stopped debug container apps/web/dscan-debug-"),
        "{out}"
    );
    assert!(
        !running(&pods.get("web").await.unwrap()),
        "gc stopped the debug container"
    );
    let lp = kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=dscan");
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(env.sim.client().await.unwrap(), "apps");
    assert!(sas.list(&lp).await.unwrap().items.is_empty());
}

/// The node-debug fallback's objects still in the cluster (pods, Roles and
/// RoleBindings labelled by dscan, in both namespaces).
async fn node_leftovers(env: &Env) -> Vec<String> {
    let client = env.sim.client().await.unwrap();
    let lp = kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=dscan");
    let mut out = vec![];
    for ns in ["apps", "dscan-debug"] {
        for p in Api::<Pod>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .unwrap()
        {
            out.push(format!("pod {ns}/{}", p.metadata.name.unwrap_or_default()));
        }
        let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(client.clone(), ns);
        for r in roles.list(&lp).await.unwrap() {
            out.push(format!("role {ns}/{}", r.metadata.name.unwrap_or_default()));
        }
        let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
            Api::namespaced(client.clone(), ns);
        for b in bindings.list(&lp).await.unwrap() {
            out.push(format!(
                "rolebinding {ns}/{}",
                b.metadata.name.unwrap_or_default()
            ));
        }
    }
    out
}

/// How the ephemeral path is refused in a test.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// A validating webhook denies `pods/ephemeralcontainers`.
    Webhook,
    /// The feature is off: the API does not serve the subresource.
    FeatureOff,
    /// Pod Security (a cluster default of `restricted`, the namespace
    /// unlabelled) refuses every debug container a root target admits.
    PodSecurity,
}

fn refuse(env: &Env, how: Refusal) {
    match how {
        Refusal::PodSecurity => env.sim.set_namespace_enforce("apps", None).unwrap(),
        Refusal::Webhook => env.sim.faults().fail_always(
            dscan_sim::Matcher::call("patch", "pods/ephemeralcontainers"),
            dscan_sim::ApiError::new(
                403,
                "Forbidden",
                "admission webhook \"deny-debug.policy.example\" denied the request: ephemeral containers are not allowed in this namespace",
            ),
        ),
        Refusal::FeatureOff => env.sim.faults().set_ephemeral_containers(false),
    }
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn when_ephemeral_containers_are_refused_node_debug_scans_what_the_ephemeral_path_scans() {
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/profiles/container-baseline");
    let native = [
        "--runner",
        "native",
        "--profile",
        profile.to_str().unwrap(),
        "-I",
        "{compliance.min: 0}",
    ];
    let shared_nonroot = json!({"shareProcessNamespace": true,
        "containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
            "securityContext": {"runAsUser": 65532, "runAsNonRoot": true}}]});
    let cells = [
        (Refusal::Webhook, distroless(), false),
        (Refusal::Webhook, shared_nonroot.clone(), true),
        (Refusal::FeatureOff, distroless(), false),
        (Refusal::FeatureOff, shared_nonroot, true),
        (Refusal::PodSecurity, distroless(), false),
    ];
    {
        for (how, spec, shared) in cells {
            let cell = format!("{how:?}, shareProcessNamespace {shared}");
            // The target runs while its namespace admits it; for the Pod
            // Security cell the label goes afterwards and the cluster's
            // default (restricted) applies to what is added later.
            let config = dscan_sim::SimConfig {
                psa_default: Level::Restricted,
                ..Default::default()
            };
            let env = env_labelled(config, Some("baseline")).await;
            env.sim
                .create_namespace("dscan-debug", Level::Privileged)
                .unwrap();
            env.pod("web", spec).await;
            // The ephemeral path first, on the same pod, for comparison.
            let (code, _, stderr) = env.scan("web", &native).await;
            assert_eq!(code, 0, "{cell}: {stderr}");
            let ephemeral: Value = serde_json::from_slice(
                &std::fs::read(env.dir.path().join("web-results.json")).unwrap(),
            )
            .unwrap();
            refuse(&env, how);
            // Not allowed: exit 3 with what refused it and the flags to use.
            let (code, _, stderr) = env.scan("web", &native).await;
            assert_eq!(code, 3, "{cell}: {stderr}");
            let said = match how {
                Refusal::Webhook => "deny-debug.policy.example",
                Refusal::FeatureOff => "does not serve pods/ephemeralcontainers",
                Refusal::PodSecurity => {
                    "Pod Security Admission refused every admissible debug container"
                }
            };
            assert!(stderr.contains(said), "{cell}: {stderr}");
            assert!(
                stderr.contains("node-debug") && stderr.contains("--node-debug-namespace"),
                "{cell}: {stderr}"
            );
            // Allowed: the node pod scans the target, found by its container ID.
            let mut allowed = native.to_vec();
            allowed.extend([
                "--strategy",
                "same-user,node-debug",
                "--node-debug-namespace",
                "dscan-debug",
            ]);
            let (code, doc, stderr) = env.scan("web", &allowed).await;
            assert_eq!(code, 0, "{cell}: {stderr}\n{doc}");
            assert_eq!(doc["scan"]["strategy"], "node-debug", "{cell}");
            assert_eq!(
                doc["scan"]["target_pid"],
                env.pod_pid("web"),
                "{cell}: the target's process, by container ID (not PID 1)"
            );
            let node: Value = serde_json::from_slice(
                &std::fs::read(env.dir.path().join("web-results.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(
                comparable(&node),
                comparable(&ephemeral),
                "{cell}: the same results as the ephemeral path"
            );
            assert_eq!(node_leftovers(&env).await, Vec::<String>::new(), "{cell}");
            let pods: Api<Pod> = Api::namespaced(env.sim.client().await.unwrap(), "apps");
            let web = pods.get("web").await.unwrap();
            assert_eq!(
                web.spec
                    .unwrap()
                    .ephemeral_containers
                    .map_or(0, |e| e.len()),
                1,
                "{cell}: the fallback never touched the target pod (one debug container, the comparison scan's)"
            );
        }
    }
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn a_node_debug_namespace_that_cannot_admit_the_pod_is_a_preflight_problem() {
    let env = env(Level::Baseline).await;
    env.sim
        .create_namespace("dscan-debug", Level::Baseline)
        .unwrap();
    env.pod("web", distroless()).await;
    env.sim.faults().set_ephemeral_containers(false);
    let (code, _, stderr) = env
        .scan(
            "web",
            &[
                "--runner",
                "native",
                "--profile",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../examples/profiles/container-baseline")
                    .to_str()
                    .unwrap(),
                "--strategy",
                "node-debug",
                "--node-debug-namespace",
                "dscan-debug",
            ],
        )
        .await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("preflight failed; nothing was created"),
        "{stderr}"
    );
    assert!(
        stderr.contains("enforces Pod Security \"baseline\", which refuses the node pod's hostPID"),
        "{stderr}"
    );
    assert_eq!(node_leftovers(&env).await, Vec::<String>::new());
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn kill_9_during_a_node_debug_scan_then_gc_leaves_nothing() {
    let env = env(Level::Baseline).await;
    env.sim
        .create_namespace("dscan-debug", Level::Privileged)
        .unwrap();
    env.pod("web", distroless()).await;
    refuse(&env, Refusal::Webhook);
    let state = env.dir.path().join("state");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dscan"));
    cmd.args([
        "scan",
        "-n",
        "apps",
        "-p",
        "web",
        "--runner",
        "native",
        "--profile",
    ])
    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/profiles/container-baseline"))
    .args(["--strategy", "same-user,node-debug"])
    .args(["--node-debug-namespace", "dscan-debug"])
    .args(["--debug-image", &env.debug_image(), "--kubeconfig"])
    .arg(&env.kubeconfig)
    .arg("--state-dir")
    .arg(&state)
    .current_dir(env.dir.path())
    .stdout(std::process::Stdio::null());
    let (mut child, _rest) = support::spawn_held(
        &mut cmd,
        "after-debug-container",
        1,
        Duration::from_secs(60),
    )
    .await;
    let left = node_leftovers(&env).await;
    assert!(
        left.iter().any(|l| l.starts_with("pod dscan-debug/dscan-")),
        "{left:?}"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let gc = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args(["gc", "--kubeconfig"])
        .arg(&env.kubeconfig)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&gc.stdout);
    assert_eq!(gc.status.code(), Some(0), "{out}");
    assert_eq!(node_leftovers(&env).await, Vec::<String>::new(), "{out}");
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(env.sim.client().await.unwrap(), "apps");
    let lp = kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=dscan");
    assert!(sas.list(&lp).await.unwrap().items.is_empty(), "{out}");
}

#[tokio::test]
async fn preflight_lists_what_the_node_debug_fallback_needs() {
    let sim = Sim::start().await.unwrap();
    sim.create_namespace("apps", Level::Baseline).unwrap();
    sim.create_namespace("dscan-debug", Level::Privileged)
        .unwrap();
    let token = sim.add_user("nobody", &[]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("nobody.kubeconfig");
    let config = sim.kubeconfig_for("nobody", &token, Some("apps"));
    std::fs::write(&kubeconfig, serde_json::to_string(&config).unwrap()).unwrap();
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/profiles/container-baseline");
    let out = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args([
            "scan",
            "-n",
            "apps",
            "-p",
            "web",
            "--runner",
            "native",
            "--profile",
        ])
        .arg(&profile)
        .args(["--strategy", "same-user,node-debug"])
        .args(["--node-debug-namespace", "dscan-debug", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("for the node-debug fallback your identity lacks")
            && stderr.contains("create pods (create the node-debug pod)")
            && stderr.contains("create pods/exec (granted to the scan identity on the node pod)"),
        "{stderr}"
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn node_debug_grafts_cinc_from_a_privileged_node_pod_as_the_ephemeral_graft_does() {
    let env = env(Level::Privileged).await;
    env.sim
        .create_namespace("dscan-debug", Level::Privileged)
        .unwrap();
    env.pod("web", distroless()).await;
    let before = fingerprint(env.pod_pid("web"));
    let profile = profile_dir(env.dir.path());
    let image = env
        .sim
        .images()
        .pinned(dscan_sim::images::CINC_STANDIN)
        .unwrap();
    let args = [
        "--runner",
        "in-debug",
        "--profile",
        profile.to_str().unwrap(),
        "--scanner-image",
        &image,
        "--allow-privileged",
        "-I",
        "{compliance.min: 0}",
    ];
    let (code, _, stderr) = env.scan("web", &args).await;
    assert_eq!(code, 0, "{stderr}");
    let ephemeral: Value =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("web-results.json")).unwrap())
            .unwrap();
    refuse(&env, Refusal::Webhook);
    let mut with = args.to_vec();
    with.extend(["--node-debug-namespace", "dscan-debug"]);
    let (code, doc, stderr) = env.scan("web", &with).await;
    assert_eq!(code, 0, "{stderr}\n{doc}");
    assert_eq!(
        doc["scan"]["strategy"], "node-debug",
        "--allow-privileged allows the fallback"
    );
    assert_eq!(doc["scan"]["plan"]["mode"], "graft");
    assert_eq!(doc["scan"]["scanner_exit"], 0);
    assert_eq!(doc["scan"]["target_pid"], env.pod_pid("web"));
    let node: Value =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("web-results.json")).unwrap())
            .unwrap();
    // The stand-in's last control reads the scanner's own /proc/self: in
    // the view, /proc is the target's, in the target's PID namespace, where
    // a scanner started from a hostPID pod has no entry. Everything read
    // from the target is the same.
    let without_self = |doc: &Value| {
        let mut controls = comparable(doc)["profiles"][0]["controls"].clone();
        controls
            .as_array_mut()
            .unwrap()
            .retain(|c| c["id"] != "standin-privileges");
        controls
    };
    assert_eq!(
        without_self(&node),
        without_self(&ephemeral),
        "the same results as the ephemeral graft"
    );
    assert_eq!(without_self(&node).as_array().unwrap().len(), 5);
    assert_eq!(node_leftovers(&env).await, Vec::<String>::new());
    let after = fingerprint(env.pod_pid("web"));
    assert_eq!(before.0, after.0, "the target's files changed");
    assert_eq!(before.1, after.1, "the target's mount table changed");
}

/// A fleet on a terminal: one live line per running scan (its target and
/// what it is doing), a line as each ends, and a total bar.
#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn on_a_terminal_a_fleet_shows_a_line_per_running_scan_and_a_total() {
    let env = env(Level::Baseline).await;
    for name in ["web", "web2"] {
        let pod = json!({"metadata": {"name": name, "labels": {"app": "web"}},
            "spec": distroless()});
        env.sim
            .run_pod("apps", pod, Duration::from_secs(10))
            .await
            .unwrap();
    }
    let command = format!(
        "{} scan -n apps -l app=web --runner standin --debug-image {} --kubeconfig {} --state-dir {} --results-dir {}",
        env!("CARGO_BIN_EXE_dscan"),
        env.debug_image(),
        env.kubeconfig.display(),
        env.dir.path().join("state").display(),
        env.dir.path().join("tty-results").display(),
    );
    let text = on_a_terminal(&env, &command).await;
    let fragments: Vec<&str> = text.split(['\r', '\n']).map(str::trim_end).collect();
    for target in ["apps/web/app", "apps/web2/app"] {
        assert!(
            fragments
                .iter()
                .any(|f| f.starts_with(&format!("scanned {target} "))),
            "no line as {target} ended: {text:?}"
        );
        // Its live line: the target and the step it is on.
        assert!(
            fragments
                .iter()
                .any(|f| f.contains(target) && f.contains("waiting for dscan-debug-")),
            "no live line for {target}: {text:?}"
        );
    }
    assert!(
        fragments.iter().any(|f| f.contains("/2 scans")),
        "no total bar: {text:?}"
    );
}
