//! Quantizers: how a quantized tensor's integers map to real values.

use crate::dtype::DType;
use crate::error::{Error, Result};
use std::fmt;
use std::sync::Arc;

/// The quantization scheme of a tensor, as PyTorch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QScheme {
    /// One scale and zero point for the whole tensor.
    PerTensorAffine,
    /// One scale and zero point per slice along an axis.
    PerChannelAffine,
}

impl QScheme {
    /// PyTorch's name (`per_tensor_affine`, `per_channel_affine`).
    pub const fn name(self) -> &'static str {
        match self {
            QScheme::PerTensorAffine => "per_tensor_affine",
            QScheme::PerChannelAffine => "per_channel_affine",
        }
    }
}

impl fmt::Display for QScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Maps stored integers to reals: `real = (q - zero_point) * scale`.
///
/// A quantizer is immutable and shared through `Arc`: quantizing many tensors
/// with one quantizer makes them share it, and views share their base's
/// quantizer unless the view moves or slices the channel axis.
///
/// Its fields are private and its only constructors
/// ([`Quantizer::per_tensor`], [`Quantizer::per_channel`]) validate, so no
/// invalid quantizer can exist: every scale is finite, positive and a
/// normal f32, and every zero point is within the dtype's range. A
/// per-channel quantizer has one pair per channel, and fits only tensors
/// with that many channels ([`Quantizer::check_fits`]); one with no
/// channels fits only tensors whose channel dimension is empty, as in
/// PyTorch. Read the parameters through [`Quantizer::params`].
#[derive(Debug, Clone, PartialEq)]
pub struct Quantizer {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    PerTensor { dtype: DType, scale: f64, zero_point: i64 },
    PerChannel { dtype: DType, scales: Arc<[f64]>, zero_points: Arc<[i64]>, axis: usize },
}

/// A quantizer's parameters, borrowed, to match on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QParams<'a> {
    /// One scale and zero point for every element.
    PerTensorAffine {
        /// The quantized dtype.
        dtype: DType,
        /// Step between adjacent integers, finite and > 0.
        scale: f64,
        /// The integer that represents 0.0, within the dtype's range.
        zero_point: i64,
    },
    /// One scale and zero point per index along `axis`.
    PerChannelAffine {
        /// The quantized dtype.
        dtype: DType,
        /// One scale per channel, each finite and > 0.
        scales: &'a [f64],
        /// One zero point per channel, each within the dtype's range.
        zero_points: &'a [i64],
        /// The channel dimension.
        axis: usize,
    },
}

/// Checks one (scale, zero point) pair for `dtype`.
pub fn check_qparams(op: &str, dtype: DType, scale: f64, zero_point: i64) -> Result<()> {
    // Formatted only on the way to an error: a valid scale is the hot path
    // (every per-channel quantizer checks one per channel).
    let shown = || crate::pyfmt::py_float_repr(scale);
    if !scale.is_finite() || scale <= 0.0 {
        return Err(Error::qparams(op, format!("scale must be finite and > 0, got {}", shown())));
    }
    // The kernels multiply by the f32 reciprocal of the f32 scale: both must
    // be finite and the scale a normal f32.
    if scale as f32 == f32::INFINITY {
        return Err(Error::qparams(op, format!("scale {} is too large: it exceeds f32's largest value", shown())));
    }
    if !(scale as f32).is_normal() || !(1.0f32 / (scale as f32)).is_finite() {
        return Err(Error::qparams(
            op,
            format!(
                "scale {} is too small: scales below {} (f32's smallest normal value) are not supported, \
                 since their f32 reciprocal overflows or they lose precision",
                shown(),
                crate::pyfmt::py_float_repr(f32::MIN_POSITIVE as f64)
            ),
        ));
    }
    let (lo, hi) = check_quantized_dtype(op, dtype)?;
    if zero_point < lo || zero_point > hi {
        return Err(Error::qparams(op, format!("zero_point {zero_point} is outside [{lo}, {hi}] for {dtype}")));
    }
    Ok(())
}

/// The integer range of a quantized dtype, or an error naming the dtype.
pub fn check_quantized_dtype(op: &str, dtype: DType) -> Result<(i64, i64)> {
    match dtype.int_range() {
        Some(r) if dtype.is_quantized() => Ok(r),
        _ => Err(Error::WrongDType {
            op: op.to_string(),
            expected: "a quantized dtype (quint8, qint8, qint16, qint32, quint4x2)".into(),
            got: dtype,
        }),
    }
}

impl Quantizer {
    /// A validated per-tensor affine quantizer. Asking for the same one
    /// twice in a row on a thread returns the same `Arc` (quantizers are
    /// immutable), which spares small ops an allocation per call.
    pub fn per_tensor(scale: f64, zero_point: i64, dtype: DType) -> Result<Arc<Quantizer>> {
        thread_local! {
            static LAST: std::cell::RefCell<Option<Arc<Quantizer>>> = const { std::cell::RefCell::new(None) };
        }
        let wanted = Quantizer { kind: Kind::PerTensor { dtype, scale, zero_point } };
        if let Some(q) = LAST.with(|l| {
            l.borrow()
                .as_ref()
                .filter(|q| q.as_ref() == &wanted && scale.to_bits() == q.channel_qparams(0).0.to_bits())
                .cloned()
        }) {
            return Ok(q);
        }
        check_qparams("per_tensor_affine", dtype, scale, zero_point)?;
        let q = Arc::new(wanted);
        LAST.with(|l| *l.borrow_mut() = Some(q.clone()));
        Ok(q)
    }

    /// A validated per-channel affine quantizer. The axis is checked against
    /// a tensor's rank when the quantizer is used.
    pub fn per_channel(scales: Vec<f64>, zero_points: Vec<i64>, axis: usize, dtype: DType) -> Result<Arc<Quantizer>> {
        let op = "per_channel_affine";
        if scales.len() != zero_points.len() {
            return Err(Error::qparams(op, format!("{} scales but {} zero points", scales.len(), zero_points.len())));
        }

        for (s, z) in scales.iter().zip(&zero_points) {
            check_qparams(op, dtype, *s, *z)?;
        }
        Ok(Arc::new(Quantizer {
            kind: Kind::PerChannel { dtype, scales: scales.into(), zero_points: zero_points.into(), axis },
        }))
    }

    /// The parameters, to match on.
    pub fn params(&self) -> QParams<'_> {
        match &self.kind {
            Kind::PerTensor { dtype, scale, zero_point } => {
                QParams::PerTensorAffine { dtype: *dtype, scale: *scale, zero_point: *zero_point }
            }
            Kind::PerChannel { dtype, scales, zero_points, axis } => {
                QParams::PerChannelAffine { dtype: *dtype, scales, zero_points, axis: *axis }
            }
        }
    }

    /// `(scale, zero_point)` of a per-tensor quantizer.
    pub fn per_tensor_qparams(&self) -> Option<(f64, i64)> {
        match self.kind {
            Kind::PerTensor { scale, zero_point, .. } => Some((scale, zero_point)),
            Kind::PerChannel { .. } => None,
        }
    }

    /// The channels `start, start + step, ...` (`len` of them) of a
    /// per-channel quantizer, for a view that slices its axis; per-tensor
    /// ones are returned as they are. Every pair was validated already; an
    /// empty slice keeps zero channels, matching its empty dimension.
    pub(crate) fn channel_subset(self: &Arc<Self>, start: usize, step: usize, len: usize) -> Arc<Quantizer> {
        match &self.kind {
            Kind::PerChannel { dtype, scales, zero_points, axis } => {
                let scales: Vec<f64> = scales.iter().copied().skip(start).step_by(step.max(1)).take(len).collect();
                let zero_points: Vec<i64> =
                    zero_points.iter().copied().skip(start).step_by(step.max(1)).take(len).collect();
                Arc::new(Quantizer {
                    kind: Kind::PerChannel {
                        dtype: *dtype,
                        scales: scales.into(),
                        zero_points: zero_points.into(),
                        axis: *axis,
                    },
                })
            }
            Kind::PerTensor { .. } => self.clone(),
        }
    }

    /// Channel `c` of a per-channel quantizer as a per-tensor one (for a
    /// view that selects one channel); per-tensor ones are returned as
    /// they are.
    pub(crate) fn channel_as_per_tensor(self: &Arc<Self>, c: usize) -> Arc<Quantizer> {
        match &self.kind {
            Kind::PerChannel { dtype, .. } => {
                let (scale, zero_point) = self.channel_qparams(c);
                Arc::new(Quantizer { kind: Kind::PerTensor { dtype: *dtype, scale, zero_point } })
            }
            Kind::PerTensor { .. } => self.clone(),
        }
    }

    /// The quantized dtype this quantizer produces.
    pub fn dtype(&self) -> DType {
        match self.kind {
            Kind::PerTensor { dtype, .. } | Kind::PerChannel { dtype, .. } => dtype,
        }
    }

    /// The scheme.
    pub fn qscheme(&self) -> QScheme {
        match self.kind {
            Kind::PerTensor { .. } => QScheme::PerTensorAffine,
            Kind::PerChannel { .. } => QScheme::PerChannelAffine,
        }
    }

    /// Checks that this quantizer fits a tensor of `sizes`: the axis is in
    /// range and there is one (scale, zero point) per channel.
    pub fn check_fits(&self, op: &str, sizes: &[usize]) -> Result<()> {
        if let Kind::PerChannel { scales, axis, .. } = &self.kind {
            if *axis >= sizes.len() {
                return Err(Error::qparams(
                    op,
                    format!("axis {axis} is out of range for a tensor of {} dimensions", sizes.len()),
                ));
            }
            if scales.len() != sizes[*axis] {
                return Err(Error::qparams(
                    op,
                    format!("{} scales for {} channels along axis {axis}", scales.len(), sizes[*axis]),
                ));
            }
        }
        Ok(())
    }

    /// The (scale, zero point) of channel `c` (of the tensor for per-tensor).
    pub fn channel_qparams(&self, c: usize) -> (f64, i64) {
        match &self.kind {
            Kind::PerTensor { scale, zero_point, .. } => (*scale, *zero_point),
            Kind::PerChannel { scales, zero_points, .. } => {
                let c = c.min(scales.len().saturating_sub(1));
                (scales.get(c).copied().unwrap_or(1.0), zero_points.get(c).copied().unwrap_or(0))
            }
        }
    }

    /// The real value of the integer `q` of channel `c`, as PyTorch's
    /// dequantize computes it: per tensor `(q - zp) as f32 * scale as f32`;
    /// per channel `(f32(q) - f32(zp))` times the f64 scale, rounded to f32
    /// once (so per-channel tensors print PyTorch's digits).
    #[inline]
    pub fn dequantize_one(&self, q: i64, c: usize) -> f32 {
        match &self.kind {
            Kind::PerTensor { scale, zero_point, .. } => crate::numerics::dequantize_val(q, *scale as f32, *zero_point),
            Kind::PerChannel { .. } => {
                let (scale, zero_point) = self.channel_qparams(c);
                ((q as f32 - zero_point as f32) as f64 * scale) as f32
            }
        }
    }

    /// The channel axis, for per-channel quantizers.
    pub fn axis(&self) -> Option<usize> {
        match self.kind {
            Kind::PerChannel { axis, .. } => Some(axis),
            Kind::PerTensor { .. } => None,
        }
    }

    /// The same quantizer with the channel axis moved (per-tensor is unchanged).
    pub fn with_axis(self: &Arc<Self>, new_axis: usize) -> Arc<Quantizer> {
        match &self.kind {
            Kind::PerChannel { dtype, scales, zero_points, axis } if *axis != new_axis => Arc::new(Quantizer {
                kind: Kind::PerChannel {
                    dtype: *dtype,
                    scales: scales.clone(),
                    zero_points: zero_points.clone(),
                    axis: new_axis,
                },
            }),
            _ => self.clone(),
        }
    }
}

impl fmt::Display for Quantizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.params() {
            QParams::PerTensorAffine { dtype, scale, zero_point } => {
                write!(f, "PerTensorAffine({dtype}, scale={scale}, zero_point={zero_point})")
            }
            QParams::PerChannelAffine { dtype, scales, zero_points, axis } => {
                write!(f, "PerChannelAffine({dtype}, axis={axis}, scales={scales:?}, zero_points={zero_points:?})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_scales_and_zero_points() {
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300, 1e300] {
            assert!(Quantizer::per_tensor(s, 0, DType::QUInt8).is_err(), "scale {s}");
        }
        assert!(Quantizer::per_tensor(0.1, 256, DType::QUInt8).is_err());
        assert!(Quantizer::per_tensor(0.1, -129, DType::QInt8).is_err());
        assert!(Quantizer::per_tensor(0.1, 0, DType::Float32).is_err());
        assert!(Quantizer::per_tensor(0.1, -100000, DType::QInt32).is_ok());
        assert!(Quantizer::per_channel(vec![0.1, 0.2], vec![0], 0, DType::QInt8).is_err());
        // No channels: valid, and fits only an empty channel dimension.
        let empty = Quantizer::per_channel(vec![], vec![], 0, DType::QInt8);
        assert!(empty.is_ok_and(|q| q.check_fits("t", &[0, 3]).is_ok() && q.check_fits("t", &[1, 3]).is_err()));
        assert!(Quantizer::per_channel(vec![f64::NAN], vec![0], 0, DType::QInt8).is_err());
    }

    #[test]
    fn per_channel_must_fit_the_tensor() -> Result<(), Box<dyn std::error::Error>> {
        let q = Quantizer::per_channel(vec![0.1, 0.2], vec![0, 1], 1, DType::QInt8)?;
        assert!(q.check_fits("t", &[3, 2]).is_ok());
        assert!(q.check_fits("t", &[3, 3]).is_err());
        assert!(q.check_fits("t", &[3]).is_err());
        Ok(())
    }
}
