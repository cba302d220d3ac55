//! torchvision's quantizable CNNs, built from [`crate::nn::quantized`]
//! modules with torchvision's shapes, fusions and state names.
//!
//! Each architecture is described once, over a source of [`Layers`]:
//!
//! - [`from_state`] (and [`from_torch_checkpoint`]) builds it from a state
//!   dict: a [`Skeleton`] without weights, filled by the state, so every
//!   layer's channels, kernel size and the class count are the state's
//!   (a fine-tuned 10-class ResNet-18 loads as it is), nothing random is
//!   made, and a key the network does not use is an error;
//! - [`by_name`] with a [`WeightInit`] gives random weights with realistic
//!   qparams (per-channel qint8 weights from their own ranges, activation
//!   scales that follow the signal through the network), which is what the
//!   `model/...` benchmarks time.
//!
//! Every model converts its input to
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
pub use init::{ActivationRange, ConvShape, Layers, Skeleton, WeightInit};
pub use mobilenet::{mobilenet_v2, InvertedResidual, MobileNetV2};
pub use mobilenet_v3::mobilenet_v3_large;
pub use resnet::{resnet18, resnet50, BasicBlock, Bottleneck, ResNet};
pub use run::{run_checkpoint, ModelRun};
pub use shufflenet::{shufflenet_v2_x1_0, ShuffleBlock};

use crate::nn::quantized::{DeQuantize, Linear, QFunctional, Quantize};
use crate::nn::{Module, Sequential};
use crate::{DType, MemoryFormat, Result, Tensor};
use std::collections::HashMap;

/// The architectures [`by_name`] builds: torchvision's seven quantizable
/// classification networks.
pub const ARCHITECTURES: [&str; 7] =
    ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "shufflenet_v2_x1_0", "googlenet", "inception_v3"];

/// A classification network: `forward` gives float scores (after the
/// dequantize stub), `logits` the quantized logits before it, which is
/// what PyTorch's quantized models compute last.
///
/// The networks here run a whole pass on one worker of qtensor's pool
/// ([`crate::threads::install_pass`]): each op's parallel loops then split
/// by work stealing with the other workers, which stay awake between the
/// loops, and the calling thread does not wait for a hand-off and a
/// wake-up at every op (which made two threads slower than one at batch
/// 1). Do the same around a sequence of ops of your own.
pub trait Network: Module + Send + Sync {
    /// The quantized logits, `[N, classes]`.
    fn logits(&self, x: &Tensor) -> Result<Tensor>;
}

/// A network by its torchvision name, its layers from `init`: random
/// weights from a [`WeightInit`], or none from a [`Skeleton`] (see
/// [`from_state`]).
pub fn by_name(arch: &str, init: &mut dyn Layers) -> Result<Box<dyn Network>> {
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

/// A network by its torchvision name, built from a state dict under
/// torchvision's names (`conv1.weight`, `fc.scale`, ...): every layer takes
/// its shape from its weights, so any class count and width load. Every
/// key must belong to the network: a key it does not use is an error
/// naming it (a checkpoint of another architecture, or of an unconverted
/// model).
pub fn from_state(arch: &str, state: &HashMap<String, Tensor>) -> Result<Box<dyn Network>> {
    let mut net = by_name(arch, &mut Skeleton)?;
    net.load_state_dict(state, "")?;
    let used: std::collections::HashSet<String> = net.state_dict("")?.into_iter().map(|(name, _)| name).collect();
    let mut unused: Vec<&String> = state.keys().filter(|k| !used.contains(*k)).collect();
    if !unused.is_empty() {
        unused.sort();
        let shown: Vec<&str> = unused.iter().take(5).map(|k| k.as_str()).collect();
        return Err(crate::Error::Serialization(format!(
            "{} keys of the state dict are not part of {arch} (first: {}){}",
            unused.len(),
            shown.join(", "),
            if unused.len() > 5 { ", ..." } else { "" }
        )));
    }
    Ok(net)
}

/// [`from_state`] of a PyTorch checkpoint (`torch.save(model.state_dict())`
/// of torchvision's quantized model, read by [`crate::torch::load`]).
pub fn from_torch_checkpoint(arch: &str, path: impl AsRef<std::path::Path>) -> Result<Box<dyn Network>> {
    from_state(arch, &crate::torch::load(path)?.into_tensors()?)
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
        Ok(QuantizedNet { name, quant: Quantize::new(scale, zero_point, DType::QUInt8)?, body })
    }
}

impl Network for QuantizedNet {
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        // The whole pass on a worker of the pool (see `Network`).
        crate::threads::install_pass(|| {
            let q = quantize_input(&self.quant, x)?;
            self.body.forward(&q)
        })
    }
}

impl Module for QuantizedNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let logits = self.logits(x)?;
        let _scope = crate::profiler::scope("dequant");
        DeQuantize.forward(&logits)
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

/// A network's quant stub on its float input, then to channels-last (a
/// 4-d input), as every conv after it keeps its activations: profiled as
/// torchvision's `quant`.
fn quantize_input(quant: &Quantize, x: &Tensor) -> Result<Tensor> {
    let _scope = crate::profiler::scope("quant");
    let q = quant.forward(x)?;
    if q.ndim() == 4 {
        q.contiguous_in(MemoryFormat::ChannelsLast)
    } else {
        Ok(q)
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
    /// torchvision's name of the classifier (`fc`, `classifier.1`): in the
    /// state and in profiles.
    fc_name: &'static str,
    fc: Linear,
    dequant: DeQuantize,
}

impl Classifier {
    /// The head of a network whose input is quantized with `(scale,
    /// zero_point)` and whose classifier is `fc`, named `fc_name`.
    fn new((scale, zero_point): (f64, i64), fc_name: &'static str, fc: Linear) -> Result<Classifier> {
        Ok(Classifier { quant: Quantize::new(scale, zero_point, DType::QUInt8)?, fc_name, fc, dequant: DeQuantize })
    }

    fn input(&self, x: &Tensor) -> Result<Tensor> {
        quantize_input(&self.quant, x)
    }

    /// Global average pool, flatten, `fc`: the quantized logits.
    fn logits(&self, features: &Tensor) -> Result<Tensor> {
        let flat = {
            let _scope = crate::profiler::scope("avgpool");
            let pooled = crate::ops::adaptive_avg_pool2d(features, &[1, 1])?;
            let n = pooled.sizes()[0] as i64;
            crate::ops::reshape(&pooled, &[n, -1])?
        };
        let _scope = crate::profiler::scope(self.fc_name);
        self.fc.forward(&flat)
    }

    /// The dequantize stub.
    fn dequantize(&self, logits: &Tensor) -> Result<Tensor> {
        let _scope = crate::profiler::scope("dequant");
        self.dequant.forward(logits)
    }

    fn state_dict(&self, out: &mut Vec<(String, Tensor)>, prefix: &str) -> Result<()> {
        child_state(out, prefix, "quant", &self.quant)?;
        child_state(out, prefix, self.fc_name, &self.fc)
    }

    fn load(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        load_child(&mut self.quant, state, prefix, "quant")?;
        load_child(&mut self.fc, state, prefix, self.fc_name)
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

/// A module torchvision keeps, and saves, where its network never calls it
/// (MobileNetV3's `skip_add` in blocks without a residual): its state loads
/// and saves, and `forward` passes the input through.
struct SavedOnly<M: Module>(M);

impl<M: Module + Send + Sync> Module for SavedOnly<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        self.0.state_dict(prefix)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        self.0.load_state_dict(state, prefix)
    }

    fn describe(&self) -> String {
        format!("{} (not called)", self.0.describe())
    }
}

/// Runs `module` under `name`: in errors and in profiles.
fn run_named(module: &dyn Module, x: &Tensor, name: &str) -> Result<Tensor> {
    let _scope = crate::profiler::scope(name);
    module.forward(x).map_err(|e| crate::Error::invalid(name.to_string(), e.to_string()))
}
