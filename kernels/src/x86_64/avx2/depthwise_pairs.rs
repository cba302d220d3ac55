//! The integer inner loop of the AVX2 NHWC depthwise conv
//! (`depthwise_nhwc`): two taps of 16 channels per `vpmaddwd`, for the
//! interior pixels of a row.
//!
//! The f32 loop spends three instructions per tap and 8 channels on
//! widening, converting and the FMA. Here a tap's 16 bytes widen to i16
//! in one load, two taps interleave in two unpacks, and two `vpmaddwd`
//! multiply them by the two taps' weights and add the pairs: 8
//! instructions per 32 multiply-adds instead of 12.
//!
//! Exact: every `x` is in `0..=255` and every weight `w - w_zero_point`
//! in `-255..=255` (the layout is made only then), so each pair sum and
//! the i32 total over at most 64 taps are exact, and below 2^24, so the
//! conversion to f32 gives the same value as the f32 loop's exact sum.

use std::arch::x86_64::*;

/// Channels per group: one 16-byte load of a tap, two vectors of i32 sums.
pub(super) const GROUP: usize = 16;

/// A depthwise weight for the pair loop: per pair of taps and group of 16
/// channels, 32 i16 in the order the unpacks put the activations in
/// (channels 0-3 and 8-11 of the group, then 4-7 and 12-15, each
/// channel's two taps side by side). An odd kernel's last pair has a
/// second tap of weight 0.
pub(super) struct PairWeights {
    /// `[pair][group][32]`.
    w: Vec<i16>,
    /// Groups of 16 channels: the channels past `16 * groups` take the f32
    /// loop.
    groups: usize,
    /// Pairs of taps, `ceil(taps / 2)`.
    pub(super) pairs: usize,
}

impl PairWeights {
    /// The layout of `weights` (`[tap * c + channel]`, `taps` taps), or
    /// `None` if a weight is not an integer in `-255..=255` (then the f32
    /// loop's bound does not hold either, and it runs alone).
    pub(super) fn of(weights: &[f32], taps: usize, c: usize) -> Option<PairWeights> {
        let exact = |v: f32| v.fract() == 0.0 && v.abs() <= 255.0;
        if weights.len() < taps * c || !weights[..taps * c].iter().all(|&v| exact(v)) {
            return None;
        }
        let (groups, pairs) = (c / GROUP, taps.div_ceil(2));
        let mut w = Vec::with_capacity(pairs * groups * 2 * GROUP);
        // The lane order of `_mm256_unpack{lo,hi}_epi16` within 128 bits.
        const HALVES: [[usize; 8]; 2] = [[0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]];
        for q in 0..pairs {
            for g in 0..groups {
                for half in HALVES {
                    for lane in half {
                        let ch = g * GROUP + lane;
                        for t in [2 * q, 2 * q + 1] {
                            w.push(if t < taps { weights[t * c + ch] as i16 } else { 0 });
                        }
                    }
                }
            }
        }
        Some(PairWeights { w, groups, pairs })
    }

    /// Whether channels `ch..ch + 8 * nb` are whole groups of the layout.
    pub(super) fn covers(&self, ch: usize, nb: usize) -> bool {
        ch.is_multiple_of(GROUP) && nb.is_multiple_of(2) && ch + 8 * nb <= self.groups * GROUP
    }
}

/// The exact sums `Σ x * w` of `P` pixels by `NB` blocks of 8 channels
/// from `ch` (whole groups of 16), as f32 in channel order: `load(p, t)`
/// points at pixel `p`'s tap `t`, channel `ch`, for `t` below
/// `2 * w.pairs`; the tap past an odd kernel's last may be any readable
/// one (its weight is 0).
///
/// # Safety
///
/// `w.covers(ch, NB)`, and every pointer `load` returns must be readable
/// for `8 * NB` bytes.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) unsafe fn pair_sums<const NB: usize, const P: usize>(
    w: &PairWeights,
    ch: usize,
    load: impl Fn(usize, usize) -> *const u8,
) -> [[__m256; NB]; P] {
    // Per group, the sums of channels 0-3 | 8-11 (even index), then of
    // 4-7 | 12-15 (odd).
    let mut acc = [[_mm256_setzero_si256(); NB]; P];
    let group0 = ch / GROUP;
    for q in 0..w.pairs {
        let wq = &w.w[(q * w.groups + group0) * 2 * GROUP..][..NB * GROUP];
        for (p, acc) in acc.iter_mut().enumerate() {
            let (x0, x1) = (load(p, 2 * q), load(p, 2 * q + 1));
            for (g, acc) in acc.chunks_exact_mut(2).enumerate() {
                // SAFETY: the caller's promise covers group g's 16 bytes at
                // both taps, and `wq` holds 32 i16 per group; unaligned
                // loads.
                unsafe {
                    let a = _mm256_cvtepu8_epi16(_mm_loadu_si128(x0.add(GROUP * g) as *const __m128i));
                    let b = _mm256_cvtepu8_epi16(_mm_loadu_si128(x1.add(GROUP * g) as *const __m128i));
                    let wl = _mm256_loadu_si256(wq.as_ptr().add(2 * GROUP * g) as *const __m256i);
                    let wh = _mm256_loadu_si256(wq.as_ptr().add(2 * GROUP * g + GROUP) as *const __m256i);
                    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), wl));
                    acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), wh));
                }
            }
        }
    }
    // Channels back in order (0-7, then 8-15, per group), as f32. Loops,
    // not `map`: the closure was not inlined, and its arrays of vectors
    // went through memory (`memcpy` was a fifth of a conv's time).
    let mut out = [[_mm256_setzero_ps(); NB]; P];
    for (out, acc) in out.iter_mut().zip(&acc) {
        for (o, a) in out.chunks_exact_mut(2).zip(acc.chunks_exact(2)) {
            o[0] = _mm256_cvtepi32_ps(_mm256_permute2x128_si256::<0x20>(a[0], a[1]));
            o[1] = _mm256_cvtepi32_ps(_mm256_permute2x128_si256::<0x31>(a[0], a[1]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{PairWeights, GROUP};

    #[test]
    fn pairs_interleave_two_taps_in_the_unpacks_lane_order() {
        // 3 taps of 40 channels: two groups of 16, and 8 channels past them.
        let (taps, c) = (3, 40);
        let value = |t: usize, ch: usize| (t * 100 + ch) as f32 - 150.0;
        let weights: Vec<f32> = (0..taps * c).map(|i| value(i / c, i % c)).collect();
        let w = PairWeights::of(&weights, taps, c).expect("integer weights within 255"); // ok: a test
        assert_eq!((w.pairs, w.groups), (2, 2));
        assert!(w.covers(0, 4) && w.covers(16, 2) && !w.covers(32, 2) && !w.covers(8, 2) && !w.covers(0, 1));
        for q in 0..2 {
            for g in 0..2 {
                let block = &w.w[(q * 2 + g) * 2 * GROUP..][..2 * GROUP];
                let lanes = [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15];
                for (i, &lane) in lanes.iter().enumerate() {
                    let ch = g * GROUP + lane;
                    let second = if 2 * q + 1 < taps { value(2 * q + 1, ch) as i16 } else { 0 };
                    assert_eq!(
                        [block[2 * i], block[2 * i + 1]],
                        [value(2 * q, ch) as i16, second],
                        "pair {q}, channel {ch}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_layout_for_weights_the_sums_cannot_hold() {
        assert!(PairWeights::of(&[1.0; 32], 2, 16).is_some());
        assert!(PairWeights::of(&[-255.0; 32], 2, 16).is_some());
        for bad in [256.0, -256.0, 0.5, f32::NAN, f32::INFINITY] {
            let mut weights = vec![1.0; 32];
            weights[17] = bad;
            assert!(PairWeights::of(&weights, 2, 16).is_none(), "{bad}");
        }
        assert!(PairWeights::of(&[1.0; 31], 2, 16).is_none(), "too few weights");
    }
}
