//! Scan results: the HDF (InSpec / CINC Auditor JSON) model, parsed once with
//! SAF CLI semantics for control status, severity, overlays and counts.

mod generate;
mod hdf;
mod model;

pub use generate::{GenerateOptions, generate_threshold};
pub use hdf::{HdfError, ParseOptions, parse, read_file};
pub use model::{
    Control, ControlStatus, Counts, Description, Platform, Profile, ResultStatus, Scan, Severity,
    SeverityCounts, TestResult,
};
