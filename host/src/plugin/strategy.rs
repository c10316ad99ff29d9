//! Conversions between the access-strategy WIT types (contracts 0.1.0 and
//! 0.2.0) and [`crate::access`]. The two contracts' generated types are
//! distinct Rust types of the same shape, so one macro writes both
//! directions for each; 0.2.0 adds two facts and the node plan.

use super::bindings::strategy::exports::dscan::plugin::strategy as v1;
use super::bindings::strategy_v2::exports::dscan::plugin::strategy as v2;
use crate::access::{
    AccessMode, AccessPlan, DebugContainer, Decision, NodePlan, PsaLevel, RbacRule, RootLocator,
    Security, TargetFacts,
};

/// Builds the WIT facts of module `$wit` from `$f`, with `$extra` fields.
macro_rules! facts_for {
    ($wit:ident, $pair:path, $f:expr, { $($extra:tt)* }) => {{
        let f: &TargetFacts = $f;
        $wit::TargetFacts {
            server_version: f.server_version.clone(),
            ephemeral_containers: f.ephemeral_containers,
            psa_level: match f.psa_level {
                // Unknown: plan as if unrestricted; the server's admission answer
                // moves selection on to the next strategy.
                PsaLevel::Privileged | PsaLevel::Unknown => $wit::PsaLevel::Privileged,
                PsaLevel::Baseline => $wit::PsaLevel::Baseline,
                PsaLevel::Restricted => $wit::PsaLevel::Restricted,
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
            options: f
                .options
                .iter()
                .map(|(k, v)| {
                    use $pair as Pair;
                    Pair {
                        key: k.clone(),
                        value: v.clone(),
                    }
                })
                .collect(),
            $($extra)*
        }
    }};
}

/// Converts a WIT debug container (or node pod: the same fields) of module
/// `$wit`, with its size for the output cap.
macro_rules! container_from {
    ($dc:expr) => {{
        let dc = $dc;
        let size = dc.image.len()
            + dc.command.iter().map(String::len).sum::<usize>()
            + dc.env
                .iter()
                .map(|o| o.key.len() + o.value.len())
                .sum::<usize>();
        let container = DebugContainer {
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
        };
        (container, size)
    }};
}

/// Converts a WIT access mode of module `$wit`.
macro_rules! mode_from {
    ($wit:ident, $mode:expr) => {
        match $mode {
            $wit::AccessMode::ChrootWrapper => AccessMode::ChrootWrapper,
            $wit::AccessMode::Graft => AccessMode::Graft,
            $wit::AccessMode::PathPrefix => AccessMode::PathPrefix,
        }
    };
}

/// Converts a WIT access plan of module `$wit`, with its size.
macro_rules! plan_from {
    ($wit:ident, $p:expr) => {{
        let p = $p;
        let (debug_container, size) = container_from!(p.debug_container);
        let plan = AccessPlan {
            debug_container,
            locate: match p.locate {
                $wit::RootLocator::PidOne => RootLocator::PidOne,
                $wit::RootLocator::ContainerId(id) => RootLocator::ContainerId(id),
            },
            mode: mode_from!($wit, p.mode),
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
        let size = size + plan.notes.iter().map(String::len).sum::<usize>();
        (Decision::Plan(Box::new(plan)), size)
    }};
}

/// Host facts to WIT (contract 0.1.0).
pub(crate) fn facts(f: &TargetFacts) -> v1::TargetFacts {
    facts_for!(v1, super::bindings::OptionPair, f, {})
}

/// Host facts to WIT (contract 0.2.0).
pub(crate) fn facts_v2(f: &TargetFacts) -> v2::TargetFacts {
    facts_for!(
        v2,
        super::bindings::strategy_v2::dscan::plugin::meta::OptionPair,
        f,
        {
            ephemeral_refused: f.ephemeral_refused.clone(),
            node_debug_namespace: f.node_debug_namespace.clone(),
        }
    )
}

/// A WIT decision (contract 0.1.0) to the host's, and its size (for the output cap).
pub(crate) fn decision(d: v1::Decision) -> (Decision, usize) {
    match d {
        v1::Decision::Decline(why) => {
            let n = why.len();
            (Decision::Decline(why), n)
        }
        v1::Decision::Plan(p) => plan_from!(v1, p),
    }
}

/// A WIT decision (contract 0.2.0) to the host's, and its size.
pub(crate) fn decision_v2(d: v2::Decision) -> (Decision, usize) {
    match d {
        v2::Decision::Decline(why) => {
            let n = why.len();
            (Decision::Decline(why), n)
        }
        v2::Decision::Plan(p) => plan_from!(v2, p),
        v2::Decision::NodePlan(p) => {
            let (pod, size) = container_from!(p.pod);
            let plan = NodePlan {
                pod,
                mode: mode_from!(v2, p.mode),
                notes: p.notes,
            };
            let size = size + plan.notes.iter().map(String::len).sum::<usize>();
            (Decision::NodePlan(Box::new(plan)), size)
        }
    }
}
