//! Exact u8 x s8 matrix multiplication for quantized linear and conv.
//!
//! `C[m, n] = Σ_k (x[m, k] - zx)(w[n, k] - zw[n])`, exactly, in i32, then
//! requantized (or scaled to float) in the epilogue. The weight is packed
//! once ([`PackedB`]); an ISA's [`GemmIsa`] computes the raw dot products
//! over packed blocks, and the driver adds the zero-point terms through row
//! and column sums:
//!
//! `Σ (x - zx)(w - zw) = Σ x w - zw Σ_k x - zx Σ_k w + K zx zw`.
//!
//! The driver ([`gemm_prepared`]) splits the work into panels and threads
//! and knows no instruction set: each ISA plugs in through [`GemmIsa`] on
//! its token (tract-linalg's pattern), with its micro-kernel, epilogues and
//! optional direct depthwise routines. Every micro-kernel must be exact for
//! all u8 x s8 inputs, so instructions whose intermediate sums saturate are
//! not used as they are; the ISA modules say how each kernel stays exact.

pub mod conv;
pub mod depthwise;
pub(crate) mod depthwise_rows;
pub mod driver;
pub mod epilogue;
pub mod kernel;
pub mod linear;
pub mod narrow;
pub mod packed;
pub mod register;
mod row_stores;
pub mod saturating;
pub mod shifted;

pub use driver::{gemm_into, gemm_prepared, Activations, OutElem};
pub use epilogue::{column_requant, Epilogue, PanelTerms, Requant, RequantForm, RequantRoute, RowTerms};
pub use kernel::{portable_dot, scalar_finish_f32, scalar_finish_u8, GemmIsa, Panel};
pub use packed::PackedB;
pub use shifted::ShiftedRows;

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

/// `Σ x` over bytes, written so that the compiler vectorizes it on any
/// target: 16 u16 lanes sum 8 rows of 16 bytes each (at most 8 * 255 per
/// lane) before they are widened.
pub fn byte_sum(bytes: &[u8]) -> i32 {
    let mut total = 0u32;
    for chunk in bytes.chunks(128) {
        let mut lanes = [0u16; 16];
        let mut rows = chunk.chunks_exact(16);
        for row in &mut rows {
            for (l, &v) in lanes.iter_mut().zip(row) {
                *l += v as u16;
            }
        }
        total += lanes.iter().map(|&v| v as u32).sum::<u32>();
        total += rows.remainder().iter().map(|&v| v as u32).sum::<u32>();
    }
    total as i32
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_sum_matches_a_plain_sum() {
        for len in [0, 1, 15, 16, 17, 127, 128, 129, 1000, 4099] {
            let v: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let plain: i32 = v.iter().map(|&x| x as i32).sum();
            assert_eq!(super::byte_sum(&v), plain, "len {len}");
            assert_eq!(super::byte_sum(&vec![255u8; len]), 255 * len as i32);
        }
    }
}
