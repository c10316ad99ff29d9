//! Control helpers shared by reporters.

use dscan_plugin_sdk::reporter::{Control, ControlStatus, ResultStatus, Severity};

/// SAF's label for a status.
pub fn status_label(s: ControlStatus) -> &'static str {
    match s {
        ControlStatus::Passed => "Passed",
        ControlStatus::Failed => "Failed",
        ControlStatus::NotApplicable => "Not Applicable",
        ControlStatus::NotReviewed => "Not Reviewed",
        ControlStatus::ProfileError => "Profile Error",
    }
}

/// Lower-case severity name.
pub fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::None => "none",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// Orders severities from most to least severe.
pub fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Critical => 0,
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
        Severity::None => 4,
    }
}

/// A tag's value as a list of strings (`nist`, `cci`): an array of strings,
/// or a single string.
pub fn tag_list(c: &Control, name: &str) -> Vec<String> {
    let Some(tag) = c.tags.iter().find(|t| t.name == name) else {
        return Vec::new();
    };
    match serde_json::from_str::<serde_json::Value>(&tag.value_json) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Ok(serde_json::Value::String(s)) => vec![s],
        _ => Vec::new(),
    }
}

/// A description by label (`check`, `fix`, `default`).
pub fn description<'a>(c: &'a Control, label: &str) -> Option<&'a str> {
    c.descriptions
        .iter()
        .find(|d| d.label == label)
        .map(|d| d.data.as_str())
}

/// The first failing or erroring result's message, for one-line displays.
pub fn first_problem(c: &Control) -> Option<String> {
    c.results.iter().find_map(|r| match r.status {
        ResultStatus::Failed => Some(match &r.message {
            Some(m) => format!("{}: {m}", r.code_desc),
            None => r.code_desc.clone(),
        }),
        ResultStatus::Error => Some(
            r.exception
                .clone()
                .or_else(|| r.message.clone())
                .unwrap_or_else(|| format!("error in {}", r.code_desc)),
        ),
        _ => None,
    })
}

/// Why a control was skipped or not applicable, if said.
pub fn skip_reason(c: &Control) -> Option<String> {
    if c.waived {
        return Some(match &c.waiver_justification {
            Some(j) => format!("waived: {j}"),
            None => "waived".to_string(),
        });
    }
    c.results.iter().find_map(|r| r.skip_message.clone())
}

/// Total run time of a control's results, in seconds.
pub fn run_time(c: &Control) -> f64 {
    c.results.iter().filter_map(|r| r.run_time).sum()
}

/// A result's status as the scanner writes it (`passed`, `failed`…).
pub fn result_label(s: ResultStatus) -> &'static str {
    match s {
        ResultStatus::Passed => "passed",
        ResultStatus::Failed => "failed",
        ResultStatus::Skipped => "skipped",
        ResultStatus::Error => "error",
    }
}
