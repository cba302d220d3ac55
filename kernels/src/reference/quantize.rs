//! quantize_per_tensor, quantize_per_channel, dequantize and int_repr.

use qtensor_runtime::numerics::{inv_scale, quantize_val};
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
/// `docs/conformance-format.md`, element by element.
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
    let q = super::common::per_tensor_quantizer("quantize_per_tensor", None, dtype, scale, zero_point)?;
    quantize_with("quantize_per_tensor", x, &q)
}

register_kernel! {
    dtypes: [Float32, Float64],
    priority: Priority::REFERENCE,
    kernels: {
        "quantize_per_tensor" => reference_quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Tensor,
        "quantize_per_channel" => reference_quantize_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64, dtype: DType) -> Tensor,
    }
}

/// Reads per-channel qparams from a float scale tensor and an integer
/// zero-point tensor, both 1-D.
pub fn per_channel_qparams(op: &str, scales: &Tensor, zero_points: &Tensor) -> Result<(Vec<f64>, Vec<i64>)> {
    if scales.ndim() != 1 || zero_points.ndim() != 1 {
        return Err(Error::qparams(
            op,
            format!(
                "scales and zero_points must be 1-D, got shapes {:?} and {:?}",
                scales.sizes(),
                zero_points.sizes()
            ),
        ));
    }
    if !scales.dtype().is_float() {
        return Err(Error::WrongDType {
            op: op.into(),
            expected: "a float tensor of scales".into(),
            got: scales.dtype(),
        });
    }
    if !zero_points.dtype().is_integer() {
        return Err(Error::WrongDType {
            op: op.into(),
            expected: "an integer tensor of zero points".into(),
            got: zero_points.dtype(),
        });
    }
    Ok((scales.real_values()?, zero_points.int_values()?))
}

/// Wraps a possibly negative axis.
pub fn wrap_axis(op: &str, axis: i64, ndim: usize) -> Result<usize> {
    let n = ndim as i64;
    let a = if axis < 0 { axis + n } else { axis };
    if a < 0 || a >= n {
        return Err(Error::qparams(op, format!("axis {axis} is out of range for a tensor of {ndim} dimensions")));
    }
    Ok(a as usize)
}

/// The per-channel quantizer of `quantize_per_channel`'s arguments, validated.
pub fn per_channel_quantizer(
    op: &str,
    x: &Tensor,
    scales: &Tensor,
    zero_points: &Tensor,
    axis: i64,
    dtype: DType,
) -> Result<Arc<Quantizer>> {
    let (s, z) = per_channel_qparams(op, scales, zero_points)?;
    let axis = wrap_axis(op, axis, x.ndim())?;
    Quantizer::per_channel(s, z, axis, dtype)
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

/// The reference dequantize, also the fallback of faster kernels.
pub fn reference_dequantize(q: &Tensor) -> Result<Tensor> {
    q.dequantize_here()
}

register_kernel! {
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        "dequantize" => reference_dequantize(q: &Tensor) -> Tensor,
        "int_repr" => reference_int_repr(q: &Tensor) -> Tensor,
    }
}

fn reference_int_repr(q: &Tensor) -> Result<Tensor> {
    q.int_repr_here()
}
