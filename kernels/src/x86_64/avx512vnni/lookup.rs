//! A byte's function by its 256-entry table with AVX-512 VBMI:
//! `vpermi2b` looks 64 bytes up in a 128-byte table, so two of them cover
//! the 256 entries, and each byte's top bit picks between their results.
//! Masked loads and stores take the last partial block, so the routine
//! has no scalar tail.

use std::arch::x86_64::*;

/// Whether this CPU has VBMI, which the VNNI token does not prove (Cascade
/// Lake has VNNI without it; Ice Lake, Zen 4 and Zen 5 have both).
pub(super) fn has_vbmi() -> bool {
    std::arch::is_x86_feature_detected!("avx512vbmi")
}

/// The 64 bytes `s` starts with.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn load64(s: &[u8]) -> __m512i {
    let s = &s[..64];
    // SAFETY: `s` holds 64 bytes; an unaligned load.
    unsafe { _mm512_loadu_si512(s.as_ptr() as *const __m512i) }
}

/// `dst[i] = table[src[i]]` for the positions both slices have.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(super) unsafe fn lookup(table: &[u8; 256], src: &[u8], dst: &mut [u8]) {
    let quarters: [__m512i; 4] = std::array::from_fn(|i| load64(&table[64 * i..]));
    for (s, d) in src.chunks(64).zip(dst.chunks_mut(64)) {
        let n = s.len().min(d.len());
        let mask: __mmask64 = if n == 64 { !0 } else { (1u64 << n) - 1 };
        // SAFETY: the mask covers the first `n` bytes, which `s` holds; a
        // masked load touches no byte outside it.
        let x = unsafe { _mm512_maskz_loadu_epi8(mask, s.as_ptr() as *const i8) };
        // Bits 0-6 index a 128-byte half; bit 7 picks the half.
        let low = _mm512_permutex2var_epi8(quarters[0], x, quarters[1]);
        let high = _mm512_permutex2var_epi8(quarters[2], x, quarters[3]);
        let r = _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), low, high);
        // SAFETY: as the load: `d` holds the `n` bytes the mask stores.
        unsafe { _mm512_mask_storeu_epi8(d.as_mut_ptr() as *mut i8, mask, r) };
    }
}
