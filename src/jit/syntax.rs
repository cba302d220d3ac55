//! The Python subset that `torch.jit.save` prints for a frozen module,
//! parsed into statements and expressions.
//!
//! The grammar is what frozen files contain (see `docs/torchscript.md`):
//! one `class X(Module)` with a `forward`, optional `class X(NamedTuple)`
//! declarations, and in `forward` assignments (with tuple unpacking),
//! expression statements, `if`/`else`, `return` and `pass`. Expressions
//! are literals, names, dotted paths, calls with positional and keyword
//! arguments, and list and tuple displays. Anything else is an error that
//! names the file, the line and the construct.
//!
//! Nesting is bounded ([`MAX_DEPTH`]), so a hostile file cannot overflow
//! the stack of the parser or of the interpreter that walks its tree.

use crate::{Error, Result};

/// The deepest expression or block nesting accepted. PyTorch's printer
/// names every intermediate result, so real files stay within a few levels.
pub const MAX_DEPTH: usize = 64;

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal.
    Str(String),
    /// A variable.
    Name(String),
    /// A dotted path: `torch.conv2d`, `CONSTANTS.c0`, `ops.quantized.add`.
    Path(Vec<String>),
    /// A call of a path with positional and keyword arguments.
    Call {
        /// The callee, as written (`ops.quantized.conv2d`).
        callee: Vec<String>,
        /// Positional arguments.
        args: Vec<Expr>,
        /// Keyword arguments.
        kwargs: Vec<(String, Expr)>,
        /// The 1-based line of the call.
        line: usize,
    },
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `(a, b)`.
    Tuple(Vec<Expr>),
    /// `x[i]` with an integer literal index.
    Index(Box<Expr>, i64),
    /// A type written as an argument (`annotate(List[Tensor], [])`): kept
    /// as text.
    Type(String),
}

/// A statement of `forward`, with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `a = e`, or `a, b, = e` (several targets unpack a tuple or list).
    Assign {
        /// The names assigned.
        targets: Vec<String>,
        /// Whether the targets were written as a tuple (`a, = e` unpacks one).
        unpack: bool,
        /// The value.
        value: Expr,
        /// The line.
        line: usize,
    },
    /// An expression evaluated for its effect (`ops.prim.RaiseException(...)`).
    Expr(Expr, usize),
    /// `if cond: ... else: ...`.
    If {
        /// The condition.
        cond: Expr,
        /// The statements when true.
        then: Vec<Stmt>,
        /// The statements when false.
        otherwise: Vec<Stmt>,
        /// The line of the `if`.
        line: usize,
    },
    /// `return e`.
    Return(Expr, usize),
    /// `for name in range(count): ...`, as PyTorch's own functions leave
    /// in frozen code (`F.interpolate` builds its scale list so).
    For {
        /// The loop variable.
        var: String,
        /// The number of iterations.
        count: Expr,
        /// The loop body.
        body: Vec<Stmt>,
        /// The line of the `for`.
        line: usize,
    },
}

/// A NamedTuple class: its qualified name and field names.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTuple {
    /// `__torch__.torchvision.models.googlenet.GoogLeNetOutputs`.
    pub name: String,
    /// The fields, in order.
    pub fields: Vec<String>,
}

/// One parameter of `forward` (after `self`).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its declared type (`Tensor`, `Optional[Tensor]`, ...).
    pub ty: String,
}

/// What a code file declares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeFile {
    /// The module class's name, if the file has one.
    pub class: Option<String>,
    /// `forward`'s parameters after `self`.
    pub params: Vec<Param>,
    /// `forward`'s declared return type.
    pub returns: String,
    /// `forward`'s body.
    pub body: Vec<Stmt>,
    /// Whether a `forward` was found.
    pub has_forward: bool,
    /// Other methods than `forward` (a file that is not frozen has them).
    pub other_methods: Vec<String>,
    /// NamedTuple classes.
    pub named_tuples: Vec<NamedTuple>,
}

/// Keyword arguments of a call, in order.
type Kwargs = Vec<(String, Expr)>;

/// A token.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    /// Punctuation: `( ) [ ] , : . = -` and `->`.
    Punct(&'static str),
}

/// One logical line: its indentation, tokens and 1-based line number.
struct Line {
    indent: usize,
    toks: Vec<Tok>,
    number: usize,
}

/// Parses one code file (`name` is its path in the archive, for errors).
pub fn parse_file(name: &str, text: &str) -> Result<CodeFile> {
    let lines = logical_lines(name, text)?;
    let mut p = Parser { file: name, lines: &lines, at: 0 };
    p.file_items()
}

fn error(file: &str, line: usize, message: impl Into<String>) -> Error {
    Error::Script { file: file.to_string(), line, message: message.into() }
}

/// Splits the text into logical lines: a line continues while brackets are
/// open (a long `def forward(...)` signature spans several).
fn logical_lines(file: &str, text: &str) -> Result<Vec<Line>> {
    let mut out: Vec<Line> = Vec::new();
    let mut depth = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let toks = tokenize(file, number, raw)?;
        if toks.is_empty() {
            continue;
        }
        let continuing = depth > 0;
        for t in &toks {
            match t {
                Tok::Punct("(" | "[") => depth += 1,
                Tok::Punct(")" | "]") => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| error(file, number, "a closing bracket without an opening one"))?
                }
                _ => {}
            }
        }
        match out.last_mut() {
            Some(last) if continuing => last.toks.extend(toks),
            _ => {
                let indent = raw.len() - raw.trim_start_matches(' ').len();
                out.push(Line { indent, toks, number });
            }
        }
    }
    if depth > 0 {
        let n = out.last().map_or(0, |l| l.number);
        return Err(error(file, n, "the file ends inside brackets"));
    }
    Ok(out)
}

fn tokenize(file: &str, number: usize, raw: &str) -> Result<Vec<Tok>> {
    let b = raw.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => break,
            b'"' | b'\'' => {
                let (s, next) = string_literal(file, number, raw, i)?;
                toks.push(Tok::Str(s));
                i = next;
            }
            b'0'..=b'9' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                    // An exponent's sign belongs to the number.
                    if (b[i] == b'e' || b[i] == b'E') && i + 1 < b.len() && (b[i + 1] == b'-' || b[i + 1] == b'+') {
                        i += 1;
                    }
                    i += 1;
                }
                let text = &raw[start..i];
                let is_float = text.contains(['.', 'e', 'E']) || text == "inf" || text == "nan";
                let tok = if is_float { text.parse().ok().map(Tok::Float) } else { text.parse().ok().map(Tok::Int) };
                toks.push(tok.ok_or_else(|| error(file, number, format!("the number `{text}` is not valid")))?);
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                toks.push(Tok::Name(raw[start..i].to_string()));
            }
            b'-' if b.get(i + 1) == Some(&b'>') => {
                toks.push(Tok::Punct("->"));
                i += 2;
            }
            _ => {
                let p = match c {
                    b'(' => "(",
                    b')' => ")",
                    b'[' => "[",
                    b']' => "]",
                    b',' => ",",
                    b':' => ":",
                    b'.' => ".",
                    b'=' => "=",
                    b'-' => "-",
                    _ => {
                        let ch = raw[i..].chars().next().unwrap_or('?');
                        return Err(error(
                            file,
                            number,
                            format!("the character `{ch}` is not part of the frozen-module subset"),
                        ));
                    }
                };
                toks.push(Tok::Punct(p));
                i += 1;
            }
        }
    }
    Ok(toks)
}

/// A quoted string starting at `start`, with Python's simple escapes.
fn string_literal(file: &str, number: usize, raw: &str, start: usize) -> Result<(String, usize)> {
    let quote = raw.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = raw[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, e @ ('\\' | '\'' | '"'))) => out.push(e),
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
                None => break,
            },
            c if c == quote => return Ok((out, start + 1 + i + 1)),
            c => out.push(c),
        }
    }
    Err(error(file, number, "an unterminated string"))
}

struct Parser<'a> {
    file: &'a str,
    lines: &'a [Line],
    at: usize,
}

/// A cursor over one logical line's tokens.
struct Toks<'a> {
    file: &'a str,
    line: usize,
    toks: &'a [Tok],
    at: usize,
}

impl<'a> Toks<'a> {
    fn err(&self, message: impl Into<String>) -> Error {
        error(self.file, self.line, message)
    }

    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.at);
        self.at += 1;
        t
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(q)) if *q == p) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<()> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.err(format!("expected `{p}`, found {}", self.describe_next())))
        }
    }

    fn describe_next(&self) -> String {
        match self.peek() {
            None => "the end of the line".into(),
            Some(Tok::Name(n)) => format!("`{n}`"),
            Some(Tok::Punct(p)) => format!("`{p}`"),
            Some(Tok::Int(i)) => format!("`{i}`"),
            Some(Tok::Float(f)) => format!("`{f}`"),
            Some(Tok::Str(s)) => format!("{s:?}"),
        }
    }

    fn name(&mut self) -> Result<&'a str> {
        match self.next() {
            Some(Tok::Name(n)) => Ok(n),
            _ => {
                self.at -= 1;
                Err(self.err(format!("expected a name, found {}", self.describe_next())))
            }
        }
    }

    fn done(&self) -> Result<()> {
        if self.at >= self.toks.len() {
            Ok(())
        } else {
            Err(self.err(format!("unexpected {} (not part of the frozen-module subset)", self.describe_next())))
        }
    }

    /// A type annotation, as text, up to a `,`, `)`, `=` or `:` at depth 0.
    fn type_text(&mut self) -> Result<String> {
        let mut out = String::new();
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            match t {
                Tok::Punct("," | ")" | "=" | ":") if depth == 0 => break,
                Tok::Punct("[") => depth += 1,
                Tok::Punct("]") => depth = depth.checked_sub(1).ok_or_else(|| self.err("unbalanced `]` in a type"))?,
                _ => {}
            }
            match t {
                Tok::Name(n) => out.push_str(n),
                Tok::Punct(p) => {
                    out.push_str(p);
                    if *p == "," {
                        out.push(' ');
                    }
                }
                _ => return Err(self.err("a literal inside a type")),
            }
            self.at += 1;
        }
        if out.is_empty() {
            return Err(self.err("expected a type"));
        }
        Ok(out)
    }

    fn expr(&mut self, depth: usize) -> Result<Expr> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("expressions nested deeper than {MAX_DEPTH} levels")));
        }
        let t = self.next().ok_or_else(|| self.err("expected an expression, found the end of the line"))?;
        let e = match t {
            Tok::Int(i) => Expr::Int(*i),
            Tok::Float(f) => Expr::Float(*f),
            Tok::Str(s) => Expr::Str(s.clone()),
            Tok::Punct("-") => match self.next() {
                Some(Tok::Int(i)) => {
                    Expr::Int(i.checked_neg().ok_or_else(|| self.err("an integer literal out of range"))?)
                }
                Some(Tok::Float(f)) => Expr::Float(-f),
                Some(Tok::Name(n)) if n == "inf" => Expr::Float(f64::NEG_INFINITY),
                _ => return Err(self.err("`-` before something that is not a number literal")),
            },
            Tok::Punct("[") => Expr::List(self.items("]", depth)?.0),
            Tok::Punct("(") => {
                let (items, trailing_comma) = self.items(")", depth)?;
                if items.len() == 1 && !trailing_comma {
                    items.into_iter().next().unwrap_or(Expr::None)
                } else {
                    Expr::Tuple(items)
                }
            }
            Tok::Name(n) => match n.as_str() {
                "None" => Expr::None,
                "True" => Expr::Bool(true),
                "False" => Expr::Bool(false),
                "inf" => Expr::Float(f64::INFINITY),
                "nan" => Expr::Float(f64::NAN),
                "uninitialized" if self.eat("(") => {
                    let ty = self.type_text()?;
                    self.expect(")")?;
                    let line = self.line;
                    Expr::Call {
                        callee: vec!["uninitialized".into()],
                        args: vec![Expr::Type(ty)],
                        kwargs: vec![],
                        line,
                    }
                }
                "annotate" if self.eat("(") => {
                    let ty = self.type_text()?;
                    self.expect(",")?;
                    let v = self.expr(depth + 1)?;
                    self.expect(")")?;
                    let line = self.line;
                    Expr::Call { callee: vec!["annotate".into()], args: vec![Expr::Type(ty), v], kwargs: vec![], line }
                }
                _ => {
                    let mut path = vec![n.clone()];
                    while self.eat(".") {
                        path.push(self.name()?.to_string());
                    }
                    if self.eat("(") {
                        let line = self.line;
                        let (args, kwargs) = self.call_args(depth)?;
                        Expr::Call { callee: path, args, kwargs, line }
                    } else if path.len() == 1 {
                        Expr::Name(path.pop().unwrap_or_default())
                    } else {
                        Expr::Path(path)
                    }
                }
            },
            Tok::Punct(p) => return Err(self.err(format!("unexpected `{p}` (not part of the frozen-module subset)"))),
        };
        // Indexing with a literal: `x[0]`.
        if self.eat("[") {
            let i = match (self.next(), self.eat("]")) {
                (Some(Tok::Int(i)), true) => *i,
                _ => return Err(self.err("indexing other than by an integer literal")),
            };
            return Ok(Expr::Index(Box::new(e), i));
        }
        Ok(e)
    }

    /// Comma-separated expressions up to `close`; also whether a comma
    /// preceded it (`(a,)` is a tuple).
    fn items(&mut self, close: &str, depth: usize) -> Result<(Vec<Expr>, bool)> {
        let mut items = Vec::new();
        let mut trailing = false;
        while !self.eat(close) {
            items.push(self.expr(depth + 1)?);
            trailing = self.eat(",");
            if !trailing {
                self.expect(close)?;
                break;
            }
        }
        Ok((items, trailing))
    }

    fn call_args(&mut self, depth: usize) -> Result<(Vec<Expr>, Kwargs)> {
        let (mut args, mut kwargs) = (Vec::new(), Vec::new());
        while !self.eat(")") {
            let is_kw =
                matches!((self.peek(), self.toks.get(self.at + 1)), (Some(Tok::Name(_)), Some(Tok::Punct("="))));
            if is_kw {
                let k = self.name()?.to_string();
                self.expect("=")?;
                kwargs.push((k, self.expr(depth + 1)?));
            } else if kwargs.is_empty() {
                args.push(self.expr(depth + 1)?);
            } else {
                return Err(self.err("a positional argument after a keyword argument"));
            }
            if !self.eat(",") {
                self.expect(")")?;
                break;
            }
        }
        Ok((args, kwargs))
    }
}

impl<'a> Parser<'a> {
    fn toks(&self, line: &'a Line) -> Toks<'a> {
        Toks { file: self.file, line: line.number, toks: &line.toks, at: 0 }
    }

    fn file_items(&mut self) -> Result<CodeFile> {
        let mut out = CodeFile::default();
        while let Some(line) = self.lines.get(self.at) {
            let mut t = self.toks(line);
            match t.next() {
                Some(Tok::Name(k)) if k == "class" && line.indent == 0 => {
                    let name = t.name()?.to_string();
                    t.expect("(")?;
                    let base = t.name()?.to_string();
                    t.expect(")")?;
                    t.expect(":")?;
                    t.done()?;
                    self.at += 1;
                    match base.as_str() {
                        "Module" => {
                            out.class = Some(name);
                            self.class_body(line.indent, &mut out)?;
                        }
                        "NamedTuple" => {
                            let fields = self.named_tuple_fields(line.indent)?;
                            out.named_tuples.push(NamedTuple { name, fields });
                        }
                        other => return Err(error(self.file, line.number, format!("a class derived from `{other}`"))),
                    }
                }
                _ => return Err(error(self.file, line.number, "expected a class declaration at the top level")),
            }
        }
        Ok(out)
    }

    /// The lines indented deeper than `indent` from here on.
    fn block_end(&self, indent: usize) -> usize {
        let mut end = self.at;
        while self.lines.get(end).is_some_and(|l| l.indent > indent) {
            end += 1;
        }
        end
    }

    fn named_tuple_fields(&mut self, indent: usize) -> Result<Vec<String>> {
        let end = self.block_end(indent);
        let mut fields = Vec::new();
        while self.at < end {
            let line = &self.lines[self.at];
            let mut t = self.toks(line);
            let field = t.name()?.to_string();
            t.expect(":")?;
            t.type_text()?;
            t.done()?;
            fields.push(field);
            self.at += 1;
        }
        Ok(fields)
    }

    fn class_body(&mut self, indent: usize, out: &mut CodeFile) -> Result<()> {
        let end = self.block_end(indent);
        while self.at < end {
            let line = &self.lines[self.at];
            let mut t = self.toks(line);
            match t.next() {
                Some(Tok::Name(k)) if k == "def" => {
                    let method = t.name()?.to_string();
                    t.expect("(")?;
                    let mut params = Vec::new();
                    while !t.eat(")") {
                        let p = t.name()?.to_string();
                        t.expect(":")?;
                        let ty = t.type_text()?;
                        // A default (`y: Optional[Tensor]=None`) only
                        // matters to callers that leave the argument out.
                        if t.eat("=") {
                            t.expr(0)?;
                        }
                        params.push(Param { name: p, ty });
                        if !t.eat(",") {
                            t.expect(")")?;
                            break;
                        }
                    }
                    t.expect("->")?;
                    let returns = t.type_text()?;
                    t.expect(":")?;
                    t.done()?;
                    self.at += 1;
                    let body = self.block(line.indent, 0)?;
                    if method == "forward" {
                        // The first parameter is `self`.
                        out.params = params.into_iter().skip(1).collect();
                        out.returns = returns;
                        out.body = body;
                        out.has_forward = true;
                    } else {
                        out.other_methods.push(method);
                    }
                }
                // `__parameters__ = []`, `__buffers__ = []` and annotated
                // attributes (`training : bool`) describe the module's
                // state, which a frozen module has folded into constants.
                Some(Tok::Name(_)) => self.at += 1,
                _ => return Err(error(self.file, line.number, "expected a method or an attribute declaration")),
            }
        }
        Ok(())
    }

    /// The statements of a block indented deeper than `indent`.
    fn block(&mut self, indent: usize, depth: usize) -> Result<Vec<Stmt>> {
        let first = self.lines.get(self.at);
        let Some(first) = first.filter(|l| l.indent > indent) else {
            let n = self.lines.get(self.at.saturating_sub(1)).map_or(0, |l| l.number);
            return Err(error(self.file, n, "expected an indented block"));
        };
        if depth > MAX_DEPTH {
            return Err(error(self.file, first.number, format!("blocks nested deeper than {MAX_DEPTH} levels")));
        }
        let body_indent = first.indent;
        let mut stmts = Vec::new();
        while let Some(line) = self.lines.get(self.at) {
            if line.indent < body_indent {
                break;
            }
            if line.indent > body_indent {
                return Err(error(self.file, line.number, "unexpected indentation"));
            }
            if let Some(s) = self.statement(line, depth)? {
                stmts.push(s);
            }
        }
        Ok(stmts)
    }

    fn statement(&mut self, line: &'a Line, depth: usize) -> Result<Option<Stmt>> {
        let mut t = self.toks(line);
        let n = line.number;
        self.at += 1;
        match t.peek() {
            Some(Tok::Name(k)) if k == "pass" => {
                t.next();
                t.done()?;
                Ok(None)
            }
            Some(Tok::Name(k)) if k == "return" => {
                t.next();
                let e = t.expr(0)?;
                t.done()?;
                Ok(Some(Stmt::Return(e, n)))
            }
            Some(Tok::Name(k)) if k == "if" => {
                t.next();
                let cond = t.expr(0)?;
                t.expect(":")?;
                t.done()?;
                let then = self.block(line.indent, depth + 1)?;
                let mut otherwise = Vec::new();
                if let Some(next) = self.lines.get(self.at).filter(|l| l.indent == line.indent) {
                    let mut e = self.toks(next);
                    if matches!(e.peek(), Some(Tok::Name(k)) if k == "else") {
                        e.next();
                        e.expect(":")?;
                        e.done()?;
                        self.at += 1;
                        otherwise = self.block(line.indent, depth + 1)?;
                    }
                }
                Ok(Some(Stmt::If { cond, then, otherwise, line: n }))
            }
            Some(Tok::Name(k)) if k == "for" => {
                t.next();
                let var = t.name()?.to_string();
                if !matches!(t.next(), Some(Tok::Name(k)) if k == "in")
                    || !matches!(t.next(), Some(Tok::Name(k)) if k == "range")
                {
                    return Err(error(self.file, n, "a `for` loop other than `for name in range(n):`"));
                }
                t.expect("(")?;
                let count = t.expr(0)?;
                t.expect(")")?;
                t.expect(":")?;
                t.done()?;
                let body = self.block(line.indent, depth + 1)?;
                Ok(Some(Stmt::For { var, count, body, line: n }))
            }
            Some(Tok::Name(k))
                if matches!(
                    k.as_str(),
                    "while"
                        | "with"
                        | "def"
                        | "class"
                        | "elif"
                        | "else"
                        | "break"
                        | "continue"
                        | "raise"
                        | "assert"
                        | "del"
                        | "import"
                        | "from"
                        | "global"
                        | "lambda"
                ) =>
            {
                Err(error(
                    self.file,
                    n,
                    format!(
                        "`{k}` is not part of the frozen-module subset; call torch.jit.freeze before torch.jit.save"
                    ),
                ))
            }
            _ => {
                // Targets `a = ...` or `a, b, = ...`: names separated by
                // commas and followed by `=`.
                let mut targets = Vec::new();
                let mut unpack = false;
                let save = t.at;
                loop {
                    match (t.next(), t.peek()) {
                        (Some(Tok::Name(name)), Some(Tok::Punct("="))) => {
                            targets.push(name.clone());
                            t.next();
                            break;
                        }
                        (Some(Tok::Name(name)), Some(Tok::Punct(","))) => {
                            targets.push(name.clone());
                            unpack = true;
                            t.next();
                            if t.eat("=") {
                                break;
                            }
                        }
                        _ => {
                            targets.clear();
                            t.at = save;
                            break;
                        }
                    }
                }
                let value = t.expr(0)?;
                t.done()?;
                if targets.is_empty() {
                    Ok(Some(Stmt::Expr(value, n)))
                } else {
                    Ok(Some(Stmt::Assign { targets, unpack, value, line: n }))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROZEN: &str = r#"class Net(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.Net,
    x: Tensor,
    y: Optional[Tensor]=None) -> Tuple[Tensor, Tensor]:
    _0 = "Input shape must be `(N, C, H, W)`!"
    x0 = torch.quantize_per_tensor(x, 0.5, 64, 13)
    _1 = torch.ne(torch.len(torch.size(x0)), 4)
    if _1:
      ops.prim.RaiseException(_0, "builtins.ValueError")
    else:
      pass
    a, b, = torch.chunk(x0, 2, 1)
    c = torch.max_pool2d(a, [3, 3], [2, 2], [-1, 1], ceil_mode=True)
    return (c, b)
"#;

    #[test]
    fn parses_a_frozen_forward() -> Result<()> {
        let f = parse_file("code/net.py", FROZEN)?;
        assert_eq!(f.class.as_deref(), Some("Net"));
        assert_eq!(f.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(f.returns, "Tuple[Tensor, Tensor]");
        assert_eq!(f.body.len(), 7);
        assert!(matches!(&f.body[3], Stmt::If { otherwise, .. } if otherwise.is_empty()));
        assert!(matches!(&f.body[4], Stmt::Assign { targets, unpack: true, .. } if targets == &["a", "b"]));
        match &f.body[5] {
            Stmt::Assign { value: Expr::Call { kwargs, args, .. }, .. } => {
                assert_eq!(kwargs[0], ("ceil_mode".to_string(), Expr::Bool(true)));
                assert_eq!(args[3], Expr::List(vec![Expr::Int(-1), Expr::Int(1)]));
            }
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn errors_name_the_line_and_the_construct() {
        let loop_file = "class M(Module):\n  def forward(self: M, x: Tensor) -> Tensor:\n    while True:\n      pass\n    return x\n";
        let e = parse_file("code/m.py", loop_file).unwrap_err().to_string();
        assert!(e.starts_with("code/m.py:3:") && e.contains("`while`"), "{e}");
        let for_file = "class M(Module):\n  def forward(self: M, x: Tensor) -> Tensor:\n    for i in x:\n      pass\n    return x\n";
        let e = parse_file("code/m.py", for_file).unwrap_err().to_string();
        assert!(e.starts_with("code/m.py:3:") && e.contains("range"), "{e}");
        let op = "class M(Module):\n  def forward(self: M, x: Tensor) -> Tensor:\n    return x + 1\n";
        let e = parse_file("code/m.py", op).unwrap_err().to_string();
        assert!(e.starts_with("code/m.py:3:") && e.contains('+'), "{e}");
    }

    #[test]
    fn a_deep_nest_is_an_error_not_a_stack_overflow() {
        let depth = 100_000;
        let expr = format!("{}x{}", "torch.relu(".repeat(depth), ")".repeat(depth));
        let text = format!("class M(Module):\n  def forward(self: M, x: Tensor) -> Tensor:\n    return {expr}\n");
        let e = parse_file("code/m.py", &text).unwrap_err().to_string();
        assert!(e.contains("nested deeper"), "{e}");
        let list = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!("class M(Module):\n  def forward(self: M, x: Tensor) -> Tensor:\n    return {list}\n");
        assert!(parse_file("code/m.py", &text).is_err());
    }
}
