//! `dscan demo`: the full workflow against the built-in cluster simulator.
//!
//! It starts the simulator in-process (an HTTPS Kubernetes API and a kubelet
//! that runs containers as real processes in Linux namespaces, which needs
//! root), creates a distroless target pod in a namespace of the chosen Pod
//! Security level, running as the chosen user, and runs exactly what
//! `dscan scan --runner native` runs — preflight, temporary identity, the
//! same-user debug container, the file agent, dscan's engine with the
//! container-baseline profile (embedded), thresholds, a report, cleanup.

use std::time::Duration;

use clap::Args;

use super::cluster_args::{OutputFormat, ScanTargetArgs, runtime};
use super::scan::{ScanArgs, cluster_part, finish, prepare};
use super::{CliError, GlobalOptions, exit};
use crate::cluster::{ClusterError, ConnectOptions};
use crate::scan::Runner;

/// The hidden first argument that makes `dscan` act as the simulator's runtime helper.
pub const SIM_RUNTIME_ARG: &str = "__dscan-sim-runtime";

/// The embedded container-baseline profile (`examples/profiles/`).
const PROFILE: [(&str, &str); 2] = [
    (
        "inspec.yml",
        include_str!("../../../examples/profiles/container-baseline/inspec.yml"),
    ),
    (
        "controls/baseline.rb",
        include_str!("../../../examples/profiles/container-baseline/controls/baseline.rb"),
    ),
];

/// A Pod Security level for the demo's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Psa {
    /// No restriction.
    Privileged,
    /// Known privilege escalations prevented.
    Baseline,
    /// Hardened: non-root, no capabilities, RuntimeDefault seccomp.
    Restricted,
}

/// Who the demo's target runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoUser {
    /// UID 0.
    Root,
    /// UID 65532, distroless's `nonroot`.
    Nonroot,
}

/// `dscan demo` flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The target namespace's Pod Security level.
    #[arg(long, value_enum, default_value_t = Psa::Restricted)]
    pub psa: Psa,
    /// Who the target runs as.
    #[arg(long, value_enum, default_value_t = DemoUser::Nonroot)]
    pub user: DemoUser,
    /// Report format printed at the end (any loaded reporter).
    #[arg(long, default_value = "markdown")]
    pub report: String,
    /// Where the HDF results are written.
    #[arg(long, value_name = "PATH", default_value = "dscan-demo-results.json")]
    pub results: std::path::PathBuf,
}

/// Runs the demo.
pub fn run(global: &GlobalOptions, args: DemoArgs) -> Result<u8, CliError> {
    if (args.psa, args.user) == (Psa::Restricted, DemoUser::Root) {
        return Err(CliError::Usage(
            "there is no restricted + root cell: Pod Security \"restricted\" admits no container running as root, \
             so no root target can run in such a namespace (try --user nonroot, or --psa baseline)"
                .into(),
        ));
    }
    eprintln!(
        "dscan demo: this runs against dscan's built-in Kubernetes simulator, NOT a real cluster."
    );
    eprintln!(
        "  The scanner is dscan's native engine with the container-baseline profile (examples/profiles/);"
    );
    eprintln!(
        "  it reads the simulated target's real files through a same-user debug container, without privilege."
    );
    let exe = std::env::current_exe().map_err(|source| CliError::Io {
        what: "find the dscan executable",
        path: String::new(),
        source,
    })?;
    let work = tempfile::Builder::new()
        .prefix("dscan-demo-")
        .tempdir()
        .map_err(|source| CliError::Io {
            what: "create a work directory",
            path: "tmp".into(),
            source,
        })?;
    let kubeconfig = work.path().join("admin.kubeconfig");
    let profile = work.path().join("container-baseline");
    for (rel, text) in PROFILE {
        let path = profile.join(rel);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        written.map_err(|source| CliError::Io {
            what: "write the demo profile",
            path: path.display().to_string(),
            source,
        })?;
    }
    let (level, level_name) = match args.psa {
        Psa::Privileged => (dscan_sim::Level::Privileged, "privileged"),
        Psa::Baseline => (dscan_sim::Level::Baseline, "baseline"),
        Psa::Restricted => (dscan_sim::Level::Restricted, "restricted"),
    };
    let (image, container) = match (args.user, args.psa) {
        (DemoUser::Root, _) => (
            dscan_sim::images::DISTROLESS,
            serde_json::json!({"name": "app", "image": dscan_sim::images::DISTROLESS}),
        ),
        (DemoUser::Nonroot, Psa::Restricted) => (
            dscan_sim::images::DISTROLESS_NONROOT,
            serde_json::json!({"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
                "securityContext": {"runAsUser": 65532, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}),
        ),
        (DemoUser::Nonroot, _) => (
            dscan_sim::images::DISTROLESS_NONROOT,
            serde_json::json!({"name": "app", "image": dscan_sim::images::DISTROLESS_NONROOT,
                "securityContext": {"runAsUser": 65532, "runAsNonRoot": true}}),
        ),
    };
    let scan_args = ScanArgs {
        target: ScanTargetArgs {
            namespace: vec!["demo".into()],
            all_namespaces: false,
            pod: Some("distroless-app".into()),
            selector: None,
            field_selector: None,
            container: None,
            rbac_wait: 60,
        },
        fleet: Default::default(),
        profile: Some(profile.clone()),
        runner: Runner::Native,
        scanner: None,
        scanner_runtime: None,
        scanner_image: super::scan::DEFAULT_SCANNER_IMAGE.into(),
        strategy: vec!["same-user".into()],
        strategy_opts: vec![],
        debug_image: dscan_sim::images::BUSYBOX.into(),
        allow_privileged: false,
        node_debug_namespace: None,
        toolkit: None,
        thresholds: Default::default(),
        reports: vec![args.report.clone()],
        results: args.results.clone(),
        timeout: 300,
        start_timeout: 60,
        max_results_mib: 16,
        keep_debug_container_running: false,
        output: OutputFormat::Human,
        cluster: super::cluster_args::ClusterArgs {
            kubeconfig: Some(kubeconfig.clone()),
            context: None,
            state_dir: Some(work.path().join("state")),
            qps: 50.0,
            burst: 100,
        },
    };
    let mut prepared = prepare(global, &scan_args, work.path().join("state"))?;
    let rt = runtime()?;
    let result = rt.block_on(async {
        let config = dscan_sim::SimConfig {
            runtime: Some(dscan_sim::RuntimeCommand { program: exe, args: vec![SIM_RUNTIME_ARG.into()] }),
            ..Default::default()
        };
        let sim = dscan_sim::Sim::start_with(config).await.map_err(|e| sim_error(&e.to_string()))?;
        if let dscan_sim::KubeletMode::StatusOnly(why) = sim.kubelet_mode() {
            return Err(sim_error(&format!(
                "the simulator cannot run containers here ({why}); run the demo as root (containers are real processes in namespaces)"
            )));
        }
        // The debug image pinned by digest, as production use should.
        if let Some(pinned) = sim.images().pinned(dscan_sim::images::BUSYBOX) {
            prepared.set_debug_image(pinned);
        }
        sim.create_namespace("demo", level).map_err(|e| sim_error(&e.to_string()))?;
        eprintln!("simulator: {} — namespace demo (Pod Security {level_name}), pod distroless-app ({image}, {})", sim.url(),
            match args.user { DemoUser::Root => "root", DemoUser::Nonroot => "UID 65532" });
        let pod = serde_json::json!({
            "metadata": {"name": "distroless-app", "labels": {"app": "distroless-app"}},
            "spec": {"containers": [container]}
        });
        sim.run_pod("demo", pod, Duration::from_secs(30)).await.map_err(|e| sim_error(&e.to_string()))?;
        let yaml = sim.kubeconfig_yaml().map_err(|e| sim_error(&e.to_string()))?;
        write_private(&kubeconfig, &yaml)?;
        let outcome = cluster_part(&prepared, &ConnectOptions { kubeconfig: Some(kubeconfig.clone()), ..Default::default() }).await;
        drop(sim);
        outcome
    });
    let (record, outcome) = result?;
    let code = finish(
        &prepared,
        &args.results,
        OutputFormat::Human,
        record,
        outcome,
    )?;
    eprintln!(
        "demo finished with exit code {code} ({}); the results above are the container-baseline profile's, on the simulator.",
        match code {
            exit::OK => "thresholds passed",
            exit::THRESHOLD_NOT_MET => "thresholds not met",
            _ => "see above",
        }
    );
    Ok(code)
}

fn sim_error(message: &str) -> CliError {
    CliError::Cluster(ClusterError::Internal(format!("demo simulator: {message}")))
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| CliError::Io {
            what: "write kubeconfig",
            path: path.display().to_string(),
            source,
        })?;
    f.write_all(text.as_bytes()).map_err(|source| CliError::Io {
        what: "write kubeconfig",
        path: path.display().to_string(),
        source,
    })
}
