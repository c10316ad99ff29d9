//! The built-in threshold evaluator: `saf validate threshold` semantics
//! (see the `dscan-threshold-rules` crate) as a plugin.

use dscan_plugin_sdk::evaluator::{
    Check, ControlStatus, Counts, Detail, Guest, PluginInfo, Request, Scan, Severity,
    SeverityCounts, Verdict,
};
use dscan_threshold_rules::threshold::{self, NO_IMPACT, NONE};
use dscan_threshold_rules::{Observed, evaluate};

struct SafThresholds;

impl Guest for SafThresholds {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "saf-thresholds",
            "SAF CLI threshold files and inline thresholds (compliance, status and severity counts, control ids)"
        )
    }

    fn needs(request: Request) -> Detail {
        // Control ids are only read for `*.controls` keys.
        match request.threshold {
            Some(t) if t.contains("controls") => Detail::Controls,
            _ => Detail::Summary,
        }
    }

    fn evaluate(scan: Scan, request: Request) -> Result<Verdict, String> {
        dscan_plugin_sdk::check_options(
            request
                .options
                .iter()
                .map(|o| (o.key.as_str(), o.value.as_str())),
            &[],
        )?;
        let Some(text) = request.threshold.as_deref() else {
            // Not asked to judge thresholds: nothing to check, nothing to fail.
            return Ok(Verdict {
                passed: true,
                checks: Vec::new(),
            });
        };
        let thresholds = if request.inline {
            threshold::parse_inline(text)?
        } else {
            threshold::parse_file(text)?
        };
        let checks: Vec<Check> = evaluate(&thresholds, &observed(&scan))
            .into_iter()
            .map(|c| Check {
                name: c.name,
                passed: c.passed,
                message: c.message,
            })
            .collect();
        Ok(Verdict {
            passed: checks.iter().all(|c| c.passed),
            checks,
        })
    }
}

dscan_plugin_sdk::evaluator::export!(SafThresholds);

fn status_index(s: ControlStatus) -> usize {
    match s {
        ControlStatus::Passed => 0,
        ControlStatus::Failed => 1,
        ControlStatus::NotReviewed => 2,
        ControlStatus::ProfileError => 3,
        ControlStatus::NotApplicable => NO_IMPACT,
    }
}

fn severity_index(s: Severity) -> usize {
    match s {
        Severity::Critical => 0,
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
        Severity::None => NONE,
    }
}

fn row(c: &SeverityCounts) -> [u32; 5] {
    [c.critical, c.high, c.medium, c.low, c.none]
}

/// The host's counts and control ids in the rules' shape.
fn observed(scan: &Scan) -> Observed {
    let Counts {
        passed,
        failed,
        not_reviewed,
        profile_error,
        not_applicable,
        compliance,
    } = &scan.counts;
    let mut ids: [[Vec<String>; 5]; 5] = Default::default();
    for c in &scan.controls {
        ids[status_index(c.status)][severity_index(c.severity)].push(c.id.clone());
    }
    Observed {
        compliance: *compliance,
        counts: [
            row(passed),
            row(failed),
            row(not_reviewed),
            row(profile_error),
            row(not_applicable),
        ],
        totals: [
            passed.total,
            failed.total,
            not_reviewed.total,
            profile_error.total,
            not_applicable.total,
        ],
        ids,
    }
}
