//! AVX2 max_pool2d routines (exact, like the reference): NCHW planes of
//! quint8/qint8, and channels-last rows of them, a pixel's channels 64 at
//! a time.

use super::simd::store_prefix;
use crate::args::window::Window;
use crate::vector::{for_each_window, ByteElement, WindowTaps};
use std::arch::x86_64::*;

/// Extra bytes after a padded row, so vector loads never run past it.
const SLACK: usize = 64;

/// One output plane. `flip` maps qint8 into unsigned order (x ^ 0x80), so
/// one unsigned max serves both dtypes; padding never wins (it is 0).
#[target_feature(enable = "avx2,fma")]
fn plane_max(src: &[u8], h: usize, w: usize, win: &Window, flip: u8, out: &mut [u8], row: &mut [u8]) {
    let [kh, kw] = [win.kernel[0] as usize, win.kernel[1] as usize];
    let [sh, sw] = [win.stride[0], win.stride[1]];
    let (ph, pw) = (win.pad[0], win.pad[1] as usize);
    let (dh, dw) = (win.dilation[0], win.dilation[1] as usize);
    let [oh, ow] = win.out;
    let vflip = _mm256_set1_epi8(flip as i8);
    let low_bytes = _mm256_set1_epi16(0x00FF);
    // The border of `row` is zero (never the max) and only row[pw..pw + w]
    // is written below: the first window row is stored, the others maxed in.
    row.fill(0);
    for y in 0..oh {
        let mut first = true;
        for ky in 0..kh {
            let iy = y as i64 * sh - ph + (ky as i64) * dh;
            if iy < 0 || iy >= h as i64 {
                continue;
            }
            let line = &src[iy as usize * w..(iy as usize + 1) * w];
            let dst = &mut row[pw..pw + w];
            if first {
                first = false;
                for (d, &v) in dst.iter_mut().zip(line) {
                    *d = v ^ flip;
                }
                continue;
            }
            let mut i = 0;
            while i + 32 <= w {
                // SAFETY: i + 32 <= w, within `line` and `dst`; unaligned.
                unsafe {
                    let v = _mm256_xor_si256(_mm256_loadu_si256(line.as_ptr().add(i) as *const __m256i), vflip);
                    let m = _mm256_max_epu8(v, _mm256_loadu_si256(dst.as_ptr().add(i) as *const __m256i));
                    _mm256_storeu_si256(dst.as_mut_ptr().add(i) as *mut __m256i, m);
                }
                i += 32;
            }
            if i + 16 <= w {
                // SAFETY: i + 16 <= w, within `line` and `dst`; unaligned.
                unsafe {
                    let v = _mm_xor_si128(
                        _mm_loadu_si128(line.as_ptr().add(i) as *const __m128i),
                        _mm256_castsi256_si128(vflip),
                    );
                    let m = _mm_max_epu8(v, _mm_loadu_si128(dst.as_ptr().add(i) as *const __m128i));
                    _mm_storeu_si128(dst.as_mut_ptr().add(i) as *mut __m128i, m);
                }
                i += 16;
            }
            for j in i..w {
                dst[j] = dst[j].max(line[j] ^ flip);
            }
        }
        if first {
            // No input row in the window: only padding, which never wins.
            row[pw..pw + w].fill(0);
        }
        // Horizontal max with stride sw over the padded row.
        let o = &mut out[y * ow..(y + 1) * ow];
        let mut x = 0;
        // Full vectors may run past the last output into the row's slack;
        // only the outputs that exist are stored.
        if sw == 1 {
            while x < ow {
                let mut acc = _mm256_setzero_si256();
                for kx in 0..kw {
                    let at = &row[x + kx * dw..x + kx * dw + 32];
                    // SAFETY: `at` holds 32 bytes (the slice above is checked).
                    acc = _mm256_max_epu8(acc, unsafe { _mm256_loadu_si256(at.as_ptr() as *const __m256i) });
                }
                let n = (ow - x).min(32);
                store_prefix(&mut o[x..x + n], _mm256_xor_si256(acc, vflip));
                x += 32;
            }
        } else if sw == 2 {
            while x < ow {
                let mut acc = _mm256_setzero_si256();
                for kx in 0..kw {
                    let at = &row[2 * x + kx * dw..2 * x + kx * dw + 32];
                    // SAFETY: `at` holds 32 bytes (the slice above is checked).
                    let v = unsafe { _mm256_loadu_si256(at.as_ptr() as *const __m256i) };
                    acc = _mm256_max_epu16(acc, _mm256_and_si256(v, low_bytes));
                }
                let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi16(acc, acc));
                let n = (ow - x).min(16);
                store_prefix(&mut o[x..x + n], _mm256_xor_si256(packed, vflip));
                x += 16;
            }
        }
        for (xo, d) in o.iter_mut().enumerate().skip(x) {
            let base = xo * sw as usize;
            let m = (0..kw).map(|kx| row[base + kx * dw]).max().unwrap_or(0);
            *d = m ^ flip;
        }
    }
}

/// `max(a, b)` per byte, in `B`'s order.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn max32<B: ByteElement>(a: __m256i, b: __m256i) -> __m256i {
    if B::SIGNED {
        _mm256_max_epi8(a, b)
    } else {
        _mm256_max_epu8(a, b)
    }
}

/// The first `W` (32 or 16) bytes of `s`, in a 256-bit vector (16 bytes
/// in the low half, the high half 0).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn load<const W: usize>(s: &[u8]) -> __m256i {
    let s = &s[..W];
    if W == 32 {
        // SAFETY: `s` holds 32 bytes; an unaligned load.
        unsafe { _mm256_loadu_si256(s.as_ptr() as *const __m256i) }
    } else {
        // SAFETY: `s` holds at least 16 bytes; an unaligned load.
        _mm256_zextsi128_si256(unsafe { _mm_loadu_si128(s.as_ptr() as *const __m128i) })
    }
}

/// The running max of `NV` vectors of `W` (32 or 16) channels from `ch`
/// over a window's taps, stored once.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn window_max<B: ByteElement, const NV: usize, const W: usize>(
    src: &[u8],
    taps: &WindowTaps,
    ch: usize,
    dst: &mut [u8],
) {
    // Started from the first tap, which the loop then maxes in again:
    // harmless, and no lowest value to load.
    let first = &src[taps.offset(0, 0) + ch..][..W * NV];
    let mut acc: [__m256i; NV] = std::array::from_fn(|v| load::<W>(&first[W * v..]));
    for ty in 0..taps.count[0] {
        for tx in 0..taps.count[1] {
            let x = &src[taps.offset(ty, tx) + ch..][..W * NV];
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = max32::<B>(*acc, load::<W>(&x[W * v..]));
            }
        }
    }
    for (v, acc) in acc.into_iter().enumerate() {
        let d = &mut dst[ch + W * v..][..W];
        if W == 32 {
            // SAFETY: `d` holds 32 writable bytes; an unaligned store.
            unsafe { _mm256_storeu_si256(d.as_mut_ptr() as *mut __m256i, acc) };
        } else {
            // SAFETY: `d` holds at least 16 writable bytes; an unaligned
            // store of the low half.
            unsafe { _mm_storeu_si128(d.as_mut_ptr() as *mut __m128i, _mm256_castsi256_si128(acc)) };
        }
    }
}

/// One output row of a channels-last max pool of bytes (`src` one image
/// `[h, w, c]`, `out` the row's `ow` pixels): each pixel's channels 64
/// at a time, the window's running max held in registers, then 32; the
/// last ones (fewer than 32) by one more vector that ends at the last
/// channel and overlaps channels already done (their max again, the same
/// bytes). Under 16 channels, tap by tap across the channels. On the
/// portable row's walk (`vector::for_each_window`).
#[target_feature(enable = "avx2,fma")]
pub(super) fn max_pool_row<B: ByteElement>(src: &[B], dims: [usize; 3], win: &Window, oy: usize, out: &mut [B]) {
    let c = dims[2];
    for_each_window(dims, win, oy, B::LOWEST, out, |taps, dst| {
        let bytes: &[u8] = bytemuck::cast_slice(src);
        let dst_bytes: &mut [u8] = bytemuck::cast_slice_mut(dst);
        // The closure inherits this function's AVX2.
        let mut ch = 0;
        while ch + 64 <= c {
            window_max::<B, 2, 32>(bytes, taps, ch, dst_bytes);
            ch += 64;
        }
        if ch + 32 <= c {
            window_max::<B, 1, 32>(bytes, taps, ch, dst_bytes);
            ch += 32;
        }
        if ch == c {
            return;
        }
        // ShuffleNetV2's only pool has 24 channels: a scalar tail there
        // had been most of the op.
        if c >= 32 {
            window_max::<B, 1, 32>(bytes, taps, c - 32, dst_bytes);
        } else if c >= 16 {
            window_max::<B, 1, 16>(bytes, taps, 0, dst_bytes);
            window_max::<B, 1, 16>(bytes, taps, c - 16, dst_bytes);
        } else {
            taps.max_channels(src, 0, dst);
        }
    })
}

/// One NCHW plane of bytes; false (nothing written) when the padding or
/// the window reaches so far beyond the input that the row buffer, or the
/// loops over window taps, would be sized by the window rather than by the
/// input (a padding or window of 2^40 on a 4x4 plane asked for 1 TiB): the
/// driver then pools row by row, clipping each window to the input.
#[target_feature(enable = "avx2,fma")]
pub(super) fn max_pool_plane<B: ByteElement>(
    plane: &[B],
    [h, w]: [usize; 2],
    win: &Window,
    out: &mut [B],
    scratch: &mut Vec<u8>,
) -> bool {
    let ow = win.out[1];
    // The padded row covers every tap of every output, plus slack for the
    // full vectors that run past the last output.
    let reach = ((ow - 1) as i128 * win.stride[1] as i128)
        .saturating_add((win.kernel[1] as i128 - 1).saturating_mul(win.dilation[1] as i128))
        .saturating_add(1);
    let extent_h = (win.kernel[0] as i128 - 1).saturating_mul(win.dilation[0] as i128).saturating_add(1);
    // Paddings of at most the input's size bound the row by 3w and the
    // window's rows by 3h; ceil_mode's partial window adds under a stride.
    let (h_, w_) = (h as i128, w as i128);
    let pad_bounded = win.pad[0] as i128 <= h_ && win.pad[1] as i128 <= w_;
    if !pad_bounded || reach > 3 * w_ + SLACK as i128 || extent_h > 3 * h_ {
        return false;
    }
    let row_len = (reach as usize).max(win.pad[1] as usize + w) + 2 * SLACK;
    scratch.resize(row_len, 0);
    // Both byte types are pooled as raw bytes, qint8 in flipped order.
    let flip = if B::SIGNED { 0x80 } else { 0 };
    let src: &[u8] = bytemuck::cast_slice(plane);
    let dst: &mut [u8] = bytemuck::cast_slice_mut(out);
    plane_max(src, h, w, win, flip, dst, scratch);
    true
}
