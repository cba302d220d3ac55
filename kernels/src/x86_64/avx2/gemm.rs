//! The AVX2 GEMM dot-product kernel (the sign trick; see `crate::gemm`).

use crate::gemm::packed::{PackedB, BLOCK};
use crate::gemm::{scalar_finish_f32, scalar_finish_u8, PKernel, RowTerms};
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
    // One check for the whole tile, so the inner loop is only arithmetic.
    assert!(a.len() >= R * kp && kp.is_multiple_of(4) && b.len() >= (first_block + NB) * block_bytes);
    let a_ptr = a.as_ptr();
    // SAFETY: the block range was asserted to lie within `b`.
    let b_ptr = unsafe { b.as_ptr().add(first_block * block_bytes) };
    for q in 0..kp / 4 {
        let mut bv = [[_mm256_setzero_si256(); 2]; NB];
        for (j, v) in bv.iter_mut().enumerate() {
            // SAFETY: 64 bytes at block j, k-quad q: j < NB and 64q + 64
            // <= block_bytes, within the asserted range; unaligned loads.
            let (lo, hi) = unsafe {
                let at = b_ptr.add(j * block_bytes + q * 64);
                (_mm256_loadu_si256(at as *const __m256i), _mm256_loadu_si256(at.add(32) as *const __m256i))
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

/// `C` for 8 columns starting at `j`: `p + col_terms - zw * row_sum`.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn exact8(t: &RowTerms<'_>, j: usize, row_sum: __m256i) -> __m256i {
    let (p, ct, zw) = (&t.p[j..j + 8], &t.col_terms[j..j + 8], &t.zw[j..j + 8]);
    // SAFETY: each slice holds 8 i32 (the ranges above are checked).
    let (p, ct, zw) = unsafe {
        (
            _mm256_loadu_si256(p.as_ptr() as *const __m256i),
            _mm256_loadu_si256(ct.as_ptr() as *const __m256i),
            _mm256_loadu_si256(zw.as_ptr() as *const __m256i),
        )
    };
    _mm256_sub_epi32(_mm256_add_epi32(p, ct), _mm256_mullo_epi32(zw, row_sum))
}

/// The quantizing epilogue, 8 columns at a time.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
fn avx2_finish_u8_impl(t: RowTerms<'_>, mult: &[f32], add: &[f32], lo: f32, hi: f32, dst: &mut [u8]) {
    let n = dst.len();
    let (rs, vlo, vhi) = (_mm256_set1_epi32(t.row_sum), _mm256_set1_ps(lo), _mm256_set1_ps(hi));
    let mut j = 0;
    let mut bytes = [0u8; 8];
    while j + 8 <= n {
        let c = _mm256_cvtepi32_ps(exact8(&t, j, rs));
        let (m, a) = (&mult[j..j + 8], &add[j..j + 8]);
        // SAFETY: `m` and `a` hold 8 floats each.
        let v = unsafe { _mm256_fmadd_ps(c, _mm256_loadu_ps(m.as_ptr()), _mm256_loadu_ps(a.as_ptr())) };
        let q = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, vlo), vhi));
        let words = _mm256_packus_epi32(q, q);
        let packed =
            _mm256_permutevar8x32_epi32(_mm256_packus_epi16(words, words), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
        // SAFETY: `bytes` is 8 writable bytes; an unaligned 8-byte store.
        unsafe { _mm_storel_epi64(bytes.as_mut_ptr() as *mut __m128i, _mm256_castsi256_si128(packed)) };
        dst[j..j + 8].copy_from_slice(&bytes);
        j += 8;
    }
    let tail = RowTerms { p: &t.p[j..], col_terms: &t.col_terms[j..], zw: &t.zw[j..], row_sum: t.row_sum };
    scalar_finish_u8(tail, &mult[j..], &add[j..], lo, hi, &mut dst[j..]);
}

/// The float epilogue, 8 columns at a time.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
fn avx2_finish_f32_impl(t: RowTerms<'_>, mult: &[f32], bias: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    let rs = _mm256_set1_epi32(t.row_sum);
    let mut j = 0;
    while j + 8 <= n {
        let c = _mm256_cvtepi32_ps(exact8(&t, j, rs));
        let (m, b, d) = (&mult[j..j + 8], &bias[j..j + 8], &mut dst[j..j + 8]);
        // SAFETY: `m`, `b` and `d` hold 8 floats each.
        unsafe {
            _mm256_storeu_ps(
                d.as_mut_ptr(),
                _mm256_fmadd_ps(c, _mm256_loadu_ps(m.as_ptr()), _mm256_loadu_ps(b.as_ptr())),
            )
        };
        j += 8;
    }
    let tail = RowTerms { p: &t.p[j..], col_terms: &t.col_terms[j..], zw: &t.zw[j..], row_sum: t.row_sum };
    scalar_finish_f32(tail, &mult[j..], &bias[j..], &mut dst[j..]);
}

/// The AVX2 quantizing epilogue (also used by the VNNI kernel).
pub fn avx2_finish_u8(t: RowTerms<'_>, mult: &[f32], add: &[f32], lo: f32, hi: f32, dst: &mut [u8]) {
    if has_avx2() {
        // SAFETY: AVX2 and FMA were just detected.
        unsafe { avx2_finish_u8_impl(t, mult, add, lo, hi, dst) }
    } else {
        scalar_finish_u8(t, mult, add, lo, hi, dst)
    }
}

/// The AVX2 float epilogue (also used by the VNNI kernel).
pub fn avx2_finish_f32(t: RowTerms<'_>, mult: &[f32], bias: &[f32], dst: &mut [f32]) {
    if has_avx2() {
        // SAFETY: AVX2 and FMA were just detected.
        unsafe { avx2_finish_f32_impl(t, mult, bias, dst) }
    } else {
        scalar_finish_f32(t, mult, bias, dst)
    }
}

/// The AVX2 GEMM kernel.
pub const AVX2_GEMM: PKernel = PKernel {
    name: "avx2",
    shifted: true,
    run,
    finish_u8: avx2_finish_u8,
    finish_f32: avx2_finish_f32,
    depthwise: Some(super::depthwise_nhwc::DEPTHWISE_NHWC),
};

crate::register_gemm_linear!("avx2", AVX2_GEMM, super::PRIORITY, crate::x86_64::has_avx2);
crate::register_gemm_conv!("avx2", AVX2_GEMM, super::PRIORITY, crate::x86_64::has_avx2);
