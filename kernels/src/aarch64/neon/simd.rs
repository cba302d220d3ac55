//! Vector building blocks shared by the NEON kernels: widening 16 bytes to
//! four vectors of i32, narrowing them back, the quantize step and
//! round-half-to-even conversion.
//!
//! These are safe `#[target_feature]` functions: the compiler lets only
//! code compiled for NEON call them. The `unsafe` blocks inside are the
//! pointer loads and stores, each bounded by an assertion on the slice
//! length.

use crate::vector::ByteElement;
use std::arch::aarch64::*;

/// Loads 16 bytes and widens them to four vectors of 4 i32, in order.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn load16_widen<B: ByteElement>(src: &[B]) -> [int32x4_t; 4] {
    assert!(src.len() >= 16);
    // SAFETY: `src` holds at least 16 one-byte elements (asserted above).
    let raw = unsafe { vld1q_u8(src.as_ptr() as *const u8) };
    let (lo, hi) = if B::SIGNED {
        let v = vreinterpretq_s8_u8(raw);
        (vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v))
    } else {
        (vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(raw))), vreinterpretq_s16_u16(vmovl_high_u8(raw)))
    };
    [vmovl_s16(vget_low_s16(lo)), vmovl_high_s16(lo), vmovl_s16(vget_low_s16(hi)), vmovl_high_s16(hi)]
}

/// Narrows four vectors of 4 i32, each lane within the byte type's range,
/// to 16 bytes in order (saturating, which in range changes nothing).
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn narrow16<B: ByteElement>(v: [int32x4_t; 4]) -> uint8x16_t {
    let lo = vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1]));
    let hi = vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3]));
    if B::SIGNED {
        vreinterpretq_u8_s8(vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)))
    } else {
        vcombine_u8(vqmovun_s16(lo), vqmovun_s16(hi))
    }
}

/// Stores 16 bytes.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn store16<B: ByteElement>(dst: &mut [B], v: uint8x16_t) {
    assert!(dst.len() >= 16);
    // SAFETY: `dst` holds at least 16 writable one-byte elements.
    unsafe { vst1q_u8(dst.as_mut_ptr() as *mut u8, v) }
}

/// Loads 16 bytes as they are.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn load16<B: ByteElement>(src: &[B]) -> uint8x16_t {
    assert!(src.len() >= 16);
    // SAFETY: `src` holds at least 16 one-byte elements (asserted above).
    unsafe { vld1q_u8(src.as_ptr() as *const u8) }
}

/// Loads 4 f32.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn load4_f32(src: &[f32]) -> float32x4_t {
    assert!(src.len() >= 4);
    // SAFETY: `src` holds at least 4 floats (asserted above).
    unsafe { vld1q_f32(src.as_ptr()) }
}

/// Stores 4 f32.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn store4_f32(dst: &mut [f32], v: float32x4_t) {
    assert!(dst.len() >= 4);
    // SAFETY: `dst` holds at least 4 writable floats (asserted above).
    unsafe { vst1q_f32(dst.as_mut_ptr(), v) }
}

/// Loads 4 i32.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn load4_i32(src: &[i32]) -> int32x4_t {
    assert!(src.len() >= 4);
    // SAFETY: `src` holds at least 4 i32 (asserted above).
    unsafe { vld1q_s32(src.as_ptr()) }
}

/// Stores 4 i32.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn store4_i32(dst: &mut [i32], v: int32x4_t) {
    assert!(dst.len() >= 4);
    // SAFETY: `dst` holds at least 4 writable i32 (asserted above).
    unsafe { vst1q_s32(dst.as_mut_ptr(), v) }
}

/// `clamp(v, lo, hi)` rounded half to even to i32: for integer bounds,
/// clamping before rounding equals rounding before clamping. `fcvtns`
/// rounds to nearest with ties to even whatever the FPCR mode.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn clamp_round(v: float32x4_t, lo: float32x4_t, hi: float32x4_t) -> int32x4_t {
    vcvtnq_s32_f32(vminq_f32(vmaxq_f32(v, lo), hi))
}

/// PyTorch's requantization of 4 lanes (`gemm::Requant::scalar`): `(c +
/// bias) * mult`, clamped to `[lo, hi]` (already less the zero point),
/// rounded half to even, plus the zero point.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn requant4(
    c: float32x4_t,
    bias: float32x4_t,
    mult: float32x4_t,
    lo: float32x4_t,
    hi: float32x4_t,
    zp: int32x4_t,
) -> int32x4_t {
    vaddq_s32(clamp_round(vmulq_f32(vaddq_f32(c, bias), mult), lo, hi), zp)
}

/// The clamp bounds and zero point of a requantization, as vectors.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn requant_bounds(lo: f32, hi: f32, zero_point: i32) -> (float32x4_t, float32x4_t, int32x4_t) {
    let zp = zero_point as f32;
    (vdupq_n_f32(lo - zp), vdupq_n_f32(hi - zp), vdupq_n_s32(zero_point))
}

/// Stores 4 lanes of i32, each in `0..=255`, as bytes.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn store4_u8(dst: &mut [u8], q: int32x4_t) {
    let mut lanes = [0i32; 4];
    // SAFETY: `lanes` holds 4 writable i32.
    unsafe { vst1q_s32(lanes.as_mut_ptr(), q) };
    for (d, &v) in dst[..4].iter_mut().zip(&lanes) {
        *d = v as u8;
    }
}
