//! Methods of the core values (String, Array, Hash, Integer…).

use std::rc::Rc;

use indexmap::IndexMap;

use crate::interp::{Closure, Interp, R, raise};
use crate::value::{Value, compare, equal};

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

fn no_method<T>(recv: &Value, name: &str, line: u32) -> R<T> {
    raise(
        "NoMethodError",
        format!(
            "undefined method `{name}' for {}:{}",
            recv.inspect_short(),
            recv.class_name()
        ),
        line,
    )
}

impl Value {
    fn inspect_short(&self) -> String {
        let s = self.inspect();
        if s.chars().count() > 60 {
            format!("an instance of {}", self.class_name())
        } else {
            s
        }
    }
}

/// Whether `x` lies in the range.
pub fn range_includes(lo: &Value, hi: &Value, excl: bool, x: &Value) -> bool {
    let above = matches!(lo, Value::Nil) || compare(lo, x).is_some_and(|o| o.is_le());
    let below = matches!(hi, Value::Nil)
        || compare(x, hi).is_some_and(|o| if excl { o.is_lt() } else { o.is_le() });
    above && below
}

/// The inclusive index bounds a range selects in a sequence of `n`
/// (negative ends count from the end); `None` when it starts outside.
fn range_bounds(lo: &Value, hi: &Value, excl: bool, n: i64) -> Option<(i64, i64)> {
    let lo = match *lo {
        Value::Int(i) if i < 0 => n + i,
        Value::Int(i) => i,
        _ => 0,
    };
    let mut hi = match *hi {
        Value::Int(i) if i < 0 => n + i,
        Value::Int(i) => i,
        _ => n - 1,
    };
    if excl {
        hi -= 1;
    }
    if lo > n || lo < 0 {
        return None;
    }
    Some((lo, hi.min(n - 1)))
}

/// `Integer(x)` / `to_i`.
pub fn to_integer(v: &Value, strict: bool, line: u32) -> R<Value> {
    match v {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(f) => Ok(Value::Int(*f as i64)),
        Value::Str(s) => {
            let t = s.trim();
            if strict {
                let (neg, digits) = match t.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, t.strip_prefix('+').unwrap_or(t)),
                };
                let parsed = if let Some(h) = digits.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).ok()
                } else if digits.len() > 1 && digits.starts_with('0') {
                    i64::from_str_radix(digits.trim_start_matches("0o"), 8).ok()
                } else {
                    digits.replace('_', "").parse::<i64>().ok()
                };
                match parsed {
                    Some(i) => Ok(Value::Int(if neg { -i } else { i })),
                    None => raise(
                        "ArgumentError",
                        format!("invalid value for Integer(): {}", v.inspect()),
                        line,
                    ),
                }
            } else {
                let mut end = 0;
                let b = t.as_bytes();
                if end < b.len() && (b[end] == b'-' || b[end] == b'+') {
                    end += 1;
                }
                while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'_') {
                    end += 1;
                }
                Ok(Value::Int(
                    t[..end].replace('_', "").parse::<i64>().unwrap_or(0),
                ))
            }
        }
        Value::Nil if !strict => Ok(Value::Int(0)),
        _ => raise(
            "TypeError",
            format!("can't convert {} into Integer", v.class_name()),
            line,
        ),
    }
}

/// `Float(x)`.
pub fn to_float(v: &Value, line: u32) -> R<Value> {
    match v {
        Value::Int(i) => Ok(Value::Float(*i as f64)),
        Value::Float(f) => Ok(Value::Float(*f)),
        Value::Str(s) => match s.trim().replace('_', "").parse::<f64>() {
            Ok(f) if !s.trim().is_empty() => Ok(Value::Float(f)),
            _ => raise(
                "ArgumentError",
                format!("invalid value for Float(): {}", v.inspect()),
                line,
            ),
        },
        _ => raise(
            "TypeError",
            format!("can't convert {} into Float", v.class_name()),
            line,
        ),
    }
}

/// `format`/`sprintf`: `%s %p %d %i %f %o %x %X %e %%` with flags (`-`,
/// `0`, `+`, space), width and precision.
pub fn format(interp: &mut Interp<'_>, args: &[Value], line: u32) -> R<Value> {
    let fmt = arg(args, 0).to_s();
    let mut out = String::new();
    let mut next = 1;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&d) = chars.peek() {
            if "-0+ #".contains(d) {
                flags.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let width: usize = width.parse().unwrap_or(0);
        let v = arg(args, next);
        let body = match chars.next() {
            Some('%') => {
                out.push('%');
                continue;
            }
            Some('s') => {
                let s = interp.to_s(&v, line)?;
                match precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            Some('p') => v.inspect(),
            Some(k @ ('d' | 'i' | 'o' | 'x' | 'X' | 'b')) => {
                let Value::Int(i) = to_integer(&v, true, line)? else {
                    unreachable!()
                };
                let digits = match k {
                    'o' => format!("{:o}", i.unsigned_abs()),
                    'x' => format!("{:x}", i.unsigned_abs()),
                    'X' => format!("{:X}", i.unsigned_abs()),
                    'b' => format!("{:b}", i.unsigned_abs()),
                    _ => i.unsigned_abs().to_string(),
                };
                signed(i < 0, digits, &flags)
            }
            Some(k @ ('f' | 'e' | 'g')) => {
                let Value::Float(f) = to_float(&v, line)? else {
                    unreachable!()
                };
                let p = precision.unwrap_or(6);
                let digits = match k {
                    'e' => format!("{:.*e}", p, f.abs()),
                    'g' => format!("{}", f.abs()),
                    _ => format!("{:.*}", p, f.abs()),
                };
                signed(f.is_sign_negative() && f != 0.0, digits, &flags)
            }
            other => {
                return raise(
                    "ArgumentError",
                    format!(
                        "malformed format string - %{}",
                        other.map(String::from).unwrap_or_default()
                    ),
                    line,
                );
            }
        };
        next += 1;
        let len = body.chars().count();
        if len >= width {
            out.push_str(&body);
        } else if flags.contains('-') {
            out.push_str(&body);
            out.push_str(&" ".repeat(width - len));
        } else if flags.contains('0')
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-. ".contains(c))
        {
            // Zero padding goes after the sign.
            let (sign, rest) = match body.chars().next() {
                Some(c @ ('+' | '-' | ' ')) => (c.to_string(), body[1..].to_string()),
                _ => (String::new(), body.clone()),
            };
            out.push_str(&sign);
            out.push_str(&"0".repeat(width - len));
            out.push_str(&rest);
        } else {
            out.push_str(&" ".repeat(width - len));
            out.push_str(&body);
        }
    }
    interp.check_str(out, line)
}

fn signed(negative: bool, digits: String, flags: &str) -> String {
    if negative {
        format!("-{digits}")
    } else if flags.contains('+') {
        format!("+{digits}")
    } else if flags.contains(' ') {
        format!(" {digits}")
    } else {
        digits
    }
}

fn items(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) => Some(a.borrow().clone()),
        Value::Hash(h) => Some(
            h.borrow()
                .iter()
                .map(|(k, v)| Value::array(vec![k.to_value(), v.clone()]))
                .collect(),
        ),
        Value::Range(lo, hi, excl) => match (&**lo, &**hi) {
            (Value::Int(a), Value::Int(b)) => {
                let end = if *excl { *b } else { b + 1 };
                if end - a > 1_000_000 {
                    return None;
                }
                Some((*a..end).map(Value::Int).collect())
            }
            _ => None,
        },
        _ => None,
    }
}

/// Calls a method on a core value.
pub fn call(
    interp: &mut Interp<'_>,
    recv: &Value,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    // Methods every value has.
    match name {
        "nil?" => return Ok(Value::Bool(matches!(recv, Value::Nil))),
        "to_s" => return Ok(Value::str(&recv.to_s())),
        "inspect" => return Ok(Value::str(&recv.inspect())),
        "==" | "eql?" | "equal?" => return Ok(Value::Bool(equal(recv, &arg(&args, 0)))),
        "!=" => return Ok(Value::Bool(!equal(recv, &arg(&args, 0)))),
        "!" => return Ok(Value::Bool(!recv.truthy())),
        "!~" => {
            let m = call(interp, recv, "=~", args, None, line)?;
            return Ok(Value::Bool(!m.truthy()));
        }
        "===" => return Ok(Value::Bool(crate::interp::case_eq(recv, &arg(&args, 0)))),
        "is_a?" | "kind_of?" | "instance_of?" => {
            let want = match arg(&args, 0) {
                Value::Sym(c) if c.starts_with("const:") => c[6..].to_string(),
                Value::Class(c) => c.name.clone(),
                _ => String::new(),
            };
            let class = recv.class_name();
            let hit = want == class
                || (want == "Numeric" && matches!(recv, Value::Int(_) | Value::Float(_)))
                || want == "Object";
            return Ok(Value::Bool(hit));
        }
        "class" => return Ok(Value::Sym(format!("const:{}", recv.class_name()).into())),
        "respond_to?" => return Ok(Value::Bool(false)),
        "frozen?" => return Ok(Value::Bool(true)),
        "dup" | "clone" | "freeze" | "itself" => {
            return Ok(match recv {
                Value::Array(a) => Value::array(a.borrow().clone()),
                Value::Hash(h) => Value::hash(h.borrow().clone()),
                v => v.clone(),
            });
        }
        "then" | "yield_self" | "tap" => {
            let b = block_or(&block, name, line)?;
            let r = interp.call_block(&b, vec![recv.clone()], line)?;
            return Ok(if name == "tap" { recv.clone() } else { r });
        }
        _ => {}
    }
    match recv {
        Value::Sym(c) if c.starts_with("const:") => {
            class_method(interp, &c[6..], recv, name, args, block, line)
        }
        Value::Filter(spec) => filter_builder(spec, recv, name, args, block, line),
        Value::Nil => match name {
            "to_a" => Ok(Value::array(vec![])),
            "to_i" => Ok(Value::Int(0)),
            "to_f" => Ok(Value::Float(0.0)),
            "empty?" => no_method(recv, name, line),
            "&" => Ok(Value::Bool(false)),
            "|" => Ok(Value::Bool(arg(&args, 0).truthy())),
            _ => no_method(recv, name, line),
        },
        Value::Bool(b) => match name {
            "&" => Ok(Value::Bool(*b && arg(&args, 0).truthy())),
            "|" => Ok(Value::Bool(*b || arg(&args, 0).truthy())),
            "^" => Ok(Value::Bool(*b != arg(&args, 0).truthy())),
            _ => no_method(recv, name, line),
        },
        Value::Int(n) if matches!(name, "times" | "upto" | "downto") => {
            let b = block_or(&block, name, line)?;
            let (from, to, step) = match (name, args.first()) {
                ("times", _) => (0, *n - 1, 1),
                ("upto", Some(Value::Int(m))) => (*n, *m, 1),
                ("downto", Some(Value::Int(m))) => (*n, *m, -1),
                _ => {
                    return raise(
                        "ArgumentError",
                        format!("Integer#{name} needs an Integer"),
                        line,
                    );
                }
            };
            let mut i = from;
            while (step > 0 && i <= to) || (step < 0 && i >= to) {
                match interp.call_block(&b, vec![Value::Int(i)], line) {
                    Ok(_) => {}
                    Err(crate::interp::Flow::Break(v)) => return Ok(v),
                    Err(e) => return Err(e),
                }
                i += step;
            }
            Ok(recv.clone())
        }
        Value::Int(_) | Value::Float(_) => numeric(recv, name, &args, line),
        Value::Str(s) => string(interp, recv, s, name, args, block, line),
        Value::Sym(s) => match name {
            "to_sym" => Ok(recv.clone()),
            "to_proc" => raise(
                "Dscan::Unsupported",
                "Symbol#to_proc outside a block argument",
                line,
            ),
            "length" | "size" | "upcase" | "downcase" | "start_with?" | "end_with?" | "=~"
            | "<=>" | "empty?" | "capitalize" => {
                let v = string(interp, &Value::str(s), s, name, args, block, line)?;
                Ok(match v {
                    Value::Str(x) if matches!(name, "upcase" | "downcase" | "capitalize") => {
                        Value::Sym(x)
                    }
                    v => v,
                })
            }
            _ => no_method(recv, name, line),
        },
        Value::Regex(r) => match name {
            "match" | "=~" | "match?" => {
                let s = arg(&args, 0);
                if matches!(s, Value::Nil) {
                    return Ok(if name == "match?" {
                        Value::Bool(false)
                    } else {
                        Value::Nil
                    });
                }
                let s = s.to_s();
                Ok(match (name, r.re.find(&s)) {
                    ("match?", m) => Value::Bool(m.is_some()),
                    ("=~", Some(m)) => Value::Int(s[..m.start()].chars().count() as i64),
                    ("match", Some(_)) => match_data(&r.re, &s),
                    _ => Value::Nil,
                })
            }
            "source" => Ok(Value::str(&r.source)),
            _ => no_method(recv, name, line),
        },
        Value::Range(lo, hi, excl) => match name {
            "include?" | "member?" | "cover?" | "===" => {
                Ok(Value::Bool(range_includes(lo, hi, *excl, &arg(&args, 0))))
            }
            "first" | "min" | "begin" => Ok((**lo).clone()),
            "last" | "max" | "end" => Ok((**hi).clone()),
            _ => match items(recv) {
                Some(v) => array(interp, &Value::array(v.clone()), v, name, args, block, line),
                None => no_method(recv, name, line),
            },
        },
        Value::Array(a) => {
            let v = a.borrow().clone();
            array(interp, recv, v, name, args, block, line)
        }
        Value::Hash(h) => hash(interp, recv, h, name, args, block, line),
        Value::Proc(c) => match name {
            "call" | "()" | "[]" | "yield" => interp.call_block(c, args, line),
            _ => no_method(recv, name, line),
        },
        _ => no_method(recv, name, line),
    }
}

fn block_or(b: &Option<Rc<Closure>>, name: &str, line: u32) -> R<Rc<Closure>> {
    match b {
        Some(b) => Ok(b.clone()),
        None => raise(
            "Dscan::Unsupported",
            format!("{name} without a block (an enumerator) is not supported"),
            line,
        ),
    }
}

fn match_data(re: &regex::Regex, s: &str) -> Value {
    match re.captures(s) {
        Some(c) => Value::array(
            c.iter()
                .map(|m| m.map(|m| Value::str(m.as_str())).unwrap_or(Value::Nil))
                .collect(),
        ),
        None => Value::Nil,
    }
}

fn numeric(recv: &Value, name: &str, args: &[Value], line: u32) -> R<Value> {
    let other = arg(args, 0);
    let f = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    let cmp_op = |o: std::cmp::Ordering| -> bool {
        match name {
            "<" => o.is_lt(),
            "<=" => o.is_le(),
            ">" => o.is_gt(),
            ">=" => o.is_ge(),
            _ => false,
        }
    };
    match name {
        "<" | "<=" | ">" | ">=" => match compare(recv, &other) {
            Some(o) => Ok(Value::Bool(cmp_op(o))),
            None => raise(
                "ArgumentError",
                format!(
                    "comparison of {} with {} failed",
                    recv.class_name(),
                    other.inspect()
                ),
                line,
            ),
        },
        "<=>" => Ok(compare(recv, &other)
            .map(|o| Value::Int(o as i64))
            .unwrap_or(Value::Nil)),
        "+" | "-" | "*" | "/" | "%" | "**" => {
            if let (Value::Int(a), Value::Int(b)) = (recv, &other) {
                let r = match name {
                    "+" => a.checked_add(*b),
                    "-" => a.checked_sub(*b),
                    "*" => a.checked_mul(*b),
                    "/" if *b == 0 => return raise("ZeroDivisionError", "divided by 0", line),
                    // Ruby floors integer division and takes the divisor's sign.
                    "/" => a.checked_div(*b).map(|q| {
                        if a % b != 0 && ((*a < 0) != (*b < 0)) {
                            q - 1
                        } else {
                            q
                        }
                    }),
                    "%" if *b == 0 => return raise("ZeroDivisionError", "divided by 0", line),
                    "%" => a.checked_rem(*b).map(|r| {
                        if r != 0 && ((r < 0) != (*b < 0)) {
                            r + b
                        } else {
                            r
                        }
                    }),
                    _ => u32::try_from(*b).ok().and_then(|e| a.checked_pow(e)),
                };
                return match r {
                    Some(r) => Ok(Value::Int(r)),
                    None => raise(
                        "RangeError",
                        "integer overflow (dscan's integers are 64-bit)",
                        line,
                    ),
                };
            }
            match (f(recv), f(&other)) {
                (Some(a), Some(b)) => Ok(Value::Float(match name {
                    "+" => a + b,
                    "-" => a - b,
                    "*" => a * b,
                    "/" => a / b,
                    "%" => a % b,
                    _ => a.powf(b),
                })),
                _ => raise(
                    "TypeError",
                    format!(
                        "{} can't be coerced into {}",
                        other.class_name(),
                        recv.class_name()
                    ),
                    line,
                ),
            }
        }
        "&" | "|" | "^" | "<<" | ">>" => match (recv, &other) {
            (Value::Int(a), Value::Int(b)) => Ok(Value::Int(match name {
                "&" => a & b,
                "|" => a | b,
                "^" => a ^ b,
                "<<" => a.checked_shl(*b as u32).unwrap_or(0),
                _ => a.checked_shr(*b as u32).unwrap_or(0),
            })),
            _ => no_method(recv, name, line),
        },
        "-@" => Ok(match recv {
            Value::Int(i) => Value::Int(-i),
            Value::Float(x) => Value::Float(-x),
            v => v.clone(),
        }),
        "to_i" | "to_int" | "floor" | "truncate" => Ok(Value::Int(f(recv).unwrap_or(0.0) as i64)),
        "ceil" => Ok(Value::Int(f(recv).unwrap_or(0.0).ceil() as i64)),
        "round" => Ok(match recv {
            Value::Float(x) => Value::Int(x.round() as i64),
            v => v.clone(),
        }),
        "to_f" => Ok(Value::Float(f(recv).unwrap_or(0.0))),
        "abs" => Ok(match recv {
            Value::Int(i) => Value::Int(i.abs()),
            Value::Float(x) => Value::Float(x.abs()),
            v => v.clone(),
        }),
        "zero?" => Ok(Value::Bool(f(recv) == Some(0.0))),
        "positive?" => Ok(Value::Bool(f(recv).is_some_and(|x| x > 0.0))),
        "negative?" => Ok(Value::Bool(f(recv).is_some_and(|x| x < 0.0))),
        "even?" => Ok(Value::Bool(matches!(recv, Value::Int(i) if i % 2 == 0))),
        "odd?" => Ok(Value::Bool(matches!(recv, Value::Int(i) if i % 2 != 0))),
        "between?" => Ok(Value::Bool(range_includes(
            &arg(args, 0),
            &arg(args, 1),
            false,
            recv,
        ))),
        "to_s" => Ok(Value::str(&match (recv, &other) {
            (Value::Int(i), Value::Int(8)) => format!("{i:o}"),
            (Value::Int(i), Value::Int(16)) => format!("{i:x}"),
            (Value::Int(i), Value::Int(2)) => format!("{i:b}"),
            _ => recv.to_s(),
        })),
        _ => no_method(recv, name, line),
    }
}

fn string(
    interp: &mut Interp<'_>,
    recv: &Value,
    s: &str,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    let a0 = arg(&args, 0);
    let out = |v: String| interp.check_str(v, line);
    match name {
        "length" | "size" => Ok(Value::Int(s.chars().count() as i64)),
        "bytesize" => Ok(Value::Int(s.len() as i64)),
        "empty?" => Ok(Value::Bool(s.is_empty())),
        "to_str" => Ok(recv.clone()),
        "to_sym" => Ok(Value::Sym(s.into())),
        "to_i" => to_integer(recv, false, line),
        "to_f" => Ok(Value::Float(s.trim().parse().unwrap_or(0.0))),
        "upcase" => out(s.to_uppercase()),
        "downcase" => out(s.to_lowercase()),
        "capitalize" => {
            let mut c = s.chars();
            out(match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase(),
                None => String::new(),
            })
        }
        "strip" => out(s
            .trim_matches(|c: char| c.is_whitespace() || c == '\0')
            .to_string()),
        "lstrip" => out(s.trim_start().to_string()),
        "rstrip" => out(s
            .trim_end_matches(|c: char| c.is_whitespace() || c == '\0')
            .to_string()),
        "chomp" => out(match a0 {
            Value::Str(suffix) => s.strip_suffix(&*suffix).unwrap_or(s).to_string(),
            _ => s
                .strip_suffix("\r\n")
                .or_else(|| s.strip_suffix('\n'))
                .or_else(|| s.strip_suffix('\r'))
                .unwrap_or(s)
                .to_string(),
        }),
        "chars" => Ok(Value::array(
            s.chars().map(|c| Value::str(&c.to_string())).collect(),
        )),
        "lines" => Ok(Value::array(
            s.split_inclusive('\n').map(Value::str).collect(),
        )),
        "reverse" => out(s.chars().rev().collect()),
        "+" => match a0 {
            Value::Str(t) => out(format!("{s}{t}")),
            other => raise(
                "TypeError",
                format!(
                    "no implicit conversion of {} into String",
                    other.class_name()
                ),
                line,
            ),
        },
        "*" => match a0 {
            Value::Int(n) if n >= 0 => {
                if (s.len() as u128) * (n as u128) > interp.limits.string_bytes as u128 {
                    return interp.check_str("x".repeat(interp.limits.string_bytes + 1), line);
                }
                out(s.repeat(n as usize))
            }
            _ => raise("ArgumentError", "negative argument", line),
        },
        "%" => {
            let mut all = vec![recv.clone()];
            match a0 {
                Value::Array(a) => all.extend(a.borrow().iter().cloned()),
                v => all.push(v),
            }
            format(interp, &all, line)
        }
        "<=>" | "<" | ">" | "<=" | ">=" => match (&a0, compare(recv, &a0)) {
            (_, Some(o)) => Ok(match name {
                "<=>" => Value::Int(o as i64),
                "<" => Value::Bool(o.is_lt()),
                ">" => Value::Bool(o.is_gt()),
                "<=" => Value::Bool(o.is_le()),
                _ => Value::Bool(o.is_ge()),
            }),
            (_, None) if name == "<=>" => Ok(Value::Nil),
            _ => raise(
                "ArgumentError",
                format!("comparison of String with {} failed", a0.inspect()),
                line,
            ),
        },
        "include?" => match a0 {
            Value::Str(t) => Ok(Value::Bool(s.contains(&*t))),
            other => raise(
                "TypeError",
                format!(
                    "no implicit conversion of {} into String",
                    other.class_name()
                ),
                line,
            ),
        },
        "start_with?" => Ok(Value::Bool(args.iter().any(|a| match a {
            Value::Regex(r) => r.re.find(s).is_some_and(|m| m.start() == 0),
            a => s.starts_with(&a.to_s()),
        }))),
        "end_with?" => Ok(Value::Bool(args.iter().any(|a| s.ends_with(&a.to_s())))),
        "=~" | "match" | "match?" => {
            let re = match &a0 {
                Value::Regex(r) => r.clone(),
                Value::Str(t) => Rc::new(
                    crate::value::compile_regex(&regex::escape(t), "").map_err(|e| {
                        crate::interp::Flow::Error(crate::interp::RubyError {
                            class: "RegexpError".into(),
                            message: e,
                            line,
                            fatal: false,
                        })
                    })?,
                ),
                Value::Nil if name == "=~" => return Ok(Value::Nil),
                other => {
                    return raise(
                        "TypeError",
                        format!(
                            "wrong argument type {} (expected Regexp)",
                            other.class_name()
                        ),
                        line,
                    );
                }
            };
            call(
                interp,
                &Value::Regex(re),
                name,
                vec![recv.clone()],
                block,
                line,
            )
        }
        "scan" => {
            let Value::Regex(r) = &a0 else {
                let t = a0.to_s();
                return Ok(Value::array(s.matches(&*t).map(Value::str).collect()));
            };
            let mut outv = Vec::new();
            for c in r.re.captures_iter(s) {
                if c.len() == 1 {
                    outv.push(Value::str(&c[0]));
                } else {
                    outv.push(Value::array(
                        c.iter()
                            .skip(1)
                            .map(|m| m.map(|m| Value::str(m.as_str())).unwrap_or(Value::Nil))
                            .collect(),
                    ));
                }
            }
            interp.check_array(outv, line)
        }
        "split" => {
            let parts: Vec<Value> = match &a0 {
                Value::Nil => s.split_whitespace().map(Value::str).collect(),
                Value::Str(t) if &**t == " " => s.split_whitespace().map(Value::str).collect(),
                Value::Str(t) if t.is_empty() => {
                    s.chars().map(|c| Value::str(&c.to_string())).collect()
                }
                Value::Str(t) => s.split(&**t).map(Value::str).collect(),
                Value::Regex(r) => r.re.split(s).map(Value::str).collect(),
                other => {
                    return raise(
                        "TypeError",
                        format!(
                            "wrong argument type {} (expected Regexp)",
                            other.class_name()
                        ),
                        line,
                    );
                }
            };
            let mut parts = parts;
            let limit = match arg(&args, 1) {
                Value::Int(n) => n,
                _ => 0,
            };
            if limit > 0 {
                let joiner = a0.to_s();
                if parts.len() > limit as usize {
                    let rest: Vec<String> = parts[limit as usize - 1..]
                        .iter()
                        .map(Value::to_s)
                        .collect();
                    parts.truncate(limit as usize - 1);
                    parts.push(Value::str(&rest.join(&joiner)));
                }
            } else {
                while parts.last().is_some_and(|p| p.to_s().is_empty()) {
                    parts.pop();
                }
            }
            interp.check_array(parts, line)
        }
        "sub" | "gsub" | "sub!" | "gsub!" | "tr" | "delete" => {
            let global = name.starts_with('g') || name == "tr" || name == "delete";
            let repl = arg(&args, 1).to_s();
            let r = match (&a0, name) {
                (_, "tr") => {
                    let from: Vec<char> = a0.to_s().chars().collect();
                    let to: Vec<char> = repl.chars().collect();
                    return out(s
                        .chars()
                        .map(|c| match from.iter().position(|f| *f == c) {
                            Some(i) => *to.get(i).or(to.last()).unwrap_or(&c),
                            None => c,
                        })
                        .collect());
                }
                (_, "delete") => {
                    let del: Vec<char> = a0.to_s().chars().collect();
                    return out(s.chars().filter(|c| !del.contains(c)).collect());
                }
                (Value::Regex(r), _) => r.re.clone(),
                (other, _) => regex::Regex::new(&regex::escape(&other.to_s())).map_err(|e| {
                    crate::interp::Flow::Error(crate::interp::RubyError {
                        class: "RegexpError".into(),
                        message: e.to_string(),
                        line,
                        fatal: false,
                    })
                })?,
            };
            // Ruby's \1 backreferences are the regex crate's ${1}.
            let repl = ruby_replacement(&repl);
            let res = if global {
                r.replace_all(s, repl.as_str()).into_owned()
            } else {
                r.replace(s, repl.as_str()).into_owned()
            };
            out(res)
        }
        "[]" | "slice" => match (&a0, arg(&args, 1)) {
            (Value::Int(i), Value::Int(len)) => {
                let chars: Vec<char> = s.chars().collect();
                let start = if *i < 0 { chars.len() as i64 + i } else { *i };
                if start < 0 || start as usize > chars.len() {
                    return Ok(Value::Nil);
                }
                let end = (start + len.max(0)).min(chars.len() as i64);
                Ok(Value::str(
                    &chars[start as usize..end as usize]
                        .iter()
                        .collect::<String>(),
                ))
            }
            (Value::Int(i), _) => {
                let chars: Vec<char> = s.chars().collect();
                let idx = if *i < 0 { chars.len() as i64 + i } else { *i };
                Ok(chars
                    .get(idx as usize)
                    .filter(|_| idx >= 0)
                    .map(|c| Value::str(&c.to_string()))
                    .unwrap_or(Value::Nil))
            }
            (Value::Range(lo, hi, excl), _) => {
                let chars: Vec<char> = s.chars().collect();
                let n = chars.len() as i64;
                let Some((lo, hi)) = range_bounds(lo, hi, *excl, n) else {
                    return Ok(Value::Nil);
                };
                Ok(Value::str(&if hi < lo {
                    String::new()
                } else {
                    chars[lo as usize..=hi as usize].iter().collect()
                }))
            }
            (Value::Regex(r), _) => Ok(r
                .re
                .find(s)
                .map(|m| Value::str(m.as_str()))
                .unwrap_or(Value::Nil)),
            (Value::Str(t), _) => Ok(if s.contains(&**t) {
                Value::str(t)
            } else {
                Value::Nil
            }),
            _ => no_method(recv, name, line),
        },
        "each_line" => {
            let b = block_or(&block, name, line)?;
            for l in s.split_inclusive('\n') {
                match interp.call_block(&b, vec![Value::str(l)], line) {
                    Err(crate::interp::Flow::Break(v)) => return Ok(v),
                    Err(e) => return Err(e),
                    Ok(_) => {}
                }
            }
            Ok(recv.clone())
        }
        "count" => Ok(Value::Int(s.matches(&*a0.to_s()).count() as i64)),
        "center" | "ljust" | "rjust" => {
            let w = match a0 {
                Value::Int(w) => w.max(0) as usize,
                _ => 0,
            };
            let n = s.chars().count();
            if n >= w {
                return out(s.to_string());
            }
            let fill = w - n;
            let pad = match arg(&args, 1) {
                Value::Str(p) if !p.is_empty() => p.to_string(),
                _ => " ".to_string(),
            };
            let run = |k: usize| pad.chars().cycle().take(k).collect::<String>();
            out(match name {
                "ljust" => format!("{s}{}", run(fill)),
                "rjust" => format!("{}{s}", run(fill)),
                _ => format!("{}{s}{}", run(fill / 2), run(fill - fill / 2)),
            })
        }
        "squeeze" => {
            let mut o = String::new();
            for c in s.chars() {
                if o.ends_with(c) {
                    continue;
                }
                o.push(c);
            }
            out(o)
        }
        "hex" => Ok(Value::Int(
            i64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0),
        )),
        "oct" => Ok(Value::Int(
            i64::from_str_radix(s.trim_start_matches("0o"), 8).unwrap_or(0),
        )),
        "encoding" | "force_encoding" | "encode" | "unicode_normalize" | "b" | "scrub" => {
            Ok(recv.clone())
        }
        _ => no_method(recv, name, line),
    }
}

fn ruby_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str(&format!("${{{d}}}"));
                    chars.next();
                }
                Some('\\') => {
                    out.push('\\');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn each_result(
    interp: &mut Interp<'_>,
    b: &Rc<Closure>,
    v: Value,
    line: u32,
) -> R<Result<Value, Value>> {
    match interp.call_block(b, vec![v], line) {
        Ok(r) => Ok(Ok(r)),
        Err(crate::interp::Flow::Break(v)) => Ok(Err(v)),
        Err(e) => Err(e),
    }
}

fn array(
    interp: &mut Interp<'_>,
    recv: &Value,
    v: Vec<Value>,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    let a0 = arg(&args, 0);
    macro_rules! each_block {
        ($b:expr, $x:expr) => {
            match each_result(interp, $b, $x, line)? {
                Ok(r) => r,
                Err(brk) => return Ok(brk),
            }
        };
    }
    match name {
        "length" | "size" => Ok(Value::Int(v.len() as i64)),
        "count" => match (&block, args.first()) {
            (Some(b), _) => {
                let mut n = 0;
                for x in v {
                    if each_block!(b, x).truthy() {
                        n += 1;
                    }
                }
                Ok(Value::Int(n))
            }
            (None, Some(x)) => Ok(Value::Int(v.iter().filter(|y| equal(x, y)).count() as i64)),
            _ => Ok(Value::Int(v.len() as i64)),
        },
        "empty?" => Ok(Value::Bool(v.is_empty())),
        "any?" => match &block {
            Some(b) => {
                for x in v {
                    if each_block!(b, x).truthy() {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }
            None => Ok(Value::Bool(match &a0 {
                Value::Nil if args.is_empty() => v.iter().any(Value::truthy),
                p => v.iter().any(|x| crate::interp::case_eq(p, x)),
            })),
        },
        "all?" => match &block {
            Some(b) => {
                for x in v {
                    if !each_block!(b, x).truthy() {
                        return Ok(Value::Bool(false));
                    }
                }
                Ok(Value::Bool(true))
            }
            None => Ok(Value::Bool(v.iter().all(Value::truthy))),
        },
        "none?" => match &block {
            Some(b) => {
                for x in v {
                    if each_block!(b, x).truthy() {
                        return Ok(Value::Bool(false));
                    }
                }
                Ok(Value::Bool(true))
            }
            None => Ok(Value::Bool(!v.iter().any(Value::truthy))),
        },
        "each" | "each_with_index" | "each_entry" => {
            let b = block_or(&block, name, line)?;
            for (i, x) in v.into_iter().enumerate() {
                let r = if name == "each_with_index" {
                    interp.call_block(&b, vec![x, Value::Int(i as i64)], line)
                } else {
                    interp.call_block(&b, vec![x], line)
                };
                match r {
                    Ok(_) => {}
                    Err(crate::interp::Flow::Break(bv)) => return Ok(bv),
                    Err(e) => return Err(e),
                }
            }
            Ok(recv.clone())
        }
        "map" | "collect" | "flat_map" | "collect_concat" => {
            let b = block_or(&block, name, line)?;
            let mut out = Vec::with_capacity(v.len());
            for x in v {
                let r = each_block!(&b, x);
                match (name, r) {
                    ("flat_map" | "collect_concat", Value::Array(a)) => {
                        out.extend(a.borrow().iter().cloned())
                    }
                    (_, r) => out.push(r),
                }
            }
            interp.check_array(out, line)
        }
        "each_with_object" | "inject" | "reduce" | "sum" => {
            let mut acc = match name {
                "sum" => {
                    if args.is_empty() {
                        Value::Int(0)
                    } else {
                        a0.clone()
                    }
                }
                _ => a0.clone(),
            };
            let mut it = v.into_iter();
            if matches!(name, "inject" | "reduce") && args.is_empty() {
                acc = it.next().unwrap_or(Value::Nil);
            }
            if let Some(Value::Sym(op)) =
                args.first().filter(|_| matches!(name, "inject" | "reduce"))
            {
                let mut acc = args.get(1).cloned().unwrap_or(Value::Nil);
                let mut first = args.len() < 2;
                for x in it {
                    if first {
                        acc = x;
                        first = false;
                        continue;
                    }
                    acc = interp.send(&acc, op, vec![x], None, line)?;
                }
                return Ok(acc);
            }
            for x in it {
                match (name, &block) {
                    ("each_with_object", Some(b)) => {
                        interp.call_block(b, vec![x, acc.clone()], line)?;
                    }
                    ("sum", None) => acc = interp.send(&acc, "+", vec![x], None, line)?,
                    ("sum", Some(b)) => {
                        let y = interp.call_block(b, vec![x], line)?;
                        acc = interp.send(&acc, "+", vec![y], None, line)?;
                    }
                    (_, Some(b)) => acc = interp.call_block(b, vec![acc.clone(), x], line)?,
                    _ => {
                        return raise(
                            "Dscan::Unsupported",
                            format!("{name} without a block"),
                            line,
                        );
                    }
                }
            }
            Ok(acc)
        }
        "select" | "filter" | "reject" | "find_all" | "partition" => {
            let b = block_or(&block, name, line)?;
            let (mut yes, mut no) = (Vec::new(), Vec::new());
            for x in v {
                if each_block!(&b, x.clone()).truthy() {
                    yes.push(x)
                } else {
                    no.push(x)
                }
            }
            Ok(match name {
                "reject" => Value::array(no),
                "partition" => Value::array(vec![Value::array(yes), Value::array(no)]),
                _ => Value::array(yes),
            })
        }
        "find" | "detect" => {
            let b = block_or(&block, name, line)?;
            for x in v {
                if each_block!(&b, x.clone()).truthy() {
                    return Ok(x);
                }
            }
            Ok(Value::Nil)
        }
        "find_index" | "index" => {
            for (i, x) in v.iter().enumerate() {
                let hit = match &block {
                    Some(b) => each_block!(b, x.clone()).truthy(),
                    None => equal(x, &a0),
                };
                if hit {
                    return Ok(Value::Int(i as i64));
                }
            }
            Ok(Value::Nil)
        }
        "group_by" => {
            let b = block_or(&block, name, line)?;
            let mut m: IndexMap<crate::value::Key, Value> = IndexMap::new();
            for x in v {
                let k = each_block!(&b, x.clone());
                let Some(k) = k.key() else {
                    return raise("TypeError", "unsupported group key", line);
                };
                match m.get(&k) {
                    Some(Value::Array(a)) => a.borrow_mut().push(x),
                    _ => {
                        m.insert(k, Value::array(vec![x]));
                    }
                }
            }
            Ok(Value::hash(m))
        }
        "sort_by" | "min_by" | "max_by" => {
            let b = block_or(&block, name, line)?;
            let mut keyed = Vec::with_capacity(v.len());
            for x in v {
                keyed.push((each_block!(&b, x.clone()), x));
            }
            keyed.sort_by(|a, b| compare(&a.0, &b.0).unwrap_or(std::cmp::Ordering::Equal));
            Ok(match name {
                "min_by" => keyed.first().map(|p| p.1.clone()).unwrap_or(Value::Nil),
                "max_by" => keyed.last().map(|p| p.1.clone()).unwrap_or(Value::Nil),
                _ => Value::array(keyed.into_iter().map(|p| p.1).collect()),
            })
        }
        "include?" | "member?" => Ok(Value::Bool(v.iter().any(|x| equal(x, &a0)))),
        "first" => Ok(match a0 {
            Value::Int(n) => Value::array(v.into_iter().take(n.max(0) as usize).collect()),
            _ => v.first().cloned().unwrap_or(Value::Nil),
        }),
        "last" => Ok(match a0 {
            Value::Int(n) => {
                let skip = v.len().saturating_sub(n.max(0) as usize);
                Value::array(v.into_iter().skip(skip).collect())
            }
            _ => v.last().cloned().unwrap_or(Value::Nil),
        }),
        "[]" | "at" | "dig" | "fetch" | "slice" => match (&a0, arg(&args, 1)) {
            (Value::Int(i), Value::Int(len)) if name != "dig" && name != "fetch" => {
                let n = v.len() as i64;
                let start = if *i < 0 { n + i } else { *i };
                if start < 0 || start > n {
                    return Ok(Value::Nil);
                }
                let end = (start + len.max(0)).min(n);
                Ok(Value::array(v[start as usize..end as usize].to_vec()))
            }
            (Value::Int(i), _) => {
                let n = v.len() as i64;
                let idx = if *i < 0 { n + i } else { *i };
                let got = if idx >= 0 {
                    v.get(idx as usize).cloned()
                } else {
                    None
                };
                match (got, name) {
                    (Some(x), "dig") if args.len() > 1 => {
                        interp.send(&x, "dig", args[1..].to_vec(), None, line)
                    }
                    (Some(x), _) => Ok(x),
                    (None, "fetch") if args.len() > 1 => Ok(arg(&args, 1)),
                    (None, "fetch") => raise(
                        "IndexError",
                        format!("index {i} outside of array bounds"),
                        line,
                    ),
                    (None, _) => Ok(Value::Nil),
                }
            }
            (Value::Range(lo, hi, excl), _) => {
                let n = v.len() as i64;
                let Some((lo, hi)) = range_bounds(lo, hi, *excl, n) else {
                    return Ok(Value::Nil);
                };
                Ok(Value::array(if hi < lo {
                    vec![]
                } else {
                    v[lo as usize..=hi as usize].to_vec()
                }))
            }
            _ => raise(
                "TypeError",
                format!("no implicit conversion of {} into Integer", a0.class_name()),
                line,
            ),
        },
        "join" => {
            let sep = match a0 {
                Value::Nil => String::new(),
                s => s.to_s(),
            };
            let mut parts = Vec::with_capacity(v.len());
            for x in &flatten(&v) {
                parts.push(interp.to_s(x, line)?);
            }
            interp.check_str(parts.join(&sep), line)
        }
        "uniq" => {
            let mut out: Vec<(Value, Value)> = Vec::new();
            for x in v {
                let k = match &block {
                    Some(b) => interp.call_block(b, vec![x.clone()], line)?,
                    None => x.clone(),
                };
                if !out.iter().any(|(y, _)| equal(y, &k)) {
                    out.push((k, x));
                }
            }
            Ok(Value::array(out.into_iter().map(|p| p.1).collect()))
        }
        "flatten" => Ok(Value::array(flatten(&v))),
        "compact" => Ok(Value::array(
            v.into_iter().filter(|x| !matches!(x, Value::Nil)).collect(),
        )),
        "sort" => {
            let mut v = v;
            let mut bad = false;
            v.sort_by(|a, b| {
                compare(a, b).unwrap_or_else(|| {
                    bad = true;
                    std::cmp::Ordering::Equal
                })
            });
            if bad {
                return raise("ArgumentError", "comparison of values failed", line);
            }
            Ok(Value::array(v))
        }
        "reverse" => Ok(Value::array(v.into_iter().rev().collect())),
        "min" => Ok(v
            .iter()
            .min_by(|a, b| compare(a, b).unwrap_or(std::cmp::Ordering::Equal))
            .cloned()
            .unwrap_or(Value::Nil)),
        "max" => Ok(v
            .iter()
            .max_by(|a, b| compare(a, b).unwrap_or(std::cmp::Ordering::Equal))
            .cloned()
            .unwrap_or(Value::Nil)),
        "+" | "concat" => {
            let b = array_arg(&a0, line)?;
            let mut v = v;
            v.extend(b.borrow().iter().cloned());
            interp.check_array(v, line)
        }
        "-" | "difference" => {
            let b = array_arg(&a0, line)?;
            let b = b.borrow();
            Ok(Value::array(
                v.into_iter()
                    .filter(|x| !b.iter().any(|y| equal(x, y)))
                    .collect(),
            ))
        }
        "&" | "intersection" => {
            let b = array_arg(&a0, line)?;
            let b = b.borrow();
            let mut out: Vec<Value> = Vec::new();
            for x in v {
                if b.iter().any(|y| equal(&x, y)) && !out.iter().any(|y| equal(&x, y)) {
                    out.push(x)
                }
            }
            Ok(Value::array(out))
        }
        "|" | "union" => {
            let b = array_arg(&a0, line)?;
            let mut out: Vec<Value> = Vec::new();
            for x in v.into_iter().chain(b.borrow().iter().cloned()) {
                if !out.iter().any(|y| equal(&x, y)) {
                    out.push(x)
                }
            }
            Ok(Value::array(out))
        }
        "*" => match a0 {
            Value::Str(sep) => array(interp, recv, v, "join", vec![Value::Str(sep)], None, line),
            Value::Int(n) if n >= 0 => {
                if v.len().saturating_mul(n as usize) > interp.limits.elements {
                    return interp.check_array(vec![Value::Nil; interp.limits.elements + 1], line);
                }
                let mut out = Vec::new();
                for _ in 0..n {
                    out.extend(v.iter().cloned());
                }
                Ok(Value::array(out))
            }
            _ => raise("ArgumentError", "negative argument", line),
        },
        "<<" | "push" | "append" => {
            if let Value::Array(a) = recv {
                if a.borrow().len() >= interp.limits.elements {
                    return interp.check_array(vec![Value::Nil; interp.limits.elements + 1], line);
                }
                a.borrow_mut().extend(args);
            }
            Ok(recv.clone())
        }
        "to_a" | "entries" | "to_ary" => Ok(Value::array(v)),
        "to_h" => {
            let mut m = IndexMap::new();
            for x in v {
                if let Value::Array(p) = &x {
                    let p = p.borrow();
                    if let (Some(k), Some(val)) = (p.first().and_then(Value::key), p.get(1)) {
                        m.insert(k, val.clone());
                        continue;
                    }
                }
                return raise(
                    "TypeError",
                    format!("wrong element type {} (expected array)", x.class_name()),
                    line,
                );
            }
            Ok(Value::hash(m))
        }
        "zip" => {
            let other = match a0 {
                Value::Array(b) => b.borrow().clone(),
                _ => vec![],
            };
            Ok(Value::array(
                v.into_iter()
                    .enumerate()
                    .map(|(i, x)| {
                        Value::array(vec![x, other.get(i).cloned().unwrap_or(Value::Nil)])
                    })
                    .collect(),
            ))
        }
        "each_slice" | "each_cons" => raise(
            "Dscan::Unsupported",
            format!("Array#{name} is not supported by dscan's engine"),
            line,
        ),
        "grep" | "grep_v" => {
            let keep = name == "grep";
            Ok(Value::array(
                v.into_iter()
                    .filter(|x| crate::interp::case_eq(&a0, x) == keep)
                    .collect(),
            ))
        }
        "tally" => {
            let mut m: IndexMap<crate::value::Key, Value> = IndexMap::new();
            for x in v {
                if let Some(k) = x.key() {
                    let n = match m.get(&k) {
                        Some(Value::Int(n)) => n + 1,
                        _ => 1,
                    };
                    m.insert(k, Value::Int(n));
                }
            }
            Ok(Value::hash(m))
        }
        "sum_of" => no_method(recv, name, line),
        _ => no_method(recv, name, line),
    }
}

/// The argument of an Array set operation, or Ruby's TypeError.
fn array_arg(v: &Value, line: u32) -> R<Rc<std::cell::RefCell<Vec<Value>>>> {
    match v {
        Value::Array(b) => Ok(b.clone()),
        other => raise(
            "TypeError",
            format!(
                "no implicit conversion of {} into Array",
                other.class_name()
            ),
            line,
        ),
    }
}

/// Flattens nested arrays.
pub fn flatten(v: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for x in v {
        match x {
            Value::Array(a) => out.extend(flatten(&a.borrow())),
            x => out.push(x.clone()),
        }
    }
    out
}

fn hash(
    interp: &mut Interp<'_>,
    recv: &Value,
    h: &Rc<std::cell::RefCell<IndexMap<crate::value::Key, Value>>>,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    let a0 = arg(&args, 0);
    let get = |k: &Value| k.key().and_then(|k| h.borrow().get(&k).cloned());
    match name {
        "[]" => Ok(get(&a0).unwrap_or(Value::Nil)),
        "fetch" => match get(&a0) {
            Some(v) => Ok(v),
            None if args.len() > 1 => Ok(arg(&args, 1)),
            None => raise("KeyError", format!("key not found: {}", a0.inspect()), line),
        },
        "dig" => {
            let mut cur = get(&a0).unwrap_or(Value::Nil);
            for k in &args[1.min(args.len())..] {
                cur = match &cur {
                    Value::Nil => return Ok(Value::Nil),
                    c => interp.send(c, "[]", vec![k.clone()], None, line)?,
                };
            }
            Ok(cur)
        }
        "[]=" | "store" => {
            if let Some(k) = a0.key() {
                h.borrow_mut().insert(k, arg(&args, 1));
            }
            Ok(arg(&args, 1))
        }
        "key?" | "has_key?" | "include?" | "member?" => Ok(Value::Bool(get(&a0).is_some())),
        "value?" | "has_value?" => Ok(Value::Bool(h.borrow().values().any(|v| equal(v, &a0)))),
        "keys" => Ok(Value::array(
            h.borrow().keys().map(|k| k.to_value()).collect(),
        )),
        "values" => Ok(Value::array(h.borrow().values().cloned().collect())),
        "length" | "size" | "count" if block.is_none() => Ok(Value::Int(h.borrow().len() as i64)),
        "empty?" => Ok(Value::Bool(h.borrow().is_empty())),
        "to_h" => Ok(recv.clone()),
        "merge" | "update" | "merge!" => {
            let mut m = h.borrow().clone();
            if let Value::Hash(o) = &a0 {
                for (k, v) in o.borrow().iter() {
                    m.insert(k.clone(), v.clone());
                }
            }
            if name == "merge" {
                Ok(Value::hash(m))
            } else {
                *h.borrow_mut() = m;
                Ok(recv.clone())
            }
        }
        "delete" => Ok(a0
            .key()
            .and_then(|k| h.borrow_mut().shift_remove(&k))
            .unwrap_or(Value::Nil)),
        "each" | "each_pair" => {
            let b = block_or(&block, name, line)?;
            let pairs: Vec<_> = h
                .borrow()
                .iter()
                .map(|(k, v)| (k.to_value(), v.clone()))
                .collect();
            for (k, v) in pairs {
                match interp.call_block(&b, vec![Value::array(vec![k, v])], line) {
                    Ok(_) => {}
                    Err(crate::interp::Flow::Break(v)) => return Ok(v),
                    Err(e) => return Err(e),
                }
            }
            Ok(recv.clone())
        }
        "select" | "filter" | "reject" => {
            let b = block_or(&block, name, line)?;
            let keep = name != "reject";
            let pairs: Vec<_> = h
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut m = IndexMap::new();
            for (k, v) in pairs {
                if interp
                    .call_block(&b, vec![k.to_value(), v.clone()], line)?
                    .truthy()
                    == keep
                {
                    m.insert(k, v);
                }
            }
            Ok(Value::hash(m))
        }
        "transform_values" => {
            let b = block_or(&block, name, line)?;
            let pairs: Vec<_> = h
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut m = IndexMap::new();
            for (k, v) in pairs {
                m.insert(k, interp.call_block(&b, vec![v], line)?);
            }
            Ok(Value::hash(m))
        }
        "key" => Ok(h
            .borrow()
            .iter()
            .find(|(_, v)| equal(v, &a0))
            .map(|(k, _)| k.to_value())
            .unwrap_or(Value::Nil)),
        _ => {
            let pairs: Vec<Value> = h
                .borrow()
                .iter()
                .map(|(k, v)| Value::array(vec![k.to_value(), v.clone()]))
                .collect();
            array(
                interp,
                &Value::array(pairs.clone()),
                pairs,
                name,
                args,
                block,
                line,
            )
        }
    }
}

/// Methods of the few core classes profiles call (`JSON.parse`,
/// `FilterTable.create`).
fn class_method(
    interp: &mut Interp<'_>,
    class: &str,
    recv: &Value,
    name: &str,
    args: Vec<Value>,
    _block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    let text = |v: Option<&Value>| match v {
        Some(Value::Str(s)) => Ok(s.to_string()),
        Some(other) => Err(other.class_name()),
        None => Err("nil".to_string()),
    };
    match (class, name) {
        ("FilterTable", "create") => Ok(Value::Filter(Rc::default())),
        ("JSON", "parse") => match text(args.first()) {
            Ok(t) => match serde_json::from_str::<serde_json::Value>(&t) {
                Ok(j) => Ok(crate::resources::config::from_json(&j)),
                Err(e) => raise("JSON::ParserError", format!("unexpected token: {e}"), line),
            },
            Err(c) => raise(
                "TypeError",
                format!("no implicit conversion of {c} into String"),
                line,
            ),
        },
        ("YAML", "load" | "safe_load") => match text(args.first()) {
            Ok(t) => match serde_yaml_ng::from_str::<serde_json::Value>(&t) {
                Ok(j) => Ok(crate::resources::config::from_json(&j)),
                Err(e) => raise("Psych::SyntaxError", e.to_string(), line),
            },
            Err(c) => raise(
                "TypeError",
                format!("no implicit conversion of {c} into String"),
                line,
            ),
        },
        ("Inspec", "resource") => Ok(recv.clone()),
        _ => {
            let _ = interp;
            raise(
                "NoMethodError",
                format!("undefined method `{name}' for {class}:Class"),
                line,
            )
        }
    }
}

/// `FilterTable.create` and its chained declarations.
fn filter_builder(
    spec: &Rc<std::cell::RefCell<crate::interp::FilterSpec>>,
    recv: &Value,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    let a0 = arg(&args, 0).to_s();
    match name {
        "register_column" | "add" => {
            let field = match args.get(1) {
                Some(Value::Hash(h)) => h
                    .borrow()
                    .get(&crate::value::Key::Sym("field".into()))
                    .map(Value::to_s)
                    .unwrap_or_else(|| a0.clone()),
                _ => a0.clone(),
            };
            spec.borrow_mut().columns.push((a0, field));
            Ok(recv.clone())
        }
        "register_custom_matcher" | "register_custom_property" => match block {
            Some(b) => {
                spec.borrow_mut().customs.push((a0, b));
                Ok(recv.clone())
            }
            None => raise("ArgumentError", format!("{name} needs a block"), line),
        },
        "install_filter_methods_on_resource" | "connect" => {
            let Value::Class(c) = arg(&args, 0) else {
                return raise(
                    "ArgumentError",
                    format!("{name} needs the resource class"),
                    line,
                );
            };
            let mut installed = spec.borrow().clone();
            installed.from = arg(&args, 1).to_s();
            *c.filter.borrow_mut() = Some(Rc::new(installed));
            Ok(Value::Nil)
        }
        _ => raise(
            "NoMethodError",
            format!("undefined method `{name}' for FilterTable"),
            line,
        ),
    }
}
