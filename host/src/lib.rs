//! dscan: scan distroless containers in Kubernetes for compliance and gate CI
//! on the result.
//!
//! The library is organised by job:
//! - [`results`]: the HDF results model with SAF CLI semantics;
//! - [`plugin`]: the sandboxed WebAssembly plugin host (threshold evaluators,
//!   reporters, access strategies);
//! - [`cluster`]: Kubernetes — preflight, the temporary identity, cleanup,
//!   the run journal and garbage collection;
//! - [`cli`]: the command-line layer (thin: parses flags, calls the above,
//!   maps errors to exit codes).

pub mod access;
pub mod cli;
pub mod cluster;
pub mod exit;
pub mod fleet;
pub mod gate;
pub mod plugin;
pub mod results;
pub mod scan;
pub mod scan_error;
