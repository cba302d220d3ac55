//! The arguments of the direct depthwise conv routines an ISA may plug into
//! its GEMM ([`GemmIsa::depthwise_nhwc`](super::GemmIsa::depthwise_nhwc)
//! and [`depthwise_nchw`](super::GemmIsa::depthwise_nchw)): one input
//! channel per group, with the GEMM epilogue's requantization.
//!
//! The sums are exact in f32: every term is an integer of magnitude at most
//! 255 * 255, and at most 64 taps keep the total below 2^24. The
//! requantization is the epilogue's (`gemm::Requant`), so both conv paths
//! agree with the GEMM, and with PyTorch, bit for bit.

use super::epilogue::{Requant, RequantForm};
use qtensor_runtime::{Error, Result};
use std::any::Any;
use std::ops::Range;
use std::sync::OnceLock;

/// Where an ISA's depthwise routine keeps a weight in its own layout,
/// made on its first call: it sits next to the packed weight, so every
/// later call with that weight skips the relayout.
#[derive(Default)]
pub struct LayoutCache(OnceLock<Box<dyn Any + Send + Sync>>);

impl LayoutCache {
    /// The layout of type `T` in the cache, made by `make` if the cache is
    /// empty; `None` if it holds another ISA's layout (a process that runs
    /// two ISAs' routines on one weight, as the kernel checks do), and the
    /// caller then makes its own for the call.
    pub fn get_or_make<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Option<&T> {
        self.0.get_or_init(|| Box::new(make())).downcast_ref()
    }
}

/// A copy starts empty: the layout is made again on first use.
impl Clone for LayoutCache {
    fn clone(&self) -> LayoutCache {
        LayoutCache::default()
    }
}

impl std::fmt::Debug for LayoutCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "LayoutCache(made)" } else { "LayoutCache(empty)" })
    }
}

/// Everything a depthwise routine needs, for one call.
pub struct DepthwiseArgs<'a> {
    /// The input u8, NHWC for `depthwise_nhwc`, NCHW for `depthwise_nchw`.
    pub input: &'a [u8],
    /// The input's sizes `[N, H, W, C]` (whatever its layout).
    pub input_sizes: [usize; 4],
    /// The output's sizes `[N, OH, OW, C]` (whatever its layout).
    pub output_sizes: [usize; 4],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (h, w).
    pub stride: [usize; 2],
    /// Padding (h, w).
    pub padding: [usize; 2],
    /// Dilation (h, w).
    pub dilation: [usize; 2],
    /// `w - w_zero_point` as f32, tap-major: `weights[tap * C + c]`.
    pub weights: &'a [f32],
    /// The same, channel-major: `channel_weights[c * KH * KW + tap]`.
    pub channel_weights: &'a [f32],
    /// The input zero point.
    pub zx: i32,
    /// Per channel, the requantization multiplier (see `numerics::AccRequant`).
    pub mult: &'a [f32],
    /// Per channel, the bias term added to the exact sum before `mult`.
    pub bias: &'a [f32],
    /// The output zero point.
    pub zero_point: i32,
    /// The lowest output (the zero point for a fused relu, else 0).
    pub lo: f32,
    /// The weight's [`LayoutCache`], if it has one (a packed weight does).
    pub layout: Option<&'a LayoutCache>,
}

impl<'a> DepthwiseArgs<'a> {
    /// The kernel's tap count, after checking what a routine that sums in
    /// f32 over channels-last weights (`weights[t * C + j]`) reads: at most
    /// 64 taps, which keep the sums exact, and weights and terms for every
    /// channel.
    pub fn f32_taps(&self) -> Result<usize> {
        let c = self.input_sizes[3];
        let taps = self.kernel[0] * self.kernel[1];
        if taps > 64
            || taps.checked_mul(c).is_none_or(|n| self.weights.len() < n)
            || self.mult.len() < c
            || self.bias.len() < c
        {
            return Err(Error::invalid(
                "quantized::conv2d",
                "the depthwise weights, terms or taps do not fit the kernel",
            ));
        }
        Ok(taps)
    }

    /// The requantization of every channel, as the GEMM epilogue's: the
    /// direct routines run fbgemm's (the conv driver sends oneDNN's convs
    /// to the GEMM).
    pub fn requant(&self) -> Requant<'a> {
        Requant {
            mult: self.mult,
            bias: self.bias,
            zero_point: self.zero_point,
            lo: self.lo,
            hi: 255.0,
            form: RequantForm::Fbgemm,
        }
    }
}

/// Runs `pixel(taps, dst)` for every output pixel of the channels-last
/// depthwise conv `a`, one output row per task: `dst` is the pixel's `C`
/// output channels, `taps` its taps that fall inside the input, as (input
/// offset of channel 0, tap index). ISAs supply `pixel`.
pub fn for_each_pixel(
    a: &DepthwiseArgs<'_>,
    out: &mut [u8],
    pixel: impl Fn(&[(usize, usize)], &mut [u8]) + Sync,
) -> Result<()> {
    let [_, h, w, c] = a.input_sizes;
    let [_, oh, ow, _] = a.output_sizes;
    let [kh, kw] = a.kernel;
    if a.f32_taps()? == 0 {
        return Err(Error::invalid("quantized::conv2d", "the depthwise kernel is empty"));
    }
    crate::parallel::try_chunks(out, ow * c, Vec::new, |taps, r, row| {
        let (img, oy) = (r / oh.max(1), r % oh.max(1));
        let rows = tap_range(oy, a.stride[0], a.padding[0], a.dilation[0], kh, h);
        for (ox, dst) in row.chunks_exact_mut(c.max(1)).enumerate() {
            // The in-bounds taps of this pixel (a rectangle).
            let cols = tap_range(ox, a.stride[1], a.padding[1], a.dilation[1], kw, w);
            taps.clear();
            for ky in rows.clone() {
                let iy = oy * a.stride[0] + ky * a.dilation[0] - a.padding[0];
                for kx in cols.clone() {
                    let ix = ox * a.stride[1] + kx * a.dilation[1] - a.padding[1];
                    taps.push(((((img * h) + iy) * w + ix) * c, ky * kw + kx));
                }
            }
            pixel(taps, dst);
        }
        Ok(())
    })
}

/// Channels `from..` of one output pixel, in scalar: the exact f32 sum of
/// the taps, then requantized as `gemm::Requant::scalar`, as the vector
/// routines compute each lane.
pub fn pixel_scalar(a: &DepthwiseArgs<'_>, taps: &[(usize, usize)], from: usize, dst: &mut [u8]) {
    let c = a.input_sizes[3];
    for (j, d) in dst.iter_mut().enumerate().skip(from) {
        let mut acc = 0f32;
        for &(at, t) in taps {
            acc = ((a.input[at + j] as i32 - a.zx) as f32).mul_add(a.weights[t * c + j], acc);
        }
        *d = a.requant().scalar(j, acc as i32);
    }
}

/// One output pixel in portable code, 64 channels at a time with the taps
/// outermost (so the inner loop runs over contiguous channels and
/// vectorizes); the same bits as [`pixel_scalar`]: products and sums of
/// integers below 2^24 are exact in f32 in any order.
pub fn pixel_portable(a: &DepthwiseArgs<'_>, taps: &[(usize, usize)], dst: &mut [u8]) {
    const CHUNK: usize = 64;
    let c = a.input_sizes[3];
    let zx = a.zx as f32;
    for ch in (0..c).step_by(CHUNK) {
        let len = CHUNK.min(c - ch);
        let mut acc = [0f32; CHUNK];
        for &(at, t) in taps {
            let x = &a.input[at + ch..at + ch + len];
            let w = &a.weights[t * c + ch..t * c + ch + len];
            for ((acc, &x), &w) in acc.iter_mut().zip(x).zip(w) {
                *acc += (x as f32 - zx) * w;
            }
        }
        for (j, (d, &acc)) in dst[ch..ch + len].iter_mut().zip(&acc).enumerate() {
            *d = a.requant().scalar(ch + j, acc as i32);
        }
    }
}

/// The kernel taps `k` whose input position `o * stride + k * dilation -
/// pad` lies in `0..size`.
fn tap_range(o: usize, stride: usize, pad: usize, dilation: usize, kernel: usize, size: usize) -> Range<usize> {
    let start = o * stride;
    // First k with start + k * dilation >= pad.
    let first = pad.saturating_sub(start).div_ceil(dilation);
    // Taps with start + k * dilation < size + pad.
    let end = if start >= size + pad { 0 } else { (size + pad - start).div_ceil(dilation) };
    first..end.min(kernel).max(first)
}
