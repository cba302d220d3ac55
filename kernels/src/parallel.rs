//! Splitting elementwise work across qtensor's thread pool
//! (`qtensor_runtime::threads`), with a grain size under which the work
//! stays on the calling thread.

use qtensor_runtime::threads::{install, num_threads};
use rayon::prelude::*;

/// Elements per task. Large enough that a task costs far more than its
/// scheduling (about 64 KiB of f32), small enough to balance two cores.
pub const GRAIN: usize = 1 << 14;

/// Calls `f(start, chunk)` over `dst` in chunks of at least [`GRAIN`]
/// elements (a multiple of 64, so vector stores stay aligned), in parallel
/// when there are at least two. `start` is the chunk's offset in `dst`, so
/// `f` can slice its inputs the same way.
pub fn for_each_chunk<O: Send>(dst: &mut [O], f: impl Fn(usize, &mut [O]) + Sync + Send) {
    let threads = num_threads();
    if dst.len() < 2 * GRAIN || threads == 1 {
        f(0, dst);
    } else {
        // A few long chunks per thread: long sequential streams keep the
        // prefetchers busy, and a little slack balances a slow core.
        let chunk = dst.len().div_ceil(4 * threads).max(GRAIN).div_ceil(64) * 64;
        install(|| dst.par_chunks_mut(chunk).enumerate().for_each(|(i, part)| f(i * chunk, part)));
    }
}
