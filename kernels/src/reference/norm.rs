//! `quantized::batch_norm2d` with PyTorch's arithmetic: per channel, the
//! folded constants
//!
//! - `inv_sigma = f32(1 / sqrt(var + f32(eps)))` (the square root in f32,
//!   the division in f64),
//! - `alpha = f32(f32(inv_sigma * weight) * (x_scale / y_scale))`,
//! - `beta = f32(f32(bias - mean * inv_sigma * weight) * (1 / y_scale))`,
//!
//! then `q_out = round_half_even(fma(alpha, f32(q - x_zero_point), beta)) +
//! y_zero_point`, clamped.

use crate::args::quantized::{output_quantizer, per_tensor, quantized_from_ints};
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::try_filled;
use qtensor_runtime::{register_kernel, DType, Error, Priority, Result, Tensor};

/// A per-channel float32 parameter `[C]`, or `default` when absent.
fn channel_param(op: &str, what: &str, t: Option<&Tensor>, c: usize, default: f32) -> Result<Vec<f32>> {
    let Some(t) = t else { return try_filled(c, default) };
    if t.dtype() != DType::Float32 {
        return Err(Error::WrongDType { op: op.into(), expected: format!("a float32 `{what}`"), got: t.dtype() });
    }
    if t.sizes() != [c] {
        return Err(Error::shape(op, format!("`{what}` must have shape [{c}], got {:?}", t.sizes())));
    }
    t.to_vec::<f32>()
}

#[allow(clippy::too_many_arguments)]
fn reference_batch_norm2d(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
    output_scale: f64,
    output_zero_point: i64,
) -> Result<Tensor> {
    let op = "quantized::batch_norm2d";
    let pt = per_tensor(op, "qx", x)?;
    if x.ndim() != 4 {
        return Err(Error::shape(op, format!("expected a 4-D (NCHW) input, got shape {:?}", x.sizes())));
    }
    if !eps.is_finite() || eps < 0.0 {
        return Err(Error::invalid(op, format!("eps must be finite and >= 0, got {eps}")));
    }
    let out_q = output_quantizer(op, pt.dtype, output_scale, output_zero_point)?;
    let c = x.sizes()[1];
    let w = channel_param(op, "weight", weight, c, 1.0)?;
    let b = channel_param(op, "bias", bias, c, 0.0)?;
    let m = channel_param(op, "mean", Some(mean), c, 0.0)?;
    let v = channel_param(op, "var", Some(var), c, 1.0)?;
    let ratio = pt.scale / output_scale;
    let folded: Vec<(f32, f32)> = (0..c)
        .map(|ch| {
            let inv_sigma = (1.0 / (v[ch] + eps as f32).sqrt() as f64) as f32;
            let alpha = ((inv_sigma * w[ch]) as f64 * ratio) as f32;
            let beta = ((b[ch] - m[ch] * inv_sigma * w[ch]) as f64 * (1.0 / output_scale)) as f32;
            (alpha, beta)
        })
        .collect();
    let plane = x.sizes()[2] * x.sizes()[3];
    let ints: Vec<i64> = x
        .int_values()?
        .into_iter()
        .enumerate()
        .map(|(i, q)| {
            let (alpha, beta) = folded[(i / plane.max(1)) % c];
            let y = alpha.mul_add((q - pt.zero_point) as f32, beta).round_ties_even();
            if y.is_nan() {
                output_zero_point.clamp(pt.qmin, pt.qmax)
            } else {
                (y as i64).saturating_add(output_zero_point).clamp(pt.qmin, pt.qmax)
            }
        })
        .collect();
    quantized_from_ints(x.sizes(), &out_q, &ints)?.in_format_of(x)
}

register_kernel! {
    op: op::quantized::BATCH_NORM2D,
    dtypes: [QUInt8, QInt8, QInt32],
    name: "reference_batch_norm2d",
    priority: Priority::REFERENCE,
    fn reference_batch_norm2d(x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>, mean: &Tensor, var: &Tensor, eps: f64, output_scale: f64, output_zero_point: i64) -> Tensor
}
