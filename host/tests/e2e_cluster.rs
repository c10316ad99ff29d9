//! Opt-in end-to-end tests against a real cluster (kind, k3d, or any other).
//! They run only when `DSCAN_E2E_KUBECONFIG` points at a kubeconfig whose
//! identity may run dscan in `DSCAN_E2E_NAMESPACE` (default `dscan-demo`)
//! against `DSCAN_E2E_POD` (default `distroless-app`); see
//! `examples/k8s/distroless-pod.yaml` and the README. Otherwise they print
//! SKIPPED and pass.

use std::process::Command;

struct Cluster {
    kubeconfig: String,
    namespace: String,
    pod: String,
}

fn cluster() -> Option<Cluster> {
    let Ok(kubeconfig) = std::env::var("DSCAN_E2E_KUBECONFIG") else {
        eprintln!(
            "SKIPPED: set DSCAN_E2E_KUBECONFIG to run the end-to-end tests against a real cluster"
        );
        return None;
    };
    Some(Cluster {
        kubeconfig,
        namespace: std::env::var("DSCAN_E2E_NAMESPACE").unwrap_or_else(|_| "dscan-demo".into()),
        pod: std::env::var("DSCAN_E2E_POD").unwrap_or_else(|_| "distroless-app".into()),
    })
}

fn dscan(c: &Cluster, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args(args)
        .args([
            "--kubeconfig",
            &c.kubeconfig,
            "-n",
            &c.namespace,
            "-p",
            &c.pod,
        ])
        .output()
        .expect("run dscan")
}

/// `dscan scan` of the example container-baseline profile with `extra`
/// flags; it must run (thresholds at 0: the cluster's findings are not the test).
fn scan_example_profile(c: &Cluster, extra: &[&str]) {
    let profile = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/profiles/container-baseline");
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results.json");
    let mut args = vec![
        "scan",
        "--profile",
        profile.to_str().expect("utf-8"),
        "--results",
        results.to_str().expect("utf-8"),
        "-I",
        "{compliance.min: 0}",
    ];
    args.extend(extra);
    let out = dscan(c, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_against_a_real_cluster_leaves_nothing() {
    let Some(c) = cluster() else { return };
    let out = dscan(&c, &["check", "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("run record");
    assert_eq!(record["cleanup"]["remaining"], serde_json::json!([]));
}

#[test]
fn standin_scan_against_a_real_cluster() {
    let Some(c) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results.json");
    let mut args = vec![
        "scan",
        "--runner",
        "standin",
        "--results",
        results.to_str().expect("utf-8"),
    ];
    let image = std::env::var("DSCAN_E2E_DEBUG_IMAGE").unwrap_or_default();
    if !image.is_empty() {
        args.extend(["--debug-image", image.as_str()]);
    }
    let out = dscan(&c, &args);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hdf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).expect("results")).expect("HDF");
    assert_eq!(hdf["profiles"][0]["name"], "dscan-standin-baseline");
}

#[test]
fn cinc_scan_against_a_real_cluster() {
    let Some(c) = cluster() else { return };
    if std::env::var("DSCAN_E2E_CINC").is_err() {
        eprintln!(
            "SKIPPED: set DSCAN_E2E_CINC=1 (with cinc-auditor and train-k8s-container installed) to run the CINC runner"
        );
        return;
    }
    scan_example_profile(&c, &[]);
}

/// The graft strategy with the real CINC Auditor image: needs a namespace
/// whose Pod Security enforce level is `privileged` and consent to a
/// privileged debug container.
#[test]
fn graft_scan_against_a_real_cluster() {
    let Some(c) = cluster() else { return };
    let Ok(image) = std::env::var("DSCAN_E2E_SCANNER_IMAGE") else {
        eprintln!(
            "SKIPPED: set DSCAN_E2E_SCANNER_IMAGE (a CINC Auditor image, pinned by digest) and point \
             DSCAN_E2E_NAMESPACE at a PSA-privileged namespace to run the graft strategy"
        );
        return;
    };
    scan_example_profile(
        &c,
        &[
            "--runner",
            "in-debug",
            "--allow-privileged",
            "--scanner-image",
            &image,
        ],
    );
}
