//! Strategy selection: ask each strategy plugin in order; the first plan that
//! passes policy wins; the user learns why the others declined.

use std::sync::Arc;

use crate::access::{self, AccessMode, AccessPlan, Decision, NodePlan, TargetFacts};
use crate::cluster::ClusterError;
use crate::plugin::{PluginKind, PluginSet};
use crate::scan_error::ScanError;

/// The chosen plan: a debug container ([`AccessPlan`]) or, after the cluster
/// refused those, a pod on the target's node ([`ChosenNode`]).
#[derive(Debug, Clone)]
pub struct Chosen<P = AccessPlan> {
    /// Strategy name.
    pub name: String,
    /// Its plan.
    pub plan: P,
    /// `(strategy, why)` for those that declined before it.
    pub declined: Vec<(String, String)>,
}

/// The chosen node-level plan.
pub type ChosenNode = Chosen<NodePlan>;

/// `(strategy, why)` for each strategy that did not plan.
type Declined = Vec<(String, String)>;

/// Asks the strategies in `order` in turn; `take` turns a decision into the
/// plan wanted or the reason it will not do. The first plan taken wins;
/// otherwise every `(strategy, why)`, after `declined` (those ruled out
/// before).
fn first_taken<P>(
    plugins: &PluginSet,
    order: &[String],
    facts: &TargetFacts,
    mut declined: Declined,
    take: impl Fn(Decision) -> Result<P, String>,
) -> Result<Result<Chosen<P>, Declined>, ClusterError> {
    for name in order {
        match take(ask(plugins, name, facts)?) {
            Ok(plan) => {
                return Ok(Ok(Chosen {
                    name: name.clone(),
                    plan,
                    declined,
                }));
            }
            Err(why) => declined.push((name.clone(), why)),
        }
    }
    Ok(Err(declined))
}

/// Asks the strategies in `order`; a plan must pass policy and use the
/// access mode the runner `needs`, or the next strategy is asked.
/// `earlier` are strategies already ruled out (a plan the server refused),
/// reported with the rest.
pub async fn choose(
    plugins: Arc<PluginSet>,
    order: &[String],
    facts: TargetFacts,
    allow_privileged: bool,
    needs: AccessMode,
    earlier: Vec<(String, String)>,
) -> Result<Chosen, ClusterError> {
    let order = order.to_vec();
    // Plugin calls are synchronous wasmtime calls: keep them off the async workers.
    tokio::task::spawn_blocking(move || {
        let taken = first_taken(&plugins, &order, &facts, earlier, |decision| match decision {
            Decision::Decline(why) => Err(why),
            // A node-level plan (contract 0.2.0) is for when the cluster
            // refuses ephemeral containers (see `choose_node`).
            Decision::NodePlan(_) => Err(
                "it planned a pod on the target's node, which dscan runs only when the cluster refuses ephemeral containers"
                    .into(),
            ),
            Decision::Plan(plan) if plan.mode != needs => Err(format!(
                "it planned {:?} access, but the {} runner needs {needs:?}; pick another runner (--runner) or strategy (--strategy)",
                plan.mode, facts.runner
            )),
            Decision::Plan(plan) => access::validate(&plan, allow_privileged, facts.psa_level)
                .map(|()| *plan)
                .map_err(|why| format!("refused by policy: {why}")),
        })?;
        match taken {
            Ok(chosen) => {
                for (n, why) in &chosen.declined {
                    tracing::info!("strategy {n} declined: {why}");
                }
                Ok(chosen)
            }
            Err(declined) => Err(ClusterError::Scan(ScanError::Access {
                message: format!(
                    "no access strategy can reach {}/{} container {}:\n{}",
                    facts.namespace,
                    facts.pod,
                    facts.container,
                    listed(&declined)
                ),
                declined,
            })),
        }
    })
    .await
    .map_err(|e| ClusterError::Internal(e.to_string()))?
}

/// After the ephemeral-container path was refused (`facts` say why): asks
/// the strategies in `order` for a node-level plan; a debug-container plan
/// is of no use now. The plan must pass policy and use the access mode the
/// runner `needs`.
pub async fn choose_node(
    plugins: Arc<PluginSet>,
    order: &[String],
    facts: TargetFacts,
    allow_privileged: bool,
    needs: AccessMode,
) -> Result<ChosenNode, ClusterError> {
    let order = order.to_vec();
    tokio::task::spawn_blocking(move || {
        let taken = first_taken(
            &plugins,
            &order,
            &facts,
            vec![],
            |decision| match decision {
                Decision::Decline(why) => Err(why),
                Decision::Plan(_) => Err(
                    "it planned a debug container in the target pod, which the cluster refuses"
                        .into(),
                ),
                Decision::NodePlan(plan) if plan.mode != needs => Err(format!(
                    "it planned {:?} access, but the {} runner needs {needs:?}",
                    plan.mode, facts.runner
                )),
                Decision::NodePlan(plan) => access::validate_node(&plan, allow_privileged)
                    .map(|()| *plan)
                    .map_err(|why| format!("refused by policy: {why}")),
            },
        )?;
        taken.map_err(|declined| {
            ClusterError::Scan(ScanError::Access {
                message: format!(
                    "{}; and no strategy can reach {}/{} container {} from its node:\n{}",
                    facts
                        .ephemeral_refused
                        .as_deref()
                        .unwrap_or("ephemeral containers are refused"),
                    facts.namespace,
                    facts.pod,
                    facts.container,
                    listed(&declined)
                ),
                declined,
            })
        })
    })
    .await
    .map_err(|e| ClusterError::Internal(e.to_string()))?
}

/// Asks one strategy plugin for a plan.
fn ask(plugins: &PluginSet, name: &str, facts: &TargetFacts) -> Result<Decision, ClusterError> {
    let plugin = plugins
        .get(PluginKind::AccessStrategy, name)
        .map_err(|e| ScanError::access(format!("strategy {name:?}: {e}")))?;
    plugin
        .plan(facts)
        .map_err(|e| ScanError::access(e.to_string()))
}

/// The declined strategies, one `  - name: why` line each.
fn listed(declined: &[(String, String)]) -> String {
    declined
        .iter()
        .map(|(n, w)| format!("  - {n}: {w}"))
        .collect::<Vec<_>>()
        .join("\n")
}
