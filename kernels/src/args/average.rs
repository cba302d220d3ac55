//! The averaging pools (adaptive_avg_pool2d, avg_pool2d): which input
//! each output averages, and PyTorch's arithmetic for the mean, which every
//! tier must reproduce to the bit.

use super::quantized::{check_at_least, PerTensor};
use super::window::{window, Planes, Window};
use qtensor_runtime::{MemoryFormat, Result, Tensor};

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
        // In i128: a stride, padding or kernel near 2^62 times an output
        // position cannot overflow it.
        let (win, h, w) = (&self.win, self.hw[0] as i128, self.hw[1] as i128);
        let [sy, sx, py, px, ky, kx] =
            [win.stride[0], win.stride[1], win.pad[0], win.pad[1], win.kernel[0], win.kernel[1]].map(i128::from);
        let (y0, x0) = (y as i128 * sy - py, x as i128 * sx - px);
        let (y1, x1) = ((y0 + ky).min(h + py), (x0 + kx).min(w + px));
        let pool_size = ((y1 - y0) * (x1 - x0)).min(i64::MAX as i128) as i64;
        let (y0, x0, y1, x1) = (y0.max(0), x0.max(0), y1.min(h).max(y0.max(0)), x1.min(w).max(x0.max(0)));
        let divisor = match self.divisor_override {
            Some(d) => d,
            None if self.count_include_pad => pool_size,
            // Within the input: at most h * w, which its storage bounds.
            None => ((y1 - y0) * (x1 - x0)) as i64,
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
