//! fbgemm's depthwise conv with its int16 pair sums, fast: the same sums as
//! `reference::depthwise_int16` (which says what they are), over a
//! channels-last input, one output row per task and the channels innermost
//! so that the compiler vectorizes the pairs. The `fbgemm` and `x86`
//! engines take it for the depthwise convs fbgemm computes whenever an
//! input could saturate a pair; without saturation (`saturate` false) it
//! gives the exact sums, for the depthwise convs whose requantization the
//! ISAs' direct routines do not implement (oneDNN's, fbgemm's per-tensor).

use super::driver::OutElem;
use super::epilogue::{Epilogue, PanelTerms, Requant};
use super::kernel::GemmIsa;
use crate::parallel;
use crate::reference::depthwise_int16::DepthwiseShape;
use qtensor_runtime::Result;

/// The raw weights of a depthwise conv, tap-major, with what the sums
/// need besides them.
pub struct RawTaps<'a> {
    /// `w` (not centred), `[KH * KW][OC]`.
    pub weights: &'a [i32],
    /// Each output channel's weight zero point.
    pub zero_points: &'a [i32],
}

/// Writes the requantized output of every pixel, NHWC, into `out`: `x` is
/// the NHWC input, `zx` its zero point (the padding's value); pairs of taps
/// saturate in int16 when `saturate`. Each output row's pixels are finished
/// together by `kernel`'s epilogue for `rq`'s form, as a GEMM panel is, and
/// the loops run compiled for `kernel`'s ISA ([`GemmIsa::vectorized`]).
pub fn depthwise_nhwc<K: GemmIsa>(
    kernel: K,
    s: &DepthwiseShape,
    (x, zx): (&[u8], u8),
    w: &RawTaps<'_>,
    rq: Requant<'_>,
    saturate: bool,
    out: &mut [u8],
) -> Result<()> {
    let [_, c, h, wd] = s.input;
    let [kh, kw] = s.kernel;
    let [oh, ow] = s.out_hw;
    let oc = s.out_channels;
    let taps = kh * kw;
    let per_input = (oc / c.max(1)).max(1);
    // Per output channel: Σ w over the taps (every window holds all of
    // them, padding included, since fbgemm's kernel pads "same").
    let w_sums = (0..oc).map(|o| (0..taps).map(|t| w.weights[t * oc + o]).sum::<i32>());
    // The zero-point terms that do not depend on the window:
    // `-zx Σ w + taps zx zw`; the window's `-zw Σ x` is added per pixel.
    let zx32 = zx as i32;
    let col_terms: Vec<i32> = w_sums.zip(w.zero_points).map(|(ws, &zw)| -zx32 * ws + taps as i32 * zx32 * zw).collect();
    let asymmetric = w.zero_points.iter().any(|&zw| zw != 0);
    let epilogue = Epilogue::Quantize(rq);
    let padding = vec![zx; c];
    let zero_weights = vec![0i32; oc];
    let row_sums = vec![0i32; ow];
    parallel::try_chunks(
        out,
        ow * oc,
        || (vec![0i32; ow * oc], vec![0i32; oc], Vec::with_capacity(taps + 1)),
        |(acc, x_sums, window), r, row| {
            kernel.vectorized(|| {
                let (img, oy) = (r / oh.max(1), r % oh.max(1));
                for (ox, acc) in acc.chunks_exact_mut(oc.max(1)).enumerate() {
                    // The window's input pixels in row-major tap order, padding
                    // as the zero point's row.
                    window.clear();
                    for t in 0..taps {
                        let iy = (oy * s.stride[0] + t / kw).checked_sub(s.padding[0]).filter(|&y| y < h);
                        let ix = (ox * s.stride[1] + t % kw).checked_sub(s.padding[1]).filter(|&v| v < wd);
                        window.push(match (iy, ix) {
                            (Some(y), Some(v)) => &x[((img * h + y) * wd + v) * c..][..c],
                            _ => &padding[..],
                        });
                    }
                    acc.fill(0);
                    for (t, pair) in window.chunks(2).enumerate() {
                        let w0 = &w.weights[2 * t * oc..][..oc];
                        // An odd last tap pairs with a zero weight.
                        let (b, w1) = match pair {
                            [_, b] => (*b, &w.weights[(2 * t + 1) * oc..][..oc]),
                            _ => (pair[0], &zero_weights[..]),
                        };
                        add_pairs(acc, (pair[0], b), (w0, w1), per_input, saturate);
                    }
                    if asymmetric {
                        // `-zw Σ x` over the window's taps.
                        x_sums.fill(0);
                        for tap in window.iter() {
                            for (o, xs) in x_sums.iter_mut().enumerate() {
                                *xs += tap[o / per_input] as i32;
                            }
                        }
                        for ((a, &xs), &zw) in acc.iter_mut().zip(x_sums.iter()).zip(w.zero_points) {
                            *a -= zw * xs;
                        }
                    }
                }
                // The row's pixels finished together, as a GEMM panel's rows.
                let terms = PanelTerms { products: acc, ldp: oc, col_terms: &col_terms, zw: &[], row_sums: &row_sums };
                u8::finish_rows(kernel, &epilogue, terms, row);
            });
            Ok(())
        },
    )
}

/// Adds one pair of taps to every channel: `acc += sat16(xa·wa + xb·wb)`
/// (without `sat16` unless `saturate`); `per_input` output channels read
/// each input channel. Inlined into the ISA's [`GemmIsa::vectorized`] body.
#[inline(always)]
fn add_pairs(acc: &mut [i32], (a, b): (&[u8], &[u8]), (wa, wb): (&[i32], &[i32]), per_input: usize, saturate: bool) {
    let (lo, hi) = if saturate { (i16::MIN as i32, i16::MAX as i32) } else { (i32::MIN, i32::MAX) };
    let sat = |v: i32| v.clamp(lo, hi);
    if per_input == 1 {
        // The common case, one output per channel: contiguous lanes.
        for (((acc, (&xa, &xb)), &wa), &wb) in acc.iter_mut().zip(a.iter().zip(b)).zip(wa).zip(wb) {
            *acc += sat(xa as i32 * wa + xb as i32 * wb);
        }
    } else {
        for (o, acc) in acc.iter_mut().enumerate() {
            let (xa, xb) = (a[o / per_input] as i32, b[o / per_input] as i32);
            *acc += sat(xa * wa[o] + xb * wb[o]);
        }
    }
}
