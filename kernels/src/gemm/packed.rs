//! The packed weight layout shared by every GEMM kernel.

use qtensor_runtime::storage::try_vec;
use qtensor_runtime::Result;

/// Columns per packed block: one 512-bit vector of i32, or two 256-bit ones.
pub const BLOCK: usize = 16;

/// A weight `[N, K]` of i8 packed for the GEMM kernels: blocks of 16 output
/// columns; within a block, for each group of 4 consecutive k, the 4 bytes
/// of each of the 16 columns (64 bytes), K padded to a multiple of 4 and N
/// to a multiple of 16 with zeros.
#[derive(Debug, Clone)]
pub struct PackedB {
    /// Output columns.
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// `k` rounded up to a multiple of 4.
    pub kp: usize,
    /// The packed bytes, `blocks * kp * 16`.
    pub data: Vec<i8>,
    /// `Σ_k w[n, k]` per column.
    pub col_sums: Vec<i32>,
    /// `(n, k)` of every weight equal to -128, sorted by n.
    pub minus128: Vec<(u32, u32)>,
}

impl PackedB {
    /// Packs `w`, row-major `[n, k]`.
    pub fn pack(w: &[i8], n: usize, k: usize) -> Result<PackedB> {
        let kp = k.div_ceil(4) * 4;
        let blocks = n.div_ceil(BLOCK);
        let mut data = try_vec::<i8>(blocks * kp * BLOCK)?;
        data.resize(blocks * kp * BLOCK, 0);
        let mut col_sums = vec![0i32; n];
        let mut minus128 = Vec::new();
        for (col, row) in w.chunks(k.max(1)).take(n).enumerate() {
            let (blk, c) = (col / BLOCK, col % BLOCK);
            for (kk, &v) in row.iter().enumerate() {
                data[blk * kp * BLOCK + (kk / 4) * 64 + c * 4 + kk % 4] = v;
                col_sums[col] += v as i32;
                if v == -128 {
                    minus128.push((col as u32, kk as u32));
                }
            }
        }
        Ok(PackedB { n, k, kp, data, col_sums, minus128 })
    }

    /// Number of 16-column blocks.
    pub fn blocks(&self) -> usize {
        self.n.div_ceil(BLOCK)
    }
}
