//! # qtensor
//!
//! Quantized tensors for CPU inference, with a c10-style operator
//! dispatcher that kernels (built-in or from plugin crates) register with.
//!
//! ```
//! use qtensor::{ops, DType, Tensor};
//!
//! let x = Tensor::from_slice(&[-1.0f32, 0.0, 0.5, 2.0], &[2, 2])?;
//! let q = ops::quantize_per_tensor(&x, 0.1, 10, DType::QUInt8)?;
//! assert_eq!(q.int_values()?, vec![0, 10, 15, 30]);
//! assert_eq!(ops::dequantize(&q)?.to_vec::<f32>()?, vec![-1.0, 0.0, 0.5, 2.0]);
//! # Ok::<(), qtensor::Error>(())
//! ```
//!
//! - [`ops`]: a typed function for every operator in `ops.yaml`.
//! - [`registry()`]: call any operator by name with boxed [`Value`]s,
//!   register kernels and operators at run time, inspect the registry.
//! - [`register_kernel!`] and [`declare_op!`]: add kernels and operators
//!   from any crate.
//! - [`kernel_checks`]: check your kernels against the reference kernels
//!   on random inputs and on golden cases (PyTorch's recorded outputs,
//!   [`kernel_checks::golden`]).
//! - [`jit`] and [`torch`]: run frozen TorchScript files, and load
//!   `torch.save` checkpoints.

#![warn(missing_docs)]

pub mod jit;
pub mod kernel_checks;
/// The name `kernel_checks` had before 0.1, kept for code written against it.
#[doc(hidden)]
pub use kernel_checks as conformance;
/// The `ndarray` crate that `Tensor`'s conversions use (the `ndarray`
/// feature; see `qtensor_runtime::interop`).
#[cfg(feature = "ndarray")]
pub use qtensor_runtime::ndarray;
pub mod models;
pub mod nn;
pub mod quantization;
pub mod torch;

pub use qtensor_runtime::engine::{engine, set_engine, Engine};
pub use qtensor_runtime::serialize::{load, save};
pub use qtensor_runtime::tensor::layout::Shape;
pub use qtensor_runtime::threads::{num_threads, set_num_threads, with_num_threads};
pub use qtensor_runtime::{
    declare_op, inventory, kernel_descriptor, register_kernel, with_element_type, ArgType, DType, DispatchKey,
    Dispatcher, Element, Error, FromArg, FromReturn, IntoReturn, Isa, KernelDescriptor, KernelInfo, MemoryFormat,
    OpDeclaration, OpHandle, OpName, OpSchema, OperatorEntry, Priority, QParams, QScheme, Quantizer, Result, Scalar,
    ScriptClass, ScriptObject, Storage, StorageType, Tensor, Tolerance, Value,
};
pub use qtensor_runtime::{
    isa, layers, numerics, print, profiler, pyfmt, registration, schema, serialize, storage, threads,
};

/// The built-in kernels' public pieces: packed weights and the numerics
/// helpers that plugin kernels may reuse.
pub mod kernels {
    pub use qtensor_kernels::args::conv::ConvParams;
    pub use qtensor_kernels::args::linear::choose_qparams;
    pub use qtensor_kernels::reference::conv::PackedConv2d;
    pub use qtensor_kernels::reference::linear::PackedLinear;

    pub use qtensor_kernels::gemm::conv::GemmConvWeight;
    pub use qtensor_kernels::gemm::linear::GemmWeight;
    pub use qtensor_kernels::gemm::narrow::{
        measured_timing as narrow_gemm_timing, narrow_kernel, set_narrow_kernel, NarrowKernel, NarrowTiming,
    };

    /// One line on the kernel that narrow GEMM panels (every activation
    /// below 128) take on this CPU and why, as `qtensor ops` prints it.
    /// Times the AVX2 kernels once if nothing has yet (about 1 ms).
    pub fn narrow_gemm() -> String {
        #[cfg(target_arch = "x86_64")]
        let timing = qtensor_kernels::x86_64::avx2::narrow_timing();
        #[cfg(not(target_arch = "x86_64"))]
        let timing = None;
        qtensor_kernels::gemm::narrow::describe(timing)
    }

    /// Packs a linear weight for the built-in linear kernels, the reference
    /// and the GEMM ones, once (the packed forms are cached on the weight
    /// tensor), as PyTorch's `linear_prepack` does.
    pub fn prepack_linear(w: &crate::Tensor) -> crate::Result<()> {
        PackedLinear::of(w)?;
        if w.sizes().get(1).is_some_and(|&k| k <= qtensor_kernels::gemm::MAX_K) {
            GemmWeight::of(w)?;
        }
        Ok(())
    }

    /// Packs a conv weight for the built-in conv kernels and `groups`, once.
    pub fn prepack_conv2d(w: &crate::Tensor, groups: i64) -> crate::Result<()> {
        PackedConv2d::of(w)?;
        let groups = usize::try_from(groups)
            .map_err(|_| crate::Error::invalid("prepack_conv2d", format!("invalid groups {groups}")))?;
        qtensor_kernels::gemm::conv::conv_weight(w, groups).map(|_| ())
    }
}

#[doc(hidden)]
pub use qtensor_runtime::quantizer as quantizer_checks;

use std::sync::{Arc, OnceLock};

include!(concat!(env!("OUT_DIR"), "/ops_generated.rs"));

/// Looks an operator up once per call site and caches the handle. Makes sure
/// the built-in kernels are linked in first.
#[doc(hidden)]
pub fn cached_op(cell: &'static OnceLock<OpHandle>, name: &str) -> Result<&'static OpHandle> {
    if let Some(h) = cell.get() {
        return Ok(h);
    }
    link_builtin_kernels();
    let h = qtensor_runtime::dispatcher().op(name)?;
    Ok(cell.get_or_init(|| h))
}

/// Keeps the linker from dropping the kernels crate, whose only use is the
/// registrations it submits through `inventory`.
#[doc(hidden)]
pub fn link_builtin_kernels() {
    std::hint::black_box(qtensor_kernels::link());
}

/// The process-wide dispatcher, with the built-in kernels linked in: the
/// one entry point for calling ops by name, registering kernels and
/// listing them.
pub fn registry() -> &'static Dispatcher {
    link_builtin_kernels();
    qtensor_runtime::dispatcher()
}

/// Caps the instruction sets that kernels may use, for this process, and
/// re-resolves every operator's kernel choice. `None` returns to the cap
/// of the `QTENSOR_ISA` environment variable (or none). A cap never enables
/// an ISA the CPU lacks; see [`isa`].
///
/// ```
/// qtensor::set_isa_cap(Some(qtensor::Isa::Portable));
/// assert_eq!(qtensor::isa::cap(), qtensor::Isa::Portable);
/// qtensor::set_isa_cap(None);
/// ```
pub fn set_isa_cap(isa: Option<Isa>) {
    qtensor_runtime::isa::set_cap(isa);
    registry().reresolve();
}

/// Quantizes a float tensor with `quantizer`: the one general entry point.
///
/// It dispatches to `quantize_per_tensor` or `quantize_per_channel` (so the
/// fastest registered kernel runs), and the result shares `quantizer`.
pub fn quantize(x: &Tensor, quantizer: &Arc<Quantizer>) -> Result<Tensor> {
    let q = match quantizer.params() {
        QParams::PerTensorAffine { dtype, scale, zero_point } => ops::quantize_per_tensor(x, scale, zero_point, dtype)?,
        QParams::PerChannelAffine { dtype, scales, zero_points, axis } => {
            let s = Tensor::from_slice(scales, &[scales.len()])?;
            let z = Tensor::from_slice(zero_points, &[zero_points.len()])?;
            ops::quantize_per_channel(x, &s, &z, axis as i64, dtype)?
        }
    };
    q.with_quantizer(quantizer.clone())
}

/// An empty (all zero) quantized tensor of `sizes` sharing `quantizer`.
pub fn empty_quantized(sizes: &[usize], quantizer: &Arc<Quantizer>) -> Result<Tensor> {
    Tensor::empty_quantized(sizes, quantizer)
}
