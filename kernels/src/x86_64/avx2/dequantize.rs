//! AVX2 dequantize of quint8, qint8 and qint32 to f32, bit-exact with
//! `numerics::dequantize_val`: `(q - zero_point) as f32 * scale as f32`.

use super::simd::{load8_i32, load8_widen, store8_f32, stream_fence, Byte, STREAM_BYTES};
use super::PRIORITY;
use crate::parallel::for_each_chunk;
use crate::x86_64::has_avx2;
use qtensor_runtime::numerics::dequantize_val;
use qtensor_runtime::{register_kernel, DType, Element, Error, Result, Storage, Tensor};
use std::arch::x86_64::*;

/// Dequantizes 8-bit `src` into `dst`.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
pub fn avx2_dequantize_bytes<B: Byte>(src: &[B], dst: &mut [f32], scale: f32, zero_point: i64, stream: bool) {
    let (vs, zp) = (_mm256_set1_ps(scale), _mm256_set1_epi32(zero_point as i32));
    let mut s_chunks = src.chunks_exact(8);
    let mut d_chunks = dst.chunks_exact_mut(8);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        // q - zp fits i32 exactly and converts exactly (|q - zp| < 2^24).
        let centered = _mm256_sub_epi32(load8_widen(s), zp);
        store8_f32(d, _mm256_mul_ps(_mm256_cvtepi32_ps(centered), vs), stream);
    }
    if stream {
        stream_fence();
    }
    for (s, d) in s_chunks.remainder().iter().zip(d_chunks.into_remainder()) {
        *d = dequantize_val(s.to_i64(), scale, zero_point);
    }
}

/// Dequantizes qint32 `src` into `dst`. `q - zp` is formed in i32 and, like
/// the scalar `i64 as f32`, converted with one round-to-nearest-even; the
/// rare group of 8 where the i32 subtraction would overflow goes scalar.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
pub fn avx2_dequantize_i32(src: &[i32], dst: &mut [f32], scale: f32, zero_point: i64) {
    let (vs, zp) = (_mm256_set1_ps(scale), _mm256_set1_epi32(zero_point as i32));
    let mut s_chunks = src.chunks_exact(8);
    let mut d_chunks = dst.chunks_exact_mut(8);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        let q = load8_i32(s);
        let diff = _mm256_sub_epi32(q, zp);
        // Signed overflow of q - zp: q and zp differ in sign, and so do q and the result.
        let overflow = _mm256_and_si256(_mm256_xor_si256(q, zp), _mm256_xor_si256(q, diff));
        if _mm256_movemask_ps(_mm256_castsi256_ps(overflow)) == 0 {
            store8_f32(d, _mm256_mul_ps(_mm256_cvtepi32_ps(diff), vs), false);
        } else {
            for (v, o) in s.iter().zip(d.iter_mut()) {
                *o = dequantize_val(*v as i64, scale, zero_point);
            }
        }
    }
    for (s, d) in s_chunks.remainder().iter().zip(d_chunks.into_remainder()) {
        *d = dequantize_val(*s as i64, scale, zero_point);
    }
}

/// Runs a per-block dequantize over contiguous `src`, in parallel chunks.
/// Whether a dequantize output of `n` floats is large enough to stream.
fn sc_stream(n: usize) -> bool {
    n * 4 >= STREAM_BYTES / 2
}

fn dequantize_into<T: Element>(
    src: &[T],
    dst: &mut [f32],
    scale: f32,
    zero_point: i64,
    f: fn(&[T], &mut [f32], f32, i64),
) {
    for_each_chunk(dst, |start, d| f(&src[start..start + d.len()], d, scale, zero_point));
}

fn avx2_dequantize(q: &Tensor) -> Result<Tensor> {
    let op = "dequantize";
    let quantizer = q.quantizer().ok_or_else(|| Error::WrongDType {
        op: op.into(),
        expected: "a quantized tensor".into(),
        got: q.dtype(),
    })?;
    let (scale, zp) = match quantizer.per_tensor_qparams() {
        Some((scale, zero_point)) if has_avx2() => (scale as f32, zero_point),
        // Per-channel tensors and CPUs without AVX2 take the reference path.
        _ => return crate::reference::quantize::reference_dequantize(q),
    };
    let storage = Storage::for_overwrite(DType::Float32.storage_type(), q.numel())?;
    {
        let mut dst = storage.write::<f32>()?;
        // SAFETY (each closure): `has_avx2()` held when the qparams were read.
        match q.dtype() {
            DType::QUInt8 => q.with_contiguous::<u8, _>(|s| {
                dequantize_into(s, &mut dst, scale, zp, |s, d, sc, z| unsafe {
                    avx2_dequantize_bytes(s, d, sc, z, sc_stream(s.len()))
                })
            })?,
            DType::QInt8 => q.with_contiguous::<i8, _>(|s| {
                dequantize_into(s, &mut dst, scale, zp, |s, d, sc, z| unsafe {
                    avx2_dequantize_bytes(s, d, sc, z, sc_stream(s.len()))
                })
            })?,
            DType::QInt32 => q.with_contiguous::<i32, _>(|s| {
                dequantize_into(s, &mut dst, scale, zp, |s, d, sc, z| unsafe { avx2_dequantize_i32(s, d, sc, z) })
            })?,
            _ => {
                drop(dst);
                return crate::reference::quantize::reference_dequantize(q);
            }
        }
    }
    Tensor::from_storage(storage, DType::Float32, q.sizes())
}

register_kernel! {
    op: "dequantize",
    dtypes: [QUInt8, QInt8, QInt32],
    name: "avx2_dequantize",
    priority: PRIORITY,
    is_supported: has_avx2,
    fn avx2_dequantize(q: &Tensor) -> Tensor
}
