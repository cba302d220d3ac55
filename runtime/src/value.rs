//! The boxed calling convention: [`Value`] (PyTorch's IValue) and the
//! conversions between values and typed kernel parameters.

use crate::dtype::DType;
use crate::schema::ArgType;
use crate::tensor::Tensor;
use smallvec::SmallVec;

/// A boxed argument or result of an operator call.
#[derive(Debug, Clone)]
pub enum Value {
    /// No value: an absent `Tensor?`, `float?`, `int?` or `ScalarType?`.
    None,
    /// A tensor.
    Tensor(Tensor),
    /// A list of tensors.
    TensorList(Vec<Tensor>),
    /// A float.
    Float(f64),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list of integers.
    IntList(SmallVec<[i64; 4]>),
    /// A dtype.
    ScalarType(DType),
    /// A string.
    Str(String),
}

impl Value {
    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Tensor(t) => format!("Tensor({})", t.describe()),
            Value::TensorList(ts) => format!("Tensor[] of {}", ts.len()),
            Value::Float(_) => "float".into(),
            Value::Int(_) => "int".into(),
            Value::Bool(_) => "bool".into(),
            Value::IntList(l) => format!("int[{}]", l.len()),
            Value::ScalarType(_) => "ScalarType".into(),
            Value::Str(_) => "str".into(),
        }
    }

    /// True when this value can be passed where the schema says `ty`.
    pub fn matches(&self, ty: ArgType) -> bool {
        match (ty, self) {
            (ArgType::Tensor, Value::Tensor(_)) => true,
            (ArgType::OptionalTensor, Value::Tensor(_) | Value::None) => true,
            (ArgType::TensorList, Value::TensorList(_)) => true,
            (ArgType::Float, Value::Float(_) | Value::Int(_)) => true,
            (ArgType::OptionalFloat, Value::Float(_) | Value::Int(_) | Value::None) => true,
            (ArgType::Int, Value::Int(_)) => true,
            (ArgType::OptionalInt, Value::Int(_) | Value::None) => true,
            (ArgType::IntList(None), Value::IntList(_)) => true,
            (ArgType::IntList(Some(n)), Value::IntList(l)) => l.len() == n,
            (ArgType::Bool, Value::Bool(_)) => true,
            (ArgType::ScalarType, Value::ScalarType(_)) => true,
            (ArgType::OptionalScalarType, Value::ScalarType(_) | Value::None) => true,
            (ArgType::Str, Value::Str(_)) => true,
            _ => false,
        }
    }

    /// The tensor inside, if any.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// The number inside, if this is a `Float` or an `Int` (as f64).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The integer inside, if this is an `Int`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(v),
            _ => None,
        }
    }

    /// Takes the tensor out of a result.
    pub fn into_tensor(self) -> crate::Result<Tensor> {
        match self {
            Value::Tensor(t) => Ok(t),
            other => Err(crate::Error::invalid(
                "Value::into_tensor",
                format!("expected a Tensor, got {}", other.type_name()),
            )),
        }
    }
}

impl From<Tensor> for Value {
    fn from(t: Tensor) -> Self {
        Value::Tensor(t)
    }
}
impl From<&Tensor> for Value {
    fn from(t: &Tensor) -> Self {
        Value::Tensor(t.clone())
    }
}
impl From<Option<&Tensor>> for Value {
    fn from(t: Option<&Tensor>) -> Self {
        t.map_or(Value::None, |t| Value::Tensor(t.clone()))
    }
}
impl From<&[Tensor]> for Value {
    fn from(t: &[Tensor]) -> Self {
        Value::TensorList(t.to_vec())
    }
}
impl From<Vec<Tensor>> for Value {
    fn from(t: Vec<Tensor>) -> Self {
        Value::TensorList(t)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<Option<f64>> for Value {
    fn from(v: Option<f64>) -> Self {
        v.map_or(Value::None, Value::Float)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::None, Value::Int)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&[i64]> for Value {
    fn from(v: &[i64]) -> Self {
        Value::IntList(v.into())
    }
}
impl<const N: usize> From<[i64; N]> for Value {
    fn from(v: [i64; N]) -> Self {
        Value::IntList(v.as_slice().into())
    }
}
impl From<DType> for Value {
    fn from(v: DType) -> Self {
        Value::ScalarType(v)
    }
}
impl From<Option<DType>> for Value {
    fn from(v: Option<DType>) -> Self {
        v.map_or(Value::None, Value::ScalarType)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}

/// A typed kernel parameter that can be read out of a boxed [`Value`].
///
/// `KIND` is the schema type the parameter stands for; the registry checks
/// it against the op's schema when the kernel is registered.
pub trait FromArg<'a>: Sized {
    /// The schema type this parameter accepts.
    const KIND: ArgType;
    /// Reads the parameter; `None` when the value has another type.
    fn from_arg(v: &'a Value) -> Option<Self>;
}

macro_rules! from_arg {
    ($($t:ty => $kind:expr, |$v:ident| $body:expr;)*) => {$(
        impl<'a> FromArg<'a> for $t {
            const KIND: ArgType = $kind;
            #[inline]
            fn from_arg($v: &'a Value) -> Option<Self> {
                $body
            }
        }
    )*};
}

from_arg! {
    &'a Tensor => ArgType::Tensor, |v| match v { Value::Tensor(t) => Some(t), _ => None };
    Option<&'a Tensor> => ArgType::OptionalTensor, |v| match v { Value::Tensor(t) => Some(Some(t)), Value::None => Some(None), _ => None };
    &'a [Tensor] => ArgType::TensorList, |v| match v { Value::TensorList(t) => Some(t.as_slice()), _ => None };
    f64 => ArgType::Float, |v| match v { Value::Float(x) => Some(*x), Value::Int(i) => Some(*i as f64), _ => None };
    Option<f64> => ArgType::OptionalFloat, |v| match v { Value::Float(x) => Some(Some(*x)), Value::Int(i) => Some(Some(*i as f64)), Value::None => Some(None), _ => None };
    i64 => ArgType::Int, |v| match v { Value::Int(i) => Some(*i), _ => None };
    Option<i64> => ArgType::OptionalInt, |v| match v { Value::Int(i) => Some(Some(*i)), Value::None => Some(None), _ => None };
    &'a [i64] => ArgType::IntList(None), |v| match v { Value::IntList(l) => Some(l.as_slice()), _ => None };
    bool => ArgType::Bool, |v| match v { Value::Bool(b) => Some(*b), _ => None };
    DType => ArgType::ScalarType, |v| match v { Value::ScalarType(d) => Some(*d), _ => None };
    Option<DType> => ArgType::OptionalScalarType, |v| match v { Value::ScalarType(d) => Some(Some(*d)), Value::None => Some(None), _ => None };
    &'a str => ArgType::Str, |v| match v { Value::Str(s) => Some(s.as_str()), _ => None };
}

/// A typed kernel result that can be boxed into a [`Value`].
pub trait IntoReturn {
    /// The schema return type.
    const KIND: ArgType;
    /// Boxes the result.
    fn into_value(self) -> Value;
}

macro_rules! into_return {
    ($($t:ty => $kind:expr, $variant:ident;)*) => {$(
        impl IntoReturn for $t {
            const KIND: ArgType = $kind;
            #[inline]
            fn into_value(self) -> Value {
                Value::$variant(self)
            }
        }
    )*};
}

into_return! {
    Tensor => ArgType::Tensor, Tensor;
    Vec<Tensor> => ArgType::TensorList, TensorList;
    f64 => ArgType::Float, Float;
    i64 => ArgType::Int, Int;
    bool => ArgType::Bool, Bool;
    DType => ArgType::ScalarType, ScalarType;
}

/// The reverse of [`IntoReturn`]: unboxes an operator's result for the
/// typed functions.
pub trait FromReturn: Sized {
    /// Unboxes `v`, the result of `op`.
    fn from_return(op: &str, v: Value) -> crate::Result<Self>;
}

macro_rules! from_return {
    ($($t:ty => $variant:ident;)*) => {$(
        impl FromReturn for $t {
            fn from_return(op: &str, v: Value) -> crate::Result<Self> {
                match v {
                    Value::$variant(x) => Ok(x),
                    other => Err(crate::Error::invalid(op, format!("kernel returned {} where the schema says {}", other.type_name(), <$t as IntoReturn>::KIND))),
                }
            }
        }
    )*};
}

from_return! {
    Tensor => Tensor;
    Vec<Tensor> => TensorList;
    f64 => Float;
    i64 => Int;
    bool => Bool;
    DType => ScalarType;
}
