//! The precompiled cache must make loading a plugin at least 50× faster than
//! compiling it (measured in one run, medians, interleaved).

use dscan_tests::bench::measure;
use dscan_tests::{fixture_scan, guest};

#[test]
fn a_warm_load_is_at_least_50x_faster_than_a_cold_compile() {
    let scan = fixture_scan("minimal-hdf.json");
    let r = measure(&guest("saf_thresholds"), 3, 20, &scan);
    println!(
        "{}: cold {:?}, warm {:?}, ratio {:.0}x, call {:?}",
        r.plugin,
        r.cold,
        r.warm,
        r.ratio(),
        r.call
    );
    assert!(
        r.ratio() >= 50.0,
        "warm load only {:.1}x faster: {r:?}",
        r.ratio()
    );
}
