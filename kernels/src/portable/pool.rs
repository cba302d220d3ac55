//! adaptive_avg_pool2d over channels-last (NHWC) tensors: each output
//! pixel sums whole channel rows, which the compiler vectorizes. Other
//! layouts go to the reference kernel.

use crate::ops::pool::{is_channels_last, nhwc_rows};
use crate::reference::common::per_tensor;
use crate::reference::pool::{reference_adaptive_avg_pool2d, Planes};
use qtensor_runtime::numerics::requantize_f64;
use qtensor_runtime::{register_kernel, DType, Element, Priority, Result, Tensor};

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
    priority: Priority::PORTABLE,
    fn portable_adaptive_avg_pool2d(x: &Tensor, output_size: &[i64]) -> Tensor
}
