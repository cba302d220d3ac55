//! Splitting kernel work across qtensor's thread pool
//! (`qtensor_runtime::threads`). Every parallel loop of the kernels goes
//! through these helpers: when the kernels run on one thread they run the
//! loop in order on the calling thread, with no hand-off to a pool worker
//! and back (which cost tens of microseconds per op, more than many ops
//! take: a third of ResNet-18's time at batch 1).

use qtensor_runtime::threads::{install, num_threads};
use qtensor_runtime::Result;
use rayon::prelude::*;

/// Elements per task. Large enough that a task costs far more than its
/// scheduling (about 64 KiB of f32), small enough to balance two cores.
pub const GRAIN: usize = 1 << 14;

/// True when the kernels run on the calling thread alone.
pub fn sequential() -> bool {
    num_threads() == 1
}

/// Runs `f` on qtensor's pool, or directly when the kernels run on one
/// thread (its loops then run in order through the helpers below).
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if sequential() {
        f()
    } else {
        install(f)
    }
}

/// Calls `f(start, chunk)` over `dst` in chunks of at least [`GRAIN`]
/// elements (a multiple of 64, so vector stores stay aligned), in parallel
/// when there are at least two. `start` is the chunk's offset in `dst`, so
/// `f` can slice its inputs the same way.
pub fn for_each_chunk<O: Send>(dst: &mut [O], f: impl Fn(usize, &mut [O]) + Sync + Send) {
    // The length first: a small op never asks for the thread count.
    let threads = if dst.len() < 2 * GRAIN { 1 } else { num_threads() };
    if threads == 1 {
        f(0, dst);
    } else {
        // A few long chunks per thread: long sequential streams keep the
        // prefetchers busy, and a little slack balances a slow core.
        let chunk = dst.len().div_ceil(4 * threads).max(GRAIN).div_ceil(64) * 64;
        install(|| dst.par_chunks_mut(chunk).enumerate().for_each(|(i, part)| f(i * chunk, part)));
    }
}

/// Calls `f(state, i, chunk)` for each `chunk` of `dst.chunks_mut(len)`
/// (numbered `i`), on the pool's threads, each thread with states made by
/// `init`; the first error stops the loop and is returned.
pub fn try_chunks<T: Send, S>(
    dst: &mut [T],
    len: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [T]) -> Result<()> + Sync + Send,
) -> Result<()> {
    let len = len.max(1);
    if sequential() {
        let mut state = init();
        return dst.chunks_mut(len).enumerate().try_for_each(|(i, chunk)| f(&mut state, i, chunk));
    }
    install(|| dst.par_chunks_mut(len).enumerate().try_for_each_init(init, |s, (i, chunk)| f(s, i, chunk)))
}

/// [`try_chunks`] for work that cannot fail and needs no state.
pub fn chunks<T: Send>(dst: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let result = try_chunks(
        dst,
        len,
        || (),
        |_, i, chunk| {
            f(i, chunk);
            Ok(())
        },
    );
    debug_assert!(result.is_ok(), "an infallible loop failed");
}

/// `f(0), ..., f(n - 1)` on the pool's threads, in order of `i`; the first
/// error is returned.
pub fn try_map<R: Send>(n: usize, f: impl Fn(usize) -> Result<R> + Sync + Send) -> Result<Vec<R>> {
    if sequential() {
        return (0..n).map(f).collect();
    }
    install(|| (0..n).into_par_iter().map(f).collect())
}
