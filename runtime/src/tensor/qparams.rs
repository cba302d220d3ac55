//! The quantization side of a tensor: its quantizer, qparams, and the
//! dequantize and int_repr conveniences.

use super::*;

impl Tensor {
    /// The quantizer of a quantized tensor (`None` for plain tensors).
    pub fn quantizer(&self) -> Option<Arc<Quantizer>> {
        self.0.quantizer.read().clone()
    }

    /// `(dtype, scale, zero_point)` of a per-tensor quantized tensor, read
    /// without cloning the quantizer (the hot path of small kernels).
    pub fn per_tensor_qparams(&self) -> Option<(DType, f64, i64)> {
        let q = self.0.quantizer.read();
        let q = q.as_deref()?;
        q.per_tensor_qparams().map(|(scale, zero_point)| (q.dtype(), scale, zero_point))
    }

    /// The quantizer of a quantized tensor, or the error `op` gives for a
    /// plain one: "`op`: expected a quantized tensor, got float32".
    pub fn require_quantizer(&self, op: &str) -> Result<Arc<Quantizer>> {
        self.quantizer().ok_or_else(|| Error::WrongDType {
            op: op.into(),
            expected: "a quantized tensor".into(),
            got: self.dtype(),
        })
    }

    /// The float32 values of a quantized tensor: the `dequantize` op,
    /// through the dispatcher (so the fastest registered kernel runs).
    pub fn dequantize(&self) -> Result<Tensor> {
        self.call_unary(crate::ops::DEQUANTIZE)
    }

    /// The stored integers of a quantized tensor as a plain integer tensor
    /// of the same shape: the `int_repr` op, through the dispatcher.
    pub fn int_repr(&self) -> Result<Tensor> {
        self.call_unary(crate::ops::INT_REPR)
    }

    fn call_unary(&self, op: crate::OpName) -> Result<Tensor> {
        // A plain tensor has no kernel for these ops; say what is wrong
        // rather than that no kernel serves float32.
        self.require_quantizer(&op)?;
        crate::dispatcher().call(&op, &[crate::Value::from(self)])?.into_tensor()
    }

    /// The quantization scheme.
    pub fn qscheme(&self) -> Result<QScheme> {
        Ok(self.require_quantizer("qscheme")?.qscheme())
    }

    /// The scale of a per-tensor quantized tensor.
    pub fn q_scale(&self) -> Result<f64> {
        match self.require_quantizer("q_scale")?.params() {
            QParams::PerTensorAffine { scale, .. } => Ok(scale),
            _ => Err(Error::invalid("q_scale", "the tensor is per-channel quantized: use q_per_channel_scales")),
        }
    }

    /// The zero point of a per-tensor quantized tensor.
    pub fn q_zero_point(&self) -> Result<i64> {
        match self.require_quantizer("q_zero_point")?.params() {
            QParams::PerTensorAffine { zero_point, .. } => Ok(zero_point),
            _ => Err(Error::invalid(
                "q_zero_point",
                "the tensor is per-channel quantized: use q_per_channel_zero_points",
            )),
        }
    }

    /// The scales of a per-channel quantized tensor, as a float64 tensor.
    pub fn q_per_channel_scales(&self) -> Result<Tensor> {
        match self.require_quantizer("q_per_channel_scales")?.params() {
            QParams::PerChannelAffine { scales, .. } => Tensor::from_slice(scales, &[scales.len()]),
            _ => Err(Error::invalid("q_per_channel_scales", "the tensor is per-tensor quantized: use q_scale")),
        }
    }

    /// The zero points of a per-channel quantized tensor, as an int64 tensor.
    pub fn q_per_channel_zero_points(&self) -> Result<Tensor> {
        match self.require_quantizer("q_per_channel_zero_points")?.params() {
            QParams::PerChannelAffine { zero_points, .. } => Tensor::from_slice(zero_points, &[zero_points.len()]),
            _ => {
                Err(Error::invalid("q_per_channel_zero_points", "the tensor is per-tensor quantized: use q_zero_point"))
            }
        }
    }

    /// The channel axis of a per-channel quantized tensor.
    pub fn q_per_channel_axis(&self) -> Result<i64> {
        match self.require_quantizer("q_per_channel_axis")?.params() {
            QParams::PerChannelAffine { axis, .. } => Ok(axis as i64),
            _ => Err(Error::invalid("q_per_channel_axis", "the tensor is per-tensor quantized")),
        }
    }
}
