//! Points the tests at the guest components host/build.rs has built (the
//! `dscan` dependency's build script runs first and builds the whole guest
//! workspace, test guests included).

fn main() {
    let manifest =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let guests = target.join("guests").join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=DSCAN_TEST_GUEST_DIR={}", guests.display());
    println!("cargo:rustc-env=DSCAN_REPO_ROOT={}", root.display());
    println!("cargo:rerun-if-changed=build.rs");
}
