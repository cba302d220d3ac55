//! Linear (and conv) weight and input arguments: qint8 weight rows and
//! their qparams, the input's rows, and PyTorch's choice of qparams for
//! dynamic quantization.

use qtensor_runtime::storage::try_filled;
use qtensor_runtime::{DType, Error, QParams, Result, Tensor};

/// Checks that `w` is a qint8 weight of the rank `layout` names (e.g.
/// `"[N, K]"`), and returns each output row's (scale, zero point).
///
/// Every packed weight form (reference and GEMM, linear and conv) starts
/// here, so they all reject a bad weight with the same error.
pub fn qint8_weight_rows(op: &str, w: &Tensor, layout: &str) -> Result<Vec<(f64, i64)>> {
    if w.dtype() != DType::QInt8 {
        return Err(Error::WrongDType { op: op.into(), expected: "a qint8 weight".into(), got: w.dtype() });
    }
    let rank = layout.split(',').count();
    if w.ndim() != rank {
        return Err(Error::shape(op, format!("the weight must be {layout}, got shape {:?}", w.sizes())));
    }
    // Every product of a row's sizes must fit, also in an empty weight
    // (`[4, 0, 2^40, 2^40]`), so that packing may multiply them freely.
    let dims = &w.sizes()[1..];
    if dims.iter().filter(|&&d| d > 0).try_fold(1usize, |a, &d| a.checked_mul(d)).is_none() {
        return Err(Error::shape(op, format!("the weight's rows of {dims:?} elements overflow")));
    }
    row_qparams(op, w, w.sizes()[0])
}

/// `w - w_zero_point` for each row of `row_len` integers, as i16 (a qint8
/// minus a qint8 zero point always fits).
pub fn centered_rows(ints: &[i64], qp: &[(f64, i64)], row_len: usize) -> Vec<i16> {
    if row_len == 0 {
        return Vec::new();
    }
    ints.chunks(row_len).zip(qp).flat_map(|(row, &(_, zp))| row.iter().map(move |&v| (v - zp) as i16)).collect()
}

/// Per-output-row (scale, zero point) of a weight quantized per tensor or
/// per channel along axis 0.
pub fn row_qparams(op: &str, w: &Tensor, rows: usize) -> Result<Vec<(f64, i64)>> {
    let q = w.quantizer().ok_or_else(|| Error::WrongDType {
        op: op.into(),
        expected: "a quantized weight".into(),
        got: w.dtype(),
    })?;
    match q.params() {
        QParams::PerTensorAffine { scale, zero_point, .. } => try_filled(rows, (scale, zero_point)),
        QParams::PerChannelAffine { scales, zero_points, axis: 0, .. } => {
            if scales.len() != rows || zero_points.len() != rows {
                return Err(Error::qparams(
                    op,
                    format!(
                        "a per-channel weight of {rows} rows has {} scales and {} zero points",
                        scales.len(),
                        zero_points.len()
                    ),
                ));
            }
            Ok(scales.iter().copied().zip(zero_points.iter().copied()).collect())
        }
        QParams::PerChannelAffine { axis, .. } => {
            Err(Error::qparams(op, format!("a per-channel weight must be quantized along axis 0, not {axis}")))
        }
    }
}

/// `x`'s leading dimensions and K, for an input of rank >= 2 (`[.., K]`).
pub fn rows_of(op: &str, x: &Tensor, k: usize) -> Result<(Vec<usize>, usize)> {
    if x.ndim() < 2 {
        return Err(Error::shape(
            op,
            format!("the input must have at least 2 dimensions [.., K], got shape {:?}", x.sizes()),
        ));
    }
    let last = x.sizes()[x.ndim() - 1];
    if last != k {
        return Err(Error::shape(
            op,
            format!("in_features mismatch: the input has {last} features, the weight expects {k}"),
        ));
    }
    let lead = x.sizes()[..x.ndim() - 1].to_vec();
    // Checked: with K = 0 the input is empty, and its other sizes may
    // multiply past `usize`.
    let m = qtensor_runtime::storage::checked_count(op, &lead)?;
    Ok((lead, m))
}

/// PyTorch's `ChooseQuantizationParams` for an observed range: the range is
/// widened to include 0, the scale gets a floor, and the zero point is
/// nudged to an integer in `[qmin, qmax]`. Returns (scale, zero_point), the
/// scale narrowed to the f32 the quantization actually uses.
pub fn choose_qparams(min: f32, max: f32, mut qmin: i64, mut qmax: i64, reduce_range: bool) -> (f64, i64) {
    const SMALL_SCALE_THRESHOLD: f32 = 6.1e-5;
    if reduce_range {
        qmin /= 2;
        qmax /= 2;
    }
    let mut min = min.min(0.0);
    let mut max = max.max(0.0);
    let mut scale = (max as f64 - min as f64) / (qmax - qmin) as f64;
    if (scale as f32) == 0.0 || (1.0f32 / scale as f32).is_infinite() {
        scale = 0.1;
    }
    if scale < SMALL_SCALE_THRESHOLD as f64 {
        let org = scale as f32;
        scale = SMALL_SCALE_THRESHOLD as f64;
        if min == 0.0 {
            max = SMALL_SCALE_THRESHOLD * (qmax - qmin) as f32;
        } else if max == 0.0 {
            min = -SMALL_SCALE_THRESHOLD * (qmax - qmin) as f32;
        } else {
            let amplifier = SMALL_SCALE_THRESHOLD / org;
            min *= amplifier;
            max *= amplifier;
        }
    }
    let from_min = qmin as f64 - min as f64 / scale;
    let from_max = qmax as f64 - max as f64 / scale;
    let err_min = (qmin as f64).abs() - (min as f64 / scale).abs();
    let err_max = (qmax as f64).abs() - (max as f64 / scale).abs();
    let initial = if err_min < err_max { from_min } else { from_max };
    let zp = if initial < qmin as f64 {
        qmin
    } else if initial > qmax as f64 {
        qmax
    } else {
        initial.round_ties_even() as i64
    };
    ((scale as f32) as f64, zp)
}
