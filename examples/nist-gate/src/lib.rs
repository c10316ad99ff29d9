//! Example policy plugin: block on failed controls in chosen NIST families.

use dscan_plugin_sdk::evaluator::{
    Check, ControlStatus, Detail, Guest, PluginInfo, Request, Scan, Verdict,
};

struct NistGate;

const DEFAULT_FAMILIES: &str = "AC,IA,SC";
const DEFAULT_MIN_COMPLIANCE: u32 = 80;

/// The NIST family of a control reference such as `AC-6 (9)` or `SC-28 a`.
fn family(reference: &str) -> Option<&str> {
    let family = reference.split(['-', ' ']).next()?.trim();
    (family.len() == 2 && family.chars().all(|c| c.is_ascii_uppercase())).then_some(family)
}

fn option<'a>(request: &'a Request, key: &str) -> Option<&'a str> {
    dscan_plugin_sdk::option(
        request
            .options
            .iter()
            .map(|o| (o.key.as_str(), o.value.as_str())),
        key,
    )
}

impl Guest for NistGate {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "nist-gate",
            "fails on failed controls in blocking NIST 800-53 families, else needs a minimum compliance"
        )
    }

    fn needs(_request: Request) -> Detail {
        Detail::Controls
    }

    fn evaluate(scan: Scan, request: Request) -> Result<Verdict, String> {
        let families: Vec<String> = option(&request, "families")
            .unwrap_or(DEFAULT_FAMILIES)
            .split(',')
            .map(|f| f.trim().to_ascii_uppercase())
            .filter(|f| !f.is_empty())
            .collect();
        if let Some(bad) = families.iter().find(|f| family(f) != Some(f.as_str())) {
            return Err(format!(
                "families: `{bad}` is not a NIST 800-53 family (two capital letters, e.g. AC)"
            ));
        }
        let min_compliance =
            match option(&request, "min-compliance") {
                None => DEFAULT_MIN_COMPLIANCE,
                Some(v) => v.parse::<u32>().ok().filter(|n| *n <= 100).ok_or_else(|| {
                    format!("min-compliance: `{v}` is not a number from 0 to 100")
                })?,
            };

        let mut blocking: Vec<String> = Vec::new();
        for control in scan
            .controls
            .iter()
            .filter(|c| c.status == ControlStatus::Failed)
        {
            let Some(tag) = control.tags.iter().find(|t| t.name == "nist") else {
                continue;
            };
            let refs: Vec<String> = serde_json::from_str(&tag.value_json).unwrap_or_default();
            let hit = refs
                .iter()
                .filter_map(|r| family(r))
                .find(|f| families.iter().any(|b| b == f));
            if let Some(f) = hit {
                blocking.push(format!("{} ({f})", control.id));
            }
        }

        let family_check = Check {
            name: "nist-gate.families".into(),
            passed: blocking.is_empty(),
            message: if blocking.is_empty() {
                format!("no failed control maps to {}", families.join(", "))
            } else {
                format!(
                    "{} failed control(s) map to blocking NIST families: {}",
                    blocking.len(),
                    blocking.join(", ")
                )
            },
        };
        let compliance = scan.counts.compliance;
        let compliance_check = Check {
            name: "nist-gate.min-compliance".into(),
            passed: compliance >= min_compliance,
            message: format!("compliance {compliance}% (minimum {min_compliance}%)"),
        };
        Ok(Verdict {
            passed: family_check.passed && compliance_check.passed,
            checks: vec![family_check, compliance_check],
        })
    }
}

dscan_plugin_sdk::evaluator::export!(NistGate);
