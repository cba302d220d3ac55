//! The averaging pools (adaptive_avg_pool2d, avg_pool2d): which input
//! each output averages, and PyTorch's arithmetic for the mean, which every
//! tier must reproduce to the bit.

use super::quantized::{check_at_least, PerTensor};
use super::window::{window, Planes, Window};
use crate::vector::ByteElement;
use qtensor_runtime::numerics::{round_half_even_small, round_to_byte};
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

    /// [`WindowAverage::apply`] on the channels-last sequence for each of a
    /// window's channels: `dst[i] = apply(sums[i] - offset, divisor)`, where
    /// `sums[i] - offset` fits i32 (8-bit sums over fewer than 2^23
    /// pixels). Written so that it vectorizes: the multiplier once per
    /// window, the clamp before the rounding (the bounds are integers, so
    /// the order does not matter) and the rounding in the mantissa
    /// ([`round_to_byte`]), with no libm call or float-to-int conversion.
    pub fn channels_last_row<B: ByteElement>(&self, sums: &[i32], offset: i32, divisor: i64, dst: &mut [B]) {
        let pt = &self.pt;
        if divisor == 0 {
            dst.fill(B::from_i64(pt.zero_point.clamp(pt.qmin, pt.qmax)));
            return;
        }
        let multiplier = (1.0 / divisor as f64) as f32;
        let zp = pt.zero_point as f32;
        // The output bounds as values of the rounded `scaled` (it is
        // rounded before the zero point is added, as PyTorch does).
        let (lo, hi) = (pt.qmin as f32 - zp, pt.qmax as f32 - zp);
        // Shifted so that a signed byte's range lands on 0..=255 for
        // `round_to_byte`, which then only converts an exact integer.
        let shift = if B::SIGNED { 128.0 } else { 0.0 };
        for (d, &s) in dst.iter_mut().zip(sums) {
            let scaled = s.wrapping_sub(offset) as f32 * multiplier;
            let byte = round_to_byte(round_half_even_small(scaled.clamp(lo, hi)) + (zp + shift));
            *d = B::from_i64(byte as i64 - shift as i64);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use qtensor_runtime::DType;

    /// The row form against the scalar definition, over every sum a 3x3 and
    /// a 2x2 window of 8-bit values can have (ties included), for both
    /// byte types, zero points at and inside the range, and the divisors
    /// of padded windows, overrides and a zero one.
    fn row_matches_apply<B: ByteElement>(dtype: DType, qmin: i64, qmax: i64) {
        for zero_point in [qmin, 0i64.clamp(qmin, qmax), 3, qmax - 7, qmax] {
            let pt = PerTensor { dtype, scale: 0.1, zero_point, qmin, qmax };
            let average = WindowAverage { channels_last: true, pt };
            for (pixels, divisor) in [(9i32, 9i64), (9, 4), (4, 9), (4, 4), (9, 1), (9, 0), (9, 7)] {
                let offset = pixels * zero_point as i32;
                // (Every 37th sum under Miri, which runs this slowly.)
                let step = if cfg!(miri) { 37 } else { 1 };
                let sums: Vec<i32> = (pixels * qmin as i32..=pixels * qmax as i32).step_by(step).collect();
                let mut got = vec![B::default(); sums.len()];
                average.channels_last_row(&sums, offset, divisor, &mut got);
                for (&s, g) in sums.iter().zip(&got) {
                    let want = average.apply(s as i64 - offset as i64, divisor);
                    assert_eq!(g.to_i64(), want, "sum {s} zero point {zero_point} divisor {divisor}");
                }
            }
        }
    }

    #[test]
    fn channels_last_row_is_apply_per_channel() {
        row_matches_apply::<u8>(DType::QUInt8, 0, 255);
        row_matches_apply::<i8>(DType::QInt8, -128, 127);
    }
}
