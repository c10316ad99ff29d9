//! `dscan scan`: the whole workflow — setup, debug injection, the scan as the
//! temporary identity, results, thresholds, reports, and cleanup.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::cluster_args::{ClusterArgs, OutputFormat, ScanTargetArgs, created_by, runtime};
use super::options::ThresholdFlags;
use super::{CliError, GlobalOptions, exit};
use crate::cluster::{ClusterError, ConnectOptions, RunRecord, SessionOptions, connect, session};
use crate::gate::{DEFAULT_THRESHOLD, Gate, ReportTarget, Thresholds};
use crate::plugin::{PluginKind, PluginSet};
use crate::results::{self, ParseOptions};
use crate::scan::{self, Runner, ScanOutcome, ScanSettings};
use crate::scan_error::ScanError;

/// The default debug image. Not pinned by digest: pass a digest-pinned
/// reference with --debug-image for production (see the README).
pub const DEFAULT_DEBUG_IMAGE: &str = "docker.io/library/busybox:1.36";

/// The default scanner image for the graft strategy. Not pinned by digest
/// either: pass `--scanner-image IMAGE@sha256:…` in production.
pub const DEFAULT_SCANNER_IMAGE: &str = "docker.io/cincproject/auditor:latest";

/// `dscan scan` flags.
#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub target: ScanTargetArgs,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
    /// CINC Auditor / InSpec profile (directory or .tar/.tar.gz archive), for
    /// the local and in-debug runners.
    #[arg(long, value_name = "PATH")]
    pub profile: Option<PathBuf>,
    /// How the profile runs.
    #[arg(long, value_enum, default_value_t = Runner::Native)]
    pub runner: Runner,
    /// The scanner executable: on this machine for --runner local (default:
    /// cinc-auditor, then inspec, on PATH); in the scanner image for
    /// --runner in-debug (default /opt/cinc-auditor/bin/cinc-auditor).
    #[arg(long, value_name = "PATH")]
    pub scanner: Option<PathBuf>,
    /// The scanner's runtime directory in its image, grafted into the view
    /// (--runner in-debug; default: two levels above --scanner).
    #[arg(long, value_name = "DIR")]
    pub scanner_runtime: Option<PathBuf>,
    /// The scanner image the graft strategy runs as the debug container
    /// (--runner in-debug); pin it by digest in production.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_SCANNER_IMAGE)]
    pub scanner_image: String,
    /// Access strategies to try, in order (built-in: chroot-wrapper, graft;
    /// plugins loaded with --plugin add more).
    #[arg(
        long,
        value_name = "NAME[,NAME...]",
        value_delimiter = ',',
        default_value = "same-user,chroot-wrapper,graft"
    )]
    pub strategy: Vec<String>,
    /// An option for the strategies, `KEY=VALUE` (repeatable).
    #[arg(long = "strategy-opt", value_name = "KEY=VALUE")]
    pub strategy_opts: Vec<String>,
    /// Debug container image; pin it by digest (`image@sha256:…`) in production.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_DEBUG_IMAGE)]
    pub debug_image: String,
    /// The static busybox (standalone shell) the chroot wrapper runs inside
    /// the target's root; default `$DSCAN_TOOLKIT`, then this machine's
    /// `/usr/bin/busybox` or `/bin/busybox` if static (Debian's
    /// busybox-static). Verified before anything is created.
    #[arg(long, value_name = "PATH")]
    pub toolkit: Option<std::path::PathBuf>,
    /// Allow plans with a privileged debug container (the graft strategy),
    /// and the node-debug fallback.
    #[arg(long)]
    pub allow_privileged: bool,
    /// When the cluster refuses ephemeral containers: the namespace where
    /// the node-debug fallback runs its pod on the target's node (its Pod
    /// Security level must be privileged; hostPID). The fallback runs only
    /// when node-debug is in --strategy or --allow-privileged is given.
    #[arg(long, value_name = "NS")]
    pub node_debug_namespace: Option<String>,
    /// Thresholds (default `compliance.min: 70`).
    #[command(flatten)]
    pub thresholds: ThresholdFlags,
    /// A report to render: `FORMAT` (stdout) or `FORMAT=PATH` (repeatable).
    #[arg(long = "report", value_name = "FORMAT[=PATH]")]
    pub reports: Vec<String>,
    /// Where the HDF results are written (always).
    #[arg(long, value_name = "PATH", default_value = "dscan-results.json")]
    pub results: PathBuf,
    /// Limit for the scanner, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub timeout: u64,
    /// Limit for the debug container to start, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub start_timeout: u64,
    /// Largest results accepted, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub max_results_mib: usize,
    /// Leave the debug container running afterwards (it still exits at its dead-man timer).
    #[arg(long)]
    pub keep_debug_container_running: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Everything decided before touching the cluster.
pub(super) struct Prepared {
    pub(super) plugins: Arc<PluginSet>,
    pub(super) gate: Gate,
    pub(super) settings: ScanSettings,
    pub(super) session: SessionOptions,
}

impl Prepared {
    /// Replaces the debug image (the demo pins the simulator's by digest).
    pub(super) fn set_debug_image(&mut self, image: String) {
        self.settings.debug_image = image;
    }
}

pub(super) fn prepare(
    global: &GlobalOptions,
    args: &ScanArgs,
    state_dir: PathBuf,
) -> Result<Prepared, CliError> {
    let (plugins, gate) = build_gate(global, &args.thresholds, &args.reports, true)?;
    for name in &args.strategy {
        plugins.get(PluginKind::AccessStrategy, name)?;
    }
    // JSON output owns stdout: a report there would make it unparseable.
    if let (OutputFormat::Json, Some(ReportTarget { format, .. })) =
        (args.output, gate.reports.iter().find(|r| r.path.is_none()))
    {
        return Err(CliError::Usage(format!(
            "--output json prints the run record on stdout, so the {format} report cannot go \
             there too; write it to a file with --report {format}=PATH"
        )));
    }
    if matches!(
        args.runner,
        Runner::Local | Runner::InDebug | Runner::Native
    ) && args.profile.is_none()
    {
        return Err(CliError::Usage(format!(
            "--runner {} needs --profile PATH (an InSpec-language profile)",
            args.runner.name()
        )));
    }
    // The native runner evaluates the profile here: it must load (inspec.yml,
    // controls and libraries parse) before the cluster is touched.
    if let (Some(path), Runner::Native) = (&args.profile, args.runner) {
        dscan_engine::profile::load(path)
            .map_err(|e| CliError::Usage(format!("--profile {}: {e}", path.display())))?;
    }
    // The in-debug runner uploads the profile: check and pack it before
    // anything is created in the cluster.
    let profile_tar = match (&args.profile, args.runner) {
        (Some(path), Runner::InDebug) => {
            let packed = scan::profile::pack(path, scan::indebug::MAX_PROFILE)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            tracing::info!(
                "profile {}: {} files, {} bytes",
                path.display(),
                packed.files,
                packed.bytes
            );
            Some(Arc::new(packed.tar))
        }
        _ => None,
    };
    // The chroot wrapper's runners need the static toolkit: found and
    // verified here, before the cluster is touched.
    let toolkit = if matches!(args.runner, Runner::Local | Runner::Standin) {
        Some(scan::toolkit::find(args.toolkit.as_deref()).map_err(CliError::Usage)?)
    } else {
        None
    };
    let mut strategy_options = vec![];
    for raw in &args.strategy_opts {
        let (k, v) = raw
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--strategy-opt `{raw}` is not KEY=VALUE")))?;
        strategy_options.push((k.to_string(), v.to_string()));
    }
    let settings = ScanSettings {
        strategies: args.strategy.clone(),
        runner: args.runner,
        profile: args.profile.clone(),
        scanner: args.scanner.clone(),
        scanner_runtime: args.scanner_runtime.clone(),
        scanner_image: args.scanner_image.clone(),
        profile_tar,
        debug_image: args.debug_image.clone(),
        allow_privileged: args.allow_privileged,
        node_debug_namespace: args.node_debug_namespace.clone(),
        strategy_options,
        start_timeout: Duration::from_secs(args.start_timeout),
        scan_timeout: Duration::from_secs(args.timeout),
        max_results: args.max_results_mib.saturating_mul(1 << 20),
        toolkit,
    };
    // The token must outlive the scan: its lifetime covers both limits plus
    // setup and cleanup, never under the API's 600 s.
    let token_seconds = i64::try_from(args.timeout + args.start_timeout + 300)
        .unwrap_or(i64::MAX)
        .max(600);
    // The node-debug fallback is the user's to allow (--strategy or
    // --allow-privileged) and needs a namespace.
    let fallback_allowed =
        args.allow_privileged || args.strategy.iter().any(|s| s == scan::NODE_DEBUG);
    let session = SessionOptions {
        target: args.target.target(),
        node_fallback: args
            .node_debug_namespace
            .clone()
            .filter(|_| fallback_allowed),
        token_seconds,
        state_dir,
        created_by: created_by(args.cluster.context.as_deref()),
        hold_at: std::env::var("DSCAN_TEST_HOLD_AT").ok(),
        keep_debug_container: args.keep_debug_container_running,
        authorization_wait: std::time::Duration::from_secs(args.target.rbac_wait),
        progress: super::cluster_args::live_progress(args.output),
    };
    Ok(Prepared {
        plugins,
        gate,
        settings,
        session,
    })
}

/// Loads the plugins and checks thresholds, plugin options and report
/// formats: all before anything is created in the cluster.
pub(super) fn build_gate(
    global: &GlobalOptions,
    thresholds: &ThresholdFlags,
    reports: &[String],
    with_strategies: bool,
) -> Result<(Arc<PluginSet>, Gate), CliError> {
    let thresholds = thresholds.read()?.unwrap_or_else(Thresholds::default_gate);
    let mut kinds = vec![PluginKind::ThresholdEvaluator, PluginKind::Reporter];
    if with_strategies {
        kinds.insert(0, PluginKind::AccessStrategy);
    }
    let plugins = Arc::new(global.load_plugins(&kinds)?);
    let reports: Vec<ReportTarget> = reports.iter().map(|r| ReportTarget::parse(r)).collect();
    let gate = Gate::prepare(
        plugins.clone(),
        global.plugin_options()?,
        thresholds,
        reports,
    )?;
    Ok((plugins, gate))
}

/// The cluster part (async): connect and run the session with the scan phase.
pub(super) async fn cluster_part(
    prepared: &Prepared,
    connect_options: &ConnectOptions,
) -> Result<(RunRecord, Result<ScanOutcome, ClusterError>), CliError> {
    let conn = connect::connect(connect_options).await?;
    let mut options = prepared.session.clone();
    if options.target.namespace.is_empty() {
        options.target.namespace = conn.default_namespace.clone();
    }
    let settings = prepared.settings.clone();
    let plugins = prepared.plugins.clone();
    Ok(session::run(conn, options, move |ctx| scan::run(ctx, settings, plugins)).await)
}

/// The local part (sync, plugins run here): results, thresholds, reports, exit code.
pub(super) fn finish(
    prepared: &Prepared,
    results_path: &std::path::Path,
    output: OutputFormat,
    record: RunRecord,
    outcome: Result<ScanOutcome, ClusterError>,
) -> Result<u8, CliError> {
    let cleanup_complete = record.cleanup.as_ref().is_none_or(|c| c.complete());
    let mut verdict = serde_json::json!(null);
    let mut code = match &outcome {
        Err(_) => None,
        Ok(scan_outcome) => {
            if output == OutputFormat::Human {
                for (name, why) in &scan_outcome.declined {
                    eprintln!("strategy {name} declined: {why}");
                }
                eprintln!(
                    "strategy: {} ({})",
                    scan_outcome.strategy,
                    scan_outcome.plan.notes.join("; ")
                );
                super::cluster_args::print_debug_container(
                    &scan_outcome.debug_container,
                    &scan_outcome.plan.debug_container,
                    scan_outcome.debug_image_id.as_deref(),
                );
            }
            std::fs::write(results_path, &scan_outcome.results).map_err(|source| CliError::Io {
                what: "cannot write results",
                path: results_path.display().to_string(),
                source,
            })?;
            let scan = results::parse(
                &scan_outcome.results,
                &results_path.display().to_string(),
                &ParseOptions { keep_raw: false },
            )
            .map_err(|e| {
                CliError::Cluster(ScanError::results(
                    None,
                    format!("the scanner's results are not valid HDF: {e}"),
                ))
            })?;
            if prepared.gate.thresholds.default && output == OutputFormat::Human {
                eprintln!(
                    "thresholds: {DEFAULT_THRESHOLD} (the default; --threshold/-I to change)"
                );
            }
            let gate = prepared.gate.apply(&scan)?;
            for f in &gate.judgement.failures {
                eprintln!("Error: {f}");
            }
            super::print_reports(&gate.stdout)?;
            let passed = gate.judgement.passed();
            verdict = serde_json::json!({"passed": passed, "failures": gate.judgement.failures});
            Some(if passed {
                exit::OK
            } else {
                exit::THRESHOLD_NOT_MET
            })
        }
    };
    match output {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "run": record,
                "scan": outcome.as_ref().ok(),
                "results": results_path,
                "verdict": verdict,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        OutputFormat::Human => {
            super::cluster_args::print_phases(&record, prepared.session.progress.is_some());
            super::cluster_args::print_target(&record);
            super::cluster_args::print_identity(&record);
            if let Some(c) = &record.cleanup {
                eprintln!("{}", super::cluster_args::cleanup_line(c));
            }
            if outcome.is_ok() {
                eprintln!("results: {}", results_path.display());
            }
        }
        OutputFormat::Quiet => {}
    }
    if !cleanup_complete {
        eprintln!("Error: cleanup is incomplete; run `dscan gc` to remove what is left");
        code = Some(exit::CLEANUP_INCOMPLETE);
    }
    match (code, outcome) {
        (Some(c), _) => Ok(c),
        (None, Err(e)) => Err(CliError::Cluster(e)),
        (None, Ok(_)) => Ok(exit::OK),
    }
}

/// Runs `dscan scan`.
pub fn run(global: &GlobalOptions, args: ScanArgs) -> Result<u8, CliError> {
    if args.target.selects_fleet() || args.fleet.any() {
        let prepared = prepare(global, &args, args.cluster.state_dir()?)?;
        return super::fleet::scan(&prepared, &args);
    }
    if let [_, second, ..] = args.target.namespace.as_slice() {
        return Err(CliError::Usage(format!(
            "-n {second}: one pod is in one namespace; drop -p to scan a fleet"
        )));
    }
    let prepared = prepare(global, &args, args.cluster.state_dir()?)?;
    let (record, outcome) =
        runtime()?.block_on(cluster_part(&prepared, &args.cluster.connect_options()))?;
    finish(&prepared, &args.results, args.output, record, outcome)
}
