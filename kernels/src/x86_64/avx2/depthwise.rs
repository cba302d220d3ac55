//! Depthwise conv2d (one input channel per group, stride 1) over NCHW
//! planes with AVX2: 8 outputs of a row at a time, one FMA per tap. The
//! sums are exact in f32: every term is an integer of magnitude at most
//! 255 * 255, and at most 64 taps keep the total below 2^24.

use super::simd::{pack32, requant8, requant_bounds, store32, store_prefix};
use crate::gemm::depthwise::DepthwiseArgs;
use crate::gemm::Requant;
use qtensor_runtime::isa::Avx2;
use qtensor_runtime::storage::try_filled;
use qtensor_runtime::{Error, Result};
use std::arch::x86_64::*;

/// Fills `plane` (rows of `wp` floats, zero outside the input) with
/// `x - zx` for the `h` x `w` input plane at (`top`, `left`).
#[target_feature(enable = "avx2,fma")]
fn fill_plane(input: &[u8], w: usize, plane: &mut [f32], wp: usize, top: usize, left: usize, zx: i64) {
    let vzx = _mm256_set1_ps(zx as f32);
    for (y, row) in input.chunks(w).enumerate() {
        let dst = &mut plane[(y + top) * wp + left..(y + top) * wp + left + w];
        let mut x = 0;
        while x + 8 <= w {
            let src = &row[x..x + 8];
            // SAFETY: `src` holds 8 bytes and `dst[x..]` at least 8 floats;
            // unaligned 8-byte load and 32-byte store.
            unsafe {
                let v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(src.as_ptr() as *const __m128i)));
                _mm256_storeu_ps(dst.as_mut_ptr().add(x), _mm256_sub_ps(v, vzx));
            }
            x += 8;
        }
        for (d, &v) in dst[x..].iter_mut().zip(&row[x..]) {
            *d = (v as i64 - zx) as f32;
        }
    }
}

/// One output plane: `plane` is the padded input channel as `x - zx` in
/// f32, `wp` floats per row; `taps` are `w - zw` for this channel. Blocks
/// of 32 outputs share each tap's broadcast.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn plane_avx2(
    plane: &[f32],
    wp: usize,
    taps: &[f32],
    kernel: [usize; 2],
    out: &mut [u8],
    out_hw: [usize; 2],
    rq: Requant<'_>,
) {
    let [kh, kw] = kernel;
    let [oh, ow] = out_hw;
    let (vm, vb) = (_mm256_set1_ps(rq.mult[0]), _mm256_set1_ps(rq.bias[0]));
    let (lo, hi, zp) = requant_bounds(rq.lo, rq.hi, rq.zero_point);
    let finish = |acc: __m256| requant8(acc, vb, vm, lo, hi, zp);
    for y in 0..oh {
        let mut x0 = 0;
        while x0 < ow {
            let mut acc = [_mm256_setzero_ps(); 4];
            for ky in 0..kh {
                let base = (y + ky) * wp + x0;
                let src = &plane[base..base + kw + 32];
                for (kx, &t) in taps[ky * kw..(ky + 1) * kw].iter().enumerate() {
                    let tap = _mm256_set1_ps(t);
                    for (i, a) in acc.iter_mut().enumerate() {
                        // SAFETY: kx + 8i + 8 <= kw + 32 = src.len().
                        *a = _mm256_fmadd_ps(unsafe { _mm256_loadu_ps(src.as_ptr().add(kx + 8 * i)) }, tap, *a);
                    }
                }
            }
            let bytes = pack32::<u8>(finish(acc[0]), finish(acc[1]), finish(acc[2]), finish(acc[3]));
            let n = (ow - x0).min(32);
            if n == 32 {
                store32(&mut out[y * ow + x0..y * ow + x0 + 32], bytes, false);
            } else {
                store_prefix(&mut out[y * ow + x0..y * ow + x0 + n], bytes);
            }
            x0 += 32;
        }
    }
}

/// Depthwise conv2d of an NCHW u8 input (`args.input`, stride and
/// dilation 1) into NCHW u8 `out`, one plane per task.
pub(super) fn depthwise_nchw(isa: Avx2, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Result<()> {
    let [_, h, w, c] = args.input_sizes;
    let [_, oh, ow, _] = args.output_sizes;
    let [kh, kw] = args.kernel;
    if !(1..=64).contains(&(kh * kw))
        || args.channel_weights.len() != c * kh * kw
        || args.stride != [1, 1]
        || args.dilation != [1, 1]
    {
        return Err(Error::invalid("quantized::conv2d", "the NCHW depthwise kernel does not apply to these arguments"));
    }
    // Room for a full 32-output block past the last output, plus the taps.
    let wp = ow.div_ceil(32) * 32 + kw;
    let hp = oh + kh - 1;
    crate::parallel::try_chunks(
        out,
        oh * ow,
        || (),
        |_, p, out| {
            let ch = p % c;
            let mut plane = try_filled(hp * wp, 0f32)?;
            let input = &args.input[p * h * w..(p + 1) * h * w];
            let taps = &args.channel_weights[ch * kh * kw..(ch + 1) * kh * kw];
            let _: Avx2 = isa;
            // SAFETY: `isa` is an `Avx2` token, which proves AVX2 and FMA.
            unsafe {
                fill_plane(input, w, &mut plane, wp, args.padding[0], args.padding[1], args.zx as i64);
                plane_avx2(&plane, wp, taps, [kh, kw], out, [oh, ow], args.requant().cols(ch..ch + 1))
            };
            Ok(())
        },
    )
}
