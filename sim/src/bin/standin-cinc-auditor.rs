//! A stand-in for CINC Auditor with the `train-k8s-container` transport, for
//! tests of dscan's local runner (it is **not** InSpec and runs no profile
//! code). It accepts the command line dscan gives the real scanner,
//!
//! `standin-cinc-auditor exec PROFILE -t k8s-container://NS/POD/CONTAINER … --reporter json:PATH`,
//!
//! loads `$KUBECONFIG` as the transport does, runs each check as
//! `/bin/sh -c CMD` in that container over the exec API (what the transport
//! does for every InSpec resource), and writes HDF built from what came back.
//! Exit codes follow CINC: 0 all passed, 100 some failed, 1 an error.
//!
//! Besides its fixed checks it evaluates one profile shape, the one dscan's
//! transport canary uses: a control with `describe command('CMD')` and
//! `its('stdout.strip') { should eq 'VALUE' }`.
//!
//! `STANDIN_TRANSPORT=direct` makes it behave like a transport fork that,
//! finding no `/bin/bash`, runs each command *directly* in the container
//! (argv split on spaces, no shell): commands then run in the debug
//! container's own filesystem, not the target's.

use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::AttachParams;
use serde_json::json;
use tokio::io::AsyncReadExt;

struct Target {
    api: Api<Pod>,
    pod: String,
    container: String,
    /// Run commands without a shell (a transport fork's fallback).
    direct: bool,
}

impl Target {
    /// Runs `/bin/sh -c cmd` (or, direct, `cmd` split on spaces); returns
    /// stdout (errors if the command failed to run).
    async fn sh(&self, cmd: &str) -> anyhow::Result<String> {
        let params = AttachParams::default()
            .container(self.container.clone())
            .stdout(true)
            .stderr(true);
        let argv: Vec<String> = if self.direct {
            cmd.split_whitespace().map(String::from).collect()
        } else {
            vec!["/bin/sh".into(), "-c".into(), cmd.into()]
        };
        let mut attached = self
            .api
            .exec(&self.pod, argv, &params)
            .await
            .with_context(|| format!("exec `{cmd}`"))?;
        let mut out = String::new();
        if let Some(mut s) = attached.stdout() {
            s.read_to_string(&mut out).await?;
        }
        let status = match attached.take_status() {
            Some(s) => s.await,
            None => None,
        };
        match status {
            Some(s) if s.status.as_deref() == Some("Success") => Ok(out),
            Some(s) => Err(anyhow!("`{cmd}` failed: {}", s.message.unwrap_or_default())),
            None => Err(anyhow!("`{cmd}`: the exec stream ended without a status")),
        }
    }
}

fn control(id: &str, title: &str, passed: bool, desc: String) -> serde_json::Value {
    json!({
        "id": id, "title": title, "desc": title, "impact": 0.5, "refs": [],
        "tags": {"nist": ["CM-6"], "severity": "medium"}, "code": "",
        "source_location": {"ref": "standin-cinc-auditor", "line": 0},
        "results": [{"status": if passed { "passed" } else { "failed" }, "code_desc": desc,
            "run_time": 0.001, "start_time": "2026-01-01T00:00:00Z"}],
    })
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// `(control id, command, expected stdout)` of each command control in the
/// profile's `controls/*.rb` (the canary's shape).
fn command_controls(profile: &std::path::Path) -> Vec<(String, String, String)> {
    let mut out = vec![];
    let Ok(dir) = std::fs::read_dir(profile.join("controls")) else {
        return out;
    };
    for entry in dir.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for block in text.split("control '").skip(1) {
            let (Some(id), Some(cmd), Some(want)) = (
                block.split('\'').next(),
                between(block, "command('", "')"),
                between(block, "should eq '", "'"),
            ) else {
                continue;
            };
            out.push((id.to_string(), cmd.to_string(), want.to_string()));
        }
    }
    out
}

async fn run() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("exec") || args.len() < 2 {
        bail!(
            "usage: standin-cinc-auditor exec PROFILE -t k8s-container://NS/POD/CONTAINER --reporter json:PATH"
        );
    }
    let profile = std::path::Path::new(&args[1]);
    let target = args
        .iter()
        .position(|a| a == "-t")
        .and_then(|i| args.get(i + 1))
        .ok_or_else(|| anyhow!("no -t target"))?;
    let out = args
        .iter()
        .find_map(|a| a.strip_prefix("json:"))
        .ok_or_else(|| anyhow!("no --reporter json:PATH"))?;
    let parts: Vec<&str> = target
        .strip_prefix("k8s-container://")
        .ok_or_else(|| anyhow!("{target} is not a k8s-container:// target"))?
        .split('/')
        .collect();
    let [ns, pod, container] = parts.as_slice() else {
        bail!("{target} is not k8s-container://NS/POD/CONTAINER");
    };
    let yml = std::fs::read_to_string(profile.join("inspec.yml"))
        .with_context(|| format!("no profile at {}", profile.display()))?;
    let name = yml
        .lines()
        .find_map(|l| l.strip_prefix("name:"))
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|| "unnamed".into());

    // The transport reads KUBECONFIG, as kubectl does.
    let config = kube::Config::infer().await.context("load KUBECONFIG")?;
    let client = kube::Client::try_from(config)?;
    let t = Target {
        api: Api::namespaced(client, ns),
        pod: pod.to_string(),
        container: container.to_string(),
        direct: std::env::var("STANDIN_TRANSPORT").as_deref() == Ok("direct"),
    };
    let mut controls = vec![];
    let commands = command_controls(profile);
    for (id, cmd, want) in &commands {
        let got = t.sh(cmd).await.unwrap_or_default();
        let got = got.trim();
        let mut c = control(
            id,
            id,
            got == want,
            format!("Command: `{cmd}` stdout.strip is expected to eq {want:?}"),
        );
        if got != want {
            c["results"][0]["message"] = json!(format!(
                "\nexpected: {want:?}\n     got: {got:?}\n\n(compared using ==)\n"
            ));
        }
        controls.push(c);
    }
    if commands.is_empty() {
        controls.extend(fixed_checks(&t).await?);
    }
    let failed = controls
        .iter()
        .any(|c| c["results"][0]["status"] == "failed");
    let hdf = json!({
        "platform": {"name": "debian", "release": "12", "target_id": target},
        "profiles": [{"name": name, "version": "0.0.0",
            "title": format!("{name} (run by the stand-in cinc-auditor)"), "sha256": "",
            "status": "loaded", "supports": [], "attributes": [], "groups": [], "depends": [],
            "controls": controls}],
        "statistics": {"duration": 0.01},
        "version": "standin-cinc-auditor",
    });
    std::fs::write(out, serde_json::to_vec_pretty(&hdf)?)
        .with_context(|| format!("write {out}"))?;
    Ok(if failed {
        ExitCode::from(100)
    } else {
        ExitCode::SUCCESS
    })
}

/// The stand-in's own checks of what it sees at `/` through the transport.
async fn fixed_checks(t: &Target) -> anyhow::Result<Vec<serde_json::Value>> {
    let os_release = t.sh("cat /etc/os-release").await?;
    let pretty = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    let owner = t
        .sh("stat -c '%U:%G %a' /etc/passwd")
        .await?
        .trim()
        .to_string();
    let shell = t
        .sh("if [ -e /bin/sh ]; then echo present; else echo absent; fi")
        .await?
        .trim()
        .to_string();
    let listing = t
        .sh("ls /")
        .await?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(vec![
        control(
            "standin-os-release",
            "os-release is readable at /",
            !pretty.is_empty(),
            format!("PRETTY_NAME is {pretty}"),
        ),
        control(
            "standin-passwd-owner",
            "/etc/passwd is root:root 644",
            owner == "root:root 644",
            format!("/etc/passwd is {owner}"),
        ),
        control(
            "standin-no-shell",
            "no /bin/sh at /",
            shell == "absent",
            format!("/bin/sh is {shell}; / holds: {listing}"),
        ),
    ])
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("standin-cinc-auditor: {e:#}");
            ExitCode::from(1)
        }
    }
}
