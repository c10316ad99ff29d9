//! `json` reporter: the summary as SAF CLI's `view summary -f json` prints it.

use dscan_plugin_sdk::reporter::{Detail, FormatInfo, Guest, OptionPair, PluginInfo, Scan};
use dscan_report_kit::{ProfileSummary, bool_option, js_number, summarize};

struct Json;

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes JSON like `JSON.stringify(value, null, indent)`.
struct Writer {
    out: String,
    pretty: bool,
    depth: usize,
}

impl Writer {
    fn newline(&mut self) {
        if self.pretty {
            self.out.push('\n');
            self.out.push_str(&"  ".repeat(self.depth));
        }
    }
    fn key(&mut self, first: bool, key: &str) {
        if !first {
            self.out.push(',');
        }
        self.newline();
        self.out.push_str(&json_string(key));
        self.out.push_str(if self.pretty { ": " } else { ":" });
    }
    fn open(&mut self, c: char) {
        self.out.push(c);
        self.depth += 1;
    }
    fn close(&mut self, c: char) {
        self.depth -= 1;
        self.newline();
        self.out.push(c);
    }
    fn summary(&mut self, s: &ProfileSummary) {
        self.open('{');
        self.key(true, "profileName");
        self.out.push_str(&json_string(&s.profile_name));
        self.key(false, "resultSets");
        self.open('[');
        for (i, r) in s.result_sets.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.newline();
            self.out.push_str(&json_string(r));
        }
        self.close(']');
        self.key(false, "compliance");
        self.out.push_str(&js_number(s.compliance));
        for (status, row) in &s.statuses {
            self.key(false, status);
            self.open('{');
            for (i, (k, n)) in row.iter().enumerate() {
                self.key(i == 0, k);
                self.out.push_str(&n.to_string());
            }
            self.close('}');
        }
        self.close('}');
    }
}

impl Guest for Json {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "json",
            "compliance summary as JSON (saf view summary -f json)"
        )
    }

    fn format() -> FormatInfo {
        FormatInfo {
            name: "json".into(),
            extension: "json".into(),
            media_type: "application/json".into(),
        }
    }

    fn needs(_options: Vec<OptionPair>) -> Detail {
        Detail::Summary
    }

    fn render(scans: Vec<Scan>, options: Vec<OptionPair>) -> Result<Vec<u8>, String> {
        dscan_report_kit::check_options(&options, &["pretty"])?;
        let pretty = bool_option(&options, "pretty", true)?;
        let summaries = summarize(&scans);
        let mut w = Writer {
            out: String::new(),
            pretty,
            depth: 0,
        };
        if summaries.is_empty() {
            return Ok(b"[]".to_vec());
        }
        w.open('[');
        for (i, s) in summaries.iter().enumerate() {
            if i > 0 {
                w.out.push(',');
            }
            w.newline();
            w.summary(s);
        }
        w.close(']');
        Ok(w.out.into_bytes())
    }
}

dscan_plugin_sdk::reporter::export!(Json);
