//! The stand-in runner: dscan's own small container-baseline checks, for
//! demos and for clusters where no CINC Auditor is available. It is **not**
//! CINC/InSpec and says so in its results (profile `dscan-standin-baseline`).
//! Every check is a command run as `/bin/sh -c CMD` in the debug container —
//! exactly how `train-k8s-container` runs commands — so with the chroot
//! wrapper each one reads the *target's* real files with busybox's applets.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{ClusterError, ScanIdentity, debug};
use crate::scan_error::ScanError;

/// The profile name the stand-in reports under.
pub const PROFILE: &str = "dscan-standin-baseline";

/// `(passed, code_desc, message)`.
type Judged = (bool, String, Option<String>);

struct Check {
    id: &'static str,
    title: &'static str,
    impact: f64,
    nist: &'static [&'static str],
    command: &'static str,
    /// `(passed, code_desc, message)` from stdout and exit code.
    judge: fn(&str, Option<i32>) -> Judged,
}

/// Passes when the command listed nothing.
fn listed_none(what: &str, out: &str) -> Judged {
    let found: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    let desc = format!("{what} is expected to be empty");
    if found.is_empty() {
        (true, desc, None)
    } else {
        (false, desc, Some(format!("found: {}", found.join(", "))))
    }
}

const CHECKS: &[Check] = &[
    Check {
        id: "SB-01",
        title: "No shell is present in the image",
        impact: 0.7,
        nist: &["CM-7", "CM-7 (1)"],
        command: "for s in /bin/sh /bin/bash /bin/dash /bin/ash /usr/bin/sh /usr/bin/bash /busybox/sh; do [ -e \"$s\" ] && echo \"$s\"; done; true",
        judge: |out, _| listed_none("the list of shells present", out),
    },
    Check {
        id: "SB-02",
        title: "No package manager is present in the image",
        impact: 0.5,
        nist: &["CM-7", "CM-11"],
        command: "for p in /usr/bin/apt /usr/bin/apt-get /usr/bin/dpkg /sbin/apk /usr/bin/yum /usr/bin/dnf /usr/bin/microdnf /usr/bin/rpm; do [ -e \"$p\" ] && echo \"$p\"; done; true",
        judge: |out, _| listed_none("the list of package managers present", out),
    },
    Check {
        id: "SB-03",
        title: "/etc/passwd is mode 0644 and owned by root:root",
        impact: 0.5,
        nist: &["AC-3", "AC-6"],
        command: "stat -c '%a %U %G' /etc/passwd",
        judge: |out, code| owned(out, code, "/etc/passwd"),
    },
    Check {
        id: "SB-04",
        title: "/etc/group is mode 0644 and owned by root:root",
        impact: 0.5,
        nist: &["AC-3", "AC-6"],
        command: "stat -c '%a %U %G' /etc/group",
        judge: |out, code| owned(out, code, "/etc/group"),
    },
    Check {
        id: "SB-05",
        title: "Only root has UID 0",
        impact: 0.7,
        nist: &["AC-6 (2)", "IA-2"],
        command: "awk -F: '$3 == 0 { print $1 }' /etc/passwd",
        judge: |out, code| {
            let users: Vec<&str> = out
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let desc = "users with UID 0 are expected to be [\"root\"]".to_string();
            if code == Some(0) && users == ["root"] {
                (true, desc, None)
            } else {
                (false, desc, Some(format!("UID 0 users: {users:?}")))
            }
        },
    },
    Check {
        id: "SB-06",
        title: "No world-writable files outside temporary directories",
        impact: 0.5,
        nist: &["AC-3", "CM-6"],
        command: "find / -xdev -type f -perm -0002 ! -path '/tmp/*' ! -path '/var/tmp/*' 2>/dev/null | head -n 20",
        judge: |out, _| listed_none("the list of world-writable files", out),
    },
    Check {
        id: "SB-07",
        title: "No setuid or setgid executables",
        impact: 0.7,
        nist: &["AC-6 (1)", "CM-7"],
        command: "find / -xdev -type f \\( -perm -4000 -o -perm -2000 \\) 2>/dev/null | head -n 20",
        judge: |out, _| listed_none("the list of setuid/setgid files", out),
    },
    Check {
        id: "SB-08",
        title: "The operating system is identified in /etc/os-release",
        impact: 0.3,
        nist: &["CM-8"],
        command: "cat /etc/os-release",
        judge: |out, code| {
            let id = out
                .lines()
                .find_map(|l| l.strip_prefix("ID="))
                .map(|v| v.trim_matches('"').to_string());
            let desc = "/etc/os-release is expected to name the distribution (ID=)".to_string();
            match (code, id) {
                (Some(0), Some(id)) => (true, desc, Some(format!("ID={id}"))),
                _ => (
                    false,
                    desc,
                    Some("no /etc/os-release or no ID= line".into()),
                ),
            }
        },
    },
    Check {
        id: "SB-09",
        title: "A package inventory is present (SBOM source)",
        impact: 0.3,
        nist: &["CM-8", "SA-22"],
        command: "ls /var/lib/dpkg/status.d 2>/dev/null | wc -l; [ -s /var/lib/dpkg/status ] && echo status; true",
        judge: |out, _| {
            let entries: usize = out
                .lines()
                .next()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0);
            let status = out.contains("status");
            let desc = "a dpkg inventory (/var/lib/dpkg/status.d or status) is expected to exist"
                .to_string();
            if entries > 0 || status {
                (true, desc, Some(format!("{entries} status.d entries")))
            } else {
                (false, desc, Some("no package inventory found".into()))
            }
        },
    },
];

fn owned(out: &str, code: Option<i32>, path: &str) -> Judged {
    let desc = format!("{path} is expected to have mode 644, owner root, group root");
    let got = out.trim();
    if code == Some(0) && got == "644 root root" {
        (true, desc, None)
    } else if code == Some(0) {
        (false, desc, Some(format!("mode/owner/group: {got}")))
    } else {
        (false, desc, Some(format!("{path} could not be read")))
    }
}

/// Runs the checks through the debug container and returns HDF JSON.
pub async fn run(
    id: &ScanIdentity,
    dc: &debug::DebugHandle,
    max_bytes: usize,
) -> Result<Vec<u8>, ClusterError> {
    let started = Instant::now();
    let start_time = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut controls = vec![];
    let mut platform = json!({"name": "unknown", "release": "unknown"});
    for check in CHECKS {
        let t = Instant::now();
        let out = dc
            .exec(
                &id.client,
                &["/bin/sh", "-c", check.command],
                Duration::from_secs(60),
                1 << 20,
            )
            .await?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if check.id == "SB-08" {
            let field = |k: &str| {
                stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim_matches('"').to_string())
            };
            platform = json!({"name": field("ID=").unwrap_or_else(|| "unknown".into()),
                "release": field("VERSION_ID=").unwrap_or_else(|| "unknown".into())});
        }
        let mut result = json!({"run_time": t.elapsed().as_secs_f64(), "start_time": start_time});
        if out.code.is_none() {
            result["status"] = json!("error");
            result["code_desc"] = json!(format!("command `{}`", check.command));
            result["message"] = json!(out.message);
            result["backtrace"] = json!([out.message]);
        } else {
            let (passed, desc, message) = (check.judge)(&stdout, out.code);
            result["status"] = json!(if passed { "passed" } else { "failed" });
            result["code_desc"] = json!(desc);
            if let Some(m) = message {
                result["message"] = json!(m);
            }
        }
        let severity = if check.impact >= 0.7 {
            "high"
        } else if check.impact >= 0.4 {
            "medium"
        } else {
            "low"
        };
        controls.push(json!({
            "id": check.id,
            "title": check.title,
            "desc": check.title,
            "descriptions": [{"label": "default", "data": check.title}, {"label": "check", "data": format!("Run `{}` in the target's root.", check.command)}],
            "impact": check.impact,
            "refs": [],
            "tags": {"nist": check.nist, "severity": severity},
            "code": format!("# dscan stand-in check\n{}", check.command),
            "source_location": {"ref": "dscan/host/src/scan/standin.rs", "line": 0},
            "results": [result],
        }));
    }
    let target_id = format!(
        "{}/{}/{}",
        id.target.namespace, id.target.pod, id.target.container
    );
    platform["target_id"] = json!(target_id);
    let hdf = json!({
        "platform": platform,
        "profiles": [{
            "name": PROFILE,
            "version": env!("CARGO_PKG_VERSION"),
            "title": "dscan stand-in container baseline (not a CINC/InSpec profile)",
            "maintainer": "dscan",
            "summary": "A few container-baseline checks run by dscan itself through the debug container, for demos and clusters without CINC Auditor.",
            "license": "Apache-2.0",
            "sha256": "",
            "status": "loaded",
            "supports": [],
            "attributes": [],
            "groups": [{"id": "standin", "title": "stand-in checks", "controls": CHECKS.iter().map(|c| c.id).collect::<Vec<_>>()}],
            "depends": [],
            "controls": controls,
        }],
        "statistics": {"duration": started.elapsed().as_secs_f64()},
        "version": format!("dscan-standin {}", env!("CARGO_PKG_VERSION")),
    });
    let bytes =
        serde_json::to_vec_pretty(&hdf).map_err(|e| ClusterError::Internal(e.to_string()))?;
    if bytes.len() > max_bytes {
        return Err(ScanError::results(
            Some(bytes.len() as u64),
            format!(
                "the stand-in results ({} bytes) exceed the {max_bytes}-byte cap",
                bytes.len()
            ),
        ));
    }
    let _: Value =
        serde_json::from_slice(&bytes).map_err(|e| ClusterError::Internal(e.to_string()))?;
    Ok(bytes)
}
