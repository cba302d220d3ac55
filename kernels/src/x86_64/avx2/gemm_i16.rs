//! The AVX2 GEMM dot-product kernel on widened operands: activations and
//! weights as i16 (the weights stay i8 in memory and are sign-extended as
//! they load), multiplied in pairs by `vpmaddwd` into i32.
//!
//! Every product `x * w` with `x` in `0..=255` and `w` in `-128..=127` and
//! every pair sum fit i16 inputs and an i32 result, so the kernel is exact
//! with no sign trick and no correction for weights of -128. On CPUs whose
//! `vpsignb`/`vpabsb` share ports with the multipliers (Zen 4, for one),
//! this runs faster than `vpmaddubsw` with the sign trick: two port-bound
//! instructions per 16 products instead of seven per 64.

use super::block_tiles::block_tiles;
use super::simd::prefetch;
use crate::gemm::packed::{PackedB, BLOCK};
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::ops::Range;

/// How far ahead of its loads a one-row tile prefetches the weights, in
/// bytes. On the Zen 2 of 2026-12-07 a 4096x4096 linear at batch 1 read its
/// 16 MiB at 18 GB/s with the hardware prefetcher alone (0.91-0.93 ms), and
/// at 25 GB/s (0.65-0.67 ms) with this hint, where the `bw` probe's plain
/// read gives 17.8 GB/s. Anything from 3 to 8 KiB ahead did as well; 512
/// bytes gained half as much.
pub(super) const GEMV_PREFETCH_AHEAD: usize = 4096;

/// `P` for `R` rows by `V` halves of one block (`V` = 2: all 16 columns;
/// `V` = 1: the first 8, for a last block whose other 8 are only
/// padding): `a16` holds `R` rows of `kp` i16 activations, `b8` the
/// block's weights as `kp / 2` pairs of 16 columns of 2 i8 each, widened
/// to i16 as they are loaded. Writes all 16 columns of each row.
#[target_feature(enable = "avx2,fma")]
fn tile<const R: usize, const V: usize>(a16: &[i16], kp: usize, b8: &[i8], out: &mut [i32], ldo: usize, col0: usize) {
    let mut acc = [[_mm256_setzero_si256(); V]; R];
    // One check for the whole tile, so the inner loop is only arithmetic.
    assert!(a16.len() >= R * kp && kp.is_multiple_of(2) && b8.len() >= kp * BLOCK && (1..=2).contains(&V));
    let (a_ptr, b_ptr) = (a16.as_ptr(), b8.as_ptr());
    for p in 0..kp / 2 {
        if R == 1 {
            // A one-row tile is mostly a GEMV (a linear at batch 1): it
            // streams the weights from memory and uses each byte once, so
            // it asks for them ahead of the hardware prefetcher. As the
            // last tile of a taller panel it costs one instruction per
            // pair step.
            prefetch(b8, p * 32 + GEMV_PREFETCH_AHEAD);
        }
        // SAFETY: pair p of the block is 32 bytes at 32p, and 32p + 32 <=
        // kp * 16 (asserted above); unaligned 16-byte loads, sign-extended.
        let w: [__m256i; V] = std::array::from_fn(|v| unsafe {
            _mm256_cvtepi8_epi16(_mm_loadu_si128(b_ptr.add(p * 32 + 16 * v) as *const __m128i))
        });
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: r < R and 2p + 1 < kp, so the two i16 lie within
            // `a16` (asserted above); an unaligned read, broadcast.
            let x = _mm256_set1_epi32(unsafe { (a_ptr.add(r * kp + 2 * p) as *const i32).read_unaligned() });
            for (acc, w) in acc.iter_mut().zip(&w) {
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(x, *w));
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let dst = &mut out[r * ldo + col0..r * ldo + col0 + BLOCK];
        // The block's padding columns past the first 8 * V are zeros, as
        // a full tile computes them (`GemmIsa::dot` writes every column of
        // its blocks).
        let halves = std::array::from_fn::<_, 2, _>(|v| acc.get(v).copied().unwrap_or(_mm256_setzero_si256()));
        for (v, half) in halves.iter().enumerate() {
            // SAFETY: `dst` holds 16 i32 and v < 2: an unaligned 32-byte
            // store of 8 of them.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().add(8 * v) as *mut __m256i, *half) };
        }
    }
}

/// The kernel over `rows` x `blocks`, on activations already widened;
/// `n` is the weight's column count, so that a last block with 8 or fewer
/// real columns computes only those 8.
///
/// Tiles of 6 rows: 6 rows x 2 halves = 12 accumulators, with room for
/// the two weight vectors and the broadcast in the 16 ymm registers
/// (measured against 4 and 5 rows on Zen 4: 6 is a few percent ahead).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn gemm_i16(
    a16: &[i16],
    rows: usize,
    kp: usize,
    b8: &[i8],
    n: usize,
    blocks: Range<usize>,
    out: &mut [i32],
    ldo: usize,
) {
    let block_len = kp * BLOCK;
    for blk in blocks.clone() {
        let b = &b8[blk * block_len..(blk + 1) * block_len];
        let col0 = (blk - blocks.start) * BLOCK;
        block_tiles!(rows, 6, n.saturating_sub(blk * BLOCK), |r| tile::<R, V>(
            &a16[r * kp..],
            kp,
            b,
            &mut out[r * ldo..],
            ldo,
            col0
        ));
    }
}

thread_local! {
    /// The widened activations of the current call, reused across calls.
    static WIDE: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

/// The kernel entry: widens the `rows` rows of `a` once, then runs every
/// block over them (the driver passes at most a few dozen rows at a time,
/// so the widened panel stays in L2).
#[target_feature(enable = "avx2,fma")]
pub(super) fn dot(a: &[u8], rows: usize, kp: usize, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
    let pairs = b.pairs();
    WIDE.with(|wide| {
        let mut wide = wide.borrow_mut();
        wide.clear();
        wide.extend(a[..rows * kp].iter().map(|&v| v as i16));
        // The closure inherits this function's target features.
        gemm_i16(&wide, rows, kp, pairs, b.n, blocks, out, ldo)
    });
}
