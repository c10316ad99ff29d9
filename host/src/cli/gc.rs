//! `dscan gc`: remove what dead or expired runs left in the cluster.

use clap::Args;

use super::cluster_args::{ClusterArgs, OutputFormat, runtime};
use super::{CliError, exit};
use crate::cluster::{connect, gc};

/// Arguments of `dscan gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also sweep these namespaces for expired dscan objects, by label (repeatable).
    #[arg(short, long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Runs `dscan gc`.
pub fn run(args: GcArgs) -> Result<u8, CliError> {
    let state_dir = args.cluster.state_dir()?;
    runtime()?.block_on(async move {
        let conn = connect::connect(&args.cluster.connect_options()).await?;
        let report = gc::run(&conn, &state_dir, &args.namespaces, args.dry_run).await?;
        match args.output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            ),
            OutputFormat::Human => {
                for a in &report.actions {
                    let verb = if args.dry_run {
                        "would remove"
                    } else if a.removed {
                        "removed"
                    } else {
                        "FAILED to remove"
                    };
                    let err = a
                        .error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    println!("{verb} {} ({}){err}", a.object, a.reason);
                }
                for (label, error) in &report.debug_containers {
                    let verb = if args.dry_run {
                        "would stop"
                    } else if error.is_none() {
                        "stopped"
                    } else {
                        "FAILED to stop"
                    };
                    let err = error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    println!("{verb} debug container {label}{err}");
                }
                for run in &report.live_runs {
                    println!("left alone: run {run} is still in progress");
                }
                for run in &report.other_clusters {
                    println!("left alone: run {run} was against another API server");
                }
                if report.actions.is_empty() {
                    println!("nothing to remove");
                }
            }
        }
        Ok(if report.complete() {
            exit::OK
        } else {
            exit::CLEANUP_INCOMPLETE
        })
    })
}
