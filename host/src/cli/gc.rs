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
            OutputFormat::Human | OutputFormat::Quiet => {
                let quiet = args.output == OutputFormat::Quiet;
                for (failed, line) in human_lines(&report, args.dry_run) {
                    match (quiet, failed) {
                        (false, _) => println!("{line}"),
                        (true, true) => eprintln!("{line}"),
                        (true, false) => {}
                    }
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

/// What `gc` did, a line each, with whether the line reports a failure.
fn human_lines(report: &gc::GcReport, dry_run: bool) -> Vec<(bool, String)> {
    let mut lines = vec![];
    for a in &report.actions {
        let verb = if dry_run {
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
        let failed = a.error.is_some();
        lines.push((failed, format!("{verb} {} ({}){err}", a.object, a.reason)));
    }
    for (label, error) in &report.debug_containers {
        let verb = if dry_run {
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
        let failed = error.is_some();
        lines.push((failed, format!("{verb} debug container {label}{err}")));
    }
    for why in &report.untrusted {
        lines.push((true, format!("left alone, not trusted: journal {why}")));
    }
    for note in &report.not_started {
        lines.push((false, note.clone()));
    }
    for run in &report.live_runs {
        lines.push((false, format!("left alone: run {run} is still in progress")));
    }
    for run in &report.other_clusters {
        lines.push((
            false,
            format!("left alone: run {run} was against another API server"),
        ));
    }
    if report.actions.is_empty() {
        lines.push((false, "nothing to remove".into()));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::identity::{ObjectKind, ObjectRef};

    #[test]
    fn only_failures_are_marked_as_such() {
        let action = |removed, error: Option<&str>| gc::GcAction {
            object: ObjectRef {
                kind: ObjectKind::Role,
                namespace: "apps".into(),
                name: "dscan-x".into(),
            },
            reason: "expired".into(),
            removed,
            error: error.map(String::from),
        };
        let report = gc::GcReport {
            actions: vec![action(true, None), action(false, Some("403"))],
            debug_containers: vec![
                ("web/d1".into(), None),
                ("web/d2".into(), Some("gone".into())),
            ],
            live_runs: vec!["r1".into()],
            ..Default::default()
        };
        let failed: Vec<String> = human_lines(&report, false)
            .into_iter()
            .filter_map(|(f, l)| f.then_some(l))
            .collect();
        assert_eq!(
            failed,
            [
                "FAILED to remove Role apps/dscan-x (expired): 403",
                "FAILED to stop debug container web/d2: gone"
            ]
        );
        let dry = human_lines(
            &gc::GcReport {
                actions: vec![action(false, None)],
                ..Default::default()
            },
            true,
        );
        assert_eq!(
            dry,
            [(
                false,
                "would remove Role apps/dscan-x (expired)".to_string()
            )]
        );
    }
}
