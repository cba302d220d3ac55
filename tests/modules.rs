//! Quantized modules: each forward equals its op, packing never changes
//! results, modules save and load, and a small quantized CNN agrees with
//! its float twin within the quantization error derived below.

use qtensor::nn::quantized::{
    AdaptiveAvgPool2d, Conv2d, DeQuantize, Flatten, Linear, MaxPool2d, QFunctional, Quantize, ReLU,
};
use qtensor::nn::{Module, Sequential};
use qtensor::quantization::{MinMaxObserver, ObserverScheme, PerChannelMinMaxObserver};
use qtensor::{kernels::PackedLinear, ops, DType, Tensor};
use std::sync::Arc;

/// Deterministic values in [-1, 1) (a small LCG; no test depends on luck).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn float(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(values(shape.iter().product(), seed), shape).unwrap()
}

fn qweight(shape: &[usize], seed: u64) -> Tensor {
    let w = float(shape, seed);
    let mut obs = PerChannelMinMaxObserver::new(0, DType::QInt8, ObserverScheme::Symmetric, false).unwrap();
    obs.forward(&w).unwrap();
    qtensor::quantize(&w, &obs.quantizer().unwrap()).unwrap()
}

fn same(a: &Tensor, b: &Tensor) {
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(a.int_values().unwrap(), b.int_values().unwrap());
}

#[test]
fn each_module_forward_equals_its_op() {
    let x = ops::quantize_per_tensor(&float(&[2, 3, 6, 6], 1), 0.01, 128, DType::QUInt8).unwrap();
    let w = qweight(&[4, 3, 3, 3], 2);
    let b = float(&[4], 3);
    let conv = Conv2d::from_quantized(&w, Some(&b), [1, 1], [1, 1], [1, 1], 1, 0.05, 100).unwrap();
    same(
        &conv.forward(&x).unwrap(),
        &ops::quantized::conv2d(&x, &w, Some(&b), &[1, 1], &[1, 1], &[1, 1], 1, 0.05, 100).unwrap(),
    );
    let conv_relu = Conv2d::from_quantized(&w, Some(&b), [1, 1], [1, 1], [1, 1], 1, 0.05, 100).unwrap().with_relu();
    same(
        &conv_relu.forward(&x).unwrap(),
        &ops::quantized::conv2d_relu(&x, &w, Some(&b), &[1, 1], &[1, 1], &[1, 1], 1, 0.05, 100).unwrap(),
    );

    let flat = ops::quantize_per_tensor(&float(&[5, 12], 4), 0.02, 120, DType::QUInt8).unwrap();
    let lw = qweight(&[7, 12], 5);
    let lin = Linear::from_quantized(&lw, None, 0.1, 60).unwrap();
    same(&lin.forward(&flat).unwrap(), &ops::quantized::linear(&flat, &lw, None, 0.1, 60).unwrap());
    let lin_relu = Linear::from_quantized(&lw, None, 0.1, 60).unwrap().with_relu();
    same(&lin_relu.forward(&flat).unwrap(), &ops::quantized::linear_relu(&flat, &lw, None, 0.1, 60).unwrap());

    same(&ReLU.forward(&x).unwrap(), &ops::relu(&x).unwrap());
    same(
        &MaxPool2d::new(2, 2).forward(&x).unwrap(),
        &ops::max_pool2d(&x, &[2, 2], &[2, 2], &[0, 0], &[1, 1], false).unwrap(),
    );
    same(
        &AdaptiveAvgPool2d { output_size: [2, 3] }.forward(&x).unwrap(),
        &ops::adaptive_avg_pool2d(&x, &[2, 3]).unwrap(),
    );
    same(&Flatten.forward(&x).unwrap(), &ops::reshape(&x, &[2, -1]).unwrap());
    let f = float(&[3, 4], 6);
    same(
        &Quantize::new(0.01, 3, DType::QInt8).unwrap().forward(&f).unwrap(),
        &ops::quantize_per_tensor(&f, 0.01, 3, DType::QInt8).unwrap(),
    );
    assert_eq!(
        DeQuantize.forward(&x).unwrap().to_vec::<f32>().unwrap(),
        ops::dequantize(&x).unwrap().to_vec::<f32>().unwrap()
    );

    let qf = QFunctional::new(0.03, 90).unwrap();
    let y = ops::quantize_per_tensor(&float(&[2, 3, 6, 6], 7), 0.02, 110, DType::QUInt8).unwrap();
    same(&qf.add(&x, &y).unwrap(), &ops::quantized::add(&x, &y, 0.03, 90).unwrap());
    same(&qf.add_relu(&x, &y).unwrap(), &ops::quantized::add_relu(&x, &y, 0.03, 90).unwrap());
    same(&qf.mul(&x, &y).unwrap(), &ops::quantized::mul(&x, &y, 0.03, 90).unwrap());
    same(
        &qf.cat(&[x.clone(), y.clone()], 1).unwrap(),
        &ops::quantized::cat(&[x.clone(), y.clone()], 1, Some(0.03), Some(90)).unwrap(),
    );
}

#[test]
fn packing_happens_once_and_never_changes_results() {
    let x = ops::quantize_per_tensor(&float(&[4, 16], 8), 0.01, 128, DType::QUInt8).unwrap();
    let w = qweight(&[8, 16], 9);
    let lin = Linear::from_quantized(&w, None, 0.05, 128).unwrap();
    // The module packed at construction; every call reuses that pack.
    let p1 = lin.packed().unwrap();
    let g1 = qtensor::kernels::GemmWeight::of(&w).unwrap();
    let before = lin.forward(&x).unwrap();
    assert!(Arc::ptr_eq(&p1, &lin.packed().unwrap()));
    // The GEMM kernels' form was packed at construction too, and reused.
    assert!(Arc::ptr_eq(&g1, &qtensor::kernels::GemmWeight::of(&w).unwrap()));
    assert!(Arc::ptr_eq(&p1, &PackedLinear::of(&w).unwrap()));
    // A weight that was never packed gives the same result.
    let fresh = w.contiguous_copy().unwrap();
    same(&before, &ops::quantized::linear(&x, &fresh, None, 0.05, 128).unwrap());
    // Changing the weight invalidates the pack: the module sees the new values.
    w.set(&[0, 0], 0.9).unwrap();
    let p2 = lin.packed().unwrap();
    assert!(!Arc::ptr_eq(&p1, &p2));
    let after = lin.forward(&x).unwrap();
    same(&after, &ops::quantized::linear(&x, &w.contiguous_copy().unwrap(), None, 0.05, 128).unwrap());
}

#[test]
fn shape_mismatches_are_errors() {
    let x = ops::quantize_per_tensor(&float(&[2, 8], 10), 0.01, 128, DType::QUInt8).unwrap();
    assert!(ops::quantized::linear(&x, &qweight(&[4, 9], 11), None, 0.1, 0)
        .unwrap_err()
        .to_string()
        .contains("in_features"));
    let img = ops::quantize_per_tensor(&float(&[1, 4, 5, 5], 12), 0.01, 128, DType::QUInt8).unwrap();
    let w = qweight(&[6, 3, 3, 3], 13);
    assert!(ops::quantized::conv2d(&img, &w, None, &[1, 1], &[0, 0], &[1, 1], 1, 0.1, 0).is_err(), "channel mismatch");
    assert!(
        ops::quantized::conv2d(&img, &qweight(&[6, 2, 3, 3], 14), None, &[1, 1], &[0, 0], &[1, 1], 3, 0.1, 0).is_err(),
        "groups must divide channels"
    );
    assert!(
        ops::quantized::conv2d(&img, &qweight(&[4, 1, 9, 9], 15), None, &[1, 1], &[0, 0], &[1, 1], 4, 0.1, 0).is_err(),
        "kernel larger than input"
    );
    assert!(
        ops::quantized::conv2d(&img, &qweight(&[4, 1, 3, 3], 16), None, &[0, 1], &[0, 0], &[1, 1], 4, 0.1, 0).is_err(),
        "zero stride"
    );
    let f = float(&[2, 8], 17);
    assert!(ops::quantized::add(&x, &f, 0.1, 0).unwrap_err().to_string().contains("quint8 vs float32"));
    let q8 = ops::quantize_per_tensor(&f, 0.01, 0, DType::QInt8).unwrap();
    assert!(ops::quantized::mul(&x, &q8, 0.1, 0).unwrap_err().to_string().contains("quint8 vs qint8"));
    assert!(Linear::from_quantized(&qweight(&[4, 8], 18), Some(&float(&[5], 19)), 0.1, 0).is_err());
    assert!(ops::max_pool2d(&img, &[3, 3], &[1, 1], &[2, 2], &[1, 1], false).is_err(), "padding over half the kernel");
}

/// The float twin: NCHW conv with zero padding, in f64.
fn conv_f64(x: &[f64], xs: [usize; 4], w: &[f64], ws: [usize; 4], b: &[f64], pad: usize) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, wd] = xs;
    let [oc, _, kh, kw] = ws;
    let (oh, ow) = (h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1);
    let mut out = vec![0.0; n * oc * oh * ow];
    for i in 0..n {
        for o in 0..oc {
            for y in 0..oh {
                for z in 0..ow {
                    let mut acc = b[o];
                    for ic in 0..c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let (iy, ix) = ((y + ky) as i64 - pad as i64, (z + kx) as i64 - pad as i64);
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    acc += x[((i * c + ic) * h + iy as usize) * wd + ix as usize]
                                        * w[((o * c + ic) * kh + ky) * kw + kx];
                                }
                            }
                        }
                    }
                    out[((i * oc + o) * oh + y) * ow + z] = acc;
                }
            }
        }
    }
    (out, [n, oc, oh, ow])
}

fn maxpool2_f64(x: &[f64], s: [usize; 4]) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, w] = s;
    let (oh, ow) = (h / 2, w / 2);
    let mut out = Vec::new();
    for p in 0..n * c {
        for y in 0..oh {
            for z in 0..ow {
                let at = |dy: usize, dz: usize| x[p * h * w + (2 * y + dy) * w + 2 * z + dz];
                out.push(at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)));
            }
        }
    }
    (out, [n, c, oh, ow])
}

fn linear_f64(x: &[f64], m: usize, k: usize, w: &[f64], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    (0..m * n).map(|i| b[i % n] + (0..k).map(|j| x[(i / n) * k + j] * w[(i % n) * k + j]).sum::<f64>()).collect()
}

/// Error bound of the linear layer `y[m, o] = Σ_j w[o, j] x[m, j] + b[o]`
/// when x carries error `ex` and row `o` of w is rounded to its scale
/// `sw[o]`: Σ_j |w| ex + |x| sw/2 + ex sw/2.
fn linear_error(x: &[f64], ex: &[f64], w: &[f64], sw: &[f64], m: usize, k: usize) -> Vec<f64> {
    let n = sw.len();
    (0..m * n)
        .map(|r| {
            let (row, o) = (r / n, r % n);
            (0..k)
                .map(|j| {
                    let xi = row * k + j;
                    w[o * k + j].abs() * ex[xi] + x[xi].abs() * sw[o] / 2.0 + ex[xi] * sw[o] / 2.0
                })
                .sum()
        })
        .collect()
}

#[test]
fn a_small_quantized_cnn_matches_its_float_twin() {
    // The float model: conv 3->4 (3x3, pad 1) -> relu -> maxpool 2 -> flatten -> linear 64->5.
    let xs = [2, 3, 8, 8];
    let x = float(&xs, 20);
    let cw = float(&[4, 3, 3, 3], 21);
    let cb = float(&[4], 22);
    let lw = float(&[5, 64], 23);
    let lb = float(&[5], 24);
    let f = |t: &Tensor| t.real_values().unwrap();
    let (conv, cs) = conv_f64(&f(&x), xs, &f(&cw), [4, 3, 3, 3], &f(&cb), 1);
    let relu: Vec<f64> = conv.iter().map(|v| v.max(0.0)).collect();
    let (pooled, ps) = maxpool2_f64(&relu, cs);
    let k = ps[1] * ps[2] * ps[3];
    let out = linear_f64(&pooled, xs[0], k, &f(&lw), &f(&lb));

    // Calibrate with observers on the float activations, as post-training quantization does.
    let observe = |v: &[f64], shape: &[usize]| {
        let mut o = MinMaxObserver::new(DType::QUInt8, ObserverScheme::Affine, false).unwrap();
        o.forward(&Tensor::from_vec(v.to_vec(), shape).unwrap()).unwrap();
        o.calculate_qparams()
    };
    let (sx, zx) = observe(&f(&x), &xs);
    let (sc, zc) = observe(&relu, &cs);
    let (so, zo) = observe(&out, &[xs[0], 5]);
    let wq = |w: &Tensor| {
        let mut o = PerChannelMinMaxObserver::new(0, DType::QInt8, ObserverScheme::Symmetric, false).unwrap();
        o.forward(w).unwrap();
        o.quantizer().unwrap()
    };
    let (cwq, lwq) = (wq(&cw), wq(&lw));
    let model = Sequential::new()
        .push("quant", Quantize::new(sx, zx, DType::QUInt8).unwrap())
        .push("conv", Conv2d::from_float(&cw, Some(&cb), &cwq, [1, 1], [1, 1], [1, 1], 1, sc, zc).unwrap().with_relu())
        .push("pool", MaxPool2d::new(2, 2))
        .push("flatten", Flatten)
        .push("fc", Linear::from_float(&lw, Some(&lb), &lwq, so, zo).unwrap())
        .push("dequant", DeQuantize);
    let got = model.forward(&x).unwrap().real_values().unwrap();

    // Derive the error bound layer by layer: input rounding (sx/2), weight
    // rounding (per-channel sw/2), the conv output's rounding (sc/2, one more
    // step allowed by the kernel contract), relu and max (1-Lipschitz), then
    // the linear layer and its output rounding.
    let scales =
        |q: &Arc<qtensor::Quantizer>, count: usize| (0..count).map(|c| q.channel_qparams(c).0).collect::<Vec<f64>>();
    let ex = vec![sx / 2.0; x.numel()];
    let [n, c, h, w] = xs;
    // Conv rows are [n, oc, y, x]; each output sums its 3x3xC window.
    let conv_err: Vec<f64> = (0..n * 4 * h * w)
        .map(|r| {
            let oc = (r / (h * w)) % 4;
            let (img, rest) = (r / (4 * h * w), r % (h * w));
            let (y, z) = (rest / w, rest % w);
            let sw = cwq.channel_qparams(oc).0;
            let mut e = 0.0;
            for j in 0..c * 9 {
                let (ic, ky, kx) = (j / 9, (j % 9) / 3, j % 3);
                let (iy, ix) = ((y + ky) as i64 - 1, (z + kx) as i64 - 1);
                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                    let xi = ((img * c + ic) * h + iy as usize) * w + ix as usize;
                    let wv = f(&cw)[oc * c * 9 + j];
                    e += wv.abs() * ex[xi] + f(&x)[xi].abs() * sw / 2.0 + ex[xi] * sw / 2.0;
                }
            }
            e + 1.5 * sc
        })
        .collect();
    // Max pooling: the error of a max is at most the largest error in its window.
    let (pool_err, _) = maxpool2_f64(&conv_err, cs);
    let lin_err = linear_error(&pooled, &pool_err, &f(&lw), &scales(&lwq, 5), n, k);
    for (i, ((g, want), e)) in got.iter().zip(&out).zip(&lin_err).enumerate() {
        let bound = e + 1.5 * so;
        assert!(
            (g - want).abs() <= bound,
            "output {i}: quantized {g} vs float {want}, error {} > bound {bound}",
            (g - want).abs()
        );
    }
    // And the bound is meaningful: far tighter than the output range.
    let range = out.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(lin_err.iter().all(|e| e + 1.5 * so < range), "bound {lin_err:?} is not informative for range {range}");
}

#[test]
fn modules_save_and_load() {
    let dir = std::env::temp_dir().join(format!("qtensor-modules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let build = |seed: u64| {
        Sequential::new()
            .push("quant", Quantize::new(0.01, 128, DType::QUInt8).unwrap())
            .push(
                "conv",
                Conv2d::from_quantized(
                    &qweight(&[2, 3, 3, 3], seed),
                    Some(&float(&[2], seed + 1)),
                    [1, 1],
                    [0, 0],
                    [1, 1],
                    1,
                    0.02,
                    64,
                )
                .unwrap(),
            )
            .push("flatten", Flatten)
            .push("fc", Linear::from_quantized(&qweight(&[3, 8], seed + 2), None, 0.05, 30).unwrap())
    };
    let model = build(30);
    let x = float(&[1, 3, 4, 4], 31);
    let want = model.forward(&x).unwrap();
    qtensor::nn::save(&path, &model).unwrap();
    let mut other = build(40);
    assert_ne!(other.forward(&x).unwrap().int_values().unwrap(), want.int_values().unwrap());
    qtensor::nn::load(&path, &mut other).unwrap();
    same(&other.forward(&x).unwrap(), &want);
    // A model of another shape refuses the file.
    let mut wrong = Sequential::new().push("fc", Linear::from_quantized(&qweight(&[3, 9], 1), None, 0.05, 30).unwrap());
    assert!(qtensor::nn::load(&path, &mut wrong).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
