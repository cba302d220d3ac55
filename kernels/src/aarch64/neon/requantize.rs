//! NEON requantization of bytes to new qparams (quantized::cat's inputs),
//! with the lane arithmetic of `RequantParams::scalar`.

use super::simd::{clamp_round, load16_widen, narrow16, store16};
use crate::vector::{requantize_scalar, ByteElement, RequantParams};
use std::arch::aarch64::*;

/// `clamp(round(rq.scaled(q)) + zo, lo, hi)` over bytes.
#[target_feature(enable = "neon")]
pub(super) fn requantize_bytes<B: ByteElement>(src: &[B], dst: &mut [B], p: RequantParams) {
    let (scale, offset, inv) = (vdupq_n_f32(p.rq.scale), vdupq_n_f32(p.rq.offset), vdupq_n_f32(p.rq.inv));
    let fused = p.rq.fused;
    let zo = vdupq_n_s32(p.zo as i32);
    let (lo, hi) = (vdupq_n_f32((p.lo - p.zo) as f32), vdupq_n_f32((p.hi - p.zo) as f32));
    let lane = |q: int32x4_t| {
        let q = vcvtq_f32_s32(q);
        let real = if fused { vfmaq_f32(offset, q, scale) } else { vmulq_f32(vaddq_f32(q, offset), scale) };
        vaddq_s32(clamp_round(vmulq_f32(real, inv), lo, hi), zo)
    };
    let mut s_chunks = src.chunks_exact(16);
    let mut d_chunks = dst.chunks_exact_mut(16);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        let v = load16_widen(s);
        store16(d, narrow16::<B>([lane(v[0]), lane(v[1]), lane(v[2]), lane(v[3])]));
    }
    requantize_scalar(s_chunks.remainder(), d_chunks.into_remainder(), p);
}
