//! RSpec and InSpec matchers: what they accept, their descriptions and
//! their failure messages, as InSpec 7 prints them.

use crate::interp::{Interp, R, raise};
use crate::value::{Value, equal};

/// A matcher kind.
#[derive(Debug, Clone)]
pub enum Kind {
    /// InSpec's `cmp`.
    Cmp,
    /// `eq`.
    Eq,
    /// `eql`/`equal`/`be(x)`.
    Equal,
    /// `be` with no argument (truthiness), or with an operator.
    Be,
    /// `be_nil`.
    BeNil,
    /// `be_truthy`.
    BeTruthy,
    /// `be_falsey`.
    BeFalsey,
    /// `exist`.
    Exist,
    /// `match`.
    Match,
    /// `include`.
    Include,
    /// `be_in`.
    BeIn,
    /// `be_readable`/`be_writable`/`be_executable` (the permission).
    Permission(&'static str),
    /// `be_installed`.
    Installed,
    /// `contain_duplicates`.
    ContainDuplicates,
    /// A bare operator (`should >= 2`).
    Operator,
    /// `be_<pred>`: calls `<pred>?`.
    Predicate(String),
    /// `expect(x)`: the value awaiting `.to`.
    Expect(Box<Value>),
}

/// A matcher with its arguments and chains.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// What it is.
    pub kind: Kind,
    /// Expected values.
    pub args: Vec<Value>,
    /// Operator (`cmp >= 1`, `be < 5`).
    pub op: Option<String>,
    /// `.by('owner')`.
    pub by: Option<String>,
    /// `.by_user('name')`.
    pub by_user: Option<String>,
}

fn m(kind: Kind, args: &[Value]) -> Matcher {
    Matcher {
        kind,
        args: args.to_vec(),
        op: None,
        by: None,
        by_user: None,
    }
}

/// Builds the matcher a call names, if it names one.
pub fn construct(name: &str, args: &[Value], _line: u32) -> R<Option<Matcher>> {
    Ok(Some(match name {
        "cmp" => m(Kind::Cmp, args),
        "eq" => m(Kind::Eq, args),
        "eql" | "equal" => m(Kind::Equal, args),
        "be" if args.is_empty() => m(Kind::Be, args),
        "be" => m(Kind::Equal, args),
        "be_nil" => m(Kind::BeNil, args),
        "be_truthy" => m(Kind::BeTruthy, args),
        "be_falsey" | "be_falsy" => m(Kind::BeFalsey, args),
        "exist" => m(Kind::Exist, args),
        "match" => m(Kind::Match, args),
        "include" => m(Kind::Include, args),
        "be_in" => m(Kind::BeIn, args),
        "be_readable" => m(Kind::Permission("readable"), args),
        "be_writable" => m(Kind::Permission("writable"), args),
        "be_executable" => m(Kind::Permission("executable"), args),
        "be_installed" => m(Kind::Installed, args),
        "contain_duplicates" => m(Kind::ContainDuplicates, args),
        n if n.starts_with("be_") => m(Kind::Predicate(n[3..].to_string()), args),
        _ => return Ok(None),
    }))
}

/// `expect(value)`.
pub fn expect(v: Value) -> Matcher {
    m(Kind::Expect(Box::new(v)), &[])
}

/// Chained calls on a matcher (`cmp >= 1`, `.by('owner')`).
pub fn chain(mt: &Matcher, name: &str, args: Vec<Value>, line: u32) -> R<Value> {
    let mut n = mt.clone();
    match name {
        "==" | "!=" | "<" | "<=" | ">" | ">=" | "===" | "=~" => {
            n.op = Some(name.to_string());
            n.args = args;
            if matches!(n.kind, Kind::Be) {
                // `be >= 1` compares; plain `be` stays truthiness.
            }
        }
        "by" => n.by = args.first().map(Value::to_s),
        "by_user" => n.by_user = args.first().map(Value::to_s),
        _ => {
            return raise(
                "NoMethodError",
                format!(
                    "undefined method `{name}' for the matcher {}",
                    mt.description()
                ),
                line,
            );
        }
    }
    Ok(Value::Matcher(std::rc::Rc::new(n)))
}

fn list_desc(args: &[Value]) -> String {
    let items: Vec<String> = args.iter().map(Value::inspect).collect();
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        2 => format!("{} and {}", items[0], items[1]),
        n => format!("{}, and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

impl Matcher {
    fn first(&self) -> Value {
        self.args.first().cloned().unwrap_or(Value::Nil)
    }

    /// RSpec's description (`cmp == "0644"`, `be file`…).
    pub fn description(&self) -> String {
        let op = self.op.as_deref().unwrap_or("==");
        match &self.kind {
            Kind::Cmp => format!("cmp {op} {}", self.first().inspect()),
            Kind::Eq => format!("eq {}", self.first().inspect()),
            Kind::Equal => format!("equal {}", self.first().inspect()),
            Kind::Be => match &self.op {
                Some(op) => format!("be {op} {}", self.first().inspect()),
                None => "be".into(),
            },
            Kind::Operator => format!("{op} {}", self.first().inspect()),
            Kind::BeNil => "be nil".into(),
            Kind::BeTruthy => "be truthy".into(),
            Kind::BeFalsey => "be falsey".into(),
            Kind::Exist => "exist".into(),
            Kind::Match => format!("match {}", self.first().inspect()),
            Kind::Include => format!("include {}", list_desc(&self.args)),
            Kind::BeIn => format!("be in {}", list_desc(&self.args)),
            Kind::Permission(p) => {
                let mut d = format!("be {p}");
                if let Some(by) = &self.by {
                    d.push_str(&format!(" by {by}"));
                }
                if let Some(u) = &self.by_user {
                    d.push_str(&format!(" by user {u}"));
                }
                d
            }
            Kind::Installed => "be installed".into(),
            Kind::ContainDuplicates => "contain duplicates".into(),
            Kind::Predicate(p) => {
                let words = p.replace('_', " ");
                if self.args.is_empty() {
                    format!("be {words}")
                } else {
                    format!("be {words} {}", list_desc(&self.args))
                }
            }
            Kind::Expect(v) => format!("expect {}", v.inspect()),
        }
    }
}

/// The outcome of one expectation.
pub struct Outcome {
    /// Whether it held.
    pub passed: bool,
    /// The failure message when it did not.
    pub message: String,
}

fn op_holds(
    interp: &mut Interp<'_>,
    actual: &Value,
    op: &str,
    expected: &Value,
    line: u32,
) -> bool {
    match op {
        "==" => equal(actual, expected),
        "!=" => !equal(actual, expected),
        "===" => crate::interp::case_eq(actual, expected),
        "=~" => match (actual, expected) {
            (Value::Str(s), Value::Regex(r)) => r.re.is_match(s),
            _ => false,
        },
        op => interp
            .send(actual, op, vec![expected.clone()], None, line)
            .map(|v| v.truthy())
            .unwrap_or(false),
    }
}

fn is_int_str(s: &str) -> bool {
    let t = s.strip_prefix('-').unwrap_or(s);
    !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit())
        && (t.bytes().all(|b| b == b'0') || !t.starts_with('0'))
}

fn is_octal_str(s: &str) -> bool {
    s.len() > 1
        && s.starts_with('0')
        && s.bytes().all(|b| (b'0'..=b'7').contains(&b))
        && s.trim_start_matches('0').len() < s.len()
        && !s.trim_start_matches('0').is_empty()
}

fn version_parts(s: &str) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    for p in s.split('.') {
        out.push(p.parse::<u64>().ok()?);
    }
    if out.is_empty() { None } else { Some(out) }
}

fn cmp_holds(
    interp: &mut Interp<'_>,
    actual: &Value,
    op: &str,
    expected: &Value,
    line: u32,
) -> bool {
    let actual = match actual {
        Value::Array(a) if !matches!(expected, Value::Array(_)) && a.borrow().len() == 1 => {
            a.borrow()[0].clone()
        }
        a => a.clone(),
    };
    match (&actual, expected) {
        (Value::Str(a), Value::Str(e)) => {
            if op == "==" {
                return a.to_lowercase() == e.to_lowercase();
            }
            if let (Some(x), Some(y)) = (version_parts(a), version_parts(e)) {
                let mut x = x;
                let mut y = y;
                let n = x.len().max(y.len());
                x.resize(n, 0);
                y.resize(n, 0);
                let o = x.cmp(&y);
                return match op {
                    "!=" => o.is_ne(),
                    "<" => o.is_lt(),
                    "<=" => o.is_le(),
                    ">" => o.is_gt(),
                    ">=" => o.is_ge(),
                    _ => false,
                };
            }
            op_holds(interp, &actual, op, expected, line)
        }
        (Value::Str(a), Value::Regex(r)) => r.re.is_match(a),
        (Value::Int(a), Value::Regex(r)) => r.re.is_match(&a.to_string()),
        (Value::Int(_), Value::Str(e)) if is_int_str(e) => op_holds(
            interp,
            &actual,
            op,
            &Value::Int(e.parse().unwrap_or(0)),
            line,
        ),
        (Value::Bool(_), Value::Str(e))
            if e.eq_ignore_ascii_case("true") || e.eq_ignore_ascii_case("false") =>
        {
            op_holds(
                interp,
                &actual,
                op,
                &Value::Bool(e.eq_ignore_ascii_case("true")),
                line,
            )
        }
        (Value::Str(a), Value::Bool(_)) if &**a == "true" || &**a == "false" => {
            op_holds(interp, &actual, op, &Value::str(&expected.to_s()), line)
        }
        (Value::Str(a), Value::Int(_)) if is_int_str(a) => op_holds(
            interp,
            &Value::Int(a.parse().unwrap_or(0)),
            op,
            expected,
            line,
        ),
        (a, Value::Float(_)) if crate::builtins::to_float(a, line).is_ok() => {
            let f = crate::builtins::to_float(a, line).unwrap_or(Value::Nil);
            op_holds(interp, &f, op, expected, line)
        }
        (Value::Sym(a), Value::Str(_)) => cmp_holds(interp, &Value::str(a), op, expected, line),
        (Value::Int(_), Value::Str(e)) if is_octal_str(e) => op_holds(
            interp,
            &actual,
            op,
            &Value::Int(i64::from_str_radix(e, 8).unwrap_or(-1)),
            line,
        ),
        _ => op_holds(interp, &actual, op, expected, line),
    }
}

fn truthy_word(b: bool) -> &'static str {
    if b { "truthy" } else { "falsey" }
}

/// Evaluates `actual` against the matcher.
pub fn evaluate(
    interp: &mut Interp<'_>,
    mt: &Matcher,
    actual: &Value,
    negated: bool,
    subject_desc: &str,
    line: u32,
) -> R<Outcome> {
    let e = mt.first();
    let not = if negated { "not " } else { "" };
    let (holds, message) = match &mt.kind {
        Kind::Cmp => {
            let op = mt.op.clone().unwrap_or_else(|| "==".into());
            let holds = if op == "===" {
                crate::interp::case_eq(actual, &e)
            } else {
                cmp_holds(interp, actual, &op, &e, line)
            };
            let expected_line = if op == "==" && !negated {
                format!("expected: {}", e.to_s())
            } else {
                format!("expected it {not}to be {op} {}", e.inspect())
            };
            let got = match (&e, actual) {
                (Value::Str(s), Value::Int(i)) if is_octal_str(s) => format!("0{i:o}"),
                (_, a) => interp.to_s(a, line)?,
            };
            (
                holds,
                format!("\n{expected_line}\n     got: {got}\n\n(compared using `cmp` matcher)\n"),
            )
        }
        Kind::Eq => {
            let holds = equal(actual, &e);
            let msg = if negated {
                format!(
                    "\nexpected: value != {}\n     got: {}\n\n(compared using ==)\n",
                    e.inspect(),
                    actual.inspect()
                )
            } else {
                format!(
                    "\nexpected: {}\n     got: {}\n\n(compared using ==)\n",
                    e.inspect(),
                    actual.inspect()
                )
            };
            (holds, msg + &crate::report::diff_block(&e, actual))
        }
        Kind::Equal => {
            let holds =
                equal(actual, &e) && std::mem::discriminant(actual) == std::mem::discriminant(&e);
            (
                holds,
                format!(
                    "\nexpected {}{}\n     got {}\n",
                    if negated { "not " } else { "" },
                    e.inspect(),
                    actual.inspect()
                ),
            )
        }
        Kind::Be | Kind::Operator => match &mt.op {
            None => (
                actual.truthy(),
                if negated {
                    format!("expected: falsey value\n     got: {}", actual.inspect())
                } else {
                    format!("expected: truthy value\n     got: {}", actual.inspect())
                },
            ),
            Some(op) => {
                if matches!(mt.kind, Kind::Operator) {
                    let v = interp.send(actual, op, vec![e.clone()], None, line)?;
                    (
                        v.truthy(),
                        format!(
                            "expected: {op} {}\n     got: {} {}",
                            e.inspect(),
                            " ".repeat(op.len()),
                            actual.inspect()
                        ),
                    )
                } else {
                    let holds = op_holds(interp, actual, op, &e, line);
                    (
                        holds,
                        format!(
                            "expected: {op} {}\n     got: {}{}",
                            e.inspect(),
                            " ".repeat(op.len() + 1),
                            actual.inspect()
                        ),
                    )
                }
            }
        },
        Kind::BeNil => (
            matches!(actual, Value::Nil),
            if negated {
                "expected: not nil\n     got: nil".to_string()
            } else {
                format!("expected: nil\n     got: {}", actual.inspect())
            },
        ),
        Kind::BeTruthy => (
            actual.truthy(),
            format!("expected: truthy value\n     got: {}", actual.inspect()),
        ),
        Kind::BeFalsey => (
            !actual.truthy(),
            format!("expected: falsey value\n     got: {}", actual.inspect()),
        ),
        Kind::Exist => {
            let v = interp.send(actual, "exist?", vec![], None, line)?;
            (v.truthy(), format!("expected {subject_desc} {not}to exist"))
        }
        Kind::Match => {
            let holds = match (actual, &e) {
                (Value::Nil, _) => false,
                (a, Value::Regex(r)) => r.re.is_match(&a.to_s()),
                (a, Value::Str(s)) => a.to_s() == **s || a.to_s().contains(&**s),
                _ => false,
            };
            (
                holds,
                format!(
                    "expected {} {not}to match {}",
                    actual.inspect(),
                    e.inspect()
                ) + &crate::report::diff_block(&e, actual),
            )
        }
        Kind::Include => {
            let one = |x: &Value| -> bool {
                match actual {
                    Value::Str(s) => s.contains(&*x.to_s()),
                    Value::Array(a) => a.borrow().iter().any(|y| equal(x, y)),
                    Value::Hash(h) => x.key().is_some_and(|k| h.borrow().contains_key(&k)),
                    _ => false,
                }
            };
            let holds = if negated {
                !mt.args.iter().any(one)
            } else {
                mt.args.iter().all(one)
            };
            let holds = if negated { !holds } else { holds };
            (
                holds,
                format!(
                    "expected {} {not}to include {}",
                    actual.inspect(),
                    list_desc(&mt.args)
                ),
            )
        }
        Kind::BeIn => {
            let list = match &e {
                Value::Array(a) => a.borrow().clone(),
                v => vec![v.clone()],
            };
            let holds = match actual {
                Value::Array(a) if negated => {
                    !a.borrow().iter().any(|x| list.iter().any(|y| equal(x, y)))
                }
                Value::Array(a) => a.borrow().iter().all(|x| list.iter().any(|y| equal(x, y))),
                x => list.iter().any(|y| equal(x, y)),
            };
            let holds = if negated && matches!(actual, Value::Array(_)) {
                !holds
            } else {
                holds
            };
            (
                holds,
                format!(
                    "expected `{}` {not}to be in the list: `{}`",
                    actual.to_s(),
                    e.inspect()
                ),
            )
        }
        Kind::Permission(p) => {
            let v = crate::resources::permission(
                interp,
                actual,
                p,
                mt.by.as_deref(),
                mt.by_user.as_deref(),
                line,
            )?;
            let mut what = format!("be {p}");
            if let Some(by) = &mt.by {
                what.push_str(&format!(" by {by}"));
            }
            if let Some(u) = &mt.by_user {
                what.push_str(&format!(" by user {u}"));
            }
            (v, format!("expected {subject_desc} {not}to {what}"))
        }
        Kind::Installed => {
            let v = interp.send(actual, "installed?", vec![], None, line)?;
            (
                v.truthy(),
                if negated {
                    format!("expected {subject_desc} not to be installed")
                } else {
                    format!("expected that `{subject_desc}` is installed")
                },
            )
        }
        Kind::ContainDuplicates => {
            let holds = match actual {
                Value::Array(a) => {
                    let a = a.borrow();
                    a.iter()
                        .enumerate()
                        .any(|(i, x)| a[i + 1..].iter().any(|y| equal(x, y)))
                }
                _ => false,
            };
            (
                holds,
                format!("expected {} {not}to contain duplicates", actual.inspect()),
            )
        }
        Kind::Predicate(p) => {
            let method = format!("{p}?");
            let v = interp.send(actual, &method, mt.args.clone(), None, line)?;
            let call = if mt.args.is_empty() {
                format!("{subject_desc}.{method}")
            } else {
                let args: Vec<String> = mt.args.iter().map(Value::inspect).collect();
                format!("{subject_desc}.{method}({})", args.join(", "))
            };
            (
                v.truthy(),
                format!(
                    "expected `{call}` to be {}, got {}",
                    truthy_word(!negated),
                    v.inspect()
                ),
            )
        }
        Kind::Expect(_) => return raise("ArgumentError", "expect(…) is not a matcher", line),
    };
    Ok(Outcome {
        passed: holds != negated,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmp_takes_inspecs_branches_in_order() {
        let fs = crate::fs::RootDir::open(std::path::Path::new("/")).unwrap();
        let mut i = Interp::new(&fs, Default::default());
        let mode = Value::Int(0o644);
        let t = |i: &mut Interp<'_>, a: &Value, e: Value| cmp_holds(i, a, "==", &e, 1);
        assert!(t(&mut i, &mode, Value::str("0644")));
        assert!(
            !t(&mut i, &mode, Value::str("644")),
            "an integer string before octal"
        );
        assert!(t(&mut i, &mode, Value::Int(420)));
        assert!(t(&mut i, &Value::str("root"), Value::str("ROOT")));
        assert!(cmp_holds(
            &mut i,
            &Value::str("12.11"),
            ">=",
            &Value::str("12"),
            1
        ));
        assert!(t(&mut i, &Value::Int(0), Value::str("0")));
        assert!(!cmp_holds(&mut i, &Value::Nil, "<", &Value::Int(0), 1));
    }
}
