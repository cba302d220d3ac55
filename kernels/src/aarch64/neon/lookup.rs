//! A byte's function by its 256-entry table with NEON: `tbl` looks 16
//! bytes up in a 64-byte table (four registers), so four lookups cover
//! the 256 entries. The first returns 0 for indices of 64 and above; each
//! next one (`tbx`) takes the index less 64 more, and leaves the bytes
//! whose index falls outside its quarter as they were.

use crate::vector::lookup_scalar;
use std::arch::aarch64::*;

/// The 16 bytes `s` starts with.
#[target_feature(enable = "neon")]
#[inline]
fn load16(s: &[u8]) -> uint8x16_t {
    let s = &s[..16];
    // SAFETY: `s` holds 16 bytes.
    unsafe { vld1q_u8(s.as_ptr()) }
}

/// `dst[i] = table[src[i]]` for the positions both slices have.
///
/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn lookup(table: &[u8; 256], src: &[u8], dst: &mut [u8]) {
    let quarter = |q: usize| {
        let t = &table[64 * q..];
        uint8x16x4_t(load16(t), load16(&t[16..]), load16(&t[32..]), load16(&t[48..]))
    };
    let quarters = [quarter(0), quarter(1), quarter(2), quarter(3)];
    let n = src.len().min(dst.len());
    let whole = n - n % 16;
    let step = vdupq_n_u8(64);
    for (s, d) in src[..whole].chunks_exact(16).zip(dst[..whole].chunks_exact_mut(16)) {
        let mut x = load16(s);
        let mut r = vqtbl4q_u8(quarters[0], x);
        for q in &quarters[1..] {
            // Wraps below 0: those bytes were an earlier quarter's.
            x = vsubq_u8(x, step);
            r = vqtbx4q_u8(r, *q, x);
        }
        // SAFETY: `d` holds 16 writable bytes.
        unsafe { vst1q_u8(d.as_mut_ptr(), r) };
    }
    lookup_scalar(table, &src[whole..n], &mut dst[whole..n]);
}
