//! Threshold files and inline strings: parsing into [`Thresholds`].
//!
//! Accepted shapes (mixable, since lodash's `get` in SAF CLI also finds dotted
//! keys at any level): nested maps, flattened dotted keys, YAML or JSON.
//! Unlike SAF CLI, every key is kept (SAF keeps only the last flattened key
//! per bucket), unknown keys and non-numeric values are errors (SAF ignores
//! them, so a typo silently disables a gate), and an empty file is an error.

use serde_json::Value;

/// Threshold status names, indexed as in [`Thresholds::status`].
pub const STATUS_NAMES: [&str; 5] = ["passed", "failed", "skipped", "error", "no_impact"];
/// Severity names, indexed as in [`StatusThreshold::severity`].
pub const SEVERITY_NAMES: [&str; 5] = ["critical", "high", "medium", "low", "none"];
/// Index of `no_impact` in [`STATUS_NAMES`].
pub const NO_IMPACT: usize = 4;
/// Index of `none` in [`SEVERITY_NAMES`].
pub const NONE: usize = 4;

/// A min/max pair.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Bound {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Thresholds for one severity of one status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SeverityThreshold {
    pub bound: Bound,
    pub controls: Option<Vec<String>>,
}

/// Thresholds for one status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StatusThreshold {
    /// `status.total: N` — the count must equal N.
    pub total_exact: Option<f64>,
    /// `status.total.{min,max}`.
    pub total: Bound,
    /// Per severity, indexed like [`SEVERITY_NAMES`].
    pub severity: [SeverityThreshold; 5],
}

/// A whole threshold definition.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Thresholds {
    pub compliance: Bound,
    /// Indexed like [`STATUS_NAMES`].
    pub status: [StatusThreshold; 5],
}

const VALID_KEYS: &str = "compliance.{min,max}; {passed,failed,skipped,error,no_impact}.total; \
    {…}.total.{min,max}; {…}.{critical,high,medium,low}.{min,max,controls}; \
    no_impact.none.{min,max,controls}";

/// Parses a threshold file (YAML or JSON).
pub fn parse_file(text: &str) -> Result<Thresholds, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err("the threshold file is empty, so nothing would be checked; \
                    generate one with `dscan generate threshold -i RESULTS.json`"
            .into());
    }
    let value: Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).or_else(|json_err| {
            serde_saphyr::from_str(trimmed)
                .map_err(|_| format!("the threshold file is not valid JSON: {json_err}"))
        })?
    } else {
        serde_saphyr::from_str(trimmed).map_err(|e| {
            format!(
                "the threshold file is not valid YAML: {}",
                first_line(&e.to_string())
            )
        })?
    };
    from_value(&value)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Parses an inline threshold string: `"{compliance.min: 80}, {failed.total.max: 2}"`.
pub fn parse_inline(text: &str) -> Result<Thresholds, String> {
    let mut map = serde_json::Map::new();
    for item in text.split(',') {
        let item = item.trim().replacen('{', "", 1).replacen('}', "", 1);
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((key, value)) = item.split_once(':') else {
            return Err(format!(
                "inline threshold `{item}` is not `key: value` (e.g. `{{compliance.min: 80}}`)"
            ));
        };
        let key = key.trim();
        let value = value.trim();
        if value.starts_with('{') {
            return Err(format!(
                "inline threshold `{key}`: nested values like `{{{key}: {value}...}}` are not taken inline; \
                 write dotted keys, one per braces (`{{compliance.min: 80}}, {{passed.critical.min: 0}}`), \
                 or put nested YAML in a threshold file (-T)"
            ));
        }
        let number: f64 = value
            .parse::<i64>()
            .map(|n| n as f64)
            .or_else(|_| value.parse::<f64>())
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("inline threshold `{key}`: `{value}` is not a number"))?;
        if map
            .insert(key.to_string(), serde_json::json!(number))
            .is_some()
        {
            return Err(format!("inline threshold `{key}` is given twice"));
        }
    }
    if map.is_empty() {
        return Err("the inline threshold is empty, so nothing would be checked".into());
    }
    from_value(&Value::Object(map))
}

/// Interprets a parsed document.
pub fn from_value(value: &Value) -> Result<Thresholds, String> {
    let Value::Object(_) = value else {
        return Err(match value {
            Value::Null => "the threshold file is empty, so nothing would be checked".into(),
            other => format!(
                "a threshold file is a map of keys ({VALID_KEYS}), not {}",
                kind(other)
            ),
        });
    };
    let mut leaves = Vec::new();
    collect_leaves(value, &mut Vec::new(), &mut leaves);
    if leaves.is_empty() {
        return Err("the threshold defines no checks, so nothing would be checked".into());
    }
    let mut t = Thresholds::default();
    for (path, leaf) in leaves {
        assign(&mut t, &path, leaf)?;
    }
    Ok(t)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Flattens nested maps, splitting dotted keys, into (path, leaf) pairs.
fn collect_leaves<'a>(
    v: &'a Value,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'a Value)>,
) {
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                let depth = path.len();
                path.extend(key.split('.').map(|s| s.trim().to_string()));
                collect_leaves(child, path, out);
                path.truncate(depth);
            }
        }
        leaf => out.push((path.clone(), leaf)),
    }
}

fn number(path: &str, v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("`{path}` is out of range")),
        other => Err(format!("`{path}` must be a number, not {}", kind(other))),
    }
}

fn set_once<T>(slot: &mut Option<T>, path: &str, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("`{path}` is given twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn assign(t: &mut Thresholds, path: &[String], v: &Value) -> Result<(), String> {
    let dotted = path.join(".");
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["compliance", "min"] => set_once(&mut t.compliance.min, &dotted, number(&dotted, v)?),
        ["compliance", "max"] => set_once(&mut t.compliance.max, &dotted, number(&dotted, v)?),
        [status, rest @ ..] if STATUS_NAMES.contains(status) => {
            let si = STATUS_NAMES.iter().position(|s| s == status).unwrap_or(0);
            let st = &mut t.status[si];
            match rest {
                ["total"] => set_once(&mut st.total_exact, &dotted, number(&dotted, v)?),
                ["total", "min"] => set_once(&mut st.total.min, &dotted, number(&dotted, v)?),
                ["total", "max"] => set_once(&mut st.total.max, &dotted, number(&dotted, v)?),
                [sev, field] if SEVERITY_NAMES.contains(sev) => {
                    let vi = SEVERITY_NAMES.iter().position(|s| s == sev).unwrap_or(0);
                    if vi == NONE && si != NO_IMPACT {
                        return Err(format!(
                            "`{dotted}`: the `none` severity is only counted under no_impact \
                             (controls with impact 0 are Not Applicable)"
                        ));
                    }
                    let sv = &mut st.severity[vi];
                    match *field {
                        "min" => set_once(&mut sv.bound.min, &dotted, number(&dotted, v)?),
                        "max" => set_once(&mut sv.bound.max, &dotted, number(&dotted, v)?),
                        "controls" => set_once(&mut sv.controls, &dotted, control_ids(&dotted, v)?),
                        _ => Err(unknown(&dotted)),
                    }
                }
                _ => Err(unknown(&dotted)),
            }
        }
        _ => Err(unknown(&dotted)),
    }
}

fn control_ids(path: &str, v: &Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else {
        return Err(format!(
            "`{path}` must be a list of control ids, not {}",
            kind(v)
        ));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!("`{path}` holds {}, not a control id", kind(other))),
        })
        .collect()
}

fn unknown(path: &str) -> String {
    format!("`{path}` is not a threshold key (valid keys: {VALID_KEYS})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_flat_and_mixed_forms_agree() {
        let nested = parse_file(
            "compliance:\n  min: 80\nfailed:\n  critical:\n    max: 0\n  total:\n    max: 3\n",
        )
        .unwrap();
        let flat = parse_file("compliance.min: 80\nfailed.critical.max: 0\nfailed.total.max: 3\n")
            .unwrap();
        let mixed =
            parse_file("compliance.min: 80\nfailed:\n  critical.max: 0\n  total.max: 3\n").unwrap();
        assert_eq!(nested, flat);
        assert_eq!(nested, mixed);
        assert_eq!(nested.compliance.min, Some(80.0));
        assert_eq!(nested.status[1].severity[0].bound.max, Some(0.0));
        assert_eq!(nested.status[1].total.max, Some(3.0));
    }

    #[test]
    fn flattened_keys_in_one_bucket_are_all_kept() {
        let t = parse_file("passed.critical.min: 1\npassed.critical.max: 5\n").unwrap();
        assert_eq!(
            t.status[0].severity[0].bound,
            Bound {
                min: Some(1.0),
                max: Some(5.0)
            }
        );
    }

    #[test]
    fn json_files_parse() {
        let t = parse_file(r#"{"compliance": {"min": 50}, "passed.total": 3}"#).unwrap();
        assert_eq!(t.compliance.min, Some(50.0));
        assert_eq!(t.status[0].total_exact, Some(3.0));
    }

    #[test]
    fn nested_inline_thresholds_say_which_syntax_is_expected() {
        let err = parse_inline("{compliance: {min: 80}}").unwrap_err();
        assert!(
            err.contains("nested values")
                && err.contains("{compliance.min: 80}")
                && err.contains("-T"),
            "{err}"
        );
    }

    #[test]
    fn inline_strings_parse_like_saf() {
        let t =
            parse_inline("{compliance.min: 66}, {passed.critical.min: 0}, {failed.medium.min: 97}")
                .unwrap();
        assert_eq!(t.compliance.min, Some(66.0));
        assert_eq!(t.status[0].severity[0].bound.min, Some(0.0));
        assert_eq!(t.status[1].severity[2].bound.min, Some(97.0));
    }

    #[test]
    fn bad_inputs_are_errors_that_say_what_to_do() {
        for (input, needle) in [
            ("", "empty"),
            ("   \n", "empty"),
            ("~", "empty"),
            ("{}", "no checks"),
            ("[1, 2]", "not a list"),
            (
                "complaince.min: 80",
                "`complaince.min` is not a threshold key",
            ),
            ("compliance.min: eighty", "must be a number"),
            ("passed.none.min: 1", "only counted under no_impact"),
            ("failed.high.controls: V-1", "must be a list"),
            ("compliance.min: 1\ncompliance:\n  min: 2\n", "given twice"),
            ("compliance: [", "not valid YAML"),
        ] {
            let err = parse_file(input).unwrap_err();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
        for (input, needle) in [
            ("", "empty"),
            ("{compliance.min: abc}", "not a number"),
            ("{compliance.min 80}", "not `key: value`"),
            ("{compliance.min: 1}, {compliance.min: 2}", "given twice"),
        ] {
            let err = parse_inline(input).unwrap_err();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn yaml_bombs_are_refused_by_the_parser_budget() {
        let mut bomb =
            String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
        let mut prev = 'a';
        for name in 'b'..='k' {
            bomb.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = name;
        }
        assert!(parse_file(&bomb).is_err());
    }
}
