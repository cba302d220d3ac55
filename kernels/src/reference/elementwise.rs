//! relu, and the requantizing binary ops quantized::add, add_relu and mul
//! (with NumPy broadcasting).

use super::common::{output_quantizer, per_tensor, quantized_from_ints};
use qtensor_runtime::numerics::requantize_f64;
use qtensor_runtime::tensor::layout::broadcast_shapes;
use qtensor_runtime::{register_kernel, DType, Error, Priority, Result, Tensor};

/// The reference relu on quantized tensors, also the fallback of faster kernels.
pub fn reference_quantized_relu(x: &Tensor) -> Result<Tensor> {
    let q = x.quantizer().ok_or_else(|| Error::WrongDType {
        op: "relu".into(),
        expected: "a quantized tensor".into(),
        got: x.dtype(),
    })?;
    let ints: Vec<i64> =
        x.int_values()?.into_iter().zip(x.channel_of_each()).map(|(v, c)| v.max(q.channel_qparams(c).1)).collect();
    // The output has x's shape, so even a per-channel quantizer carries over.
    quantized_from_ints(x.sizes(), &q, &ints)?.in_format_of(x)
}

register_kernel! {
    op: "relu",
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    name: "reference_quantized_relu",
    priority: Priority::REFERENCE,
    fn reference_quantized_relu(x: &Tensor) -> Tensor
}

fn reference_float_relu(x: &Tensor) -> Result<Tensor> {
    let v: Vec<f64> = x.real_values()?.into_iter().map(|v| if v < 0.0 { 0.0 } else { v }).collect();
    match x.dtype() {
        DType::Float32 => Tensor::from_vec(v.into_iter().map(|v| v as f32).collect(), x.sizes()),
        _ => Tensor::from_vec(v, x.sizes()),
    }
}

register_kernel! {
    op: "relu",
    dtypes: [Float32, Float64],
    name: "reference_float_relu",
    priority: Priority::REFERENCE,
    fn reference_float_relu(x: &Tensor) -> Tensor
}

/// Dequantizes both operands (broadcast), combines them exactly in f64 and
/// requantizes to (scale, zero_point); `relu` clamps at the zero point.
pub fn requantized_binary(
    op: &str,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
    zero_point: i64,
    relu: bool,
    combine: fn(f64, f64) -> f64,
) -> Result<Tensor> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op: op.into(), lhs: a.dtype(), rhs: b.dtype() });
    }
    let pa = per_tensor(op, "qa", a)?;
    let pb = per_tensor(op, "qb", b)?;
    let out_q = output_quantizer(op, a.dtype(), scale, zero_point)?;
    let sizes = broadcast_shapes(op, a.sizes(), b.sizes())?;
    let av = a.expand(&sizes)?.int_values()?;
    let bv = b.expand(&sizes)?.int_values()?;
    let lo = if relu { zero_point.max(pa.qmin) } else { pa.qmin };
    let ints: Vec<i64> = av
        .iter()
        .zip(&bv)
        .map(|(&x, &y)| {
            let real = combine((x - pa.zero_point) as f64 * pa.scale, (y - pb.zero_point) as f64 * pb.scale);
            requantize_f64(real, scale, zero_point, lo, pa.qmax)
        })
        .collect();
    quantized_from_ints(&sizes, &out_q, &ints)?.in_format_of(a)
}

fn reference_add(a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
    requantized_binary("quantized::add", a, b, scale, zero_point, false, |x, y| x + y)
}

fn reference_add_relu(a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
    requantized_binary("quantized::add_relu", a, b, scale, zero_point, true, |x, y| x + y)
}

fn reference_mul(a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
    requantized_binary("quantized::mul", a, b, scale, zero_point, false, |x, y| x * y)
}

register_kernel! {
    op: "quantized::add",
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    name: "reference_add",
    priority: Priority::REFERENCE,
    fn reference_add(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
}

register_kernel! {
    op: "quantized::add_relu",
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    name: "reference_add_relu",
    priority: Priority::REFERENCE,
    fn reference_add_relu(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
}

register_kernel! {
    op: "quantized::mul",
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    name: "reference_mul",
    priority: Priority::REFERENCE,
    fn reference_mul(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
}
