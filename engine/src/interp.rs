//! The evaluator: walks the syntax tree under budgets.
//!
//! A profile is untrusted input. The evaluator reaches the target only
//! through the resources (which read a [`TargetFs`]); there is no file,
//! environment, network or process access, no `eval`, no shell, and
//! `require` names only the profile's own libraries. Steps, call depth,
//! string and array sizes and wall time are bounded; hitting a bound is an
//! error result, never a crash.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use indexmap::IndexMap;

use crate::ast::{Block, Kind, Node, Param, Params};
use crate::dsl::Run;
use crate::value::{Class, Key, Object, Value, compile_regex, equal};

/// A Ruby exception (or a budget stop) travelling up the evaluator.
#[derive(Debug, Clone)]
pub struct RubyError {
    /// The Ruby class name (`NoMethodError`, `RuntimeError`…).
    pub class: String,
    /// The message.
    pub message: String,
    /// Where it was raised.
    pub line: u32,
    /// A budget was exhausted: no rescue may catch it.
    pub fatal: bool,
}

/// Non-local control flow.
#[derive(Debug)]
pub enum Flow {
    /// An exception.
    Error(RubyError),
    /// `next` out of a block.
    Next(Value),
    /// `break` out of a block.
    Break(Value),
    /// `return` from a method.
    Return(Value),
    /// `skip` in a control or describe: the rest does not run.
    Skip(String),
}

/// Evaluation result.
pub type R<T> = Result<T, Flow>;

/// Raises `class` with `message`.
pub fn raise<T>(class: &str, message: impl Into<String>, line: u32) -> R<T> {
    Err(Flow::Error(RubyError {
        class: class.into(),
        message: message.into(),
        line,
        fatal: false,
    }))
}

/// A lexical scope.
#[derive(Debug, Default)]
pub struct Scope {
    vars: RefCell<HashMap<String, Value>>,
    parent: Option<Rc<Scope>>,
}

/// A shared scope handle.
pub type Env = Rc<Scope>;

impl Scope {
    /// A new scope inside `parent`.
    pub fn child(parent: &Env) -> Env {
        Rc::new(Scope {
            vars: RefCell::default(),
            parent: Some(parent.clone()),
        })
    }

    /// A scope with no parent.
    pub fn root() -> Env {
        Rc::new(Scope::default())
    }

    /// Looks a local up.
    pub fn get(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.vars.borrow().get(name) {
            return Some(v.clone());
        }
        self.parent.as_ref().and_then(|p| p.get(name))
    }

    fn set_existing(&self, name: &str, v: &Value) -> bool {
        if let Some(slot) = self.vars.borrow_mut().get_mut(name) {
            *slot = v.clone();
            return true;
        }
        self.parent
            .as_ref()
            .is_some_and(|p| p.set_existing(name, v))
    }

    /// Assigns: an existing local in an enclosing scope, else a new one here.
    pub fn set(&self, name: &str, v: Value) {
        if !self.set_existing(name, &v) {
            self.vars.borrow_mut().insert(name.to_string(), v);
        }
    }

    /// Defines a local in this scope only (block parameters).
    pub fn define(&self, name: &str, v: Value) {
        self.vars.borrow_mut().insert(name.to_string(), v);
    }
}

/// A method defined by the profile.
#[derive(Debug)]
pub struct Method {
    /// Parameters.
    pub params: Params,
    /// Body.
    pub body: Node,
}

/// A block with the scope and self it closes over.
#[derive(Debug)]
pub struct Closure {
    /// The block.
    pub block: Rc<Block>,
    /// Its scope.
    pub env: Env,
    /// `self` inside it.
    pub this: Value,
}

/// What a FilterTable declares (library resources).
#[derive(Debug, Default, Clone)]
pub struct FilterSpec {
    /// Columns: (plural method, field).
    pub columns: Vec<(String, String)>,
    /// Custom matchers and properties: (name, block taking the table).
    pub customs: Vec<(String, Rc<Closure>)>,
    /// The resource method that returns the raw rows.
    pub from: String,
}

/// Expression nesting the evaluator allows (the engine's thread has a
/// stack sized for it).
const MAX_NESTING: u32 = 20_000;

/// Budgets for one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Evaluation steps.
    pub steps: u64,
    /// Call depth.
    pub depth: u32,
    /// Bytes in one string.
    pub string_bytes: usize,
    /// Elements in one array or hash.
    pub elements: usize,
    /// Wall time for the whole run.
    pub time: std::time::Duration,
    /// Bytes read from one target file.
    pub file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            steps: 50_000_000,
            depth: 200,
            string_bytes: 16 << 20,
            elements: 1_000_000,
            time: std::time::Duration::from_secs(300),
            file_bytes: 16 << 20,
        }
    }
}

/// The evaluator's state.
pub struct Interp<'a> {
    /// The target.
    pub fs: &'a dyn crate::fs::TargetFs,
    /// Budgets.
    pub limits: Limits,
    steps: u64,
    depth: u32,
    nesting: u32,
    started: Instant,
    /// Profile-defined classes and modules.
    pub classes: HashMap<String, Rc<Class>>,
    /// Top-level and module functions.
    pub functions: HashMap<String, Rc<Method>>,
    /// Resolved inputs.
    pub inputs: IndexMap<String, Value>,
    /// The control and describe being built.
    pub run: Run,
    /// The platform, computed once.
    pub platform: Option<Rc<crate::resources::Platform>>,
    /// Waivers by control id.
    pub waivers: crate::waivers::Waivers,
    /// The instant waiver expiry dates are compared with.
    pub now: jiff::Timestamp,
    /// What the caller knows of the target's virtualization (`kubepods`
    /// when dscan scans a pod); `None`: detect from the target's files.
    pub virtualization: Option<String>,
    /// The target's accounts, read once per run (`None` until asked; the
    /// inner `None`: the target has no `/etc/passwd`).
    pub accounts: Option<Option<Rc<crate::resources::emulated::Accounts>>>,
    /// Library file names (for `require`).
    pub libraries: Vec<String>,
    /// Constants assigned by the profile (`Class::NAME` inside a class).
    pub constants: HashMap<String, Value>,
    /// Library classes and modules controls cannot see.
    pub hidden: std::collections::HashSet<String>,
    regexes: HashMap<(String, String), Rc<crate::value::Regex>>,
    /// The target's user and group names by id, per file.
    pub names: RefCell<HashMap<String, Rc<IndexMap<u32, String>>>>,
}

fn step_error(msg: String, line: u32) -> Flow {
    Flow::Error(RubyError {
        class: "Dscan::BudgetExceeded".into(),
        message: msg,
        line,
        fatal: true,
    })
}

impl<'a> Interp<'a> {
    /// A new evaluator over `fs`.
    pub fn new(fs: &'a dyn crate::fs::TargetFs, limits: Limits) -> Interp<'a> {
        Interp {
            fs,
            limits,
            steps: 0,
            depth: 0,
            nesting: 0,
            started: Instant::now(),
            classes: HashMap::new(),
            functions: HashMap::new(),
            inputs: IndexMap::new(),
            run: Run::default(),
            platform: None,
            libraries: Vec::new(),
            constants: HashMap::new(),
            hidden: std::collections::HashSet::new(),
            regexes: HashMap::new(),
            names: RefCell::default(),
            virtualization: None,
            accounts: None,
            waivers: crate::waivers::Waivers::new(),
            now: jiff::Timestamp::now(),
        }
    }

    fn tick(&mut self, line: u32) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.steps {
            return Err(step_error(
                format!(
                    "the profile ran more than {} evaluation steps (an endless loop?); dscan stopped it",
                    self.limits.steps
                ),
                line,
            ));
        }
        if self.steps.is_multiple_of(4096) && self.started.elapsed() > self.limits.time {
            return Err(step_error(
                format!(
                    "the profile ran longer than {} s; dscan stopped it",
                    self.limits.time.as_secs()
                ),
                line,
            ));
        }
        Ok(())
    }

    /// Checks a new string's size against the budget.
    pub fn check_str(&self, s: String, line: u32) -> R<Value> {
        if s.len() > self.limits.string_bytes {
            return Err(step_error(
                format!(
                    "a string grew beyond {} bytes; dscan stopped the profile",
                    self.limits.string_bytes
                ),
                line,
            ));
        }
        Ok(Value::Str(s.into()))
    }

    /// Checks a new array's size against the budget.
    pub fn check_array(&self, v: Vec<Value>, line: u32) -> R<Value> {
        if v.len() > self.limits.elements {
            return Err(step_error(
                format!(
                    "an array grew beyond {} elements; dscan stopped the profile",
                    self.limits.elements
                ),
                line,
            ));
        }
        Ok(Value::array(v))
    }

    /// Evaluates a statement sequence or expression.
    pub fn eval(&mut self, n: &Node, env: &Env, this: &Value) -> R<Value> {
        self.tick(n.line)?;
        // Expressions nest on the native stack; bound them as calls are.
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            self.nesting -= 1;
            return Err(step_error(
                format!(
                    "the profile nests expressions and calls deeper than {MAX_NESTING} levels; dscan stopped it"
                ),
                n.line,
            ));
        }
        let out = self.eval_node(n, env, this);
        self.nesting -= 1;
        out
    }

    fn eval_node(&mut self, n: &Node, env: &Env, this: &Value) -> R<Value> {
        match &n.kind {
            Kind::Nil => Ok(Value::Nil),
            Kind::True => Ok(Value::Bool(true)),
            Kind::False => Ok(Value::Bool(false)),
            Kind::SelfRef => Ok(this.clone()),
            Kind::Int(i) => Ok(Value::Int(*i)),
            Kind::Float(f) => Ok(Value::Float(*f)),
            Kind::Str(s) => Ok(Value::str(s)),
            Kind::Sym(s) => Ok(Value::Sym(s.as_str().into())),
            Kind::Interp(parts) => {
                let s = self.interpolate(parts, env, this)?;
                self.check_str(s, n.line)
            }
            Kind::InterpSym(parts) => {
                let s = self.interpolate(parts, env, this)?;
                Ok(Value::Sym(s.into()))
            }
            Kind::Regex(src, flags) => self.regex(src, flags, n.line),
            Kind::InterpRegex(parts, flags) => {
                let mut src = String::new();
                for p in parts {
                    match &p.kind {
                        Kind::Str(s) => src.push_str(s),
                        _ => {
                            let v = self.eval(p, env, this)?;
                            match v {
                                Value::Regex(r) => src.push_str(&r.source),
                                v => src.push_str(&self.to_s(&v, p.line)?),
                            }
                        }
                    }
                }
                self.regex(&src, flags, n.line)
            }
            Kind::Array(items) => {
                let v = self.eval_list(items, env, this)?;
                self.check_array(v, n.line)
            }
            Kind::Hash(pairs) => {
                let mut m = IndexMap::new();
                for (k, v) in pairs {
                    let kv = self.eval(k, env, this)?;
                    let Some(key) = kv.key() else {
                        return raise(
                            "TypeError",
                            format!(
                                "dscan supports hash keys of strings, symbols, integers, booleans and nil, not {}",
                                kv.class_name()
                            ),
                            k.line,
                        );
                    };
                    let vv = self.eval(v, env, this)?;
                    m.insert(key, vv);
                }
                Ok(Value::hash(m))
            }
            Kind::Range(a, b, excl) => {
                let a = match a {
                    Some(a) => self.eval(a, env, this)?,
                    None => Value::Nil,
                };
                let b = match b {
                    Some(b) => self.eval(b, env, this)?,
                    None => Value::Nil,
                };
                Ok(Value::Range(Box::new(a), Box::new(b), *excl))
            }
            Kind::LVar(name) => match env.get(name) {
                Some(v) => Ok(v),
                None => self.call_fn(this, name, vec![], None, n),
            },
            Kind::LAsgn(name, v) => {
                let v = self.eval(v, env, this)?;
                env.set(name, v.clone());
                Ok(v)
            }
            Kind::LOpAsgn(name, op, v) => {
                let cur = env.get(name).unwrap_or(Value::Nil);
                let new = match op.as_str() {
                    "||" if cur.truthy() => cur,
                    "||" => self.eval(v, env, this)?,
                    "&&" if !cur.truthy() => cur,
                    "&&" => self.eval(v, env, this)?,
                    op => {
                        let rhs = self.eval(v, env, this)?;
                        self.send(&cur, op, vec![rhs], None, n.line)?
                    }
                };
                env.set(name, new.clone());
                Ok(new)
            }
            Kind::MultiAsgn(names, v) => {
                let v = self.eval(v, env, this)?;
                let items = match &v {
                    Value::Array(a) => a.borrow().clone(),
                    other => vec![other.clone()],
                };
                for (i, name) in names.iter().enumerate() {
                    env.set(name, items.get(i).cloned().unwrap_or(Value::Nil));
                }
                Ok(v)
            }
            Kind::IVar(name) => Ok(match this {
                Value::Object(o) => o.ivars.borrow().get(name).cloned().unwrap_or(Value::Nil),
                _ => Value::Nil,
            }),
            Kind::IAsgn(name, v) => {
                let v = self.eval(v, env, this)?;
                self.set_ivar(this, name, v.clone(), n.line)?;
                Ok(v)
            }
            Kind::IOpAsgn(name, op, v) => {
                let cur = match this {
                    Value::Object(o) => o.ivars.borrow().get(name).cloned().unwrap_or(Value::Nil),
                    _ => Value::Nil,
                };
                let new = match op.as_str() {
                    "||" if cur.truthy() => cur,
                    "||" => self.eval(v, env, this)?,
                    op => {
                        let rhs = self.eval(v, env, this)?;
                        self.send(&cur, op, vec![rhs], None, n.line)?
                    }
                };
                self.set_ivar(this, name, new.clone(), n.line)?;
                Ok(new)
            }
            Kind::Const(path) => self.constant(path, this, n.line),
            Kind::Call {
                recv,
                name,
                args,
                block,
                block_arg,
                safe,
            } => {
                let block = match (block, block_arg) {
                    (Some(b), _) => Some(Rc::new(Closure {
                        block: b.clone(),
                        env: env.clone(),
                        this: this.clone(),
                    })),
                    (None, Some(arg)) => match self.eval(arg, env, this)? {
                        Value::Proc(c) => Some(c),
                        Value::Sym(s) => Some(Rc::new(symbol_proc(&s, arg))),
                        Value::Nil => None,
                        other => {
                            return raise(
                                "TypeError",
                                format!(
                                    "wrong argument type {} (expected Proc)",
                                    other.class_name()
                                ),
                                n.line,
                            );
                        }
                    },
                    _ => None,
                };
                if name == "one"
                    && let Some(r) = recv
                    && let Kind::Call {
                        recv: None,
                        name: d,
                        args: a,
                        block: None,
                        ..
                    } = &r.kind
                    && d == "describe"
                    && a.is_empty()
                {
                    return crate::dsl::describe_one(self, block, n.line);
                }
                match recv {
                    None => {
                        // A FilterTable `where` block reads its row's fields.
                        if args.is_empty()
                            && block.is_none()
                            && let Some(v) = env.get(&format!("\u{0}{name}"))
                        {
                            return Ok(v);
                        }
                        if crate::dsl::is_dsl(name) {
                            if let Some(row) = env.get("\u{0}\u{0}row") {
                                return raise(
                                    "NoMethodError",
                                    format!("undefined method `{name}' for {}", row.to_s()),
                                    n.line,
                                );
                            }
                            return crate::dsl::call(self, name, args, block, env, this, n);
                        }
                        let args = self.eval_args(args, env, this)?;
                        self.call_fn(this, name, args, block, n)
                    }
                    Some(r) => {
                        let rv = self.eval(r, env, this)?;
                        if *safe && matches!(rv, Value::Nil) {
                            return Ok(Value::Nil);
                        }
                        let args = self.eval_args(args, env, this)?;
                        self.send(&rv, name, args, block, n.line)
                    }
                }
            }
            Kind::Splat(v) => self.eval(v, env, this),
            Kind::And(a, b) => {
                let av = self.eval(a, env, this)?;
                if av.truthy() {
                    self.eval(b, env, this)
                } else {
                    Ok(av)
                }
            }
            Kind::Or(a, b) => {
                let av = self.eval(a, env, this)?;
                if av.truthy() {
                    Ok(av)
                } else {
                    self.eval(b, env, this)
                }
            }
            Kind::If(c, t, e) => {
                let branch = if self.eval(c, env, this)?.truthy() {
                    t
                } else {
                    e
                };
                match branch {
                    Some(b) => self.eval(b, env, this),
                    None => Ok(Value::Nil),
                }
            }
            Kind::Case(subject, whens, els) => {
                let subject = match subject {
                    Some(s) => Some(self.eval(s, env, this)?),
                    None => None,
                };
                for (conds, body) in whens {
                    for c in conds {
                        let hit = match (&c.kind, &subject) {
                            (Kind::Splat(inner), Some(s)) => {
                                let list = self.eval(inner, env, this)?;
                                match list {
                                    Value::Array(a) => a.borrow().iter().any(|x| case_eq(x, s)),
                                    other => case_eq(&other, s),
                                }
                            }
                            (_, Some(s)) => {
                                let cv = self.eval(c, env, this)?;
                                case_eq(&cv, s)
                            }
                            (_, None) => self.eval(c, env, this)?.truthy(),
                        };
                        if hit {
                            return self.eval(body, env, this);
                        }
                    }
                }
                match els {
                    Some(e) => self.eval(e, env, this),
                    None => Ok(Value::Nil),
                }
            }
            Kind::While(cond, body, until) => loop {
                let c = self.eval(cond, env, this)?.truthy();
                if c == *until {
                    return Ok(Value::Nil);
                }
                match self.eval(body, env, this) {
                    Ok(_) | Err(Flow::Next(_)) => {}
                    Err(Flow::Break(v)) => return Ok(v),
                    Err(e) => return Err(e),
                }
            },
            Kind::Seq(items) => {
                let mut last = Value::Nil;
                for item in items {
                    last = self.eval(item, env, this)?;
                }
                Ok(last)
            }
            Kind::Begin(body, rescues, els, ensure) => {
                let mut out = self.eval(body, env, this);
                if let Err(Flow::Error(e)) = &out
                    && !e.fatal
                {
                    let e = e.clone();
                    for r in rescues {
                        let mut matches = r.classes.is_empty() && is_standard_error(&e.class);
                        for c in &r.classes {
                            if let Kind::Const(path) = &c.kind {
                                let name = path.join("::");
                                if rescue_matches(&name, &e.class) {
                                    matches = true;
                                }
                            }
                        }
                        if matches {
                            if let Some(b) = &r.bind {
                                env.set(b, exception_value(&e));
                            }
                            out = self.eval(&r.body, env, this);
                            break;
                        }
                    }
                } else if out.is_ok()
                    && let Some(e) = els
                {
                    out = self.eval(e, env, this);
                }
                if let Some(ens) = ensure {
                    self.eval(ens, env, this)?;
                }
                out
            }
            Kind::Next(v) => {
                let v = match v {
                    Some(v) => self.eval(v, env, this)?,
                    None => Value::Nil,
                };
                Err(Flow::Next(v))
            }
            Kind::Break(v) => {
                let v = match v {
                    Some(v) => self.eval(v, env, this)?,
                    None => Value::Nil,
                };
                Err(Flow::Break(v))
            }
            Kind::Return(v) => {
                let v = match v {
                    Some(v) => self.eval(v, env, this)?,
                    None => Value::Nil,
                };
                Err(Flow::Return(v))
            }
            Kind::Def(name, params, body) => {
                let m = Rc::new(Method {
                    params: params.clone(),
                    body: (**body).clone(),
                });
                match this {
                    Value::Class(c) => {
                        c.methods.borrow_mut().insert(name.clone(), m);
                    }
                    _ => {
                        self.functions.insert(name.clone(), m);
                    }
                }
                Ok(Value::Sym(name.as_str().into()))
            }
            Kind::Class(path, sup, body) => {
                let name = self.define_name(path);
                let superclass = match sup {
                    Some(s) => match &s.kind {
                        Kind::Const(p) => self.classes.get(&p.join("::")).cloned(),
                        // `Inspec.resource(1)`: a resource base; nothing to inherit.
                        _ => None,
                    },
                    None => None,
                };
                let class = self
                    .classes
                    .entry(name.clone())
                    .or_insert_with(|| {
                        Rc::new(Class {
                            name: name.clone(),
                            resource_name: RefCell::new(None),
                            methods: RefCell::default(),
                            superclass,
                            filter: RefCell::default(),
                        })
                    })
                    .clone();
                let class_env = Scope::root();
                self.eval(body, &class_env, &Value::Class(class))?;
                Ok(Value::Nil)
            }
            Kind::Module(path, body) => {
                let name = self.define_name(path);
                let class = self
                    .classes
                    .entry(name.clone())
                    .or_insert_with(|| {
                        Rc::new(Class {
                            name: name.clone(),
                            resource_name: RefCell::new(None),
                            methods: RefCell::default(),
                            superclass: None,
                            filter: RefCell::default(),
                        })
                    })
                    .clone();
                let module_env = Scope::root();
                self.eval(body, &module_env, &Value::Class(class.clone()))?;
                // Module functions are visible to controls (InSpec evaluates
                // libraries in the profile's context).
                for (k, m) in class.methods.borrow().iter() {
                    self.functions.entry(k.clone()).or_insert_with(|| m.clone());
                }
                Ok(Value::Nil)
            }
            Kind::Yield(_) => raise(
                "Dscan::Unsupported",
                "yield is not supported by dscan's engine",
                n.line,
            ),
            Kind::Defined(inner) => Ok(match &inner.kind {
                Kind::LVar(name) if env.get(name).is_some() => Value::str("local-variable"),
                Kind::IVar(name) => match this {
                    Value::Object(o) if o.ivars.borrow().contains_key(name) => {
                        Value::str("instance-variable")
                    }
                    _ => Value::Nil,
                },
                Kind::Const(path) if self.constant(path, this, n.line).is_ok() => {
                    Value::str("constant")
                }
                _ => Value::Nil,
            }),
            Kind::Shell(cmd) => raise(
                "Dscan::Forbidden",
                format!(
                    "a shell command (`{cmd}`) cannot run: dscan never runs profile commands, and the target has no shell"
                ),
                n.line,
            ),
            Kind::Unsupported(what) => raise(
                "Dscan::Unsupported",
                format!(
                    "{what} (line {}) is outside the Ruby subset dscan's engine runs",
                    n.line
                ),
                n.line,
            ),
        }
    }

    /// The source text of a block's body, on one line, as RSpec quotes it
    /// in `satisfy`'s description.
    fn block_source(&self, body: &Node) -> String {
        let src: &[u8] = &self.run.source;
        let (start, end) = (body.span.0.min(src.len()), body.span.1.min(src.len()));
        let text = String::from_utf8_lossy(&src[start..end.max(start)]).into_owned();
        text.lines().map(str::trim).collect::<Vec<_>>().join("\n")
    }

    /// A compiled regexp, once per source and flags (profiles evaluate the
    /// same literal in loops).
    fn regex(&mut self, src: &str, flags: &str, line: u32) -> R<Value> {
        let key = (src.to_string(), flags.to_string());
        if let Some(r) = self.regexes.get(&key) {
            return Ok(Value::Regex(r.clone()));
        }
        match compile_regex(src, flags) {
            Ok(r) => {
                let r = Rc::new(r);
                if self.regexes.len() < 4096 {
                    self.regexes.insert(key, r.clone());
                }
                Ok(Value::Regex(r))
            }
            Err(e) => raise("RegexpError", e, line),
        }
    }

    fn set_ivar(&self, this: &Value, name: &str, v: Value, line: u32) -> R<()> {
        match this {
            Value::Object(o) => {
                o.ivars.borrow_mut().insert(name.to_string(), v);
                Ok(())
            }
            _ => raise(
                "Dscan::Unsupported",
                format!("instance variable {name} outside a library class"),
                line,
            ),
        }
    }

    fn interpolate(&mut self, parts: &[Node], env: &Env, this: &Value) -> R<String> {
        let mut s = String::new();
        for p in parts {
            match &p.kind {
                Kind::Str(t) => s.push_str(t),
                _ => {
                    let v = self.eval(p, env, this)?;
                    s.push_str(&self.to_s(&v, p.line)?);
                }
            }
            if s.len() > self.limits.string_bytes {
                self.check_str(std::mem::take(&mut s), p.line)?;
            }
        }
        Ok(s)
    }

    /// `to_s`, calling a profile-defined `to_s` on objects.
    pub fn to_s(&mut self, v: &Value, line: u32) -> R<String> {
        match v {
            Value::Object(_) => match self.send(v, "to_s", vec![], None, line)? {
                Value::Str(s) => Ok(s.to_string()),
                other => Ok(other.to_s()),
            },
            _ => Ok(v.to_s()),
        }
    }

    /// Evaluates a list, spreading splats.
    pub fn eval_list(&mut self, items: &[Node], env: &Env, this: &Value) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Kind::Splat(inner) = &item.kind {
                match self.eval(inner, env, this)? {
                    Value::Array(a) => out.extend(a.borrow().iter().cloned()),
                    Value::Nil => {}
                    other => out.push(other),
                }
            } else {
                out.push(self.eval(item, env, this)?);
            }
        }
        Ok(out)
    }

    fn eval_args(&mut self, args: &[Node], env: &Env, this: &Value) -> R<Vec<Value>> {
        self.eval_list(args, env, this)
    }

    /// A class or module name being defined; a library's own names (not
    /// written `::Name`) are hidden from controls, as InSpec evaluates
    /// libraries in a context of their own.
    fn define_name(&mut self, path: &[String]) -> String {
        let top = path.first().is_some_and(String::is_empty);
        let name = path
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("::");
        if self.run.file.starts_with("libraries/") && !top {
            self.hidden.insert(name.clone());
        }
        name
    }

    fn constant(&mut self, path: &[String], this: &Value, line: u32) -> R<Value> {
        let name = path
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("::");
        let in_controls = self.run.file.starts_with("controls/");
        let class_of_this = match this {
            Value::Object(o) => Some(o.class.name.clone()),
            Value::Class(c) => Some(c.name.clone()),
            _ => None,
        };
        if let Some(c) = &class_of_this
            && let Some(v) = self.constants.get(&format!("{c}::{name}"))
        {
            return Ok(v.clone());
        }
        if let Some(v) = self.constants.get(&name) {
            return Ok(v.clone());
        }
        if in_controls && self.hidden.contains(&name) {
            // What InSpec says: controls are evaluated in a context of their own.
            return raise(
                "NameError",
                format!(
                    "uninitialized constant #<Class:#<Inspec::ControlEvalContext:0x0000000000000000>>::{name}"
                ),
                line,
            );
        }
        let visible = |n: &str| !(in_controls && self.hidden.contains(n));
        if let Some(c) = self.classes.get(&name).filter(|_| visible(&name)) {
            return Ok(Value::Class(c.clone()));
        }
        if let Some(last) = path.last()
            && let Some(c) = self.classes.get(last).filter(|_| visible(last))
        {
            return Ok(Value::Class(c.clone()));
        }
        match name.as_str() {
            "File" | "IO" | "Dir" | "ENV" | "Kernel" | "Process" | "ObjectSpace" | "Socket"
            | "TCPSocket" | "Net::HTTP" | "Open3" | "FileUtils" | "Pathname" | "Etc" => raise(
                "Dscan::Forbidden",
                format!(
                    "{name} is not available to profiles: dscan reads the target only through resources (e.g. file('/path').content)"
                ),
                line,
            ),
            "JSON"
            | "YAML"
            | "Inspec"
            | "Inspec::Resource"
            | "FilterTable"
            | "Gem::Version"
            | "String"
            | "Integer"
            | "Array"
            | "Hash"
            | "Float"
            | "Regexp"
            | "Symbol"
            | "StandardError"
            | "RuntimeError"
            | "ArgumentError"
            | "NameError"
            | "NoMethodError"
            | "TypeError"
            | "Inspec::Exceptions::ResourceSkipped"
            | "Inspec::Exceptions::ResourceFailed" => {
                Ok(Value::Sym(format!("const:{name}").into()))
            }
            _ => raise("NameError", format!("uninitialized constant {name}"), line),
        }
    }

    /// Calls a method with no explicit receiver.
    pub fn call_fn(
        &mut self,
        this: &Value,
        name: &str,
        args: Vec<Value>,
        block: Option<Rc<Closure>>,
        n: &Node,
    ) -> R<Value> {
        if let Value::Object(o) = this
            && let Some(m) = find_method(&o.class, name)
        {
            return self.invoke(&m, this, args, block, n.line);
        }
        if let Some(m) = self.functions.get(name).cloned() {
            return self.invoke(&m, this, args, block, n.line);
        }
        match name {
            "raise" | "fail" => {
                let (class, msg) = match args.as_slice() {
                    [] => (
                        "RuntimeError".to_string(),
                        "unhandled exception".to_string(),
                    ),
                    [Value::Str(s)] => ("RuntimeError".to_string(), s.to_string()),
                    [Value::Sym(c)] | [Value::Sym(c), _] if c.starts_with("const:") => {
                        let msg = args
                            .get(1)
                            .map(Value::to_s)
                            .unwrap_or_else(|| c[6..].to_string());
                        (c[6..].to_string(), msg)
                    }
                    [Value::Class(c), ..] => (
                        c.name.clone(),
                        args.get(1).map(Value::to_s).unwrap_or_default(),
                    ),
                    [other, ..] => ("RuntimeError".to_string(), other.to_s()),
                };
                raise(&class, msg, n.line)
            }
            "puts" | "print" | "p" | "pp" | "warn" => Ok(Value::Nil),
            "__const_set" => {
                let name = args.first().map(Value::to_s).unwrap_or_default();
                let value = args.get(1).cloned().unwrap_or(Value::Nil);
                let key = match this {
                    Value::Class(c) => format!("{}::{name}", c.name),
                    _ => name,
                };
                self.constants.insert(key, value.clone());
                Ok(value)
            }
            "require" | "require_relative" | "load" => {
                let what = args.first().map(Value::to_s).unwrap_or_default();
                let base = what
                    .rsplit('/')
                    .next()
                    .unwrap_or(&what)
                    .trim_end_matches(".rb");
                if [
                    "json", "yaml", "set", "date", "time", "digest", "ipaddr", "uri",
                ]
                .contains(&base)
                    || self
                        .libraries
                        .iter()
                        .any(|l| l.trim_end_matches(".rb") == base)
                {
                    Ok(Value::Bool(true))
                } else {
                    raise(
                        "Dscan::Forbidden",
                        format!(
                            "require '{what}' is not allowed: a profile may require only its own libraries/ files"
                        ),
                        n.line,
                    )
                }
            }
            "system"
            | "exec"
            | "spawn"
            | "eval"
            | "instance_eval"
            | "class_eval"
            | "binding"
            | "open"
            | "fork"
            | "syscall"
            | "`"
            | "instance_variable_set"
            | "define_method"
            | "send"
            | "public_send"
            | "__send__"
            | "method"
            | "trap"
            | "sleep"
            | "exit"
            | "exit!"
            | "abort"
            | "at_exit"
            | "srand"
            | "rand"
            | "gets"
            | "readlines"
            | "select"
            | "loop" => {
                if name == "loop"
                    && let Some(b) = block
                {
                    loop {
                        match self.yield_block(&b, vec![], n.line) {
                            Ok(_) | Err(Flow::Next(_)) => {}
                            Err(Flow::Break(v)) => return Ok(v),
                            Err(e) => return Err(e),
                        }
                    }
                }
                if matches!(name, "send" | "public_send" | "__send__")
                    && let Some(Value::Sym(m) | Value::Str(m)) = args.first()
                {
                    let m = m.to_string();
                    return self.call_fn(this, &m, args[1..].to_vec(), block, n);
                }
                raise(
                    "Dscan::Forbidden",
                    format!(
                        "{name} is not available to profiles: dscan never runs code or commands a profile names"
                    ),
                    n.line,
                )
            }
            "lambda" | "proc" => match block {
                Some(b) => Ok(Value::Proc(b)),
                None => raise(
                    "ArgumentError",
                    "tried to create Proc object without a block",
                    n.line,
                ),
            },
            "format" | "sprintf" => crate::builtins::format(self, &args, n.line),
            "Integer" => {
                crate::builtins::to_integer(args.first().unwrap_or(&Value::Nil), true, n.line)
            }
            "Float" => crate::builtins::to_float(args.first().unwrap_or(&Value::Nil), n.line),
            "String" => Ok(Value::str(
                &args.first().map(Value::to_s).unwrap_or_default(),
            )),
            "Array" => Ok(match args.into_iter().next() {
                Some(Value::Array(a)) => Value::Array(a),
                Some(Value::Nil) | None => Value::array(vec![]),
                Some(v) => Value::array(vec![v]),
            }),
            "block_given?" => Ok(Value::Bool(false)),
            "include" if !matches!(this, Value::Class(_)) => {
                match crate::matchers::construct(name, &args, n.line)? {
                    Some(m) => Ok(Value::Matcher(Rc::new(m))),
                    None => Ok(Value::Nil),
                }
            }
            "attr_reader" | "attr_accessor" | "include" | "extend" | "private" | "public"
            | "protected" | "module_function" | "attr_writer" => {
                if let Value::Class(c) = this
                    && matches!(name, "attr_reader" | "attr_accessor")
                {
                    for a in &args {
                        let field = a.to_s();
                        c.methods.borrow_mut().insert(
                            field.clone(),
                            Rc::new(Method {
                                params: Params::default(),
                                body: n.with(Kind::IVar(format!("@{field}"))),
                            }),
                        );
                    }
                }
                Ok(Value::Nil)
            }
            _ => {
                if let Value::Class(c) = this {
                    return crate::resources::class_macro(self, c, name, args, block, n.line);
                }
                if let Some(r) = crate::resources::construct(self, name, &args, n.line)? {
                    return Ok(r);
                }
                if let Some(m) = crate::matchers::construct(name, &args, n.line)? {
                    return Ok(Value::Matcher(Rc::new(m)));
                }
                if name == "satisfy"
                    && let Some(b) = &block
                {
                    let src = self.block_source(&b.block.body);
                    return Ok(Value::Matcher(Rc::new(crate::matchers::satisfy(
                        b.clone(),
                        src,
                    ))));
                }
                if let Some(class) = self.resource_class(name) {
                    return self.new_object(&class, args, n.line);
                }
                if let Value::Object(_) | Value::Resource(_) = this {
                    return self.send(this, name, args, block, n.line);
                }
                raise(
                    "NameError",
                    format!("undefined local variable or method `{name}'"),
                    n.line,
                )
            }
        }
    }

    fn resource_class(&self, name: &str) -> Option<Rc<Class>> {
        self.classes
            .values()
            .find(|c| c.resource_name.borrow().as_deref() == Some(name))
            .cloned()
    }

    /// Instantiates a profile class, running `initialize`.
    pub fn new_object(&mut self, class: &Rc<Class>, args: Vec<Value>, line: u32) -> R<Value> {
        let obj = Value::Object(Rc::new(Object {
            class: class.clone(),
            ivars: RefCell::default(),
        }));
        obj_set_params(&obj, &args);
        if let Some(m) = find_method(class, "initialize") {
            match self.invoke(&m, &obj, args, None, line) {
                Ok(_) => {}
                Err(Flow::Skip(msg)) => {
                    if let Value::Object(o) = &obj {
                        o.ivars
                            .borrow_mut()
                            .insert("@__skipped".into(), Value::str(&msg));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(obj)
    }

    /// One level deeper into calls, within the depth budget.
    fn enter(&mut self, what: &str, line: u32) -> R<()> {
        self.depth += 1;
        if self.depth > self.limits.depth {
            self.depth -= 1;
            return Err(step_error(
                format!(
                    "{what} nested deeper than {} (endless recursion?); dscan stopped the profile",
                    self.limits.depth
                ),
                line,
            ));
        }
        Ok(())
    }

    /// Runs a profile-defined method.
    pub fn invoke(
        &mut self,
        m: &Rc<Method>,
        this: &Value,
        args: Vec<Value>,
        block: Option<Rc<Closure>>,
        line: u32,
    ) -> R<Value> {
        self.enter("method calls", line)?;
        let env = Scope::root();
        let _ = block;
        let out = bind_params(self, &m.params, args, &env, this, line)
            .and_then(|_| self.eval(&m.body, &env, this));
        self.depth -= 1;
        match out {
            Err(Flow::Return(v)) => Ok(v),
            other => other,
        }
    }

    /// Calls a block with arguments.
    pub fn yield_block(&mut self, b: &Rc<Closure>, args: Vec<Value>, line: u32) -> R<Value> {
        self.enter("blocks", line)?;
        let env = Scope::child(&b.env);
        // One array argument spreads over several parameters (Ruby's block rule).
        let args = if b.block.params.required.len() + b.block.params.optional.len() > 1
            && args.len() == 1
            && let Value::Array(a) = &args[0]
        {
            a.borrow().clone()
        } else {
            args
        };
        let this = b.this.clone();
        let out = bind_params(self, &b.block.params, args, &env, &this, line)
            .and_then(|_| self.eval(&b.block.body, &env, &this));
        self.depth -= 1;
        out
    }

    /// Calls a block, turning `next v` into its value.
    pub fn call_block(&mut self, b: &Rc<Closure>, args: Vec<Value>, line: u32) -> R<Value> {
        match self.yield_block(b, args, line) {
            Err(Flow::Next(v)) => Ok(v),
            other => other,
        }
    }

    /// Sends `name` to a value.
    pub fn send(
        &mut self,
        recv: &Value,
        name: &str,
        args: Vec<Value>,
        block: Option<Rc<Closure>>,
        line: u32,
    ) -> R<Value> {
        self.tick(line)?;
        match recv {
            Value::Object(o) => {
                if let Some(m) = find_method(&o.class, name) {
                    return self.invoke(&m, recv, args, block, line);
                }
                crate::resources::object_method(self, o, recv, name, args, block, line)
            }
            Value::Resource(r) => crate::resources::call(self, r, name, args, block, line),
            Value::Matcher(m) if matches!(name, "to" | "not_to" | "to_not") => {
                crate::dsl::expect_to(self, m, name, args, line)
            }
            Value::Matcher(m) if m.pending.is_some() => {
                crate::dsl::pending_operator(self, m, name, args, line)
            }
            Value::Matcher(m) => crate::matchers::chain(m, name, args, line),
            Value::Class(c) => {
                if name == "new" {
                    return self.new_object(c, args, line);
                }
                if let Some(m) = find_method(c, name) {
                    return self.invoke(&m, recv, args, block, line);
                }
                raise(
                    "NoMethodError",
                    format!("undefined method `{name}' for {}:Class", c.name),
                    line,
                )
            }
            _ => crate::builtins::call(self, recv, name, args, block, line),
        }
    }
}

/// Finds a method on a class or its ancestors.
pub fn find_method(class: &Rc<Class>, name: &str) -> Option<Rc<Method>> {
    let mut c = Some(class.clone());
    while let Some(k) = c {
        if let Some(m) = k.methods.borrow().get(name) {
            return Some(m.clone());
        }
        c = k.superclass.clone();
    }
    None
}

fn obj_set_params(obj: &Value, args: &[Value]) {
    if let Value::Object(o) = obj {
        o.ivars.borrow_mut().insert(
            "@__params".into(),
            Value::str(&Value::array(args.to_vec()).inspect()),
        );
    }
}

fn bind_params(
    interp: &mut Interp<'_>,
    params: &Params,
    args: Vec<Value>,
    env: &Env,
    this: &Value,
    line: u32,
) -> R<()> {
    let mut args = args;
    // A trailing hash feeds keyword parameters.
    let mut kwargs: Option<IndexMap<Key, Value>> = None;
    if !params.keywords.is_empty()
        && let Some(Value::Hash(h)) = args.last()
    {
        kwargs = Some(h.borrow().clone());
        args.pop();
    }
    let mut it = args.into_iter();
    for p in &params.required {
        let v = it.next().unwrap_or(Value::Nil);
        match p {
            Param::Name(n) => env.define(n, v),
            Param::Destructure(names) => {
                let items = match &v {
                    Value::Array(a) => a.borrow().clone(),
                    other => vec![other.clone()],
                };
                for (i, n) in names.iter().enumerate() {
                    env.define(n, items.get(i).cloned().unwrap_or(Value::Nil));
                }
            }
        }
    }
    for (name, default) in &params.optional {
        let v = match it.next() {
            Some(v) => v,
            None => interp.eval(default, env, this)?,
        };
        env.define(name, v);
    }
    let rest: Vec<Value> = it.collect();
    if let Some(r) = &params.rest {
        env.define(r, Value::array(rest));
    }
    for (name, default) in &params.keywords {
        let given = kwargs
            .as_ref()
            .and_then(|k| k.get(&Key::Sym(name.clone())).cloned());
        let v = match (given, default) {
            (Some(v), _) => v,
            (None, Some(d)) => interp.eval(d, env, this)?,
            (None, None) => {
                return raise("ArgumentError", format!("missing keyword: :{name}"), line);
            }
        };
        env.define(name, v);
    }
    Ok(())
}

fn symbol_proc(name: &str, at: &Node) -> Closure {
    let recv = at.with(Kind::LVar("__x".into()));
    Closure {
        block: Rc::new(Block {
            params: Params {
                required: vec![Param::Name("__x".into())],
                ..Params::default()
            },
            body: Box::new(at.with(Kind::Call {
                recv: Some(Box::new(recv)),
                name: name.to_string(),
                args: vec![],
                block: None,
                block_arg: None,
                safe: false,
            })),
        }),
        env: Scope::root(),
        this: Value::Nil,
    }
}

/// Ruby `===` as `case`/`when` uses it.
pub fn case_eq(pattern: &Value, v: &Value) -> bool {
    match (pattern, v) {
        (Value::Regex(r), Value::Str(s)) => r.re.is_match(s),
        (Value::Regex(r), Value::Sym(s)) => r.re.is_match(s),
        (Value::Range(lo, hi, excl), x) => crate::builtins::range_includes(lo, hi, *excl, x),
        (Value::Sym(c), x) if c.starts_with("const:") => c[6..] == x.class_name(),
        _ => equal(pattern, v),
    }
}

fn is_standard_error(class: &str) -> bool {
    !class.starts_with("Dscan::")
}

fn rescue_matches(name: &str, class: &str) -> bool {
    if class.starts_with("Dscan::") {
        return false;
    }
    match name {
        "StandardError" | "Exception" => true,
        "NameError" => class == "NameError" || class == "NoMethodError",
        other => other == class || class.ends_with(&format!("::{other}")),
    }
}

fn exception_value(e: &RubyError) -> Value {
    let mut m = IndexMap::new();
    m.insert(Key::Sym("message".into()), Value::str(&e.message));
    m.insert(Key::Sym("class".into()), Value::str(&e.class));
    Value::hash(m)
}
