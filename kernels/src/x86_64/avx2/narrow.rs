//! AVX2's choice for narrow GEMM panels (see [`crate::gemm::narrow`]):
//! whether a panel is narrow, and the one timing of both kernels.

use super::simd::load32;
use super::{gemm_i16, pair_gemm};
use crate::gemm::narrow::{self, NarrowKernel, NarrowTiming};
use crate::gemm::packed::{PackedB, BLOCK};
use crate::gemm::Panel;
use qtensor_runtime::isa::Avx2;
use std::arch::x86_64::*;
use std::ops::Range;
use std::time::{Duration, Instant};

/// True when every byte of `a` is below 128.
#[target_feature(enable = "avx2,fma")]
pub(super) fn all_below_128(a: &[u8]) -> bool {
    let mut high = _mm256_setzero_si256();
    let mut chunks = a.chunks_exact(32);
    for c in &mut chunks {
        high = _mm256_or_si256(high, load32(c));
    }
    _mm256_movemask_epi8(high) == 0 && chunks.remainder().iter().all(|&v| v < 128)
}

/// Appends to `hot` the positions in `a` of the bytes past 127, one
/// movemask per 32 bytes, and stops once it holds more than `most`.
#[target_feature(enable = "avx2,fma")]
fn positions_past_127(a: &[u8], most: usize, hot: &mut Vec<usize>) {
    let mut chunks = a.chunks_exact(32);
    for (i, c) in (&mut chunks).enumerate() {
        let mut mask = _mm256_movemask_epi8(load32(c)) as u32;
        while mask != 0 {
            hot.push(i * 32 + mask.trailing_zeros() as usize);
            if hot.len() > most {
                return;
            }
            mask &= mask - 1;
        }
    }
    let base = a.len() - chunks.remainder().len();
    for (j, _) in chunks.remainder().iter().enumerate().filter(|&(_, &v)| v > 127) {
        hot.push(base + j);
        if hot.len() > most {
            return;
        }
    }
}

/// Whether narrow panels take the pair kernel under the current choice
/// ([`narrow::narrow_kernel`]), timing the kernels if that is the choice
/// and nothing has timed them yet.
fn pairs_wanted(avx2: Avx2) -> bool {
    match narrow::narrow_kernel() {
        NarrowKernel::Widened => false,
        NarrowKernel::Pairs => true,
        NarrowKernel::Measured => narrow::timing(|| measure(avx2)).pairs_win(),
    }
}

/// Rows per run in the narrowness check: whole tiles of both kernels (4
/// and 6 rows). One activation past 127 (an input a little outside the
/// range the model was calibrated on) then affects its run only, not the
/// panel. The check costs a pass over the panel's bytes, about 1% of its
/// multiply-adds at 64 columns.
const NARROW_RUN: usize = 12;

/// How the pair kernel takes a run of rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// Every byte below 128: the pair kernel reads the run in place.
    Narrow,
    /// A few bytes past 127 (at most [`most_past_127`]): the pair kernel
    /// multiplies a copy clamped to 127, and each byte's excess over 127
    /// times its weights is added after, exactly.
    FewPast127,
    /// More: the widening kernel.
    Wide,
}

/// The most bytes past 127 that a run of [`NARROW_RUN`] rows of `kp`
/// bytes corrects rather than widens. Widening a run costs about `kp / 5`
/// cycles per output column more than the pair kernel (on the Zen 3 of
/// 2026-12-07: 8.0 against 4.8 µs for 12 rows, K = 576, 64 columns); a
/// correction costs a scalar multiply-add per column. Measured on the
/// networks, `kp / 16` made MobileNetV2 (K of 16 to 96 under up to 960
/// columns) 5% slower; `kp / 64` gains on ResNet-18 and GoogLeNet and
/// leaves short rows to the widening kernel.
fn most_past_127(kp: usize) -> usize {
    kp / 64
}

/// [`GemmIsa::dot`](crate::gemm::GemmIsa::dot) for AVX2: the pair kernel
/// on narrow rows where it is wanted (and on rows with a few bytes past
/// 127, corrected), the widening kernel elsewhere. Each stretch of narrow
/// or wide runs is one call, so a panel that is narrow throughout is one
/// call of the pair kernel, and each byte is checked once (a run past 127
/// is counted, then copied).
pub(super) fn dot(avx2: Avx2, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
    let (a, kp) = (&x.a[..x.rows * x.kp], x.kp);
    // SAFETY (each `unsafe` below): `avx2` is an `Avx2` token, which proves
    // AVX2 and FMA.
    if !pairs_wanted(avx2) {
        return unsafe { gemm_i16::dot(a, x.rows, kp, b, blocks, out, ldo) };
    }
    let run_rows = |run: usize| run * NARROW_RUN..((run + 1) * NARROW_RUN).min(x.rows);
    let mut hot = Vec::new();
    let mut kind = |run: usize| {
        let rows = run_rows(run);
        let bytes = &a[rows.start * kp..rows.end * kp];
        if unsafe { all_below_128(bytes) } {
            return Run::Narrow;
        }
        let most = most_past_127(kp);
        hot.clear();
        unsafe { positions_past_127(bytes, most, &mut hot) };
        match hot.len() <= most {
            true => Run::FewPast127,
            false => Run::Wide,
        }
    };
    let runs = x.rows.div_ceil(NARROW_RUN);
    let (mut clamped, mut positions) = (Vec::new(), Vec::new());
    let (mut first, mut this) = (0, kind(0));
    for run in 1..=runs {
        let next = (run < runs).then(|| kind(run));
        if next == Some(this) {
            continue;
        }
        // Runs `first..run` are all of one kind.
        let rows = first * NARROW_RUN..run_rows(run - 1).end;
        let (panel, out) = (&a[rows.start * kp..rows.end * kp], &mut out[rows.start * ldo..]);
        match this {
            Run::Narrow => unsafe { pair_gemm::dot(panel, rows.len(), kp, b, blocks.clone(), out, ldo) },
            Run::FewPast127 => {
                positions.clear();
                unsafe { positions_past_127(panel, usize::MAX, &mut positions) };
                clamped.clear();
                clamped.extend_from_slice(panel);
                for &i in &positions {
                    clamped[i] = 127;
                }
                unsafe { pair_gemm::dot(&clamped, rows.len(), kp, b, blocks.clone(), out, ldo) };
                add_excess_past_127(panel, &positions, kp, b, blocks.clone(), out, ldo);
            }
            Run::Wide => unsafe { gemm_i16::dot(panel, rows.len(), kp, b, blocks.clone(), out, ldo) },
        }
        if let Some(next) = next {
            (first, this) = (run, next);
        }
    }
}

/// Adds `(v - 127) * w[col, k]` to `out[r * ldo + j]` for the byte `v` at
/// each of `positions` (row `r`, position `k` of `panel`; each past 127),
/// and each column of `blocks` (`j` counted from its start): what the pair
/// kernel left out of those bytes when it multiplied them clamped to 127.
/// Wrapping, as the kernels' i32 lanes are.
fn add_excess_past_127(
    panel: &[u8],
    positions: &[usize],
    kp: usize,
    b: &PackedB,
    blocks: Range<usize>,
    out: &mut [i32],
    ldo: usize,
) {
    for &i in positions {
        let (r, k, excess) = (i / kp, i % kp, panel[i] as i32 - 127);
        let row = &mut out[r * ldo..][..blocks.len() * BLOCK];
        for (dst, block) in row.chunks_exact_mut(BLOCK).zip(blocks.clone()) {
            for (o, w) in dst.iter_mut().zip(b.block_weights_at(block, k)) {
                *o = o.wrapping_add(excess.wrapping_mul(w as i32));
            }
        }
    }
}

/// Times both kernels on one panel of a ResNet 3x3 conv's shape (48 rows,
/// K = 576, 64 columns): the best of 7 interleaved rounds of 3 calls each,
/// about 1 ms in all.
fn measure(_avx2: Avx2) -> NarrowTiming {
    const ROWS: usize = 48;
    const K: usize = 576;
    const N: usize = 64;
    let w: Vec<i8> = (0..N * K).map(|i| (i.wrapping_mul(37) % 255) as u8 as i8).collect();
    let Ok(b) = PackedB::pack(&w, N, K) else {
        // Packing 36 KiB failed (out of memory): no evidence for pairs.
        return NarrowTiming { pairs: Duration::MAX, widened: Duration::ZERO };
    };
    let a: Vec<u8> = (0..ROWS * b.kp).map(|i| (i.wrapping_mul(11) % 128) as u8).collect();
    let mut out = vec![0i32; ROWS * N];
    let blocks = 0..N.div_ceil(BLOCK);
    let mut best = [Duration::MAX; 2];
    for _ in 0..7 {
        for (kernel, best) in best.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..3 {
                // SAFETY: `_avx2` is an `Avx2` token, which proves AVX2
                // and FMA.
                unsafe {
                    if kernel == 0 {
                        pair_gemm::dot(&a, ROWS, b.kp, &b, blocks.clone(), &mut out, N);
                    } else {
                        gemm_i16::dot(&a, ROWS, b.kp, &b, blocks.clone(), &mut out, N);
                    }
                }
            }
            *best = (*best).min(start.elapsed());
            std::hint::black_box(&mut out);
        }
    }
    NarrowTiming { pairs: best[0], widened: best[1] }
}

/// The timing, made now if no narrow panel has made it yet; `None` when
/// the CPU (or the ISA cap) has no AVX2.
pub fn narrow_timing() -> Option<NarrowTiming> {
    Avx2::detect().map(|avx2| narrow::timing(|| measure(avx2)))
}
