//! quantize_per_tensor and quantize_per_channel from f32, over an ISA's
//! slice routines: bit-exact with `numerics::quantize_val` (ties to even,
//! saturation at ±2^31 and ±inf, NaN to the zero point).

use crate::args::quantized::per_channel_quantizer;
use crate::parallel::for_each_chunk;
use crate::vector::{QuantizeParams, VectorIsa};
use qtensor_runtime::numerics::inv_scale;
use qtensor_runtime::{DType, Element, Error, QParams, Quantizer, Result, Storage, Tensor};
use std::sync::Arc;

/// Quantizes contiguous `src` into `dst` with per-block qparams: block `b`
/// (of `block` elements) uses channel `b % channels`.
fn quantize_blocks<T: Element>(
    src: &[f32],
    dst: &mut [T],
    block: usize,
    qparams: &[(f64, i64)],
    run: impl Fn(&[f32], &mut [T], f32, i64) + Sync + Send,
) {
    if block == 0 || qparams.is_empty() {
        return;
    }
    // Chunks of whole blocks, so each task knows its blocks' channels.
    let blocks_per_task = (crate::parallel::GRAIN / block).max(1);
    let task = blocks_per_task * block;
    let tasks = dst.len().div_ceil(task);
    let work = |t: usize, d: &mut [T]| {
        for (i, (s, dd)) in src[t * task..].chunks(block).zip(d.chunks_mut(block)).enumerate() {
            let (scale, zp) = qparams[(t * blocks_per_task + i) % qparams.len()];
            let inv = inv_scale(scale);
            // A large block (a whole per-tensor input) splits across threads.
            for_each_chunk(dd, |start, d| run(&s[start..start + d.len()], d, inv, zp));
        }
    };
    if tasks < 2 {
        work(0, dst);
    } else {
        crate::parallel::chunks(dst, task, work);
    }
}

/// Quantizes a float32 tensor with `quantizer` through `isa`; declines
/// anything else (float64 input, qint16, quint4x2), which the reference
/// kernel takes.
pub fn quantize<I: VectorIsa>(isa: I, op: &str, x: &Tensor, quantizer: &Arc<Quantizer>) -> Result<Tensor> {
    let dtype = quantizer.dtype();
    if x.dtype() != DType::Float32 || !matches!(dtype, DType::QUInt8 | DType::QInt8 | DType::QInt32) {
        return Err(Error::declined("quantize: only float32 to quint8, qint8 or qint32"));
    }
    quantizer.check_fits(op, x.sizes())?;
    let (qmin, qmax) = qtensor_runtime::quantizer::check_quantized_dtype(op, dtype)?;
    let storage = Storage::for_overwrite(dtype.storage_type(), x.numel())?;
    // Per-tensor: one block of everything. Per-channel: the blocks of
    // `inner` elements between steps of the channel index.
    let (block, qparams) = match quantizer.params() {
        QParams::PerTensorAffine { scale, zero_point, .. } => (x.numel(), vec![(scale, zero_point)]),
        QParams::PerChannelAffine { scales, zero_points, axis, .. } => {
            let inner = qtensor_runtime::tensor::layout::numel_of(&x.sizes()[axis + 1..]);
            (inner, scales.iter().copied().zip(zero_points.iter().copied()).collect())
        }
    };
    let params = |inv, zero_point| QuantizeParams { inv, zero_point, qmin, qmax };
    x.with_contiguous::<f32, Result<()>>(|src| {
        match dtype {
            DType::QUInt8 => quantize_blocks(src, &mut storage.write::<u8>()?, block, &qparams, |s, d, inv, zp| {
                isa.quantize_bytes(s, d, params(inv, zp))
            }),
            DType::QInt8 => quantize_blocks(src, &mut storage.write::<i8>()?, block, &qparams, |s, d, inv, zp| {
                isa.quantize_bytes(s, d, params(inv, zp))
            }),
            _ => quantize_blocks(src, &mut storage.write::<i32>()?, block, &qparams, |s, d, inv, zp| {
                isa.quantize_i32(s, d, inv, zp)
            }),
        }
        Ok(())
    })??;
    Tensor::quantized_from_storage(storage, x.sizes(), quantizer)
}

/// quantize_per_tensor through `isa`.
pub fn quantize_per_tensor<I: VectorIsa>(
    isa: I,
    x: &Tensor,
    scale: f64,
    zero_point: i64,
    dtype: DType,
) -> Result<Tensor> {
    let op = "quantize_per_tensor";
    quantize(isa, op, x, &crate::args::quantized::per_tensor_quantizer(op, None, dtype, scale, zero_point)?)
}

/// quantize_per_channel through `isa`.
pub fn quantize_per_channel<I: VectorIsa>(
    isa: I,
    x: &Tensor,
    scales: &Tensor,
    zero_points: &Tensor,
    axis: i64,
    dtype: DType,
) -> Result<Tensor> {
    let op = "quantize_per_channel";
    quantize(isa, op, x, &per_channel_quantizer(op, x, scales, zero_points, axis, dtype)?)
}
