//! Builds the guest plugins in `plugins/` for wasm32-wasip2 so the built-in
//! ones can be embedded with `include_bytes!`.
//!
//! The guests form a workspace of their own (another target, another
//! profile), built by a nested `cargo` into `target/guests`. A separate target
//! directory avoids waiting on the lock of the build that runs this script.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let guest_dir = build_guests(&root);
    println!("cargo:rustc-env=DSCAN_GUEST_DIR={}", guest_dir.display());
    for watched in ["plugins", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("cargo sets {key} for build scripts"))
}

/// Runs `cargo build --release --target wasm32-wasip2` on the guest
/// workspace and returns the folder holding the `.wasm` files.
pub fn build_guests(root: &Path) -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root.join("plugins"))
        .args([
            "build",
            "--release",
            "--locked",
            "--workspace",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // Settings meant for the outer build must not leak into the guest build:
    // host RUSTFLAGS, clippy's wrapper, an outer --target, coverage flags.
    for key in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "RUSTDOCFLAGS",
    ] {
        cmd.env_remove(key);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guest plugins: {e}"));
    if !status.success() {
        panic!(
            "building the guest plugins failed ({status}); run `cargo build --release --target \
             wasm32-wasip2` in plugins/ to see why (is the wasm32-wasip2 target installed? \
             rust-toolchain.toml lists it)"
        );
    }
    target_dir.join("wasm32-wasip2").join("release")
}
