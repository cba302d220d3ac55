//! Networks with branches, built from modules: `Residual` and `Concat`
//! compute what their ops compute, save their `QFunctional` under
//! torchvision's names, load back, and report bad state; the new layers
//! equal their ops.

use qtensor::nn::quantized::{
    AvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, Hardsigmoid, Hardswish, Mean, QFunctional, ReLU6, Sigmoid, Upsample,
};
use qtensor::nn::{Combine, Concat, Module, Residual, Sequential};
use qtensor::{ops, DType, MemoryFormat, Quantizer, Tensor};
use std::collections::HashMap;

fn q8(shape: &[usize], seed: u64, scale: f64, zp: i64) -> Tensor {
    let n: usize = shape.iter().product();
    let ints: Vec<u8> = (0..n as u64).map(|i| ((i * 37 + seed * 11) % 256) as u8).collect();
    Tensor::from_int_repr(
        &Tensor::from_vec(ints, shape).unwrap(),
        &Quantizer::per_tensor(scale, zp, DType::QUInt8).unwrap(),
    )
    .unwrap()
}

fn conv(cin: usize, cout: usize, seed: u64) -> Conv2d {
    let ints: Vec<i8> = (0..cout * cin).map(|i| ((i as u64 * 7 + seed) % 21) as i8 - 10).collect();
    let q = Quantizer::per_tensor(0.02, 0, DType::QInt8).unwrap();
    let w = Tensor::from_int_repr(&Tensor::from_vec(ints, &[cout, cin, 1, 1]).unwrap(), &q).unwrap();
    Conv2d::from_quantized(&w, None, [1, 1], [0, 0], [1, 1], 1, 0.05, 64).unwrap()
}

fn same(a: &Tensor, b: &Tensor) {
    assert_eq!(a.sizes(), b.sizes());
    assert_eq!(a.q_scale().unwrap(), b.q_scale().unwrap());
    assert_eq!(a.int_values().unwrap(), b.int_values().unwrap());
}

#[test]
fn residual_and_concat_compute_their_ops() {
    let x = q8(&[1, 4, 5, 5], 1, 0.05, 64).contiguous_in(MemoryFormat::ChannelsLast).unwrap();
    let f = QFunctional::new(0.07, 60).unwrap();
    for combine in [Combine::Add, Combine::AddRelu, Combine::Mul] {
        let block = Residual::new("block", conv(4, 4, 3), "skip", f, combine);
        let y = conv(4, 4, 3).forward(&x).unwrap();
        let want = match combine {
            Combine::Add => ops::quantized::add(&x, &y, 0.07, 60),
            Combine::AddRelu => ops::quantized::add_relu(&x, &y, 0.07, 60),
            Combine::Mul => ops::quantized::mul(&y, &x, 0.07, 60),
        }
        .unwrap();
        same(&block.forward(&x).unwrap(), &want);
    }
    let branches: Vec<Box<dyn Module + Send + Sync>> = vec![
        Box::new(Sequential::new().push("a", conv(4, 2, 5))),
        Box::new(Sequential::new().push("", AvgPool2d::new(3, 1, 1)).push("b", conv(4, 3, 6))),
    ];
    let cat = Concat::new(branches, "myop", f, 1).unwrap();
    let a = conv(4, 2, 5).forward(&x).unwrap();
    let b = conv(4, 3, 6).forward(&ops::avg_pool2d(&x, &[3, 3], &[1, 1], &[1, 1], false, true, None).unwrap()).unwrap();
    same(&cat.forward(&x).unwrap(), &ops::quantized::cat(&[a, b], 1, Some(0.07), Some(60)).unwrap());
    assert!(Concat::new(Vec::new(), "myop", f, 1).is_err());
}

#[test]
fn blocks_save_under_torchvisions_names_and_load_back() {
    let f = QFunctional::new(0.07, 60).unwrap();
    let block = Residual::new("block", Sequential::new().push("0", conv(4, 4, 3)), "skip_add", f, Combine::Add);
    let state = block.state_dict("features.1.").unwrap();
    let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "features.1.block.0.weight",
            "features.1.block.0.scale",
            "features.1.block.0.zero_point",
            "features.1.skip_add.scale",
            "features.1.skip_add.zero_point"
        ]
    );
    // Load other qparams into a fresh block and get them back.
    let mut map: HashMap<String, Tensor> = state.into_iter().collect();
    map.insert("features.1.skip_add.scale".into(), Tensor::from_slice(&[0.5f64], &[]).unwrap());
    let mut fresh = Residual::new(
        "block",
        Sequential::new().push("0", conv(4, 4, 9)),
        "skip_add",
        QFunctional::new(1.0, 0).unwrap(),
        Combine::Add,
    );
    fresh.load_state_dict(&map, "features.1.").unwrap();
    let reloaded: HashMap<String, Tensor> = fresh.state_dict("features.1.").unwrap().into_iter().collect();
    assert_eq!(reloaded["features.1.skip_add.scale"].item().unwrap(), 0.5);
    same(&reloaded["features.1.block.0.weight"], &map["features.1.block.0.weight"]);
    // A missing functional or a bad scale is an error naming the key.
    map.remove("features.1.skip_add.zero_point");
    let err = fresh.load_state_dict(&map, "features.1.").unwrap_err().to_string();
    assert!(err.contains("features.1.skip_add.zero_point"), "{err}");
    map.insert("features.1.skip_add.zero_point".into(), Tensor::from_slice(&[3i64], &[]).unwrap());
    map.insert("features.1.skip_add.scale".into(), Tensor::from_slice(&[-1.0f64], &[]).unwrap());
    assert!(fresh.load_state_dict(&map, "features.1.").is_err());
}

#[test]
fn a_qfunctional_has_state_but_no_single_input_forward() {
    let f = QFunctional::new(0.25, 7).unwrap();
    let state = f.state_dict("cat.").unwrap();
    assert_eq!(state[0].0, "cat.scale");
    assert_eq!(state[1].1.item().unwrap(), 7.0);
    let err = f.forward(&q8(&[3], 0, 0.1, 0)).unwrap_err().to_string();
    assert!(err.contains("add, add_relu, mul or cat"), "{err}");
}

#[test]
fn each_new_layer_equals_its_op() {
    let x = q8(&[1, 4, 6, 6], 2, 0.05, 100).contiguous_in(MemoryFormat::ChannelsLast).unwrap();
    same(&Hardswish::new(0.03, 10).unwrap().forward(&x).unwrap(), &ops::quantized::hardswish(&x, 0.03, 10).unwrap());
    same(&Hardsigmoid.forward(&x).unwrap(), &ops::hardsigmoid(&x).unwrap());
    same(&Sigmoid.forward(&x).unwrap(), &ops::sigmoid(&x).unwrap());
    same(&ReLU6.forward(&x).unwrap(), &ops::relu6(&x).unwrap());
    same(&Mean { dims: vec![2, 3], keepdim: false }.forward(&x).unwrap(), &ops::mean(&x, &[2, 3], false).unwrap());
    same(&ChannelShuffle { groups: 2 }.forward(&x).unwrap(), &ops::channel_shuffle(&x, 2).unwrap());
    same(&Upsample { size: [9, 12] }.forward(&x).unwrap(), &ops::upsample_nearest2d(&x, &[9, 12], None, None).unwrap());
    let p = |v: f32| Tensor::from_vec(vec![v; 4], &[4]).unwrap();
    let (w, b, m, v) = (p(1.5), p(0.1), p(-0.2), p(2.0));
    let bn = BatchNorm2d::new([&w, &b, &m, &v], 1e-5, 0.04, 90).unwrap();
    same(
        &bn.forward(&x).unwrap(),
        &ops::quantized::batch_norm2d(&x, Some(&w), Some(&b), &m, &v, 1e-5, 0.04, 90).unwrap(),
    );
    assert!(BatchNorm2d::new([&w, &b, &Tensor::from_vec(vec![0f32; 3], &[3]).unwrap(), &v], 1e-5, 0.04, 90).is_err());
    assert!(Hardswish::new(0.0, 10).is_err());
    assert!(Hardswish::new(0.1, 300).is_err());
}

#[test]
fn hardsigmoid_and_sigmoid_fix_pytorchs_output_qparams() {
    let x = q8(&[7], 1, 0.1, 128);
    for y in [ops::hardsigmoid(&x).unwrap(), ops::sigmoid(&x).unwrap()] {
        assert_eq!((y.q_scale().unwrap(), y.q_zero_point().unwrap()), (1.0 / 256.0, 0));
    }
    let qi8 = Quantizer::per_tensor(0.1, 0, DType::QInt8).unwrap();
    let x = qtensor::quantize(&Tensor::from_vec(vec![-3.0f32, 0.0, 3.0], &[3]).unwrap(), &qi8).unwrap();
    let y = ops::hardsigmoid(&x).unwrap();
    assert_eq!((y.q_scale().unwrap(), y.q_zero_point().unwrap()), (1.0 / 256.0, -128));
    // hardsigmoid(-3) = 0, (0) = 0.5, (3) = 1 saturates at 127.
    assert_eq!(y.int_values().unwrap(), [-128, 0, 127]);
}
