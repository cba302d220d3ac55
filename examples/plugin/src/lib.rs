//! An example qtensor plugin, written as any user crate would be: it
//! depends on `qtensor` and edits nothing in it.
//!
//! 1. A faster `relu` kernel for quint8, at `Priority::PLUGIN` (above the
//!    built-in portable and ISA tiers), so the dispatcher picks it.
//! 2. A brand-new op, `myplugin::clamp_q`, declared from a schema string,
//!    with a kernel for quint8, qint8 and qint32.
//!
//! Call [`link`] once from the binary: the linker drops a crate nothing
//! references, and its `inventory` registrations with it.

use qtensor::{declare_op, register_kernel, DType, Element, Error, Priority, QParams, Result, Storage, Tensor};

/// Keeps this crate, and so its kernel registrations, in the final binary.
pub fn link() {}

/// `max(q, zero_point)` straight on the stored bytes, with no widening.
fn plugin_relu_u8(x: &Tensor) -> Result<Tensor> {
    let q = x.quantizer().ok_or_else(|| Error::invalid(qtensor::ops::RELU, "expected a quantized tensor"))?;
    let out = match q.params() {
        QParams::PerTensorAffine { zero_point, .. } => {
            let zp = zero_point as u8;
            x.with_contiguous::<u8, Vec<u8>>(|src| src.iter().map(|&v| v.max(zp)).collect())?
        }
        // Per channel: each element against its own channel's zero point.
        QParams::PerChannelAffine { .. } => x
            .to_vec::<u8>()?
            .into_iter()
            .zip(x.channel_of_each())
            .map(|(v, c)| v.max(q.channel_qparams(c).1 as u8))
            .collect(),
    };
    let storage = Storage::from_slice(&out)?;
    Tensor::quantized_from_storage(storage, x.sizes(), &q)
}

register_kernel! {
    op: qtensor::ops::RELU,
    dtypes: [QUInt8],
    name: "plugin_relu_u8",
    priority: Priority::PLUGIN,
    fn plugin_relu_u8(x: &Tensor) -> Tensor
}

declare_op!(
    pub CLAMP_Q = "myplugin::clamp_q(Tensor self, float min, float max) -> Tensor",
    "Clamps a per-tensor quantized tensor to [min, max], in the integer domain: the bounds are quantized with the tensor's own qparams."
);

/// `clamp(q, quantize(min), quantize(max))`, same qparams.
fn clamp_q(x: &Tensor, min: f64, max: f64) -> Result<Tensor> {
    let op = CLAMP_Q;
    if min.is_nan() || max.is_nan() || min > max {
        return Err(Error::invalid(op, format!("need min <= max, got [{min}, {max}]")));
    }
    let q = x.quantizer().ok_or_else(|| Error::WrongDType {
        op: op.into(),
        expected: "a quantized tensor".into(),
        got: x.dtype(),
    })?;
    let QParams::PerTensorAffine { scale, zero_point, dtype } = q.params() else {
        return Err(Error::invalid(op, "per-channel tensors are not supported"));
    };
    let (qmin, qmax) = dtype.int_range().unwrap_or((0, 0));
    let bound =
        |v: f64| qtensor::numerics::quantize_val(v as f32, qtensor::numerics::inv_scale(scale), zero_point, qmin, qmax);
    let (lo, hi) = (bound(min), bound(max));
    let ints: Vec<i64> = x.int_values()?.into_iter().map(|v| v.clamp(lo, hi)).collect();
    let storage = qtensor::with_element_type!(dtype.storage_type(), T => {
        Storage::from_slice(&ints.iter().map(|&v| T::from_i64(v)).collect::<Vec<T>>())?
    });
    Tensor::quantized_from_storage(storage, x.sizes(), &q)
}

register_kernel! {
    op: CLAMP_Q,
    dtypes: [QUInt8, QInt8, QInt32],
    name: "plugin_clamp_q",
    priority: Priority::REFERENCE,
    fn clamp_q(x: &Tensor, min: f64, max: f64) -> Tensor
}

/// Valid inputs for `myplugin::clamp_q`, for `qtensor::kernel_checks`.
pub fn clamp_q_inputs(rng: &mut qtensor::kernel_checks::rng::Rng, dtype: DType) -> Result<Vec<qtensor::Value>> {
    use qtensor::kernel_checks::inputs::{quantized, shape};
    let sizes = shape(rng, 0);
    let x = quantized(rng, dtype, &sizes, false)?;
    let a = rng.unit() * 20.0 - 10.0;
    let b = a + rng.unit() * 10.0;
    Ok(vec![qtensor::Value::from(&x), qtensor::Value::Float(a), qtensor::Value::Float(b)])
}
