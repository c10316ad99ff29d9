//! Fleet benchmark on the simulator: `dscan scan` over 25, 50 and 100
//! pods at `--concurrency 10` against one single-pod scan of the same
//! image, interleaved in one run. Reports wall-time medians, the ratio of
//! the 100-pod fleet to one scan (goal: at most 12x), API requests per
//! target, and dscan's peak RSS (VmHWM, sampled every 20 ms until exit) per
//! fleet size (goal: flat apart from the results it keeps). Needs root.
//!
//! `cargo run --release -p dscan-tests --example fleet_bench -- target/release/dscan [ROUNDS]`

use std::path::Path;
use std::time::{Duration, Instant};

use dscan_tests::bench::median_secs as median;

/// The process's peak RSS so far, KiB.
fn hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs dscan; returns (seconds, peak RSS KiB, stdout).
async fn measure(mut cmd: tokio::process::Command) -> (f64, u64, Vec<u8>, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dscan");
    let pid = child.id().unwrap_or(0);
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = tokio::spawn(async move {
        let mut v = vec![];
        let _ = stdout.read_to_end(&mut v).await;
        v
    });
    let err = tokio::spawn(async move {
        let mut v = vec![];
        let _ = stderr.read_to_end(&mut v).await;
        v
    });
    let mut peak = 0;
    let status = loop {
        if let Some(k) = hwm(pid) {
            peak = peak.max(k);
        }
        match tokio::time::timeout(Duration::from_millis(20), child.wait()).await {
            Ok(s) => break s.expect("wait"),
            Err(_) => continue,
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let out = out.await.unwrap_or_default();
    let err = err.await.unwrap_or_default();
    assert!(
        status.code().is_some_and(|c| c <= 1),
        "dscan failed: {}",
        String::from_utf8_lossy(&err)
    );
    (secs, peak, out, err)
}

#[tokio::main]
async fn main() {
    let (dscan, rounds) = dscan_tests::bench::dscan_and_rounds(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, kubeconfig) = dscan_tests::bench::simulator(&dscan, "fleet_bench", dir.path()).await;
    sim.create_namespace("fleet", dscan_sim::Level::Baseline)
        .expect("namespace");
    // Labels pick 25 (q=0), 50 (h=0) and 100 (app=web) of the pods.
    let started = Instant::now();
    for i in 0..100 {
        let pod = serde_json::json!({"metadata": {"name": format!("web-{i}"),
            "labels": {"app": "web", "q": (i / 25).to_string(), "h": (i / 50).to_string()}},
            "spec": {"containers": [{"name": "app", "image": dscan_sim::images::DISTROLESS}]}});
        sim.run_pod("fleet", pod, Duration::from_secs(60))
            .await
            .expect("target pod");
    }
    eprintln!(
        "100 pods running after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let image = sim
        .images()
        .pinned(dscan_sim::images::BUSYBOX)
        .expect("image");
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/profiles/container-baseline")
        .display()
        .to_string();
    // The default client-side limit (--qps 50 --burst 100) bounds a fleet's
    // pace by design; the last variant lifts it to show the rest.
    let variants: [(&str, usize, Vec<&str>); 5] = [
        ("one pod (dscan scan -p)", 1, vec!["-p", "web-0"]),
        ("fleet of 25 (-l q=0)", 25, vec!["-l", "q=0"]),
        ("fleet of 50 (-l h=0)", 50, vec!["-l", "h=0"]),
        ("fleet of 100 (-l app=web)", 100, vec!["-l", "app=web"]),
        (
            "fleet of 100, --qps 500",
            100,
            vec!["-l", "app=web", "--qps", "500", "--burst", "500"],
        ),
    ];
    let mut wall: Vec<Vec<f64>> = vec![vec![]; variants.len()];
    let mut rss: Vec<Vec<f64>> = vec![vec![]; variants.len()];
    let mut requests: Vec<Vec<f64>> = vec![vec![]; variants.len()];
    for round in 0..rounds {
        for (k, (_, _, select)) in variants.iter().enumerate() {
            let before = sim.faults().requests().len();
            let mut cmd = tokio::process::Command::new(&dscan);
            cmd.arg("scan")
                .args(["-n", "fleet"])
                .args(select)
                .args(["--runner", "native", "--debug-image", &image])
                .args(["--profile", &baseline, "-I", "{compliance.min: 0}"])
                .args(["--concurrency", "10", "--output", "json", "--kubeconfig"])
                .arg(&kubeconfig)
                .arg("--state-dir")
                .arg(dir.path().join("state"));
            if k == 0 {
                cmd.arg("--results")
                    .arg(dir.path().join(format!("one-{round}.json")));
            } else {
                cmd.arg("--results-dir")
                    .arg(dir.path().join(format!("fleet-{round}-{k}")));
            }
            let (secs, peak, out, _) = measure(cmd).await;
            let doc: serde_json::Value = serde_json::from_slice(&out).expect("json");
            if k > 0 {
                let scanned = doc["targets"].as_array().map_or(0, Vec::len);
                assert_eq!(scanned, variants[k].1, "the fleet scanned what it selected");
            }
            wall[k].push(secs);
            rss[k].push(peak as f64);
            requests[k].push((sim.faults().requests().len() - before) as f64);
        }
    }
    println!(
        "dscan scan on the simulator, native runner, container-baseline, --concurrency 10; {rounds} interleaved rounds (medians):"
    );
    for (k, (label, n, _)) in variants.iter().enumerate() {
        let r = median(requests[k].clone());
        println!(
            "  {label:<28} {:>8.2} s  {:>6.0} API requests ({:>5.1} per target)  peak RSS {:>7.1} MiB",
            median(wall[k].clone()),
            r,
            r / *n as f64,
            median(rss[k].clone()) / 1024.0
        );
    }
    let one = median(wall[0].clone());
    let hundred = median(wall[3].clone());
    let unthrottled = median(wall[4].clone());
    println!(
        "  100-pod fleet / one scan: {:.2}x wall time at the default --qps 50 (goal <= 12x); \
         its {:.0} requests need >= {:.1} s at 50/s after a burst of 100",
        hundred / one,
        median(requests[3].clone()),
        (median(requests[3].clone()) - 100.0).max(0.0) / 50.0
    );
    println!(
        "  100-pod fleet at --qps 500 / one scan: {:.2}x wall time",
        unthrottled / one
    );
    println!(
        "  peak RSS, 100-pod fleet / 25-pod fleet: {:.2}x",
        median(rss[3].clone()) / median(rss[1].clone())
    );
}
