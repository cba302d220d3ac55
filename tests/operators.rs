//! Operator semantics beyond the golden cases: avg_pool2d, broadcasting,
//! per-channel relu, cat's exact copy, reduce_range and error messages.

use qtensor::{ops, DType, Tensor};

fn q_u8(ints: &[u8], shape: &[usize], scale: f64, zp: i64) -> Tensor {
    ops::_make_per_tensor_quantized_tensor(&Tensor::from_slice(ints, shape).unwrap(), scale, zp).unwrap()
}

#[test]
fn avg_pool2d_follows_pytorch_divisors() {
    let x = q_u8(&[4, 8, 12, 16, 20, 24, 28, 32, 36], &[1, 1, 3, 3], 1.0, 0);
    let with_pad = ops::avg_pool2d(&x, &[2, 2], &[1, 1], &[1, 1], false, true, None).unwrap();
    assert_eq!(with_pad.sizes(), &[1, 1, 4, 4]);
    let v = with_pad.int_values().unwrap();
    assert_eq!((v[0], v[1], v[5], v[15]), (1, 3, 12, 9));
    let without_pad = ops::avg_pool2d(&x, &[2, 2], &[1, 1], &[1, 1], false, false, None).unwrap().int_values().unwrap();
    assert_eq!((without_pad[0], without_pad[1], without_pad[5]), (4, 6, 12));
    let overridden =
        ops::avg_pool2d(&x, &[2, 2], &[1, 1], &[1, 1], false, true, Some(2)).unwrap().int_values().unwrap();
    assert_eq!((overridden[0], overridden[5]), (2, 24));
    let ceil = ops::avg_pool2d(&x, &[2, 2], &[2, 2], &[0, 0], true, true, None).unwrap();
    assert_eq!(ceil.sizes(), &[1, 1, 2, 2]);
    assert!(ops::avg_pool2d(&x, &[2, 2], &[1, 1], &[1, 1], false, true, Some(0)).is_err());
    assert!(ops::avg_pool2d(&x, &[0, 2], &[1, 1], &[0, 0], false, true, None).is_err());
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    let a = q_u8(&[10, 20, 30, 40, 50, 60], &[2, 3], 0.1, 0);
    let b = q_u8(&[1, 2, 3], &[3], 1.0, 0);
    let sum = ops::quantized::add(&a, &b, 0.1, 0).unwrap();
    assert_eq!(sum.sizes(), &[2, 3]);
    assert_eq!(sum.int_values().unwrap(), vec![20, 40, 60, 50, 70, 90]);
    let col = q_u8(&[2, 3], &[2, 1], 1.0, 0);
    assert_eq!(ops::quantized::mul(&a, &col, 0.1, 0).unwrap().int_values().unwrap(), vec![20, 40, 60, 120, 150, 180]);
    let msg = ops::quantized::add(&a, &q_u8(&[1, 2], &[2], 1.0, 0), 0.1, 0).unwrap_err().to_string();
    assert!(msg.contains("[2, 3]") && msg.contains("[2]"), "{msg}");
    // add_relu clamps at the output zero point.
    let neg = q_u8(&[0, 0, 0], &[3], 1.0, 100);
    assert_eq!(ops::quantized::add_relu(&neg, &b, 1.0, 5).unwrap().int_values().unwrap(), vec![5, 5, 5]);
}

#[test]
fn relu_keeps_qparams_per_channel_too() {
    let x = Tensor::from_slice(&[-1.0f32, 2.0, -3.0, 4.0], &[2, 2]).unwrap();
    let s = Tensor::from_slice(&[0.5f64, 0.25], &[2]).unwrap();
    let z = Tensor::from_slice(&[10i64, -5], &[2]).unwrap();
    let q = ops::quantize_per_channel(&x, &s, &z, 1, DType::QInt8).unwrap();
    let r = ops::relu(&q).unwrap();
    assert_eq!(r.quantizer(), q.quantizer());
    assert_eq!(ops::dequantize(&r).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 2.0, 0.0, 4.0]);
    let f = ops::relu(&x).unwrap();
    assert_eq!(f.to_vec::<f32>().unwrap(), vec![0.0, 2.0, 0.0, 4.0]);
}

#[test]
fn cat_copies_integers_when_qparams_match() {
    // Values that requantization would round differently if it ran.
    let a = q_u8(&[1, 2, 3], &[3], 0.3, 7);
    let b = q_u8(&[250, 251], &[2], 0.3, 7);
    let c = ops::quantized::cat(&[a.clone(), b.clone()], 0, None, None).unwrap();
    assert_eq!(c.int_values().unwrap(), vec![1, 2, 3, 250, 251]);
    assert_eq!((c.q_scale().unwrap(), c.q_zero_point().unwrap()), (0.3, 7));
    let t =
        ops::quantized::cat(&[a.reshape([3, 1]).unwrap(), a.reshape([3, 1]).unwrap()], -1, Some(0.6), Some(7)).unwrap();
    assert_eq!(t.sizes(), &[3, 2]);
    // Reals -1.8, -1.5, -1.2 on a 0.6 grid: -3, -2.5 (ties to -2), -2; plus 7.
    assert_eq!(t.int_values().unwrap(), vec![4, 4, 5, 5, 5, 5]);
    assert!(ops::quantized::cat(&[], 0, None, None).is_err());
    assert!(ops::quantized::cat(std::slice::from_ref(&a), 1, None, None).is_err());
}

#[test]
fn linear_dynamic_honours_reduce_range() {
    let x = Tensor::from_slice(&[-1.0f32, 0.5, 2.0, 1.5], &[2, 2]).unwrap();
    let w = ops::quantize_per_tensor(
        &Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0], &[2, 2]).unwrap(),
        0.01,
        0,
        DType::QInt8,
    )
    .unwrap();
    let full = ops::quantized::linear_dynamic(&x, &w, None, false).unwrap().to_vec::<f32>().unwrap();
    let reduced = ops::quantized::linear_dynamic(&x, &w, None, true).unwrap().to_vec::<f32>().unwrap();
    // Identity weights: the output is x quantized to 8 (or 7) bits of its range.
    let (step_full, step_reduced) = (3.0 / 255.0, 3.0 / 127.0);
    for ((f, r), want) in full.iter().zip(&reduced).zip([-1.0f32, 0.5, 2.0, 1.5]) {
        assert!((f - want).abs() <= step_full / 2.0 + 1e-6, "{f} vs {want}");
        assert!((r - want).abs() <= step_reduced / 2.0 + 1e-6, "{r} vs {want}");
    }
    assert_ne!(full, reduced);
    let inf = Tensor::from_slice(&[f32::INFINITY, 1.0], &[1, 2]).unwrap();
    assert!(ops::quantized::linear_dynamic(&inf, &w, None, false).is_err());
}

#[test]
fn exact_accumulation_has_no_int16_saturation() {
    // Full-range activations against -128/127 weights: every vpmaddubsw pair
    // sum would saturate int16 (255*127*2 > 32767); the result must be exact.
    let k = 64;
    let x =
        ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(vec![255u8; k], &[1, k]).unwrap(), 1.0, 0).unwrap();
    let w_ints: Vec<i8> = (0..2 * k).map(|i| if i < k { 127 } else { -128 }).collect();
    let w = ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(w_ints, &[2, k]).unwrap(), 1.0, 0).unwrap();
    // Exact: 255*127*64 = 2072640 and -255*128*64 = -2088960; scale so they land in range.
    let y = ops::quantized::linear(&x, &w, None, 16384.0, 128).unwrap().int_values().unwrap();
    assert_eq!(y, vec![128 + (2_072_640f64 / 16384.0).round() as i64, 128 + (-2_088_960f64 / 16384.0).round() as i64]);
}

/// An empty stride is PyTorch's default, the kernel size, for max and
/// average pooling alike (what `F.max_pool2d(x, 2)` passes in a scripted
/// model); a stride of another length is an error.
#[test]
fn pooling_with_an_empty_stride_strides_by_the_kernel() -> qtensor::Result<()> {
    let x = ops::quantize_per_tensor(
        &Tensor::from_vec((0..2 * 6 * 6).map(|v| (v % 11) as f32 * 0.3).collect(), &[1, 2, 6, 6])?,
        0.1,
        3,
        DType::QUInt8,
    )?;
    for x in [x.clone(), x.contiguous_in(qtensor::MemoryFormat::ChannelsLast)?] {
        let by_default = ops::max_pool2d(&x, &[2, 3], &[], &[0, 0], &[1, 1], false)?;
        let explicit = ops::max_pool2d(&x, &[2, 3], &[2, 3], &[0, 0], &[1, 1], false)?;
        assert_eq!(by_default.sizes(), &[1, 2, 3, 2]);
        assert_eq!(by_default.int_values()?, explicit.int_values()?);
        let by_default = ops::avg_pool2d(&x, &[3, 3], &[], &[0, 0], false, true, None)?;
        let explicit = ops::avg_pool2d(&x, &[3, 3], &[3, 3], &[0, 0], false, true, None)?;
        assert_eq!(by_default.int_values()?, explicit.int_values()?);
        assert!(ops::max_pool2d(&x, &[2, 2], &[2], &[0, 0], &[1, 1], false).is_err());
    }
    Ok(())
}

/// The runtime declares its ops from `runtime/ops.yaml`, a link to the
/// repository's `ops.yaml` (so that the runtime's package holds it): the
/// two must be one file, or the runtime's op constants and the typed
/// functions would drift apart.
#[test]
fn the_runtime_reads_the_one_ops_yaml() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let linked = std::fs::symlink_metadata(root.join("runtime/ops.yaml")).unwrap();
    assert!(linked.file_type().is_symlink(), "runtime/ops.yaml must be a symlink to ../ops.yaml");
    assert_eq!(std::fs::read(root.join("runtime/ops.yaml")).unwrap(), std::fs::read(root.join("ops.yaml")).unwrap());
}

/// The table-driven activations keep their tables across calls, keyed by
/// qparams and bounds: calls that alternate them (and a clamp's bounds)
/// each get their own table's integers, the reference kernel's, on every
/// kernel.
#[test]
fn activation_tables_follow_each_calls_qparams() {
    use qtensor::Value;
    let ints: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
    let x = |scale: f64, zp: i64| Value::from(&q_u8(&ints, &[1000], scale, zp));
    let calls: Vec<(&str, Vec<Value>)> = vec![
        ("quantized::hardswish", vec![x(0.05, 100), Value::Float(0.03), Value::Int(10)]),
        ("quantized::hardswish", vec![x(0.05, 100), Value::Float(0.06), Value::Int(10)]),
        ("quantized::hardswish", vec![x(0.02, 100), Value::Float(0.03), Value::Int(10)]),
        ("quantized::hardswish", vec![x(0.05, 100), Value::Float(0.03), Value::Int(11)]),
        ("hardtanh", vec![x(0.05, 100), Value::Float(-1.0), Value::Float(1.0)]),
        ("hardtanh", vec![x(0.05, 100), Value::Float(-2.0), Value::Float(1.0)]),
        ("hardtanh", vec![x(0.05, 100), Value::Float(-1.0), Value::Float(3.0)]),
    ];
    for round in 0..2 {
        for (op, args) in &calls {
            let kernels = qtensor::kernel_checks::supported_kernels(op, DType::QUInt8);
            let reference = kernels.iter().find(|k| k.name.starts_with("reference")).expect("a reference kernel");
            let want = (reference.func)(args).unwrap().into_tensor().unwrap().int_values().unwrap();
            for kernel in &kernels {
                let got = (kernel.func)(args).unwrap().into_tensor().unwrap().int_values().unwrap();
                assert_eq!(got, want, "round {round}, {op} {:?}, kernel {}", &args[1..], kernel.name);
            }
        }
    }
}

/// A squeeze-excitation mul (`[1, C, H, W]` channels-last times a
/// `[1, C, 1, 1]` gate, either way round) large enough to split into
/// tasks: every kernel gives the reference kernel's integers, on one
/// thread and on three.
#[test]
fn broadcast_mul_in_tasks_matches_the_reference() {
    use qtensor::{MemoryFormat, Value};
    let (c, h, w) = (24, 40, 41);
    let ints: Vec<u8> = (0..c * h * w).map(|i| (i * 13 % 256) as u8).collect();
    let x = q_u8(&ints, &[1, c, h, w], 0.05, 7).contiguous_in(MemoryFormat::ChannelsLast).unwrap();
    let gate = q_u8(&(0..c).map(|i| (i * 11 % 256) as u8).collect::<Vec<_>>(), &[1, c, 1, 1], 0.01, 3);
    for (a, b) in [(&x, &gate), (&gate, &x)] {
        let args = [Value::from(a), Value::from(b), Value::Float(0.04), Value::Int(9)];
        let kernels = qtensor::kernel_checks::supported_kernels("quantized::mul", DType::QUInt8);
        let reference = kernels.iter().find(|k| k.name.starts_with("reference")).expect("a reference kernel");
        let want = (reference.func)(&args).unwrap().into_tensor().unwrap().int_values().unwrap();
        assert!(want.iter().any(|&v| v != 0 && v != 255), "every output clamps");
        for threads in [1, 3] {
            for kernel in &kernels {
                let got = qtensor::with_num_threads(threads, || (kernel.func)(&args))
                    .unwrap()
                    .unwrap()
                    .into_tensor()
                    .unwrap()
                    .int_values()
                    .unwrap();
                assert_eq!(got, want, "{threads} thread(s), kernel {}", kernel.name);
            }
        }
    }
}
