//! quantized::conv2d and conv2d_relu over NCHW tensors, with stride,
//! padding, dilation and groups (depthwise included), over a packed weight.
//!
//! Padding stands for real zeros, i.e. the input's zero point, so it adds
//! nothing to the exact accumulator `Σ (x - x_zp)(w - w_zp)`. The engine
//! in force (`qtensor_runtime::engine`) picks the requantization, and
//! where fbgemm's kernel saturates, the int16 pair sums of `int16_pairs`.

use super::int16_pairs;
use crate::args::conv::ConvParams;
use crate::args::linear::{centered_rows, qint8_weight_rows};
use crate::args::quantized::{bias_values, output_quantizer, per_tensor, quantized_from_ints};
use qtensor_runtime::engine::{conv_route, ConvRoute};
use qtensor_runtime::numerics::{AccRequant, FusedBiasRequant, OneDnnRequant};
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::{checked_count, try_vec};
use qtensor_runtime::{register_kernel, DType, Error, Priority, QScheme, Result, Tensor};
use std::sync::Arc;

/// A conv weight `[OC, IC/groups, KH, KW]` as the kernel reads it.
#[derive(Debug, Clone)]
pub struct PackedConv2d {
    /// Output channels.
    pub out_channels: usize,
    /// Input channels per group.
    pub in_per_group: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// `w - w_zero_point`, in the weight's own `[OC, IC/g, KH, KW]` order.
    pub weights: Vec<i16>,
    /// Scale of each output channel.
    pub scales: Vec<f64>,
    /// Zero point of each output channel.
    pub zero_points: Vec<i64>,
    /// True for a weight quantized per tensor (fbgemm's bias term differs).
    pub per_tensor: bool,
}

impl PackedConv2d {
    /// Packs a qint8 weight, per-tensor or per-channel on axis 0.
    pub fn pack(w: &Tensor) -> Result<PackedConv2d> {
        let qp = qint8_weight_rows("quantized::conv2d", w, "[OC, IC/groups, KH, KW]")?;
        let s = w.sizes();
        let weights = centered_rows(&w.int_values()?, &qp, s[1] * s[2] * s[3]);
        Ok(PackedConv2d {
            out_channels: s[0],
            in_per_group: s[1],
            kernel: [s[2], s[3]],
            weights,
            scales: qp.iter().map(|p| p.0).collect(),
            zero_points: qp.iter().map(|p| p.1).collect(),
            per_tensor: w.qscheme()? == QScheme::PerTensorAffine,
        })
    }

    /// The packed form of `w`, computed once and cached on the weight tensor.
    pub fn of(w: &Tensor) -> Result<Arc<PackedConv2d>> {
        w.cached_derived(PackedConv2d::pack)
    }
}

/// Static quantized conv2d: quint8 NCHW `x`, packed weight, f32 bias.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_with_packed(
    op: &str,
    x: &Tensor,
    w: &PackedConv2d,
    bias: Option<&Tensor>,
    p: ConvParams,
    y_scale: f64,
    y_zero_point: i64,
    relu: bool,
) -> Result<Tensor> {
    if x.dtype() != DType::QUInt8 {
        return Err(Error::WrongDType { op: op.into(), expected: "a quint8 input".into(), got: x.dtype() });
    }
    let px = per_tensor(op, "X", x)?;
    let out_q = output_quantizer(op, DType::QUInt8, y_scale, y_zero_point)?;
    if x.ndim() != 4 {
        return Err(Error::shape(op, format!("the input must be NCHW, got shape {:?}", x.sizes())));
    }
    let [n, c, h, wd] = [x.sizes()[0], x.sizes()[1], x.sizes()[2], x.sizes()[3]];
    let g = p.groups;
    if !c.is_multiple_of(g) || !w.out_channels.is_multiple_of(g) {
        return Err(Error::shape(
            op,
            format!("groups {g} must divide the input channels {c} and the output channels {}", w.out_channels),
        ));
    }
    if c / g != w.in_per_group {
        return Err(Error::shape(
            op,
            format!(
                "in_channels mismatch: the input has {c} channels ({} per group), the weight expects {} per group",
                c / g,
                w.in_per_group
            ),
        ));
    }
    let b = bias_values(op, bias, w.out_channels)?;
    let [kh, kw] = w.kernel;
    let (oh, ow) = (p.out_size(op, h, kh, 0)?, p.out_size(op, wd, kw, 1)?);
    let xs: Vec<i64> = x.int_values()?.into_iter().map(|v| v - px.zero_point).collect();
    let oc_per_group = w.out_channels / g;
    let lo = if relu { y_zero_point.max(0) } else { 0 };
    let mut ints = try_vec(checked_count(op, &[n, w.out_channels, oh, ow])?)?;
    let geometry = p.geometry([n, c, h, wd], w.out_channels, [kh, kw], [oh, ow]);
    let route = conv_route(qtensor_runtime::engine(), &geometry, w.zero_points.iter().all(|&z| z == 0));
    let requant = |acc: i64, oc: usize| match route {
        ConvRoute::OneDnn { folded } => {
            OneDnnRequant::new(px.scale, w.scales[oc], b[oc] as f32, y_scale, folded).apply(acc, y_zero_point, lo, 255)
        }
        ConvRoute::Fbgemm { rounded_bias: true, .. } if w.per_tensor => AccRequant::with_rounded_reciprocal(
            px.scale,
            w.scales[oc],
            b[oc] as f32,
            y_scale,
        )
        .apply(acc, y_zero_point, lo, 255),
        ConvRoute::Fbgemm { .. } if w.per_tensor => {
            FusedBiasRequant::new(px.scale, w.scales[oc], b[oc] as f32, y_scale).apply(acc, y_zero_point, lo, 255)
        }
        ConvRoute::Fbgemm { .. } => {
            AccRequant::new(px.scale, w.scales[oc], b[oc] as f32, y_scale).apply(acc, y_zero_point, lo, 255)
        }
    };
    if matches!(route, ConvRoute::Fbgemm { saturate: true, .. }) {
        let per_oc = w.in_per_group * kh * kw;
        let raw: Vec<i8> =
            w.weights.iter().enumerate().map(|(i, &v)| (v as i64 + w.zero_points[i / per_oc.max(1)]) as i8).collect();
        let x_u8: Vec<u8> = xs.iter().map(|&v| (v + px.zero_point) as u8).collect();
        let sums = int16_pairs::conv_sums(&geometry, &x_u8, px.zero_point as u8, &raw, &w.zero_points)?;
        let plane = oh * ow;
        ints.extend(sums.iter().enumerate().map(|(i, &acc)| requant(acc, (i / plane.max(1)) % w.out_channels)));
        return quantized_from_ints(&[n, w.out_channels, oh, ow], &out_q, &ints)?.in_format_of(x);
    }
    for img in 0..n {
        for oc in 0..w.out_channels {
            let group = oc / oc_per_group;
            let wbase = oc * w.in_per_group * kh * kw;
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = 0i64;
                    for icg in 0..w.in_per_group {
                        let ic = group * w.in_per_group + icg;
                        let plane = (img * c + ic) * h * wd;
                        for ky in 0..kh {
                            let iy = (y * p.stride[0] + ky * p.dilation[0]) as i64 - p.padding[0] as i64;
                            if iy < 0 || iy >= h as i64 {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (xo * p.stride[1] + kx * p.dilation[1]) as i64 - p.padding[1] as i64;
                                if ix >= 0 && ix < wd as i64 {
                                    let wv = w.weights[wbase + (icg * kh + ky) * kw + kx] as i64;
                                    acc += xs[plane + iy as usize * wd + ix as usize] * wv;
                                }
                            }
                        }
                    }
                    ints.push(requant(acc, oc));
                }
            }
        }
    }
    quantized_from_ints(&[n, w.out_channels, oh, ow], &out_q, &ints)?.in_format_of(x)
}

/// The reference conv2d, fused with relu when `relu`.
#[allow(clippy::too_many_arguments)]
pub fn reference_conv(
    relu: bool,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    groups: i64,
    y_scale: f64,
    y_zero_point: i64,
) -> Result<Tensor> {
    let op = if relu { "quantized::conv2d_relu" } else { "quantized::conv2d" };
    let p = ConvParams::new(op, stride, padding, dilation, groups)?;
    conv2d_with_packed(op, x, &*PackedConv2d::of(w)?, b, p, y_scale, y_zero_point, relu)
}

register_kernel! {
    dtypes: [QUInt8],
    priority: Priority::REFERENCE,
    variants: {
        fn reference_conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Tensor {
            op::quantized::CONV2D => (false, "reference_conv2d"),
            op::quantized::CONV2D_RELU => (true, "reference_conv2d_relu"),
        }
    }
}
