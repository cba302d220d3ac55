//! Every op, called by name on empty tensors whose other dimensions are
//! huge (`[0, 2^40, 3, 3]`, `[1, 3, 0, 2^40]`, ...) beside plausible other
//! arguments (matching weights, small windows, valid qparams): `Ok` with
//! an empty result, or `Err`, never a panic (run in the debug profile, so
//! an unchecked product of sizes panics), an abort or a long loop over the
//! sizes it does not hold.

use qtensor::{ops, registry, ArgType, DType, Tensor, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};

const HUGE: usize = 1 << 40;

/// Empty quantized tensors of ranks 1 to 4 with huge other sizes, and one
/// float.
fn empties() -> Vec<Tensor> {
    let shapes: [&[usize]; 9] = [
        &[0, HUGE, 3, 3],
        &[HUGE, 0, 3, 3],
        &[1, 3, 0, HUGE],
        &[1, 3, HUGE, 0],
        &[HUGE, 3, 0],
        &[0, HUGE, 3],
        &[HUGE, 0, 3],
        &[0, HUGE],
        &[0],
    ];
    let mut out = Vec::new();
    for s in shapes {
        let f = Tensor::from_vec(Vec::<f32>::new(), s).unwrap();
        out.push(ops::quantize_per_tensor(&f, 0.1, 3, DType::QUInt8).unwrap());
        if s.len() == 4 {
            let cl = out.last().unwrap().contiguous_in(qtensor::MemoryFormat::ChannelsLast).unwrap();
            out.push(cl);
        }
        out.push(f);
    }
    out
}

/// Plausible values for each argument after the first.
fn candidates(ty: ArgType, x: &Tensor) -> Vec<Value> {
    let weight = |sizes: &[usize]| {
        let n: usize = sizes.iter().product();
        let w = Tensor::from_vec(vec![0.05f32; n], sizes).unwrap();
        ops::quantize_per_tensor(&w, 0.01, 0, DType::QInt8).unwrap()
    };
    let c = x.sizes().get(1).copied().unwrap_or(1).clamp(1, 3);
    match ty {
        ArgType::Tensor | ArgType::OptionalTensor => {
            let float = |sizes: &[usize]| Tensor::from_vec(vec![0.05f32; sizes.iter().product()], sizes).unwrap();
            vec![
                Value::Tensor(x.clone()),
                Value::Tensor(weight(&[4, c, 3, 3])),
                Value::Tensor(weight(&[4, 3])),
                Value::Tensor(float(&[4, 3])),
                Value::Tensor(float(&[3, 4])),
                Value::Tensor(float(&[3])),
            ]
        }
        ArgType::TensorList => vec![Value::TensorList(vec![x.clone(), x.clone()])],
        ArgType::Float | ArgType::OptionalFloat | ArgType::Scalar => vec![Value::Float(0.1)],
        ArgType::Int | ArgType::OptionalInt => vec![Value::Int(1), Value::Int(0)],
        ArgType::IntList(_) | ArgType::OptionalIntList => {
            let pairs: [[i64; 2]; 5] = [[2, 2], [1, 1], [0, 0], [3, 1 << 30], [1, 1 << 40]];
            pairs.iter().map(|p| Value::IntList(p.iter().copied().collect())).collect()
        }
        ArgType::Bool | ArgType::OptionalBool => vec![Value::Bool(false)],
        ArgType::ScalarType | ArgType::OptionalScalarType => vec![Value::ScalarType(DType::QUInt8)],
        ArgType::OptionalFloatList | ArgType::FloatList => {
            vec![Value::List(vec![Value::Float(2.0), Value::Float(0.5)])]
        }
        _ => vec![Value::None],
    }
}

#[test]
fn every_op_takes_empty_tensors_with_huge_dimensions() {
    let (mut ok, mut err) = (0usize, 0usize);
    for op in registry().ops() {
        let schema = op.entry().schema().clone();
        let Some(first) = schema.args.first() else { continue };
        if !matches!(first.ty, ArgType::Tensor | ArgType::TensorList) {
            continue;
        }
        for x in empties() {
            let first_value = match first.ty {
                ArgType::TensorList => Value::TensorList(vec![x.clone(), x.clone()]),
                _ => Value::Tensor(x.clone()),
            };
            // Each later argument takes each of its candidates in turn,
            // the others their first.
            let rest: Vec<Vec<Value>> = schema.args[1..].iter().map(|a| candidates(a.ty, &x)).collect();
            let mut variants = vec![rest.iter().map(|c| c[0].clone()).collect::<Vec<_>>()];
            for (i, c) in rest.iter().enumerate() {
                for v in &c[1..] {
                    let mut args = variants[0].clone();
                    args[i] = v.clone();
                    variants.push(args);
                }
            }
            for rest in variants {
                let mut args = vec![first_value.clone()];
                args.extend(rest);
                let described: Vec<String> = args.iter().map(Value::type_name).collect();
                match catch_unwind(AssertUnwindSafe(|| op.call(&args))) {
                    Ok(Ok(_)) => ok += 1,
                    Ok(Err(_)) => err += 1,
                    Err(_) => panic!("{} panicked on ({})", schema.name, described.join(", ")),
                }
            }
        }
    }
    eprintln!("{ok} Ok, {err} Err");
    assert!(ok > 100, "only {ok} calls succeeded: the sweep is not reaching the kernels");
}
