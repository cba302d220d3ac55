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
/// range the model was calibrated on) then sends its run to the widening
/// kernel, not the panel. The check costs a pass over the panel's bytes,
/// about 1% of its multiply-adds at 64 columns.
const NARROW_RUN: usize = 12;

/// [`GemmIsa::dot`](crate::gemm::GemmIsa::dot) for AVX2: the pair kernel
/// on narrow rows where it is wanted, the widening kernel elsewhere. Each
/// stretch of runs of one kind is one call, so a panel that is narrow
/// throughout is one call of the pair kernel, and each byte is checked
/// once.
pub(super) fn dot(avx2: Avx2, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
    let (a, kp) = (&x.a[..x.rows * x.kp], x.kp);
    // SAFETY (each `unsafe` below): `avx2` is an `Avx2` token, which proves
    // AVX2 and FMA.
    if !pairs_wanted(avx2) {
        return unsafe { gemm_i16::dot(a, x.rows, kp, b, blocks, out, ldo) };
    }
    let run_rows = |run: usize| run * NARROW_RUN..((run + 1) * NARROW_RUN).min(x.rows);
    let is_narrow = |run: usize| {
        let rows = run_rows(run);
        unsafe { all_below_128(&a[rows.start * kp..rows.end * kp]) }
    };
    let runs = x.rows.div_ceil(NARROW_RUN);
    let (mut first, mut narrow) = (0, is_narrow(0));
    for run in 1..=runs {
        let next = (run < runs).then(|| is_narrow(run));
        if next == Some(narrow) {
            continue;
        }
        // Runs `first..run` are all of one kind.
        let rows = first * NARROW_RUN..run_rows(run - 1).end;
        let (panel, out) = (&a[rows.start * kp..rows.end * kp], &mut out[rows.start * ldo..]);
        if narrow {
            unsafe { pair_gemm::dot(panel, rows.len(), kp, b, blocks.clone(), out, ldo) }
        } else {
            unsafe { gemm_i16::dot(panel, rows.len(), kp, b, blocks.clone(), out, ldo) }
        }
        if let Some(next) = next {
            (first, narrow) = (run, next);
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
