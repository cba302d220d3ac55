//! AVX2 kernels (256-bit integer and float SIMD): the [`VectorIsa`] and
//! [`GemmIsa`] routines of the [`Avx2`] token, registered at
//! [`Priority::ISA`] and bit-exact with the portable routines.
//!
//! The `#[target_feature(enable = "avx2,fma")]` functions in the
//! submodules are private to this module. The trait methods below are the
//! only way in: each takes an `Avx2` token, which only
//! `Avx2::detect()` makes and only on a CPU with AVX2 and FMA, so each
//! `unsafe` call cites the token it holds.

mod block_tiles;
mod depthwise;
mod depthwise_nhwc;
mod depthwise_pairs;
mod dequantize;
mod elementwise;
pub(super) mod gemm;
mod gemm_i16;
mod lookup;
mod narrow;
mod pair_gemm;
mod pool;
mod quantize;
mod requantize;
mod simd;

use crate::args::window::Window;
use crate::gemm::depthwise::DepthwiseArgs;
use crate::gemm::packed::PackedB;
use crate::gemm::{GemmIsa, Panel, PanelTerms, Requant, RowTerms};
use crate::vector::{BinaryParams, ByteElement, QuantizeParams, RequantParams, VectorIsa};
use qtensor_runtime::isa::Avx2;
use qtensor_runtime::{Priority, Result};
use std::ops::Range;

pub use narrow::narrow_timing;

impl VectorIsa for Avx2 {
    fn detect() -> Option<Self> {
        Avx2::detect()
    }

    fn quantize_bytes<B: ByteElement>(self, src: &[f32], dst: &mut [B], q: QuantizeParams) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { quantize::quantize_bytes(src, dst, q) }
    }

    fn quantize_i32(self, src: &[f32], dst: &mut [i32], inv: f32, zero_point: i64) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { quantize::quantize_i32(src, dst, inv, zero_point) }
    }

    fn dequantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [f32], scale: f32, zero_point: i64, stream: bool) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { dequantize::dequantize_bytes(src, dst, scale, zero_point, stream) }
    }

    fn dequantize_i32(self, src: &[i32], dst: &mut [f32], scale: f32, zero_point: i64) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { dequantize::dequantize_i32(src, dst, scale, zero_point) }
    }

    fn relu_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], zero_point: i64, stream: bool) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { elementwise::relu_bytes(src, dst, zero_point, stream) }
    }

    fn relu_i32(self, src: &[i32], dst: &mut [i32], zero_point: i64) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { elementwise::relu_i32(src, dst, zero_point) }
    }

    fn binary_bytes<B: ByteElement>(self, a: &[B], b: &[B], dst: &mut [B], p: BinaryParams, stream: bool) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { elementwise::binary_bytes(a, b, dst, p, stream) }
    }

    fn requantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], p: RequantParams) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { requantize::requantize_bytes(src, dst, p) }
    }

    fn lookup_bytes(self, table: &[u8; 256], src: &[u8], dst: &mut [u8]) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2.
        unsafe { lookup::lookup(table, src, dst) }
    }

    fn max_pool_row<B: ByteElement>(self, src: &[B], dims: [usize; 3], win: &Window, oy: usize, out: &mut [B]) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { pool::max_pool_row(src, dims, win, oy, out) }
    }

    fn max_pool_plane<B: ByteElement>(
        self,
        plane: &[B],
        hw: [usize; 2],
        win: &Window,
        out: &mut [B],
        scratch: &mut Vec<u8>,
    ) -> bool {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { pool::max_pool_plane(plane, hw, win, out, scratch) }
    }
}

impl GemmIsa for Avx2 {
    const NAME: &'static str = "avx2";

    fn detect() -> Option<Self> {
        Avx2::detect()
    }

    fn dot(self, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
        // Narrow rows may take the pair kernel, exact there (`gemm::narrow`).
        narrow::dot(self, x, b, blocks, out, ldo)
    }

    fn finish_u8(self, terms: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        self.finish_row_by_panel(terms, rq, dst)
    }

    fn finish_rows_u8(self, t: PanelTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { gemm::finish_rows_u8(t, rq, dst) }
    }

    fn finish_f32(self, terms: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { gemm::finish_f32(terms, x_scale, w_scales, bias, dst) }
    }

    fn vectorized<R>(self, f: impl FnOnce() -> R) -> R {
        #[target_feature(enable = "avx2,fma")]
        fn run<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: `self` is an `Avx2` token, which proves AVX2 and FMA.
        unsafe { run(f) }
    }

    fn quantize_u8(self, src: &[f32], dst: &mut [u8], q: QuantizeParams) {
        VectorIsa::quantize_bytes(self, src, dst, q)
    }

    fn depthwise_nhwc(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        Some(depthwise_nhwc::depthwise_nhwc(self, args, out))
    }

    fn depthwise_nchw(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        Some(depthwise::depthwise_nchw(self, args, out))
    }

    fn pair_sums(self, a: &[u8], rows: usize, kq: usize, quads: &[i8], n: usize, out: &mut [i32]) -> bool {
        // SAFETY: `self` is an `Avx2` token, which proves AVX2.
        unsafe { pair_gemm::pair_sums(a, rows, kq, quads, n, out) };
        true
    }
}

crate::register_vector_kernels!(Avx2, Priority::ISA, names: {
    quantize_per_tensor: "avx2_quantize_per_tensor", quantize_per_channel: "avx2_quantize_per_channel",
    dequantize: "avx2_dequantize", relu: "avx2_relu",
    add: "avx2_add", add_relu: "avx2_add_relu", mul: "avx2_mul",
    cat: "avx2_cat", max_pool2d: "avx2_max_pool2d",
    hardswish: "avx2_hardswish", hardsigmoid: "avx2_hardsigmoid", sigmoid: "avx2_sigmoid",
    hardtanh: "avx2_hardtanh", relu6: "avx2_relu6", clamp: "avx2_clamp",
});
crate::register_gemm_kernels!(Avx2, Priority::ISA, names: {
    linear: "avx2_linear", linear_relu: "avx2_linear_relu",
    linear_packed: "avx2_linear_packed", linear_relu_packed: "avx2_linear_relu_packed",
    linear_dynamic: "avx2_linear_dynamic", linear_dynamic_packed: "avx2_linear_dynamic_packed",
    conv2d: "avx2_conv2d", conv2d_relu: "avx2_conv2d_relu",
    conv2d_new: "avx2_conv2d_new", conv2d_relu_new: "avx2_conv2d_relu_new",
});
