//! The kernel checks can fail: a kernel that is off by a step more
//! than its op allows, or that panics, is reported with the seed that
//! reproduces it. (Its own test binary, since it registers broken kernels.)

use qtensor::kernel_checks::{check_kernel_with, CheckConfig};
use qtensor::{kernel_descriptor, registry, DType, DispatchKey, Priority, Result, Tensor, Value};

/// An add that rounds two steps off now and then, where the op allows
/// none.
fn sloppy_add(a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
    // The reference kernel itself: the dispatcher would call this one.
    let entry = registry().op("quantized::add")?;
    let reference = entry.entry().descriptors().into_iter().find(|k| k.priority.is_reference() && k.dtype == a.dtype());
    let args = [Value::from(a), Value::from(b), Value::Float(scale), Value::Int(zero_point)];
    let exact = (reference.expect("a reference add").func)(&args)?.into_tensor()?;
    let ints: Vec<u8> =
        exact.int_values()?.iter().map(|&v| if v % 7 == 3 { (v + 2).min(255) as u8 } else { v as u8 }).collect();
    let t = Tensor::from_vec(ints, exact.sizes())?;
    Tensor::from_int_repr(&t, &exact.quantizer().expect("quantized"))
}

fn panicking_relu(_x: &Tensor) -> Result<Tensor> {
    panic!("this kernel has a bug")
}

#[test]
fn a_wrong_kernel_is_caught_with_its_seed() {
    let d = registry();
    d.register_kernel(kernel_descriptor! {
        op: qtensor::ops::quantized::ADD, key: DispatchKey::QuantizedCPU, dtype: DType::QUInt8, name: "sloppy_add", priority: Priority::PLUGIN,
        is_supported: qtensor::registration::always_supported, fn sloppy_add(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
    })
    .unwrap();
    // The sloppy kernel wins the dispatch; check it against the reference.
    let cfg = CheckConfig { golden: vec![], ..CheckConfig::default() };
    let winner =
        d.op("quantized::add").unwrap().entry().chosen_kernel(DispatchKey::QuantizedCPU, DType::QUInt8).unwrap();
    let failure = check_kernel_with(
        "quantized::add",
        winner,
        DType::QUInt8,
        &cfg,
        qtensor::kernel_checks::builders::builtin("quantized::add"),
    )
    .unwrap_err();
    let text = failure.to_string();
    assert!(text.contains(&format!("QTENSOR_SEED={}", cfg.seed)), "{text}");
    assert!(text.contains("tolerance exact"), "{text}");

    d.register_kernel(kernel_descriptor! {
        op: qtensor::ops::RELU, key: DispatchKey::QuantizedCPU, dtype: DType::QInt16, name: "panicking_relu", priority: Priority::PLUGIN,
        is_supported: qtensor::registration::always_supported, fn panicking_relu(x: &Tensor) -> Tensor
    })
    .unwrap();
    let failure = check_kernel_with(
        "relu",
        "panicking_relu",
        DType::QInt16,
        &cfg,
        qtensor::kernel_checks::builders::builtin("relu"),
    )
    .unwrap_err();
    assert!(failure.message.contains("panicked: this kernel has a bug"), "{failure}");
}
