//! The one error type of qtensor.
//!
//! Every public function returns [`Result`]. The variants are structured so
//! that callers (and tests) can match on what went wrong, and their messages
//! name the op, the dtypes and what to do about it.

use crate::dispatch_key::DispatchKey;
use crate::dtype::DType;

/// Shorthand for `std::result::Result<T, qtensor::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in qtensor.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No operator of that name is registered.
    #[error("unknown operator `{name}`{}", suggest(.similar))]
    UnknownOp {
        /// The name that was asked for.
        name: String,
        /// Registered names that look alike.
        similar: Vec<String>,
    },

    /// No kernel is registered for this (op, key, dtype).
    #[error("{op}: no kernel for ({key}, {dtype}); kernels exist for: {}{}", list_pairs(.available), hint(.op, *.key, .available))]
    NoKernel {
        /// The operator.
        op: String,
        /// The dispatch key computed from the arguments.
        key: DispatchKey,
        /// The dtype computed from the arguments.
        dtype: DType,
        /// The (key, dtype) pairs that do have a kernel.
        available: Vec<(DispatchKey, DType)>,
    },

    /// The call had the wrong number of arguments.
    #[error("{op}: expected {expected} argument{} ({schema}), got {got}", if *.expected == 1 { "" } else { "s" })]
    ArgCount {
        /// The operator.
        op: String,
        /// The schema, for reference.
        schema: String,
        /// How many the schema wants.
        expected: usize,
        /// How many were passed.
        got: usize,
    },

    /// An argument had the wrong type for the schema.
    #[error("{op}: argument {index} `{name}` must be {expected}, got {got}")]
    ArgType {
        /// The operator.
        op: String,
        /// Position of the argument.
        index: usize,
        /// Name of the argument in the schema.
        name: String,
        /// What the schema wants.
        expected: String,
        /// What was passed.
        got: String,
    },

    /// A schema string or ops.yaml entry is malformed.
    #[error("schema error{}: {message}", at_line(*.line))]
    Schema {
        /// 1-based line in ops.yaml, when the schema came from a file.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },

    /// A kernel registration was rejected (signature mismatch, duplicate, unknown op).
    #[error("kernel `{kernel}` for {op}: {message}")]
    Registration {
        /// The operator.
        op: String,
        /// The kernel's name.
        kernel: String,
        /// Why it was rejected.
        message: String,
    },

    /// Every registration the registry rejected, from
    /// [`Dispatcher::check`](crate::Dispatcher::check).
    #[error("{} kernel registration(s) rejected:\n{}", errors.len(), errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    RejectedRegistrations {
        /// Each rejection, in the order the registry saw them.
        errors: Vec<Error>,
    },

    /// Two operands have dtypes that cannot be combined.
    #[error("{op}: dtype mismatch: {lhs} vs {rhs}")]
    DTypeMismatch {
        /// The operator.
        op: String,
        /// The first operand's dtype.
        lhs: DType,
        /// The second operand's dtype.
        rhs: DType,
    },

    /// The op wants a different dtype than it was given.
    #[error("{op}: expected {expected}, got {got}{}", dtype_hint(.expected, *.got))]
    WrongDType {
        /// The operator.
        op: String,
        /// What is accepted, in words ("a float tensor", "quint8").
        expected: String,
        /// What was given.
        got: DType,
    },

    /// A shape, size or numel is invalid for the op.
    #[error("{op}: {message}")]
    Shape {
        /// The operator.
        op: String,
        /// What is wrong.
        message: String,
    },

    /// A dimension index is out of range.
    #[error("{op}: dimension {dim} out of range for a tensor of {ndim} dimensions (expected in [{}, {}])", -(*.ndim.max(&1) as i64), (*.ndim.max(&1) as i64) - 1)]
    DimOutOfRange {
        /// The operator.
        op: String,
        /// The dimension that was asked for.
        dim: i64,
        /// The tensor's number of dimensions.
        ndim: usize,
    },

    /// An index is out of range.
    #[error("{op}: index {index} out of range for dimension {dim} of size {size}")]
    IndexOutOfRange {
        /// The operator.
        op: String,
        /// The index that was asked for.
        index: i64,
        /// The dimension.
        dim: usize,
        /// The dimension's size.
        size: usize,
    },

    /// Quantization parameters are invalid (scale, zero point, axis, lengths).
    #[error("{op}: invalid quantization parameters: {message}")]
    QParams {
        /// The operator.
        op: String,
        /// What is wrong.
        message: String,
    },

    /// A buffer could not be allocated, or its size overflows.
    #[error("cannot allocate {bytes} bytes for a tensor of {numel} elements")]
    Alloc {
        /// Requested elements.
        numel: u128,
        /// Requested bytes.
        bytes: u128,
    },

    /// A file could not be read or written, or its contents are invalid.
    #[error("serialization: {0}")]
    Serialization(String),

    /// An I/O error.
    #[error("I/O: {0}")]
    Io(String),

    /// A model raised an exception (`prim::RaiseException`): one of its
    /// own checks failed on this input.
    #[error("the model raised {}: {message}", .class.as_deref().unwrap_or("an exception"))]
    Raised {
        /// The exception's class (`builtins.ValueError`), when the model names one.
        class: Option<String>,
        /// The model's message.
        message: String,
    },

    /// A TorchScript file's code could not be loaded or run: the file, the
    /// line and what is wrong there.
    #[error("{file}:{line}: {message}")]
    Script {
        /// The code file inside the archive (`code/__torch__/model.py`).
        file: String,
        /// The 1-based line.
        line: usize,
        /// What is wrong (the construct or the op, and why).
        message: String,
    },

    /// A kernel does not take this input (a zero point its vector code
    /// cannot hold, a layout it has no loop for): the dispatcher moves on
    /// to the kernel of the next lower priority. A kernel returns it
    /// before it writes anything, and only a call whose every kernel
    /// declines sees it, as a bug report: reference kernels never decline.
    #[error("every kernel declined the input; the last said: {reason}")]
    Declined {
        /// Why the kernel declined, for a bug report.
        reason: &'static str,
    },

    /// Anything else, with the op it came from.
    #[error("{op}: {message}")]
    Invalid {
        /// The operator or function.
        op: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// An [`Error::Invalid`] from anything printable.
    pub fn invalid(op: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { op: op.into(), message: message.into() }
    }

    /// An [`Error::Declined`]: this kernel leaves the input to the next one.
    pub fn declined(reason: &'static str) -> Self {
        Error::Declined { reason }
    }

    /// An [`Error::Shape`] from anything printable.
    pub fn shape(op: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Shape { op: op.into(), message: message.into() }
    }

    /// An [`Error::QParams`] from anything printable.
    pub fn qparams(op: impl Into<String>, message: impl Into<String>) -> Self {
        Error::QParams { op: op.into(), message: message.into() }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

fn suggest(similar: &[String]) -> String {
    if similar.is_empty() {
        "; if a plugin crate provides it, call that crate's `link()` (or use any of its items) so that the \
         linker keeps its registrations, and check that its declaration is submitted"
            .into()
    } else {
        format!("; did you mean {}?", similar.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" or "))
    }
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" at ops.yaml line {l}")).unwrap_or_default()
}

fn list_pairs(pairs: &[(DispatchKey, DType)]) -> String {
    if pairs.is_empty() {
        "none".to_string()
    } else {
        pairs.iter().map(|(k, d)| format!("({k}, {d})")).collect::<Vec<_>>().join(", ")
    }
}

/// The two complaints users hit most: a float tensor given to a quantized op,
/// and the reverse. Say exactly what to do.
fn hint(op: &str, key: DispatchKey, available: &[(DispatchKey, DType)]) -> String {
    let wants_quantized = op.starts_with("quantized::")
        || (!available.is_empty() && available.iter().all(|(k, _)| *k == DispatchKey::QuantizedCPU));
    let wants_float = !available.is_empty() && available.iter().all(|(k, _)| *k == DispatchKey::CPU);
    if key == DispatchKey::CPU && wants_quantized {
        ". This op takes quantized tensors: quantize the input first (e.g. `ops::quantize_per_tensor(&x, scale, zero_point, DType::QUInt8)`)".to_string()
    } else if key == DispatchKey::QuantizedCPU && wants_float {
        ". This op takes float tensors: dequantize the input first (`ops::dequantize(&q)`)".to_string()
    } else {
        String::new()
    }
}

fn dtype_hint(expected: &str, got: DType) -> String {
    let expected = expected.to_ascii_lowercase();
    if got.is_quantized() && expected.contains("float") {
        "; dequantize it first".to_string()
    } else if !got.is_quantized() && expected.contains("quantized") {
        "; quantize it first".to_string()
    } else {
        String::new()
    }
}
