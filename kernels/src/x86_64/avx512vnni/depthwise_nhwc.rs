//! Depthwise conv2d over channels-last (NHWC) u8 activations with AVX-512
//! VNNI, any stride, padding and dilation: `vpdpbusd` sums four taps of a
//! channel per instruction, 64 channels at a time, in exact i32.
//!
//! A pixel's taps are channel-contiguous rows of the input, while
//! `vpdpbusd` sums four adjacent bytes: two rounds of unpacks interleave
//! four taps' rows into quads, one per channel, in a channel order that the
//! weights, the requantization terms and a final 4x4 transpose share.
//! Taps outside the input read a row of the input zero point (PyTorch's
//! padding), so every pixel has every tap, and the zero point's share of
//! the sum, `zx * sum(w)`, is one subtraction per channel.
//!
//! The weights must fit i8 (`w - w_zero_point`, true for symmetric
//! weights); the caller falls back to the AVX2 routine otherwise. The
//! requantization is the GEMM epilogue's (`gemm::Requant`, fbgemm's form)
//! on the exact sum, so the results are the AVX2 routine's, bit for bit.

use crate::gemm::depthwise::DepthwiseArgs;
use qtensor_runtime::isa::Avx512Vnni;
use qtensor_runtime::storage::checked_count;
use qtensor_runtime::{Error, Result};
use std::arch::x86_64::*;

/// Channels per block: one 512-bit vector of bytes.
const BLOCK: usize = 64;
/// Taps per `vpdpbusd`.
const QUAD: usize = 4;
/// The input channel of lane `lane` (0..16) of quad vector `k` (0..4):
/// the order the unpacks leave the channels in.
fn channel_of(k: usize, lane: usize) -> usize {
    16 * (lane / 4) + 4 * k + lane % 4
}

/// A weight in the unpacks' channel order: what the weight's
/// [`LayoutCache`](crate::gemm::depthwise::LayoutCache) keeps.
struct QuadWeights {
    /// Taps rounded up to a multiple of four (the extra taps weigh 0).
    taps: usize,
    /// Per block, per quad of taps, per quad vector `k`: 64 bytes, four
    /// taps' i8 weights for each of 16 channels.
    weights: Vec<i8>,
    /// Per block and `k`, 16 lanes: the sum of the lane's channel's
    /// weights (0 past the last channel).
    sums: Vec<i32>,
}

impl QuadWeights {
    /// `None` when a weight does not fit i8.
    fn new(a: &DepthwiseArgs<'_>) -> Option<QuadWeights> {
        let c = a.input_sizes[3];
        let real_taps = a.kernel[0] * a.kernel[1];
        let taps = real_taps.div_ceil(QUAD) * QUAD;
        let blocks = c.div_ceil(BLOCK);
        // Tap-major i8 weights, the extra taps and channels 0.
        let padded_c = blocks * BLOCK;
        let mut w8 = vec![0i8; taps * padded_c];
        for (tap, row) in a.weights.get(..real_taps * c)?.chunks_exact(c.max(1)).enumerate() {
            for (d, &w) in w8[tap * padded_c..][..c].iter_mut().zip(row) {
                // `as` saturates (and sends NaN to 0): a round trip that
                // changes the value means it does not fit.
                *d = w as i8;
                if f32::from(*d) != w {
                    return None;
                }
            }
        }
        let mut weights = Vec::with_capacity(blocks * taps * BLOCK);
        let mut sums = Vec::with_capacity(blocks * QUAD * 16);
        for b in 0..blocks {
            for q in 0..taps / QUAD {
                for k in 0..QUAD {
                    for lane in 0..16 {
                        let ch = b * BLOCK + channel_of(k, lane);
                        weights.extend((0..QUAD).map(|j| w8[(q * QUAD + j) * padded_c + ch]));
                    }
                }
            }
            for k in 0..QUAD {
                for lane in 0..16 {
                    let ch = b * BLOCK + channel_of(k, lane);
                    sums.push((0..real_taps).map(|t| i32::from(w8[t * padded_c + ch])).sum());
                }
            }
        }
        Some(QuadWeights { taps, weights, sums })
    }
}

/// One call's requantization terms, lane for lane as [`QuadWeights::sums`]:
/// `zx * sum(w)`, the bias term and the multiplier (0 past the last
/// channel).
struct Terms {
    zx_terms: Vec<i32>,
    bias: Vec<f32>,
    mult: Vec<f32>,
}

impl Terms {
    fn new(a: &DepthwiseArgs<'_>, w: &QuadWeights) -> Option<Terms> {
        let c = a.input_sizes[3];
        let zx_terms = w.sums.iter().map(|&s| a.zx.wrapping_mul(s)).collect();
        let per_channel = |values: &[f32]| -> Option<Vec<f32>> {
            (0..w.sums.len())
                .map(|at| {
                    let ch = at / (QUAD * 16) * BLOCK + channel_of(at / 16 % QUAD, at % 16);
                    if ch < c {
                        values.get(ch).copied()
                    } else {
                        Some(0.0)
                    }
                })
                .collect()
        };
        Some(Terms { zx_terms, bias: per_channel(a.bias)?, mult: per_channel(a.mult)? })
    }
}

/// One output pixel: `rows` are its taps' input rows (`C` bytes each, the
/// padding row for taps outside the input, then the padding row for the
/// extra taps), `dst` its `C` output channels.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn pixel(w: &QuadWeights, t: &Terms, a: &DepthwiseArgs<'_>, rows: &[&[u8]], dst: &mut [u8]) {
    let c = dst.len();
    let zp = a.zero_point as f32;
    let (lo, hi, zpv) = (_mm512_set1_ps(a.lo - zp), _mm512_set1_ps(255.0 - zp), _mm512_set1_epi32(a.zero_point));
    let quads = w.taps / QUAD;
    for (b, ch0) in (0..c).step_by(BLOCK).enumerate() {
        let n = BLOCK.min(c - ch0);
        let mask: u64 = if n == BLOCK { !0 } else { (1u64 << n) - 1 };
        let load = |row: &[u8]| {
            let row = &row[ch0..ch0 + n];
            // SAFETY: the mask covers the `n` bytes of `row`; masked-out
            // bytes are not read (AVX-512 suppresses their faults).
            unsafe { _mm512_maskz_loadu_epi8(mask, row.as_ptr() as *const i8) }
        };
        let mut acc = [_mm512_setzero_si512(); QUAD];
        let weights = &w.weights[b * quads * QUAD * BLOCK..][..quads * QUAD * BLOCK];
        for (quad, wq) in rows.chunks_exact(QUAD).zip(weights.chunks_exact(QUAD * BLOCK)) {
            let (x0, x1, x2, x3) = (load(quad[0]), load(quad[1]), load(quad[2]), load(quad[3]));
            // Pairs (taps 0-1, then 2-3) of channels 0-7 and 8-15 of each
            // 128-bit lane, then quads of 4 channels each.
            let (lo01, hi01) = (_mm512_unpacklo_epi8(x0, x1), _mm512_unpackhi_epi8(x0, x1));
            let (lo23, hi23) = (_mm512_unpacklo_epi8(x2, x3), _mm512_unpackhi_epi8(x2, x3));
            let quads = [
                _mm512_unpacklo_epi16(lo01, lo23),
                _mm512_unpackhi_epi16(lo01, lo23),
                _mm512_unpacklo_epi16(hi01, hi23),
                _mm512_unpackhi_epi16(hi01, hi23),
            ];
            for ((acc, x), wk) in acc.iter_mut().zip(quads).zip(wq.chunks_exact(BLOCK)) {
                // SAFETY: `wk` holds 64 bytes; an unaligned load.
                let wk = unsafe { _mm512_loadu_si512(wk.as_ptr() as *const __m512i) };
                *acc = _mm512_dpbusd_epi32(*acc, x, wk);
            }
        }
        let mut bytes = [_mm_setzero_si128(); QUAD];
        for (k, (acc, out)) in acc.iter().zip(bytes.iter_mut()).enumerate() {
            let at = (b * QUAD + k) * 16;
            let (zx_terms, bias, mult) = (&t.zx_terms[at..at + 16], &t.bias[at..at + 16], &t.mult[at..at + 16]);
            // SAFETY: each slice holds 16 lanes; unaligned loads.
            let (zx_terms, bias, mult) = unsafe {
                (
                    _mm512_loadu_si512(zx_terms.as_ptr() as *const __m512i),
                    _mm512_loadu_ps(bias.as_ptr()),
                    _mm512_loadu_ps(mult.as_ptr()),
                )
            };
            // The exact sum, below 2^24 in magnitude: exact in f32.
            let sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(*acc, zx_terms));
            let v = _mm512_mul_ps(_mm512_add_ps(sum, bias), mult);
            let q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi)), zpv);
            // q lies in [lo, 255]: narrowing keeps its value.
            *out = _mm512_cvtepi32_epi8(q);
        }
        // `bytes[k]` holds, as 4-byte groups, channels 16L + 4k + 0..4 of
        // lanes L = 0..4: a 4x4 transpose of the groups puts them in order.
        let (t0, t1) = (_mm_unpacklo_epi32(bytes[0], bytes[1]), _mm_unpacklo_epi32(bytes[2], bytes[3]));
        let (t2, t3) = (_mm_unpackhi_epi32(bytes[0], bytes[1]), _mm_unpackhi_epi32(bytes[2], bytes[3]));
        let v = _mm512_castsi128_si512(_mm_unpacklo_epi64(t0, t1));
        let v = _mm512_inserti32x4::<1>(v, _mm_unpackhi_epi64(t0, t1));
        let v = _mm512_inserti32x4::<2>(v, _mm_unpacklo_epi64(t2, t3));
        let v = _mm512_inserti32x4::<3>(v, _mm_unpackhi_epi64(t2, t3));
        let d = &mut dst[ch0..ch0 + n];
        // SAFETY: the mask covers the `n` writable bytes of `d`.
        unsafe { _mm512_mask_storeu_epi8(d.as_mut_ptr() as *mut i8, mask, v) };
    }
}

/// The NHWC depthwise routine; `None` when the weights do not fit i8.
pub(super) fn depthwise_nhwc(isa: Avx512Vnni, a: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
    let cached = a.layout.and_then(|cache| cache.get_or_make(|| QuadWeights::new(a)));
    let made;
    let w = match cached {
        Some(w) => w.as_ref()?,
        None => {
            made = QuadWeights::new(a)?;
            &made
        }
    };
    let Some(t) = Terms::new(a, w) else {
        return Some(Err(Error::invalid("quantized::conv2d", "fewer requantization terms than channels")));
    };
    Some(run(isa, a, w, &t, out))
}

fn run(isa: Avx512Vnni, a: &DepthwiseArgs<'_>, qw: &QuadWeights, t: &Terms, out: &mut [u8]) -> Result<()> {
    let [_, h, w, c] = a.input_sizes;
    let [_, oh, ow, _] = a.output_sizes;
    let [kh, kw] = a.kernel;
    if c == 0 || out.len() != checked_count("quantized::conv2d", &a.output_sizes)? {
        return Err(Error::invalid("quantized::conv2d", "the depthwise output does not match its sizes"));
    }
    let padding_row = vec![a.zx as u8; c];
    // The input position of tap `k` of output `o`, if inside `0..size`.
    let position = |o: usize, k: usize, axis: usize, size: usize| {
        (o * a.stride[axis] + k * a.dilation[axis]).checked_sub(a.padding[axis]).filter(|&i| i < size)
    };
    // Each tap's offset from its pixel's first tap, for pixels whose taps
    // all lie inside the input (most of them).
    let tap_offsets: Vec<usize> =
        (0..kh).flat_map(|ky| (0..kw).map(move |kx| (ky * a.dilation[0] * w + kx * a.dilation[1]) * c)).collect();
    let inside = |o: usize, axis: usize, kernel: usize, size: usize| {
        position(o, 0, axis, size).is_some() && position(o, kernel - 1, axis, size).is_some()
    };
    let short = || Error::invalid("quantized::conv2d", "the depthwise input is shorter than its sizes");
    crate::parallel::try_chunks(out, ow * c, Vec::new, |rows: &mut Vec<&[u8]>, r, out_row| {
        let (img, oy) = (r / oh.max(1), r % oh.max(1));
        let rows_inside = inside(oy, 0, kh, h);
        for (ox, dst) in out_row.chunks_exact_mut(c).enumerate() {
            rows.clear();
            let corner = (position(oy, 0, 0, h), position(ox, 0, 1, w));
            if let (true, true, (Some(iy), Some(ix))) = (rows_inside, inside(ox, 1, kw, w), corner) {
                let first = ((img * h + iy) * w + ix) * c;
                let taps = a.input.get(first..).ok_or_else(short)?;
                for &off in &tap_offsets {
                    rows.push(taps.get(off..off + c).ok_or_else(short)?);
                }
            } else {
                for ky in 0..kh {
                    let iy = position(oy, ky, 0, h);
                    for kx in 0..kw {
                        let row = match (iy, position(ox, kx, 1, w)) {
                            (Some(iy), Some(ix)) => {
                                let at = ((img * h + iy) * w + ix) * c;
                                a.input.get(at..at + c).ok_or_else(short)?
                            }
                            _ => &padding_row[..],
                        };
                        rows.push(row);
                    }
                }
            }
            rows.resize(qw.taps, &padding_row[..]);
            let _: Avx512Vnni = isa;
            // SAFETY: `isa` is an `Avx512Vnni` token, which proves AVX-512
            // F, BW and VNNI.
            unsafe { pixel(qw, t, a, rows, dst) };
        }
        Ok(())
    })
}
