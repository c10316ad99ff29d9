//! `dscan validate threshold` (SAF CLI compatible).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::options::ThresholdFlags;
use super::{CliError, GlobalOptions, exit};
use crate::gate;
use crate::plugin::PluginKind;
use crate::results::{self, ParseOptions};

/// Validation commands.
#[derive(Debug, Subcommand)]
pub enum ValidateCommand {
    /// Check results against a threshold file or inline thresholds.
    Threshold(ThresholdArgs),
}

/// `validate threshold` flags (SAF CLI's, plus `--all`).
#[derive(Debug, Args)]
pub struct ThresholdArgs {
    /// The results (HDF JSON) file.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: PathBuf,
    #[command(flatten)]
    thresholds: ThresholdFlags,
    /// Print every check made, not only the first failure.
    #[arg(long)]
    all: bool,
}

pub(super) fn run(global: &GlobalOptions, cmd: ValidateCommand) -> Result<u8, CliError> {
    let ValidateCommand::Threshold(args) = cmd;
    let Some(thresholds) = args.thresholds.read()? else {
        return Err(CliError::Usage(
            "give a threshold file (-T) or inline thresholds (-I)".into(),
        ));
    };
    let options = global.plugin_options()?;
    let plugins = global.load_plugins(&[PluginKind::ThresholdEvaluator])?;
    options.check_names(&plugins)?;
    let keep_raw = plugins
        .of_kind(PluginKind::ThresholdEvaluator)
        .any(|p| p.info().wants_raw_json);
    let scan = results::read_file(&args.input, &ParseOptions { keep_raw })?;
    let judgement = gate::judge(&plugins, &options, &scan, &thresholds)?;
    if args.all {
        for line in &judgement.checks {
            println!("{line}");
        }
    }
    if judgement.passed() {
        println!("All validation tests passed");
        return Ok(exit::OK);
    }
    for f in judgement.failures {
        eprintln!("Error: {f}");
    }
    Ok(exit::THRESHOLD_NOT_MET)
}
