//! Bad and extreme inputs, tried as a user would: each gives an `Err` or
//! PyTorch's valid result, never a panic, an abort or a hang. Every case is
//! a regression test for a reported failure.

use qtensor::kernel_checks::call_kernel;
use qtensor::{ops, DType, Tensor};

fn q8(sizes: &[usize], scale: f64, zp: i64) -> Tensor {
    let n: usize = sizes.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (i % 17) as f32 * 0.1 - 0.5).collect();
    ops::quantize_per_tensor(&Tensor::from_vec(v, sizes).unwrap(), scale, zp, DType::QUInt8).unwrap()
}

fn qint8_weight(sizes: &[usize]) -> Tensor {
    let n: usize = sizes.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.01 - 0.03).collect();
    ops::quantize_per_tensor(&Tensor::from_vec(v, sizes).unwrap(), 0.01, 0, DType::QInt8).unwrap()
}

#[test]
fn linear_with_zero_input_features_returns_the_bias() {
    let x = q8(&[2, 0], 0.1, 3);
    let w = qint8_weight(&[4, 0]);
    let b = Tensor::from_slice(&[0.5f32, -0.2, 0.0, 1.0], &[4]).unwrap();
    let y = ops::quantized::linear(&x, &w, Some(&b), 0.1, 10).unwrap();
    assert_eq!(y.sizes(), &[2, 4]);
    // round(bias / 0.1) + 10, per row.
    assert_eq!(y.int_values().unwrap(), vec![15, 8, 10, 20, 15, 8, 10, 20]);
    let y = ops::quantized::linear_relu(&x, &w, None, 0.1, 10).unwrap();
    assert_eq!(y.int_values().unwrap(), vec![10; 8]);
    let xf = Tensor::zeros(&[2, 0], DType::Float32).unwrap();
    let y = ops::quantized::linear_dynamic(&xf, &w, Some(&b), false).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.5, -0.2, 0.0, 1.0, 0.5, -0.2, 0.0, 1.0]);
}

#[test]
fn conv_with_zero_input_channels_or_huge_dilation_is_handled() {
    let x = q8(&[1, 0, 4, 4], 0.1, 3);
    let w = qint8_weight(&[2, 0, 3, 3]);
    let r = ops::quantized::conv2d(&x, &w, None, &[1, 1], &[1, 1], &[1, 1], 1, 0.1, 5);
    let y = r.unwrap();
    assert_eq!(y.sizes(), &[1, 2, 4, 4]);
    assert!(y.int_values().unwrap().iter().all(|&v| v == 5));
    let x = q8(&[1, 2, 4, 4], 0.1, 3);
    let w = qint8_weight(&[2, 2, 3, 3]);
    for dilation in [[i64::MAX, i64::MAX], [1, i64::MAX], [i64::MAX / 2, 1]] {
        assert!(ops::quantized::conv2d(&x, &w, None, &[1, 1], &[1, 1], &dilation, 1, 0.1, 5).is_err());
    }
    assert!(ops::quantized::conv2d(&x, &w, None, &[i64::MAX, 1], &[i64::MAX, 0], &[1, 1], 1, 0.1, 5).is_err());
}

#[test]
fn expand_and_broadcast_check_their_sizes() {
    let one = q8(&[1, 1], 0.1, 3);
    let huge = 1usize << 62;
    assert!(one.expand([huge, huge]).is_err(), "2^124 elements");
    let a = q8(&[1, 1], 0.1, 3).expand([1usize << 31, 1]).unwrap();
    let b = q8(&[1, 1], 0.1, 3).expand([1usize, 1 << 31]).unwrap();
    // 2^62 outputs: an error, not an abort.
    assert!(ops::quantized::add(&a, &b, 0.1, 3).is_err());
    assert!(ops::quantized::mul(&a, &b, 0.1, 3).is_err());
}

#[test]
fn reading_or_printing_a_huge_view_does_not_materialize_it() {
    let big = q8(&[1], 0.1, 3).expand([1usize << 40]).unwrap();
    assert!(big.to_vec::<u8>().is_err());
    assert!(big.int_values().is_err());
    assert!(big.real_values().is_err());
    // Printing summarises, as PyTorch does, and reads only what it prints.
    let text = format!("{big}");
    assert!(text.contains("..."), "{text}");
}

#[test]
fn copy_into_an_expanded_view_is_refused() {
    let dst = q8(&[1, 3], 0.1, 3).expand([4, 3]).unwrap();
    let src = q8(&[4, 3], 0.1, 3);
    assert!(ops::copy_(&dst, &src).is_err());
}

/// The max of each row of `t`'s last dimension (of size `w`).
fn row_max_of(t: &Tensor, w: usize) -> Vec<i64> {
    t.int_values().unwrap().chunks(w).map(|r| *r.iter().max().unwrap()).collect()
}

#[test]
fn pools_clip_windows_and_sizes_instead_of_hanging_or_allocating() {
    let x = q8(&[1, 2, 5, 5], 0.1, 3);
    let big = 1i64 << 40;
    // A window of 2^40 with ceil_mode: one output per row, the row's max
    // (PyTorch's output shape), computed over the input only.
    let row_max = |t: &Tensor| row_max_of(t, 5);
    let y = ops::max_pool2d(&x, &[1, big], &[1, big], &[0, 0], &[1, 1], true).unwrap();
    assert_eq!(y.sizes(), &[1, 2, 5, 1]);
    assert_eq!(y.int_values().unwrap(), row_max(&x));
    let x32 = ops::quantize_per_tensor(&ops::dequantize(&x).unwrap(), 0.1, 0, DType::QInt32).unwrap();
    let y32 = ops::max_pool2d(&x32, &[1, big], &[1, big], &[0, 0], &[1, 1], true).unwrap();
    assert_eq!(y32.int_values().unwrap(), row_max(&x32));
    assert!(ops::max_pool2d(&x, &[1, i64::MAX - 1], &[1, 1], &[0, 0], &[1, 2], false).is_err());
    // A padding of 2^39 beside a window of 2^40 on a 4x4 input: five
    // outputs per row, each the max of its clipped window (the AVX2 plane
    // routine once sized its row buffer by the padding: 1 TiB, an abort).
    let x4 = q8(&[1, 1, 4, 4], 0.1, 3);
    let x4_32 = ops::quantize_per_tensor(&ops::dequantize(&x4).unwrap(), 0.1, 0, DType::QInt32).unwrap();
    for t in [&x4, &x4_32] {
        for ceil_mode in [false, true] {
            let y = ops::max_pool2d(t, &[1, big], &[1, 1], &[0, big / 2], &[1, 1], ceil_mode).unwrap();
            assert_eq!(y.sizes(), &[1, 1, 4, 5]);
            let rows: Vec<i64> = y.int_values().unwrap().chunks(5).map(|r| r[0]).collect();
            assert_eq!(rows, row_max_of(t, 4));
        }
    }
    // Zero planes whose h x w overflow.
    let empty = ops::_empty_affine_quantized(&[0, 1 << 32, 1 << 32], 0.1, 0, DType::QUInt8).unwrap();
    let r = ops::max_pool2d(&empty, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false);
    assert!(r.is_err() || r.unwrap().numel() == 0);
    let r = ops::adaptive_avg_pool2d(&empty, &[1, 1]);
    assert!(r.is_err() || r.unwrap().numel() == 0);
}

#[test]
fn matmul_over_an_empty_inner_dimension_gives_zeros_without_products() {
    // Found by the boxed_call fuzzer: a batch of 2^40 over K = 0 asked for
    // 2^40 x 30 floats with an infallible allocation, and aborted.
    let a = Tensor::zeros(&[1, 5, 6, 0], DType::Float32).unwrap().expand([1usize << 40, 5, 6, 0]).unwrap();
    let b = Tensor::zeros(&[0], DType::Float32).unwrap();
    assert!(ops::matmul(&a, &b).is_err(), "2^40 x 30 float outputs exceed the allocation limit");
    // And a float linear with a 2^40-row weight of K = 0.
    let x = Tensor::zeros(&[5, 5, 1, 0], DType::Float32).unwrap();
    let w = Tensor::zeros(&[1, 0], DType::Float32).unwrap().expand([1usize << 40, 0]).unwrap();
    assert!(ops::linear(&x, &w, None).is_err(), "25 x 2^40 float outputs exceed the allocation limit");
    let a = Tensor::zeros(&[3, 2, 0], DType::Float32).unwrap();
    let b = Tensor::zeros(&[0, 4], DType::Float32).unwrap();
    let y = ops::matmul(&a, &b).unwrap();
    assert_eq!(y.sizes(), &[3, 2, 4]);
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0; 24]);
}

#[test]
fn a_per_channel_weight_expanded_along_its_axis_is_refused() {
    // Found by the boxed_call fuzzer: one row's qparams expanded to five
    // rows indexed past the zero points (a panic).
    let w = Tensor::from_vec(vec![0.01f32, -0.02, 0.03, 0.0], &[1, 4]).unwrap();
    let scales = Tensor::from_slice(&[0.01f64], &[1]).unwrap();
    let zps = Tensor::from_slice(&[0i64], &[1]).unwrap();
    let w = ops::quantize_per_channel(&w, &scales, &zps, 0, DType::QInt8).unwrap().expand([5usize, 4]).unwrap();
    let x = Tensor::from_vec(vec![0.5f32; 8], &[2, 4]).unwrap();
    assert!(ops::quantized::linear_dynamic(&x, &w, None, false).is_err());
    // Rows that fit (2^63) but not times the output features (CI's fuzzer).
    let x63 = Tensor::from_vec(Vec::<f32>::new(), &[1 << 31, 1 << 32, 0]).unwrap();
    assert!(ops::quantized::linear_dynamic(&x63, &w, None, false).is_err());
    let x63q = ops::quantize_per_tensor(&x63, 0.1, 3, DType::QUInt8).unwrap();
    assert!(ops::quantized::linear(&x63q, &w, None, 0.1, 3).is_err());
    assert!(ops::quantized::linear(&q8(&[2, 4], 0.1, 3), &w, None, 0.1, 3).is_err());
}

#[test]
fn empty_views_with_an_offset_quantize() {
    let x = Tensor::zeros(&[2, 0], DType::Float32).unwrap().slice(0, Some(1), None, 1).unwrap();
    let q = ops::quantize_per_tensor(&x, 0.1, 3, DType::QUInt8).unwrap();
    assert_eq!(q.sizes(), &[1, 0]);
    let y = ops::quantized::add(&q, &q, 0.1, 3).unwrap();
    assert_eq!(y.numel(), 0);
    let scales = Tensor::from_slice(&[0.1f64], &[1]).unwrap();
    let zps = Tensor::from_slice(&[0i64], &[1]).unwrap();
    let pc = ops::quantize_per_channel(&x, &scales, &zps, 0, DType::QInt8).unwrap();
    assert_eq!(pc.sizes(), &[1, 0]);
}

#[test]
fn huge_empty_quantized_tensors_fail_cleanly() {
    // 4 Gi elements with a non-zero zero point: an error or a tensor, never
    // a second whole-size buffer of f64.
    let r = ops::_empty_affine_quantized(&[1 << 32], 0.5, 1, DType::QUInt8);
    if let Ok(t) = r {
        assert_eq!(t.numel(), 1 << 32);
    }
}

/// Every supported kernel of `op` (quint8) against the reference kernel on
/// `args`: at most `steps` apart. A kernel that declines the input leaves
/// it to the next one, as in a dispatched call.
fn kernels_agree(op: &str, args: &[qtensor::Value], steps: i64) {
    let kernels: Vec<_> = qtensor::kernel_checks::supported_kernels(op, DType::QUInt8);
    let reference = kernels.iter().find(|k| k.priority.is_reference()).unwrap();
    let want = (reference.func)(args).unwrap().into_tensor().unwrap().int_values().unwrap();
    for k in &kernels {
        let Some(got) = call_kernel(k, args).unwrap() else { continue };
        let got = got.into_tensor().unwrap().int_values().unwrap();
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).max().unwrap_or(0);
        assert!(worst <= steps, "{op}, kernel {}: {worst} steps from the reference\n{got:?}\n{want:?}", k.name);
    }
}

#[test]
fn fast_kernels_stay_within_tolerance_at_extreme_scale_ratios() {
    use qtensor::Value;
    // The reported case: a's scale is 1.2e6 output steps, b's 5.
    let ints = |v: Vec<u8>, s: f64, z: i64| {
        let n = v.len();
        ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(v, &[n]).unwrap(), s, z).unwrap()
    };
    let a = ints(vec![236; 64], 18.94, 236);
    let b = ints((0..64).map(|i| (i * 4) as u8).collect(), 8.2e-5, 0);
    for op in ["quantized::add", "quantized::add_relu"] {
        kernels_agree(op, &[Value::from(&a), Value::from(&b), Value::Float(1.58e-5), Value::Int(0)], 1);
    }
    // cat requantizing an input whose scale is 1e6 output steps.
    let args = [Value::TensorList(vec![a.clone(), b.clone()]), Value::Int(0), Value::Float(1.58e-5), Value::Int(0)];
    kernels_agree("quantized::cat", &args, 1);
    // Scales at the ends of what quantizers accept: multipliers beyond f32.
    let x = ints((0..64).map(|i| i as u8).collect(), 1e30, 3).reshape([4, 16]).unwrap();
    let w = ops::_make_per_tensor_quantized_tensor(
        &Tensor::from_vec((0..32).map(|i| (i % 5) as i8 - 2).collect::<Vec<i8>>(), &[2, 16]).unwrap(),
        1e30,
        0,
    )
    .unwrap();
    kernels_agree(
        "quantized::linear",
        &[Value::from(&x), Value::from(&w), Value::None, Value::Float(1e-30), Value::Int(7)],
        1,
    );
}

#[test]
fn a_nan_bias_gives_the_zero_point_in_every_kernel() {
    use qtensor::Value;
    let x = q8(&[3, 16], 0.1, 3);
    let w = qint8_weight(&[20, 16]);
    let bias = Tensor::from_vec((0..20).map(|i| if i % 3 == 0 { f32::NAN } else { 0.25 }).collect::<Vec<f32>>(), &[20])
        .unwrap();
    for op in ["quantized::linear", "quantized::linear_relu"] {
        kernels_agree(
            op,
            &[Value::from(&x), Value::from(&w), Value::from(&bias), Value::Float(0.05), Value::Int(9)],
            0,
        );
    }
    let xc = q8(&[1, 4, 5, 5], 0.1, 3);
    let wc = qint8_weight(&[20, 4, 3, 3]);
    let conv = [
        Value::from(&xc),
        Value::from(&wc),
        Value::from(&bias),
        Value::IntList(vec![1, 1].into()),
        Value::IntList(vec![1, 1].into()),
        Value::IntList(vec![1, 1].into()),
        Value::Int(1),
        Value::Float(0.05),
        Value::Int(9),
    ];
    kernels_agree("quantized::conv2d", &conv, 0);
}

#[test]
fn quantizers_are_valid_by_construction() {
    use qtensor::{QParams, Quantizer};
    assert!(Quantizer::per_tensor(0.1, 999, DType::QUInt8).is_err());
    assert!(Quantizer::per_tensor(f64::NAN, 0, DType::QUInt8).is_err());
    assert!(Quantizer::per_channel(vec![0.1, f64::NAN], vec![0, 0], 0, DType::QInt8).is_err());
    assert!(ops::_empty_affine_quantized(&[2], 0.1, 999, DType::QUInt8).is_err());
    // The parameters are read through a borrowed view; the quantizer itself
    // has no public fields to mutate.
    let q = Quantizer::per_channel(vec![0.1, 0.2], vec![1, -1], 0, DType::QInt8).unwrap();
    match q.params() {
        QParams::PerChannelAffine { scales, zero_points, axis, dtype } => {
            assert_eq!((scales, zero_points, axis, dtype), (&[0.1, 0.2][..], &[1, -1][..], 0, DType::QInt8));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_safetensors_headers_are_refused_before_parsing() {
    use qtensor::serialize::load_from_bytes;
    // A header length at the old 100 MB limit: refused from its 8 bytes.
    let mut bytes = (100u64 << 20).to_le_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b' ', 1 << 20));
    let e = load_from_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("header"), "{e}");
    // One tensor whose shape is a million 1s: refused by rank.
    let shape = vec!["1"; 1_000_000].join(",");
    let header = format!("{{\"t\":{{\"dtype\":\"U8\",\"shape\":[{shape}],\"data_offsets\":[0,1]}}}}");
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.push(0);
    let e = load_from_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("dimensions"), "{e}");
    // Truncated and empty files.
    assert!(load_from_bytes(&[1, 2, 3]).is_err());
    assert!(load_from_bytes(&[]).is_err());
}

/// Runs every other test of this file again in a child process whose
/// address space is capped at 4 GiB (`ulimit -v`): each must still end in
/// errors or results, never an allocation abort.
#[test]
fn bad_inputs_under_a_4_gib_address_space_limit() {
    if std::env::var_os("QTENSOR_UNDER_ULIMIT").is_some() || !cfg!(target_os = "linux") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304 && exec \"$0\" --test-threads=1 --skip bad_inputs_under_a_4_gib")
        .arg(&exe)
        .env("QTENSOR_UNDER_ULIMIT", "1")
        .status()
        .unwrap();
    assert!(status.success(), "the bad-input tests failed or aborted under a 4 GiB limit: {status}");
}

#[test]
fn linear_dynamic_matches_the_reference_when_a_large_bias_cancels() {
    use qtensor::Value;
    let (m, k, n) = (3, 64, 24);
    let x = Tensor::from_vec((0..m * k).map(|i| (i % 11) as f32 * 9.0 - 40.0).collect::<Vec<f32>>(), &[m, k]).unwrap();
    let wf = Tensor::from_vec((0..n * k).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect::<Vec<f32>>(), &[n, k]).unwrap();
    let w = ops::quantize_per_tensor(&wf, 0.01, 0, DType::QInt8).unwrap();
    // A bias of about -(x . w), so the result is a small difference of
    // large numbers.
    let exact = ops::quantized::linear_dynamic(&x, &w, None, false).unwrap().to_vec::<f32>().unwrap();
    let bias: Vec<f32> = (0..n).map(|j| -exact[j] + 0.001 * j as f32).collect();
    let b = Tensor::from_vec(bias, &[n]).unwrap();
    let args = [Value::from(&x), Value::from(&w), Value::from(&b), Value::Bool(false)];
    let kernels = qtensor::kernel_checks::supported_kernels("quantized::linear_dynamic", DType::Float32);
    let reference = kernels.iter().find(|k| k.priority.is_reference()).unwrap();
    let want = (reference.func)(&args).unwrap().into_tensor().unwrap().to_vec::<f32>().unwrap();
    for k in &kernels {
        let Some(got) = call_kernel(k, &args).unwrap() else { continue };
        let got = got.into_tensor().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(got, want, "kernel {}", k.name);
    }
}

/// Empty tensors whose other sizes multiply past `usize` (`[0, 2^63 - 1,
/// 2^32, 3]` is valid: it has no elements). Every op that once multiplied
/// those sizes without a check (a panic under overflow checks, silent
/// wraparound in release) gives an empty result or an `Err`.
#[test]
fn empty_tensors_with_huge_dimensions_are_valid_and_empty() {
    let huge = (1usize << 63) - 1;
    for sizes in [vec![0, huge, 1 << 32, 3], vec![huge, 1 << 32, 3, 0], vec![1 << 32, 0, 1 << 31, 3]] {
        let f = Tensor::from_vec(Vec::<f32>::new(), &sizes).unwrap();
        assert_eq!(f.numel(), 0);
        assert!(f.is_contiguous());
        let q = ops::quantize_per_tensor(&f, 0.1, 3, DType::QUInt8).unwrap();
        let empty = |t: qtensor::Result<Tensor>, what: &str| {
            let t = t.unwrap_or_else(|e| panic!("{what} on {sizes:?}: {e}"));
            assert_eq!(t.numel(), 0, "{what} on {sizes:?}");
            t
        };
        empty(ops::relu(&q), "relu");
        empty(ops::sigmoid(&q), "sigmoid");
        empty(ops::hardsigmoid(&q), "hardsigmoid");
        empty(ops::hardtanh(&q, -1.0, 1.0), "hardtanh");
        empty(ops::clamp(&q, Some(-1.0), Some(1.0)), "clamp");
        empty(ops::quantized::hardswish(&q, 0.1, 3), "hardswish");
        empty(ops::int_repr(&q), "int_repr");
        empty(q.slice(1, Some(1), Some(5), 2), "slice");
        empty(q.slice(0, Some(1), None, 1 << 40), "slice with a huge step");
        empty(q.permute(&[3, 1, 0, 2]), "permute");
        empty(q.transpose(0, 2), "transpose");
        empty(q.transpose(0, 3).and_then(|t| t.contiguous()), "contiguous");
        empty(q.contiguous_in(qtensor::MemoryFormat::ChannelsLast), "contiguous_in");
        // As in PyTorch, -1 is ambiguous with no elements.
        assert!(q.reshape([0, -1]).is_err());
        empty(q.reshape([0, 1]), "reshape");
        // Index tables sized by the output's other dimensions (2^31 here)
        // took half a minute before: an empty output returns at once.
        if sizes.len() == 4 && sizes[2] > 0 && sizes[3] > 0 {
            let up = ops::upsample_nearest2d(&q, &[3, 1 << 31], None, None);
            assert_eq!(empty(up, "upsample_nearest2d").sizes()[2..], [3, 1 << 31]);
        }
        let nonzero = sizes.iter().position(|&s| s > 0).unwrap();
        empty(q.select(nonzero as i64, 1), "select");
        assert!(q.to_string().contains("size=("), "printing: {q}");
    }
    // K = 0 with rows that multiply past usize (the boxed_call fuzzer): an
    // error, where the output size once wrapped.
    let x = Tensor::from_vec(Vec::<f32>::new(), &[1 << 39, 1 << 32, 0]).unwrap();
    let w =
        ops::quantize_per_tensor(&Tensor::from_vec(Vec::<f32>::new(), &[4, 0]).unwrap(), 0.1, 0, DType::QInt8).unwrap();
    assert!(ops::quantized::linear_dynamic(&x, &w, None, false).is_err());
    // Rows that fit (2^63) but not times the output features (CI's fuzzer).
    let x63 = Tensor::from_vec(Vec::<f32>::new(), &[1 << 31, 1 << 32, 0]).unwrap();
    assert!(ops::quantized::linear_dynamic(&x63, &w, None, false).is_err());
    let x63q = ops::quantize_per_tensor(&x63, 0.1, 3, DType::QUInt8).unwrap();
    assert!(ops::quantized::linear(&x63q, &w, None, 0.1, 3).is_err());
    let xq = ops::quantize_per_tensor(&x, 0.1, 3, DType::QUInt8).unwrap();
    assert!(ops::quantized::linear(&xq, &w, None, 0.1, 3).is_err());
    // Flattening sizes that multiply past 2^63 - 1: an error, as in PyTorch.
    assert!(ops::flatten(&xq, 0, 1).is_err());
    assert_eq!(ops::flatten(&xq, 1, 2).unwrap().sizes(), &[1 << 39, 0]);

    let e = ops::_empty_affine_quantized(&[0, 1 << 32, 1 << 31, 3], 0.5, 1, DType::QUInt8).unwrap();
    assert_eq!((e.numel(), e.sizes()), (0, &[0, 1 << 32, 1 << 31, 3][..]));
    // A size beyond i64, PyTorch's limit, is an error, also beside a 0.
    assert!(Tensor::from_vec(Vec::<f32>::new(), &[0, 1 << 63]).is_err());
    assert!(ops::_empty_affine_quantized(&[0, i64::MAX, i64::MAX], 0.5, 1, DType::QUInt8).is_ok());

    // Saved and loaded through safetensors.
    let dir = std::env::temp_dir().join(format!("qtensor-empty-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("empty.safetensors");
    qtensor::save(&path, &[("e", &e)]).unwrap();
    let loaded = qtensor::load(&path).unwrap();
    assert_eq!(loaded[0].1.sizes(), e.sizes());
    std::fs::remove_dir_all(&dir).ok();
}

/// A conv or linear weight whose row sizes multiply past `usize` (empty,
/// with a 0 beside them): an error before any packing multiplies them
/// (the boxed_call fuzzer, with overflow checks on).
#[test]
fn weights_whose_rows_overflow_are_refused() {
    let x = q8(&[1, 3, 4, 4], 0.1, 3);
    for sizes in [[1, 1 << 62, 1 << 40, 0], [4, 0, 1 << 40, 1 << 40], [1 << 40, 1 << 40, 3, 0]] {
        let w = ops::quantize_per_tensor(&Tensor::from_vec(Vec::<f32>::new(), &sizes).unwrap(), 0.01, 0, DType::QInt8)
            .unwrap();
        for kernel in qtensor::kernel_checks::supported_kernels("quantized::conv2d", DType::QUInt8) {
            let args = [
                qtensor::Value::Tensor(x.clone()),
                qtensor::Value::Tensor(w.clone()),
                qtensor::Value::None,
                qtensor::Value::IntList([1, 1].into_iter().collect()),
                qtensor::Value::IntList([0, 0].into_iter().collect()),
                qtensor::Value::IntList([1, 1].into_iter().collect()),
                qtensor::Value::Int(1),
                qtensor::Value::Float(0.1),
                qtensor::Value::Int(3),
            ];
            // An error, or declined for the next kernel to refuse.
            let r = call_kernel(&kernel, &args);
            assert!(!matches!(r, Ok(Some(_))), "{} took a weight of {sizes:?}", kernel.name);
        }
    }
}
