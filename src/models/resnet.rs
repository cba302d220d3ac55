//! ResNet-18 and ResNet-50 as torchvision's `QuantizableResNet` after
//! fusion and conversion: conv+relu fused, residual adds as `add_relu`.

use super::init::{relu_of_sum, ActivationRange, Layers};
use super::{child_state, functional_state, load_child, load_functional, run_named, Classifier, Network};
use crate::nn::quantized::{Conv2d, MaxPool2d, QFunctional};
use crate::nn::Module;
use crate::{Result, Tensor};
use std::collections::HashMap;

/// `QuantizableBasicBlock`: two 3x3 convs, an optional 1x1 downsample, and
/// `add_relu` of the residual.
pub struct BasicBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    downsample: Option<Conv2d>,
    add_relu: QFunctional,
}

impl BasicBlock {
    fn build(
        init: &mut dyn Layers,
        input: ActivationRange,
        [inp, out]: [usize; 2],
        stride: usize,
    ) -> Result<(BasicBlock, ActivationRange)> {
        let (conv1, a1) = init.conv(input, [inp, out], 3, stride, 1, true)?;
        let (conv2, a2) = init.conv(a1, [out, out], 3, 1, 1, false)?;
        let (downsample, skip) = if stride != 1 || inp != out {
            let (d, r) = init.conv(input, [inp, out], 1, stride, 1, false)?;
            (Some(d), r)
        } else {
            (None, input)
        };
        let sum = relu_of_sum(a2, skip);
        let (scale, zp) = sum.qparams();
        Ok((BasicBlock { conv1, conv2, downsample, add_relu: QFunctional::new(scale, zp)? }, sum))
    }
}

impl Module for BasicBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = run_named(&self.conv2, &run_named(&self.conv1, x, "conv1")?, "conv2")?;
        let skip = match &self.downsample {
            Some(d) => run_named(d, x, "downsample.0")?,
            None => x.clone(),
        };
        let _scope = crate::profiler::scope("add_relu");
        self.add_relu.add_relu(&y, &skip)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        child_state(&mut out, prefix, "conv1", &self.conv1)?;
        child_state(&mut out, prefix, "conv2", &self.conv2)?;
        if let Some(d) = &self.downsample {
            child_state(&mut out, prefix, "downsample.0", d)?;
        }
        functional_state(&mut out, prefix, "add_relu", &self.add_relu)?;
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        load_child(&mut self.conv1, state, prefix, "conv1")?;
        load_child(&mut self.conv2, state, prefix, "conv2")?;
        if let Some(d) = &mut self.downsample {
            load_child(d, state, prefix, "downsample.0")?;
        }
        self.add_relu = load_functional(state, prefix, "add_relu")?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("QuantizableBasicBlock(downsample={})", self.downsample.is_some())
    }
}

/// `QuantizableBottleneck`: 1x1, 3x3 (with the stride) and 1x1 convs
/// widening by 4, an optional 1x1 downsample, and `skip_add_relu` of the
/// residual.
pub struct Bottleneck {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    downsample: Option<Conv2d>,
    skip_add_relu: QFunctional,
}

impl Bottleneck {
    fn build(
        init: &mut dyn Layers,
        input: ActivationRange,
        [inp, width]: [usize; 2],
        stride: usize,
    ) -> Result<(Bottleneck, ActivationRange)> {
        let out = width * 4;
        let (conv1, a1) = init.conv(input, [inp, width], 1, 1, 1, true)?;
        let (conv2, a2) = init.conv(a1, [width, width], 3, stride, 1, true)?;
        let (conv3, a3) = init.conv(a2, [width, out], 1, 1, 1, false)?;
        let (downsample, skip) = if stride != 1 || inp != out {
            let (d, r) = init.conv(input, [inp, out], 1, stride, 1, false)?;
            (Some(d), r)
        } else {
            (None, input)
        };
        let sum = relu_of_sum(a3, skip);
        let (scale, zp) = sum.qparams();
        Ok((Bottleneck { conv1, conv2, conv3, downsample, skip_add_relu: QFunctional::new(scale, zp)? }, sum))
    }
}

impl Module for Bottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = run_named(&self.conv1, x, "conv1")?;
        let y = run_named(&self.conv3, &run_named(&self.conv2, &y, "conv2")?, "conv3")?;
        let skip = match &self.downsample {
            Some(d) => run_named(d, x, "downsample.0")?,
            None => x.clone(),
        };
        let _scope = crate::profiler::scope("skip_add_relu");
        self.skip_add_relu.add_relu(&y, &skip)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (name, conv) in [("conv1", &self.conv1), ("conv2", &self.conv2), ("conv3", &self.conv3)] {
            child_state(&mut out, prefix, name, conv)?;
        }
        if let Some(d) = &self.downsample {
            child_state(&mut out, prefix, "downsample.0", d)?;
        }
        functional_state(&mut out, prefix, "skip_add_relu", &self.skip_add_relu)?;
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        for (name, conv) in [("conv1", &mut self.conv1), ("conv2", &mut self.conv2), ("conv3", &mut self.conv3)] {
            load_child(conv, state, prefix, name)?;
        }
        if let Some(d) = &mut self.downsample {
            load_child(d, state, prefix, "downsample.0")?;
        }
        self.skip_add_relu = load_functional(state, prefix, "skip_add_relu")?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("QuantizableBottleneck(downsample={})", self.downsample.is_some())
    }
}

/// A residual block of either kind.
type Block = Box<dyn Module + Send + Sync>;

/// torchvision's quantized ResNet: `BasicBlock`s (ResNet-18) or
/// `Bottleneck`s (ResNet-50).
pub struct ResNet {
    head: Classifier,
    conv1: Conv2d,
    maxpool: MaxPool2d,
    layers: Vec<Vec<Block>>,
}

/// ResNet-18 with its layers from `init` (a [`Skeleton`](super::Skeleton) for a
/// state to fill, or [`WeightInit`](super::WeightInit)), input
/// `[N, 3, 224, 224]`, 1000 classes (a state gives its own).
pub fn resnet18(init: &mut dyn Layers) -> Result<ResNet> {
    resnet(init, [2, 2, 2, 2], 1, |init, act, [inp, width], stride| {
        let (b, out) = BasicBlock::build(init, act, [inp, width], stride)?;
        Ok((Box::new(b) as Block, out))
    })
}

/// ResNet-50 with its layers from `init` (a [`Skeleton`](super::Skeleton) for a
/// state to fill, or [`WeightInit`](super::WeightInit)), input
/// `[N, 3, 224, 224]`, 1000 classes (a state gives its own).
pub fn resnet50(init: &mut dyn Layers) -> Result<ResNet> {
    resnet(init, [3, 4, 6, 3], 4, |init, act, [inp, width], stride| {
        let (b, out) = Bottleneck::build(init, act, [inp, width], stride)?;
        Ok((Box::new(b) as Block, out))
    })
}

/// A block constructor: (init, input range, [in channels, width], stride).
type MakeBlock = fn(&mut dyn Layers, ActivationRange, [usize; 2], usize) -> Result<(Block, ActivationRange)>;

/// torchvision's `_resnet`: the stem, four stages of `depths` blocks of
/// widths 64..512 (times `expansion` out), and the classifier.
fn resnet(init: &mut dyn Layers, depths: [usize; 4], expansion: usize, block: MakeBlock) -> Result<ResNet> {
    let input = ActivationRange { std: 1.0, non_negative: false };
    let (qs, qz) = input.qparams();
    let (conv1, stem) = init.conv(input, [3, 64], 7, 2, 1, true)?;
    let mut act = stem.after_max_pool(9);
    let mut layers = Vec::new();
    let mut inp = 64;
    for (i, (width, depth)) in [64, 128, 256, 512].into_iter().zip(depths).enumerate() {
        let mut blocks = Vec::new();
        for b in 0..depth {
            let stride = if i > 0 && b == 0 { 2 } else { 1 };
            let (made, out) = block(init, act, [inp, width], stride)?;
            blocks.push(made);
            (act, inp) = (out, width * expansion);
        }
        layers.push(blocks);
    }
    let (fc, _) = init.linear(act, inp, 1000)?;
    let maxpool =
        MaxPool2d { kernel_size: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1], ceil_mode: false };
    let head = Classifier::new((qs, qz), "fc", fc)?;
    Ok(ResNet { head, conv1, maxpool, layers })
}

impl ResNet {
    /// The named stages, for per-layer profiles: `(name, module)` in order.
    pub fn blocks(&self) -> impl Iterator<Item = (String, &dyn Module)> {
        self.layers.iter().enumerate().flat_map(|(i, l)| {
            l.iter().enumerate().map(move |(b, m)| (format!("layer{}.{b}", i + 1), m.as_ref() as &dyn Module))
        })
    }
}

impl Network for ResNet {
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        // The whole pass on a worker of the pool (see `Network`).
        crate::threads::install_pass(|| {
            let y = run_named(&self.conv1, &self.head.input(x)?, "conv1")?;
            let mut y = run_named(&self.maxpool, &y, "maxpool")?;
            for (name, block) in self.blocks() {
                y = run_named(block, &y, &name)?;
            }
            self.head.logits(&y)
        })
    }
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.head.dequantize(&self.logits(x)?)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        child_state(&mut out, prefix, "conv1", &self.conv1)?;
        for (name, block) in self.blocks() {
            child_state(&mut out, prefix, &name, block)?;
        }
        self.head.state_dict(&mut out, prefix)?;
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        load_child(&mut self.conv1, state, prefix, "conv1")?;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for (b, block) in layer.iter_mut().enumerate() {
                load_child(block.as_mut(), state, prefix, &format!("layer{}.{b}", i + 1))?;
            }
        }
        self.head.load(state, prefix)
    }

    fn describe(&self) -> String {
        let blocks = self.layers.iter().map(Vec::len).sum::<usize>();
        let kind = self.layers.first().and_then(|l| l.first()).map(|b| b.describe()).unwrap_or_default();
        format!("QuantizableResNet(blocks={blocks}, first={kind})")
    }
}
