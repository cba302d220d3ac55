//! Kernel and operator registration: the descriptors that `inventory`
//! collects, and the [`register_kernel!`](crate::register_kernel) macro that
//! turns a typed Rust function into one.

use crate::dispatch_key::DispatchKey;
use crate::dtype::DType;
use crate::error::Result;
use crate::schema::ArgType;
use crate::value::Value;

/// The boxed calling convention every kernel is wrapped into.
pub type BoxedKernel = fn(&[Value]) -> Result<Value>;

/// A kernel's rank among the kernels of one (op, key, dtype): the
/// dispatcher chooses the highest-ranked kernel this CPU supports.
///
/// Kernels sit in named tiers, lowest first:
///
/// - [`Priority::REFERENCE`]: the op's reference kernel, safe scalar Rust
///   that defines the numerics. Exactly this tier marks a kernel as the
///   reference: the kernel checks hold every other kernel against it.
/// - [`Priority::PORTABLE`]: portable Rust that is faster on any CPU.
/// - [`Priority::ISA`]: kernels for one instruction set (AVX2, NEON, ...);
///   [`Priority::raised`] orders the levels within the tier (AVX-512 VNNI
///   above AVX2).
/// - [`Priority::PLUGIN`]: kernels from other crates, which win over the
///   built-in ones when they support the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(i32);

impl Priority {
    /// The reference kernel of an op.
    pub const REFERENCE: Priority = Priority(0);
    /// Portable kernels, faster than the reference on any CPU.
    pub const PORTABLE: Priority = Priority(100);
    /// Kernels for one instruction set.
    pub const ISA: Priority = Priority(200);
    /// Kernels from plugin crates.
    pub const PLUGIN: Priority = Priority(300);

    /// `steps` ranks above this tier's base, for kernels that must outrank
    /// others of the same tier. At most 99, so a kernel never leaves its
    /// tier: larger values are clamped.
    pub const fn raised(self, steps: u8) -> Priority {
        let steps = if steps > 99 { 99 } else { steps };
        Priority(self.0 + steps as i32)
    }

    /// True for the reference tier's base rank, which marks an op's
    /// reference kernel.
    pub const fn is_reference(self) -> bool {
        self.0 == Priority::REFERENCE.0
    }

    /// The numeric rank (higher wins).
    pub const fn rank(self) -> i32 {
        self.0
    }

    /// The tier's name: `reference`, `portable`, `isa` or `plugin`.
    pub const fn tier(self) -> &'static str {
        match self.0 / 100 {
            0 => "reference",
            1 => "portable",
            2 => "isa",
            _ => "plugin",
        }
    }
}

impl std::fmt::Display for Priority {
    /// `isa+1`: the tier, and the steps above its base when there are any.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps = self.0 % 100;
        let text = if steps == 0 { self.tier().to_string() } else { format!("{}+{steps}", self.tier()) };
        f.pad(&text)
    }
}

/// A kernel: which (op, key, dtype) it serves, how it ranks, and its code.
///
/// Build one with [`register_kernel!`](crate::register_kernel), which fills
/// `signature` and `returns` from the typed function so that the registry
/// can check them against the op's schema.
#[derive(Clone, Copy)]
pub struct KernelDescriptor {
    /// The operator's full name (`quantized::add`).
    pub op: &'static str,
    /// The dispatch key served.
    pub key: DispatchKey,
    /// The dtype served (of the first tensor argument).
    pub dtype: DType,
    /// A name that says what the kernel is (`avx2_quantize_u8`).
    pub name: &'static str,
    /// Higher wins among supported kernels of the same (op, key, dtype);
    /// [`Priority::REFERENCE`] marks the op's reference kernel.
    pub priority: Priority,
    /// Whether this CPU can run the kernel (checked once, at resolution).
    pub is_supported: fn() -> bool,
    /// The schema types of the typed function's parameters.
    pub signature: &'static [ArgType],
    /// The schema type of the typed function's result.
    pub returns: ArgType,
    /// The boxed entry point.
    pub func: BoxedKernel,
    /// Where the kernel was registered (`file:line`), for error messages.
    pub location: &'static str,
}

impl std::fmt::Debug for KernelDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelDescriptor")
            .field("op", &self.op)
            .field("key", &self.key)
            .field("dtype", &self.dtype)
            .field("name", &self.name)
            .field("priority", &self.priority)
            .field("location", &self.location)
            .finish()
    }
}

inventory::collect!(KernelDescriptor);

/// An operator declaration: its schema string and documentation.
///
/// `build.rs` emits one per `ops.yaml` entry; plugins submit their own.
#[derive(Debug, Clone, Copy)]
pub struct OpDeclaration {
    /// The schema, e.g. `myplugin::clamp_q(Tensor self, float min, float max) -> Tensor`.
    pub schema: &'static str,
    /// What the op does.
    pub doc: &'static str,
    /// Where it was declared (`ops.yaml:12`, a crate name, ...).
    pub source: &'static str,
    /// How closely its kernels must agree: `exact`, `steps N` or `abs A rel R`.
    pub tolerance: &'static str,
}

inventory::collect!(OpDeclaration);

/// An `is_supported` predicate for kernels that run everywhere.
pub fn always_supported() -> bool {
    true
}

/// Registers a typed kernel function for one or more dtypes.
///
/// ```no_run
/// use qtensor_runtime::{register_kernel, Priority, Result, Tensor};
///
/// /// relu that keeps every value at or above the zero point.
/// fn my_relu(x: &Tensor) -> Result<Tensor> {
///     let q = x.require_quantizer("relu")?;
///     let zero_point = q.channel_qparams(0).1;
///     let ints: Vec<u8> = x.int_values()?.iter().map(|&v| v.max(zero_point) as u8).collect();
///     Tensor::from_int_repr(&Tensor::from_vec(ints, x.sizes())?, &q)
/// }
///
/// register_kernel! {
///     op: qtensor_runtime::ops::RELU, dtypes: [QUInt8],
///     name: "my_relu", priority: Priority::PLUGIN,
///     fn my_relu(x: &Tensor) -> Tensor
/// }
/// ```
///
/// The parameter list repeats the function's types: the compiler checks it
/// against the function, and the registry checks it against the op's schema.
/// `is_supported: some_fn,` may follow `priority` for ISA-specific kernels.
/// The dispatch key follows from each dtype (`QuantizedCPU` for quantized
/// dtypes, `CPU` otherwise) unless `key: Name,` follows `op`.
///
/// Several kernels that share dtypes and priority register in one block,
/// each named after its function (or `as "name"`):
///
/// ```no_run
/// use qtensor_runtime::{ops, register_kernel, Priority, Result, Tensor};
///
/// fn my_hardsigmoid(x: &Tensor) -> Result<Tensor> {
///     Err(qtensor_runtime::Error::invalid("hardsigmoid", format!("{} is not handled here", x.describe())))
/// }
/// fn my_relu6(x: &Tensor) -> Result<Tensor> {
///     Err(qtensor_runtime::Error::invalid("relu6", format!("{} is not handled here", x.describe())))
/// }
///
/// register_kernel! {
///     dtypes: [QUInt8, QInt8],
///     priority: Priority::PLUGIN,
///     kernels: {
///         ops::HARDSIGMOID => my_hardsigmoid(x: &Tensor) -> Tensor,
///         ops::RELU6 => my_relu6(x: &Tensor) -> Tensor as "my_relu6_kernel",
///     }
/// }
/// ```
///
/// A function whose first parameter selects a fused variant serves both
/// ops from one signature, each op passing its value first:
///
/// ```no_run
/// use qtensor_runtime::{ops, register_kernel, Priority, Result, Tensor};
///
/// /// linear, fused with relu when `relu`.
/// fn my_linear(relu: bool, x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
///     let op = if relu { ops::quantized::LINEAR_RELU } else { ops::quantized::LINEAR };
///     Err(qtensor_runtime::Error::invalid(op, format!("{} x {} is not handled here", x.describe(), w.describe())))
/// }
///
/// register_kernel! {
///     dtypes: [QUInt8],
///     priority: Priority::PLUGIN,
///     variants: {
///         fn my_linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Tensor {
///             ops::quantized::LINEAR => (false, "my_linear"),
///             ops::quantized::LINEAR_RELU => (true, "my_linear_relu"),
///         }
///     }
/// }
/// ```
#[macro_export]
macro_rules! register_kernel {
    (
        op: $op:expr,
        $(key: $key:ident,)?
        dtypes: [$($dt:ident),+ $(,)?],
        name: $name:expr,
        priority: $prio:expr,
        $(is_supported: $sup:expr,)?
        fn $($f:ident)::+ ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty
    ) => {
        const _: () = {
            const __KEY: ::core::option::Option<$crate::DispatchKey> = $crate::register_kernel!(@key $($key)?);
            // One boxed wrapper, shared by the descriptors of every dtype.
            const __TEMPLATE: $crate::KernelDescriptor = $crate::kernel_descriptor! {
                op: $op,
                key: $crate::DispatchKey::CPU,
                dtype: $crate::DType::Float32,
                name: $name,
                priority: $prio,
                is_supported: $crate::register_kernel!(@supported $($sup)?),
                fn $($f)::+ ( $($arg : $ty),* ) -> $ret
            };
            $(
                $crate::inventory::submit! {
                    $crate::KernelDescriptor {
                        key: match __KEY {
                            ::core::option::Option::Some(k) => k,
                            ::core::option::Option::None => $crate::DispatchKey::for_dtype($crate::DType::$dt),
                        },
                        dtype: $crate::DType::$dt,
                        ..__TEMPLATE
                    }
                }
            )+
        };
    };
    // Several kernels with the same dtypes and priority (and predicate),
    // each named after its function (or `as "name"`).
    (
        dtypes: $dts:tt,
        priority: $prio:expr,
        kernels: { $( $op:expr => $f:ident $args:tt -> $ret:ty $(as $name:expr)? ),+ $(,)? }
    ) => {
        $crate::register_kernel! {
            dtypes: $dts,
            priority: $prio,
            is_supported: $crate::registration::always_supported,
            kernels: { $( $op => $f $args -> $ret $(as $name)? ),+ }
        }
    };
    (
        dtypes: $dts:tt,
        priority: $prio:expr,
        is_supported: $sup:expr,
        kernels: { $( $op:expr => $f:ident $args:tt -> $ret:ty $(as $name:expr)? ),+ $(,)? }
    ) => {
        $(
            $crate::register_kernel!(@one $op, $dts, $prio, $sup, $f, [], $args, $ret,
                $crate::register_kernel!(@name $f $($name)?));
        )+
    };
    // Functions that serve fused variants: each op passes its value first
    // and gets its own kernel name.
    (
        dtypes: $dts:tt,
        priority: $prio:expr,
        variants: { $( fn $f:ident $args:tt -> $ret:ty { $( $op:expr => ($val:expr, $name:expr) ),+ $(,)? } )+ }
    ) => {
        $crate::register_kernel! {
            dtypes: $dts,
            priority: $prio,
            is_supported: $crate::registration::always_supported,
            variants: { $( fn $f $args -> $ret { $( $op => ($val, $name) ),+ } )+ }
        }
    };
    (
        dtypes: $dts:tt,
        priority: $prio:expr,
        is_supported: $sup:expr,
        variants: { $( fn $f:ident $args:tt -> $ret:ty { $( $op:expr => ($val:expr, $name:expr) ),+ $(,)? } )+ }
    ) => {
        $( $(
            $crate::register_kernel!(@one $op, $dts, $prio, $sup, $f, [$val], $args, $ret, $name);
        )+ )+
    };
    (@name $f:ident) => { stringify!($f) };
    (@name $f:ident $name:expr) => { $name };
    // One kernel through a wrapper that passes the variant value (if any)
    // first.
    (@one $op:expr, [$($dt:ident),+ $(,)?], $prio:expr, $sup:expr, $f:ident, [$($val:expr)?],
        ( $($arg:ident : $ty:ty),* $(,)? ), $ret:ty, $name:expr) => {
        const _: () = {
            #[allow(clippy::too_many_arguments)]
            fn kernel($($arg: $ty),*) -> $crate::Result<$ret> {
                $f($($val,)? $($arg),*)
            }
            $crate::register_kernel! {
                op: $op,
                dtypes: [$($dt),+],
                name: $name,
                priority: $prio,
                is_supported: $sup,
                fn kernel($($arg: $ty),*) -> $ret
            }
        };
    };
    (@key) => { ::core::option::Option::None };
    (@key $key:ident) => { ::core::option::Option::Some($crate::DispatchKey::$key) };
    (@supported) => { $crate::registration::always_supported };
    (@supported $sup:expr) => { $sup };
}

/// Builds a [`KernelDescriptor`] for a typed kernel function without
/// submitting it: pass it to
/// [`Dispatcher::register_kernel`](crate::Dispatcher::register_kernel) to
/// register at run time (like `TORCH_LIBRARY_IMPL`). Usable in `const`
/// context; [`register_kernel!`](crate::register_kernel) is built on it.
///
/// ```no_run
/// use qtensor_runtime::{kernel_descriptor, DType, DispatchKey, Priority, Result, Tensor};
///
/// fn my_relu(x: &Tensor) -> Result<Tensor> {
///     Ok(x.clone())
/// }
///
/// let k = kernel_descriptor! {
///     op: qtensor_runtime::ops::RELU, key: DispatchKey::QuantizedCPU, dtype: DType::QUInt8,
///     name: "my_relu", priority: Priority::PLUGIN, is_supported: qtensor_runtime::registration::always_supported,
///     fn my_relu(x: &Tensor) -> Tensor
/// };
/// qtensor_runtime::dispatcher().register_kernel(k)?;
/// # Ok::<(), qtensor_runtime::Error>(())
/// ```
#[macro_export]
macro_rules! kernel_descriptor {
    (
        op: $op:expr,
        key: $key:expr,
        dtype: $dtype:expr,
        name: $name:expr,
        priority: $prio:expr,
        is_supported: $sup:expr,
        fn $($f:ident)::+ ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty
    ) => {{
        #[allow(unused_mut, unused_variables, unused_assignments)]
        fn __boxed(args: &[$crate::Value]) -> $crate::Result<$crate::Value> {
            let mut __index = 0usize;
            $(
                let $arg: $ty = match args.get(__index).and_then(<$ty as $crate::FromArg<'_>>::from_arg) {
                    Some(v) => v,
                    None => return Err($crate::registration::bad_kernel_arg($crate::OpName::as_str($op), $name, __index, stringify!($arg), args)),
                };
                __index += 1;
            )*
            let __result: $crate::Result<$ret> = $($f)::+($($arg),*);
            __result.map($crate::IntoReturn::into_value)
        }
        $crate::KernelDescriptor {
            // Only an `OpName` passes here: a declared op's constant.
            op: $crate::OpName::as_str($op),
            key: $key,
            dtype: $dtype,
            name: $name,
            priority: $prio,
            is_supported: $sup,
            signature: &[$(<$ty as $crate::FromArg<'static>>::KIND),*],
            returns: <$ret as $crate::IntoReturn>::KIND,
            func: __boxed,
            location: concat!(file!(), ":", line!()),
        }
    }};
}

/// Declares an operator from a schema string, from any crate, and defines
/// its [`OpName`](crate::OpName) constant, with the tolerance its kernels
/// must agree within (default `exact`).
///
/// ```no_run
/// use qtensor_runtime::{declare_op, register_kernel, Priority, Result, Tensor};
///
/// declare_op!(pub CLAMP_Q = "myplugin::clamp_q(Tensor self, float min, float max) -> Tensor", "Clamps in the integer domain.");
/// declare_op!(pub SCALE = "myplugin::scale(Tensor self, float f) -> Tensor", "Rescales.", tolerance: "steps 1");
///
/// fn clamp_q(x: &Tensor, min: f64, max: f64) -> Result<Tensor> {
///     Ok(x.clone())
/// }
///
/// register_kernel! {
///     op: CLAMP_Q, dtypes: [QUInt8], name: "clamp_q_u8", priority: Priority::REFERENCE,
///     fn clamp_q(x: &Tensor, min: f64, max: f64) -> Tensor
/// }
/// ```
#[macro_export]
macro_rules! declare_op {
    ($vis:vis $name:ident = $schema:literal, $doc:literal) => {
        $crate::declare_op!($vis $name = $schema, $doc, tolerance: "exact");
    };
    ($vis:vis $name:ident = $schema:literal, $doc:literal, tolerance: $tol:literal) => {
        #[doc = $doc]
        $vis const $name: $crate::OpName = $crate::OpName::of_schema($schema);
        $crate::inventory::submit! {
            $crate::OpDeclaration { schema: $schema, doc: $doc, source: env!("CARGO_PKG_NAME"), tolerance: $tol }
        }
    };
}

/// The error for an argument a kernel could not read. The dispatcher checks
/// types against the schema first, so this fires only for kernels called
/// directly with bad arguments.
#[doc(hidden)]
pub fn bad_kernel_arg(op: &str, kernel: &str, index: usize, name: &str, args: &[Value]) -> crate::Error {
    crate::Error::ArgType {
        op: op.to_string(),
        index,
        name: name.to_string(),
        expected: format!("the type kernel `{kernel}` takes"),
        got: args.get(index).map_or("nothing".to_string(), Value::type_name),
    }
}
