//! quantized::linear, linear_relu and linear_dynamic over the GEMM kernels.

use super::driver::{gemm_into, Epilogue, PKernel};
use super::packed::PackedB;
use super::MAX_K;
use crate::reference::common::{bias_values, output_quantizer, per_tensor};
use crate::reference::linear::{choose_qparams, qint8_weight_rows, rows_of};
use qtensor_runtime::numerics::{inv_scale, quantize_val};
use qtensor_runtime::{DType, Error, Result, Storage, Tensor};
use std::sync::Arc;

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
        })
    }

    /// The packed form of `w`, computed once and cached on the tensor.
    pub fn of(w: &Tensor) -> Result<Arc<GemmWeight>> {
        w.derived(GemmWeight::pack)
    }
}

/// Static quantized linear through `kernel`, or `None` when the fast path
/// does not apply (the caller then runs the reference).
#[allow(clippy::too_many_arguments)]
pub fn gemm_linear(
    op: &str,
    kernel: PKernel,
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
    let mult: Vec<f32> = gw.scales.iter().map(|sw| (px.scale * sw / y_scale) as f32).collect();
    let add: Vec<f32> = b.iter().map(|bb| (bb / y_scale + y_zero_point as f64) as f32).collect();
    if !mult.iter().chain(&add).all(|v| v.is_finite()) {
        // Scales whose ratio f32 cannot hold, or a NaN or infinite bias:
        // the reference's f64 requantization gives the defined result.
        return Ok(None);
    }
    let lo = if relu { y_zero_point.max(0) } else { 0 } as f32;
    let epi = Epilogue::Quantize { mult: &mult, add: &add, lo, hi: 255.0 };
    let storage = Storage::for_overwrite(DType::QUInt8.storage_type(), m * n)?;
    x.with_contiguous::<u8, Result<()>>(|xs| {
        gemm_into(kernel, xs, m, px.zero_point as i32, &gw.packed, &gw.zero_points, epi, &mut storage.write::<u8>()?)
    })??;
    sizes.push(n);
    Tensor::quantized_from_storage(storage, &sizes, &out_q).map(Some)
}

/// Dynamic linear through `kernel`: x is quantized per call to quint8 from
/// its range (bit-exact with the reference), then multiplied exactly.
pub fn gemm_linear_dynamic(
    op: &str,
    kernel: PKernel,
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
        if v.iter().any(|x| x.is_infinite()) {
            return Err(Error::invalid(op, "the input contains ±inf, which has no finite quantization range"));
        }
        let (lo, hi) = v.iter().filter(|x| !x.is_nan()).fold((0.0f32, 0.0f32), |(a, b), &x| (a.min(x), b.max(x)));
        let (sx, zx) = choose_qparams(lo, hi, 0, 255, reduce_range);
        Ok((quantize_u8(v, inv_scale(sx), zx)?, sx, zx))
    })??;
    let (xq, sx, zx) = xs;
    let epi = Epilogue::Float { x_scale: sx, w_scales: &gw.scales, bias: &b };
    let storage = Storage::for_overwrite(DType::Float32.storage_type(), m * n)?;
    gemm_into(kernel, &xq, m, zx as i32, &gw.packed, &gw.zero_points, epi, &mut storage.write::<f32>()?)?;
    sizes.push(n);
    Tensor::from_storage(storage, DType::Float32, &sizes).map(Some)
}

/// Quantizes activations to u8, bit-exact with `numerics::quantize_val`,
/// with the AVX2 kernel where the CPU has it.
fn quantize_u8(v: &[f32], inv: f32, zx: i64) -> Result<Vec<u8>> {
    let mut out = qtensor_runtime::storage::try_vec::<u8>(v.len())?;
    out.resize(v.len(), 0);
    #[cfg(target_arch = "x86_64")]
    if crate::x86_64::has_avx2() {
        // SAFETY: AVX2 and FMA were just detected.
        unsafe { crate::x86_64::avx2::quantize::avx2_quantize_bytes(v, &mut out, inv, zx, 0, 255, false) };
        return Ok(out);
    }
    for (d, &x) in out.iter_mut().zip(v) {
        *d = quantize_val(x, inv, zx, 0, 255) as u8;
    }
    Ok(out)
}

/// Registers linear, linear_relu and linear_dynamic for one GEMM kernel.
#[macro_export]
#[doc(hidden)]
macro_rules! register_gemm_linear {
    ($prefix:literal, $kernel:expr, $priority:expr, $supported:path) => {
        const _: () = {
            use qtensor_runtime::{register_kernel, Result, Tensor};
            use $crate::gemm::linear::{gemm_linear, gemm_linear_dynamic};
            use $crate::reference::linear::{reference_linear, reference_linear_dynamic, reference_linear_relu};

            fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                match gemm_linear("quantized::linear", $kernel, x, w, b, y_scale, y_zero_point, false)? {
                    Some(t) => Ok(t),
                    None => reference_linear(x, w, b, y_scale, y_zero_point),
                }
            }
            fn linear_relu(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                match gemm_linear("quantized::linear_relu", $kernel, x, w, b, y_scale, y_zero_point, true)? {
                    Some(t) => Ok(t),
                    None => reference_linear_relu(x, w, b, y_scale, y_zero_point),
                }
            }
            fn linear_dynamic(x: &Tensor, w: &Tensor, b: Option<&Tensor>, reduce_range: bool) -> Result<Tensor> {
                match gemm_linear_dynamic("quantized::linear_dynamic", $kernel, x, w, b, reduce_range)? {
                    Some(t) => Ok(t),
                    None => reference_linear_dynamic(x, w, b, reduce_range),
                }
            }
            register_kernel! {
                op: "quantized::linear", dtypes: [QUInt8], name: concat!($prefix, "_linear"), priority: $priority,
                is_supported: $supported, fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Tensor
            }
            register_kernel! {
                op: "quantized::linear_relu", dtypes: [QUInt8], name: concat!($prefix, "_linear_relu"), priority: $priority,
                is_supported: $supported, fn linear_relu(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Tensor
            }
            register_kernel! {
                op: "quantized::linear_dynamic", dtypes: [Float32], name: concat!($prefix, "_linear_dynamic"), priority: $priority,
                is_supported: $supported, fn linear_dynamic(x: &Tensor, w: &Tensor, b: Option<&Tensor>, reduce_range: bool) -> Tensor
            }
        };
    };
}
