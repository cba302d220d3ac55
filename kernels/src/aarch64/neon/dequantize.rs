//! NEON dequantize of quint8, qint8 and qint32 to f32, bit-exact with
//! `numerics::dequantize_val`: `(q - zero_point) as f32 * scale as f32`.

use super::simd::{load16_widen, load4_i32, store4_f32};
use crate::vector::{dequantize_scalar, ByteElement};
use std::arch::aarch64::*;

/// Dequantizes 8-bit `src` into `dst`.
#[target_feature(enable = "neon")]
pub(super) fn dequantize_bytes<B: ByteElement>(src: &[B], dst: &mut [f32], scale: f32, zero_point: i64) {
    let (vs, zp) = (vdupq_n_f32(scale), vdupq_n_s32(zero_point as i32));
    let mut s_chunks = src.chunks_exact(16);
    let mut d_chunks = dst.chunks_exact_mut(16);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        for (i, v) in load16_widen(s).into_iter().enumerate() {
            // q - zp is exact in i32 and converts exactly (|q - zp| < 2^24).
            store4_f32(&mut d[4 * i..], vmulq_f32(vcvtq_f32_s32(vsubq_s32(v, zp)), vs));
        }
    }
    dequantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), scale, zero_point);
}

/// Dequantizes qint32 `src` into `dst`. `q - zp` is formed in i32 and,
/// like the scalar `i64 as f32`, converted with one round-to-nearest-even;
/// the rare group of 4 where the i32 subtraction would overflow goes
/// scalar.
#[target_feature(enable = "neon")]
pub(super) fn dequantize_i32(src: &[i32], dst: &mut [f32], scale: f32, zero_point: i64) {
    let (vs, zp) = (vdupq_n_f32(scale), vdupq_n_s32(zero_point as i32));
    let mut s_chunks = src.chunks_exact(4);
    let mut d_chunks = dst.chunks_exact_mut(4);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        let q = load4_i32(s);
        let diff = vsubq_s32(q, zp);
        // Signed overflow of q - zp: q and zp differ in sign, and so do q
        // and the result. (A zero point outside i32 overflows every lane.)
        let overflow = vandq_s32(veorq_s32(q, zp), veorq_s32(q, diff));
        if vminvq_s32(overflow) >= 0 && zero_point == zero_point as i32 as i64 {
            store4_f32(d, vmulq_f32(vcvtq_f32_s32(diff), vs));
        } else {
            dequantize_scalar(s, d, scale, zero_point);
        }
    }
    dequantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), scale, zero_point);
}
