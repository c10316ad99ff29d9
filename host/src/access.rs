//! Access strategies, host side: the facts dscan gathers about a target, the
//! plans strategy plugins return, and the policy every plan must pass before
//! the host executes it.

use serde::Serialize;

/// Pod Security level of the target's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PsaLevel {
    /// No restrictions.
    Privileged,
    /// Known escalations blocked.
    Baseline,
    /// Hardened.
    Restricted,
    /// Not known: the namespace has no `enforce` label (a cluster-wide
    /// default from the admission configuration may apply) or could not be
    /// read. Strategies are asked as for `privileged`, least privileged
    /// first, and a plan the server refuses for Pod Security passes the turn
    /// to the next strategy.
    Unknown,
}

impl PsaLevel {
    /// From the namespace's `enforce` label, as the admission plugin reads
    /// it: an invalid value is enforced as `restricted` (`ParseLevel` fails
    /// and the plugin falls back to the strictest level); no label is
    /// [`PsaLevel::Unknown`].
    pub fn parse(label: Option<&str>) -> Self {
        match label {
            None => PsaLevel::Unknown,
            Some("privileged") => PsaLevel::Privileged,
            Some("baseline") => PsaLevel::Baseline,
            Some(_) => PsaLevel::Restricted,
        }
    }
}

/// What strategies decide from.
#[derive(Debug, Clone, Serialize)]
pub struct TargetFacts {
    /// `v1.35.0`.
    pub server_version: String,
    /// Whether `pods/ephemeralcontainers` is served.
    pub ephemeral_containers: bool,
    /// Namespace PSA level.
    pub psa_level: PsaLevel,
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Container.
    pub container: String,
    /// `containerd://…` of the target.
    pub container_id: Option<String>,
    /// Effective runAsUser (container, else pod).
    pub run_as_user: Option<i64>,
    /// Effective runAsGroup.
    pub run_as_group: Option<i64>,
    /// Effective runAsNonRoot.
    pub run_as_non_root: Option<bool>,
    /// Privileged target.
    pub privileged: bool,
    /// Capabilities added to the target.
    pub capabilities_add: Vec<String>,
    /// Capabilities dropped from the target.
    pub capabilities_drop: Vec<String>,
    /// readOnlyRootFilesystem.
    pub read_only_root_filesystem: bool,
    /// Pod `shareProcessNamespace`.
    pub share_process_namespace: bool,
    /// Node name.
    pub node: Option<String>,
    /// The runner asked for.
    pub runner: String,
    /// `--allow-privileged`.
    pub allow_privileged: bool,
    /// Options for the strategy (`image`, `dead-man-seconds`, `--strategy-opt`…).
    pub options: Vec<(String, String)>,
}

/// Security context of the debug container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Security {
    /// runAsUser.
    pub run_as_user: Option<i64>,
    /// runAsGroup.
    pub run_as_group: Option<i64>,
    /// runAsNonRoot.
    pub run_as_non_root: Option<bool>,
    /// privileged.
    pub privileged: bool,
    /// allowPrivilegeEscalation.
    pub allow_privilege_escalation: bool,
    /// Capabilities to add.
    pub capabilities_add: Vec<String>,
    /// Capabilities to drop.
    pub capabilities_drop: Vec<String>,
    /// seccompProfile RuntimeDefault.
    pub seccomp_runtime_default: bool,
}

/// The debug container a plan adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DebugContainer {
    /// Image.
    pub image: String,
    /// Command (finite: it ends by itself).
    pub command: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Security context.
    pub security: Security,
    /// Seconds after which it exits by itself.
    pub dead_man_seconds: u32,
}

/// How the target's root is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootLocator {
    /// PID 1.
    PidOne,
    /// By container ID in `/proc/*/cgroup`.
    ContainerId(String),
}

/// How the runner reaches files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessMode {
    /// Commands run chrooted into the target root.
    ChrootWrapper,
    /// A private overlay view with the scanner grafted in.
    Graft,
    /// Files read through `/proc/<pid>/root` paths.
    PathPrefix,
}

/// One RBAC rule on the target pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RbacRule {
    /// `pods`, `pods/exec`…
    pub resource: String,
    /// Verbs.
    pub verbs: Vec<String>,
}

/// A strategy's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessPlan {
    /// The debug container.
    pub debug_container: DebugContainer,
    /// How to find the target root.
    pub locate: RootLocator,
    /// Access mode.
    pub mode: AccessMode,
    /// RBAC the plan needs.
    pub rbac: Vec<RbacRule>,
    /// Why, for the user.
    pub notes: Vec<String>,
}

/// A strategy's answer (the plan is boxed: it is much larger than a reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Decision {
    /// It can work.
    Plan(Box<AccessPlan>),
    /// It cannot, and why.
    Decline(String),
}

/// What the temporary Role grants on the target pod (DESIGN §5).
pub const ROLE_GRANTS: &[(&str, &[&str])] = &[
    ("pods", &["get", "watch"]),
    ("pods/ephemeralcontainers", &["get", "patch"]),
    ("pods/exec", &["create", "get"]),
];

/// Checks a plan against dscan's policy; returns why it is refused.
pub fn validate(plan: &AccessPlan, allow_privileged: bool) -> Result<(), String> {
    let dc = &plan.debug_container;
    if dc.security.privileged && !allow_privileged {
        return Err(
            "the plan asks for a privileged debug container; pass --allow-privileged to permit it"
                .into(),
        );
    }
    if dc.security.allow_privilege_escalation && !allow_privileged {
        return Err(
            "the plan allows privilege escalation; pass --allow-privileged to permit it".into(),
        );
    }
    let sys_admin = dc.security.capabilities_add.iter().any(|c| {
        matches!(
            c.trim_start_matches("CAP_").to_ascii_uppercase().as_str(),
            "SYS_ADMIN" | "SYS_PTRACE" | "ALL"
        )
    });
    if sys_admin && !allow_privileged {
        return Err("the plan adds SYS_ADMIN/SYS_PTRACE/ALL capabilities; pass --allow-privileged to permit it".into());
    }
    if dc.image.trim().is_empty() || dc.command.is_empty() {
        return Err("the plan has no debug image or no command".into());
    }
    if dc.dead_man_seconds == 0 || dc.dead_man_seconds > 24 * 3600 {
        return Err(format!(
            "the debug container's dead-man timer is {} s; it must be between 1 s and 24 h (the container can never be removed, only exit)",
            dc.dead_man_seconds
        ));
    }
    for rule in &plan.rbac {
        let granted = ROLE_GRANTS.iter().find(|(r, _)| *r == rule.resource);
        let ok = granted
            .is_some_and(|(_, verbs)| rule.verbs.iter().all(|v| verbs.contains(&v.as_str())));
        if !ok {
            return Err(format!(
                "the plan needs {:?} on {}, which the temporary Role does not grant",
                rule.verbs, rule.resource
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> AccessPlan {
        AccessPlan {
            debug_container: DebugContainer {
                image: "busybox@sha256:1".into(),
                command: vec!["sleep".into(), "1".into()],
                env: vec![],
                security: Security {
                    run_as_user: Some(0),
                    run_as_group: Some(0),
                    run_as_non_root: Some(false),
                    privileged: false,
                    allow_privilege_escalation: false,
                    capabilities_add: vec!["SYS_CHROOT".into()],
                    capabilities_drop: vec![],
                    seccomp_runtime_default: true,
                },
                dead_man_seconds: 600,
            },
            locate: RootLocator::PidOne,
            mode: AccessMode::ChrootWrapper,
            rbac: vec![RbacRule {
                resource: "pods/exec".into(),
                verbs: vec!["create".into()],
            }],
            notes: vec![],
        }
    }

    #[test]
    fn policy_refuses_privilege_unless_allowed_and_rbac_beyond_the_role() {
        assert!(validate(&plan(), false).is_ok());
        let mut p = plan();
        p.debug_container.security.privileged = true;
        assert!(
            validate(&p, false)
                .unwrap_err()
                .contains("--allow-privileged")
        );
        assert!(validate(&p, true).is_ok());
        let mut p = plan();
        p.rbac.push(RbacRule {
            resource: "secrets".into(),
            verbs: vec!["get".into()],
        });
        assert!(validate(&p, true).unwrap_err().contains("does not grant"));
        let mut p = plan();
        p.debug_container.dead_man_seconds = 0;
        assert!(validate(&p, false).is_err());
    }
}
