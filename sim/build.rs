//! Builds the static program the simulator's distroless images run.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=fixtures/pause.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let binary = out.join("sim-pause");
    let compiler = cc::Build::new().get_compiler();
    let status = Command::new(compiler.path())
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&binary)
        .arg("fixtures/pause.c")
        .status()
        .expect("run the C compiler for fixtures/pause.c");
    assert!(
        status.success(),
        "compiling fixtures/pause.c statically failed (is libc6-dev installed?)"
    );
}
