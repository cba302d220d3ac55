//! Golden case files: reads `qtensor-conformance/1` files (the format is
//! `docs/golden-case-format.md`), calls each case's operator by name
//! through the dispatcher (or a kernel of your choice, with
//! [`run_case_with`]), and compares the result with what the case expects.
//!
//! The cases themselves are data, not part of the library: the repository's
//! are in `tests/golden/cases/`. Give their directory to
//! [`run_paths`], or set `QTENSOR_GOLDEN_CASES` for
//! [`CheckConfig::default`](crate::kernel_checks::CheckConfig).

use crate::{registry, ArgType, DType, QParams, Quantizer, Result as QResult, Tensor, Value};
use serde_json::Value as Json;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// One failed case (or a malformed file, with `op` empty).
#[derive(Debug, Clone)]
pub struct Failure {
    /// The case id (or the file name for a malformed file).
    pub id: String,
    /// The operator.
    pub op: String,
    /// What went wrong: the first mismatch, the error, or the parse problem.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.op.is_empty() {
            write!(f, "FAIL {}: {}", self.id, self.message)
        } else {
            write!(f, "FAIL {} {}: {}", self.id, self.op, self.message)
        }
    }
}

/// The outcome of running some case files.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed, and malformed files.
    pub failures: Vec<Failure>,
    /// Ids of the cases that passed (for tests that check coverage).
    pub passed_ids: Vec<String>,
    /// Ids of the cases whose `engines` do not include the engine in
    /// force (`QTENSOR_ENGINE`, `qtensor::set_engine`): not run.
    pub other_engine: Vec<String>,
}

impl Report {
    /// Number of failures.
    pub fn failed(&self) -> usize {
        self.failures.len()
    }

    fn merge(&mut self, other: Report) {
        self.passed += other.passed;
        self.failures.extend(other.failures);
        self.passed_ids.extend(other.passed_ids);
        self.other_engine.extend(other.other_engine);
    }

    /// The closing line: exactly `N passed, M failed`, then `, K for other
    /// engines` when cases were for another engine than the one in force.
    pub fn summary(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed());
        if !self.other_engine.is_empty() {
            line += &format!(", {} for other engines than {}", self.other_engine.len(), crate::engine());
        }
        line
    }
}

/// True when `case` holds under the engine in force: it names no
/// `engines`, or names this one. (PyTorch's integers depend on its engine
/// for convs that fbgemm saturates or oneDNN rounds; such a case lists the
/// engines its expectation is for.)
pub fn for_this_engine(case: &Json) -> bool {
    let Some(engines) = case.get("engines").and_then(Json::as_array) else { return true };
    let here = crate::engine();
    engines.iter().filter_map(Json::as_str).any(|e| crate::Engine::parse(e).is_ok_and(|e| e == here))
}

/// Expands files and directories (their `*.json`, sorted) into case files.
pub fn case_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| f.extension().is_some_and(|x| x == "json"))
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Runs case files and directories; a malformed or unreadable file counts
/// as one failure and does not stop the run. `progress` is called after each file.
pub fn run_paths(paths: &[PathBuf], mut progress: impl FnMut(&Path, &Report)) -> Report {
    let mut report = Report::default();
    for file in case_files(paths) {
        let r = run_file(&file);
        progress(&file, &r);
        report.merge(r);
    }
    report
}

/// Runs one case file.
pub fn run_file(path: &Path) -> Report {
    let name = path.display().to_string();
    let malformed = |message: String| Report {
        passed: 0,
        failures: vec![Failure { id: name.clone(), op: String::new(), message }],
        passed_ids: vec![],
        other_engine: vec![],
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return malformed(format!("cannot read: {e}")),
    };
    let doc: Json = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => return malformed(format!("malformed case file: {e}")),
    };
    if doc.get("format").and_then(Json::as_str) != Some("qtensor-conformance/1") {
        return malformed("malformed case file: `format` must be \"qtensor-conformance/1\"".into());
    }
    let Some(cases) = doc.get("cases").and_then(Json::as_array) else {
        return malformed("malformed case file: no `cases` array".into());
    };
    let mut report = Report::default();
    for (i, case) in cases.iter().enumerate() {
        let id = case.get("id").and_then(Json::as_str).map_or_else(|| format!("{name}#{i}"), str::to_string);
        let op = case.get("op").and_then(Json::as_str).unwrap_or("").to_string();
        if !for_this_engine(case) {
            report.other_engine.push(id);
            continue;
        }
        match run_case(case) {
            Ok(()) => {
                report.passed += 1;
                report.passed_ids.push(id);
            }
            Err(message) => report.failures.push(Failure { id, op, message }),
        }
    }
    report
}

/// Runs one case through the dispatcher; `Err` holds the reason it failed.
/// Panics are caught and reported as failures.
pub fn run_case(case: &Json) -> Result<(), String> {
    let op = case.get("op").and_then(Json::as_str).ok_or("case has no `op`")?;
    let handle = registry().op(op).map_err(|e| e.to_string())?;
    run_case_with(case, |args| handle.call(args))
}

/// Runs one case through `call` (a specific kernel, say) instead of the
/// dispatcher's choice.
pub fn run_case_with(case: &Json, call: impl Fn(&[Value]) -> QResult<Value>) -> Result<(), String> {
    let op = case.get("op").and_then(Json::as_str).ok_or("case has no `op`")?;
    let handle = registry().op(op).map_err(|e| e.to_string())?;
    let schema = handle.entry().schema().clone();
    let args_json = case.get("args").and_then(Json::as_array).ok_or("case has no `args` array")?;
    if args_json.len() != schema.args.len() {
        return Err(format!("case has {} args, the schema `{schema}` has {}", args_json.len(), schema.args.len()));
    }
    let args = args_json
        .iter()
        .zip(&schema.args)
        .map(|(j, a)| decode_arg(j, a.ty).map_err(|e| format!("argument `{}`: {e}", a.name)))
        .collect::<Result<Vec<_>, _>>()?;

    let result =
        catch_unwind(AssertUnwindSafe(|| call(&args))).map_err(|p| format!("panicked: {}", panic_message(&p)))?;

    if case.get("expect_error").and_then(Json::as_bool) == Some(true) {
        return match result {
            Err(_) => Ok(()),
            Ok(v) => Err(format!("expected an error, got {}", v.type_name())),
        };
    }
    let value = result.map_err(|e| format!("error: {e}"))?;
    if let Some(text) = case.get("expect_text").and_then(Json::as_str) {
        let t = value.as_tensor().ok_or("expect_text needs a tensor result")?;
        let got = t.to_string();
        return if got == text { Ok(()) } else { Err(text_mismatch(text, &got)) };
    }
    let expect = case.get("expect").ok_or("case has no `expect`, `expect_error` or `expect_text`")?;
    let t = value.as_tensor().ok_or_else(|| format!("expected a tensor, got {}", value.type_name()))?;
    compare_tensor(expect, case.get("tolerance"), t)
}

/// The text of a caught panic.
pub fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn text_mismatch(expected: &str, got: &str) -> String {
    let i = expected.chars().zip(got.chars()).take_while(|(a, b)| a == b).count();
    let around = |s: &str| s.chars().skip(i.saturating_sub(20)).take(40).collect::<String>();
    format!("text differs at char {i}: expected {:?}, got {:?}", around(expected), around(got))
}

/// Reads a JSON number, or `"nan"`, `"inf"`, `"-inf"`.
fn json_f64(j: &Json) -> Result<f64, String> {
    match j {
        Json::Number(n) => n.as_f64().ok_or_else(|| format!("bad number {n}")),
        Json::String(s) => match s.as_str() {
            "nan" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            _ => Err(format!("bad float {s:?}")),
        },
        _ => Err(format!("expected a number, got {j}")),
    }
}

fn json_i64(j: &Json) -> Result<i64, String> {
    j.as_i64().ok_or_else(|| format!("expected an integer, got {j}"))
}

fn json_dtype(j: &Json) -> Result<DType, String> {
    j.as_str().and_then(DType::from_name).ok_or_else(|| format!("unknown dtype {j}"))
}

fn json_shape(j: &Json) -> Result<Vec<usize>, String> {
    let arr = j.get("shape").and_then(Json::as_array).ok_or("tensor has no `shape`")?;
    arr.iter().map(|s| s.as_u64().map(|v| v as usize).ok_or_else(|| format!("bad size {s}"))).collect()
}

fn check_len(shape: &[usize], len: usize) -> Result<(), String> {
    let numel = shape.iter().try_fold(1usize, |a, &s| a.checked_mul(s)).ok_or("shape overflows")?;
    if numel != len {
        return Err(format!("shape {shape:?} needs {numel} values, the case has {len}"));
    }
    Ok(())
}

/// Builds a tensor from its case JSON, laid out channels-last when the
/// case says `"memory_format": "channels_last"` (values stay row-major in
/// the JSON).
pub fn decode_tensor(j: &Json) -> Result<Tensor, String> {
    let t = decode_row_major(j)?;
    match j.get("memory_format").and_then(Json::as_str) {
        None | Some("contiguous") => Ok(t),
        Some("channels_last") => t.contiguous_in(crate::MemoryFormat::ChannelsLast).map_err(|e| e.to_string()),
        Some(other) => Err(format!("unknown memory_format {other:?}")),
    }
}

fn decode_row_major(j: &Json) -> Result<Tensor, String> {
    let dtype = json_dtype(j.get("dtype").ok_or("tensor has no `dtype`")?)?;
    let shape = json_shape(j)?;
    let e = |e: crate::Error| e.to_string();
    if dtype.is_quantized() {
        let ints: Vec<i64> = j
            .get("int_repr")
            .and_then(Json::as_array)
            .ok_or("quantized tensor has no `int_repr`")?
            .iter()
            .map(json_i64)
            .collect::<Result<_, _>>()?;
        check_len(&shape, ints.len())?;
        let plain = dtype.underlying_int().ok_or("no integer type for this dtype")?;
        let (lo, hi) = plain.int_range().ok_or("no range")?;
        if let Some(bad) = ints.iter().find(|&&v| v < lo || v > hi) {
            return Err(format!("int_repr value {bad} is outside {plain}"));
        }
        let int_tensor = crate::with_element_type!(plain.storage_type(), T => {
            let v: Vec<T> = ints.iter().map(|&x| <T as crate::Element>::from_i64(x)).collect();
            Tensor::from_vec(v, &shape).map_err(e)?
        });
        let q = decode_quantizer(j, dtype)?;
        Tensor::from_int_repr(&int_tensor, &q).map_err(e)
    } else {
        let data = j.get("data").and_then(Json::as_array).ok_or("tensor has no `data`")?;
        check_len(&shape, data.len())?;
        match dtype {
            DType::Float32 => Tensor::from_vec(
                data.iter().map(|v| json_f64(v).map(|x| x as f32)).collect::<Result<Vec<_>, _>>()?,
                &shape,
            )
            .map_err(e),
            DType::Float64 => {
                Tensor::from_vec(data.iter().map(json_f64).collect::<Result<Vec<_>, _>>()?, &shape).map_err(e)
            }
            _ => {
                let ints: Vec<i64> = data.iter().map(json_i64).collect::<Result<_, _>>()?;
                let (lo, hi) = dtype.int_range().ok_or("no range")?;
                if let Some(bad) = ints.iter().find(|&&v| v < lo || v > hi) {
                    return Err(format!("value {bad} is outside {dtype}"));
                }
                crate::with_element_type!(dtype.storage_type(), T => {
                    let v: Vec<T> = ints.iter().map(|&x| <T as crate::Element>::from_i64(x)).collect();
                    Tensor::from_vec(v, &shape).map_err(e)
                })
            }
        }
    }
}

fn decode_quantizer(j: &Json, dtype: DType) -> Result<std::sync::Arc<Quantizer>, String> {
    match j.get("qscheme").and_then(Json::as_str) {
        Some("per_tensor_affine") => {
            let scale = json_f64(j.get("scale").ok_or("no `scale`")?)?;
            let zp = json_i64(j.get("zero_point").ok_or("no `zero_point`")?)?;
            Quantizer::per_tensor(scale, zp, dtype).map_err(|e| e.to_string())
        }
        Some("per_channel_affine") => {
            let scales = j
                .get("scales")
                .and_then(Json::as_array)
                .ok_or("no `scales`")?
                .iter()
                .map(json_f64)
                .collect::<Result<Vec<_>, _>>()?;
            let zps = j
                .get("zero_points")
                .and_then(Json::as_array)
                .ok_or("no `zero_points`")?
                .iter()
                .map(json_i64)
                .collect::<Result<Vec<_>, _>>()?;
            let axis = j.get("axis").and_then(Json::as_u64).ok_or("no `axis`")? as usize;
            Quantizer::per_channel(scales, zps, axis, dtype).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown qscheme {other:?}")),
    }
}

/// Builds a boxed argument from its case JSON, by its schema type.
pub fn decode_arg(j: &Json, ty: ArgType) -> Result<Value, String> {
    Ok(match ty {
        ArgType::Tensor => Value::Tensor(decode_tensor(j)?),
        ArgType::OptionalTensor if j.is_null() => Value::None,
        ArgType::OptionalTensor => Value::Tensor(decode_tensor(j)?),
        ArgType::TensorList => Value::TensorList(
            j.as_array().ok_or("expected an array of tensors")?.iter().map(decode_tensor).collect::<Result<_, _>>()?,
        ),
        ArgType::OptionalFloat | ArgType::OptionalInt | ArgType::OptionalScalarType if j.is_null() => Value::None,
        ArgType::Float | ArgType::OptionalFloat => Value::Float(json_f64(j)?),
        ArgType::Int | ArgType::OptionalInt => Value::Int(json_i64(j)?),
        ArgType::IntList(n) => {
            let v: Vec<i64> = match j {
                Json::Array(a) => a.iter().map(json_i64).collect::<Result<_, _>>()?,
                other => vec![json_i64(other)?; n.unwrap_or(1)],
            };
            Value::IntList(v.into_iter().collect())
        }
        ArgType::Bool => Value::Bool(j.as_bool().ok_or("expected a bool")?),
        ArgType::ScalarType | ArgType::OptionalScalarType => Value::ScalarType(json_dtype(j)?),
        ArgType::OptionalStr | ArgType::OptionalDevice if j.is_null() => Value::None,
        ArgType::Str | ArgType::OptionalStr | ArgType::Device | ArgType::OptionalDevice => {
            Value::Str(j.as_str().ok_or("expected a string")?.to_string())
        }
        ArgType::Scalar => match j.as_i64() {
            Some(i) if !j.is_f64() => Value::Int(i),
            _ => Value::Float(json_f64(j)?),
        },
        ArgType::OptionalIntList | ArgType::OptionalFloatList if j.is_null() => Value::None,
        ArgType::OptionalIntList => decode_arg(j, ArgType::IntList(None))?,
        ArgType::FloatList | ArgType::OptionalFloatList => Value::List(
            j.as_array()
                .ok_or("expected an array of floats")?
                .iter()
                .map(|v| json_f64(v).map(Value::Float))
                .collect::<Result<_, _>>()?,
        ),
        ArgType::NoneType if j.is_null() => Value::None,
        ArgType::OptionalBool if j.is_null() => Value::None,
        ArgType::OptionalBool => Value::Bool(j.as_bool().ok_or("expected a bool")?),
        other => return Err(format!("arguments of type {other} cannot be written in case files")),
    })
}

fn close(expected: f64, got: f64, abs: f64, rel: f64) -> bool {
    if expected.is_nan() || got.is_nan() {
        return expected.is_nan() && got.is_nan();
    }
    if expected.is_infinite() || got.is_infinite() {
        return expected == got;
    }
    (expected - got).abs() <= abs + rel * expected.abs()
}

fn scale_eq(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// Compares a result with the case's `expect` under its `tolerance`.
pub fn compare_tensor(expect: &Json, tolerance: Option<&Json>, got: &Tensor) -> Result<(), String> {
    let dtype = json_dtype(expect.get("dtype").ok_or("expect has no `dtype`")?)?;
    let shape = json_shape(expect)?;
    if got.dtype() != dtype {
        return Err(format!("dtype: expected {dtype}, got {}", got.dtype()));
    }
    if got.sizes() != shape.as_slice() {
        return Err(format!("shape: expected {shape:?}, got {:?}", got.sizes()));
    }
    let tol_int = tolerance.and_then(|t| t.get("int")).and_then(Json::as_i64).unwrap_or(0);
    if dtype.is_quantized() {
        let want_q = decode_quantizer(expect, dtype)?;
        let got_q = got.quantizer().ok_or("result has no quantizer")?;
        match (want_q.params(), got_q.params()) {
            (
                QParams::PerTensorAffine { scale: s1, zero_point: z1, .. },
                QParams::PerTensorAffine { scale: s2, zero_point: z2, .. },
            ) => {
                if !scale_eq(s1, s2) || z1 != z2 {
                    return Err(format!(
                        "qparams: expected (scale {s1}, zero_point {z1}), got (scale {s2}, zero_point {z2})"
                    ));
                }
            }
            (
                QParams::PerChannelAffine { scales: s1, zero_points: z1, axis: a1, .. },
                QParams::PerChannelAffine { scales: s2, zero_points: z2, axis: a2, .. },
            ) => {
                if a1 != a2
                    || z1 != z2
                    || s1.len() != s2.len()
                    || !s1.iter().zip(s2.iter()).all(|(a, b)| scale_eq(*a, *b))
                {
                    return Err(format!("qparams: expected axis {a1} scales {s1:?} zero_points {z1:?}, got axis {a2} scales {s2:?} zero_points {z2:?}"));
                }
            }
            _ => return Err(format!("qscheme: expected {}, got {}", want_q.qscheme(), got_q.qscheme())),
        }
        let want: Vec<i64> = expect
            .get("int_repr")
            .and_then(Json::as_array)
            .ok_or("expect has no `int_repr`")?
            .iter()
            .map(json_i64)
            .collect::<Result<_, _>>()?;
        let have = got.int_values().map_err(|e| e.to_string())?;
        if let Some((i, (w, h))) = want.iter().zip(&have).enumerate().find(|(_, (w, h))| (**w - **h).abs() > tol_int) {
            return Err(format!("int_repr at index {i}: expected {w}, got {h}"));
        }
        return Ok(());
    }
    let data = expect.get("data").and_then(Json::as_array).ok_or("expect has no `data`")?;
    if dtype.is_float() {
        let abs = tolerance.and_then(|t| t.get("abs")).and_then(Json::as_f64).unwrap_or(0.0);
        let rel = tolerance.and_then(|t| t.get("rel")).and_then(Json::as_f64).unwrap_or(0.0);
        let have = got.real_values().map_err(|e| e.to_string())?;
        for (i, (w, h)) in data.iter().zip(&have).enumerate() {
            let w = json_f64(w)?;
            if !close(w, *h, abs, rel) {
                return Err(format!("data at index {i}: expected {w}, got {h}"));
            }
        }
    } else {
        let have = got.int_values().map_err(|e| e.to_string())?;
        for (i, (w, h)) in data.iter().zip(&have).enumerate() {
            let w = json_i64(w)?;
            if (w - h).abs() > tol_int {
                return Err(format!("data at index {i}: expected {w}, got {h}"));
            }
        }
    }
    Ok(())
}
