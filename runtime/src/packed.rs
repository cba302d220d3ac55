//! The packed-weight objects of PyTorch's quantized ops, as custom-class
//! values ([`ScriptObject`]): what
//! `quantized::conv2d.new` and `quantized::linear.packed` take where the
//! plain ops take loose tensors.
//!
//! Each keeps its weight as a quantized tensor; the kernels' packed forms
//! are cached on that tensor the first time a kernel (or
//! `qtensor::kernels::prepack_*`) packs it, so a loaded model packs each
//! weight once.

use crate::error::{Error, Result};
use crate::schema::ScriptClass;
use crate::tensor::Tensor;
use crate::value::{ScriptClassData, ScriptObject, Value};

/// `Conv2dPackedParamsBase`: a 2-d convolution's weight, bias and
/// geometry, as PyTorch's `conv2d_prepack` made them.
#[derive(Debug, Clone)]
pub struct Conv2dPackedParams {
    /// qint8 `[out, in / groups, kh, kw]` (`[in, out / groups, kh, kw]`
    /// when transposed), per tensor or per channel on axis 0.
    pub weight: Tensor,
    /// float32 `[out]`, or none.
    pub bias: Option<Tensor>,
    /// Stride `[h, w]`.
    pub stride: [i64; 2],
    /// Zero padding `[h, w]`.
    pub padding: [i64; 2],
    /// Dilation `[h, w]`.
    pub dilation: [i64; 2],
    /// Extra output size of a transposed convolution `[h, w]`.
    pub output_padding: [i64; 2],
    /// Channel groups.
    pub groups: i64,
    /// True for a transposed convolution.
    pub transposed: bool,
}

impl ScriptClassData for Conv2dPackedParams {
    const CLASS: ScriptClass = ScriptClass::Conv2dPackedParams;
}

impl Conv2dPackedParams {
    /// Checks the parts and boxes them as an object.
    pub fn into_value(self) -> Result<Value> {
        let bad = |m: String| Err(Error::invalid("Conv2dPackedParamsBase", m));
        if self.weight.dim() != 4 || !self.weight.dtype().is_quantized() {
            return bad(format!("the weight is {}, not a 4-d quantized tensor", self.weight.describe()));
        }
        if self.groups < 1 {
            return bad(format!("groups {} is not positive", self.groups));
        }
        if self.stride.iter().chain(&self.dilation).any(|&v| v < 1)
            || self.padding.iter().chain(&self.output_padding).any(|&v| v < 0)
        {
            return bad(format!(
                "stride {:?}, padding {:?}, dilation {:?}, output padding {:?}",
                self.stride, self.padding, self.dilation, self.output_padding
            ));
        }
        Ok(Value::Object(ScriptObject::new(ScriptClass::Conv2dPackedParams, self)))
    }
}

/// `LinearPackedParamsBase`: a linear layer's weight and bias.
#[derive(Debug, Clone)]
pub struct LinearPackedParams {
    /// qint8 `[out, in]` per tensor or per channel on axis 0, or float32
    /// (an fp16 dynamic weight, kept as float).
    pub weight: Tensor,
    /// float32 `[out]`, or none.
    pub bias: Option<Tensor>,
}

impl ScriptClassData for LinearPackedParams {
    const CLASS: ScriptClass = ScriptClass::LinearPackedParams;
}

impl LinearPackedParams {
    /// Checks the parts and boxes them as an object.
    pub fn into_value(self) -> Result<Value> {
        if self.weight.dim() != 2 {
            return Err(Error::invalid(
                "LinearPackedParamsBase",
                format!("the weight is {}, not a 2-d tensor", self.weight.describe()),
            ));
        }
        Ok(Value::Object(ScriptObject::new(ScriptClass::LinearPackedParams, self)))
    }
}

impl Conv2dPackedParams {
    /// The parts the plain conv kernels take, for `op`, and the input they
    /// take: `x` in channels-last layout. PyTorch's quantized conv returns
    /// a channels-last tensor whatever its input's layout, and the plain
    /// conv kernels keep their input's layout, so a network entered from
    /// a row-major `quantize_per_tensor` stays channels-last as in PyTorch
    /// (layout-dependent ops such as `adaptive_avg_pool2d`, `mean` and
    /// `cat` round by it). Transposed convolutions are refused by name (no
    /// kernel computes them yet).
    pub fn plain_conv(&self, op: &str, x: &Tensor) -> Result<(&Self, Tensor)> {
        if self.transposed {
            return Err(Error::invalid(
                op,
                "transposed convolutions (ConvTranspose2d) are not supported yet; the packed weight is transposed",
            ));
        }
        let x = if x.dim() == 4 { x.contiguous_in(crate::MemoryFormat::ChannelsLast)? } else { x.clone() };
        Ok((self, x))
    }
}

/// `CellParamsBase` of a dynamically quantized LSTM layer and direction
/// (`quantized_dynamic`): the input and recurrent weights as packed linear
/// weights (their biases inside them, as PyTorch packs them), and whether
/// the activations are quantized to 7 bits.
#[derive(Debug, Clone)]
pub struct CellParams {
    /// The input weight `[4 * hidden, input]`.
    pub w_ih: LinearPackedParams,
    /// The recurrent weight `[4 * hidden, hidden]`.
    pub w_hh: LinearPackedParams,
    /// Quantize the activations to 7 bits (fbgemm's `reduce_range`).
    pub reduce_range: bool,
}

impl ScriptClassData for CellParams {
    const CLASS: ScriptClass = ScriptClass::CellParams;
}

impl CellParams {
    /// Checks the parts and boxes them as an object.
    pub fn into_value(self) -> Result<Value> {
        let (ih, hh) = (self.w_ih.weight.sizes(), self.w_hh.weight.sizes());
        if ih.len() != 2 || hh.len() != 2 || ih[0] != hh[0] || hh[1].checked_mul(4) != Some(hh[0]) {
            return Err(Error::invalid(
                "CellParamsBase",
                format!("weights {ih:?} and {hh:?} are not an LSTM's [4H, I] and [4H, H]"),
            ));
        }
        Ok(Value::Object(ScriptObject::new(ScriptClass::CellParams, self)))
    }
}
