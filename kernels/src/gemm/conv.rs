//! quantized::conv2d and conv2d_relu: im2col over an NHWC copy of the
//! input into the GEMM kernels, and a direct kernel for depthwise convs.
//! The layout conversions are part of every call.

use super::driver::{gemm_prepared, kernel_pad, Epilogue, PKernel};
use super::packed::PackedB;
use super::MAX_K;
use crate::reference::common::{bias_values, output_quantizer, per_tensor};
use crate::reference::conv::ConvParams;
use crate::reference::linear::qint8_weight_rows;
use qtensor_runtime::storage::try_vec;
use qtensor_runtime::{DType, Error, Result, Storage, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// A conv weight packed per group for the GEMM kernels, with k ordered
/// (ky, kx, ic) to match im2col rows of an NHWC input.
#[derive(Debug, Clone)]
pub struct GemmConvWeight {
    /// Output channels, input channels per group, kernel height and width.
    pub shape: [usize; 4],
    /// One packed matrix per group: `[OC/groups, KH*KW*IC/groups]`.
    pub groups: Vec<PackedB>,
    /// Zero point of each output channel.
    pub zero_points: Vec<i32>,
    /// Scale of each output channel.
    pub scales: Vec<f64>,
    /// The weight minus its zero point, as f32, `[OC][KH*KW]` (depthwise path).
    pub depthwise: Vec<f32>,
}

impl GemmConvWeight {
    /// Packs a qint8 weight `[OC, IC/g, KH, KW]` for `groups` groups.
    pub fn pack(w: &Tensor, groups: usize) -> Result<GemmConvWeight> {
        let op = "quantized::conv2d";
        let qp = qint8_weight_rows(op, w, "[OC, IC/groups, KH, KW]")?;
        let s = w.sizes();
        let [oc, icg, kh, kw] = [s[0], s[1], s[2], s[3]];
        if groups == 0 || oc % groups != 0 {
            return Err(Error::shape(op, format!("groups {groups} must divide the {oc} output channels")));
        }
        let ints = w.to_vec::<i8>()?;
        let ocg = oc / groups;
        let k = kh * kw * icg;
        let mut packed = Vec::with_capacity(groups);
        for g in 0..groups {
            // Reorder [ocg][ic][ky][kx] to [ocg][ky][kx][ic].
            let mut m = vec![0i8; ocg * k];
            for o in 0..ocg {
                for ic in 0..icg {
                    for t in 0..kh * kw {
                        m[o * k + t * icg + ic] = ints[((g * ocg + o) * icg + ic) * kh * kw + t];
                    }
                }
            }
            packed.push(PackedB::pack(&m, ocg, k)?);
        }
        let depthwise = if icg == 1 {
            ints.iter().enumerate().map(|(i, &v)| (v as i64 - qp[i / (kh * kw)].1) as f32).collect()
        } else {
            Vec::new()
        };
        Ok(GemmConvWeight {
            shape: [oc, icg, kh, kw],
            groups: packed,
            zero_points: qp.iter().map(|p| p.1 as i32).collect(),
            scales: qp.iter().map(|p| p.0).collect(),
            depthwise,
        })
    }
}

/// The packed weights cached on a weight tensor, one per group count.
#[derive(Debug, Default)]
pub struct ConvWeightCache(parking_lot::Mutex<Vec<(usize, Arc<GemmConvWeight>)>>);

/// The packed form of `w` for `groups`, computed once and cached on it.
pub fn conv_weight(w: &Tensor, groups: usize) -> Result<Arc<GemmConvWeight>> {
    let cache = w.derived(|_| Ok(ConvWeightCache::default()))?;
    if let Some((_, p)) = cache.0.lock().iter().find(|(g, _)| *g == groups) {
        return Ok(p.clone());
    }
    let p = Arc::new(GemmConvWeight::pack(w, groups)?);
    cache.0.lock().push((groups, p.clone()));
    Ok(p)
}

/// The output size of one spatial dimension, or an error.
fn out_dim(op: &str, size: usize, k: usize, p: &ConvParams, i: usize) -> Result<usize> {
    let span = size as i64 + 2 * p.padding[i] as i64 - p.dilation[i] as i64 * (k as i64 - 1) - 1;
    let o = span.div_euclid(p.stride[i] as i64) + 1;
    if o < 1 || k == 0 {
        return Err(Error::shape(
            op,
            format!("output size {o} is too small for input {size}, kernel {k} and padding {:?}", p.padding),
        ));
    }
    Ok(o as usize)
}

/// Static quantized conv2d through `kernel`, or `None` when the fast path
/// does not apply (the caller then runs the reference).
#[allow(clippy::too_many_arguments)]
pub fn gemm_conv2d(
    op: &str,
    kernel: PKernel,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: ConvParams,
    y_scale: f64,
    y_zero_point: i64,
    relu: bool,
) -> Result<Option<Tensor>> {
    if x.dtype() != DType::QUInt8 || x.ndim() != 4 || w.dtype() != DType::QInt8 || w.ndim() != 4 {
        return Ok(None);
    }
    let [n, c, h, wd] = [x.sizes()[0], x.sizes()[1], x.sizes()[2], x.sizes()[3]];
    let [oc, icg, kh, kw] = [w.sizes()[0], w.sizes()[1], w.sizes()[2], w.sizes()[3]];
    let g = p.groups;
    if c % g != 0 || oc % g != 0 || c / g != icg || kh * kw * icg > MAX_K {
        return Ok(None);
    }
    let px = per_tensor(op, "X", x)?;
    let out_q = output_quantizer(op, DType::QUInt8, y_scale, y_zero_point)?;
    let (oh, ow) = (out_dim(op, h, kh, &p, 0)?, out_dim(op, wd, kw, &p, 1)?);
    let b = bias_values(op, bias, oc)?;
    let pw = conv_weight(w, g)?;
    let mult: Vec<f32> = pw.scales.iter().map(|sw| (px.scale * sw / y_scale) as f32).collect();
    let add: Vec<f32> = b.iter().map(|bb| (bb / y_scale + y_zero_point as f64) as f32).collect();
    let lo = if relu { y_zero_point.max(0) } else { 0 } as f32;
    let xs = x.contiguous()?;
    let storage = Storage::for_overwrite(DType::QUInt8.storage_type(), n * oc * oh * ow)?;
    xs.with_contiguous::<u8, Result<()>>(|src| {
        let mut dst = storage.write::<u8>()?;
        if icg == 1
            && oc == g
            && p.stride == [1, 1]
            && p.dilation == [1, 1]
            && kh * kw <= 64
            && crate::x86_64::has_avx2()
        {
            return crate::x86_64::avx2::depthwise::depthwise_nchw(
                src,
                [n, c, h, wd],
                &pw,
                p.padding,
                [oh, ow],
                px.zero_point,
                &mult,
                &add,
                lo,
                &mut dst,
            );
        }
        let (ocg, k) = (oc / g, kh * kw * icg);
        let pad = kernel_pad(kernel);
        let zx = px.zero_point as u8;
        // A copy of the input in NHWC, bordered with the input zero point (a
        // real zero), already in the kernel's form (XOR `pad`): every tap of
        // every output is then in bounds, and im2col is plain copies.
        let (hp, wp) = (h + 2 * p.padding[0], wd + 2 * p.padding[1]);
        let mut padded = try_vec::<u8>(n * hp * wp * c)?;
        padded.resize(n * hp * wp * c, zx ^ pad);
        // Transposed a row segment of up to 64 pixels at a time, so the
        // destination block stays in L1 while every channel is written.
        const TILE: usize = 64;
        padded.par_chunks_mut(wp * c).enumerate().for_each(|(r, prow)| {
            let (img, yp) = (r / hp, r % hp);
            if yp < p.padding[0] || yp >= p.padding[0] + h {
                return;
            }
            let y = yp - p.padding[0];
            for x0 in (0..wd).step_by(TILE) {
                let width = TILE.min(wd - x0);
                let block = &mut prow[(p.padding[1] + x0) * c..(p.padding[1] + x0 + width) * c];
                for ch in 0..c {
                    let line = &src[((img * c + ch) * h + y) * wd + x0..][..width];
                    for (d, &v) in block[ch..].iter_mut().step_by(c).zip(line) {
                        *d = v ^ pad;
                    }
                }
            }
        });
        let m = n * oh * ow;
        let mut out_nhwc = try_vec::<u8>(m * ocg)?;
        out_nhwc.resize(m * ocg, 0);
        for grp in 0..g {
            let packed = &pw.groups[grp];
            let kp = packed.kp;
            // Σ over this group's channels of every padded pixel (unshifted).
            let pixel_sums: Vec<i32> = padded
                .par_chunks(c)
                .map(|px| px[grp * icg..(grp + 1) * icg].iter().map(|&v| (v ^ pad) as i32).sum())
                .collect();
            let mut a = try_vec::<u8>(m * kp)?;
            a.resize(m * kp, pad);
            let mut row_sums = try_vec::<i32>(m)?;
            row_sums.resize(m, 0);
            // One output row of pixels per task.
            let contiguous = g == 1 && p.dilation[1] == 1;
            a.par_chunks_mut(ow * kp).zip(row_sums.par_chunks_mut(ow)).enumerate().for_each(|(t, (rows, sums))| {
                let (img, y) = (t / oh, t % oh);
                for (xo, (row, sum)) in rows.chunks_mut(kp).zip(sums.iter_mut()).enumerate() {
                    let mut at = 0;
                    let mut total = 0i32;
                    for ky in 0..kh {
                        let iy = y * p.stride[0] + ky * p.dilation[0];
                        let pix0 = (img * hp + iy) * wp + xo * p.stride[1];
                        if contiguous {
                            row[at..at + kw * c].copy_from_slice(&padded[pix0 * c..(pix0 + kw) * c]);
                            at += kw * c;
                            total += pixel_sums[pix0..pix0 + kw].iter().sum::<i32>();
                        } else {
                            for kx in 0..kw {
                                let pix = pix0 + kx * p.dilation[1];
                                row[at..at + icg]
                                    .copy_from_slice(&padded[pix * c + grp * icg..pix * c + (grp + 1) * icg]);
                                at += icg;
                                total += pixel_sums[pix];
                            }
                        }
                    }
                    debug_assert_eq!(at, k);
                    *sum = total;
                }
            });
            let zw = &pw.zero_points[grp * ocg..(grp + 1) * ocg];
            let epi = Epilogue::Quantize {
                mult: &mult[grp * ocg..(grp + 1) * ocg],
                add: &add[grp * ocg..(grp + 1) * ocg],
                lo,
                hi: 255.0,
            };
            gemm_prepared(kernel, a, row_sums, m, px.zero_point as i32, packed, zw, epi, &mut out_nhwc)?;
            // Back to NCHW: one output plane per task, a tile of pixels at
            // a time (so reads stay in L1).
            dst.par_chunks_mut(oh * ow).enumerate().filter(|(i, _)| (i % oc) / ocg == grp).for_each(|(i, plane)| {
                let (img, o) = (i / oc, i % oc - grp * ocg);
                for p0 in (0..oh * ow).step_by(TILE) {
                    let width = TILE.min(oh * ow - p0);
                    let block = &out_nhwc[(img * oh * ow + p0) * ocg..(img * oh * ow + p0 + width) * ocg];
                    for (d, &v) in plane[p0..p0 + width].iter_mut().zip(block[o..].iter().step_by(ocg)) {
                        *d = v;
                    }
                }
            });
        }
        Ok(())
    })??;
    Tensor::quantized_from_storage(storage, &[n, oc, oh, ow], &out_q).map(Some)
}

/// Registers conv2d and conv2d_relu for one GEMM kernel.
#[macro_export]
#[doc(hidden)]
macro_rules! register_gemm_conv {
    ($prefix:literal, $kernel:expr, $priority:expr, $supported:path) => {
        const _: () = {
            use qtensor_runtime::{register_kernel, Result, Tensor};
            use $crate::gemm::conv::gemm_conv2d;
            use $crate::reference::conv::{reference_conv, ConvParams};

            #[allow(clippy::too_many_arguments)]
            fn conv(relu: bool, x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                let op = if relu { "quantized::conv2d_relu" } else { "quantized::conv2d" };
                let p = ConvParams::new(op, stride, padding, dilation, groups)?;
                match gemm_conv2d(op, $kernel, x, w, b, p, y_scale, y_zero_point, relu)? {
                    Some(t) => Ok(t),
                    None => reference_conv(relu, x, w, b, stride, padding, dilation, groups, y_scale, y_zero_point),
                }
            }
            #[allow(clippy::too_many_arguments)]
            fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                conv(false, x, w, b, stride, padding, dilation, groups, y_scale, y_zero_point)
            }
            #[allow(clippy::too_many_arguments)]
            fn conv2d_relu(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                conv(true, x, w, b, stride, padding, dilation, groups, y_scale, y_zero_point)
            }
            register_kernel! {
                op: "quantized::conv2d", dtypes: [QUInt8], name: concat!($prefix, "_conv2d"), priority: $priority, is_supported: $supported,
                fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Tensor
            }
            register_kernel! {
                op: "quantized::conv2d_relu", dtypes: [QUInt8], name: concat!($prefix, "_conv2d_relu"), priority: $priority, is_supported: $supported,
                fn conv2d_relu(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Tensor
            }
        };
    };
}
