//! The NEON GEMM micro-kernels over the packed layout (blocks of 16
//! columns; per group of 4 k, each column's 4 bytes), and the epilogues.
//!
//! Three kernels, all exact:
//!
//! - [`dot_smull`], any NEON: activations shifted to i8 (`x - 128`),
//!   multiplied by `smull` into i16 (every product fits: at most 128 *
//!   128), pairs summed into i32 by `sadalp`; then `128 * Σ_k w` added back
//!   per column.
//! - [`dot_sdot`], with the dot-product extension: the same shift, and
//!   `sdot`, which sums four i8 products into each i32 lane exactly.
//! - [`dot_usdot`], with i8mm: `usdot` multiplies u8 by s8 directly, so
//!   nothing is shifted.
//!
//! `sdot` and `usdot` are not yet stable intrinsics in Rust, so they are
//! single inline-assembly instructions on vector registers.

use super::simd::{requant4, requant_bounds, store4_u8};
use crate::gemm::packed::{PackedB, BLOCK};
use crate::gemm::{scalar_finish_f32, scalar_finish_u8, Requant, RowTerms};
use crate::tail_steps::steps_ending_at;
use std::arch::aarch64::*;
use std::arch::asm;
use std::ops::Range;

/// Defines `$name(acc, x, w)`: one dot-product instruction, `acc += Σ_4
/// x * w` per i32 lane over 16 bytes of each operand, compiled with the
/// extension that has it.
macro_rules! dot_instruction {
    ($(#[$doc:meta])* $name:ident, $features:literal, $asm:literal, $x:ty) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        #[inline]
        fn $name(acc: int32x4_t, x: $x, w: int8x16_t) -> int32x4_t {
            let mut acc = acc;
            // SAFETY: the instruction reads and writes only the named vector
            // registers, and this function is compiled with its extension.
            unsafe {
                asm!($asm, acc = inout(vreg) acc, x = in(vreg) x, w = in(vreg) w,
                    options(pure, nomem, nostack, preserves_flags));
            }
            acc
        }
    };
}

dot_instruction!(
    /// `sdot`: `x` and `w` both s8.
    sdot, "neon,dotprod", "sdot {acc:v}.4s, {x:v}.16b, {w:v}.16b", int8x16_t
);
dot_instruction!(
    /// `usdot`: `x` u8, `w` s8.
    usdot, "neon,i8mm", "usdot {acc:v}.4s, {x:v}.16b, {w:v}.16b", uint8x16_t
);

/// The activation quad at `at` as one u32 (4 bytes), shifted to signed
/// when `shift`.
#[inline]
fn quad(a: &[u8], at: usize, shift: bool) -> u32 {
    let q = u32::from_le_bytes([a[at], a[at + 1], a[at + 2], a[at + 3]]);
    if shift {
        q ^ 0x8080_8080
    } else {
        q
    }
}

/// Loads the 4 weight vectors of quad `q` of a block (columns 4j..4j+3 in
/// vector j).
#[target_feature(enable = "neon")]
#[inline]
fn weights(block: &[i8], q: usize) -> [int8x16_t; 4] {
    let w = &block[q * 64..q * 64 + 64];
    // SAFETY: `w` holds 64 bytes: four 16-byte loads.
    unsafe {
        [vld1q_s8(w.as_ptr()), vld1q_s8(w.as_ptr().add(16)), vld1q_s8(w.as_ptr().add(32)), vld1q_s8(w.as_ptr().add(48))]
    }
}

/// Stores 4 vectors of 4 i32 (16 columns), adding `128 * Σ_k w` per column
/// when the activations were shifted.
#[target_feature(enable = "neon")]
#[inline]
fn store_row(acc: [int32x4_t; 4], fix: Option<&[i32; BLOCK]>, dst: &mut [i32]) {
    let dst = &mut dst[..BLOCK];
    for (j, v) in acc.into_iter().enumerate() {
        let v = match fix {
            // SAFETY: `f` holds 16 i32, so lanes 4j..4j+4 are in bounds.
            Some(f) => vaddq_s32(v, unsafe { vld1q_s32(f.as_ptr().add(4 * j)) }),
            None => v,
        };
        // SAFETY: `dst` holds 16 i32, so lanes 4j..4j+4 are in bounds.
        unsafe { vst1q_s32(dst.as_mut_ptr().add(4 * j), v) };
    }
}

/// `128 * Σ_k w` for the 16 columns of block `blk` (0 past `n`).
fn shift_fix(b: &PackedB, blk: usize) -> [i32; BLOCK] {
    let mut fix = [0i32; BLOCK];
    for (c, f) in fix.iter_mut().enumerate() {
        *f = b.col_sums.get(blk * BLOCK + c).map_or(0, |s| s.wrapping_mul(128));
    }
    fix
}

/// Defines a dot-product kernel over `rows` x `blocks` (see
/// `GemmIsa::dot`) and its row tile, compiled for `$features`: `$step(acc,
/// x, w)` accumulates one broadcast activation quad `x` (u8 lanes) against
/// 4 columns of weights `w`; `$shift` says whether the activations are
/// shifted to i8 first (then `128 * Σ_k w` is added back per column).
macro_rules! dot_kernel {
    ($(#[$doc:meta])* $name:ident, $tile:ident, $features:literal, $shift:expr, $step:expr) => {
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        fn $tile<const R: usize>(a: &[u8], kp: usize, block: &[i8], fix: &[i32; BLOCK], out: &mut [i32], ldo: usize, col0: usize) {
            let mut acc = [[vdupq_n_s32(0); 4]; R];
            for q in 0..kp / 4 {
                let w = weights(block, q);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = vreinterpretq_u8_u32(vdupq_n_u32(quad(a, r * kp + 4 * q, $shift)));
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = $step(*acc, x, w[j]);
                    }
                }
            }
            for (r, acc) in acc.into_iter().enumerate() {
                store_row(acc, $shift.then_some(fix), &mut out[r * ldo + col0..]);
            }
        }

        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub(super) fn $name(a: &[u8], rows: usize, kp: usize, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
            each_tile(rows, 4, kp, b, blocks, |r, wide, block, fix, col0| {
                let (a, out) = (&a[r * kp..], &mut out[r * ldo..]);
                if wide {
                    $tile::<4>(a, kp, block, fix, out, ldo, col0)
                } else {
                    $tile::<1>(a, kp, block, fix, out, ldo, col0)
                }
            });
        }
    };
}

dot_kernel!(
    /// The `sdot` kernel, on activations shifted to i8.
    dot_sdot,
    tile_sdot,
    "neon,dotprod",
    true,
    |acc, x: uint8x16_t, w| sdot(acc, vreinterpretq_s8_u8(x), w)
);

dot_kernel!(
    /// The `usdot` kernel, on raw u8 activations.
    dot_usdot,
    tile_usdot,
    "neon,i8mm",
    false,
    |acc, x, w| usdot(acc, x, w)
);

/// `R` rows by one block with `smull` and `sadalp`.
#[target_feature(enable = "neon")]
fn tile_smull<const R: usize>(
    a: &[u8],
    kp: usize,
    block: &[i8],
    fix: &[i32; BLOCK],
    out: &mut [i32],
    ldo: usize,
    col0: usize,
) {
    // Per row and vector of 4 columns, two accumulators: pair sums of the
    // first two columns' products, and of the last two's.
    let mut acc = [[[vdupq_n_s32(0); 2]; 4]; R];
    for q in 0..kp / 4 {
        let w = weights(block, q);
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = vreinterpretq_s8_u32(vdupq_n_u32(quad(a, r * kp + 4 * q, true)));
            for (j, acc) in acc.iter_mut().enumerate() {
                acc[0] = vpadalq_s16(acc[0], vmull_s8(vget_low_s8(w[j]), vget_low_s8(x)));
                acc[1] = vpadalq_s16(acc[1], vmull_high_s8(w[j], x));
            }
        }
    }
    for (r, acc) in acc.into_iter().enumerate() {
        // [c0 k01, c0 k23, c1 k01, c1 k23] and the same for c2, c3: adjacent
        // pairs summed give [c0, c1, c2, c3].
        let sums = acc.map(|[lo, hi]| vpaddq_s32(lo, hi));
        store_row(sums, Some(fix), &mut out[r * ldo + col0..]);
    }
}

/// The `smull` kernel over `rows` x `blocks` (see `GemmIsa::dot`).
#[target_feature(enable = "neon")]
pub(super) fn dot_smull(
    a: &[u8],
    rows: usize,
    kp: usize,
    b: &PackedB,
    blocks: Range<usize>,
    out: &mut [i32],
    ldo: usize,
) {
    each_tile(rows, 2, kp, b, blocks, |r, wide, block, fix, col0| {
        let (a, out) = (&a[r * kp..], &mut out[r * ldo..]);
        if wide {
            tile_smull::<2>(a, kp, block, fix, out, ldo, col0)
        } else {
            tile_smull::<1>(a, kp, block, fix, out, ldo, col0)
        }
    });
}

/// Calls `tile(first row, wide, block, fix, col0)` over every block of
/// `blocks`, for rows `wide_rows` at a time (`wide`), then one at a time:
/// the loop every kernel shares, around its own tiles.
#[inline(always)]
fn each_tile(
    rows: usize,
    wide_rows: usize,
    kp: usize,
    b: &PackedB,
    blocks: Range<usize>,
    mut tile: impl FnMut(usize, bool, &[i8], &[i32; BLOCK], usize),
) {
    let block_len = kp * BLOCK;
    for blk in blocks.clone() {
        let block = &b.data[blk * block_len..(blk + 1) * block_len];
        let fix = shift_fix(b, blk);
        let col0 = (blk - blocks.start) * BLOCK;
        let mut r = 0;
        while r + wide_rows <= rows {
            tile(r, true, block, &fix, col0);
            r += wide_rows;
        }
        for r in r..rows {
            tile(r, false, block, &fix, col0);
        }
    }
}

/// `C` for 4 columns from `j`: `p + col_terms - zw * row_sum`, wrapping.
#[target_feature(enable = "neon")]
#[inline]
fn exact4(t: &RowTerms<'_>, j: usize) -> int32x4_t {
    let (p, ct) = (&t.products[j..j + 4], &t.col_terms[j..j + 4]);
    // SAFETY: each slice holds 4 i32 (the ranges above are checked).
    let sum = unsafe { vaddq_s32(vld1q_s32(p.as_ptr()), vld1q_s32(ct.as_ptr())) };
    if t.zw.is_empty() {
        return sum;
    }
    let zw = &t.zw[j..j + 4];
    // SAFETY: `zw` holds 4 i32.
    let zw = unsafe { vld1q_s32(zw.as_ptr()) };
    vsubq_s32(sum, vmulq_s32(zw, vdupq_n_s32(t.row_sum)))
}

/// The quantizing epilogue, 4 columns at a time (the last 4 ending at
/// column n), as the portable one.
#[target_feature(enable = "neon")]
pub(super) fn finish_u8(t: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
    let n = dst.len();
    let (lo, hi, zp) = requant_bounds(rq.lo, rq.hi, rq.zero_point);
    // Steps of 4, the last ending at column n (`tail_steps`); fewer than 4
    // columns in all in scalar.
    let Some(steps) = steps_ending_at(0, n, 4) else {
        return scalar_finish_u8(t, rq, dst);
    };
    for j in steps {
        let c = vcvtq_f32_s32(exact4(&t, j));
        let (m, b) = (&rq.mult[j..j + 4], &rq.bias[j..j + 4]);
        // SAFETY: `m` and `b` hold 4 floats each.
        let (m, b) = unsafe { (vld1q_f32(m.as_ptr()), vld1q_f32(b.as_ptr())) };
        store4_u8(&mut dst[j..j + 4], requant4(c, b, m, lo, hi, zp));
    }
}

/// The float epilogue in f64, 2 columns at a time, in the reference's
/// order of operations (so its results are the reference's bits).
#[target_feature(enable = "neon")]
pub(super) fn finish_f32(t: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
    let n = dst.len();
    let sx = vdupq_n_f64(x_scale);
    let mut j = 0;
    while j + 4 <= n {
        let c = exact4(&t, j);
        for (h, c2) in [vmovl_s32(vget_low_s32(c)), vmovl_high_s32(c)].into_iter().enumerate() {
            let at = j + 2 * h;
            let (w, b) = (&w_scales[at..at + 2], &bias[at..at + 2]);
            // SAFETY: `w` and `b` hold 2 f64 each. Separate multiplies and
            // add, no fused step: the reference rounds after each.
            let y = unsafe {
                vaddq_f64(vmulq_f64(vmulq_f64(vcvtq_f64_s64(c2), sx), vld1q_f64(w.as_ptr())), vld1q_f64(b.as_ptr()))
            };
            let mut lanes = [0f32; 2];
            // SAFETY: `lanes` holds 2 writable f32.
            unsafe { vst1_f32(lanes.as_mut_ptr(), vcvt_f32_f64(y)) };
            dst[at..at + 2].copy_from_slice(&lanes);
        }
        j += 4;
    }
    scalar_finish_f32(t.tail(j), x_scale, &w_scales[j..], &bias[j..], &mut dst[j..]);
}
