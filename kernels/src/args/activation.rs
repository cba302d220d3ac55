//! The activations' shared definitions: the output qparams PyTorch fixes,
//! the bounds of a clamp, and the per-value functions, which the
//! reference kernels apply element by element and the table kernels
//! evaluate once per stored value.

use super::quantized::{per_tensor, PerTensor};
use qtensor_runtime::numerics::{inv_scale, quantize_val, DequantRequant};
use qtensor_runtime::{DType, Error, Result, Tensor};

/// The output qparams PyTorch fixes for sigmoid and hardsigmoid, whose
/// values lie in [0, 1]: scale 2^-8 (2^-32 for qint32), and the zero point
/// at the bottom of the range (-128 for qint8).
pub fn unit_interval_qparams(op: &str, dtype: DType) -> Result<(f64, i64)> {
    match dtype {
        DType::QUInt8 => Ok((1.0 / 256.0, 0)),
        DType::QInt8 => Ok((1.0 / 256.0, -128)),
        DType::QInt32 => Ok((2.3283064365386963e-10, 0)),
        other => {
            Err(Error::WrongDType { op: op.into(), expected: "a quint8, qint8 or qint32 tensor".into(), got: other })
        }
    }
}

/// hardswish on a dequantized value, as PyTorch writes it in f32.
pub fn hardswish_fn(v: f32) -> f32 {
    v * (v + 3.0).clamp(0.0, 6.0) / 6.0
}

/// hardsigmoid on a dequantized value, as PyTorch writes it in f32.
pub fn hardsigmoid_fn(v: f32) -> f32 {
    (v + 3.0).clamp(0.0, 6.0) / 6.0
}

/// PyTorch's quantized sigmoid of one stored value `q`, by its vector
/// loop or its scalar one: both dequantize as `f32(q - z) * f32(s)` in the
/// vector loop and in f64 in the scalar one (not the fused form of the
/// other activations), then compute `1 / (1 + exp(-x))` in f32.
pub fn sigmoid_requant(x: &Tensor) -> Result<impl Fn(i64, bool) -> i64> {
    let op = "sigmoid";
    let pt = per_tensor(op, "self", x)?;
    let (scale, zero_point) = unit_interval_qparams(op, pt.dtype)?;
    let requant = DequantRequant::new(pt.scale, pt.zero_point, scale, zero_point, pt.qmin, pt.qmax);
    let s = pt.scale as f32;
    Ok(move |q: i64, vector: bool| {
        let v = if vector { (q - pt.zero_point) as f32 * s } else { requant.dequantize(q, false) };
        requant.quantize(1.0 / (1.0 + (-v).exp()), vector)
    })
}

/// A float bound quantized as PyTorch's `quantize_val` does (fbgemm's
/// `Quantize`), into the tensor's own qparams.
fn quantized_bound(op: &str, what: &str, pt: &PerTensor, v: f64) -> Result<i64> {
    if v.is_nan() {
        return Err(Error::invalid(op, format!("{what} must not be NaN")));
    }
    Ok(quantize_val(v as f32, inv_scale(pt.scale), pt.zero_point, pt.qmin, pt.qmax))
}

/// The integer bounds of a clamp: the float bounds quantized into `x`'s
/// qparams, the dtype's ends where absent.
pub fn clamp_bounds(op: &str, x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<(i64, i64)> {
    let pt = per_tensor(op, "self", x)?;
    let lo = min.map(|v| quantized_bound(op, "min", &pt, v)).transpose()?.unwrap_or(pt.qmin);
    let hi = max.map(|v| quantized_bound(op, "max", &pt, v)).transpose()?.unwrap_or(pt.qmax);
    Ok((lo, hi))
}
