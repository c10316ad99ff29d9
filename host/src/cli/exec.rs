//! `dscan exec`: the native engine on a local root filesystem.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use indexmap::IndexMap;

use super::{CliError, exit};

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
}

/// InSpec's exit codes.
const FAILED: u8 = 100;
const SKIPPED_ONLY: u8 = 101;
const LOAD_FAILED: u8 = 102;

pub(super) fn run(args: ExecArgs) -> Result<u8, CliError> {
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
