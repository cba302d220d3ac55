//! AVX-512 VNNI kernels: `vpdpbusd` multiplies u8 by s8 and sums four
//! products into i32 with no intermediate saturation, 64 per instruction.
//! The [`GemmIsa`] of the [`Avx512Vnni`] token, registered one step above
//! the AVX2 kernels: its GEMM, quantizing epilogue and channels-last
//! depthwise routine are its own, the rest AVX2's. Its `VectorIsa`
//! (`vector`), registered likewise, runs quantize and the binary ops at
//! 512 bits.

mod depthwise_nhwc;
mod gemm;
mod lookup;
mod vector;

use crate::gemm::depthwise::DepthwiseArgs;
use crate::gemm::packed::PackedB;
use crate::gemm::{GemmIsa, Panel, PanelTerms, Requant, RowTerms, ShiftedRows};
use crate::vector::QuantizeParams;
use qtensor_runtime::isa::Avx512Vnni;
use qtensor_runtime::{Priority, Result};
use std::ops::Range;

impl GemmIsa for Avx512Vnni {
    const NAME: &'static str = "avx512vnni";
    // Two `vpdpbusd` zmm per cycle (128 multiply-adds) against a copy of
    // about 20 bytes per cycle: measured on ResNet-18's convs, where the
    // implicit GEMM paid at 56x56 and 64 outputs but not at 7x7 and 512.
    const DOTS_PER_COPIED_BYTE: usize = 6;

    fn detect() -> Option<Self> {
        Avx512Vnni::detect()
    }

    fn pair_sums(self, a: &[u8], rows: usize, kq: usize, quads: &[i8], n: usize, out: &mut [i32]) -> bool {
        // A CPU with AVX-512 has AVX2: its routine, where the cap allows.
        qtensor_runtime::isa::Avx2::detect().is_some_and(|avx2| avx2.pair_sums(a, rows, kq, quads, n, out))
    }

    fn dot(self, x: Panel<'_>, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize) {
        // SAFETY: `self` is an `Avx512Vnni` token, which proves AVX-512 F,
        // BW and VNNI.
        unsafe { gemm::dot(x.a, x.rows, x.kp, b, blocks, out, ldo) }
    }

    fn reads_shifted_rows(self, channels: usize, taps: usize) -> bool {
        // Each 4-byte step of K must lie within one tap.
        let _ = taps;
        channels > 0 && channels.is_multiple_of(4)
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
        // SAFETY: `self` is an `Avx512Vnni` token, which proves AVX-512 F,
        // BW and VNNI.
        unsafe { gemm::dot_shifted(rows, x, b, blocks, out, ldo) }
    }

    fn finish_u8(self, terms: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        self.finish_row_by_panel(terms, rq, dst)
    }

    fn finish_rows_u8(self, t: PanelTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        // SAFETY: `self` is an `Avx512Vnni` token, which proves AVX-512 F,
        // BW and VNNI, and AVX2 with FMA.
        unsafe { gemm::finish_rows_u8(t, rq, dst) }
    }

    fn finish_f32(self, terms: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
        self.avx2().finish_f32(terms, x_scale, w_scales, bias, dst)
    }

    fn vectorized<R>(self, f: impl FnOnce() -> R) -> R {
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        fn run<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: `self` is an `Avx512Vnni` token, which proves AVX-512 F
        // and BW, and AVX2 with FMA.
        unsafe { run(f) }
    }

    fn quantize_u8(self, src: &[f32], dst: &mut [u8], q: QuantizeParams) {
        GemmIsa::quantize_u8(self.avx2(), src, dst, q)
    }

    fn depthwise_nhwc(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        // AVX2's routine where the weights do not fit i8.
        depthwise_nhwc::depthwise_nhwc(self, args, out).or_else(|| self.avx2().depthwise_nhwc(args, out))
    }

    fn depthwise_nchw(self, args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Option<Result<()>> {
        self.avx2().depthwise_nchw(args, out)
    }
}

crate::register_gemm_kernels!(Avx512Vnni, Priority::ISA.raised(1), names: {
    linear: "avx512vnni_linear", linear_relu: "avx512vnni_linear_relu",
    linear_packed: "avx512vnni_linear_packed", linear_relu_packed: "avx512vnni_linear_relu_packed",
    linear_dynamic: "avx512vnni_linear_dynamic", linear_dynamic_packed: "avx512vnni_linear_dynamic_packed",
    conv2d: "avx512vnni_conv2d", conv2d_relu: "avx512vnni_conv2d_relu",
    conv2d_new: "avx512vnni_conv2d_new", conv2d_relu_new: "avx512vnni_conv2d_relu_new",
});

crate::register_vector_kernels!(Avx512Vnni, Priority::ISA.raised(1), names: {
    quantize_per_tensor: "avx512vnni_quantize_per_tensor", quantize_per_channel: "avx512vnni_quantize_per_channel",
    dequantize: "avx512vnni_dequantize", relu: "avx512vnni_relu",
    add: "avx512vnni_add", add_relu: "avx512vnni_add_relu", mul: "avx512vnni_mul",
    cat: "avx512vnni_cat", max_pool2d: "avx512vnni_max_pool2d",
    hardswish: "avx512vnni_hardswish", hardsigmoid: "avx512vnni_hardsigmoid", sigmoid: "avx512vnni_sigmoid",
    hardtanh: "avx512vnni_hardtanh", relu6: "avx512vnni_relu6", clamp: "avx512vnni_clamp",
});
