//! Any text: threshold files and inline strings parse or fail with a
//! message, never panic; a parsed threshold evaluates without panicking.
#![no_main]

use dscan_threshold_rules::{Observed, evaluate, threshold};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for parsed in [threshold::parse_file(text), threshold::parse_inline(text)] {
        match parsed {
            Ok(t) => {
                let _ = evaluate(&t, &Observed::default());
            }
            Err(message) => assert!(!message.is_empty()),
        }
    }
});
