//! Shared helpers for the simulator's tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use dscan_sim::{KubeletMode, Sim};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

/// Creates a pod from JSON.
pub async fn create_pod(client: &kube::Client, ns: &str, pod: serde_json::Value) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(pod).expect("pod JSON");
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

/// A distroless target pod.
pub fn distroless_pod(name: &str, image: &str) -> serde_json::Value {
    json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": image}]}})
}

/// Polls until `check` accepts the pod (20 s at most).
pub async fn wait_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Pod) -> bool,
) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(pod) = api.get(name).await
            && check(&pod)
        {
            return pod;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pod {ns}/{name} never became {what}: {:?}",
            api.get(name).await.ok().and_then(|p| p.status)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the pod's container (regular or ephemeral) is running.
pub async fn wait_running(client: &kube::Client, ns: &str, pod: &str, container: &str) -> Pod {
    wait_pod(client, ns, pod, &format!("running ({container})"), |p| {
        let status = p.status.clone().unwrap_or_default();
        status
            .container_statuses
            .unwrap_or_default()
            .into_iter()
            .chain(status.ephemeral_container_statuses.unwrap_or_default())
            .any(|s| s.name == container && s.state.and_then(|s| s.running).is_some())
    })
    .await
}

/// Fails unless the kubelet runs real containers here (these tests are
/// `#[ignore]`d by default and run with `--ignored` as root).
pub fn require_real_containers(sim: &Sim) {
    if let KubeletMode::StatusOnly(why) = sim.kubelet_mode() {
        panic!(
            "this test needs real containers (run it as root), and the kubelet is in status-only mode: {why}"
        );
    }
}
