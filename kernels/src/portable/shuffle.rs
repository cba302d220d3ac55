//! channel_shuffle of channels-last 8-bit tensors (ShuffleNet's blocks):
//! a permutation of each pixel's channels, in place of the reference's
//! reshape, transpose and strided copy. Other layouts, dtypes and invalid
//! arguments decline to the reference kernel, which also gives the errors.

use crate::ops::pool::{is_channels_last, nhwc_rows};
use qtensor_runtime::ops as op;
use qtensor_runtime::{register_kernel, DType, Error, Priority, Result, Tensor};

/// Channel `i * (C / groups) + j` of each pixel moves to `j * groups + i`.
fn portable_channel_shuffle(x: &Tensor, groups: i64) -> Result<Tensor> {
    let op = "channel_shuffle";
    let per_tensor = x.quantizer().is_some_and(|q| q.axis().is_none());
    if !is_channels_last(x) || !per_tensor || groups < 1 {
        return Err(Error::declined("channel_shuffle: not a per-tensor channels-last tensor"));
    }
    let s = x.sizes();
    let (c, g) = (s[1], groups as usize);
    if !c.is_multiple_of(g) {
        return Err(Error::declined("channel_shuffle: groups that do not divide the channels"));
    }
    let (h, w, cg) = (s[2], s[3], c / g);
    fn run<B: Copy + qtensor_runtime::Element>(op: &str, x: &Tensor, [h, w, c, g, cg]: [usize; 5]) -> Result<Tensor> {
        nhwc_rows::<B>(op, x, [x.sizes()[0], c, h, w], |image, y, out| {
            let row = &image[y * w * c..(y + 1) * w * c];
            for (dst, src) in out.chunks_exact_mut(c.max(1)).zip(row.chunks_exact(c.max(1))) {
                shuffle_pixel(src, dst, g, cg);
            }
        })
    }
    let dims = [h, w, c, g, cg];
    match x.dtype() {
        DType::QUInt8 => run::<u8>(op, x, dims),
        DType::QInt8 => run::<i8>(op, x, dims),
        _ => Err(Error::declined("channel_shuffle: not an 8-bit quantized tensor")),
    }
}

/// One pixel's channels: `dst[j * g + i] = src[i * cg + j]`, written in
/// `dst`'s order. Two groups (every ShuffleNet block) interleave the two
/// halves, a loop the compiler turns into byte unpacks.
fn shuffle_pixel<B: Copy>(src: &[B], dst: &mut [B], g: usize, cg: usize) {
    if g == 2 {
        let (lo, hi) = src.split_at(cg);
        for ((d, &a), &b) in dst.chunks_exact_mut(2).zip(lo).zip(hi) {
            d[0] = a;
            d[1] = b;
        }
        return;
    }
    for (j, d) in dst.chunks_exact_mut(g.max(1)).enumerate() {
        for (v, group) in d.iter_mut().zip(src.chunks_exact(cg.max(1))) {
            *v = group[j];
        }
    }
}

register_kernel! {
    op: op::CHANNEL_SHUFFLE,
    dtypes: [QUInt8, QInt8],
    name: "portable_channel_shuffle",
    priority: Priority::PORTABLE,
    fn portable_channel_shuffle(x: &Tensor, groups: i64) -> Tensor
}
