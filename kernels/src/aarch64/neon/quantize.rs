//! NEON quantize of f32 to quint8, qint8 and qint32, bit-exact with
//! `numerics::quantize_val` (ties to even, saturation at ±2^31 and ±inf,
//! NaN to the zero point).

use super::simd::{clamp_round, load4_f32, narrow16, store16, store4_i32};
use crate::vector::{quantize_scalar, ByteElement, QuantizeParams};
use std::arch::aarch64::*;

/// `x * inv` with NaN mapped to 0 (so it lands on the zero point).
#[target_feature(enable = "neon")]
#[inline]
fn scaled(x: float32x4_t, inv: float32x4_t) -> float32x4_t {
    let v = vmulq_f32(x, inv);
    let ordered = vceqq_f32(v, v);
    vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), ordered))
}

/// Quantizes `src` into 8-bit `dst` (same length).
#[target_feature(enable = "neon")]
pub(super) fn quantize_bytes<B: ByteElement>(src: &[f32], dst: &mut [B], q: QuantizeParams) {
    let inv = vdupq_n_f32(q.inv);
    let zp = vdupq_n_s32(q.zero_point as i32);
    let lo = vdupq_n_f32((q.qmin - q.zero_point) as f32);
    let hi = vdupq_n_f32((q.qmax - q.zero_point) as f32);
    let lane = |s: &[f32]| vaddq_s32(clamp_round(scaled(load4_f32(s), inv), lo, hi), zp);
    let mut s_chunks = src.chunks_exact(16);
    let mut d_chunks = dst.chunks_exact_mut(16);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        store16(d, narrow16::<B>([lane(&s[0..4]), lane(&s[4..8]), lane(&s[8..12]), lane(&s[12..16])]));
    }
    quantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), q);
}

/// Quantizes `src` into qint32 `dst`. The zero point is added in 64 bits
/// and the sum saturated, so no zero point in the i32 range can overflow;
/// values at or beyond ±2^31 saturate whatever the zero point.
#[target_feature(enable = "neon")]
pub(super) fn quantize_i32(src: &[f32], dst: &mut [i32], inv: f32, zero_point: i64) {
    let vinv = vdupq_n_f32(inv);
    let zp = vdupq_n_s64(zero_point);
    let two31 = vdupq_n_f32(2_147_483_648.0);
    let neg_two31 = vdupq_n_f32(-2_147_483_648.0);
    let mut s_chunks = src.chunks_exact(4);
    let mut d_chunks = dst.chunks_exact_mut(4);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        let v = scaled(load4_f32(s), vinv);
        let big = vcgeq_f32(v, two31);
        let small = vcleq_f32(v, neg_two31);
        // In range, fcvtns is exact rounding; the saturated lanes are
        // replaced below.
        let r = vcvtnq_s32_f32(v);
        let lo = vqmovn_s64(vaddq_s64(vmovl_s32(vget_low_s32(r)), zp));
        let hi = vqmovn_s64(vaddq_s64(vmovl_high_s32(r), zp));
        let sum = vcombine_s32(lo, hi);
        let v = vbslq_s32(big, vdupq_n_s32(i32::MAX), sum);
        store4_i32(d, vbslq_s32(small, vdupq_n_s32(i32::MIN), v));
    }
    let q = QuantizeParams { inv, zero_point, qmin: i32::MIN as i64, qmax: i32::MAX as i64 };
    quantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), q);
}
