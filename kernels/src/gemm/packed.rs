//! The packed weight layout shared by every GEMM kernel.

use crate::aligned::AlignedVec;
use qtensor_runtime::{Error, Result};
use std::sync::OnceLock;

/// Columns per packed block: one 512-bit vector of i32, or two 256-bit ones.
pub const BLOCK: usize = 16;

/// The multiple K is padded to for the best GEMM kernel this process may
/// run: 64 (one AMX tile row) when that is AMX, else 4 (one k-quad). A
/// weight packed under one ISA cap stays valid under another.
pub fn k_multiple() -> usize {
    #[cfg(target_arch = "x86_64")]
    if qtensor_runtime::isa::Amx::supported() {
        return 64;
    }
    4
}

/// A weight `[N, K]` of i8 packed for the GEMM kernels: blocks of 16 output
/// columns; within a block, for each group of 4 consecutive k, the 4 bytes
/// of each of the 16 columns (64 bytes), K padded to a multiple of 4 (of
/// 64 where the AMX kernel may run: [`k_multiple`]) and N to a multiple of
/// 16 with zeros. Every kernel accepts any multiple of 4.
#[derive(Debug, Clone)]
pub struct PackedB {
    /// Output columns.
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// `k` rounded up to a multiple of [`k_multiple`] (at least of 4).
    pub kp: usize,
    /// The packed bytes, `blocks * kp * 16`.
    pub data: AlignedVec<i8>,
    /// `Σ_k w[n, k]` per column.
    pub col_sums: Vec<i32>,
    /// The same weights in pairs of k (see [`PackedB::pairs`]), made on
    /// first use by a kernel that wants them.
    pairs: OnceLock<Vec<i8>>,
}

impl PackedB {
    /// Packs `w`, row-major `[n, k]`.
    pub fn pack(w: &[i8], n: usize, k: usize) -> Result<PackedB> {
        PackedB::pack_padded(w, n, k, k_multiple())
    }

    /// Packs `w`, row-major `[n, k]`, with K padded to a multiple of
    /// `multiple` (itself a multiple of 4).
    pub fn pack_padded(w: &[i8], n: usize, k: usize, multiple: usize) -> Result<PackedB> {
        let multiple = multiple.max(4).next_multiple_of(4);
        let kp = k.div_ceil(multiple) * multiple;
        let blocks = n.div_ceil(BLOCK);
        let len = blocks.checked_mul(kp).and_then(|l| l.checked_mul(BLOCK));
        let mut data =
            AlignedVec::try_filled(len.ok_or_else(|| Error::invalid("pack", "weight size overflows"))?, 0i8)?;
        let mut col_sums = qtensor_runtime::storage::try_filled(n, 0i32)?;
        for (col, row) in w.chunks(k.max(1)).take(n).enumerate() {
            let (blk, c) = (col / BLOCK, col % BLOCK);
            for (kk, &v) in row.iter().enumerate() {
                data[blk * kp * BLOCK + (kk / 4) * 64 + c * 4 + kk % 4] = v;
                col_sums[col] += v as i32;
            }
        }
        Ok(PackedB { n, k, kp, data, col_sums, pairs: OnceLock::new() })
    }

    /// The weights ordered for `vpmaddwd`-style kernels, which widen them
    /// to i16 as they load them: blocks of 16 columns; within a block, for
    /// each pair of consecutive k, the 2 values of each of the 16 columns
    /// (32 bytes), K padded as in `data`. Computed once, on first call.
    pub fn pairs(&self) -> &[i8] {
        self.pairs.get_or_init(|| {
            let mut out = Vec::with_capacity(self.data.len());
            qtensor_runtime::storage::advise_huge_pages(&out);
            for block in self.data.chunks((self.kp * BLOCK).max(1)) {
                for quad in block.chunks(64) {
                    // A quad holds, per column, 4 consecutive k: split it
                    // into the pair (k, k+1) then the pair (k+2, k+3).
                    for half in 0..2 {
                        for c in 0..BLOCK {
                            out.push(quad[c * 4 + 2 * half]);
                            out.push(quad[c * 4 + 2 * half + 1]);
                        }
                    }
                }
            }
            out
        })
    }

    /// Number of 16-column blocks.
    pub fn blocks(&self) -> usize {
        self.n.div_ceil(BLOCK)
    }

    /// The 16 weights `w[col, k]` of block `block` (columns `16 * block`
    /// on, zeros past `n`) at one `k < kp`, in column order.
    pub fn block_weights_at(&self, block: usize, k: usize) -> impl Iterator<Item = i8> + '_ {
        // Step k / 4 of the block holds 4 bytes per column; k % 4 picks one.
        self.data[block * self.kp * BLOCK + (k / 4) * 64 + k % 4..].iter().step_by(4).take(BLOCK).copied()
    }
}
