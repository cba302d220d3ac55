//! hardswish, hardsigmoid, sigmoid, hardtanh, relu6 and clamp on quint8
//! and qint8 by table: an 8-bit input has 256 values, so the reference's
//! arithmetic, evaluated once per value for each of PyTorch's two loops,
//! gives every output bit for bit, and an ISA looks the bytes up
//! ([`VectorIsa::lookup_bytes`]). They decline the other dtypes and
//! per-channel inputs, to the reference kernels.

use crate::args::activation::{clamp_bounds, hardsigmoid_fn, hardswish_fn, sigmoid_requant, unit_interval_qparams};
use crate::args::quantized::{output_quantizer, per_tensor};
use crate::ops::elementwise::map_into;
use crate::ops::table_cache::{self, TableKey, Tables};
use crate::vector::{ByteElement, VectorIsa};
use qtensor_runtime::numerics::{pytorch_vector_body, DequantRequant};
use qtensor_runtime::{DType, Error, Quantizer, Result, Tensor};
use std::sync::Arc;

/// The outputs for every stored byte of `B`, by `f(q, vector)`, indexed
/// by the byte's bits (a qint8's two's complement).
fn table<B: ByteElement>(f: &impl Fn(i64, bool) -> i64, vector: bool) -> [u8; 256] {
    std::array::from_fn(|raw| {
        let q: B = bytemuck::cast(raw as u8);
        bytemuck::cast(B::from_i64(f(q.to_i64(), vector)))
    })
}

/// Maps `x` through the tables: the vector table for the first
/// [`pytorch_vector_body`] positions in memory order, the scalar one after.
/// The tables are kept across calls ([`table_cache`]), under `key`.
///
/// Tables cost 512 evaluations of `f`, so a tensor with fewer elements
/// than that (a squeeze-excitation gate, `[1, C, 1, 1]`) whose tables are
/// not kept yet evaluates `f` once per element instead: the same
/// function, so the same bits, at a fraction of the cost.
fn by_table<I: VectorIsa, B: ByteElement>(
    isa: I,
    x: &Tensor,
    out_q: &Arc<Quantizer>,
    key: TableKey,
    f: impl Fn(i64, bool) -> i64 + Sync,
) -> Result<Tensor> {
    let numel = x.numel();
    let body = pytorch_vector_body(numel, 1);
    let tables = match table_cache::cached(&key) {
        Some(tables) => tables,
        None if numel < 512 => {
            return map_into::<B>(x, out_q, |start, src, dst| {
                for (i, (s, d)) in src.iter().zip(dst).enumerate() {
                    *d = B::from_i64(f(s.to_i64(), start + i < body));
                }
            })
        }
        None => table_cache::tables(key, || Tables { vector: table::<B>(&f, true), scalar: table::<B>(&f, false) }),
    };
    map_into::<B>(x, out_q, |start, src, dst| {
        let (src, dst): (&[u8], &mut [u8]) = (bytemuck::cast_slice(src), bytemuck::cast_slice_mut(dst));
        // The chunk's positions below `body` take the vector table.
        let split = body.saturating_sub(start).min(src.len());
        let (src_body, src_tail) = src.split_at(split);
        let (dst_body, dst_tail) = dst.split_at_mut(split);
        isa.lookup_bytes(&tables.vector, src_body, dst_body);
        isa.lookup_bytes(&tables.scalar, src_tail, dst_tail);
    })
}

/// Runs `f` by table on 8-bit per-tensor inputs into `(scale,
/// zero_point)`, or `None` for the reference kernel to handle. `f` is
/// `op`'s function of the input's and the output's qparams and of
/// `extra` (a clamp's bounds), which key its kept tables.
fn table_kernel<I: VectorIsa>(
    isa: I,
    op: &'static str,
    x: &Tensor,
    out: Option<(f64, i64)>,
    extra: [i64; 2],
    f: impl Fn(i64, bool) -> i64 + Sync,
) -> Option<Result<Tensor>> {
    let pt = per_tensor(op, "self", x).ok()?;
    let (scale, zero_point) = out.unwrap_or((pt.scale, pt.zero_point));
    let out_q = match output_quantizer(op, pt.dtype, scale, zero_point) {
        Ok(q) => q,
        Err(e) => return Some(Err(e)),
    };
    let key = TableKey {
        op,
        dtype: pt.dtype,
        input: (pt.scale.to_bits(), pt.zero_point),
        output: (scale.to_bits(), zero_point),
        extra,
    };
    match pt.dtype {
        DType::QUInt8 => Some(by_table::<I, u8>(isa, x, &out_q, key, f)),
        DType::QInt8 => Some(by_table::<I, i8>(isa, x, &out_q, key, f)),
        _ => None,
    }
}

/// A float activation's table function: dequantize, `g`, requantize.
fn float_fn(x: &Tensor, out: (f64, i64), g: fn(f32) -> f32) -> Option<impl Fn(i64, bool) -> i64 + Sync> {
    let pt = per_tensor("", "self", x).ok()?;
    let r = DequantRequant::new(pt.scale, pt.zero_point, out.0, out.1, pt.qmin, pt.qmax);
    Some(move |q, vector| r.quantize(g(r.dequantize(q, vector)), vector))
}

/// `quantized::hardswish` by table.
pub fn hardswish<I: VectorIsa>(isa: I, x: &Tensor, output_scale: f64, output_zero_point: i64) -> Result<Tensor> {
    let op = "quantized::hardswish";
    let out = (output_scale, output_zero_point);
    float_fn(x, out, hardswish_fn)
        .and_then(|f| table_kernel(isa, op, x, Some(out), [0; 2], f))
        .unwrap_or_else(|| Err(Error::declined("hardswish: not per-tensor quint8 or qint8")))
}

/// `hardsigmoid` by table.
pub fn hardsigmoid<I: VectorIsa>(isa: I, x: &Tensor) -> Result<Tensor> {
    let out = unit_interval_qparams("hardsigmoid", x.dtype())?;
    float_fn(x, out, hardsigmoid_fn)
        .and_then(|f| table_kernel(isa, "hardsigmoid", x, Some(out), [0; 2], f))
        .unwrap_or_else(|| Err(Error::declined("hardsigmoid: not per-tensor quint8 or qint8")))
}

/// `sigmoid` by table.
pub fn sigmoid<I: VectorIsa>(isa: I, x: &Tensor) -> Result<Tensor> {
    let out = unit_interval_qparams("sigmoid", x.dtype())?;
    match sigmoid_requant(x) {
        Ok(f) => table_kernel(isa, "sigmoid", x, Some(out), [0; 2], f),
        Err(_) => None,
    }
    .unwrap_or_else(|| Err(Error::declined("sigmoid: not per-tensor quint8 or qint8")))
}

/// hardtanh, relu6 and clamp (`op`): an integer clamp, by table like the
/// others.
pub fn clamp_kernel<I: VectorIsa>(
    isa: I,
    op: &'static str,
    x: &Tensor,
    min: Option<f64>,
    max: Option<f64>,
) -> Result<Tensor> {
    let (lo, hi) = clamp_bounds(op, x, min, max)?;
    table_kernel(isa, op, x, None, [lo, hi], move |q, _| q.max(lo).min(hi))
        .unwrap_or_else(|| Err(Error::declined("clamp: not per-tensor quint8 or qint8")))
}

/// `clamp` by table; declines a clamp with neither bound (the reference
/// says why that is an error).
pub fn clamp<I: VectorIsa>(isa: I, x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
    if min.is_none() && max.is_none() {
        return Err(Error::declined("clamp: neither min nor max"));
    }
    clamp_kernel(isa, "clamp", x, min, max)
}
