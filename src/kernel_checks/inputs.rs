//! Random inputs for kernel checks: a schema-driven generator that works for
//! any op (and mostly exercises error paths), and builders for the built-in
//! ops that produce valid inputs across shapes, layouts, qparams and
//! extreme values.

use super::rng::Rng;
use crate::{ArgType, DType, OpSchema, Quantizer, Result, Tensor, Value};

/// Builds one call's arguments for a kernel of `dtype`.
pub type InputBuilder = fn(&mut Rng, DType) -> Result<Vec<Value>>;

/// A random shape: rank 0..=4, sizes 0..=5, sometimes empty, now and then
/// one long dimension so that vector loops and their tails both run.
pub fn shape(rng: &mut Rng, min_rank: usize) -> Vec<usize> {
    let rank = rng.range(min_rank as i64, 4) as usize;
    let mut s: Vec<usize> = (0..rank).map(|_| rng.range(1, 5) as usize).collect();
    if rank > 0 && rng.one_in(12) {
        let i = rng.below(rank);
        s[i] = 0;
    } else if rank > 0 && rng.one_in(4) {
        let i = rng.below(rank);
        s[i] = rng.range(30, 100) as usize;
    }
    s
}

/// A float: mostly ordinary values, sometimes ties, ±inf, NaN, huge and tiny.
pub fn float(rng: &mut Rng, scale: f64) -> f32 {
    match rng.below(20) {
        0 => f32::INFINITY,
        1 => f32::NEG_INFINITY,
        2 => f32::NAN,
        3 => {
            if rng.one_in(2) {
                1e30
            } else {
                -1e30
            }
        }
        4 => (rng.range(-300, 300) as f64 + 0.5) as f32 * scale as f32,
        5 => 0.0,
        6 => 2_147_483_648.0 * scale as f32,
        _ => ((rng.unit() * 2.0 - 1.0) * 200.0 * scale) as f32,
    }
}

/// A scale across the whole useful range: powers of two, round decimals
/// and log-uniform values from 1e-5 to 1e3.
pub fn scale(rng: &mut Rng) -> f64 {
    match rng.below(4) {
        0 => 2f64.powi(rng.range(-12, 4) as i32),
        1 => rng.pick(&[0.1, 0.01, 0.3, 1.0, 0.05]),
        _ => 10f64.powf(rng.unit() * 8.0 - 5.0),
    }
}

/// A zero point within `dtype`'s range, often at its edges.
pub fn zero_point(rng: &mut Rng, dtype: DType) -> i64 {
    let (lo, hi) = dtype.int_range().unwrap_or((0, 0));
    let (lo, hi) = (lo.max(-100_000), hi.min(100_000));
    match rng.below(5) {
        0 => lo,
        1 => hi,
        2 => 0.clamp(lo, hi),
        _ => rng.range(lo, hi),
    }
}

/// A float32 tensor of `sizes`.
pub fn float_tensor(rng: &mut Rng, sizes: &[usize], scale: f64) -> Result<Tensor> {
    let n: usize = sizes.iter().product();
    Tensor::from_vec((0..n).map(|_| float(rng, scale)).collect(), sizes)
}

/// A quantized tensor of `sizes`: full-range integers, per-tensor or (for
/// rank >= 1, when allowed) per-channel qparams.
pub fn quantized(rng: &mut Rng, dtype: DType, sizes: &[usize], per_channel: bool) -> Result<Tensor> {
    let (lo, hi) = dtype.int_range().unwrap_or((0, 255));
    let n: usize = sizes.iter().product();
    let ints: Vec<i64> = (0..n)
        .map(|_| if rng.one_in(8) { rng.pick(&[lo, hi]) } else { rng.range(lo.max(-5000), hi.min(5000)) })
        .collect();
    let q = if per_channel && !sizes.is_empty() && rng.one_in(3) {
        let axis = rng.below(sizes.len());
        let c = sizes[axis];
        Quantizer::per_channel(
            (0..c).map(|_| scale(rng)).collect(),
            (0..c).map(|_| zero_point(rng, dtype)).collect(),
            axis,
            dtype,
        )?
    } else {
        Quantizer::per_tensor(scale(rng), zero_point(rng, dtype), dtype)?
    };
    let plain = dtype.underlying_int().unwrap_or(DType::UInt8);
    let t = crate::with_element_type!(plain.storage_type(), T => {
        Tensor::from_vec(ints.iter().map(|&v| <T as crate::Element>::from_i64(v)).collect(), sizes)?
    });
    Tensor::from_int_repr(&t, &q)
}

/// Makes a tensor non-contiguous about half the time: the same values seen
/// through a transposed or strided view of a larger buffer.
pub fn maybe_strided(rng: &mut Rng, t: Tensor) -> Result<Tensor> {
    if t.ndim() >= 2 && rng.one_in(3) {
        let n = t.ndim() as i64;
        // transpose(transpose(t)) has t's values but a strided layout.
        return t.transpose(n - 1, n - 2)?.contiguous_copy()?.transpose(n - 1, n - 2);
    }
    if t.ndim() >= 1 && rng.one_in(3) {
        // Every other element of a buffer twice as wide.
        let n = t.ndim();
        let mut wide_sizes = t.sizes().to_vec();
        wide_sizes[n - 1] *= 2;
        let wide = match t.quantizer() {
            Some(q) => Tensor::empty_quantized(&wide_sizes, &Quantizer::per_tensor(1.0, 0, q.dtype())?)?,
            None => Tensor::zeros(&wide_sizes, t.dtype())?,
        };
        let view = wide.slice(n as i64 - 1, Some(0), None, 2)?;
        // copy_ gives the view t's integers and quantizer.
        view.copy_(&t)?;
        return Ok(view);
    }
    Ok(t)
}

/// Any value of a schema type, with no regard for validity: for checking
/// that bad inputs give errors, not panics.
pub fn any_value(rng: &mut Rng, ty: ArgType, dtype: DType) -> Result<Value> {
    let tensor = |rng: &mut Rng| -> Result<Tensor> {
        let d = if rng.one_in(3) { rng.pick(&DType::ALL[..11]) } else { dtype };
        let s = shape(rng, 0);
        if d.is_quantized() {
            quantized(rng, d, &s, true)
        } else if d.is_float() {
            float_tensor(rng, &s, 1.0)
        } else {
            crate::with_element_type!(d.storage_type(), T => {
                let n: usize = s.iter().product();
                Tensor::from_vec((0..n).map(|_| <T as crate::Element>::from_i64(rng.range(-3, 3))).collect::<Vec<T>>(), &s)
            })
        }
    };
    Ok(match ty {
        ArgType::Tensor => Value::Tensor(tensor(rng)?),
        ArgType::OptionalTensor => {
            if rng.one_in(3) {
                Value::None
            } else {
                Value::Tensor(tensor(rng)?)
            }
        }
        ArgType::TensorList => Value::TensorList((0..rng.below(3)).map(|_| tensor(rng)).collect::<Result<_>>()?),
        ArgType::Float | ArgType::OptionalFloat => {
            Value::Float(rng.pick(&[0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300, 0.1, 3.0]))
        }
        ArgType::Int | ArgType::OptionalInt => Value::Int(rng.pick(&[0, 1, -1, 2, 3, -7, 300, i64::MAX, i64::MIN])),
        ArgType::IntList(n) => {
            let len = n.unwrap_or_else(|| rng.below(5));
            Value::IntList((0..len).map(|_| rng.pick(&[0, 1, 2, -1, 3, -5, 1 << 40])).collect())
        }
        ArgType::Bool => Value::Bool(rng.one_in(2)),
        ArgType::ScalarType | ArgType::OptionalScalarType => Value::ScalarType(rng.pick(&DType::ALL)),
        ArgType::Str | ArgType::OptionalStr => Value::Str("x".into()),
        ArgType::Device | ArgType::OptionalDevice => Value::Str("cpu".into()),
        ArgType::NoneType | ArgType::TensorTuple(_) => Value::None,
        ArgType::OptionalBool => Value::Bool(rng.one_in(2)),
        ArgType::OptionalIntList => Value::None,
        ArgType::OptionalFloatList => Value::List(vec![Value::Float(2.0), Value::Float(0.5)]),
        ArgType::Scalar => Value::Float(rng.pick(&[0.0, -1.0, 0.5, 3.0])),
        ArgType::FloatList => {
            Value::List((0..rng.below(3)).map(|_| Value::Float(rng.pick(&[0.0, 1.0, -2.5]))).collect())
        }
        ArgType::AnyList => Value::IntList((0..rng.below(4)).map(|_| rng.pick(&[0, 1, 3])).collect()),
        ArgType::Object(class) => super::random_calls::script_object(rng, class),
        ArgType::ObjectList(class) => Value::List(vec![super::random_calls::script_object(rng, class)]),
    })
}

/// Arguments for `schema` from [`any_value`].
pub fn any_args(rng: &mut Rng, schema: &OpSchema, dtype: DType) -> Result<Vec<Value>> {
    let mut args = Vec::with_capacity(schema.args.len());
    for (i, a) in schema.args.iter().enumerate() {
        // Keep the first tensor of the kernel's dtype so the kernel's own
        // validation (not just a dtype check) is exercised.
        let v = if i == 0 && a.ty == ArgType::Tensor && !rng.one_in(4) {
            let s = shape(rng, 0);
            Value::Tensor(if dtype.is_quantized() {
                quantized(rng, dtype, &s, true)?
            } else {
                float_tensor(rng, &s, 1.0)?
            })
        } else {
            any_value(rng, a.ty, dtype)?
        };
        args.push(v);
    }
    Ok(args)
}
