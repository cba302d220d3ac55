//! The error messages a new user meets first: each names the right op,
//! reads as one sentence, and says what to do.

use qtensor::{ops, DType, Quantizer, Tensor};

fn err<T: std::fmt::Debug>(r: qtensor::Result<T>) -> String {
    r.unwrap_err().to_string()
}

fn q8(n: usize) -> Tensor {
    let x = Tensor::from_vec((0..n).map(|i| i as f32).collect::<Vec<f32>>(), &[n]).unwrap();
    ops::quantize_per_tensor(&x, 0.1, 0, DType::QUInt8).unwrap()
}

#[test]
fn cat_of_nothing_says_the_list_is_empty() {
    let e = err(ops::quantized::cat(&[], 0, None, None));
    assert_eq!(e, "quantized::cat: `qx` is an empty list; at least one tensor is needed");
}

#[test]
fn tiny_scales_are_printed_short_and_called_what_they_are() {
    let e = err(Quantizer::per_tensor(1e-300, 0, DType::QUInt8));
    assert!(e.contains("scale 1e-300 is too small"), "{e}");
    assert!(e.len() < 250, "{e}");
    // 1e-40 is a subnormal f32, not outside f32's range.
    let e = err(Quantizer::per_tensor(1e-40, 0, DType::QUInt8));
    assert!(e.contains("scale 1e-40 is too small") && !e.contains("outside the range"), "{e}");
    assert!(e.contains("smallest normal"), "{e}");
    let e = err(Quantizer::per_tensor(1e39, 0, DType::QUInt8));
    assert!(e.contains("too large"), "{e}");
}

#[test]
fn output_qparams_errors_have_one_prefix() {
    let x = q8(4);
    let e = err(ops::quantized::add(&x, &x, -1.0, 0));
    assert_eq!(e, "quantized::add: invalid quantization parameters: output scale must be finite and > 0, got -1.0");
    assert_eq!(e.matches("invalid quantization parameters").count(), 1);
    let e = err(ops::quantize_per_tensor(&Tensor::scalar(1.0).unwrap(), 0.1, 300, DType::QUInt8));
    assert!(e.starts_with("quantize_per_tensor: ") && !e.contains("per_tensor_affine"), "{e}");
}

#[test]
fn get_names_itself() {
    let e = err(q8(2).get(&[2]));
    assert_eq!(e, "get: index 2 is out of range for dimension 0 of size 2 (shape [2])");
    assert!(err(q8(2).get(&[0, 0])).starts_with("get: "));
}

#[test]
fn quint4x2_says_what_is_supported() {
    let e = err(ops::quantize_per_tensor(&Tensor::scalar(1.0).unwrap(), 0.1, 0, DType::QUInt4x2));
    assert!(e.starts_with("quantize_per_tensor: expected quint8, qint8, qint16 or qint32"), "{e}");
    assert!(!e.contains("empty_quantized"), "{e}");
}

#[test]
fn argument_counts_are_singular_when_one() {
    let e = err(qtensor::registry().call("relu", &[]));
    assert_eq!(e, "relu: expected 1 argument (relu(Tensor self) -> Tensor), got 0");
    let e = err(qtensor::registry().call("quantized::add", &[]));
    assert!(e.contains("expected 4 arguments"), "{e}");
}

#[test]
fn to_vec_of_the_wrong_type_says_what_to_call() {
    let e = err(q8(2).to_vec::<f32>());
    assert!(e.contains("to_vec::<u8>()") && e.contains("ops::dequantize"), "{e}");
    let e = err(Tensor::scalar(1.0).unwrap().to_vec::<i64>());
    assert!(e.contains("call `to_vec::<f32>()`"), "{e}");
}

#[test]
fn a_window_that_does_not_fit_is_described_without_negative_sizes() {
    let img =
        ops::quantize_per_tensor(&Tensor::from_vec(vec![0f32; 16], &[1, 1, 4, 4]).unwrap(), 0.1, 0, DType::QUInt8)
            .unwrap();
    for (k, d) in [([9, 2], [1, 1]), ([2, 2], [i64::MAX, 1]), ([2, i64::MAX / 2], [1, 1])] {
        let e = err(ops::max_pool2d(&img, &k, &[1, 1], &[0, 0], &d, false));
        assert!(e.contains("the window does not fit") && !e.contains("-"), "{e}");
    }
}

#[test]
fn an_unknown_op_hints_at_linking_the_plugin() {
    let e = err(qtensor::registry().call("myplugin::fancy", &[]));
    assert!(e.starts_with("unknown operator `myplugin::fancy`") && e.contains("link()"), "{e}");
    // A near miss still gets its suggestion.
    let e = err(qtensor::registry().call("quantized::ad", &[]));
    assert!(e.contains("did you mean"), "{e}");
}

#[test]
fn tensors_have_the_methods_pytorch_users_reach_for() {
    let q = q8(4);
    assert_eq!(q.dequantize().unwrap().to_vec::<f32>().unwrap(), ops::dequantize(&q).unwrap().to_vec::<f32>().unwrap());
    assert_eq!(q.int_repr().unwrap().to_vec::<u8>().unwrap(), [0, 10, 20, 30]);
    assert_eq!(q.dequantize().unwrap().to_vec::<f32>().unwrap(), [0.0, 1.0, 2.0, 3.0]);
    assert_eq!((q.q_scale().unwrap(), q.q_zero_point().unwrap()), (0.1, 0));
    let f = Tensor::scalar(1.0).unwrap();
    assert!(err(f.dequantize()).starts_with("dequantize: expected a quantized tensor, got float32"));
    assert!(err(f.require_quantizer("my_op")).starts_with("my_op: expected a quantized tensor, got float32"));
    use qtensor::Value;
    assert_eq!(Value::Float(0.5).as_f64(), Some(0.5));
    assert_eq!(Value::Int(3).as_f64(), Some(3.0));
    assert_eq!(Value::Int(3).as_i64(), Some(3));
    assert_eq!(Value::Float(3.0).as_i64(), None);
    assert!(Value::from(&q).as_tensor().is_some());
}

#[test]
fn view_reshape_and_expand_take_either_size_convention() {
    let x = q8(6);
    let by_i64 = x.reshape([2i64, -1]).unwrap();
    let by_usize = x.reshape([2usize, 3]).unwrap();
    let by_literal = x.view([3, 2]).unwrap();
    let by_vec = x.reshape(vec![6usize]).unwrap();
    assert_eq!(
        (by_i64.sizes(), by_usize.sizes(), by_literal.sizes(), by_vec.sizes()),
        (&[2, 3][..], &[2, 3][..], &[3, 2][..], &[6][..])
    );
    // A tensor's own sizes feed straight into another's view.
    assert_eq!(q8(6).view(by_usize.sizes()).unwrap().sizes(), &[2, 3]);
    // expand: -1 keeps a size, as in PyTorch.
    let col = x.reshape([6, 1]).unwrap();
    assert_eq!(col.expand([-1, 4]).unwrap().sizes(), &[6, 4]);
    assert_eq!(col.expand([6usize, 4]).unwrap().sizes(), &[6, 4]);
    let e = err(col.expand([-2, 4]));
    assert!(e.starts_with("expand: sizes must be >= 0"), "{e}");
    assert!(err(x.reshape([-1, -1])).starts_with("reshape"));
}

/// Names renamed before 0.1 still resolve, to what replaced them.
#[test]
fn names_from_before_0_1_still_resolve() {
    assert_eq!(qtensor::Isa::Scalar, qtensor::Isa::Portable);
    assert_eq!(qtensor::Isa::parse("scalar").unwrap(), qtensor::Isa::Portable);
    let config: qtensor::conformance::CheckConfig = qtensor::kernel_checks::CheckConfig::default();
    assert_eq!(config.golden, qtensor::kernel_checks::CheckConfig::default().golden);
    assert!(qtensor::conformance::cases::case_files(&[]).is_empty());
}
