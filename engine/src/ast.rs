//! The engine's own syntax tree: the subset of Ruby that profiles use.
//!
//! The parser's tree borrows from the C parser; this owned tree is what the
//! interpreter walks. Anything outside the subset becomes
//! [`Kind::Unsupported`], which fails the control that reaches it.

use std::rc::Rc;

/// A node with its source position.
#[derive(Debug, Clone)]
pub struct Node {
    /// What the node is.
    pub kind: Kind,
    /// 1-based source line.
    pub line: u32,
    /// Byte range in the source file.
    pub span: (usize, usize),
}

/// A block's or method's parameters.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Positional parameters (a destructuring `(a, b)` is a list).
    pub required: Vec<Param>,
    /// `name = default`.
    pub optional: Vec<(String, Node)>,
    /// `*rest`.
    pub rest: Option<String>,
    /// `key:` and `key: default`.
    pub keywords: Vec<(String, Option<Node>)>,
}

/// One positional parameter.
#[derive(Debug, Clone)]
pub enum Param {
    /// A plain name.
    Name(String),
    /// `(a, b)`: an array argument spread over names.
    Destructure(Vec<String>),
}

/// A literal or passed block.
#[derive(Debug, Clone)]
pub struct Block {
    /// Its parameters.
    pub params: Params,
    /// Its body.
    pub body: Box<Node>,
}

/// One `rescue` clause.
#[derive(Debug, Clone)]
pub struct Rescue {
    /// The exception classes named (empty: StandardError).
    pub classes: Vec<Node>,
    /// `=> name`.
    pub bind: Option<String>,
    /// The clause's body.
    pub body: Node,
}

/// Node kinds.
#[derive(Debug, Clone)]
pub enum Kind {
    /// `nil`.
    Nil,
    /// `true`.
    True,
    /// `false`.
    False,
    /// `self`.
    SelfRef,
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal.
    Str(String),
    /// An interpolated string: literal parts and expressions.
    Interp(Vec<Node>),
    /// A symbol.
    Sym(String),
    /// An interpolated symbol.
    InterpSym(Vec<Node>),
    /// A regexp: source and flags (`i`, `m`, `x`).
    Regex(String, String),
    /// An interpolated regexp.
    InterpRegex(Vec<Node>, String),
    /// An array literal.
    Array(Vec<Node>),
    /// A hash literal (also keyword arguments).
    Hash(Vec<(Node, Node)>),
    /// A range.
    Range(Option<Box<Node>>, Option<Box<Node>>, bool),
    /// A local variable read.
    LVar(String),
    /// `name = value`.
    LAsgn(String, Box<Node>),
    /// `name op= value` (`||` and `&&` included).
    LOpAsgn(String, String, Box<Node>),
    /// `a, b = value`.
    MultiAsgn(Vec<String>, Box<Node>),
    /// `@name`.
    IVar(String),
    /// `@name = value`.
    IAsgn(String, Box<Node>),
    /// `@name op= value`.
    IOpAsgn(String, String, Box<Node>),
    /// A constant path (`Foo::Bar` is `["Foo", "Bar"]`).
    Const(Vec<String>),
    /// A method call.
    Call {
        /// Receiver (`None`: self or a local function).
        recv: Option<Box<Node>>,
        /// Method name.
        name: String,
        /// Positional arguments (a trailing keyword hash included).
        args: Vec<Node>,
        /// A literal block.
        block: Option<Rc<Block>>,
        /// `&:sym` or `&proc`.
        block_arg: Option<Box<Node>>,
        /// `&.`.
        safe: bool,
    },
    /// `*expr` in an argument list or array.
    Splat(Box<Node>),
    /// `a && b`.
    And(Box<Node>, Box<Node>),
    /// `a || b`.
    Or(Box<Node>, Box<Node>),
    /// `if`/`unless`/ternary (`unless` swaps the branches).
    If(Box<Node>, Option<Box<Node>>, Option<Box<Node>>),
    /// `case subject when … else … end`.
    Case(Option<Box<Node>>, Vec<(Vec<Node>, Node)>, Option<Box<Node>>),
    /// `while`/`until` (the flag: until).
    While(Box<Node>, Box<Node>, bool),
    /// A statement sequence.
    Seq(Vec<Node>),
    /// `begin … rescue … else … ensure … end`.
    Begin(Box<Node>, Vec<Rescue>, Option<Box<Node>>, Option<Box<Node>>),
    /// `next [value]`.
    Next(Option<Box<Node>>),
    /// `break [value]`.
    Break(Option<Box<Node>>),
    /// `return [value]`.
    Return(Option<Box<Node>>),
    /// `def name(params) … end`.
    Def(String, Params, Box<Node>),
    /// `class Name < Super … end`.
    Class(Vec<String>, Option<Box<Node>>, Box<Node>),
    /// `module Name … end`.
    Module(Vec<String>, Box<Node>),
    /// `yield args`.
    Yield(Vec<Node>),
    /// `defined?(expr)`.
    Defined(Box<Node>),
    /// Backticks / `%x()`: never run.
    Shell(String),
    /// A construct outside the subset, by name.
    Unsupported(String),
}

impl Node {
    /// A node of `kind` at the same place as `self`.
    pub fn with(&self, kind: Kind) -> Node {
        Node {
            kind,
            line: self.line,
            span: self.span,
        }
    }
}
