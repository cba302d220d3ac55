//! Every linear and conv kernel this CPU supports is exact where fbgemm's
//! int16 accumulation saturates: full-range u8 activations against weights
//! that contain -128 (golden-style cases, checked against i64 arithmetic).

use qtensor::kernels::{set_narrow_kernel, NarrowKernel};
use qtensor::{ops, DType, Tensor, Value};

/// Exact linear: clamp(round(Σ (x - zx)(w - zw) * sx * sw / sy) + zy).
#[allow(clippy::too_many_arguments)]
fn exact_linear(x: &[u8], w: &[i8], m: usize, k: usize, n: usize, zx: i64, zw: i64, s: f64, zy: i64) -> Vec<i64> {
    (0..m * n)
        .map(|i| {
            let (r, c) = (i / n, i % n);
            let acc: i64 = (0..k).map(|j| (x[r * k + j] as i64 - zx) * (w[c * k + j] as i64 - zw)).sum();
            ((acc as f64 * s).round_ties_even() as i64 + zy).clamp(0, 255)
        })
        .collect()
}

fn kernels_of(op: &str) -> Vec<qtensor::KernelDescriptor> {
    qtensor::kernel_checks::supported_kernels(op, DType::QUInt8)
}

#[test]
fn linear_kernels_are_exact_on_full_range_inputs() {
    let (m, k, n) = (5, 260, 37);
    // Alternate the extremes so every vpmaddubsw pair would saturate.
    let x: Vec<u8> = (0..m * k).map(|i| if i % 3 == 0 { 0 } else { 255 }).collect();
    let w: Vec<i8> = (0..n * k)
        .map(|i| match i % 4 {
            0 | 1 => -128,
            2 => 127,
            _ => (i % 251) as i8,
        })
        .collect();
    let (sx, sw, sy, zx, zw, zy) = (0.5, 0.25, 2048.0, 3, 0, 128);
    let xq = ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(x.clone(), &[m, k]).unwrap(), sx, zx).unwrap();
    let wq = ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(w.clone(), &[n, k]).unwrap(), sw, zw).unwrap();
    let want = exact_linear(&x, &w, m, k, n, zx, zw, sx * sw / sy, zy);
    let args = [Value::from(&xq), Value::from(&wq), Value::None, Value::Float(sy), Value::Int(zy)];
    let kernels = kernels_of("quantized::linear");
    // Under QTENSOR_ISA=portable only the reference kernel runs.
    assert!(!kernels.is_empty(), "no kernel");
    for kernel in kernels {
        let got = (kernel.func)(&args).unwrap().into_tensor().unwrap().int_values().unwrap();
        assert_eq!(got, want, "kernel {}", kernel.name);
    }
}

#[test]
fn conv_kernels_are_exact_on_full_range_inputs() {
    let (c, h, wd, oc) = (8, 6, 7, 5);
    let x: Vec<u8> = (0..c * h * wd).map(|i| if i % 2 == 0 { 255 } else { 1 }).collect();
    let w: Vec<i8> = (0..oc * c * 9).map(|i| if i % 3 == 0 { -128 } else { 127 - (i % 7) as i8 }).collect();
    let (sx, sw, sy, zx, zy) = (1.0, 1.0, 4096.0, 0, 100);
    let xq =
        ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(x.clone(), &[1, c, h, wd]).unwrap(), sx, zx).unwrap();
    let wq =
        ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(w.clone(), &[oc, c, 3, 3]).unwrap(), sw, 0).unwrap();
    // Exact: stride 1, padding 1 (the padding is the input zero point).
    let mut want = Vec::new();
    for o in 0..oc {
        for y in 0..h {
            for xo in 0..wd {
                let mut acc = 0i64;
                for ic in 0..c {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (y as i64 + ky as i64 - 1, xo as i64 + kx as i64 - 1);
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                acc += (x[(ic * h + iy as usize) * wd + ix as usize] as i64 - zx)
                                    * w[((o * c + ic) * 3 + ky) * 3 + kx] as i64;
                            }
                        }
                    }
                }
                want.push(((acc as f64 * sx * sw / sy).round_ties_even() as i64 + zy).clamp(0, 255));
            }
        }
    }
    let args = [
        Value::from(&xq),
        Value::from(&wq),
        Value::None,
        Value::from([1i64, 1]),
        Value::from([1i64, 1]),
        Value::from([1i64, 1]),
        Value::Int(1),
        Value::Float(sy),
        Value::Int(zy),
    ];
    for kernel in kernels_of("quantized::conv2d") {
        let got = (kernel.func)(&args).unwrap().into_tensor().unwrap().int_values().unwrap();
        assert_eq!(got, want, "kernel {}", kernel.name);
    }
}

/// The implicit-GEMM path (stride-1 convs over 64-channel multiples, read
/// in place where the kernel can) against the reference kernel, bit for
/// bit: weights with a non-zero zero point (so row sums enter), a batch of
/// two, odd sizes (partial tiles of rows), paddings 0 to 2, dilation 1 and
/// 2, both layouts.
#[test]
fn stride_one_convs_over_wide_channels_match_the_reference() {
    let (n, h, wd, oc) = (2, 5, 9, 40);
    for (c, padding, dilation, channels_last) in
        [(64, 1, 1, true), (128, 0, 1, true), (64, 2, 2, true), (64, 1, 1, false), (192, 1, 1, true)]
    {
        // Small values and a multiplier of 1/16, so that an error of one
        // zero point in C changes many outputs.
        let x: Vec<u8> = (0..n * c * h * wd).map(|i| ((i * 37 + i / 7) % 16) as u8).collect();
        let w: Vec<i8> = (0..oc * c * 9).map(|i| ((i * 53) % 17) as i8 - 8).collect();
        let xq =
            ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(x, &[n, c, h, wd]).unwrap(), 0.25, 7).unwrap();
        let xq = if channels_last { xq.contiguous_in(qtensor::MemoryFormat::ChannelsLast).unwrap() } else { xq };
        let wq =
            ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(w, &[oc, c, 3, 3]).unwrap(), 0.25, 3).unwrap();
        let args = [
            Value::from(&xq),
            Value::from(&wq),
            Value::None,
            Value::from([1i64, 1]),
            Value::from([padding, padding]),
            Value::from([dilation, dilation]),
            Value::Int(1),
            Value::Float(1.0),
            Value::Int(128),
        ];
        let kernels = kernels_of("quantized::conv2d");
        let reference = kernels.iter().find(|k| k.priority.is_reference()).expect("a reference kernel");
        let want = (reference.func)(&args).unwrap().into_tensor().unwrap().int_values().unwrap();
        // The activations are below 128: AVX2 may take its pair kernel
        // (`NarrowKernel`), so both of its kernels are checked. The choice
        // is global; tests running meanwhile get the same results under
        // either.
        for choice in [NarrowKernel::Pairs, NarrowKernel::Widened] {
            set_narrow_kernel(choice);
            for kernel in &kernels {
                let got = (kernel.func)(&args).unwrap().into_tensor().unwrap().int_values().unwrap();
                assert_eq!(
                    got, want,
                    "kernel {} under {choice:?} (c {c}, padding {padding}, dilation {dilation})",
                    kernel.name
                );
            }
        }
        set_narrow_kernel(NarrowKernel::Measured);
    }
}

/// A GEMM of few rows and many columns splits its columns across threads
/// (MobileNetV2's last 1x1 conv has 49 rows and 1280 columns): every
/// split, on one to three threads, gives the exact result.
#[test]
fn few_row_gemms_split_by_columns_are_exact_on_any_thread_count() {
    for (m, k, n) in [(49, 40, 1280), (2, 33, 515), (30, 8, 272), (1, 17, 1040)] {
        let x: Vec<u8> = (0..m * k).map(|i| (i * 37 % 256) as u8).collect();
        let w: Vec<i8> = (0..n * k).map(|i| (i * 91 % 256) as u8 as i8).collect();
        let (sx, sw, sy, zx, zw, zy) = (0.5, 0.25, 64.0, 7, 0, 100);
        let xq =
            ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(x.clone(), &[m, k]).unwrap(), sx, zx).unwrap();
        let wq =
            ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(w.clone(), &[n, k]).unwrap(), sw, zw).unwrap();
        let want = exact_linear(&x, &w, m, k, n, zx, zw, sx * sw / sy, zy);
        assert!(want.iter().any(|&v| v != 0 && v != 255), "{m}x{k}x{n}: every output clamps");
        let args = [Value::from(&xq), Value::from(&wq), Value::None, Value::Float(sy), Value::Int(zy)];
        let kernels = kernels_of("quantized::linear");
        assert!(!kernels.is_empty(), "no kernel");
        for threads in 1..=3 {
            for kernel in &kernels {
                let got = qtensor::with_num_threads(threads, || (kernel.func)(&args))
                    .unwrap()
                    .unwrap()
                    .into_tensor()
                    .unwrap()
                    .int_values()
                    .unwrap();
                assert_eq!(got, want, "{m}x{k}x{n}, {threads} thread(s), kernel {}", kernel.name);
            }
        }
    }
}
