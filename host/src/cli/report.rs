//! `dscan report`: render results with any loaded reporter plugin.

use std::path::PathBuf;

use clap::Args;

use super::options::ThresholdFlags;
use super::{CliError, GlobalOptions, exit};
use crate::gate;
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
    /// Thresholds: evaluate them and show the verdict in the report (the
    /// exit code is then 1 when thresholds are not met).
    #[command(flatten)]
    thresholds: ThresholdFlags,
}

pub(super) fn run(global: &GlobalOptions, args: ReportArgs) -> Result<u8, CliError> {
    let thresholds = args.thresholds.read()?;
    let kinds: &[PluginKind] = if thresholds.is_some() {
        &[PluginKind::Reporter, PluginKind::ThresholdEvaluator]
    } else {
        &[PluginKind::Reporter]
    };
    let plugin_options = global.plugin_options()?;
    let plugins = global.load_plugins(kinds)?;
    plugin_options.check_names(&plugins)?;
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
    options.extend(plugin_options.for_plugin(&reporter.info().name));
    let keep_raw = reporter.info().wants_raw_json;
    let mut scans = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        scans.push(results::read_file(input, &ParseOptions { keep_raw })?);
    }
    let mut code = exit::OK;
    let judgement = match &thresholds {
        Some(t) => {
            let mut all = gate::Judgement::default();
            for scan in &scans {
                let j = gate::judge(&plugins, &plugin_options, scan, t)?;
                all.failures.extend(j.failures);
                all.checks.extend(j.checks);
            }
            for f in &all.failures {
                eprintln!("Error: {f}");
            }
            if !all.passed() {
                code = exit::THRESHOLD_NOT_MET;
            }
            Some(all)
        }
        None => None,
    };
    // The verdict a report shows is the host's, never an option's.
    let options = gate::report_options(options, judgement.as_ref());
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
