//! GoogLeNet as torchvision's `QuantizableGoogLeNet` after fusion and
//! conversion (no auxiliary classifiers, no input transform): every
//! `BasicConv2d` is one fused conv+relu named `conv`, and each Inception
//! block concatenates its four branches with a `cat` `FloatFunctional`.

use super::init::{ActivationRange, Layers};
use super::{child_state, functional_state, load_child, load_functional, run_named, Classifier, Network};
use crate::nn::quantized::{Conv2d, MaxPool2d, QFunctional};
use crate::nn::Module;
use crate::{Result, Tensor};
use std::collections::HashMap;

/// torchvision's `BasicConv2d` after fusion: a conv+relu saved as
/// `name.conv`, and profiled under that name too.
struct BasicConv {
    /// The conv's torchvision name in its parent (`conv1.conv`,
    /// `branch2.0.conv`).
    name: String,
    conv: Conv2d,
}

impl BasicConv {
    fn build(
        init: &mut dyn Layers,
        name: &'static str,
        input: ActivationRange,
        io: [usize; 2],
        kernel: usize,
        stride: usize,
    ) -> Result<(BasicConv, ActivationRange)> {
        let (conv, act) = init.conv(input, io, kernel, stride, 1, true)?;
        Ok((BasicConv { name: format!("{name}.conv"), conv }, act))
    }

    fn run(&self, x: &Tensor) -> Result<Tensor> {
        run_named(&self.conv, x, &self.name)
    }

    fn state(&self, out: &mut Vec<(String, Tensor)>, prefix: &str) -> Result<()> {
        child_state(out, prefix, &self.name, &self.conv)
    }

    fn load(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        load_child(&mut self.conv, state, prefix, &self.name)
    }
}

/// A 3x3 max pool with stride 1 and padding 1 (`branch4.0`), or GoogLeNet's
/// downsampling pools, all with `ceil_mode`.
fn max_pool(kernel: i64, stride: i64, padding: i64) -> MaxPool2d {
    MaxPool2d {
        kernel_size: [kernel, kernel],
        stride: [stride, stride],
        padding: [padding, padding],
        dilation: [1, 1],
        ceil_mode: true,
    }
}

/// `QuantizableInception`: four branches (1x1; 1x1 then 3x3; 1x1 then 3x3;
/// 3x3 max pool then 1x1), concatenated along channels.
pub struct Inception {
    branch1: BasicConv,
    branch2: [BasicConv; 2],
    branch3: [BasicConv; 2],
    pool: MaxPool2d,
    branch4: BasicConv,
    cat: QFunctional,
}

impl Inception {
    /// torchvision's `Inception(in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5,
    /// pool_proj)` (the "5x5" branch uses a 3x3 kernel, as torchvision's).
    fn build(init: &mut dyn Layers, input: ActivationRange, ch: [usize; 7]) -> Result<(Inception, ActivationRange)> {
        let [inp, c1, c3r, c3, c5r, c5, pp] = ch;
        let (branch1, a1) = BasicConv::build(init, "branch1", input, [inp, c1], 1, 1)?;
        let (b2a, a) = BasicConv::build(init, "branch2.0", input, [inp, c3r], 1, 1)?;
        let (b2b, a2) = BasicConv::build(init, "branch2.1", a, [c3r, c3], 3, 1)?;
        let (b3a, a) = BasicConv::build(init, "branch3.0", input, [inp, c5r], 1, 1)?;
        let (b3b, a3) = BasicConv::build(init, "branch3.1", a, [c5r, c5], 3, 1)?;
        let (branch4, a4) = BasicConv::build(init, "branch4.1", input.after_max_pool(9), [inp, pp], 1, 1)?;
        let std = [a1, a2, a3, a4].iter().map(|a| a.std).fold(0.0, f64::max);
        let out = ActivationRange { std, non_negative: true };
        let (scale, zp) = out.qparams();
        let inception = Inception {
            branch1,
            branch2: [b2a, b2b],
            branch3: [b3a, b3b],
            pool: max_pool(3, 1, 1),
            branch4,
            cat: QFunctional::new(scale, zp)?,
        };
        Ok((inception, out))
    }
}

impl Inception {
    /// The six convs, in torchvision's state order.
    fn convs(&self) -> [&BasicConv; 6] {
        let [b2a, b2b] = &self.branch2;
        let [b3a, b3b] = &self.branch3;
        [&self.branch1, b2a, b2b, b3a, b3b, &self.branch4]
    }
}

impl Module for Inception {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b1 = self.branch1.run(x)?;
        let b2 = self.branch2[1].run(&self.branch2[0].run(x)?)?;
        let b3 = self.branch3[1].run(&self.branch3[0].run(x)?)?;
        let pooled = run_named(&self.pool, x, "branch4.0")?;
        let b4 = self.branch4.run(&pooled)?;
        let _scope = crate::profiler::scope("cat");
        self.cat.cat(&[b1, b2, b3, b4], 1)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for c in self.convs() {
            c.state(&mut out, prefix)?;
        }
        functional_state(&mut out, prefix, "cat", &self.cat)?;
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        let ([b2a, b2b], [b3a, b3b]) = (&mut self.branch2, &mut self.branch3);
        for c in [&mut self.branch1, b2a, b2b, b3a, b3b, &mut self.branch4] {
            c.load(state, prefix)?;
        }
        self.cat = load_functional(state, prefix, "cat")?;
        Ok(())
    }

    fn describe(&self) -> String {
        "QuantizableInception".into()
    }
}

/// torchvision's quantized GoogLeNet.
pub struct GoogLeNet {
    head: Classifier,
    stem: [BasicConv; 3],
    /// `maxpool1` .. `maxpool4`.
    pools: [MaxPool2d; 4],
    /// `inception3a` .. `inception5b`, with their names.
    blocks: Vec<(&'static str, Inception)>,
}

/// The Inception blocks: name and `Inception(...)` channels, in order.
const INCEPTIONS: [(&str, [usize; 7]); 9] = [
    ("inception3a", [192, 64, 96, 128, 16, 32, 32]),
    ("inception3b", [256, 128, 128, 192, 32, 96, 64]),
    ("inception4a", [480, 192, 96, 208, 16, 48, 64]),
    ("inception4b", [512, 160, 112, 224, 24, 64, 64]),
    ("inception4c", [512, 128, 128, 256, 24, 64, 64]),
    ("inception4d", [512, 112, 144, 288, 32, 64, 64]),
    ("inception4e", [528, 256, 160, 320, 32, 128, 128]),
    ("inception5a", [832, 256, 160, 320, 32, 128, 128]),
    ("inception5b", [832, 384, 192, 384, 48, 128, 128]),
];

/// GoogLeNet with its layers from `init` (a [`Skeleton`](super::Skeleton) for a
/// state to fill, or [`WeightInit`](super::WeightInit)), input
/// `[N, 3, 224, 224]`, 1000 classes (a state gives its own).
pub fn googlenet(init: &mut dyn Layers) -> Result<GoogLeNet> {
    let input = ActivationRange { std: 1.0, non_negative: false };
    let (qs, qz) = input.qparams();
    let (conv1, a) = BasicConv::build(init, "conv1", input, [3, 64], 7, 2)?;
    let (conv2, a) = BasicConv::build(init, "conv2", a.after_max_pool(9), [64, 64], 1, 1)?;
    let (conv3, a) = BasicConv::build(init, "conv3", a, [64, 192], 3, 1)?;
    let mut act = a.after_max_pool(9);
    let mut blocks = Vec::new();
    for (name, ch) in INCEPTIONS {
        let (block, out) = Inception::build(init, act, ch)?;
        blocks.push((name, block));
        // The pools that `logits` runs after these blocks: maxpool3 (3x3)
        // and maxpool4 (2x2).
        act = match name {
            "inception3b" => out.after_max_pool(9),
            "inception4e" => out.after_max_pool(4),
            _ => out,
        };
    }
    let (fc, _) = init.linear(act, 1024, 1000)?;
    let head = Classifier::new((qs, qz), "fc", fc)?;
    let pools = [max_pool(3, 2, 0), max_pool(3, 2, 0), max_pool(3, 2, 0), max_pool(2, 2, 0)];
    Ok(GoogLeNet { head, stem: [conv1, conv2, conv3], pools, blocks })
}

impl Network for GoogLeNet {
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        // The whole pass on a worker of the pool (see `Network`).
        crate::threads::install_pass(|| {
            let y = self.stem[0].run(&self.head.input(x)?)?;
            let y = run_named(&self.pools[0], &y, "maxpool1")?;
            let y = self.stem[1].run(&y)?;
            let y = self.stem[2].run(&y)?;
            let mut y = run_named(&self.pools[1], &y, "maxpool2")?;
            for (name, block) in &self.blocks {
                y = run_named(block, &y, name)?;
                // maxpool3 after inception3b, maxpool4 after inception4e.
                match *name {
                    "inception3b" => y = run_named(&self.pools[2], &y, "maxpool3")?,
                    "inception4e" => y = run_named(&self.pools[3], &y, "maxpool4")?,
                    _ => {}
                }
            }
            self.head.logits(&y)
        })
    }
}

impl Module for GoogLeNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.head.dequantize(&self.logits(x)?)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for c in &self.stem {
            c.state(&mut out, prefix)?;
        }
        for (name, block) in &self.blocks {
            child_state(&mut out, prefix, name, block)?;
        }
        self.head.state_dict(&mut out, prefix)?;
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        for c in &mut self.stem {
            c.load(state, prefix)?;
        }
        for (name, block) in &mut self.blocks {
            load_child(block, state, prefix, name)?;
        }
        self.head.load(state, prefix)
    }

    fn describe(&self) -> String {
        "QuantizableGoogLeNet".into()
    }
}
