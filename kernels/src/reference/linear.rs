//! quantized::linear, linear_relu and linear_dynamic, over a packed weight.
//!
//! Accumulation is exact (`Σ (x - x_zp)(w - w_zp)` in i64, so no int32
//! overflow whatever K is), except where the engine in force has fbgemm's
//! int16 pairs saturate (`Engine::gemm_pairs_saturate`, `int16_pairs`);
//! then the sums are fbgemm's. The requantization is fbgemm's.

use super::int16_pairs;
use super::quantize::float_input;
use crate::args::linear::{centered_rows, choose_qparams, qint8_weight_rows, rows_of};
use crate::args::quantized::{bias_values, output_quantizer, per_tensor, quantized_from_ints};
use qtensor_runtime::engine;
use qtensor_runtime::numerics::{inv_scale, quantize_val, AccRequant, FusedBiasRequant};
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::{checked_count, try_vec};
use qtensor_runtime::{register_kernel, DType, Error, Priority, QScheme, Result, Tensor};
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
    /// Zero point of each output row.
    pub zero_points: Vec<i64>,
    /// True for a weight quantized per tensor (fbgemm's bias term differs).
    pub per_tensor: bool,
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
            zero_points: qp.iter().map(|&(_, z)| z).collect(),
            per_tensor: w.qscheme()? == QScheme::PerTensorAffine,
        })
    }

    /// The packed form of `w`, computed once and cached on the weight tensor.
    pub fn of(w: &Tensor) -> Result<Arc<PackedLinear>> {
        w.cached_derived(PackedLinear::pack)
    }

    /// The accumulators `[M, N]` for `m` rows of `x` (already `x - x_zp`):
    /// exact, or fbgemm's int16 pair sums where the engine saturates them.
    fn accumulate(&self, x: &[i64], m: usize, zx: i64) -> Result<Vec<i64>> {
        if engine::engine().gemm_pairs_saturate() {
            let raw_x: Vec<u8> = x.iter().take(m * self.k).map(|&v| (v + zx) as u8).collect();
            let raw_w: Vec<i8> = self
                .weights
                .iter()
                .enumerate()
                .map(|(i, &v)| (v as i64 + self.zero_points[i / self.k.max(1)]) as i8)
                .collect();
            return int16_pairs::linear_sums(&raw_x, zx as u8, &raw_w, &self.zero_points, self.k);
        }
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
    let acc = packed.accumulate(&xs, m, px.zero_point)?;
    let lo = if relu { y_zero_point.max(0) } else { 0 };
    let ints: Vec<i64> = acc
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let c = i % packed.n.max(1);
            if packed.per_tensor {
                FusedBiasRequant::new(px.scale, packed.scales[c], b[c] as f32, y_scale).apply(a, y_zero_point, lo, 255)
            } else {
                AccRequant::new(px.scale, packed.scales[c], b[c] as f32, y_scale).apply(a, y_zero_point, lo, 255)
            }
        })
        .collect();
    sizes.push(packed.n);
    quantized_from_ints(&sizes, &out_q, &ints)
}

/// The reference linear, fused with relu when `relu`.
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
            op::quantized::LINEAR => (false, "reference_linear"),
            op::quantized::LINEAR_RELU => (true, "reference_linear_relu"),
        }
    }
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
    let acc = packed.accumulate(&xs, m, zx)?;
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
    op: op::quantized::LINEAR_DYNAMIC,
    dtypes: [Float32],
    name: "reference_linear_dynamic",
    priority: Priority::REFERENCE,
    fn reference_linear_dynamic(x: &Tensor, w: &Tensor, b: Option<&Tensor>, reduce_range: bool) -> Tensor
}
