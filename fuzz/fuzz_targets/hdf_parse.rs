//! Any bytes: the HDF parser returns a result or a typed error, never panics
//! or loops, and what it returns is internally consistent.
#![no_main]

use dscan::results::{Counts, ParseOptions, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(scan) = parse(data, "fuzz.json", &ParseOptions::default()) {
        assert!(!scan.profiles.is_empty());
        assert_eq!(scan.counts, Counts::of(&scan.controls));
        assert!(scan.counts.compliance <= 100);
    }
});
