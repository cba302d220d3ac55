//! Exact u8 x s8 matrix multiplication for quantized linear and conv.
//!
//! `C[m, n] = Σ_k (x[m, k] - zx)(w[n, k] - zw[n])`, exactly, in i32, then
//! requantized (or scaled to float) in the epilogue. The weight is packed
//! once ([`PackedB`]); an ISA's [`PKernel`] computes the raw dot products
//! over packed blocks, and the driver adds the zero-point terms through row
//! and column sums:
//!
//! `Σ (x - zx)(w - zw) = Σ x w - zw Σ_k x - zx Σ_k w + K zx zw`.
//!
//! `vpmaddubsw` cannot multiply u8 by s8 exactly (its pair sums saturate at
//! i16), so the AVX2 kernel widens both operands to i16 and uses
//! `vpmaddwd`, whose i32 pair sums are exact. (An earlier kernel kept
//! `vpmaddubsw` with the sign trick, `Σ |x - 128| · sign(w, x - 128)`; on
//! Zen 4 its `vpsignb`/`vpabsb` compete with the multipliers for ports and
//! it reached 55% of the multiply roofline, against 78% for `vpmaddwd`.)
//! The AVX-512 VNNI kernel uses `vpdpbusd`, which never saturates.

pub mod conv;
pub mod depthwise;
pub mod driver;
pub mod linear;
pub mod packed;

pub use driver::{
    Activations, gemm_into, gemm_prepared, scalar_finish_f32, scalar_finish_u8, Epilogue, OutElem, PKernel, RowTerms,
};
pub use packed::PackedB;

/// The largest K for which the i32 result is exact: `|C| <= 255 * 255 * K`
/// must stay below 2^31.
pub const MAX_K: usize = 1 << 15;

/// Reads 4 bytes as a little-endian i32 (a k-quad of activations).
#[inline(always)]
pub fn read_i32(s: &[u8], i: usize) -> i32 {
    let mut q = [0u8; 4];
    q.copy_from_slice(&s[i..i + 4]);
    i32::from_le_bytes(q)
}
