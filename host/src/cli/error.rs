//! The CLI's error type and exit codes.

use crate::gate::GateError;
use crate::plugin::PluginError;
use crate::results::HdfError;

/// Exit codes (documented in the README).
pub mod exit {
    /// Success: the command did what was asked; thresholds (if any) passed.
    pub const OK: u8 = 0;
    /// Thresholds not met.
    pub const THRESHOLD_NOT_MET: u8 = 1;
    /// Bad usage or bad input (flags, files, thresholds, options).
    pub const USAGE: u8 = 2;
    /// Cluster or permission error.
    pub const CLUSTER: u8 = 3;
    /// The scan itself failed (scanner error, profile errors, skipped profile).
    pub const SCAN: u8 = 4;
    /// Cleanup did not complete: objects may be left in the cluster.
    pub const CLEANUP_INCOMPLETE: u8 = 5;
    /// A plugin failed (trap, timeout, memory, load failure).
    pub const PLUGIN: u8 = 6;
    /// Writing output failed.
    pub const IO: u8 = 7;
    /// Stopped by SIGINT after cleanup ran (128 + 2, as shells report it).
    pub const INTERRUPTED_INT: u8 = 130;
    /// Stopped by SIGTERM after cleanup ran (128 + 15).
    pub const INTERRUPTED_TERM: u8 = 143;
}

/// An error at the command-line edge.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags or arguments.
    #[error("{0}")]
    Usage(String),
    /// A results file was unusable.
    #[error(transparent)]
    Results(#[from] HdfError),
    /// A plugin failed or rejected its input.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A cluster operation failed.
    #[error(transparent)]
    Cluster(crate::cluster::ClusterError),
    /// Reading or writing a file failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl From<GateError> for CliError {
    fn from(e: GateError) -> CliError {
        match e {
            GateError::Usage(m) => CliError::Usage(m),
            GateError::Plugin(p) => CliError::Plugin(p),
            GateError::Results(r) => CliError::Results(r),
            GateError::Io { what, path, source } => CliError::Io { what, path, source },
        }
    }
}

impl CliError {
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Results(_) => exit::USAGE,
            CliError::Plugin(e) if e.is_rejection() => exit::USAGE,
            CliError::Plugin(
                PluginError::Read { .. }
                | PluginError::Inspect { .. }
                | PluginError::NotFound { .. }
                | PluginError::WrongKind { .. },
            ) => exit::USAGE,
            CliError::Plugin(_) => exit::PLUGIN,
            CliError::Io { .. } => exit::IO,
            CliError::Cluster(crate::cluster::ClusterError::Interrupted(sig)) => {
                if *sig == "SIGINT" {
                    exit::INTERRUPTED_INT
                } else {
                    exit::INTERRUPTED_TERM
                }
            }
            CliError::Cluster(crate::cluster::ClusterError::Io { .. }) => exit::IO,
            CliError::Cluster(crate::cluster::ClusterError::Scan(_)) => exit::SCAN,
            CliError::Cluster(_) => exit::CLUSTER,
        }
    }

    /// Prints the error and its causes to stderr.
    pub fn report(&self) {
        eprintln!("Error: {self}");
        let mut source = std::error::Error::source(self);
        // Variants that already print their cause skip it here.
        if matches!(
            self,
            CliError::Results(_) | CliError::Plugin(_) | CliError::Io { .. }
        ) {
            source = source.and_then(std::error::Error::source);
        }
        while let Some(cause) = source {
            eprintln!("  Caused by: {cause}");
            source = cause.source();
        }
    }
}
