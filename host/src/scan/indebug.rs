//! The in-debug runner: the debug container is the scanner's image (graft
//! strategy). dscan uploads its graft helper and the checked profile through
//! exec stdin, runs the scanner through the helper in a private overlay view
//! of the target's root, and reads the results back through exec stdout,
//! size-capped (they are validated as HDF afterwards, like every runner's).
//!
//! Uploads read an exact byte count (`head -c N`) instead of waiting for end
//! of input, so they work over the v4 exec protocol, which cannot close stdin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ScanSettings;
use super::cinc::stderr_tail;
use crate::cluster::{ClusterError, ScanIdentity, debug};
use crate::scan_error::ScanError;

/// The graft helper (`helpers/graft.c`, static), empty when this build had no
/// static C toolchain.
pub const GRAFT_HELPER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dscan-graft"));

/// CINC Auditor's executable in its image.
pub const DEFAULT_SCANNER: &str = "/opt/cinc-auditor/bin/cinc-auditor";

/// Work directory in the debug container.
const WORK: &str = crate::access::contract::state::DIR;
/// Where the work directory appears in the grafted view (at the view's root,
/// which is the overlay: never inside one of the target's volumes).
const VIEW_WORK: &str = "/.dscan";
/// The helper's own failures (see graft.c).
const HELPER_FAILED: i32 = 125;
/// Exit codes CINC/InSpec use for results rather than errors.
const RESULT_CODES: [i32; 3] = [0, 100, 101];
/// Largest profile uploaded, bytes unpacked.
pub const MAX_PROFILE: u64 = 64 << 20;

/// The runtime directory grafted into the view: `--scanner-runtime`, else two
/// levels above the scanner (`/opt/cinc-auditor/bin/cinc-auditor` →
/// `/opt/cinc-auditor`).
fn runtime_dir(scanner: &Path, explicit: Option<&Path>) -> Result<PathBuf, ClusterError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    scanner
        .parent()
        .and_then(Path::parent)
        .filter(|d| d.components().count() > 1)
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            ScanError::runner("in-debug", format!(
                "cannot tell the scanner's runtime directory from {}; pass --scanner-runtime DIR",
                scanner.display()
            ))
        })
}

/// `uname -m` names for this build's architecture.
pub(crate) fn machine_names() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "x86_64" => &["x86_64", "amd64"],
        "aarch64" => &["aarch64", "arm64"],
        "riscv64" => &["riscv64"],
        "s390x" => &["s390x"],
        "powerpc64" => &["ppc64le"],
        _ => &[],
    }
}

/// Runs a control-shell script that must succeed; `what` names it in the error.
async fn checked(
    control: &debug::Control<'_>,
    what: &str,
    script: &str,
    input: debug::Stdin<'_>,
    limit: Duration,
    cap: usize,
) -> Result<debug::ExecOutput, ClusterError> {
    let out = control.run(script, input, limit, cap).await?;
    if out.code != Some(0) {
        return Err(ScanError::runner(
            "in-debug",
            format!(
                "{what} in the debug container failed ({}): {}",
                out.code
                    .map_or_else(|| "no exit code".to_string(), |c| format!("exit {c}")),
                if out.stderr.is_empty() {
                    out.message.clone()
                } else {
                    stderr_tail(&out.stderr)
                }
            ),
        ));
    }
    Ok(out)
}

/// Runs the profile in the debug container; returns the HDF bytes and the
/// scanner's exit code.
pub async fn run(
    id: &ScanIdentity,
    dc: &debug::DebugHandle,
    target_pid: i64,
    settings: &ScanSettings,
) -> Result<(Vec<u8>, i32), ClusterError> {
    let name = dc.name.as_str();
    let profile = settings.profile_tar.as_ref().ok_or_else(|| {
        ScanError::runner(
            "in-debug",
            "the in-debug runner needs --profile (a CINC/InSpec profile directory or archive)"
                .into(),
        )
    })?;
    if GRAFT_HELPER.is_empty() {
        return Err(ScanError::runner(
            "in-debug",
            "this dscan was built without the graft helper (no static C toolchain at build time); \
             rebuild with a C compiler and a static libc (Debian: libc6-dev)"
                .into(),
        ));
    }
    let scanner = settings
        .scanner
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SCANNER));
    let runtime = runtime_dir(&scanner, settings.scanner_runtime.as_deref())?;
    let control = dc.control(&id.client);
    let short = Duration::from_secs(60);

    let machine = checked(
        &control,
        "uname -m",
        "uname -m",
        debug::Stdin::None,
        short,
        4096,
    )
    .await?
    .stdout;
    let machine = String::from_utf8_lossy(&machine).trim().to_string();
    if !machine_names().contains(&machine.as_str()) {
        return Err(ScanError::runner(
            "in-debug",
            format!(
                "the debug container runs on {machine}, but this dscan's graft helper is built for {}; \
             run dscan from a machine of the node's architecture",
                std::env::consts::ARCH
            ),
        ));
    }

    let helper = format!("{WORK}/dscan-graft");
    checked(
        &control,
        "uploading the graft helper",
        &format!(
            "umask 077 && mkdir -p {WORK} && head -c {n} > {helper} && chmod 0700 {helper} && \
             [ \"$(wc -c < {helper})\" -eq {n} ]",
            n = GRAFT_HELPER.len()
        ),
        debug::Stdin::Counted(GRAFT_HELPER),
        short,
        64 * 1024,
    )
    .await?;
    checked(
        &control,
        "uploading the profile",
        &format!(
            "rm -rf {WORK}/profile && mkdir -p {WORK}/profile && head -c {n} | tar -x -f - -C {WORK}/profile",
            n = profile.len()
        ),
        debug::Stdin::Counted(profile),
        Duration::from_secs(300),
        1 << 20,
    )
    .await?;

    let results = format!("{WORK}/results.json");
    checked(
        &control,
        "preparing the results file",
        // The scanner runs as the target's user (the graft helper drops to
        // it): it must reach the work directory and write the results file.
        &format!("rm -f {results} && : > {results} && chmod 0666 {results} && chmod 0755 {WORK}"),
        debug::Stdin::None,
        short,
        4096,
    )
    .await?;
    let pid = target_pid.to_string();
    let runtime_graft = format!("{0}:{0}", runtime.display());
    let work_graft = format!("{WORK}:{VIEW_WORK}");
    let scanner_s = scanner.display().to_string();
    let profile_in_view = format!("{VIEW_WORK}/profile");
    let reporter = format!("json:{VIEW_WORK}/results.json");
    let argv = [
        helper.as_str(),
        &pid,
        &runtime_graft,
        &work_graft,
        "--",
        &scanner_s,
        "exec",
        &profile_in_view,
        "--no-color",
        "--chef-license",
        "accept-silent",
        "--reporter",
        &reporter,
    ];
    tracing::info!("running {} in the debug container {name}", argv.join(" "));
    let out = dc
        .exec(&id.client, &argv, settings.scan_timeout, 32 << 20)
        .await?;
    let code = match out.code {
        Some(c) if RESULT_CODES.contains(&c) => c,
        Some(HELPER_FAILED) => {
            return Err(ScanError::runner(
                "in-debug",
                format!(
                    "the graft helper could not build the view of the target: {}",
                    stderr_tail(&out.stderr)
                ),
            ));
        }
        Some(c @ (126 | 127)) => {
            return Err(ScanError::scanner(
                Some(c),
                format!(
                    "the scanner {scanner_s} cannot run in the scanner image (exit {c}): {}; check --scanner-image and --scanner",
                    stderr_tail(&out.stderr)
                ),
            ));
        }
        Some(c) => {
            return Err(ScanError::scanner(
                Some(c),
                format!(
                    "the scanner exited with {c} (not a results code 0/100/101):\n{}",
                    stderr_tail(&out.stderr)
                ),
            ));
        }
        None => {
            return Err(ScanError::scanner(
                None,
                format!("the scanner did not run: {}", out.message),
            ));
        }
    };

    let size = checked(
        &control,
        "reading the results' size",
        &format!("wc -c < {results}"),
        debug::Stdin::None,
        short,
        4096,
    )
    .await
    .map_err(|e| ScanError::results(None, format!("the scanner wrote no results: {e}")))?;
    let size: u64 = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .unwrap_or(u64::MAX);
    if size > settings.max_results as u64 {
        return Err(ScanError::results(
            Some(size),
            format!(
                "the results are {size} bytes, over the {}-byte cap (--max-results-mib)",
                settings.max_results
            ),
        ));
    }
    let bytes = checked(
        &control,
        "reading the results",
        &format!("cat {results}"),
        debug::Stdin::None,
        Duration::from_secs(300),
        settings.max_results.max(1),
    )
    .await?
    .stdout;
    Ok((bytes, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_is_two_levels_above_the_scanner_unless_given() {
        assert_eq!(
            runtime_dir(Path::new(DEFAULT_SCANNER), None).unwrap(),
            Path::new("/opt/cinc-auditor")
        );
        assert_eq!(
            runtime_dir(Path::new("/x/bin/s"), Some(Path::new("/y"))).unwrap(),
            Path::new("/y")
        );
        assert!(runtime_dir(Path::new("/bin/cinc"), None).is_err());
    }

    #[test]
    fn the_helper_is_a_static_executable_for_this_machine() {
        // CI builds with libc6-dev; an empty helper would make graft unusable.
        assert!(
            GRAFT_HELPER.starts_with(b"\x7fELF"),
            "the helper was not built"
        );
    }
}
