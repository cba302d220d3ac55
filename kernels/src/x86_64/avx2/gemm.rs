//! The AVX2 GEMM epilogues (which the VNNI kernel shares), 16 and 8
//! columns at a time, with the portable epilogues' arithmetic.

use super::simd::{requant8, requant_bounds};
use crate::gemm::{scalar_finish_f32, scalar_finish_u8, PanelTerms, Requant, RowTerms};
use crate::tail_steps::steps_ending_at;
use std::arch::x86_64::*;

/// `C` for 8 columns starting at `j`: `p + col_terms - zw * row_sum`
/// (no product when `zw` is empty, i.e. all zero).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn exact8(t: &RowTerms<'_>, j: usize, row_sum: __m256i) -> __m256i {
    let (p, ct) = (&t.products[j..j + 8], &t.col_terms[j..j + 8]);
    // SAFETY: each slice holds 8 i32 (the ranges above are checked).
    let sum = unsafe {
        _mm256_add_epi32(
            _mm256_loadu_si256(p.as_ptr() as *const __m256i),
            _mm256_loadu_si256(ct.as_ptr() as *const __m256i),
        )
    };
    if t.zw.is_empty() {
        return sum;
    }
    let zw = &t.zw[j..j + 8];
    // SAFETY: `zw` holds 8 i32.
    let zw = unsafe { _mm256_loadu_si256(zw.as_ptr() as *const __m256i) };
    _mm256_sub_epi32(sum, _mm256_mullo_epi32(zw, row_sum))
}

/// The quantizing epilogue over a panel's rows, 16 columns at a time
/// (then 8, the last step ending at column n).
///
/// One function holds the whole loop, rows and columns, as in the VNNI
/// epilogue: a call per row cost two thirds of a 1x1 conv to 16 channels
/// (12,544 rows of one 16-column step each).
#[target_feature(enable = "avx2,fma")]
pub(in crate::x86_64) fn finish_rows_u8(t: PanelTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
    let n = t.col_terms.len();
    let (lo, hi, zp) = requant_bounds(rq.lo, rq.hi, rq.zero_point);
    // Every per-column slice cut to `n` once, so that `j + 16 <= n` proves
    // the loads in bounds.
    let rq = rq.cols(0..n);
    for (r, dst) in dst.chunks_exact_mut(n.max(1)).take(t.row_sums.len()).enumerate() {
        let row = t.row(r);
        let row = row.first(n);
        let row_sum = _mm256_set1_epi32(row.row_sum);
        // Columns j..j + 8, requantized as i32 in [lo, hi]. A macro, not
        // a closure: LLVM does not reliably inline the closure.
        macro_rules! quantized {
            ($j:expr) => {{
                let j = $j;
                let c = _mm256_cvtepi32_ps(exact8(&row, j, row_sum));
                let (m, b) = (&rq.mult[j..j + 8], &rq.bias[j..j + 8]);
                // SAFETY: `m` and `b` hold 8 floats each.
                let (m, b) = unsafe { (_mm256_loadu_ps(m.as_ptr()), _mm256_loadu_ps(b.as_ptr())) };
                requant8(c, b, m, lo, hi, zp)
            }};
        }
        let mut j = 0;
        while j + 16 <= n {
            // Lane 0 holds columns 0-3 then 8-11, lane 1 4-7 then 12-15:
            // gather the dwords back into column order.
            let words = _mm256_packus_epi32(quantized!(j), quantized!(j + 8));
            let bytes = _mm256_packus_epi16(words, words);
            let ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5));
            let d = &mut dst[j..j + 16];
            // SAFETY: `d` holds 16 writable bytes; an unaligned 16-byte store.
            unsafe { _mm_storeu_si128(d.as_mut_ptr() as *mut __m128i, _mm256_castsi256_si128(ordered)) };
            j += 16;
        }
        // The last 1-15 columns: in one or two steps of 8, the last ending
        // at column n (`tail_steps`); fewer than 8 columns in all in scalar.
        let Some(steps) = steps_ending_at(j, n, 8) else {
            scalar_finish_u8(row.tail(j), rq.cols(j..n), &mut dst[j..]);
            continue;
        };
        for j8 in steps {
            let q = quantized!(j8);
            let words = _mm256_packus_epi32(q, q);
            let packed = _mm256_permutevar8x32_epi32(
                _mm256_packus_epi16(words, words),
                _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4),
            );
            let d = &mut dst[j8..j8 + 8];
            // SAFETY: `d` holds 8 writable bytes; an unaligned 8-byte store.
            unsafe { _mm_storel_epi64(d.as_mut_ptr() as *mut __m128i, _mm256_castsi256_si128(packed)) };
        }
    }
}

/// The float epilogue in f64, 4 columns at a time, in the reference's
/// order of operations (so its results are the reference's bits).
#[target_feature(enable = "avx2,fma")]
pub(in crate::x86_64) fn finish_f32(t: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
    let n = dst.len();
    let (rs, sx) = (_mm256_set1_epi32(t.row_sum), _mm256_set1_pd(x_scale));
    let mut j = 0;
    while j + 8 <= n {
        let c = exact8(&t, j, rs);
        for (h, c4) in [_mm256_castsi256_si128(c), _mm256_extracti128_si256::<1>(c)].into_iter().enumerate() {
            let at = j + 4 * h;
            let (w, b, d) = (&w_scales[at..at + 4], &bias[at..at + 4], &mut dst[at..at + 4]);
            // SAFETY: `w` and `b` hold 4 f64 and `d` 4 f32; unaligned loads
            // and a 16-byte store. Separate multiplies and add, no FMA: the
            // reference rounds after each.
            unsafe {
                let v = _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(c4), sx), _mm256_loadu_pd(w.as_ptr()));
                let y = _mm256_add_pd(v, _mm256_loadu_pd(b.as_ptr()));
                _mm_storeu_ps(d.as_mut_ptr(), _mm256_cvtpd_ps(y));
            }
        }
        j += 8;
    }
    scalar_finish_f32(t.tail(j), x_scale, &w_scales[j..], &bias[j..], &mut dst[j..]);
}
