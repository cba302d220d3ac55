//! A byte's function by its 256-entry table with AVX2: `vpshufb` looks
//! bytes up in a 16-byte table by their low 4 bits, so sixteen lookups,
//! one per value of the high 4 bits, each kept where the high bits match,
//! cover the 256 entries.

use crate::vector::lookup_scalar;
use std::arch::x86_64::*;

/// The 16 bytes `s` starts with, in both 128-bit lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn row16(s: &[u8]) -> __m256i {
    let s = &s[..16];
    // SAFETY: `s` holds 16 bytes; an unaligned load.
    _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(s.as_ptr() as *const __m128i) })
}

/// `dst[i] = table[src[i]]` for the positions both slices have.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn lookup(table: &[u8; 256], src: &[u8], dst: &mut [u8]) {
    let rows: [__m256i; 16] = std::array::from_fn(|i| row16(&table[16 * i..]));
    let nibble = _mm256_set1_epi8(0x0f);
    let n = src.len().min(dst.len());
    let whole = n - n % 32;
    for (s, d) in src[..whole].chunks_exact(32).zip(dst[..whole].chunks_exact_mut(32)) {
        // SAFETY: `s` holds 32 bytes; an unaligned load.
        let x = unsafe { _mm256_loadu_si256(s.as_ptr() as *const __m256i) };
        let low = _mm256_and_si256(x, nibble);
        let high = _mm256_and_si256(_mm256_srli_epi16::<4>(x), nibble);
        let mut r = _mm256_setzero_si256();
        for (i, row) in rows.iter().enumerate() {
            let hit = _mm256_cmpeq_epi8(high, _mm256_set1_epi8(i as i8));
            r = _mm256_or_si256(r, _mm256_and_si256(hit, _mm256_shuffle_epi8(*row, low)));
        }
        // SAFETY: `d` holds 32 writable bytes; an unaligned store.
        unsafe { _mm256_storeu_si256(d.as_mut_ptr() as *mut __m256i, r) };
    }
    lookup_scalar(table, &src[whole..n], &mut dst[whole..n]);
}
