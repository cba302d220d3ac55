//! AVX2 relu (exact) and the requantizing binary ops (add, add_relu,
//! mul) over bytes, with the lane arithmetic of `BinaryParams::scalar`.

use super::simd::{load32, load8_i32, load8_widen, pack32, prefetch_stream, store32, store8_i32, stream_fence};
use crate::vector::{binary_scalar, relu_scalar, BinaryParams, ByteElement, Combine};
use std::arch::x86_64::*;

/// `max(q, zero_point)` over bytes.
#[target_feature(enable = "avx2,fma")]
pub(super) fn relu_bytes<B: ByteElement>(src: &[B], dst: &mut [B], zero_point: i64, stream: bool) {
    let zp = if B::SIGNED { _mm256_set1_epi8(zero_point as i8) } else { _mm256_set1_epi8(zero_point as u8 as i8) };
    let mut s_chunks = src.chunks_exact(32);
    let mut d_chunks = dst.chunks_exact_mut(32);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        prefetch_stream(s);
        let v = load32(s);
        store32(d, if B::SIGNED { _mm256_max_epi8(v, zp) } else { _mm256_max_epu8(v, zp) }, stream);
    }
    if stream {
        stream_fence();
    }
    relu_scalar(s_chunks.remainder(), d_chunks.into_remainder(), zero_point);
}

/// `max(q, zero_point)` over qint32.
#[target_feature(enable = "avx2,fma")]
pub(super) fn relu_i32(src: &[i32], dst: &mut [i32], zero_point: i64) {
    let zp = _mm256_set1_epi32(zero_point as i32);
    let mut s_chunks = src.chunks_exact(8);
    let mut d_chunks = dst.chunks_exact_mut(8);
    for (s, d) in (&mut s_chunks).zip(&mut d_chunks) {
        store8_i32(d, _mm256_max_epi32(load8_i32(s), zp));
    }
    relu_scalar(s_chunks.remainder(), d_chunks.into_remainder(), zero_point);
}

/// The requantized combination of two same-length byte slices. The zero
/// points are subtracted in integers first (exact), so no large products
/// cancel in f32; the float-to-int conversion does the rounding (half to
/// even).
#[target_feature(enable = "avx2,fma")]
pub(super) fn binary_bytes<B: ByteElement>(a: &[B], b: &[B], dst: &mut [B], p: BinaryParams, stream: bool) {
    // Round the real value in output steps, then add the output zero point
    // exactly, as the reference does (so ties land the same way).
    let (lo, hi) = (_mm256_set1_ps((p.lo - p.zo) as f32), _mm256_set1_ps((p.hi - p.zo) as f32));
    let (za, zb, zo) = (_mm256_set1_epi32(p.za as i32), _mm256_set1_epi32(p.zb as i32), _mm256_set1_epi32(p.zo as i32));
    let lanes = |a: &[B], b: &[B]| {
        let v = match p.combine {
            // PyTorch's vector add: each operand dequantized by one fused
            // multiply-add onto its premultiplied zero point.
            Combine::Add { sa, pa, sb, pb, inv } => {
                let xa = _mm256_fmadd_ps(_mm256_cvtepi32_ps(load8_widen(a)), _mm256_set1_ps(sa), _mm256_set1_ps(pa));
                let xb = _mm256_fmadd_ps(_mm256_cvtepi32_ps(load8_widen(b)), _mm256_set1_ps(sb), _mm256_set1_ps(pb));
                _mm256_mul_ps(_mm256_add_ps(xa, xb), _mm256_set1_ps(inv))
            }
            // The product of the differences is exact in i32 and in f32
            // (below 2^24).
            Combine::Mul { m } => {
                let da = _mm256_sub_epi32(load8_widen(a), za);
                let db = _mm256_sub_epi32(load8_widen(b), zb);
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(da, db)), _mm256_set1_ps(m))
            }
        };
        _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi)), zo)
    };
    let mut a_chunks = a.chunks_exact(32);
    let mut b_chunks = b.chunks_exact(32);
    let mut d_chunks = dst.chunks_exact_mut(32);
    for ((x, y), d) in (&mut a_chunks).zip(&mut b_chunks).zip(&mut d_chunks) {
        prefetch_stream(x);
        prefetch_stream(y);
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
    binary_scalar(a_chunks.remainder(), b_chunks.remainder(), d_chunks.into_remainder(), p);
}
