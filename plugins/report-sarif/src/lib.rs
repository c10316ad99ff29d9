//! `sarif` reporter: SARIF 2.1.0 for code-scanning dashboards (GitHub code
//! scanning among them). One run per results file; one rule per control
//! (title, description, check/fix help, a `security-severity` from the
//! impact); one result per failed or errored control, located at the
//! control's source in the profile.

use dscan_plugin_sdk::reporter::{
    Control, ControlStatus, Detail, FormatInfo, Guest, OptionPair, PluginInfo, Scan, Severity,
};
use dscan_report_kit::controls::{
    description, first_problem, severity_label, status_label, tag_list,
};
use dscan_report_kit::{Verdict, verdict};
use serde_json::{Value, json};

struct Sarif;

/// SARIF level for a control of this severity.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::None => "note",
    }
}

/// Percent-encodes what may not appear in a relative URI reference.
fn uri_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn source_location(c: &Control) -> (String, u64) {
    let extra: Value = serde_json::from_str(&c.extra_json).unwrap_or(Value::Null);
    let loc = &extra["source_location"];
    let file = loc["ref"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let line = loc["line"].as_u64().filter(|l| *l >= 1).unwrap_or(1);
    let file = file.unwrap_or_else(|| format!("{}/controls/{}.rb", c.source_profile, c.id));
    // A profile's path on the scanning machine is meaningless elsewhere;
    // keep it relative.
    (uri_path(file.trim_start_matches('/')), line)
}

fn rule(c: &Control) -> Value {
    let title = c.title.clone().unwrap_or_else(|| c.id.clone());
    let full = c
        .desc
        .clone()
        .or_else(|| description(c, "default").map(str::to_string))
        .unwrap_or_else(|| title.clone());
    let mut help = String::new();
    if let Some(check) = description(c, "check") {
        help.push_str(&format!("Check:\n{check}\n\n"));
    }
    if let Some(fix) = description(c, "fix") {
        help.push_str(&format!("Fix:\n{fix}\n"));
    }
    if help.is_empty() {
        help = full.clone();
    }
    let mut tags = vec!["security".to_string(), "compliance".to_string()];
    for nist in tag_list(c, "nist") {
        // SARIF requires unique tags; profiles repeat NIST references.
        let tag = format!("NIST-800-53/{nist}");
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    json!({
        "id": c.id,
        "shortDescription": {"text": title},
        "fullDescription": {"text": full},
        "help": {"text": help},
        "defaultConfiguration": {"level": level(c.severity)},
        "properties": {
            "security-severity": format!("{:.1}", (c.impact * 10.0).clamp(0.0, 10.0)),
            "severity": severity_label(c.severity),
            "impact": c.impact,
            "tags": tags,
            "precision": "high"
        }
    })
}

fn run(scan: &Scan, verdict: Option<&Verdict>) -> Value {
    let profile = scan.profiles.first();
    let name = profile.map(|p| p.name.as_str()).unwrap_or("results");
    let rules: Vec<Value> = scan.controls.iter().map(rule).collect();
    let results: Vec<Value> = scan
        .controls
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            matches!(
                c.status,
                ControlStatus::Failed | ControlStatus::ProfileError
            )
        })
        .map(|(i, c)| {
            let (uri, line) = source_location(c);
            let detail = first_problem(c).unwrap_or_else(|| "no results were reported".into());
            let level = if c.status == ControlStatus::ProfileError {
                "error"
            } else {
                level(c.severity)
            };
            json!({
                "ruleId": c.id,
                "ruleIndex": i,
                "level": level,
                "message": {"text": format!("{} {}: {}", status_label(c.status), c.id, detail)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": {"startLine": line}
                    }
                }],
                "properties": {"status": status_label(c.status), "profile": c.source_profile}
            })
        })
        .collect();
    let c = &scan.counts;
    let mut run = json!({
        "tool": {"driver": {
            "name": "dscan",
            "semanticVersion": env!("CARGO_PKG_VERSION"),
            "version": env!("CARGO_PKG_VERSION"),
            "rules": rules
        }},
        "automationDetails": {"id": format!("dscan/{name}/")},
        "invocations": [{"executionSuccessful": true}],
        "results": results,
        "properties": {
            "source": scan.source,
            "profile": name,
            "profileVersion": profile.and_then(|p| p.version.clone()),
            "scannerVersion": scan.tool_version,
            "platform": format!("{} {}", scan.platform.name, scan.platform.release),
            "compliance": c.compliance,
            "counts": {
                "passed": c.passed.total,
                "failed": c.failed.total,
                "notReviewed": c.not_reviewed.total,
                "notApplicable": c.not_applicable.total,
                "profileError": c.profile_error.total
            }
        }
    });
    if let Some(v) = verdict {
        run["properties"]["verdict"] = json!({"passed": v.passed, "detail": v.detail});
    }
    run
}

impl Guest for Sarif {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "sarif",
            "SARIF 2.1.0 for code-scanning dashboards: a rule per control, a result per failure"
        )
    }

    fn format() -> FormatInfo {
        FormatInfo {
            name: "sarif".into(),
            extension: "sarif".into(),
            media_type: "application/sarif+json".into(),
        }
    }

    fn needs(_options: Vec<OptionPair>) -> Detail {
        Detail::Full
    }

    fn render(scans: Vec<Scan>, options: Vec<OptionPair>) -> Result<Vec<u8>, String> {
        dscan_report_kit::check_options(&options, &[])?;
        let verdict = verdict(&options)?;
        let log = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": scans.iter().map(|s| run(s, verdict.as_ref())).collect::<Vec<_>>()
        });
        serde_json::to_vec_pretty(&log).map_err(|e| format!("cannot serialise SARIF: {e}"))
    }
}

dscan_plugin_sdk::reporter::export!(Sarif);
