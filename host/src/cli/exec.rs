//! `dscan exec`: the native engine on a local root filesystem.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use indexmap::IndexMap;

use super::options::ThresholdFlags;
use super::{CliError, GlobalOptions, exit};
use crate::gate::{Gate, ReportTarget, Thresholds};
use crate::plugin::PluginKind;
use crate::results::{self, ParseOptions};

/// Run an InSpec-language profile with dscan's native engine against a
/// directory holding a target's root filesystem.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The profile directory.
    profile: PathBuf,
    /// The target's root filesystem (symlinks and `..` stay inside it).
    #[arg(long, value_name = "DIR")]
    target_root: PathBuf,
    /// An input, NAME=VALUE (YAML value); repeatable; overrides --input-file.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// A YAML file of inputs.
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,
    /// Run only these control ids.
    #[arg(long, num_args = 1..)]
    controls: Vec<String>,
    /// Reporters: `cli`, `json` (stdout) or `json:PATH`; repeatable.
    #[arg(long = "reporter", num_args = 1.., default_value = "cli")]
    reporters: Vec<String>,
    /// A waiver file (YAML or JSON: `control-id: {justification, run,
    /// expiration_date}`); repeatable, later files win.
    #[arg(long = "waiver-file", value_name = "FILE")]
    waiver_files: Vec<PathBuf>,
    /// What the `virtualization` resource reports as the system (e.g.
    /// `kubepods`, `docker`) when the root's own marks do not say.
    #[arg(long, value_name = "SYSTEM")]
    virtualization: Option<String>,
    /// Gate the results on thresholds (as `validate threshold`); the exit
    /// code is then the gate's (0 or 1), not InSpec's.
    #[command(flatten)]
    thresholds: ThresholdFlags,
    /// Render a report with a reporter plugin: FORMAT[=PATH]; repeatable.
    #[arg(long = "report", value_name = "FORMAT[=PATH]")]
    reports: Vec<String>,
}

/// InSpec's exit codes.
const FAILED: u8 = 100;
const SKIPPED_ONLY: u8 = 101;
const LOAD_FAILED: u8 = 102;

pub(super) fn run(global: &GlobalOptions, args: ExecArgs) -> Result<u8, CliError> {
    let mut inputs: IndexMap<String, serde_json::Value> = IndexMap::new();
    if let Some(f) = &args.input_file {
        let text = std::fs::read_to_string(f).map_err(|source| CliError::Io {
            what: "reading the input file",
            path: f.display().to_string(),
            source,
        })?;
        let map = dscan_engine::parse_input_file(&text)
            .map_err(|e| CliError::Usage(format!("--input-file {}: {e}", f.display())))?;
        inputs.extend(map);
    }
    for i in &args.inputs {
        let Some((k, v)) = i.split_once('=') else {
            return Err(CliError::Usage(format!("--input {i}: expected NAME=VALUE")));
        };
        let v = dscan_engine::parse_input_value(v);
        inputs.insert(k.to_string(), v);
    }
    for r in &args.reporters {
        if !(r == "cli" || r == "json" || r.starts_with("json:")) {
            return Err(CliError::Usage(format!(
                "--reporter {r}: dscan exec knows cli, json and json:PATH"
            )));
        }
    }
    let mut waivers = dscan_engine::waivers::Waivers::new();
    for f in &args.waiver_files {
        let text = std::fs::read_to_string(f).map_err(|source| CliError::Io {
            what: "reading the waiver file",
            path: f.display().to_string(),
            source,
        })?;
        let parsed = dscan_engine::waivers::parse(&text)
            .map_err(|e| CliError::Usage(format!("--waiver-file {}: {e}", f.display())))?;
        waivers.extend(parsed);
    }
    // The gate is checked before the profile runs: a typo in a threshold
    // or a report format is reported at once.
    let thresholds = args.thresholds.read()?;
    let gated = thresholds.is_some();
    let gate = if gated || !args.reports.is_empty() {
        let plugins =
            global.load_plugins(&[PluginKind::ThresholdEvaluator, PluginKind::Reporter])?;
        Some(Gate::prepare(
            std::sync::Arc::new(plugins),
            global.plugin_options()?,
            thresholds.unwrap_or_else(Thresholds::default_gate),
            args.reports
                .iter()
                .map(|r| ReportTarget::parse(r))
                .collect(),
        )?)
    } else {
        None
    };
    let root =
        dscan_engine::fs::RootDir::open(&args.target_root).map_err(|source| CliError::Io {
            what: "opening the target root",
            path: args.target_root.display().to_string(),
            source,
        })?;
    let options = dscan_engine::Options {
        inputs,
        controls: args.controls.clone(),
        limits: dscan_engine::Limits::default(),
        profile_ref: args.profile.display().to_string(),
        virtualization: args.virtualization.clone(),
        waivers,
    };
    let report = match dscan_engine::run(&args.profile, &root, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: {e}");
            return Ok(LOAD_FAILED);
        }
    };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for c in report["profiles"][0]["controls"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for r in c["results"].as_array().into_iter().flatten() {
            match r["status"].as_str() {
                Some("passed") => passed += 1,
                Some("failed") => failed += 1,
                _ => skipped += 1,
            }
        }
    }
    for r in &args.reporters {
        match r.as_str() {
            "cli" => print_cli(&report, passed, failed, skipped),
            "json" => {
                // Streamed: a large report is never held twice.
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                serde_json::to_writer(&mut out, &report)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(out))
                    .and_then(|()| out.flush())
                    .map_err(|source| CliError::Io {
                        what: "writing the report",
                        path: "stdout".into(),
                        source,
                    })?;
            }
            other => {
                let path = other.trim_start_matches("json:");
                let io = |source| CliError::Io {
                    what: "writing the report",
                    path: path.to_string(),
                    source,
                };
                let file = std::fs::File::create(path).map_err(io)?;
                let mut out = std::io::BufWriter::new(file);
                serde_json::to_writer(&mut out, &report)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.flush())
                    .map_err(io)?;
            }
        }
    }
    if let Some(gate) = &gate {
        let bytes = serde_json::to_vec(&report)
            .map_err(|e| CliError::Usage(format!("the report cannot be serialized: {e}")))?;
        let scan = results::parse(
            &bytes,
            &args.profile.display().to_string(),
            &ParseOptions { keep_raw: false },
        )?;
        let verdict = gate.apply(&scan)?;
        for f in &verdict.judgement.failures {
            eprintln!("Error: {f}");
        }
        super::print_reports(&verdict.stdout)?;
        // With thresholds, the gate decides (as `dscan scan`); reports
        // alone leave InSpec's exit codes in place.
        if gated {
            return Ok(if verdict.judgement.passed() {
                exit::OK
            } else {
                exit::THRESHOLD_NOT_MET
            });
        }
    }
    Ok(if failed > 0 {
        FAILED
    } else if skipped > 0 {
        SKIPPED_ONLY
    } else {
        exit::OK
    })
}

fn print_cli(report: &serde_json::Value, passed: usize, failed: usize, skipped: usize) {
    let p = &report["profiles"][0];
    println!(
        "\nProfile:   {} ({})",
        p["title"].as_str().unwrap_or(""),
        p["name"].as_str().unwrap_or("")
    );
    println!(
        "Version:   {}",
        p["version"].as_str().unwrap_or("(not specified)")
    );
    println!("Target:    local root filesystem\n");
    for c in p["controls"].as_array().into_iter().flatten() {
        let results = c["results"].as_array().cloned().unwrap_or_default();
        let mark = if results.iter().any(|r| r["status"] == "failed") {
            "×"
        } else if results.iter().all(|r| r["status"] == "skipped") && !results.is_empty() {
            "↺"
        } else {
            "✔"
        };
        println!(
            "  {mark}  {}: {}",
            c["id"].as_str().unwrap_or(""),
            c["title"].as_str().unwrap_or("")
        );
        for r in &results {
            let m = match r["status"].as_str() {
                Some("passed") => "✔",
                Some("failed") => "×",
                _ => "↺",
            };
            println!("     {m}  {}", r["code_desc"].as_str().unwrap_or(""));
            if let Some(msg) = r["message"].as_str().or(r["skip_message"].as_str()) {
                for l in msg.trim().lines() {
                    println!("        {l}");
                }
            }
        }
    }
    println!("\nTest Summary: {passed} successful, {failed} failures, {skipped} skipped");
}
