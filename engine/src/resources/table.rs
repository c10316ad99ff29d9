//! InSpec's FilterTable: rows of named fields, plural column methods,
//! `where` with criteria or a block, and the "with …" descriptions RSpec
//! prints for filtered tables.

use std::rc::Rc;

use indexmap::IndexMap;

use crate::ast::{Kind, Node};
use crate::interp::{Closure, Interp, R, Scope, raise};
use crate::value::{Key, Value, equal};

/// One row: field name to value.
pub type Row = IndexMap<String, Value>;

/// Which resource's table rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// A plain FilterTable (passwd, shadow, etc_hosts…).
    Plain,
    /// `etc_group`: `where` returns an EtcGroupView, and a block is ignored.
    EtcGroup,
    /// `etc_fstab`: `configured?`, `nfs_file_systems`, `home_mount_options`.
    Fstab,
    /// `xinetd_conf`: `disabled?` (no row has `disable = no`), `enabled?`.
    Xinetd,
}

/// A table (a resource's, or a filtered one).
#[derive(Debug, Clone)]
pub struct Table {
    /// The rows.
    pub rows: Vec<Row>,
    /// Plural method → field.
    pub columns: Vec<(String, String)>,
    /// A library table's custom matchers and properties.
    pub custom: Option<Rc<crate::interp::FilterSpec>>,
    /// The resource's `to_s`.
    pub label: String,
    /// The accumulated criteria ("uid == 0 gid == 0").
    pub criteria: String,
    /// Rules.
    pub flavor: Flavor,
}

impl Table {
    /// `to_s` as RSpec prints the described table.
    pub fn to_s(&self) -> String {
        if self.criteria.is_empty() {
            self.label.clone()
        } else {
            format!("{} with {}", self.label, self.criteria)
        }
    }

    fn column(&self, field: &str) -> Value {
        Value::array(
            self.rows
                .iter()
                .map(|r| r.get(field).cloned().unwrap_or(Value::Nil))
                .collect(),
        )
    }
}

fn matches(field: &Value, criterion: &Value) -> bool {
    match (field, criterion) {
        (f, Value::Regex(r)) => r.re.is_match(&f.to_s()),
        (Value::Str(s), Value::Int(i)) => s.trim().parse::<i64>().ok() == Some(*i),
        (Value::Int(i), Value::Str(s)) => s.trim().parse::<i64>().ok() == Some(*i),
        (f, c) => equal(f, c),
    }
}

const OPERATORS: [&str; 12] = [
    "==", "!=", "<", "<=", ">", ">=", "=~", "!~", "===", "+", "-", "*",
];

/// The description FilterTable's tracer prints for a `where` block
/// (`uid.to_i >= 1000` reads "uid to_i >= 1000").
fn trace(interp: &mut Interp<'_>, n: &Node, b: &Rc<Closure>) -> String {
    match &n.kind {
        Kind::Seq(items) if items.len() == 1 => trace(interp, &items[0], b),
        Kind::And(x, y) | Kind::Or(x, y) => {
            format!("{} {}", trace(interp, x, b), trace(interp, y, b))
        }
        Kind::LVar(name) => name.clone(),
        Kind::Call {
            recv: None,
            name,
            args,
            ..
        } if args.is_empty() => name.clone(),
        Kind::Call {
            recv: Some(r),
            name,
            args,
            ..
        } => {
            let left = trace(interp, r, b);
            let shown: Vec<String> = args
                .iter()
                .map(|a| match interp.eval(a, &b.env, &b.this) {
                    Ok(v) => v.inspect(),
                    Err(_) => "?".into(),
                })
                .collect();
            if name == "!" {
                format!("{left} !")
            } else if OPERATORS.contains(&name.as_str()) {
                format!("{left} {name} {}", shown.join(", "))
            } else if shown.is_empty() {
                format!("{left} {name}")
            } else {
                format!("{left} {name}({})", shown.join(", "))
            }
        }
        _ => match interp.eval(n, &b.env, &b.this) {
            Ok(v) => v.inspect(),
            Err(_) => "?".into(),
        },
    }
}

/// Evaluates a `where` block against one row: its fields read as methods.
fn row_holds(interp: &mut Interp<'_>, b: &Rc<Closure>, row: &Row, line: u32) -> R<bool> {
    let env = Scope::child(&b.env);
    for (k, v) in row {
        env.define(&format!("\u{0}{k}"), v.clone());
    }
    // The block runs on the row (a Struct): the DSL is out of reach there.
    let fields: Vec<String> = row
        .iter()
        .map(|(k, v)| format!("{k}={}", v.inspect()))
        .collect();
    env.define(
        "\u{0}\u{0}row",
        Value::str(&format!("#<struct {}>", fields.join(", "))),
    );
    let c = Rc::new(Closure {
        block: b.block.clone(),
        env,
        this: b.this.clone(),
    });
    Ok(interp.call_block(&c, vec![], line)?.truthy())
}

/// What a table method returns.
pub enum Answer {
    /// A plain value.
    Value(Value),
    /// The rows as RSpec's Structs (`entries`).
    Rows(Vec<Row>),
    /// A custom matcher or property: call it with the table.
    Custom(Rc<Closure>),
    /// A filtered table.
    Table(Table),
    /// An EtcGroupView (etc_group's filtered object).
    GroupView(Table),
}

/// Calls `name` on a table.
pub fn call(
    interp: &mut Interp<'_>,
    t: &Table,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Answer> {
    if let Some(spec) = &t.custom
        && let Some((_, b)) = spec.customs.iter().find(|(n, _)| n == name)
    {
        return Ok(Answer::Custom(b.clone()));
    }
    if let Some((_, field)) = t.columns.iter().find(|(m, _)| m == name) {
        if let Some(c) = args.first() {
            // `passwd.users(/^r/)` filters by that column.
            let mut h = IndexMap::new();
            h.insert(Key::Sym(field.clone()), c.clone());
            return call(interp, t, "where", vec![Value::hash(h)], None, line);
        }
        if t.flavor == Flavor::EtcGroup && name == "users" {
            let mut out = Vec::new();
            for r in &t.rows {
                let m = r.get("members").map(Value::to_s).unwrap_or_default();
                out.extend(m.split(',').filter(|s| !s.is_empty()).map(Value::str));
            }
            return Ok(Answer::Value(Value::array(out)));
        }
        let field = field.clone();
        return Ok(Answer::Value(t.column(&field)));
    }
    if t.flavor == Flavor::Xinetd && matches!(name, "disabled?" | "enabled?") {
        let unwanted = if name == "disabled?" { "no" } else { "yes" };
        let hit = t
            .rows
            .iter()
            .any(|r| r.get("disable").is_some_and(|v| v.to_s() == unwanted));
        return Ok(Answer::Value(Value::Bool(!hit)));
    }
    if t.flavor == Flavor::Fstab {
        match name {
            "configured?" => return Ok(Answer::Value(Value::Bool(!t.rows.is_empty()))),
            "nfs_file_systems" => {
                let mut next = t.clone();
                next.rows.retain(|r| {
                    r.get("file_system_type")
                        .is_some_and(|v| v.to_s().contains("nfs"))
                });
                next.criteria = join_criteria(&t.criteria, "file_system_type match(/nfs/)");
                return Ok(Answer::Table(next));
            }
            "home_mount_options" => {
                let home = t
                    .rows
                    .iter()
                    .find(|r| r.get("mount_point").is_some_and(|v| v.to_s() == "/home"));
                return Ok(Answer::Value(
                    home.and_then(|r| r.get("mount_options").cloned())
                        .unwrap_or(Value::Nil),
                ));
            }
            _ => {}
        }
    }
    Ok(Answer::Value(match name {
        "entries" => return Ok(Answer::Rows(t.rows.clone())),
        "params" | "raw_data" => Value::array(
            t.rows
                .iter()
                .map(|r| {
                    Value::hash(
                        r.iter()
                            .map(|(k, v)| (Key::Sym(k.clone()), v.clone()))
                            .collect(),
                    )
                })
                .collect(),
        ),
        "count" | "length" | "size" => Value::Int(t.rows.len() as i64),
        "exist?" | "exists?" => Value::Bool(!t.rows.is_empty()),
        "empty?" => Value::Bool(t.rows.is_empty()),
        "to_s" => Value::str(&t.to_s()),
        "where" => {
            let mut kept = Vec::new();
            let mut words = Vec::new();
            if let Some(Value::Hash(h)) = args.first() {
                for (k, c) in h.borrow().iter() {
                    words.push(format!("{} == {}", k.to_value().to_s(), c.inspect()));
                }
            }
            if let Some(b) = &block {
                if t.flavor == Flavor::EtcGroup {
                    // etc_group's `where` takes no block: it returns nil.
                    return Ok(Answer::Value(Value::Nil));
                }
                let body = (*b.block.body).clone();
                words.push(trace(interp, &body, b));
            }
            for r in &t.rows {
                let mut ok = true;
                if let Some(Value::Hash(h)) = args.first() {
                    for (k, c) in h.borrow().iter() {
                        let field = r.get(&k.to_value().to_s()).cloned().unwrap_or(Value::Nil);
                        ok &= matches(&field, c);
                    }
                }
                if ok && let Some(b) = &block {
                    ok = row_holds(interp, b, r, line)?;
                }
                if ok {
                    kept.push(r.clone());
                }
            }
            let mut criteria = t.criteria.clone();
            for w in words {
                criteria = join_criteria(&criteria, &w);
            }
            let next = Table {
                rows: kept,
                columns: t.columns.clone(),
                custom: t.custom.clone(),
                label: t.label.clone(),
                criteria,
                flavor: t.flavor,
            };
            return Ok(if t.flavor == Flavor::EtcGroup {
                Answer::GroupView(next)
            } else {
                Answer::Table(next)
            });
        }
        _ => {
            return raise(
                "NoMethodError",
                format!("undefined method `{name}' for {}", t.to_s()),
                line,
            );
        }
    }))
}

fn join_criteria(criteria: &str, more: &str) -> String {
    if criteria.is_empty() {
        more.to_string()
    } else {
        format!("{criteria} {more}")
    }
}

fn split_rows(text: &str, fields: &[&str], sep: char) -> Vec<Row> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(sep).collect();
            fields
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        c.to_string(),
                        f.get(i).map(|s| Value::str(s)).unwrap_or(Value::Nil),
                    )
                })
                .collect()
        })
        .collect()
}

/// `/etc/fstab`: device, mount point, type, options (split on commas),
/// dump and pass numbers.
pub fn etc_fstab(text: &str) -> Table {
    let rows = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let text = |i: usize| f.get(i).map(|s| Value::str(s)).unwrap_or(Value::Nil);
            // Ruby's `nil.to_i` and `"x".to_i` are both 0.
            let number = |i: usize| Value::Int(f.get(i).and_then(|s| s.parse().ok()).unwrap_or(0));
            let mut r = Row::new();
            r.insert("device_name".into(), text(0));
            r.insert("mount_point".into(), text(1));
            r.insert("file_system_type".into(), text(2));
            r.insert(
                "mount_options".into(),
                Value::array(
                    f.get(3)
                        .map(|o| o.split(',').map(Value::str).collect())
                        .unwrap_or_default(),
                ),
            );
            r.insert("dump_options".into(), number(4));
            r.insert("file_system_options".into(), number(5));
            r
        })
        .collect();
    Table {
        rows,
        columns: [
            "device_name",
            "mount_point",
            "file_system_type",
            "mount_options",
            "dump_options",
            "file_system_options",
        ]
        .iter()
        .map(|c| (c.to_string(), c.to_string()))
        .collect(),
        custom: None,
        label: "File System Table File (fstab)".into(),
        criteria: String::new(),
        flavor: Flavor::Fstab,
    }
}

/// `/etc/passwd`.
pub fn passwd(text: &str) -> Table {
    Table {
        rows: split_rows(
            text,
            &["user", "password", "uid", "gid", "desc", "home", "shell"],
            ':',
        ),
        columns: vec![
            ("users".into(), "user".into()),
            ("passwords".into(), "password".into()),
            ("uids".into(), "uid".into()),
            ("gids".into(), "gid".into()),
            ("descs".into(), "desc".into()),
            ("homes".into(), "home".into()),
            ("shells".into(), "shell".into()),
        ],
        custom: None,
        label: "/etc/passwd".into(),
        criteria: String::new(),
        flavor: Flavor::Plain,
    }
}

/// `/etc/shadow`.
pub fn shadow(text: &str) -> Table {
    let fields = [
        "user",
        "password",
        "last_change",
        "min_days",
        "max_days",
        "warn_days",
        "inactive_days",
        "expiry_date",
        "reserved",
    ];
    let mut rows = split_rows(text, &fields, ':');
    // Empty fields read as nil.
    for r in &mut rows {
        for v in r.values_mut() {
            if matches!(v, Value::Str(s) if s.is_empty()) {
                *v = Value::Nil;
            }
        }
    }
    Table {
        rows,
        columns: vec![
            ("users".into(), "user".into()),
            ("passwords".into(), "password".into()),
            ("last_changes".into(), "last_change".into()),
            ("min_days".into(), "min_days".into()),
            ("max_days".into(), "max_days".into()),
            ("warn_days".into(), "warn_days".into()),
            ("inactive_days".into(), "inactive_days".into()),
            ("expiry_dates".into(), "expiry_date".into()),
        ],
        custom: None,
        label: "/etc/shadow".into(),
        criteria: String::new(),
        flavor: Flavor::Plain,
    }
}

/// `/etc/group` (gids are Integers).
pub fn etc_group(text: &str) -> Table {
    let mut rows = split_rows(text, &["name", "password", "gid", "members"], ':');
    for r in &mut rows {
        if let Some(g) = r.get("gid").map(Value::to_s) {
            r.insert(
                "gid".into(),
                g.parse::<i64>().map(Value::Int).unwrap_or(Value::Nil),
            );
        }
    }
    Table {
        rows,
        columns: vec![
            ("groups".into(), "name".into()),
            ("gids".into(), "gid".into()),
            ("users".into(), "members".into()),
            ("passwords".into(), "password".into()),
        ],
        custom: None,
        label: "/etc/group".into(),
        criteria: String::new(),
        flavor: Flavor::EtcGroup,
    }
}

/// `/etc/hosts`.
pub fn etc_hosts(text: &str) -> Table {
    let rows = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let mut r = Row::new();
            r.insert("ip_address".into(), Value::str(f[0]));
            r.insert(
                "primary_name".into(),
                f.get(1).map(|s| Value::str(s)).unwrap_or(Value::Nil),
            );
            r.insert(
                "all_host_names".into(),
                Value::array(f[1..].iter().map(|s| Value::str(s)).collect()),
            );
            r
        })
        .collect();
    Table {
        rows,
        columns: vec![
            ("ip_address".into(), "ip_address".into()),
            ("primary_name".into(), "primary_name".into()),
            ("all_host_names".into(), "all_host_names".into()),
        ],
        custom: None,
        label: "Hosts File".into(),
        criteria: String::new(),
        flavor: Flavor::Plain,
    }
}

/// A library resource's rows (an array of hashes) as table rows.
pub fn rows_from(v: &Value) -> Vec<Row> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .borrow()
        .iter()
        .filter_map(|item| match item {
            Value::Hash(h) => Some(
                h.borrow()
                    .iter()
                    .map(|(k, v)| (k.to_value().to_s(), v.clone()))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_rows_split_options_and_number_the_last_fields() {
        let t =
            etc_fstab("# comment\n/dev/sda1 / ext4 rw,noatime 0 1\nnfs:/x /home nfs4 nosuid\n\n");
        assert_eq!(t.rows.len(), 2);
        assert_eq!(
            t.rows[0]["mount_options"].inspect(),
            "[\"rw\", \"noatime\"]"
        );
        assert!(matches!(t.rows[0]["file_system_options"], Value::Int(1)));
        assert!(
            matches!(t.rows[1]["dump_options"], Value::Int(0)),
            "a missing field reads 0, as Ruby's nil.to_i"
        );
        assert_eq!(t.to_s(), "File System Table File (fstab)");
    }
}
