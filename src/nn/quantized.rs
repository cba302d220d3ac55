//! Quantized modules, after `torch.nn.quantized`. Each `forward` calls its
//! operator through the dispatcher; `Linear` and `Conv2d` pack their weight
//! once at construction and every call reuses it.

pub use super::layers::{
    AvgPool2d, BatchNorm2d, ChannelShuffle, Hardsigmoid, Hardswish, Mean, ReLU6, Sigmoid, Upsample,
};
use super::state::{qparams_state, read_qparams, scalar_f64, scalar_i64, state_tensor};
use super::Module;
use crate::kernels::{PackedConv2d, PackedLinear};
use crate::{ops, quantize, DType, Error, Quantizer, Result, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// What every weighted quantized module saves: its weight, optional bias
/// and output qparams.
struct WeightState {
    weight: Tensor,
    bias: Option<Tensor>,
    scale: f64,
    zero_point: i64,
}

impl WeightState {
    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut v = vec![(format!("{prefix}weight"), self.weight.clone())];
        if let Some(b) = &self.bias {
            v.push((format!("{prefix}bias"), b.clone()));
        }
        v.push((format!("{prefix}scale"), scalar_f64(self.scale)?));
        v.push((format!("{prefix}zero_point"), scalar_i64(self.zero_point)?));
        Ok(v)
    }

    /// A weighted module's entries under `prefix`: the weight, the bias
    /// where the state has one, and the output qparams. A skeleton layer
    /// (`current` is `None`) takes the weight's shape; a layer with weights
    /// keeps its own, as PyTorch's `load_state_dict` does, and a state of
    /// another shape is an error.
    fn read(
        current: Option<&WeightState>,
        state: &HashMap<String, Tensor>,
        prefix: &str,
    ) -> Result<(Tensor, Option<Tensor>, f64, i64)> {
        let (scale, zero_point) = read_qparams(state, prefix)?;
        let weight = state_tensor(state, prefix, "weight")?;
        let bias = state.get(&format!("{prefix}bias")).cloned();
        if let Some(current) = current {
            same_shape(&current.weight, &weight, &format!("{prefix}weight"))?;
            match (&current.bias, &bias) {
                (Some(c), Some(b)) => same_shape(c, b, &format!("{prefix}bias"))?,
                (None, None) => {}
                (Some(_), None) => {
                    return Err(Error::Serialization(format!("missing `{prefix}bias` in the state dict")))
                }
                (None, Some(_)) => {
                    return Err(Error::Serialization(format!("`{prefix}bias` is in the file but the module has none")))
                }
            }
        }
        Ok((weight, bias, scale, zero_point))
    }
}

/// Checks that a loaded tensor has the dtype and shape of the module's own.
fn same_shape(current: &Tensor, loaded: &Tensor, what: &str) -> Result<()> {
    if loaded.dtype() != current.dtype() || loaded.sizes() != current.sizes() {
        return Err(Error::Serialization(format!(
            "`{what}` is {} in the file but the module has {}",
            loaded.describe(),
            current.describe()
        )));
    }
    Ok(())
}

/// The error for a module built without weights (a skeleton that
/// [`Module::load_state_dict`] has not filled yet).
fn unloaded(module: &str) -> Error {
    Error::invalid(module, "the layer has no weights yet: load a state dict into it first")
}

fn check_out_qparams(op: &str, scale: f64, zero_point: i64) -> Result<()> {
    crate::quantizer_checks::check_qparams(op, DType::QUInt8, scale, zero_point)
}

/// `torch.nn.quantized.Linear`: quint8 in, quint8 out with output qparams.
pub struct Linear {
    /// `None` until a state is loaded into a skeleton layer.
    w: Option<WeightState>,
    relu: bool,
}

impl Linear {
    /// From a qint8 weight `[out, in]` (per-tensor or per-channel on axis 0),
    /// an optional f32 bias `[out]`, and the output qparams.
    pub fn from_quantized(weight: &Tensor, bias: Option<&Tensor>, scale: f64, zero_point: i64) -> Result<Linear> {
        check_out_qparams("Linear", scale, zero_point)?;
        crate::kernels::prepack_linear(weight)?;
        let packed = PackedLinear::of(weight)?;
        if let Some(b) = bias {
            if b.dtype() != DType::Float32 || b.sizes() != [packed.n] {
                return Err(Error::shape(
                    "Linear",
                    format!("the bias must be float32 [{}], got {}", packed.n, b.describe()),
                ));
            }
        }
        Ok(Linear {
            w: Some(WeightState { weight: weight.clone(), bias: bias.cloned(), scale, zero_point }),
            relu: false,
        })
    }

    /// A layer with no weights yet, whose shape (any number of inputs and
    /// outputs) comes from the state loaded into it.
    pub fn unloaded() -> Linear {
        Linear { w: None, relu: false }
    }

    fn state(&self) -> Result<&WeightState> {
        self.w.as_ref().ok_or_else(|| unloaded("Linear"))
    }

    /// From a float weight quantized with `weight_quantizer` (qint8).
    pub fn from_float(
        weight: &Tensor,
        bias: Option<&Tensor>,
        weight_quantizer: &Arc<Quantizer>,
        scale: f64,
        zero_point: i64,
    ) -> Result<Linear> {
        Linear::from_quantized(&quantize(weight, weight_quantizer)?, bias, scale, zero_point)
    }

    /// The fused `LinearReLU` variant.
    pub fn with_relu(mut self) -> Linear {
        self.relu = true;
        self
    }

    /// The quantized weight (`None` before a state is loaded).
    pub fn weight(&self) -> Option<&Tensor> {
        self.w.as_ref().map(|w| &w.weight)
    }

    /// The reference kernel's packed weight (cached on the weight tensor,
    /// beside the GEMM kernels' own packed form, both made at construction).
    pub fn packed(&self) -> Result<Arc<PackedLinear>> {
        PackedLinear::of(&self.state()?.weight)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.state()?;
        if self.relu {
            ops::quantized::linear_relu(x, &w.weight, w.bias.as_ref(), w.scale, w.zero_point)
        } else {
            ops::quantized::linear(x, &w.weight, w.bias.as_ref(), w.scale, w.zero_point)
        }
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        self.state()?.state_dict(prefix)
    }

    /// Takes the weight, bias and qparams under `prefix`; a skeleton layer
    /// ([`Linear::unloaded`]) with the shape the state gives them (any
    /// class count). The layer is checked and packed before anything is
    /// replaced.
    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        let (weight, bias, scale, zero_point) = WeightState::read(self.w.as_ref(), state, prefix)?;
        let loaded = Linear::from_quantized(&weight, bias.as_ref(), scale, zero_point)
            .map_err(|e| Error::Serialization(format!("`{prefix}weight`: {e}")))?;
        self.w = loaded.w;
        Ok(())
    }

    fn describe(&self) -> String {
        let Some(w) = &self.w else {
            return format!("Quantized{}(unloaded)", if self.relu { "LinearReLU" } else { "Linear" });
        };
        let s = w.weight.sizes();
        format!(
            "Quantized{}(in_features={}, out_features={}, scale={}, zero_point={}, qscheme={})",
            if self.relu { "LinearReLU" } else { "Linear" },
            s[1],
            s[0],
            crate::pyfmt::py_float_repr(w.scale),
            w.zero_point,
            w.weight.qscheme().map(|q| q.name()).unwrap_or("?")
        )
    }
}

/// `torch.nn.quantized.Conv2d`: NCHW quint8 in, quint8 out.
pub struct Conv2d {
    /// `None` until a state is loaded into a skeleton layer.
    w: Option<WeightState>,
    stride: [i64; 2],
    padding: [i64; 2],
    dilation: [i64; 2],
    groups: ConvGroups,
    relu: bool,
}

/// How a conv groups its channels: a state's weight gives the channel
/// counts, and with them a depthwise conv's group count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvGroups {
    /// A fixed number of groups (1 for a dense conv).
    Fixed(i64),
    /// One group per channel: as many groups as the weight has outputs.
    Depthwise,
}

impl Conv2d {
    /// From a qint8 weight `[out, in/groups, kh, kw]`, an optional f32 bias,
    /// the geometry, and the output qparams.
    #[allow(clippy::too_many_arguments)]
    pub fn from_quantized(
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: [i64; 2],
        padding: [i64; 2],
        dilation: [i64; 2],
        groups: i64,
        scale: f64,
        zero_point: i64,
    ) -> Result<Conv2d> {
        check_out_qparams("Conv2d", scale, zero_point)?;
        crate::kernels::ConvParams::new("Conv2d", &stride, &padding, &dilation, groups)?;
        crate::kernels::prepack_conv2d(weight, groups)?;
        let packed = PackedConv2d::of(weight)?;
        if packed.out_channels % groups as usize != 0 {
            return Err(Error::shape(
                "Conv2d",
                format!("groups {groups} must divide the {} output channels", packed.out_channels),
            ));
        }
        if let Some(b) = bias {
            if b.dtype() != DType::Float32 || b.sizes() != [packed.out_channels] {
                return Err(Error::shape(
                    "Conv2d",
                    format!("the bias must be float32 [{}], got {}", packed.out_channels, b.describe()),
                ));
            }
        }
        Ok(Conv2d {
            w: Some(WeightState { weight: weight.clone(), bias: bias.cloned(), scale, zero_point }),
            stride,
            padding,
            dilation,
            groups: ConvGroups::Fixed(groups),
            relu: false,
        })
    }

    /// A conv of this geometry with no weights yet: its channels and kernel
    /// size come from the state loaded into it.
    pub fn unloaded(stride: [i64; 2], padding: [i64; 2], dilation: [i64; 2], groups: ConvGroups) -> Conv2d {
        Conv2d { w: None, stride, padding, dilation, groups, relu: false }
    }

    fn state(&self) -> Result<&WeightState> {
        self.w.as_ref().ok_or_else(|| unloaded("Conv2d"))
    }

    /// The group count for `weight`: fixed, or one per output channel.
    fn groups_for(&self, weight: &Tensor) -> Result<i64> {
        match self.groups {
            ConvGroups::Fixed(g) => Ok(g),
            ConvGroups::Depthwise if weight.ndim() == 4 && weight.sizes()[1] == 1 => Ok(weight.sizes()[0] as i64),
            ConvGroups::Depthwise => Err(Error::shape(
                "Conv2d",
                format!("a depthwise conv's weight is [C, 1, kh, kw], got shape {:?}", weight.sizes()),
            )),
        }
    }

    /// From a float weight quantized with `weight_quantizer` (qint8).
    #[allow(clippy::too_many_arguments)]
    pub fn from_float(
        weight: &Tensor,
        bias: Option<&Tensor>,
        weight_quantizer: &Arc<Quantizer>,
        stride: [i64; 2],
        padding: [i64; 2],
        dilation: [i64; 2],
        groups: i64,
        scale: f64,
        zero_point: i64,
    ) -> Result<Conv2d> {
        let w = quantize(weight, weight_quantizer)?;
        Conv2d::from_quantized(&w, bias, stride, padding, dilation, groups, scale, zero_point)
    }

    /// The fused `ConvReLU2d` variant.
    pub fn with_relu(mut self) -> Conv2d {
        self.relu = true;
        self
    }

    /// The quantized weight (`None` before a state is loaded).
    pub fn weight(&self) -> Option<&Tensor> {
        self.w.as_ref().map(|w| &w.weight)
    }

    /// The reference kernel's packed weight (cached on the weight tensor,
    /// beside the GEMM kernels' own packed form, both made at construction).
    pub fn packed(&self) -> Result<Arc<PackedConv2d>> {
        PackedConv2d::of(&self.state()?.weight)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let f = if self.relu { ops::quantized::conv2d_relu } else { ops::quantized::conv2d };
        let w = self.state()?;
        let groups = self.groups_for(&w.weight)?;
        f(x, &w.weight, w.bias.as_ref(), &self.stride, &self.padding, &self.dilation, groups, w.scale, w.zero_point)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        self.state()?.state_dict(prefix)
    }

    /// Takes the weight, bias and qparams under `prefix`; a skeleton layer
    /// ([`Conv2d::unloaded`]) with the shape the state gives them (any
    /// width). The layer is checked and packed before anything is replaced.
    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        let (weight, bias, scale, zero_point) = WeightState::read(self.w.as_ref(), state, prefix)?;
        let context = |e: Error| Error::Serialization(format!("`{prefix}weight`: {e}"));
        let groups = self.groups_for(&weight).map_err(context)?;
        let loaded = Conv2d::from_quantized(
            &weight,
            bias.as_ref(),
            self.stride,
            self.padding,
            self.dilation,
            groups,
            scale,
            zero_point,
        )
        .map_err(context)?;
        self.w = loaded.w;
        Ok(())
    }

    fn describe(&self) -> String {
        let kind = if self.relu { "ConvReLU2d" } else { "Conv2d" };
        let Some(w) = &self.w else {
            return format!("Quantized{kind}(unloaded, stride=({}, {}))", self.stride[0], self.stride[1]);
        };
        let groups = self.groups_for(&w.weight).unwrap_or(1);
        let s = w.weight.sizes();
        format!(
            "Quantized{}({}, {}, kernel_size=({}, {}), stride=({}, {}), padding=({}, {}), dilation=({}, {}), groups={}, scale={}, zero_point={})",
            kind,
            s[1] * groups as usize,
            s[0],
            s[2],
            s[3],
            self.stride[0],
            self.stride[1],
            self.padding[0],
            self.padding[1],
            self.dilation[0],
            self.dilation[1],
            groups,
            crate::pyfmt::py_float_repr(w.scale),
            w.zero_point
        )
    }
}

/// `ReLU` on quantized tensors (same qparams out).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReLU;

impl Module for ReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::relu(x)
    }

    fn describe(&self) -> String {
        "ReLU()".into()
    }
}

/// `MaxPool2d`.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d {
    /// Window size.
    pub kernel_size: [i64; 2],
    /// Step between windows.
    pub stride: [i64; 2],
    /// Implicit padding, ignored by the max.
    pub padding: [i64; 2],
    /// Spacing inside a window.
    pub dilation: [i64; 2],
    /// Round the output size up.
    pub ceil_mode: bool,
}

impl MaxPool2d {
    /// A `kernel x kernel` pool with the given stride, no padding.
    pub fn new(kernel: i64, stride: i64) -> MaxPool2d {
        MaxPool2d { kernel_size: [kernel; 2], stride: [stride; 2], padding: [0; 2], dilation: [1; 2], ceil_mode: false }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::max_pool2d(x, &self.kernel_size, &self.stride, &self.padding, &self.dilation, self.ceil_mode)
    }

    fn describe(&self) -> String {
        format!(
            "MaxPool2d(kernel_size={:?}, stride={:?}, padding={:?}, dilation={:?}, ceil_mode={})",
            self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode
        )
    }
}

/// `AdaptiveAvgPool2d`.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveAvgPool2d {
    /// Output height and width.
    pub output_size: [i64; 2],
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::adaptive_avg_pool2d(x, &self.output_size)
    }

    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d(output_size={:?})", self.output_size)
    }
}

/// `Flatten(start_dim=1)`: `[N, ...]` to `[N, prod(...)]`, a view.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.ndim() == 0 {
            return Err(Error::shape("Flatten", "cannot flatten a 0-d tensor from dimension 1"));
        }
        if x.ndim() == 1 {
            return Ok(x.clone());
        }
        ops::flatten(x, 1, -1)
    }

    fn describe(&self) -> String {
        "Flatten(start_dim=1, end_dim=-1)".into()
    }
}

/// `Quantize` (QuantStub): float in, quantized out with fixed qparams.
#[derive(Debug, Clone, Copy)]
pub struct Quantize {
    scale: f64,
    zero_point: i64,
    dtype: DType,
}

impl Quantize {
    /// A quantizing layer; the qparams are checked now.
    pub fn new(scale: f64, zero_point: i64, dtype: DType) -> Result<Quantize> {
        Quantizer::per_tensor(scale, zero_point, dtype)?;
        Ok(Quantize { scale, zero_point, dtype })
    }
}

impl Module for Quantize {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::quantize_per_tensor(x, self.scale, self.zero_point, self.dtype)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        qparams_state(prefix, self.scale, self.zero_point)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        let (scale, zero_point) = read_qparams(state, prefix)?;
        *self = Quantize::new(scale, zero_point, self.dtype)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "Quantize(scale=tensor([{}]), zero_point=tensor([{}]), dtype={})",
            crate::pyfmt::py_float_repr(self.scale),
            self.zero_point,
            self.dtype
        )
    }
}

/// `DeQuantize` (DeQuantStub): quantized in, float32 out.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeQuantize;

impl Module for DeQuantize {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::dequantize(x)
    }

    fn describe(&self) -> String {
        "DeQuantize()".into()
    }
}

/// `QFunctional` (the quantized `FloatFunctional`): add, add_relu, mul and
/// cat into fixed output qparams.
#[derive(Debug, Clone, Copy)]
pub struct QFunctional {
    /// Output scale.
    pub scale: f64,
    /// Output zero point.
    pub zero_point: i64,
}

impl QFunctional {
    /// Output qparams for every op of this functional.
    pub fn new(scale: f64, zero_point: i64) -> Result<QFunctional> {
        if !scale.is_finite() || scale <= 0.0 {
            return Err(Error::qparams("QFunctional", format!("scale must be finite and > 0, got {scale}")));
        }
        Ok(QFunctional { scale, zero_point })
    }

    /// `a + b`, requantized.
    pub fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        ops::quantized::add(a, b, self.scale, self.zero_point)
    }

    /// `relu(a + b)`, requantized.
    pub fn add_relu(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        ops::quantized::add_relu(a, b, self.scale, self.zero_point)
    }

    /// `a * b`, requantized.
    pub fn mul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        ops::quantized::mul(a, b, self.scale, self.zero_point)
    }

    /// Concatenation along `dim`, requantized where needed.
    pub fn cat(&self, xs: &[Tensor], dim: i64) -> Result<Tensor> {
        ops::quantized::cat(xs, dim, Some(self.scale), Some(self.zero_point))
    }
}

/// A `QFunctional`'s state is its output `scale` and `zero_point`, as
/// PyTorch's converted `FloatFunctional` saves them. Like PyTorch's, it
/// has no single-input forward: call [`QFunctional::add`], `mul` or `cat`,
/// or build a [`Residual`](super::Residual) or [`Concat`](super::Concat).
impl Module for QFunctional {
    fn forward(&self, _x: &Tensor) -> Result<Tensor> {
        Err(Error::invalid(
            "QFunctional",
            "has no single-input forward (as PyTorch's FloatFunctional); call add, add_relu, mul or cat, \
             or build an nn::Residual or nn::Concat",
        ))
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        qparams_state(prefix, self.scale, self.zero_point)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        let (scale, zero_point) = read_qparams(state, prefix)?;
        *self = QFunctional::new(scale, zero_point)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("QFunctional(scale={}, zero_point={})", crate::pyfmt::py_float_repr(self.scale), self.zero_point)
    }
}
