//! MobileNetV2 as torchvision's `QuantizableMobileNetV2` after fusion and
//! conversion: relu instead of relu6, conv+relu fused, residual adds
//! through `skip_add`.

use super::init::{ActivationRange, Layers};
use super::{child_state, functional_state, load_child, load_functional, run_named, Classifier, Network};
use crate::nn::quantized::{Conv2d, QFunctional};
use crate::nn::Module;
use crate::{Result, Tensor};
use std::collections::HashMap;

/// `QuantizableInvertedResidual`: an optional 1x1 expansion, a 3x3
/// depthwise conv, a 1x1 projection, and `skip_add` when shapes allow.
/// torchvision gives every block its `skip_add` (and saves its qparams),
/// used or not.
pub struct InvertedResidual {
    /// The convs in order, with their torchvision names under `conv.`.
    convs: Vec<(String, Conv2d)>,
    skip_add: QFunctional,
    residual: bool,
}

impl InvertedResidual {
    fn build(
        init: &mut dyn Layers,
        input: ActivationRange,
        [inp, out]: [usize; 2],
        stride: usize,
        expand: usize,
    ) -> Result<(InvertedResidual, ActivationRange)> {
        let hidden = inp * expand;
        let mut convs = Vec::new();
        let mut act = input;
        if expand != 1 {
            let (c, a) = init.conv(act, [inp, hidden], 1, 1, 1, true)?;
            convs.push(("conv.0.0".to_string(), c));
            act = a;
        }
        let (dw, a) = init.conv(act, [hidden, hidden], 3, stride, hidden, true)?;
        convs.push((format!("conv.{}.0", convs.len()), dw));
        let (project, a) = init.conv(a, [hidden, out], 1, 1, 1, false)?;
        convs.push((format!("conv.{}", convs.len()), project));
        let residual = stride == 1 && inp == out;
        let sum = ActivationRange { std: (a.std.powi(2) + input.std.powi(2)).sqrt(), non_negative: false };
        let (scale, zp) = sum.qparams();
        let block = InvertedResidual { convs, skip_add: QFunctional::new(scale, zp)?, residual };
        Ok((block, if residual { sum } else { a }))
    }
}

impl Module for InvertedResidual {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for (name, conv) in &self.convs {
            y = run_named(conv, &y, name)?;
        }
        if self.residual {
            let _scope = crate::profiler::scope("skip_add");
            self.skip_add.add(x, &y)
        } else {
            Ok(y)
        }
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (name, conv) in &self.convs {
            child_state(&mut out, prefix, name, conv)?;
        }
        functional_state(&mut out, prefix, "skip_add", &self.skip_add)?;
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        for (name, conv) in &mut self.convs {
            load_child(conv, state, prefix, name)?;
        }
        self.skip_add = load_functional(state, prefix, "skip_add")?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("QuantizableInvertedResidual(convs={}, residual={})", self.convs.len(), self.residual)
    }
}

/// One entry of `features`.
enum Feature {
    Conv(Conv2d),
    Block(InvertedResidual),
}

impl Feature {
    fn module(&self) -> &dyn Module {
        match self {
            Feature::Conv(c) => c,
            Feature::Block(b) => b,
        }
    }

    fn module_mut(&mut self) -> &mut dyn Module {
        match self {
            Feature::Conv(c) => c,
            Feature::Block(b) => b,
        }
    }

    /// The torchvision name of entry `i` (a conv sits inside a
    /// `Conv2dNormActivation`, hence the `.0`).
    fn name(&self, i: usize) -> String {
        match self {
            Feature::Conv(_) => format!("features.{i}.0"),
            Feature::Block(_) => format!("features.{i}"),
        }
    }
}

/// torchvision's quantized MobileNetV2.
pub struct MobileNetV2 {
    head: Classifier,
    features: Vec<Feature>,
}

/// MobileNetV2 (width 1.0) with its layers from `init` (a [`Skeleton`](super::Skeleton) for a
/// state to fill, or [`WeightInit`](super::WeightInit)), input `[N, 3, 224, 224]`, 1000 classes (a state gives its own).
pub fn mobilenet_v2(init: &mut dyn Layers) -> Result<MobileNetV2> {
    let input = ActivationRange { std: 1.0, non_negative: false };
    let (qs, qz) = input.qparams();
    let (stem, mut act) = init.conv(input, [3, 32], 3, 2, 1, true)?;
    let mut features = vec![Feature::Conv(stem)];
    let mut inp = 32;
    // torchvision's inverted_residual_setting: (t, c, n, s).
    for (t, c, n, s) in
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    {
        for i in 0..n {
            let (block, out) = InvertedResidual::build(init, act, [inp, c], if i == 0 { s } else { 1 }, t)?;
            features.push(Feature::Block(block));
            (act, inp) = (out, c);
        }
    }
    let (last, act) = init.conv(act, [inp, 1280], 1, 1, 1, true)?;
    features.push(Feature::Conv(last));
    let (fc, _) = init.linear(act, 1280, 1000)?;
    let head = Classifier::new((qs, qz), "classifier.1", fc)?;
    Ok(MobileNetV2 { head, features })
}

impl Network for MobileNetV2 {
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        // The whole pass on a worker of the pool (see `Network`).
        crate::threads::install_pass(|| {
            let mut y = self.head.input(x)?;
            for (i, f) in self.features.iter().enumerate() {
                y = run_named(f.module(), &y, &f.name(i))?;
            }
            self.head.logits(&y)
        })
    }
}

impl Module for MobileNetV2 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.head.dequantize(&self.logits(x)?)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (i, f) in self.features.iter().enumerate() {
            child_state(&mut out, prefix, &f.name(i), f.module())?;
        }
        self.head.state_dict(&mut out, prefix)?;
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        for (i, f) in self.features.iter_mut().enumerate() {
            let name = f.name(i);
            load_child(f.module_mut(), state, prefix, &name)?;
        }
        self.head.load(state, prefix)
    }

    fn describe(&self) -> String {
        format!("QuantizableMobileNetV2(features={})", self.features.len())
    }
}
