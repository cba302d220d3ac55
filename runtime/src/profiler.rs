//! The `Profiling` layer: per-op call counts and time, recorded by a boxed
//! fallback while [`enable`]d.

use crate::dispatch::{last_kernel, OperatorEntry};
use crate::dispatch_key::DispatchKey;
use crate::error::Result;
use crate::layers::{self, Next};
use crate::value::Value;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// What the profiler recorded for one op (in one scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpProfile {
    /// The op, after the names of the [`scope`]s it was called in, if any
    /// (`layer1.0.conv1 quantized::conv2d_relu`).
    pub op: String,
    /// The kernel that ran (after any that declined the input): calls of
    /// one op that ran different kernels are separate rows.
    pub kernel: String,
    /// Calls while profiling was enabled.
    pub calls: u64,
    /// Total time in those calls (including nested op calls).
    pub total: Duration,
}

/// Calls and time per (op with its scopes, kernel).
type Stats = HashMap<(String, &'static str), (u64, Duration)>;

static STATS: LazyLock<Mutex<Stats>> = LazyLock::new(|| Mutex::new(HashMap::new()));

thread_local! {
    /// The names of the scopes entered on this thread, outermost first.
    static SCOPES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A named region (a model's layer), entered by [`scope`] and left when
/// dropped. Ops called inside are recorded under its name.
#[must_use = "the scope ends when this guard is dropped"]
pub struct Scope {
    entered: bool,
}

/// Names the ops called on this thread until the guard drops, so a
/// profile shows which layer each call came from. Nested scopes join with
/// dots. Costs one relaxed load when profiling is off.
pub fn scope(name: &str) -> Scope {
    if !layers::any_enabled() || !is_enabled() {
        return Scope { entered: false };
    }
    SCOPES.with(|s| s.borrow_mut().push(name.to_string()));
    Scope { entered: true }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if self.entered {
            SCOPES.with(|s| s.borrow_mut().pop());
        }
    }
}

/// This thread's scope names, for [`crate::threads::install`] to carry
/// into the pool worker that runs its closure (none unless profiling).
pub(crate) fn scopes_here() -> Vec<String> {
    if !layers::any_enabled() || !is_enabled() {
        return Vec::new();
    }
    SCOPES.with(|s| s.borrow().clone())
}

/// Scopes entered on another thread, re-entered here until dropped.
pub(crate) struct Carried(usize);

/// Enters `names` (from [`scopes_here`] on the calling thread) on this
/// thread, so ops run here are named as if run there.
pub(crate) fn enter_carried(names: Vec<String>) -> Carried {
    let n = names.len();
    if n > 0 {
        SCOPES.with(|s| s.borrow_mut().extend(names));
    }
    Carried(n)
}

impl Drop for Carried {
    fn drop(&mut self) {
        if self.0 > 0 {
            SCOPES.with(|s| {
                let mut s = s.borrow_mut();
                let keep = s.len().saturating_sub(self.0);
                s.truncate(keep);
            });
        }
    }
}

/// The fallback of [`DispatchKey::Profiling`].
pub(crate) fn profiling_fallback(op: &OperatorEntry, args: &[Value], next: Next<'_>) -> Result<Value> {
    let start = Instant::now();
    let out = next(args);
    let elapsed = start.elapsed();
    // Set by the innermost dispatch of this call, after the kernel returned.
    let kernel = if out.is_ok() { last_kernel().unwrap_or("?") } else { "(error)" };
    let name = SCOPES.with(|s| {
        let s = s.borrow();
        if s.is_empty() {
            op.schema().name.clone()
        } else {
            format!("{} {}", s.join("."), op.schema().name)
        }
    });
    let mut stats = STATS.lock();
    let e = stats.entry((name, kernel)).or_insert((0, Duration::ZERO));
    e.0 += 1;
    e.1 += elapsed;
    out
}

/// Starts recording every op call.
pub fn enable() {
    register();
    // Cannot fail: the fallback was registered just above.
    let _ = layers::set_enabled(DispatchKey::Profiling, true);
}

/// Registers the Profiling fallback with the layer mechanism, once: the
/// layers themselves know no policy, as c10's fallbacks register from
/// outside.
fn register() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // Cannot fail: Profiling is a functionality key.
        let _ = layers::register_fallback(DispatchKey::Profiling, profiling_fallback);
    });
}

/// Stops recording.
pub fn disable() {
    register();
    let _ = layers::set_enabled(DispatchKey::Profiling, false);
}

/// Whether recording is on.
pub fn is_enabled() -> bool {
    layers::is_enabled(DispatchKey::Profiling)
}

/// Forgets everything recorded.
pub fn reset() {
    STATS.lock().clear();
}

/// What was recorded, most total time first.
pub fn report() -> Vec<OpProfile> {
    let mut v: Vec<OpProfile> = STATS
        .lock()
        .iter()
        .map(|((op, kernel), (calls, total))| OpProfile {
            op: op.clone(),
            kernel: kernel.to_string(),
            calls: *calls,
            total: *total,
        })
        .collect();
    v.sort_by(|a, b| b.total.cmp(&a.total).then(a.op.cmp(&b.op)).then(a.kernel.cmp(&b.kernel)));
    v
}

/// The report as a table: op, the kernel that ran, calls, total and mean
/// time.
pub fn table() -> String {
    format_table(&report())
}

/// `rows` (a [`report`]) as the table [`table`] prints.
pub fn format_table(rows: &[OpProfile]) -> String {
    let width = rows.iter().map(|r| r.op.len()).max().unwrap_or(2).max(2);
    let kwidth = rows.iter().map(|r| r.kernel.len()).max().unwrap_or(6).max(6);
    let mut out = format!("{:<width$}  {:<kwidth$}  {:>8}  {:>12}  {:>12}\n", "op", "kernel", "calls", "total", "mean");
    for r in rows {
        let mean = Duration::from_nanos((r.total.as_nanos() / r.calls.max(1) as u128) as u64);
        out.push_str(&format!(
            "{:<width$}  {:<kwidth$}  {:>8}  {:>12.3?}  {:>12.3?}\n",
            r.op, r.kernel, r.calls, r.total, mean
        ));
    }
    out
}
