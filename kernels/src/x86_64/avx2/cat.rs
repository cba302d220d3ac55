//! AVX2 quantized::cat for quint8/qint8: inputs that already have the
//! output qparams are copied; the others are requantized 32 lanes at a time
//! (within one step of the exact value, as docs/conformance-format.md allows).

use super::simd::{load8_widen, pack32, store32, Byte};
use super::PRIORITY;
use crate::reference::common::per_tensor;
use crate::x86_64::has_avx2;
use qtensor_runtime::tensor::layout::wrap_dim;
use qtensor_runtime::{register_kernel, DType, Error, Quantizer, Result, Storage, Tensor};
use std::arch::x86_64::*;

/// `clamp(round((q - zi) * m) + zo, lo, hi)` over bytes, `m = si / so`.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
pub fn avx2_requantize_bytes<B: Byte>(src: &[B], dst: &mut [B], m: f32, zi: i64, zo: i64, lo: i64, hi: i64) {
    // (q - zi) exactly in integers, then one rounding of the product (no
    // large terms cancel); round to an integer, then add zo exactly, as the
    // reference does (so ties land the same way).
    let (vm, vzi) = (_mm256_set1_ps(m), _mm256_set1_epi32(zi as i32));
    let (vlo, vhi, vzo) =
        (_mm256_set1_ps((lo - zo) as f32), _mm256_set1_ps((hi - zo) as f32), _mm256_set1_epi32(zo as i32));
    let lanes = |s: &[B]| {
        let v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_widen(s), vzi)), vm);
        _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, vlo), vhi)), vzo)
    };
    let mut s_chunks = src.chunks_exact(32);
    let mut d_chunks = dst.chunks_exact_mut(32);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        store32(d, pack32::<B>(lanes(&s[0..8]), lanes(&s[8..16]), lanes(&s[16..24]), lanes(&s[24..32])), false);
    }
    for (s, d) in s_chunks.remainder().iter().zip(d_chunks.into_remainder()) {
        *d = B::from_i64(
            (((s.to_i64() - zi) as f32) * m).clamp((lo - zo) as f32, (hi - zo) as f32).round_ties_even() as i64 + zo,
        );
    }
}

fn cat_bytes<B: Byte>(
    op: &str,
    xs: &[Tensor],
    d: usize,
    sizes: &[usize],
    out_q: &std::sync::Arc<Quantizer>,
    so: f64,
    zo: i64,
) -> Result<Tensor> {
    let total = qtensor_runtime::storage::checked_count(op, sizes)?;
    // With no elements there is nothing to loop over (the outer sizes may
    // still be huge).
    let outer: usize = if total == 0 { 0 } else { sizes[..d].iter().product() };
    let inner: usize = sizes[d + 1..].iter().product();
    let storage = Storage::for_overwrite(B::STORAGE, total)?;
    {
        let mut dst = storage.write::<B>()?;
        let mut offset = 0usize;
        let row: usize = sizes[d] * inner;
        for (i, x) in xs.iter().enumerate() {
            let p = per_tensor(op, &format!("qx[{i}]"), x)?;
            let chunk = x.sizes()[d] * inner;
            let copy = p.scale == so && p.zero_point == zo;
            let m = (p.scale / so) as f32;
            x.with_contiguous::<B, ()>(|src| {
                for o in 0..outer {
                    let s = &src[o * chunk..(o + 1) * chunk];
                    let out = &mut dst[o * row + offset..o * row + offset + chunk];
                    if copy {
                        out.copy_from_slice(s);
                    } else {
                        // SAFETY: reached only after `has_avx2()` held in `avx2_cat`.
                        unsafe { avx2_requantize_bytes(s, out, m, p.zero_point, zo, p.qmin, p.qmax) }
                    }
                }
            })?;
            offset += chunk;
        }
    }
    Tensor::quantized_from_storage(storage, sizes, out_q)
}

fn avx2_cat(xs: &[Tensor], dim: i64, scale: Option<f64>, zero_point: Option<i64>) -> Result<Tensor> {
    let op = "quantized::cat";
    let reference = || crate::reference::cat::reference_cat(xs, dim, scale, zero_point);
    let Some(first) = xs.first() else { return reference() };
    let bytes = matches!(first.dtype(), DType::QUInt8 | DType::QInt8);
    let uniform = xs.iter().all(|x| {
        x.dtype() == first.dtype()
            && x.ndim() == first.ndim()
            && x.qscheme().ok() == Some(qtensor_runtime::QScheme::PerTensorAffine)
    });
    if !has_avx2() || !bytes || !uniform || first.ndim() == 0 {
        return reference();
    }
    let d = wrap_dim(op, dim, first.ndim())?;
    if xs.iter().any(|x| x.sizes().iter().zip(first.sizes()).enumerate().any(|(j, (a, b))| j != d && a != b)) {
        return reference();
    }
    let p0 = per_tensor(op, "qx[0]", first)?;
    let (so, zo) = (scale.unwrap_or(p0.scale), zero_point.unwrap_or(p0.zero_point));
    // A ratio of scales that f32 cannot hold goes to the f64 reference.
    let ratios_fit = xs.iter().all(|x| x.per_tensor_qparams().is_some_and(|(_, s, _)| ((s / so) as f32).is_finite()));
    if !ratios_fit {
        return reference();
    }
    let out_q = Quantizer::per_tensor(so, zo, first.dtype()).map_err(|e| Error::qparams(op, e.to_string()))?;
    let mut sizes = first.sizes().to_vec();
    sizes[d] = match xs.iter().try_fold(0usize, |acc, x| acc.checked_add(x.sizes()[d])) {
        Some(total) => total,
        None => return reference(),
    };
    match first.dtype() {
        DType::QUInt8 => cat_bytes::<u8>(op, xs, d, &sizes, &out_q, so, zo),
        _ => cat_bytes::<i8>(op, xs, d, &sizes, &out_q, so, zo),
    }
}

register_kernel! {
    op: "quantized::cat",
    dtypes: [QUInt8, QInt8],
    name: "avx2_cat",
    priority: PRIORITY,
    is_supported: has_avx2,
    fn avx2_cat(qx: &[Tensor], dim: i64, scale: Option<f64>, zero_point: Option<i64>) -> Tensor
}
