//! quantized::linear, linear_relu and linear_dynamic, over a packed weight.
//!
//! Accumulation is exact (`Σ (x - x_zp)(w - w_zp)` in i64, so no int16 or
//! int32 saturation whatever K is), and the result `acc * x_scale * w_scale
//! + bias` is requantized in f64.

use super::common::{bias_values, output_quantizer, per_tensor, quantized_from_ints};
use super::quantize::float_input;
use qtensor_runtime::numerics::{inv_scale, quantize_val, AccRequant};
use qtensor_runtime::storage::{checked_count, try_filled, try_vec};
use qtensor_runtime::{register_kernel, DType, Error, Priority, QParams, Result, Tensor};
use std::sync::Arc;

/// A linear weight `[N, K]` in the layout the kernel reads: row-major
/// integers with each output row's scale and zero point.
#[derive(Debug, Clone)]
pub struct PackedLinear {
    /// Output features.
    pub n: usize,
    /// Input features.
    pub k: usize,
    /// `w - w_zero_point` per element, row-major `[N, K]` (fits i16).
    pub weights: Vec<i16>,
    /// Scale of each output row.
    pub scales: Vec<f64>,
}

impl PackedLinear {
    /// Packs a qint8 weight `[N, K]`, per-tensor or per-channel on axis 0.
    pub fn pack(w: &Tensor) -> Result<PackedLinear> {
        let qp = qint8_weight_rows("quantized::linear", w, "[N, K]")?;
        let (n, k) = (w.sizes()[0], w.sizes()[1]);
        Ok(PackedLinear {
            n,
            k,
            weights: centered_rows(&w.int_values()?, &qp, k),
            scales: qp.iter().map(|&(s, _)| s).collect(),
        })
    }

    /// The packed form of `w`, computed once and cached on the weight tensor.
    pub fn of(w: &Tensor) -> Result<Arc<PackedLinear>> {
        w.cached_derived(PackedLinear::pack)
    }

    /// Exact accumulators `[M, N]` for `m` rows of `x` (already `x - x_zp`).
    fn accumulate(&self, x: &[i64], m: usize) -> Result<Vec<i64>> {
        let mut acc = try_vec(checked_count("quantized::linear", &[m, self.n])?)?;
        acc.resize(m * self.n, 0i64);
        for (row, out) in x.chunks(self.k.max(1)).take(m).zip(acc.chunks_mut(self.n.max(1))) {
            for (o, wrow) in out.iter_mut().zip(self.weights.chunks(self.k.max(1))) {
                *o = row.iter().zip(wrow).map(|(&a, &b)| a * b as i64).sum();
            }
        }
        Ok(acc)
    }
}

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
    let m = lead.iter().product();
    Ok((lead, m))
}

/// Static quantized linear: quint8 `x`, packed weight, f32 bias, quint8 output.
pub fn linear_with_packed(
    op: &str,
    x: &Tensor,
    packed: &PackedLinear,
    bias: Option<&Tensor>,
    y_scale: f64,
    y_zero_point: i64,
    relu: bool,
) -> Result<Tensor> {
    if x.dtype() != DType::QUInt8 {
        return Err(Error::WrongDType { op: op.into(), expected: "a quint8 input".into(), got: x.dtype() });
    }
    let px = per_tensor(op, "X", x)?;
    let out_q = output_quantizer(op, DType::QUInt8, y_scale, y_zero_point)?;
    let (mut sizes, m) = rows_of(op, x, packed.k)?;
    let b = bias_values(op, bias, packed.n)?;
    let xs: Vec<i64> = x.int_values()?.into_iter().map(|v| v - px.zero_point).collect();
    let acc = packed.accumulate(&xs, m)?;
    let lo = if relu { y_zero_point.max(0) } else { 0 };
    let ints: Vec<i64> = acc
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let c = i % packed.n.max(1);
            AccRequant::new(px.scale, packed.scales[c], b[c] as f32, y_scale).apply(a, y_zero_point, lo, 255)
        })
        .collect();
    sizes.push(packed.n);
    quantized_from_ints(&sizes, &out_q, &ints)
}

/// The reference linear, fused with relu when `relu`; also the fallback of
/// faster kernels.
pub fn reference_linear(
    relu: bool,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y_scale: f64,
    y_zero_point: i64,
) -> Result<Tensor> {
    let op = if relu { "quantized::linear_relu" } else { "quantized::linear" };
    linear_with_packed(op, x, &*PackedLinear::of(w)?, b, y_scale, y_zero_point, relu)
}

register_kernel! {
    dtypes: [QUInt8],
    priority: Priority::REFERENCE,
    variants: {
        fn reference_linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Tensor {
            "quantized::linear" => (false, "reference_linear"),
            "quantized::linear_relu" => (true, "reference_linear_relu"),
        }
    }
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

/// The reference dynamic linear.
pub fn reference_linear_dynamic(x: &Tensor, w: &Tensor, b: Option<&Tensor>, reduce_range: bool) -> Result<Tensor> {
    let op = "quantized::linear_dynamic";
    let values = float_input(op, x)?;
    let packed = PackedLinear::of(w)?;
    let (mut sizes, m) = rows_of(op, x, packed.k)?;
    let bias = bias_values(op, b, packed.n)?;
    // NaN is left out of the range (and quantizes to the zero point); an
    // infinite input has no finite scale.
    if values.iter().any(|v| v.is_infinite()) {
        return Err(Error::invalid(op, "the input contains ±inf, which has no finite quantization range"));
    }
    let (lo, hi) = values.iter().filter(|v| !v.is_nan()).fold((0.0f32, 0.0f32), |(a, b), &v| (a.min(v), b.max(v)));
    let (sx, zx) = choose_qparams(lo, hi, 0, 255, reduce_range);
    let inv = inv_scale(sx);
    let xs: Vec<i64> = values.iter().map(|&v| quantize_val(v, inv, zx, 0, 255) - zx).collect();
    let acc = packed.accumulate(&xs, m)?;
    let out: Vec<f32> = acc
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let c = i % packed.n.max(1);
            (a as f64 * sx * packed.scales[c] + bias[c]) as f32
        })
        .collect();
    sizes.push(packed.n);
    Tensor::from_vec(out, &sizes)
}

register_kernel! {
    op: "quantized::linear_dynamic",
    dtypes: [Float32],
    name: "reference_linear_dynamic",
    priority: Priority::REFERENCE,
    fn reference_linear_dynamic(x: &Tensor, w: &Tensor, b: Option<&Tensor>, reduce_range: bool) -> Tensor
}
