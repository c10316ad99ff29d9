//! The command-line interface: flags, dispatch, error reporting, exit codes.

mod check;
mod cluster_args;
mod completions;
mod demo;
mod error;
mod exec;
mod fleet;
mod gc;
mod generate;
mod options;
mod plugins;
mod progress;
mod report;
mod scan;
mod summary;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use demo::SIM_RUNTIME_ARG;
pub use error::{CliError, exit};
pub use options::GlobalOptions;

/// Writes reports rendered for standard output, one after another.
fn print_reports(reports: &[Vec<u8>]) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for bytes in reports {
        out.write_all(bytes)
            .and_then(|_| out.write_all(b"\n"))
            .map_err(|source| CliError::Io {
                what: "cannot write",
                path: "stdout".into(),
                source,
            })?;
    }
    Ok(())
}

/// Scan distroless containers in Kubernetes for compliance; gate CI on the result.
#[derive(Debug, Parser)]
#[command(name = "dscan", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List and inspect plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Validate results against thresholds (`saf validate threshold`).
    #[command(subcommand)]
    Validate(validate::ValidateCommand),
    /// View results (`saf view summary`).
    #[command(subcommand)]
    View(summary::ViewCommand),
    /// Summarise results (alias of `view summary`).
    Summary(summary::SummaryArgs),
    /// Render results with a reporter plugin (markdown, json, yaml, junit, sarif…).
    Report(report::ReportArgs),
    /// Generate files from results (`saf generate threshold`).
    #[command(subcommand)]
    Generate(generate::GenerateCommand),
    /// Scan a running (distroless) container: setup, debug container, the
    /// profile run as a temporary identity, thresholds, reports, cleanup.
    Scan(Box<scan::ScanArgs>),
    /// Fleets run as Kubernetes Jobs: print the manifests, collect the
    /// shards' results.
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// Run the whole workflow against the built-in cluster simulator (not a
    /// real cluster) with a distroless target and dscan's stand-in checks.
    Demo(demo::DemoArgs),
    /// Check that a pod can be scanned: preflight, distroless probe, the
    /// temporary identity, and verified cleanup (everything but the scan).
    Check(check::CheckArgs),
    /// Remove what dead or expired runs left in the cluster.
    Gc(gc::GcArgs),
    /// Run an InSpec-language profile with dscan's native engine against a
    /// local root filesystem (InSpec's exit codes: 0, 100 failures, 101 skips).
    Exec(exec::ExecArgs),
    /// Print shell completions.
    Completions(completions::CompletionsArgs),
}

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to
            // stderr; usage errors map to dscan's usage code.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cli.global.init_logging();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            err.report();
            ExitCode::from(err.exit_code())
        }
    }
}

/// Runs a parsed command line; `Ok` carries the exit code of a completed run.
pub fn run(cli: Cli) -> Result<u8, CliError> {
    let global = &cli.global;
    match cli.command {
        Command::Plugins(cmd) => plugins::run(global, cmd),
        Command::Validate(cmd) => validate::run(global, cmd),
        Command::View(cmd) => summary::run_view(global, cmd),
        Command::Summary(args) => summary::run(global, args),
        Command::Report(args) => report::run(global, args),
        Command::Generate(cmd) => generate::run(global, cmd),
        Command::Scan(args) => scan::run(global, *args),
        Command::Fleet(cmd) => fleet::run(global, cmd),
        Command::Demo(args) => demo::run(global, args),
        Command::Check(args) => check::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Exec(args) => exec::run(global, args),
        Command::Completions(args) => completions::run(args),
    }
}
