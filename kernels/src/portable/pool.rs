//! adaptive_avg_pool2d and avg_pool2d over channels-last (NHWC) tensors:
//! each output pixel sums whole channel rows, which the compiler
//! vectorizes. They decline other layouts, to the reference kernels.

use crate::args::average::{adaptive_range, avg_pool_geometry, AdaptiveAverage, AvgPoolGeometry, WindowAverage};
use crate::args::quantized::per_tensor;
use crate::args::window::Planes;
use crate::ops::pool::{is_channels_last, nhwc_rows};
use crate::vector::ByteElement;
use qtensor_runtime::ops as op;
use qtensor_runtime::{register_kernel, DType, Element, Error, Priority, Result, Tensor};
use std::ops::Range;

/// Channels-last adaptive_avg_pool2d: per output pixel, the channel sums
/// over its window, requantized exactly as the reference does.
fn portable_adaptive_avg_pool2d(x: &Tensor, output_size: &[i64]) -> Result<Tensor> {
    let op = "adaptive_avg_pool2d";
    if !is_channels_last(x) {
        return Err(Error::declined("adaptive_avg_pool2d: not channels-last"));
    }
    let pt = per_tensor(op, "self", x)?;
    let p = Planes::of(op, x)?;
    crate::args::quantized::check_at_least(op, "output_size", output_size, 1)?;
    if output_size.len() != 2 {
        return Err(Error::declined("adaptive_avg_pool2d: an output_size that is not two sizes"));
    }
    let (oh, ow) = (output_size[0] as usize, output_size[1] as usize);
    let (h, w, c) = (p.h, p.w, x.sizes()[1]);
    fn run<B: Element>(
        op: &str,
        x: &Tensor,
        average: AdaptiveAverage,
        [h, w, c, oh, ow]: [usize; 5],
    ) -> Result<Tensor> {
        nhwc_rows::<B>(op, x, [x.sizes()[0], c, oh, ow], |src, y, out| {
            let rows = adaptive_range(y, oh, h);
            // c channels of a dense tensor: its own storage justifies this.
            let (mut sums, mut narrow) = (vec![0i64; c], vec![0i32; c]);
            for (xo, dst) in out.chunks_mut(c.max(1)).enumerate() {
                let cols = adaptive_range(xo, ow, w);
                let pixels = (iy_ix(&rows, &cols)).map(|(iy, ix)| &src[(iy * w + ix) * c..(iy * w + ix + 1) * c]);
                // 8-bit values sum exactly in i32 over fewer than 2^23
                // pixels, and twice as many lanes of i32 fit a vector.
                if std::mem::size_of::<B>() == 1 && rows.len() * cols.len() < 1 << 23 {
                    narrow.fill(0);
                    for pixel in pixels {
                        for (s, v) in narrow.iter_mut().zip(pixel) {
                            *s += v.to_i64() as i32;
                        }
                    }
                    for (s, &n) in sums.iter_mut().zip(&narrow) {
                        *s = n as i64;
                    }
                } else {
                    sums.fill(0);
                    for pixel in pixels {
                        for (s, v) in sums.iter_mut().zip(pixel) {
                            *s += v.to_i64();
                        }
                    }
                }
                for (d, &s) in dst.iter_mut().zip(&sums) {
                    *d = B::from_i64(average.apply(s, rows.len(), cols.len()));
                }
            }
        })
    }
    let dims = [h, w, c, oh, ow];
    let average = AdaptiveAverage::of(x, pt);
    match x.dtype() {
        DType::QUInt8 => run::<u8>(op, x, average, dims),
        DType::QInt8 => run::<i8>(op, x, average, dims),
        DType::QInt16 => run::<i16>(op, x, average, dims),
        _ => run::<i32>(op, x, average, dims),
    }
}

/// The window's pixels, row by row.
fn iy_ix(rows: &Range<usize>, cols: &Range<usize>) -> impl Iterator<Item = (usize, usize)> {
    let cols = cols.clone();
    rows.clone().flat_map(move |iy| cols.clone().map(move |ix| (iy, ix)))
}

register_kernel! {
    op: op::ADAPTIVE_AVG_POOL2D,
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    name: "portable_adaptive_avg_pool2d",
    priority: Priority::PORTABLE,
    fn portable_adaptive_avg_pool2d(x: &Tensor, output_size: &[i64]) -> Tensor
}

/// Channels-last avg_pool2d of 8-bit tensors: per output pixel, i32
/// channel sums over its window, then PyTorch's channels-last
/// requantization ([`WindowAverage`]), as the reference computes it.
#[allow(clippy::too_many_arguments)]
fn portable_avg_pool2d(
    x: &Tensor,
    kernel_size: &[i64],
    stride: &[i64],
    padding: &[i64],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> Result<Tensor> {
    let op = "avg_pool2d";
    if !is_channels_last(x) || !matches!(x.dtype(), DType::QUInt8 | DType::QInt8) {
        return Err(Error::declined("avg_pool2d: not channels-last quint8 or qint8"));
    }
    let pt = per_tensor(op, "self", x)?;
    let (geo, _) =
        avg_pool_geometry(op, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)?;
    // i32 sums of 8-bit values hold any window below 2^23 elements.
    if geo.win.kernel[0].saturating_mul(geo.win.kernel[1]) >= 1 << 23 {
        return Err(Error::declined("avg_pool2d: a window whose sums i32 cannot hold"));
    }
    let average = WindowAverage { channels_last: true, pt };
    fn run<B: ByteElement>(op: &str, x: &Tensor, geo: &AvgPoolGeometry, average: &WindowAverage) -> Result<Tensor> {
        let ([oh, ow], [_, w], c) = (geo.win.out, geo.hw, x.sizes()[1]);
        let zero_point = average.pt.zero_point;
        nhwc_rows::<B>(op, x, [x.sizes()[0], c, oh, ow], |src, y, out| {
            // c channels of a dense tensor: its own storage justifies this.
            let mut sums = vec![0i32; c];
            for (xo, dst) in out.chunks_mut(c.max(1)).enumerate() {
                let wnd = geo.window(y, xo);
                sums.fill(0);
                for iy in wnd.rows.clone() {
                    let row = &src[(iy * w + wnd.cols.start) * c..(iy * w + wnd.cols.end) * c];
                    for pixel in row.chunks_exact(c.max(1)) {
                        for (s, v) in sums.iter_mut().zip(pixel) {
                            *s += v.to_i64() as i32;
                        }
                    }
                }
                // Below 2^23 pixels of |zero point| <= 255: fits i32.
                let offset = (wnd.rows.len() * wnd.cols.len()) as i32 * zero_point as i32;
                average.channels_last_row(&sums, offset, wnd.divisor, dst);
            }
        })
    }
    match x.dtype() {
        DType::QUInt8 => run::<u8>(op, x, &geo, &average),
        _ => run::<i8>(op, x, &geo, &average),
    }
}

register_kernel! {
    op: op::AVG_POOL2D,
    dtypes: [QUInt8, QInt8],
    name: "portable_avg_pool2d",
    priority: Priority::PORTABLE,
    fn portable_avg_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], ceil_mode: bool, count_include_pad: bool, divisor_override: Option<i64>) -> Tensor
}
