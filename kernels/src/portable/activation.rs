//! hardswish, hardsigmoid, sigmoid, hardtanh, relu6 and clamp on quint8
//! and qint8 by table: an 8-bit input has 256 values, so the reference's
//! arithmetic, evaluated once per value for each of PyTorch's two loops,
//! gives every output bit for bit. They decline the other dtypes and
//! per-channel inputs, to the reference kernels.

use crate::args::activation::{clamp_bounds, hardsigmoid_fn, hardswish_fn, sigmoid_requant, unit_interval_qparams};
use crate::args::quantized::{output_quantizer, per_tensor};
use crate::ops::elementwise::map_into;
use crate::vector::ByteElement;
use qtensor_runtime::numerics::{pytorch_vector_body, DequantRequant};
use qtensor_runtime::{DType, Error, Priority, Quantizer, Result, Tensor};
use std::sync::Arc;

/// The outputs for every stored value of `B`, by `f(q, vector)`: index 0
/// of the table is `B`'s lowest value.
fn table<B: ByteElement>(f: &impl Fn(i64, bool) -> i64, vector: bool) -> [B; 256] {
    let lowest = B::LOWEST.to_i64();
    std::array::from_fn(|i| B::from_i64(f(lowest + i as i64, vector)))
}

/// Maps `x` through the tables: the vector table for the first
/// [`pytorch_vector_body`] positions in memory order, the scalar one after
/// (built only when there are such positions).
fn by_table<B: ByteElement>(x: &Tensor, out_q: &Arc<Quantizer>, f: impl Fn(i64, bool) -> i64) -> Result<Tensor> {
    let body = pytorch_vector_body(x.numel(), 1);
    let vector = table::<B>(&f, true);
    let scalar = if body < x.numel() { table::<B>(&f, false) } else { vector };
    let lowest = B::LOWEST.to_i64();
    let look_up = |table: &[B; 256], src: &[B], dst: &mut [B]| {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = table[(s.to_i64() - lowest) as usize & 0xff];
        }
    };
    map_into::<B>(x, out_q, |start, src, dst| {
        // The chunk's positions below `body` take the vector table.
        let split = body.saturating_sub(start).min(src.len());
        let (src_body, src_tail) = src.split_at(split);
        let (dst_body, dst_tail) = dst.split_at_mut(split);
        look_up(&vector, src_body, dst_body);
        look_up(&scalar, src_tail, dst_tail);
    })
}

/// Runs `f` by table on 8-bit per-tensor inputs into `(scale,
/// zero_point)`, or `None` for the reference kernel to handle.
fn table_kernel(op: &str, x: &Tensor, out: Option<(f64, i64)>, f: impl Fn(i64, bool) -> i64) -> Option<Result<Tensor>> {
    let pt = per_tensor(op, "self", x).ok()?;
    let (scale, zero_point) = out.unwrap_or((pt.scale, pt.zero_point));
    let out_q = match output_quantizer(op, pt.dtype, scale, zero_point) {
        Ok(q) => q,
        Err(e) => return Some(Err(e)),
    };
    match pt.dtype {
        DType::QUInt8 => Some(by_table::<u8>(x, &out_q, f)),
        DType::QInt8 => Some(by_table::<i8>(x, &out_q, f)),
        _ => None,
    }
}

/// A float activation's table function: dequantize, `g`, requantize.
fn float_fn(x: &Tensor, out: (f64, i64), g: fn(f32) -> f32) -> Option<impl Fn(i64, bool) -> i64> {
    let pt = per_tensor("", "self", x).ok()?;
    let r = DequantRequant::new(pt.scale, pt.zero_point, out.0, out.1, pt.qmin, pt.qmax);
    Some(move |q, vector| r.quantize(g(r.dequantize(q, vector)), vector))
}

fn portable_hardswish(x: &Tensor, output_scale: f64, output_zero_point: i64) -> Result<Tensor> {
    let op = "quantized::hardswish";
    let out = (output_scale, output_zero_point);
    float_fn(x, out, hardswish_fn)
        .and_then(|f| table_kernel(op, x, Some(out), f))
        .unwrap_or_else(|| Err(Error::declined("hardswish: not per-tensor quint8 or qint8")))
}

fn portable_hardsigmoid(x: &Tensor) -> Result<Tensor> {
    let out = unit_interval_qparams("hardsigmoid", x.dtype())?;
    float_fn(x, out, hardsigmoid_fn)
        .and_then(|f| table_kernel("hardsigmoid", x, Some(out), f))
        .unwrap_or_else(|| Err(Error::declined("hardsigmoid: not per-tensor quint8 or qint8")))
}

fn portable_sigmoid(x: &Tensor) -> Result<Tensor> {
    let out = unit_interval_qparams("sigmoid", x.dtype())?;
    match sigmoid_requant(x) {
        Ok(f) => table_kernel("sigmoid", x, Some(out), f),
        Err(_) => None,
    }
    .unwrap_or_else(|| Err(Error::declined("sigmoid: not per-tensor quint8 or qint8")))
}

/// hardtanh, relu6 and clamp: an integer clamp, by table like the others.
fn clamp_kernel(op: &str, x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
    let (lo, hi) = clamp_bounds(op, x, min, max)?;
    table_kernel(op, x, None, |q, _| q.max(lo).min(hi))
        .unwrap_or_else(|| Err(Error::declined("clamp: not per-tensor quint8 or qint8")))
}

fn portable_hardtanh(x: &Tensor, min_val: f64, max_val: f64) -> Result<Tensor> {
    clamp_kernel("hardtanh", x, Some(min_val), Some(max_val))
}

fn portable_relu6(x: &Tensor) -> Result<Tensor> {
    clamp_kernel("relu6", x, Some(0.0), Some(6.0))
}

fn portable_clamp(x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
    if min.is_none() && max.is_none() {
        // The reference says why that is an error.
        return Err(Error::declined("clamp: neither min nor max"));
    }
    clamp_kernel("clamp", x, min, max)
}

crate::register_activation_kernels!(
    [QUInt8, QInt8],
    Priority::PORTABLE,
    [portable_hardswish, portable_hardsigmoid, portable_sigmoid, portable_hardtanh, portable_relu6, portable_clamp]
);
