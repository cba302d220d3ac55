//! 2-D pooling over NCHW (or CHW) tensors: max_pool2d (exact),
//! adaptive_avg_pool2d and avg_pool2d (requantized to the input's qparams).

use super::common::{check_at_least, per_tensor, quantized_from_ints, PerTensor};
use qtensor_runtime::storage::{checked_count, try_vec};
use qtensor_runtime::{register_kernel, Error, MemoryFormat, Priority, Result, Tensor};

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
        Ok(Planes { batch_dims: s[..s.len() - 2].to_vec(), planes: s[..s.len() - 2].iter().product(), h, w })
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
    // The first tap at or after 0, and the last before `size`.
    let skip = if start < 0 { (-start + dilation - 1) / dilation } else { 0 };
    let last = ((size as i128 - 1 - start).div_euclid(dilation)).min(kernel - 1);
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

/// The reference max_pool2d, also the fallback of faster kernels.
pub fn reference_max_pool2d(
    x: &Tensor,
    kernel_size: &[i64],
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    ceil_mode: bool,
) -> Result<Tensor> {
    let op = "max_pool2d";
    let q = x.require_quantizer(op)?;
    let pt = per_tensor(op, "self", x)?;
    let p = Planes::of(op, x)?;
    let win = window(op, &p, kernel_size, stride, padding, dilation, ceil_mode)?;
    let v = x.int_values()?;
    let [oh, ow] = win.out;
    let mut out = try_vec(checked_count(op, &[p.planes, oh, ow])?)?;
    for plane in v.chunks(p.h * p.w).take(p.planes) {
        for y in 0..oh as i64 {
            for xo in 0..ow as i64 {
                // A window holding only padding yields the dtype's lowest
                // value, as PyTorch's quantized kernel does. Windows are
                // clipped to the input first.
                let mut best = pt.qmin;
                let (y0, ny, dy) =
                    window_span(y as usize, win.stride[0], win.pad[0], win.dilation[0], win.kernel[0], p.h);
                let (x0, nx, dx) =
                    window_span(xo as usize, win.stride[1], win.pad[1], win.dilation[1], win.kernel[1], p.w);
                for ty in 0..ny {
                    for tx in 0..nx {
                        best = best.max(plane[(y0 + ty * dy) * p.w + x0 + tx * dx]);
                    }
                }
                out.push(best);
            }
        }
    }
    quantized_from_ints(&p.out_sizes(oh, ow), &q, &out)?.in_format_of(x)
}

register_kernel! {
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        "max_pool2d" => reference_max_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], dilation: &[i64], ceil_mode: bool) -> Tensor,
        "adaptive_avg_pool2d" => reference_adaptive_avg_pool2d(x: &Tensor, output_size: &[i64]) -> Tensor,
        "avg_pool2d" => reference_avg_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], ceil_mode: bool, count_include_pad: bool, divisor_override: Option<i64>) -> Tensor,
    }
}

/// The input rows (or columns) that adaptive pooling averages for output
/// index `o` of `out`, over an input of `len`: PyTorch's `start_index` and
/// `end_index`, computed in f32 as PyTorch does (and kept inside the
/// input, where f32 rounding of huge sizes would step past it).
pub fn adaptive_range(o: usize, out: usize, len: usize) -> std::ops::Range<usize> {
    let start = ((o as u64 * len as u64) as f32 / out as f32).floor() as usize;
    let end = (((o as u64 + 1) * len as u64) as f32 / out as f32).ceil() as usize;
    let end = end.min(len);
    start.min(end)..end
}

/// PyTorch's adaptive_avg_pool2d arithmetic for one window of `rows` by
/// `cols` input values whose stored integers sum to `raw_sum`, into the
/// input's qparams. Its two paths differ (0 mismatches against PyTorch in
/// 430,000 outputs of quint8, qint8 and qint32, either engine):
///
/// - **channels-last** input (any tensor that is channels-last
///   contiguous): `round_half_even(f32(raw_sum - n * zero_point) *
///   f32(1 / n)) + zero_point`, n = rows * cols;
/// - **any other** layout: the stored integers averaged as they are,
///   `round_half_even(f32(raw_sum) * r)` with `r = f32(f32(1 / rows) /
///   cols)`.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveAverage {
    /// True for the channels-last sequence.
    pub channels_last: bool,
    /// The input's (and output's) qparams.
    pub pt: PerTensor,
}

impl AdaptiveAverage {
    /// The sequence for `x`'s layout.
    pub fn of(x: &Tensor, pt: PerTensor) -> Self {
        AdaptiveAverage { channels_last: x.is_contiguous_in(MemoryFormat::ChannelsLast), pt }
    }

    /// The output integer of one window.
    #[inline]
    pub fn apply(&self, raw_sum: i64, rows: usize, cols: usize) -> i64 {
        let pt = &self.pt;
        let n = (rows * cols) as i64;
        let r = if self.channels_last {
            let multiplier = 1.0f32 / n as f32;
            ((raw_sum - n * pt.zero_point) as f32 * multiplier).round_ties_even() as i64 + pt.zero_point
        } else {
            let reciprocal = (1.0f32 / rows as f32) / cols as f32;
            (raw_sum as f32 * reciprocal).round_ties_even() as i64
        };
        r.clamp(pt.qmin, pt.qmax)
    }
}

/// The reference adaptive_avg_pool2d, also the fallback of faster kernels.
pub fn reference_adaptive_avg_pool2d(x: &Tensor, output_size: &[i64]) -> Result<Tensor> {
    let op = "adaptive_avg_pool2d";
    let pt = per_tensor(op, "self", x)?;
    let q = x.quantizer().ok_or_else(|| Error::invalid(op, "no quantizer"))?;
    let p = Planes::of(op, x)?;
    check_at_least(op, "output_size", output_size, 1)?;
    let (oh, ow) = (output_size[0] as usize, output_size[1] as usize);
    let average = AdaptiveAverage::of(x, pt);
    let v = x.int_values()?;
    let mut out = try_vec(checked_count(op, &[p.planes, oh, ow])?)?;
    for plane in v.chunks(p.h * p.w).take(p.planes) {
        for y in 0..oh {
            let rows = adaptive_range(y, oh, p.h);
            for xo in 0..ow {
                let cols = adaptive_range(xo, ow, p.w);
                let sum: i64 =
                    rows.clone().map(|iy| plane[iy * p.w + cols.start..iy * p.w + cols.end].iter().sum::<i64>()).sum();
                out.push(average.apply(sum, rows.len(), cols.len()));
            }
        }
    }
    quantized_from_ints(&p.out_sizes(oh, ow), &q, &out)?.in_format_of(x)
}

/// PyTorch's requantization of a window sum `sum(q - zero_point)` by its
/// divisor, into the input's qparams. Its two avg_pool2d paths differ:
///
/// - **channels-last** input: `round_half_even(f32(sum) * f32(1 / divisor))
///   + zero_point`;
/// - **any other** layout: `round_half_even(f32(f32(sum) * f32(1 /
///   divisor)) + f32(zero_point))`, the zero point added before rounding,
///   so that ties go to the even *output* integer.
///
/// Both clamp to the dtype's range; a divisor of 0 (an empty window)
/// gives the zero point.
pub struct WindowAverage {
    /// True for the channels-last sequence.
    pub channels_last: bool,
    /// The input's (and output's) qparams.
    pub pt: PerTensor,
}

impl WindowAverage {
    /// The output integer for the window sum `sum` and its `divisor`.
    #[inline]
    pub fn apply(&self, sum: i64, divisor: i64) -> i64 {
        let pt = &self.pt;
        if divisor == 0 {
            return pt.zero_point.clamp(pt.qmin, pt.qmax);
        }
        let multiplier = (1.0 / divisor as f64) as f32;
        let scaled = sum as f32 * multiplier;
        let r = if self.channels_last {
            scaled.round_ties_even() + pt.zero_point as f32
        } else {
            (scaled + pt.zero_point as f32).round_ties_even()
        };
        (r as i64).clamp(pt.qmin, pt.qmax)
    }
}

#[allow(clippy::too_many_arguments)]
/// One avg_pool2d window by PyTorch's arithmetic: the input rows `y0..y1`
/// and columns `x0..x1` it covers, and its divisor (the padded window,
/// the covered one, or the override).
pub struct AvgWindow {
    /// Covered input rows.
    pub rows: std::ops::Range<usize>,
    /// Covered input columns.
    pub cols: std::ops::Range<usize>,
    /// What the sum is divided by.
    pub divisor: i64,
}

/// The avg_pool2d geometry of one call, shared by every kernel.
pub struct AvgPoolGeometry {
    /// The window, stride and padding (and output size).
    pub win: Window,
    /// Input height and width.
    pub hw: [usize; 2],
    /// Count padding in the divisor.
    pub count_include_pad: bool,
    /// A fixed divisor.
    pub divisor_override: Option<i64>,
}

impl AvgPoolGeometry {
    /// The window of output pixel `(y, x)`.
    pub fn window(&self, y: usize, x: usize) -> AvgWindow {
        let (win, h, w) = (&self.win, self.hw[0] as i64, self.hw[1] as i64);
        let (y0, x0) = (y as i64 * win.stride[0] - win.pad[0], x as i64 * win.stride[1] - win.pad[1]);
        let (y1, x1) = ((y0 + win.kernel[0]).min(h + win.pad[0]), (x0 + win.kernel[1]).min(w + win.pad[1]));
        let pool_size = (y1 - y0).saturating_mul(x1 - x0);
        let (y0, x0, y1, x1) = (y0.max(0), x0.max(0), y1.min(h).max(y0.max(0)), x1.min(w).max(x0.max(0)));
        let divisor = match self.divisor_override {
            Some(d) => d,
            None if self.count_include_pad => pool_size,
            None => (y1 - y0) * (x1 - x0),
        };
        AvgWindow { rows: y0 as usize..y1 as usize, cols: x0 as usize..x1 as usize, divisor }
    }
}

/// Checks avg_pool2d's arguments and returns its geometry and planes.
#[allow(clippy::too_many_arguments)]
pub fn avg_pool_geometry(
    op: &str,
    x: &Tensor,
    kernel_size: &[i64],
    stride: &[i64],
    padding: &[i64],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> Result<(AvgPoolGeometry, Planes)> {
    if let Some(d) = divisor_override {
        check_at_least(op, "divisor_override", &[d], 1)?;
    }
    let p = Planes::of(op, x)?;
    let win = window(op, &p, kernel_size, stride, padding, &[1, 1], ceil_mode)?;
    Ok((AvgPoolGeometry { win, hw: [p.h, p.w], count_include_pad, divisor_override }, p))
}

/// The reference avg_pool2d, also the fallback of faster kernels.
#[allow(clippy::too_many_arguments)]
pub fn reference_avg_pool2d(
    x: &Tensor,
    kernel_size: &[i64],
    stride: &[i64],
    padding: &[i64],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> Result<Tensor> {
    let op = "avg_pool2d";
    let pt = per_tensor(op, "self", x)?;
    let q = x.quantizer().ok_or_else(|| Error::invalid(op, "no quantizer"))?;
    let (geo, p) =
        avg_pool_geometry(op, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)?;
    let v = x.int_values()?;
    let [oh, ow] = geo.win.out;
    let average = WindowAverage { channels_last: x.is_contiguous_in(MemoryFormat::ChannelsLast), pt };
    let mut out = try_vec(checked_count(op, &[p.planes, oh, ow])?)?;
    for plane in v.chunks(p.h * p.w).take(p.planes) {
        for y in 0..oh {
            for xo in 0..ow {
                let wnd = geo.window(y, xo);
                let sum: i64 = wnd
                    .rows
                    .clone()
                    .flat_map(|iy| &plane[iy * p.w + wnd.cols.start..iy * p.w + wnd.cols.end])
                    .map(|&q| q - pt.zero_point)
                    .sum();
                out.push(average.apply(sum, wnd.divisor));
            }
        }
    }
    quantized_from_ints(&p.out_sizes(oh, ow), &q, &out)?.in_format_of(x)
}
