//! A 1 GiB file of garbage is rejected without reading it into memory. Kept
//! in its own test binary: it measures the peak RSS of the children this
//! process has waited for.

mod support;

use std::io::{Seek, SeekFrom, Write};

use nix::sys::resource::{UsageWho, getrusage};
use support::{dscan, stderr};

#[test]
fn a_gigabyte_of_garbage_fails_fast_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.json");
    let mut f = std::fs::File::create(&path).expect("create");
    // Noise up front, a sparse gigabyte behind it, noise at the end.
    let noise: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    f.write_all(&noise).expect("write");
    f.seek(SeekFrom::Start((1 << 30) - noise.len() as u64))
        .expect("seek");
    f.write_all(&noise).expect("write");
    drop(f);
    assert!(std::fs::metadata(&path).expect("meta").len() >= 1 << 30);

    let started = std::time::Instant::now();
    let o = dscan(&["summary", "-i", path.to_str().expect("utf8")]);
    let elapsed = started.elapsed();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not JSON results"), "{}", stderr(&o));
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("rusage")
        .max_rss();
    // Loading the built-in reporters dominates; reading the file would add a GiB.
    assert!(peak_kib < 200 * 1024, "peak RSS {peak_kib} KiB");
    assert!(elapsed.as_secs() < 30, "took {elapsed:?}");
}
