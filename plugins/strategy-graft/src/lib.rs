//! The `graft` access strategy (DESIGN §6.2; privileged, opt-in).
//!
//! The debug container is the scanner's own image (CINC Auditor), privileged.
//! dscan uploads a small static helper into it that clones the scanner's
//! runtime directory, enters a *private copy* of the target's mount
//! namespace, mounts an overlay of the target's root with a tmpfs upper
//! layer, grafts the runtime in at its own path and runs the scanner there
//! with plain local access. The target's files and mount table stay as they
//! were. setns and mount need CAP_SYS_ADMIN, hence privileged — which Pod
//! Security allows only at level `privileged`, and dscan only with
//! `--allow-privileged`. It works for root and non-root targets alike
//! (privileged holds CAP_SYS_PTRACE).

use dscan_plugin_sdk::strategy::{
    AccessMode, AccessPlan, DebugContainer, Decision, Guest, PluginInfo, PsaLevel, Security,
    TargetFacts, decline_without_ephemeral_containers,
};

struct Graft;

impl Guest for Graft {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "graft",
            "privileged scanner-image debug container; the scanner runs in a private overlay view of the target's root (needs --allow-privileged and --runner in-debug)"
        )
    }

    fn plan(facts: TargetFacts) -> Decision {
        if let Some(decline) = decline_without_ephemeral_containers(&facts) {
            return decline;
        }
        let needs =
            dscan_plugin_sdk::strategy::fact(&facts, dscan_plugin_sdk::contract::NEEDS_OPTION);
        if needs != Some("graft") {
            return Decision::Decline(format!(
                "graft runs the scanner inside the debug container; the {} runner needs {} access and cannot use it (use --runner in-debug)",
                facts.runner,
                needs.unwrap_or("another")
            ));
        }
        if !facts.allow_privileged {
            return Decision::Decline(
                "graft needs a privileged debug container (setns and mount need CAP_SYS_ADMIN); pass --allow-privileged to permit it"
                    .into(),
            );
        }
        if facts.psa_level != PsaLevel::Privileged {
            return Decision::Decline(format!(
                "namespace {:?} enforces Pod Security {:?}, which refuses privileged containers; graft works only where the enforce level is privileged",
                facts.namespace,
                match facts.psa_level {
                    PsaLevel::Baseline => "baseline",
                    _ => "restricted",
                }
            ));
        }
        let Some(image) = dscan_plugin_sdk::strategy::fact(&facts, "scanner-image") else {
            return Decision::Decline(
                "no scanner image was given (option `scanner-image`, from --scanner-image)".into(),
            );
        };
        let lifetime = dscan_plugin_sdk::Lifetime::from_options(
            facts
                .options
                .iter()
                .map(|o| (o.key.as_str(), o.value.as_str())),
        );
        let (locate, locate_pid) = dscan_plugin_sdk::strategy::locate_target(&facts);
        let user = match facts.run_as_user {
            Some(0) | None => "a root".to_string(),
            Some(uid) => format!("a UID {uid}"),
        };
        Decision::Plan(AccessPlan {
            debug_container: DebugContainer {
                image: image.to_string(),
                command: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    lifetime.startup_script(&locate_pid),
                ],
                env: Vec::new(),
                security: Security {
                    run_as_user: Some(0),
                    run_as_group: Some(0),
                    run_as_non_root: Some(false),
                    privileged: true,
                    allow_privilege_escalation: true,
                    capabilities_add: Vec::new(),
                    capabilities_drop: Vec::new(),
                    seccomp_runtime_default: false,
                },
                dead_man_seconds: lifetime.dead_man_seconds,
            },
            locate,
            mode: AccessMode::Graft,
            rbac: dscan_plugin_sdk::strategy::debug_container_rbac(),
            notes: vec![format!(
                "{user} target in a privileged namespace with --allow-privileged: the scanner image runs privileged and scans a private overlay view of the target's root"
            )],
        })
    }
}

dscan_plugin_sdk::strategy::export!(Graft);
