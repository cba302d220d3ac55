//! Layered dispatch: the Profiling fallback wraps every call while enabled,
//! a user's fallback stacks with it, and disabled layers see nothing.
//! (Its own test binary: layers are process-wide.)

use qtensor::layers::{self, Next};
use qtensor::{ops, profiler, DType, DispatchKey, OperatorEntry, Result, Tensor, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

static TRACED: AtomicUsize = AtomicUsize::new(0);

fn tracer(op: &OperatorEntry, args: &[Value], next: Next<'_>) -> Result<Value> {
    if op.schema().name == "dequantize" {
        TRACED.fetch_add(1, Ordering::SeqCst);
    }
    next(args)
}

#[test]
fn profiling_and_a_custom_layer() {
    let x = Tensor::from_slice(&[0.5f32, -1.0, 2.0], &[3]).unwrap();
    let q = ops::quantize_per_tensor(&x, 0.5, 3, DType::QUInt8).unwrap();

    // Disabled: nothing is recorded.
    profiler::reset();
    ops::dequantize(&q).unwrap();
    assert!(profiler::report().is_empty());

    profiler::enable();
    for _ in 0..3 {
        ops::dequantize(&q).unwrap();
    }
    ops::relu(&q).unwrap();
    profiler::disable();
    ops::dequantize(&q).unwrap();
    let report = profiler::report();
    let calls = |name: &str| report.iter().find(|r| r.op == name).map(|r| r.calls);
    assert_eq!(calls("dequantize"), Some(3));
    assert_eq!(calls("relu"), Some(1));
    assert!(profiler::table().contains("dequantize"));
    // Each row names the kernel that ran: the one tried first for a
    // per-tensor quint8 input, which no kernel declines.
    let first =
        qtensor::registry().op("dequantize").unwrap().entry().chosen_kernel(DispatchKey::QuantizedCPU, DType::QUInt8);
    let row = report.iter().find(|r| r.op == "dequantize").unwrap();
    assert_eq!(Some(row.kernel.as_str()), first);
    assert!(profiler::table().contains(&row.kernel));
    // A per-channel input is declined by the vector kernels: the reference ran.
    let pc = ops::quantize_per_channel(
        &Tensor::from_slice(&[0.5f32, -1.0, 2.0, 1.0], &[2, 2]).unwrap(),
        &Tensor::from_slice(&[0.5f64, 0.25], &[2]).unwrap(),
        &Tensor::from_slice(&[0i64, 1], &[2]).unwrap(),
        0,
        DType::QUInt8,
    )
    .unwrap();
    profiler::reset();
    profiler::enable();
    ops::dequantize(&pc).unwrap();
    profiler::disable();
    let ran: Vec<String> = profiler::report().into_iter().filter(|r| r.op == "dequantize").map(|r| r.kernel).collect();
    assert_eq!(ran, vec!["reference_dequantize".to_string()]);
    profiler::reset();
    profiler::enable();
    for _ in 0..3 {
        ops::dequantize(&q).unwrap();
    }
    ops::relu(&q).unwrap();
    profiler::disable();

    // A user's layer on the Tracing key, stacked with profiling.
    assert!(layers::set_enabled(DispatchKey::Tracing, true).is_err(), "no fallback registered yet");
    layers::register_fallback(DispatchKey::Tracing, tracer).unwrap();
    assert!(layers::register_fallback(DispatchKey::CPU, tracer).is_err(), "backend keys take kernels, not fallbacks");
    layers::set_enabled(DispatchKey::Tracing, true).unwrap();
    profiler::enable();
    let y = ops::dequantize(&q).unwrap();
    profiler::disable();
    layers::set_enabled(DispatchKey::Tracing, false).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.5, -1.0, 2.0], "layers do not change results");
    assert_eq!(TRACED.load(Ordering::SeqCst), 1);
    assert_eq!(profiler::report().iter().find(|r| r.op == "dequantize").map(|r| r.calls), Some(4));
    ops::dequantize(&q).unwrap();
    assert_eq!(TRACED.load(Ordering::SeqCst), 1, "a disabled layer sees nothing");
    assert!(!layers::any_enabled());
}
