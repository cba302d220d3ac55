//! Depthwise conv2d (one input channel per group, stride 1) over NCHW
//! planes with AVX2: 8 outputs of a row at a time, one FMA per tap. The
//! sums are exact in f32: every term is an integer of magnitude at most
//! 255 * 255, and at most 64 taps keep the total below 2^24.

use crate::gemm::conv::GemmConvWeight;
use crate::x86_64::has_avx2;
use qtensor_runtime::{Error, Result};
use rayon::prelude::*;
use std::arch::x86_64::*;

/// One output plane: `plane` is the padded input channel as `x - zx` in
/// f32, `wp` floats per row; `taps` are `w - zw` for this channel.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn plane_avx2(
    plane: &[f32],
    wp: usize,
    taps: &[f32],
    kernel: [usize; 2],
    out: &mut [u8],
    out_hw: [usize; 2],
    mult: f32,
    add: f32,
    lo: f32,
) {
    let [kh, kw] = kernel;
    let [oh, ow] = out_hw;
    let (vm, va, vlo, vhi) = (_mm256_set1_ps(mult), _mm256_set1_ps(add), _mm256_set1_ps(lo), _mm256_set1_ps(255.0));
    let mut row = [0u8; 8];
    for y in 0..oh {
        for x0 in (0..ow).step_by(8) {
            let mut acc = _mm256_setzero_ps();
            for ky in 0..kh {
                let base = (y + ky) * wp + x0;
                let src = &plane[base..base + kw + 8];
                for kx in 0..kw {
                    // SAFETY: `src` holds kw + 8 floats, so 8 from kx < kw fit.
                    let v = unsafe { _mm256_loadu_ps(src.as_ptr().add(kx)) };
                    acc = _mm256_fmadd_ps(v, _mm256_set1_ps(taps[ky * kw + kx]), acc);
                }
            }
            let q = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(acc, vm, va), vlo), vhi));
            let words = _mm256_packus_epi32(q, q);
            let bytes = _mm256_packus_epi16(words, words);
            let lanes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
            // SAFETY: `row` is 8 writable bytes; an unaligned 8-byte store.
            unsafe { _mm_storel_epi64(row.as_mut_ptr() as *mut __m128i, _mm256_castsi256_si128(lanes)) };
            let n = (ow - x0).min(8);
            out[y * ow + x0..y * ow + x0 + n].copy_from_slice(&row[..n]);
        }
    }
}

/// Depthwise conv2d of an NCHW u8 input `[n, c, h, w]` (c groups, stride
/// and dilation 1) into NCHW u8 `dst`, requantized with `mult`/`add`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_nchw(
    src: &[u8],
    dims: [usize; 4],
    weight: &GemmConvWeight,
    padding: [usize; 2],
    out_hw: [usize; 2],
    zx: i64,
    mult: &[f32],
    add: &[f32],
    lo: f32,
    dst: &mut [u8],
) -> Result<()> {
    let [_, c, h, w] = dims;
    let [_, _, kh, kw] = weight.shape;
    let [oh, ow] = out_hw;
    if !has_avx2() || kh * kw > 64 || weight.depthwise.len() != c * kh * kw {
        return Err(Error::invalid("depthwise", "the depthwise kernel does not apply"));
    }
    let wp = ow.div_ceil(8) * 8 + kw;
    let hp = oh + kh - 1;
    dst.par_chunks_mut(oh * ow).enumerate().try_for_each(|(p, out)| {
        let ch = p % c;
        let mut plane = vec![0f32; hp * wp];
        let input = &src[p * h * w..(p + 1) * h * w];
        for (y, row) in input.chunks(w).enumerate() {
            let at = (y + padding[0]) * wp + padding[1];
            for (d, &v) in plane[at..at + w].iter_mut().zip(row) {
                *d = (v as i64 - zx) as f32;
            }
        }
        let taps = &weight.depthwise[ch * kh * kw..(ch + 1) * kh * kw];
        // SAFETY: `has_avx2()` held above.
        unsafe { plane_avx2(&plane, wp, taps, [kh, kw], out, out_hw, mult[ch], add[ch], lo) };
        Ok(())
    })
}
