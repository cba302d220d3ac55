//! Channels-last as a memory format: conversion, layout queries, and every
//! conv kernel on channels-last inputs (depthwise at any stride, 1x1
//! pointwise, grouped, dilated, padded) against exact i64 arithmetic and
//! against the same call on NCHW input.

use qtensor::numerics::AccRequant;
use qtensor::{ops, DType, MemoryFormat, Tensor, Value};

fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

fn quint8(sizes: &[usize], scale: f64, zp: i64, seed: u64) -> Tensor {
    let n = sizes.iter().product();
    let ints = Tensor::from_vec(pattern(n, seed), sizes).unwrap();
    ops::_make_per_tensor_quantized_tensor(&ints, scale, zp).unwrap()
}

#[test]
fn converts_to_channels_last_and_back_with_the_same_values() {
    let x = quint8(&[2, 3, 4, 5], 0.1, 7, 1);
    let cl = x.contiguous_in(MemoryFormat::ChannelsLast).unwrap();
    assert_eq!(cl.sizes(), x.sizes());
    assert_eq!(cl.strides(), &[60, 1, 15, 3]);
    assert!(cl.is_contiguous_in(MemoryFormat::ChannelsLast) && !cl.is_contiguous());
    assert_eq!(cl.memory_format(), MemoryFormat::ChannelsLast);
    assert_eq!(cl.int_values().unwrap(), x.int_values().unwrap());
    assert_eq!(cl.q_scale().unwrap(), 0.1);
    let back = cl.contiguous_in(MemoryFormat::Contiguous).unwrap();
    assert!(back.is_contiguous());
    assert_eq!(back.int_values().unwrap(), x.int_values().unwrap());
    // Printing shows logical NCHW values, whatever the layout.
    assert_eq!(format!("{cl}"), format!("{x}"));
    // Three channels (an image) take their own path; the others the tiled one.
    for c in [1, 3, 5, 64] {
        let x = quint8(&[2, c, 7, 9], 0.1, 7, c as u64);
        let cl = x.contiguous_in(MemoryFormat::ChannelsLast).unwrap();
        assert_eq!(cl.int_values().unwrap(), x.int_values().unwrap(), "{c} channels");
        let f = x.dequantize().unwrap().contiguous_in(MemoryFormat::ChannelsLast).unwrap();
        assert_eq!(f.to_vec::<f32>().unwrap(), x.dequantize().unwrap().to_vec::<f32>().unwrap(), "{c} channels, float");
    }
    // Already channels-last: no copy.
    assert!(cl.contiguous_in(MemoryFormat::ChannelsLast).unwrap().shares_storage_with(&cl));
}

#[test]
fn copies_of_strided_views_keep_every_value() {
    // Channel slices of a channels-last tensor (ShuffleNet's halves) copy
    // whole runs of channels; slices too short for that, stepped slices
    // and views with dimensions of size 1 go element by element. Each copy
    // must read as the view reads (`int_values` walks the view itself).
    let x = quint8(&[2, 24, 5, 7], 0.1, 7, 3).contiguous_in(MemoryFormat::ChannelsLast).unwrap();
    let views = [
        ("channels 12..24", x.slice(1, Some(12), None, 1).unwrap()),
        ("channels 3..11", x.slice(1, Some(3), Some(11), 1).unwrap()),
        ("channels 0..5", x.slice(1, Some(0), Some(5), 1).unwrap()),
        ("every other channel", x.slice(1, None, None, 2).unwrap()),
        ("one row", x.slice(2, Some(2), Some(3), 1).unwrap().slice(1, Some(8), None, 1).unwrap()),
        ("one column", x.slice(3, Some(4), Some(5), 1).unwrap()),
        ("one image", x.slice(0, Some(1), None, 1).unwrap().slice(1, Some(4), Some(20), 1).unwrap()),
        ("rows reversed by permute", x.permute(&[0, 1, 3, 2]).unwrap()),
    ];
    for (what, view) in views {
        let want = view.int_values().unwrap();
        for format in [MemoryFormat::ChannelsLast, MemoryFormat::Contiguous] {
            let copy = view.contiguous_in(format).unwrap();
            assert!(copy.is_contiguous_in(format), "{what}: {format:?}");
            assert_eq!(copy.int_values().unwrap(), want, "{what}: {format:?}");
        }
    }
}

#[test]
fn channels_last_needs_four_dims() {
    let x = quint8(&[3, 4], 0.1, 0, 2);
    assert!(x.contiguous_in(MemoryFormat::ChannelsLast).is_err());
    assert!(!x.is_contiguous_in(MemoryFormat::ChannelsLast));
    assert_eq!(x.memory_format(), MemoryFormat::Contiguous);
}

#[test]
fn channels_last_works_for_float_and_views() {
    let v: Vec<f32> = (0..2 * 3 * 2 * 2).map(|i| i as f32).collect();
    let x = Tensor::from_vec(v.clone(), &[2, 3, 2, 2]).unwrap();
    let cl = x.contiguous_in(MemoryFormat::ChannelsLast).unwrap();
    assert_eq!(cl.to_vec::<f32>().unwrap(), v);
    // A transposed view converts too.
    let t = x.transpose(2, 3).unwrap();
    let tcl = t.contiguous_in(MemoryFormat::ChannelsLast).unwrap();
    assert_eq!(tcl.to_vec::<f32>().unwrap(), t.contiguous().unwrap().to_vec::<f32>().unwrap());
}

/// The conv by definition: the exact sum Σ (x - zx)(w - zw), requantized
/// with PyTorch's sequence (`numerics::AccRequant`), NCHW.
#[allow(clippy::too_many_arguments)]
fn exact_conv(
    x: &[u8],
    [n, c, h, wd]: [usize; 4],
    w: &[i8],
    [oc, icg, kh, kw]: [usize; 4],
    stride: usize,
    pad: usize,
    dil: usize,
    zx: i64,
    zw: i64,
    rq: AccRequant,
    zy: i64,
    lo: i64,
) -> (Vec<i64>, [usize; 2]) {
    let g = c / icg;
    let oh = (h + 2 * pad - dil * (kh - 1) - 1) / stride + 1;
    let ow = (wd + 2 * pad - dil * (kw - 1) - 1) / stride + 1;
    let mut out = Vec::new();
    for img in 0..n {
        for o in 0..oc {
            let grp = o / (oc / g);
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = 0i64;
                    for i in 0..icg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * stride + ky * dil) as i64 - pad as i64;
                                let ix = (xo * stride + kx * dil) as i64 - pad as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 {
                                    continue;
                                }
                                let ch = grp * icg + i;
                                let xv = x[((img * c + ch) * h + iy as usize) * wd + ix as usize] as i64;
                                acc += (xv - zx) * (w[((o * icg + i) * kh + ky) * kw + kx] as i64 - zw);
                            }
                        }
                    }
                    out.push(rq.apply(acc, zy, lo, 255));
                }
            }
        }
    }
    (out, [oh, ow])
}

struct Case {
    input: [usize; 4],
    oc: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
}

#[test]
fn every_conv_kernel_agrees_on_channels_last_and_nchw_inputs() {
    let cases = [
        // Depthwise at stride 1 and 2, with a channel tail (13 = 8 + 5).
        Case { input: [2, 13, 9, 8], oc: 13, k: 3, stride: 2, pad: 1, dil: 1, groups: 13 },
        Case { input: [1, 32, 7, 7], oc: 32, k: 3, stride: 1, pad: 1, dil: 1, groups: 32 },
        // Every channel-block width at once: 120 = 64 + 32 + 16 + 8.
        Case { input: [1, 120, 6, 5], oc: 120, k: 3, stride: 2, pad: 1, dil: 1, groups: 120 },
        Case { input: [1, 24, 10, 9], oc: 24, k: 5, stride: 2, pad: 2, dil: 1, groups: 24 },
        Case { input: [1, 16, 9, 9], oc: 16, k: 3, stride: 1, pad: 2, dil: 2, groups: 16 },
        // Several pixels per 64-byte block at stride 1 (64 / C of them),
        // with pixels past the last whole block.
        Case { input: [2, 8, 6, 19], oc: 8, k: 3, stride: 1, pad: 1, dil: 1, groups: 8 },
        Case { input: [2, 32, 5, 12], oc: 32, k: 5, stride: 1, pad: 1, dil: 1, groups: 32 },
        // Whole blocks and a tail of 32 or 16 channels, at stride 2 and 1.
        Case { input: [1, 96, 9, 11], oc: 96, k: 3, stride: 2, pad: 1, dil: 1, groups: 96 },
        Case { input: [2, 80, 7, 13], oc: 80, k: 3, stride: 1, pad: 1, dil: 1, groups: 80 },
        Case { input: [1, 16, 9, 15], oc: 16, k: 3, stride: 2, pad: 1, dil: 1, groups: 16 },
        // Pointwise 1x1, with K a multiple of 4 and not.
        Case { input: [2, 16, 5, 6], oc: 40, k: 1, stride: 1, pad: 0, dil: 1, groups: 1 },
        Case { input: [1, 7, 4, 4], oc: 9, k: 1, stride: 1, pad: 0, dil: 1, groups: 1 },
        // 1x1 with stride 2 (a ResNet downsample), the 7x7 stem, 3x3.
        Case { input: [1, 8, 9, 9], oc: 16, k: 1, stride: 2, pad: 0, dil: 1, groups: 1 },
        Case { input: [1, 3, 20, 20], oc: 8, k: 7, stride: 2, pad: 3, dil: 1, groups: 1 },
        Case { input: [2, 12, 8, 8], oc: 20, k: 3, stride: 1, pad: 1, dil: 1, groups: 1 },
        // Grouped, not depthwise.
        Case { input: [1, 12, 6, 6], oc: 8, k: 3, stride: 1, pad: 1, dil: 1, groups: 4 },
    ];
    let kernels: Vec<_> = qtensor::kernel_checks::supported_kernels("quantized::conv2d", DType::QUInt8);
    assert!(!kernels.is_empty());
    // Symmetric weights (zero point 0, the usual case, where the GEMM skips
    // the row sums) and asymmetric ones.
    for (ci, (case, zw)) in cases.iter().flat_map(|c| [(c, 0i64), (c, 3)]).enumerate() {
        let [n, c, h, wd] = case.input;
        let icg = c / case.groups;
        let (sx, zx, sw, sy, zy) = (0.05, 120i64, 0.01, 0.02, 110i64);
        let x = quint8(&case.input, sx, zx, 10 + ci as u64);
        let xu8 = x.to_vec::<u8>().unwrap();
        let w: Vec<i8> = pattern(case.oc * icg * case.k * case.k, 77 + ci as u64).iter().map(|&v| v as i8).collect();
        let wshape = [case.oc, icg, case.k, case.k];
        let wq =
            ops::_make_per_tensor_quantized_tensor(&Tensor::from_vec(w.clone(), &wshape).unwrap(), sw, zw).unwrap();
        let (want, [oh, ow]) = exact_conv(
            &xu8,
            [n, c, h, wd],
            &w,
            wshape,
            case.stride,
            case.pad,
            case.dil,
            zx,
            zw,
            AccRequant::new(sx, sw, 0.0, sy),
            zy,
            0,
        );
        let xcl = x.contiguous_in(MemoryFormat::ChannelsLast).unwrap();
        for kernel in &kernels {
            for (input, channels_last) in [(&x, false), (&xcl, true)] {
                let args = [
                    Value::from(input),
                    Value::from(&wq),
                    Value::None,
                    Value::IntList(vec![case.stride as i64; 2].into()),
                    Value::IntList(vec![case.pad as i64; 2].into()),
                    Value::IntList(vec![case.dil as i64; 2].into()),
                    Value::Int(case.groups as i64),
                    Value::Float(sy),
                    Value::Int(zy),
                ];
                let y = (kernel.func)(&args).unwrap().into_tensor().unwrap();
                assert_eq!(y.sizes(), &[n, case.oc, oh, ow]);
                assert_eq!(
                    y.memory_format() == MemoryFormat::ChannelsLast,
                    channels_last && y.sizes()[1] > 1 && oh * ow > 1,
                    "case {ci}, kernel {}: the output keeps the input's layout",
                    kernel.name
                );
                // Bit for bit: the accumulation is exact and every kernel
                // requantizes with the same f32 sequence.
                assert_eq!(
                    y.int_values().unwrap(),
                    want,
                    "case {ci}, kernel {}, channels_last {channels_last}",
                    kernel.name
                );
            }
        }
    }
}

/// Every supported kernel of `op` for quint8, on `args` whose first tensor
/// is channels-last and on the same args in NCHW: the same values (within
/// `steps`), and the output keeps the input's layout.
fn check_layout_kept(op: &str, args_nchw: &[Value], args_cl: &[Value], steps: i64) {
    let kernels: Vec<_> = qtensor::kernel_checks::supported_kernels(op, DType::QUInt8);
    // Under QTENSOR_ISA=portable only the reference (and portable) kernels run.
    assert!(!kernels.is_empty(), "{op}: no kernel");
    let reference = kernels.iter().find(|k| k.priority.is_reference()).unwrap();
    let want = (reference.func)(args_nchw).unwrap().into_tensor().unwrap();
    assert!(want.is_contiguous(), "{op}: NCHW in, NCHW out");
    for k in &kernels {
        let y = (k.func)(args_cl).unwrap().into_tensor().unwrap();
        assert!(y.is_contiguous_in(MemoryFormat::ChannelsLast), "{op}, kernel {}", k.name);
        assert_eq!(y.sizes(), want.sizes());
        for (a, b) in y.int_values().unwrap().iter().zip(want.int_values().unwrap()) {
            assert!((a - b).abs() <= steps, "{op}, kernel {}: {a} vs {b}", k.name);
        }
        // A kernel for channels-last only declines NCHW, to the next one.
        if let Some(y_nchw) = qtensor::kernel_checks::call_kernel(k, args_nchw).unwrap() {
            assert!(y_nchw.into_tensor().unwrap().is_contiguous(), "{op}, kernel {}: NCHW in, NCHW out", k.name);
        }
    }
}

#[test]
fn elementwise_ops_and_pools_keep_channels_last() {
    let x = quint8(&[2, 19, 7, 6], 0.05, 100, 5);
    let y = quint8(&[2, 19, 7, 6], 0.07, 90, 6);
    let (xc, yc) =
        (x.contiguous_in(MemoryFormat::ChannelsLast).unwrap(), y.contiguous_in(MemoryFormat::ChannelsLast).unwrap());
    check_layout_kept("relu", &[Value::from(&x)], &[Value::from(&xc)], 0);
    for op in ["quantized::add", "quantized::add_relu"] {
        let tail = [Value::Float(0.1), Value::Int(60)];
        let nchw = [Value::from(&x), Value::from(&y), tail[0].clone(), tail[1].clone()];
        let cl = [Value::from(&xc), Value::from(&yc), tail[0].clone(), tail[1].clone()];
        check_layout_kept(op, &nchw, &cl, 1);
    }
    // max_pool2d: ResNet's 3x3/2 with padding, a dilated one, ceil mode.
    for (k, s, p, d, ceil) in [(3, 2, 1, 1, false), (2, 1, 0, 2, false), (3, 2, 0, 1, true)] {
        let args = |t: &Tensor| {
            vec![
                Value::from(t),
                Value::IntList(vec![k; 2].into()),
                Value::IntList(vec![s; 2].into()),
                Value::IntList(vec![p; 2].into()),
                Value::IntList(vec![d; 2].into()),
                Value::Bool(ceil),
            ]
        };
        check_layout_kept("max_pool2d", &args(&x), &args(&xc), 0);
    }
    for out in [[1, 1], [3, 2], [7, 6]] {
        let args = |t: &Tensor| vec![Value::from(t), Value::IntList(out.to_vec().into())];
        check_layout_kept("adaptive_avg_pool2d", &args(&x), &args(&xc), 0);
    }
}

#[test]
fn add_of_mixed_layouts_follows_the_first_operand() {
    let x = quint8(&[1, 5, 3, 4], 0.05, 100, 8);
    let y = quint8(&[1, 5, 3, 4], 0.07, 90, 9);
    let xc = x.contiguous_in(MemoryFormat::ChannelsLast).unwrap();
    let mixed = ops::quantized::add(&xc, &y, 0.1, 60).unwrap();
    let plain = ops::quantized::add(&x, &y, 0.1, 60).unwrap();
    assert_eq!(mixed.memory_format(), MemoryFormat::ChannelsLast);
    assert_eq!(mixed.int_values().unwrap(), plain.int_values().unwrap());
}
