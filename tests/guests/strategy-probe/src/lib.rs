//! A minimal access strategy, so the host's loading of the
//! `access-strategy` world is tested before the scan workflow uses it.

use dscan_plugin_sdk::strategy::{
    AccessMode, AccessPlan, DebugContainer, Decision, Guest, PluginInfo, PsaLevel, RbacRule,
    RootLocator, Security, TargetFacts,
};

struct Probe;

impl Guest for Probe {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "strategy-probe",
            "plans a chroot wrapper for root targets (test fixture)"
        )
    }

    fn plan(facts: TargetFacts) -> Decision {
        if facts.psa_level == PsaLevel::Restricted || facts.run_as_user.is_some_and(|u| u != 0) {
            return Decision::Decline("the target does not run as root".into());
        }
        Decision::Plan(AccessPlan {
            debug_container: DebugContainer {
                image: "busybox@sha256:0".into(),
                command: vec!["sleep".into(), "600".into()],
                env: Vec::new(),
                security: Security {
                    run_as_user: Some(0),
                    run_as_group: Some(0),
                    run_as_non_root: Some(false),
                    privileged: false,
                    allow_privilege_escalation: false,
                    capabilities_add: vec!["SYS_CHROOT".into()],
                    capabilities_drop: vec!["ALL".into()],
                    seccomp_runtime_default: true,
                },
                dead_man_seconds: 600,
            },
            locate: if facts.share_process_namespace {
                RootLocator::ContainerId(facts.container_id.unwrap_or_default())
            } else {
                RootLocator::PidOne
            },
            mode: AccessMode::ChrootWrapper,
            rbac: vec![RbacRule {
                resource: "pods/exec".into(),
                verbs: vec!["create".into(), "get".into()],
            }],
            notes: vec![format!("root target in {}", facts.namespace)],
        })
    }
}

dscan_plugin_sdk::strategy::export!(Probe);
