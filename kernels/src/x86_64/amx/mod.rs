//! AMX kernels: `tdpbusd` multiplies a 16 x 64 tile of u8 by a 16 x 64
//! tile of s8 (16 columns of 16 k-quads) into 16 x 16 i32, exactly, 16K
//! multiply-adds per instruction: several times AVX-512 VNNI's rate. The
//! [`GemmIsa`] of the [`Amx`] token, registered one step above the VNNI
//! kernels; rows that do not fill a tile, its epilogues and its depthwise
//! routines are VNNI's (and so AVX2's).

mod gemm;

use crate::gemm::depthwise::DepthwiseArgs;
use crate::gemm::packed::PackedB;
use crate::gemm::{GemmIsa, Panel, PanelTerms, Requant, RowTerms, ShiftedRows};
use crate::vector::QuantizeParams;
use qtensor_runtime::isa::Amx;
use qtensor_runtime::{Priority, Result};
use std::ops::Range;

impl GemmIsa for Amx {
    const NAME: &'static str = "amx";
    // Four tile rows: a late layer's 49-64 pixels in one pass over its
    // weights (2.4 MB in ResNet-18's last convs).
    const PANEL_ROWS: usize = 64;
    // Tiles multiply so much faster than rows are copied that the implicit
    // GEMM's extra rows always cost less than im2col.
    const DOTS_PER_COPIED_BYTE: usize = usize::MAX;

    fn detect() -> Option<Self> {
        Amx::detect()
    }

    fn dot(self, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
        // K padded to whole tile rows (64 bytes; `PackedB::pack` does so
        // where AMX runs) goes through AMX, unless the rows are so few (a
        // GEMV) that VNNI wastes less than a tile of 16; weights packed for
        // another ISA go through VNNI.
        let whole_k = x.kp > 0 && x.kp.is_multiple_of(gemm::TILE_K);
        if !whole_k || x.rows < 4 || b.kp != x.kp {
            return self.vnni().dot(x, b, blocks, out, ldo);
        }
        let tail_start = x.rows / 16 * 16;
        let mut tail = vec![0u8; if tail_start < x.rows { 16 * x.kp } else { 0 }];
        tail[..(x.rows - tail_start) * x.kp].copy_from_slice(&x.a[tail_start * x.kp..x.rows * x.kp]);
        let main = gemm::PanelRows { a: &x.a[..tail_start * x.kp], kp: x.kp };
        let source = gemm::WithTail { main, tail_start, tail, kp: x.kp };
        gemm::dot(self, &source, x.rows, x.kp, b, blocks, out, ldo);
    }

    fn reads_shifted_rows(self, channels: usize, taps: usize) -> bool {
        // Each 64-byte step of K must lie within one tap: taps of whole
        // steps, or one tap, whose last step reads on into the next pixels
        // against the zero weights that pad K.
        channels > 0 && (channels.is_multiple_of(gemm::TILE_K) || taps == 1)
    }

    fn dot_shifted(
        self,
        rows: Range<usize>,
        x: &ShiftedRows<'_>,
        b: &PackedB,
        blocks: Range<usize>,
        out: &mut [i32],
        ldo: usize,
    ) -> bool {
        let (c, taps) = (x.channels, x.taps.len());
        let kp = (taps * c).next_multiple_of(gemm::TILE_K);
        if !self.reads_shifted_rows(c, taps) || b.kp != kp || rows.is_empty() {
            return false;
        }
        // A row reads, from its last tap's pixel on, the tap's bytes (one
        // tap: all `kp`, on into the next pixels). Tiles whose rows all
        // read inside the source are read in place; the rest of the rows,
        // the last partial tile at least, are gathered into a zeroed panel.
        let reach = if taps == 1 { kp } else { c };
        let last_tap = x.taps.iter().copied().max().unwrap_or(0);
        let rows_inside = x.src.len().checked_sub(reach).map_or(0, |room| room / c + 1);
        let inside = rows_inside.saturating_sub(rows.start + last_tap).min(rows.len());
        let tail_start = inside / 16 * 16;
        let tail_rows = rows.start + tail_start..rows.end;
        let mut tail = vec![0u8; tail_rows.len().div_ceil(16) * 16 * kp];
        let mut sums = vec![0i32; tail_rows.len()];
        x.gather(tail_rows.clone(), kp, &mut tail[..tail_rows.len() * kp], &mut sums);
        let source = gemm::WithTail { main: gemm::InPlace { x, first: rows.start }, tail_start, tail, kp };
        gemm::dot(self, &source, rows.len(), kp, b, blocks, out, ldo);
        true
    }

    fn finish_u8(self, terms: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        self.vnni().finish_u8(terms, rq, dst)
    }

    fn finish_rows_u8(self, t: PanelTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        self.vnni().finish_rows_u8(t, rq, dst)
    }

    fn finish_f32(self, terms: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
        self.vnni().finish_f32(terms, x_scale, w_scales, bias, dst)
    }

    fn vectorized<R>(self, f: impl FnOnce() -> R) -> R {
        self.vnni().vectorized(f)
    }

    fn quantize_u8(self, src: &[f32], dst: &mut [u8], q: QuantizeParams) {
        GemmIsa::quantize_u8(self.vnni(), src, dst, q)
    }

    fn depthwise_nhwc(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        self.vnni().depthwise_nhwc(args, out)
    }

    fn depthwise_nchw(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        self.vnni().depthwise_nchw(args, out)
    }
}

crate::register_gemm_kernels!(Amx, Priority::ISA.raised(2), names: {
    linear: "amx_linear", linear_relu: "amx_linear_relu",
    linear_packed: "amx_linear_packed", linear_relu_packed: "amx_linear_relu_packed",
    linear_dynamic: "amx_linear_dynamic", linear_dynamic_packed: "amx_linear_dynamic_packed",
    conv2d: "amx_conv2d", conv2d_relu: "amx_conv2d_relu",
    conv2d_new: "amx_conv2d_new", conv2d_relu_new: "amx_conv2d_relu_new",
});
