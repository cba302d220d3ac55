//! Inception-v3 as torchvision's `QuantizableInception3` after fusion and
//! conversion (no auxiliary classifier, no input transform): every
//! `BasicConv2d` is a fused conv+relu named `conv`, and each block
//! concatenates its branches through `myop` (`myop1`..`myop3` in
//! InceptionE). Built from [`Sequential`] and [`Concat`]: a branch is a
//! chain of layers named as torchvision names them, at the block's level.

use super::init::{ActivationRange, ConvShape, Layers};
use super::QuantizedNet;
use crate::nn::quantized::{AdaptiveAvgPool2d, AvgPool2d, Flatten, MaxPool2d, QFunctional};
use crate::nn::{Concat, Module, Sequential};
use crate::Result;

type Branch = Box<dyn Module + Send + Sync>;

/// One `BasicConv2d` of a branch: name, output channels, kernel, stride,
/// padding.
type ConvSpec<'a> = (&'a str, usize, [usize; 2], usize, [usize; 2]);

/// Builds blocks from a layer source, tracking the activation range of
/// the block input for every branch.
struct Blocks<'a> {
    init: &'a mut dyn Layers,
}

impl Blocks<'_> {
    /// A `BasicConv2d` (`name.conv`): kernel `[kh, kw]`, stride, padding.
    fn conv(
        &mut self,
        act: ActivationRange,
        name: &str,
        io: [usize; 2],
        kernel: [usize; 2],
        stride: usize,
        padding: [usize; 2],
    ) -> Result<(Sequential, ActivationRange)> {
        let shape = ConvShape { kernel, stride, padding, groups: 1 };
        let (conv, a) = self.init.conv_rect(act, io, shape, true)?;
        Ok((Sequential::new().push(&format!("{name}.conv"), conv), a))
    }

    /// Square convs in a chain: `(name, out, kernel, stride, padding)`.
    fn chain(
        &mut self,
        act: ActivationRange,
        input: usize,
        layers: &[ConvSpec],
    ) -> Result<(Sequential, ActivationRange)> {
        let (mut seq, mut a, mut c) = (Sequential::new(), act, input);
        for &(name, out, kernel, stride, padding) in layers {
            let (conv, next) = self.conv(a, name, [c, out], kernel, stride, padding)?;
            seq = seq.push("", conv);
            (a, c) = (next, out);
        }
        Ok((seq, a))
    }

    /// `F.avg_pool2d(x, 3, 1, 1)` then the 1x1 `branch_pool` conv.
    fn pool_branch(&mut self, act: ActivationRange, input: usize, out: usize) -> Result<(Branch, ActivationRange)> {
        let (conv, a) = self.conv(act, "branch_pool", [input, out], [1, 1], 1, [0, 0])?;
        Ok((Box::new(Sequential::new().push("", AvgPool2d::new(3, 1, 1)).push("", conv)), a))
    }

    /// The concatenation of `branches` through the `QFunctional` `name`.
    fn concat(&mut self, branches: Vec<(Branch, ActivationRange)>, name: &str) -> Result<(Concat, ActivationRange)> {
        let std = branches.iter().map(|(_, a)| a.std).fold(0.0, f64::max);
        let out = ActivationRange { std, non_negative: true };
        let (scale, zp) = out.qparams();
        let modules = branches.into_iter().map(|(b, _)| b).collect();
        Ok((Concat::new(modules, name, QFunctional::new(scale, zp)?, 1)?, out))
    }

    fn boxed((s, a): (Sequential, ActivationRange)) -> (Branch, ActivationRange) {
        (Box::new(s), a)
    }

    fn inception_a(&mut self, act: ActivationRange, c: usize, pool: usize) -> Result<(Concat, ActivationRange)> {
        let b1 = Self::boxed(self.chain(act, c, &[("branch1x1", 64, [1, 1], 1, [0, 0])])?);
        let b5 = Self::boxed(self.chain(
            act,
            c,
            &[("branch5x5_1", 48, [1, 1], 1, [0, 0]), ("branch5x5_2", 64, [5, 5], 1, [2, 2])],
        )?);
        let b3 = Self::boxed(self.chain(
            act,
            c,
            &[
                ("branch3x3dbl_1", 64, [1, 1], 1, [0, 0]),
                ("branch3x3dbl_2", 96, [3, 3], 1, [1, 1]),
                ("branch3x3dbl_3", 96, [3, 3], 1, [1, 1]),
            ],
        )?);
        let bp = self.pool_branch(act, c, pool)?;
        self.concat(vec![b1, b5, b3, bp], "myop")
    }

    fn inception_b(&mut self, act: ActivationRange, c: usize) -> Result<(Concat, ActivationRange)> {
        let b3 = Self::boxed(self.chain(act, c, &[("branch3x3", 384, [3, 3], 2, [0, 0])])?);
        let bd = Self::boxed(self.chain(
            act,
            c,
            &[
                ("branch3x3dbl_1", 64, [1, 1], 1, [0, 0]),
                ("branch3x3dbl_2", 96, [3, 3], 1, [1, 1]),
                ("branch3x3dbl_3", 96, [3, 3], 2, [0, 0]),
            ],
        )?);
        let pool: Branch = Box::new(MaxPool2d::new(3, 2));
        self.concat(vec![b3, bd, (pool, act.after_max_pool(9))], "myop")
    }

    fn inception_c(&mut self, act: ActivationRange, c: usize, c7: usize) -> Result<(Concat, ActivationRange)> {
        let b1 = Self::boxed(self.chain(act, c, &[("branch1x1", 192, [1, 1], 1, [0, 0])])?);
        let b7 = Self::boxed(self.chain(
            act,
            c,
            &[
                ("branch7x7_1", c7, [1, 1], 1, [0, 0]),
                ("branch7x7_2", c7, [1, 7], 1, [0, 3]),
                ("branch7x7_3", 192, [7, 1], 1, [3, 0]),
            ],
        )?);
        let bd = Self::boxed(self.chain(
            act,
            c,
            &[
                ("branch7x7dbl_1", c7, [1, 1], 1, [0, 0]),
                ("branch7x7dbl_2", c7, [7, 1], 1, [3, 0]),
                ("branch7x7dbl_3", c7, [1, 7], 1, [0, 3]),
                ("branch7x7dbl_4", c7, [7, 1], 1, [3, 0]),
                ("branch7x7dbl_5", 192, [1, 7], 1, [0, 3]),
            ],
        )?);
        let bp = self.pool_branch(act, c, 192)?;
        self.concat(vec![b1, b7, bd, bp], "myop")
    }

    fn inception_d(&mut self, act: ActivationRange, c: usize) -> Result<(Concat, ActivationRange)> {
        let b3 = Self::boxed(self.chain(
            act,
            c,
            &[("branch3x3_1", 192, [1, 1], 1, [0, 0]), ("branch3x3_2", 320, [3, 3], 2, [0, 0])],
        )?);
        let b7 = Self::boxed(self.chain(
            act,
            c,
            &[
                ("branch7x7x3_1", 192, [1, 1], 1, [0, 0]),
                ("branch7x7x3_2", 192, [1, 7], 1, [0, 3]),
                ("branch7x7x3_3", 192, [7, 1], 1, [3, 0]),
                ("branch7x7x3_4", 192, [3, 3], 2, [0, 0]),
            ],
        )?);
        let pool: Branch = Box::new(MaxPool2d::new(3, 2));
        self.concat(vec![b3, b7, (pool, act.after_max_pool(9))], "myop")
    }

    /// A 1x3 and a 3x1 conv on the same input, concatenated by `name`.
    fn split(&mut self, act: ActivationRange, prefix: &str, name: &str) -> Result<(Branch, ActivationRange)> {
        let a = self.conv(act, &format!("{prefix}a"), [384, 384], [1, 3], 1, [0, 1])?;
        let b = self.conv(act, &format!("{prefix}b"), [384, 384], [3, 1], 1, [1, 0])?;
        let (concat, out) = self.concat(vec![Self::boxed(a), Self::boxed(b)], name)?;
        Ok((Box::new(concat), out))
    }

    fn inception_e(&mut self, act: ActivationRange, c: usize) -> Result<(Concat, ActivationRange)> {
        let b1 = Self::boxed(self.chain(act, c, &[("branch1x1", 320, [1, 1], 1, [0, 0])])?);
        let (head3, a3) = self.chain(act, c, &[("branch3x3_1", 384, [1, 1], 1, [0, 0])])?;
        let (split3, o3) = self.split(a3, "branch3x3_2", "myop1")?;
        let b3: Branch = Box::new(head3.push("", split3));
        let (headd, ad) = self.chain(
            act,
            c,
            &[("branch3x3dbl_1", 448, [1, 1], 1, [0, 0]), ("branch3x3dbl_2", 384, [3, 3], 1, [1, 1])],
        )?;
        let (splitd, od) = self.split(ad, "branch3x3dbl_3", "myop2")?;
        let bd: Branch = Box::new(headd.push("", splitd));
        let bp = self.pool_branch(act, c, 192)?;
        self.concat(vec![b1, (b3, o3), (bd, od), bp], "myop3")
    }
}

/// Inception-v3 with its layers from `init` (a [`Skeleton`](super::Skeleton) for a
/// state to fill, or [`WeightInit`](super::WeightInit)), input
/// `[N, 3, 299, 299]`, 1000 classes (a state gives its own).
pub fn inception_v3(init: &mut dyn Layers) -> Result<QuantizedNet> {
    let input = ActivationRange { std: 1.0, non_negative: false };
    let mut b = Blocks { init };
    let (stem1, a) = b.chain(
        input,
        3,
        &[
            ("Conv2d_1a_3x3", 32, [3, 3], 2, [0, 0]),
            ("Conv2d_2a_3x3", 32, [3, 3], 1, [0, 0]),
            ("Conv2d_2b_3x3", 64, [3, 3], 1, [1, 1]),
        ],
    )?;
    let (stem2, a) = b.chain(
        a.after_max_pool(9),
        64,
        &[("Conv2d_3b_1x1", 80, [1, 1], 1, [0, 0]), ("Conv2d_4a_3x3", 192, [3, 3], 1, [0, 0])],
    )?;
    let mut body = Sequential::new()
        .push("", stem1)
        .push("maxpool1", MaxPool2d::new(3, 2))
        .push("", stem2)
        .push("maxpool2", MaxPool2d::new(3, 2));
    let (m, a) = b.inception_a(a.after_max_pool(9), 192, 32)?;
    body = body.push("Mixed_5b", m);
    let (m, a) = b.inception_a(a, 256, 64)?;
    body = body.push("Mixed_5c", m);
    let (m, a) = b.inception_a(a, 288, 64)?;
    body = body.push("Mixed_5d", m);
    let (m, mut a) = b.inception_b(a, 288)?;
    body = body.push("Mixed_6a", m);
    for (name, c7) in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)] {
        let (m, next) = b.inception_c(a, 768, c7)?;
        body = body.push(name, m);
        a = next;
    }
    let (m, a) = b.inception_d(a, 768)?;
    body = body.push("Mixed_7a", m);
    let (m, a) = b.inception_e(a, 1280)?;
    body = body.push("Mixed_7b", m);
    let (m, a) = b.inception_e(a, 2048)?;
    body = body.push("Mixed_7c", m);
    let (fc, _) = b.init.linear(a, 2048, 1000)?;
    let body = body.push("avgpool", AdaptiveAvgPool2d { output_size: [1, 1] }).push("flatten", Flatten).push("fc", fc);
    QuantizedNet::new("QuantizableInception3", input, body)
}
