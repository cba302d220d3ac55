//! Depthwise conv2d over channels-last (NHWC) u8 activations, any stride,
//! padding and dilation, with AVX2: each output pixel's channels are
//! computed 8 at a time, one FMA per tap, and requantized in registers.
//!
//! The sums are exact in f32 for the same reason as the NCHW kernel's:
//! every term is an integer of magnitude at most 255 * 255 and at most 64
//! taps keep the total below 2^24. The requantization is the GEMM
//! epilogue's own sequence (`fma(C, mult, add)`, clamp, round to even), so
//! both conv paths agree.

use super::simd::{requant8, requant_bounds};
use crate::gemm::depthwise::{for_each_pixel, pixel_scalar, DepthwiseArgs};
use qtensor_runtime::isa::Avx2;
use qtensor_runtime::Result;
use std::arch::x86_64::*;

/// `NB` blocks of 8 channels from `ch` of one output pixel: one FMA chain
/// per block, so `NB` chains hide the FMA latency; then requantized into
/// `dst[ch..ch + 8 * NB]`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn blocks<const NB: usize>(a: &DepthwiseArgs<'_>, taps: &[(usize, usize)], c: usize, ch: usize, dst: &mut [u8]) {
    let vzx = _mm256_set1_epi32(a.zx);
    let mut acc = [_mm256_setzero_ps(); NB];
    for &(at, t) in taps {
        let x = &a.input[at + ch..at + ch + 8 * NB];
        let wt = &a.weights[t * c + ch..t * c + ch + 8 * NB];
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `x` holds 8 NB bytes and `wt` 8 NB floats (sliced
            // above), so block j's 8 bytes and 8 floats are in bounds;
            // unaligned loads.
            unsafe {
                let xb = _mm_loadl_epi64(x.as_ptr().add(8 * j) as *const __m128i);
                let xi = _mm256_sub_epi32(_mm256_cvtepu8_epi32(xb), vzx);
                *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(xi), _mm256_loadu_ps(wt.as_ptr().add(8 * j)), *acc);
            }
        }
    }
    let (lo, hi, zp) = requant_bounds(a.lo, 255.0, a.zero_point);
    for (j, acc) in acc.iter().enumerate() {
        let at = ch + 8 * j;
        let (m, b) = (&a.mult[at..at + 8], &a.bias[at..at + 8]);
        // SAFETY: `m` and `b` hold 8 floats each.
        let (m, b) = unsafe { (_mm256_loadu_ps(m.as_ptr()), _mm256_loadu_ps(b.as_ptr())) };
        let q = requant8(*acc, b, m, lo, hi, zp);
        let words = _mm256_packus_epi32(q, q);
        let bytes =
            _mm256_permutevar8x32_epi32(_mm256_packus_epi16(words, words), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
        let d8 = &mut dst[at..at + 8];
        // SAFETY: `d8` holds 8 writable bytes; an unaligned 8-byte store.
        unsafe { _mm_storel_epi64(d8.as_mut_ptr() as *mut __m128i, _mm256_castsi256_si128(bytes)) };
    }
}

/// One output pixel: its channels in blocks of 64, 32, 16 and 8, then
/// the rest in scalar.
#[target_feature(enable = "avx2,fma")]
fn pixel(a: &DepthwiseArgs<'_>, taps: &[(usize, usize)], dst: &mut [u8]) {
    let c = a.input_sizes[3];
    let mut ch = 0;
    while ch + 64 <= c {
        blocks::<8>(a, taps, c, ch, dst);
        ch += 64;
    }
    if ch + 32 <= c {
        blocks::<4>(a, taps, c, ch, dst);
        ch += 32;
    }
    if ch + 16 <= c {
        blocks::<2>(a, taps, c, ch, dst);
        ch += 16;
    }
    if ch + 8 <= c {
        blocks::<1>(a, taps, c, ch, dst);
        ch += 8;
    }
    pixel_scalar(a, taps, ch, dst);
}

/// The NHWC depthwise routine.
pub(super) fn depthwise_nhwc(isa: Avx2, a: &DepthwiseArgs<'_>, out: &mut [u8]) -> Result<()> {
    for_each_pixel(a, out, |taps, dst| {
        let _: Avx2 = isa;
        // SAFETY: `isa` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { pixel(a, taps, dst) }
    })
}
