//! The kubelet with real processes in namespaces (root only; skipped with a
//! message otherwise): exec over v5 and v4, the target's root through
//! `/proc/1/root` from an ephemeral container, ptrace rules, capabilities,
//! and nothing left behind.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod support;

use std::time::Duration;

use dscan_sim::images::{BUSYBOX, DISTROLESS, DISTROLESS_NONROOT};
use dscan_sim::{Level, Sim};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{AttachParams, DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::*;
use tokio::io::AsyncReadExt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

struct Output {
    stdout: String,
    stderr: String,
    status: Status,
}

fn ok(s: &Status) -> bool {
    s.status.as_deref() == Some("Success")
}

fn reason(s: &Status) -> &str {
    s.reason.as_deref().unwrap_or_default()
}

fn message(s: &Status) -> &str {
    s.message.as_deref().unwrap_or_default()
}

async fn exec(client: &Client, ns: &str, pod: &str, container: &str, cmd: &[&str]) -> Output {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut attached = api
        .exec(
            pod,
            cmd.iter().copied(),
            &AttachParams::default().container(container).stderr(true),
        )
        .await
        .expect("exec starts");
    let mut stdout = attached.stdout().expect("stdout");
    let mut stderr = attached.stderr().expect("stderr");
    let status = attached.take_status().expect("status");
    let (mut out, mut err) = (String::new(), String::new());
    let (a, b) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        )
    })
    .await
    .expect("exec output ends");
    a.unwrap();
    b.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("status in time")
        .expect("a status");
    Output {
        stdout: out,
        stderr: err,
        status,
    }
}

fn exit_code(status: &Status) -> Option<i32> {
    if ok(status) {
        return Some(0);
    }
    let causes = status.details.as_ref()?.causes.as_ref()?;
    causes
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.parse().ok())
}

async fn add_debug(client: &Client, ns: &str, pod: &str, container: Value) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.patch_ephemeral_containers(
        pod,
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"ephemeralContainers": [container]}})),
    )
    .await
    .expect("add the debug container");
}

fn debugger(name: &str, security: Value) -> Value {
    json!({"name": name, "image": BUSYBOX, "targetContainerName": "app", "command": ["sleep", "600"], "securityContext": security})
}

fn sim_mounts(sim_marker: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(sim_marker))
        .map(String::from)
        .collect()
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn the_debug_container_reaches_the_targets_root_and_nothing_leaks() {
    let sim = Sim::start().await.unwrap();
    require_real_containers(&sim);
    let client = sim.client().await.unwrap();
    sim.create_namespace("apps", Level::Baseline).unwrap();
    create_pod(&client, "apps", distroless_pod("web", DISTROLESS)).await;
    wait_running(&client, "apps", "web", "app").await;
    let target_pid = sim.container_pid("apps", "web", "app").expect("target pid");

    // Distroless: no shell to exec; the runtime's error comes back as a status.
    let out = exec(&client, "apps", "web", "app", &["sh", "-c", "true"]).await;
    assert_eq!(reason(&out.status), "InternalError", "{:?}", out.status);
    assert!(
        message(&out.status).contains("executable file not found in $PATH"),
        "{}",
        message(&out.status)
    );

    add_debug(
        &client,
        "apps",
        "web",
        debugger("dbg", json!({"capabilities": {"add": ["SYS_CHROOT"]}})),
    )
    .await;
    wait_running(&client, "apps", "web", "dbg").await;

    // PID 1 in the shared namespace is the target; its root is the distroless root.
    let out = exec(
        &client,
        "apps",
        "web",
        "dbg",
        &["cat", "/proc/1/root/etc/os-release"],
    )
    .await;
    assert!(ok(&out.status), "{:?} {}", out.status, out.stderr);
    assert!(
        out.stdout.contains("PRETTY_NAME=\"Distroless\""),
        "{}",
        out.stdout
    );
    let own = exec(&client, "apps", "web", "dbg", &["cat", "/etc/os-release"]).await;
    assert_eq!(
        exit_code(&own.status),
        Some(1),
        "the busybox image has no os-release of its own"
    );
    let out = exec(
        &client,
        "apps",
        "web",
        "dbg",
        &["test", "-e", "/proc/1/root/bin/sh"],
    )
    .await;
    assert_eq!(exit_code(&out.status), Some(1), "the target has no /bin/sh");
    let out = exec(
        &client,
        "apps",
        "web",
        "dbg",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    )
    .await;
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(reason(&out.status), "NonZeroExitCode");
    assert_eq!(exit_code(&out.status), Some(3));
    assert_eq!(
        message(&out.status),
        "command terminated with non-zero exit code: error executing command [sh -c echo out; echo err >&2; exit 3], exit code 3"
    );
    // The chroot-wrapper technique works (the wrapping shell must outlive the
    // chroot, hence the trailing `exit`: ash would exec a lone command) with SYS_CHROOT (root debug container).
    let out = exec(
        &client,
        "apps",
        "web",
        "dbg",
        &[
            "sh",
            "-c",
            "chroot /proc/1/root /proc/$$/root/bin/busybox cat /etc/os-release; exit $?",
        ],
    )
    .await;
    assert!(
        out.stdout.contains("Distroless"),
        "{:?} {}",
        out.status,
        out.stderr
    );
    // Distinct mount namespaces, shared PID namespace.
    let ns = |pid: i32, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    let dbg_pid = sim.container_pid("apps", "web", "dbg").unwrap();
    assert_ne!(ns(target_pid, "mnt"), ns(dbg_pid, "mnt"));
    assert_eq!(
        ns(target_pid, "pid_for_children"),
        ns(dbg_pid, "pid_for_children")
    );

    // Without SYS_CHROOT, chroot fails for real.
    add_debug(
        &client,
        "apps",
        "web",
        debugger(
            "nochroot",
            json!({"capabilities": {"drop": ["SYS_CHROOT"]}}),
        ),
    )
    .await;
    wait_running(&client, "apps", "web", "nochroot").await;
    let out = exec(
        &client,
        "apps",
        "web",
        "nochroot",
        &["chroot", "/", "/bin/true"],
    )
    .await;
    assert_ne!(exit_code(&out.status), Some(0));
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
    // And with fewer capabilities than the target, ptrace rules hide its root.
    let out = exec(&client, "apps", "web", "nochroot", &["ls", "/proc/1/root/"]).await;
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);

    // A non-root debug container cannot read a root target's root.
    add_debug(
        &client,
        "apps",
        "web",
        debugger("nonroot", json!({"runAsUser": 65532, "runAsNonRoot": true})),
    )
    .await;
    wait_running(&client, "apps", "web", "nonroot").await;
    let out = exec(&client, "apps", "web", "nonroot", &["ls", "/proc/1/root/"]).await;
    assert_ne!(exit_code(&out.status), Some(0));
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    let out = exec(&client, "apps", "web", "nonroot", &["id", "-u"]).await;
    assert_eq!(out.stdout.trim(), "65532");

    // Deleting the pod stops every process and releases every mount.
    let marker = "dscan-sim-";
    let pids: Vec<i32> = ["app", "dbg", "nochroot", "nonroot"]
        .iter()
        .filter_map(|c| sim.container_pid("apps", "web", c))
        .collect();
    assert_eq!(pids.len(), 4);
    Api::<Pod>::namespaced(client.clone(), "apps")
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while Api::<Pod>::namespaced(client.clone(), "apps")
        .get_opt("web")
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pod deletion never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "container process {pid} still runs: {stat}"
        );
    }
    assert!(
        sim_mounts(marker).is_empty(),
        "mounts left in the host namespace: {:?}",
        sim_mounts(marker)
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn exec_works_over_v4_and_passes_stdin() {
    let sim = Sim::start().await.unwrap();
    require_real_containers(&sim);
    let client = sim.client().await.unwrap();
    create_pod(&client, "default", json!({"metadata": {"name": "sh"}, "spec": {"containers": [{"name": "app", "image": dscan_sim::images::SHELL_APP}]}})).await;
    wait_running(&client, "default", "sh", "app").await;
    sim.faults().exec_v4_only(true);
    let out = exec(
        &client,
        "default",
        "sh",
        "app",
        &["sh", "-c", "echo v4; exit 7"],
    )
    .await;
    assert_eq!(out.stdout, "v4\n");
    assert_eq!(exit_code(&out.status), Some(7));
    sim.faults().exec_v4_only(false);

    // stdin, closed by the v5 close signal.
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut attached = api
        .exec(
            "sh",
            ["sh", "-c", "wc -c"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await
        .unwrap();
    let mut stdin = attached.stdin().unwrap();
    let mut stdout = attached.stdout().unwrap();
    let status = attached.take_status().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"hello")
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::shutdown(&mut stdin)
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), stdout.read_to_string(&mut out))
        .await
        .expect("stdin EOF reached the command")
        .unwrap();
    assert_eq!(out.trim(), "5");
    assert!(ok(&status.await.unwrap()));

    // A dropped exec stream ends without a status: kube's exec task fails
    // with a WebSocket error (readers of stdout see no EOF, as with a real
    // cluster; the error surfaces through `join`).
    let mut attached = api
        .exec(
            "sh",
            ["sh", "-c", "echo a; sleep 5; echo b"],
            &AttachParams::default(),
        )
        .await
        .unwrap();
    let mut stdout = attached.stdout().unwrap();
    let status = attached.take_status().unwrap();
    let mut first = [0u8; 2];
    stdout.read_exact(&mut first).await.unwrap();
    sim.faults().drop_exec_streams();
    let joined = tokio::time::timeout(Duration::from_secs(3), attached.join())
        .await
        .expect("the exec ends at once");
    assert!(joined.is_err(), "a cut exec stream is an error: {joined:?}");
    assert!(
        tokio::time::timeout(Duration::from_secs(3), status)
            .await
            .expect("status future resolves")
            .is_none()
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn nonroot_targets_run_as_65532_and_share_process_namespace_moves_pid_1() {
    let sim = Sim::start().await.unwrap();
    require_real_containers(&sim);
    let client = sim.client().await.unwrap();
    create_pod(&client, "default", distroless_pod("nr", DISTROLESS_NONROOT)).await;
    wait_running(&client, "default", "nr", "app").await;
    let pid = sim.container_pid("default", "nr", "app").unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65532")),
        "{status}"
    );

    let shared = json!({"metadata": {"name": "shared"}, "spec": {"shareProcessNamespace": true,
        "containers": [{"name": "app", "image": DISTROLESS}]}});
    create_pod(&client, "default", shared).await;
    wait_running(&client, "default", "shared", "app").await;
    add_debug(&client, "default", "shared", debugger("dbg", json!({}))).await;
    wait_running(&client, "default", "shared", "dbg").await;
    let out = exec(
        &client,
        "default",
        "shared",
        "dbg",
        &[
            "sh",
            "-c",
            "cat /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'",
        ],
    )
    .await;
    let target_pid = sim.container_pid("default", "shared", "app").unwrap();
    let ns_pid = std::fs::read_to_string(format!("/proc/{target_pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .and_then(|l| l.split_whitespace().last().map(String::from))
        .unwrap();
    assert_ne!(
        ns_pid, "1",
        "with a shared process namespace the target is not PID 1"
    );
    assert!(
        out.stdout.starts_with("/app/server"),
        "PID 1 is the sandbox: {}",
        out.stdout
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn a_host_pid_pods_debug_container_sees_the_nodes_processes() {
    let sim = Sim::start().await.unwrap();
    require_real_containers(&sim);
    let client = sim.client().await.unwrap();
    let pod = json!({"metadata": {"name": "hostpid"}, "spec": {"hostPID": true,
        "containers": [{"name": "app", "image": DISTROLESS}]}});
    create_pod(&client, "default", pod).await;
    wait_running(&client, "default", "hostpid", "app").await;
    add_debug(&client, "default", "hostpid", debugger("dbg", json!({}))).await;
    wait_running(&client, "default", "hostpid", "dbg").await;
    let out = exec(
        &client,
        "default",
        "hostpid",
        "dbg",
        &["sh", "-c", "cat /proc/1/cmdline; echo"],
    )
    .await;
    assert!(ok(&out.status), "{}", out.stderr);
    // As on a real node: PID 1 is the host's init, not the target.
    let init = std::fs::read("/proc/1/cmdline").unwrap();
    let init = String::from_utf8_lossy(&init).replace('\0', "");
    assert!(
        !out.stdout.starts_with("/app/server"),
        "PID 1 is the node's init, not the target: {}",
        out.stdout
    );
    assert_eq!(out.stdout.trim_end().replace('\0', ""), init);
    let target_pid = sim.container_pid("default", "hostpid", "app").unwrap();
    let status = std::fs::read_to_string(format!("/proc/{target_pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(
        nspid.split_whitespace().count(),
        2,
        "the target has no PID namespace of its own: {nspid}"
    );
}

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn run_as_user_alone_takes_the_gid_from_the_images_passwd_and_the_status_says_so() {
    let sim = Sim::start().await.unwrap();
    require_real_containers(&sim);
    let client = sim.client().await.unwrap();
    // containerd: runAsUser without runAsGroup → the UID's GID in the image's
    // /etc/passwd (nonroot:x:65532:65532), not 0.
    let pod = json!({"metadata": {"name": "uidonly"}, "spec": {
        "containers": [{"name": "app", "image": DISTROLESS, "securityContext": {"runAsUser": 65532}}]}});
    create_pod(&client, "default", pod).await;
    let pod = wait_running(&client, "default", "uidonly", "app").await;
    let pid = sim.container_pid("default", "uidonly", "app").unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let gid = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
    assert_eq!(gid.split_whitespace().nth(1), Some("65532"), "{gid}");
    let user = pod.status.unwrap().container_statuses.unwrap()[0]
        .user
        .clone()
        .unwrap()
        .linux
        .unwrap();
    assert_eq!((user.uid, user.gid), (65532, 65532));
    assert_eq!(user.supplemental_groups, Some(vec![65532]));
}
