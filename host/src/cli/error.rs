//! The CLI's error type and exit codes.

use crate::gate::GateError;
use crate::plugin::PluginError;
use crate::results::HdfError;

pub use crate::exit;

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
            CliError::Plugin(e) => e.exit_code(),
            CliError::Io { .. } => exit::IO,
            CliError::Cluster(e) => e.exit_code(),
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
