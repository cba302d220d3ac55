//! What an instruction set plugs into the GEMM driver ([`GemmIsa`]): its
//! dot-product micro-kernel, its epilogues, and where it has them its
//! direct depthwise routines. The portable forms here define the results
//! every ISA's must reproduce.

use super::depthwise::{for_each_pixel, pixel_portable, DepthwiseArgs};
use super::epilogue::{PanelTerms, Requant, RowTerms};
use super::packed::{PackedB, BLOCK};
use super::shifted::ShiftedRows;
use crate::vector::{quantize_scalar, Portable, QuantizeParams};
use qtensor_runtime::Result;
use std::ops::Range;

/// A panel of activation rows for a micro-kernel: `rows` rows of `kp` raw
/// u8 activations each (zero-padded past K).
#[derive(Debug, Clone, Copy)]
pub struct Panel<'a> {
    /// `rows * kp` bytes, row-major.
    pub a: &'a [u8],
    /// Rows in the panel.
    pub rows: usize,
    /// Bytes per row: K rounded up to the packing's multiple of 4.
    pub kp: usize,
}

/// An ISA's GEMM, implemented on a token whose existence proves the CPU
/// supports it (so every method is safe to call).
pub trait GemmIsa: Copy + Send + Sync + 'static {
    /// A name for reports (`avx2`, `neon_dot`).
    const NAME: &'static str;

    /// Rows computed and finished together within a task: a multiple of
    /// the micro-kernel's row tile, small enough that the products stay in
    /// cache between the kernel and the epilogue, large enough that the
    /// weights are streamed few times.
    const PANEL_ROWS: usize = 48;

    /// How many of [`dot`](Self::dot)'s multiply-adds cost about as much
    /// as copying one activation byte into an im2col panel. An implicit
    /// GEMM ([`dot_shifted`](Self::dot_shifted)) skips those copies but
    /// computes the rows that fall past the output's width; the conv takes
    /// it only when `extra rows * N <= rows * DOTS_PER_COPIED_BYTE`. Its
    /// value matters only where `reads_shifted_rows` can be true.
    const DOTS_PER_COPIED_BYTE: usize = 0;

    /// The token, when this CPU has the ISA and the cap allows it.
    fn detect() -> Option<Self>;

    /// The micro-kernel: for the rows of `x` and the packed `blocks`,
    /// writes `P[r][j] = Σ_k x[r, k] w[j, k]` (exact i32) to `out[r * ldo +
    /// j]`, `j` counting columns from the first block's.
    fn dot(self, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize);

    /// True when [`dot_shifted`](Self::dot_shifted) can read shifted rows
    /// of `taps` taps of `channels` bytes each in place, so that a conv may
    /// skip im2col (and a 1x1 conv the copy of its rows into K-padded ones).
    /// `dot_shifted` may still decline a packed weight whose K layout it
    /// cannot read (an AMX weight's K padded to 64 on a CPU capped to
    /// VNNI); the driver then gathers the rows, with the same result.
    fn reads_shifted_rows(self, channels: usize, taps: usize) -> bool {
        let _ = (channels, taps);
        false
    }

    /// [`dot`](Self::dot) for the rows `rows` of `x`, read in place; false
    /// (nothing written) when this ISA cannot, and the driver then gathers
    /// the rows into a panel for `dot`.
    fn dot_shifted(
        self,
        rows: Range<usize>,
        x: &ShiftedRows<'_>,
        b: &PackedB,
        blocks: Range<usize>,
        out: &mut [i32],
        ldo: usize,
    ) -> bool {
        let _ = (rows, x, b, blocks, out, ldo);
        false
    }

    /// The quantizing epilogue; see [`scalar_finish_u8`] for the result.
    fn finish_u8(self, terms: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        scalar_finish_u8(terms, rq, dst)
    }

    /// The quantizing epilogue of a whole panel: row `r` of `t` into
    /// `dst[r * n..(r + 1) * n]`, `n` being the panel's column count. One
    /// call per panel rather than per row, whose cost showed on narrow
    /// layers (a 1x1 conv of 12,544 pixels to 16 channels).
    fn finish_rows_u8(self, t: PanelTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        let n = t.col_terms.len();
        for (r, d) in dst.chunks_exact_mut(n.max(1)).take(t.row_sums.len()).enumerate() {
            self.finish_u8(t.row(r), rq, d);
        }
    }

    /// [`finish_u8`](Self::finish_u8) as a one-row
    /// [`finish_rows_u8`](Self::finish_rows_u8): what an ISA whose vector
    /// epilogue is its panel loop gives for `finish_u8`.
    fn finish_row_by_panel(self, terms: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        // The row's terms cut to `dst` (panics if it has fewer, a caller's bug).
        let t = terms.first(dst.len());
        self.finish_rows_u8(t.as_panel(&[t.row_sum]), rq, dst)
    }

    /// Runs `f` compiled for this ISA's features, where `f`'s body inlines
    /// (its closure, and the `#[inline]` functions it calls): the portable
    /// loops that have no hand-written form (oneDNN's epilogue, fbgemm's
    /// per-tensor one, the saturating depthwise conv) then vectorize with
    /// the ISA's full width. The results cannot change: Rust never
    /// contracts or reassociates float operations, so the same source gives
    /// the same bits under any feature set.
    fn vectorized<R>(self, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// The float epilogue; see [`scalar_finish_f32`] for the result.
    fn finish_f32(self, terms: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
        scalar_finish_f32(terms, x_scale, w_scales, bias, dst)
    }

    /// Quantizes linear_dynamic's activations to u8, bit-exact with
    /// `numerics::quantize_val`.
    fn quantize_u8(self, src: &[f32], dst: &mut [u8], q: QuantizeParams) {
        quantize_scalar(src, dst, q)
    }

    /// A direct depthwise conv over channels-last activations, or `None`
    /// when the ISA has none (the conv driver then runs grouped GEMMs).
    fn depthwise_nhwc(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        let _ = (args, out);
        None
    }

    /// A direct depthwise conv over NCHW planes at stride and dilation 1,
    /// or `None` when the ISA has none.
    fn depthwise_nchw(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        let _ = (args, out);
        None
    }

    /// fbgemm's int16 pair sums (`reference::int16_pairs`) of `rows`
    /// activation rows of `kq * 4` raw bytes (`a`, the K tail zero) against
    /// the `n` weight rows `quads` packed by `saturating::PairRows`, into
    /// `out[r * n + j]`; false where the ISA has no such routine (the
    /// caller then takes the portable dot products).
    fn pair_sums(self, a: &[u8], rows: usize, kq: usize, quads: &[i8], n: usize, out: &mut [i32]) -> bool {
        let _ = (a, rows, kq, quads, n, out);
        false
    }
}

/// The quantizing epilogue: [`Requant::scalar`] of each column.
pub fn scalar_finish_u8(t: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
    for (j, d) in dst.iter_mut().enumerate() {
        *d = rq.scalar(j, t.c(j));
    }
}

/// The float epilogue: `((C * x_scale) * w_scale + bias) as f32`, in f64,
/// in the reference's order (so a large bias that cancels the product
/// costs no precision).
pub fn scalar_finish_f32(t: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
    for (j, d) in dst.iter_mut().enumerate() {
        *d = (t.c(j) as f64 * x_scale * w_scales[j] + bias[j]) as f32;
    }
}

/// The portable micro-kernel: per row and block, 16 i32 accumulators over
/// the packed k-quads, which the compiler vectorizes on any target.
pub fn portable_dot(a: &[u8], rows: usize, kp: usize, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
    let block_len = kp * BLOCK;
    for (bi, blk) in blocks.enumerate() {
        let packed = &b.data[blk * block_len..(blk + 1) * block_len];
        for r in 0..rows {
            let x = &a[r * kp..(r + 1) * kp];
            let mut acc = [0i32; BLOCK];
            for (quad, xq) in packed.chunks_exact(4 * BLOCK).zip(x.chunks_exact(4)) {
                for (c, acc) in acc.iter_mut().enumerate() {
                    let w = &quad[4 * c..4 * c + 4];
                    *acc += (0..4).map(|i| xq[i] as i32 * w[i] as i32).sum::<i32>();
                }
            }
            out[r * ldo + bi * BLOCK..r * ldo + (bi + 1) * BLOCK].copy_from_slice(&acc);
        }
    }
}

impl GemmIsa for Portable {
    const NAME: &'static str = "portable";

    fn detect() -> Option<Self> {
        Some(Portable)
    }

    fn dot(self, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
        portable_dot(x.a, x.rows, x.kp, b, blocks, out, ldo)
    }

    fn depthwise_nhwc(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        Some(for_each_pixel(args, out, |taps, dst| pixel_portable(args, taps, dst)))
    }
}
