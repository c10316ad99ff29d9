//! `dscan validate threshold` (SAF CLI compatible).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, GlobalOptions, exit};
use crate::plugin::{EvaluationRequest, PluginKind, PluginSet};
use crate::results::{self, ParseOptions, Scan};

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

/// The outcome of running every evaluator.
pub(super) struct Judgement {
    /// One line per failing evaluator: SAF's message for the built-in one,
    /// `name: message` for others.
    pub failures: Vec<String>,
    /// Every check made, as `[evaluator] PASS|FAIL message`.
    pub checks: Vec<String>,
}

/// Where thresholds come from: a file (`-T`) or an inline string (`-I`).
pub(super) fn threshold_text(
    file: Option<&std::path::Path>,
    inline: Option<&str>,
) -> Result<Option<(String, bool)>, CliError> {
    match (file, inline) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| CliError::Io {
                what: "cannot read threshold file",
                path: path.display().to_string(),
                source: e,
            })?;
            Ok(Some((text, false)))
        }
        (None, Some(inline)) => Ok(Some((inline.to_string(), true))),
        (None, None) => Ok(None),
    }
}

/// Runs every loaded threshold evaluator on `scan`, built-in first.
pub(super) fn judge(
    global: &GlobalOptions,
    plugins: &PluginSet,
    scan: &Scan,
    threshold: &str,
    inline: bool,
) -> Result<Judgement, CliError> {
    let mut judgement = Judgement {
        failures: Vec::new(),
        checks: Vec::new(),
    };
    for (i, evaluator) in plugins.of_kind(PluginKind::ThresholdEvaluator).enumerate() {
        let name = &evaluator.info().name;
        let request = EvaluationRequest {
            threshold: Some(threshold.to_string()),
            inline,
            options: global.options_for(name)?,
        };
        let verdict = evaluator.evaluate(scan, &request)?;
        for c in &verdict.checks {
            judgement.checks.push(format!(
                "[{name}] {} {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.message
            ));
        }
        if !verdict.passed {
            let first = verdict.checks.iter().find(|c| !c.passed);
            let message = first
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "verdict: failed".into());
            // The built-in evaluator's messages stay byte-identical to SAF's;
            // others are prefixed with their name.
            judgement
                .failures
                .push(if i == 0 && name == "saf-thresholds" {
                    message
                } else {
                    format!("{name}: {message}")
                });
        }
    }
    Ok(judgement)
}

pub(super) fn run(global: &GlobalOptions, cmd: ValidateCommand) -> Result<u8, CliError> {
    let ValidateCommand::Threshold(args) = cmd;
    let Some((threshold, inline)) = threshold_text(
        args.template_file.as_deref(),
        args.template_inline.as_deref(),
    )?
    else {
        return Err(CliError::Usage(
            "give a threshold file (-T) or inline thresholds (-I)".into(),
        ));
    };
    let plugins = global.load_plugins(&[PluginKind::ThresholdEvaluator])?;
    let keep_raw = plugins
        .of_kind(PluginKind::ThresholdEvaluator)
        .any(|p| p.info().wants_raw_json);
    let scan = results::read_file(&args.input, &ParseOptions { keep_raw })?;
    let judgement = judge(global, &plugins, &scan, &threshold, inline)?;
    if args.all {
        for line in &judgement.checks {
            println!("{line}");
        }
    }
    if judgement.failures.is_empty() {
        println!("All validation tests passed");
        return Ok(exit::OK);
    }
    for f in judgement.failures {
        eprintln!("Error: {f}");
    }
    Ok(exit::THRESHOLD_NOT_MET)
}
