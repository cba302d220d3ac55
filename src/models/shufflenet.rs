//! ShuffleNetV2 (x1.0) as torchvision's `QuantizableShuffleNetV2` after
//! fusion and conversion: conv+relu fused, each block's two branches
//! joined by a `cat` `FloatFunctional`, then a two-group channel shuffle,
//! and `mean([2, 3])` as the global pool.

use super::init::{ActivationRange, Layers};
use super::{run_named, QuantizedNet};
use crate::nn::quantized::{MaxPool2d, Mean, QFunctional};
use crate::nn::{Module, Sequential};
use crate::{ops, MemoryFormat, Result, Tensor};
use std::collections::HashMap;

/// torchvision's names of a block's children: in its state and in profiles.
const BRANCH1: &str = "branch1";
const BRANCH2: &str = "branch2";
const CAT: &str = "cat";

/// `QuantizableInvertedResidual` of ShuffleNetV2.
///
/// - Stride 1: the input's first half of channels passes through, the
///   second goes through `branch2`; stride 2: both branches see the whole
///   input.
/// - The halves are concatenated by `cat`, then shuffled in two groups.
pub struct ShuffleBlock {
    branch1: Option<Sequential>,
    branch2: Sequential,
    cat: QFunctional,
}

impl ShuffleBlock {
    fn build(
        init: &mut dyn Layers,
        act: ActivationRange,
        [input, output]: [usize; 2],
        stride: usize,
    ) -> Result<(ShuffleBlock, ActivationRange)> {
        let half = output / 2;
        let branch1 = if stride > 1 {
            let (dw, a) = init.conv(act, [input, input], 3, stride, input, false)?;
            let (pw, _) = init.conv(a, [input, half], 1, 1, 1, true)?;
            Some(Sequential::new().push("0", dw).push("2", pw))
        } else {
            None
        };
        let (pw1, a) = init.conv(act, [if stride > 1 { input } else { half }, half], 1, 1, 1, true)?;
        let (dw, a) = init.conv(a, [half, half], 3, stride, half, false)?;
        let (pw2, a) = init.conv(a, [half, half], 1, 1, 1, true)?;
        let branch2 = Sequential::new().push("0", pw1).push("3", dw).push("5", pw2);
        let out = ActivationRange { std: a.std.max(act.std), non_negative: true };
        let (scale, zp) = out.qparams();
        Ok((ShuffleBlock { branch1, branch2, cat: QFunctional::new(scale, zp)? }, out))
    }
}

impl Module for ShuffleBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let halves = match &self.branch1 {
            Some(branch1) => [run_named(branch1, x, BRANCH1)?, run_named(&self.branch2, x, BRANCH2)?],
            None => {
                let c = x.sizes().get(1).copied().unwrap_or(0) as i64;
                let (x1, x2) = (ops::slice(x, 1, Some(0), Some(c / 2), 1)?, ops::slice(x, 1, Some(c / 2), Some(c), 1)?);
                [x1, run_named(&self.branch2, &x2, BRANCH2)?]
            }
        };
        let joined = {
            let _scope = crate::profiler::scope(CAT);
            self.cat.cat(&halves, 1)?
        };
        let _scope = crate::profiler::scope("channel_shuffle");
        // torchvision's `channel_shuffle` (view, transpose, contiguous,
        // view) leaves a row-major tensor; PyTorch's convs then return
        // channels-last ones. Keeping the activation channels-last gives
        // every later layout-dependent op (cat's requantization, mean) the
        // path PyTorch takes.
        ops::channel_shuffle(&joined, 2)?.contiguous_in(MemoryFormat::ChannelsLast)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        if let Some(b) = &self.branch1 {
            out.extend(b.state_dict(&format!("{prefix}{BRANCH1}."))?);
        }
        out.extend(self.branch2.state_dict(&format!("{prefix}{BRANCH2}."))?);
        out.extend(self.cat.state_dict(&format!("{prefix}{CAT}."))?);
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        if let Some(b) = &mut self.branch1 {
            b.load_state_dict(state, &format!("{prefix}{BRANCH1}."))?;
        }
        self.branch2.load_state_dict(state, &format!("{prefix}{BRANCH2}."))?;
        self.cat.load_state_dict(state, &format!("{prefix}{CAT}."))
    }

    fn describe(&self) -> String {
        format!("QuantizableInvertedResidual(stride={})", if self.branch1.is_some() { 2 } else { 1 })
    }
}

/// ShuffleNetV2 x1.0 with its layers from `init` (a [`Skeleton`](super::Skeleton) for a
/// state to fill, or [`WeightInit`](super::WeightInit)), input
/// `[N, 3, 224, 224]`, 1000 classes (a state gives its own).
pub fn shufflenet_v2_x1_0(init: &mut dyn Layers) -> Result<QuantizedNet> {
    let input = ActivationRange { std: 1.0, non_negative: false };
    let (conv1, stem) = init.conv(input, [3, 24], 3, 2, 1, true)?;
    let mut act = stem.after_max_pool(9);
    let mut body = Sequential::new()
        .push("conv1", Sequential::new().push("0", conv1))
        .push("maxpool", MaxPool2d { padding: [1, 1], ..MaxPool2d::new(3, 2) });
    let mut channels = 24;
    for (name, repeats, out) in [("stage2", 4, 116), ("stage3", 8, 232), ("stage4", 4, 464)] {
        let mut stage = Sequential::new();
        for i in 0..repeats {
            let (block, a) = ShuffleBlock::build(init, act, [channels, out], if i == 0 { 2 } else { 1 })?;
            stage = stage.push(&i.to_string(), block);
            (act, channels) = (a, out);
        }
        body = body.push(name, stage);
    }
    let (conv5, act) = init.conv(act, [464, 1024], 1, 1, 1, true)?;
    let (fc, _) = init.linear(act, 1024, 1000)?;
    let body = body
        .push("conv5", Sequential::new().push("0", conv5))
        .push("mean", Mean { dims: vec![2, 3], keepdim: false })
        .push("fc", fc);
    QuantizedNet::new("QuantizableShuffleNetV2", input, body)
}
