//! Depthwise conv2d over channels-last (NHWC) u8 activations, any stride,
//! padding and dilation, with AVX2, a row of output pixels at a time
//! (`gemm::depthwise_rows`): each block of channels loops over the row's
//! pixels, one FMA per tap and 8 channels, with eight chains of FMAs in
//! flight (8 blocks of one pixel, down to 1 block of 8 pixels side by
//! side for a block of 8 channels). The few channels past the last whole
//! 8 go in one more block of 8 that ends at the last channel (scalar when
//! there are fewer than 8 in all). The interior pixels of whole groups of
//! 16 channels sum in integers instead, two taps per `vpmaddwd`
//! (`depthwise_pairs`), to the same exact sums.
//!
//! The sums are exact in f32: every product `x * w` is an integer of
//! magnitude at most 255 * 255 and at most 64 taps keep every partial sum
//! below 2^24. Taps in the padding read the input zero point `zx`, so
//! the sum of `(x - zx) * w` is the sum of `x * w` minus `zx * sum(w)`,
//! both exact. The requantization is the GEMM epilogue's own sequence
//! (`fma(C, mult, add)`, clamp, round to even), so both conv paths agree.

use super::depthwise_pairs::{pair_sums, PairWeights};
use super::simd::{pack32, requant8, requant_bounds, store32};
use crate::gemm::depthwise::DepthwiseArgs;
use crate::gemm::depthwise_rows::{for_each_row, scalar_channels, RowTaps, Source};
use crate::tail_steps::steps_ending_at;
use qtensor_runtime::isa::Avx2;
use qtensor_runtime::Result;
use std::arch::x86_64::*;

/// Channels per vector: one f32 lane each.
const LANES: usize = 8;

/// The exact sums of `P` pixels by `NB` blocks of 8 channels from `ch`:
/// `load(p, t)` points at pixel `p`'s tap `t`, channel `ch`.
///
/// # Safety
///
/// Every pointer `load` returns must be readable for `8 * NB` bytes.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn sums<const NB: usize, const P: usize>(
    a: &DepthwiseArgs<'_>,
    ch: usize,
    load: impl Fn(usize, usize) -> *const u8,
) -> [[__m256; NB]; P] {
    let c = a.input_sizes[3];
    let mut acc = [[_mm256_setzero_ps(); NB]; P];
    for t in 0..a.kernel[0] * a.kernel[1] {
        let wt = &a.weights[t * c + ch..][..LANES * NB];
        for (p, acc) in acc.iter_mut().enumerate() {
            let x = load(p, t);
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: the caller's promise covers block j's 8 bytes at
                // `x`, and `wt` holds 8 NB floats; unaligned loads.
                unsafe {
                    let xb = _mm256_cvtepu8_epi32(_mm_loadl_epi64(x.add(LANES * j) as *const __m128i));
                    let w = _mm256_loadu_ps(wt.as_ptr().add(LANES * j));
                    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(xb), w, *acc);
                }
            }
        }
    }
    acc
}

/// The requantization's clamp bounds and zero point, as vectors.
type Bounds = (__m256, __m256, __m256i);

/// Requantizes one pixel's `NB` blocks of sums (channels from `ch`) into
/// `dst`, the pixel's `C` output bytes: four blocks to one 32-byte store,
/// the rest 8 bytes at a time.
///
/// Always inlined, into the AVX2 routines that call it: LLVM left it a
/// call per pixel, its blocks of sums passed through memory (a third of
/// a conv's time).
///
/// # Safety
///
/// The CPU must have AVX2 and FMA.
#[inline(always)]
unsafe fn store<const NB: usize>(
    a: &DepthwiseArgs<'_>,
    (lo, hi, zp): Bounds,
    zx_terms: &[f32],
    ch: usize,
    acc: [__m256; NB],
    dst: &mut [u8],
) {
    let n = LANES * NB;
    let (m, b, z) = (&a.mult[ch..ch + n], &a.bias[ch..ch + n], &zx_terms[ch..ch + n]);
    let mut q = [_mm256_setzero_si256(); NB];
    for (j, (q, acc)) in q.iter_mut().zip(acc).enumerate() {
        // SAFETY: `m`, `b` and `z` hold 8 NB floats each; unaligned loads.
        let (m, b, z) = unsafe {
            let at = LANES * j;
            (
                _mm256_loadu_ps(m.as_ptr().add(at)),
                _mm256_loadu_ps(b.as_ptr().add(at)),
                _mm256_loadu_ps(z.as_ptr().add(at)),
            )
        };
        // Both terms are integers below 2^24, and so is their difference.
        *q = requant8(_mm256_sub_ps(acc, z), b, m, lo, hi, zp);
    }
    let dst = &mut dst[ch..ch + n];
    let whole = NB / 4 * 4;
    for (q, d) in q[..whole].chunks_exact(4).zip(dst.chunks_exact_mut(4 * LANES)) {
        store32(d, pack32::<u8>(q[0], q[1], q[2], q[3]), false);
    }
    for (q, d) in q[whole..].iter().zip(dst[whole * LANES..].chunks_exact_mut(LANES)) {
        let words = _mm256_packus_epi32(*q, *q);
        let bytes =
            _mm256_permutevar8x32_epi32(_mm256_packus_epi16(words, words), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
        // SAFETY: `d` holds 8 writable bytes; an unaligned 8-byte store.
        unsafe { _mm_storel_epi64(d.as_mut_ptr() as *mut __m128i, _mm256_castsi256_si128(bytes)) };
    }
}

/// `NB` blocks of 8 channels from `ch` of one output row: the row's
/// interior `P` pixels at a time, then the rest one at a time.
#[target_feature(enable = "avx2,fma")]
fn blocks<const NB: usize, const P: usize>(
    a: &DepthwiseArgs<'_>,
    terms: &Terms<'_>,
    taps: &RowTaps<'_>,
    ch: usize,
    dst: &mut [u8],
) {
    let (c, zx_terms) = (a.input_sizes[3], terms.zx_terms.as_slice());
    let input = a.input.as_ptr();
    let bounds = requant_bounds(a.lo, 255.0, a.zero_point);
    let pairs = terms.pairs.filter(|w| w.covers(ch, NB));
    for (ox, base) in taps.set_starts(P) {
        let base = base + ch;
        let load = |p: usize, t: usize| input.wrapping_add(base + p * taps.step + taps.tap_offsets[t]);
        // SAFETY: pixels `ox..ox + P` are `Source::Inside`, whose every tap
        // (and every extra tap, which reads the first again) holds `C`
        // bytes of the input from `base + tap_offsets[t]`, and
        // `ch + 8 NB <= C`; the pair loop runs only on the groups its
        // layout covers.
        let acc = unsafe {
            match pairs {
                Some(w) => pair_sums::<NB, P>(w, ch, load),
                None => sums::<NB, P>(a, ch, load),
            }
        };
        for (p, acc) in acc.into_iter().enumerate() {
            // SAFETY: this function's target features are AVX2 and FMA.
            unsafe { store(a, bounds, zx_terms, ch, acc, &mut dst[(ox + p) * c..][..c]) };
        }
    }
    for (ox, source) in taps.pixels_past_sets(P) {
        // SAFETY: as above for `Source::Inside`; a border tap's row is a
        // slice of `C` bytes, sliced here to the block's.
        let [acc] = unsafe {
            sums::<NB, 1>(a, ch, |_, t| match source {
                Source::Inside(base) => input.add(base + taps.tap_offsets[t] + ch),
                Source::Border(first) => taps.rows[first + t][ch..ch + LANES * NB].as_ptr(),
            })
        };
        // SAFETY: this function's target features are AVX2 and FMA.
        unsafe { store(a, bounds, zx_terms, ch, acc, &mut dst[ox * c..][..c]) };
    }
}

/// One output row: its channels in blocks of 64, 32, 16 and 8, each with
/// eight chains of FMAs, then the rest in a block of 8 ending at C.
#[target_feature(enable = "avx2,fma")]
fn row(a: &DepthwiseArgs<'_>, terms: &Terms<'_>, taps: &RowTaps<'_>, dst: &mut [u8]) {
    let c = a.input_sizes[3];
    let mut ch = 0;
    while ch + 64 <= c {
        blocks::<8, 1>(a, terms, taps, ch, dst);
        ch += 64;
    }
    if ch + 32 <= c {
        blocks::<4, 2>(a, terms, taps, ch, dst);
        ch += 32;
    }
    if ch + 16 <= c {
        blocks::<2, 4>(a, terms, taps, ch, dst);
        ch += 16;
    }
    // The last 1-15 channels in blocks of 8, the last ending at C
    // (`tail_steps`); fewer than 8 channels in all in scalar.
    let Some(steps) = steps_ending_at(ch, c, 8) else {
        return scalar_channels(a, taps, ch, dst);
    };
    for ch in steps {
        blocks::<1, 8>(a, terms, taps, ch, dst);
    }
}

/// What this routine keeps in a weight's
/// [`LayoutCache`](crate::gemm::depthwise::LayoutCache): per channel, the
/// sum of its taps (`w - w_zero_point`, in f32, exact), and the weight in
/// the pair loop's layout.
struct Layout {
    sums: Vec<f32>,
    pairs: Option<PairWeights>,
}

impl Layout {
    fn of(a: &DepthwiseArgs<'_>, taps: usize) -> Layout {
        let c = a.input_sizes[3];
        Layout {
            sums: (0..c).map(|j| (0..taps).map(|t| a.weights[t * c + j]).sum::<f32>()).collect(),
            pairs: PairWeights::of(a.weights, taps, c),
        }
    }
}

/// The per-call terms of the row routines.
struct Terms<'l> {
    /// Per channel, `zx * sum(w)`: the padding's and the zero point's
    /// share of a sum.
    zx_terms: Vec<f32>,
    /// The weight in the pair loop's layout, if it has one.
    pairs: Option<&'l PairWeights>,
}

/// The NHWC depthwise routine.
pub(super) fn depthwise_nhwc(isa: Avx2, a: &DepthwiseArgs<'_>, out: &mut [u8]) -> Result<()> {
    let (c, taps) = (a.input_sizes[3], a.f32_taps()?);
    // The layout depends on the weight alone, so it is kept with it: the
    // weight sums alone, made per call, were a tenth of a 7x7 conv of 960
    // channels.
    let made;
    let layout = match a.layout.and_then(|l| l.get_or_make(|| Layout::of(a, taps))) {
        Some(cached) if cached.sums.len() == c => cached,
        _ => {
            made = Layout::of(a, taps);
            &made
        }
    };
    let zx = a.zx as f32;
    let terms = Terms { zx_terms: layout.sums.iter().map(|&s| zx * s).collect(), pairs: layout.pairs.as_ref() };
    // The pair loop reads taps two by two: an odd kernel's extra tap
    // reads the first again, with weight 0.
    let taps_per_pixel = terms.pairs.map_or(taps, |w| 2 * w.pairs);
    for_each_row(a, out, taps_per_pixel, |taps, out_row| {
        let _: Avx2 = isa;
        // SAFETY: `isa` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { row(a, &terms, taps, out_row) }
    })
}
