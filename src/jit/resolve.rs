//! Operator calls as c10 resolves them: printed code names an op without
//! its overload, drops arguments that have defaults, and writes dtypes as
//! integers. A call site is matched against every overload of the name
//! (in the registry's order), its arguments converted to the schema's
//! types and its defaults filled in; the first overload that fits wins.

use super::archive::list;
use crate::{ArgType, DType, Error, OpHandle, OpSchema, Result, Value};

/// The registry name of a printed callee: `torch.X` and `ops.aten.X` are
/// aten ops (unprefixed in qtensor), `ops.NS.X` is `NS::X`.
pub fn op_name(callee: &[String]) -> Option<String> {
    match callee {
        [torch, name] if torch == "torch" => Some(name.clone()),
        [ops, ns, name] if ops == "ops" && ns == "aten" => Some(name.clone()),
        [ops, ns, name] if ops == "ops" => Some(format!("{ns}::{name}")),
        _ => None,
    }
}

/// `v` converted to the schema type `ty`, if it can stand there.
fn convert(v: &Value, ty: ArgType) -> Option<Value> {
    if v.matches(ty) {
        return Some(v.clone());
    }
    Some(match (ty, v) {
        (ArgType::ScalarType | ArgType::OptionalScalarType, Value::Int(code)) => {
            Value::ScalarType(DType::from_torch_code(*code)?)
        }
        (ArgType::IntList(Some(n)), Value::Int(i)) => Value::IntList(std::iter::repeat_n(*i, n).collect()),
        // `[]` is a list of whatever the schema wants.
        (ArgType::TensorList, Value::List(items)) if items.is_empty() => Value::TensorList(Vec::new()),
        (ArgType::IntList(_), Value::List(items)) if items.is_empty() => Value::IntList(Default::default()),
        (ArgType::FloatList, Value::IntList(l)) => Value::List(l.iter().map(|&i| Value::Float(i as f64)).collect()),
        _ => return None,
    })
    .filter(|c| c.matches(ty))
}

/// A schema default as a value.
fn default_value(text: &str, ty: ArgType) -> Option<Value> {
    let t = text.trim();
    let v = match t {
        "None" => Value::None,
        "True" => Value::Bool(true),
        "False" => Value::Bool(false),
        _ if t.starts_with('[') => {
            let inner = t.strip_prefix('[')?.strip_suffix(']')?;
            let items: Option<Vec<Value>> = inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| default_value(s, ArgType::Int))
                .collect();
            list(items?)
        }
        _ if t.starts_with('"') || t.starts_with('\'') => Value::Str(t[1..t.len().saturating_sub(1)].to_string()),
        _ => match t.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(t.parse().ok()?),
        },
    };
    convert(&v, ty)
}

/// The arguments of a call to `schema`, or why they do not fit.
pub fn bind(schema: &OpSchema, args: &[Value], kwargs: &[(String, Value)]) -> std::result::Result<Vec<Value>, String> {
    if args.len() > schema.args.len() {
        return Err(format!("{} positional arguments, the schema takes {}", args.len(), schema.args.len()));
    }
    for (k, _) in kwargs {
        if !schema.args.iter().any(|a| &a.name == k) {
            return Err(format!("no argument named `{k}`"));
        }
    }
    let mut out = Vec::with_capacity(schema.args.len());
    for (i, a) in schema.args.iter().enumerate() {
        let given = args.get(i).or_else(|| kwargs.iter().find(|(k, _)| k == &a.name).map(|(_, v)| v));
        let v = match (given, &a.default) {
            (Some(v), _) => convert(v, a.ty)
                .ok_or_else(|| format!("argument {i} `{}` must be {}, got {}", a.name, a.ty, v.type_name()))?,
            (None, Some(d)) => default_value(d, a.ty).ok_or_else(|| format!("the default `{d}` of `{}`", a.name))?,
            (None, None) => return Err(format!("argument {i} `{}` is missing", a.name)),
        };
        out.push(v);
    }
    Ok(out)
}

/// Picks the overload of `name` that the arguments fit, and binds them.
pub fn resolve(name: &str, args: &[Value], kwargs: &[(String, Value)]) -> Result<(OpHandle, Vec<Value>)> {
    let candidates = crate::registry().overloads(name);
    if candidates.is_empty() {
        return Err(Error::UnknownOp { name: name.to_string(), similar: Vec::new() });
    }
    let mut reasons = Vec::new();
    for op in candidates {
        match bind(op.entry().schema(), args, kwargs) {
            Ok(bound) => return Ok((op, bound)),
            Err(why) => reasons.push(format!("{}: {why}", op.entry().schema())),
        }
    }
    let types: Vec<String> = args.iter().map(Value::type_name).collect();
    Err(Error::invalid(name, format!("no overload takes ({}); tried:\n  {}", types.join(", "), reasons.join("\n  "))))
}
