//! The control DSL: controls, describe groups, examples, and the results
//! they produce (in RSpec's order: a group's own examples, then its child
//! groups).

use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexMap;

use crate::ast::Node;
use crate::interp::{Closure, Env, Flow, Interp, R, RubyError, raise};
use crate::matchers::{self, Matcher};
use crate::value::Value;

/// One result, as InSpec's JSON reporter emits it.
#[derive(Debug, Clone, Default)]
pub struct CheckResult {
    /// passed, failed, skipped.
    pub status: &'static str,
    /// RSpec's full description.
    pub code_desc: String,
    /// `resource` (skipped results only).
    pub resource: Option<String>,
    /// Why it was skipped.
    pub skip_message: Option<String>,
    /// Why it failed.
    pub message: Option<String>,
    /// An error's class.
    pub exception: Option<String>,
    /// An error's backtrace.
    pub backtrace: Option<Vec<String>>,
    /// The described object's class (resource name).
    pub resource_class: String,
    /// Its constructor arguments, inspected.
    pub resource_params: String,
    /// Its identifier.
    pub resource_id: String,
    /// Seconds it took.
    pub run_time: f64,
}

/// A control as built by its block.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Its id.
    pub id: String,
    /// `title`.
    pub title: Option<String>,
    /// `desc` entries (label, text).
    pub descs: Vec<(String, String)>,
    /// `impact`.
    pub impact: Option<f64>,
    /// `tag`s.
    pub tags: serde_json::Map<String, serde_json::Value>,
    /// `ref`s.
    pub refs: Vec<serde_json::Value>,
    /// Line of `control`.
    pub line: u32,
    /// Source text.
    pub code: String,
    /// File (relative to the profile).
    pub file: String,
    /// Results.
    pub results: Vec<CheckResult>,
    /// The waiver that applied (the report's `waiver_data`).
    pub waiver_data: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What a describe group describes.
#[derive(Debug, Clone)]
enum Subject {
    Value(Value),
    Its(Value),
}

#[derive(Debug)]
struct Group {
    subject: Subject,
    desc: String,
    examples: Vec<(Rc<Closure>, Option<String>)>,
    children: Vec<Group>,
    skip: Option<String>,
    /// `describe.one`: the children are alternatives.
    one: bool,
    /// A control-level `expect(x).to m` (the flag: negated).
    expectation: Option<(Rc<Matcher>, bool)>,
    /// `subject { … }`.
    lazy: Option<Rc<Closure>>,
}

impl Group {
    fn new(subject: Subject, desc: String) -> Group {
        Group {
            subject,
            desc,
            examples: vec![],
            children: vec![],
            skip: None,
            one: false,
            expectation: None,
            lazy: None,
        }
    }
}

/// The run's DSL state.
#[derive(Debug, Default)]
pub struct Run {
    /// Finished controls.
    pub controls: Vec<Control>,
    current: Option<Control>,
    stack: Vec<Group>,
    /// The file being evaluated.
    pub file: String,
    /// Its source.
    pub source: Rc<[u8]>,
    /// A file-level skip (`only_if` outside a control).
    pub file_skip: Option<String>,
    example: Option<ExampleState>,
    control_skip: Option<String>,
    /// The profile path as given (for "Control Source Code Error" paths).
    pub profile_ref: String,
    /// File-level titles, by control file.
    pub file_titles: IndexMap<String, String>,
    /// The first error of the file's top-level code, if any.
    pub file_error: Option<RubyError>,
    /// Position of each control id in `controls`.
    control_index: HashMap<String, usize>,
}

#[derive(Debug)]
struct ExampleState {
    subject: Value,
    description: Option<String>,
    failure: Option<String>,
}

/// Whether `name` is a DSL word handled here.
pub fn is_dsl(name: &str) -> bool {
    matches!(
        name,
        "control"
            | "title"
            | "desc"
            | "impact"
            | "tag"
            | "ref"
            | "only_if"
            | "describe"
            | "it"
            | "its"
            | "expect"
            | "should"
            | "should_not"
            | "skip"
            | "input"
            | "attribute"
            | "is_expected"
            | "subject"
    )
}

fn impact_of(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => match s.to_lowercase().as_str() {
            "none" => Some(0.0),
            "low" => Some(0.1),
            "medium" => Some(0.4),
            "high" => Some(0.7),
            "critical" => Some(0.9),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

/// JSON for a value (tags, inputs).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Into::into)
            .unwrap_or(serde_json::Value::Null),
        Value::Str(s) | Value::Sym(s) => s.to_string().into(),
        Value::Array(a) => a.borrow().iter().map(to_json).collect(),
        Value::Hash(h) => h
            .borrow()
            .iter()
            .map(|(k, v)| (k.to_value().to_s(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.inspect().into(),
    }
}

/// Removes the common indentation, then strips (InSpec's `unindent`).
pub fn unindent(s: &str) -> String {
    let min = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let out: Vec<&str> = s
        .lines()
        .map(|l| {
            if l.len() >= min {
                &l[min..]
            } else {
                l.trim_start()
            }
        })
        .collect();
    out.join("\n").trim().to_string()
}

fn describe_of(interp: &mut Interp<'_>, v: &Value, line: u32) -> R<String> {
    Ok(match v {
        Value::Str(s) => s.to_string(),
        Value::Object(_) => interp.to_s(v, line)?,
        v => v.to_s(),
    })
}

/// Handles a DSL call.
pub fn call(
    interp: &mut Interp<'_>,
    name: &str,
    arg_nodes: &[Node],
    block: Option<Rc<Closure>>,
    env: &Env,
    this: &Value,
    n: &Node,
) -> R<Value> {
    let line = n.line;
    // `describe` evaluates its own argument with resource errors kept.
    let args = interp.eval_list(arg_nodes, env, this)?;
    let a0 = args.first().cloned().unwrap_or(Value::Nil);
    match name {
        "control" => {
            let id = a0.to_s();
            // Spans are byte offsets into the file as written (which need not be
            // valid UTF-8): slice the bytes, then convert.
            let src: &[u8] = &interp.run.source;
            let (start, end) = (n.span.0.min(src.len()), n.span.1.min(src.len()));
            let code = String::from_utf8_lossy(&src[start..end.max(start)]).into_owned();
            // Keep the first line's indentation as InSpec's source extraction does.
            let line_start = src[..start]
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            let indent = String::from_utf8_lossy(&src[line_start..start]).into_owned();
            let code = if indent.trim().is_empty() {
                format!("{indent}{code}\n")
            } else {
                format!("{code}\n")
            };
            let mut ctl = Control {
                id,
                line,
                code,
                file: interp.run.file.clone(),
                ..Control::default()
            };
            let waiver = interp
                .waivers
                .get(&ctl.id)
                .map(|w| crate::waivers::apply(w, interp.now));
            if let Some(w) = waiver {
                ctl.waiver_data = Some(w.data);
                if let Some(msg) = w.skip {
                    // As InSpec: a control waived with `run: false` is not
                    // evaluated at all (its block may be expensive or fail).
                    ctl.results = vec![noop_skip(msg)];
                    merge_or_push(&mut interp.run.controls, &mut interp.run.control_index, ctl);
                    return Ok(Value::Nil);
                }
            }
            let saved = interp.run.current.replace(ctl);
            let saved_skip = interp.run.control_skip.take();
            let mut pending: Vec<Group> = Vec::new();
            // A file-level only_if skips the checks; the control's own
            // metadata (title, tags…) is still read from its block.
            if let Some(skip) = &interp.run.file_skip {
                interp.run.control_skip = Some(skip.clone());
            }
            let body = match &block {
                Some(b) => {
                    let top = interp.run.stack.len();
                    let r = interp.call_block(b, vec![], line);
                    pending.extend(interp.run.stack.drain(top..));
                    r
                }
                None => Ok(Value::Nil),
            };
            let mut ctl = interp.run.current.take().unwrap_or_default();
            interp.run.current = saved;
            let skip = std::mem::replace(&mut interp.run.control_skip, saved_skip);
            let error = match body {
                Ok(_) | Err(Flow::Skip(_)) => None,
                Err(Flow::Error(e)) => Some(e),
                Err(other) => return Err(other),
            };
            // An only_if that already skipped the control wins over a later
            // error in its body, as in InSpec (the skip replaces the checks).
            let skipped_by_condition = skip.is_some();
            if let Some(msg) = skip {
                ctl.results = vec![noop_skip(msg)];
            } else {
                for g in pending {
                    run_group(interp, &g, &[], &mut ctl.results)?;
                }
            }
            if let Some(e) = &interp.run.file_error {
                // The file's own setup failed: nothing of this control is
                // evaluated; a command that could not run is a skip, any
                // other error a failure.
                let at = format!("{}/{}:{}", interp.run.profile_ref, ctl.file, e.line);
                let why = format!(
                    "the control file's top-level code failed at {at}: {}",
                    e.message
                );
                ctl.results = vec![if e.class == "Inspec::Exceptions::ResourceSkipped" {
                    noop_skip(format!("Skipped control: {why}"))
                } else {
                    let mut r = error_result(&format!("Control Source Code Error {at} "), e);
                    r.message = Some(why);
                    r.resource_id = at;
                    r
                }];
            }
            let fatal = error.as_ref().is_some_and(|e| e.fatal);
            // A control whose file's setup failed reports that failure alone.
            let superseded = skipped_by_condition || interp.run.file_error.is_some();
            if let Some(e) = error.as_ref().filter(|e| !superseded || e.fatal) {
                // InSpec re-raises a control body's error as a RuntimeError
                // with the original message; checks registered before it stay.
                let at = format!("{}/{}:{}", interp.run.profile_ref, ctl.file, ctl.line);
                if e.class == "Inspec::Exceptions::ResourceSkipped" {
                    // The control needed a fact the target cannot give: it is skipped,
                    // with the reason, instead of failing or passing on a guess.
                    ctl.results = vec![noop_skip(format!(
                        "Skipped control: {} (at {at})",
                        e.message
                    ))];
                } else {
                    let mut r = error_result(&format!("Control Source Code Error {at} "), e);
                    if !e.fatal {
                        r.exception = Some("RuntimeError".into());
                    }
                    r.resource_id = at;
                    ctl.results.push(r);
                }
            }
            merge_or_push(&mut interp.run.controls, &mut interp.run.control_index, ctl);
            if fatal && let Some(e) = error {
                return Err(Flow::Error(e));
            }
            Ok(Value::Nil)
        }
        "title" => {
            match &mut interp.run.current {
                Some(c) => c.title = Some(a0.to_s()),
                // A file-level title names the file's group.
                None => {
                    let file = interp.run.file.clone();
                    interp.run.file_titles.insert(file, a0.to_s());
                }
            }
            Ok(Value::Nil)
        }
        "desc" => {
            if let Some(c) = &mut interp.run.current {
                let (label, text) = if args.len() > 1 {
                    (a0.to_s(), args[1].to_s())
                } else {
                    ("default".into(), a0.to_s())
                };
                let text = unindent(&text);
                match c.descs.iter_mut().find(|d| d.0 == label) {
                    Some(d) => d.1 = text,
                    None => c.descs.push((label, text)),
                }
            }
            Ok(Value::Nil)
        }
        "impact" => {
            if let Some(c) = &mut interp.run.current {
                c.impact = impact_of(&a0);
            }
            Ok(Value::Nil)
        }
        "tag" => {
            if let Some(c) = &mut interp.run.current {
                for a in &args {
                    match a {
                        Value::Hash(h) => {
                            for (k, v) in h.borrow().iter() {
                                c.tags.insert(k.to_value().to_s(), to_json(v));
                            }
                        }
                        v => {
                            c.tags.insert(v.to_s(), serde_json::Value::Null);
                        }
                    }
                }
            }
            Ok(Value::Nil)
        }
        "ref" => {
            if let Some(c) = &mut interp.run.current {
                let mut m = serde_json::Map::new();
                if let Some(Value::Hash(h)) = args.get(1) {
                    for (k, v) in h.borrow().iter() {
                        m.insert(k.to_value().to_s(), to_json(v));
                    }
                }
                m.insert("ref".into(), a0.to_s().into());
                c.refs.push(m.into());
            }
            Ok(Value::Nil)
        }
        "only_if" => {
            let Some(b) = block else {
                return Ok(Value::Nil);
            };
            let ok = interp.call_block(&b, vec![], line)?.truthy();
            if !ok {
                let msg = match &a0 {
                    Value::Str(m) => format!("Skipped control due to only_if condition: {m}"),
                    _ => "Skipped control due to only_if condition.".to_string(),
                };
                if let Some(Value::Hash(h)) = args.iter().find(|a| matches!(a, Value::Hash(_)))
                    && let Some(v) = h.borrow().get(&crate::value::Key::Sym("impact".into()))
                    && let Some(c) = &mut interp.run.current
                {
                    c.impact = impact_of(v);
                }
                if interp.run.current.is_some() {
                    interp.run.control_skip.get_or_insert(msg);
                } else {
                    interp.run.file_skip = Some(msg);
                }
            }
            Ok(Value::Nil)
        }
        "input" | "attribute" => {
            let key = a0.to_s();
            if let Some(v) = interp.inputs.get(&key) {
                return Ok(v.clone());
            }
            let given = match args.get(1) {
                Some(Value::Hash(h)) => {
                    let h = h.borrow();
                    h.get(&crate::value::Key::Sym("value".into()))
                        .or_else(|| h.get(&crate::value::Key::Sym("default".into())))
                        .cloned()
                }
                _ => None,
            };
            if let Some(v) = given {
                interp.inputs.insert(key, v.clone());
                return Ok(v);
            }
            Ok(Value::Nil)
        }
        "describe" => {
            let (subject, desc) = if args.is_empty() {
                return raise(
                    "Dscan::Unsupported",
                    "describe.one / describe without a subject is not supported yet",
                    line,
                );
            } else {
                let d = describe_of(interp, &a0, line)?;
                let d = if args.len() > 1 {
                    format!("{d} {}", args[1].to_s())
                } else {
                    d
                };
                (Subject::Value(a0.clone()), d)
            };
            interp.run.stack.push(Group::new(subject, desc));
            let top = interp.run.stack.len();
            let r = match &block {
                Some(b) => interp.call_block(b, vec![], line),
                None => Ok(Value::Nil),
            };
            // Children registered inside the body.
            let children: Vec<Group> = interp.run.stack.drain(top..).collect();
            let mut group = interp.run.stack.pop().expect("the group pushed above");
            group.children.extend(children);
            match r {
                Ok(_) => {}
                Err(Flow::Skip(msg)) => group.skip = Some(msg),
                Err(e) => return Err(e),
            }
            let outside = interp.run.current.is_none() && interp.run.stack.is_empty();
            if outside {
                // A bare describe outside a control: a control of its own.
                let base = interp.run.file.rsplit('/').next().unwrap_or("").to_string();
                let hex = {
                    use sha2::Digest;
                    hex::encode(&sha2::Sha256::digest(format!("{}:{line}", interp.run.file))[..16])
                };
                let mut ctl = Control {
                    id: format!("(generated from {base}:{line} {hex})"),
                    line,
                    file: interp.run.file.clone(),
                    ..Control::default()
                };
                run_group(interp, &group, &[], &mut ctl.results)?;
                merge_or_push(&mut interp.run.controls, &mut interp.run.control_index, ctl);
            } else {
                interp.run.stack.push(group);
            }
            Ok(Value::Nil)
        }
        "it" => {
            let Some(b) = block else {
                return Ok(Value::Nil);
            };
            let desc = match &a0 {
                Value::Str(s) => Some(s.to_string()),
                _ => None,
            };
            if let Some(g) = interp.run.stack.last_mut() {
                g.examples.push((b, desc));
            }
            Ok(Value::Nil)
        }
        "its" => {
            let Some(b) = block else {
                return Ok(Value::Nil);
            };
            let desc = match &a0 {
                Value::Array(_) => a0.inspect(),
                v => v.to_s(),
            };
            if let Some(g) = interp.run.stack.last_mut() {
                let mut its = Group::new(Subject::Its(a0.clone()), desc);
                its.examples.push((b, None));
                g.children.push(its);
            }
            Ok(Value::Nil)
        }
        // RSpec: `skip` without a reason leaves the description empty.
        "skip" => Err(Flow::Skip(if args.is_empty() {
            String::new()
        } else {
            a0.to_s()
        })),
        "expect" => Ok(Value::Matcher(Rc::new(matchers::expect(a0)))),
        "should" | "should_not" | "is_expected" | "subject" => {
            if name == "subject"
                && interp.run.example.is_none()
                && let (Some(b), Some(g)) = (block, interp.run.stack.last_mut())
            {
                g.lazy = Some(b);
                return Ok(Value::Nil);
            }
            let subject = example_subject(interp, name, line)?;
            match name {
                "subject" => Ok(subject),
                "is_expected" => Ok(Value::Matcher(Rc::new(matchers::expect(subject)))),
                _ if args.is_empty() => Ok(Value::Matcher(Rc::new(matchers::pending(
                    name == "should_not",
                )))),
                _ => {
                    let Value::Matcher(m) = a0 else {
                        return raise(
                            "ArgumentError",
                            format!("{name} needs a matcher, got {}", a0.inspect()),
                            line,
                        );
                    };
                    expectation(interp, &m, subject, name == "should_not", true, line)
                }
            }
        }
        _ => raise("NoMethodError", format!("undefined method `{name}'"), line),
    }
}

/// `expect(x).to m` and `should m`.
pub fn expectation(
    interp: &mut Interp<'_>,
    m: &Matcher,
    actual: Value,
    negated: bool,
    implicit: bool,
    line: u32,
) -> R<Value> {
    let _ = implicit;
    // How RSpec shows the actual value in messages: resources by their
    // `to_s`, everything else inspected.
    let subject_desc = match &actual {
        Value::Resource(_) | Value::Object(_) => interp.to_s(&actual, line)?,
        v => v.inspect(),
    };
    let desc = format!(
        "is expected {}to {}",
        if negated { "not " } else { "" },
        m.description()
    );
    // The description stands even when the matcher raises.
    if let Some(ex) = &mut interp.run.example {
        ex.description = Some(desc);
    }
    let out = matchers::evaluate(interp, m, &actual, negated, &subject_desc, line)?;
    if let Some(ex) = &mut interp.run.example
        && !out.passed
    {
        ex.failure = Some(out.message.clone());
        return Err(Flow::Error(RubyError {
            class: "RSpec::Expectations::ExpectationNotMetError".into(),
            message: out.message,
            line,
            fatal: false,
        }));
    }
    Ok(Value::Bool(out.passed))
}

/// `describe.one do … end`.
pub fn describe_one(interp: &mut Interp<'_>, block: Option<Rc<Closure>>, line: u32) -> R<Value> {
    let mut g = Group::new(Subject::Value(Value::Nil), String::new());
    g.one = true;
    interp.run.stack.push(g);
    let top = interp.run.stack.len();
    let r = match &block {
        Some(b) => interp.call_block(b, vec![], line),
        None => Ok(Value::Nil),
    };
    let children: Vec<Group> = interp.run.stack.drain(top..).collect();
    let Some(mut group) = interp.run.stack.pop() else {
        return raise("RuntimeError", "describe.one lost its group", line);
    };
    group.children.extend(children);
    r?;
    interp.run.stack.push(group);
    Ok(Value::Nil)
}

/// `expect(x).to(m)`.
pub fn expect_to(
    interp: &mut Interp<'_>,
    expect: &Matcher,
    name: &str,
    args: Vec<Value>,
    line: u32,
) -> R<Value> {
    let matchers::Kind::Expect(actual) = &expect.kind else {
        return raise(
            "NoMethodError",
            format!("undefined method `{name}' for a matcher"),
            line,
        );
    };
    let Some(Value::Matcher(m)) = args.first() else {
        return raise("ArgumentError", "expect(…).to needs a matcher", line);
    };
    if interp.run.example.is_none() && interp.run.current.is_some() {
        // Outside an example: an expectation of its own, run with the checks.
        let desc = describe_of(interp, actual, line)?;
        let mut g = Group::new(Subject::Value((**actual).clone()), desc);
        g.expectation = Some((m.clone(), name != "to"));
        interp.run.stack.push(g);
        return Ok(Value::Nil);
    }
    expectation(interp, m, (**actual).clone(), name != "to", false, line)
}

/// The one result of a control whose checks were not run: InSpec's no-op
/// skip (only_if and the like).
fn noop_skip(message: String) -> CheckResult {
    CheckResult {
        status: "skipped",
        code_desc: "No-op".into(),
        resource: Some("No-op".into()),
        skip_message: Some(message),
        resource_class: "noop".into(),
        resource_params: "[]".into(),
        resource_id: "No-op".into(),
        ..CheckResult::default()
    }
}

/// A control id seen again: metadata merges, the later checks replace the
/// earlier ones, the first position, line and code stay (InSpec's `Rule.merge`).
fn merge_or_push(controls: &mut Vec<Control>, index: &mut HashMap<String, usize>, ctl: Control) {
    let Some(old) = index.get(&ctl.id).and_then(|i| controls.get_mut(*i)) else {
        index.insert(ctl.id.clone(), controls.len());
        controls.push(ctl);
        return;
    };
    if ctl.title.is_some() {
        old.title = ctl.title;
    }
    if ctl.impact.is_some() {
        old.impact = ctl.impact;
    }
    for (label, text) in ctl.descs {
        match old.descs.iter_mut().find(|d| d.0 == label) {
            Some(d) => d.1 = text,
            None => old.descs.push((label, text)),
        }
    }
    old.tags.extend(ctl.tags);
    // InSpec's merge passes the later refs to `ref` as one argument.
    old.refs.push(serde_json::json!({ "ref": ctl.refs }));
    old.results = ctl.results;
}

fn error_result(code_desc: &str, e: &RubyError) -> CheckResult {
    CheckResult {
        status: "failed",
        code_desc: code_desc.to_string(),
        message: Some(e.message.clone()),
        exception: Some(e.class.clone()),
        backtrace: Some(vec![format!("line {}", e.line)]),
        resource_class: "Object".into(),
        resource_params: "[]".into(),
        ..CheckResult::default()
    }
}

/// The reporter's resource_id for a title string: the class name trimmed
/// off its front, capped at 256 characters.
fn title_id(title: &str, class: &str) -> String {
    let trimmed = if title.len() >= class.len()
        && title.is_char_boundary(class.len())
        && title[..class.len()].eq_ignore_ascii_case(class)
    {
        title[class.len()..].trim()
    } else {
        title.trim()
    };
    let candidate = if trimmed.is_empty() { title } else { trimmed };
    candidate.chars().take(256).collect()
}

fn described(v: &Value, title: &str) -> (String, String, String) {
    match v {
        Value::Resource(r) => (r.name.clone(), r.params.clone(), r.id.clone()),
        Value::Str(s) => ("Object".into(), "[]".into(), title_id(s, "Object")),
        // A falsy subject leaves the group's description as the title.
        Value::Nil | Value::Bool(false) => {
            ("Object".into(), "[]".into(), title_id(title, "Object"))
        }
        Value::Int(_) | Value::Float(_) => ("Numeric".into(), "[]".into(), String::new()),
        Value::Object(o) => (
            o.class
                .resource_name
                .borrow()
                .clone()
                .unwrap_or_else(|| "Object".into()),
            o.ivars
                .borrow()
                .get("@__params")
                .map(Value::to_s)
                .unwrap_or_else(|| "[]".into()),
            String::new(),
        ),
        _ => ("Object".into(), "[]".into(), String::new()),
    }
}

fn skipped_reason(v: &Value) -> Option<String> {
    match v {
        Value::Resource(r) => r.skipped.clone(),
        Value::Object(o) => o.ivars.borrow().get("@__skipped").map(Value::to_s),
        _ => None,
    }
}

fn run_group(
    interp: &mut Interp<'_>,
    g: &Group,
    parents: &[(String, Value)],
    out: &mut Vec<CheckResult>,
) -> R<()> {
    if g.one {
        return run_one(interp, g, parents, out);
    }
    let parent_subject = parents.last().map(|p| p.1.clone());
    let subject = match &g.subject {
        Subject::Value(v) => Ok(v.clone()),
        Subject::Its(attr) => {
            let base = parent_subject.clone().unwrap_or(Value::Nil);
            its_value(interp, &base, attr, 0)
        }
    };
    let described_value = match (&g.subject, &parent_subject) {
        (Subject::Its(_), Some(p)) => p.clone(),
        (_, _) => subject.as_ref().ok().cloned().unwrap_or(Value::Nil),
    };
    let top_title = parents.first().map(|p| p.0.as_str()).unwrap_or(&g.desc);
    let (rc, rp, mut rid) = described(&described_value, top_title);
    // A library resource names itself through its own `resource_id`.
    if let Value::Object(o) = &described_value
        && let Some(m) = crate::interp::find_method(&o.class, "resource_id")
    {
        rid = match interp.invoke(&m, &described_value, vec![], None, 0) {
            Ok(v) => interp.to_s(&v, 0).unwrap_or_default(),
            Err(_) => String::new(),
        };
    }
    let mut names: Vec<String> = parents.iter().map(|p| p.0.clone()).collect();
    names.push(g.desc.clone());
    let full = names.join(" ");
    if let Some(reason) = skipped_reason(&described_value) {
        out.push(CheckResult {
            status: "skipped",
            code_desc: names.first().cloned().unwrap_or_default(),
            resource: Some(names.first().cloned().unwrap_or_default()),
            skip_message: Some(reason),
            resource_class: rc,
            resource_params: rp,
            resource_id: rid,
            ..CheckResult::default()
        });
        return Ok(());
    }
    if let Some(reason) = &g.skip {
        out.push(CheckResult {
            status: "skipped",
            // With no reason, RSpec's full description keeps the space.
            code_desc: if reason.is_empty() {
                format!("{full} ")
            } else {
                full.clone()
            },
            resource: Some(if matches!(described_value, Value::Str(_)) {
                String::new()
            } else {
                full.clone()
            }),
            skip_message: Some(reason.clone()),
            resource_class: rc,
            resource_params: rp,
            resource_id: rid,
            ..CheckResult::default()
        });
        return Ok(());
    }
    let base = CheckResult {
        resource_class: rc,
        resource_params: rp,
        resource_id: rid,
        ..CheckResult::default()
    };
    if let Some((m, negated)) = &g.expectation {
        let value = subject.clone().unwrap_or(Value::Nil);
        let m = m.clone();
        let negated = *negated;
        run_example(interp, &base, &full, Ok(value), None, out, |interp, v| {
            expectation(interp, &m, v, negated, false, 0)
        })?;
        return Ok(());
    }
    for (block, desc) in &g.examples {
        let value = match (&g.lazy, &subject) {
            (Some(lazy), _) => interp.call_block(lazy, vec![], 0).map_err(flow_error),
            (None, v) => v.clone(),
        };
        let block = block.clone();
        run_example(
            interp,
            &base,
            &full,
            value,
            desc.as_deref(),
            out,
            |interp, _| interp.call_block(&block, vec![], 0),
        )?;
    }
    let mut chain = parents.to_vec();
    chain.push((g.desc.clone(), subject.unwrap_or(Value::Nil)));
    for c in &g.children {
        run_group(interp, c, &chain, out)?;
    }
    Ok(())
}

/// Runs one example and records its result.
#[allow(clippy::too_many_arguments)]
fn run_example(
    interp: &mut Interp<'_>,
    base: &CheckResult,
    full: &str,
    subject: Result<Value, RubyError>,
    desc: Option<&str>,
    out: &mut Vec<CheckResult>,
    body: impl FnOnce(&mut Interp<'_>, Value) -> R<Value>,
) -> R<()> {
    let started = std::time::Instant::now();
    let mut result = base.clone();
    let value = match subject {
        Ok(v) => v,
        Err(e) => {
            result.status = "failed";
            result.code_desc = format!("{full} ");
            result.message = Some(e.message.clone());
            result.exception = Some(e.class.clone());
            result.backtrace = Some(vec![format!("line {}", e.line)]);
            out.push(result);
            return Ok(());
        }
    };
    interp.run.example = Some(ExampleState {
        subject: value.clone(),
        description: None,
        failure: None,
    });
    let r = body(interp, value);
    let ex = interp.run.example.take().unwrap_or(ExampleState {
        subject: Value::Nil,
        description: None,
        failure: None,
    });
    let tail = match (desc, &ex.description) {
        (Some(d), _) => d.to_string(),
        (None, Some(d)) => d.clone(),
        (None, None) => String::new(),
    };
    result.code_desc = if full.is_empty() {
        tail
    } else {
        format!("{full} {tail}")
    };
    match r {
        Ok(_) => result.status = "passed",
        Err(Flow::Error(e)) if ex.failure.is_some() && !e.fatal => {
            result.status = "failed";
            result.message = ex.failure;
        }
        Err(Flow::Skip(msg)) => {
            result.status = "skipped";
            result.skip_message = Some(msg);
        }
        Err(Flow::Error(e)) => {
            if e.fatal {
                return Err(Flow::Error(e));
            }
            result.status = "failed";
            result.message = Some(e.message);
            result.exception = Some(e.class);
            result.backtrace = Some(vec![format!("line {}", e.line)]);
        }
        Err(Flow::Next(_)) => result.status = "passed",
        Err(other) => return Err(other),
    }
    result.run_time = started.elapsed().as_secs_f64();
    out.push(result);
    Ok(())
}

/// `describe.one`: the alternatives that pass are reported; when none
/// does, all are, their failures as RSpec's MultipleExceptionError.
fn run_one(
    interp: &mut Interp<'_>,
    g: &Group,
    parents: &[(String, Value)],
    out: &mut Vec<CheckResult>,
) -> R<()> {
    let mut runs = Vec::new();
    for c in &g.children {
        let mut results = Vec::new();
        run_group(interp, c, parents, &mut results)?;
        runs.push(results);
    }
    let passing: Vec<&Vec<CheckResult>> = runs
        .iter()
        .filter(|r| !r.is_empty() && r.iter().all(|x| x.status == "passed"))
        .collect();
    if !passing.is_empty() {
        for r in passing {
            out.extend(r.iter().cloned());
        }
        return Ok(());
    }
    for r in runs {
        for mut x in r {
            if x.status == "failed" {
                x.exception = Some("RSpec::Core::MultipleExceptionError".into());
                x.backtrace = None;
            }
            out.push(x);
        }
    }
    Ok(())
}

fn its_value(
    interp: &mut Interp<'_>,
    base: &Value,
    attr: &Value,
    line: u32,
) -> Result<Value, RubyError> {
    match attr {
        // rspec-its: `subject[*keys]`.
        Value::Array(keys) => {
            let keys = keys.borrow().clone();
            interp
                .send(base, "[]", keys, None, line)
                .map_err(flow_error)
        }
        v => {
            let mut cur = base.clone();
            for part in v.to_s().split('.') {
                cur = match interp.send(&cur, part, vec![], None, line) {
                    Ok(v) => v,
                    Err(e) => return Err(flow_error(e)),
                };
            }
            Ok(cur)
        }
    }
}

fn flow_error(f: Flow) -> RubyError {
    match f {
        Flow::Error(e) => e,
        Flow::Skip(m) => RubyError {
            class: "Inspec::Exceptions::ResourceSkipped".into(),
            message: m,
            line: 0,
            fatal: false,
        },
        _ => RubyError {
            class: "LocalJumpError".into(),
            message: "unexpected jump".into(),
            line: 0,
            fatal: false,
        },
    }
}

/// Inputs as `attributes` entries.
pub fn inputs_json(inputs: &IndexMap<String, Value>) -> Vec<serde_json::Value> {
    inputs
        .iter()
        .map(|(k, v)| serde_json::json!({"name": k, "options": {"value": to_json(v)}}))
        .collect()
}

/// The subject of the example being run; `name` only works inside one.
fn example_subject(interp: &Interp<'_>, name: &str, line: u32) -> R<Value> {
    match &interp.run.example {
        Some(ex) => Ok(ex.subject.clone()),
        None => raise(
            "NoMethodError",
            format!("undefined method `{name}' outside an example"),
            line,
        ),
    }
}

/// `should >= 2`: the operator completes a pending `should`.
pub fn pending_operator(
    interp: &mut Interp<'_>,
    pending: &Matcher,
    op: &str,
    args: Vec<Value>,
    line: u32,
) -> R<Value> {
    let Some(negated) = pending.pending else {
        return raise("ArgumentError", "not a pending expectation", line);
    };
    let subject = example_subject(interp, op, line)?;
    let mut m = pending.clone();
    m.pending = None;
    m.op = Some(op.to_string());
    m.args = args;
    expectation(interp, &m, subject, negated, true, line)
}
