//! NEON kernels (128-bit Advanced SIMD): the [`VectorIsa`] and [`GemmIsa`]
//! routines of the [`Neon`] token, and the GEMMs of the [`NeonDot`]
//! (`sdot`) and [`NeonI8mm`] (`usdot`) tokens, registered at
//! [`Priority::ISA`] and above, bit-exact with the portable routines.
//!
//! The `#[target_feature]` functions in the submodules are private to this
//! module; the trait methods below are the only way in, and each holds the
//! token that proves its features.

mod depthwise;
mod dequantize;
mod elementwise;
mod gemm;
mod lookup;
mod quantize;
mod requantize;
mod simd;

use crate::gemm::depthwise::DepthwiseArgs;
use crate::gemm::packed::PackedB;
use crate::gemm::{GemmIsa, Panel, Requant, RowTerms};
use crate::vector::{BinaryParams, ByteElement, QuantizeParams, RequantParams, VectorIsa};
use qtensor_runtime::isa::{Neon, NeonDot, NeonI8mm};
use qtensor_runtime::{Priority, Result};
use std::ops::Range;

impl VectorIsa for Neon {
    fn detect() -> Option<Self> {
        Neon::detect()
    }

    fn quantize_bytes<B: ByteElement>(self, src: &[f32], dst: &mut [B], q: QuantizeParams) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { quantize::quantize_bytes(src, dst, q) }
    }

    fn quantize_i32(self, src: &[f32], dst: &mut [i32], inv: f32, zero_point: i64) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { quantize::quantize_i32(src, dst, inv, zero_point) }
    }

    fn dequantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [f32], scale: f32, zero_point: i64, _stream: bool) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { dequantize::dequantize_bytes(src, dst, scale, zero_point) }
    }

    fn dequantize_i32(self, src: &[i32], dst: &mut [f32], scale: f32, zero_point: i64) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { dequantize::dequantize_i32(src, dst, scale, zero_point) }
    }

    fn relu_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], zero_point: i64, _stream: bool) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { elementwise::relu_bytes(src, dst, zero_point) }
    }

    fn relu_i32(self, src: &[i32], dst: &mut [i32], zero_point: i64) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { elementwise::relu_i32(src, dst, zero_point) }
    }

    fn lookup_bytes(self, table: &[u8; 256], src: &[u8], dst: &mut [u8]) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { lookup::lookup(table, src, dst) }
    }

    fn binary_bytes<B: ByteElement>(self, a: &[B], b: &[B], dst: &mut [B], p: BinaryParams, _stream: bool) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { elementwise::binary_bytes(a, b, dst, p) }
    }

    fn requantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], p: RequantParams) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { requantize::requantize_bytes(src, dst, p) }
    }
}

impl GemmIsa for Neon {
    const NAME: &'static str = "neon";

    fn detect() -> Option<Self> {
        Neon::detect()
    }

    fn dot(self, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { gemm::dot_smull(x.a, x.rows, x.kp, b, blocks, out, ldo) }
    }

    fn finish_u8(self, terms: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { gemm::finish_u8(terms, rq, dst) }
    }

    fn finish_f32(self, terms: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
        // SAFETY: `self` is a `Neon` token, which proves NEON.
        unsafe { gemm::finish_f32(terms, x_scale, w_scales, bias, dst) }
    }

    fn quantize_u8(self, src: &[f32], dst: &mut [u8], q: QuantizeParams) {
        VectorIsa::quantize_bytes(self, src, dst, q)
    }

    fn depthwise_nhwc(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        Some(depthwise::depthwise_nhwc(self, args, out))
    }
}

/// Implements [`GemmIsa`] for a NEON extension token: its own micro-kernel,
/// and everything else from the plain NEON token it implies.
macro_rules! neon_extension_gemm {
    ($token:ty, $name:literal, $dot:path, $why:literal) => {
        impl GemmIsa for $token {
            const NAME: &'static str = $name;

            fn detect() -> Option<Self> {
                <$token>::detect()
            }

            fn dot(self, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
                // SAFETY: `self` is the token that proves the extension
                // (see $why).
                let _ = $why;
                unsafe { $dot(x.a, x.rows, x.kp, b, blocks, out, ldo) }
            }

            fn finish_u8(self, terms: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
                self.neon().finish_u8(terms, rq, dst)
            }

            fn finish_f32(self, terms: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
                self.neon().finish_f32(terms, x_scale, w_scales, bias, dst)
            }

            fn quantize_u8(self, src: &[f32], dst: &mut [u8], q: QuantizeParams) {
                GemmIsa::quantize_u8(self.neon(), src, dst, q)
            }

            fn depthwise_nhwc(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
                self.neon().depthwise_nhwc(args, out)
            }
        }
    };
}

neon_extension_gemm!(NeonDot, "neon_dot", gemm::dot_sdot, "NeonDot: NEON with dotprod");
neon_extension_gemm!(NeonI8mm, "neon_i8mm", gemm::dot_usdot, "NeonI8mm: NEON with i8mm");

crate::register_vector_kernels!(Neon, Priority::ISA, names: {
    quantize_per_tensor: "neon_quantize_per_tensor", quantize_per_channel: "neon_quantize_per_channel",
    dequantize: "neon_dequantize", relu: "neon_relu",
    add: "neon_add", add_relu: "neon_add_relu", mul: "neon_mul",
    cat: "neon_cat", max_pool2d: "neon_max_pool2d",
    hardswish: "neon_hardswish", hardsigmoid: "neon_hardsigmoid", sigmoid: "neon_sigmoid",
    hardtanh: "neon_hardtanh", relu6: "neon_relu6", clamp: "neon_clamp",
});
crate::register_gemm_kernels!(Neon, Priority::ISA, names: {
    linear: "neon_linear", linear_relu: "neon_linear_relu",
    linear_packed: "neon_linear_packed", linear_relu_packed: "neon_linear_relu_packed",
    linear_dynamic: "neon_linear_dynamic", linear_dynamic_packed: "neon_linear_dynamic_packed",
    conv2d: "neon_conv2d", conv2d_relu: "neon_conv2d_relu",
    conv2d_new: "neon_conv2d_new", conv2d_relu_new: "neon_conv2d_relu_new",
});
crate::register_gemm_kernels!(NeonDot, Priority::ISA.raised(1), names: {
    linear: "neon_dot_linear", linear_relu: "neon_dot_linear_relu",
    linear_packed: "neon_dot_linear_packed", linear_relu_packed: "neon_dot_linear_relu_packed",
    linear_dynamic: "neon_dot_linear_dynamic", linear_dynamic_packed: "neon_dot_linear_dynamic_packed",
    conv2d: "neon_dot_conv2d", conv2d_relu: "neon_dot_conv2d_relu",
    conv2d_new: "neon_dot_conv2d_new", conv2d_relu_new: "neon_dot_conv2d_relu_new",
});
crate::register_gemm_kernels!(NeonI8mm, Priority::ISA.raised(2), names: {
    linear: "neon_i8mm_linear", linear_relu: "neon_i8mm_linear_relu",
    linear_packed: "neon_i8mm_linear_packed", linear_relu_packed: "neon_i8mm_linear_relu_packed",
    linear_dynamic: "neon_i8mm_linear_dynamic", linear_dynamic_packed: "neon_i8mm_linear_dynamic_packed",
    conv2d: "neon_i8mm_conv2d", conv2d_relu: "neon_i8mm_conv2d_relu",
    conv2d_new: "neon_i8mm_conv2d_new", conv2d_relu_new: "neon_i8mm_conv2d_relu_new",
});
