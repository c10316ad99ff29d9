//! Strategy selection: ask each strategy plugin in order; the first plan that
//! passes policy wins; the user learns why the others declined.

use std::sync::Arc;

use crate::access::{self, AccessMode, AccessPlan, Decision, NodePlan, TargetFacts};
use crate::cluster::ClusterError;
use crate::plugin::{PluginKind, PluginSet};
use crate::scan_error::ScanError;

/// The chosen plan.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// Strategy name.
    pub name: String,
    /// Its plan.
    pub plan: AccessPlan,
    /// `(strategy, why)` for those that declined before it.
    pub declined: Vec<(String, String)>,
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
        let mut declined = earlier;
        for name in &order {
            match ask(&plugins, name, &facts)? {
                Decision::Decline(why) => declined.push((name.clone(), why)),
                // A node-level plan (contract 0.2.0) is for when the cluster
                // refuses ephemeral containers (see `choose_node`).
                Decision::NodePlan(_) => declined.push((
                    name.clone(),
                    "it planned a pod on the target's node, which dscan runs only when the cluster refuses ephemeral containers"
                        .into(),
                )),
                Decision::Plan(plan) if plan.mode != needs => declined.push((
                    name.clone(),
                    format!(
                        "it planned {:?} access, but the {} runner needs {needs:?}; pick another runner (--runner) or strategy (--strategy)",
                        plan.mode, facts.runner
                    ),
                )),
                Decision::Plan(plan) => match access::validate(&plan, allow_privileged, facts.psa_level) {
                    Ok(()) => {
                        for (n, why) in &declined {
                            tracing::info!("strategy {n} declined: {why}");
                        }
                        return Ok(Chosen {
                            name: name.clone(),
                            plan: *plan,
                            declined,
                        });
                    }
                    Err(why) => declined.push((name.clone(), format!("refused by policy: {why}"))),
                },
            }
        }
        let reasons = listed(&declined);
        Err(ClusterError::Scan(ScanError::Access {
            message: format!(
                "no access strategy can reach {}/{} container {}:\n{}",
                facts.namespace,
                facts.pod,
                facts.container,
                reasons
            ),
            declined,
        }))
    })
    .await
    .map_err(|e| ClusterError::Internal(e.to_string()))?
}

/// The chosen node-level plan.
#[derive(Debug, Clone)]
pub struct ChosenNode {
    /// Strategy name.
    pub name: String,
    /// Its plan.
    pub plan: NodePlan,
    /// `(strategy, why)` for those that declined before it.
    pub declined: Vec<(String, String)>,
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
        let mut declined = vec![];
        for name in &order {
            match ask(&plugins, name, &facts)? {
                Decision::Decline(why) => declined.push((name.clone(), why)),
                Decision::Plan(_) => declined.push((
                    name.clone(),
                    "it planned a debug container in the target pod, which the cluster refuses"
                        .into(),
                )),
                Decision::NodePlan(plan) if plan.mode != needs => declined.push((
                    name.clone(),
                    format!(
                        "it planned {:?} access, but the {} runner needs {needs:?}",
                        plan.mode, facts.runner
                    ),
                )),
                Decision::NodePlan(plan) => match access::validate_node(&plan, allow_privileged) {
                    Ok(()) => {
                        return Ok(ChosenNode {
                            name: name.clone(),
                            plan: *plan,
                            declined,
                        });
                    }
                    Err(why) => declined.push((name.clone(), format!("refused by policy: {why}"))),
                },
            }
        }
        let reasons = listed(&declined);
        Err(ClusterError::Scan(ScanError::Access {
            message: format!(
                "{}; and no strategy can reach {}/{} container {} from its node:\n{}",
                facts
                    .ephemeral_refused
                    .as_deref()
                    .unwrap_or("ephemeral containers are refused"),
                facts.namespace,
                facts.pod,
                facts.container,
                reasons
            ),
            declined,
        }))
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
