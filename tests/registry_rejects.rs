//! A kernel whose signature disagrees with its schema, submitted through
//! `inventory` like any plugin, is rejected when the registry is built,
//! by name: at startup, not at its first call. (Its own test binary, so
//! that the rejection does not leak into the other tests.)

use qtensor::{register_kernel, registry, Error, Result, Tensor};

fn dequantize_with_extra_argument(x: &Tensor, _extra: i64) -> Result<Tensor> {
    Ok(x.clone())
}

register_kernel! {
    op: qtensor::ops::DEQUANTIZE,
    dtypes: [QUInt8],
    name: "broken_dequantize",
    priority: qtensor::Priority::PLUGIN,
    fn dequantize_with_extra_argument(x: &Tensor, extra: i64) -> Tensor
}

#[test]
fn a_mismatched_kernel_is_rejected_at_startup_by_name() {
    let errors = registry().registration_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    match &errors[0] {
        Error::Registration { op, kernel, message } => {
            assert_eq!((op.as_str(), kernel.as_str()), ("dequantize", "broken_dequantize"));
            assert!(message.contains("(Tensor, int)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // check() reports every rejection, each with where it was registered.
    match registry().check() {
        Err(Error::RejectedRegistrations { errors }) => {
            assert_eq!(errors.len(), 1);
            assert!(errors[0].to_string().contains("tests/registry_rejects.rs:"), "{}", errors[0]);
        }
        other => panic!("{other:?}"),
    }
    // The rejected kernel is never chosen, although its priority is the highest.
    let op = registry().op("dequantize").unwrap();
    let chosen = op.entry().chosen_kernel(qtensor::DispatchKey::QuantizedCPU, qtensor::DType::QUInt8);
    assert!(matches!(chosen, Some(name) if name != "broken_dequantize"), "{chosen:?}");
    assert!(op.entry().kernels().iter().all(|k| k.name != "broken_dequantize"));
}
