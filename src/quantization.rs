//! Observers that choose quantization parameters from data, after
//! `torch.ao.quantization.observer`: [`MinMaxObserver`] (per tensor) and
//! [`PerChannelMinMaxObserver`], with affine or symmetric schemes and
//! `reduce_range`.
//!
//! `calculate_qparams` follows PyTorch's rules exactly, in f32 as PyTorch
//! computes them: the range is widened to include 0, the scale has a floor
//! of f32 epsilon, and the affine zero point is rounded (half to even) and
//! clamped to the quantized range.

use crate::{DType, Error, Quantizer, Result, Tensor};
use std::sync::Arc;

/// How an observer maps its range to qparams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserverScheme {
    /// `scale = (max - min) / (qmax - qmin)`, zero point from `min`.
    Affine,
    /// `scale = max(|min|, |max|) / ((qmax - qmin) / 2)`, zero point 0
    /// (128 for quint8).
    Symmetric,
}

/// The f32 epsilon PyTorch's observers use as the smallest scale.
const EPS: f32 = f32::EPSILON;

fn quant_range(op: &str, dtype: DType, reduce_range: bool) -> Result<(i64, i64)> {
    let (lo, hi) = match dtype {
        DType::QUInt8 => (0, 255),
        DType::QInt8 => (-128, 127),
        other => return Err(Error::WrongDType { op: op.into(), expected: "quint8 or qint8".into(), got: other }),
    };
    Ok(if reduce_range { (lo / 2, hi / 2) } else { (lo, hi) })
}

/// PyTorch's `_calculate_qparams` for one (min, max) pair.
fn qparams_for(min: f32, max: f32, dtype: DType, scheme: ObserverScheme, qmin: i64, qmax: i64) -> (f64, i64) {
    if min > max {
        // Nothing observed: PyTorch returns scale 1, zero point 0.
        return (1.0, 0);
    }
    let min_neg = min.min(0.0);
    let max_pos = max.max(0.0);
    match scheme {
        ObserverScheme::Symmetric => {
            let max_pos = (-min_neg).max(max_pos);
            let scale = (max_pos / ((qmax - qmin) as f32 / 2.0)).max(EPS);
            let zp = if dtype == DType::QUInt8 { 128 } else { 0 };
            (scale as f64, zp)
        }
        ObserverScheme::Affine => {
            let scale = ((max_pos - min_neg) / (qmax - qmin) as f32).max(EPS);
            let zp = (qmin - (min_neg / scale).round_ties_even() as i64).clamp(qmin, qmax);
            (scale as f64, zp)
        }
    }
}

/// The finite (min, max) of a float tensor's values; NaN is ignored, ±inf
/// is an error (no finite scale covers it).
fn finite_range(op: &str, values: impl Iterator<Item = f64>) -> Result<(f32, f32)> {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for v in values {
        if v.is_infinite() {
            return Err(Error::invalid(op, "cannot observe ±inf"));
        }
        if !v.is_nan() {
            lo = lo.min(v as f32);
            hi = hi.max(v as f32);
        }
    }
    Ok((lo, hi))
}

fn require_float(op: &str, x: &Tensor) -> Result<()> {
    if x.dtype().is_float() {
        Ok(())
    } else {
        Err(Error::WrongDType { op: op.into(), expected: "a float tensor".into(), got: x.dtype() })
    }
}

/// Tracks the running min and max of everything it observes.
#[derive(Debug, Clone)]
pub struct MinMaxObserver {
    dtype: DType,
    scheme: ObserverScheme,
    qmin: i64,
    qmax: i64,
    min: f32,
    max: f32,
}

impl MinMaxObserver {
    /// An observer for `quint8` or `qint8`.
    pub fn new(dtype: DType, scheme: ObserverScheme, reduce_range: bool) -> Result<MinMaxObserver> {
        let (qmin, qmax) = quant_range("MinMaxObserver", dtype, reduce_range)?;
        Ok(MinMaxObserver { dtype, scheme, qmin, qmax, min: f32::INFINITY, max: f32::NEG_INFINITY })
    }

    /// Folds a float tensor into the running range and returns it unchanged.
    pub fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let op = "MinMaxObserver::forward";
        require_float(op, x)?;
        let (lo, hi) = finite_range(op, x.real_values()?.into_iter())?;
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        Ok(x.clone())
    }

    /// The observed (min, max), if anything was observed.
    pub fn min_max(&self) -> Option<(f32, f32)> {
        (self.min <= self.max).then_some((self.min, self.max))
    }

    /// (scale, zero_point) by PyTorch's rules.
    pub fn calculate_qparams(&self) -> (f64, i64) {
        qparams_for(self.min, self.max, self.dtype, self.scheme, self.qmin, self.qmax)
    }

    /// A per-tensor quantizer with the calculated qparams.
    pub fn quantizer(&self) -> Result<Arc<Quantizer>> {
        let (s, z) = self.calculate_qparams();
        Quantizer::per_tensor(s, z, self.dtype)
    }
}

/// Tracks the running min and max of each slice along `ch_axis`.
#[derive(Debug, Clone)]
pub struct PerChannelMinMaxObserver {
    ch_axis: usize,
    dtype: DType,
    scheme: ObserverScheme,
    qmin: i64,
    qmax: i64,
    mins: Vec<f32>,
    maxs: Vec<f32>,
}

impl PerChannelMinMaxObserver {
    /// An observer for `quint8` or `qint8` along `ch_axis`.
    pub fn new(
        ch_axis: usize,
        dtype: DType,
        scheme: ObserverScheme,
        reduce_range: bool,
    ) -> Result<PerChannelMinMaxObserver> {
        let (qmin, qmax) = quant_range("PerChannelMinMaxObserver", dtype, reduce_range)?;
        Ok(PerChannelMinMaxObserver { ch_axis, dtype, scheme, qmin, qmax, mins: Vec::new(), maxs: Vec::new() })
    }

    /// Folds a float tensor into the per-channel ranges and returns it unchanged.
    pub fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let op = "PerChannelMinMaxObserver::forward";
        require_float(op, x)?;
        if self.ch_axis >= x.ndim() {
            return Err(Error::qparams(
                op,
                format!("ch_axis {} is out of range for a tensor of {} dimensions", self.ch_axis, x.ndim()),
            ));
        }
        let channels = x.sizes()[self.ch_axis];
        if self.mins.is_empty() {
            self.mins = vec![f32::INFINITY; channels];
            self.maxs = vec![f32::NEG_INFINITY; channels];
        } else if self.mins.len() != channels {
            return Err(Error::shape(op, format!("observed {} channels before, now {channels}", self.mins.len())));
        }
        for c in 0..channels {
            let slice = x.select(self.ch_axis as i64, c as i64)?;
            let (lo, hi) = finite_range(op, slice.real_values()?.into_iter())?;
            self.mins[c] = self.mins[c].min(lo);
            self.maxs[c] = self.maxs[c].max(hi);
        }
        Ok(x.clone())
    }

    /// Per-channel (scales, zero_points) by PyTorch's rules.
    pub fn calculate_qparams(&self) -> (Vec<f64>, Vec<i64>) {
        self.mins
            .iter()
            .zip(&self.maxs)
            .map(|(&lo, &hi)| qparams_for(lo, hi, self.dtype, self.scheme, self.qmin, self.qmax))
            .unzip()
    }

    /// A per-channel quantizer with the calculated qparams.
    pub fn quantizer(&self) -> Result<Arc<Quantizer>> {
        if self.mins.is_empty() {
            return Err(Error::invalid("PerChannelMinMaxObserver::quantizer", "nothing has been observed yet"));
        }
        let (s, z) = self.calculate_qparams();
        Quantizer::per_channel(s, z, self.ch_axis, self.dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affine_qparams_follow_pytorch() {
        let mut o = MinMaxObserver::new(DType::QUInt8, ObserverScheme::Affine, false).unwrap();
        o.forward(&Tensor::from_slice(&[-1.0f32, 0.5, 3.0], &[3]).unwrap()).unwrap();
        // torch: scale = 4/255, zero_point = 0 - round(-1 / scale) = 64 (63.75 rounds to 64)
        let (s, z) = o.calculate_qparams();
        assert_eq!(s, (4.0f32 / 255.0) as f64);
        assert_eq!(z, 64);
        // The range always includes 0.
        let mut pos = MinMaxObserver::new(DType::QUInt8, ObserverScheme::Affine, false).unwrap();
        pos.forward(&Tensor::from_slice(&[2.0f32, 3.0], &[2]).unwrap()).unwrap();
        assert_eq!(pos.calculate_qparams(), ((3.0f32 / 255.0) as f64, 0));
    }

    #[test]
    fn symmetric_and_reduce_range() {
        let mut o = MinMaxObserver::new(DType::QInt8, ObserverScheme::Symmetric, false).unwrap();
        o.forward(&Tensor::from_slice(&[-2.0f32, 1.0], &[2]).unwrap()).unwrap();
        assert_eq!(o.calculate_qparams(), ((2.0f32 / 127.5) as f64, 0));
        let mut r = MinMaxObserver::new(DType::QUInt8, ObserverScheme::Symmetric, true).unwrap();
        r.forward(&Tensor::from_slice(&[-2.0f32, 1.0], &[2]).unwrap()).unwrap();
        assert_eq!(r.calculate_qparams(), ((2.0f32 / 63.5) as f64, 128));
        let mut a = MinMaxObserver::new(DType::QInt8, ObserverScheme::Affine, true).unwrap();
        a.forward(&Tensor::from_slice(&[-1.0f32, 1.0], &[2]).unwrap()).unwrap();
        assert_eq!(a.calculate_qparams(), ((2.0f32 / 127.0) as f64, 0));
    }

    #[test]
    fn zero_range_gets_the_epsilon_floor_and_empty_gets_defaults() {
        let mut o = MinMaxObserver::new(DType::QUInt8, ObserverScheme::Affine, false).unwrap();
        assert_eq!(o.calculate_qparams(), (1.0, 0));
        o.forward(&Tensor::from_slice(&[0.0f32, 0.0], &[2]).unwrap()).unwrap();
        assert_eq!(o.calculate_qparams(), (f32::EPSILON as f64, 0));
        assert!(o.forward(&Tensor::from_slice(&[f32::INFINITY], &[1]).unwrap()).is_err());
        assert!(MinMaxObserver::new(DType::QInt32, ObserverScheme::Affine, false).is_err());
    }

    #[test]
    fn per_channel_ranges() {
        let mut o = PerChannelMinMaxObserver::new(0, DType::QInt8, ObserverScheme::Symmetric, false).unwrap();
        o.forward(&Tensor::from_slice(&[1.0f32, -2.0, 0.5, 0.25], &[2, 2]).unwrap()).unwrap();
        let (s, z) = o.calculate_qparams();
        assert_eq!(s, vec![(2.0f32 / 127.5) as f64, (0.5f32 / 127.5) as f64]);
        assert_eq!(z, vec![0, 0]);
        assert_eq!(o.quantizer().unwrap().axis(), Some(0));
        assert!(o.forward(&Tensor::from_slice(&[1.0f32; 3], &[3, 1]).unwrap()).is_err());
    }
}
