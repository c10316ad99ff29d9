//! Conversions between the access-strategy WIT types and [`crate::access`].

use super::bindings::strategy::exports::dscan::plugin::strategy as wit;
use crate::access::{
    AccessMode, AccessPlan, DebugContainer, Decision, PsaLevel, RbacRule, RootLocator, Security,
    TargetFacts,
};

fn pairs(v: &[(String, String)]) -> Vec<super::bindings::OptionPair> {
    v.iter()
        .map(|(k, val)| super::bindings::OptionPair {
            key: k.clone(),
            value: val.clone(),
        })
        .collect()
}

/// Host facts to WIT.
pub(crate) fn facts(f: &TargetFacts) -> wit::TargetFacts {
    wit::TargetFacts {
        server_version: f.server_version.clone(),
        ephemeral_containers: f.ephemeral_containers,
        psa_level: match f.psa_level {
            // Unknown: plan as if unrestricted; the server's admission answer
            // moves selection on to the next strategy.
            PsaLevel::Privileged | PsaLevel::Unknown => wit::PsaLevel::Privileged,
            PsaLevel::Baseline => wit::PsaLevel::Baseline,
            PsaLevel::Restricted => wit::PsaLevel::Restricted,
        },
        namespace: f.namespace.clone(),
        pod: f.pod.clone(),
        container: f.container.clone(),
        container_id: f.container_id.clone(),
        run_as_user: f.run_as_user,
        run_as_group: f.run_as_group,
        run_as_non_root: f.run_as_non_root,
        privileged: f.privileged,
        capabilities_add: f.capabilities_add.clone(),
        capabilities_drop: f.capabilities_drop.clone(),
        read_only_root_filesystem: f.read_only_root_filesystem,
        share_process_namespace: f.share_process_namespace,
        node: f.node.clone(),
        runner: f.runner.clone(),
        allow_privileged: f.allow_privileged,
        options: pairs(&f.options),
    }
}

/// A WIT decision to the host's, and its size (for the output cap).
pub(crate) fn decision(d: wit::Decision) -> (Decision, usize) {
    match d {
        wit::Decision::Decline(why) => {
            let n = why.len();
            (Decision::Decline(why), n)
        }
        wit::Decision::Plan(p) => {
            let dc = p.debug_container;
            let size = dc.image.len()
                + dc.command.iter().map(String::len).sum::<usize>()
                + dc.env
                    .iter()
                    .map(|o| o.key.len() + o.value.len())
                    .sum::<usize>()
                + p.notes.iter().map(String::len).sum::<usize>();
            let plan = AccessPlan {
                debug_container: DebugContainer {
                    image: dc.image,
                    command: dc.command,
                    env: dc.env.into_iter().map(|o| (o.key, o.value)).collect(),
                    security: Security {
                        run_as_user: dc.security.run_as_user,
                        run_as_group: dc.security.run_as_group,
                        run_as_non_root: dc.security.run_as_non_root,
                        privileged: dc.security.privileged,
                        allow_privilege_escalation: dc.security.allow_privilege_escalation,
                        capabilities_add: dc.security.capabilities_add,
                        capabilities_drop: dc.security.capabilities_drop,
                        seccomp_runtime_default: dc.security.seccomp_runtime_default,
                    },
                    dead_man_seconds: dc.dead_man_seconds,
                },
                locate: match p.locate {
                    wit::RootLocator::PidOne => RootLocator::PidOne,
                    wit::RootLocator::ContainerId(id) => RootLocator::ContainerId(id),
                },
                mode: match p.mode {
                    wit::AccessMode::ChrootWrapper => AccessMode::ChrootWrapper,
                    wit::AccessMode::Graft => AccessMode::Graft,
                    wit::AccessMode::PathPrefix => AccessMode::PathPrefix,
                },
                rbac: p
                    .rbac
                    .into_iter()
                    .map(|r| RbacRule {
                        resource: r.resource,
                        verbs: r.verbs,
                    })
                    .collect(),
                notes: p.notes,
            };
            (Decision::Plan(Box::new(plan)), size)
        }
    }
}
