//! Each vectorized kernel against its op's reference kernel, on the same
//! inputs in the same run.

use super::{time, Timing};
use qtensor::{ops, registry, DType, KernelDescriptor, Result, Tensor, Value};

/// One op and dtype with the inputs to time it on.
pub struct KernelCase {
    /// A label (`quantize_per_tensor/quint8`).
    pub name: String,
    /// The op.
    pub op: &'static str,
    /// The dtype its kernels are registered for.
    pub dtype: DType,
    /// The arguments.
    pub args: Vec<Value>,
}

/// A deterministic float tensor of `n` values in about [-2.5, 2.5].
fn floats(n: usize, seed: u32) -> Result<Tensor> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 5.0 - 2.5
        })
        .collect();
    Tensor::from_vec(v, &[n])
}

/// The vectorized ops' inputs, `n` elements each.
pub fn cases(n: usize) -> Result<Vec<KernelCase>> {
    let x = floats(n, 1)?;
    let side = (n as f64).sqrt() as usize;
    let x2 = floats(side * side, 2)?.reshape_to(&[side, side])?;
    let scales = Tensor::from_vec((0..side).map(|i| 0.001 + 0.0001 * i as f64).collect::<Vec<f64>>(), &[side])?;
    let zps = Tensor::from_vec(vec![0i64; side], &[side])?;
    let mut out = Vec::new();
    for (dtype, zp) in [(DType::QUInt8, 3), (DType::QInt8, 3), (DType::QInt32, 3)] {
        let q = ops::quantize_per_tensor(&x, 0.02, zp, dtype)?;
        let name = |op: &str| format!("{op}/{dtype}");
        out.push(KernelCase {
            name: name("quantize_per_tensor"),
            op: "quantize_per_tensor",
            dtype: DType::Float32,
            args: vec![Value::from(&x), Value::Float(0.02), Value::Int(zp), Value::ScalarType(dtype)],
        });
        out.push(KernelCase { name: name("dequantize"), op: "dequantize", dtype, args: vec![Value::from(&q)] });
        out.push(KernelCase { name: name("relu"), op: "relu", dtype, args: vec![Value::from(&q)] });
        if dtype != DType::QInt32 {
            let b = ops::quantize_per_tensor(&floats(n, 3)?, 0.03, 5, dtype)?;
            for op in ["quantized::add", "quantized::add_relu", "quantized::mul"] {
                out.push(KernelCase {
                    name: name(op),
                    op,
                    dtype,
                    args: vec![Value::from(&q), Value::from(&b), Value::Float(0.05), Value::Int(4)],
                });
            }
        }
    }
    out.push(KernelCase {
        name: "quantize_per_channel/qint8/axis0".into(),
        op: "quantize_per_channel",
        dtype: DType::Float32,
        args: vec![
            Value::from(&x2),
            Value::from(&scales),
            Value::from(&zps),
            Value::Int(0),
            Value::ScalarType(DType::QInt8),
        ],
    });
    Ok(out)
}

/// The reference (at `Priority::REFERENCE`) and the chosen kernel of a
/// case's op and dtype; an error if the chosen kernel declines the case's
/// input (its timing would measure the decline, not the work).
pub fn reference_and_chosen(case: &KernelCase) -> Result<(KernelDescriptor, KernelDescriptor)> {
    let (op, dtype) = (case.op, case.dtype);
    let handle = registry().op(op)?;
    let all = handle.entry().descriptors();
    let key = qtensor::DispatchKey::for_dtype(dtype);
    let mine: Vec<&KernelDescriptor> = all.iter().filter(|k| k.key == key && k.dtype == dtype).collect();
    let chosen_name = handle.entry().chosen_kernel(key, dtype);
    let reference = mine.iter().find(|k| k.priority.is_reference()).copied();
    let chosen = mine.iter().find(|k| Some(k.name) == chosen_name).copied();
    let (reference, chosen) = match (reference, chosen) {
        (Some(r), Some(c)) => (*r, *c),
        _ => return Err(qtensor::Error::invalid("bench", format!("{op} has no kernel for {dtype}"))),
    };
    if let Err(qtensor::Error::Declined { reason }) = (chosen.func)(&case.args) {
        let message = format!("`{}` declines the case {} ({reason})", chosen.name, case.name);
        return Err(qtensor::Error::invalid("bench", message));
    }
    Ok((reference, chosen))
}

/// One row of the comparison.
#[derive(Debug, Clone)]
pub struct KernelRatio {
    /// The case.
    pub name: String,
    /// The reference kernel and its timing.
    pub reference: (&'static str, Timing),
    /// The chosen kernel and its timing.
    pub chosen: (&'static str, Timing),
}

impl KernelRatio {
    /// Reference median over chosen median.
    pub fn speedup(&self) -> f64 {
        self.reference.1.median.as_secs_f64() / self.chosen.1.median.as_secs_f64().max(1e-12)
    }
}

/// Times every case's reference and chosen kernel, `reps` runs each.
pub fn compare(n: usize, reps: usize, mut progress: impl FnMut(&str)) -> Result<Vec<KernelRatio>> {
    let mut rows = Vec::new();
    for case in cases(n)? {
        progress(&case.name);
        let (reference, chosen) = reference_and_chosen(&case)?;
        let t_ref = time(reps, || (reference.func)(&case.args));
        let t_fast = time(reps, || (chosen.func)(&case.args));
        rows.push(KernelRatio { name: case.name, reference: (reference.name, t_ref), chosen: (chosen.name, t_fast) });
    }
    Ok(rows)
}

/// The comparison as a table.
pub fn table(rows: &[KernelRatio]) -> String {
    let mut out = format!(
        "{:<36} {:<32} {:>11} {:<28} {:>11} {:>8}\n",
        "case", "reference", "median", "chosen", "median", "speedup"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<36} {:<32} {:>11.3?} {:<28} {:>11.3?} {:>7.1}x\n",
            r.name,
            r.reference.0,
            r.reference.1.median,
            r.chosen.0,
            r.chosen.1.median,
            r.speedup()
        ));
    }
    out
}
