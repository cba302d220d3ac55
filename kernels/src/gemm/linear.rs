//! quantized::linear, linear_relu and linear_dynamic over the GEMM kernels.

use super::driver::{gemm_into, Rows, Weights};
use super::epilogue::{column_requant, Epilogue, Requant, RequantRoute};
use super::kernel::GemmIsa;
use super::packed::PackedB;
use super::saturating::{self, PairRows};
use super::MAX_K;
use crate::args::linear::{choose_qparams, qint8_weight_rows, rows_of};
use crate::args::quantized::{bias_values, output_quantizer, per_tensor};
use crate::vector::QuantizeParams;
use qtensor_runtime::engine;
use qtensor_runtime::numerics::inv_scale;
use qtensor_runtime::storage::checked_count;
use qtensor_runtime::{DType, Error, QScheme, Result, Storage, Tensor};
use std::sync::{Arc, OnceLock};

/// A qint8 linear weight `[N, K]` packed for the GEMM kernels, with its
/// per-row zero points and scales. Cached on the weight tensor.
#[derive(Debug, Clone)]
pub struct GemmWeight {
    /// The packed integers.
    pub packed: PackedB,
    /// Zero point of each output row.
    pub zero_points: Vec<i32>,
    /// Scale of each output row.
    pub scales: Vec<f64>,
    /// True for a weight quantized per tensor (fbgemm's bias term differs).
    pub per_tensor: bool,
    /// The raw weight split for fbgemm's int16 pair sums, made on the
    /// first call that needs it.
    pub pairs: OnceLock<PairRows>,
}

impl GemmWeight {
    /// Packs a qint8 weight `[N, K]`, per tensor or per channel on axis 0.
    pub fn pack(w: &Tensor) -> Result<GemmWeight> {
        let qp = qint8_weight_rows("quantized::linear", w, "[N, K]")?;
        let (n, k) = (w.sizes()[0], w.sizes()[1]);
        let ints = w.to_vec::<i8>()?;
        Ok(GemmWeight {
            packed: PackedB::pack(&ints, n, k)?,
            zero_points: qp.iter().map(|p| p.1 as i32).collect(),
            scales: qp.iter().map(|p| p.0).collect(),
            per_tensor: w.qscheme()? == QScheme::PerTensorAffine,
            pairs: OnceLock::new(),
        })
    }

    /// [`GemmWeight::pairs`], made from the weight tensor `w` it was
    /// packed from on first use.
    fn pair_rows(&self, w: &Tensor) -> Result<&PairRows> {
        if let Some(p) = self.pairs.get() {
            return Ok(p);
        }
        let made = PairRows::new(&w.to_vec::<i8>()?, self.packed.k)?;
        Ok(self.pairs.get_or_init(|| made))
    }

    /// The split weight when the engine in force has fbgemm's int16 pairs
    /// saturate (`Engine::gemm_pairs_saturate`) and the activations `x`
    /// (zero point `zx`) could saturate one; else `None`, and the exact
    /// GEMM gives fbgemm's sums.
    fn saturating_pairs(&self, w: &Tensor, x: &[u8], zx: u8) -> Result<Option<&PairRows>> {
        if !engine::engine().gemm_pairs_saturate() {
            return Ok(None);
        }
        let max_x = x.iter().copied().max().unwrap_or(0);
        // |w_a| + |w_b| <= 256, and 127 * 256 < 2^15.
        if max_x.max(zx) <= 127 {
            return Ok(None);
        }
        let pairs = self.pair_rows(w)?;
        Ok(pairs.can_saturate(max_x, zx).then_some(pairs))
    }

    /// The packed form of `w`, computed once and cached on the tensor.
    pub fn of(w: &Tensor) -> Result<Arc<GemmWeight>> {
        w.cached_derived(GemmWeight::pack)
    }
}

/// Static quantized linear through `kernel`, or `None` when the fast path
/// does not apply (the caller then runs the reference).
#[allow(clippy::too_many_arguments)]
pub fn gemm_linear<K: GemmIsa>(
    op: &str,
    kernel: K,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    y_scale: f64,
    y_zero_point: i64,
    relu: bool,
) -> Result<Option<Tensor>> {
    if x.dtype() != DType::QUInt8 || w.dtype() != DType::QInt8 || w.ndim() != 2 || w.sizes()[1] > MAX_K {
        return Ok(None);
    }
    let px = per_tensor(op, "X", x)?;
    let out_q = output_quantizer(op, DType::QUInt8, y_scale, y_zero_point)?;
    let gw = GemmWeight::of(w)?;
    let n = gw.packed.n;
    let (mut sizes, m) = rows_of(op, x, gw.packed.k)?;
    let b = bias_values(op, bias, n)?;
    // Linear gives fbgemm's integers under every engine (PyTorch's x86
    // engine runs it on fbgemm), its int16 pairs' saturation included
    // where fbgemm has no VNNI.
    let Some((mult, bias, form)) = column_requant(
        px.scale,
        &gw.scales,
        &b,
        (y_scale, y_zero_point),
        gw.per_tensor,
        RequantRoute::Fbgemm { rounded_bias: false },
    ) else {
        return Ok(None);
    };
    let lo = if relu { y_zero_point.max(0) } else { 0 } as f32;
    let epi =
        Epilogue::Quantize(Requant { mult: &mult, bias: &bias, zero_point: y_zero_point as i32, lo, hi: 255.0, form });
    let storage = Storage::for_overwrite(DType::QUInt8.storage_type(), checked_count(op, &[m, n])?)?;
    x.with_contiguous::<u8, Result<()>>(|xs| {
        let zx = px.zero_point as u8;
        if let Some(pairs) = gw.saturating_pairs(w, xs, zx)? {
            return saturating::linear_rows(
                kernel,
                (xs, zx),
                (pairs, &gw.zero_points),
                &epi,
                &mut storage.write::<u8>()?,
            );
        }
        let (rows, w) = (Rows { data: xs, m, zx: zx as i32 }, Weights { b: &gw.packed, zw: &gw.zero_points });
        gemm_into(kernel, rows, w, epi, &mut storage.write::<u8>()?)
    })??;
    sizes.push(n);
    Tensor::quantized_from_storage(storage, &sizes, &out_q).map(Some)
}

/// Dynamic linear through `kernel`: x is quantized per call to quint8 from
/// its range (bit-exact with the reference), then multiplied exactly.
pub fn gemm_linear_dynamic<K: GemmIsa>(
    op: &str,
    kernel: K,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    reduce_range: bool,
) -> Result<Option<Tensor>> {
    if x.dtype() != DType::Float32 || w.dtype() != DType::QInt8 || w.ndim() != 2 || w.sizes()[1] > MAX_K {
        return Ok(None);
    }
    let gw = GemmWeight::of(w)?;
    let n = gw.packed.n;
    let (mut sizes, m) = rows_of(op, x, gw.packed.k)?;
    let b = bias_values(op, bias, n)?;
    let values = x.contiguous()?;
    let xs = values.with_contiguous::<f32, Result<(Vec<u8>, f64, i64)>>(|v| {
        let Some((lo, hi)) = kernel.vectorized(|| dynamic_range(v)) else {
            return Err(Error::invalid(op, "the input contains ±inf, which has no finite quantization range"));
        };
        let (sx, zx) = choose_qparams(lo, hi, 0, 255, reduce_range);
        let mut xq = qtensor_runtime::storage::try_filled::<u8>(v.len(), 0)?;
        kernel.quantize_u8(v, &mut xq, QuantizeParams { inv: inv_scale(sx), zero_point: zx, qmin: 0, qmax: 255 });
        Ok((xq, sx, zx))
    })??;
    let (xq, sx, zx) = xs;
    let epi = Epilogue::Float { x_scale: sx, w_scales: &gw.scales, bias: &b };
    let storage = Storage::for_overwrite(DType::Float32.storage_type(), checked_count(op, &[m, n])?)?;
    if let Some(pairs) = gw.saturating_pairs(w, &xq, zx as u8)? {
        saturating::linear_rows(kernel, (&xq, zx as u8), (pairs, &gw.zero_points), &epi, &mut storage.write::<f32>()?)?;
    } else {
        let (rows, w) = (Rows { data: &xq[..], m, zx: zx as i32 }, Weights { b: &gw.packed, zw: &gw.zero_points });
        gemm_into(kernel, rows, w, epi, &mut storage.write::<f32>()?)?;
    }
    sizes.push(n);
    Tensor::from_storage(storage, DType::Float32, &sizes).map(Some)
}

/// `(min(0, v), max(0, v))` over the values of `v` that are not NaN, or
/// `None` when one is infinite: the input range of a dynamic
/// quantization, as the reference computes it. In 16 lanes, which
/// vectorize: `f32::min` and `max` skip NaN, and the order of a min or a
/// max does not change it (but for the sign of a zero, which the chosen
/// qparams do not see).
#[inline(always)]
fn dynamic_range(v: &[f32]) -> Option<(f32, f32)> {
    const LANES: usize = 16;
    let (mut lo, mut hi, mut infinite) = ([0f32; LANES], [0f32; LANES], [false; LANES]);
    let mut chunks = v.chunks_exact(LANES);
    for chunk in &mut chunks {
        for i in 0..LANES {
            lo[i] = lo[i].min(chunk[i]);
            hi[i] = hi[i].max(chunk[i]);
            infinite[i] |= chunk[i].abs() == f32::INFINITY;
        }
    }
    for &x in chunks.remainder() {
        lo[0] = lo[0].min(x);
        hi[0] = hi[0].max(x);
        infinite[0] |= x.abs() == f32::INFINITY;
    }
    if infinite.contains(&true) {
        return None;
    }
    Some((lo.into_iter().fold(0.0, f32::min), hi.into_iter().fold(0.0, f32::max)))
}

/// quantized::linear (or linear_relu) through `kernel`; declined where the
/// GEMM path does not apply (see `gemm_linear`).
#[allow(clippy::too_many_arguments)]
pub fn linear<K: GemmIsa>(
    kernel: K,
    relu: bool,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    y_scale: f64,
    y_zero_point: i64,
) -> Result<Tensor> {
    let op = if relu { "quantized::linear_relu" } else { "quantized::linear" };
    match gemm_linear(op, kernel, x, w, bias, y_scale, y_zero_point, relu)? {
        Some(t) => Ok(t),
        None => Err(Error::declined("linear: operands the GEMM path does not take")),
    }
}

/// quantized::linear_dynamic through `kernel`; declined where the GEMM
/// path does not apply.
pub fn linear_dynamic<K: GemmIsa>(
    kernel: K,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    reduce_range: bool,
) -> Result<Tensor> {
    match gemm_linear_dynamic("quantized::linear_dynamic", kernel, x, w, bias, reduce_range)? {
        Some(t) => Ok(t),
        None => Err(Error::declined("linear_dynamic: operands the GEMM path does not take")),
    }
}

#[cfg(test)]
mod tests {
    use super::dynamic_range;

    /// The plain definition: the reference kernel's.
    fn plain_range(v: &[f32]) -> Option<(f32, f32)> {
        if v.iter().any(|x| x.is_infinite()) {
            return None;
        }
        Some(v.iter().filter(|x| !x.is_nan()).fold((0.0f32, 0.0f32), |(a, b), &x| (a.min(x), b.max(x))))
    }

    #[test]
    fn dynamic_range_is_the_plain_fold() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in [0, 1, 5, 15, 16, 17, 33, 100, 257] {
            // Under Miri (hundreds of times slower), 8 cases: two of each
            // infinity pattern.
            for case in 0..if cfg!(miri) { 8 } else { 40 } {
                let v: Vec<f32> = (0..len)
                    .map(|_| match next() % 16 {
                        0 => f32::NAN,
                        1 => -0.0,
                        2 if case % 4 == 0 => f32::INFINITY,
                        3 if case % 4 == 1 => f32::NEG_INFINITY,
                        _ => (next() % 20_001) as f32 / 100.0 - 100.0 + case as f32,
                    })
                    .collect();
                // Equal as numbers: a zero's sign may differ, and the
                // chosen qparams do not see it.
                assert_eq!(dynamic_range(&v), plain_range(&v), "{v:?}");
            }
        }
    }
}
