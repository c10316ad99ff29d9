//! `markdown` reporter: SAF CLI's `view summary -f markdown` tables, byte for
//! byte (GitHub-flavoured, columns aligned).

use dscan_plugin_sdk::reporter::ControlStatus;
use dscan_plugin_sdk::reporter::{Detail, FormatInfo, Guest, OptionPair, PluginInfo, Scan};
use dscan_report_kit::controls::{first_problem, severity_label, severity_rank};
use dscan_report_kit::escape::{markdown_cell, markdown_heading};
use dscan_report_kit::{ProfileSummary, bool_option, js_number, summarize, target_rows, verdict};

struct Markdown;

const COLUMNS: [(&str, &str, &str); 5] = [
    ("passed", "Passed", ":white_check_mark:"),
    ("failed", "Failed", ":x:"),
    ("skipped", "Not Reviewed", ":leftwards_arrow_with_hook:"),
    ("no_impact", "Not Applicable", ":heavy_minus_sign:"),
    ("error", "Error", ":warning:"),
];
const ROWS: [(&str, &str); 5] = [
    ("total", "Total"),
    ("critical", "Critical"),
    ("high", "High"),
    ("medium", "Medium"),
    ("low", "Low"),
];

/// Width as JavaScript's `String.length` counts it (UTF-16 units).
fn width(s: &str) -> usize {
    s.encode_utf16().count()
}

fn pad_end(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

fn center(s: &str, w: usize) -> String {
    let left = ((w + width(s)) / 2).saturating_sub(width(s));
    pad_end(&format!("{}{s}", " ".repeat(left)), w)
}

fn table(s: &ProfileSummary) -> String {
    let mut head = vec![format!(
        "Compliance: {}<br>:test_tube:",
        js_number(s.compliance)
    )];
    head.extend(
        COLUMNS
            .iter()
            .map(|(_, title, emoji)| format!("{title}<br>{emoji}")),
    );
    let body: Vec<Vec<String>> = ROWS
        .iter()
        .map(|(key, title)| {
            let mut row = vec![title.to_string()];
            row.extend(
                COLUMNS
                    .iter()
                    .map(|(status, _, _)| s.count(status, key).to_string()),
            );
            row
        })
        .collect();
    let mut widths = vec![3usize; head.len()];
    for r in std::iter::once(&head).chain(body.iter()) {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let line = |r: &Vec<String>| {
        let mut out = String::from("|");
        for (i, cell) in r.iter().enumerate() {
            let cell = if i == 0 {
                pad_end(cell, widths[i])
            } else {
                center(cell, widths[i])
            };
            out.push_str(&format!(" {cell} |"));
        }
        out
    };
    let mut align = String::from("|");
    for (i, w) in widths.iter().enumerate() {
        let dashes = "-".repeat(w.saturating_sub(2).max(1));
        align.push_str(&format!(" :{dashes}{} |", if i == 0 { "-" } else { ":" }));
    }
    let mut out = vec![line(&head), align];
    out.extend(body.iter().map(line));
    out.join("\n")
}

/// Failed and errored controls of one profile's scans, most severe first.
fn failure_table(scans: &[Scan], profile: &str) -> String {
    let mut rows: Vec<_> = scans
        .iter()
        .filter(|s| s.profiles.first().is_some_and(|p| p.name == profile))
        .flat_map(|s| s.controls.iter())
        .filter(|c| {
            matches!(
                c.status,
                ControlStatus::Failed | ControlStatus::ProfileError
            )
        })
        .collect();
    rows.sort_by_key(|c| severity_rank(c.severity));
    if rows.is_empty() {
        return "\n\nNo failed controls.".to_string();
    }
    let mut out = String::from(
        "\n\n| Control | Severity | Title | First failure |\n| :-- | :-- | :-- | :-- |",
    );
    for c in rows {
        out.push_str(&format!(
            "\n| {} | {} | {} | {} |",
            markdown_cell(&c.id),
            severity_label(c.severity),
            markdown_cell(c.title.as_deref().unwrap_or("")),
            markdown_cell(&first_problem(c).unwrap_or_default())
        ));
    }
    out
}

impl Guest for Markdown {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "markdown",
            "compliance summary as Markdown tables (saf view summary -f markdown)"
        )
    }

    fn format() -> FormatInfo {
        FormatInfo {
            name: "markdown".into(),
            extension: "md".into(),
            media_type: "text/markdown".into(),
        }
    }

    fn needs(options: Vec<OptionPair>) -> Detail {
        // The failures table needs each control's results; the summary
        // tables need only the counts.
        if bool_option(&options, "failures", false).unwrap_or(false) {
            Detail::Full
        } else {
            Detail::Summary
        }
    }

    fn render(scans: Vec<Scan>, options: Vec<OptionPair>) -> Result<Vec<u8>, String> {
        dscan_report_kit::check_options(&options, &["failures", "title-table"])?;
        let titles = bool_option(&options, "title-table", true)?;
        let failures = bool_option(&options, "failures", false)?;
        let tables: Vec<String> = summarize(&scans)
            .iter()
            .map(|s| {
                let title = if titles {
                    format!("# {}\n\n", markdown_heading(&s.profile_name))
                } else {
                    String::new()
                };
                let mut text = format!("{title}{}", table(s));
                if failures {
                    text.push_str(&failure_table(&scans, &s.profile_name));
                }
                text
            })
            .collect();
        let mut out = tables.join("\n\n");
        let targets = target_rows(&options)?;
        if !targets.is_empty() {
            out.push_str(
                "\n\n# Targets\n\n| Namespace | Pod | Container | Image | Verdict | Compliance |\n| :-- | :-- | :-- | :-- | :-- | --: |",
            );
            for t in &targets {
                out.push_str(&format!(
                    "\n| {} | {} | {} | {} | {} | {} |",
                    markdown_cell(&t.namespace),
                    markdown_cell(&t.pod),
                    markdown_cell(&t.container),
                    markdown_cell(&t.image_id),
                    markdown_cell(&t.verdict),
                    markdown_cell(&t.compliance)
                ));
            }
        }
        // Only when thresholds were evaluated, so the plain summary stays
        // byte-identical to SAF's.
        match verdict(&options)? {
            Some(v) if v.passed => out.push_str("\n\n**Verdict: thresholds passed**"),
            Some(v) => {
                out.push_str("\n\n**Verdict: thresholds not met**");
                if let Some(d) = v.detail {
                    out.push_str(&format!(" — {}", markdown_cell(&d)));
                }
            }
            None => {}
        }
        Ok(out.into_bytes())
    }
}

dscan_plugin_sdk::reporter::export!(Markdown);
