//! Splitting a GEMM across threads, and applying the epilogue (see
//! [`super::epilogue`]) to each finished row.

use super::epilogue::{Epilogue, PanelTerms, RequantForm, RowTerms};
use super::kernel::{GemmIsa, Panel};
use super::packed::{PackedB, BLOCK};
use super::shifted::ShiftedRows;
use crate::aligned::AlignedVec;
use crate::parallel;
use qtensor_runtime::storage::try_vec;
use qtensor_runtime::Result;
use std::ops::Range;

/// An output element an epilogue can write.
pub trait OutElem: Copy + Send + Sync {
    /// Applies `epi` (columns `col0..`) to `terms` into `dst`.
    fn finish<K: GemmIsa>(kernel: K, epi: &Epilogue<'_>, terms: RowTerms<'_>, col0: usize, dst: &mut [Self]);

    /// Applies `epi` (all columns) to each row of `terms` into `dst`, whose
    /// rows are `terms.col_terms.len()` elements.
    fn finish_rows<K: GemmIsa>(kernel: K, epi: &Epilogue<'_>, terms: PanelTerms<'_>, dst: &mut [Self]) {
        let n = terms.col_terms.len();
        for (r, d) in dst.chunks_exact_mut(n.max(1)).take(terms.row_sums.len()).enumerate() {
            Self::finish(kernel, epi, terms.row(r), 0, d);
        }
    }
}

impl OutElem for u8 {
    fn finish<K: GemmIsa>(kernel: K, epi: &Epilogue<'_>, terms: RowTerms<'_>, col0: usize, dst: &mut [u8]) {
        if let Epilogue::Quantize(rq) = *epi {
            let rq = rq.cols(col0..col0 + dst.len());
            match rq.form {
                RequantForm::Fbgemm => kernel.finish_u8(terms, rq, dst),
                RequantForm::OneDnn { x, d } => kernel.vectorized(|| rq.onednn_row(x, d, terms, dst)),
                RequantForm::FbgemmFused { rcp } => kernel.vectorized(|| rq.fused_row(rcp, terms, dst)),
            }
        }
    }

    fn finish_rows<K: GemmIsa>(kernel: K, epi: &Epilogue<'_>, terms: PanelTerms<'_>, dst: &mut [u8]) {
        if let Epilogue::Quantize(rq) = *epi {
            match rq.form {
                RequantForm::Fbgemm => kernel.finish_rows_u8(terms, rq, dst),
                RequantForm::OneDnn { .. } | RequantForm::FbgemmFused { .. } => {
                    let n = terms.col_terms.len();
                    for (r, d) in dst.chunks_exact_mut(n.max(1)).take(terms.row_sums.len()).enumerate() {
                        Self::finish(kernel, epi, terms.row(r), 0, d);
                    }
                }
            }
        }
    }
}

impl OutElem for f32 {
    fn finish<K: GemmIsa>(kernel: K, epi: &Epilogue<'_>, terms: RowTerms<'_>, col0: usize, dst: &mut [f32]) {
        if let Epilogue::Float { x_scale, w_scales, bias } = *epi {
            let n = dst.len();
            kernel.finish_f32(terms, x_scale, &w_scales[col0..col0 + n], &bias[col0..col0 + n], dst);
        }
    }
}

/// Where a GEMM's activation rows come from: each row is `kp` raw u8
/// activations (zero-padded), with its sum `Σ_k x`.
#[derive(Clone, Copy)]
pub enum Activations<'a> {
    /// Every row ready: `a` holds the `m` rows, `sums` their sums.
    Rows {
        /// `m * kp` bytes.
        a: &'a [u8],
        /// `m` row sums.
        sums: &'a [i32],
    },
    /// Rows made on demand, a panel of a few dozen at a time (im2col, so
    /// that its rows are still in cache when the kernel reads them):
    /// `fill(rows, panel, sums)` writes rows `rows` into the first
    /// `rows.len() * kp` bytes of `panel` and their sums into `sums`.
    /// [`PANEL_SLACK`] more bytes follow, which it may overwrite.
    Gather(&'a RowFill<'a>),
    /// Rows that lie in one buffer at shifted offsets (see
    /// [`ShiftedRows`]): read in place by kernels that can, gathered a
    /// panel at a time for the others.
    Shifted(ShiftedRows<'a>),
}

pub use super::row_stores::PANEL_SLACK;

/// Writes activation rows `rows` into a panel and their sums (see
/// [`Activations::Gather`]).
pub type RowFill<'a> = dyn Fn(Range<usize>, &mut [u8], &mut [i32]) + Sync + 'a;

/// A task's reusable buffers: a panel of rows, their sums, and the raw
/// products.
#[derive(Default)]
struct Scratch {
    panel: AlignedVec<u8>,
    sums: AlignedVec<i32>,
    /// The raw dot products of the rows in flight.
    products: AlignedVec<i32>,
}

/// The activations and the terms that turn `P` into `C`.
struct Prepared<'a, K> {
    kernel: K,
    acts: Activations<'a>,
    col_terms: Vec<i32>,
    zw: &'a [i32],
    zw_all_zero: bool,
    b: &'a PackedB,
}

impl<K: GemmIsa> Prepared<'_, K> {
    /// The raw dot products for `rows` x the columns of `blocks` (row stride
    /// `blocks.len() * 16`) into `s.p`, and the rows' sums into `s.sums`.
    fn dot(&self, rows: Range<usize>, blocks: Range<usize>, s: &mut Scratch) -> Result<()> {
        let (b, kp) = (self.b, self.b.kp);
        let cols = blocks.len() * BLOCK;
        s.products.ensure_len(rows.len() * cols, 0)?;
        s.sums.ensure_len(rows.len(), 0)?;
        let a: &[u8] = match self.acts {
            Activations::Rows { a, sums } => {
                s.sums[..rows.len()].copy_from_slice(&sums[rows.clone()]);
                &a[rows.start * kp..rows.end * kp]
            }
            Activations::Gather(fill) => {
                s.panel.ensure_len(rows.len() * kp + PANEL_SLACK, 0)?;
                fill(rows.clone(), &mut s.panel[..rows.len() * kp + PANEL_SLACK], &mut s.sums[..rows.len()]);
                &s.panel[..rows.len() * kp]
            }
            Activations::Shifted(x) => {
                for (sum, r) in s.sums[..rows.len()].iter_mut().zip(rows.clone()) {
                    *sum = x.row_sum(r);
                }
                let out = &mut s.products[..rows.len() * cols];
                if self.kernel.dot_shifted(rows.clone(), &x, b, blocks.clone(), out, cols) {
                    return Ok(());
                }
                s.panel.ensure_len(rows.len() * kp + PANEL_SLACK, 0)?;
                x.gather(rows.clone(), kp, &mut s.panel[..rows.len() * kp + PANEL_SLACK], &mut s.sums[..rows.len()]);
                &s.panel[..rows.len() * kp]
            }
        };
        let panel = Panel { a, rows: rows.len(), kp };
        self.kernel.dot(panel, b, blocks, &mut s.products[..rows.len() * cols], cols);
        Ok(())
    }

    /// Finishes one row of the result (its dot products in `p`, its sum
    /// `row_sum`, columns `col0..col0 + dst.len()`) into `dst`.
    fn finish<T: OutElem>(&self, epi: &Epilogue<'_>, p: &[i32], row_sum: i32, col0: usize, dst: &mut [T]) {
        let n = dst.len();
        let zw = if self.zw_all_zero { &[][..] } else { &self.zw[col0..col0 + n] };
        let terms = RowTerms { products: &p[..n], col_terms: &self.col_terms[col0..col0 + n], zw, row_sum };
        T::finish(self.kernel, epi, terms, col0, dst);
    }
}

/// Rows per task when the GEMM splits rows across threads.
const ROW_CHUNK: usize = 16;
/// Row tasks per thread when the GEMM splits rows across threads.
const TASKS_PER_THREAD: usize = 3;
/// Blocks per task when a GEMM with few rows splits columns.
const BLOCK_CHUNK: usize = 16;

/// Rows per task when a GEMM of `m` rows splits its rows across
/// `threads`: whole 8-row tiles, at least [`ROW_CHUNK`] rows, and on one
/// thread one task of all rows (a task works through its rows a panel of
/// `K::PANEL_ROWS` at a time).
///
/// With several threads there are at least about [`TASKS_PER_THREAD`]
/// tasks per thread where the rows allow: on a shared machine one core may
/// run slow, and the other then takes more of them. Among those sizes it
/// takes the one whose tasks finish soonest when each thread takes the
/// next task as it finishes (`ceil(tasks / threads)` rounds of a task),
/// the largest of equals. Equal tasks of a fixed count would leave a
/// thread idle: ResNet's 14x14 convs have 196 rows, 25 tiles, and six
/// tasks of 5 tiles round up to five, three rounds on one thread and two
/// on the other.
fn row_task_len(m: usize, threads: usize) -> usize {
    let tiles = m.div_ceil(8);
    let min_tiles = ROW_CHUNK / 8;
    if threads <= 1 {
        return tiles.max(min_tiles) * 8;
    }
    let max_tiles = tiles.div_ceil(TASKS_PER_THREAD * threads).max(min_tiles);
    let finish = |per: usize| tiles.div_ceil(per).div_ceil(threads) * per;
    let best = (min_tiles..=max_tiles).min_by_key(|&per| (finish(per), std::cmp::Reverse(per)));
    best.unwrap_or(max_tiles) * 8
}

/// Blocks per task when a GEMM of few rows splits its `blocks` columns
/// across `threads`: at most [`BLOCK_CHUNK`], and as many tasks as make
/// whole rounds of one task per thread, so that no thread is left with a
/// last task alone. MobileNetV2's last 1x1 conv (49 rows, 80 blocks) split
/// by 16 made five tasks, three rounds on one thread and two on the
/// other; split by 14 it makes six.
fn column_task_len(blocks: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    let rounds = blocks.div_ceil(threads * BLOCK_CHUNK).max(1);
    blocks.div_ceil(threads * rounds).max(1)
}

/// The weight side of a GEMM: `B` packed, and each column's zero point.
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    /// The packed weights.
    pub b: &'a PackedB,
    /// Per column (output channel), the weight zero point.
    pub zw: &'a [i32],
}

/// The activation side of a GEMM: `m` rows of `data` with zero point `zx`.
#[derive(Clone, Copy)]
pub struct Rows<A> {
    /// The activations: a `&[u8]` of `[m, k]`, or prepared [`Activations`].
    pub data: A,
    /// How many rows.
    pub m: usize,
    /// The activation zero point.
    pub zx: i32,
}

/// `C = Σ (x - zx)(w - zw)` for the `m` rows of `x` (u8, `[m, k]`), then
/// `epi` into `out` (`[m, n]`). Exact for `k <=` [`super::MAX_K`].
pub fn gemm_into<K: GemmIsa, T: OutElem>(
    kernel: K,
    x: Rows<&[u8]>,
    w: Weights<'_>,
    epi: Epilogue<'_>,
    out: &mut [T],
) -> Result<()> {
    let (Rows { data: x, m, zx }, b) = (x, w.b);
    let (k, kp) = (b.k, b.kp);
    // Zero padding adds nothing to the dot products. Aligned, for kernels
    // that load whole 64-byte rows.
    let mut a = AlignedVec::try_filled(m.saturating_mul(kp), 0u8)?;
    let mut row_sums = try_vec::<i32>(m)?;
    for r in 0..m {
        // With K = 0 every row is empty, and C is 0 (the output is the bias).
        let row = x.get(r * k..(r + 1) * k).ok_or_else(|| {
            qtensor_runtime::Error::shape("gemm", format!("{} activations cannot hold {m} rows of {k}", x.len()))
        })?;
        row_sums.push(super::byte_sum(row));
        a[r * kp..r * kp + k].copy_from_slice(row);
    }
    gemm_prepared(kernel, Rows { data: Activations::Rows { a: &a, sums: &row_sums }, m, zx }, w, epi, out)
}

/// [`gemm_into`] for activations the caller prepares (see [`Activations`]),
/// on qtensor's thread pool.
pub fn gemm_prepared<K: GemmIsa, T: OutElem>(
    kernel: K,
    rows: Rows<Activations<'_>>,
    w: Weights<'_>,
    epi: Epilogue<'_>,
    out: &mut [T],
) -> Result<()> {
    crate::parallel::on_pool(|| gemm_on_pool(kernel, rows, w, epi, out))
}

/// [`gemm_prepared`], on the pool it runs on.
fn gemm_on_pool<K: GemmIsa, T: OutElem>(
    kernel: K,
    rows: Rows<Activations<'_>>,
    w: Weights<'_>,
    epi: Epilogue<'_>,
    out: &mut [T],
) -> Result<()> {
    let (Rows { data: acts, m, zx }, Weights { b, zw }) = (rows, w);
    let (k, n) = (b.k, b.n);
    // Intermediate terms may wrap; the final C fits i32 (K <= MAX_K), so
    // two's-complement arithmetic gives it exactly.
    let col_terms = (0..n)
        .map(|j| {
            zx.wrapping_neg().wrapping_mul(b.col_sums[j]).wrapping_add((k as i32).wrapping_mul(zx).wrapping_mul(zw[j]))
        })
        .collect();
    let prep = Prepared { kernel, acts, col_terms, zw, zw_all_zero: zw.iter().all(|&z| z == 0), b };
    let blocks = b.blocks();
    let threads = qtensor_runtime::threads::num_threads();
    // Few rows: split the columns instead. With one thread, only to keep
    // the products of a very wide row in cache; with more, whenever the
    // rows would not give every thread a few panels (late conv layers have
    // 49 or 196 pixels and 256 or 512 channels).
    let few_rows = m < 2 * ROW_CHUNK && blocks > BLOCK_CHUNK;
    let too_few_for_threads = threads > 1 && m < 32 * threads && blocks >= 2 * threads;
    if m > 0 && (few_rows || too_few_for_threads) {
        // With one row each task owns a contiguous run of the output;
        // otherwise tasks finish into their own buffers, copied into the
        // interleaved output rows after.
        let chunk_blocks = if too_few_for_threads { column_task_len(blocks, threads) } else { BLOCK_CHUNK };
        let per = chunk_blocks * BLOCK;
        if m == 1 {
            return parallel::try_chunks(out, per, Scratch::default, |s, t, dst| {
                let blk = t * chunk_blocks..(t * chunk_blocks + chunk_blocks).min(blocks);
                prep.dot(0..1, blk.clone(), s)?;
                prep.finish(&epi, &s.products, s.sums[0], blk.start * BLOCK, dst);
                Ok(())
            });
        }
        let out_ref = &*out;
        let parts: Vec<(usize, usize, Vec<T>)> = parallel::try_map(blocks.div_ceil(chunk_blocks), |t| {
            let blk = t * chunk_blocks..(t * chunk_blocks + chunk_blocks).min(blocks);
            let (cols, col0) = (blk.len() * BLOCK, blk.start * BLOCK);
            let width = cols.min(n - col0);
            let mut s = Scratch::default();
            prep.dot(0..m, blk, &mut s)?;
            let mut buf: Vec<T> = out_ref[..m * width].to_vec();
            for (r, dst) in buf.chunks_mut(width).enumerate() {
                prep.finish(&epi, &s.products[r * cols..], s.sums[r], col0, dst);
            }
            Ok((col0, width, buf))
        })?;
        for (col0, width, buf) in parts {
            for (r, chunk) in buf.chunks(width).enumerate() {
                out[r * n + col0..r * n + col0 + width].copy_from_slice(chunk);
            }
        }
        return Ok(());
    }
    let cols = blocks * BLOCK;
    let chunk = row_task_len(m, threads);
    parallel::try_chunks(
        out,
        chunk * n.max(1),
        // One scratch per run of tasks on a thread, not one per task: the
        // products of a panel of wide rows are tens of kilobytes, and a new
        // buffer is a new allocation, zeroed.
        Scratch::default,
        |s, t, dst| {
            // A few rows at a time, so the raw products stay in cache between
            // the kernel and the epilogue.
            let task_rows = t * chunk..(t * chunk + chunk).min(m);
            for (i, dst) in dst.chunks_mut(K::PANEL_ROWS * n.max(1)).enumerate() {
                let start = task_rows.start + i * K::PANEL_ROWS;
                let rows = start..(start + K::PANEL_ROWS).min(task_rows.end);
                prep.dot(rows.clone(), 0..blocks, s)?;
                let terms = PanelTerms {
                    products: &s.products,
                    ldp: cols,
                    col_terms: &prep.col_terms,
                    zw: if prep.zw_all_zero { &[] } else { prep.zw },
                    row_sums: &s.sums[..rows.len()],
                };
                T::finish_rows(prep.kernel, &epi, terms, dst);
            }
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{column_task_len, row_task_len, BLOCK_CHUNK, ROW_CHUNK};

    #[test]
    fn column_tasks_fill_whole_rounds_of_threads() {
        for threads in 1..=8 {
            for blocks in 1..=400 {
                let len = column_task_len(blocks, threads);
                assert!((1..=BLOCK_CHUNK).contains(&len), "{blocks} blocks, {threads} threads: {len}");
                let tasks = blocks.div_ceil(len);
                // Every thread gets work when there is enough, and the
                // rounds are as few as tasks of BLOCK_CHUNK would make.
                let rounds = tasks.div_ceil(threads);
                assert_eq!(rounds, blocks.div_ceil(threads * BLOCK_CHUNK).max(1), "{blocks} blocks, {threads} threads");
                if blocks >= threads {
                    assert!(tasks > (rounds - 1) * threads, "{blocks} blocks, {threads} threads: {tasks} tasks");
                }
            }
        }
        assert_eq!(column_task_len(80, 2), 14);
    }

    /// Tiles of the slowest thread when `threads` threads take tasks of
    /// `len` rows in turn.
    fn slowest(m: usize, len: usize, threads: usize) -> usize {
        let tasks = m.div_ceil(len);
        tasks.div_ceil(threads) * len.div_ceil(8)
    }

    #[test]
    fn row_tasks_are_whole_tiles_and_keep_both_threads_busy() {
        // Under Miri, which interprets every instruction, every 37th size.
        let step = if cfg!(miri) { 37 } else { 1 };
        for threads in 1..=4 {
            for m in (1..3000).step_by(step) {
                let len = row_task_len(m, threads);
                assert!(len.is_multiple_of(8) && len >= ROW_CHUNK, "m {m}, {threads} threads: {len} rows");
                if threads == 1 {
                    assert!(len >= m, "m {m}: one thread takes every row in one task, not {len}");
                    continue;
                }
                // Within two tiles of an even split of the tiles.
                let even = m.div_ceil(8).div_ceil(threads);
                assert!(slowest(m, len, threads) <= even + 2, "m {m}, {threads} threads: {len} rows per task");
            }
        }
        // ResNet's 14x14 convs: 196 rows, 25 tiles; 13 and 12 tiles at best.
        assert!(slowest(196, row_task_len(196, 2), 2) <= 14);
    }
}
