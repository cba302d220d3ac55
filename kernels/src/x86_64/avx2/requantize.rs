//! AVX2 requantization of bytes to new qparams (quantized::cat's inputs),
//! with the lane arithmetic of `RequantParams::scalar`.

use super::simd::{load8_widen, pack32, prefetch_stream, store32};
use crate::vector::{requantize_scalar, ByteElement, RequantParams};
use std::arch::x86_64::*;

/// `clamp(round(rq.scaled(q)) + zo, lo, hi)` over bytes.
#[target_feature(enable = "avx2,fma")]
pub(super) fn requantize_bytes<B: ByteElement>(src: &[B], dst: &mut [B], p: RequantParams) {
    let RequantParams { rq, zo, lo, hi } = p;
    let (scale, offset, inv) = (_mm256_set1_ps(rq.scale), _mm256_set1_ps(rq.offset), _mm256_set1_ps(rq.inv));
    let (vlo, vhi, vzo) =
        (_mm256_set1_ps((lo - zo) as f32), _mm256_set1_ps((hi - zo) as f32), _mm256_set1_epi32(zo as i32));
    let lanes = |s: &[B]| {
        let q = _mm256_cvtepi32_ps(load8_widen(s));
        let real =
            if rq.fused { _mm256_fmadd_ps(q, scale, offset) } else { _mm256_mul_ps(_mm256_add_ps(q, offset), scale) };
        let v = _mm256_mul_ps(real, inv);
        _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, vlo), vhi)), vzo)
    };
    let mut s_chunks = src.chunks_exact(32);
    let mut d_chunks = dst.chunks_exact_mut(32);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        prefetch_stream(s);
        store32(d, pack32::<B>(lanes(&s[0..8]), lanes(&s[8..16]), lanes(&s[16..24]), lanes(&s[24..32])), false);
    }
    requantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), p);
}
