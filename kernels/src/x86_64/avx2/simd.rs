//! Vector building blocks shared by the AVX2 kernels: the quantize step,
//! widening byte loads, packing 32 lanes of i32 into bytes, and loads and
//! stores (optionally non-temporal).
//!
//! These are safe `#[target_feature]` functions: the compiler lets only
//! code compiled for AVX2 and FMA call them. The `unsafe` blocks inside are
//! the pointer loads and stores, each bounded by an assertion on the slice
//! length.

use crate::vector::ByteElement;
use std::arch::x86_64::*;

/// `x * inv` with NaN mapped to 0 (so it lands on the zero point), clamped
/// to `[lo, hi]` = `[qmin - zp, qmax - zp]`. Converting the result with
/// `_mm256_cvtps_epi32` rounds half to even (the default MXCSR mode, which
/// nothing in qtensor changes); for integer bounds, clamping before rounding
/// equals rounding before clamping, so the lanes equal
/// `numerics::quantize_val` minus the zero point.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn scale_clamp(x: __m256, inv: __m256, lo: __m256, hi: __m256) -> __m256 {
    let v = _mm256_mul_ps(x, inv);
    let ordered = _mm256_cmp_ps::<_CMP_ORD_Q>(v, v);
    _mm256_min_ps(_mm256_max_ps(_mm256_and_ps(v, ordered), lo), hi)
}

/// Loads 8 bytes and widens them to 8 lanes of i32.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn load8_widen<B: ByteElement>(src: &[B]) -> __m256i {
    assert!(src.len() >= 8);
    // SAFETY: `src` holds at least 8 one-byte elements (asserted above), and
    // `_mm_loadl_epi64` reads exactly 8 bytes with no alignment requirement.
    let v = unsafe { _mm_loadl_epi64(src.as_ptr() as *const __m128i) };
    if B::SIGNED {
        _mm256_cvtepi8_epi32(v)
    } else {
        _mm256_cvtepu8_epi32(v)
    }
}

/// Packs 4 x 8 lanes of i32, each already within the byte type's range,
/// into 32 bytes in order.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn pack32<B: ByteElement>(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    let ab = _mm256_packs_epi32(a, b);
    let cd = _mm256_packs_epi32(c, d);
    let bytes = if B::SIGNED { _mm256_packs_epi16(ab, cd) } else { _mm256_packus_epi16(ab, cd) };
    // The packs work per 128-bit lane; put the 4-byte groups back in order.
    _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// Stores 32 bytes; with `stream`, non-temporally when `dst` is 32-byte
/// aligned (the caller ends its loop with [`stream_fence`]).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn store32<B: ByteElement>(dst: &mut [B], v: __m256i, stream: bool) {
    assert!(dst.len() >= 32);
    let p = dst.as_mut_ptr() as *mut __m256i;
    if stream && (p as usize).is_multiple_of(32) {
        // SAFETY: 32 writable bytes at `p` (asserted above), 32-byte aligned
        // (checked), as `_mm256_stream_si256` requires.
        unsafe { _mm256_stream_si256(p, v) }
    } else {
        // SAFETY: 32 writable bytes at `p` (asserted above); unaligned store.
        unsafe { _mm256_storeu_si256(p, v) }
    }
}

/// Orders earlier non-temporal stores before anything that follows.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn stream_fence() {
    // Before Rust 1.90 (the MSRV is 1.89) `_mm_sfence` is an unsafe fn.
    #[allow(unused_unsafe)]
    // SAFETY: a store fence has no preconditions; SSE is implied by AVX2.
    unsafe {
        _mm_sfence()
    }
}

/// Loads 8 lanes of f32.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn load8_f32(src: &[f32]) -> __m256 {
    assert!(src.len() >= 8);
    // SAFETY: `src` holds at least 8 floats (asserted above); unaligned load.
    unsafe { _mm256_loadu_ps(src.as_ptr()) }
}

/// Stores 8 lanes of f32; with `stream`, non-temporally when `dst` is
/// 32-byte aligned (the caller ends its loop with [`stream_fence`]).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn store8_f32(dst: &mut [f32], v: __m256, stream: bool) {
    assert!(dst.len() >= 8);
    let p = dst.as_mut_ptr();
    if stream && (p as usize).is_multiple_of(32) {
        // SAFETY: 8 writable floats at `p` (asserted above), 32-byte aligned
        // (checked), as `_mm256_stream_ps` requires.
        unsafe { _mm256_stream_ps(p, v) }
    } else {
        // SAFETY: 8 writable floats at `p` (asserted above); unaligned store.
        unsafe { _mm256_storeu_ps(p, v) }
    }
}

/// Loads 8 lanes of i32.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn load8_i32(src: &[i32]) -> __m256i {
    assert!(src.len() >= 8);
    // SAFETY: `src` holds at least 8 i32 (asserted above); unaligned load.
    unsafe { _mm256_loadu_si256(src.as_ptr() as *const __m256i) }
}

/// Stores 8 lanes of i32.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn store8_i32(dst: &mut [i32], v: __m256i) {
    assert!(dst.len() >= 8);
    // SAFETY: `dst` holds at least 8 i32 (asserted above); unaligned store.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, v) }
}

/// Loads 32 bytes.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn load32<B: ByteElement>(src: &[B]) -> __m256i {
    assert!(src.len() >= 32);
    // SAFETY: `src` holds at least 32 one-byte elements (asserted above).
    unsafe { _mm256_loadu_si256(src.as_ptr() as *const __m256i) }
}

/// Stores the first `dst.len()` (at most 32) bytes of `v`, with 16- and
/// 8-byte stores and a short scalar tail: a variable-length
/// `copy_from_slice` would be a `memmove` call per short row.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn store_prefix(dst: &mut [u8], v: __m256i) {
    let n = dst.len().min(32);
    let mut bytes = [0u8; 32];
    // SAFETY: `bytes` is 32 writable bytes; unaligned store.
    unsafe { _mm256_storeu_si256(bytes.as_mut_ptr() as *mut __m256i, v) };
    let mut i = 0;
    while i + 8 <= n {
        dst[i..i + 8].copy_from_slice(&bytes[i..i + 8]);
        i += 8;
    }
    for (d, &b) in dst[i..n].iter_mut().zip(&bytes[i..n]) {
        *d = b;
    }
}

/// PyTorch's requantization of 8 lanes (`gemm::Requant::scalar`): `(c +
/// bias) * mult`, clamped to `[lo, hi]` (already less the zero point),
/// rounded half to even, plus the zero point.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn requant8(c: __m256, bias: __m256, mult: __m256, lo: __m256, hi: __m256, zp: __m256i) -> __m256i {
    let v = _mm256_mul_ps(_mm256_add_ps(c, bias), mult);
    _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi)), zp)
}

/// The clamp bounds and zero point of a requantization, as vectors.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn requant_bounds(lo: f32, hi: f32, zero_point: i32) -> (__m256, __m256, __m256i) {
    let zp = zero_point as f32;
    (_mm256_set1_ps(lo - zp), _mm256_set1_ps(hi - zp), _mm256_set1_epi32(zero_point))
}

/// How far ahead of its loads an elementwise loop asks for its input, in
/// bytes ([`prefetch_stream`]). On the Zen 2 of 2026-12-07, over 16 Mi
/// elements, builds reading the distance from the environment gave
/// quantize_per_tensor 5.2 ms with no prefetch, 4.1 ms at 512-1024 bytes
/// and 4.6-5.3 ms from 1536 bytes on; relu 1.0-1.2 to 0.84-0.88 ms at
/// 512-1024 bytes. Add and cat's requantization were flat from 1 to
/// 4 KiB; the final build ran them 2-4% faster than its parent.
const STREAM_AHEAD: usize = 1024;

/// Asks for the input [`STREAM_AHEAD`] bytes past `step`, one cache line
/// per 64 bytes of `step` (at least one), for loops that read a large
/// input once, a step at a time.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn prefetch_stream<T>(step: &[T]) {
    let bytes = std::mem::size_of_val(step);
    let mut at = STREAM_AHEAD;
    loop {
        prefetch(step, at);
        at += 64;
        if at >= STREAM_AHEAD + bytes {
            break;
        }
    }
}

/// Asks for the cache line `at` bytes past the start of `s`, ahead of the
/// hardware prefetcher. A hint reads nothing and never faults, so `at`
/// may lie past the end of `s`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn prefetch<T>(s: &[T], at: usize) {
    // Before Rust 1.90 (the MSRV is 1.89) `_mm_prefetch` is an unsafe fn.
    #[allow(unused_unsafe)]
    // SAFETY: a prefetch reads nothing and faults on no address; the
    // address is formed with `wrapping_add`, which is defined for any.
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>((s.as_ptr() as *const i8).wrapping_add(at))
    }
}
