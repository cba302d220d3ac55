//! Depthwise conv2d over channels-last (NHWC) u8 activations with AVX-512
//! VNNI, any stride, padding and dilation, in exact i32.
//!
//! Two inner routines share each output row:
//! - whole blocks of 64 channels: `vpdpbusd` sums four taps of a channel
//!   per instruction. A pixel's taps are channel-contiguous rows of the
//!   input, while `vpdpbusd` sums four adjacent bytes: two rounds of
//!   unpacks interleave four taps' rows into quads, one per channel, in a
//!   channel order that the weights, the requantization terms and a final
//!   4x4 transpose share;
//! - the channels past the last whole block (all of them below 64
//!   channels), 16 at a time: a tap's 16 bytes, zero-extended to one i32
//!   lane per channel, meet that tap's weights, each the low byte of its
//!   lane, in one `vpdpbusd`, four pixels side by side.
//!
//! A stride-1 conv of fewer channels that divide 64 (the MobileNets' first
//! depthwise layers, 32 and 16 channels) runs the block routine over
//! `64 / C` pixels at a time instead: their taps lie side by side in the
//! input, so a block is one load per tap, four taps per `vpdpbusd`.
//!
//! Taps outside the input read a row of the input zero point (PyTorch's
//! padding), so every pixel has every tap, and the zero point's share of
//! the sum, `zx * sum(w)`, is one subtraction per channel.
//!
//! The weights must fit i8 (`w - w_zero_point`, true for symmetric
//! weights); the caller falls back to the AVX2 routine otherwise. The
//! requantization is the GEMM epilogue's (`gemm::Requant`, fbgemm's form)
//! on the exact sum, so the results are the AVX2 routine's, bit for bit.

use crate::gemm::depthwise::DepthwiseArgs;
use crate::gemm::depthwise_rows::{for_each_row, RowTaps, Source};
use qtensor_runtime::isa::Avx512Vnni;
use qtensor_runtime::{Error, Result};
use std::arch::x86_64::*;

/// Channels per block of the quad routine: one 512-bit vector of bytes.
const BLOCK: usize = 64;
/// Taps per `vpdpbusd` in the quad routine.
const QUAD: usize = 4;
/// Channels per group of the tail routine: one i32 lane each.
const GROUP: usize = 16;
/// Pixels the tail routine computes side by side.
const PIXELS: usize = 4;
/// The input channel of lane `lane` (0..16) of quad vector `k` (0..4):
/// the order the unpacks leave the channels in.
fn channel_of(k: usize, lane: usize) -> usize {
    16 * (lane / 4) + 4 * k + lane % 4
}

/// The whole 64-channel blocks of a weight, in the unpacks' channel order.
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
    /// From the tap-major i8 weights `w8` of `C` channels.
    fn new(w8: &[i8], c: usize, real_taps: usize) -> QuadWeights {
        let taps = real_taps.div_ceil(QUAD) * QUAD;
        let blocks = c / BLOCK;
        // The extra taps weigh 0.
        let mut w8 = w8.to_vec();
        w8.resize(taps * c, 0);
        let mut weights = Vec::with_capacity(blocks * taps * BLOCK);
        let mut sums = Vec::with_capacity(blocks * QUAD * 16);
        for b in 0..blocks {
            for q in 0..taps / QUAD {
                for k in 0..QUAD {
                    for lane in 0..16 {
                        let ch = b * BLOCK + channel_of(k, lane);
                        weights.extend((0..QUAD).map(|j| w8[(q * QUAD + j) * c + ch]));
                    }
                }
            }
            for k in 0..QUAD {
                for lane in 0..16 {
                    let ch = b * BLOCK + channel_of(k, lane);
                    sums.push((0..real_taps).map(|t| i32::from(w8[t * c + ch])).sum());
                }
            }
        }
        QuadWeights { taps, weights, sums }
    }
}

/// One call's requantization terms, lane for lane as a layout's weight
/// sums: `zx * sum(w)`, the bias term and the multiplier (0 in lanes past
/// the last channel).
struct Terms {
    zx_terms: Vec<i32>,
    bias: Vec<f32>,
    mult: Vec<f32>,
}

impl Terms {
    /// Lane `i`'s terms are those of channel `channel(i)`; `None` when a
    /// channel has no bias or multiplier.
    fn new(a: &DepthwiseArgs<'_>, sums: &[i32], channel: impl Fn(usize) -> usize) -> Option<Terms> {
        let c = a.input_sizes[3];
        let zx_terms = sums.iter().map(|&s| a.zx.wrapping_mul(s)).collect();
        let per_lane = |values: &[f32]| -> Option<Vec<f32>> {
            (0..sums.len())
                .map(|lane| if channel(lane) < c { values.get(channel(lane)).copied() } else { Some(0.0) })
                .collect()
        };
        Some(Terms { zx_terms, bias: per_lane(a.bias)?, mult: per_lane(a.mult)? })
    }

    /// The terms of [`QuadWeights`]' lanes.
    fn quads(a: &DepthwiseArgs<'_>, w: &QuadWeights) -> Option<Terms> {
        Terms::new(a, &w.sums, |lane| lane / (QUAD * 16) * BLOCK + channel_of(lane / 16 % QUAD, lane % 16))
    }

    /// The terms of a [`Layout::pixels`] block's lanes.
    fn pixels(a: &DepthwiseArgs<'_>, w: &QuadWeights) -> Option<Terms> {
        let c = a.input_sizes[3].max(1);
        Terms::new(a, &w.sums, |lane| channel_of(lane / 16 % QUAD, lane % 16) % c)
    }

    /// The terms of [`TapWeights`]' lanes.
    fn tail(a: &DepthwiseArgs<'_>, w: &TapWeights) -> Option<Terms> {
        Terms::new(a, &w.sums, |lane| w.first + lane)
    }

    /// The terms of lanes `at..at + 16`, in registers.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    fn lanes(&self, at: usize) -> LaneTerms {
        let (zx_terms, bias, mult) = (&self.zx_terms[at..at + 16], &self.bias[at..at + 16], &self.mult[at..at + 16]);
        // SAFETY: each slice holds 16 lanes; unaligned loads.
        unsafe {
            LaneTerms {
                zx_terms: _mm512_loadu_si512(zx_terms.as_ptr() as *const __m512i),
                bias: _mm512_loadu_ps(bias.as_ptr()),
                mult: _mm512_loadu_ps(mult.as_ptr()),
            }
        }
    }
}

/// 16 lanes' [`Terms`].
#[derive(Clone, Copy)]
struct LaneTerms {
    zx_terms: __m512i,
    bias: __m512,
    mult: __m512,
}

/// The output's clamp, relative to its zero point, and the zero point.
#[derive(Clone, Copy)]
struct Bounds {
    lo: __m512,
    hi: __m512,
    zero_point: __m512i,
}

impl Bounds {
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn new(a: &DepthwiseArgs<'_>) -> Bounds {
        let zp = a.zero_point as f32;
        Bounds {
            lo: _mm512_set1_ps(a.lo - zp),
            hi: _mm512_set1_ps(255.0 - zp),
            zero_point: _mm512_set1_epi32(a.zero_point),
        }
    }
}

impl LaneTerms {
    /// The outputs of 16 exact sums, as i32 in `[lo, 255]`: the GEMM
    /// epilogue's requantization.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    fn requant(self, acc: __m512i, b: Bounds) -> __m512i {
        // The exact sum, below 2^24 in magnitude: exact in f32.
        let sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, self.zx_terms));
        let v = _mm512_mul_ps(_mm512_add_ps(sum, self.bias), self.mult);
        _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, b.lo), b.hi)), b.zero_point)
    }
}

/// The channels of a weight past its last whole 64-channel block.
struct TapWeights {
    /// The first of them.
    first: usize,
    /// Per group of 16 channels, per tap, per channel: the i8 weight in
    /// the lane's low byte, the other three bytes 0 (0 past the last
    /// channel), so `vpdpbusd` adds `x * w` for one tap.
    weights: Vec<i32>,
    /// Per channel, padded to whole groups with 0: the sum of the
    /// channel's weights.
    sums: Vec<i32>,
}

impl TapWeights {
    /// From the tap-major i8 weights `w8` of `C` channels.
    fn new(w8: &[i8], c: usize, taps: usize) -> TapWeights {
        let first = c / BLOCK * BLOCK;
        let groups = (c - first).div_ceil(GROUP);
        let mut weights = vec![0i32; groups * taps * GROUP];
        let mut sums = vec![0i32; groups * GROUP];
        for (tap, row) in w8.chunks_exact(c.max(1)).enumerate() {
            for (ch, &w) in row[first..].iter().enumerate() {
                let (group, lane) = (ch / GROUP, ch % GROUP);
                weights[(group * taps + tap) * GROUP + lane] = i32::from(w as u8);
                sums[ch] += i32::from(w);
            }
        }
        TapWeights { first, weights, sums }
    }
}

/// One output row's whole 64-channel blocks: the loop over the row's
/// pixels sits inside the loop over blocks, so a block's weights and
/// requantization terms stay in cache lines (and mostly in registers)
/// across the row, and an interior pixel costs no per-tap bookkeeping.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn quad_blocks(w: &QuadWeights, t: &Terms, a: &DepthwiseArgs<'_>, taps: &RowTaps<'_>, dst: &mut [u8]) {
    let c = a.input_sizes[3];
    let bounds = Bounds::new(a);
    let quads = w.taps / QUAD;
    for (b, ch0) in (0..c / BLOCK * BLOCK).step_by(BLOCK).enumerate() {
        let weights = &w.weights[b * quads * QUAD * BLOCK..][..quads * QUAD * BLOCK];
        for (ox, source) in taps.pixels() {
            let load = |tap: usize| match source {
                // SAFETY: `Source::Inside` promises that the input holds
                // `C >= ch0 + 64` bytes from `base + tap_offsets[t]` for
                // every tap.
                Source::Inside(base) => unsafe {
                    _mm512_loadu_si512(a.input.as_ptr().add(base + taps.tap_offsets[tap] + ch0) as *const __m512i)
                },
                Source::Border(first) => {
                    let row = &taps.rows[first + tap][ch0..ch0 + BLOCK];
                    // SAFETY: `row` holds 64 bytes; an unaligned load.
                    unsafe { _mm512_loadu_si512(row.as_ptr() as *const __m512i) }
                }
            };
            quad_block(weights, t, b * QUAD * 16, bounds, load, &mut dst[ox * c + ch0..][..BLOCK]);
        }
    }
}

/// One block of 64 lanes: the exact sums over the quads of taps of
/// `weights` (`load(tap)` gives a tap's 64 bytes), requantized with the
/// terms of lanes `at..at + 64` and stored in channel order to `out`, of
/// which at most 64 bytes are written.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
fn quad_block(weights: &[i8], t: &Terms, at: usize, bounds: Bounds, load: impl Fn(usize) -> __m512i, out: &mut [u8]) {
    let mut acc = [_mm512_setzero_si512(); QUAD];
    for (q, wq) in weights.chunks_exact(QUAD * BLOCK).enumerate() {
        let (x0, x1, x2, x3) = (load(QUAD * q), load(QUAD * q + 1), load(QUAD * q + 2), load(QUAD * q + 3));
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
        let q = t.lanes(at + k * 16).requant(*acc, bounds);
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
    match out.first_chunk_mut::<BLOCK>() {
        // SAFETY: `d` holds 64 writable bytes; an unaligned store.
        Some(d) => unsafe { _mm512_storeu_si512(d.as_mut_ptr() as *mut __m512i, v) },
        // SAFETY: the mask covers the `out.len() < 64` writable bytes.
        None => unsafe { _mm512_mask_storeu_epi8(out.as_mut_ptr() as *mut i8, low_bytes(out.len()), v) },
    }
}

/// The `len` (at most 64) low bytes of a vector.
fn low_bytes(len: usize) -> u64 {
    if len >= 64 {
        u64::MAX
    } else {
        (1u64 << len) - 1
    }
}

/// One output row of a 16- or 32-channel stride-1 conv (the MobileNets'
/// first depthwise layers), `64 / C` pixels per 64-lane block: at stride
/// 1, consecutive pixels' taps lie side by side in the input, so one
/// 64-byte load holds a tap of every pixel of the block, and its outputs
/// are one 64-byte store. Where 16 lanes per tap and pixel (the tail
/// routine) spend a `vpdpbusd` and a widening per tap, this spends a
/// `vpdpbusd` per four taps of every pixel of the block. The pixels past
/// the last whole block go one at a time under a mask.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn pixel_blocks(w: &QuadWeights, t: &Terms, a: &DepthwiseArgs<'_>, taps: &RowTaps<'_>, dst: &mut [u8]) {
    let c = a.input_sizes[3];
    let bounds = Bounds::new(a);
    let set = BLOCK / c;
    debug_assert!(BLOCK.is_multiple_of(c) && taps.step == c);
    for (ox, base) in taps.set_starts(set) {
        // SAFETY: `Source::Inside` promises that the input holds `C` bytes
        // from `base + p * step + tap_offsets[t]` for each pixel `p` of the
        // set and every tap; with `step == C` the set's 64 bytes are those.
        let load = |tap: usize| unsafe {
            _mm512_loadu_si512(a.input.as_ptr().add(base + taps.tap_offsets[tap]) as *const __m512i)
        };
        quad_block(&w.weights, t, 0, bounds, load, &mut dst[ox * c..][..BLOCK]);
    }
    let mask = low_bytes(c);
    for (ox, source) in taps.pixels_past_sets(set) {
        let load = |tap: usize| match source {
            // SAFETY: `Source::Inside` promises `C` bytes from
            // `base + tap_offsets[t]`; the mask selects those (AVX-512
            // suppresses faults of the others).
            Source::Inside(base) => unsafe {
                _mm512_maskz_loadu_epi8(mask, a.input.as_ptr().add(base + taps.tap_offsets[tap]) as *const i8)
            },
            Source::Border(first) => {
                let row = &taps.rows[first + tap][..c];
                // SAFETY: the mask covers the `C` bytes of `row`.
                unsafe { _mm512_maskz_loadu_epi8(mask, row.as_ptr() as *const i8) }
            }
        };
        quad_block(&w.weights, t, 0, bounds, load, &mut dst[ox * c..][..c]);
    }
}

/// One output row's channels past its whole 64-channel blocks, 16 at a
/// time, the pixel loop inside the group loop as in [`quad_blocks`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn tap_groups(w: &TapWeights, t: &Terms, a: &DepthwiseArgs<'_>, taps: &RowTaps<'_>, dst: &mut [u8]) {
    let c = a.input_sizes[3];
    let tap_count = a.kernel[0] * a.kernel[1];
    let bounds = Bounds::new(a);
    for (g, ch0) in (w.first..c).step_by(GROUP).enumerate() {
        let n = GROUP.min(c - ch0);
        let mask = (1u64 << n) - 1;
        let weights = &w.weights[g * tap_count * GROUP..][..tap_count * GROUP];
        let terms = t.lanes(g * GROUP);
        let store = |acc: __m512i, out: &mut [u8]| {
            let q = terms.requant(acc, bounds);
            let d = &mut out[ch0..ch0 + n];
            // SAFETY: the mask covers the `n` writable bytes of `d`; q lies
            // in [lo, 255], so narrowing keeps its value.
            unsafe { _mm512_mask_cvtepi32_storeu_epi8(d.as_mut_ptr() as *mut i8, mask as __mmask16, q) };
        };
        // The interior, PIXELS pixels side by side, their chains of
        // `vpdpbusd`s interleaved: one pixel's chain alone is too long for
        // the scheduler to overlap with the next pixel's.
        for (ox, base) in taps.set_starts(PIXELS) {
            let base = base + ch0;
            let acc = dot::<PIXELS>(weights, |p, tap| {
                // SAFETY: `Source::Inside` promises that the input holds
                // `C` bytes from `base + tap_offsets[t]` for every tap,
                // and `ch0 + n <= C`.
                unsafe { widen(mask, a.input.as_ptr().add(base + p * taps.step + taps.tap_offsets[tap])) }
            });
            for (p, acc) in acc.into_iter().enumerate() {
                store(acc, &mut dst[(ox + p) * c..][..c]);
            }
        }
        // The rest one at a time.
        for (ox, source) in taps.pixels_past_sets(PIXELS) {
            let [acc] = dot::<1>(weights, |_, tap| match source {
                // SAFETY: as above.
                Source::Inside(base) => unsafe {
                    widen(mask, a.input.as_ptr().add(base + taps.tap_offsets[tap] + ch0))
                },
                // SAFETY: the mask selects the `n` bytes of the row slice.
                Source::Border(first) => unsafe { widen(mask, taps.rows[first + tap][ch0..ch0 + n].as_ptr()) },
            });
            store(acc, &mut dst[ox * c..][..c]);
        }
    }
}

/// The bytes of `ptr` that `mask` selects (at most 16), one i32 lane each.
///
/// # Safety
///
/// `ptr` must be readable for every byte `mask` selects; the others are
/// not read (AVX-512 suppresses their faults).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn widen(mask: u64, ptr: *const u8) -> __m512i {
    if mask == 0xFFFF {
        // A whole group: an unmasked load, which folds into the widening.
        // SAFETY: the caller's promise, for all 16 bytes.
        return _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(ptr as *const __m128i) });
    }
    // SAFETY: the caller's promise.
    let bytes = unsafe { _mm512_maskz_loadu_epi8(mask, ptr as *const i8) };
    _mm512_cvtepu8_epi32(_mm512_castsi512_si128(bytes))
}

/// The exact sums of `P` pixels over one group's taps: `load(p, tap)` is
/// pixel `p`'s tap `tap`, widened to i32 lanes; `weights` holds each tap's
/// 16 weights.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
fn dot<const P: usize>(weights: &[i32], load: impl Fn(usize, usize) -> __m512i) -> [__m512i; P] {
    let mut acc = [_mm512_setzero_si512(); P];
    for (tap, wt) in weights.chunks_exact(GROUP).enumerate() {
        // SAFETY: `wt` holds 16 lanes; an unaligned load.
        let wt = unsafe { _mm512_loadu_si512(wt.as_ptr() as *const __m512i) };
        for (p, acc) in acc.iter_mut().enumerate() {
            *acc = _mm512_dpbusd_epi32(*acc, load(p, tap), wt);
        }
    }
    acc
}

/// A weight in the routine's layout: what the weight's
/// [`LayoutCache`](crate::gemm::depthwise::LayoutCache) keeps.
struct Layout {
    quads: QuadWeights,
    tail: TapWeights,
    /// For a conv of 1 to 32 channels that divide 64, one block of
    /// `64 / C` pixels (see [`pixel_blocks`]).
    pixels: Option<QuadWeights>,
}

impl Layout {
    /// `None` when a weight does not fit i8.
    fn new(a: &DepthwiseArgs<'_>) -> Option<Layout> {
        let c = a.input_sizes[3];
        let taps = a.kernel[0] * a.kernel[1];
        // `as` saturates (and sends NaN to 0): a round trip that changes
        // the value means it does not fit.
        let w8 = a.weights.get(..taps.checked_mul(c)?)?.iter().map(|&w| Some(w as i8).filter(|&w8| f32::from(w8) == w));
        let w8: Vec<i8> = w8.collect::<Option<_>>()?;
        // Fewer channels than a block, a whole number of pixels per block:
        // each virtual channel `v` of the block is channel `v % C`.
        let pixels = (c < BLOCK && BLOCK.is_multiple_of(c)).then(|| {
            let w8: Vec<i8> = (0..taps * BLOCK).map(|i| w8[i / BLOCK * c + i % BLOCK % c]).collect();
            QuadWeights::new(&w8, BLOCK, taps)
        });
        Some(Layout { quads: QuadWeights::new(&w8, c, taps), tail: TapWeights::new(&w8, c, taps), pixels })
    }
}

/// The NHWC depthwise routine; `None` when the weights do not fit i8.
pub(super) fn depthwise_nhwc(isa: Avx512Vnni, a: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
    let cached = a.layout.and_then(|cache| cache.get_or_make(|| Layout::new(a)));
    let made;
    let w = match cached {
        Some(w) => w.as_ref()?,
        None => {
            made = Layout::new(a)?;
            &made
        }
    };
    let short = || Error::invalid("quantized::conv2d", "fewer requantization terms than channels");
    // At stride 1 a block of pixels' taps lie side by side in the input.
    if let (Some(pixels), 1) = (&w.pixels, a.stride[1]) {
        let Some(terms) = Terms::pixels(a, pixels) else { return Some(Err(short())) };
        return Some(for_each_row(a, out, pixels.taps, |taps, out_row| {
            let _: Avx512Vnni = isa;
            // SAFETY: `isa` is an `Avx512Vnni` token, which proves AVX-512
            // F, BW and VNNI; at stride 1 a row's step is `C`.
            unsafe { pixel_blocks(pixels, &terms, a, taps, out_row) }
        }));
    }
    let (Some(quad_terms), Some(tap_terms)) = (Terms::quads(a, &w.quads), Terms::tail(a, &w.tail)) else {
        return Some(Err(short()));
    };
    Some(for_each_row(a, out, w.quads.taps, |taps, out_row| {
        let _: Avx512Vnni = isa;
        // SAFETY: `isa` is an `Avx512Vnni` token, which proves AVX-512 F,
        // BW and VNNI.
        unsafe {
            quad_blocks(&w.quads, &quad_terms, a, taps, out_row);
            tap_groups(&w.tail, &tap_terms, a, taps, out_row);
        }
    }))
}
