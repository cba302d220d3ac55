//! Runs a parsed `forward`: statements in order, every op call through the
//! registry's boxed call (so layers, the profiler and plugin kernels apply),
//! with the overload resolved once per call site and reused while the
//! argument types stay the same.

use super::archive::list;
use super::resolve::{op_name, resolve};
use super::syntax::{Expr, NamedTuple, Stmt, MAX_DEPTH};
use crate::{Error, OpHandle, Result, Value};
use parking_lot::Mutex;
use std::collections::HashMap;

/// The most loop iterations one call may run, all loops together (nested
/// loops multiply): PyTorch's printed loops count dimensions or layers,
/// never more than a few.
const MAX_ITERATIONS: i64 = 1 << 16;

/// The most elements a list built by `append` may hold, counting the items
/// of lists it holds: a list appended to itself in a loop must not double
/// in size each time.
const MAX_LIST_ELEMENTS: usize = 1 << 16;

/// One call site's resolved overload, keyed by the types it was resolved for.
#[derive(Default)]
pub(crate) struct CallCache {
    sites: Mutex<HashMap<usize, (Vec<String>, OpHandle)>>,
}

/// What a running `forward` reads.
pub(crate) struct Program<'a> {
    /// The code file, for errors.
    pub file: &'a str,
    /// `CONSTANTS.cN`.
    pub constants: &'a [Value],
    /// NamedTuple classes by qualified name.
    pub named_tuples: &'a [NamedTuple],
    /// Resolved overloads.
    pub cache: &'a CallCache,
    /// For each top-level statement, the variables read for the last time
    /// there (see [`last_uses`]); `None` keeps every variable (a traced run).
    pub frees: Option<&'a [Vec<String>]>,
    /// Loop iterations this call may still run (see [`MAX_ITERATIONS`]).
    pub iterations_left: std::cell::Cell<i64>,
}

/// The iteration budget of one call.
pub(crate) fn iteration_budget() -> std::cell::Cell<i64> {
    std::cell::Cell::new(MAX_ITERATIONS)
}

/// For each statement of `body`, the variables it reads (or assigns)
/// for the last time: dropping them there returns their buffers to the
/// pool while the rest of `forward` runs, as a hand-written model's
/// temporaries are dropped. Reads inside an `if` count at the `if`.
pub(crate) fn last_uses(body: &[Stmt]) -> Vec<Vec<String>> {
    fn reads(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Name(n) => out.push(n.clone()),
            Expr::Call { args, kwargs, .. } => {
                args.iter().for_each(|a| reads(a, out));
                kwargs.iter().for_each(|(_, a)| reads(a, out));
            }
            Expr::List(items) | Expr::Tuple(items) => items.iter().for_each(|a| reads(a, out)),
            Expr::Index(inner, _) => reads(inner, out),
            _ => {}
        }
    }
    fn names(s: &Stmt, out: &mut Vec<String>) {
        match s {
            Stmt::Assign { targets, value, .. } => {
                reads(value, out);
                out.extend(targets.iter().cloned());
            }
            Stmt::Expr(e, _) | Stmt::Return(e, _) => reads(e, out),
            Stmt::If { cond, then, otherwise, .. } => {
                reads(cond, out);
                then.iter().chain(otherwise).for_each(|s| names(s, out));
            }
            Stmt::For { var, count, body, .. } => {
                reads(count, out);
                out.push(var.clone());
                body.iter().for_each(|s| names(s, out));
            }
        }
    }
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, s) in body.iter().enumerate() {
        let mut used = Vec::new();
        names(s, &mut used);
        for n in used {
            last.insert(n, i);
        }
    }
    let mut frees = vec![Vec::new(); body.len()];
    for (name, i) in last {
        frees[i].push(name);
    }
    frees
}

/// The outcome of running a block.
enum Flow {
    Next,
    Return(Value),
}

impl Program<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> Error {
        Error::Script { file: self.file.to_string(), line, message: message.into() }
    }

    /// Runs `body` with the named inputs bound; the returned value.
    pub fn run(&self, body: &[Stmt], vars: &mut HashMap<String, Value>) -> Result<Value> {
        match self.block(body, vars, 0, self.frees)? {
            Flow::Return(v) => Ok(v),
            Flow::Next => Ok(Value::None),
        }
    }

    fn block(
        &self,
        body: &[Stmt],
        vars: &mut HashMap<String, Value>,
        depth: usize,
        frees: Option<&[Vec<String>]>,
    ) -> Result<Flow> {
        if depth > MAX_DEPTH {
            return Err(Error::invalid("jit", format!("blocks nested deeper than {MAX_DEPTH} levels")));
        }
        for (i, s) in body.iter().enumerate() {
            if let Some(dead) = i.checked_sub(1).and_then(|p| frees.and_then(|f| f.get(p))) {
                for name in dead {
                    vars.remove(name);
                }
            }
            match s {
                Stmt::Assign { targets, unpack, value, line } => {
                    let v = match self.append(value, vars, *line)? {
                        Some(list) => list,
                        None => self.eval(value, vars, 0, *line)?,
                    };
                    if !unpack {
                        vars.insert(targets[0].clone(), v);
                        continue;
                    }
                    let items: Vec<Value> = match v {
                        Value::Tuple(items) | Value::List(items) => items,
                        Value::TensorList(ts) => ts.into_iter().map(Value::Tensor).collect(),
                        Value::IntList(l) => l.into_iter().map(Value::Int).collect(),
                        other => {
                            return Err(self.err(
                                *line,
                                format!("cannot unpack {} into {} names", other.type_name(), targets.len()),
                            ))
                        }
                    };
                    if items.len() != targets.len() {
                        return Err(
                            self.err(*line, format!("{} values to unpack into {} names", items.len(), targets.len()))
                        );
                    }
                    for (t, v) in targets.iter().zip(items) {
                        vars.insert(t.clone(), v);
                    }
                }
                Stmt::Expr(e, line) => {
                    if !self.append_in_place(e, vars, *line)? {
                        self.eval(e, vars, 0, *line)?;
                    }
                }
                Stmt::If { cond, then, otherwise, line } => {
                    let taken = match self.eval(cond, vars, 0, *line)? {
                        Value::Bool(b) => b,
                        other => return Err(self.err(*line, format!("an `if` on {}, not a bool", other.type_name()))),
                    };
                    if let Flow::Return(v) = self.block(if taken { then } else { otherwise }, vars, depth + 1, None)? {
                        return Ok(Flow::Return(v));
                    }
                }
                Stmt::Return(e, line) => return Ok(Flow::Return(self.eval(e, vars, 0, *line)?)),
                Stmt::For { var, count, body, line } => {
                    let n = match self.eval(count, vars, 0, *line)? {
                        Value::Int(n) => n.max(0),
                        other => return Err(self.err(*line, format!("range() of {}, not an int", other.type_name()))),
                    };
                    // A hostile count, or nested loops, must not hang the call.
                    let left = self.iterations_left.get();
                    if n > left {
                        return Err(self.err(
                            *line,
                            format!(
                                "a loop of {n} iterations: one call runs at most {MAX_ITERATIONS}, in all its loops"
                            ),
                        ));
                    }
                    self.iterations_left.set(left - n);
                    for i in 0..n {
                        vars.insert(var.clone(), Value::Int(i));
                        if let Flow::Return(v) = self.block(body, vars, depth + 1, None)? {
                            return Ok(Flow::Return(v));
                        }
                    }
                }
            }
        }
        Ok(Flow::Next)
    }

    /// `torch.append(list, v)`, which appends to the list variable it names
    /// (TorchScript lists are mutable) and returns the list; `None` when
    /// `e` is another expression.
    fn append(&self, e: &Expr, vars: &mut HashMap<String, Value>, line: usize) -> Result<Option<Value>> {
        let Some(name) = self.append_in_place_named(e, vars, line)? else { return Ok(None) };
        Ok(vars.get(name).cloned())
    }

    /// `torch.append(list, v)` as a statement, its result unused: appends
    /// without copying the list. False when `e` is another expression.
    fn append_in_place(&self, e: &Expr, vars: &mut HashMap<String, Value>, line: usize) -> Result<bool> {
        Ok(self.append_in_place_named(e, vars, line)?.is_some())
    }

    /// Appends in place; the list variable's name, `None` when `e` is not
    /// an append.
    fn append_in_place_named<'e>(
        &self,
        e: &'e Expr,
        vars: &mut HashMap<String, Value>,
        line: usize,
    ) -> Result<Option<&'e String>> {
        let Expr::Call { callee, args, kwargs, .. } = e else { return Ok(None) };
        if callee.len() != 2 || callee[0] != "torch" || callee[1] != "append" {
            return Ok(None);
        }
        let [Expr::Name(name), item] = args.as_slice() else {
            return Err(self.err(line, "append of something other than a list variable"));
        };
        if !kwargs.is_empty() {
            return Err(self.err(line, "append takes no keyword arguments"));
        }
        let item = self.eval(item, vars, 1, line)?;
        let old = vars.remove(name).ok_or_else(|| self.err(line, format!("`{name}` is used before it is assigned")))?;
        let mut items: Vec<Value> = match old {
            Value::List(items) => items,
            Value::IntList(l) => l.into_iter().map(Value::Int).collect(),
            Value::TensorList(ts) => ts.into_iter().map(Value::Tensor).collect(),
            other => return Err(self.err(line, format!("append to {}, not a list", other.type_name()))),
        };
        items.push(item);
        let elements = items.iter().try_fold(0usize, |n, v| Some(n + 1 + flat_len(v)?));
        if elements.is_none_or(|n| n > MAX_LIST_ELEMENTS) {
            return Err(self.err(
                line,
                format!("append makes a list of more than {MAX_LIST_ELEMENTS} elements, or of lists nested in lists"),
            ));
        }
        vars.insert(name.clone(), list(items));
        Ok(Some(name))
    }

    fn eval(&self, e: &Expr, vars: &HashMap<String, Value>, depth: usize, line: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err(line, format!("expressions nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(match e {
            Expr::None => Value::None,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Int(i) => Value::Int(*i),
            Expr::Float(f) => Value::Float(*f),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Type(t) => Value::Str(t.clone()),
            Expr::Name(n) => {
                vars.get(n).cloned().ok_or_else(|| self.err(line, format!("`{n}` is used before it is assigned")))?
            }
            Expr::Path(p) => match p.as_slice() {
                [c, key] if c == "CONSTANTS" => {
                    let i: usize = key
                        .strip_prefix('c')
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| self.err(line, format!("`CONSTANTS.{key}` is not a constant name")))?;
                    self.constants.get(i).cloned().ok_or_else(|| {
                        self.err(
                            line,
                            format!(
                                "`CONSTANTS.{key}` is missing: constants.pkl holds {} constants",
                                self.constants.len()
                            ),
                        )
                    })?
                }
                _ => {
                    return Err(self.err(
                        line,
                        format!("the name `{}` (attribute access is not part of a frozen module)", p.join(".")),
                    ))
                }
            },
            Expr::List(items) => list(self.eval_all(items, vars, depth, line)?),
            Expr::Tuple(items) => Value::Tuple(self.eval_all(items, vars, depth, line)?),
            Expr::Index(inner, i) => {
                let v = self.eval(inner, vars, depth + 1, line)?;
                index(&v, *i).ok_or_else(|| self.err(line, format!("index {i} of {}", v.type_name())))?
            }
            Expr::Call { callee, args, kwargs, line } => {
                let args = self.eval_all(args, vars, depth, *line)?;
                let kwargs = kwargs
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.eval(v, vars, depth + 1, *line)?)))
                    .collect::<Result<Vec<_>>>()?;
                self.call(e, callee, args, kwargs, *line)?
            }
        })
    }

    fn eval_all(&self, items: &[Expr], vars: &HashMap<String, Value>, depth: usize, line: usize) -> Result<Vec<Value>> {
        items.iter().map(|i| self.eval(i, vars, depth + 1, line)).collect()
    }

    fn call(
        &self,
        site: &Expr,
        callee: &[String],
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
        line: usize,
    ) -> Result<Value> {
        let joined = callee.join(".");
        match joined.as_str() {
            // `annotate(T, v)` is `v`, except that a one-element tensor
            // annotated as a number converts to it (TorchScript's implicit
            // `float(t)` and `int(t)`).
            "annotate" => {
                let mut args = args.into_iter();
                let (ty, v) = (args.next(), args.next().ok_or_else(|| self.err(line, "annotate without a value"))?);
                return match (ty, v) {
                    (Some(Value::Str(ty)), Value::Tensor(t)) if ty == "float" || ty == "int" => {
                        let x = t.item().map_err(|e| self.err(line, format!("annotate({ty}, ...): {e}")))?;
                        Ok(if ty == "float" { Value::Float(x) } else { Value::Int(x as i64) })
                    }
                    (_, v) => Ok(v),
                };
            }
            "torch.device" => return Ok(Value::Str("cpu".into())),
            // A variable declared before an `if` assigns it.
            "uninitialized" => return Ok(Value::None),
            // `list(l)` copies a list; values here are immutable.
            "torch.list" => return args.into_iter().next().ok_or_else(|| self.err(line, "list() of nothing")),
            // Python's `str.format` with `{}` fields (the messages of a
            // model's own checks); it takes any number of arguments.
            "torch.format" => return format_message(&args).ok_or_else(|| self.err(line, "format() without a string")),
            "int" => match args.as_slice() {
                [Value::Int(i)] => return Ok(Value::Int(*i)),
                [Value::Float(f)] if f.is_finite() && f.abs() < 9.2e18 => return Ok(Value::Int(f.trunc() as i64)),
                [Value::Tensor(_)] => return self.call_op(site, "Int", args, kwargs, line),
                _ => return Err(self.err(line, "int() of something that is not a number or a tensor")),
            },
            _ => {}
        }
        if callee.first().is_some_and(|c| c == "__torch__") {
            let tuple =
                self.named_tuples.iter().find(|t| t.name == joined || joined.ends_with(&format!(".{}", t.name)));
            return match tuple {
                Some(t) if t.fields.len() == args.len() && kwargs.is_empty() => Ok(Value::Tuple(args)),
                Some(t) => {
                    Err(self.err(line, format!("{} takes {} fields, got {}", t.name, t.fields.len(), args.len())))
                }
                None => Err(self.err(
                    line,
                    format!(
                        "a call of the model's class `{joined}` (only NamedTuple constructors appear in frozen code)"
                    ),
                )),
            };
        }
        let name =
            op_name(callee).ok_or_else(|| self.err(line, format!("a call of `{joined}`, which is not an operator")))?;
        self.call_op(site, &name, args, kwargs, line)
    }

    fn call_op(
        &self,
        site: &Expr,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
        line: usize,
    ) -> Result<Value> {
        // The call site's address identifies it for the program's lifetime.
        let key = site as *const Expr as usize;
        let types: Vec<String> = args.iter().chain(kwargs.iter().map(|(_, v)| v)).map(kind).collect();
        let cached = self.cache.sites.lock().get(&key).filter(|(t, _)| *t == types).map(|(_, op)| op.clone());
        let (op, bound) = match cached {
            Some(op) => match super::resolve::bind(op.entry().schema(), &args, &kwargs) {
                Ok(bound) => (op, bound),
                Err(_) => resolve(name, &args, &kwargs).map_err(|e| self.op_err(line, e))?,
            },
            None => {
                let (op, bound) = resolve(name, &args, &kwargs).map_err(|e| self.op_err(line, e))?;
                self.cache.sites.lock().insert(key, (types, op.clone()));
                (op, bound)
            }
        };
        op.call(&bound).map_err(|e| match e {
            e @ Error::Raised { .. } => e,
            other => self.err(line, format!("{}: {other}", op.entry().schema().name)),
        })
    }

    fn op_err(&self, line: usize, e: Error) -> Error {
        match e {
            Error::UnknownOp { name, .. } => self
                .err(line, format!("the operator `{name}` is not supported by qtensor (no kernel and no declaration)")),
            other => self.err(line, other.to_string()),
        }
    }
}

/// The type of a value, as far as overload choice depends on it.
fn kind(v: &Value) -> String {
    match v {
        Value::Tensor(_) => "Tensor".into(),
        Value::Object(o) => o.class().name().into(),
        other => other.type_name(),
    }
}

fn index(v: &Value, i: i64) -> Option<Value> {
    let at = |len: usize| -> Option<usize> {
        let j = if i < 0 { i.checked_add(len as i64)? } else { i };
        usize::try_from(j).ok().filter(|&j| j < len)
    };
    Some(match v {
        Value::Tuple(items) | Value::List(items) => items.get(at(items.len())?)?.clone(),
        Value::TensorList(ts) => Value::Tensor(ts.get(at(ts.len())?)?.clone()),
        Value::IntList(l) => Value::Int(*l.get(at(l.len())?)?),
        _ => return None,
    })
}

/// Python's `fmt.format(*args)` for `{}` fields: each takes the next
/// argument's plain form.
fn format_message(args: &[Value]) -> Option<Value> {
    let (Value::Str(fmt), rest) = args.split_first()? else { return None };
    let mut out = String::new();
    let mut rest = rest.iter();
    let mut pieces = fmt.split("{}");
    out.push_str(pieces.next().unwrap_or_default());
    for piece in pieces {
        out.push_str(&rest.next().map(python_str).unwrap_or_else(|| "{}".into()));
        out.push_str(piece);
    }
    Some(Value::Str(out))
}

/// A value as Python's `str` prints it (tensors by their description).
fn python_str(v: &Value) -> String {
    let join = |items: &mut dyn Iterator<Item = String>| items.collect::<Vec<_>>().join(", ");
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Str(s) => s.clone(),
        Value::None => "None".into(),
        Value::IntList(l) => format!("[{}]", join(&mut l.iter().map(|i| i.to_string()))),
        Value::List(items) => format!("[{}]", join(&mut items.iter().map(python_str))),
        Value::Tuple(items) => format!("({})", join(&mut items.iter().map(python_str))),
        other => other.type_name(),
    }
}

/// The number of items of a flat list, 0 for a value that is no list, and
/// `None` for a list that holds lists (which `append` refuses to nest).
fn flat_len(v: &Value) -> Option<usize> {
    match v {
        Value::List(items) | Value::Tuple(items) => items.iter().all(|i| flat_len(i) == Some(0)).then_some(items.len()),
        Value::IntList(l) => Some(l.len()),
        Value::TensorList(ts) => Some(ts.len()),
        _ => Some(0),
    }
}
