//! Helpers for running the `dscan` binary in tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The SAF fixtures vendored in `tests/fixtures/saf` (see its SOURCE.md).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/saf")
}

/// A compiled guest component by file stem.
pub fn guest(stem: &str) -> PathBuf {
    Path::new(env!("DSCAN_GUEST_DIR")).join(format!("{stem}.wasm"))
}

/// One plugin cache for the whole test binary, and an empty plugin dir, so
/// the user's own plugins and cache never leak into a test.
fn isolation() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("dscan-test-{}", std::process::id()));
        let cache = base.join("cache");
        let plugins = base.join("plugins");
        std::fs::create_dir_all(&cache).expect("cache dir");
        std::fs::create_dir_all(&plugins).expect("plugin dir");
        (cache, plugins)
    })
}

/// A `dscan` command run from `dir`, isolated from the user's setup.
pub fn dscan_in(dir: &Path) -> Command {
    let (cache, plugins) = isolation();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dscan"));
    cmd.current_dir(dir)
        .env("DSCAN_PLUGIN_CACHE", cache)
        .env("DSCAN_PLUGIN_DIR", plugins)
        .env_remove("RUST_LOG");
    cmd
}

/// Runs dscan in the fixtures folder.
pub fn dscan(args: &[&str]) -> Output {
    dscan_in(&fixtures())
        .args(args)
        .output()
        .expect("dscan runs")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Starts `cmd` (a `dscan` run) with the test hook holding it at `boundary`
/// (`DSCAN_TEST_HOLD_AT`) and waits, up to `within`, until `times` of its
/// scans say they hold there. Returns the child and a task that drains the
/// rest of its stderr (so it never blocks on a full pipe) and yields those
/// lines. Panics with what stderr said if it never gets there.
pub async fn spawn_held(
    cmd: &mut tokio::process::Command,
    boundary: &str,
    times: usize,
    within: std::time::Duration,
) -> (tokio::process::Child, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::AsyncBufReadExt;
    let mut child = cmd
        .env("DSCAN_TEST_HOLD_AT", boundary)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("dscan starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let wanted = format!("holding at {boundary}");
    let mut seen = vec![];
    let mut held = 0;
    let reached = tokio::time::timeout(within, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(&wanted) {
                held += 1;
                if held == times {
                    return true;
                }
            }
            seen.push(line);
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        reached,
        "dscan never held {times} time(s) at {boundary}: {seen:?}"
    );
    let rest = tokio::spawn(async move {
        let mut rest = vec![];
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });
    (child, rest)
}
