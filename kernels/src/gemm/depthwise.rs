//! The arguments of the direct depthwise conv routines an ISA may plug into
//! its GEMM ([`GemmIsa::depthwise_nhwc`](super::GemmIsa::depthwise_nhwc)
//! and [`depthwise_nchw`](super::GemmIsa::depthwise_nchw)): one input
//! channel per group, with the GEMM epilogue's requantization.
//!
//! The sums are exact in f32: every term is an integer of magnitude at most
//! 255 * 255, and at most 64 taps keep the total below 2^24. The
//! requantization is the epilogue's `fma(C, mult, add)`, clamped, rounded
//! half to even, so both conv paths agree with the GEMM bit for bit.

/// Everything a depthwise routine needs, for one call.
pub struct DepthwiseArgs<'a> {
    /// The input u8, NHWC for `depthwise_nhwc`, NCHW for `depthwise_nchw`.
    pub input: &'a [u8],
    /// The input's sizes `[N, H, W, C]` (whatever its layout).
    pub input_sizes: [usize; 4],
    /// The output's sizes `[N, OH, OW, C]` (whatever its layout).
    pub output_sizes: [usize; 4],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (h, w).
    pub stride: [usize; 2],
    /// Padding (h, w).
    pub padding: [usize; 2],
    /// Dilation (h, w).
    pub dilation: [usize; 2],
    /// `w - w_zero_point` as f32, tap-major: `weights[tap * C + c]`.
    pub weights: &'a [f32],
    /// The same, channel-major: `channel_weights[c * KH * KW + tap]`.
    pub channel_weights: &'a [f32],
    /// The input zero point.
    pub zx: i32,
    /// Per channel: `x_scale * w_scale / y_scale`.
    pub mult: &'a [f32],
    /// Per channel: `bias / y_scale + y_zero_point`.
    pub add: &'a [f32],
    /// The lowest output (the zero point for a fused relu, else 0).
    pub lo: f32,
}
