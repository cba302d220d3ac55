//! AMX kernels: `tdpbusd` multiplies a 16 x 64 tile of u8 by a 16 x 64
//! tile of s8 (16 columns of 16 k-quads) into 16 x 16 i32, exactly, 16K
//! multiply-adds per instruction: several times AVX-512 VNNI's rate. The
//! [`GemmIsa`] of the [`Amx`] token, registered one step above the VNNI
//! kernels; rows that do not fill a tile, its epilogues and its depthwise
//! routines are VNNI's (and so AVX2's).

mod gemm;

use crate::gemm::depthwise::DepthwiseArgs;
use crate::gemm::packed::PackedB;
use crate::gemm::{GemmIsa, Panel, Requant, RowTerms};
use crate::vector::QuantizeParams;
use qtensor_runtime::isa::Amx;
use qtensor_runtime::{Priority, Result};
use std::ops::Range;

impl GemmIsa for Amx {
    const NAME: &'static str = "amx";

    fn detect() -> Option<Self> {
        Amx::detect()
    }

    fn dot(self, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
        // Whole tiles of 16 rows go through AMX when K is padded to whole
        // tile rows (64 bytes; `PackedB::pack` does so where AMX runs);
        // the other rows, and weights packed for another ISA, through VNNI.
        let tiled = if x.kp > 0 && x.kp.is_multiple_of(gemm::TILE_K) { x.rows / 16 * 16 } else { 0 };
        if tiled > 0 {
            gemm::dot(self, &x.a[..tiled * x.kp], tiled, x.kp, b, blocks.clone(), out, ldo);
        }
        if tiled < x.rows {
            let rest = Panel { a: &x.a[tiled * x.kp..], rows: x.rows - tiled, kp: x.kp };
            self.vnni().dot(rest, b, blocks, &mut out[tiled * ldo..], ldo);
        }
    }

    fn finish_u8(self, terms: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        self.vnni().finish_u8(terms, rq, dst)
    }

    fn finish_f32(self, terms: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
        self.vnni().finish_f32(terms, x_scale, w_scales, bias, dst)
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
