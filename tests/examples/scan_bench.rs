//! End-to-end orchestration benchmark of `dscan scan` on the simulator, with
//! the stand-in runner (which returns in well under a second) and with the
//! in-debug runner (graft strategy, the simulator's stand-in CINC image),
//! against `dscan check` (everything but the debug container and the scan) in
//! the same run, interleaved. Reports wall-time medians, phase medians and API requests
//! per run. Needs root (the simulator's kubelet).
//!
//! `cargo run --release -p dscan-tests --example scan_bench -- target/release/dscan [RUNS]`

use std::time::{Duration, Instant};

use dscan_tests::bench::median_secs as median;

#[tokio::main]
async fn main() {
    let (dscan, runs) = dscan_tests::bench::dscan_and_rounds(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, kubeconfig) = dscan_tests::bench::simulator(&dscan, "scan_bench", dir.path()).await;
    sim.create_namespace("apps", dscan_sim::Level::Baseline)
        .expect("namespace");
    // The graft strategy needs a privileged namespace.
    sim.create_namespace("ops", dscan_sim::Level::Privileged)
        .expect("namespace");
    let profile = dir.path().join("profile");
    std::fs::create_dir_all(&profile).expect("profile");
    std::fs::write(profile.join("inspec.yml"), "name: bench\n").expect("inspec.yml");
    for ns in ["apps", "ops"] {
        let pod = serde_json::json!({"metadata": {"name": "web"},
            "spec": {"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS}]}});
        sim.run_pod(ns, pod, Duration::from_secs(30))
            .await
            .expect("target pod");
    }
    let image = sim
        .images()
        .pinned(dscan_sim::images::BUSYBOX)
        .expect("image");
    let scanner_image = sim
        .images()
        .pinned(dscan_sim::images::CINC_STANDIN)
        .expect("image");
    let profile_arg = profile.display().to_string();
    let baseline = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/profiles/container-baseline")
        .display()
        .to_string();
    let variants: [(&str, &str, Vec<&str>); 4] = [
        (
            "dscan check (setup + proof + cleanup)",
            "apps",
            vec!["check"],
        ),
        (
            "dscan scan --runner standin (chroot-wrapper)",
            "apps",
            vec!["scan", "--runner", "standin", "--debug-image", &image],
        ),
        (
            "dscan scan --runner in-debug (graft, stand-in CINC)",
            "ops",
            vec![
                "scan",
                "--runner",
                "in-debug",
                "--allow-privileged",
                "--scanner-image",
                &scanner_image,
                "--profile",
                &profile_arg,
                "-I",
                "{compliance.min: 0}",
            ],
        ),
        (
            "dscan scan --runner native (same-user, container-baseline)",
            "apps",
            vec![
                "scan",
                "-v",
                "--runner",
                "native",
                "--debug-image",
                &image,
                "--profile",
                &baseline,
                "-I",
                "{compliance.min: 0}",
            ],
        ),
    ];
    let mut agent_requests: Vec<f64> = vec![];
    let mut wall: Vec<Vec<f64>> = vec![vec![]; variants.len()];
    let mut requests: Vec<Vec<f64>> = vec![vec![]; variants.len()];
    let mut phases: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for i in 0..runs {
        for (k, (_, ns, args)) in variants.iter().enumerate() {
            let before = sim.faults().requests().len();
            let mut cmd = tokio::process::Command::new(&dscan);
            cmd.args(args)
                .args(["-n", ns, "-p", "web", "--output", "json", "--kubeconfig"])
                .arg(&kubeconfig)
                .arg("--state-dir")
                .arg(dir.path().join("state"));
            if args[0] == "scan" {
                cmd.arg("--results")
                    .arg(dir.path().join(format!("r{i}-{k}.json")));
            }
            let t = Instant::now();
            let out = cmd.output().await.expect("dscan");
            let secs = t.elapsed().as_secs_f64();
            assert!(
                out.status.success(),
                "{args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            wall[k].push(secs);
            // The native runner logs its agent round trips at -v.
            let stderr = String::from_utf8_lossy(&out.stderr);
            if let Some(n) = stderr
                .lines()
                .find_map(|l| l.split("native runner: ").nth(1))
                .and_then(|r| r.split(' ').next()?.parse::<f64>().ok())
            {
                agent_requests.push(n);
            }
            requests[k].push((sim.faults().requests().len() - before) as f64);
            if k == 1 {
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
    println!("dscan scan orchestration on the simulator, {runs} interleaved runs each (medians):");
    for (k, (label, _, _)) in variants.iter().enumerate() {
        println!(
            "  {label:<52} {:>8.3} s  {:>4.0} API requests",
            median(wall[k].clone()),
            median(requests[k].clone())
        );
        if k == 1 {
            for (phase, v) in &phases {
                println!("      phase {phase:<10} {:>8.3} s", median(v.clone()));
            }
        }
    }
    let check = median(wall[0].clone());
    let scan = median(wall[1].clone());
    let graft = median(wall[2].clone());
    let native = median(wall[3].clone());
    println!("  standin scan / check: {:.2}x", scan / check);
    println!("  graft scan / standin scan: {:.2}x", graft / scan);
    println!(
        "  native scan / standin scan: {:.2}x ({:.0} agent round trips over one exec session, fetched ahead)",
        native / scan,
        if agent_requests.is_empty() {
            f64::NAN
        } else {
            median(agent_requests)
        }
    );
    println!(
        "  the reference workflow's fixed sleeps alone (>= 8 s) / dscan scan: {:.1}x",
        8.0 / scan
    );
}
