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
    /// Why the ephemeral-container path was refused, when it was (told to
    /// strategies of contract 0.2.0, which may then plan a node pod).
    pub ephemeral_refused: Option<String>,
    /// The namespace a node-level pod would run in, when the user named one.
    pub node_debug_namespace: Option<String>,
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

impl AccessMode {
    /// The mode's name in plans and facts (`chroot-wrapper`…).
    pub fn name(self) -> &'static str {
        match self {
            AccessMode::ChrootWrapper => "chroot-wrapper",
            AccessMode::Graft => "graft",
            AccessMode::PathPrefix => "path-prefix",
        }
    }
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

/// A node-level plan (contract 0.2.0): a short-lived `hostPID` pod on the
/// target's node that finds the target's process by its container ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePlan {
    /// The pod's one container (image, command, security, dead-man timer).
    pub pod: DebugContainer,
    /// Access mode.
    pub mode: AccessMode,
    /// Why, for the user.
    pub notes: Vec<String>,
}

/// A strategy's answer (plans are boxed: they are much larger than a reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Decision {
    /// It can work, with a debug container in the target pod.
    Plan(Box<AccessPlan>),
    /// It can work from a pod on the target's node (contract 0.2.0).
    NodePlan(Box<NodePlan>),
    /// It cannot, and why.
    Decline(String),
}

/// The facts the host shares with the strategy plugins: the Role's grants
/// and the debug container's state files. One file, compiled by both.
#[path = "../../plugins/sdk/src/contract.rs"]
pub mod contract;

/// What the temporary Role grants on the target pod (DESIGN §5).
pub use contract::ROLE_GRANTS;

/// Capabilities a plan may add without `--allow-privileged`: exactly the
/// ones Pod Security `baseline` admits, spelled as admission compares them.
pub const UNPRIVILEGED_CAPABILITIES: &[&str] = &[
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

/// Environment variables a plan may not set: they steer the dynamic loader
/// of whatever runs in the debug container.
const LOADER_VARIABLES: &[&str] = &["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"];

/// Checks a node-level plan against dscan's policy: the same rules as a
/// debug container's (image, command, environment, dead-man timer, and
/// without `--allow-privileged` no privilege, no escalation, no capability
/// beyond baseline's, seccomp RuntimeDefault). Its `hostPID` is what the
/// user consented to by asking for the strategy; the namespace's Pod
/// Security level is the server's to enforce (its refusal is reported).
pub fn validate_node(plan: &NodePlan, allow_privileged: bool) -> Result<(), String> {
    let as_debug_container = AccessPlan {
        debug_container: plan.pod.clone(),
        locate: RootLocator::ContainerId(String::new()),
        mode: plan.mode,
        rbac: vec![],
        notes: vec![],
    };
    validate(&as_debug_container, allow_privileged, PsaLevel::Unknown)
}

/// Checks a plan against dscan's policy; returns why it is refused.
///
/// An allow-list, not a deny-list: without `--allow-privileged` a plan may
/// only add the capabilities Pod Security `baseline` admits, must keep
/// seccomp `RuntimeDefault`, no privilege and no escalation; and when the
/// namespace's level is known, the plan must fit it (what admission would
/// refuse is refused here first, with the reason). Image, command and
/// environment must be well-formed.
pub fn validate(plan: &AccessPlan, allow_privileged: bool, level: PsaLevel) -> Result<(), String> {
    let dc = &plan.debug_container;
    let sec = &dc.security;
    let consent = "pass --allow-privileged to permit it";
    // Capabilities Pod Security baseline would refuse to see added.
    let extra: Vec<&String> = sec
        .capabilities_add
        .iter()
        .filter(|c| !UNPRIVILEGED_CAPABILITIES.contains(&c.as_str()))
        .collect();
    if !allow_privileged {
        if sec.privileged {
            return Err(format!(
                "the plan asks for a privileged debug container; {consent}"
            ));
        }
        if sec.allow_privilege_escalation {
            return Err(format!("the plan allows privilege escalation; {consent}"));
        }
        if !extra.is_empty() {
            return Err(format!(
                "the plan adds capabilities beyond the ones Pod Security baseline admits ({extra:?}; \
                 allowed: {}); {consent}",
                UNPRIVILEGED_CAPABILITIES.join(", ")
            ));
        }
        if !sec.seccomp_runtime_default {
            return Err(format!(
                "the plan does not keep seccomp RuntimeDefault for the debug container; {consent}"
            ));
        }
    }
    match level {
        PsaLevel::Baseline | PsaLevel::Restricted if sec.privileged => {
            return Err(format!(
                "the namespace enforces Pod Security {level:?}, which refuses privileged containers"
            ));
        }
        PsaLevel::Baseline | PsaLevel::Restricted => {
            if !extra.is_empty() {
                return Err(format!(
                    "the namespace enforces Pod Security {level:?}, which refuses the capabilities {extra:?}"
                ));
            }
        }
        PsaLevel::Privileged | PsaLevel::Unknown => {}
    }
    if level == PsaLevel::Restricted {
        let drops_all = sec.capabilities_drop.iter().any(|c| c == "ALL");
        let adds_only_bind = sec.capabilities_add.iter().all(|c| c == "NET_BIND_SERVICE");
        if sec.run_as_non_root != Some(true)
            || sec.run_as_user == Some(0)
            || sec.allow_privilege_escalation
            || !drops_all
            || !adds_only_bind
            || !sec.seccomp_runtime_default
        {
            return Err(
                "the namespace enforces Pod Security Restricted: the debug container must run as non-root \
                 (runAsNonRoot), drop ALL capabilities (adding at most NET_BIND_SERVICE), forbid privilege \
                 escalation and keep seccomp RuntimeDefault"
                    .into(),
            );
        }
    }
    let image = dc.image.as_str();
    if image.is_empty()
        || image.len() > 512
        || image.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "the plan's debug image {image:?} is not an image reference"
        ));
    }
    if dc.command.is_empty() || dc.command[0].is_empty() {
        return Err("the plan has no command for the debug container".into());
    }
    if dc.command.iter().any(|a| a.contains('\0')) {
        return Err("the plan's command contains a NUL byte".into());
    }
    for (name, _) in &dc.env {
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "the plan sets an invalid environment variable name {name:?}"
            ));
        }
        if LOADER_VARIABLES.contains(&name.as_str()) {
            return Err(format!(
                "the plan sets {name}, which steers the dynamic loader in the debug container; refused"
            ));
        }
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
        let any = PsaLevel::Unknown;
        assert!(validate(&plan(), false, any).is_ok());
        let mut p = plan();
        p.debug_container.security.privileged = true;
        assert!(
            validate(&p, false, any)
                .unwrap_err()
                .contains("--allow-privileged")
        );
        assert!(validate(&p, true, any).is_ok());
        let mut p = plan();
        p.rbac.push(RbacRule {
            resource: "secrets".into(),
            verbs: vec!["get".into()],
        });
        assert!(
            validate(&p, true, any)
                .unwrap_err()
                .contains("does not grant")
        );
        let mut p = plan();
        p.debug_container.dead_man_seconds = 0;
        assert!(validate(&p, false, any).is_err());
    }

    #[test]
    fn capabilities_are_an_allow_list_not_a_deny_list() {
        // What the old deny-list (SYS_ADMIN, SYS_PTRACE, ALL) let through.
        for cap in [
            "SYS_MODULE",
            "DAC_READ_SEARCH",
            "SYS_RAWIO",
            "BPF",
            "NET_ADMIN",
            "CAP_SYS_CHROOT",
            "sys_chroot",
        ] {
            let mut p = plan();
            p.debug_container.security.capabilities_add = vec![cap.into()];
            let err = validate(&p, false, PsaLevel::Unknown).unwrap_err();
            assert!(
                err.contains("beyond the ones Pod Security baseline admits"),
                "{cap}: {err}"
            );
            assert!(
                validate(&p, true, PsaLevel::Privileged).is_ok(),
                "{cap} with consent"
            );
            // ...but never where the namespace's level refuses it.
            assert!(
                validate(&p, true, PsaLevel::Baseline).is_err(),
                "{cap} in baseline"
            );
        }
        // seccomp off needs consent.
        let mut p = plan();
        p.debug_container.security.seccomp_runtime_default = false;
        assert!(
            validate(&p, false, PsaLevel::Unknown)
                .unwrap_err()
                .contains("seccomp")
        );
    }

    #[test]
    fn plans_must_fit_a_known_level() {
        // The root SYS_CHROOT plan fits baseline, not restricted.
        assert!(validate(&plan(), false, PsaLevel::Baseline).is_ok());
        assert!(
            validate(&plan(), false, PsaLevel::Restricted)
                .unwrap_err()
                .contains("Restricted")
        );
        let mut p = plan();
        let sec = &mut p.debug_container.security;
        sec.run_as_user = Some(65532);
        sec.run_as_non_root = Some(true);
        sec.capabilities_add = vec![];
        sec.capabilities_drop = vec!["ALL".into()];
        assert!(validate(&p, false, PsaLevel::Restricted).is_ok());
    }

    #[test]
    fn image_command_and_environment_are_checked() {
        let mut p = plan();
        p.debug_container.image = "busybox; rm -rf /".into();
        assert!(
            validate(&p, false, PsaLevel::Unknown)
                .unwrap_err()
                .contains("not an image reference")
        );
        let mut p = plan();
        p.debug_container.command = vec![String::new()];
        assert!(validate(&p, false, PsaLevel::Unknown).is_err());
        for name in ["LD_PRELOAD", "LD_LIBRARY_PATH", "1X", "A-B", ""] {
            let mut p = plan();
            p.debug_container.env = vec![(name.into(), "x".into())];
            assert!(validate(&p, false, PsaLevel::Unknown).is_err(), "{name}");
        }
        let mut p = plan();
        p.debug_container.env = vec![("DSCAN_MODE".into(), "x".into())];
        assert!(validate(&p, false, PsaLevel::Unknown).is_ok());
    }
}
