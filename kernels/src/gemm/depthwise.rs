//! The depthwise conv routine an ISA may plug into its GEMM kernel: one
//! input channel per group over channels-last (NHWC) activations, with the
//! GEMM epilogue's requantization.

use qtensor_runtime::Result;

/// Everything a depthwise routine needs, for one call.
pub struct DepthwiseArgs<'a> {
    /// The input, NHWC u8.
    pub input: &'a [u8],
    /// `[N, H, W, C]` of the input.
    pub input_nhwc: [usize; 4],
    /// `[N, OH, OW, C]` of the output.
    pub output_nhwc: [usize; 4],
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
    /// The input zero point.
    pub zx: i32,
    /// Per channel: `x_scale * w_scale / y_scale`.
    pub mult: &'a [f32],
    /// Per channel: `bias / y_scale + y_zero_point`.
    pub add: &'a [f32],
    /// The lowest output (the zero point for a fused relu, else 0).
    pub lo: f32,
}

/// Writes the NHWC u8 output (`out.len() == N * OH * OW * C`).
pub type DepthwiseFn = fn(args: &DepthwiseArgs<'_>, out: &mut [u8]) -> Result<()>;
