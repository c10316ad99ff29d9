//! The distroless probe: can a shell start in the target container? The
//! outcome is classified so that an RBAC denial or a stopped container is
//! never mistaken for "no shell".

use std::time::Duration;

use serde::Serialize;

use super::{ClusterError, debug};

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
    for shell in SHELLS {
        match try_shell(client, namespace, pod, container, shell).await {
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

async fn try_shell(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    shell: &str,
) -> Attempt {
    let limit = Duration::from_secs(20);
    match debug::exec(
        client,
        namespace,
        pod,
        container,
        &[shell, "-c", "true"],
        limit,
        64 * 1024,
    )
    .await
    {
        // Any exit code means a shell ran.
        Ok(out) if out.code.is_some() => Attempt::Ran,
        Ok(out) if out.message.is_empty() => Attempt::Final(ShellProbe::Inconclusive(
            "the exec stream ended without a status".into(),
        )),
        Ok(out) => classify_failure(&out.message),
        Err(ClusterError::Api {
            code: Some(403),
            message,
            ..
        }) => Attempt::Final(ShellProbe::ExecForbidden(message)),
        Err(ClusterError::Api {
            code: Some(_),
            message,
            ..
        }) => classify_failure(&message),
        Err(e) => Attempt::Final(ShellProbe::Inconclusive(e.to_string())),
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
