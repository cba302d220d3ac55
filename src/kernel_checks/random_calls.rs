//! Random calls of every op by name, with arguments of its schema's types,
//! valid and invalid: zero, huge and odd sizes (empty tensors whose other
//! dimensions reach 2^63, windows and paddings up to 2^62); strided, transposed,
//! expanded and channels-last views; per-channel tensors; extreme and NaN
//! qparams; negative and huge integers; lists of every length; now and
//! then a value of the wrong type. `tests/never_panics.rs` and the
//! `boxed_call` fuzz target drive it (the latter from the fuzzer's bytes,
//! through [`Rng::from_bytes`]).

use super::rng::Rng;
use crate::{ops, registry, ArgType, DType, OpHandle, Tensor, Value};
use qtensor_runtime::ScriptClass;

const QUANTIZED: [DType; 4] = [DType::QUInt8, DType::QInt8, DType::QInt16, DType::QInt32];
const PLAIN: [DType; 6] = [DType::Float32, DType::Float64, DType::Int64, DType::Int32, DType::UInt8, DType::Int8];

/// A size: usually small, sometimes 0, sometimes huge (only where the
/// tensor stays cheap, i.e. in an expanded view or beside a 0).
fn small_size(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0 => 0,
        1 => 1,
        _ => rng.below(7) + 1,
    }
}

fn scale(rng: &mut Rng) -> f64 {
    *[0.1, 1e-3, 17.0, 1e-30, 1e30, 1e-45, 0.0, -1.0, f64::NAN, f64::INFINITY, 3.3e-5, 1.0]
        .get(rng.below(12))
        .unwrap_or(&0.1)
}

/// A huge size or count: past `u32`, near the top of `i64`, and values
/// whose products and sums with small ones overflow.
const HUGE: [u64; 8] = [1 << 31, 1 << 32, 1 << 39, 1 << 40, 1 << 62, (1 << 62) + 1, (1 << 63) - 1, 1 << 63];

fn int(rng: &mut Rng) -> i64 {
    match rng.below(9) {
        0 => i64::MAX,
        1 => i64::MIN,
        2 => -(rng.below(5) as i64) - 1,
        // A window, padding, stride or dilation up to 2^62 beside a small
        // input (a pooling call that must not allocate by its window).
        // From 2^39 up: an output size of 2^31 is valid and only slow.
        3 => rng.pick(&HUGE[2..6]) as i64,
        _ => rng.below(6) as i64,
    }
}

/// The sizes of an empty tensor whose other dimensions are huge, e.g.
/// `[0, 2^63 - 1, 2^32, 3]`: valid, with no elements, but the product of
/// its nonzero sizes overflows.
fn empty_huge_sizes(rng: &mut Rng) -> Vec<usize> {
    let rank = rng.below(4) + 2;
    let zero_at = rng.below(rank);
    (0..rank)
        .map(|d| match d {
            _ if d == zero_at => 0,
            _ if rng.one_in(3) => rng.below(4) + 1,
            _ => rng.pick(&HUGE) as usize,
        })
        .collect()
}

/// A random tensor: plain or quantized, per-tensor or per-channel, maybe
/// a view (transposed, sliced with a step, expanded).
/// A random tensor (see the module docs).
pub fn tensor(rng: &mut Rng) -> crate::Result<Tensor> {
    let sizes: Vec<usize> = if rng.one_in(12) {
        empty_huge_sizes(rng)
    } else {
        let rank = rng.below(5);
        (0..rank).map(|_| small_size(rng)).collect()
    };
    let rank = sizes.len();
    // Unrepresentable shapes get no values: constructing them must fail.
    let n = qtensor_runtime::tensor::layout::checked_numel("tensor", &sizes).unwrap_or(0);
    let values: Vec<f32> = (0..n)
        .map(|i| match rng.below(40) {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => -1e30,
            _ => (i % 13) as f32 * 0.37 - 2.0,
        })
        .collect();
    let x = Tensor::from_vec(values.clone(), &sizes)?;
    let mut t = if rng.one_in(5) {
        plain(&values, &sizes, rng.pick(&PLAIN))?
    } else {
        let dtype = rng.pick(&QUANTIZED);
        let (lo, hi) = dtype.int_range().unwrap_or((0, 0));
        let zp = if rng.one_in(20) { hi + 1 } else { rng.range(lo.max(-300), hi.min(300)) };
        let axis = rng.below(rank.max(1));
        // Per-channel qparams are one per channel: only along a small axis.
        if rank > 0 && rng.one_in(3) && sizes[axis] <= 64 {
            let c = sizes[axis];
            let s = Tensor::from_vec((0..c).map(|i| 0.05 * (i + 1) as f64).collect::<Vec<f64>>(), &[c]);
            let z = Tensor::from_vec(vec![zp.clamp(lo, hi); c], &[c]);
            match (s, z) {
                (Ok(s), Ok(z)) => ops::quantize_per_channel(&x, &s, &z, axis as i64, dtype).unwrap_or(x),
                _ => x,
            }
        } else {
            let s = if rng.one_in(8) { scale(rng) } else { rng.pick(&[0.1, 0.02, 3.0, 1e-5, 1e5]) };
            ops::quantize_per_tensor(&x, s, zp, dtype).unwrap_or(x)
        }
    };
    // Views.
    if t.ndim() >= 2 && rng.one_in(4) {
        t = t.transpose(0, -1).unwrap_or(t);
    }
    if t.ndim() >= 1 && rng.one_in(4) {
        t = t.slice(0, Some(int(rng).clamp(-3, 3)), None, rng.below(3) as i64 + 1).unwrap_or(t);
    }
    if t.ndim() >= 1 && t.sizes()[0] == 1 && rng.one_in(4) {
        let mut big: Vec<usize> = t.sizes().to_vec();
        big[0] = if rng.one_in(2) { 1 << 40 } else { 5 };
        t = t.expand(&big).unwrap_or(t);
    }
    if t.ndim() == 4 && rng.one_in(3) {
        t = t.contiguous_in(crate::MemoryFormat::ChannelsLast).unwrap_or(t);
    }
    Ok(t)
}

/// `values` as a plain tensor of `dtype`.
fn plain(values: &[f32], sizes: &[usize], dtype: DType) -> crate::Result<Tensor> {
    let ints = |f: fn(f32) -> i64| values.iter().map(|&v| if v.is_finite() { f(v) } else { 0 }).collect::<Vec<i64>>();
    let t = match dtype {
        DType::Float64 => Tensor::from_vec(values.iter().map(|&v| v as f64).collect::<Vec<f64>>(), sizes),
        DType::Int64 => Tensor::from_vec(ints(|v| v as i64), sizes),
        DType::Int32 => Tensor::from_vec(ints(|v| v as i64).into_iter().map(|v| v as i32).collect::<Vec<i32>>(), sizes),
        DType::UInt8 => {
            Tensor::from_vec(ints(|v| v.abs() as i64).into_iter().map(|v| v as u8).collect::<Vec<u8>>(), sizes)
        }
        DType::Int8 => Tensor::from_vec(ints(|v| v as i64).into_iter().map(|v| v as i8).collect::<Vec<i8>>(), sizes),
        _ => Tensor::from_vec(values.to_vec(), sizes),
    };
    t
}

fn int_list(rng: &mut Rng, len: Option<usize>) -> Value {
    let n = len.unwrap_or_else(|| rng.below(6));
    let n = if rng.one_in(15) { rng.below(4) } else { n };
    Value::IntList((0..n).map(|_| int(rng)).collect())
}

fn arg(rng: &mut Rng, ty: ArgType) -> Value {
    // Now and then, a value of the wrong type.
    if rng.one_in(40) {
        return Value::Str("wrong".into());
    }
    match ty {
        ArgType::Tensor => tensor(rng).map_or(Value::None, Value::Tensor),
        ArgType::OptionalTensor => {
            if rng.one_in(3) {
                Value::None
            } else {
                tensor(rng).map_or(Value::None, Value::Tensor)
            }
        }
        ArgType::TensorList => Value::TensorList((0..rng.below(4)).filter_map(|_| tensor(rng).ok()).collect()),
        ArgType::Float | ArgType::OptionalFloat => {
            if ty == ArgType::OptionalFloat && rng.one_in(3) {
                Value::None
            } else {
                Value::Float(scale(rng))
            }
        }
        ArgType::Int | ArgType::OptionalInt => {
            if ty == ArgType::OptionalInt && rng.one_in(3) {
                Value::None
            } else {
                Value::Int(int(rng))
            }
        }
        ArgType::IntList(len) => int_list(rng, len),
        ArgType::Bool => Value::Bool(rng.one_in(2)),
        ArgType::ScalarType | ArgType::OptionalScalarType => {
            let all: Vec<DType> = QUANTIZED.iter().chain(PLAIN.iter()).copied().collect();
            Value::ScalarType(rng.pick(&all))
        }
        ArgType::Str | ArgType::OptionalStr => Value::Str("x".into()),
        ArgType::Device | ArgType::OptionalDevice => Value::Str("cpu".into()),
        ArgType::NoneType | ArgType::TensorTuple(_) => Value::None,
        ArgType::OptionalBool => Value::Bool(rng.one_in(2)),
        ArgType::OptionalIntList => Value::None,
        ArgType::OptionalFloatList => Value::List(vec![Value::Float(2.0), Value::Float(0.5)]),
        ArgType::Scalar => Value::Float(scale(rng)),
        ArgType::FloatList => Value::List((0..rng.below(4)).map(|_| Value::Float(scale(rng))).collect()),
        ArgType::AnyList => int_list(rng, None),
        ArgType::Object(class) => script_object(rng, class),
        ArgType::ObjectList(class) => Value::List((0..rng.below(3)).map(|_| script_object(rng, class)).collect()),
    }
}

/// A packed-weight object of `class` around random (often invalid) parts;
/// `None` where the parts are refused, as a caller's bad object would be.
pub(crate) fn script_object(rng: &mut Rng, class: ScriptClass) -> Value {
    let weight = tensor(rng);
    let bias = if rng.one_in(2) { tensor(rng).ok() } else { None };
    let pair = |rng: &mut Rng| [int(rng), int(rng)];
    let made = weight.and_then(|weight| match class {
        ScriptClass::Conv2dPackedParams => qtensor_runtime::packed::Conv2dPackedParams {
            weight,
            bias,
            stride: pair(rng),
            padding: pair(rng),
            dilation: pair(rng),
            output_padding: [0, 0],
            groups: int(rng),
            transposed: false,
        }
        .into_value(),
        ScriptClass::LinearPackedParams => qtensor_runtime::packed::LinearPackedParams { weight, bias }.into_value(),
        ScriptClass::CellParams => {
            let w_hh = qtensor_runtime::packed::LinearPackedParams { weight: weight.clone(), bias: bias.clone() };
            let w_ih = qtensor_runtime::packed::LinearPackedParams { weight, bias };
            qtensor_runtime::packed::CellParams { w_ih, w_hh, reduce_range: rng.one_in(2) }.into_value()
        }
    });
    made.unwrap_or(Value::None)
}

/// A random op and arguments for it.
pub fn random_call(rng: &mut Rng) -> (OpHandle, Vec<Value>) {
    let ops = registry().ops();
    let op = ops[rng.below(ops.len())].clone();
    let args = op.entry().schema().args.iter().map(|a| arg(rng, a.ty)).collect();
    (op, args)
}
