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
    /// How many capture groups after the key make the value (more than
    /// one: the value is the array of them, as `key_values:` in InSpec).
    pub key_values: usize,
}

impl Options {
    /// parse_config's defaults: `key = value`, `#` comments.
    pub fn equals() -> Options {
        Options {
            assignment: regex::Regex::new(r"^\s*(.*?)\s*=\s*(.*?)\s*$").expect("a valid pattern"),
            comment: Some('#'),
            multiple_values: false,
            key_values: 1,
        }
    }

    /// `key value` (login.defs).
    pub fn spaced() -> Options {
        Options {
            assignment: regex::Regex::new(r"^\s*(\S+)\s+(\S*)\s*$").expect("a valid pattern"),
            comment: Some('#'),
            multiple_values: false,
            key_values: 1,
        }
    }

    /// limits.conf: `domain type item value`, each domain's lines kept.
    pub fn limits() -> Options {
        Options {
            assignment: regex::Regex::new(r"^\s*(\S+?)\s+(.*?)\s+(.*?)\s+(.*?)\s*$")
                .expect("a valid pattern"),
            comment: Some('#'),
            multiple_values: true,
            key_values: 3,
        }
    }

    /// inetd.conf: `service socket protocol wait user server args`.
    pub fn inetd() -> Options {
        Options {
            assignment: regex::Regex::new(
                r"^\s*(\S+?)\s+(.*?)\s+(.*?)\s+(.*?)\s+(.*?)\s+(.*?)\s+(.*?)\s*$",
            )
            .expect("a valid pattern"),
            comment: Some('#'),
            multiple_values: false,
            key_values: 6,
        }
    }

    /// sshd_config: `Key value…`, repeated keys kept.
    pub fn ssh() -> Options {
        Options {
            assignment: regex::Regex::new(r"^\s*(\S+)\s+(.*?)\s*$").expect("a valid pattern"),
            comment: Some('#'),
            multiple_values: true,
            key_values: 1,
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
        let group = |i: usize| Value::str(m.get(i).map(|v| v.as_str()).unwrap_or(""));
        let value = if opts.key_values > 1 {
            Value::array((2..opts.key_values + 2).map(group).collect())
        } else {
            group(2)
        };
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

/// xinetd's configuration as InSpec's table of services: every
/// `service NAME { key = value }` block of the file and of the files in its
/// `includedir`s, one row each (`protocol` defaulted from `socket_type`).
pub fn xinetd(
    fs: &dyn crate::fs::TargetFs,
    text: &str,
    limit: u64,
    label: String,
) -> crate::resources::table::Table {
    use crate::resources::table::{Flavor, Row, Table};
    fn blocks(text: &str, rows: &mut Vec<Row>, includes: &mut Vec<String>) {
        let mut current: Option<Row> = None;
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if let Some(dir) = line.strip_prefix("includedir") {
                includes.push(dir.trim().to_string());
            } else if let Some(name) = line.strip_prefix("service ") {
                let mut r = Row::new();
                r.insert("service".into(), Value::str(name.trim()));
                current = Some(r);
            } else if line == "}" {
                if let Some(mut r) = current.take() {
                    if !r.contains_key("protocol") {
                        let proto = match r.get("socket_type").map(Value::to_s).as_deref() {
                            Some("stream") => "tcp",
                            Some("dgram") => "udp",
                            _ => "unknown",
                        };
                        r.insert("protocol".into(), Value::str(proto));
                    }
                    rows.push(r);
                }
            } else if let (Some(r), Some((k, v))) = (current.as_mut(), line.split_once('=')) {
                let k = k.trim().trim_end_matches(['+', '-']).trim();
                r.insert(k.to_string(), Value::str(v.trim()));
            }
        }
    }
    let mut rows = Vec::new();
    let mut includes = Vec::new();
    blocks(text, &mut rows, &mut includes);
    // One level of includedir, as xinetd reads it (files in name order).
    for dir in includes {
        let mut names = fs.read_dir(&dir).unwrap_or_default();
        names.sort();
        for n in names {
            if let Ok(b) = fs.read(&format!("{dir}/{n}"), limit) {
                blocks(&String::from_utf8_lossy(&b), &mut rows, &mut Vec::new());
            }
        }
    }
    Table {
        rows,
        columns: [
            ("services", "service"),
            ("ids", "id"),
            ("socket_types", "socket_type"),
            ("types", "type"),
            ("protocols", "protocol"),
            ("wait", "wait"),
        ]
        .iter()
        .map(|(m, f)| (m.to_string(), f.to_string()))
        .collect(),
        custom: None,
        label,
        criteria: String::new(),
        flavor: Flavor::Xinetd,
    }
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

    #[test]
    fn limits_inetd_and_xinetd_read_as_inspec_reads_them() {
        let l = parse(
            "* hard core 0\n@adm soft nofile 1024 # c\n* soft nproc 10\n",
            &Options::limits(),
        );
        assert_eq!(
            l[&Key::Str("*".into())].inspect(),
            "[[\"hard\", \"core\", \"0\"], [\"soft\", \"nproc\", \"10\"]]"
        );
        let i = parse(
            "telnet stream tcp nowait root /usr/sbin/tcpd in.telnetd\n",
            &Options::inetd(),
        );
        assert_eq!(
            i[&Key::Str("telnet".into())].inspect(),
            "[\"stream\", \"tcp\", \"nowait\", \"root\", \"/usr/sbin/tcpd\", \"in.telnetd\"]"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/xinetd.d")).unwrap();
        std::fs::write(
            dir.path().join("etc/xinetd.d/tftp"),
            "service tftp\n{\n  socket_type = dgram\n  disable = no\n}\n",
        )
        .unwrap();
        let fs = crate::fs::RootDir::open(dir.path()).unwrap();
        let t = xinetd(
            &fs,
            "defaults\n{\n}\nservice chargen\n{\n  disable = yes\n  socket_type = stream\n}\nincludedir /etc/xinetd.d\n",
            1 << 20,
            "Xinetd config /etc/xinetd.conf".into(),
        );
        assert_eq!(t.rows.len(), 2, "defaults is not a service");
        assert_eq!(t.rows[0]["protocol"].to_s(), "tcp");
        assert_eq!(t.rows[1]["service"].to_s(), "tftp");
        assert_eq!(t.rows[1]["protocol"].to_s(), "udp");
    }
}
