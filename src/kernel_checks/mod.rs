//! Kernel checks that any kernel author can run: a kernel against its
//! op's reference kernel.
//!
//! [`check_kernel`] compares one registered kernel with its op's reference
//! kernel (the one registered at `Priority::REFERENCE` for the same key
//! and dtype) under the op's declared [`Tolerance`]:
//!
//! 1. on random valid inputs (built-in ops have builders; plugin ops can
//!    pass their own [`InputBuilder`]), covering empty and 0-d shapes,
//!    non-contiguous views, qparams across their range and extreme values
//!    (±inf, NaN, ties, values past 2^31);
//! 2. on random, mostly invalid inputs: the kernel must return an error
//!    where the reference does, and never panic;
//! 3. on the golden cases of its op and dtype.
//!
//! A failure names the op, the kernel, the case and the seed that
//! reproduces it. [`check_all`] runs every registered kernel and reports
//! the ones this CPU cannot run as skipped, by name.

pub mod builders;
pub mod golden;
/// The name `golden` had before 0.1, kept for code written against it.
#[doc(hidden)]
pub use golden as cases;
pub mod inputs;
pub mod random_calls;
pub mod rng;

pub use inputs::InputBuilder;
use rng::Rng;

use crate::kernel_checks::golden::{panic_message, run_case_with};
use crate::{registry, DType, DispatchKey, KernelDescriptor, Result as QResult, Tensor, Tolerance, Value};
use rayon::prelude::*;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// Every kernel of `op` for `dtype` that this CPU (under the ISA cap) can
/// run, highest priority first; empty for an unknown op. Tests use it to
/// compare every kernel with the reference on inputs of their own.
pub fn supported_kernels(op: &str, dtype: DType) -> Vec<KernelDescriptor> {
    let Ok(handle) = registry().op(op) else { return Vec::new() };
    let mut kernels: Vec<KernelDescriptor> =
        handle.entry().descriptors().into_iter().filter(|k| k.dtype == dtype && (k.is_supported)()).collect();
    kernels.sort_by_key(|k| std::cmp::Reverse(k.priority));
    kernels
}

/// How much to check.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Random valid-input cases per kernel.
    pub cases: usize,
    /// Random bad-input cases per kernel.
    pub bad_cases: usize,
    /// The seed of every case; a failure reports it.
    pub seed: u64,
    /// Golden case files or directories to run each kernel on (empty: none).
    pub golden: Vec<PathBuf>,
}

impl Default for CheckConfig {
    /// 100 valid and 40 bad cases, the seed from `QTENSOR_SEED` (a fixed
    /// one when unset), and the golden case files or directories listed in
    /// `QTENSOR_GOLDEN_CASES` (separated as in `PATH`; none when unset).
    /// qtensor's own cases are in its repository, `tests/golden/cases`.
    fn default() -> Self {
        let seed = std::env::var("QTENSOR_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_2026);
        let golden = std::env::var_os("QTENSOR_GOLDEN_CASES")
            .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
            .unwrap_or_default();
        CheckConfig { cases: 100, bad_cases: 40, seed, golden }
    }
}

/// What a passing check covered.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The op.
    pub op: String,
    /// The kernel checked.
    pub kernel: &'static str,
    /// The kernel it was compared with (itself for a reference kernel).
    pub reference: &'static str,
    /// Its dispatch key.
    pub key: DispatchKey,
    /// Its dtype.
    pub dtype: DType,
    /// Random cases where both kernels returned a value, and it matched.
    pub matched: usize,
    /// Random cases where both kernels returned an error.
    pub errors: usize,
    /// Random cases the kernel declined (the dispatcher hands them to the
    /// next kernel; see [`qtensor_runtime::Error::Declined`]).
    pub declined: usize,
    /// Golden cases run on the kernel.
    pub golden: usize,
    /// Golden cases the kernel declined (run on the reference instead).
    pub golden_declined: usize,
}

/// Calls one kernel as the dispatcher does: `Ok(None)` when it declines
/// the input, which the dispatcher then hands to the next kernel.
pub fn call_kernel(k: &KernelDescriptor, args: &[Value]) -> QResult<Option<Value>> {
    match (k.func)(args) {
        Err(crate::Error::Declined { .. }) => Ok(None),
        other => other.map(Some),
    }
}

/// How one random case went.
enum PairOutcome {
    /// Both returned values, and they matched.
    Matched,
    /// Both returned errors.
    BothFailed,
    /// The kernel declined the input.
    Declined,
}

/// A check that failed: enough to reproduce it.
#[derive(Debug, Clone)]
pub struct CheckFailure {
    /// The op.
    pub op: String,
    /// The kernel.
    pub kernel: String,
    /// Its dtype.
    pub dtype: DType,
    /// The seed of the run.
    pub seed: u64,
    /// Which case (`valid #i`, `bad #i`, or a golden case id).
    pub case: String,
    /// What went wrong, with the inputs described.
    pub message: String,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} kernel `{}` ({}), {}: {}\n  reproduce: QTENSOR_SEED={} (CheckConfig {{ seed: {}, .. }})",
            self.op, self.kernel, self.dtype, self.case, self.message, self.seed, self.seed
        )
    }
}

/// The outcome for one kernel in [`check_all`].
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Checked and passed.
    Passed(CheckReport),
    /// Checked and failed.
    Failed(Box<CheckFailure>),
    /// Not checked, and why (a kernel this CPU cannot run).
    Skipped {
        /// The op.
        op: String,
        /// The kernel.
        kernel: &'static str,
        /// Why it was skipped.
        reason: String,
    },
}

fn describe(args: &[Value]) -> String {
    args.iter()
        .map(|v| match v {
            Value::Tensor(t) => {
                let layout = if t.is_contiguous() { "" } else { " strided" };
                let q = t.quantizer().map(|q| format!(" {}", q.qscheme())).unwrap_or_default();
                format!("{}{}{q}", t.describe(), layout)
            }
            Value::TensorList(ts) => format!("[{}]", ts.iter().map(|t| t.describe()).collect::<Vec<_>>().join(", ")),
            Value::Float(x) => format!("{x}"),
            Value::Int(i) => format!("{i}"),
            Value::IntList(l) => format!("{:?}", l.as_slice()),
            Value::Bool(b) => format!("{b}"),
            Value::ScalarType(d) => d.to_string(),
            Value::None => "None".into(),
            Value::Str(s) => format!("{s:?}"),
            other => other.type_name(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn call(k: &KernelDescriptor, args: &[Value]) -> Result<QResult<Value>, String> {
    catch_unwind(AssertUnwindSafe(|| (k.func)(args)))
        .map_err(|p| format!("kernel `{}` panicked: {}", k.name, panic_message(&p)))
}

fn floats_agree(tol: Tolerance, want: f64, got: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    match tol {
        Tolerance::Float { abs, rel } if want.is_finite() => (want - got).abs() <= abs + rel * want.abs(),
        _ => want.to_bits() == got.to_bits() || (want == 0.0 && got == 0.0),
    }
}

fn compare_tensors(tol: Tolerance, want: &Tensor, got: &Tensor) -> Result<(), String> {
    if want.dtype() != got.dtype() || want.sizes() != got.sizes() {
        return Err(format!("expected {}, got {}", want.describe(), got.describe()));
    }
    if want.quantizer() != got.quantizer() {
        return Err(format!("quantizer: expected {:?}, got {:?}", want.quantizer(), got.quantizer()));
    }
    if want.dtype().is_float() {
        let (w, g) = (want.real_values().map_err(|e| e.to_string())?, got.real_values().map_err(|e| e.to_string())?);
        if let Some(i) = (0..w.len()).find(|&i| !floats_agree(tol, w[i], g[i])) {
            return Err(format!("element {i}: reference {}, kernel {}", w[i], g[i]));
        }
    } else {
        let steps = if let Tolerance::Steps(n) = tol { n } else { 0 };
        let (w, g) = (want.int_values().map_err(|e| e.to_string())?, got.int_values().map_err(|e| e.to_string())?);
        if let Some(i) = (0..w.len()).find(|&i| (w[i] - g[i]).abs() > steps) {
            return Err(format!("element {i}: reference {}, kernel {} (tolerance {tol})", w[i], g[i]));
        }
    }
    Ok(())
}

/// Compares two results of an op under its tolerance.
pub fn compare(tol: Tolerance, want: &Value, got: &Value) -> Result<(), String> {
    match (want, got) {
        (Value::Tensor(w), Value::Tensor(g)) => compare_tensors(tol, w, g),
        (Value::TensorList(w), Value::TensorList(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .try_for_each(|(i, (a, b))| compare_tensors(tol, a, b).map_err(|e| format!("tensor {i}: {e}"))),
        (Value::Float(a), Value::Float(b)) if floats_agree(tol, *a, *b) => Ok(()),
        (Value::Int(a), Value::Int(b)) if a == b => Ok(()),
        (Value::Bool(a), Value::Bool(b)) if a == b => Ok(()),
        (Value::ScalarType(a), Value::ScalarType(b)) if a == b => Ok(()),
        (Value::IntList(a), Value::IntList(b)) if a == b => Ok(()),
        (Value::Str(a), Value::Str(b)) if a == b => Ok(()),
        (Value::Tuple(w), Value::Tuple(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .try_for_each(|(i, (a, b))| compare(tol, a, b).map_err(|e| format!("item {i}: {e}"))),
        (Value::None, Value::None) => Ok(()),
        (w, g) => Err(format!("expected {}, got {}", w.type_name(), g.type_name())),
    }
}

/// Runs both kernels on the same inputs (built twice from the same seed,
/// since an op like `copy_` writes to its arguments) and compares them.
/// A reference kernel that declines is a failure: it must take every input.
fn run_pair(
    reference: &KernelDescriptor,
    kernel: &KernelDescriptor,
    tol: Tolerance,
    rng: &mut Rng,
    build: &dyn Fn(&mut Rng) -> QResult<Vec<Value>>,
) -> Result<PairOutcome, String> {
    let mut again = rng.clone();
    let args_ref = build(rng).map_err(|e| format!("building inputs failed: {e}"))?;
    let args_ker = build(&mut again).map_err(|e| format!("building inputs failed: {e}"))?;
    let inputs = describe(&args_ref);
    let want = call(reference, &args_ref).map_err(|e| format!("{e} [inputs: {inputs}]"))?;
    let got = call(kernel, &args_ker).map_err(|e| format!("{e} [inputs: {inputs}]"))?;
    match (want, got) {
        (Err(crate::Error::Declined { reason }), _) => Err(format!(
            "the reference kernel declined ({reason}); reference kernels take every input [inputs: {inputs}]"
        )),
        (_, Err(crate::Error::Declined { .. })) => Ok(PairOutcome::Declined),
        (Err(_), Err(_)) => Ok(PairOutcome::BothFailed),
        (Ok(w), Ok(g)) => {
            compare(tol, &w, &g).map(|_| PairOutcome::Matched).map_err(|e| format!("{e} [inputs: {inputs}]"))
        }
        (Err(e), Ok(_)) => Err(format!("the reference fails ({e}) but the kernel returns a value [inputs: {inputs}]")),
        (Ok(_), Err(e)) => {
            Err(format!("the kernel fails ({e}) where the reference returns a value [inputs: {inputs}]"))
        }
    }
}

/// The dtype a golden case dispatches on: its first tensor argument's, or
/// for factory ops its `ScalarType` argument's.
fn case_dtype(case: &serde_json::Value) -> Option<DType> {
    let args = case.get("args")?.as_array()?;
    let tensor_dtype = |a: &serde_json::Value| a.get("dtype").and_then(|d| d.as_str()).and_then(DType::from_name);
    let first = args.iter().find_map(|a| match a {
        serde_json::Value::Array(items) => items.first().and_then(tensor_dtype),
        other => tensor_dtype(other),
    });
    first.or_else(|| args.iter().find_map(|a| a.as_str().and_then(DType::from_name)))
}

/// Every case of the golden case files in `paths` that this engine's
/// integers answer, parsed once for all the kernels checked.
fn load_golden_cases(paths: &[PathBuf]) -> Vec<serde_json::Value> {
    crate::kernel_checks::golden::case_files(paths)
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter_map(|mut d| match d.get_mut("cases")?.take() {
            serde_json::Value::Array(cases) => Some(cases),
            _ => None,
        })
        .flatten()
        .filter(crate::kernel_checks::golden::for_this_engine)
        .collect()
}

/// The cases of `golden` that call `op` on `dtype`.
fn golden_cases_of<'a>(
    golden: &'a [serde_json::Value],
    op: &'a str,
    dtype: DType,
) -> impl Iterator<Item = &'a serde_json::Value> + 'a {
    golden.iter().filter(move |c| c.get("op").and_then(|o| o.as_str()) == Some(op) && case_dtype(c) == Some(dtype))
}

fn seed_for(seed: u64, op: &str, kernel: &str, dtype: DType) -> u64 {
    // FNV-1a over the kernel's identity, so each kernel gets its own stream.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in op.bytes().chain(kernel.bytes()).chain(dtype.name().bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    seed ^ h
}

/// Checks the kernel `kernel` of `op` for `dtype` (see the module docs).
pub fn check_kernel(op: &str, kernel: &str, dtype: DType, cfg: &CheckConfig) -> Result<CheckReport, Box<CheckFailure>> {
    check_kernel_with(op, kernel, dtype, cfg, builders::builtin(op))
}

/// [`check_kernel`] with a builder of valid inputs for the op (plugin ops
/// have none built in; without one only bad inputs and golden cases run).
pub fn check_kernel_with(
    op: &str,
    kernel: &str,
    dtype: DType,
    cfg: &CheckConfig,
    builder: Option<InputBuilder>,
) -> Result<CheckReport, Box<CheckFailure>> {
    check_kernel_on(op, kernel, dtype, cfg, builder, &load_golden_cases(&cfg.golden))
}

/// [`check_kernel_with`] on the golden cases already loaded from
/// `cfg.golden`.
fn check_kernel_on(
    op: &str,
    kernel: &str,
    dtype: DType,
    cfg: &CheckConfig,
    builder: Option<InputBuilder>,
    golden: &[serde_json::Value],
) -> Result<CheckReport, Box<CheckFailure>> {
    let fail = |case: String, message: String| {
        Box::new(CheckFailure { op: op.into(), kernel: kernel.into(), dtype, seed: cfg.seed, case, message })
    };
    let entry = registry().op(op).map_err(|e| fail("lookup".into(), e.to_string()))?;
    let entry = entry.entry();
    let descriptors = entry.descriptors();
    let k = descriptors
        .iter()
        .find(|d| d.name == kernel && d.dtype == dtype)
        .copied()
        .ok_or_else(|| fail("lookup".into(), format!("no kernel `{kernel}` is registered for {dtype}")))?;
    let reference = descriptors
        .iter()
        .find(|d| d.key == k.key && d.dtype == dtype && d.priority.is_reference())
        .copied()
        .ok_or_else(|| {
            fail(
                "lookup".into(),
                format!(
                    "no reference kernel (priority Priority::REFERENCE) is registered for ({}, {dtype}) to check against",
                    k.key
                ),
            )
        })?;
    let tol = entry.tolerance();
    let schema = entry.schema().clone();
    let mut rng = Rng::new(seed_for(cfg.seed, op, kernel, dtype));
    let mut report = CheckReport {
        op: op.into(),
        kernel: k.name,
        reference: reference.name,
        key: k.key,
        dtype,
        matched: 0,
        errors: 0,
        declined: 0,
        golden: 0,
        golden_declined: 0,
    };
    let mut tally = |outcome| match outcome {
        PairOutcome::Matched => report.matched += 1,
        PairOutcome::BothFailed => report.errors += 1,
        PairOutcome::Declined => report.declined += 1,
    };

    if let Some(build) = builder {
        for i in 0..cfg.cases {
            tally(
                run_pair(&reference, &k, tol, &mut rng, &|r| build(r, dtype))
                    .map_err(|m| fail(format!("valid case #{i}"), m))?,
            );
        }
    }
    for i in 0..cfg.bad_cases {
        tally(
            run_pair(&reference, &k, tol, &mut rng, &|r| inputs::any_args(r, &schema, dtype))
                .map_err(|m| fail(format!("bad-input case #{i}"), m))?,
        );
    }
    for case in golden_cases_of(golden, op, dtype) {
        let id = case.get("id").and_then(|i| i.as_str()).unwrap_or("?").to_string();
        let declined = std::cell::Cell::new(false);
        // As the dispatcher would: a declined case goes to the reference.
        let call = |args: &[Value]| match (k.func)(args) {
            Err(crate::Error::Declined { .. }) => {
                declined.set(true);
                (reference.func)(args)
            }
            other => other,
        };
        run_case_with(case, call).map_err(|m| fail(format!("golden case {id}"), m))?;
        report.golden += 1;
        report.golden_declined += usize::from(declined.get());
    }
    Ok(report)
}

/// Checks every registered kernel; kernels this CPU cannot run are skipped.
/// The kernels are checked in parallel (rayon's pool); the outcomes come
/// in the registry's order.
pub fn check_all(cfg: &CheckConfig) -> Vec<Outcome> {
    let golden = load_golden_cases(&cfg.golden);
    let kernels: Vec<(String, KernelDescriptor)> = registry()
        .ops()
        .into_iter()
        .flat_map(|op| {
            let name = op.entry().schema().name.clone();
            op.entry().descriptors().into_iter().map(move |k| (name.clone(), k))
        })
        .collect();
    kernels
        .into_par_iter()
        .map(|(name, k)| {
            if !(k.is_supported)() {
                return Outcome::Skipped {
                    op: name,
                    kernel: k.name,
                    reason: format!("not supported on this CPU ({}, {})", k.key, k.dtype),
                };
            }
            match check_kernel_on(&name, k.name, k.dtype, cfg, builders::builtin(&name), &golden) {
                Ok(r) => Outcome::Passed(r),
                Err(f) => Outcome::Failed(f),
            }
        })
        .collect()
}
