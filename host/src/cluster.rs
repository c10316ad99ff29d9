//! Kubernetes: connecting, preflight checks, the distroless probe, the
//! temporary least-privilege identity, guaranteed cleanup, the run journal
//! and garbage collection of what a dead run left behind.
//!
//! The caller's identity is used for preflight, setup and cleanup only; the
//! work in between runs as the temporary ServiceAccount.

pub mod cleanup;
pub mod connect;
pub mod debug;
pub mod gc;
pub mod identity;
pub mod journal;
pub mod kubeconfig;
pub mod node;
pub mod pacing;
pub mod preflight;
pub mod probe;
pub mod session;

use std::time::Duration;

pub use connect::{ClusterConnection, ConnectOptions};
pub use identity::{ObjectRef, ScanIdentity};
pub use preflight::{PreflightReport, Target};
pub use session::{DebugSlot, PhaseTiming, RunRecord, ScanContext, SessionOptions};

/// `app.kubernetes.io/managed-by` value on everything dscan creates.
pub const MANAGED_BY: &str = "dscan";
/// Label carrying the run id.
pub const RUN_ID_LABEL: &str = "dscan.dev/run-id";
/// Annotation: when the object was created (RFC 3339).
pub const CREATED_AT: &str = "dscan.dev/created-at";
/// Annotation: when the run's token expires; after this, `dscan gc` may remove it.
pub const EXPIRES_AT: &str = "dscan.dev/expires-at";
/// Annotation: who ran dscan (local user, host, kube context).
pub const CREATED_BY: &str = "dscan.dev/created-by";

/// The container being scanned, as preflight resolved it: the one value
/// every later step (identity, facts, debug container, runners) is given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetRef {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// The container (resolved: never "the default one").
    pub container: String,
    /// The pod's UID when preflight checked it (a recreated pod has another).
    pub pod_uid: String,
}

impl std::fmt::Display for TargetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} container {}",
            self.namespace, self.pod, self.container
        )
    }
}

/// A signal that stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (a CI runner cancelling the job).
    Terminate,
}

impl Signal {
    /// The exit code shells report for it (128 + the signal number).
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => crate::exit::INTERRUPTED_INT,
            Signal::Terminate => crate::exit::INTERRUPTED_TERM,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// What can go wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig / in-cluster config.
    #[error(
        "could not load the cluster configuration: {0}. Point --kubeconfig or KUBECONFIG at a kubeconfig (and --context at a context), or run inside a pod"
    )]
    Config(String),
    /// An API call failed.
    #[error("{action} failed: {message}")]
    Api {
        /// What was being done ("create ServiceAccount ns/x").
        action: String,
        /// The API server's message, or the transport error.
        message: String,
        /// HTTP code when the server answered.
        code: Option<u16>,
    },
    /// Preflight found problems; nothing was created.
    #[error("preflight failed; nothing was created:\n{0}")]
    Preflight(String),
    /// The target cannot be scanned.
    #[error("{0}")]
    Target(String),
    /// A wait ran out.
    #[error("{action} did not finish within {after:?}")]
    Timeout {
        /// What was being waited for.
        action: String,
        /// The limit.
        after: Duration,
    },
    /// A signal stopped the run (cleanup still ran).
    #[error("interrupted by {0}; cleanup ran")]
    Interrupted(Signal),
    /// A local file could not be written or read.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The scan itself failed (access, the debug container, the runner,
    /// the scanner, its results).
    #[error(transparent)]
    Scan(crate::scan_error::ScanError),
    /// Pod Security Admission refused the debug container (the namespace's
    /// enforce level, or a cluster default, does not admit the plan).
    #[error(
        "Pod Security Admission refused the debug container: {0}. Choose a strategy that fits the namespace's level (see `dscan scan --help`), or scan in a namespace with a lower enforce level"
    )]
    PodSecurityRefused(String),
    /// An internal failure (a panic in the run) — cleanup still ran.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ClusterError {
    /// The exit code this error ends a run with.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClusterError::Interrupted(sig) => sig.exit_code(),
            ClusterError::Io { .. } => crate::exit::IO,
            ClusterError::Scan(e) => e.exit_code(),
            _ => crate::exit::CLUSTER,
        }
    }

    /// Wraps a kube error with what was being done. Tokens never appear in
    /// kube's error texts (they are not part of URLs or bodies we send back).
    pub fn api(action: impl Into<String>, e: kube::Error) -> Self {
        let action = action.into();
        match e {
            kube::Error::Api(status) => ClusterError::Api {
                action,
                message: format!("{} ({} {})", status.message, status.code, status.reason),
                code: Some(status.code),
            },
            other => ClusterError::Api {
                action,
                message: other.to_string(),
                code: None,
            },
        }
    }

    /// Whether a retry may succeed (5xx, 429, transport errors).
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Api { code: Some(c), .. } => *c == 429 || *c >= 500,
            ClusterError::Api { code: None, .. } | ClusterError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// Whether the server said 404.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ClusterError::Api {
                code: Some(404),
                ..
            }
        )
    }
}

/// Runs an API call with a deadline; every wait in this module is bounded.
pub async fn bounded<T>(
    action: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| ClusterError::api(action, e)),
        Err(_) => Err(ClusterError::Timeout {
            action: action.to_string(),
            after: limit,
        }),
    }
}

/// The default limit for one API call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
