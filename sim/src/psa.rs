//! Pod Security Admission: the namespace's `pod-security.kubernetes.io/enforce`
//! level applied to the whole pod (containers, init and ephemeral containers),
//! with the check names and texts of the upstream policy (the subset that
//! matters for debug containers; see the crate README for what is left out).

use serde_json::Value;

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Anything goes.
    Privileged,
    /// Known privilege escalations are blocked.
    Baseline,
    /// Hardened.
    Restricted,
}

impl Level {
    /// Parses an `enforce` label as the admission plugin does: a valid
    /// value is that level; an unset label means the cluster's default
    /// (`default`, from its admission configuration); an invalid value is an
    /// error there, and the plugin then enforces `restricted`.
    pub fn parse(label: Option<&str>, default: Level) -> Level {
        match label {
            None => default,
            Some("privileged") => Level::Privileged,
            Some("baseline") => Level::Baseline,
            Some(_) => Level::Restricted,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// The level a namespace object enforces (`default`: the cluster-wide
/// default for unlabelled namespaces).
pub fn namespace_level(namespace: &Value, default: Level) -> Level {
    Level::parse(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"].as_str(),
        default,
    )
}

const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

struct Container<'a> {
    name: &'a str,
    sc: &'a Value,
}

fn containers(spec: &Value) -> Vec<Container<'_>> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec[*k].as_array())
        .flatten()
        .map(|c| Container {
            name: c["name"].as_str().unwrap_or_default(),
            sc: &c["securityContext"],
        })
        .collect()
}

fn quoted(names: &[&str]) -> String {
    let list = names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() == 1 {
        format!("container {list}")
    } else {
        format!("containers {list}")
    }
}

/// Evaluates the pod spec; returns the violations (empty when allowed), each as
/// `check (detail)` the way PSA words them.
pub fn evaluate(level: Level, spec: &Value) -> Vec<String> {
    if level == Level::Privileged {
        return vec![];
    }
    let mut out = vec![];
    let all = containers(spec);
    let pod_sc = &spec["securityContext"];

    // baseline
    let host: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|k| spec[**k].as_bool() == Some(true))
        .map(|k| format!("{k}=true"))
        .collect();
    if !host.is_empty() {
        out.push(format!("host namespaces ({})", host.join(", ")));
    }
    let privileged: Vec<&str> = all
        .iter()
        .filter(|c| c.sc["privileged"].as_bool() == Some(true))
        .map(|c| c.name)
        .collect();
    if !privileged.is_empty() {
        out.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            quoted(&privileged)
        ));
    }
    let mut bad_caps = vec![];
    for c in &all {
        let added: Vec<String> = c.sc["capabilities"]["add"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let extra: Vec<String> = added
            .into_iter()
            .filter(|a| !BASELINE_CAPS.contains(&a.as_str()))
            .collect();
        if !extra.is_empty() {
            let list = extra
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            bad_caps.push(format!(
                "container {:?} must not include {list} in securityContext.capabilities.add",
                c.name
            ));
        }
    }
    if !bad_caps.is_empty() {
        out.push(format!(
            "non-default capabilities ({})",
            bad_caps.join("; ")
        ));
    }
    let host_path: Vec<&str> = spec["volumes"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|v| v.get("hostPath").is_some())
                .filter_map(|v| v["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if !host_path.is_empty() {
        let list = host_path
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let noun = if host_path.len() == 1 {
            "volume"
        } else {
            "volumes"
        };
        out.push(format!("hostPath volumes ({noun} {list})"));
    }
    let unconfined = |sc: &Value| sc["seccompProfile"]["type"].as_str() == Some("Unconfined");
    if unconfined(pod_sc) || all.iter().any(|c| unconfined(c.sc)) {
        out.push("seccompProfile (pod or containers must not set securityContext.seccompProfile.type to \"Unconfined\")".into());
    }
    if level == Level::Baseline {
        return out;
    }

    // restricted
    let escalation: Vec<&str> = all
        .iter()
        .filter(|c| c.sc["allowPrivilegeEscalation"].as_bool() != Some(false))
        .map(|c| c.name)
        .collect();
    if !escalation.is_empty() {
        out.push(format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            quoted(&escalation)
        ));
    }
    let mut caps = vec![];
    let no_drop_all: Vec<&str> = all
        .iter()
        .filter(|c| {
            !c.sc["capabilities"]["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")))
        })
        .map(|c| c.name)
        .collect();
    if !no_drop_all.is_empty() {
        caps.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            quoted(&no_drop_all)
        ));
    }
    for c in &all {
        let added: Vec<String> = c.sc["capabilities"]["add"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .filter(|a| a != "NET_BIND_SERVICE")
                    .collect()
            })
            .unwrap_or_default();
        if !added.is_empty() {
            let list = added
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            caps.push(format!(
                "container {:?} must not include {list} in securityContext.capabilities.add",
                c.name
            ));
        }
    }
    if !caps.is_empty() {
        out.push(format!("unrestricted capabilities ({})", caps.join("; ")));
    }
    let pod_non_root = pod_sc["runAsNonRoot"].as_bool();
    let not_non_root: Vec<&str> = all
        .iter()
        .filter(|c| match c.sc["runAsNonRoot"].as_bool() {
            Some(v) => !v,
            None => pod_non_root != Some(true),
        })
        .map(|c| c.name)
        .collect();
    if pod_non_root == Some(false) || !not_non_root.is_empty() {
        let who = if not_non_root.is_empty() {
            "pod".to_string()
        } else {
            format!("pod or {}", quoted(&not_non_root))
        };
        out.push(format!(
            "runAsNonRoot != true ({who} must set securityContext.runAsNonRoot=true)"
        ));
    }
    let root_user: Vec<&str> = all
        .iter()
        .filter(|c| c.sc["runAsUser"].as_i64() == Some(0))
        .map(|c| c.name)
        .collect();
    if pod_sc["runAsUser"].as_i64() == Some(0) || !root_user.is_empty() {
        let who = if root_user.is_empty() {
            "pod".to_string()
        } else {
            quoted(&root_user)
        };
        out.push(format!("runAsUser=0 ({who} must not set runAsUser=0)"));
    }
    let good_seccomp = |sc: &Value| {
        matches!(
            sc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let pod_seccomp = good_seccomp(pod_sc);
    let no_seccomp: Vec<&str> = all
        .iter()
        .filter(|c| {
            if c.sc["seccompProfile"]["type"].is_string() {
                !good_seccomp(c.sc)
            } else {
                !pod_seccomp
            }
        })
        .map(|c| c.name)
        .collect();
    if !no_seccomp.is_empty() {
        out.push(format!(
            "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            quoted(&no_seccomp)
        ));
    }
    out
}

/// The 403 message PSA writes: `violates PodSecurity "baseline:latest": …`.
pub fn violation_message(level: Level, violations: &[String]) -> String {
    format!(
        "violates PodSecurity \"{}:latest\": {}",
        level.as_str(),
        violations.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_with(debug: Value) -> Value {
        json!({"containers": [{"name": "app", "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}}],
            "ephemeralContainers": [debug]})
    }

    #[test]
    fn baseline_refuses_privileged_and_ptrace_but_admits_chroot() {
        let privileged = spec_with(json!({"name": "dbg", "securityContext": {"privileged": true}}));
        assert_eq!(
            evaluate(Level::Baseline, &privileged),
            vec!["privileged (container \"dbg\" must not set securityContext.privileged=true)"]
        );
        let ptrace = spec_with(
            json!({"name": "dbg", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}),
        );
        assert_eq!(
            evaluate(Level::Baseline, &ptrace),
            vec![
                "non-default capabilities (container \"dbg\" must not include \"SYS_PTRACE\" in securityContext.capabilities.add)"
            ]
        );
        let chroot = spec_with(
            json!({"name": "dbg", "securityContext": {"capabilities": {"add": ["SYS_CHROOT"]}}}),
        );
        assert!(evaluate(Level::Baseline, &chroot).is_empty());
        assert!(evaluate(Level::Privileged, &privileged).is_empty());
    }

    #[test]
    fn restricted_refuses_a_root_debug_container() {
        let root = spec_with(json!({"name": "dbg", "securityContext": {"runAsUser": 0}}));
        let v = evaluate(Level::Restricted, &root);
        assert!(
            v.iter()
                .any(|m| m.starts_with("runAsNonRoot != true (pod or container \"dbg\"")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|m| m == "runAsUser=0 (container \"dbg\" must not set runAsUser=0)"),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|m| m.starts_with("allowPrivilegeEscalation != false")),
            "{v:?}"
        );
        let compliant = spec_with(
            json!({"name": "dbg", "securityContext": {"runAsNonRoot": true,
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}),
        );
        assert!(
            evaluate(Level::Restricted, &compliant).is_empty(),
            "{:?}",
            evaluate(Level::Restricted, &compliant)
        );
    }

    #[test]
    fn capability_names_are_compared_exactly_as_admission_does() {
        for spelled in ["CAP_SYS_CHROOT", "sys_chroot"] {
            let spec = spec_with(
                json!({"name": "dbg", "securityContext": {"capabilities": {"add": [spelled]}}}),
            );
            assert_eq!(
                evaluate(Level::Baseline, &spec),
                vec![format!(
                    "non-default capabilities (container \"dbg\" must not include {spelled:?} in securityContext.capabilities.add)"
                )]
            );
        }
        // restricted: only the exact "ALL" counts as dropping everything.
        let lower = spec_with(
            json!({"name": "dbg", "securityContext": {"runAsNonRoot": true,
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["all"]}, "seccompProfile": {"type": "RuntimeDefault"}}}),
        );
        assert!(
            evaluate(Level::Restricted, &lower)
                .iter()
                .any(|m| m.starts_with("unrestricted capabilities")),
            "{:?}",
            evaluate(Level::Restricted, &lower)
        );
    }

    #[test]
    fn an_invalid_label_enforces_restricted_and_no_label_the_default() {
        assert_eq!(
            Level::parse(Some("Baseline"), Level::Privileged),
            Level::Restricted
        );
        assert_eq!(
            Level::parse(Some("strict"), Level::Privileged),
            Level::Restricted
        );
        assert_eq!(
            Level::parse(Some("baseline"), Level::Privileged),
            Level::Baseline
        );
        assert_eq!(Level::parse(None, Level::Baseline), Level::Baseline);
        assert_eq!(Level::parse(None, Level::Privileged), Level::Privileged);
    }
}
