//! Opt-in end-to-end tests against a real cluster (kind, k3d, or any other),
//! ignored by default: run them with
//! `cargo test -p dscan --test e2e_cluster -- --ignored` and
//! `DSCAN_E2E_KUBECONFIG` pointing at a kubeconfig whose identity may run
//! dscan in `DSCAN_E2E_NAMESPACE` (default `dscan-demo`) against
//! `DSCAN_E2E_POD` (default `distroless-app`); see
//! `examples/k8s/distroless-pod.yaml` and the README. A test that is run
//! without what it needs fails and says what to set.
//!
//! What they check first on a real cluster (the simulator was corrected for
//! each, but only a real API server and kubelet can confirm it): setup's
//! token request (no pod binding), the target verified by its container ID
//! with the real runtime's cgroups, hostPID pods refused, and the user the
//! node reports for an image that picks its own.

use std::process::Command;

struct Cluster {
    kubeconfig: String,
    namespace: String,
    pod: String,
}

fn cluster() -> Cluster {
    let kubeconfig = std::env::var("DSCAN_E2E_KUBECONFIG").unwrap_or_else(|_| {
        panic!("set DSCAN_E2E_KUBECONFIG to run the end-to-end tests against a real cluster")
    });
    Cluster {
        kubeconfig,
        namespace: std::env::var("DSCAN_E2E_NAMESPACE").unwrap_or_else(|_| "dscan-demo".into()),
        pod: std::env::var("DSCAN_E2E_POD").unwrap_or_else(|_| "distroless-app".into()),
    }
}

/// A required variable, or a failure naming it.
fn required(var: &str, why: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("set {var} to run this test: {why}"))
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

/// Also the first check of setup on a real API server: the token request
/// (which the server refuses when it is bound to a pod running as another
/// ServiceAccount) and the wait for the new Role (RBAC cache lag).
#[test]
#[ignore = "needs a real cluster (DSCAN_E2E_KUBECONFIG)"]
fn check_against_a_real_cluster_leaves_nothing() {
    let c = cluster();
    let out = dscan(&c, &["check", "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("run record");
    assert_eq!(record["cleanup"]["remaining"], serde_json::json!([]));
    assert!(
        record["token_seconds"].as_i64().is_some_and(|s| s >= 600),
        "{record}"
    );
}

/// The stand-in scan passes the root check only when the found process's
/// cgroup or mounts name the target's container ID: on a real node that is
/// the runtime's cgroup path.
#[test]
#[ignore = "needs a real cluster (DSCAN_E2E_KUBECONFIG)"]
fn standin_scan_against_a_real_cluster() {
    let c = cluster();
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
#[ignore = "needs a real cluster and cinc-auditor with train-k8s-container (DSCAN_E2E_CINC=1)"]
fn cinc_scan_against_a_real_cluster() {
    let c = cluster();
    required(
        "DSCAN_E2E_CINC",
        "cinc-auditor and the train-k8s-container plugin must be installed",
    );
    scan_example_profile(&c, &[]);
}

/// The graft strategy with the real CINC Auditor image: its Ruby is
/// dynamically linked, so in the target's view its loader would be the
/// target's; graft refuses it before it runs. Needs a namespace whose Pod
/// Security enforce level is `privileged`.
#[test]
#[ignore = "needs a real cluster and a CINC Auditor image (DSCAN_E2E_SCANNER_IMAGE)"]
fn graft_refuses_a_dynamic_scanner_on_a_real_cluster() {
    let c = cluster();
    let image = required(
        "DSCAN_E2E_SCANNER_IMAGE",
        "a CINC Auditor image, pinned by digest; point DSCAN_E2E_NAMESPACE at a PSA-privileged namespace",
    );
    let out = dscan(
        &c,
        &[
            "scan",
            "--runner",
            "in-debug",
            "--allow-privileged",
            "--scanner-image",
            &image,
            "--output",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("is dynamically linked"), "{stderr}");
}

/// A hostPID pod's debug container would see the node's processes: refused
/// before anything is added (`examples/k8s/hostpid-pod.yaml`).
#[test]
#[ignore = "needs a real cluster with a hostPID pod (DSCAN_E2E_HOSTPID_POD)"]
fn host_pid_pods_are_refused_on_a_real_cluster() {
    let c = cluster();
    let c = Cluster {
        namespace: required("DSCAN_E2E_HOSTPID_NAMESPACE", "the hostPID pod's namespace"),
        pod: required("DSCAN_E2E_HOSTPID_POD", "a pod with hostPID: true"),
        ..c
    };
    let out = dscan(&c, &["scan", "--runner", "standin", "--output", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("hostPID: true"), "{stderr}");
}

/// An image that runs as its own non-root USER, with no securityContext:
/// the node reports the user (Kubernetes 1.33+), so the root-only strategy
/// declines with the UID instead of failing on the target's root
/// (`distroless-nonroot` in `examples/k8s/distroless-pod.yaml`).
#[test]
#[ignore = "needs a real cluster (1.33+) with a nonroot-image pod (DSCAN_E2E_NONROOT_POD)"]
fn a_nonroot_images_user_is_reported_on_a_real_cluster() {
    let c = cluster();
    let c = Cluster {
        pod: required(
            "DSCAN_E2E_NONROOT_POD",
            "a pod whose image runs as a non-root USER",
        ),
        ..c
    };
    let out = dscan(&c, &["scan", "--runner", "standin", "--output", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("the target runs as UID 65532"), "{stderr}");
}

/// `kubectl` with the test's kubeconfig (`$DSCAN_E2E_KUBECTL`, default `kubectl`).
fn kubectl(c: &Cluster, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    use std::io::Write;
    let program = std::env::var("DSCAN_E2E_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut child = Command::new(&program)
        .args(["--kubeconfig", &c.kubeconfig])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program} (set DSCAN_E2E_KUBECTL): {e}"));
    let mut input = child.stdin.take().expect("stdin");
    if let Some(bytes) = stdin {
        input.write_all(bytes).expect("write manifests");
    }
    drop(input);
    child.wait_with_output().expect("kubectl")
}

#[test]
#[ignore = "needs a real cluster and a dscan image holding the example profile (DSCAN_E2E_IMAGE)"]
fn an_indexed_job_shards_a_fleet_on_a_real_cluster_and_collect_merges_it() {
    let c = cluster();
    let image = required(
        "DSCAN_E2E_IMAGE",
        "a dscan image (pinned by digest) with the example profile at /profiles/container-baseline",
    );
    let job_ns = std::env::var("DSCAN_E2E_JOB_NAMESPACE").unwrap_or_else(|_| c.namespace.clone());
    let run = format!("e2e-{}", std::process::id());
    let manifests = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args([
            "fleet", "job", "--run", &run, "-n", &job_ns, "--shards", "2",
        ])
        .args(["--image", &image, "--deadline", "900", "--"])
        .args([
            "-n",
            &c.namespace,
            "--profile",
            "/profiles/container-baseline",
        ])
        .args(["-I", "{compliance.min: 0}"])
        .output()
        .expect("dscan fleet job");
    assert!(
        manifests.status.success(),
        "{}",
        String::from_utf8_lossy(&manifests.stderr)
    );
    let applied = kubectl(&c, &["apply", "-f", "-"], Some(&manifests.stdout));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let job = format!("job/dscan-fleet-{run}");
    let waited = kubectl(
        &c,
        &[
            "wait",
            "-n",
            &job_ns,
            "--for=condition=complete",
            "--timeout=900s",
            &job,
        ],
        None,
    );
    let collect = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args([
            "fleet", "collect", "--run", &run, "-n", &job_ns, "--output", "json",
        ])
        .args(["-I", "{compliance.min: 0}", "--kubeconfig", &c.kubeconfig])
        .output()
        .expect("dscan fleet collect");
    // The Job's objects go whatever happened.
    let deleted = kubectl(&c, &["delete", "-f", "-"], Some(&manifests.stdout));
    assert!(
        waited.status.success(),
        "the Job did not complete: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&collect.stdout).unwrap_or_default();
    assert_eq!(
        collect.status.code(),
        Some(0),
        "{doc} {}",
        String::from_utf8_lossy(&collect.stderr)
    );
    assert_eq!(doc["shards"], 2, "{doc}");
    assert!(
        doc["targets"].as_array().is_some_and(|t| !t.is_empty()),
        "{doc}"
    );
    assert_eq!(doc["removed"], true, "{doc}");
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
}

/// The node-debug fallback on a real node: the target's process found by
/// the container ID in its cgroup (the simulator has no cgroups). Needs a
/// target pod in a namespace whose policy refuses ephemeral containers
/// (`DSCAN_E2E_REFUSED_NAMESPACE`, `DSCAN_E2E_REFUSED_POD`) and a privileged
/// namespace for the node pod (`DSCAN_E2E_NODE_DEBUG_NAMESPACE`).
#[test]
#[ignore = "needs a real cluster that refuses ephemeral containers somewhere (DSCAN_E2E_REFUSED_NAMESPACE)"]
fn node_debug_falls_back_on_a_real_cluster() {
    let c = cluster();
    let refused_ns = required(
        "DSCAN_E2E_REFUSED_NAMESPACE",
        "a namespace where an admission policy denies pods/ephemeralcontainers",
    );
    let pod = required("DSCAN_E2E_REFUSED_POD", "a running distroless pod there");
    let debug_ns = required(
        "DSCAN_E2E_NODE_DEBUG_NAMESPACE",
        "a namespace whose Pod Security level is privileged, for the node pod",
    );
    let profile = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/profiles/container-baseline");
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results.json");
    let out = Command::new(env!("CARGO_BIN_EXE_dscan"))
        .args(["scan", "-n", &refused_ns, "-p", &pod, "--output", "json"])
        .args([
            "--strategy",
            "same-user,node-debug",
            "--node-debug-namespace",
            &debug_ns,
        ])
        .arg("--profile")
        .arg(&profile)
        .arg("--results")
        .arg(&results)
        .args(["-I", "{compliance.min: 0}", "--kubeconfig", &c.kubeconfig])
        .output()
        .expect("run dscan");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{doc} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(doc["scan"]["strategy"], "node-debug", "{doc}");
    assert_eq!(
        doc["run"]["cleanup"]["remaining"],
        serde_json::json!([]),
        "{doc}"
    );
}
