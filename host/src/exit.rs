//! Exit codes (documented in the README); every error type maps to one
//! with its own `exit_code()`.

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

/// How bad an exit code is (an unknown one counts worst).
fn severity(code: u8) -> u8 {
    match code {
        OK => 0,
        THRESHOLD_NOT_MET => 1,
        SCAN => 2,
        CLUSTER => 3,
        PLUGIN => 4,
        IO => 5,
        CLEANUP_INCOMPLETE => 6,
        USAGE => 7,
        _ => 8,
    }
}

/// The worst of several outcomes' exit codes (a fleet exits with its worst
/// target's); `OK` for none.
pub fn worst(codes: impl IntoIterator<Item = u8>) -> u8 {
    codes.into_iter().max_by_key(|c| severity(*c)).unwrap_or(OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_outcome_wins() {
        assert_eq!(worst([OK, THRESHOLD_NOT_MET]), THRESHOLD_NOT_MET);
        assert_eq!(worst([THRESHOLD_NOT_MET, SCAN, OK]), SCAN);
        assert_eq!(worst([SCAN, CLUSTER]), CLUSTER);
        assert_eq!(worst([CLUSTER, CLEANUP_INCOMPLETE]), CLEANUP_INCOMPLETE);
        assert_eq!(worst([OK, INTERRUPTED_TERM]), INTERRUPTED_TERM);
        assert_eq!(worst(std::iter::empty()), OK);
    }
}
