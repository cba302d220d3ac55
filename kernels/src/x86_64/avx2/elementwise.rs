//! AVX2 relu (exact) and quantized::add, add_relu and mul on quint8/qint8
//! (within one step of the exact result, as docs/conformance-format.md allows).
//!
//! The fast paths take same-shape, per-tensor operands; broadcasting and
//! other dtypes go to the reference kernels.

use super::simd::{load32, load8_i32, load8_widen, pack32, store32, store8_i32, stream_fence, Byte, STREAM_BYTES};
use super::PRIORITY;
use crate::parallel::for_each_chunk;
use crate::reference::common::{output_quantizer, per_tensor};
use crate::reference::elementwise::{reference_quantized_relu, requantized_binary};
use crate::x86_64::has_avx2;
use qtensor_runtime::tensor::layout::contiguous_strides;
use qtensor_runtime::{register_kernel, DType, Element, Quantizer, Result, Storage, Tensor};
use std::arch::x86_64::*;

/// `max(q, zero_point)` over bytes.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
pub fn avx2_relu_bytes<B: Byte>(src: &[B], dst: &mut [B], zero_point: i64, stream: bool) {
    let zp = if B::SIGNED { _mm256_set1_epi8(zero_point as i8) } else { _mm256_set1_epi8(zero_point as u8 as i8) };
    let mut s_chunks = src.chunks_exact(32);
    let mut d_chunks = dst.chunks_exact_mut(32);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        let v = load32(s);
        store32(d, if B::SIGNED { _mm256_max_epi8(v, zp) } else { _mm256_max_epu8(v, zp) }, stream);
    }
    if stream {
        stream_fence();
    }
    for (s, d) in s_chunks.remainder().iter().zip(d_chunks.into_remainder()) {
        *d = B::from_i64(s.to_i64().max(zero_point));
    }
}

/// `max(q, zero_point)` over qint32.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
pub fn avx2_relu_i32(src: &[i32], dst: &mut [i32], zero_point: i64) {
    let zp = _mm256_set1_epi32(zero_point as i32);
    let mut s_chunks = src.chunks_exact(8);
    let mut d_chunks = dst.chunks_exact_mut(8);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        store8_i32(d, _mm256_max_epi32(load8_i32(s), zp));
    }
    for (s, d) in s_chunks.remainder().iter().zip(d_chunks.into_remainder()) {
        *d = (*s).max(zero_point as i32);
    }
}

/// Applies `f(src_chunk, dst_chunk)` over `x` into a new tensor with `x`'s
/// shape and `quantizer`, in parallel chunks. A dense `x` (channels-last,
/// say) is read in place and its layout carries over to the output.
fn map_into<T: Element>(
    x: &Tensor,
    quantizer: &std::sync::Arc<Quantizer>,
    f: impl Fn(&[T], &mut [T]) + Sync + Send,
) -> Result<Tensor> {
    let storage = Storage::for_overwrite(T::STORAGE, x.numel())?;
    x.with_dense::<T, Result<()>>(|src| {
        for_each_chunk(&mut storage.write::<T>()?, |start, d| f(&src[start..start + d.len()], d));
        Ok(())
    })??;
    Tensor::quantized_from_storage_strided(storage, x.sizes(), x.elementwise_output_strides(), quantizer)
}

fn avx2_relu(x: &Tensor) -> Result<Tensor> {
    let q = x.quantizer();
    let (Some(q), true) = (q, has_avx2()) else {
        return reference_quantized_relu(x);
    };
    let Some((_, zp)) = q.per_tensor_qparams() else {
        return reference_quantized_relu(x);
    };
    let stream = x.numel() >= STREAM_BYTES;
    // SAFETY (each closure): `has_avx2()` held above.
    match x.dtype() {
        DType::QUInt8 => map_into::<u8>(x, &q, |s, d| unsafe { avx2_relu_bytes(s, d, zp, stream) }),
        DType::QInt8 => map_into::<i8>(x, &q, |s, d| unsafe { avx2_relu_bytes(s, d, zp, stream) }),
        DType::QInt32 => map_into::<i32>(x, &q, |s, d| unsafe { avx2_relu_i32(s, d, zp) }),
        _ => reference_quantized_relu(x),
    }
}

register_kernel! {
    op: "relu",
    dtypes: [QUInt8, QInt8, QInt32],
    name: "avx2_relu",
    priority: PRIORITY,
    is_supported: has_avx2,
    fn avx2_relu(x: &Tensor) -> Tensor
}

/// How a binary op combines its two centered operands, in output steps.
#[derive(Clone, Copy)]
pub enum Combine {
    /// `(a - za) * ma + (b - zb) * mb`, with `ma = sa / so` and `mb = sb / so`.
    Add {
        /// `sa / so`.
        ma: f32,
        /// `sb / so`.
        mb: f32,
    },
    /// `(a - za) * (b - zb) * m`, with `m = sa * sb / so`.
    Mul {
        /// `sa * sb / so`.
        m: f32,
    },
}

/// The constants of one requantizing binary op over bytes.
#[derive(Clone, Copy)]
pub struct BinaryParams {
    /// How the operands combine.
    pub combine: Combine,
    /// Zero point of `a`.
    pub za: i64,
    /// Zero point of `b`.
    pub zb: i64,
    /// Output zero point.
    pub zo: i64,
    /// Lowest output integer (the zero point for add_relu).
    pub lo: i64,
    /// Highest output integer.
    pub hi: i64,
}

impl BinaryParams {
    fn scalar(&self, a: i64, b: i64) -> i64 {
        let v = match self.combine {
            Combine::Add { ma, mb } => ((a - self.za) as f32).mul_add(ma, (b - self.zb) as f32 * mb),
            Combine::Mul { m } => ((a - self.za) * (b - self.zb)) as f32 * m,
        };
        v.clamp((self.lo - self.zo) as f32, (self.hi - self.zo) as f32).round_ties_even() as i64 + self.zo
    }
}

/// The requantized combination of two same-length byte slices. The zero
/// points are subtracted in integers first (exact), so no large products
/// cancel in f32; the float-to-int conversion does the rounding (half to
/// even).
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (see [`crate::x86_64::has_avx2`]).
#[target_feature(enable = "avx2,fma")]
pub fn avx2_binary_bytes<B: Byte>(a: &[B], b: &[B], dst: &mut [B], p: BinaryParams, stream: bool) {
    // Round the real value in output steps, then add the output zero point
    // exactly, as the reference does (so ties land the same way).
    let (lo, hi) = (_mm256_set1_ps((p.lo - p.zo) as f32), _mm256_set1_ps((p.hi - p.zo) as f32));
    let (za, zb, zo) = (_mm256_set1_epi32(p.za as i32), _mm256_set1_epi32(p.zb as i32), _mm256_set1_epi32(p.zo as i32));
    let lanes = |a: &[B], b: &[B]| {
        // a - za and b - zb exactly, as small integers in f32.
        let da = _mm256_cvtepi32_ps(_mm256_sub_epi32(load8_widen(a), za));
        let db = _mm256_cvtepi32_ps(_mm256_sub_epi32(load8_widen(b), zb));
        let v = match p.combine {
            Combine::Add { ma, mb } => _mm256_fmadd_ps(da, _mm256_set1_ps(ma), _mm256_mul_ps(db, _mm256_set1_ps(mb))),
            // The product of the differences is exact in f32 (below 2^24).
            Combine::Mul { m } => _mm256_mul_ps(_mm256_mul_ps(da, db), _mm256_set1_ps(m)),
        };
        _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi)), zo)
    };
    let mut a_chunks = a.chunks_exact(32);
    let mut b_chunks = b.chunks_exact(32);
    let mut d_chunks = dst.chunks_exact_mut(32);
    for ((x, y), d) in (&mut a_chunks).zip(&mut b_chunks).zip(&mut d_chunks) {
        let v = pack32::<B>(
            lanes(&x[0..8], &y[0..8]),
            lanes(&x[8..16], &y[8..16]),
            lanes(&x[16..24], &y[16..24]),
            lanes(&x[24..32], &y[24..32]),
        );
        store32(d, v, stream);
    }
    if stream {
        stream_fence();
    }
    for ((x, y), d) in a_chunks.remainder().iter().zip(b_chunks.remainder()).zip(d_chunks.into_remainder()) {
        *d = B::from_i64(p.scalar(x.to_i64(), y.to_i64()));
    }
}

/// quantized::add/add_relu/mul with AVX2 where it applies.
fn avx2_binary(op: &str, a: &Tensor, b: &Tensor, scale: f64, zero_point: i64, relu: bool, mul: bool) -> Result<Tensor> {
    let reference =
        || requantized_binary(op, a, b, scale, zero_point, relu, if mul { |x, y| x * y } else { |x, y| x + y });
    let bytes = matches!(a.dtype(), DType::QUInt8 | DType::QInt8);
    if !has_avx2() || !bytes || a.dtype() != b.dtype() || a.sizes() != b.sizes() {
        return reference();
    }
    let (Ok(pa), Ok(pb)) = (per_tensor(op, "qa", a), per_tensor(op, "qb", b)) else {
        return reference();
    };
    let out_q = output_quantizer(op, a.dtype(), scale, zero_point)?;
    let combine = if mul {
        Combine::Mul { m: (pa.scale * pb.scale / scale) as f32 }
    } else {
        Combine::Add { ma: (pa.scale / scale) as f32, mb: (pb.scale / scale) as f32 }
    };
    // Multipliers f32 cannot hold, or two huge terms that could cancel to a
    // small result with f32 rounding errors above a step: the reference's
    // f64 arithmetic is exact enough.
    let usable = match combine {
        Combine::Add { ma, mb } => ma.is_finite() && mb.is_finite() && (ma.abs() < 16384.0 || mb.abs() < 16384.0),
        Combine::Mul { m } => m.is_finite() && m != 0.0,
    };
    if !usable {
        return reference();
    }
    let lo = if relu { zero_point.max(pa.qmin) } else { pa.qmin };
    let p = BinaryParams { combine, za: pa.zero_point, zb: pb.zero_point, zo: zero_point, lo, hi: pa.qmax };
    fn run<B: Byte>(a: &Tensor, b: &Tensor, out_q: &std::sync::Arc<Quantizer>, p: BinaryParams) -> Result<Tensor> {
        let storage = Storage::for_overwrite(B::STORAGE, a.numel())?;
        // Operands in one dense layout (both channels-last, say) are read in
        // place and keep it; otherwise both are read row-major.
        // (Same sizes, so same strides make b dense exactly when a is.)
        let same_layout = a.strides() == b.strides() && a.is_dense();
        let strides = if same_layout { a.strides().into() } else { contiguous_strides(a.sizes()) };
        let read = |t: &Tensor, f: &mut dyn FnMut(&[B]) -> Result<()>| -> Result<()> {
            if same_layout {
                t.with_dense::<B, Result<()>>(|s| f(s))?
            } else {
                t.with_contiguous::<B, Result<()>>(|s| f(s))?
            }
        };
        read(a, &mut |sa| {
            read(b, &mut |sb| {
                // SAFETY: only reached after `has_avx2()` held in `avx2_binary`.
                let stream = sa.len() >= STREAM_BYTES;
                for_each_chunk(&mut storage.write::<B>()?, |start, d| unsafe {
                    avx2_binary_bytes(&sa[start..start + d.len()], &sb[start..start + d.len()], d, p, stream)
                });
                Ok(())
            })
        })?;
        Tensor::quantized_from_storage_strided(storage, a.sizes(), strides, out_q)?.in_format_of(a)
    }
    match a.dtype() {
        DType::QUInt8 => run::<u8>(a, b, &out_q, p),
        _ => run::<i8>(a, b, &out_q, p),
    }
}

fn avx2_add(a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
    avx2_binary("quantized::add", a, b, scale, zero_point, false, false)
}

fn avx2_add_relu(a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
    avx2_binary("quantized::add_relu", a, b, scale, zero_point, true, false)
}

fn avx2_mul(a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
    avx2_binary("quantized::mul", a, b, scale, zero_point, false, true)
}

register_kernel! {
    op: "quantized::add",
    dtypes: [QUInt8, QInt8],
    name: "avx2_add",
    priority: PRIORITY,
    is_supported: has_avx2,
    fn avx2_add(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
}

register_kernel! {
    op: "quantized::add_relu",
    dtypes: [QUInt8, QInt8],
    name: "avx2_add_relu",
    priority: PRIORITY,
    is_supported: has_avx2,
    fn avx2_add_relu(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
}

register_kernel! {
    op: "quantized::mul",
    dtypes: [QUInt8, QInt8],
    name: "avx2_mul",
    priority: PRIORITY,
    is_supported: has_avx2,
    fn avx2_mul(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
}
