//! The distroless probe: can a shell start in the target container? The
//! outcome is classified so that an RBAC denial or a stopped container is
//! never mistaken for "no shell".

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::AttachParams;
use serde::Serialize;
use tokio::io::AsyncReadExt;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum ShellProbe {
    /// A shell ran (the path that worked): not distroless.
    ShellPresent(String),
    /// No shell could be started: distroless.
    NoShell,
    /// The caller may not exec into the pod.
    ExecForbidden(String),
    /// The container is not running (or gone).
    NotRunning(String),
    /// Something else; the message says what.
    Inconclusive(String),
}

impl ShellProbe {
    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            ShellProbe::ShellPresent(sh) => {
                format!("has a shell ({sh}): not distroless; scanning it the same way")
            }
            ShellProbe::NoShell => "no shell: distroless".into(),
            ShellProbe::ExecForbidden(m) => format!("could not probe: exec is forbidden ({m})"),
            ShellProbe::NotRunning(m) => {
                format!("could not probe: the container is not running ({m})")
            }
            ShellProbe::Inconclusive(m) => format!("could not tell whether it has a shell: {m}"),
        }
    }
}

const SHELLS: [&str; 3] = ["sh", "/bin/sh", "/busybox/sh"];

/// Tries `sh -c true` (and the usual paths) in the container.
pub async fn probe(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
) -> ShellProbe {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for shell in SHELLS {
        match try_shell(&api, pod, container, shell).await {
            Attempt::Ran => return ShellProbe::ShellPresent(shell.to_string()),
            Attempt::Missing => continue,
            Attempt::Final(verdict) => return verdict,
        }
    }
    ShellProbe::NoShell
}

enum Attempt {
    Ran,
    Missing,
    Final(ShellProbe),
}

fn classify_failure(message: &str) -> Attempt {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        Attempt::Missing
    } else if m.contains("container not found")
        || m.contains("not running")
        || m.contains("completed pod")
    {
        Attempt::Final(ShellProbe::NotRunning(message.to_string()))
    } else {
        Attempt::Final(ShellProbe::Inconclusive(message.to_string()))
    }
}

async fn try_shell(api: &Api<Pod>, pod: &str, container: &str, shell: &str) -> Attempt {
    let params = AttachParams::default()
        .container(container)
        .stdout(true)
        .stderr(true);
    let started = tokio::time::timeout(
        Duration::from_secs(20),
        api.exec(pod, [shell, "-c", "true"], &params),
    )
    .await;
    let mut attached = match started {
        Err(_) => {
            return Attempt::Final(ShellProbe::Inconclusive(
                "exec did not start within 20 s".into(),
            ));
        }
        Ok(Err(kube::Error::Api(s))) if s.code == 403 => {
            return Attempt::Final(ShellProbe::ExecForbidden(s.message));
        }
        Ok(Err(kube::Error::Api(s))) => return classify_failure(&s.message),
        Ok(Err(e)) => return Attempt::Final(ShellProbe::Inconclusive(e.to_string())),
        Ok(Ok(a)) => a,
    };
    let (mut out, mut err) = (attached.stdout(), attached.stderr());
    let status = attached.take_status();
    let drain = async {
        let mut sink = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut sink).await;
        }
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut sink).await;
        }
    };
    let status = async {
        match status {
            Some(s) => s.await,
            None => None,
        }
    };
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(drain, status).1
    })
    .await;
    match waited {
        Err(_) => Attempt::Final(ShellProbe::Inconclusive(
            "the probe did not finish within 20 s".into(),
        )),
        Ok(None) => Attempt::Final(ShellProbe::Inconclusive(
            "the exec stream ended without a status".into(),
        )),
        Ok(Some(s)) if s.status.as_deref() == Some("Success") => Attempt::Ran,
        Ok(Some(s)) if s.reason.as_deref() == Some("NonZeroExitCode") => Attempt::Ran,
        Ok(Some(s)) => classify_failure(s.message.as_deref().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_by_the_runtime_message() {
        assert!(matches!(
            classify_failure(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"sh\": executable file not found in $PATH: unknown"
            ),
            Attempt::Missing
        ));
        assert!(matches!(
            classify_failure("unable to upgrade connection: container not found (\"app\")"),
            Attempt::Final(ShellProbe::NotRunning(_))
        ));
        assert!(matches!(
            classify_failure("etcd is down"),
            Attempt::Final(ShellProbe::Inconclusive(_))
        ));
    }
}
