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
    build_graft_helper(&manifest_dir);
    build_agent(&root);
    for watched in [
        "plugins",
        "wit",
        "tests/guests",
        "rust-toolchain.toml",
        "agent",
        "targetfs",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
}

/// Compiles `helpers/graft.c` as a static executable for the graft strategy
/// (uploaded into the debug container, which may have no libc dscan knows).
/// Without a C compiler or a static libc the build goes on with an empty
/// helper, and the graft strategy says so when asked for.
fn build_graft_helper(manifest_dir: &Path) {
    let source = manifest_dir.join("helpers").join("graft.c");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = PathBuf::from(env("OUT_DIR")).join("dscan-graft");
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .get_compiler();
    let built = Command::new(compiler.path())
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&out)
        .arg(&source)
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        println!(
            "cargo:warning=could not compile {} statically (install a C compiler and a static libc, \
             e.g. Debian's libc6-dev); the graft strategy will be unavailable",
            source.display()
        );
        std::fs::write(&out, b"").expect("write an empty graft helper into OUT_DIR");
    }
}

/// The `channel` of rust-toolchain.toml.
fn pinned_toolchain(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("rust-toolchain.toml")).ok()?;
    text.lines().find_map(|line| {
        let value = line
            .trim()
            .strip_prefix("channel")?
            .trim_start()
            .strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_string())
    })
}

fn rustup_present() -> bool {
    std::env::var_os("RUSTUP_HOME").is_some() || std::env::var_os("RUSTUP_TOOLCHAIN").is_some()
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("cargo sets {key} for build scripts"))
}

/// Builds `agent/` as a static executable for this build's target (it is
/// uploaded into debug containers, whose image may have any libc or none):
/// glibc's static libraries, `crt-static`. Without them the build goes on
/// with an empty agent, and the runner that needs it says so.
fn build_agent(root: &Path) {
    let out = PathBuf::from(env("OUT_DIR")).join("dscan-agent");
    let target = env("TARGET");
    let target_dir = outer_target_dir(root).join("agent");
    let mut cmd = cargo_command(root);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "dscan-agent",
            "--target",
        ])
        .arg(&target)
        .arg("--target-dir")
        .arg(&target_dir)
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C strip=symbols -C opt-level=s",
        );
    let built = cmd.status().is_ok_and(|s| s.success());
    let binary = target_dir.join(&target).join("release").join("dscan-agent");
    match built.then(|| std::fs::read(&binary)).and_then(Result::ok) {
        Some(bytes) => std::fs::write(&out, bytes).expect("copy the agent into OUT_DIR"),
        None => {
            println!(
                "cargo:warning=could not build the file agent statically (install a static libc, \
                 e.g. Debian's libc6-dev); the native runner will be unavailable"
            );
            std::fs::write(&out, b"").expect("write an empty agent into OUT_DIR");
        }
    }
}

fn outer_target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// A `cargo` for a nested build: the toolchain the repository pins (it
/// carries the wasm32-wasip2 target) even when the host is built with
/// another one, e.g. `cargo +nightly fuzz build`, and none of the outer
/// build's settings (host RUSTFLAGS, clippy's wrapper, an outer --target,
/// coverage flags).
fn cargo_command(root: &Path) -> Command {
    // `rustup run` rather than RUSTUP_TOOLCHAIN: under `cargo +nightly` the
    // outer toolchain's bin directory leads PATH, so a bare `cargo` would not
    // be rustup's proxy. Without rustup, use this cargo.
    let mut cmd = match pinned_toolchain(root) {
        Some(channel) if rustup_present() => {
            let mut c = Command::new("rustup");
            c.args(["run", &channel, "cargo"])
                // Cargo hands build scripts the outer toolchain's tools.
                .env_remove("RUSTC")
                .env_remove("RUSTDOC")
                .env_remove("CARGO")
                .env_remove("RUSTUP_TOOLCHAIN");
            c
        }
        _ => Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
    };
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
    cmd
}

/// Runs `cargo build --release --target wasm32-wasip2` on the guest
/// workspace and returns the folder holding the `.wasm` files.
pub fn build_guests(root: &Path) -> PathBuf {
    let target_dir = outer_target_dir(root).join("guests");
    let mut cmd = cargo_command(root);
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
