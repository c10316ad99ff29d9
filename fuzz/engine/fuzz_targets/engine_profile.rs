//! Any bytes as a control file: the native engine parses and runs them
//! against a small target root under tight budgets, and returns a report or
//! a typed error. It never panics, hangs or reads outside the root.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn root() -> &'static (tempfile::TempDir, dscan_engine::fs::RootDir) {
    static ROOT: OnceLock<(tempfile::TempDir, dscan_engine::fs::RootDir)> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0:root:/root:/sbin/nologin\n").expect("passwd");
        std::fs::write(dir.path().join("etc/debian_version"), "12.11\n").expect("debian_version");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).expect("link");
        let fs = dscan_engine::fs::RootDir::open(dir.path()).expect("root");
        (dir, fs)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = dscan_engine::profile::from_sources(
        std::path::Path::new("fuzz"),
        "name: fuzz\n",
        vec![("controls/fuzz.rb".into(), data.to_vec())],
    ) else {
        return;
    };
    let options = dscan_engine::Options {
        limits: dscan_engine::Limits {
            steps: 100_000,
            depth: 64,
            string_bytes: 1 << 16,
            elements: 10_000,
            time: std::time::Duration::from_secs(2),
            file_bytes: 1 << 16,
        },
        ..Default::default()
    };
    if let Ok(report) = dscan_engine::run_profile(&profile, &root().1, &options) {
        assert!(report["profiles"][0]["controls"].is_array());
    }
});
