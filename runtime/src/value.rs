//! The boxed calling convention: [`Value`] (PyTorch's IValue) and the
//! conversions between values and typed kernel parameters.

use crate::dtype::DType;
use crate::schema::{ArgType, ScriptClass};
use crate::tensor::Tensor;
use smallvec::SmallVec;

/// A boxed argument or result of an operator call.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// A string (also a `Device`: `"cpu"`).
    Str(String),
    /// A custom-class object: packed weights (c10's torchbind objects).
    Object(ScriptObject),
    /// A list of anything else: floats, objects, mixed values.
    List(Vec<Value>),
    /// A tuple: several results, or a TorchScript tuple or NamedTuple.
    Tuple(Vec<Value>),
}

/// A custom-class object (c10's `ivalue::Object` of a torchbind class):
/// its class and its data, shared.
#[derive(Clone)]
pub struct ScriptObject {
    class: ScriptClass,
    data: std::sync::Arc<dyn std::any::Any + Send + Sync>,
}

impl ScriptObject {
    /// Boxes `data` as an object of `class`.
    pub fn new<T: std::any::Any + Send + Sync>(class: ScriptClass, data: T) -> Self {
        ScriptObject { class, data: std::sync::Arc::new(data) }
    }

    /// The object's class.
    pub fn class(&self) -> ScriptClass {
        self.class
    }

    /// The data, if it is a `T`.
    pub fn downcast_ref<T: std::any::Any>(&self) -> Option<&T> {
        self.data.downcast_ref()
    }
}

impl std::fmt::Debug for ScriptObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} object", self.class.name())
    }
}

/// PyTorch's `Scalar`: a number an op takes where a tensor could also
/// stand (`mul.Scalar`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// An int.
    Int(i64),
    /// A float.
    Float(f64),
    /// A bool.
    Bool(bool),
}

impl Scalar {
    /// The value as f64 (`true` is 1).
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
            Scalar::Bool(b) => b as i64 as f64,
        }
    }
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
            Value::Object(o) => o.class().name().into(),
            Value::List(items) => format!("list of {}", items.len()),
            Value::Tuple(items) => {
                let types: Vec<String> = items.iter().map(Value::type_name).collect();
                format!("({})", types.join(", "))
            }
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
            (ArgType::Str | ArgType::Device, Value::Str(_)) => true,
            (ArgType::OptionalStr, Value::Str(_) | Value::None) => true,
            (ArgType::NoneType, Value::None) => true,
            (ArgType::OptionalBool, Value::Bool(_) | Value::None) => true,
            (ArgType::OptionalIntList, Value::IntList(_) | Value::None) => true,
            (ArgType::OptionalFloatList, Value::None) => true,
            (ArgType::OptionalFloatList, _) => self.matches(ArgType::FloatList),
            (ArgType::OptionalDevice, Value::Str(_) | Value::None) => true,
            (ArgType::TensorTuple(n), Value::Tuple(items)) => {
                items.len() == n && items.iter().all(|v| matches!(v, Value::Tensor(_)))
            }
            (ArgType::Scalar, Value::Int(_) | Value::Float(_) | Value::Bool(_)) => true,
            (ArgType::FloatList, Value::List(items)) => {
                items.iter().all(|v| matches!(v, Value::Float(_) | Value::Int(_)))
            }
            (ArgType::FloatList, Value::IntList(_)) => true,
            (ArgType::AnyList, Value::IntList(_) | Value::TensorList(_) | Value::List(_)) => true,
            (ArgType::Object(c), Value::Object(o)) => o.class() == c,
            (ArgType::ObjectList(c), Value::List(items)) => {
                items.iter().all(|v| matches!(v, Value::Object(o) if o.class() == c))
            }
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
impl From<&Value> for Value {
    fn from(v: &Value) -> Self {
        v.clone()
    }
}
impl From<Scalar> for Value {
    fn from(v: Scalar) -> Self {
        match v {
            Scalar::Int(i) => Value::Int(i),
            Scalar::Float(f) => Value::Float(f),
            Scalar::Bool(b) => Value::Bool(b),
        }
    }
}
impl From<&[f64]> for Value {
    fn from(v: &[f64]) -> Self {
        Value::List(v.iter().map(|&x| Value::Float(x)).collect())
    }
}
impl From<Option<&[i64]>> for Value {
    fn from(v: Option<&[i64]>) -> Self {
        v.map_or(Value::None, Value::from)
    }
}
impl From<Option<&[f64]>> for Value {
    fn from(v: Option<&[f64]>) -> Self {
        v.map_or(Value::None, Value::from)
    }
}
impl From<Option<bool>> for Value {
    fn from(v: Option<bool>) -> Self {
        v.map_or(Value::None, Value::Bool)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Value::None, Value::from)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}

/// The numbers of a `float[]` value (a list of floats and ints, or an int list).
fn float_list(v: &Value) -> Option<Vec<f64>> {
    match v {
        Value::List(items) => items.iter().map(Value::as_f64).collect(),
        Value::IntList(l) => Some(l.iter().map(|&i| i as f64).collect()),
        _ => None,
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
    Option<&'a str> => ArgType::OptionalStr, |v| match v { Value::Str(s) => Some(Some(s.as_str())), Value::None => Some(None), _ => None };
    Option<&'a [i64]> => ArgType::OptionalIntList, |v| match v { Value::IntList(l) => Some(Some(l.as_slice())), Value::None => Some(None), _ => None };
    Vec<f64> => ArgType::FloatList, |v| float_list(v);
    Option<Vec<f64>> => ArgType::OptionalFloatList, |v| match v { Value::None => Some(None), other => float_list(other).map(Some) };
    Option<bool> => ArgType::OptionalBool, |v| match v { Value::Bool(b) => Some(Some(*b)), Value::None => Some(None), _ => None };
    Scalar => ArgType::Scalar, |v| match v {
        Value::Int(i) => Some(Scalar::Int(*i)),
        Value::Float(x) => Some(Scalar::Float(*x)),
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        _ => None
    };
    &'a Value => ArgType::AnyList, |v| matches!(v, Value::IntList(_) | Value::TensorList(_) | Value::List(_)).then_some(v);
}

impl<'a, T: ScriptClassData> FromArg<'a> for Vec<&'a T> {
    const KIND: ArgType = ArgType::ObjectList(T::CLASS);
    fn from_arg(v: &'a Value) -> Option<Self> {
        match v {
            Value::List(items) => items.iter().map(<&T as FromArg>::from_arg).collect(),
            _ => None,
        }
    }
}

/// A typed kernel parameter for a custom-class object: implement it for
/// the object's data type, and `&T` becomes a kernel parameter of the
/// class's schema type.
pub trait ScriptClassData: std::any::Any + Send + Sync {
    /// The class whose objects hold this data.
    const CLASS: ScriptClass;
}

impl<'a, T: ScriptClassData> FromArg<'a> for &'a T {
    const KIND: ArgType = ArgType::Object(T::CLASS);
    fn from_arg(v: &'a Value) -> Option<Self> {
        match v {
            Value::Object(o) if o.class() == T::CLASS => o.downcast_ref(),
            _ => None,
        }
    }
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

impl IntoReturn for () {
    const KIND: ArgType = ArgType::NoneType;
    fn into_value(self) -> Value {
        Value::None
    }
}

impl IntoReturn for (Tensor, Tensor, Tensor) {
    const KIND: ArgType = ArgType::TensorTuple(3);
    fn into_value(self) -> Value {
        Value::Tuple(vec![Value::Tensor(self.0), Value::Tensor(self.1), Value::Tensor(self.2)])
    }
}

impl IntoReturn for String {
    /// A string result; also a `Device` (its name).
    const KIND: ArgType = ArgType::Str;
    fn into_value(self) -> Value {
        Value::Str(self)
    }
}

impl FromReturn for String {
    fn from_return(op: &str, v: Value) -> crate::Result<Self> {
        match v {
            Value::Str(s) => Ok(s),
            other => Err(crate::Error::invalid(
                op,
                format!("kernel returned {} where the schema says str", other.type_name()),
            )),
        }
    }
}

impl IntoReturn for Vec<i64> {
    const KIND: ArgType = ArgType::IntList(None);
    fn into_value(self) -> Value {
        Value::IntList(self.into())
    }
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

impl FromReturn for Vec<i64> {
    fn from_return(op: &str, v: Value) -> crate::Result<Self> {
        match v {
            Value::IntList(l) => Ok(l.to_vec()),
            other => Err(crate::Error::invalid(
                op,
                format!("kernel returned {} where the schema says int[]", other.type_name()),
            )),
        }
    }
}

impl FromReturn for () {
    fn from_return(op: &str, v: Value) -> crate::Result<Self> {
        match v {
            Value::None => Ok(()),
            other => Err(crate::Error::invalid(
                op,
                format!("kernel returned {} where the schema says NoneType", other.type_name()),
            )),
        }
    }
}

impl FromReturn for (Tensor, Tensor, Tensor) {
    fn from_return(op: &str, v: Value) -> crate::Result<Self> {
        let bad = |got: String| {
            crate::Error::invalid(op, format!("kernel returned {got} where the schema says (Tensor, Tensor, Tensor)"))
        };
        match v {
            Value::Tuple(items) if items.len() == 3 => {
                let mut it = items.into_iter().map(Value::into_tensor);
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Ok((a, b, c)),
                    _ => Err(bad("a tuple of other values".into())),
                }
            }
            other => Err(bad(other.type_name())),
        }
    }
}
