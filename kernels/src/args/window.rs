//! Pooling arguments: an input seen as planes, and a validated window
//! with its output size, PyTorch's way.

use super::quantized::check_at_least;
use qtensor_runtime::storage::checked_count;
use qtensor_runtime::{Error, Result, Tensor};

/// An input viewed as `planes` images of `h` x `w`, with the output shape builder.
/// An input seen as `planes` images of `h` x `w`.
pub struct Planes {
    /// The leading (batch and channel) sizes.
    pub batch_dims: Vec<usize>,
    /// How many planes.
    pub planes: usize,
    /// Plane height.
    pub h: usize,
    /// Plane width.
    pub w: usize,
}

impl Planes {
    /// Checks a 3-D or 4-D input.
    pub fn of(op: &str, x: &Tensor) -> Result<Planes> {
        let s = x.sizes();
        if !(s.len() == 3 || s.len() == 4) {
            return Err(Error::shape(op, format!("expected a 3-D (CHW) or 4-D (NCHW) input, got shape {s:?}")));
        }
        let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
        if h == 0 || w == 0 {
            return Err(Error::shape(op, format!("spatial dimensions must be non-empty, got shape {s:?}")));
        }
        // Checked: a shape with a zero batch may still claim h * w beyond
        // memory (it also loads from a file).
        checked_count(op, s)?;
        checked_count(op, &[h, w]).map_err(|_| {
            Error::shape(op, format!("the planes of shape {s:?} have more elements than fit in memory"))
        })?;
        Ok(Planes {
            batch_dims: s[..s.len() - 2].to_vec(),
            planes: qtensor_runtime::tensor::layout::numel_of(&s[..s.len() - 2]),
            h,
            w,
        })
    }

    /// The output shape for `oh` x `ow` planes.
    pub fn out_sizes(&self, oh: usize, ow: usize) -> Vec<usize> {
        let mut v = self.batch_dims.clone();
        v.extend([oh, ow]);
        v
    }
}

/// PyTorch's `pooling_output_shape`, in i128 so that no parameter the
/// checks let through can overflow (the result is then range-checked).
fn pooled_size(input: usize, kernel: i64, pad: i64, stride: i64, dilation: i64, ceil_mode: bool) -> i128 {
    let (input, kernel, pad, stride, dilation) =
        (input as i128, kernel as i128, pad as i128, stride as i128, dilation as i128);
    let span = input + 2 * pad - dilation * (kernel - 1) - 1 + if ceil_mode { stride - 1 } else { 0 };
    let mut out = span.div_euclid(stride) + 1;
    if ceil_mode && (out - 1) * stride >= input + pad {
        out -= 1;
    }
    out
}

/// The input positions a window at output position `o` covers, clipped to
/// `0..size`, as (first position, count, step): a window far larger than
/// the input costs only the input it overlaps.
#[inline(always)]
pub fn window_span(o: usize, stride: i64, pad: i64, dilation: i64, kernel: i64, size: usize) -> (usize, usize, usize) {
    let (o, stride, pad, dilation, kernel) = (o as i128, stride as i128, pad as i128, dilation as i128, kernel as i128);
    let start = o * stride - pad;
    // The first tap at or after 0, and the last before `size`. Without
    // dilation, no division: a pool calls this per output pixel, and i128
    // divisions took a sixth of a 3x3 max pool.
    let (skip, last) = if dilation == 1 {
        ((-start).max(0), (size as i128 - 1 - start).min(kernel - 1))
    } else {
        let skip = if start < 0 { (-start + dilation - 1) / dilation } else { 0 };
        (skip, (size as i128 - 1 - start).div_euclid(dilation).min(kernel - 1))
    };
    if last < skip {
        return (0, 0, 1);
    }
    ((start + skip * dilation) as usize, (last - skip + 1) as usize, dilation as usize)
}

/// A validated pooling window.
pub struct Window {
    /// Kernel size.
    pub kernel: [i64; 2],
    /// Stride.
    pub stride: [i64; 2],
    /// Padding.
    pub pad: [i64; 2],
    /// Dilation.
    pub dilation: [i64; 2],
    /// Output height and width.
    pub out: [usize; 2],
}

/// Validates pooling parameters against an input, PyTorch's way. An
/// empty `stride` is PyTorch's default: the kernel size.
pub fn window(
    op: &str,
    p: &Planes,
    kernel: &[i64],
    stride: &[i64],
    pad: &[i64],
    dilation: &[i64],
    ceil_mode: bool,
) -> Result<Window> {
    let stride = if stride.is_empty() { kernel } else { stride };
    if stride.len() != 2 {
        return Err(Error::invalid(
            op,
            format!("stride must have 2 values (or none, for the kernel size), got {stride:?}"),
        ));
    }
    check_at_least(op, "kernel_size", kernel, 1)?;
    check_at_least(op, "stride", stride, 1)?;
    check_at_least(op, "dilation", dilation, 1)?;
    check_at_least(op, "padding", pad, 0)?;
    for i in 0..2 {
        let effective = (kernel[i] - 1).saturating_mul(dilation[i]).saturating_add(1);
        if pad[i] > effective / 2 {
            return Err(Error::invalid(
                op,
                format!("padding {pad:?} must be at most half of the effective kernel size"),
            ));
        }
    }
    let oh = pooled_size(p.h, kernel[0], pad[0], stride[0], dilation[0], ceil_mode);
    let ow = pooled_size(p.w, kernel[1], pad[1], stride[1], dilation[1], ceil_mode);
    for (axis, out, size) in [("height", oh, p.h), ("width", ow, p.w)] {
        if out < 1 || out > usize::MAX as i128 {
            let i = usize::from(axis == "width");
            let span = (kernel[i] as i128 - 1) * dilation[i] as i128 + 1;
            return Err(Error::shape(
                op,
                format!(
                    "the window does not fit along the {axis}: it spans {span} (kernel_size {}, dilation {}) \
                     but the padded input has {} (size {size}, padding {} on each side)",
                    kernel[i],
                    dilation[i],
                    size as i128 + 2 * pad[i] as i128,
                    pad[i]
                ),
            ));
        }
    }
    Ok(Window {
        kernel: [kernel[0], kernel[1]],
        stride: [stride[0], stride[1]],
        pad: [pad[0], pad[1]],
        dilation: [dilation[0], dilation[1]],
        out: [oh as usize, ow as usize],
    })
}
