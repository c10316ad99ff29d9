//! Configuration-file resources: InSpec's SimpleConfig parsing
//! (parse_config, parse_config_file, login_defs, sshd_config) and the
//! json/yaml resources.

use indexmap::IndexMap;

use crate::value::{Key, Value};

/// SimpleConfig's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// `key`/`value` capture groups 1 and 2.
    pub assignment: regex::Regex,
    /// Comments start here (the rest of the line is dropped).
    pub comment: Option<char>,
    /// Repeated keys collect arrays.
    pub multiple_values: bool,
}

impl Options {
    /// parse_config's defaults: `key = value`, `#` comments.
    pub fn equals() -> Options {
        Options {
            assignment: regex::Regex::new(r"^\s*(.*?)\s*=\s*(.*?)\s*$").expect("a valid pattern"),
            comment: Some('#'),
            multiple_values: false,
        }
    }

    /// `key value` (login.defs).
    pub fn spaced() -> Options {
        Options {
            assignment: regex::Regex::new(r"^\s*(\S+)\s+(\S*)\s*$").expect("a valid pattern"),
            comment: Some('#'),
            multiple_values: false,
        }
    }

    /// sshd_config: `Key value…`, repeated keys kept.
    pub fn ssh() -> Options {
        Options {
            assignment: regex::Regex::new(r"^\s*(\S+)\s+(.*?)\s*$").expect("a valid pattern"),
            comment: Some('#'),
            multiple_values: true,
        }
    }
}

/// Parses `text` into params (values keep their quotes, as InSpec's do).
pub fn parse(text: &str, opts: &Options) -> IndexMap<Key, Value> {
    let mut params: IndexMap<Key, Value> = IndexMap::new();
    for raw in text.lines() {
        let line = match opts.comment {
            Some(c) => raw.split(c).next().unwrap_or(""),
            None => raw,
        };
        if line.trim().is_empty() {
            continue;
        }
        let Some(m) = opts.assignment.captures(line) else {
            continue;
        };
        let key = m.get(1).map(|k| k.as_str()).unwrap_or("").to_string();
        let value = Value::str(m.get(2).map(|v| v.as_str()).unwrap_or(""));
        if opts.multiple_values {
            match params.get(&Key::Str(key.clone())) {
                Some(Value::Array(a)) => a.borrow_mut().push(value),
                _ => {
                    params.insert(Key::Str(key), Value::array(vec![value]));
                }
            }
        } else {
            params.insert(Key::Str(key), value);
        }
    }
    params
}

/// Options from a resource's option hash (`assignment_regex:`,
/// `comment_char:`, `multiple_values:`).
pub fn options_from(base: Options, hash: Option<&Value>) -> Options {
    let mut o = base;
    let Some(Value::Hash(h)) = hash else { return o };
    let h = h.borrow();
    if let Some(Value::Regex(r)) = h.get(&Key::Sym("assignment_regex".into())) {
        o.assignment = r.re.clone();
    }
    if let Some(v) = h.get(&Key::Sym("comment_char".into())) {
        o.comment = v.to_s().chars().next();
    }
    if let Some(v) = h.get(&Key::Sym("multiple_values".into())) {
        o.multiple_values = v.truthy();
    }
    o
}

/// A JSON or YAML document as a value.
pub fn from_json(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(0.0))),
        serde_json::Value::String(s) => Value::str(s),
        serde_json::Value::Array(a) => Value::array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::hash(
            o.iter()
                .map(|(k, v)| (Key::Str(k.clone()), from_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_stay_and_repeated_keys_collect() {
        let p = parse("ID=debian\nVERSION_ID=\"12\" # c\n", &Options::equals());
        assert_eq!(p[&Key::Str("VERSION_ID".into())].to_s(), "\"12\"");
        let s = parse("Port 22\nPort 2222\n#Port 1\n", &Options::ssh());
        assert_eq!(s[&Key::Str("Port".into())].inspect(), "[\"22\", \"2222\"]");
    }
}
