//! `yaml` reporter: the summary as SAF CLI's `view summary -f yaml` prints it.

use dscan_plugin_sdk::reporter::{Detail, FormatInfo, Guest, OptionPair, PluginInfo, Scan};
use dscan_report_kit::{js_number, summarize, yaml_string};

struct Yaml;

impl Guest for Yaml {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "yaml",
            "compliance summary as YAML (saf view summary -f yaml)"
        )
    }

    fn format() -> FormatInfo {
        FormatInfo {
            name: "yaml".into(),
            extension: "yml".into(),
            media_type: "application/yaml".into(),
        }
    }

    fn needs(_options: Vec<OptionPair>) -> Detail {
        Detail::Summary
    }

    fn render(scans: Vec<Scan>, options: Vec<OptionPair>) -> Result<Vec<u8>, String> {
        dscan_report_kit::check_options(&options, &[])?;
        let summaries = summarize(&scans);
        if summaries.is_empty() {
            return Ok(b"[]\n".to_vec());
        }
        let mut out = String::new();
        for s in &summaries {
            out.push_str(&format!(
                "- profileName: {}\n",
                yaml_string(&s.profile_name)
            ));
            out.push_str("  resultSets:\n");
            for r in &s.result_sets {
                out.push_str(&format!("    - {}\n", yaml_string(r)));
            }
            out.push_str(&format!("  compliance: {}\n", js_number(s.compliance)));
            for (status, row) in &s.statuses {
                out.push_str(&format!("  {status}:\n"));
                for (k, n) in row {
                    out.push_str(&format!("    {k}: {n}\n"));
                }
            }
        }
        Ok(out.into_bytes())
    }
}

dscan_plugin_sdk::reporter::export!(Yaml);
