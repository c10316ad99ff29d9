//! The local runner: CINC Auditor (`cinc-auditor`, or `inspec`) on this
//! machine, through the `train-k8s-container` transport pointed at the debug
//! container, with `KUBECONFIG` set to the restricted kubeconfig. With the
//! chroot-wrapper strategy every command the transport runs (`/bin/sh -c …`)
//! lands in the target's root.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::ScanSettings;
use crate::cluster::{ClusterError, ScanIdentity};
use crate::scan_error::ScanError;

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
    Err(ScanError::runner("local", 
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

/// The id of the canary control.
const CANARY: &str = "dscan-canary";

/// A one-control profile whose check only the target's root can pass: the
/// `device:inode` of `/` as a command run through the transport sees it must
/// be the target's root's, which dscan's root check read from the debug
/// container (`/proc/<pid>/root`).
fn canary_profile(dir: &Path, root: &str) -> Result<PathBuf, ClusterError> {
    let profile = dir.join("dscan-canary");
    let io = |source| ClusterError::Io {
        what: "write the canary profile",
        path: profile.display().to_string(),
        source,
    };
    std::fs::create_dir_all(profile.join("controls")).map_err(io)?;
    std::fs::write(
        profile.join("inspec.yml"),
        "name: dscan-canary\ntitle: dscan transport canary\nversion: 1.0.0\nlicense: Apache-2.0\n",
    )
    .map_err(io)?;
    std::fs::write(
        profile.join("controls/canary.rb"),
        format!(
            "control '{CANARY}' do\n  title 'commands run through the transport reach the target root'\n  \
             describe command('stat -L -c %d:%i /') do\n    its('stdout.strip') {{ should eq '{root}' }}\n  end\nend\n"
        ),
    )
    .map_err(io)?;
    Ok(profile)
}

/// Whether the canary's results show its command ran in the target's root.
fn canary_passed(hdf: &[u8]) -> Result<(), String> {
    let doc: serde_json::Value =
        serde_json::from_slice(hdf).map_err(|e| format!("its results are not JSON ({e})"))?;
    let control = doc["profiles"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["controls"].as_array().into_iter().flatten())
        .find(|c| c["id"] == CANARY)
        .ok_or("its results have no canary control")?;
    let results = control["results"].as_array().cloned().unwrap_or_default();
    if !results.is_empty() && results.iter().all(|r| r["status"] == "passed") {
        return Ok(());
    }
    let said: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "{}: {}{}",
                r["status"].as_str().unwrap_or("?"),
                r["code_desc"].as_str().unwrap_or_default(),
                r["message"]
                    .as_str()
                    .or(r["skip_message"].as_str())
                    .map(|m| format!(" ({})", m.trim()))
                    .unwrap_or_default()
            )
        })
        .collect();
    Err(if said.is_empty() {
        "the canary control has no results".into()
    } else {
        said.join("; ")
    })
}

/// How the scanner is run: the program, the identity and debug container
/// its transport targets, the limits, and where results go.
struct Invocation<'a> {
    scanner: &'a Path,
    id: &'a ScanIdentity,
    debug_container: &'a str,
    settings: &'a ScanSettings,
    out_dir: &'a Path,
}

impl Invocation<'_> {
    /// Runs the scanner once on `profile`; returns the HDF bytes and the exit code.
    async fn exec(&self, profile: &Path) -> Result<(Vec<u8>, i32), ClusterError> {
        let Invocation {
            scanner,
            id,
            debug_container,
            settings,
            out_dir,
        } = *self;
        let results = out_dir.join(format!(
            "results-{}.json",
            profile
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let target = format!(
            "k8s-container://{}/{}/{}",
            id.target.namespace, id.target.pod, debug_container
        );
        let mut cmd = tokio::process::Command::new(scanner);
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
        let child = cmd.spawn().map_err(|e| {
            ScanError::scanner(None, format!("cannot start {}: {e}", scanner.display()))
        })?;
        let output = tokio::time::timeout(settings.scan_timeout, child.wait_with_output())
            .await
            .map_err(|_| ClusterError::Timeout {
                action: format!("the scanner {}", scanner.display()),
                after: settings.scan_timeout,
            })?
            .map_err(|e| ScanError::scanner(None, format!("the scanner failed to run: {e}")))?;
        let code = output.status.code().unwrap_or(-1);
        if !RESULT_CODES.contains(&code) {
            return Err(ScanError::scanner(
                Some(code),
                format!(
                    "the scanner exited with {code} (not a results code 0/100/101):\n{}",
                    stderr_tail(&output.stderr)
                ),
            ));
        }
        read_results(&results, settings.max_results).map(|bytes| (bytes, code))
    }

    /// Runs the canary profile and fails loudly unless its command reached
    /// the target's root (`when`: "before" or "after" the scan).
    async fn check_canary(&self, canary: &Path, when: &str) -> Result<(), ClusterError> {
        let (bytes, _) = self.exec(canary).await?;
        canary_passed(&bytes).map_err(|why| {
            ScanError::runner("local", format!(
                "the scanner's transport did not run commands in the target's root ({when} the scan): {why}. \
                 Its commands landed elsewhere — most likely directly in the debug container, so it would \
                 audit the debug image, not the target. dscan needs the published train-k8s-container \
                 transport, which runs every command as `/bin/sh -c CMD` (see the README's runner notes); \
                 no results from this run are used"
            ))
        })
    }
}

/// Reads a results file the scanner wrote, refusing one over `max` bytes.
fn read_results(results: &Path, max: usize) -> Result<Vec<u8>, ClusterError> {
    let meta = std::fs::metadata(results).map_err(|e| {
        ScanError::results(
            None,
            format!("the scanner wrote no results to {}: {e}", results.display()),
        )
    })?;
    if meta.len() > max as u64 {
        return Err(ScanError::results(
            Some(meta.len()),
            format!(
                "the results are {} bytes, over the {}-byte cap (--max-results-mib)",
                meta.len(),
                max
            ),
        ));
    }
    let bytes = std::fs::read(results).map_err(|source| ClusterError::Io {
        what: "read results",
        path: results.display().to_string(),
        source,
    })?;
    Ok(bytes)
}

/// Runs the profile; returns the HDF bytes and the scanner's exit code.
///
/// Before and after the profile, a canary profile proves that commands the
/// transport runs reach the target's root (`root` is its `device:inode` as
/// the root check read it); otherwise the scan fails, whatever the profile's
/// results say.
pub async fn run(
    id: &ScanIdentity,
    dc: &crate::cluster::debug::DebugHandle,
    settings: &ScanSettings,
    root: &str,
) -> Result<(Vec<u8>, i32), ClusterError> {
    let debug_container = dc.name.as_str();
    let profile = settings.profile.as_ref().ok_or_else(|| {
        ScanError::runner(
            "local",
            "the local runner needs --profile (a CINC/InSpec profile directory or archive)".into(),
        )
    })?;
    if root.is_empty() || !root.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return Err(ScanError::runner(
            "local",
            format!(
                "the root check returned {root:?} as the target root's identity; cannot build the transport canary"
            ),
        ));
    }
    let scanner = find_scanner(settings.scanner.as_deref())?;
    let out_dir = tempfile::Builder::new()
        .prefix("dscan-results-")
        .tempdir()
        .map_err(|source| ClusterError::Io {
            what: "create a results directory",
            path: "tmp".into(),
            source,
        })?;
    let canary = canary_profile(out_dir.path(), root)?;
    let run = Invocation {
        scanner: &scanner,
        id,
        debug_container,
        settings,
        out_dir: out_dir.path(),
    };
    run.check_canary(&canary, "before").await?;
    let outcome = run.exec(profile).await?;
    run.check_canary(&canary, "after").await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdf(results: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"profiles": [{"controls": [
            {"id": "dscan-canary", "results": results}]}]}))
        .unwrap_or_default()
    }

    #[test]
    fn only_a_passed_canary_passes() {
        assert!(canary_passed(&hdf(serde_json::json!([{"status": "passed"}]))).is_ok());
        let failed = canary_passed(&hdf(serde_json::json!([{"status": "failed",
            "code_desc": "Command: `stat` stdout.strip is expected to eq \"1:2\"",
            "message": "expected: \"1:2\"\n     got: \"3:4\""}])));
        assert!(
            failed.as_ref().is_err_and(|e| e.contains("got: \"3:4\"")),
            "{failed:?}"
        );
        assert!(canary_passed(&hdf(serde_json::json!([]))).is_err());
        assert!(canary_passed(&hdf(serde_json::json!([{"status": "skipped"}]))).is_err());
        assert!(canary_passed(b"{}").is_err());
        assert!(canary_passed(b"not json").is_err());
    }

    #[test]
    fn the_canary_profile_names_the_roots_identity() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = canary_profile(dir.path(), "2049:1234").unwrap_or_else(|e| panic!("{e}"));
        let rb = std::fs::read_to_string(p.join("controls/canary.rb")).unwrap_or_default();
        assert!(rb.contains("command('stat -L -c %d:%i /')"), "{rb}");
        assert!(rb.contains("should eq '2049:1234'"), "{rb}");
    }
}
