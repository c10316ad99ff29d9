//! `dscan validate threshold` (SAF CLI compatible).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, GlobalOptions, exit};
use crate::plugin::{EvaluationRequest, PluginKind};
use crate::results::{self, ParseOptions};

/// Validation commands.
#[derive(Debug, Subcommand)]
pub enum ValidateCommand {
    /// Check results against a threshold file or inline thresholds.
    Threshold(ThresholdArgs),
}

/// `validate threshold` flags (SAF CLI's, plus `--all`).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("thresholds").required(true).args(["template_file", "template_inline"])))]
pub struct ThresholdArgs {
    /// The results (HDF JSON) file.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: PathBuf,
    /// A threshold YAML or JSON file.
    #[arg(
        short = 'T',
        long = "template-file",
        alias = "templateFile",
        value_name = "FILE"
    )]
    template_file: Option<PathBuf>,
    /// Inline thresholds: "{compliance.min: 80}, {failed.total.max: 2}".
    #[arg(
        short = 'I',
        long = "template-inline",
        alias = "templateInline",
        value_name = "THRESHOLDS"
    )]
    template_inline: Option<String>,
    /// Print every check made, not only the first failure.
    #[arg(long)]
    all: bool,
}

pub(super) fn run(global: &GlobalOptions, cmd: ValidateCommand) -> Result<u8, CliError> {
    let ValidateCommand::Threshold(args) = cmd;
    let (threshold, inline) = match (&args.template_file, &args.template_inline) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| CliError::Io {
                what: "cannot read threshold file",
                path: path.display().to_string(),
                source: e,
            })?;
            (text, false)
        }
        (None, Some(inline)) => (inline.clone(), true),
        (None, None) => {
            return Err(CliError::Usage(
                "give a threshold file (-T) or inline thresholds (-I)".into(),
            ));
        }
    };
    let plugins = global.load_plugins(&[PluginKind::ThresholdEvaluator])?;
    let evaluators: Vec<_> = plugins.of_kind(PluginKind::ThresholdEvaluator).collect();
    let keep_raw = evaluators.iter().any(|p| p.info().wants_raw_json);
    let scan = results::read_file(&args.input, &ParseOptions { keep_raw })?;

    let mut failures = Vec::new();
    for (i, evaluator) in evaluators.iter().enumerate() {
        let request = EvaluationRequest {
            threshold: Some(threshold.clone()),
            inline,
            options: global.options_for(&evaluator.info().name)?,
        };
        let verdict = evaluator.evaluate(&scan, &request)?;
        if args.all {
            for c in &verdict.checks {
                println!(
                    "[{}] {} {}",
                    evaluator.info().name,
                    if c.passed { "PASS" } else { "FAIL" },
                    c.message
                );
            }
        }
        if !verdict.passed {
            let first = verdict.checks.iter().find(|c| !c.passed);
            let message = first
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "verdict: failed".into());
            // The built-in evaluator's messages stay byte-identical to SAF's;
            // others are prefixed with their name.
            failures.push(if i == 0 && evaluator.info().name == "saf-thresholds" {
                message
            } else {
                format!("{}: {message}", evaluator.info().name)
            });
        }
    }
    if failures.is_empty() {
        println!("All validation tests passed");
        return Ok(exit::OK);
    }
    for f in failures {
        eprintln!("Error: {f}");
    }
    Ok(exit::THRESHOLD_NOT_MET)
}
