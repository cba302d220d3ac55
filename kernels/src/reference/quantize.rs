//! quantize_per_tensor, quantize_per_channel, dequantize and int_repr.

use crate::args::quantized::per_channel_quantizer;
use qtensor_runtime::numerics::{inv_scale, quantize_val};
use qtensor_runtime::ops as op;
use qtensor_runtime::quantizer::check_quantized_dtype;
use qtensor_runtime::{register_kernel, with_element_type, DType, Element, Error, Priority, Quantizer, Result, Tensor};
use std::sync::Arc;

/// The float values of `x` as f32, row-major. float64 is narrowed first, as
/// PyTorch's quantize does.
pub fn float_input(op: &str, x: &Tensor) -> Result<Vec<f32>> {
    match x.dtype() {
        DType::Float32 => x.to_vec::<f32>(),
        DType::Float64 => Ok(x.to_vec::<f64>()?.into_iter().map(|v| v as f32).collect()),
        other => Err(Error::WrongDType { op: op.into(), expected: "a float tensor".into(), got: other }),
    }
}

/// Quantizes a float tensor with any quantizer: the reference numerics of
/// `docs/golden-case-format.md`, element by element.
pub fn quantize_with(op: &str, x: &Tensor, quantizer: &Arc<Quantizer>) -> Result<Tensor> {
    let values = float_input(op, x)?;
    let dtype = quantizer.dtype();
    let (qmin, qmax) = check_quantized_dtype(op, dtype)?;
    Tensor::check_supported(op, dtype)?;
    quantizer.check_fits(op, x.sizes())?;
    let out = Tensor::empty_quantized(x.sizes(), quantizer)?;
    let channels: Vec<usize> = out.channel_of_each().collect();
    with_element_type!(dtype.storage_type(), T => {
        let mut dst = out.storage().write::<T>()?;
        for ((d, &v), c) in dst.iter_mut().zip(&values).zip(channels) {
            let (scale, zp) = quantizer.channel_qparams(c);
            let q = quantize_val(v, inv_scale(scale), zp, qmin, qmax);
            *d = T::from_i64(q);
        }
    });
    Ok(out)
}

fn reference_quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Result<Tensor> {
    let q = crate::args::quantized::per_tensor_quantizer("quantize_per_tensor", None, dtype, scale, zero_point)?;
    quantize_with("quantize_per_tensor", x, &q)
}

register_kernel! {
    dtypes: [Float32, Float64],
    priority: Priority::REFERENCE,
    kernels: {
        op::QUANTIZE_PER_TENSOR => reference_quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Tensor,
        op::QUANTIZE_PER_CHANNEL => reference_quantize_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64, dtype: DType) -> Tensor,
    }
}

fn reference_quantize_per_channel(
    x: &Tensor,
    scales: &Tensor,
    zero_points: &Tensor,
    axis: i64,
    dtype: DType,
) -> Result<Tensor> {
    let op = "quantize_per_channel";
    quantize_with(op, x, &per_channel_quantizer(op, x, scales, zero_points, axis, dtype)?)
}

/// The reference dequantize: `(q - zero_point) * scale` per element with
/// each channel's qparams, in PyTorch's order
/// ([`Quantizer::dequantize_one`]).
pub fn reference_dequantize(q: &Tensor) -> Result<Tensor> {
    let quantizer = q.require_quantizer("dequantize")?;
    let ints = q.int_values()?;
    let mut out = qtensor_runtime::storage::try_vec(ints.len())?;
    out.extend(ints.iter().zip(q.channel_of_each()).map(|(&v, c)| quantizer.dequantize_one(v, c)));
    Tensor::from_vec(out, q.sizes())
}

register_kernel! {
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        op::DEQUANTIZE => reference_dequantize(q: &Tensor) -> Tensor,
        op::INT_REPR => reference_int_repr(q: &Tensor) -> Tensor,
    }
}

/// The reference int_repr: a row-major copy of the stored integers.
fn reference_int_repr(q: &Tensor) -> Result<Tensor> {
    let op = "int_repr";
    q.require_quantizer(op)?;
    let plain = q.dtype().underlying_int().ok_or_else(|| Error::invalid(op, "no integer type for this dtype"))?;
    let c = q.contiguous_copy()?;
    let storage = with_element_type!(plain.storage_type(), T => {
        let data = c.storage().read::<T>()?;
        qtensor_runtime::Storage::from_slice::<T>(&data)?
    });
    Tensor::from_storage(storage, plain, q.sizes())
}
