//! The threads the kernels use, like `torch.set_num_threads`.
//!
//! qtensor runs its parallel loops on its **own** rayon pool, never on
//! rayon's global one, so a program that embeds qtensor keeps its own pool
//! as it configured it. The size comes from, in order:
//!
//! 1. [`with_num_threads`], for the closure it runs (on that thread);
//! 2. [`set_num_threads`], for the whole process;
//! 3. the environment variable `QTENSOR_NUM_THREADS`, read once;
//! 4. the number of CPUs the process may use.
//!
//! Kernels call [`install`] around their parallel loops and size their
//! work by [`num_threads`]; small calls that stay on one thread pay
//! nothing.

use crate::{Error, Result};
use parking_lot::{Mutex, RwLock};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The process-wide pool, replaced by [`set_num_threads`].
static GLOBAL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

/// Pools built for [`with_num_threads`], by size, kept for reuse.
static SCOPED_POOLS: Mutex<Option<HashMap<usize, Arc<ThreadPool>>>> = Mutex::new(None);

thread_local! {
    /// In a worker of a qtensor pool: that pool's size (0 elsewhere).
    static WORKER_OF: Cell<usize> = const { Cell::new(0) };
    /// True on the thread running an [`install_pass`].
    static IN_PASS: Cell<bool> = const { Cell::new(false) };
    /// The pool [`with_num_threads`] set for this thread.
    static SCOPED: RefCell<Option<Arc<ThreadPool>>> = const { RefCell::new(None) };
}

/// The size before any [`set_num_threads`]: `QTENSOR_NUM_THREADS` if it is
/// a positive integer, else the CPUs available to the process.
fn default_size() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        std::env::var("QTENSOR_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// A pool of `n` workers that know which pool they belong to.
fn build(n: usize) -> Result<Arc<ThreadPool>> {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("qtensor-{i}"))
        .start_handler(move |_| WORKER_OF.with(|w| w.set(n)))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::invalid("set_num_threads", format!("cannot start {n} threads: {e}")))
}

fn check(op: &str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(op, "the number of threads must be at least 1"));
    }
    Ok(())
}

/// Sets the number of threads the kernels use, for the whole process (as
/// `torch.set_num_threads`). Rayon's global pool is left alone.
pub fn set_num_threads(n: usize) -> Result<()> {
    check("set_num_threads", n)?;
    let pool = build(n)?;
    *GLOBAL.write() = Some(pool);
    Ok(())
}

/// The number of threads the kernels use here: inside a qtensor worker,
/// its pool's size; inside [`with_num_threads`], that size; otherwise the
/// process-wide setting.
pub fn num_threads() -> usize {
    let worker = WORKER_OF.with(Cell::get);
    if worker > 0 {
        return worker;
    }
    if let Some(pool) = SCOPED.with(|s| s.borrow().clone()) {
        return pool.current_num_threads();
    }
    GLOBAL.read().as_ref().map_or_else(default_size, |p| p.current_num_threads())
}

/// Runs `f` with the kernels on `n` threads, on this thread only; the
/// previous setting comes back afterwards, also when `f` panics.
pub fn with_num_threads<R>(n: usize, f: impl FnOnce() -> R) -> Result<R> {
    check("with_num_threads", n)?;
    let pool = {
        let mut pools = SCOPED_POOLS.lock();
        let pools = pools.get_or_insert_with(HashMap::new);
        match pools.get(&n) {
            Some(p) => p.clone(),
            None => {
                let p = build(n)?;
                pools.insert(n, p.clone());
                p
            }
        }
    };
    /// Puts the previous scoped pool back when dropped.
    struct Restore(Option<Arc<ThreadPool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SCOPED.with(|s| *s.borrow_mut() = previous);
        }
    }
    let _restore = Restore(SCOPED.with(|s| s.borrow_mut().replace(pool)));
    Ok(f())
}

/// The pool this thread's kernels run on.
fn current_pool() -> Result<Arc<ThreadPool>> {
    if let Some(pool) = SCOPED.with(|s| s.borrow().clone()) {
        return Ok(pool);
    }
    if let Some(pool) = GLOBAL.read().as_ref() {
        return Ok(pool.clone());
    }
    let mut global = GLOBAL.write();
    match global.as_ref() {
        Some(pool) => Ok(pool.clone()),
        None => {
            let pool = build(default_size())?;
            *global = Some(pool.clone());
            Ok(pool)
        }
    }
}

/// Runs `f` on qtensor's pool: directly when already on one of its
/// workers, else on a worker of the pool this thread uses (the profiler's
/// [`scope`](crate::profiler::scope)s entered here still name the ops `f`
/// calls). If no pool can be started, `f` runs on the calling thread.
///
/// Kernels call it around their parallel loops. Call it around a whole
/// sequence of ops (a forward pass) to run them all on one worker: each
/// op's loops then share work with the other workers by stealing, instead
/// of the calling thread handing off and waking up at every op. The
/// built-in networks and TorchScript modules do.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if WORKER_OF.with(Cell::get) > 0 {
        return f();
    }
    match current_pool() {
        Ok(pool) => {
            // Ops run in `f` are profiled under this thread's scopes.
            let scopes = crate::profiler::scopes_here();
            pool.install(move || {
                let _carried = crate::profiler::enter_carried(scopes);
                f()
            })
        }
        Err(_) => f(),
    }
}

/// How long a worker keeps looking for work during [`install_pass`] after
/// its last job, before it returns to rayon's own idling (which sleeps
/// within microseconds).
const PASS_IDLE_SPIN: Duration = Duration::from_millis(2);

/// [`install`] for a whole pass of a network (a sequence of ops with short
/// sequential stretches between their parallel loops): while `f` runs, the
/// pool's other workers keep looking for work instead of going to sleep
/// between loops, for at most 2 ms after their last job.
///
/// Why: rayon puts an idle worker to sleep after a few dozen polls, and
/// waking it costs a system call and, on a virtual machine, the host's
/// wake-up of an idle CPU: tens of microseconds, paid by every parallel
/// loop of a pass (several per conv). OpenMP runtimes, PyTorch's, spin
/// for the same reason. The spinning is bounded, so a worker never waits
/// on a pass it cannot see end; the results do not depend on it.
///
/// While they look for work the workers run whatever the pool holds,
/// also another thread's ops on the same pool; a pass then returns when
/// that work is done too. Threads that run passes side by side on one
/// pool and need each pass's latency on its own call [`install`].
pub fn install_pass<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    install(|| {
        let others = num_threads().saturating_sub(1);
        // A pass inside a pass (a module calling a module) keeps the outer
        // pass's workers.
        if others == 0 || WORKER_OF.with(Cell::get) == 0 || IN_PASS.with(Cell::get) {
            return f();
        }
        IN_PASS.with(|p| p.set(true));
        let _leave = LeavePass;
        let done = AtomicBool::new(false);
        let owner = rayon::current_thread_index();
        rayon::in_place_scope(|scope| {
            for _ in 0..others {
                let done = &done;
                scope.spawn(move |_| keep_looking_for_work(done, owner));
            }
            // Set when `f` returns or unwinds: the workers stop at once.
            let _end = EndPass(&done);
            f()
        })
    })
}

/// Tells the workers of [`install_pass`] that the pass is over, when
/// dropped.
struct EndPass<'a>(&'a AtomicBool);

impl Drop for EndPass<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Clears `IN_PASS` when dropped, also when the pass panics.
struct LeavePass;

impl Drop for LeavePass {
    fn drop(&mut self) {
        IN_PASS.with(|p| p.set(false));
    }
}

/// Runs the pool's pending jobs until `done`, or until no job came for
/// [`PASS_IDLE_SPIN`]. It returns at once on the pass's own thread (which
/// may pick it up while it waits inside `f`): there it would block `f`.
fn keep_looking_for_work(done: &AtomicBool, owner: Option<usize>) {
    if rayon::current_thread_index() == owner {
        return;
    }
    let mut last_job = Instant::now();
    while !done.load(Ordering::Acquire) {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => last_job = Instant::now(),
            _ if last_job.elapsed() > PASS_IDLE_SPIN => return,
            _ => std::hint::spin_loop(),
        }
    }
}
