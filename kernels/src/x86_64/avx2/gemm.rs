//! The AVX2 GEMM dot-product kernel (the sign trick; see `crate::gemm`).

use crate::gemm::packed::{PackedB, BLOCK};
use crate::gemm::PKernel;
use crate::x86_64::has_avx2;
use std::arch::x86_64::*;
use std::ops::Range;

/// `P` for `R` rows by `NB` blocks: `Σ (x - 128) w`, weights clamped to -127.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn tile<const R: usize, const NB: usize>(
    a: &[u8],
    kp: usize,
    b: &[i8],
    first_block: usize,
    clamp: bool,
    out: &mut [i32],
    ldo: usize,
    col0: usize,
) {
    let ones = _mm256_set1_epi16(1);
    let floor = _mm256_set1_epi8(-127);
    let mut acc_rows = [[[_mm256_setzero_si256(); 2]; NB]; R];
    let block_bytes = kp * BLOCK;
    assert!(a.len() >= R * kp && kp.is_multiple_of(4));
    let a_ptr = a.as_ptr();
    for q in 0..kp / 4 {
        let mut bv = [[_mm256_setzero_si256(); 2]; NB];
        for (j, v) in bv.iter_mut().enumerate() {
            let at = (first_block + j) * block_bytes + q * 64;
            let bytes = &b[at..at + 64];
            // SAFETY: `bytes` holds 64 bytes: two unaligned 32-byte loads.
            let (lo, hi) = unsafe {
                (
                    _mm256_loadu_si256(bytes.as_ptr() as *const __m256i),
                    _mm256_loadu_si256(bytes.as_ptr().add(32) as *const __m256i),
                )
            };
            *v = if clamp { [_mm256_max_epi8(lo, floor), _mm256_max_epi8(hi, floor)] } else { [lo, hi] };
        }
        for (r, acc) in acc_rows.iter_mut().enumerate() {
            // SAFETY: r < R and 4q + 3 < kp, so the 4 bytes lie within
            // `a` (asserted above); an unaligned read, broadcast from memory.
            let x = _mm256_set1_epi32(unsafe { (a_ptr.add(r * kp + q * 4) as *const i32).read_unaligned() });
            let magnitude = _mm256_abs_epi8(x);
            for (j, acc) in acc.iter_mut().enumerate() {
                for h in 0..2 {
                    let pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(bv[j][h], x));
                    acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
    }
    for (r, acc) in acc_rows.iter().enumerate() {
        for (j, acc) in acc.iter().enumerate() {
            let at = r * ldo + col0 + j * BLOCK;
            let dst = &mut out[at..at + BLOCK];
            // SAFETY: `dst` holds 16 i32: two unaligned 32-byte stores.
            unsafe {
                _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, acc[0]);
                _mm256_storeu_si256(dst.as_mut_ptr().add(8) as *mut __m256i, acc[1]);
            }
        }
    }
}

/// The AVX2 `P` kernel over `rows` x `blocks`.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
fn avx2_gemm_p(a: &[u8], rows: usize, kp: usize, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
    let clamp = !b.minus128.is_empty();
    let data = &b.data[..];
    if rows == 1 {
        // A GEMV: four blocks at a time share each activation broadcast.
        let mut blk = blocks.start;
        while blk + 4 <= blocks.end {
            tile::<1, 4>(a, kp, data, blk, clamp, out, ldo, (blk - blocks.start) * BLOCK);
            blk += 4;
        }
        for blk in blk..blocks.end {
            tile::<1, 1>(a, kp, data, blk, clamp, out, ldo, (blk - blocks.start) * BLOCK);
        }
        return;
    }
    for blk in blocks.clone() {
        let col0 = (blk - blocks.start) * BLOCK;
        let mut r = 0;
        while r + 4 <= rows {
            tile::<4, 1>(&a[r * kp..], kp, data, blk, clamp, &mut out[r * ldo..], ldo, col0);
            r += 4;
        }
        for r in r..rows {
            tile::<1, 1>(&a[r * kp..], kp, data, blk, clamp, &mut out[r * ldo..], ldo, col0);
        }
    }
}

fn run(a: &[u8], rows: usize, kp: usize, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
    assert!(has_avx2(), "the AVX2 GEMM kernel was chosen on a CPU without AVX2");
    // SAFETY: the assertion above checked the CPU features.
    unsafe { avx2_gemm_p(a, rows, kp, b, blocks, out, ldo) }
}

/// The AVX2 GEMM kernel.
pub const AVX2_GEMM: PKernel = PKernel { name: "avx2", shifted: true, run };

crate::register_gemm_linear!("avx2", AVX2_GEMM, super::PRIORITY, crate::x86_64::has_avx2);
crate::register_gemm_conv!("avx2", AVX2_GEMM, super::PRIORITY, crate::x86_64::has_avx2);
