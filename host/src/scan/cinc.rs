//! The local runner: CINC Auditor (`cinc-auditor`, or `inspec`) on this
//! machine, through the `train-k8s-container` transport pointed at the debug
//! container, with `KUBECONFIG` set to the restricted kubeconfig. With the
//! chroot-wrapper strategy every command the transport runs (`/bin/sh -c …`)
//! lands in the target's root.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::ScanSettings;
use crate::cluster::{ClusterError, ScanIdentity};

/// Exit codes CINC/InSpec use for results rather than errors.
const RESULT_CODES: [i32; 3] = [0, 100, 101];

fn find_scanner(explicit: Option<&Path>) -> Result<PathBuf, ClusterError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["cinc-auditor", "inspec"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(ClusterError::Scan(
        "no scanner found: install CINC Auditor (`cinc-auditor`) with the train-k8s-container plugin \
         (`cinc-auditor plugin install train-k8s-container`), or pass --scanner PATH; \
         `--runner standin` runs dscan's own stand-in checks instead (not CINC)"
            .into(),
    ))
}

/// The last lines of a scanner's stderr, for error messages.
pub(crate) fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Runs the profile; returns the HDF bytes and the scanner's exit code.
pub async fn run(
    id: &ScanIdentity,
    debug_container: &str,
    settings: &ScanSettings,
) -> Result<(Vec<u8>, i32), ClusterError> {
    let profile = settings.profile.as_ref().ok_or_else(|| {
        ClusterError::Scan(
            "the local runner needs --profile (a CINC/InSpec profile directory or archive)".into(),
        )
    })?;
    let scanner = find_scanner(settings.scanner.as_deref())?;
    let out_dir = tempfile::Builder::new()
        .prefix("dscan-results-")
        .tempdir()
        .map_err(|source| ClusterError::Io {
            what: "create a results directory",
            path: "tmp".into(),
            source,
        })?;
    let results = out_dir.path().join("results.json");
    let target = format!(
        "k8s-container://{}/{}/{}",
        id.namespace, id.pod, debug_container
    );
    let mut cmd = tokio::process::Command::new(&scanner);
    cmd.arg("exec")
        .arg(profile)
        .args([
            "-t",
            &target,
            "--no-color",
            "--chef-license",
            "accept-silent",
            "--reporter",
        ])
        .arg(format!("json:{}", results.display()))
        .env("KUBECONFIG", &id.kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tracing::info!(
        "running {} exec {} -t {target}",
        scanner.display(),
        profile.display()
    );
    let child = cmd
        .spawn()
        .map_err(|e| ClusterError::Scan(format!("cannot start {}: {e}", scanner.display())))?;
    let output = tokio::time::timeout(settings.scan_timeout, child.wait_with_output())
        .await
        .map_err(|_| ClusterError::Timeout {
            action: format!("the scanner {}", scanner.display()),
            after: settings.scan_timeout,
        })?
        .map_err(|e| ClusterError::Scan(format!("the scanner failed to run: {e}")))?;
    let code = output.status.code().unwrap_or(-1);
    if !RESULT_CODES.contains(&code) {
        return Err(ClusterError::Scan(format!(
            "the scanner exited with {code} (not a results code 0/100/101):\n{}",
            stderr_tail(&output.stderr)
        )));
    }
    let meta = std::fs::metadata(&results).map_err(|e| {
        ClusterError::Scan(format!(
            "the scanner wrote no results to {}: {e}",
            results.display()
        ))
    })?;
    if meta.len() > settings.max_results as u64 {
        return Err(ClusterError::Scan(format!(
            "the results are {} bytes, over the {}-byte cap (--max-results-mib)",
            meta.len(),
            settings.max_results
        )));
    }
    let bytes = std::fs::read(&results).map_err(|source| ClusterError::Io {
        what: "read results",
        path: results.display().to_string(),
        source,
    })?;
    Ok((bytes, code))
}
