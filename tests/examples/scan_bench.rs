//! End-to-end orchestration benchmark of `dscan scan` on the simulator, with
//! the stand-in runner (which returns in well under a second), against
//! `dscan check` (everything but the debug container and the scan) in the same
//! run, interleaved. Reports wall-time medians, phase medians and API requests
//! per run. Needs root (the simulator's kubelet).
//!
//! `cargo run --release -p dscan-tests --example scan_bench -- target/release/dscan [RUNS]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dscan = PathBuf::from(
        args.get(1)
            .cloned()
            .unwrap_or_else(|| "target/release/dscan".into()),
    );
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    // The kubelet runs containers through dscan's own runtime-helper mode.
    let config = dscan_sim::SimConfig {
        runtime: Some(dscan_sim::RuntimeCommand {
            program: dscan.clone(),
            args: vec![dscan::cli::SIM_RUNTIME_ARG.into()],
        }),
        ..Default::default()
    };
    let sim = dscan_sim::Sim::start_with(config).await.expect("simulator");
    if let dscan_sim::KubeletMode::StatusOnly(why) = sim.kubelet_mode() {
        eprintln!("scan_bench needs the real-namespace kubelet: {why}");
        std::process::exit(3);
    }
    sim.create_namespace("apps", dscan_sim::Level::Baseline)
        .expect("namespace");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("admin.kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml().expect("kubeconfig")).expect("write");
    let client = sim.client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "apps");
    let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS}]}}))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pods
        .get("web")
        .await
        .ok()
        .and_then(|p| p.status?.container_statuses)
        .is_some_and(|c| c.iter().any(|s| s.ready))
    {
        assert!(Instant::now() < deadline, "pod never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let image = sim
        .images()
        .pinned(dscan_sim::images::BUSYBOX)
        .expect("image");
    let mut wall: [Vec<f64>; 2] = [vec![], vec![]];
    let mut requests: [Vec<f64>; 2] = [vec![], vec![]];
    let mut phases: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for i in 0..runs {
        for (k, command) in ["check", "scan"].iter().enumerate() {
            let before = sim.faults().requests().len();
            let mut cmd = tokio::process::Command::new(&dscan);
            cmd.args([
                command,
                "-n",
                "apps",
                "-p",
                "web",
                "--output",
                "json",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .arg("--state-dir")
            .arg(dir.path().join("state"));
            if *command == "scan" {
                cmd.args(["--runner", "standin", "--debug-image", &image, "--results"])
                    .arg(dir.path().join(format!("r{i}.json")));
            }
            let t = Instant::now();
            let out = cmd.output().await.expect("dscan");
            let secs = t.elapsed().as_secs_f64();
            assert!(
                out.status.success(),
                "{command} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            wall[k].push(secs);
            requests[k].push((sim.faults().requests().len() - before) as f64);
            if *command == "scan" {
                let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
                for p in doc["run"]["phases"].as_array().into_iter().flatten() {
                    phases
                        .entry(p["phase"].as_str().unwrap_or("?").to_string())
                        .or_default()
                        .push(p["seconds"].as_f64().unwrap_or(0.0));
                }
            }
        }
    }
    let check = median(wall[0].clone());
    let scan = median(wall[1].clone());
    println!("dscan scan orchestration on the simulator, {runs} interleaved runs each (medians):");
    println!(
        "  dscan check (setup + proof + cleanup)        {:>8.3} s  {:>4.0} API requests",
        check,
        median(requests[0].clone())
    );
    println!(
        "  dscan scan --runner standin (whole workflow) {:>8.3} s  {:>4.0} API requests",
        scan,
        median(requests[1].clone())
    );
    for (phase, v) in &phases {
        println!("    scan phase {phase:<10} {:>8.3} s", median(v.clone()));
    }
    println!("  scan / check: {:.2}x", scan / check);
    println!(
        "  the reference workflow's fixed sleeps alone (>= 8 s) / dscan scan: {:.1}x",
        8.0 / scan
    );
}
