//! `dscan report`: render results with any loaded reporter plugin.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, GlobalOptions, exit};
use crate::plugin::PluginKind;
use crate::results::{self, ParseOptions};

/// `report` flags.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results (HDF JSON) file(s).
    #[arg(short = 'i', long = "input", value_name = "FILE", num_args = 1.., required = true)]
    inputs: Vec<PathBuf>,
    /// The reporter: markdown, json, yaml, or any loaded reporter plugin
    /// (see `dscan plugins list`).
    #[arg(short = 'f', long = "format", value_name = "FORMAT")]
    format: String,
    /// Write the report to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// A reporter option `KEY=VALUE` (repeatable).
    #[arg(long = "option", value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// Evaluate this threshold file and show the verdict in the report (the
    /// exit code is then 1 when thresholds are not met).
    #[arg(
        short = 'T',
        long = "threshold",
        value_name = "FILE",
        conflicts_with = "threshold_inline"
    )]
    threshold: Option<PathBuf>,
    /// Inline thresholds, as for `validate threshold -I`.
    #[arg(short = 'I', long = "threshold-inline", value_name = "THRESHOLDS")]
    threshold_inline: Option<String>,
}

pub(super) fn run(global: &GlobalOptions, args: ReportArgs) -> Result<u8, CliError> {
    let threshold = super::validate::threshold_text(
        args.threshold.as_deref(),
        args.threshold_inline.as_deref(),
    )?;
    let kinds: &[PluginKind] = if threshold.is_some() {
        &[PluginKind::Reporter, PluginKind::ThresholdEvaluator]
    } else {
        &[PluginKind::Reporter]
    };
    let plugins = global.load_plugins(kinds)?;
    let reporter = plugins.get(PluginKind::Reporter, &args.format)?;
    let mut options = Vec::new();
    for raw in &args.options {
        let Some((k, v)) = raw.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--option `{raw}` is not KEY=VALUE"
            )));
        };
        if k == "verdict" || k == "verdict-detail" {
            return Err(CliError::Usage(format!(
                "--option `{raw}`: the verdict a report shows comes from thresholds (-T/-I), not from an option"
            )));
        }
        options.push((k.to_string(), v.to_string()));
    }
    // The verdict a report shows is the host's, never an option's.
    options.extend(
        global
            .options_for(&reporter.info().name)?
            .into_iter()
            .filter(|(k, _)| k != "verdict" && k != "verdict-detail"),
    );
    let keep_raw = reporter.info().wants_raw_json;
    let mut scans = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        scans.push(results::read_file(input, &ParseOptions { keep_raw })?);
    }
    let mut code = exit::OK;
    if let Some((text, inline)) = &threshold {
        let mut failures = Vec::new();
        for scan in &scans {
            failures
                .extend(super::validate::judge(global, &plugins, scan, text, *inline)?.failures);
        }
        options.push((
            "verdict".into(),
            if failures.is_empty() {
                "passed"
            } else {
                "failed"
            }
            .into(),
        ));
        if let Some(first) = failures.first() {
            options.push(("verdict-detail".into(), first.clone()));
            code = exit::THRESHOLD_NOT_MET;
        }
        for f in &failures {
            eprintln!("Error: {f}");
        }
    }
    let rendered = reporter.render(&scans, &options)?;
    match &args.output {
        Some(path) => std::fs::write(path, &rendered).map_err(|e| CliError::Io {
            what: "cannot write",
            path: path.display().to_string(),
            source: e,
        })?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&rendered)
                .and_then(|_| {
                    if rendered.ends_with(b"\n") {
                        Ok(())
                    } else {
                        out.write_all(b"\n")
                    }
                })
                .map_err(|e| CliError::Io {
                    what: "cannot write",
                    path: "stdout".into(),
                    source: e,
                })?;
        }
    }
    Ok(code)
}
