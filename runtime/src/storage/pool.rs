//! Reuse of freed storage buffers: large ones in a process-wide caching
//! pool, small ones on per-thread free lists.

use super::CacheLine;
use parking_lot::Mutex;

/// Buffers of at least this many bytes go back to the pool when dropped.
const POOL_MIN_BYTES: usize = 64 << 10;
/// The most the pool keeps, in bytes.
const POOL_MAX_BYTES: usize = 1 << 30;
/// The most buffers the pool keeps (a lookup scans them).
const POOL_MAX_BUFFERS: usize = 64;

/// Recently freed large buffers, reused by [`Storage::for_overwrite`] and
/// [`Storage::zeros`]: a fresh multi-megabyte allocation costs a page fault
/// per 4 KiB on first touch, which dominates bandwidth-bound kernels. This
/// is the caching-allocator idea of PyTorch's and ONNX Runtime's arenas.
static POOL: Mutex<Vec<Vec<CacheLine>>> = Mutex::new(Vec::new());

/// Buffers of at most this many cache lines are kept per size on a small
/// free list: an aligned allocation costs more than a tiny kernel.
const SMALL_LINES: usize = 16;
/// Free small buffers kept per size.
const SMALL_PER_SIZE: usize = 8;

thread_local! {
    /// Per-thread free lists of small buffers, indexed by line count.
    static SMALL: std::cell::RefCell<Vec<Vec<Vec<CacheLine>>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A pooled buffer of exactly `lines` cache lines, if one is free.
pub(super) fn take_pooled(lines: usize) -> Option<Vec<CacheLine>> {
    if (1..=SMALL_LINES).contains(&lines) {
        return SMALL.with(|s| s.borrow_mut().get_mut(lines).and_then(Vec::pop));
    }
    if lines * 64 < POOL_MIN_BYTES {
        return None;
    }
    let mut pool = POOL.lock();
    let i = pool.iter().position(|b| b.len() == lines)?;
    Some(pool.swap_remove(i))
}

/// Returns a dropped storage's buffer to the pool or a free list, if it
/// is worth keeping.
pub(super) fn give_back(buffer: Vec<CacheLine>) {
    let lines = buffer.len();
    if (1..=SMALL_LINES).contains(&lines) {
        SMALL.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() <= lines {
                s.resize_with(lines + 1, Vec::new);
            }
            if s[lines].len() < SMALL_PER_SIZE {
                s[lines].push(buffer);
            }
        });
        return;
    }
    let bytes = lines * 64;
    if bytes < POOL_MIN_BYTES {
        return;
    }
    let mut pool = POOL.lock();
    let mut held: usize = pool.iter().map(|b| b.len() * 64).sum();
    // Oldest first out, until the new buffer fits.
    while (held + bytes > POOL_MAX_BYTES || pool.len() >= POOL_MAX_BUFFERS) && !pool.is_empty() {
        held -= pool.remove(0).len() * 64;
    }
    if held + bytes <= POOL_MAX_BYTES {
        pool.push(buffer);
    }
}

/// Frees every buffer the pool holds.
pub fn release_cached_buffers() {
    POOL.lock().clear();
}
