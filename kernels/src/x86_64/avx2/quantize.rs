//! AVX2 quantize of f32 to quint8, qint8 and qint32, bit-exact with
//! `numerics::quantize_val` (ties to even, saturation at ±2^31 and ±inf,
//! NaN to the zero point).

use super::simd::{load8_f32, pack32, prefetch_stream, scale_clamp, store32, store8_i32};
use crate::vector::{quantize_scalar, ByteElement, QuantizeParams};
use std::arch::x86_64::*;

/// Quantizes `src` into 8-bit `dst` (same length) with one (scale, zero point).
#[target_feature(enable = "avx2,fma")]
pub(super) fn quantize_bytes<B: ByteElement>(src: &[f32], dst: &mut [B], q: QuantizeParams) {
    let QuantizeParams { inv, zero_point, qmin, qmax } = q;
    let (vinv, zp) = (_mm256_set1_ps(inv), _mm256_set1_epi32(zero_point as i32));
    let lo = _mm256_set1_ps((qmin - zero_point) as f32);
    let hi = _mm256_set1_ps((qmax - zero_point) as f32);
    let lanes = |s: &[f32]| _mm256_add_epi32(_mm256_cvtps_epi32(scale_clamp(load8_f32(s), vinv, lo, hi)), zp);
    let mut s_chunks = src.chunks_exact(32);
    let mut d_chunks = dst.chunks_exact_mut(32);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        prefetch_stream(s);
        // Streaming the (4x smaller) output measured slower: the input
        // read dominates and the output lines are better left cached.
        store32(d, pack32::<B>(lanes(&s[0..8]), lanes(&s[8..16]), lanes(&s[16..24]), lanes(&s[24..32])), false);
    }
    quantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), q);
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
#[target_feature(enable = "avx2,fma")]
pub(super) fn quantize_i32(src: &[f32], dst: &mut [i32], inv: f32, zero_point: i64) {
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
    let q = QuantizeParams { inv, zero_point, qmin: i32::MIN as i64, qmax: i32::MAX as i64 };
    quantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), q);
}
