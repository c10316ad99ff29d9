//! Why the scan itself failed, as opposed to the cluster: which part
//! failed (access, the debug container, the runner, the scanner, its
//! results) and the facts of it. Every variant keeps the full message the
//! user reads; the fields say what it is about.

use crate::cluster::ClusterError;

/// A failure of the scan phase.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No strategy planned access dscan can use, or the target cannot be
    /// reached at all (hostPID, no ephemeral containers).
    #[error("{message}")]
    Access {
        /// `(strategy, why)` for each strategy that declined.
        declined: Vec<(String, String)>,
        /// What the user reads.
        message: String,
    },
    /// The debug container failed: it could not start, exited early, or
    /// answered more than dscan reads.
    #[error("{message}")]
    DebugContainer {
        /// Its name.
        name: String,
        /// What the user reads.
        message: String,
    },
    /// A runner could not do its part (a missing profile or helper, a
    /// transport that did not reach the target).
    #[error("{message}")]
    Runner {
        /// The runner (`local`, `standin`, `in-debug`).
        runner: &'static str,
        /// What the user reads.
        message: String,
    },
    /// The scanner did not run, or did not end with a results code.
    #[error("{message}")]
    Scanner {
        /// Its exit code, when it had one.
        exit: Option<i32>,
        /// What the user reads.
        message: String,
    },
    /// The results are missing, too large or not HDF.
    #[error("{message}")]
    Results {
        /// Their size, when that is the problem.
        bytes: Option<u64>,
        /// What the user reads.
        message: String,
    },
}

impl ScanError {
    /// The exit code: a target no strategy can reach is a cluster-side
    /// problem (3); everything else is the scan's (4).
    pub fn exit_code(&self) -> u8 {
        match self {
            ScanError::Access { .. } => crate::exit::CLUSTER,
            _ => crate::exit::SCAN,
        }
    }

    /// [`ScanError::Access`] without declines, as a cluster error.
    pub fn access(message: String) -> ClusterError {
        ClusterError::Scan(ScanError::Access {
            declined: Vec::new(),
            message,
        })
    }

    /// [`ScanError::DebugContainer`], as a cluster error.
    pub fn debug_container(name: &str, message: String) -> ClusterError {
        ClusterError::Scan(ScanError::DebugContainer {
            name: name.to_string(),
            message,
        })
    }

    /// [`ScanError::Runner`], as a cluster error.
    pub fn runner(runner: &'static str, message: String) -> ClusterError {
        ClusterError::Scan(ScanError::Runner { runner, message })
    }

    /// [`ScanError::Scanner`], as a cluster error.
    pub fn scanner(exit: Option<i32>, message: String) -> ClusterError {
        ClusterError::Scan(ScanError::Scanner { exit, message })
    }

    /// [`ScanError::Results`], as a cluster error.
    pub fn results(bytes: Option<u64>, message: String) -> ClusterError {
        ClusterError::Scan(ScanError::Results { bytes, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Signal;

    #[test]
    fn every_error_names_its_exit_code() {
        assert_eq!(ScanError::access("no strategy".into()).exit_code(), 3);
        assert_eq!(ScanError::scanner(Some(2), "exit 2".into()).exit_code(), 4);
        assert_eq!(ScanError::results(Some(1), "too big".into()).exit_code(), 4);
        assert_eq!(
            ClusterError::Interrupted(Signal::Interrupt).exit_code(),
            130
        );
        assert_eq!(
            ClusterError::Interrupted(Signal::Terminate).exit_code(),
            143
        );
        assert_eq!(
            ClusterError::Interrupted(Signal::Terminate).to_string(),
            "interrupted by SIGTERM; cleanup ran"
        );
        let e = ScanError::debug_container("dscan-debug-x", "it exited".into());
        assert!(
            matches!(e, ClusterError::Scan(ScanError::DebugContainer { ref name, .. }) if name == "dscan-debug-x")
        );
        assert_eq!(e.to_string(), "it exited");
    }
}
