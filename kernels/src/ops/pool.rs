//! max_pool2d (exact) over an ISA's routines: channels-last tensors a row
//! of pixels at a time across their channels, NCHW ones a plane at a time.
//! Per-channel tensors and other dtypes go to the reference kernel.

use crate::args::window::{window, Planes, Window};
use crate::parallel;
use crate::vector::{max_pool_row, ByteElement, VectorIsa};
use qtensor_runtime::storage::checked_count;
use qtensor_runtime::tensor::format::channels_last_strides;
use qtensor_runtime::threads::num_threads;
use qtensor_runtime::{DType, Element, Error, MemoryFormat, Result, Storage, Tensor};

/// True for a 4-d per-tensor quantized tensor in channels-last layout.
pub fn is_channels_last(x: &Tensor) -> bool {
    x.ndim() == 4 && x.memory_format() == MemoryFormat::ChannelsLast && x.per_tensor_qparams().is_some()
}

/// Runs `row(image, oy, out_row)` over every output row of an NHWC result,
/// in parallel, and wraps it as a channels-last tensor like `x`.
pub fn nhwc_rows<B: Element>(
    op: &str,
    x: &Tensor,
    [n, c, oh, ow]: [usize; 4],
    row: impl Fn(&[B], usize, &mut [B]) + Sync,
) -> Result<Tensor> {
    let sizes = [n, c, oh, ow];
    let count = checked_count(op, &sizes)?;
    let storage = Storage::for_overwrite(B::STORAGE, count)?;
    let [_, _, h, w] = [x.sizes()[0], x.sizes()[1], x.sizes()[2], x.sizes()[3]];
    // An empty output has nothing to compute, and its other sizes may
    // multiply past `usize`. Otherwise a row and an image of the input
    // exist, so their sizes are bounded by allocations.
    if count > 0 {
        x.with_dense::<B, Result<()>>(|src| {
            let mut guard = storage.write::<B>()?;
            // The slice, not the lock guard, crosses to the pool's threads.
            let dst: &mut [B] = &mut guard;
            parallel::chunks(dst, ow * c, |r, out| {
                let img = r / oh.max(1);
                row(&src[img * h * w * c..(img + 1) * h * w * c], r % oh.max(1), out);
            });
            Ok(())
        })??;
    }
    let q = x.quantizer().ok_or_else(|| Error::invalid(op, "no quantizer"))?;
    Tensor::quantized_from_storage_strided(storage, &sizes, channels_last_strides(&sizes), &q)
}

/// NCHW planes of bytes: the ISA's plane routine where it has one, else
/// its channels-last row routine on one channel.
fn nchw_planes<I: VectorIsa, B: ByteElement>(isa: I, op: &str, x: &Tensor, p: &Planes, win: &Window) -> Result<Tensor> {
    let [oh, ow] = win.out;
    let sizes = p.out_sizes(oh, ow);
    let count = checked_count(op, &sizes)?;
    let storage = Storage::for_overwrite(B::STORAGE, count)?;
    // As in `nhwc_rows`: nothing to do for an empty output.
    if count > 0 {
        x.with_contiguous::<B, Result<()>>(|src| {
            let mut guard = storage.write::<B>()?;
            let dst: &mut [B] = &mut guard;
            // A few groups of planes per thread, each with its scratch row.
            let per = p.planes.div_ceil(4 * num_threads()).max(1);
            parallel::try_chunks(dst, per * oh * ow, Vec::new, |scratch, g, outs| {
                for (j, out) in outs.chunks_mut((oh * ow).max(1)).enumerate() {
                    let i = g * per + j;
                    let plane = &src[i * p.h * p.w..(i + 1) * p.h * p.w];
                    if !isa.max_pool_plane(plane, [p.h, p.w], win, out, scratch) {
                        for (oy, row) in out.chunks_mut(ow.max(1)).enumerate() {
                            isa.max_pool_row(plane, [p.h, p.w, 1], win, oy, row);
                        }
                    }
                }
                Ok(())
            })
        })??;
    }
    let q = x.quantizer().ok_or_else(|| Error::invalid(op, "no quantizer"))?;
    Tensor::quantized_from_storage(storage, &sizes, &q)
}

/// max_pool2d through `isa`.
pub fn max_pool2d<I: VectorIsa>(
    isa: I,
    x: &Tensor,
    kernel_size: &[i64],
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    ceil_mode: bool,
) -> Result<Tensor> {
    let op = "max_pool2d";
    if x.per_tensor_qparams().is_none() {
        return Err(Error::declined("max_pool2d: not a per-tensor quantized tensor"));
    }
    let p = Planes::of(op, x)?;
    let win = window(op, &p, kernel_size, stride, padding, dilation, ceil_mode)?;
    if is_channels_last(x) {
        let shape = [x.sizes()[0], x.sizes()[1], win.out[0], win.out[1]];
        let dims = [p.h, p.w, shape[1]];
        let win = &win;
        return match x.dtype() {
            DType::QUInt8 => nhwc_rows::<u8>(op, x, shape, |src, oy, out| isa.max_pool_row(src, dims, win, oy, out)),
            DType::QInt8 => nhwc_rows::<i8>(op, x, shape, |src, oy, out| isa.max_pool_row(src, dims, win, oy, out)),
            DType::QInt16 => {
                nhwc_rows::<i16>(op, x, shape, |src, oy, out| max_pool_row(src, dims, win, oy, i16::MIN, out))
            }
            DType::QInt32 => {
                nhwc_rows::<i32>(op, x, shape, |src, oy, out| max_pool_row(src, dims, win, oy, i32::MIN, out))
            }
            _ => Err(Error::declined("max_pool2d: a dtype without a channels-last loop")),
        };
    }
    match x.dtype() {
        DType::QUInt8 => nchw_planes::<I, u8>(isa, op, x, &p, &win),
        DType::QInt8 => nchw_planes::<I, i8>(isa, op, x, &p, &win),
        _ => Err(Error::declined("max_pool2d: a dtype without a row-major loop")),
    }
}
