//! MobileNetV3-Large as torchvision's `QuantizableMobileNetV3` after fusion
//! and conversion: conv+relu fused, quantized `Hardswish` modules with
//! their own qparams, squeeze-excitation gates (`fc1`, `fc2`, hardsigmoid,
//! `skip_mul`) and residual adds through `skip_add`. Built entirely from
//! [`Sequential`], [`Residual`] and the layers of [`crate::nn::quantized`].

use super::init::{ActivationRange, Layers};
use super::{QuantizedNet, SavedOnly};
use crate::nn::quantized::{AdaptiveAvgPool2d, Flatten, Hardsigmoid, Hardswish, QFunctional};
use crate::nn::{Combine, Residual, Sequential};
use crate::Result;

/// One `bneck_conf` row of torchvision's `mobilenet_v3_large`.
struct Bneck {
    input: usize,
    kernel: usize,
    expanded: usize,
    out: usize,
    squeeze_excite: bool,
    hardswish: bool,
    stride: usize,
}

const fn bneck(c: [usize; 5], squeeze_excite: bool, hardswish: bool) -> Bneck {
    let [input, kernel, expanded, out, stride] = c;
    Bneck { input, kernel, expanded, out, squeeze_excite, hardswish, stride }
}

/// `[input, kernel, expanded, out, stride]`, squeeze-excitation, hardswish.
const LARGE: [Bneck; 15] = [
    bneck([16, 3, 16, 16, 1], false, false),
    bneck([16, 3, 64, 24, 2], false, false),
    bneck([24, 3, 72, 24, 1], false, false),
    bneck([24, 5, 72, 40, 2], true, false),
    bneck([40, 5, 120, 40, 1], true, false),
    bneck([40, 5, 120, 40, 1], true, false),
    bneck([40, 3, 240, 80, 2], false, true),
    bneck([80, 3, 200, 80, 1], false, true),
    bneck([80, 3, 184, 80, 1], false, true),
    bneck([80, 3, 184, 80, 1], false, true),
    bneck([80, 3, 480, 112, 1], true, true),
    bneck([112, 3, 672, 112, 1], true, true),
    bneck([112, 5, 672, 160, 2], true, true),
    bneck([160, 5, 960, 160, 1], true, true),
    bneck([160, 5, 960, 160, 1], true, true),
];

/// torchvision's `_make_divisible(v, 8)`.
fn make_divisible(v: usize) -> usize {
    let rounded = ((v + 4) / 8 * 8).max(8);
    if (rounded as f64) < 0.9 * v as f64 {
        rounded + 8
    } else {
        rounded
    }
}

/// The qparams of an activation after hardswish (mostly non-negative, a
/// small negative tail).
fn hardswish(act: ActivationRange) -> Result<(Hardswish, ActivationRange)> {
    let out = ActivationRange { std: act.std, non_negative: false };
    let (scale, zp) = out.qparams();
    Ok((Hardswish::new(scale, zp)?, out))
}

/// `Conv2dNormActivation` after fusion: the conv as `0` (with the relu
/// fused), or the conv as `0` and a quantized hardswish as `2`.
fn conv_act(
    init: &mut dyn Layers,
    act: ActivationRange,
    io: [usize; 2],
    kernel: usize,
    stride: usize,
    groups: usize,
    use_hardswish: bool,
) -> Result<(Sequential, ActivationRange)> {
    let (conv, a) = init.conv(act, io, kernel, stride, groups, !use_hardswish)?;
    if use_hardswish {
        let (hs, a) = hardswish(a)?;
        Ok((Sequential::new().push("0", conv).push("2", hs), a))
    } else {
        Ok((Sequential::new().push("0", conv), a))
    }
}

/// `QuantizableSqueezeExcitation`: `skip_mul.mul(hardsigmoid(fc2(relu(fc1(
/// avgpool(x))))), x)`.
fn squeeze_excitation(init: &mut dyn Layers, act: ActivationRange, channels: usize) -> Result<Residual> {
    let squeeze = make_divisible(channels / 4);
    let (fc1, a) = init.conv(act, [channels, squeeze], 1, 1, 1, true)?;
    let (fc2, _) = init.conv(a, [squeeze, channels], 1, 1, 1, false)?;
    let gate = Sequential::new()
        .push("avgpool", AdaptiveAvgPool2d { output_size: [1, 1] })
        .push("fc1", fc1)
        .push("fc2", fc2)
        .push("scale_activation", Hardsigmoid);
    let (scale, zp) = act.qparams();
    Ok(Residual::new("", gate, "skip_mul", QFunctional::new(scale, zp)?, Combine::Mul))
}

/// `QuantizableInvertedResidual` (v3): its `block` and, where the shapes
/// allow, the residual `skip_add`.
fn inverted_residual(init: &mut dyn Layers, act: ActivationRange, c: &Bneck) -> Result<(Sequential, ActivationRange)> {
    let mut block = Sequential::new();
    let mut a = act;
    let mut index = 0;
    if c.expanded != c.input {
        let (expand, next) = conv_act(init, a, [c.input, c.expanded], 1, 1, 1, c.hardswish)?;
        block = block.push("0", expand);
        (a, index) = (next, 1);
    }
    let (depthwise, next) = conv_act(init, a, [c.expanded, c.expanded], c.kernel, c.stride, c.expanded, c.hardswish)?;
    block = block.push(&index.to_string(), depthwise);
    (a, index) = (next, index + 1);
    if c.squeeze_excite {
        block = block.push(&index.to_string(), squeeze_excitation(init, a, c.expanded)?);
        index += 1;
    }
    let (project, out) = init.conv(a, [c.expanded, c.out], 1, 1, 1, false)?;
    block = block.push(&index.to_string(), Sequential::new().push("0", project));
    let sum = ActivationRange { std: (out.std.powi(2) + act.std.powi(2)).sqrt(), non_negative: false };
    let (scale, zp) = sum.qparams();
    let skip_add = QFunctional::new(scale, zp)?;
    if c.stride == 1 && c.input == c.out {
        let residual = Residual::new("block", block, "skip_add", skip_add, Combine::Add);
        Ok((Sequential::new().push("", residual), sum))
    } else {
        // torchvision's block has its `skip_add` (and saves it) either way.
        Ok((Sequential::new().push("block", block).push("skip_add", SavedOnly(skip_add)), out))
    }
}

/// MobileNetV3-Large with its layers from `init` (a [`Skeleton`](super::Skeleton) for a
/// state to fill, or [`WeightInit`](super::WeightInit)), input
/// `[N, 3, 224, 224]`, 1000 classes (a state gives its own). Its logits are `classifier.3`'s.
pub fn mobilenet_v3_large(init: &mut dyn Layers) -> Result<QuantizedNet> {
    let input = ActivationRange { std: 1.0, non_negative: false };
    let (stem, mut act) = conv_act(init, input, [3, 16], 3, 2, 1, true)?;
    let mut features = Sequential::new().push("0", stem);
    for (i, c) in LARGE.iter().enumerate() {
        let (block, a) = inverted_residual(init, act, c)?;
        features = features.push(&(i + 1).to_string(), block);
        act = a;
    }
    let (last, act) = conv_act(init, act, [160, 960], 1, 1, 1, true)?;
    features = features.push("16", last);
    let (fc0, a) = init.linear(act, 960, 1280)?;
    let (hs, a) = hardswish(a)?;
    let (fc3, _) = init.linear(a, 1280, 1000)?;
    let classifier = Sequential::new().push("0", fc0).push("1", hs).push("3", fc3);
    let body = Sequential::new()
        .push("features", features)
        .push("avgpool", AdaptiveAvgPool2d { output_size: [1, 1] })
        .push("flatten", Flatten)
        .push("classifier", classifier);
    QuantizedNet::new("QuantizableMobileNetV3", input, body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn squeeze_channels_are_torchvisions() {
        let got: Vec<usize> = [72, 120, 480, 672, 960].iter().map(|&c| super::make_divisible(c / 4)).collect();
        assert_eq!(got, [24, 32, 120, 168, 240]);
    }
}
