//! Tensor semantics from the PyTorch note: quantizers shared between
//! tensors, views that share storage, assignment, copy_, inspection and
//! save/load; plus properties over random shapes and views.

use proptest::prelude::*;
use qtensor::{ops, quantize, DType, QScheme, Quantizer, Tensor};
use std::sync::Arc;

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 * 0.25 - 1.0).collect()
}

#[test]
fn one_quantizer_is_shared_between_tensors() {
    let q = Quantizer::per_tensor(0.25, 4, DType::QUInt8).unwrap();
    let a = quantize(&Tensor::from_slice(&ramp(6), &[2, 3]).unwrap(), &q).unwrap();
    let b = quantize(&Tensor::from_slice(&ramp(4), &[4]).unwrap(), &q).unwrap();
    assert!(Arc::ptr_eq(&a.quantizer().unwrap(), &q));
    assert!(Arc::ptr_eq(&b.quantizer().unwrap(), &q));
    // Views that keep the channel layout share it too.
    assert!(Arc::ptr_eq(&a.transpose(0, 1).unwrap().quantizer().unwrap(), &q));
    assert_eq!(a.int_values().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(a.q_scale().unwrap(), 0.25);
    assert_eq!(a.q_zero_point().unwrap(), 4);
    assert_eq!(a.qscheme().unwrap(), QScheme::PerTensorAffine);
}

#[test]
fn views_share_storage_and_write_through() {
    let q = ops::quantize_per_tensor(&Tensor::from_slice(&ramp(12), &[3, 4]).unwrap(), 0.25, 4, DType::QUInt8).unwrap();
    let t = q.transpose(0, 1).unwrap();
    let s = q.slice(1, Some(1), None, 2).unwrap();
    let row = q.select(0, 2).unwrap();
    let r = q.reshape([4, 3]).unwrap();
    for v in [&t, &s, &row, &r] {
        assert!(v.shares_storage_with(&q));
    }
    assert_eq!(s.sizes(), &[3, 2]);
    assert!(!t.is_contiguous());
    s.fill_(2.0).unwrap();
    // Columns 1 and 3 of every row are now 2.0 = (12 - 4) * 0.25.
    assert_eq!(q.get(&[0, 1]).unwrap(), 2.0);
    assert_eq!(t.get(&[3, 2]).unwrap(), 2.0);
    assert_eq!(q.get(&[0, 0]).unwrap(), -1.0);
    row.set(&[0], 0.3).unwrap();
    assert_eq!(q.get(&[2, 0]).unwrap(), 0.25, "0.3 quantizes to the nearest step");
    assert_eq!(r.get(&[2, 2]).unwrap(), 0.25);
    // contiguous() of a strided view copies; of a contiguous tensor it does not.
    assert!(!t.contiguous().unwrap().shares_storage_with(&q));
    assert!(q.contiguous().unwrap().shares_storage_with(&q));
    // view() refuses what reshape() has to copy.
    assert!(t.view([12]).is_err());
    assert!(!t.reshape([12]).unwrap().shares_storage_with(&q));
}

#[test]
fn per_channel_views_carry_their_axis() {
    let x = Tensor::from_slice(&ramp(24), &[2, 3, 4]).unwrap();
    let s = Tensor::from_slice(&[0.1f64, 0.2, 0.3], &[3]).unwrap();
    let z = Tensor::from_slice(&[0i64, 1, 2], &[3]).unwrap();
    let q = ops::quantize_per_channel(&x, &s, &z, 1, DType::QInt8).unwrap();
    assert_eq!(q.permute(&[1, 2, 0]).unwrap().q_per_channel_axis().unwrap(), 0);
    assert_eq!(q.transpose(0, 2).unwrap().q_per_channel_axis().unwrap(), 1);
    assert_eq!(q.select(0, 1).unwrap().q_per_channel_axis().unwrap(), 0);
    let sliced = q.slice(1, Some(1), None, 1).unwrap();
    assert_eq!(sliced.q_per_channel_scales().unwrap().to_vec::<f64>().unwrap(), vec![0.2, 0.3]);
    let one = q.select(1, 2).unwrap();
    assert_eq!((one.q_scale().unwrap(), one.q_zero_point().unwrap()), (0.3, 2));
    assert_eq!(q.reshape([2, 3, 2, 2]).unwrap().q_per_channel_axis().unwrap(), 1);
    assert!(q.reshape([6, 4]).is_err(), "merging the channel axis needs a dequantize");
    // Dequantizing a view equals viewing the dequantized tensor.
    let dq = ops::dequantize(&q).unwrap();
    assert_eq!(
        ops::dequantize(&q.transpose(0, 2).unwrap()).unwrap().to_vec::<f32>().unwrap(),
        dq.transpose(0, 2).unwrap().to_vec::<f32>().unwrap()
    );
}

#[test]
fn copy_follows_pytorch() {
    let a = ops::quantize_per_tensor(&Tensor::from_slice(&ramp(4), &[4]).unwrap(), 0.5, 0, DType::QInt8).unwrap();
    let b = ops::quantize_per_tensor(&Tensor::from_slice(&ramp(4), &[4]).unwrap(), 0.25, 3, DType::QInt8).unwrap();
    let out = ops::copy_(&a, &b).unwrap();
    assert!(out.shares_storage_with(&a));
    assert_eq!((a.q_scale().unwrap(), a.q_zero_point().unwrap()), (0.25, 3));
    assert_eq!(a.int_values().unwrap(), b.int_values().unwrap());
    // From float: quantized into self's qparams.
    ops::copy_(&a, &Tensor::from_slice(&[1.0f32, 0.0, -0.25, 100.0], &[4]).unwrap()).unwrap();
    assert_eq!(a.int_values().unwrap(), vec![7, 3, 2, 127]);
    // To float: an error that says what to do.
    let f = Tensor::zeros(&[4], DType::Float32).unwrap();
    assert!(ops::copy_(&f, &a).unwrap_err().to_string().contains("dequantize"));
    // Mismatched shape or dtype.
    assert!(ops::copy_(&a, &Tensor::zeros(&[3], DType::Float32).unwrap()).is_err());
    let u = ops::quantize_per_tensor(&Tensor::from_slice(&ramp(4), &[4]).unwrap(), 0.5, 0, DType::QUInt8).unwrap();
    assert!(ops::copy_(&a, &u).is_err());
    // Overlapping source and destination.
    let big = ops::quantize_per_tensor(&Tensor::from_slice(&ramp(8), &[8]).unwrap(), 0.25, 0, DType::QInt32).unwrap();
    let before = big.int_values().unwrap();
    ops::copy_(&big.slice(0, Some(1), None, 1).unwrap(), &big.slice(0, Some(0), Some(7), 1).unwrap()).unwrap();
    let after = big.int_values().unwrap();
    assert_eq!(&after[1..], &before[..7]);
}

#[test]
fn item_and_inspection() {
    let q = ops::quantize_per_tensor(&Tensor::scalar(1.3).unwrap(), 0.5, 10, DType::QUInt8).unwrap();
    assert_eq!(q.item().unwrap(), 1.5);
    assert_eq!(q.numel(), 1);
    assert!(q.is_quantized());
    assert!(q.q_per_channel_scales().is_err());
    let two =
        ops::quantize_per_tensor(&Tensor::from_slice(&[1.0f32, 2.0], &[2]).unwrap(), 0.5, 10, DType::QUInt8).unwrap();
    assert!(two.item().is_err());
    assert!(Tensor::scalar(1.0).unwrap().q_scale().is_err());
}

#[test]
fn save_and_load_round_trip_through_the_facade() {
    let dir = std::env::temp_dir().join(format!("qtensor-tensor-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.safetensors");
    let x = Tensor::from_slice(&ramp(6), &[2, 3]).unwrap();
    let q = ops::quantize_per_tensor(&x, 0.1, -3, DType::QInt32).unwrap();
    let s = Tensor::from_slice(&[0.1f64, 0.2], &[2]).unwrap();
    let z = Tensor::from_slice(&[0i64, 5], &[2]).unwrap();
    let c = ops::quantize_per_channel(&x, &s, &z, 0, DType::QUInt8).unwrap();
    qtensor::save(&path, &[("x", &x), ("q", &q), ("c", &c.transpose(0, 1).unwrap())]).unwrap();
    let loaded = qtensor::load(&path).unwrap();
    assert_eq!(loaded.len(), 3);
    for (name, t) in &loaded {
        let original = match name.as_str() {
            "x" => x.clone(),
            "q" => q.clone(),
            _ => c.transpose(0, 1).unwrap(),
        };
        assert_eq!(t.to_string(), original.to_string(), "{name}");
    }
    // A corrupt file is an error.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    assert!(qtensor::load(&path).is_err());
    assert!(qtensor::load(dir.join("missing.safetensors")).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn nan_quantizes_to_the_zero_point() {
    let x = Tensor::from_slice(&[f32::NAN, 1.0], &[2]).unwrap();
    let q = ops::quantize_per_tensor(&x, 0.5, 7, DType::QUInt8).unwrap();
    assert_eq!(q.int_values().unwrap(), vec![7, 9]);
}

/// A random shape of up to 4 dims with up to 5 elements per dim.
fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..5, 0..5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// A view's elements are exactly the base's elements it selects.
    #[test]
    fn views_select_the_right_elements(sizes in shape(), d0 in -5i64..5, d1 in -5i64..5, start in -6i64..6, end in -6i64..6, step in 1i64..4) {
        let n: usize = sizes.iter().product();
        let base = Tensor::from_vec((0..n as i64).collect::<Vec<i64>>(), &sizes).unwrap();
        let vals = base.to_vec::<i64>().unwrap();
        let ndim = sizes.len() as i64;
        if let Ok(t) = base.transpose(d0, d1) {
            // Transposing twice restores the original.
            prop_assert_eq!(t.transpose(d0, d1).unwrap().to_vec::<i64>().unwrap(), vals.clone());
        } else {
            let valid = |d: i64| (-ndim.max(1)..ndim.max(1)).contains(&d);
            prop_assert!(!(valid(d0) && valid(d1)), "transpose({}, {}) of a {}-d tensor must succeed", d0, d1, ndim);
        }
        if ndim > 0 {
            if let Ok(s) = base.slice(d0, Some(start), Some(end), step) {
                let dim = if d0 < 0 { d0 + ndim } else { d0 } as usize;
                let size = sizes[dim] as i64;
                let norm = |v: i64| (if v < 0 { v + size } else { v }).clamp(0, size);
                let (a, b) = (norm(start), norm(end).max(norm(start)));
                let picked: Vec<i64> = (a..b).step_by(step as usize).collect();
                prop_assert_eq!(s.sizes()[dim], picked.len());
                // Compare against gathering by index.
                let got = s.to_vec::<i64>().unwrap();
                let strides = qtensor_runtime_strides(&sizes);
                let mut want = Vec::new();
                let mut s_sizes = sizes.clone();
                s_sizes[dim] = picked.len();
                for flat in 0..s_sizes.iter().product::<usize>() {
                    let mut rem = flat;
                    let mut off = 0;
                    for d in (0..s_sizes.len()).rev() {
                        let i = rem % s_sizes[d];
                        rem /= s_sizes[d];
                        let src = if d == dim { picked[i] as usize } else { i };
                        off += src * strides[d];
                    }
                    want.push(vals[off]);
                }
                prop_assert_eq!(got, want);
            }
        }
        let flat = base.reshape([-1]).unwrap();
        prop_assert_eq!(flat.to_vec::<i64>().unwrap(), vals);
    }

    /// Quantizing never panics and always lands in range, whatever the input.
    #[test]
    fn quantize_is_total(values in prop::collection::vec(prop::num::f32::ANY, 0..40), scale in prop::num::f64::ANY, zp in -300i64..300, dt in 0usize..4) {
        let dtype = [DType::QUInt8, DType::QInt8, DType::QInt16, DType::QInt32][dt];
        let n = values.len();
        let x = Tensor::from_vec(values, &[n]).unwrap();
        let valid_qparams = Quantizer::per_tensor(scale, zp, dtype).is_ok();
        match ops::quantize_per_tensor(&x, scale, zp, dtype) {
            Ok(q) => {
                let (lo, hi) = dtype.int_range().unwrap();
                prop_assert!(valid_qparams);
                prop_assert!(q.int_values().unwrap().iter().all(|v| (lo..=hi).contains(v)));
            }
            Err(_) => prop_assert!(!valid_qparams),
        }
    }

    /// Bad view arguments are errors, never panics.
    #[test]
    fn bad_view_arguments_are_errors(sizes in shape(), dims in prop::collection::vec(-8i64..8, 0..6), index in -10i64..10, shape_req in prop::collection::vec(-3i64..30, 0..4)) {
        let n: usize = sizes.iter().product();
        let t = Tensor::from_vec(vec![1u8; n], &sizes).unwrap();
        let _ = t.permute(&dims);
        let _ = t.select(dims.first().copied().unwrap_or(0), index);
        let _ = t.reshape(&shape_req);
        let _ = t.view(&shape_req);
        let _ = t.set(&dims, 3.0);
        let _ = t.get(&dims);
    }
}

fn qtensor_runtime_strides(sizes: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; sizes.len()];
    for i in (0..sizes.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * sizes[i + 1].max(1);
    }
    s
}
