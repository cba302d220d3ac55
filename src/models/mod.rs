//! torchvision's quantizable CNNs, built from [`crate::nn::quantized`]
//! modules with torchvision's shapes, fusions and state names.
//!
//! [`resnet18`], [`resnet50`] and [`mobilenet_v2`] take a [`WeightInit`]: random weights
//! with realistic qparams (per-channel qint8 weights from their own ranges,
//! activation scales that follow the signal through the network), which is
//! what the `model/...` benchmarks time. Every model converts its input to
//! channels-last once, after quantizing it, and keeps every activation
//! channels-last from there, as PyTorch's fbgemm path does.

mod googlenet;
mod inception_v3;
mod init;
mod mobilenet;
mod mobilenet_v3;
mod resnet;
mod run;
mod shufflenet;

pub use googlenet::{googlenet, GoogLeNet, Inception};
pub use inception_v3::inception_v3;
pub use init::{ActivationRange, ConvShape, WeightInit};
pub use mobilenet::{mobilenet_v2, InvertedResidual, MobileNetV2};
pub use mobilenet_v3::mobilenet_v3_large;
pub use resnet::{resnet18, resnet50, BasicBlock, Bottleneck, ResNet};
pub use run::{run_checkpoint, ModelRun};
pub use shufflenet::{shufflenet_v2_x1_0, ShuffleBlock};

use crate::nn::quantized::{Conv2d, DeQuantize, Linear, QFunctional, Quantize};
use crate::nn::{Module, Sequential};
use crate::{MemoryFormat, Result, Tensor};
use std::collections::HashMap;

/// The architectures [`by_name`] builds: torchvision's seven quantizable
/// classification networks.
pub const ARCHITECTURES: [&str; 7] =
    ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "shufflenet_v2_x1_0", "googlenet", "inception_v3"];

/// A classification network: `forward` gives float scores (after the
/// dequantize stub), `logits` the quantized logits before it, which is
/// what PyTorch's quantized models compute last.
pub trait Network: Module + Send + Sync {
    /// The quantized logits, `[N, classes]`.
    fn logits(&self, x: &Tensor) -> Result<Tensor>;
}

/// A network by its torchvision name, with random weights from `init`
/// (load trained ones with [`crate::nn::load_torch`] or [`crate::nn::load`]).
pub fn by_name(arch: &str, init: &mut WeightInit) -> Result<Box<dyn Network>> {
    match arch {
        "resnet18" => Ok(Box::new(resnet18(init)?)),
        "resnet50" => Ok(Box::new(resnet50(init)?)),
        "mobilenet_v2" => Ok(Box::new(mobilenet_v2(init)?)),
        "googlenet" => Ok(Box::new(googlenet(init)?)),
        "mobilenet_v3_large" => Ok(Box::new(mobilenet_v3_large(init)?)),
        "shufflenet_v2_x1_0" => Ok(Box::new(shufflenet_v2_x1_0(init)?)),
        "inception_v3" => Ok(Box::new(inception_v3(init)?)),
        _ => Err(crate::Error::invalid(
            "models::by_name",
            format!("unknown architecture `{arch}`; expected one of {}", ARCHITECTURES.join(", ")),
        )),
    }
}

/// A network written as one chain of modules: the quantize stub (saved as
/// `quant`), a `body` that ends with the classifier and gives the
/// quantized logits, and the dequantize stub. The input goes channels-last
/// after quantizing, as in every model here.
pub struct QuantizedNet {
    name: &'static str,
    quant: Quantize,
    body: Sequential,
}

impl QuantizedNet {
    /// A network from its stub's qparams and its body.
    pub fn new(name: &'static str, input: ActivationRange, body: Sequential) -> Result<QuantizedNet> {
        let (scale, zero_point) = input.qparams();
        Ok(QuantizedNet { name, quant: Quantize::new(scale, zero_point, crate::DType::QUInt8)?, body })
    }
}

impl Network for QuantizedNet {
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let q = self.quant.forward(x)?;
        let q = if q.ndim() == 4 { q.contiguous_in(MemoryFormat::ChannelsLast)? } else { q };
        self.body.forward(&q)
    }
}

impl Module for QuantizedNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        DeQuantize.forward(&self.logits(x)?)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        child_state(&mut out, prefix, "quant", &self.quant)?;
        out.extend(self.body.state_dict(prefix)?);
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        load_child(&mut self.quant, state, prefix, "quant")?;
        self.body.load_state_dict(state, prefix)
    }

    fn describe(&self) -> String {
        format!("{}({})", self.name, self.body.describe())
    }
}

/// A module's child, saved and loaded under `prefix` + `name` + `.`.
fn child_state(out: &mut Vec<(String, Tensor)>, prefix: &str, name: &str, m: &dyn Module) -> Result<()> {
    out.extend(m.state_dict(&format!("{prefix}{name}."))?);
    Ok(())
}

fn load_child(m: &mut dyn Module, state: &HashMap<String, Tensor>, prefix: &str, name: &str) -> Result<()> {
    m.load_state_dict(state, &format!("{prefix}{name}."))
}

/// The part every model shares: quantize the float input with fixed
/// qparams, to channels-last, run `body`, classify with `fc`, dequantize.
struct Classifier {
    quant: Quantize,
    fc: Linear,
    dequant: DeQuantize,
}

impl Classifier {
    fn input(&self, x: &Tensor) -> Result<Tensor> {
        let _scope = crate::profiler::scope("quant");
        let q = self.quant.forward(x)?;
        if q.ndim() == 4 {
            q.contiguous_in(MemoryFormat::ChannelsLast)
        } else {
            Ok(q)
        }
    }

    /// Global average pool, flatten, `fc`: the quantized logits.
    fn logits(&self, features: &Tensor) -> Result<Tensor> {
        let _scope = crate::profiler::scope("head");
        let pooled = crate::ops::adaptive_avg_pool2d(features, &[1, 1])?;
        let n = pooled.sizes()[0] as i64;
        let flat = crate::ops::reshape(&pooled, &[n, -1])?;
        self.fc.forward(&flat)
    }

    /// The dequantize stub.
    fn dequantize(&self, logits: &Tensor) -> Result<Tensor> {
        self.dequant.forward(logits)
    }

    fn state_dict(&self, out: &mut Vec<(String, Tensor)>, prefix: &str, fc_name: &str) -> Result<()> {
        child_state(out, prefix, "quant", &self.quant)?;
        child_state(out, prefix, fc_name, &self.fc)
    }

    fn load(&mut self, state: &HashMap<String, Tensor>, prefix: &str, fc_name: &str) -> Result<()> {
        load_child(&mut self.quant, state, prefix, "quant")?;
        load_child(&mut self.fc, state, prefix, fc_name)
    }
}

/// A `QFunctional`'s output qparams, saved as `prefix` + `name` + `.scale`
/// and `.zero_point`, as torchvision's `FloatFunctional` converts to.
fn functional_state(out: &mut Vec<(String, Tensor)>, prefix: &str, name: &str, f: &QFunctional) -> Result<()> {
    child_state(out, prefix, name, f)
}

/// Reads what [`functional_state`] saved.
fn load_functional(state: &HashMap<String, Tensor>, prefix: &str, name: &str) -> Result<QFunctional> {
    let mut f = QFunctional::new(1.0, 0)?;
    load_child(&mut f, state, prefix, name)?;
    Ok(f)
}

/// Runs `conv` under its name: in errors and in profiles.
fn run_conv(conv: &Conv2d, x: &Tensor, name: &str) -> Result<Tensor> {
    let _scope = crate::profiler::scope(name);
    conv.forward(x).map_err(|e| crate::Error::invalid(name.to_string(), e.to_string()))
}

/// Runs `module` under `name`: in errors and in profiles.
fn run_named(module: &dyn Module, x: &Tensor, name: &str) -> Result<Tensor> {
    let _scope = crate::profiler::scope(name);
    module.forward(x).map_err(|e| crate::Error::invalid(name.to_string(), e.to_string()))
}
