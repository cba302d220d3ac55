//! fbgemm's int16 pair sums on AVX2, computed as fbgemm computes them:
//! `vpmaddubsw` multiplies raw u8 activations by raw i8 weights and adds
//! neighbouring products in int16 with saturation, and `vpmaddwd` by ones
//! adds two such pairs into i32 exactly. The sums equal
//! `reference::int16_pairs` for every input (the pairs are the same: each
//! 4-byte step of K holds pairs `(4q, 4q + 1)` and `(4q + 2, 4q + 3)`).
//!
//! The weights come packed by `gemm::saturating::PairRows`: blocks of 16
//! output rows, each step of 4 K one 64-byte run of 16 rows x 4 bytes.

use super::block_tiles::block_tiles;
use super::gemm_i16::GEMV_PREFETCH_AHEAD;
use super::simd::prefetch;
use crate::gemm::packed::{PackedB, BLOCK};
use crate::gemm::saturating::QUAD_BLOCK;
use std::arch::x86_64::*;
use std::ops::Range;

/// `P` for `R` activation rows (each `kq * 4` bytes of `a`) by `V`
/// halves of one block of 16 weight rows (`b`, `kq * 64` bytes; `V` = 1
/// when only its first 8 rows can be real): the first `cols` columns of
/// `out[r * ldo + col0 + j]`, those past the `8 * V` computed as zero.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn tile<const R: usize, const V: usize>(
    a: &[u8],
    kq: usize,
    b: &[i8],
    out: &mut [i32],
    ldo: usize,
    col0: usize,
    cols: usize,
) {
    let mut acc = [[_mm256_setzero_si256(); V]; R];
    // One check for the whole tile, so the inner loop is only arithmetic.
    assert!(a.len() >= R * kq * 4 && b.len() >= kq * 4 * QUAD_BLOCK && cols <= QUAD_BLOCK && (1..=2).contains(&V));
    let (a_ptr, b_ptr) = (a.as_ptr(), b.as_ptr());
    let ones = _mm256_set1_epi16(1);
    for q in 0..kq {
        if R == 1 {
            // A GEMV streams its weights once: ask ahead, as `gemm_i16` does.
            prefetch(b, q * 64 + GEMV_PREFETCH_AHEAD);
        }
        // SAFETY: step q of the block is 64 bytes at 64q, within `b`
        // (asserted above), and v < V <= 2; unaligned 32-byte loads.
        let w: [__m256i; V] =
            std::array::from_fn(|v| unsafe { _mm256_loadu_si256((b_ptr.add(q * 64) as *const __m256i).add(v)) });
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: r < R and 4q + 3 < kq * 4, so the four bytes lie
            // within `a` (asserted above); an unaligned read, broadcast.
            let x = _mm256_set1_epi32(unsafe { (a_ptr.add(r * kq * 4 + q * 4) as *const i32).read_unaligned() });
            for (acc, w) in acc.iter_mut().zip(&w) {
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, *w), ones));
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let mut row = [0i32; QUAD_BLOCK];
        for (v, acc) in acc.iter().enumerate() {
            // SAFETY: `row` holds 16 i32 and v < V <= 2: an unaligned
            // 32-byte store of 8 of them.
            unsafe { _mm256_storeu_si256(row.as_mut_ptr().add(8 * v) as *mut __m256i, *acc) };
        }
        out[r * ldo + col0..][..cols].copy_from_slice(&row[..cols]);
    }
}

/// fbgemm's pair sums of `rows` activation rows of `kq * 4` bytes (`a`)
/// against the `n` packed weight rows `b`: `out[r * n + j]`.
///
/// # Safety
///
/// The CPU has AVX2 (the caller holds an `Avx2` token).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn pair_sums(a: &[u8], rows: usize, kq: usize, b: &[i8], n: usize, out: &mut [i32]) {
    let block = kq * 4 * QUAD_BLOCK;
    for (i, b) in b.chunks_exact(block.max(1)).take(n.div_ceil(QUAD_BLOCK)).enumerate() {
        let col0 = i * QUAD_BLOCK;
        let cols = QUAD_BLOCK.min(n - col0);
        // Tiles of 4 rows x 2 halves = 8 accumulators, with the two weight
        // vectors, the ones, the broadcast and two products in 16 registers.
        block_tiles!(rows, 4, cols, |r| tile::<R, V>(&a[r * kq * 4..], kq, b, &mut out[r * n..], n, col0, cols));
    }
}

/// [`GemmIsa::dot`](crate::gemm::GemmIsa::dot) by pair sums on the packed
/// weight's own layout (`PackedB::data` has `PairRows`' steps of 4 K by 16
/// columns): `out[r * ldo + j]` for the `rows` rows of `a` (`kp` bytes
/// each) and the columns of `blocks`, every column of each block written.
///
/// Exact only where no pair saturates: the caller has checked that every
/// byte of the panel is below 128 ([`crate::gemm::narrow`]).
///
/// # Safety
///
/// The CPU has AVX2 (the caller holds an `Avx2` token).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn dot(a: &[u8], rows: usize, kp: usize, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
    let block_len = kp * BLOCK;
    let kq = kp / 4;
    for blk in blocks.clone() {
        let w = &b.data[blk * block_len..(blk + 1) * block_len];
        let col0 = (blk - blocks.start) * BLOCK;
        // As in `pair_sums`; `BLOCK` columns written, the padding ones zero.
        block_tiles!(rows, 4, b.n.saturating_sub(blk * BLOCK), |r| tile::<R, V>(
            &a[r * kp..],
            kq,
            w,
            &mut out[r * ldo..],
            ldo,
            col0,
            BLOCK
        ));
    }
}
