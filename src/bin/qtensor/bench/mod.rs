//! Timing for `qtensor bench` and the criterion benches: the same inputs and
//! the same measurement, so their figures agree.

pub mod kernels;
pub mod workloads;

use std::time::{Duration, Instant};

/// Median and minimum of repeated timings.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The median run.
    pub median: Duration,
    /// The fastest run.
    pub min: Duration,
}

/// How long [`time`] runs its workload before timing it.
const WARM_UP: Duration = Duration::from_millis(200);

/// Times `f` `reps` times after warming up: one call, and more until
/// [`WARM_UP`] has passed. On a shared virtual machine an idle core runs
/// slowly for the first few tens of milliseconds of work (two threads took
/// 1.6x longer over their first 40 ms), so a single warm-up call would
/// time the ramp, not the code.
pub fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> Timing {
    let warm_up = Instant::now();
    std::hint::black_box(f());
    while warm_up.elapsed() < WARM_UP {
        std::hint::black_box(f());
    }
    let mut runs: Vec<Duration> = (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    runs.sort();
    Timing { median: runs[runs.len() / 2], min: runs[0] }
}

/// Runs `f` with the kernels on `threads` threads ([`qtensor::with_num_threads`]).
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> qtensor::Result<T> {
    qtensor::with_num_threads(threads, f)
}

/// Runs `w` once to warm up, then `reps` times with the Profiling layer on,
/// and returns what the profiler recorded: every op under the layer it was
/// called from, slowest first.
pub fn profile(w: &workloads::Workload, reps: usize) -> qtensor::Result<Vec<qtensor::profiler::OpProfile>> {
    (w.run)()?;
    qtensor::profiler::reset();
    qtensor::profiler::enable();
    let result = (0..reps.max(1)).try_for_each(|_| (w.run)());
    qtensor::profiler::disable();
    result?;
    Ok(qtensor::profiler::report())
}

/// One profile row as a JSON object: the layer (the scopes the op ran
/// under, empty for a top-level op), the op, the kernel, its calls, and
/// the mean time per run of the workload in seconds.
pub fn profile_json(row: &qtensor::profiler::OpProfile, reps: usize) -> String {
    let (layer, op) = row.op.rsplit_once(' ').unwrap_or(("", &row.op));
    serde_json::json!({
        "layer": layer,
        "op": op,
        "kernel": row.kernel,
        "calls": row.calls,
        "per_run_s": row.total.as_secs_f64() / reps.max(1) as f64,
    })
    .to_string()
}
