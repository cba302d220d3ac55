//! fbgemm's int16 pair sums, fast: the same sums as
//! `reference::int16_pairs` (which says what they are), in safe Rust that
//! the compiler vectorizes under each ISA ([`GemmIsa::vectorized`]).
//!
//! - [`depthwise_nhwc`]: fbgemm's depthwise conv over a channels-last
//!   input, one output row per task and the channels innermost. The
//!   engines take it for the depthwise convs fbgemm computes whenever an
//!   input could saturate a pair; without saturation (`saturate` false) it
//!   gives the exact sums, for the depthwise convs whose requantization
//!   the ISAs' direct routines do not implement (oneDNN's, fbgemm's
//!   per-tensor).
//! - [`conv_nhwc`] and [`linear_rows`]: fbgemm's GEMMs on a CPU without
//!   AVX-512 VNNI (`Engine::gemm_pairs_saturate`), for every other conv
//!   and for linear, as dot products of each output's reduction split into
//!   its even and odd elements ([`PairRows`]), only when an input could
//!   saturate a pair (the exact GEMM gives the same sums otherwise).

use super::driver::OutElem;
use super::epilogue::{Epilogue, PanelTerms, Requant};
use super::kernel::GemmIsa;
use crate::parallel;
use crate::reference::int16_pairs;
use qtensor_runtime::conv_geometry::ConvGeometry;
use qtensor_runtime::storage::{checked_count, try_filled};
use qtensor_runtime::Result;

/// The raw weights of a depthwise conv, tap-major, with what the sums
/// need besides them.
pub struct RawTaps<'a> {
    /// `w` (not centred), `[KH * KW][OC]`.
    pub weights: &'a [i32],
    /// Each output channel's weight zero point.
    pub zero_points: &'a [i32],
}

/// Writes the requantized output of every pixel, NHWC, into `out`: `x` is
/// the NHWC input, `zx` its zero point (the padding's value); pairs of taps
/// saturate in int16 when `saturate`. Each output row's pixels are finished
/// together by `kernel`'s epilogue for `rq`'s form, as a GEMM panel is, and
/// the loops run compiled for `kernel`'s ISA ([`GemmIsa::vectorized`]).
pub fn depthwise_nhwc<K: GemmIsa>(
    kernel: K,
    s: &ConvGeometry,
    (x, zx): (&[u8], u8),
    w: &RawTaps<'_>,
    rq: Requant<'_>,
    saturate: bool,
    out: &mut [u8],
) -> Result<()> {
    let [_, c, h, wd] = s.input;
    let [kh, kw] = s.kernel;
    let [oh, ow] = s.out_hw;
    let oc = s.out_channels;
    let taps = kh * kw;
    let per_input = (oc / c.max(1)).max(1);
    // Per output channel: Σ w over the taps (every window holds all of
    // them, padding included, since fbgemm's kernel pads "same").
    let w_sums = (0..oc).map(|o| (0..taps).map(|t| w.weights[t * oc + o]).sum::<i32>());
    // The zero-point terms that do not depend on the window:
    // `-zx Σ w + taps zx zw`; the window's `-zw Σ x` is added per pixel.
    let zx32 = zx as i32;
    let col_terms: Vec<i32> = w_sums.zip(w.zero_points).map(|(ws, &zw)| -zx32 * ws + taps as i32 * zx32 * zw).collect();
    let asymmetric = w.zero_points.iter().any(|&zw| zw != 0);
    let epilogue = Epilogue::Quantize(rq);
    let padding = vec![zx; c];
    let zero_weights = vec![0i32; oc];
    let row_sums = vec![0i32; ow];
    parallel::try_chunks(
        out,
        ow * oc,
        || (vec![0i32; ow * oc], vec![0i32; oc], Vec::with_capacity(taps + 1)),
        |(acc, x_sums, window), r, row| {
            kernel.vectorized(|| {
                let (img, oy) = (r / oh.max(1), r % oh.max(1));
                for (ox, acc) in acc.chunks_exact_mut(oc.max(1)).enumerate() {
                    // The window's input pixels in row-major tap order, padding
                    // as the zero point's row.
                    window.clear();
                    for t in 0..taps {
                        let iy = (oy * s.stride[0] + t / kw).checked_sub(s.padding[0]).filter(|&y| y < h);
                        let ix = (ox * s.stride[1] + t % kw).checked_sub(s.padding[1]).filter(|&v| v < wd);
                        window.push(match (iy, ix) {
                            (Some(y), Some(v)) => &x[((img * h + y) * wd + v) * c..][..c],
                            _ => &padding[..],
                        });
                    }
                    acc.fill(0);
                    for (t, pair) in window.chunks(2).enumerate() {
                        let w0 = &w.weights[2 * t * oc..][..oc];
                        // An odd last tap pairs with a zero weight.
                        let (b, w1) = match pair {
                            [_, b] => (*b, &w.weights[(2 * t + 1) * oc..][..oc]),
                            _ => (pair[0], &zero_weights[..]),
                        };
                        add_pairs(acc, (pair[0], b), (w0, w1), per_input, saturate);
                    }
                    if asymmetric {
                        // `-zw Σ x` over the window's taps.
                        x_sums.fill(0);
                        for tap in window.iter() {
                            for (o, xs) in x_sums.iter_mut().enumerate() {
                                *xs += tap[o / per_input] as i32;
                            }
                        }
                        for ((a, &xs), &zw) in acc.iter_mut().zip(x_sums.iter()).zip(w.zero_points) {
                            *a -= zw * xs;
                        }
                    }
                }
                // The row's pixels finished together, as a GEMM panel's rows.
                let terms = PanelTerms { products: acc, ldp: oc, col_terms: &col_terms, zw: &[], row_sums: &row_sums };
                u8::finish_rows(kernel, &epilogue, terms, row);
            });
            Ok(())
        },
    )
}

/// Adds one pair of taps to every channel: `acc += sat16(xa·wa + xb·wb)`
/// (without `sat16` unless `saturate`); `per_input` output channels read
/// each input channel. Inlined into the ISA's [`GemmIsa::vectorized`] body.
#[inline(always)]
fn add_pairs(acc: &mut [i32], (a, b): (&[u8], &[u8]), (wa, wb): (&[i32], &[i32]), per_input: usize, saturate: bool) {
    let (lo, hi) = if saturate { (i16::MIN as i32, i16::MAX as i32) } else { (i32::MIN, i32::MAX) };
    let sat = |v: i32| v.clamp(lo, hi);
    if per_input == 1 {
        // The common case, one output per channel: contiguous lanes.
        for (((acc, (&xa, &xb)), &wa), &wb) in acc.iter_mut().zip(a.iter().zip(b)).zip(wa).zip(wb) {
            *acc += sat(xa as i32 * wa + xb as i32 * wb);
        }
    } else {
        for (o, acc) in acc.iter_mut().enumerate() {
            let (xa, xb) = (a[o / per_input] as i32, b[o / per_input] as i32);
            *acc += sat(xa * wa[o] + xb * wb[o]);
        }
    }
}

/// Output rows per block of [`PairRows`]' packed layout.
pub const QUAD_BLOCK: usize = 16;

/// Rows of raw i8 weights (each one output's reduction, in fbgemm's order)
/// laid out for int16 pair sums, twice:
///
/// - split: element `2i` of a row in `even[i]`, element `2i + 1` in
///   `odd[i]` (0 past an odd end), both widened to i16, for the portable
///   dot products;
/// - packed for an ISA's [`GemmIsa::pair_sums`]: blocks of
///   [`QUAD_BLOCK`] rows, each step of 4 elements one run of 16 rows x 4
///   bytes, zero past the rows' and K's ends.
#[derive(Debug, Clone)]
pub struct PairRows {
    /// Rows.
    n: usize,
    /// Elements per row.
    k: usize,
    /// Pairs per row: `ceil(k / 2)`.
    half: usize,
    /// The even elements, `[rows][half]`.
    even: Vec<i16>,
    /// The odd elements, `[rows][half]`.
    odd: Vec<i16>,
    /// Steps of 4 elements per row: `ceil(k / 4)`.
    kq: usize,
    /// The packed layout, `[ceil(n / 16)][kq][16][4]`.
    quads: Vec<i8>,
    /// `Σ w` of each row.
    sums: Vec<i32>,
    /// The widest pair, `max |w[2i]| + |w[2i+1]|` ([`int16_pairs::widest_pair`]).
    widest: i32,
}

impl PairRows {
    /// Lays out `raw`, rows of `k` weights.
    pub fn new(raw: &[i8], k: usize) -> Result<PairRows> {
        let op = "quantized::conv2d";
        let n = raw.len() / k.max(1);
        let (half, kq) = (k.div_ceil(2), k.div_ceil(4));
        let len = checked_count(op, &[n, half])?;
        let (mut even, mut odd) = (try_filled(len, 0i16)?, try_filled(len, 0i16)?);
        let blocks = n.div_ceil(QUAD_BLOCK);
        let mut quads = try_filled(checked_count(op, &[blocks, kq, QUAD_BLOCK, 4])?, 0i8)?;
        for (r, row) in raw.chunks(k.max(1)).take(n).enumerate() {
            for (i, pair) in row.chunks(2).enumerate() {
                even[r * half + i] = pair[0] as i16;
                odd[r * half + i] = pair.get(1).map_or(0, |&v| v as i16);
            }
            let (block, lane) = (r / QUAD_BLOCK, r % QUAD_BLOCK);
            let packed = &mut quads[block * kq * QUAD_BLOCK * 4..][..kq * QUAD_BLOCK * 4];
            for (step, four) in packed.chunks_exact_mut(QUAD_BLOCK * 4).zip(row.chunks(4)) {
                step[lane * 4..][..four.len()].copy_from_slice(four);
            }
        }
        let sums = raw.chunks(k.max(1)).take(n).map(|row| row.iter().map(|&v| v as i32).sum()).collect();
        Ok(PairRows { n, k, half, even, odd, kq, quads, sums, widest: int16_pairs::widest_pair(raw, k) })
    }

    /// True when `max_x` (or the padding's `zx`) can saturate a pair.
    pub fn can_saturate(&self, max_x: u8, zx: u8) -> bool {
        int16_pairs::can_saturate(max_x, zx, self.widest)
    }

    /// The bytes of one activation row as the pair sums read
    /// it: K rounded up to a multiple of 4.
    pub fn row_bytes(&self) -> usize {
        self.kq * 4
    }

    /// Row `r`'s even and odd weights.
    fn row(&self, r: usize) -> (&[i16], &[i16]) {
        (&self.even[r * self.half..][..self.half], &self.odd[r * self.half..][..self.half])
    }

    /// `out[r * n + j]`: the pair sums of the `rows` activation rows of
    /// `a` ([`PairRows::row_bytes`] each, the K tail zero) with every row,
    /// by the ISA's routine or else the portable dot products (`split`
    /// their scratch).
    fn sums_into<K: GemmIsa>(&self, kernel: K, a: &[u8], rows: usize, out: &mut [i32], split: &mut PairActivations) {
        if kernel.pair_sums(a, rows, self.kq, &self.quads, self.n, out) {
            return;
        }
        kernel.vectorized(|| {
            for (x, out) in a.chunks(self.row_bytes().max(1)).take(rows).zip(out.chunks_mut(self.n.max(1))) {
                split.fill(x[..self.k].iter().copied());
                for (j, o) in out.iter_mut().enumerate() {
                    *o = split.pair_dot(self.row(j));
                }
            }
        })
    }
}

/// One reduction's activations split as [`PairRows`] splits weights.
struct PairActivations {
    even: Vec<i16>,
    odd: Vec<i16>,
}

impl PairActivations {
    fn new(half: usize) -> PairActivations {
        PairActivations { even: vec![0; half], odd: vec![0; half] }
    }

    /// Fills the split from the reduction's activations, in order.
    #[inline(always)]
    fn fill(&mut self, values: impl Iterator<Item = u8>) {
        if let Some(last) = self.odd.last_mut() {
            // An odd end pairs with zero.
            *last = 0;
        }
        for (i, v) in values.enumerate() {
            let half = if i % 2 == 0 { &mut self.even } else { &mut self.odd };
            half[i / 2] = v as i16;
        }
    }

    /// `Σ_i sat16(x[2i]·w[2i] + x[2i+1]·w[2i+1])` with row `(we, wo)`.
    #[inline(always)]
    fn pair_dot(&self, (we, wo): (&[i16], &[i16])) -> i32 {
        // Each product of a u8 and an i8 fits i16 (|x·w| <= 32,640), so
        // `wrapping_mul` is exact; the pair's sum saturates as
        // `vpmaddubsw`'s does. The i32 total is exact below MAX_K.
        let mut acc = 0i32;
        for (((&xe, &xo), &a), &b) in self.even.iter().zip(&self.odd).zip(we).zip(wo) {
            acc += xe.wrapping_mul(a).saturating_add(xo.wrapping_mul(b)) as i32;
        }
        acc
    }
}

/// The per-output constant terms `−zx·Σw + K·zx·zw` of `w`'s rows.
fn col_terms(w: &PairRows, zero_points: &[i32], zx: u8) -> Vec<i32> {
    let (zx, k) = (zx as i32, w.k as i32);
    w.sums.iter().zip(zero_points).map(|(&ws, &zw)| -zx * ws + k * zx * zw).collect()
}

/// Writes the requantized output of a conv of any groups, NHWC, into
/// `out`, from fbgemm's int16 pair sums: `x` is the NHWC input, `zx` its
/// zero point (the padding's value), `w` each group's raw weights (its
/// output channels' rows in im2col order: kernel row, kernel column, the
/// group's input channels), `zero_points` every output channel's. One
/// output row per task, its pixels' im2col rows made per group.
pub fn conv_nhwc<K: GemmIsa>(
    kernel: K,
    s: &ConvGeometry,
    (x, zx): (&[u8], u8),
    (w, zero_points): (&[PairRows], &[i32]),
    rq: Requant<'_>,
    out: &mut [u8],
) -> Result<()> {
    let [_, c, h, wd] = s.input;
    let [kh, kw] = s.kernel;
    let [oh, ow] = s.out_hw;
    let oc = s.out_channels;
    let groups = w.len().max(1);
    let (icg, ocg) = (c / groups, oc / groups);
    let col_terms: Vec<i32> =
        w.iter().enumerate().flat_map(|(g, rows)| col_terms(rows, &zero_points[g * ocg..(g + 1) * ocg], zx)).collect();
    let epilogue = Epilogue::Quantize(rq);
    let row_sums = vec![0i32; ow];
    let symmetric = zero_points.iter().all(|&z| z == 0);
    let padding = vec![zx; icg];
    let step = w.first().map_or(0, PairRows::row_bytes);
    let scratch = || {
        let split = PairActivations::new(w.first().map_or(0, |r| r.half));
        (vec![0i32; ow * oc], vec![0u8; ow * step], vec![0i32; ow * ocg], vec![0i32; ow], split)
    };
    parallel::try_chunks(out, ow * oc, scratch, |(acc, a, products, x_sums, split), r, row| {
        let (img, oy) = (r / oh.max(1), r % oh.max(1));
        for (g, rows) in w.iter().enumerate() {
            kernel.vectorized(|| {
                // Each pixel's window in im2col order, padding as the zero
                // point, the K tail zero.
                for (ox, (a, x_sum)) in a.chunks_exact_mut(step.max(1)).zip(x_sums.iter_mut()).enumerate() {
                    for t in 0..kh * kw {
                        let iy = (oy * s.stride[0] + t / kw * s.dilation[0]).checked_sub(s.padding[0]);
                        let ix = (ox * s.stride[1] + t % kw * s.dilation[1]).checked_sub(s.padding[1]);
                        let src = match (iy.filter(|&y| y < h), ix.filter(|&v| v < wd)) {
                            (Some(y), Some(v)) => &x[((img * h + y) * wd + v) * c + g * icg..][..icg],
                            _ => &padding[..],
                        };
                        a[t * icg..][..icg].copy_from_slice(src);
                    }
                    // Only an asymmetric weight's zero points need them.
                    *x_sum = if symmetric { 0 } else { a.iter().map(|&v| v as i32).sum() };
                }
            });
            rows.sums_into(kernel, a, ow, products, split);
            for ((acc, p), &x_sum) in
                acc.chunks_exact_mut(oc.max(1)).zip(products.chunks(ocg.max(1))).zip(x_sums.iter())
            {
                for ((a, &p), &zw) in acc[g * ocg..][..ocg].iter_mut().zip(p).zip(&zero_points[g * ocg..]) {
                    *a = p - zw * x_sum;
                }
            }
        }
        let terms = PanelTerms { products: acc, ldp: oc, col_terms: &col_terms, zw: &[], row_sums: &row_sums };
        u8::finish_rows(kernel, &epilogue, terms, row);
        Ok(())
    })
}

/// Activation rows per task of [`linear_rows`].
const LINEAR_TASK_ROWS: usize = 16;

/// Writes `epi` of a linear into `out` (`[M][N]`), from fbgemm's int16
/// pair sums: `x` holds the raw rows of `k` activations with zero point
/// `zx`, `w` the raw weight rows (of `k` elements, as `x`'s rows) with
/// their `zero_points`. Rows in tasks.
pub fn linear_rows<K: GemmIsa, T: OutElem + Send>(
    kernel: K,
    (x, zx): (&[u8], u8),
    (w, zero_points): (&PairRows, &[i32]),
    epi: &Epilogue<'_>,
    out: &mut [T],
) -> Result<()> {
    let (n, k, step) = (zero_points.len(), w.k, w.row_bytes());
    let col_terms = col_terms(w, zero_points, zx);
    let zw: &[i32] = if zero_points.iter().any(|&z| z != 0) { zero_points } else { &[] };
    let rows = LINEAR_TASK_ROWS;
    let scratch = || (vec![0i32; rows * n], vec![0u8; rows * step], vec![0i32; rows], PairActivations::new(w.half));
    parallel::try_chunks(out, rows * n, scratch, |(products, a, sums, split), t, dst| {
        let m = dst.len() / n.max(1);
        // The task's rows, K rounded up with zeros.
        for ((a, sum), src) in
            a.chunks_exact_mut(step.max(1)).zip(sums.iter_mut()).zip(x[t * rows * k..].chunks(k.max(1))).take(m)
        {
            a[..k].copy_from_slice(src);
            *sum = src.iter().map(|&v| v as i32).sum();
        }
        w.sums_into(kernel, a, m, products, split);
        let terms = PanelTerms { products, ldp: n, col_terms: &col_terms, zw, row_sums: &sums[..m] };
        T::finish_rows(kernel, epi, terms, dst);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::Portable;

    /// Every ISA this CPU runs, and the portable dot products, give
    /// `int16_pairs::pair_sum` for rows that saturate and rows that do not,
    /// over K with each remainder mod 4, and row counts around the
    /// 16-row blocks: last blocks of 1, 8, 11 and 13 real rows.
    #[test]
    fn pair_sums_equal_the_reference_on_every_isa() {
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as u8
        };
        let shapes =
            [(1, 1, 1), (5, 17, 3), (8, 16, 5), (16, 8, 1), (27, 33, 7), (147, 40, 2), (9, 27, 5), (12, 13, 6)];
        // Miri (hundreds of times slower) without the largest K.
        for (k, n, rows) in shapes.into_iter().filter(|&(k, ..)| !cfg!(miri) || k < 100) {
            let w: Vec<i8> = (0..n * k).map(|i| if i % 3 == 0 { 127 } else { next() as i8 }).collect();
            let pairs = PairRows::new(&w, k).unwrap(); // ok: a test
            let step = pairs.row_bytes();
            let mut a = vec![0u8; rows * step];
            for (r, row) in a.chunks_mut(step).enumerate() {
                for v in &mut row[..k] {
                    *v = if r % 2 == 0 { 200 | next() } else { next() };
                }
            }
            let want: Vec<i32> = a
                .chunks(step)
                .flat_map(|x| w.chunks(k).map(move |wr| int16_pairs::pair_sum(&x[..k], wr) as i32))
                .collect();
            let exact: Vec<i32> = a
                .chunks(step)
                .flat_map(|x| w.chunks(k).map(move |wr| x.iter().zip(wr).map(|(&a, &b)| a as i32 * b as i32).sum()))
                .collect();
            // The cases saturate (but for K = 1, with no pair to saturate).
            assert_eq!(exact == want, k == 1, "k {k}");
            let mut split = PairActivations::new(pairs.half);
            let mut got = vec![0; rows * n];
            pairs.sums_into(Portable, &a, rows, &mut got, &mut split);
            assert_eq!(got, want, "portable, k {k}, n {n}");
            #[cfg(target_arch = "x86_64")]
            if let Some(avx2) = qtensor_runtime::isa::Avx2::detect() {
                got.fill(0);
                pairs.sums_into(avx2, &a, rows, &mut got, &mut split);
                assert_eq!(got, want, "avx2, k {k}, n {n}");
            }
        }
    }
}
