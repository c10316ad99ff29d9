//! `generate threshold`: a threshold file that the given results pass, in
//! SAF CLI's layout (key order and YAML shape).

use super::model::{ControlStatus, Scan, Severity, SeverityCounts};

/// Options of `generate threshold`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenerateOptions {
    /// `-e`: exact values (min and max) for every count.
    pub exact: bool,
    /// `-c`: list control ids per status and severity.
    pub control_ids: bool,
}

/// An ordered YAML tree (insertion order is SAF's output order).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Int(u32),
    List(Vec<String>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn map_mut(&mut self) -> &mut Vec<(String, Node)> {
        if !matches!(self, Node::Map(_)) {
            *self = Node::Map(Vec::new());
        }
        match self {
            Node::Map(entries) => entries,
            _ => unreachable!("just made a map"),
        }
    }

    /// The node at `path`, created (as maps, appended) where missing.
    fn at(&mut self, path: &[&str]) -> &mut Node {
        let Some((first, rest)) = path.split_first() else {
            return self;
        };
        let entries = self.map_mut();
        let i = match entries.iter().position(|(k, _)| k == first) {
            Some(i) => i,
            None => {
                entries.push((first.to_string(), Node::Map(Vec::new())));
                entries.len() - 1
            }
        };
        entries[i].1.at(rest)
    }

    fn set(&mut self, path: &[&str], value: Node) {
        *self.at(path) = value;
    }
}

const STATUS_KEYS: [&str; 5] = ["passed", "failed", "skipped", "error", "no_impact"];

fn status_key(s: ControlStatus) -> &'static str {
    match s {
        ControlStatus::Passed => "passed",
        ControlStatus::Failed => "failed",
        ControlStatus::NotReviewed => "skipped",
        ControlStatus::ProfileError => "error",
        ControlStatus::NotApplicable => "no_impact",
    }
}

fn counts_for<'a>(scan: &'a Scan, status: &str) -> &'a SeverityCounts {
    let c = &scan.counts;
    match status {
        "passed" => &c.passed,
        "failed" => &c.failed,
        "skipped" => &c.not_reviewed,
        "error" => &c.profile_error,
        _ => &c.not_applicable,
    }
}

/// Renders the threshold YAML (without SAF's extra trailing newline).
pub fn generate_threshold(scan: &Scan, options: GenerateOptions) -> String {
    let mut root = Node::Map(Vec::new());
    root.set(&["compliance", "min"], Node::Int(scan.counts.compliance));
    if options.exact {
        root.set(&["compliance", "max"], Node::Int(scan.counts.compliance));
    }
    let severities = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::None,
    ];
    for severity in severities {
        for status in STATUS_KEYS {
            if severity == Severity::None && status != "no_impact" {
                continue;
            }
            let n = counts_for(scan, status).get(severity);
            for bound in ["min", "max"] {
                let wanted = options.exact || (status == "passed") == (bound == "min");
                if wanted {
                    root.set(&[status, severity.key(), bound], Node::Int(n));
                }
            }
        }
    }
    root.set(
        &["passed", "total", "min"],
        Node::Int(scan.counts.passed.total),
    );
    root.set(
        &["failed", "total", "max"],
        Node::Int(scan.counts.failed.total),
    );
    root.set(
        &["skipped", "total", "max"],
        Node::Int(scan.counts.not_reviewed.total),
    );
    root.set(
        &["error", "total", "max"],
        Node::Int(scan.counts.profile_error.total),
    );
    root.set(
        &["no_impact", "total", "max"],
        Node::Int(scan.counts.not_applicable.total),
    );
    if options.control_ids {
        for control in &scan.controls {
            let node = root.at(&[
                status_key(control.status),
                control.severity.key(),
                "controls",
            ]);
            match node {
                Node::List(ids) => ids.push(control.id.clone()),
                other => *other = Node::List(vec![control.id.clone()]),
            }
        }
    }
    let mut out = String::new();
    if let Node::Map(entries) = &root {
        write_map(&mut out, entries, 0);
    }
    out
}

fn write_map(out: &mut String, entries: &[(String, Node)], indent: usize) {
    for (key, node) in entries {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_string(key));
        match node {
            Node::Int(n) => out.push_str(&format!(": {n}\n")),
            Node::Map(children) if children.is_empty() => out.push_str(": {}\n"),
            Node::Map(children) => {
                out.push_str(":\n");
                write_map(out, children, indent + 2);
            }
            Node::List(items) if items.is_empty() => out.push_str(": []\n"),
            Node::List(items) => {
                out.push_str(":\n");
                for item in items {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str("- ");
                    out.push_str(&yaml_string(item));
                    out.push('\n');
                }
            }
        }
    }
}

/// A YAML scalar for `s`: plain when that reads back as the same string,
/// double-quoted (JSON escaping, valid YAML) otherwise.
pub(crate) fn yaml_string(s: &str) -> String {
    let plain_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' '));
    let starts_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
    );
    if plain_chars && starts_ok && !reserved && !s.ends_with(' ') && !s.contains(" -") {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_strings_quote_only_when_needed() {
        assert_eq!(yaml_string("V-230221"), "V-230221");
        assert_eq!(yaml_string("SV-1234r1_rule"), "SV-1234r1_rule");
        assert_eq!(yaml_string("1.1.1"), "\"1.1.1\"");
        assert_eq!(yaml_string("true"), "\"true\"");
        assert_eq!(yaml_string("a: b"), "\"a: b\"");
        assert_eq!(yaml_string(""), "\"\"");
    }

    #[test]
    fn nodes_keep_insertion_order() {
        let mut root = Node::Map(Vec::new());
        root.set(&["b", "x"], Node::Int(1));
        root.set(&["a"], Node::Int(2));
        root.set(&["b", "z"], Node::Int(3));
        let mut out = String::new();
        if let Node::Map(e) = &root {
            write_map(&mut out, e, 0);
        }
        assert_eq!(out, "b:\n  x: 1\n  z: 3\na: 2\n");
    }
}
