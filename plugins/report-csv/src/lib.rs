//! `csv` reporter: one row per counted control with SAF `hdf2csv`'s default
//! columns. Fields are quoted per RFC 4180 and formula-like cells are made
//! inert. Rows end with CRLF, as RFC 4180 specifies.

use dscan_plugin_sdk::reporter::{
    Control, Detail, FormatInfo, Guest, OptionPair, PluginInfo, Scan,
};
use dscan_report_kit::controls::{
    description, result_label, severity_label, status_label, tag_list,
};
use dscan_report_kit::escape::csv;

struct Csv;

/// SAF hdf2csv's default columns, in order.
const COLUMNS: [&str; 16] = [
    "Results Set",
    "Status",
    "ID",
    "Title",
    "Description",
    "Descriptions",
    "Impact",
    "Severity",
    "Code",
    "Check",
    "Fix",
    "800-53 Controls",
    "CCI IDs",
    "Results",
    "Waived",
    "Waiver Data",
];

/// A tag as text: strings as they are, anything else as JSON.
fn tag_text(c: &Control, name: &str) -> Option<String> {
    let t = c.tags.iter().find(|t| t.name == name)?;
    match serde_json::from_str::<serde_json::Value>(&t.value_json) {
        Ok(serde_json::Value::String(s)) => Some(s),
        Ok(serde_json::Value::Null) => None,
        _ => Some(t.value_json.clone()),
    }
}

/// The control's `code`, from its unmodelled fields.
fn code(c: &Control) -> String {
    serde_json::from_str::<serde_json::Value>(&c.extra_json)
        .ok()
        .and_then(|v| {
            v.get("code")
                .and_then(|code| code.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn row(scan: &Scan, c: &Control) -> Vec<String> {
    let descriptions: String = c
        .descriptions
        .iter()
        .map(|d| format!("{}: {}\r\n\r\n", d.label, d.data))
        .collect();
    let results: String = c
        .results
        .iter()
        .map(|r| {
            let status = result_label(r.status).to_uppercase();
            match &r.message {
                Some(m) => format!("{status} -- Test: {}\r\nMessage: {m}\r\n\r\n", r.code_desc),
                None => format!("{status} -- Test: {}\r\n\r\n", r.code_desc),
            }
        })
        .collect();
    vec![
        scan.source.clone(),
        status_label(c.status).to_string(),
        c.id.clone(),
        c.title.clone().unwrap_or_default(),
        c.desc.clone().unwrap_or_default(),
        descriptions,
        c.impact.to_string(),
        severity_label(c.severity).to_string(),
        code(c),
        tag_text(c, "check")
            .or_else(|| description(c, "check").map(str::to_string))
            .unwrap_or_default(),
        tag_text(c, "fix")
            .or_else(|| description(c, "fix").map(str::to_string))
            .unwrap_or_default(),
        tag_list(c, "nist").join(", "),
        tag_list(c, "cci").join(", "),
        results,
        c.waived.to_string(),
        c.waiver_justification.clone().unwrap_or_default(),
    ]
}

impl Guest for Csv {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "csv",
            "CSV with SAF hdf2csv's default columns, one row per control"
        )
    }

    fn format() -> FormatInfo {
        FormatInfo {
            name: "csv".into(),
            extension: "csv".into(),
            media_type: "text/csv".into(),
        }
    }

    fn needs(_options: Vec<OptionPair>) -> Detail {
        Detail::Full
    }

    fn render(scans: Vec<Scan>, options: Vec<OptionPair>) -> Result<Vec<u8>, String> {
        dscan_report_kit::check_options(&options, &[])?;
        let mut out = COLUMNS.iter().map(|c| csv(c)).collect::<Vec<_>>().join(",");
        out.push_str("\r\n");
        for scan in &scans {
            for c in &scan.controls {
                out.push_str(
                    &row(scan, c)
                        .iter()
                        .map(|f| csv(f))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                out.push_str("\r\n");
            }
        }
        Ok(out.into_bytes())
    }
}

dscan_plugin_sdk::reporter::export!(Csv);
