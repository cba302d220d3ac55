//! The plugin path end to end, from a crate outside qtensor.

use qtensor::kernel_checks::{check_kernel, check_kernel_with, CheckConfig};
use qtensor::{kernel_descriptor, ops, registry, DType, DispatchKey, Result, Tensor, Value};

fn q(values: &[f32], scale: f64, zp: i64) -> Tensor {
    ops::quantize_per_tensor(&Tensor::from_slice(values, &[values.len()]).unwrap(), scale, zp, DType::QUInt8).unwrap()
}

#[test]
fn the_plugin_relu_is_chosen_over_the_built_in_ones() {
    qtensor_plugin_example::link();
    registry().check().unwrap();
    let relu = registry().op("relu").unwrap();
    assert_eq!(relu.entry().chosen_kernel(DispatchKey::QuantizedCPU, DType::QUInt8), Some("plugin_relu_u8"));
    // Other dtypes keep the built-in kernels.
    assert_ne!(relu.entry().chosen_kernel(DispatchKey::QuantizedCPU, DType::QInt8), Some("plugin_relu_u8"));
    let x = q(&[-1.0, 0.5, 2.0], 0.5, 10);
    let y = registry().call("relu", &[Value::from(&x)]).unwrap().into_tensor().unwrap();
    assert_eq!(y.int_values().unwrap(), vec![10, 11, 14]);
    // And it agrees with the reference kernel under the kernel checks.
    // Golden cases are data: this plugin uses a checkout's copy of qtensor's
    // (`QTENSOR_GOLDEN_CASES` would do the same).
    let cases = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/cases");
    let cfg = CheckConfig { golden: vec![cases.into()], ..CheckConfig::default() };
    let report = check_kernel("relu", "plugin_relu_u8", DType::QUInt8, &cfg).unwrap_or_else(|f| panic!("{f}"));
    assert!(report.matched > 0);
    assert!(report.golden > 0, "the golden relu cases ran");
    assert!(report.reference.starts_with("reference_"));
}

#[test]
fn the_new_op_is_callable_by_name_and_listed() {
    qtensor_plugin_example::link();
    let x = q(&[-3.0, -0.4, 0.7, 5.0], 0.5, 10);
    let y = registry()
        .call("myplugin::clamp_q", &[Value::from(&x), Value::Float(-1.0), Value::Float(1.0)])
        .unwrap()
        .into_tensor()
        .unwrap();
    assert_eq!(y.int_values().unwrap(), vec![8, 9, 11, 12]);
    assert_eq!(
        registry().op("myplugin::clamp_q").unwrap().entry().chosen_kernel(DispatchKey::QuantizedCPU, DType::QUInt8),
        Some("plugin_clamp_q")
    );
    // Declared with its schema, and its kernel listed where it was registered.
    let handle = registry().op("myplugin::clamp_q").unwrap();
    let entry = handle.entry();
    assert_eq!(entry.schema().to_string(), "myplugin::clamp_q(Tensor self, float min, float max) -> Tensor");
    let listed = entry.kernels();
    let k = listed.iter().find(|k| k.name == "plugin_clamp_q").unwrap();
    assert!(k.location.contains("src/lib.rs"), "{}", k.location);
    // Bad arguments are errors.
    assert!(registry().call("myplugin::clamp_q", &[Value::from(&x), Value::Float(2.0), Value::Float(1.0)]).is_err());
    assert!(registry().call("myplugin::clamp_q", &[Value::from(&x), Value::Float(2.0)]).is_err());
    // Its kernel passes the kernel checks with the plugin's own input builder.
    let report = check_kernel_with(
        "myplugin::clamp_q",
        "plugin_clamp_q",
        DType::QInt8,
        &CheckConfig::default(),
        Some(qtensor_plugin_example::clamp_q_inputs),
    )
    .unwrap_or_else(|f| panic!("{f}"));
    assert!(report.matched > 0);
}

fn negating_clamp(x: &Tensor, _min: f64, _max: f64) -> Result<Tensor> {
    Ok(x.clone())
}

#[test]
fn run_time_registration_without_inventory() {
    qtensor_plugin_example::link();
    let d = registry();
    // A kernel for a dtype the plugin did not cover, registered at run time.
    d.register_kernel(kernel_descriptor! {
        op: qtensor_plugin_example::CLAMP_Q, key: DispatchKey::QuantizedCPU, dtype: DType::QInt16, name: "runtime_identity_clamp", priority: qtensor::Priority::REFERENCE,
        is_supported: qtensor::registration::always_supported, fn negating_clamp(x: &Tensor, min: f64, max: f64) -> Tensor
    })
    .unwrap();
    assert_eq!(
        d.op("myplugin::clamp_q").unwrap().entry().chosen_kernel(DispatchKey::QuantizedCPU, DType::QInt16),
        Some("runtime_identity_clamp")
    );
    // The same (key, dtype, priority) again is refused, naming both kernels.
    let err = d
        .register_kernel(kernel_descriptor! {
            op: qtensor_plugin_example::CLAMP_Q, key: DispatchKey::QuantizedCPU, dtype: DType::QUInt8, name: "second_clamp", priority: qtensor::Priority::REFERENCE,
            is_supported: qtensor::registration::always_supported, fn negating_clamp(x: &Tensor, min: f64, max: f64) -> Tensor
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugin_clamp_q") && err.contains("second_clamp"), "{err}");
    // An op declared at run time.
    let op = d.declare_op("myplugin::runtime_op(Tensor self) -> Tensor").unwrap();
    assert!(op.call(&[Value::from(&q(&[1.0], 0.5, 0))]).unwrap_err().to_string().contains("no kernel"));
}
