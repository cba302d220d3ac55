//! The AVX-512 VNNI GEMM dot-product kernel: `P = Σ x w` with raw u8
//! activations and s8 weights (see `crate::gemm`).

use crate::gemm::packed::{PackedB, BLOCK};
use crate::gemm::ShiftedRows;
use crate::gemm::{PanelTerms, Requant};
use std::arch::x86_64::*;
use std::ops::Range;

/// Where K lies within a row of activations: runs of `run` bytes (a
/// multiple of 4) at the given offsets, in K's order. A dense row is one
/// run at offset 0; a shifted row (an implicit GEMM's) one run per tap.
#[derive(Clone, Copy)]
struct KRuns<'a> {
    offsets: &'a [usize],
    run: usize,
    /// The bytes every row must hold: the end of its farthest run.
    reach: usize,
}

impl<'a> KRuns<'a> {
    /// Dense rows of `kp` bytes.
    fn dense(kp: usize) -> KRuns<'a> {
        KRuns { offsets: &[0], run: kp, reach: kp }
    }

    /// Runs of `run` bytes at `offsets`; `None` if the farthest one's end
    /// overflows.
    fn shifted(offsets: &'a [usize], run: usize) -> Option<KRuns<'a>> {
        let reach = offsets.iter().max().map_or(Some(0), |&far| far.checked_add(run))?;
        Some(KRuns { offsets, run, reach })
    }
}

/// `P` for `R` rows by `NB` blocks (one 512-bit accumulator each): row
/// `r`'s K is the runs `k` from `a[r * stride..]`.
///
/// The loop over K holds only the loads, broadcasts and `vpdpbusd`s: each
/// row's and each block's start is a pointer fixed before it, so that no
/// bounds check or index arithmetic competes with them for issue slots.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
fn tile<const R: usize, const NB: usize>(
    a: &[u8],
    stride: usize,
    k: KRuns<'_>,
    b: &[i8],
    first_block: usize,
    out: &mut [i32],
    ldo: usize,
    col0: usize,
) {
    let mut acc = [[_mm512_setzero_si512(); NB]; R];
    let kp = k.offsets.len() * k.run;
    let block_bytes = kp * BLOCK;
    // Plain arithmetic and loops below, no closures: LLVM leaves
    // `array::from_fn` and `Option` combinators out of line here.
    // ok: cannot fire: `dot` passes dense rows whose K packing pads to a
    // multiple of 4, and `dot_shifted` declines runs that are not.
    assert!(k.run.is_multiple_of(4));
    // ok: cannot fire: `dot` passes whole panels, and `dot_shifted` checks
    // the last row's reach before it calls `dot_rows`.
    assert!(stride.saturating_mul(R - 1).saturating_add(k.reach) <= a.len());
    let b = &b[first_block * block_bytes..(first_block + NB) * block_bytes];
    // The weights' 64 bytes of the current step of 4 k.
    let mut step = 0;
    for &offset in k.offsets {
        // `step_by` would cost a division per run, and a loop LLVM
        // unrolls less well.
        let mut at = offset;
        while at < offset + k.run {
            let mut bv = [_mm512_setzero_si512(); NB];
            for (j, v) in bv.iter_mut().enumerate() {
                // SAFETY: fewer than kp / 4 steps precede this one, so the
                // 64 bytes at 64 * step lie within block j's 16 * kp bytes
                // of `b`; an unaligned load.
                *v = unsafe { _mm512_loadu_si512(b.as_ptr().add(j * block_bytes + step * 64) as *const __m512i) };
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: r < R and `at + 4 <= k.reach`, so the 4 bytes end
                // by `(R - 1) * stride + k.reach <= a.len()` (asserted
                // above); an unaligned read, broadcast from memory.
                let x = _mm512_set1_epi32(unsafe { (a.as_ptr().add(r * stride + at) as *const i32).read_unaligned() });
                for (acc, bv) in acc.iter_mut().zip(bv) {
                    *acc = _mm512_dpbusd_epi32(*acc, x, bv);
                }
            }
            step += 1;
            at += 4;
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (j, acc) in acc.iter().enumerate() {
            let at = r * ldo + col0 + j * BLOCK;
            let dst = &mut out[at..at + BLOCK];
            // SAFETY: `dst` holds 16 i32; unaligned 64-byte store.
            unsafe { _mm512_storeu_si512(dst.as_mut_ptr() as *mut __m512i, *acc) }
        }
    }
}

/// The VNNI `P` kernel over `rows` x `blocks` (see `GemmIsa::dot`): row
/// `r`'s K is the runs `k` from `a[r * stride..]`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
fn dot_rows(
    a: &[u8],
    stride: usize,
    rows: usize,
    k: KRuns<'_>,
    b: &PackedB,
    blocks: Range<usize>,
    out: &mut [i32],
    ldo: usize,
) {
    let data = &b.data[..];
    if rows == 1 {
        let mut blk = blocks.start;
        while blk + 4 <= blocks.end {
            tile::<1, 4>(a, stride, k, data, blk, out, ldo, (blk - blocks.start) * BLOCK);
            blk += 4;
        }
        for blk in blk..blocks.end {
            tile::<1, 1>(a, stride, k, data, blk, out, ldo, (blk - blocks.start) * BLOCK);
        }
        return;
    }
    let mut blk = blocks.start;
    while blk < blocks.end {
        let two = blk + 2 <= blocks.end;
        let col0 = (blk - blocks.start) * BLOCK;
        let mut r = 0;
        while r + 8 <= rows {
            let (a, out) = (&a[r * stride..], &mut out[r * ldo..]);
            if two {
                tile::<8, 2>(a, stride, k, data, blk, out, ldo, col0);
            } else {
                tile::<8, 1>(a, stride, k, data, blk, out, ldo, col0);
            }
            r += 8;
        }
        for r in r..rows {
            let (a, out) = (&a[r * stride..], &mut out[r * ldo..]);
            if two {
                tile::<1, 2>(a, stride, k, data, blk, out, ldo, col0);
            } else {
                tile::<1, 1>(a, stride, k, data, blk, out, ldo, col0);
            }
        }
        blk += if two { 2 } else { 1 };
    }
}

/// The VNNI `P` kernel over `rows` dense rows of `a`, `kp` bytes each.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) fn dot(a: &[u8], rows: usize, kp: usize, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
    dot_rows(a, kp, rows, KRuns::dense(kp), b, blocks, out, ldo)
}

/// The VNNI `P` kernel over shifted rows read in place (see
/// `GemmIsa::dot_shifted`); false when they cannot be: channels not a
/// multiple of 4 (a K step would straddle two taps), a packed K other than
/// the taps' bytes, or reads past the source.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) fn dot_shifted(
    rows: Range<usize>,
    x: &ShiftedRows<'_>,
    b: &PackedB,
    blocks: Range<usize>,
    out: &mut [i32],
    ldo: usize,
) -> bool {
    let c = x.channels;
    let kp = x.taps.len() * c;
    if c == 0 || !c.is_multiple_of(4) || b.kp != kp || rows.is_empty() {
        return false;
    }
    // Tap t's run starts `taps[t]` pixels after the row's own.
    let Some(offsets) = x.taps.iter().map(|&tap| tap.checked_mul(c)).collect::<Option<Vec<usize>>>() else {
        return false;
    };
    let Some(k) = KRuns::shifted(&offsets, c) else { return false };
    // The last row's reads end at its start plus `reach`: within the source.
    if (rows.end - 1).checked_mul(c).and_then(|at| at.checked_add(k.reach)).is_none_or(|end| end > x.src.len()) {
        return false;
    }
    dot_rows(&x.src[rows.start * c..], c, rows.len(), k, b, blocks, out, ldo);
    true
}

/// The quantizing epilogue with 512-bit vectors over a panel's rows, 64
/// and 16 columns at a time, then the last columns under a mask, lane for
/// lane the AVX2 epilogue's arithmetic (`crate::gemm::Requant`).
///
/// One function holds the whole loop, rows and columns, and its column
/// step is a macro: LLVM inlines neither a per-row function nor a column
/// closure reliably, and a call per 64 or 16 outputs costs a third of
/// the time. Rows of fewer than 64 columns take
/// [`finish_narrow_rows_u8`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub(super) fn finish_rows_u8(t: PanelTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
    let n = t.col_terms.len();
    if n < 4 * LANES {
        return match n.div_ceil(LANES) {
            0 => {}
            1 => finish_narrow_rows_u8::<1>(t, rq, dst),
            2 => finish_narrow_rows_u8::<2>(t, rq, dst),
            3 => finish_narrow_rows_u8::<3>(t, rq, dst),
            _ => finish_narrow_rows_u8::<4>(t, rq, dst),
        };
    }
    let zp = rq.zero_point as f32;
    let (lo, hi, zpv) = (_mm512_set1_ps(rq.lo - zp), _mm512_set1_ps(rq.hi - zp), _mm512_set1_epi32(rq.zero_point));
    let load_i32 = |s: &[i32]| {
        let s = &s[..16];
        // SAFETY: `s` holds 16 i32; an unaligned 64-byte load.
        unsafe { _mm512_loadu_si512(s.as_ptr() as *const __m512i) }
    };
    let load_f32 = |s: &[f32]| {
        let s = &s[..16];
        // SAFETY: `s` holds 16 f32; an unaligned 64-byte load.
        unsafe { _mm512_loadu_ps(s.as_ptr()) }
    };
    // The last columns of a row, fewer than 16: as many lanes as `s` holds,
    // the rest 0 (and never stored). A row's tail in the same loop, where
    // a call per row to a narrower epilogue cost a twentieth of
    // MobileNetV3 (72, 120 and 200 columns leave 8).
    let tail_i32 = |s: &[i32]| {
        // SAFETY: the mask selects the `s.len()` (under 16) i32 of `s`;
        // masked-out lanes are not read (AVX-512 suppresses their faults).
        unsafe { _mm512_maskz_loadu_epi32(lanes_mask(s.len()), s.as_ptr()) }
    };
    let tail_f32 = |s: &[f32]| {
        // SAFETY: as for `tail_i32`.
        unsafe { _mm512_maskz_loadu_ps(lanes_mask(s.len()), s.as_ptr()) }
    };
    // 64 columns: two rounds of packs (which keep the values, all within
    // 0..=255) and one permute, then one 64-byte store; cheaper than four
    // narrowing stores.
    let lanes_in_order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    // Every per-column slice cut to `n` once, so that the column steps'
    // `j + 16 <= n` proves their loads in bounds: no check per load.
    let (bias, mult) = (&rq.bias[..n], &rq.mult[..n]);
    for (r, dst) in dst.chunks_exact_mut(n.max(1)).take(t.row_sums.len()).enumerate() {
        let row = t.row(r);
        let row = row.first(n);
        let (products, col_terms, zw) = (row.products, row.col_terms, row.zw);
        let row_sum = _mm512_set1_epi32(row.row_sum);
        // Columns j..j + 16, requantized as i32 in [lo, hi] within 0..=255.
        macro_rules! quantized {
            ($j:expr) => {
                quantized!($j, load_i32, load_f32)
            };
            ($j:expr, $load_i32:ident, $load_f32:ident) => {{
                let j = $j;
                let mut c = _mm512_add_epi32($load_i32(&products[j..]), $load_i32(&col_terms[j..]));
                if !zw.is_empty() {
                    c = _mm512_sub_epi32(c, _mm512_mullo_epi32($load_i32(&zw[j..]), row_sum));
                }
                let v =
                    _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(c), $load_f32(&bias[j..])), $load_f32(&mult[j..]));
                _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi)), zpv)
            }};
        }
        let mut j = 0;
        while j + 64 <= n {
            let words_lo = _mm512_packs_epi32(quantized!(j), quantized!(j + 16));
            let words_hi = _mm512_packs_epi32(quantized!(j + 32), quantized!(j + 48));
            let bytes = _mm512_permutexvar_epi32(lanes_in_order, _mm512_packus_epi16(words_lo, words_hi));
            let d = &mut dst[j..j + 64];
            // SAFETY: `d` holds 64 writable bytes; an unaligned 64-byte store.
            unsafe { _mm512_storeu_si512(d.as_mut_ptr() as *mut __m512i, bytes) };
            j += 64;
        }
        while j + 16 <= n {
            // Narrowing keeps the value.
            let bytes = _mm512_cvtepi32_epi8(quantized!(j));
            let d = &mut dst[j..j + 16];
            // SAFETY: `d` holds 16 writable bytes; an unaligned 16-byte store.
            unsafe { _mm_storeu_si128(d.as_mut_ptr() as *mut __m128i, bytes) };
            j += 16;
        }
        if j < n {
            let q = quantized!(j, tail_i32, tail_f32);
            let d = &mut dst[j..];
            // SAFETY: the mask covers the `n - j` writable bytes of `d`; q
            // lies in [lo, hi] within 0..=255, so narrowing keeps it.
            unsafe { _mm512_mask_cvtepi32_storeu_epi8(d.as_mut_ptr() as *mut i8, lanes_mask(d.len()), q) };
        }
    }
}

/// Output columns per vector of the epilogue.
const LANES: usize = 16;

/// The `len.min(16)` low lanes.
#[inline]
fn lanes_mask(len: usize) -> __mmask16 {
    ((1u32 << len.min(LANES)) - 1) as __mmask16
}

/// [`finish_rows_u8`] for rows of fewer than 64 columns, `V` vectors of
/// 16 each (MobileNets' 16- to 40-channel 1x1 convs), with the same lanes'
/// arithmetic. Every per-column term is loaded once per panel and kept in
/// registers: with a vector or two per row, the general loop's per-row
/// setup cost more than the row's requantization (a 1x1 conv from 32 to 16
/// channels spent half its time there).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
fn finish_narrow_rows_u8<const V: usize>(t: PanelTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
    let n = t.col_terms.len();
    let zp = rq.zero_point as f32;
    let (lo, hi, zpv) = (_mm512_set1_ps(rq.lo - zp), _mm512_set1_ps(rq.hi - zp), _mm512_set1_epi32(rq.zero_point));
    // Vector v covers columns 16v.. of the row, as many as lie below n.
    let masks: [__mmask16; V] = std::array::from_fn(|v| lanes_mask(n.saturating_sub(v * LANES)));
    let load_i32 = |s: &[i32], v: usize| {
        let s = &s[v * LANES..n];
        // SAFETY: the mask selects the `min(16, n - 16v)` i32 that `s`
        // holds; masked-out lanes are not read (AVX-512 suppresses their
        // faults).
        unsafe { _mm512_maskz_loadu_epi32(masks[v], s.as_ptr()) }
    };
    let load_f32 = |s: &[f32], v: usize| {
        let s = &s[v * LANES..n];
        // SAFETY: as for `load_i32`.
        unsafe { _mm512_maskz_loadu_ps(masks[v], s.as_ptr()) }
    };
    let col_terms: [__m512i; V] = std::array::from_fn(|v| load_i32(t.col_terms, v));
    let bias: [__m512; V] = std::array::from_fn(|v| load_f32(rq.bias, v));
    let mult: [__m512; V] = std::array::from_fn(|v| load_f32(rq.mult, v));
    let zw: Option<[__m512i; V]> = (!t.zw.is_empty()).then(|| std::array::from_fn(|v| load_i32(t.zw, v)));
    for (r, (dst, &row_sum)) in dst.chunks_exact_mut(n).zip(t.row_sums).enumerate() {
        let products = &t.products[r * t.ldp..][..n];
        for v in 0..V {
            let mut c = _mm512_add_epi32(load_i32(products, v), col_terms[v]);
            if let Some(zw) = &zw {
                c = _mm512_sub_epi32(c, _mm512_mullo_epi32(zw[v], _mm512_set1_epi32(row_sum)));
            }
            let x = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(c), bias[v]), mult[v]);
            let q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(x, lo), hi)), zpv);
            let d = &mut dst[v * LANES..];
            // SAFETY: the mask selects the `min(16, n - 16v)` writable bytes
            // of `d`; q lies in [lo, hi] within 0..=255, so narrowing keeps
            // it.
            unsafe { _mm512_mask_cvtepi32_storeu_epi8(d.as_mut_ptr() as *mut i8, masks[v], q) };
        }
    }
}
