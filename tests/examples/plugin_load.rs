//! Benchmark: cold compile vs warm (cached) load vs one call, for every
//! built-in plugin and the example plugin, measured side by side in one run.
//! `cargo run --release -p dscan-tests --example plugin_load`

use dscan_tests::bench::measure;
use dscan_tests::{fixture_scan, guest};

fn main() {
    let scan = fixture_scan("minimal-hdf.json");
    println!(
        "{:<24} {:>9} {:>11} {:>11} {:>9} {:>10}",
        "plugin", "bytes", "cold ms", "warm ms", "cold/warm", "call µs"
    );
    for stem in [
        "saf_thresholds",
        "report_markdown",
        "report_json",
        "report_yaml",
        "nist_gate",
    ] {
        let r = measure(&guest(stem), 5, 200, &scan);
        println!(
            "{:<24} {:>9} {:>11.2} {:>11.3} {:>8.0}x {:>10.1}",
            r.plugin,
            r.bytes,
            r.cold.as_secs_f64() * 1e3,
            r.warm.as_secs_f64() * 1e3,
            r.ratio(),
            r.call.as_secs_f64() * 1e6
        );
    }
}
