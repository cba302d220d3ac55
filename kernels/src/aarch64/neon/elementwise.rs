//! NEON relu (exact) and the requantizing binary ops (add, add_relu, mul)
//! over bytes, with the lane arithmetic of `BinaryParams::scalar`.

use super::simd::{clamp_round, load16, load16_widen, load4_i32, narrow16, store16, store4_i32};
use crate::vector::{binary_scalar, relu_scalar, BinaryParams, ByteElement, Combine};
use std::arch::aarch64::*;

/// `max(q, zero_point)` over bytes.
#[target_feature(enable = "neon")]
pub(super) fn relu_bytes<B: ByteElement>(src: &[B], dst: &mut [B], zero_point: i64) {
    let mut s_chunks = src.chunks_exact(16);
    let mut d_chunks = dst.chunks_exact_mut(16);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        let v = load16(s);
        let out = if B::SIGNED {
            vreinterpretq_u8_s8(vmaxq_s8(vreinterpretq_s8_u8(v), vdupq_n_s8(zero_point as i8)))
        } else {
            vmaxq_u8(v, vdupq_n_u8(zero_point as u8))
        };
        store16(d, out);
    }
    relu_scalar(s_chunks.remainder(), d_chunks.into_remainder(), zero_point);
}

/// `max(q, zero_point)` over qint32.
#[target_feature(enable = "neon")]
pub(super) fn relu_i32(src: &[i32], dst: &mut [i32], zero_point: i64) {
    let zp = vdupq_n_s32(zero_point as i32);
    let mut s_chunks = src.chunks_exact(4);
    let mut d_chunks = dst.chunks_exact_mut(4);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        store4_i32(d, vmaxq_s32(load4_i32(s), zp));
    }
    relu_scalar(s_chunks.remainder(), d_chunks.into_remainder(), zero_point);
}

/// The requantized combination of two same-length byte slices, in f32
/// as `BinaryParams::scalar` does it, rounded half to even, then the
/// output zero point added exactly.
#[target_feature(enable = "neon")]
pub(super) fn binary_bytes<B: ByteElement>(a: &[B], b: &[B], dst: &mut [B], p: BinaryParams) {
    let (lo, hi) = (vdupq_n_f32((p.lo - p.zo) as f32), vdupq_n_f32((p.hi - p.zo) as f32));
    let (za, zb, zo) = (vdupq_n_s32(p.za as i32), vdupq_n_s32(p.zb as i32), vdupq_n_s32(p.zo as i32));
    let lane = |x: int32x4_t, y: int32x4_t| {
        let v = match p.combine {
            // PyTorch's vector add: each operand dequantized by one fused
            // multiply-add (vfmaq_f32(c, a, b) = c + a * b) onto its
            // premultiplied zero point.
            Combine::Add { sa, pa, sb, pb, inv } => {
                let xa = vfmaq_f32(vdupq_n_f32(pa), vcvtq_f32_s32(x), vdupq_n_f32(sa));
                let xb = vfmaq_f32(vdupq_n_f32(pb), vcvtq_f32_s32(y), vdupq_n_f32(sb));
                vmulq_f32(vaddq_f32(xa, xb), vdupq_n_f32(inv))
            }
            // The product of the differences is exact in i32 and in f32.
            Combine::Mul { m } => {
                let prod = vmulq_s32(vsubq_s32(x, za), vsubq_s32(y, zb));
                vmulq_f32(vcvtq_f32_s32(prod), vdupq_n_f32(m))
            }
        };
        vaddq_s32(clamp_round(v, lo, hi), zo)
    };
    let mut a_chunks = a.chunks_exact(16);
    let mut b_chunks = b.chunks_exact(16);
    let mut d_chunks = dst.chunks_exact_mut(16);
    for ((x, y), d) in (&mut a_chunks).zip(&mut b_chunks).zip(&mut d_chunks) {
        let (x, y) = (load16_widen(x), load16_widen(y));
        store16(d, narrow16::<B>([lane(x[0], y[0]), lane(x[1], y[1]), lane(x[2], y[2]), lane(x[3], y[3])]));
    }
    binary_scalar(a_chunks.remainder(), b_chunks.remainder(), d_chunks.into_remainder(), p);
}
