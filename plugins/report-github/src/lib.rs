//! `github` reporter: a GitHub Actions step summary (append it to
//! `$GITHUB_STEP_SUMMARY`): verdict, compliance, counts and the top failures.

use std::fmt::Write;

use dscan_plugin_sdk::reporter::{
    Control, ControlStatus, Detail, FormatInfo, Guest, OptionPair, PluginInfo, Scan,
};
use dscan_report_kit::controls::{first_problem, severity_label, severity_rank};
use dscan_report_kit::escape::markdown_cell;
use dscan_report_kit::{str_option, verdict};

struct Github;

const DEFAULT_TOP: usize = 10;

fn section(out: &mut String, scan: &Scan, top: usize) {
    let name = scan
        .profiles
        .first()
        .map(|p| p.name.as_str())
        .unwrap_or("results");
    let c = &scan.counts;
    let _ = writeln!(
        out,
        "### {} ({})\n",
        markdown_cell(name),
        markdown_cell(&scan.source)
    );
    let _ = writeln!(
        out,
        "**Compliance: {}%** · {} passed · {} failed · {} not reviewed · {} not applicable · {} profile errors\n",
        c.compliance,
        c.passed.total,
        c.failed.total,
        c.not_reviewed.total,
        c.not_applicable.total,
        c.profile_error.total
    );
    out.push_str(
        "| Severity | Passed | Failed | Not Reviewed | Not Applicable | Profile Error |\n",
    );
    out.push_str("| :-- | --: | --: | --: | --: | --: |\n");
    let rows = [
        (
            "critical",
            c.passed.critical,
            c.failed.critical,
            c.not_reviewed.critical,
            c.not_applicable.critical,
            c.profile_error.critical,
        ),
        (
            "high",
            c.passed.high,
            c.failed.high,
            c.not_reviewed.high,
            c.not_applicable.high,
            c.profile_error.high,
        ),
        (
            "medium",
            c.passed.medium,
            c.failed.medium,
            c.not_reviewed.medium,
            c.not_applicable.medium,
            c.profile_error.medium,
        ),
        (
            "low",
            c.passed.low,
            c.failed.low,
            c.not_reviewed.low,
            c.not_applicable.low,
            c.profile_error.low,
        ),
        (
            "none",
            c.passed.none,
            c.failed.none,
            c.not_reviewed.none,
            c.not_applicable.none,
            c.profile_error.none,
        ),
        (
            "**total**",
            c.passed.total,
            c.failed.total,
            c.not_reviewed.total,
            c.not_applicable.total,
            c.profile_error.total,
        ),
    ];
    for (label, p, f, nr, na, e) in rows {
        let _ = writeln!(out, "| {label} | {p} | {f} | {nr} | {na} | {e} |");
    }
    let mut problems: Vec<&Control> = scan
        .controls
        .iter()
        .filter(|c| {
            matches!(
                c.status,
                ControlStatus::Failed | ControlStatus::ProfileError
            )
        })
        .collect();
    problems.sort_by_key(|c| severity_rank(c.severity));
    if problems.is_empty() {
        out.push_str("\nNo failed controls.\n\n");
        return;
    }
    let _ = writeln!(
        out,
        "\n#### Top failures ({} of {})\n",
        problems.len().min(top),
        problems.len()
    );
    out.push_str("| Control | Severity | Title | First failure |\n| :-- | :-- | :-- | :-- |\n");
    for c in problems.iter().take(top) {
        let mut first = first_problem(c).unwrap_or_default();
        if first.chars().count() > 200 {
            first = first.chars().take(200).collect::<String>() + "…";
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            markdown_cell(&c.id),
            severity_label(c.severity),
            markdown_cell(c.title.as_deref().unwrap_or("")),
            markdown_cell(&first)
        );
    }
    out.push('\n');
}

impl Guest for Github {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "github",
            "GitHub Actions step summary: verdict, compliance, counts, top failures"
        )
    }

    fn format() -> FormatInfo {
        FormatInfo {
            name: "github".into(),
            extension: "md".into(),
            media_type: "text/markdown".into(),
        }
    }

    fn needs(_options: Vec<OptionPair>) -> Detail {
        Detail::Full
    }

    fn render(scans: Vec<Scan>, options: Vec<OptionPair>) -> Result<Vec<u8>, String> {
        dscan_report_kit::check_options(&options, &["top"])?;
        let top = match str_option(&options, "top") {
            None => DEFAULT_TOP,
            Some(v) => v
                .parse()
                .map_err(|_| format!("option top: `{v}` is not a number"))?,
        };
        let mut out = String::from("## dscan compliance\n\n");
        match verdict(&options)? {
            Some(v) if v.passed => {
                out.push_str("**Verdict: :white_check_mark: thresholds passed**\n\n")
            }
            Some(v) => {
                out.push_str("**Verdict: :x: thresholds not met**");
                if let Some(d) = v.detail {
                    let _ = write!(out, " — {}", markdown_cell(&d));
                }
                out.push_str("\n\n");
            }
            None => out.push_str("_No thresholds were evaluated._\n\n"),
        }
        for scan in &scans {
            section(&mut out, scan, top);
        }
        Ok(out.into_bytes())
    }
}

dscan_plugin_sdk::reporter::export!(Github);
