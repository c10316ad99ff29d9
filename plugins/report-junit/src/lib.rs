//! `junit` reporter: JUnit XML, one testsuite per results file (its counted
//! profile), one testcase per control. Failed controls are failures, Profile
//! Errors are errors, Not Reviewed and Not Applicable are skipped with the
//! reason; Passed controls pass.

use std::fmt::Write;

use dscan_plugin_sdk::reporter::{
    ControlStatus, Detail, FormatInfo, Guest, OptionPair, PluginInfo, ResultStatus, Scan,
};
use dscan_report_kit::controls::{
    first_problem, run_time, severity_label, skip_reason, status_label,
};
use dscan_report_kit::escape::{xml_attr, xml_text};
use dscan_report_kit::{Verdict, verdict};

struct Junit;

fn seconds(s: f64) -> String {
    format!("{s:.6}")
}

fn suite(out: &mut String, scan: &Scan, verdict: Option<&Verdict>) {
    let name = scan
        .profiles
        .first()
        .map(|p| p.name.as_str())
        .unwrap_or("results");
    let c = &scan.counts;
    let tests = scan.controls.len();
    let failures = c.failed.total;
    let errors = c.profile_error.total;
    let skipped = c.not_reviewed.total + c.not_applicable.total;
    let time: f64 = scan.controls.iter().map(run_time).sum();
    let _ = writeln!(
        out,
        r#"  <testsuite name="{}" tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{}">"#,
        xml_attr(name),
        seconds(time)
    );
    out.push_str("    <properties>\n");
    let mut props: Vec<(&str, String)> = vec![
        ("source", scan.source.clone()),
        ("compliance", c.compliance.to_string()),
        (
            "platform",
            format!("{} {}", scan.platform.name, scan.platform.release),
        ),
    ];
    if let Some(v) = &scan.tool_version {
        props.push(("scanner-version", v.clone()));
    }
    if let Some(v) = scan.profiles.first().and_then(|p| p.version.as_ref()) {
        props.push(("profile-version", v.clone()));
    }
    if let Some(v) = verdict {
        props.push((
            "verdict",
            if v.passed { "passed" } else { "failed" }.to_string(),
        ));
        if let Some(d) = &v.detail {
            props.push(("verdict-detail", d.clone()));
        }
    }
    for (k, v) in props {
        let _ = writeln!(
            out,
            r#"      <property name="{}" value="{}"/>"#,
            xml_attr(k),
            xml_attr(&v)
        );
    }
    out.push_str("    </properties>\n");
    for control in &scan.controls {
        let title = control.title.as_deref().unwrap_or("");
        let case_name = if title.is_empty() {
            control.id.clone()
        } else {
            format!("{}: {title}", control.id)
        };
        let _ = write!(
            out,
            r#"    <testcase name="{}" classname="{}" time="{}""#,
            xml_attr(&case_name),
            xml_attr(name),
            seconds(run_time(control))
        );
        let label = format!(
            "{} ({} severity, impact {})",
            status_label(control.status),
            severity_label(control.severity),
            control.impact
        );
        match control.status {
            ControlStatus::Passed => out.push_str("/>\n"),
            ControlStatus::Failed => {
                out.push_str(">\n");
                let message = first_problem(control).unwrap_or_else(|| "failed".into());
                let mut body = String::new();
                for r in control
                    .results
                    .iter()
                    .filter(|r| r.status == ResultStatus::Failed)
                {
                    let _ = writeln!(body, "FAILED -- {}", r.code_desc);
                    if let Some(m) = &r.message {
                        let _ = writeln!(body, "{m}");
                    }
                }
                let _ = writeln!(
                    out,
                    r#"      <failure message="{}" type="{}">{}</failure>"#,
                    xml_attr(&message),
                    xml_attr(&label),
                    xml_text(&body)
                );
                out.push_str("    </testcase>\n");
            }
            ControlStatus::ProfileError => {
                out.push_str(">\n");
                let message = first_problem(control)
                    .unwrap_or_else(|| "no results were reported for this control".into());
                let mut body = String::new();
                for r in control
                    .results
                    .iter()
                    .filter(|r| r.status == ResultStatus::Error)
                {
                    let _ = writeln!(body, "ERROR -- {}", r.code_desc);
                    for line in r.backtrace.iter().flatten() {
                        let _ = writeln!(body, "  {line}");
                    }
                }
                let _ = writeln!(
                    out,
                    r#"      <error message="{}" type="{}">{}</error>"#,
                    xml_attr(&message),
                    xml_attr(&label),
                    xml_text(&body)
                );
                out.push_str("    </testcase>\n");
            }
            ControlStatus::NotReviewed | ControlStatus::NotApplicable => {
                out.push_str(">\n");
                let reason = match skip_reason(control) {
                    Some(r) => format!("{}: {r}", status_label(control.status)),
                    None => status_label(control.status).to_string(),
                };
                let _ = writeln!(out, r#"      <skipped message="{}"/>"#, xml_attr(&reason));
                out.push_str("    </testcase>\n");
            }
        }
    }
    out.push_str("  </testsuite>\n");
}

impl Guest for Junit {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "junit",
            "JUnit XML: a testsuite per profile, a testcase per control"
        )
    }

    fn format() -> FormatInfo {
        FormatInfo {
            name: "junit".into(),
            extension: "xml".into(),
            media_type: "application/xml".into(),
        }
    }

    fn needs(_options: Vec<OptionPair>) -> Detail {
        Detail::Full
    }

    fn render(scans: Vec<Scan>, options: Vec<OptionPair>) -> Result<Vec<u8>, String> {
        dscan_report_kit::check_options(&options, &[])?;
        let verdict = verdict(&options)?;
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let tests: usize = scans.iter().map(|s| s.controls.len()).sum();
        let failures: u32 = scans.iter().map(|s| s.counts.failed.total).sum();
        let errors: u32 = scans.iter().map(|s| s.counts.profile_error.total).sum();
        let skipped: u32 = scans
            .iter()
            .map(|s| s.counts.not_reviewed.total + s.counts.not_applicable.total)
            .sum();
        let time: f64 = scans
            .iter()
            .flat_map(|s| s.controls.iter())
            .map(run_time)
            .sum();
        let _ = writeln!(
            out,
            r#"<testsuites name="dscan" tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{}">"#,
            seconds(time)
        );
        for scan in &scans {
            suite(&mut out, scan, verdict.as_ref());
        }
        out.push_str("</testsuites>\n");
        Ok(out.into_bytes())
    }
}

dscan_plugin_sdk::reporter::export!(Junit);
