//! max_pool2d and adaptive_avg_pool2d over channels-last (NHWC) tensors:
//! each output pixel reduces whole channel rows, which the compiler
//! vectorizes. Other layouts go to the reference kernels.

use super::PRIORITY;
use crate::reference::common::per_tensor;
use crate::reference::pool::{
    reference_adaptive_avg_pool2d, reference_max_pool2d, window, window_span, Planes, Window,
};
use qtensor_runtime::numerics::requantize_f64;
use qtensor_runtime::storage::checked_count;
use qtensor_runtime::tensor::format::channels_last_strides;
use qtensor_runtime::{register_kernel, DType, Element, Error, MemoryFormat, Result, Storage, Tensor};
use rayon::prelude::*;

/// One output row of a channels-last max pool: `out` holds `ow` pixels of
/// `c` channels; `src` is image `img` of the input. A window that holds
/// only padding gives `lowest`, as the reference does.
#[inline(always)]
pub fn max_pool_row<B: Copy + Ord>(
    src: &[B],
    [h, w, c]: [usize; 3],
    win: &Window,
    oy: usize,
    lowest: B,
    out: &mut [B],
) {
    let (y0, ny, dy) = window_span(oy, win.stride[0], win.pad[0], win.dilation[0], win.kernel[0], h);
    for (ox, dst) in out.chunks_exact_mut(c.max(1)).enumerate() {
        let (x0, nx, dx) = window_span(ox, win.stride[1], win.pad[1], win.dilation[1], win.kernel[1], w);
        if ny == 0 || nx == 0 {
            dst.fill(lowest);
            continue;
        }
        let at = |ty: usize, tx: usize| ((y0 + ty * dy) * w + x0 + tx * dx) * c;
        dst.copy_from_slice(&src[at(0, 0)..at(0, 0) + c]);
        for ty in 0..ny {
            for tx in 0..nx {
                max_into(dst, &src[at(ty, tx)..at(ty, tx) + c]);
            }
        }
    }
}

/// `dst = max(dst, src)`, in fixed-size chunks of 32 elements that the
/// compiler turns into whole vectors at any width (a loop of dynamic length
/// vectorizes for its widest unroll and runs shorter rows in scalar).
#[inline(always)]
fn max_into<B: Copy + Ord>(dst: &mut [B], src: &[B]) {
    let mut d32 = dst.chunks_exact_mut(32);
    let mut s32 = src.chunks_exact(32);
    for (d, s) in (&mut d32).zip(&mut s32) {
        for i in 0..32 {
            d[i] = d[i].max(s[i]);
        }
    }
    for (d, &v) in d32.into_remainder().iter_mut().zip(s32.remainder()) {
        *d = (*d).max(v);
    }
}

/// Runs `row(image, oy, out_row)` over every output row of an NHWC result,
/// in parallel, and wraps it as a channels-last tensor like `x`.
fn nhwc_rows<B: Element>(
    op: &str,
    x: &Tensor,
    [n, c, oh, ow]: [usize; 4],
    row: impl Fn(&[B], usize, &mut [B]) + Sync,
) -> Result<Tensor> {
    let sizes = [n, c, oh, ow];
    let storage = Storage::for_overwrite(B::STORAGE, checked_count(op, &sizes)?)?;
    let [_, _, h, w] = [x.sizes()[0], x.sizes()[1], x.sizes()[2], x.sizes()[3]];
    x.with_dense::<B, Result<()>>(|src| {
        let mut dst = storage.write::<B>()?;
        dst.par_chunks_mut((ow * c).max(1)).enumerate().for_each(|(r, out)| {
            let img = r / oh.max(1);
            row(&src[img * h * w * c..(img + 1) * h * w * c], r % oh.max(1), out);
        });
        Ok(())
    })??;
    let q = x.quantizer().ok_or_else(|| Error::invalid(op, "no quantizer"))?;
    Tensor::quantized_from_storage_strided(storage, &sizes, channels_last_strides(&sizes), &q)
}

/// True for a 4-d per-tensor quantized tensor in channels-last layout.
pub fn is_channels_last(x: &Tensor) -> bool {
    x.ndim() == 4 && x.memory_format() == MemoryFormat::ChannelsLast && x.per_tensor_qparams().is_some()
}

/// One output row of a quint8 channels-last max pool (see [`max_pool_row`]).
pub type MaxRowU8 = fn(src: &[u8], dims: [usize; 3], win: &Window, oy: usize, lowest: u8, out: &mut [u8]);

/// Channels-last max_pool2d for every quantized dtype; quint8 rows go
/// through `u8_row`, which an ISA module may compile for its vector width.
#[allow(clippy::too_many_arguments)]
pub fn max_pool2d_nhwc(
    x: &Tensor,
    kernel_size: &[i64],
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    ceil_mode: bool,
    u8_row: MaxRowU8,
) -> Result<Tensor> {
    let op = "max_pool2d";
    let p = Planes::of(op, x)?;
    let win = window(op, &p, kernel_size, stride, padding, dilation, ceil_mode)?;
    let shape = [x.sizes()[0], x.sizes()[1], win.out[0], win.out[1]];
    let dims = [p.h, p.w, shape[1]];
    fn run<B: Element + Ord>(
        op: &str,
        x: &Tensor,
        shape: [usize; 4],
        dims: [usize; 3],
        win: &Window,
        lowest: B,
    ) -> Result<Tensor> {
        nhwc_rows::<B>(op, x, shape, |src, oy, out| max_pool_row(src, dims, win, oy, lowest, out))
    }
    match x.dtype() {
        DType::QUInt8 => nhwc_rows::<u8>(op, x, shape, |src, oy, out| u8_row(src, dims, &win, oy, 0, out)),
        DType::QInt8 => run::<i8>(op, x, shape, dims, &win, i8::MIN),
        DType::QInt16 => run::<i16>(op, x, shape, dims, &win, i16::MIN),
        DType::QInt32 => run::<i32>(op, x, shape, dims, &win, i32::MIN),
        _ => reference_max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode),
    }
}

fn portable_max_pool2d(
    x: &Tensor,
    kernel_size: &[i64],
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    ceil_mode: bool,
) -> Result<Tensor> {
    if is_channels_last(x) {
        max_pool2d_nhwc(x, kernel_size, stride, padding, dilation, ceil_mode, max_pool_row::<u8>)
    } else {
        reference_max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    }
}

register_kernel! {
    op: "max_pool2d",
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    name: "portable_max_pool2d",
    priority: PRIORITY,
    fn portable_max_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], dilation: &[i64], ceil_mode: bool) -> Tensor
}

/// Channels-last adaptive_avg_pool2d: per output pixel, the channel sums
/// over its window, requantized exactly as the reference does.
fn portable_adaptive_avg_pool2d(x: &Tensor, output_size: &[i64]) -> Result<Tensor> {
    let op = "adaptive_avg_pool2d";
    if !is_channels_last(x) {
        return reference_adaptive_avg_pool2d(x, output_size);
    }
    let pt = per_tensor(op, "self", x)?;
    let p = Planes::of(op, x)?;
    crate::reference::common::check_at_least(op, "output_size", output_size, 1)?;
    if output_size.len() != 2 {
        return reference_adaptive_avg_pool2d(x, output_size);
    }
    let (oh, ow) = (output_size[0] as usize, output_size[1] as usize);
    let (h, w, c) = (p.h, p.w, x.sizes()[1]);
    fn run<B: Element>(
        op: &str,
        x: &Tensor,
        pt: crate::reference::common::PerTensor,
        [h, w, c, oh, ow]: [usize; 5],
    ) -> Result<Tensor> {
        nhwc_rows::<B>(op, x, [x.sizes()[0], c, oh, ow], |src, y, out| {
            let (y0, y1) = (y * h / oh, ((y + 1) * h).div_ceil(oh));
            // c channels of a dense tensor: its own storage justifies this.
            let mut sums = vec![0i64; c];
            for (xo, dst) in out.chunks_mut(c.max(1)).enumerate() {
                let (x0, x1) = (xo * w / ow, ((xo + 1) * w).div_ceil(ow));
                sums.fill(0);
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        for (s, v) in sums.iter_mut().zip(&src[(iy * w + ix) * c..(iy * w + ix + 1) * c]) {
                            *s += v.to_i64();
                        }
                    }
                }
                let count = ((y1 - y0) * (x1 - x0)) as i64;
                for (d, &s) in dst.iter_mut().zip(&sums) {
                    let centered = s - count * pt.zero_point;
                    let real = centered as f64 * pt.scale / count as f64;
                    *d = B::from_i64(requantize_f64(real, pt.scale, pt.zero_point, pt.qmin, pt.qmax));
                }
            }
        })
    }
    let dims = [h, w, c, oh, ow];
    match x.dtype() {
        DType::QUInt8 => run::<u8>(op, x, pt, dims),
        DType::QInt8 => run::<i8>(op, x, pt, dims),
        DType::QInt16 => run::<i16>(op, x, pt, dims),
        _ => run::<i32>(op, x, pt, dims),
    }
}

register_kernel! {
    op: "adaptive_avg_pool2d",
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    name: "portable_adaptive_avg_pool2d",
    priority: PRIORITY,
    fn portable_adaptive_avg_pool2d(x: &Tensor, output_size: &[i64]) -> Tensor
}
