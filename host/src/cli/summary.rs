//! `dscan view summary` / `dscan summary` (SAF CLI compatible).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, GlobalOptions, exit};
use crate::plugin::PluginKind;
use crate::results::{self, ParseOptions};

/// View commands.
#[derive(Debug, Subcommand)]
pub enum ViewCommand {
    /// Summarise compliance per profile: counts by status and severity.
    Summary(SummaryArgs),
}

/// `view summary` flags (SAF CLI's).
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Results (HDF JSON) file(s).
    #[arg(short = 'i', long = "input", value_name = "FILE", num_args = 1.., required = true)]
    inputs: Vec<PathBuf>,
    /// Also write the summary to this file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Output format: json, yaml, markdown, or any loaded reporter.
    #[arg(short = 'f', long = "format", default_value = "yaml")]
    format: String,
    /// Print to stdout (default).
    #[arg(short = 's', long = "stdout", overrides_with = "no_stdout")]
    stdout: bool,
    /// Do not print to stdout.
    #[arg(long = "no-stdout", overrides_with = "stdout")]
    no_stdout: bool,
    /// Indented JSON (default).
    #[arg(short = 'r', long = "print-pretty", overrides_with = "no_print_pretty")]
    print_pretty: bool,
    /// Compact JSON.
    #[arg(long = "no-print-pretty", overrides_with = "print_pretty")]
    no_print_pretty: bool,
    /// Title each markdown table with its profile name (default).
    #[arg(short = 't', long = "title-table", overrides_with = "no_title_table")]
    title_table: bool,
    /// No titles on markdown tables.
    #[arg(long = "no-title-table", overrides_with = "title_table")]
    no_title_table: bool,
}

pub(super) fn run_view(global: &GlobalOptions, cmd: ViewCommand) -> Result<u8, CliError> {
    let ViewCommand::Summary(args) = cmd;
    run(global, args)
}

pub(super) fn run(global: &GlobalOptions, args: SummaryArgs) -> Result<u8, CliError> {
    let plugins = global.load_plugins(&[PluginKind::Reporter])?;
    let reporter = plugins.get(PluginKind::Reporter, &args.format)?;
    let keep_raw = reporter.info().wants_raw_json;
    let mut scans = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        scans.push(results::read_file(input, &ParseOptions { keep_raw })?);
    }
    // SAF's flags map to the built-in formats that take them; reporters
    // refuse options they do not know.
    let mut options = Vec::new();
    match args.format.as_str() {
        "json" => options.push(("pretty".to_string(), (!args.no_print_pretty).to_string())),
        "markdown" => options.push((
            "title-table".to_string(),
            (!args.no_title_table).to_string(),
        )),
        _ => {}
    }
    options.extend(global.plugin_options()?.for_plugin(&reporter.info().name));
    let rendered = reporter.render(&scans, &options)?;
    if let Some(path) = &args.output {
        std::fs::write(path, &rendered).map_err(|e| CliError::Io {
            what: "cannot write",
            path: path.display().to_string(),
            source: e,
        })?;
    }
    if !args.no_stdout {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // SAF prints with console.log: the output plus a newline.
        out.write_all(&rendered)
            .and_then(|_| out.write_all(b"\n"))
            .map_err(|e| CliError::Io {
                what: "cannot write",
                path: "stdout".into(),
                source: e,
            })?;
    }
    Ok(exit::OK)
}
