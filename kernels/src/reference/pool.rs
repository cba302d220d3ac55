//! 2-D pooling over NCHW (or CHW) tensors: max_pool2d (exact),
//! adaptive_avg_pool2d and avg_pool2d (requantized to the input's qparams).

use crate::args::average::{adaptive_range, avg_pool_geometry, AdaptiveAverage, WindowAverage};
use crate::args::quantized::{check_at_least, per_tensor, quantized_from_ints};
use crate::args::window::{window, window_span, Planes};
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::{checked_count, try_vec};
use qtensor_runtime::{register_kernel, Error, MemoryFormat, Priority, Result, Tensor};

/// The reference max_pool2d.
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
        op::MAX_POOL2D => reference_max_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], dilation: &[i64], ceil_mode: bool) -> Tensor,
        op::ADAPTIVE_AVG_POOL2D => reference_adaptive_avg_pool2d(x: &Tensor, output_size: &[i64]) -> Tensor,
        op::AVG_POOL2D => reference_avg_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], ceil_mode: bool, count_include_pad: bool, divisor_override: Option<i64>) -> Tensor,
    }
}

/// The reference adaptive_avg_pool2d.
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

/// The reference avg_pool2d.
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
