//! AVX2 quantize_per_tensor and quantize_per_channel, f32 to quint8, qint8
//! and qint32, bit-exact with `numerics::quantize_val` (ties to even,
//! saturation at ±2^31 and ±inf, NaN to the zero point).

use super::simd::{load8_f32, pack32, scale_clamp, store32, store8_i32, stream_fence, Byte};
use super::PRIORITY;
use crate::parallel::for_each_chunk;
use crate::reference::quantize::{per_channel_quantizer, quantize_with};
use crate::x86_64::has_avx2;
use qtensor_runtime::numerics::{inv_scale, quantize_val};
use qtensor_runtime::{register_kernel, DType, Element, QParams, Quantizer, Result, Storage, Tensor};
use std::arch::x86_64::*;
use std::sync::Arc;

/// Quantizes `src` into 8-bit `dst` (same length) with one (scale, zero point).
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
pub fn avx2_quantize_bytes<B: Byte>(
    src: &[f32],
    dst: &mut [B],
    inv: f32,
    zero_point: i64,
    qmin: i64,
    qmax: i64,
    stream: bool,
) {
    let (vinv, zp) = (_mm256_set1_ps(inv), _mm256_set1_epi32(zero_point as i32));
    let lo = _mm256_set1_ps((qmin - zero_point) as f32);
    let hi = _mm256_set1_ps((qmax - zero_point) as f32);
    let lanes = |s: &[f32]| _mm256_add_epi32(_mm256_cvtps_epi32(scale_clamp(load8_f32(s), vinv, lo, hi)), zp);
    let mut s_chunks = src.chunks_exact(32);
    let mut d_chunks = dst.chunks_exact_mut(32);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        store32(d, pack32::<B>(lanes(&s[0..8]), lanes(&s[8..16]), lanes(&s[16..24]), lanes(&s[24..32])), stream);
    }
    if stream {
        stream_fence();
    }
    for (s, d) in s_chunks.remainder().iter().zip(d_chunks.into_remainder()) {
        *d = B::from_i64(quantize_val(*s, inv, zero_point, qmin, qmax));
    }
}

/// Clamps 4 lanes of i64 to the i32 range.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn clamp_i64_to_i32(v: __m256i) -> __m256i {
    let (max, min) = (_mm256_set1_epi64x(i32::MAX as i64), _mm256_set1_epi64x(i32::MIN as i64));
    let v = _mm256_blendv_epi8(v, max, _mm256_cmpgt_epi64(v, max));
    _mm256_blendv_epi8(v, min, _mm256_cmpgt_epi64(min, v))
}

/// Quantizes `src` into qint32 `dst`. The zero point is added in 64 bits so
/// that no zero point in the i32 range can overflow.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
pub fn avx2_quantize_i32(src: &[f32], dst: &mut [i32], inv: f32, zero_point: i64) {
    let vinv = _mm256_set1_ps(inv);
    let zp = _mm256_set1_epi64x(zero_point);
    let two31 = _mm256_set1_ps(2_147_483_648.0);
    let neg_two31 = _mm256_set1_ps(-2_147_483_648.0);
    let low_dwords = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    let mut s_chunks = src.chunks_exact(8);
    let mut d_chunks = dst.chunks_exact_mut(8);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        // Clamping to ±2^31 keeps the conversion in range; the masks below
        // then saturate those lanes whatever the zero point.
        let r = scale_clamp(load8_f32(s), vinv, neg_two31, two31);
        let big = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(r, two31));
        let small = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(r, neg_two31));
        let ri = _mm256_cvtps_epi32(r);
        let lo4 = clamp_i64_to_i32(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(ri)), zp));
        let hi4 = clamp_i64_to_i32(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(ri)), zp));
        let narrowed = _mm256_permute2x128_si256::<0x20>(
            _mm256_permutevar8x32_epi32(lo4, low_dwords),
            _mm256_permutevar8x32_epi32(hi4, low_dwords),
        );
        let v = _mm256_blendv_epi8(narrowed, _mm256_set1_epi32(i32::MAX), big);
        store8_i32(d, _mm256_blendv_epi8(v, _mm256_set1_epi32(i32::MIN), small));
    }
    for (s, d) in s_chunks.remainder().iter().zip(d_chunks.into_remainder()) {
        *d = quantize_val(*s, inv, zero_point, i32::MIN as i64, i32::MAX as i64) as i32;
    }
}

/// Quantizes contiguous `src` into `dst` with per-block qparams: block `b`
/// (of `block` elements) uses channel `b % channels`.
fn quantize_blocks<T: Element>(
    src: &[f32],
    dst: &mut [T],
    block: usize,
    qparams: &[(f64, i64)],
    run: impl Fn(&[f32], &mut [T], f32, i64) + Sync + Send,
) {
    if block == 0 {
        return;
    }
    // Chunks of whole blocks, so each task knows its blocks' channels.
    let blocks_per_task = (crate::parallel::GRAIN / block).max(1);
    let task = blocks_per_task * block;
    let tasks = dst.len().div_ceil(task);
    let work = |t: usize, d: &mut [T]| {
        for (i, (s, dd)) in src[t * task..].chunks(block).zip(d.chunks_mut(block)).enumerate() {
            let (scale, zp) = qparams[(t * blocks_per_task + i) % qparams.len()];
            run(s, dd, inv_scale(scale), zp);
        }
    };
    if tasks < 2 || rayon::current_num_threads() == 1 {
        work(0, dst);
    } else {
        use rayon::prelude::*;
        dst.par_chunks_mut(task).enumerate().for_each(|(t, d)| work(t, d));
    }
}

/// Quantizes a float32 tensor with `quantizer` using AVX2; anything else
/// (float64 input, a CPU without AVX2) goes to the reference kernel.
fn avx2_quantize(op: &str, x: &Tensor, quantizer: &Arc<Quantizer>) -> Result<Tensor> {
    let dtype = quantizer.dtype();
    if x.dtype() != DType::Float32 || !has_avx2() || !matches!(dtype, DType::QUInt8 | DType::QInt8 | DType::QInt32) {
        return quantize_with(op, x, quantizer);
    }
    quantizer.check_fits(op, x.sizes())?;
    let (qmin, qmax) = qtensor_runtime::quantizer::check_quantized_dtype(op, dtype)?;
    let storage = Storage::for_overwrite(dtype.storage_type(), x.numel())?;
    // Streaming the (4x smaller) output measured slower here: the input
    // read dominates and the output lines are better left cached.
    let stream = false;
    // Per-tensor: one block of everything. Per-channel: the blocks of
    // `inner` elements between steps of the channel index.
    let (block, qparams) = match quantizer.params() {
        QParams::PerTensorAffine { scale, zero_point, .. } => (x.numel(), vec![(scale, zero_point)]),
        QParams::PerChannelAffine { scales, zero_points, axis, .. } => {
            let inner: usize = x.sizes()[axis + 1..].iter().product();
            (inner, scales.iter().copied().zip(zero_points.iter().copied()).collect())
        }
    };
    x.with_contiguous::<f32, Result<()>>(|src| {
        match dtype {
            // SAFETY (all arms): `has_avx2()` held above.
            DType::QUInt8 => quantize_blocks(src, &mut storage.write::<u8>()?, block, &qparams, |s, d, inv, zp| {
                per_tensor_chunks(s, d, |s, d| unsafe { avx2_quantize_bytes(s, d, inv, zp, qmin, qmax, stream) })
            }),
            DType::QInt8 => quantize_blocks(src, &mut storage.write::<i8>()?, block, &qparams, |s, d, inv, zp| {
                per_tensor_chunks(s, d, |s, d| unsafe { avx2_quantize_bytes(s, d, inv, zp, qmin, qmax, stream) })
            }),
            DType::QInt32 => quantize_blocks(src, &mut storage.write::<i32>()?, block, &qparams, |s, d, inv, zp| {
                per_tensor_chunks(s, d, |s, d| unsafe { avx2_quantize_i32(s, d, inv, zp) })
            }),
            _ => {}
        }
        Ok(())
    })??;
    Tensor::quantized_from_storage(storage, x.sizes(), quantizer)
}

/// Runs `f` over a block, split across threads when it is large (a
/// per-tensor block is the whole tensor).
fn per_tensor_chunks<T: Element>(src: &[f32], dst: &mut [T], f: impl Fn(&[f32], &mut [T]) + Sync + Send) {
    for_each_chunk(dst, |start, d| f(&src[start..start + d.len()], d));
}

fn avx2_quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Result<Tensor> {
    avx2_quantize("quantize_per_tensor", x, &Quantizer::per_tensor(scale, zero_point, dtype)?)
}

register_kernel! {
    op: "quantize_per_tensor",
    dtypes: [Float32],
    name: "avx2_quantize_per_tensor",
    priority: PRIORITY,
    is_supported: has_avx2,
    fn avx2_quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Tensor
}

fn avx2_quantize_per_channel(
    x: &Tensor,
    scales: &Tensor,
    zero_points: &Tensor,
    axis: i64,
    dtype: DType,
) -> Result<Tensor> {
    let op = "quantize_per_channel";
    avx2_quantize(op, x, &per_channel_quantizer(op, x, scales, zero_points, axis, dtype)?)
}

register_kernel! {
    op: "quantize_per_channel",
    dtypes: [Float32],
    name: "avx2_quantize_per_channel",
    priority: PRIORITY,
    is_supported: has_avx2,
    fn avx2_quantize_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64, dtype: DType) -> Tensor
}
