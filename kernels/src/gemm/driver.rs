//! Splitting a GEMM across threads, the zero-point terms, and the epilogue.

use super::packed::{PackedB, BLOCK};
use qtensor_runtime::storage::try_vec;
use qtensor_runtime::Result;
use rayon::prelude::*;
use std::ops::Range;

/// The signature of a dot-product kernel (see [`PKernel`]).
pub type PKernelFn =
    fn(a: &[u8], rows: usize, kp: usize, b: &PackedB, blocks: Range<usize>, out: &mut [i32], ldo: usize);

/// An ISA's dot-product kernel: for `rows` rows of `a` (each `kp` bytes,
/// prepared as [`PKernel::shifted`] says) and the packed `blocks`, writes
/// `P[r][j]` to `out[r * ldo + j]` for every column `j` of those blocks.
#[derive(Clone, Copy)]
pub struct PKernel {
    /// A name for reports.
    pub name: &'static str,
    /// True when the kernel wants `x - 128` (stored as `x ^ 0x80`) and
    /// clamps weights of -128 (the AVX2 sign trick); false for raw `x`.
    pub shifted: bool,
    /// The kernel.
    pub run: PKernelFn,
}

/// What to do with each exact result `C[m, n]`.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    /// `q = clamp(round(C * mult[n] + add[n]), lo, hi)`, stored as u8.
    Quantize {
        /// `x_scale * w_scale[n] / y_scale`.
        mult: &'a [f32],
        /// `bias[n] / y_scale + y_zero_point`.
        add: &'a [f32],
        /// Lowest output (the zero point for a fused relu).
        lo: f32,
        /// Highest output.
        hi: f32,
    },
    /// `y = C * mult[n] + bias[n]`, stored as f32.
    Float {
        /// `x_scale * w_scale[n]`.
        mult: &'a [f32],
        /// The bias.
        bias: &'a [f32],
    },
}

/// An output element the epilogue can write.
pub trait OutElem: Copy + Send + Sync {
    /// Applies `epi` to `c` (columns `col0..`) into `dst`.
    fn finish(epi: &Epilogue<'_>, c: &[i32], col0: usize, dst: &mut [Self]);
}

/// Rounds half to even for `0 <= v < 2^22` in the default rounding mode:
/// adding 1.5 * 2^23 leaves no fraction bits.
#[inline]
fn round_even_small(v: f32) -> f32 {
    (v + 12_582_912.0) - 12_582_912.0
}

impl OutElem for u8 {
    fn finish(epi: &Epilogue<'_>, c: &[i32], col0: usize, dst: &mut [u8]) {
        if let Epilogue::Quantize { mult, add, lo, hi } = *epi {
            let (mult, add) = (&mult[col0..col0 + dst.len()], &add[col0..col0 + dst.len()]);
            for (((d, &v), &mm), &aa) in dst.iter_mut().zip(c).zip(mult).zip(add) {
                *d = round_even_small((v as f32 * mm + aa).clamp(lo, hi)) as u8;
            }
        }
    }
}

impl OutElem for f32 {
    fn finish(epi: &Epilogue<'_>, c: &[i32], col0: usize, dst: &mut [f32]) {
        if let Epilogue::Float { mult, bias } = *epi {
            let (mult, bias) = (&mult[col0..col0 + dst.len()], &bias[col0..col0 + dst.len()]);
            for (((d, &v), &mm), &bb) in dst.iter_mut().zip(c).zip(mult).zip(bias) {
                *d = v as f32 * mm + bb;
            }
        }
    }
}

/// The prepared activations and the terms that turn `P` into `C`.
struct Prepared<'a> {
    kernel: PKernel,
    a: Vec<u8>,
    row_sums: Vec<i32>,
    col_terms: Vec<i32>,
    zw: &'a [i32],
    b: &'a PackedB,
}

impl Prepared<'_> {
    /// The exact `C` for `rows` x the columns of `blocks`, row stride `cols`.
    fn exact(&self, rows: Range<usize>, blocks: Range<usize>) -> Result<Vec<i32>> {
        let (b, kp) = (self.b, self.b.kp);
        let cols = blocks.len() * BLOCK;
        let mut p = try_vec::<i32>(rows.len() * cols)?;
        p.resize(rows.len() * cols, 0);
        (self.kernel.run)(&self.a[rows.start * kp..rows.end * kp], rows.len(), kp, b, blocks.clone(), &mut p, cols);
        let c0 = blocks.start * BLOCK;
        let width = cols.min(b.n - c0);
        if self.kernel.shifted {
            // The kernel multiplied by -127 where the weight is -128: add
            // back (x - 128) * (-1), exactly.
            for &(col, kk) in b.minus128.iter().filter(|(col, _)| (c0..c0 + width).contains(&(*col as usize))) {
                for (r, mm) in rows.clone().enumerate() {
                    let i = r * cols + col as usize - c0;
                    p[i] = p[i].wrapping_sub(self.a[mm * kp + kk as usize] as i8 as i32);
                }
            }
        }
        // Intermediate terms may wrap; the final C fits i32 (K <= MAX_K), so
        // two's-complement arithmetic gives it exactly.
        for (r, mm) in rows.enumerate() {
            let row_sum = self.row_sums[mm];
            for (j, v) in p[r * cols..r * cols + width].iter_mut().enumerate() {
                *v = v.wrapping_add(self.col_terms[c0 + j]).wrapping_sub(self.zw[c0 + j].wrapping_mul(row_sum));
            }
        }
        Ok(p)
    }
}

/// Rows per task when the GEMM splits rows across threads.
const ROW_CHUNK: usize = 16;
/// Blocks per task when a one-row GEMM (a GEMV) splits columns.
const BLOCK_CHUNK: usize = 16;

/// `C = Σ (x - zx)(w - zw)` for the `m` rows of `x` (u8, `[m, k]`), then
/// `epi` into `out` (`[m, n]`). Exact for `k <=` [`super::MAX_K`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_into<T: OutElem>(
    kernel: PKernel,
    x: &[u8],
    m: usize,
    zx: i32,
    b: &PackedB,
    zw: &[i32],
    epi: Epilogue<'_>,
    out: &mut [T],
) -> Result<()> {
    let (k, kp) = (b.k, b.kp);
    let pad = kernel_pad(kernel);
    let mut a = try_vec::<u8>(m * kp)?;
    let mut row_sums = try_vec::<i32>(m)?;
    for row in x.chunks(k.max(1)).take(m) {
        row_sums.push(row.iter().map(|&v| v as i32).sum());
        a.extend(row.iter().map(|&v| v ^ pad));
        // Padding must add nothing: 0 after the shift is `pad` before it.
        a.extend(std::iter::repeat_n(pad, kp - k));
    }
    gemm_prepared(kernel, a, row_sums, m, zx, b, zw, epi, out)
}

/// The byte that XORs a u8 activation into the form `kernel` wants (and
/// that pads rows with a zero contribution).
pub fn kernel_pad(kernel: PKernel) -> u8 {
    if kernel.shifted {
        0x80
    } else {
        0
    }
}

/// [`gemm_into`] for rows the caller already prepared: each `b.kp` bytes,
/// XORed with [`kernel_pad`], padded with it, and `row_sums[m] = Σ_k x`
/// over the unpadded, unshifted values.
#[allow(clippy::too_many_arguments)]
pub fn gemm_prepared<T: OutElem>(
    kernel: PKernel,
    a: Vec<u8>,
    row_sums: Vec<i32>,
    m: usize,
    zx: i32,
    b: &PackedB,
    zw: &[i32],
    epi: Epilogue<'_>,
    out: &mut [T],
) -> Result<()> {
    let (k, n) = (b.k, b.n);
    let shift = if kernel.shifted { 128 } else { 0 };
    let col_terms = (0..n)
        .map(|j| (shift - zx).wrapping_mul(b.col_sums[j]).wrapping_add((k as i32).wrapping_mul(zx).wrapping_mul(zw[j])))
        .collect();
    let prep = Prepared { kernel, a, row_sums, col_terms, zw, b };
    let blocks = b.blocks();
    if m == 1 {
        // A GEMV: split the columns; each task owns a contiguous output run.
        let per = BLOCK_CHUNK * BLOCK;
        return out.par_chunks_mut(per).enumerate().try_for_each(|(t, dst)| {
            let blk = t * BLOCK_CHUNK..(t * BLOCK_CHUNK + BLOCK_CHUNK).min(blocks);
            let c = prep.exact(0..1, blk.clone())?;
            T::finish(&epi, &c[..dst.len()], blk.start * BLOCK, dst);
            Ok(())
        });
    }
    if m < 2 * ROW_CHUNK && blocks > BLOCK_CHUNK {
        // Few rows: split the columns too, finishing into per-task buffers
        // that are then copied into the (interleaved) output rows.
        let parts: Vec<(usize, Vec<T>)> = (0..blocks.div_ceil(BLOCK_CHUNK))
            .into_par_iter()
            .map(|t| {
                let blk = t * BLOCK_CHUNK..(t * BLOCK_CHUNK + BLOCK_CHUNK).min(blocks);
                let cols = blk.len() * BLOCK;
                let width = cols.min(n - blk.start * BLOCK);
                let c = prep.exact(0..m, blk.clone())?;
                let mut buf: Vec<T> = Vec::with_capacity(m * width);
                for r in 0..m {
                    let start = buf.len();
                    buf.extend_from_slice(&out[r * n + blk.start * BLOCK..r * n + blk.start * BLOCK + width]);
                    T::finish(&epi, &c[r * cols..r * cols + width], blk.start * BLOCK, &mut buf[start..]);
                }
                Ok((blk.start * BLOCK, buf))
            })
            .collect::<Result<_>>()?;
        for (col0, buf) in parts {
            let width = buf.len() / m;
            for (r, chunk) in buf.chunks(width.max(1)).enumerate().take(m) {
                out[r * n + col0..r * n + col0 + width].copy_from_slice(chunk);
            }
        }
        return Ok(());
    }
    out.par_chunks_mut(ROW_CHUNK * n.max(1)).enumerate().try_for_each(|(t, dst)| {
        let rows = t * ROW_CHUNK..(t * ROW_CHUNK + ROW_CHUNK).min(m);
        let c = prep.exact(rows.clone(), 0..blocks)?;
        let cols = blocks * BLOCK;
        for (r, d) in dst.chunks_mut(n.max(1)).enumerate().take(rows.len()) {
            T::finish(&epi, &c[r * cols..r * cols + n], 0, d);
        }
        Ok(())
    })
}
