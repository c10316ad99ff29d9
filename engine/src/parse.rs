//! Ruby source to the engine's tree, with Ruby's reference parser (prism).

use ruby_prism::{Location, Node as P};

use crate::ast::{Block, Kind, Node, Param, Params, Rescue};

/// A parse failure: the file is not valid Ruby.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// The file as named by the profile.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// The parser's message.
    pub message: String,
}

/// Parses one file into a statement sequence.
pub fn parse(file: &str, source: &[u8]) -> Result<Node, ParseError> {
    let result = ruby_prism::parse(source);
    let lines = LineIndex::new(source);
    if let Some(first) = result.errors().next() {
        let offset = first.location().start() as usize;
        return Err(ParseError {
            file: file.to_string(),
            line: lines.line(offset),
            message: String::from_utf8_lossy(first.message()).into_owned(),
        });
    }
    let conv = Conv { lines: &lines };
    Ok(conv.node(&result.node()))
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(source: &[u8]) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            source
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> u32 {
        (self.starts.partition_point(|s| *s <= offset)) as u32
    }
}

struct Conv<'a> {
    lines: &'a LineIndex,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn regex_flags(i: bool, m: bool, x: bool) -> String {
    let mut f = String::new();
    if i {
        f.push('i');
    }
    if m {
        f.push('m');
    }
    if x {
        f.push('x');
    }
    f
}

impl Conv<'_> {
    fn at(&self, loc: &Location<'_>, kind: Kind) -> Node {
        Node {
            kind,
            line: self.lines.line(loc.start() as usize),
            span: (loc.start() as usize, loc.end() as usize),
        }
    }

    fn opt(&self, n: Option<P<'_>>) -> Option<Box<Node>> {
        n.map(|n| Box::new(self.node(&n)))
    }

    fn list<'pr>(&self, nodes: impl IntoIterator<Item = P<'pr>>) -> Vec<Node> {
        nodes.into_iter().map(|n| self.node(&n)).collect()
    }

    fn seq_or_nil(&self, loc: &Location<'_>, n: Option<P<'_>>) -> Node {
        match n {
            Some(n) => self.node(&n),
            None => self.at(loc, Kind::Nil),
        }
    }

    fn statements(&self, loc: &Location<'_>, s: Option<ruby_prism::StatementsNode<'_>>) -> Node {
        match s {
            Some(s) => self.at(&s.location(), Kind::Seq(self.list(s.body().iter()))),
            None => self.at(loc, Kind::Nil),
        }
    }

    fn params(&self, p: Option<ruby_prism::ParametersNode<'_>>) -> Result<Params, String> {
        let mut out = Params::default();
        let Some(p) = p else { return Ok(out) };
        for r in p.requireds().iter().chain(p.posts().iter()) {
            if let Some(r) = r.as_required_parameter_node() {
                out.required.push(Param::Name(text(r.name().as_slice())));
            } else if let Some(m) = r.as_multi_target_node() {
                let mut names = Vec::new();
                for t in m.lefts().iter() {
                    match t.as_required_parameter_node() {
                        Some(r) => names.push(text(r.name().as_slice())),
                        None => return Err("nested destructuring parameters".into()),
                    }
                }
                out.required.push(Param::Destructure(names));
            } else {
                return Err("this parameter form".into());
            }
        }
        for o in p.optionals().iter() {
            let o = o
                .as_optional_parameter_node()
                .ok_or("this parameter form")?;
            out.optional
                .push((text(o.name().as_slice()), self.node(&o.value())));
        }
        if let Some(rest) = p.rest() {
            match rest.as_rest_parameter_node() {
                Some(r) => {
                    out.rest = Some(r.name().map(|n| text(n.as_slice())).unwrap_or_default())
                }
                None => return Err("this rest parameter form".into()),
            }
        }
        for k in p.keywords().iter() {
            if let Some(k) = k.as_required_keyword_parameter_node() {
                let name = text(k.name().as_slice());
                out.keywords
                    .push((name.trim_end_matches(':').to_string(), None));
            } else if let Some(k) = k.as_optional_keyword_parameter_node() {
                let name = text(k.name().as_slice());
                out.keywords.push((
                    name.trim_end_matches(':').to_string(),
                    Some(self.node(&k.value())),
                ));
            }
        }
        if p.keyword_rest().is_some() {
            return Err("**keyword rest parameters".into());
        }
        Ok(out)
    }

    fn block(&self, n: &P<'_>) -> Result<Block, String> {
        let b = n.as_block_node().ok_or("a block argument of this form")?;
        let params = match b.parameters() {
            None => Params::default(),
            Some(p) => {
                if let Some(bp) = p.as_block_parameters_node() {
                    self.params(bp.parameters())?
                } else if p.as_numbered_parameters_node().is_some() {
                    return Err("numbered block parameters (_1)".into());
                } else if p.as_it_parameters_node().is_some() {
                    Params {
                        required: vec![Param::Name("it".into())],
                        ..Params::default()
                    }
                } else {
                    return Err("this block parameter form".into());
                }
            }
        };
        let loc = b.location();
        Ok(Block {
            params,
            body: Box::new(self.seq_or_nil(&loc, b.body())),
        })
    }

    fn const_path(&self, n: &P<'_>) -> Option<Vec<String>> {
        if let Some(c) = n.as_constant_read_node() {
            return Some(vec![text(c.name().as_slice())]);
        }
        if let Some(c) = n.as_constant_path_node() {
            let mut path = match c.parent() {
                Some(p) => self.const_path(&p)?,
                // `::Name`: the top level, marked by an empty first segment.
                None => vec![String::new()],
            };
            path.push(text(c.name()?.as_slice()));
            return Some(path);
        }
        None
    }

    fn args(&self, a: Option<ruby_prism::ArgumentsNode<'_>>) -> Vec<Node> {
        a.map(|a| self.list(a.arguments().iter()))
            .unwrap_or_default()
    }

    fn node(&self, n: &P<'_>) -> Node {
        let loc = n.location();
        let kind = self.kind(n).unwrap_or_else(Kind::Unsupported);
        self.at(&loc, kind)
    }

    fn kind(&self, n: &P<'_>) -> Result<Kind, String> {
        let loc = n.location();
        Ok(match n {
            P::ProgramNode { .. } => {
                let p = n.as_program_node().ok_or("program")?;
                Kind::Seq(self.list(p.statements().body().iter()))
            }
            P::StatementsNode { .. } => {
                let s = n.as_statements_node().ok_or("statements")?;
                Kind::Seq(self.list(s.body().iter()))
            }
            P::NilNode { .. } => Kind::Nil,
            P::TrueNode { .. } => Kind::True,
            P::FalseNode { .. } => Kind::False,
            P::SelfNode { .. } => Kind::SelfRef,
            P::IntegerNode { .. } => {
                let i = n.as_integer_node().ok_or("integer")?;
                let value = i.value();
                let (neg, digits) = value.to_u32_digits();
                if digits.len() > 2 {
                    return Err("an integer literal beyond 64 bits".into());
                }
                let mut v: u64 = 0;
                for (k, d) in digits.iter().enumerate() {
                    v |= (*d as u64) << (32 * k);
                }
                let v = i64::try_from(v).map_err(|_| "an integer literal beyond 64 bits")?;
                Kind::Int(if neg { -v } else { v })
            }
            P::FloatNode { .. } => Kind::Float(n.as_float_node().ok_or("float")?.value()),
            P::StringNode { .. } => {
                Kind::Str(text(n.as_string_node().ok_or("string")?.unescaped()))
            }
            P::XStringNode { .. } => {
                Kind::Shell(text(n.as_x_string_node().ok_or("xstring")?.unescaped()))
            }
            P::InterpolatedXStringNode { .. } => Kind::Shell(text(loc.as_slice())),
            P::InterpolatedStringNode { .. } => {
                let s = n.as_interpolated_string_node().ok_or("dstr")?;
                Kind::Interp(self.list(s.parts().iter()))
            }
            P::EmbeddedStatementsNode { .. } => {
                let e = n.as_embedded_statements_node().ok_or("embedded")?;
                self.statements(&loc, e.statements()).kind
            }
            P::EmbeddedVariableNode { .. } => {
                let e = n.as_embedded_variable_node().ok_or("embedded variable")?;
                self.node(&e.variable()).kind
            }
            P::SymbolNode { .. } => {
                Kind::Sym(text(n.as_symbol_node().ok_or("symbol")?.unescaped()))
            }
            P::InterpolatedSymbolNode { .. } => {
                let s = n.as_interpolated_symbol_node().ok_or("dsym")?;
                Kind::InterpSym(self.list(s.parts().iter()))
            }
            P::RegularExpressionNode { .. } => {
                let r = n.as_regular_expression_node().ok_or("regexp")?;
                // The source as written: escapes are the regexp's own.
                Kind::Regex(
                    text(r.content_loc().as_slice()),
                    regex_flags(r.is_ignore_case(), r.is_multi_line(), r.is_extended()),
                )
            }
            P::InterpolatedRegularExpressionNode { .. } => {
                let r = n
                    .as_interpolated_regular_expression_node()
                    .ok_or("dregexp")?;
                let parts = r
                    .parts()
                    .iter()
                    .map(|p| match p.as_string_node() {
                        Some(s) => {
                            self.at(&p.location(), Kind::Str(text(s.content_loc().as_slice())))
                        }
                        None => self.node(&p),
                    })
                    .collect();
                Kind::InterpRegex(
                    parts,
                    regex_flags(r.is_ignore_case(), r.is_multi_line(), r.is_extended()),
                )
            }
            P::ArrayNode { .. } => {
                Kind::Array(self.list(n.as_array_node().ok_or("array")?.elements().iter()))
            }
            P::HashNode { .. } => self.hash(n.as_hash_node().ok_or("hash")?.elements().iter())?,
            P::KeywordHashNode { .. } => {
                self.hash(n.as_keyword_hash_node().ok_or("kwhash")?.elements().iter())?
            }
            P::RangeNode { .. } => {
                let r = n.as_range_node().ok_or("range")?;
                Kind::Range(self.opt(r.left()), self.opt(r.right()), r.is_exclude_end())
            }
            P::LocalVariableReadNode { .. } => Kind::LVar(text(
                n.as_local_variable_read_node()
                    .ok_or("lvar")?
                    .name()
                    .as_slice(),
            )),
            P::ItLocalVariableReadNode { .. } => Kind::LVar("it".into()),
            P::LocalVariableWriteNode { .. } => {
                let w = n.as_local_variable_write_node().ok_or("lasgn")?;
                Kind::LAsgn(text(w.name().as_slice()), Box::new(self.node(&w.value())))
            }
            P::LocalVariableOperatorWriteNode { .. } => {
                let w = n.as_local_variable_operator_write_node().ok_or("op-asgn")?;
                Kind::LOpAsgn(
                    text(w.name().as_slice()),
                    text(w.binary_operator().as_slice()),
                    Box::new(self.node(&w.value())),
                )
            }
            P::LocalVariableOrWriteNode { .. } => {
                let w = n.as_local_variable_or_write_node().ok_or("or-asgn")?;
                Kind::LOpAsgn(
                    text(w.name().as_slice()),
                    "||".into(),
                    Box::new(self.node(&w.value())),
                )
            }
            P::LocalVariableAndWriteNode { .. } => {
                let w = n.as_local_variable_and_write_node().ok_or("and-asgn")?;
                Kind::LOpAsgn(
                    text(w.name().as_slice()),
                    "&&".into(),
                    Box::new(self.node(&w.value())),
                )
            }
            P::MultiWriteNode { .. } => {
                let w = n.as_multi_write_node().ok_or("masgn")?;
                if w.rest().is_some() || w.rights().iter().next().is_some() {
                    return Err("a multiple assignment with a splat".into());
                }
                let mut names = Vec::new();
                for t in w.lefts().iter() {
                    match t.as_local_variable_target_node() {
                        Some(t) => names.push(text(t.name().as_slice())),
                        None => return Err("a multiple assignment to non-locals".into()),
                    }
                }
                Kind::MultiAsgn(names, Box::new(self.node(&w.value())))
            }
            P::InstanceVariableReadNode { .. } => Kind::IVar(text(
                n.as_instance_variable_read_node()
                    .ok_or("ivar")?
                    .name()
                    .as_slice(),
            )),
            P::InstanceVariableWriteNode { .. } => {
                let w = n.as_instance_variable_write_node().ok_or("iasgn")?;
                Kind::IAsgn(text(w.name().as_slice()), Box::new(self.node(&w.value())))
            }
            P::InstanceVariableOrWriteNode { .. } => {
                let w = n.as_instance_variable_or_write_node().ok_or("ior")?;
                Kind::IOpAsgn(
                    text(w.name().as_slice()),
                    "||".into(),
                    Box::new(self.node(&w.value())),
                )
            }
            P::InstanceVariableOperatorWriteNode { .. } => {
                let w = n.as_instance_variable_operator_write_node().ok_or("iop")?;
                Kind::IOpAsgn(
                    text(w.name().as_slice()),
                    text(w.binary_operator().as_slice()),
                    Box::new(self.node(&w.value())),
                )
            }
            P::ConstantReadNode { .. } | P::ConstantPathNode { .. } => {
                Kind::Const(self.const_path(n).ok_or("a dynamic constant path")?)
            }
            P::CallNode { .. } => {
                let c = n.as_call_node().ok_or("call")?;
                let mut args = self.args(c.arguments());
                let mut block = None;
                let mut block_arg = None;
                if let Some(b) = c.block() {
                    if let Some(ba) = b.as_block_argument_node() {
                        block_arg = Some(Box::new(match ba.expression() {
                            Some(e) => self.node(&e),
                            None => return Err("anonymous block forwarding (&)".into()),
                        }));
                    } else {
                        block = Some(std::rc::Rc::new(self.block(&b)?));
                    }
                }
                let name = text(c.name().as_slice());
                // `a.b = c` is a call of `b=`; keep it as such.
                if c.is_attribute_write() && name == "[]=" {
                    args.truncate(args.len());
                }
                Kind::Call {
                    recv: self.opt(c.receiver()),
                    name,
                    args,
                    block,
                    block_arg,
                    safe: c.is_safe_navigation(),
                }
            }
            P::SplatNode { .. } => {
                let s = n.as_splat_node().ok_or("splat")?;
                Kind::Splat(Box::new(
                    s.expression()
                        .map(|e| self.node(&e))
                        .ok_or("anonymous splat forwarding")?,
                ))
            }
            P::AndNode { .. } => {
                let a = n.as_and_node().ok_or("and")?;
                Kind::And(
                    Box::new(self.node(&a.left())),
                    Box::new(self.node(&a.right())),
                )
            }
            P::OrNode { .. } => {
                let o = n.as_or_node().ok_or("or")?;
                Kind::Or(
                    Box::new(self.node(&o.left())),
                    Box::new(self.node(&o.right())),
                )
            }
            P::ParenthesesNode { .. } => {
                let p = n.as_parentheses_node().ok_or("parens")?;
                self.seq_or_nil(&loc, p.body()).kind
            }
            P::IfNode { .. } => {
                let i = n.as_if_node().ok_or("if")?;
                let then = i
                    .statements()
                    .map(|s| Box::new(self.statements(&loc, Some(s))));
                let els = i.subsequent().map(|e| Box::new(self.node(&e)));
                Kind::If(Box::new(self.node(&i.predicate())), then, els)
            }
            P::UnlessNode { .. } => {
                let u = n.as_unless_node().ok_or("unless")?;
                let then = u
                    .statements()
                    .map(|s| Box::new(self.statements(&loc, Some(s))));
                let els = u
                    .else_clause()
                    .map(|e| Box::new(self.statements(&e.location(), e.statements())));
                Kind::If(Box::new(self.node(&u.predicate())), els, then)
            }
            P::ElseNode { .. } => {
                let e = n.as_else_node().ok_or("else")?;
                self.statements(&loc, e.statements()).kind
            }
            P::CaseNode { .. } => {
                let c = n.as_case_node().ok_or("case")?;
                let mut whens = Vec::new();
                for w in c.conditions().iter() {
                    let w = w.as_when_node().ok_or("a case/in pattern match")?;
                    whens.push((
                        self.list(w.conditions().iter()),
                        self.statements(&w.location(), w.statements()),
                    ));
                }
                let els = c
                    .else_clause()
                    .map(|e| Box::new(self.statements(&e.location(), e.statements())));
                Kind::Case(self.opt(c.predicate()), whens, els)
            }
            P::WhileNode { .. } => {
                let w = n.as_while_node().ok_or("while")?;
                Kind::While(
                    Box::new(self.node(&w.predicate())),
                    Box::new(self.statements(&loc, w.statements())),
                    false,
                )
            }
            P::UntilNode { .. } => {
                let w = n.as_until_node().ok_or("until")?;
                Kind::While(
                    Box::new(self.node(&w.predicate())),
                    Box::new(self.statements(&loc, w.statements())),
                    true,
                )
            }
            P::BeginNode { .. } => {
                let b = n.as_begin_node().ok_or("begin")?;
                let body = self.statements(&loc, b.statements());
                let mut rescues = Vec::new();
                let mut clause = b.rescue_clause();
                while let Some(r) = clause {
                    let bind = match r.reference() {
                        Some(t) => Some(text(
                            t.as_local_variable_target_node()
                                .ok_or("rescue into a non-local")?
                                .name()
                                .as_slice(),
                        )),
                        None => None,
                    };
                    rescues.push(Rescue {
                        classes: self.list(r.exceptions().iter()),
                        bind,
                        body: self.statements(&r.location(), r.statements()),
                    });
                    clause = r.subsequent();
                }
                let els = b
                    .else_clause()
                    .map(|e| Box::new(self.statements(&e.location(), e.statements())));
                let ensure = b
                    .ensure_clause()
                    .map(|e| Box::new(self.statements(&e.location(), e.statements())));
                Kind::Begin(Box::new(body), rescues, els, ensure)
            }
            P::RescueModifierNode { .. } => {
                let r = n.as_rescue_modifier_node().ok_or("rescue modifier")?;
                Kind::Begin(
                    Box::new(self.node(&r.expression())),
                    vec![Rescue {
                        classes: vec![],
                        bind: None,
                        body: self.node(&r.rescue_expression()),
                    }],
                    None,
                    None,
                )
            }
            P::NextNode { .. } => {
                let a = self.args(n.as_next_node().ok_or("next")?.arguments());
                Kind::Next(a.into_iter().next().map(Box::new))
            }
            P::BreakNode { .. } => {
                let a = self.args(n.as_break_node().ok_or("break")?.arguments());
                Kind::Break(a.into_iter().next().map(Box::new))
            }
            P::ReturnNode { .. } => {
                let a = self.args(n.as_return_node().ok_or("return")?.arguments());
                Kind::Return(a.into_iter().next().map(Box::new))
            }
            P::DefNode { .. } => {
                let d = n.as_def_node().ok_or("def")?;
                // `def self.x` in a module or class: stored with the
                // class's methods (profiles call them on the constant).
                if d.receiver().is_some_and(|r| r.as_self_node().is_none()) {
                    return Err("a singleton method definition on another object".into());
                }
                let params = self.params(d.parameters())?;
                Kind::Def(
                    text(d.name().as_slice()),
                    params,
                    Box::new(self.seq_or_nil(&loc, d.body())),
                )
            }
            P::ClassNode { .. } => {
                let c = n.as_class_node().ok_or("class")?;
                Kind::Class(
                    self.const_path(&c.constant_path())
                        .ok_or("a dynamic class name")?,
                    self.opt(c.superclass()),
                    Box::new(self.seq_or_nil(&loc, c.body())),
                )
            }
            P::ModuleNode { .. } => {
                let m = n.as_module_node().ok_or("module")?;
                Kind::Module(
                    self.const_path(&m.constant_path())
                        .ok_or("a dynamic module name")?,
                    Box::new(self.seq_or_nil(&loc, m.body())),
                )
            }
            P::YieldNode { .. } => {
                Kind::Yield(self.args(n.as_yield_node().ok_or("yield")?.arguments()))
            }
            P::DefinedNode { .. } => Kind::Defined(Box::new(
                self.node(&n.as_defined_node().ok_or("defined")?.value()),
            )),
            P::SourceFileNode { .. } | P::SourceLineNode { .. } => {
                return Err("__FILE__/__LINE__".into());
            }
            P::ConstantWriteNode { .. } => {
                let w = n.as_constant_write_node().ok_or("casgn")?;
                Kind::Call {
                    recv: None,
                    name: "__const_set".into(),
                    args: vec![
                        self.at(&loc, Kind::Str(text(w.name().as_slice()))),
                        self.node(&w.value()),
                    ],
                    block: None,
                    block_arg: None,
                    safe: false,
                }
            }
            P::MatchWriteNode { .. } => {
                let m = n.as_match_write_node().ok_or("match write")?;
                self.node(&m.call().as_node()).kind
            }
            other => {
                let name = format!("{other:?}");
                let short = name
                    .split([' ', '{'])
                    .next()
                    .unwrap_or("this construct")
                    .to_string();
                return Err(short);
            }
        })
    }

    fn hash<'pr>(&self, elements: impl Iterator<Item = P<'pr>>) -> Result<Kind, String> {
        let mut pairs = Vec::new();
        for e in elements {
            let a = e.as_assoc_node().ok_or("a **double splat in a hash")?;
            pairs.push((self.node(&a.key()), self.node(&a.value())));
        }
        Ok(Kind::Hash(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_unsupported_constructs_are_kept() {
        let n = parse(
            "x.rb",
            b"a = 1\ncontrol 'x' do\n  impact 0.5\nend\nBEGIN { 1 }\n",
        )
        .unwrap();
        let Kind::Seq(items) = n.kind else { panic!() };
        assert_eq!(items[1].line, 2);
        assert!(matches!(&items[2].kind, Kind::Unsupported(s) if s.contains("PreExecution")));
        assert!(parse("x.rb", b"control 'x' do\n").is_err());
    }
}
#[cfg(test)]
mod dump {
    #[test]
    fn dump_ast() {
        if let Ok(src) = std::env::var("DSCAN_DUMP_RUBY") {
            println!("{:#?}", super::parse("x.rb", src.as_bytes()).unwrap());
        }
    }
}
