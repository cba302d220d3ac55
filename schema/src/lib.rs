//! Operator schemas for qtensor: the `name(Type arg, ...) -> Ret` strings
//! of c10, parsed into types both the build scripts and the runtime use, so
//! they can never disagree on what a schema means.
//!
//! With the `ops-yaml` feature, [`ops_yaml`] also reads the `ops.yaml` file
//! that declares qtensor's operators: only build scripts need it, so the
//! runtime compiles no YAML parser.

#[cfg(feature = "ops-yaml")]
pub mod ops_yaml;
#[cfg(feature = "ops-yaml")]
pub use ops_yaml::{parse_ops_yaml, OpsYamlEntry, OpsYamlError};

use std::fmt;

/// The type of one argument or return value in a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgType {
    /// `Tensor`
    Tensor,
    /// `Tensor?`
    OptionalTensor,
    /// `Tensor[]`
    TensorList,
    /// `float`
    Float,
    /// `float?`
    OptionalFloat,
    /// `int`
    Int,
    /// `int?`
    OptionalInt,
    /// `int[]`, or `int[N]` with a fixed length
    IntList(Option<usize>),
    /// `bool`
    Bool,
    /// `ScalarType`
    ScalarType,
    /// `ScalarType?`
    OptionalScalarType,
    /// `str`
    Str,
    /// `str?`
    OptionalStr,
    /// `NoneType` (also written `()`): the return of ops that return
    /// nothing, such as `prim::RaiseException`.
    NoneType,
    /// `Scalar`: an int, a float or a bool (PyTorch's `Scalar`).
    Scalar,
    /// `float[]`
    FloatList,
    /// `t[]`: a list of any one element type (`len.t`).
    AnyList,
    /// `Device` (only the CPU exists here).
    Device,
    /// A custom-class object, as c10's torchbind classes: packed weights.
    Object(ScriptClass),
    /// A list of custom-class objects (`CellParamsBase[]`).
    ObjectList(ScriptClass),
    /// `bool?`
    OptionalBool,
    /// `int[]?`
    OptionalIntList,
    /// `float[]?`
    OptionalFloatList,
    /// `Device?`
    OptionalDevice,
    /// The result of a kernel whose schema returns several tensors
    /// (`-> (Tensor, Tensor, Tensor)`): a tuple of that many.
    TensorTuple(usize),
}

/// The custom classes (c10's torchbind classes) that schemas can name:
/// the packed-weight objects that PyTorch's quantized ops take.
// The names mirror PyTorch's classes, which all end in `ParamsBase`.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptClass {
    /// `__torch__.torch.classes.quantized.Conv2dPackedParamsBase`
    Conv2dPackedParams,
    /// `__torch__.torch.classes.quantized.LinearPackedParamsBase`
    LinearPackedParams,
    /// `__torch__.torch.classes.rnn.CellParamsBase`
    CellParams,
}

impl ScriptClass {
    /// Every class, for lookups by name.
    pub const ALL: [ScriptClass; 3] =
        [ScriptClass::Conv2dPackedParams, ScriptClass::LinearPackedParams, ScriptClass::CellParams];

    /// The class name as schemas write it (`Conv2dPackedParamsBase`).
    pub const fn name(self) -> &'static str {
        match self {
            ScriptClass::Conv2dPackedParams => "Conv2dPackedParamsBase",
            ScriptClass::LinearPackedParams => "LinearPackedParamsBase",
            ScriptClass::CellParams => "CellParamsBase",
        }
    }

    /// The qualified name TorchScript files use
    /// (`__torch__.torch.classes.quantized.Conv2dPackedParamsBase`).
    pub const fn qualified_name(self) -> &'static str {
        match self {
            ScriptClass::Conv2dPackedParams => "__torch__.torch.classes.quantized.Conv2dPackedParamsBase",
            ScriptClass::LinearPackedParams => "__torch__.torch.classes.quantized.LinearPackedParamsBase",
            ScriptClass::CellParams => "__torch__.torch.classes.rnn.CellParamsBase",
        }
    }

    /// The class of a short or qualified name.
    pub fn parse(name: &str) -> Option<ScriptClass> {
        ScriptClass::ALL.into_iter().find(|c| c.name() == name || c.qualified_name() == name)
    }
}

impl ArgType {
    /// Parses a type as written in a schema.
    pub fn parse(s: &str) -> Option<ArgType> {
        Some(match s {
            "Tensor" => ArgType::Tensor,
            "Tensor?" => ArgType::OptionalTensor,
            "Tensor[]" => ArgType::TensorList,
            "float" => ArgType::Float,
            "float?" => ArgType::OptionalFloat,
            "int" => ArgType::Int,
            "int?" => ArgType::OptionalInt,
            "int[]" => ArgType::IntList(None),
            "bool" => ArgType::Bool,
            "ScalarType" => ArgType::ScalarType,
            "ScalarType?" => ArgType::OptionalScalarType,
            "str" => ArgType::Str,
            "str?" => ArgType::OptionalStr,
            "NoneType" | "()" => ArgType::NoneType,
            "Scalar" => ArgType::Scalar,
            "float[]" => ArgType::FloatList,
            "t[]" => ArgType::AnyList,
            "Device" => ArgType::Device,
            "bool?" => ArgType::OptionalBool,
            "int[]?" => ArgType::OptionalIntList,
            "float[]?" => ArgType::OptionalFloatList,
            "Device?" => ArgType::OptionalDevice,
            _ => {
                if let Some(class) = s.strip_suffix("[]").and_then(ScriptClass::parse) {
                    return Some(ArgType::ObjectList(class));
                }
                if let Some(class) = ScriptClass::parse(s) {
                    return Some(ArgType::Object(class));
                }
                let n = s.strip_prefix("int[")?.strip_suffix(']')?;
                let n: usize = n.parse().ok().filter(|&n| n > 0)?;
                ArgType::IntList(Some(n))
            }
        })
    }

    /// True when a kernel parameter of type `self` can receive a schema
    /// argument of type `schema` (`int[]` accepts any `int[N]`).
    pub fn accepts(self, schema: ArgType) -> bool {
        self == schema
            || (self == ArgType::IntList(None) && matches!(schema, ArgType::IntList(_)))
            // A device is its name (`"cpu"`).
            || (self == ArgType::Str && schema == ArgType::Device)
            || (self == ArgType::OptionalStr && schema == ArgType::OptionalDevice)
    }

    /// The kernel result type that a schema's `returns` asks for: the one
    /// type, or [`ArgType::TensorTuple`] for several tensors.
    pub fn of_returns(returns: &[ArgType]) -> Option<ArgType> {
        match returns {
            [one] => Some(*one),
            many if many.iter().all(|t| *t == ArgType::Tensor) => Some(ArgType::TensorTuple(many.len())),
            _ => None,
        }
    }
}

impl fmt::Display for ArgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgType::Tensor => f.write_str("Tensor"),
            ArgType::OptionalTensor => f.write_str("Tensor?"),
            ArgType::TensorList => f.write_str("Tensor[]"),
            ArgType::Float => f.write_str("float"),
            ArgType::OptionalFloat => f.write_str("float?"),
            ArgType::Int => f.write_str("int"),
            ArgType::OptionalInt => f.write_str("int?"),
            ArgType::IntList(None) => f.write_str("int[]"),
            ArgType::IntList(Some(n)) => write!(f, "int[{n}]"),
            ArgType::Bool => f.write_str("bool"),
            ArgType::ScalarType => f.write_str("ScalarType"),
            ArgType::OptionalScalarType => f.write_str("ScalarType?"),
            ArgType::Str => f.write_str("str"),
            ArgType::OptionalStr => f.write_str("str?"),
            ArgType::NoneType => f.write_str("NoneType"),
            ArgType::Scalar => f.write_str("Scalar"),
            ArgType::FloatList => f.write_str("float[]"),
            ArgType::AnyList => f.write_str("t[]"),
            ArgType::Device => f.write_str("Device"),
            ArgType::Object(c) => f.write_str(c.name()),
            ArgType::ObjectList(c) => write!(f, "{}[]", c.name()),
            ArgType::OptionalBool => f.write_str("bool?"),
            ArgType::OptionalIntList => f.write_str("int[]?"),
            ArgType::OptionalFloatList => f.write_str("float[]?"),
            ArgType::OptionalDevice => f.write_str("Device?"),
            ArgType::TensorTuple(n) => write!(f, "({})", vec!["Tensor"; *n].join(", ")),
        }
    }
}

/// One named argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The argument's name.
    pub name: String,
    /// Its type.
    pub ty: ArgType,
    /// Its default as the schema writes it (`1`, `[0, 0]`, `None`,
    /// `False`), if it has one: callers that name ops as PyTorch's printed
    /// code does (TorchScript files) may leave it out.
    pub default: Option<String>,
}

/// A parsed operator schema such as
/// `quantized::add(Tensor qa, Tensor qb, float scale, int zero_point) -> Tensor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpSchema {
    /// The full name, with its namespace (`quantized::add`).
    pub name: String,
    /// The arguments, in order.
    pub args: Vec<Arg>,
    /// The return types (usually one).
    pub returns: Vec<ArgType>,
}

impl OpSchema {
    /// The namespace (`quantized` for `quantized::add`, empty for `relu`).
    pub fn namespace(&self) -> &str {
        self.name.rsplit_once("::").map(|(ns, _)| ns).unwrap_or("")
    }

    /// The name without its namespace (with its overload, if any:
    /// `conv2d.new`).
    pub fn base_name(&self) -> &str {
        self.name.rsplit_once("::").map(|(_, n)| n).unwrap_or(&self.name)
    }

    /// The name without its overload (`quantized::conv2d` for
    /// `quantized::conv2d.new`): the name calls are written with.
    pub fn op_name(&self) -> &str {
        self.name.split_once('.').map_or(&self.name, |(n, _)| n)
    }

    /// The overload name (`new` for `quantized::conv2d.new`; empty when
    /// there is none).
    pub fn overload(&self) -> &str {
        self.name.split_once('.').map_or("", |(_, o)| o)
    }

    /// The name of the op's `OpName` constant in its namespace's module:
    /// the base name in upper snake case, the overload joined with `_`
    /// (`CONV2D_NEW` for `quantized::conv2d.new`, `NUM_TO_TENSOR_SCALAR`
    /// for `prim::NumToTensor.Scalar`).
    pub fn constant_name(&self) -> String {
        let mut out = String::new();
        let mut previous_lower = false;
        for c in self.base_name().chars() {
            if c.is_ascii_uppercase() && previous_lower {
                out.push('_');
            }
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(if c == '.' { '_' } else { c.to_ascii_uppercase() });
        }
        out
    }
}

impl fmt::Display for OpSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {}", a.ty, a.name)?;
            if let Some(d) = &a.default {
                write!(f, "={d}")?;
            }
        }
        f.write_str(") -> ")?;
        if self.returns.len() == 1 {
            write!(f, "{}", self.returns[0])
        } else {
            let r: Vec<String> = self.returns.iter().map(|t| t.to_string()).collect();
            write!(f, "({})", r.join(", "))
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits an argument list at the commas outside brackets (a default may
/// be a list: `int[2] padding=[0, 0]`).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces
}

/// Parses a schema string. The error says what is wrong.
pub fn parse_schema(text: &str) -> Result<OpSchema, String> {
    let text = text.trim();
    let (head, ret) = text.split_once("->").ok_or_else(|| format!("missing `->` in `{text}`"))?;
    let head = head.trim();
    let open = head.find('(').ok_or_else(|| format!("missing `(` in `{text}`"))?;
    let args_text = head[open + 1..].strip_suffix(')').ok_or_else(|| format!("missing `)` before `->` in `{text}`"))?;
    let name = head[..open].trim();
    let (plain, overload) = name.split_once('.').unwrap_or((name, ""));
    let parts: Vec<&str> = plain.split("::").collect();
    if parts.len() > 2 || !parts.iter().all(|p| is_ident(p)) || (name.contains('.') && !is_ident(overload)) {
        return Err(format!(
            "invalid operator name `{name}` (expected `name`, `namespace::name` or `namespace::name.overload`)"
        ));
    }

    let mut args: Vec<Arg> = Vec::new();
    if !args_text.trim().is_empty() {
        for piece in split_top_level(args_text) {
            let piece = piece.trim();
            let (decl, default) = match piece.split_once('=') {
                Some((d, v)) => (d.trim(), Some(v.trim().to_string())),
                None => (piece, None),
            };
            let (ty, arg_name) =
                decl.rsplit_once(' ').ok_or_else(|| format!("argument `{piece}` needs a type and a name"))?;
            let ty = ty.trim();
            let parsed = ArgType::parse(ty).ok_or_else(|| {
                format!("unknown type `{ty}` for argument `{arg_name}` (known: Tensor, Tensor?, Tensor[], float, float?, int, int?, int[], int[N], float[], t[], bool, Scalar, ScalarType, ScalarType?, str, Device, and the classes Conv2dPackedParamsBase, LinearPackedParamsBase, CellParamsBase)")
            })?;
            if !is_ident(arg_name) {
                return Err(format!("invalid argument name `{arg_name}`"));
            }
            if args.iter().any(|a| a.name == arg_name) {
                return Err(format!("argument `{arg_name}` appears twice"));
            }
            if default.as_deref() == Some("") {
                return Err(format!("argument `{arg_name}` has `=` but no default"));
            }
            if default.is_none() && args.last().is_some_and(|a| a.default.is_some()) {
                return Err(format!("argument `{arg_name}` has no default but follows one that has"));
            }
            args.push(Arg { name: arg_name.to_string(), ty: parsed, default });
        }
    }

    let ret = ret.trim();
    let ret_list: Vec<&str> = match ret.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(inner) if inner.trim().is_empty() => vec!["()"],
        Some(inner) => inner.split(',').map(str::trim).collect(),
        None => vec![ret],
    };
    let mut returns = Vec::new();
    for r in ret_list {
        // A return may be named (`Tensor out`); the name is documentation.
        let ty = r.split_whitespace().next().unwrap_or("");
        returns.push(ArgType::parse(ty).ok_or_else(|| format!("unknown return type `{r}`"))?);
    }
    if returns.is_empty() {
        return Err("an operator must return something".to_string());
    }
    Ok(OpSchema { name: name.to_string(), args, returns })
}

/// How closely two kernels of an op must agree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// Bit for bit (the default).
    Exact,
    /// Quantized results within this many integer steps; float results exact.
    Steps(i64),
    /// Float results within `abs + rel * |expected|`; quantized results exact.
    Float {
        /// Absolute part.
        abs: f64,
        /// Relative part.
        rel: f64,
    },
}

impl Tolerance {
    /// Parses `exact`, `steps N` or `abs A rel R`.
    pub fn parse(s: &str) -> Result<Tolerance, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let num = |w: &str| w.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
        match words.as_slice() {
            [] | ["exact"] => Ok(Tolerance::Exact),
            ["steps", n] => n
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Tolerance::Steps)
                .ok_or_else(|| format!("invalid step count `{n}`")),
            ["abs", a, "rel", r] => match (num(a), num(r)) {
                (Some(abs), Some(rel)) => Ok(Tolerance::Float { abs, rel }),
                _ => Err(format!("invalid tolerance numbers in `{s}`")),
            },
            _ => Err(format!("invalid tolerance `{s}` (expected `exact`, `steps N` or `abs A rel R`)")),
        }
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tolerance::Exact => f.write_str("exact"),
            Tolerance::Steps(n) => write!(f, "steps {n}"),
            Tolerance::Float { abs, rel } => write!(f, "abs {abs} rel {rel}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemas() -> Result<(), Box<dyn std::error::Error>> {
        let s = parse_schema("quantized::add(Tensor qa, Tensor qb, float scale, int zero_point) -> Tensor")?;
        assert_eq!(s.name, "quantized::add");
        assert_eq!(s.namespace(), "quantized");
        assert_eq!(s.base_name(), "add");
        assert_eq!(s.args.len(), 4);
        assert_eq!(s.args[2].ty, ArgType::Float);
        assert_eq!(s.returns, vec![ArgType::Tensor]);
        let s =
            parse_schema("max_pool2d(Tensor self, int[2] kernel_size, Tensor[] xs, ScalarType? d) -> (Tensor, int)")?;
        assert_eq!(s.args[1].ty, ArgType::IntList(Some(2)));
        assert_eq!(s.returns, vec![ArgType::Tensor, ArgType::Int]);
        assert_eq!(
            s.to_string(),
            "max_pool2d(Tensor self, int[2] kernel_size, Tensor[] xs, ScalarType? d) -> (Tensor, int)"
        );
        Ok(())
    }

    #[test]
    fn parses_overloads_defaults_and_classes() -> Result<(), Box<dyn std::error::Error>> {
        let s = parse_schema(
            "quantized::conv2d.new(Tensor qx, Conv2dPackedParamsBase w, int[2] padding=[0, 0], float? s=None) -> Tensor",
        )?;
        assert_eq!((s.op_name(), s.overload(), s.base_name()), ("quantized::conv2d", "new", "conv2d.new"));
        assert_eq!(s.constant_name(), "CONV2D_NEW");
        assert_eq!(
            parse_schema("prim::NumToTensor.Scalar(Scalar a) -> Tensor")?.constant_name(),
            "NUM_TO_TENSOR_SCALAR"
        );
        assert_eq!(parse_schema("__not__(bool a) -> bool")?.constant_name(), "__NOT__");
        assert_eq!(s.args[1].ty, ArgType::Object(ScriptClass::Conv2dPackedParams));
        assert_eq!(s.args[2].default.as_deref(), Some("[0, 0]"));
        assert_eq!(s.args[3].default.as_deref(), Some("None"));
        assert_eq!(
            s.to_string(),
            "quantized::conv2d.new(Tensor qx, Conv2dPackedParamsBase w, int[2] padding=[0, 0], float? s=None) -> Tensor"
        );
        let s = parse_schema("len.t(t[] a) -> int")?;
        assert_eq!((s.op_name(), s.args[0].ty), ("len", ArgType::AnyList));
        Ok(())
    }

    #[test]
    fn rejects_bad_schemas() {
        assert!(parse_schema("relu(Tensor self) Tensor").unwrap_err().contains("->"));
        assert!(parse_schema("relu(Tensr self) -> Tensor").unwrap_err().contains("Tensr"));
        assert!(parse_schema("relu(Tensor self, Tensor self) -> Tensor").is_err());
        assert!(parse_schema("a::b::c(Tensor self) -> Tensor").is_err());
        assert!(parse_schema("a::b.(Tensor self) -> Tensor").is_err());
        assert!(parse_schema("f(Tensor self, int a=1, int b) -> Tensor").unwrap_err().contains("follows"));
        assert!(parse_schema("relu(Tensor self) -> Tensr").is_err());
    }
}
