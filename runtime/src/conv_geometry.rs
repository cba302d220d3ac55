//! The shape of one 2-d convolution: what routes it to an engine's
//! arithmetic (`engine::conv_route`) and what the kernels that follow
//! fbgemm's pair order walk (`reference::int16_pairs` in qtensor-kernels).

/// One 2-d conv: its input, weight and window parameters, and its output
/// size. Padding is the same on both sides of a dimension, as in PyTorch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch, channels, height and width of the input (NCHW).
    pub input: [usize; 4],
    /// Output channels.
    pub out_channels: usize,
    /// Groups (dividing the input and output channels).
    pub groups: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (h, w).
    pub stride: [usize; 2],
    /// Padding (h, w).
    pub padding: [usize; 2],
    /// Dilation (h, w).
    pub dilation: [usize; 2],
    /// Output height and width.
    pub out_hw: [usize; 2],
}

impl ConvGeometry {
    /// The batch size.
    pub fn batch(&self) -> usize {
        self.input[0]
    }

    /// The input channels.
    pub fn in_channels(&self) -> usize {
        self.input[1]
    }

    /// True for a depthwise conv: one input channel per group, more than
    /// one group.
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.in_channels()
    }
}
