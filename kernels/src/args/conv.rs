//! Convolution arguments: stride, padding, dilation and groups, validated,
//! and the output size they give.

use super::quantized::check_at_least;
use qtensor_runtime::conv_geometry::ConvGeometry;
use qtensor_runtime::{Error, Result};

/// Stride, padding, dilation and groups of a convolution, validated.
#[derive(Debug, Clone, Copy)]
pub struct ConvParams {
    /// Stride (h, w), each >= 1.
    pub stride: [usize; 2],
    /// Zero padding (h, w), each >= 0.
    pub padding: [usize; 2],
    /// Dilation (h, w), each >= 1.
    pub dilation: [usize; 2],
    /// Groups, >= 1.
    pub groups: usize,
}

impl ConvParams {
    /// Checks the raw arguments of the op.
    pub fn new(op: &str, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64) -> Result<ConvParams> {
        check_at_least(op, "stride", stride, 1)?;
        check_at_least(op, "padding", padding, 0)?;
        check_at_least(op, "dilation", dilation, 1)?;
        check_at_least(op, "groups", &[groups], 1)?;
        let pair = |v: &[i64]| [v[0] as usize, v[1] as usize];
        Ok(ConvParams {
            stride: pair(stride),
            padding: pair(padding),
            dilation: pair(dilation),
            groups: groups as usize,
        })
    }
}

impl ConvParams {
    /// The geometry of this conv over an NCHW input of `input` sizes: what
    /// routes it (`engine::conv_route`) and what fbgemm's int16 pair sums
    /// walk.
    pub fn geometry(
        &self,
        input: [usize; 4],
        out_channels: usize,
        kernel: [usize; 2],
        out_hw: [usize; 2],
    ) -> ConvGeometry {
        ConvGeometry {
            input,
            out_channels,
            groups: self.groups,
            kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            out_hw,
        }
    }

    /// The output size along spatial dimension `i` (0 for height, 1 for
    /// width) of an input of `size` and a kernel of `k`, as PyTorch
    /// computes it. Every intermediate is checked: parameters whose window
    /// or padded input do not fit in memory are an error, never a wrap.
    pub fn out_size(&self, op: &str, size: usize, k: usize, i: usize) -> Result<usize> {
        let too_small = |detail: String| {
            Error::shape(
                op,
                format!("no output for input size {size}, kernel {k}, padding {:?}: {detail}", self.padding),
            )
        };
        let padded = size as i128 + 2 * self.padding[i] as i128;
        if padded > usize::MAX as i128 / 2 {
            return Err(too_small(format!("the padded input ({padded}) does not fit in memory")));
        }
        if k == 0 {
            return Err(too_small("the kernel is empty".into()));
        }
        let reach = (self.dilation[i] as i128)
            .checked_mul(k as i128 - 1)
            .ok_or_else(|| too_small(format!("dilation {:?} overflows", self.dilation)))?;
        let span = padded - reach - 1;
        if span < 0 {
            return Err(too_small(format!("the dilated kernel spans {} positions", reach + 1)));
        }
        Ok((span / self.stride[i] as i128 + 1) as usize)
    }
}
