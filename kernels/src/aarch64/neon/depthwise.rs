//! Depthwise conv2d over channels-last (NHWC) u8 activations with NEON,
//! a row of output pixels at a time (`gemm::depthwise_rows`, shared with
//! the x86 routines): each pixel's channels 16 and then 4 at a time, one
//! FMA per tap, requantized in registers with the portable sequence (see
//! `gemm::depthwise`); the last channels in scalar.
//!
//! Taps in the padding read a row of the input zero point, so they add
//! `(zx - zx) * w = 0` and every pixel has every tap. The sums are exact
//! in f32 (integers below 2^24 with at most 64 taps), so they equal the
//! portable routine's, which skips those taps.

use super::simd::{requant4, requant_bounds, store4_u8};
use crate::gemm::depthwise::DepthwiseArgs;
use crate::gemm::depthwise_rows::{for_each_row, scalar_channels, RowTaps, Source};
use crate::tail_steps::steps_ending_at;
use qtensor_runtime::isa::Neon;
use qtensor_runtime::Result;
use std::arch::aarch64::*;

/// `NB` blocks of 4 channels from `ch` of the pixel that reads from
/// `source`, one FMA chain per block; then requantized into
/// `dst[ch..ch + 4 * NB]`, `dst` being the pixel's `C` output bytes.
#[target_feature(enable = "neon")]
#[inline]
fn blocks<const NB: usize>(a: &DepthwiseArgs<'_>, taps: &RowTaps<'_>, source: Source, ch: usize, dst: &mut [u8]) {
    let c = a.input_sizes[3];
    let vzx = vdupq_n_s32(a.zx);
    let mut acc = [vdupq_n_f32(0.0); NB];
    for t in 0..a.kernel[0] * a.kernel[1] {
        let x = &taps.tap(a.input, c, source, t)[ch..ch + 4 * NB];
        let wt = &a.weights[t * c + ch..t * c + ch + 4 * NB];
        for (j, acc) in acc.iter_mut().enumerate() {
            let xs = &x[4 * j..4 * j + 4];
            let xi = vsubq_s32(vld1q_s32_from_u8([xs[0], xs[1], xs[2], xs[3]]), vzx);
            let w = &wt[4 * j..4 * j + 4];
            // SAFETY: `w` holds 4 floats.
            *acc = vfmaq_f32(*acc, vcvtq_f32_s32(xi), unsafe { vld1q_f32(w.as_ptr()) });
        }
    }
    let (lo, hi, zp) = requant_bounds(a.lo, 255.0, a.zero_point);
    for (j, acc) in acc.into_iter().enumerate() {
        let at = ch + 4 * j;
        let (m, b) = (&a.mult[at..at + 4], &a.bias[at..at + 4]);
        // SAFETY: `m` and `b` hold 4 floats each.
        let (m, b) = unsafe { (vld1q_f32(m.as_ptr()), vld1q_f32(b.as_ptr())) };
        store4_u8(&mut dst[at..at + 4], requant4(acc, b, m, lo, hi, zp));
    }
}

/// 4 bytes widened to 4 lanes of i32.
#[target_feature(enable = "neon")]
#[inline]
fn vld1q_s32_from_u8(b: [u8; 4]) -> int32x4_t {
    let v = vreinterpret_u8_u32(vdup_n_u32(u32::from_le_bytes(b)));
    vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(v))))
}

/// One output row: each pixel's channels in blocks of 16 and 4, the last
/// block of 4 ending at C; fewer than 4 channels in all go in scalar with
/// the lanes' arithmetic ([`scalar_channels`]).
#[target_feature(enable = "neon")]
fn row(a: &DepthwiseArgs<'_>, taps: &RowTaps<'_>, out_row: &mut [u8]) {
    let c = a.input_sizes[3];
    for (ox, source) in taps.pixels() {
        let dst = &mut out_row[ox * c..][..c];
        let mut ch = 0;
        while ch + 16 <= c {
            blocks::<4>(a, taps, source, ch, dst);
            ch += 16;
        }
        // Then blocks of 4, the last ending at C (`tail_steps`).
        for ch in steps_ending_at(ch, c, 4).into_iter().flatten() {
            blocks::<1>(a, taps, source, ch, dst);
        }
    }
    // Fewer than 4 channels in all: every pixel's, in scalar.
    if c < 4 {
        scalar_channels(a, taps, 0, out_row);
    }
}

/// The NHWC depthwise routine.
pub(super) fn depthwise_nhwc(isa: Neon, a: &DepthwiseArgs<'_>, out: &mut [u8]) -> Result<()> {
    let taps = a.f32_taps()?;
    for_each_row(a, out, taps, |taps, out_row| {
        let _: Neon = isa;
        // SAFETY: `isa` is a `Neon` token, which proves NEON.
        unsafe { row(a, taps, out_row) }
    })
}
