//! `dscan generate threshold` (SAF CLI compatible).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, GlobalOptions, exit};
use crate::results::{self, GenerateOptions, ParseOptions};

/// Generation commands.
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write a threshold file that the given results pass.
    Threshold(ThresholdArgs),
}

/// `generate threshold` flags (SAF CLI's).
#[derive(Debug, Args)]
pub struct ThresholdArgs {
    /// The results (HDF JSON) file.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: PathBuf,
    /// Exact counts: both min and max for every bucket.
    #[arg(short = 'e', long = "exact")]
    exact: bool,
    /// Also list control ids per status and severity.
    #[arg(
        short = 'c',
        long = "generate-control-ids",
        alias = "generateControlIds"
    )]
    control_ids: bool,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(super) fn run(_global: &GlobalOptions, cmd: GenerateCommand) -> Result<u8, CliError> {
    let GenerateCommand::Threshold(args) = cmd;
    let scan = results::read_file(&args.input, &ParseOptions::default())?;
    let yaml = results::generate_threshold(
        &scan,
        GenerateOptions {
            exact: args.exact,
            control_ids: args.control_ids,
        },
    );
    match &args.output {
        Some(path) => std::fs::write(path, yaml).map_err(|e| CliError::Io {
            what: "cannot write",
            path: path.display().to_string(),
            source: e,
        })?,
        // SAF prints with console.log, which adds a newline after the YAML's own.
        None => println!("{yaml}"),
    }
    Ok(exit::OK)
}
