//! The activations of quantized networks, each with PyTorch's arithmetic:
//! hardswish, hardsigmoid and sigmoid dequantize, apply the float function
//! and requantize ([`DequantRequant`]); hardtanh, relu6 and clamp compare
//! integers against quantized bounds.

use crate::args::activation::{clamp_bounds, hardsigmoid_fn, hardswish_fn, sigmoid_requant, unit_interval_qparams};
use crate::args::quantized::{output_quantizer, per_tensor, quantized_from_ints};
use qtensor_runtime::numerics::DequantRequant;
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::try_vec;
use qtensor_runtime::{Error, Priority, Result, Tensor};

/// Each element's rank in memory order, in row-major element order: the
/// position PyTorch's elementwise loop visits it at. A tensor that is not
/// dense (a strided view) is visited in row-major order.
pub fn memory_positions(x: &Tensor) -> Result<Vec<usize>> {
    let mut out = try_vec(x.numel())?;
    if x.is_dense() {
        let base = x.storage_offset();
        out.extend(x.offsets().map(|o| o - base));
    } else {
        out.extend(0..x.numel());
    }
    Ok(out)
}

/// Dequantizes `x`, applies `f` in f32 and requantizes into `(scale,
/// zero_point)` as PyTorch's `cpu_kernel_vec` loops do.
fn float_unary(op: &str, x: &Tensor, scale: f64, zero_point: i64, f: impl Fn(f32) -> f32) -> Result<Tensor> {
    let pt = per_tensor(op, "self", x)?;
    let out_q = output_quantizer(op, pt.dtype, scale, zero_point)?;
    let requant = DequantRequant::new(pt.scale, pt.zero_point, scale, zero_point, pt.qmin, pt.qmax);
    let bytes = pt.dtype.storage_type().size_of();
    let ints = requant.map(&x.int_values()?, bytes, memory_positions(x)?.into_iter(), f)?;
    quantized_from_ints(x.sizes(), &out_q, &ints)?.in_format_of(x)
}

/// `quantized::leaky_relu`: PyTorch's `leaky_qrelu_out_kernel` is the same
/// dequantize, f32 function, requantize loop pair as hardswish, with
/// `x > 0 ? x : x * negative_slope` (the slope as f32).
fn reference_leaky_relu(
    x: &Tensor,
    negative_slope: qtensor_runtime::Scalar,
    _inplace: bool,
    output_scale: f64,
    output_zero_point: i64,
) -> Result<Tensor> {
    let slope = negative_slope.to_f64() as f32;
    float_unary("quantized::leaky_relu", x, output_scale, output_zero_point, |v| if v > 0.0 { v } else { v * slope })
}

qtensor_runtime::register_kernel! {
    dtypes: [QUInt8, QInt8, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        op::quantized::LEAKY_RELU => reference_leaky_relu(x: &Tensor, negative_slope: qtensor_runtime::Scalar, inplace: bool, output_scale: f64, output_zero_point: i64) -> Tensor,
    }
}

/// The reference hardswish.
pub fn reference_hardswish(x: &Tensor, output_scale: f64, output_zero_point: i64) -> Result<Tensor> {
    float_unary("quantized::hardswish", x, output_scale, output_zero_point, hardswish_fn)
}

/// The reference hardsigmoid.
pub fn reference_hardsigmoid(x: &Tensor) -> Result<Tensor> {
    let (scale, zero_point) = unit_interval_qparams("hardsigmoid", x.dtype())?;
    float_unary("hardsigmoid", x, scale, zero_point, hardsigmoid_fn)
}

/// The reference sigmoid.
pub fn reference_sigmoid(x: &Tensor) -> Result<Tensor> {
    let op = "sigmoid";
    let pt = per_tensor(op, "self", x)?;
    let (scale, zero_point) = unit_interval_qparams(op, pt.dtype)?;
    let out_q = output_quantizer(op, pt.dtype, scale, zero_point)?;
    let f = sigmoid_requant(x)?;
    let body = qtensor_runtime::numerics::pytorch_vector_body(x.numel(), pt.dtype.storage_type().size_of());
    let mut ints = try_vec(x.numel())?;
    ints.extend(x.int_values()?.into_iter().zip(memory_positions(x)?).map(|(q, pos)| f(q, pos < body)));
    quantized_from_ints(x.sizes(), &out_q, &ints)?.in_format_of(x)
}

/// Registers one tier's six activation kernels (hardswish, hardsigmoid,
/// sigmoid, hardtanh, relu6, clamp), given in that order as `f as "name"`,
/// with the tier's `is_supported` predicate: the signatures are written
/// once for every tier.
#[macro_export]
#[doc(hidden)]
macro_rules! register_activation_kernels {
    ($dts:tt, $prio:expr, $sup:expr, [
        $hardswish:ident as $hardswish_name:expr, $hardsigmoid:ident as $hardsigmoid_name:expr,
        $sigmoid:ident as $sigmoid_name:expr, $hardtanh:ident as $hardtanh_name:expr,
        $relu6:ident as $relu6_name:expr, $clamp:ident as $clamp_name:expr $(,)?
    ]) => {
        qtensor_runtime::register_kernel! {
            dtypes: $dts,
            priority: $prio,
            is_supported: $sup,
            kernels: {
                qtensor_runtime::ops::quantized::HARDSWISH => $hardswish(x: &Tensor, output_scale: f64, output_zero_point: i64) -> Tensor as $hardswish_name,
                qtensor_runtime::ops::HARDSIGMOID => $hardsigmoid(x: &Tensor) -> Tensor as $hardsigmoid_name,
                qtensor_runtime::ops::SIGMOID => $sigmoid(x: &Tensor) -> Tensor as $sigmoid_name,
                qtensor_runtime::ops::HARDTANH => $hardtanh(x: &Tensor, min_val: f64, max_val: f64) -> Tensor as $hardtanh_name,
                qtensor_runtime::ops::RELU6 => $relu6(x: &Tensor) -> Tensor as $relu6_name,
                qtensor_runtime::ops::CLAMP => $clamp(x: &Tensor, min: Option<f64>, max: Option<f64>) -> Tensor as $clamp_name,
            }
        }
    };
}

crate::register_activation_kernels!(
    [QUInt8, QInt8, QInt32],
    Priority::REFERENCE,
    qtensor_runtime::registration::always_supported,
    [
        reference_hardswish as "reference_hardswish",
        reference_hardsigmoid as "reference_hardsigmoid",
        reference_sigmoid as "reference_sigmoid",
        reference_hardtanh as "reference_hardtanh",
        reference_relu6 as "reference_relu6",
        reference_clamp as "reference_clamp",
    ]
);

/// `clamp(q, lo, hi)` on the integers, bounds quantized first; the output
/// keeps the input's qparams. PyTorch applies the max bound last, so with
/// min > max every value becomes max.
pub fn clamp_ints(op: &str, x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
    if min.is_none() && max.is_none() {
        return Err(Error::invalid(op, "at least one of min and max must be given"));
    }
    let (lo, hi) = clamp_bounds(op, x, min, max)?;
    let mut ints = try_vec(x.numel())?;
    ints.extend(x.int_values()?.into_iter().map(|q| q.max(lo).min(hi)));
    let q = x.quantizer().ok_or_else(|| Error::invalid(op, "no quantizer"))?;
    quantized_from_ints(x.sizes(), &q, &ints)?.in_format_of(x)
}

fn reference_hardtanh(x: &Tensor, min_val: f64, max_val: f64) -> Result<Tensor> {
    clamp_ints("hardtanh", x, Some(min_val), Some(max_val))
}

fn reference_relu6(x: &Tensor) -> Result<Tensor> {
    clamp_ints("relu6", x, Some(0.0), Some(6.0))
}

fn reference_clamp(x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
    clamp_ints("clamp", x, min, max)
}
