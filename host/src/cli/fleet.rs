//! Fleets on the command line: the fleet path of `dscan scan` (selection
//! flags), `dscan fleet job` (manifests for an Indexed Job) and
//! `dscan fleet collect` (merge what the Job's shards stored).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;

use super::cluster_args::{ClusterArgs, OutputFormat, runtime};
use super::options::ThresholdFlags;
use super::scan::{Prepared, ScanArgs, build_gate};
use super::{CliError, GlobalOptions, exit};
use crate::cluster::{ClusterError, connect};
use crate::fleet::run::{Covered, FleetOptions, FleetRecord};
use crate::fleet::store;
use crate::fleet::{FleetTarget, Shard, Skipped, job};
use crate::gate::{Gate, Judgement};
use crate::results::{self, ParseOptions};
use crate::scan;

/// The fleet flags of `dscan scan`.
#[derive(Debug, Args, Default)]
pub struct FleetArgs {
    /// Keep only containers in which no shell starts (the distroless probe,
    /// one exec per container before anything is created).
    #[arg(long)]
    pub only_distroless: bool,
    /// Scans at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Scan one container per (image digest, container name); the report
    /// names the replicas each scan covers.
    #[arg(long)]
    pub per_image: bool,
    /// Where a fleet's per-target HDF files go (default `dscan-results`).
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// Scan only this share of the fleet: K/N, K from 0 (an Indexed Job's
    /// `$(JOB_COMPLETION_INDEX)/N`).
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Also store every result as a ConfigMap in this namespace, for
    /// `dscan fleet collect` (needs --fleet-run).
    #[arg(long, value_name = "NS", requires = "fleet_run")]
    pub store_results: Option<String>,
    /// The fleet run id stored results are labelled with.
    #[arg(long, value_name = "ID", requires = "store_results")]
    pub fleet_run: Option<String>,
}

impl FleetArgs {
    /// Whether any fleet flag is set.
    pub fn any(&self) -> bool {
        self.only_distroless
            || self.per_image
            || self.results_dir.is_some()
            || self.shard.is_some()
            || self.store_results.is_some()
    }
}

/// `dscan fleet …`.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Print the manifests that run a sharded fleet scan in the cluster: a
    /// ServiceAccount with the least RBAC for it, and an Indexed Job.
    Job(JobArgs),
    /// Read back what a fleet run's shards stored, merge it into one set of
    /// reports, and remove it.
    Collect(CollectArgs),
}

/// `dscan fleet job` flags.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Fleet run id (labels, names; `collect --run` takes it).
    #[arg(long, value_name = "ID")]
    pub run: String,
    /// Namespace the Job runs and stores results in.
    #[arg(short, long, value_name = "NS")]
    pub namespace: String,
    /// Shards (the Job's completions).
    #[arg(long, value_name = "N")]
    pub shards: u32,
    /// Shard pods running at once (default: all).
    #[arg(long, value_name = "N")]
    pub parallelism: Option<u32>,
    /// The dscan image; pin it by digest.
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// Limit for the whole Job, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub deadline: i64,
    /// `dscan scan` arguments after `--`: the selection, --profile (a path
    /// in the image), thresholds…
    #[arg(last = true, value_name = "SCAN ARGS")]
    pub scan_args: Vec<String>,
}

/// `dscan fleet collect` flags.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The fleet run id.
    #[arg(long, value_name = "ID")]
    pub run: String,
    /// Namespace the results were stored in.
    #[arg(short, long, value_name = "NS")]
    pub namespace: String,
    /// How many shards ran (default: what the shards' records say).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Where the per-target HDF files go.
    #[arg(long, value_name = "DIR", default_value = "dscan-results")]
    pub results_dir: PathBuf,
    /// Leave the stored ConfigMaps in the cluster.
    #[arg(long)]
    pub keep: bool,
    /// Thresholds (default `compliance.min: 70`).
    #[command(flatten)]
    pub thresholds: ThresholdFlags,
    /// A report to render: `FORMAT` (stdout) or `FORMAT=PATH` (repeatable).
    #[arg(long = "report", value_name = "FORMAT[=PATH]")]
    pub reports: Vec<String>,
    /// Largest results accepted per target, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub max_results_mib: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Runs `dscan fleet …`.
pub fn run(global: &GlobalOptions, cmd: FleetCommand) -> Result<u8, CliError> {
    match cmd {
        FleetCommand::Job(args) => job_manifests(args),
        FleetCommand::Collect(args) => collect(global, args),
    }
}

fn job_manifests(args: JobArgs) -> Result<u8, CliError> {
    let plan = job::JobPlan {
        run: args.run,
        namespace: args.namespace,
        shards: args.shards,
        parallelism: args.parallelism.unwrap_or(args.shards),
        image: args.image,
        scan_args: args.scan_args,
        deadline_seconds: args.deadline,
    };
    plan.check().map_err(CliError::Usage)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&plan.list()).unwrap_or_default()
    );
    Ok(exit::OK)
}

/// One target's scan, finished: from this process's fleet run or read back
/// from a shard's ConfigMap.
struct Done {
    target: FleetTarget,
    results: Option<Vec<u8>>,
    error: Option<(String, u8)>,
    strategy: Option<String>,
    seconds: f64,
}

/// One row of the per-target table (and of the JSON record).
#[derive(Debug, Clone, Serialize)]
struct Row {
    namespace: String,
    pod: String,
    container: String,
    image_id: String,
    /// `passed`, `failed`, `error`, or `covered by ns/pod/container`.
    verdict: String,
    compliance: Option<u32>,
    results: Option<PathBuf>,
    detail: Option<String>,
    strategy: Option<String>,
    seconds: f64,
    #[serde(skip)]
    code: u8,
}

/// The rows, the combined judgement, and the reports meant for stdout.
type Concluded = (Vec<Row>, Judgement, Vec<Vec<u8>>);

/// Writes every target's results, judges each, renders the combined
/// reports (with the per-target table) and returns the rows and exit code.
fn conclude(
    gate: &Gate,
    done: Vec<Done>,
    covered: &[Covered],
    results_dir: &Path,
) -> Result<Concluded, CliError> {
    std::fs::create_dir_all(results_dir).map_err(|source| CliError::Io {
        what: "cannot create the results directory",
        path: results_dir.display().to_string(),
        source,
    })?;
    let mut rows = vec![];
    let mut scans = vec![];
    let mut combined = Judgement::default();
    for d in done {
        let t = &d.target;
        let mut row = Row {
            namespace: t.namespace.clone(),
            pod: t.pod.clone(),
            container: t.container.clone(),
            image_id: t.image_id.clone(),
            verdict: "error".into(),
            compliance: None,
            results: None,
            detail: None,
            strategy: d.strategy.clone(),
            seconds: d.seconds,
            code: exit::SCAN,
        };
        match (&d.results, &d.error) {
            (_, Some((e, code))) => {
                row.detail = Some(e.clone());
                row.code = *code;
                combined.failures.push(format!("{}: {e}", t.key()));
            }
            (Some(bytes), None) => {
                let path = t.results_file(results_dir);
                let bytes = t.stamp(bytes);
                std::fs::write(&path, &bytes).map_err(|source| CliError::Io {
                    what: "cannot write results",
                    path: path.display().to_string(),
                    source,
                })?;
                match results::parse(
                    &bytes,
                    &path.display().to_string(),
                    &ParseOptions { keep_raw: false },
                ) {
                    Ok(scan) => {
                        let j = gate.judge(&scan)?;
                        row.compliance = Some(scan.counts.compliance);
                        row.code = if j.passed() {
                            exit::OK
                        } else {
                            exit::THRESHOLD_NOT_MET
                        };
                        row.verdict = if j.passed() { "passed" } else { "failed" }.into();
                        row.detail = j.failures.first().cloned();
                        for f in &j.failures {
                            combined.failures.push(format!("{}: {f}", t.key()));
                        }
                        combined.checks.extend(j.checks);
                        scans.push(scan);
                    }
                    Err(e) => {
                        row.detail = Some(format!("the results are not valid HDF: {e}"));
                        combined
                            .failures
                            .push(format!("{}: results not valid HDF", t.key()));
                    }
                }
                row.results = Some(path);
            }
            (None, None) => {
                row.detail = Some("no results".into());
                combined.failures.push(format!("{}: no results", t.key()));
            }
        }
        rows.push(row);
    }
    for c in covered {
        let by = rows
            .iter()
            .find(|r| format!("{}/{}/{}", r.namespace, r.pod, r.container) == c.by);
        rows.push(Row {
            namespace: c.target.namespace.clone(),
            pod: c.target.pod.clone(),
            container: c.target.container.clone(),
            image_id: c.target.image_id.clone(),
            verdict: format!("covered by {}", c.by),
            compliance: by.and_then(|r| r.compliance),
            results: None,
            detail: Some(
                "same image digest; its runtime state (mounted config, environment) was not read"
                    .into(),
            ),
            strategy: None,
            seconds: 0.0,
            code: by.map_or(exit::OK, |r| r.code),
        });
    }
    rows.sort_by(|a, b| {
        (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container))
    });
    let table: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let compliance = r.compliance.map_or_else(|| "-".into(), |c| format!("{c}%"));
            (
                "target".to_string(),
                [
                    r.namespace.as_str(),
                    &r.pod,
                    &r.container,
                    &r.image_id,
                    &r.verdict,
                    &compliance,
                ]
                .join("\t"),
            )
        })
        .collect();
    let stdout = if scans.is_empty() {
        if !gate.reports.is_empty() {
            eprintln!("no scan produced results: no report was rendered");
        }
        vec![]
    } else {
        gate.render(&scans, &combined, &table)?
    };
    Ok((rows, combined, stdout))
}

fn print_table(rows: &[Row]) {
    let width =
        |f: &dyn Fn(&Row) -> usize, min: usize| rows.iter().map(f).max().unwrap_or(0).max(min);
    let (wn, wp, wc) = (
        width(&|r| r.namespace.len(), 9),
        width(&|r| r.pod.len(), 3),
        width(&|r| r.container.len(), 9),
    );
    eprintln!(
        "{:<wn$}  {:<wp$}  {:<wc$}  {:>10}  VERDICT",
        "NAMESPACE", "POD", "CONTAINER", "COMPLIANCE"
    );
    for r in rows {
        let compliance = r.compliance.map_or_else(|| "-".into(), |c| format!("{c}%"));
        let detail = match (&r.detail, r.verdict.as_str()) {
            (Some(d), "error" | "failed") => format!(": {d}"),
            _ => String::new(),
        };
        eprintln!(
            "{:<wn$}  {:<wp$}  {:<wc$}  {:>10}  {}{detail}",
            r.namespace, r.pod, r.container, compliance, r.verdict
        );
    }
}

fn print_skipped(skipped: &[Skipped], covered: &[Covered]) {
    for s in skipped {
        eprintln!("skipped {s}");
    }
    if !covered.is_empty() {
        eprintln!(
            "--per-image: {} container(s) not scanned, covered by a scan of the same image digest; \
             their runtime state (mounted config, environment) was not read",
            covered.len()
        );
    }
}

/// The fleet path of `dscan scan`.
pub(super) fn scan(prepared: &Prepared, args: &ScanArgs) -> Result<u8, CliError> {
    if let Some(run) = &args.fleet.fleet_run {
        store::check_run_id(run).map_err(CliError::Usage)?;
    }
    let results_dir = args
        .fleet
        .results_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("dscan-results"));
    let observer = super::progress::fleet_progress(args.output);
    let rt = runtime()?;
    let (record, runs, outcome, stored) = rt.block_on(async {
        let conn = connect::connect(&args.cluster.connect_options()).await?;
        let mut session = prepared.session.clone();
        if session.target.namespace.is_empty() {
            session.target.namespace = conn.default_namespace.clone();
        }
        session.progress = None;
        let options = FleetOptions {
            selection: args.target.selection(),
            session,
            concurrency: usize::from(args.fleet.concurrency),
            per_image: args.fleet.per_image,
            only_distroless: args.fleet.only_distroless,
            shard: args.fleet.shard,
            observer: observer.clone(),
        };
        let settings = prepared.settings.clone();
        let plugins = prepared.plugins.clone();
        let client = conn.client.clone();
        let (record, runs, outcome) = crate::fleet::run::run(conn, options, move |ctx| {
            scan::run(ctx, settings.clone(), plugins.clone())
        })
        .await;
        let stored = match (&args.fleet.store_results, &args.fleet.fleet_run) {
            (Some(ns), Some(id)) => {
                Some(store::store_shard(&client, ns, id, &record, &runs, &outcome).await)
            }
            _ => None,
        };
        Ok::<_, CliError>((record, runs, outcome, stored))
    })?;
    drop(observer);
    let done: Vec<Done> = runs
        .into_iter()
        .map(|r| Done {
            target: r.target,
            error: r
                .outcome
                .as_ref()
                .err()
                .map(|e| (e.to_string(), e.exit_code())),
            strategy: r.outcome.as_ref().ok().map(|o| o.strategy.clone()),
            results: r.outcome.ok().map(|o| o.results),
            seconds: r.seconds,
        })
        .collect();
    let (rows, judgement, stdout) = conclude(&prepared.gate, done, &record.covered, &results_dir)?;
    super::print_reports(&stdout)?;
    let mut code = exit::worst(rows.iter().map(|r| r.code));
    if let Err(e) = &outcome {
        code = exit::worst([code, e.exit_code()]);
    }
    if !record.cleanup_complete() {
        code = exit::worst([code, exit::CLEANUP_INCOMPLETE]);
    }
    if let Some(Err(e)) = &stored {
        eprintln!("Error: {e}");
        code = exit::worst([code, exit::CLUSTER]);
    }
    report_run(args.output, &record, &rows, &judgement, &results_dir, code);
    match outcome {
        Err(e) if rows.is_empty() => Err(CliError::Cluster(e)),
        _ => Ok(code),
    }
}

fn report_run(
    output: OutputFormat,
    record: &FleetRecord,
    rows: &[Row],
    judgement: &Judgement,
    results_dir: &Path,
    code: u8,
) {
    match output {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "fleet": record,
                "targets": rows,
                "results_dir": results_dir,
                "verdict": {"passed": code == exit::OK, "exit_code": code, "failures": judgement.failures},
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        OutputFormat::Human => {
            print_skipped(&record.skipped, &record.covered);
            for ns in &record.namespaces {
                if let Some(id) = &ns.identity {
                    eprintln!(
                        "namespace {}: {id}, its Role pinned to {} pod(s)",
                        ns.target.namespace,
                        rows.iter()
                            .filter(|r| r.namespace == ns.target.namespace
                                && !r.verdict.starts_with("covered"))
                            .map(|r| &r.pod)
                            .collect::<std::collections::BTreeSet<_>>()
                            .len()
                    );
                }
                if let Some(c) = &ns.cleanup {
                    eprintln!(
                        "namespace {}: {}",
                        ns.target.namespace,
                        super::cluster_args::cleanup_line(c)
                    );
                }
                if let Some(e) = &ns.error {
                    eprintln!("namespace {}: {e}", ns.target.namespace);
                }
            }
            if !rows.is_empty() {
                print_table(rows);
            }
            let passed = rows.iter().filter(|r| r.verdict == "passed").count();
            let failed = rows.iter().filter(|r| r.verdict == "failed").count();
            let errors = rows.iter().filter(|r| r.verdict == "error").count();
            let shard = record
                .shard
                .map(|s| format!(" (shard {s}; {} in other shards)", record.other_shards))
                .unwrap_or_default();
            let requests = record
                .api_requests
                .map(|(n, back)| format!(", {n} API requests ({back} answered 429/5xx)"))
                .unwrap_or_default();
            eprintln!(
                "fleet: {} selected{shard}, {} scanned: {passed} passed, {failed} failed, {errors} error(s); {} skipped, {} covered; {:.1}s{requests}",
                record.selected,
                rows.iter()
                    .filter(|r| !r.verdict.starts_with("covered"))
                    .count(),
                record.skipped.len(),
                record.covered.len(),
                record.seconds
            );
            eprintln!("results: {}", results_dir.display());
        }
        OutputFormat::Quiet => {}
    }
    if !record.cleanup_complete() {
        eprintln!("Error: cleanup is incomplete; run `dscan gc` to remove what is left");
    }
}

fn collect(global: &GlobalOptions, args: CollectArgs) -> Result<u8, CliError> {
    store::check_run_id(&args.run).map_err(CliError::Usage)?;
    let (_plugins, gate) = build_gate(global, &args.thresholds, &args.reports, false)?;
    let max = args.max_results_mib.saturating_mul(1 << 20);
    // One runtime for both calls: the client's connection lives in it.
    let rt = runtime()?;
    let gathered = rt.block_on(async {
        let conn = connect::connect(&args.cluster.connect_options()).await?;
        let gathered = store::gather(&conn.client, &args.namespace, &args.run, max).await?;
        Ok::<_, CliError>((gathered, conn))
    })?;
    let (gathered, conn) = gathered;
    if gathered.names.is_empty() {
        return Err(CliError::Cluster(ClusterError::Target(format!(
            "nothing is stored for fleet run {:?} in namespace {:?}: check --run and -n (the Job's), and whether its pods ran",
            args.run, args.namespace
        ))));
    }
    let count = args
        .shards
        .or_else(|| gathered.shards.values().map(|s| s.count).max())
        .unwrap_or(1);
    let mut problems: Vec<String> = vec![];
    for k in 0..count {
        match gathered.shards.get(&k) {
            None => problems.push(format!(
                "shard {k}/{count} did not report: it failed before storing its record, or is still running (kubectl get pods -l job-name=dscan-fleet-{} -n {})",
                args.run, args.namespace
            )),
            Some(s) if s.count != count => problems.push(format!(
                "shard {k} reported as one of {}, not {count}: two runs share the id {:?}",
                s.count, args.run
            )),
            Some(s) => {
                if let Some(e) = &s.error {
                    problems.push(format!("shard {k}/{count} failed: {e}"));
                }
                for (key, why) in &s.not_stored {
                    problems.push(format!("shard {k}/{count} could not store {key}: {why}"));
                }
            }
        }
    }
    for (name, why) in &gathered.unreadable {
        problems.push(format!(
            "ConfigMap {}/{name} is unreadable: {why}",
            args.namespace
        ));
    }
    // Skipped and covered are the same in every shard's record (selection
    // comes before sharding); covered lists are per shard.
    let skipped: Vec<Skipped> = gathered
        .shards
        .values()
        .next()
        .map(|s| s.skipped.clone())
        .unwrap_or_default();
    let covered: Vec<Covered> = gathered
        .shards
        .values()
        .flat_map(|s| s.covered.iter().cloned())
        .map(|(target, by)| Covered { target, by })
        .collect();
    let done: Vec<Done> = gathered
        .targets
        .into_iter()
        .map(|c| Done {
            error: c
                .record
                .error
                .clone()
                .map(|e| (e, c.record.exit_code.unwrap_or(exit::SCAN))),
            target: c.record.target,
            results: c.results,
            strategy: c.record.strategy,
            seconds: c.record.seconds,
        })
        .collect();
    let (rows, judgement, stdout) = conclude(&gate, done, &covered, &args.results_dir)?;
    super::print_reports(&stdout)?;
    let mut code = exit::worst(rows.iter().map(|r| r.code));
    if !problems.is_empty() {
        code = exit::worst([code, exit::CLUSTER]);
    }
    let mut removed = false;
    if !args.keep && problems.is_empty() {
        let failed = rt.block_on(store::remove(
            &conn.client,
            &args.namespace,
            &gathered.names,
        ));
        for (name, why) in &failed {
            problems.push(format!(
                "could not remove ConfigMap {}/{name}: {why}",
                args.namespace
            ));
        }
        removed = failed.is_empty();
    }
    match args.output {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "run": args.run,
                "shards": count,
                "skipped": skipped,
                "targets": rows,
                "problems": problems,
                "removed": removed,
                "verdict": {"passed": code == exit::OK, "exit_code": code, "failures": judgement.failures},
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        OutputFormat::Human => {
            print_skipped(&skipped, &covered);
            print_table(&rows);
            eprintln!(
                "collected fleet run {}: {count} shard(s), {} target(s){}",
                args.run,
                rows.len(),
                if removed {
                    format!("; removed {} ConfigMap(s)", gathered.names.len())
                } else if args.keep {
                    "; kept the ConfigMaps (--keep)".into()
                } else {
                    "; kept the ConfigMaps (there are problems; fix and collect again, or delete them by label)".into()
                }
            );
        }
        OutputFormat::Quiet => {}
    }
    for p in &problems {
        eprintln!("Error: {p}");
    }
    Ok(code)
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Done")
            .field("target", &self.target)
            .finish()
    }
}
