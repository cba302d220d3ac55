//! Helpers shared by the reference kernels: reading per-tensor qparams and
//! building quantized outputs.

use qtensor_runtime::{with_element_type, DType, Element, Error, QParams, Quantizer, Result, Storage, Tensor};
use std::sync::Arc;

/// The per-tensor qparams of a quantized operand, with its integer range.
#[derive(Debug, Clone, Copy)]
pub struct PerTensor {
    /// The quantized dtype.
    pub dtype: DType,
    /// The scale.
    pub scale: f64,
    /// The zero point.
    pub zero_point: i64,
    /// The smallest stored integer.
    pub qmin: i64,
    /// The largest stored integer.
    pub qmax: i64,
}

/// Reads a per-tensor quantized operand's qparams; errors name the operand.
pub fn per_tensor(op: &str, what: &str, t: &Tensor) -> Result<PerTensor> {
    if let Some((dtype, scale, zero_point)) = t.per_tensor_qparams() {
        let (qmin, qmax) = dtype.int_range().unwrap_or((0, 0));
        return Ok(PerTensor { dtype, scale, zero_point, qmin, qmax });
    }
    let q = t.quantizer().ok_or_else(|| Error::WrongDType {
        op: op.into(),
        expected: format!("a quantized tensor for `{what}`"),
        got: t.dtype(),
    })?;
    match q.params() {
        QParams::PerTensorAffine { dtype, scale, zero_point } => {
            let (qmin, qmax) = dtype.int_range().unwrap_or((0, 0));
            Ok(PerTensor { dtype, scale, zero_point, qmin, qmax })
        }
        QParams::PerChannelAffine { .. } => Err(Error::invalid(
            op,
            format!("`{what}` is {} quantized; this op takes per_tensor_affine operands", q.qscheme()),
        )),
    }
}

/// A per-tensor quantizer for `op`; its errors name `op` and, if given,
/// what the qparams are for ("output"), with no nested prefixes.
pub fn per_tensor_quantizer(
    op: &str,
    what: Option<&str>,
    dtype: DType,
    scale: f64,
    zero_point: i64,
) -> Result<Arc<Quantizer>> {
    Quantizer::per_tensor(scale, zero_point, dtype).map_err(|e| match e {
        Error::QParams { message, .. } => {
            Error::qparams(op, what.map_or_else(|| message.clone(), |w| format!("{w} {message}")))
        }
        Error::WrongDType { expected, got, .. } => Error::WrongDType { op: op.into(), expected, got },
        other => other,
    })
}

/// A validated per-tensor output quantizer.
pub fn output_quantizer(op: &str, dtype: DType, scale: f64, zero_point: i64) -> Result<Arc<Quantizer>> {
    per_tensor_quantizer(op, Some("output"), dtype, scale, zero_point)
}

/// A contiguous quantized tensor of `sizes` holding `ints` (row-major),
/// which the caller has already clamped to the dtype's range.
pub fn quantized_from_ints(sizes: &[usize], quantizer: &Arc<Quantizer>, ints: &[i64]) -> Result<Tensor> {
    let storage = Storage::for_overwrite(quantizer.dtype().storage_type(), ints.len())?;
    with_element_type!(quantizer.dtype().storage_type(), T => {
        let mut dst = storage.write::<T>()?;
        for (d, &v) in dst.iter_mut().zip(ints) {
            *d = T::from_i64(v);
        }
    });
    Tensor::quantized_from_storage(storage, sizes, quantizer)
}

/// Checks a list argument's entries are at least `min`, naming it.
pub fn check_at_least(op: &str, what: &str, values: &[i64], min: i64) -> Result<()> {
    if let Some(v) = values.iter().find(|&&v| v < min) {
        return Err(Error::invalid(op, format!("{what} must be >= {min}, got {v} in {values:?}")));
    }
    Ok(())
}

/// The float32 bias of linear/conv: absent, or 1-D of `n` values.
pub fn bias_values(op: &str, bias: Option<&Tensor>, n: usize) -> Result<Vec<f64>> {
    match bias {
        None => qtensor_runtime::storage::try_filled(n, 0.0),
        Some(b) => {
            if b.dtype() != DType::Float32 {
                return Err(Error::WrongDType { op: op.into(), expected: "a float32 bias".into(), got: b.dtype() });
            }
            if b.sizes() != [n] {
                return Err(Error::shape(op, format!("bias must have shape [{n}], got {:?}", b.sizes())));
            }
            b.real_values()
        }
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
