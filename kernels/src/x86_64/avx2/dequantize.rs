//! AVX2 dequantize of quint8, qint8 and qint32 to f32, bit-exact with
//! `numerics::dequantize_val`: `(q - zero_point) as f32 * scale as f32`.

use super::simd::{load8_i32, load8_widen, store8_f32, stream_fence};
use crate::vector::{dequantize_scalar, ByteElement};
use std::arch::x86_64::*;

/// Dequantizes 8-bit `src` into `dst`.
#[target_feature(enable = "avx2,fma")]
pub(super) fn dequantize_bytes<B: ByteElement>(src: &[B], dst: &mut [f32], scale: f32, zero_point: i64, stream: bool) {
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
    dequantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), scale, zero_point);
}

/// Dequantizes qint32 `src` into `dst`. `q - zp` is formed in i32 and, like
/// the scalar `i64 as f32`, converted with one round-to-nearest-even; the
/// rare group of 8 where the i32 subtraction would overflow goes scalar.
#[target_feature(enable = "avx2,fma")]
pub(super) fn dequantize_i32(src: &[i32], dst: &mut [f32], scale: f32, zero_point: i64) {
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
            dequantize_scalar(s, d, scale, zero_point);
        }
    }
    dequantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), scale, zero_point);
}
