//! The engine's only view of the system: the target's root filesystem, as
//! the `dscan-targetfs` crate defines it (shared with the file agent that
//! serves it from inside a pod).

pub use dscan_targetfs::*;
