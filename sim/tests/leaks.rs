//! Dropping the simulator leaves no container process, mount or directory
//! behind (root only).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod support;

use std::time::Duration;

use dscan_sim::Sim;
use dscan_sim::images::{BUSYBOX, DISTROLESS};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::*;

#[tokio::test]
#[ignore = "needs root: the simulator's kubelet runs containers in namespaces (./scripts/test runs these as root)"]
async fn dropping_the_simulator_kills_containers_and_releases_mounts() {
    let sim = Sim::start().await.unwrap();
    require_real_containers(&sim);
    let client = sim.client().await.unwrap();
    create_pod(&client, "default", distroless_pod("web", DISTROLESS)).await;
    wait_running(&client, "default", "web", "app").await;
    let debug = json!({"spec": {"ephemeralContainers": [{"name": "dbg", "image": BUSYBOX, "targetContainerName": "app", "command": ["sleep", "600"]}]}});
    Api::<Pod>::namespaced(client.clone(), "default")
        .patch_ephemeral_containers("web", &PatchParams::default(), &Patch::Strategic(debug))
        .await
        .unwrap();
    wait_running(&client, "default", "web", "dbg").await;
    let pids: Vec<i32> = ["app", "dbg"]
        .iter()
        .filter_map(|c| sim.container_pid("default", "web", c))
        .collect();
    assert_eq!(pids.len(), 2);
    drop(client);
    sim.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "container {pid} outlived the simulator: {stat}"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("dscan-sim-"), "mounts left: {mounts}");
    let helpers: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("dscan-sim-runtime") && c.contains("\"rootfs\""))
        .collect();
    // Other simulators may run in parallel test binaries; none of ours may remain.
    assert!(
        helpers
            .iter()
            .all(|h| !h.contains("\"hostname\":\"web\"") || !h.contains("sleep")),
        "{helpers:?}"
    );
}
