//! Splitting elementwise work across rayon's pool, with a grain size under
//! which the work stays on the calling thread.

use rayon::prelude::*;

/// Elements per task. Large enough that a task costs far more than its
/// scheduling (about 64 KiB of f32), small enough to balance two cores.
pub const GRAIN: usize = 1 << 14;

/// Calls `f(start, chunk)` over `dst` in chunks of [`GRAIN`] elements, in
/// parallel when there are at least two chunks. `start` is the chunk's
/// offset in `dst`, so `f` can slice its inputs the same way.
pub fn for_each_chunk<O: Send>(dst: &mut [O], f: impl Fn(usize, &mut [O]) + Sync + Send) {
    if dst.len() < 2 * GRAIN || rayon::current_num_threads() == 1 {
        f(0, dst);
    } else {
        dst.par_chunks_mut(GRAIN).enumerate().for_each(|(i, chunk)| f(i * GRAIN, chunk));
    }
}
