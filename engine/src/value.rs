//! Runtime values of the profile language.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;

use indexmap::IndexMap;

use crate::matchers::Matcher;
use crate::resources::Resource;

/// A hash key (the value kinds Ruby profiles use as keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A symbol.
    Sym(String),
}

impl Key {
    /// The key as a value.
    pub fn to_value(&self) -> Value {
        match self {
            Key::Nil => Value::Nil,
            Key::Bool(b) => Value::Bool(*b),
            Key::Int(i) => Value::Int(*i),
            Key::Str(s) => Value::str(s),
            Key::Sym(s) => Value::Sym(s.as_str().into()),
        }
    }
}

/// A compiled regexp with the Ruby source it came from.
#[derive(Debug)]
pub struct Regex {
    /// Ruby source (what `inspect`/`to_s` show).
    pub source: String,
    /// `i`, `m`, `x`.
    pub flags: String,
    /// The translated pattern.
    pub re: regex::Regex,
}

/// An instance of a profile-defined class.
#[derive(Debug)]
pub struct Object {
    /// Its class.
    pub class: Rc<Class>,
    /// Instance variables.
    pub ivars: RefCell<IndexMap<String, Value>>,
}

/// A profile-defined class (library resource or helper).
#[derive(Debug)]
pub struct Class {
    /// The class name.
    pub name: String,
    /// The resource name given with `name 'x'`, if a resource.
    pub resource_name: RefCell<Option<String>>,
    /// Methods by name.
    pub methods: RefCell<IndexMap<String, Rc<crate::interp::Method>>>,
    /// Superclass (only other profile classes count).
    pub superclass: Option<Rc<Class>>,
    /// A FilterTable installed with `filter.install_filter_methods_on_resource`.
    pub filter: RefCell<Option<Rc<crate::interp::FilterSpec>>>,
}

/// A value.
#[derive(Debug, Clone)]
pub enum Value {
    /// `nil`.
    Nil,
    /// `true`/`false`.
    Bool(bool),
    /// An Integer.
    Int(i64),
    /// A Float.
    Float(f64),
    /// A String.
    Str(Rc<str>),
    /// A Symbol.
    Sym(Rc<str>),
    /// A Regexp.
    Regex(Rc<Regex>),
    /// An Array (shared, mutable like Ruby's).
    Array(Rc<RefCell<Vec<Value>>>),
    /// A Hash (insertion-ordered).
    Hash(Rc<RefCell<IndexMap<Key, Value>>>),
    /// A Range of integers or strings.
    Range(Box<Value>, Box<Value>, bool),
    /// A resource.
    Resource(Rc<Resource>),
    /// An RSpec/InSpec matcher.
    Matcher(Rc<Matcher>),
    /// A profile-defined object.
    Object(Rc<Object>),
    /// A profile-defined class.
    Class(Rc<Class>),
    /// A block turned into a value (`&:sym` or a lambda).
    Proc(Rc<crate::interp::Closure>),
    /// A FilterTable being declared (`FilterTable.create`).
    Filter(Rc<RefCell<crate::interp::FilterSpec>>),
}

impl Value {
    /// A String value.
    pub fn str(s: &str) -> Value {
        Value::Str(s.into())
    }

    /// An Array value.
    pub fn array(v: Vec<Value>) -> Value {
        Value::Array(Rc::new(RefCell::new(v)))
    }

    /// A Hash value.
    pub fn hash(m: IndexMap<Key, Value>) -> Value {
        Value::Hash(Rc::new(RefCell::new(m)))
    }

    /// Ruby truthiness.
    pub fn truthy(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    /// Ruby's class name.
    pub fn class_name(&self) -> String {
        match self {
            Value::Nil => "NilClass".into(),
            Value::Bool(true) => "TrueClass".into(),
            Value::Bool(false) => "FalseClass".into(),
            Value::Int(_) => "Integer".into(),
            Value::Float(_) => "Float".into(),
            Value::Str(_) => "String".into(),
            Value::Sym(_) => "Symbol".into(),
            Value::Regex(_) => "Regexp".into(),
            Value::Array(_) => "Array".into(),
            Value::Hash(_) => "Hash".into(),
            Value::Range(..) => "Range".into(),
            Value::Resource(r) => r.name.clone(),
            Value::Matcher(_) => "RSpec::Matchers".into(),
            Value::Object(o) => o.class.name.clone(),
            Value::Class(_) => "Class".into(),
            Value::Proc(_) => "Proc".into(),
            Value::Filter(_) => "FilterTable::Factory".into(),
        }
    }

    /// As a hash key, when it can be one.
    pub fn key(&self) -> Option<Key> {
        Some(match self {
            Value::Nil => Key::Nil,
            Value::Bool(b) => Key::Bool(*b),
            Value::Int(i) => Key::Int(*i),
            Value::Str(s) => Key::Str(s.to_string()),
            Value::Sym(s) => Key::Sym(s.to_string()),
            _ => return None,
        })
    }

    /// Ruby `to_s`.
    pub fn to_s(&self) -> String {
        match self {
            Value::Nil => String::new(),
            Value::Str(s) | Value::Sym(s) => s.to_string(),
            Value::Regex(r) => format!("(?{}-mix:{})", r.flags, r.source)
                .replace(&format!("(?{}-mix:", r.flags), &regex_to_s_prefix(&r.flags)),
            Value::Resource(r) => r.to_s.clone(),
            _ => self.inspect(),
        }
    }

    /// Ruby `inspect`.
    pub fn inspect(&self) -> String {
        match self {
            Value::Nil => "nil".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => float_to_s(*f),
            Value::Str(s) => inspect_str(s),
            Value::Sym(s) => {
                if symbol_is_plain(s) {
                    format!(":{s}")
                } else {
                    format!(":{}", inspect_str(s))
                }
            }
            Value::Regex(r) => format!("/{}/{}", escape_slashes(&r.source), r.flags),
            Value::Array(a) => {
                let items: Vec<String> = a.borrow().iter().map(Value::inspect).collect();
                format!("[{}]", items.join(", "))
            }
            Value::Hash(h) => {
                if h.borrow().is_empty() {
                    return "{}".into();
                }
                let items: Vec<String> = h
                    .borrow()
                    .iter()
                    .map(|(k, v)| match k {
                        Key::Sym(s) => format!("{s}: {}", v.inspect()),
                        k => format!("{} => {}", k.to_value().inspect(), v.inspect()),
                    })
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            Value::Range(a, b, excl) => {
                format!(
                    "{}{}{}",
                    a.inspect(),
                    if *excl { "..." } else { ".." },
                    b.inspect()
                )
            }
            Value::Resource(r) => r.inspect(),
            Value::Matcher(m) => m.description(),
            Value::Object(o) => format!("#<{}>", o.class.name),
            Value::Class(c) => c.name.clone(),
            Value::Proc(_) => "#<Proc>".into(),
            Value::Filter(_) => "#<FilterTable::Factory>".into(),
        }
    }
}

fn regex_to_s_prefix(flags: &str) -> String {
    let on: String = ['m', 'i', 'x']
        .iter()
        .filter(|f| flags.contains(**f))
        .collect();
    let off: String = ['m', 'i', 'x']
        .iter()
        .filter(|f| !flags.contains(**f))
        .collect();
    if off.is_empty() {
        format!("(?{on}:")
    } else {
        format!("(?{on}-{off}:")
    }
}

/// A regexp source as `Regexp#inspect` shows it: unescaped `/` escaped.
fn escape_slashes(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut escaped = false;
    for c in src.chars() {
        if c == '/' && !escaped {
            out.push('\\');
        }
        escaped = c == '\\' && !escaped;
        out.push(c);
    }
    out
}

/// Whether a symbol prints without quotes (`:abc`, `:a?`, `:+`).
fn symbol_is_plain(s: &str) -> bool {
    const OPERATORS: [&str; 20] = [
        "+", "-", "*", "/", "%", "**", "==", "!=", "<", "<=", ">", ">=", "<=>", "===", "=~", "!",
        "[]", "[]=", "<<", ">>",
    ];
    if OPERATORS.contains(&s) {
        return true;
    }
    let body = s.strip_suffix(['?', '!', '=']).unwrap_or(s);
    let mut chars = body.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Ruby's `Float#to_s`.
pub fn float_to_s(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if f.is_nan() {
        return "NaN".into();
    }
    if f == f.trunc() && f.abs() < 1e16 {
        return format!("{f:.1}");
    }
    let s = format!("{f}");
    if s.contains('e') {
        s.replace("e", "e+").replace("e+-", "e-")
    } else {
        s
    }
}

/// Ruby's `String#inspect`.
pub fn inspect_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '#' => out.push('#'),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Translates a Ruby regexp to the `regex` crate's syntax.
///
/// Ruby's `^`/`$` always match at line boundaries; `/m` makes `.` match a
/// newline; `\Z` allows one trailing newline; `\h` is a hex digit.
pub fn compile_regex(source: &str, flags: &str) -> Result<Regex, String> {
    let mut pat = String::from("(?m");
    if flags.contains('i') {
        pat.push('i');
    }
    if flags.contains('m') {
        pat.push('s');
    }
    if flags.contains('x') {
        pat.push('x');
    }
    pat.push(')');
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => pat.push_str(r"(?:\n?\z)"),
                Some('h') => pat.push_str("[0-9a-fA-F]"),
                Some('H') => pat.push_str("[^0-9a-fA-F]"),
                Some('/') => pat.push('/'),
                Some(o) => {
                    pat.push('\\');
                    pat.push(o);
                }
                None => pat.push_str(r"\\"),
            }
        } else if c == '(' && chars.peek() == Some(&'?') {
            // Ruby's (?<name>…) is the regex crate's too; lookarounds are not.
            let rest: String = chars.clone().take(3).collect();
            if rest.starts_with("?=")
                || rest.starts_with("?!")
                || rest.starts_with("?<=")
                || rest.starts_with("?<!")
            {
                return Err(format!(
                    "the regexp /{source}/ uses a lookaround, which dscan's regexp engine does not support"
                ));
            }
            pat.push(c);
        } else {
            pat.push(c);
        }
    }
    // Small caches: profiles hold many regexps, each matched against
    // short texts.
    let re = regex::RegexBuilder::new(&pat)
        .size_limit(1 << 20)
        .dfa_size_limit(256 << 10)
        .build()
        .map_err(|e| format!("the regexp /{source}/ cannot be compiled: {e}"))?;
    Ok(Regex {
        source: source.to_string(),
        flags: flags.to_string(),
        re,
    })
}

/// Ruby `==` between values.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Sym(x), Value::Sym(y)) => x == y,
        (Value::Regex(x), Value::Regex(y)) => x.source == y.source && x.flags == y.flags,
        (Value::Array(x), Value::Array(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| equal(a, b))
        }
        (Value::Hash(x), Value::Hash(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        (Value::Resource(x), Value::Resource(y)) => Rc::ptr_eq(x, y),
        (Value::Object(x), Value::Object(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

/// Ruby `<=>` where defined.
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Float(y)) => (*x as f64).partial_cmp(y),
        (Value::Float(x), Value::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Value::Str(x), Value::Str(y)) | (Value::Sym(x), Value::Sym(y)) => {
            Some(x.as_bytes().cmp(y.as_bytes()))
        }
        (Value::Array(x), Value::Array(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            for (a, b) in x.iter().zip(y.iter()) {
                match compare(a, b)? {
                    std::cmp::Ordering::Equal => continue,
                    o => return Some(o),
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_and_regexps_read_as_ruby_writes_them() {
        assert_eq!(Value::str("a\"b\n").inspect(), "\"a\\\"b\\n\"");
        assert_eq!(float_to_s(12.0), "12.0");
        assert_eq!(float_to_s(0.4), "0.4");
        let r = compile_regex(r"^12\.", "").unwrap();
        assert!(r.re.is_match("x\n12.11"));
        let v = Value::Regex(Rc::new(compile_regex("(1|2)", "").unwrap()));
        assert_eq!(v.to_s(), "(?-mix:(1|2))");
        assert!(compile_regex("a(?=b)", "").is_err());
    }
}
