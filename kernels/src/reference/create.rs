//! The ways to assemble a quantized tensor: from integers and qparams
//! (`_make_*`), and empty ones (`_empty_*`).

use crate::args::quantized::{per_channel_qparams, wrap_axis};
use qtensor_runtime::ops as op;
use qtensor_runtime::{register_kernel, DType, Error, Priority, Quantizer, Result, Tensor};

/// The quantized dtype whose integers `x` holds, or an error that says which
/// integer types can be wrapped.
fn counterpart(op: &str, x: &Tensor) -> Result<DType> {
    x.dtype().quantized_counterpart().ok_or_else(|| Error::WrongDType {
        op: op.into(),
        expected: "uint8 (-> quint8), int8 (-> qint8), int16 (-> qint16) or int32 (-> qint32)".into(),
        got: x.dtype(),
    })
}

fn reference_make_per_tensor(x: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
    let dtype = counterpart("_make_per_tensor_quantized_tensor", x)?;
    Tensor::from_int_repr(x, &Quantizer::per_tensor(scale, zero_point, dtype)?)
}

register_kernel! {
    dtypes: [UInt8, Int8, Int16, Int32, Int64, Float32, Float64],
    priority: Priority::REFERENCE,
    kernels: {
        op::_MAKE_PER_TENSOR_QUANTIZED_TENSOR => reference_make_per_tensor(x: &Tensor, scale: f64, zero_point: i64) -> Tensor as "reference_make_per_tensor_quantized_tensor",
        op::_MAKE_PER_CHANNEL_QUANTIZED_TENSOR => reference_make_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64) -> Tensor as "reference_make_per_channel_quantized_tensor",
    }
}

fn reference_make_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64) -> Result<Tensor> {
    let op = "_make_per_channel_quantized_tensor";
    let dtype = counterpart(op, x)?;
    let (s, z) = per_channel_qparams(op, scales, zero_points)?;
    let axis = wrap_axis(op, axis, x.ndim())?;
    Tensor::from_int_repr(x, &Quantizer::per_channel(s, z, axis, dtype)?)
}

fn reference_empty_affine(size: &[i64], scale: f64, zero_point: i64, dtype: DType) -> Result<Tensor> {
    let sizes = Tensor::checked_sizes("_empty_affine_quantized", size)?;
    Tensor::empty_quantized(&sizes, &Quantizer::per_tensor(scale, zero_point, dtype)?)
}

register_kernel! {
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        op::_EMPTY_AFFINE_QUANTIZED => reference_empty_affine(size: &[i64], scale: f64, zero_point: i64, dtype: DType) -> Tensor as "reference_empty_affine_quantized",
        op::_EMPTY_PER_CHANNEL_AFFINE_QUANTIZED => reference_empty_per_channel(size: &[i64], scales: &Tensor, zero_points: &Tensor, axis: i64, dtype: DType) -> Tensor as "reference_empty_per_channel_affine_quantized",
    }
}

fn reference_empty_per_channel(
    size: &[i64],
    scales: &Tensor,
    zero_points: &Tensor,
    axis: i64,
    dtype: DType,
) -> Result<Tensor> {
    let op = "_empty_per_channel_affine_quantized";
    let sizes = Tensor::checked_sizes(op, size)?;
    let (s, z) = per_channel_qparams(op, scales, zero_points)?;
    let axis = wrap_axis(op, axis, sizes.len())?;
    Tensor::empty_quantized(&sizes, &Quantizer::per_channel(s, z, axis, dtype)?)
}

/// `zeros`: a plain tensor of zeros; float32 unless `dtype` says otherwise.
fn reference_zeros(
    size: &[i64],
    dtype: Option<DType>,
    _layout: Option<i64>,
    device: Option<&str>,
    _pin_memory: Option<bool>,
) -> Result<Tensor> {
    let op = "zeros";
    if device.is_some_and(|d| d != "cpu") {
        return Err(Error::invalid(op, format!("device {device:?}: only the CPU exists here")));
    }
    let dtype = dtype.unwrap_or(DType::Float32);
    if dtype.is_quantized() {
        return Err(Error::invalid(op, format!("zeros of {dtype}: use _empty_affine_quantized")));
    }
    Tensor::zeros(&Tensor::checked_sizes(op, size)?, dtype)
}

register_kernel! {
    dtypes: [UInt8, Int8, Int16, Int32, Int64, Float32, Float64],
    priority: Priority::REFERENCE,
    kernels: {
        op::ZEROS => reference_zeros(size: &[i64], dtype: Option<DType>, layout: Option<i64>, device: Option<&str>, pin_memory: Option<bool>) -> Tensor,
    }
}

/// `to.dtype`: the values in another plain dtype, converted as PyTorch
/// converts them (floats to integers truncate toward zero).
fn reference_to_dtype(
    x: &Tensor,
    dtype: DType,
    _non_blocking: bool,
    copy: bool,
    _memory_format: Option<i64>,
) -> Result<Tensor> {
    let op = "to.dtype";
    if x.dtype() == dtype && !copy {
        return Ok(x.clone());
    }
    if dtype.is_quantized() || x.dtype().is_quantized() {
        return Err(Error::invalid(op, format!("{} to {dtype}: use quantize_per_tensor or dequantize", x.dtype())));
    }
    let values = x.real_values()?;
    qtensor_runtime::with_element_type!(dtype.storage_type(), T => {
        let out: Vec<T> = values.iter().map(|&v| <T as qtensor_runtime::Element>::from_f64(v)).collect();
        Tensor::from_vec(out, x.sizes())
    })
}

register_kernel! {
    dtypes: [UInt8, Int8, Int16, Int32, Int64, Float32, Float64],
    priority: Priority::REFERENCE,
    kernels: {
        op::TO_DTYPE => reference_to_dtype(x: &Tensor, dtype: DType, non_blocking: bool, copy: bool, memory_format: Option<i64>) -> Tensor,
    }
}
