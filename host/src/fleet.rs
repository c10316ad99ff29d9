//! Fleets: every matching container scanned in one run, gently on the API
//! server (bounded concurrency, one identity per namespace, a shared rate
//! limit), deduplicated by image on request, split into shards for
//! Kubernetes Jobs, with the shards' results stored in the cluster and
//! collected afterwards.

pub mod job;
pub mod run;
pub mod select;
pub mod shard;
pub mod store;

pub use run::{FleetObserver, FleetOptions, FleetRecord, TargetRun};
pub use select::{FleetTarget, Selection, Skipped};
pub use shard::Shard;
