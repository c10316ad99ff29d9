//! The `same-user` access strategy (DESIGN §5).
//!
//! The kernel lets a process open `/proc/<pid>/root` of another when their
//! UIDs and GIDs match and the target's capabilities are a subset of the
//! caller's — no SYS_PTRACE, no SYS_CHROOT, no root. So a debug container
//! that runs as the target's user, with every capability dropped, no
//! privilege escalation and RuntimeDefault seccomp (admissible under Pod
//! Security `restricted`) reads the target's files by path prefix, exactly
//! as the target itself could. For a root target the same holds as UID 0
//! with the runtime's default capabilities (baseline or privileged).
//!
//! The debug container only records the PIDs and waits to be claimed; the
//! host uploads its file agent and reads the target through it.

use dscan_plugin_sdk::contract::NEEDS_OPTION;
use dscan_plugin_sdk::strategy::{
    AccessMode, AccessPlan, DebugContainer, Decision, Guest, PluginInfo, PsaLevel, Security,
    TargetFacts, decline_without_ephemeral_containers,
};

struct SameUser;

fn level(l: PsaLevel) -> &'static str {
    match l {
        PsaLevel::Privileged => "privileged",
        PsaLevel::Baseline => "baseline",
        PsaLevel::Restricted => "restricted",
    }
}

impl Guest for SameUser {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "same-user",
            "debug container as the target's own user, every capability dropped; reads the target by path prefix (any Pod Security level the target itself fits)"
        )
    }

    fn plan(facts: TargetFacts) -> Decision {
        if let Some(decline) = decline_without_ephemeral_containers(&facts) {
            return decline;
        }
        let needs = dscan_plugin_sdk::strategy::fact(&facts, NEEDS_OPTION);
        if needs != Some("path-prefix") {
            return Decision::Decline(format!(
                "same-user reads the target by path prefix; the {} runner needs {} access (use --runner native)",
                facts.runner,
                needs.unwrap_or("another")
            ));
        }
        if facts.privileged {
            return Decision::Decline(
                "the target is privileged: a debug container must hold every capability it holds, which only a privileged one does; use --strategy graft with --allow-privileged"
                    .into(),
            );
        }
        let uid = match (facts.run_as_user, facts.run_as_non_root) {
            (Some(uid), _) => uid,
            (None, Some(true)) => {
                return Decision::Decline(
                    "the target sets runAsNonRoot but not runAsUser, so its UID comes from its image and the pod spec does not say which; \
                     set runAsUser on the target (distroless's nonroot images run as 65532)"
                        .into(),
                );
            }
            // No user in the spec and no runAsNonRoot: the image's user,
            // which the kubelet lets be root.
            (None, _) => 0,
        };
        let gid = facts.run_as_group.unwrap_or(uid);
        let Some(image) = dscan_plugin_sdk::strategy::fact(&facts, "image") else {
            return Decision::Decline("no debug image was given (option `image`)".into());
        };
        if uid == 0 && facts.psa_level == PsaLevel::Restricted {
            return Decision::Decline(format!(
                "namespace {:?} enforces Pod Security \"restricted\", which admits no root container; a root target cannot run there either",
                facts.namespace
            ));
        }
        let lifetime = dscan_plugin_sdk::Lifetime::from_options(
            facts
                .options
                .iter()
                .map(|o| (o.key.as_str(), o.value.as_str())),
        );
        let (locate, locate_pid) = dscan_plugin_sdk::strategy::locate_target(&facts);
        // A non-root target holds no capability a restricted container may
        // not drop; a root one holds the runtime's defaults (which the debug
        // container keeps, adding nothing). Capabilities the target adds
        // beyond those are not ours to hold.
        if uid != 0 && !facts.capabilities_add.is_empty() {
            return Decision::Decline(format!(
                "the target adds capabilities ({:?}); a same-user debug container must hold them too, which its namespace may not admit",
                facts.capabilities_add
            ));
        }
        let security = if uid == 0 {
            Security {
                run_as_user: Some(0),
                run_as_group: Some(gid),
                run_as_non_root: Some(false),
                privileged: false,
                allow_privilege_escalation: false,
                capabilities_add: Vec::new(),
                capabilities_drop: Vec::new(),
                seccomp_runtime_default: true,
            }
        } else {
            Security {
                run_as_user: Some(uid),
                run_as_group: Some(gid),
                run_as_non_root: Some(true),
                privileged: false,
                allow_privilege_escalation: false,
                capabilities_add: Vec::new(),
                capabilities_drop: vec!["ALL".into()],
                seccomp_runtime_default: true,
            }
        };
        Decision::Plan(AccessPlan {
            debug_container: DebugContainer {
                image: image.to_string(),
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    lifetime.startup_script(&locate_pid),
                ],
                env: Vec::new(),
                security,
                dead_man_seconds: lifetime.dead_man_seconds,
            },
            locate,
            mode: AccessMode::PathPrefix,
            rbac: dscan_plugin_sdk::strategy::debug_container_rbac(),
            notes: vec![format!(
                "UID {uid} target (from {}) in a {} namespace: a debug container as UID {uid}/GID {gid}{} reads its root by path prefix, as the target itself could (supplementary groups are not carried over)",
                match dscan_plugin_sdk::strategy::fact(&facts, "uid-source") {
                    Some(src) if !src.starts_with("nowhere") => src,
                    // Neither says: the image's user, which may be root; if it
                    // is not, the root check fails loudly (EACCES), never silently.
                    _ => "no statement; assumed root, the image's default",
                },
                level(facts.psa_level),
                if uid == 0 {
                    ""
                } else {
                    " with every capability dropped"
                }
            )],
        })
    }
}

dscan_plugin_sdk::strategy::export!(SameUser);
