//! The [`VectorIsa`] of the [`Avx512Vnni`] token: quantize and the
//! requantizing binary ops (add, add_relu, mul) with 512-bit vectors, 64
//! elements per step. At 256 bits these run out of arithmetic ports
//! before memory bandwidth (a 16M-element add at 13 GB/s, where relu moves
//! 33); the other routines are bound by memory and stay AVX2's.
//!
//! Each lane runs the AVX2 routine's instructions in the same order, so
//! the results are AVX2's, bit for bit: `vcvtps2dq` rounds half to even in
//! both, max and min return their second operand on equal zeros in both,
//! and NaN is masked to 0 before the clamp in both. Slices shorter than a
//! step, and the tail of every slice, go to the AVX2 routine.

use crate::args::window::Window;
use crate::vector::{BinaryParams, ByteElement, Combine, QuantizeParams, RequantParams, VectorIsa};
use qtensor_runtime::isa::Avx512Vnni;
use std::arch::x86_64::*;

/// Elements per step: four vectors of 16 lanes, packed to one of bytes.
const STEP: usize = 64;

/// The output size from which quantize stores non-temporally: an output
/// this large would not stay in L2 for its reader anyway, and streaming
/// saves reading its lines before writing them (a 16M-element quantize
/// 1.1x faster).
const STREAM_BYTES: usize = 4 << 20;

/// Orders earlier non-temporal stores before anything that follows.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
fn stream_fence() {
    // Before Rust 1.90 (the MSRV is 1.89) `_mm_sfence` is an unsafe fn.
    #[allow(unused_unsafe)]
    // SAFETY: a store fence has no preconditions.
    unsafe {
        _mm_sfence()
    }
}

/// Four vectors of i32 lanes, each within the byte type's range, as 64
/// bytes in order: two rounds of packs (which keep the values) and one
/// permute of the 4-byte groups they leave interleaved by 128-bit lane.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
fn pack64<B: ByteElement>(q: [__m512i; 4]) -> __m512i {
    let (lo, hi) = (_mm512_packs_epi32(q[0], q[1]), _mm512_packs_epi32(q[2], q[3]));
    let bytes = if B::SIGNED { _mm512_packs_epi16(lo, hi) } else { _mm512_packus_epi16(lo, hi) };
    _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), bytes)
}

/// Stores 64 bytes; with `stream`, non-temporally when `dst` is 64-byte
/// aligned (the caller fences after its loop).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
fn store64<B: ByteElement>(dst: &mut [B], v: __m512i, stream: bool) {
    let dst = &mut dst[..STEP];
    let p = dst.as_mut_ptr() as *mut __m512i;
    if stream && (p as usize).is_multiple_of(64) {
        // SAFETY: 64 writable bytes at `p` (sliced above), 64-byte aligned
        // (checked), as `_mm512_stream_si512` requires.
        unsafe { _mm512_stream_si512(p, v) }
    } else {
        // SAFETY: 64 writable bytes at `p`; an unaligned store.
        unsafe { _mm512_storeu_si512(p, v) }
    }
}

/// 16 bytes widened to i32 lanes, by the byte type's sign.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
fn widen16<B: ByteElement>(src: &[B]) -> __m512i {
    let src = &src[..16];
    // SAFETY: `src` holds 16 one-byte elements; an unaligned load.
    let v = unsafe { _mm_loadu_si128(src.as_ptr() as *const __m128i) };
    if B::SIGNED {
        _mm512_cvtepi8_epi32(v)
    } else {
        _mm512_cvtepu8_epi32(v)
    }
}

/// `quantize_bytes` over whole steps; returns the elements done.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn quantize_steps<B: ByteElement>(src: &[f32], dst: &mut [B], q: QuantizeParams) -> usize {
    let QuantizeParams { inv, zero_point, qmin, qmax } = q;
    let (vinv, zp) = (_mm512_set1_ps(inv), _mm512_set1_epi32(zero_point as i32));
    let (lo, hi) = (_mm512_set1_ps((qmin - zero_point) as f32), _mm512_set1_ps((qmax - zero_point) as f32));
    let stream = dst.len() >= STREAM_BYTES;
    let mut done = 0;
    for (s, d) in src.chunks_exact(STEP).zip(dst.chunks_exact_mut(STEP)) {
        let mut q = [_mm512_setzero_si512(); 4];
        for (k, q) in q.iter_mut().enumerate() {
            let s = &s[16 * k..16 * k + 16];
            // SAFETY: `s` holds 16 floats; an unaligned load.
            let v = _mm512_mul_ps(unsafe { _mm512_loadu_ps(s.as_ptr()) }, vinv);
            // NaN to 0 (so it lands on the zero point), then the clamp.
            let v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(v, v), v);
            *q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi)), zp);
        }
        store64(d, pack64::<B>(q), stream);
        done += STEP;
    }
    if stream {
        stream_fence();
    }
    done
}

/// `binary_bytes` over whole steps; returns the elements done.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn binary_steps<B: ByteElement>(a: &[B], b: &[B], dst: &mut [B], p: BinaryParams, stream: bool) -> usize {
    let (lo, hi) = (_mm512_set1_ps((p.lo - p.zo) as f32), _mm512_set1_ps((p.hi - p.zo) as f32));
    let (za, zb, zo) = (_mm512_set1_epi32(p.za as i32), _mm512_set1_epi32(p.zb as i32), _mm512_set1_epi32(p.zo as i32));
    let mut done = 0;
    for ((x, y), d) in a.chunks_exact(STEP).zip(b.chunks_exact(STEP)).zip(dst.chunks_exact_mut(STEP)) {
        let mut q = [_mm512_setzero_si512(); 4];
        for (k, q) in q.iter_mut().enumerate() {
            let (x, y) = (widen16(&x[16 * k..]), widen16(&y[16 * k..]));
            let v = match p.combine {
                Combine::Add { sa, pa, sb, pb, inv } => {
                    let xa = _mm512_fmadd_ps(_mm512_cvtepi32_ps(x), _mm512_set1_ps(sa), _mm512_set1_ps(pa));
                    let xb = _mm512_fmadd_ps(_mm512_cvtepi32_ps(y), _mm512_set1_ps(sb), _mm512_set1_ps(pb));
                    _mm512_mul_ps(_mm512_add_ps(xa, xb), _mm512_set1_ps(inv))
                }
                Combine::Mul { m } => {
                    let product = _mm512_mullo_epi32(_mm512_sub_epi32(x, za), _mm512_sub_epi32(y, zb));
                    _mm512_mul_ps(_mm512_cvtepi32_ps(product), _mm512_set1_ps(m))
                }
            };
            *q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi)), zo);
        }
        store64(d, pack64::<B>(q), stream);
        done += STEP;
    }
    if stream {
        stream_fence();
    }
    done
}

impl VectorIsa for Avx512Vnni {
    fn detect() -> Option<Self> {
        Avx512Vnni::detect()
    }

    fn quantize_bytes<B: ByteElement>(self, src: &[f32], dst: &mut [B], q: QuantizeParams) {
        // SAFETY: `self` is an `Avx512Vnni` token, which proves AVX-512 F
        // and BW.
        let done = unsafe { quantize_steps(src, dst, q) };
        self.avx2().quantize_bytes(&src[done..], &mut dst[done..], q)
    }

    fn quantize_i32(self, src: &[f32], dst: &mut [i32], inv: f32, zero_point: i64) {
        self.avx2().quantize_i32(src, dst, inv, zero_point)
    }

    fn dequantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [f32], scale: f32, zero_point: i64, stream: bool) {
        self.avx2().dequantize_bytes(src, dst, scale, zero_point, stream)
    }

    fn dequantize_i32(self, src: &[i32], dst: &mut [f32], scale: f32, zero_point: i64) {
        self.avx2().dequantize_i32(src, dst, scale, zero_point)
    }

    fn relu_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], zero_point: i64, stream: bool) {
        self.avx2().relu_bytes(src, dst, zero_point, stream)
    }

    fn relu_i32(self, src: &[i32], dst: &mut [i32], zero_point: i64) {
        self.avx2().relu_i32(src, dst, zero_point)
    }

    fn binary_bytes<B: ByteElement>(self, a: &[B], b: &[B], dst: &mut [B], p: BinaryParams, stream: bool) {
        // SAFETY: as in `quantize_bytes`.
        let done = unsafe { binary_steps(a, b, dst, p, stream) };
        self.avx2().binary_bytes(&a[done..], &b[done..], &mut dst[done..], p, stream)
    }

    fn requantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], p: RequantParams) {
        self.avx2().requantize_bytes(src, dst, p)
    }

    fn lookup_bytes(self, table: &[u8; 256], src: &[u8], dst: &mut [u8]) {
        if super::lookup::has_vbmi() {
            // SAFETY: `self` proves AVX-512 F and BW; VBMI was just
            // detected.
            unsafe { super::lookup::lookup(table, src, dst) }
        } else {
            self.avx2().lookup_bytes(table, src, dst)
        }
    }

    fn max_pool_row<B: ByteElement>(self, src: &[B], dims: [usize; 3], win: &Window, oy: usize, out: &mut [B]) {
        self.avx2().max_pool_row(src, dims, win, oy, out)
    }

    fn max_pool_plane<B: ByteElement>(
        self,
        plane: &[B],
        hw: [usize; 2],
        win: &Window,
        out: &mut [B],
        scratch: &mut Vec<u8>,
    ) -> bool {
        self.avx2().max_pool_plane(plane, hw, win, out, scratch)
    }
}
