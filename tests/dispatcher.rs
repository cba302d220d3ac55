//! The dispatcher's contract: calls by name and by handle, clear errors,
//! selection by priority and CPU support, and signature checks.

use qtensor::{
    kernel_descriptor, ops, registry, DType, DispatchKey, Dispatcher, Error, Priority, Result, Tensor, Value,
};

fn floats() -> Tensor {
    Tensor::from_slice(&[0.5f32, -1.0, 2.0], &[3]).unwrap()
}

#[test]
fn the_built_in_registry_has_no_rejected_registration() {
    assert!(registry().registration_errors().is_empty(), "{:?}", registry().registration_errors());
}

#[test]
fn calls_by_name_by_handle_and_typed_agree() {
    let x = floats();
    let args = [Value::from(&x), Value::Float(0.5), Value::Int(3), Value::ScalarType(DType::QUInt8)];
    let by_name = registry().call("quantize_per_tensor", &args).unwrap().into_tensor().unwrap();
    let handle = registry().op("quantize_per_tensor").unwrap();
    let by_handle = handle.call(&args).unwrap().into_tensor().unwrap();
    let typed = ops::quantize_per_tensor(&x, 0.5, 3, DType::QUInt8).unwrap();
    assert_eq!(by_name.int_values().unwrap(), vec![4, 1, 7]);
    assert_eq!(by_handle.int_values().unwrap(), by_name.int_values().unwrap());
    assert_eq!(typed.int_values().unwrap(), by_name.int_values().unwrap());
}

#[test]
fn a_missing_kernel_names_op_key_dtype_and_what_exists() {
    let err = ops::dequantize(&floats()).unwrap_err();
    match &err {
        Error::NoKernel { op, key, dtype, available } => {
            assert_eq!(op, "dequantize");
            assert_eq!((*key, *dtype), (DispatchKey::CPU, DType::Float32));
            assert!(available.contains(&(DispatchKey::QuantizedCPU, DType::QUInt8)));
        }
        other => panic!("expected NoKernel, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with("dequantize: no kernel for (CPU, float32); kernels exist for: (QuantizedCPU, quint8)"),
        "{msg}"
    );
    assert!(msg.contains("quantize the input first"), "{msg}");
}

#[test]
fn a_quantized_tensor_given_to_a_float_op_says_to_dequantize() {
    let q = ops::quantize_per_tensor(&floats(), 0.5, 3, DType::QUInt8).unwrap();
    let msg = ops::quantize_per_tensor(&q, 0.5, 3, DType::QUInt8).unwrap_err().to_string();
    assert!(msg.contains("no kernel for (QuantizedCPU, quint8)"), "{msg}");
    assert!(msg.contains("dequantize the input first"), "{msg}");
}

#[test]
fn a_float_tensor_given_to_a_quantized_op_says_to_quantize() {
    let x = floats();
    let msg = registry()
        .call("quantized::add", &[Value::from(&x), Value::from(&x), Value::Float(0.1), Value::Int(0)])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("quantized::add: no kernel for (CPU, float32)"), "{msg}");
    assert!(msg.contains("quantize the input first"), "{msg}");
}

#[test]
fn unknown_ops_and_bad_arguments_are_clear_errors() {
    match registry().call("quantize_per_tensr", &[]) {
        Err(Error::UnknownOp { name, similar }) => {
            assert_eq!(name, "quantize_per_tensr");
            assert!(similar.contains(&"quantize_per_tensor".to_string()));
        }
        other => panic!("{other:?}"),
    }
    match registry().call("dequantize", &[]) {
        Err(Error::ArgCount { expected: 1, got: 0, .. }) => {}
        other => panic!("{other:?}"),
    }
    match registry().call(
        "quantize_per_tensor",
        &[Value::from(&floats()), Value::Str("x".into()), Value::Int(0), Value::ScalarType(DType::QInt8)],
    ) {
        Err(Error::ArgType { index: 1, name, expected, got, .. }) => {
            assert_eq!((name.as_str(), expected.as_str(), got.as_str()), ("scale", "float", "str"));
        }
        other => panic!("{other:?}"),
    }
    match registry().call(
        "max_pool2d",
        &[
            Value::from(&floats()),
            Value::from([2i64, 2, 2]),
            Value::from([1i64, 1]),
            Value::from([0i64, 0]),
            Value::from([1i64, 1]),
            Value::Bool(false),
        ],
    ) {
        Err(Error::ArgType { index: 1, expected, .. }) => assert_eq!(expected, "int[2]"),
        other => panic!("{other:?}"),
    }
}

fn identity(x: &Tensor) -> Result<Tensor> {
    Ok(x.clone())
}

fn negate_first(x: &Tensor) -> Result<Tensor> {
    let y = x.contiguous_copy()?;
    y.set(&[0], -y.get(&[0])?)?;
    Ok(y)
}

fn never() -> bool {
    false
}

fn wrong_signature(x: &Tensor, _factor: f64) -> Result<Tensor> {
    Ok(x.clone())
}

#[test]
fn the_highest_supported_priority_wins_whatever_the_order() {
    for order in [[0usize, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let d = Dispatcher::new();
        d.declare_op("test::pick(Tensor self) -> Tensor").unwrap();
        let kernels = [
            kernel_descriptor! { op: qtensor::OpName::unchecked("test::pick"), key: DispatchKey::CPU, dtype: DType::Float32, name: "low", priority: Priority::REFERENCE, is_supported: qtensor::registration::always_supported, fn identity(x: &Tensor) -> Tensor },
            kernel_descriptor! { op: qtensor::OpName::unchecked("test::pick"), key: DispatchKey::CPU, dtype: DType::Float32, name: "high", priority: Priority::ISA, is_supported: qtensor::registration::always_supported, fn negate_first(x: &Tensor) -> Tensor },
            kernel_descriptor! { op: qtensor::OpName::unchecked("test::pick"), key: DispatchKey::CPU, dtype: DType::Float32, name: "unsupported", priority: Priority::PLUGIN, is_supported: never, fn identity(x: &Tensor) -> Tensor },
        ];
        for i in order {
            d.register_kernel(kernels[i]).unwrap();
        }
        let op = d.op("test::pick").unwrap();
        assert_eq!(op.entry().chosen_kernel(DispatchKey::CPU, DType::Float32), Some("high"));
        let out = op.call(&[Value::from(&floats())]).unwrap().into_tensor().unwrap();
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![-0.5, -1.0, 2.0]);
        let infos = op.entry().kernels();
        assert_eq!(
            infos.iter().map(|k| (k.name, k.chosen, k.supported)).collect::<Vec<_>>(),
            vec![("unsupported", false, false), ("high", true, true), ("low", false, true)]
        );
    }
}

#[test]
fn duplicate_priorities_and_bad_signatures_are_rejected_by_name() {
    let d = Dispatcher::new();
    d.declare_op("test::dup(Tensor self) -> Tensor").unwrap();
    let a = kernel_descriptor! { op: qtensor::OpName::unchecked("test::dup"), key: DispatchKey::CPU, dtype: DType::Float32, name: "first_kernel", priority: Priority::PORTABLE, is_supported: qtensor::registration::always_supported, fn identity(x: &Tensor) -> Tensor };
    let b = kernel_descriptor! { op: qtensor::OpName::unchecked("test::dup"), key: DispatchKey::CPU, dtype: DType::Float32, name: "second_kernel", priority: Priority::PORTABLE, is_supported: qtensor::registration::always_supported, fn identity(x: &Tensor) -> Tensor };
    d.register_kernel(a).unwrap();
    let msg = d.register_kernel(b).unwrap_err().to_string();
    assert!(msg.contains("first_kernel") && msg.contains("second_kernel"), "{msg}");

    let bad = kernel_descriptor! { op: qtensor::OpName::unchecked("test::dup"), key: DispatchKey::CPU, dtype: DType::Float64, name: "mismatched_kernel", priority: Priority::REFERENCE, is_supported: qtensor::registration::always_supported, fn wrong_signature(x: &Tensor, factor: f64) -> Tensor };
    match d.register_kernel(bad) {
        Err(Error::Registration { kernel, message, .. }) => {
            assert_eq!(kernel, "mismatched_kernel");
            assert!(message.contains("(Tensor, float)") && message.contains("(Tensor)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let orphan = kernel_descriptor! { op: qtensor::OpName::unchecked("test::nope"), key: DispatchKey::CPU, dtype: DType::Float32, name: "orphan", priority: Priority::REFERENCE, is_supported: qtensor::registration::always_supported, fn identity(x: &Tensor) -> Tensor };
    assert!(matches!(d.register_kernel(orphan), Err(Error::Registration { .. })));
    // The same declaration again is the same op; a different one conflicts.
    let again = d.declare_op("test::dup(Tensor self) -> Tensor").unwrap();
    assert_eq!(again.entry().chosen_kernel(DispatchKey::CPU, DType::Float32), Some("first_kernel"));
    assert!(d.declare_op("test::dup(Tensor self, int n) -> Tensor").is_err(), "a conflicting declaration");
    assert!(d.declare_op("test::bad(Tensr self) -> Tensor").is_err());
}

#[test]
fn kernel_names_are_unique_and_keys_agree_with_dtypes() {
    let d = Dispatcher::new();
    d.declare_op("test::rules(Tensor self) -> Tensor").unwrap();
    let k = |name: &'static str, key: DispatchKey, dtype: DType, priority: Priority| {
        let mut k = kernel_descriptor! { op: qtensor::OpName::unchecked("test::rules"), key: DispatchKey::CPU, dtype: DType::Float32, name: "x", priority: Priority::REFERENCE, is_supported: qtensor::registration::always_supported, fn identity(x: &Tensor) -> Tensor };
        (k.name, k.key, k.dtype, k.priority) = (name, key, dtype, priority);
        k
    };
    d.register_kernel(k("once", DispatchKey::CPU, DType::Float32, Priority::PORTABLE)).unwrap();
    // The same name again, even at another priority, is refused: both
    // would show as chosen.
    let msg = d.register_kernel(k("once", DispatchKey::CPU, DType::Float32, Priority::ISA)).unwrap_err().to_string();
    assert!(msg.contains("unique") && msg.contains("tests/dispatcher.rs"), "{msg}");
    // No call can reach (CPU, quint8): quantized tensors dispatch on QuantizedCPU.
    let msg = d
        .register_kernel(k("unreachable", DispatchKey::CPU, DType::QUInt8, Priority::PORTABLE))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("QuantizedCPU"), "{msg}");
    let op = d.op("test::rules").unwrap();
    assert_eq!(op.entry().kernels().len(), 1);
    // Functionality keys have no kernel table.
    assert_eq!(op.entry().chosen_kernel(DispatchKey::Tracing, DType::Float32), None);
    assert_eq!(op.entry().chosen_kernel(DispatchKey::Profiling, DType::QUInt8), None);
}

#[test]
fn factory_ops_dispatch_on_their_dtype_argument() {
    let e = ops::_empty_affine_quantized(&[2, 3], 0.5, 7, DType::QInt8).unwrap();
    assert_eq!((e.dtype(), e.sizes()), (DType::QInt8, &[2usize, 3][..]));
    assert_eq!(e.int_values().unwrap(), vec![7; 6]);
    let s = Tensor::from_slice(&[0.5f64, 0.25], &[2]).unwrap();
    let z = Tensor::from_slice(&[1i64, -1], &[2]).unwrap();
    let p = ops::_empty_per_channel_affine_quantized(&[3, 2], &s, &z, 1, DType::QInt8).unwrap();
    assert_eq!(p.int_values().unwrap(), vec![1, -1, 1, -1, 1, -1]);
    assert!(ops::_empty_affine_quantized(&[-1], 0.5, 0, DType::QInt8).is_err());
    assert!(ops::_empty_affine_quantized(&[1 << 40, 1 << 40], 0.5, 0, DType::QInt8).is_err());
}

/// Takes only inputs of at most 2 elements.
fn small_only(x: &Tensor) -> Result<Tensor> {
    if x.numel() > 2 {
        return Err(Error::declined("more than 2 elements"));
    }
    let v: Vec<f32> = x.to_vec::<f32>()?.iter().map(|a| a * a).collect();
    Tensor::from_vec(v, x.sizes())
}

/// Declines everything.
fn declines_all(_x: &Tensor) -> Result<Tensor> {
    Err(Error::declined("never"))
}

#[test]
fn a_declined_input_goes_to_the_next_kernel_and_the_one_that_ran_is_known() {
    let d = Dispatcher::new();
    d.declare_op("test::decline(Tensor self) -> Tensor").unwrap();
    for k in [
        kernel_descriptor! { op: qtensor::OpName::unchecked("test::decline"), key: DispatchKey::CPU, dtype: DType::Float32, name: "everything", priority: Priority::REFERENCE, is_supported: qtensor::registration::always_supported, fn identity(x: &Tensor) -> Tensor },
        kernel_descriptor! { op: qtensor::OpName::unchecked("test::decline"), key: DispatchKey::CPU, dtype: DType::Float32, name: "small", priority: Priority::ISA, is_supported: qtensor::registration::always_supported, fn small_only(x: &Tensor) -> Tensor },
        kernel_descriptor! { op: qtensor::OpName::unchecked("test::decline"), key: DispatchKey::CPU, dtype: DType::Float32, name: "picky", priority: Priority::PLUGIN, is_supported: qtensor::registration::always_supported, fn declines_all(x: &Tensor) -> Tensor },
    ] {
        d.register_kernel(k).unwrap();
    }
    let op = d.op("test::decline").unwrap();
    assert_eq!(op.entry().kernel_order(DispatchKey::CPU, DType::Float32), vec!["picky", "small", "everything"]);
    // Two elements: `picky` declines, `small` squares them.
    let two = Tensor::from_slice(&[3.0f32, -2.0], &[2]).unwrap();
    let out = op.call(&[Value::from(&two)]).unwrap().into_tensor().unwrap();
    assert_eq!(out.to_vec::<f32>().unwrap(), vec![9.0, 4.0]);
    assert_eq!(qtensor::layers::last_kernel(), Some("small"));
    // Three: both decline, and the reference returns the input.
    let out = op.call(&[Value::from(&floats())]).unwrap().into_tensor().unwrap();
    assert_eq!(out.to_vec::<f32>().unwrap(), vec![0.5, -1.0, 2.0]);
    assert_eq!(qtensor::layers::last_kernel(), Some("everything"));
    // With no kernel left to take it, the decline reaches the caller.
    let d = Dispatcher::new();
    d.declare_op("test::only_picky(Tensor self) -> Tensor").unwrap();
    d.register_kernel(kernel_descriptor! { op: qtensor::OpName::unchecked("test::only_picky"), key: DispatchKey::CPU, dtype: DType::Float32, name: "picky", priority: Priority::PLUGIN, is_supported: qtensor::registration::always_supported, fn declines_all(x: &Tensor) -> Tensor }).unwrap();
    let e = d.op("test::only_picky").unwrap().call(&[Value::from(&floats())]).unwrap_err();
    assert!(matches!(e, Error::Declined { reason: "never" }), "{e:?}");
}
