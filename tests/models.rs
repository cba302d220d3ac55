//! The torchvision networks of `qtensor::models`: they run end to end,
//! carry torchvision's state names, save and load, keep activations
//! channels-last, and profile by layer name. (Its own test binary: it
//! changes the process-wide ISA cap and profiler.)

use qtensor::models::{mobilenet_v2, resnet18, WeightInit};
use qtensor::nn::Module;
use qtensor::{profiler, DType, Isa, Tensor};

fn image(n: usize, side: usize) -> Tensor {
    let v: Vec<f32> = (0..n * 3 * side * side).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    Tensor::from_vec(v, &[n, 3, side, side]).unwrap()
}

fn names(m: &dyn Module) -> Vec<String> {
    m.state_dict("").unwrap().into_iter().map(|(n, _)| n).collect()
}

#[test]
fn networks_run_save_load_and_profile_by_layer() {
    let x = image(2, 64);
    let resnet = resnet18(&mut WeightInit::new(0)).unwrap();
    let mobilenet = mobilenet_v2(&mut WeightInit::new(1)).unwrap();
    for (model, keys) in [
        (
            &resnet as &dyn Module,
            [
                "conv1.weight",
                "layer1.0.conv1.weight",
                "layer2.0.downsample.0.weight",
                "layer4.1.add_relu.scale",
                "fc.weight",
                "quant.scale",
            ],
        ),
        (
            &mobilenet as &dyn Module,
            [
                "features.0.0.weight",
                "features.1.conv.0.0.weight",
                "features.3.conv.1.0.weight",
                "features.3.skip_add.zero_point",
                "features.18.0.weight",
                "classifier.1.weight",
            ],
        ),
    ] {
        let y = model.forward(&x).unwrap();
        assert_eq!(y.sizes(), &[2, 1000]);
        assert_eq!(y.dtype(), DType::Float32);
        let values = y.to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
        // Random weights with realistic qparams give logits that vary.
        assert!(values.iter().any(|&v| v != values[0]), "{}: constant logits", model.describe());
        let have = names(model);
        for k in keys {
            assert!(have.iter().any(|n| n == k), "{} has no `{k}`", model.describe());
        }
    }

    // Save and load into a network built from other weights: same output.
    let dir = std::env::temp_dir().join(format!("qtensor-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("resnet18.safetensors");
    qtensor::nn::save(&path, &resnet).unwrap();
    let mut other = resnet18(&mut WeightInit::new(42)).unwrap();
    assert_ne!(
        other.forward(&x).unwrap().to_vec::<f32>().unwrap(),
        resnet.forward(&x).unwrap().to_vec::<f32>().unwrap()
    );
    qtensor::nn::load(&path, &mut other).unwrap();
    assert_eq!(
        other.forward(&x).unwrap().to_vec::<f32>().unwrap(),
        resnet.forward(&x).unwrap().to_vec::<f32>().unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();

    // A per-layer profile names each layer.
    profiler::reset();
    profiler::enable();
    mobilenet.forward(&x).unwrap();
    profiler::disable();
    let table = profiler::table();
    for row in [
        "features.3.conv.1.0 quantized::conv2d_relu",
        "features.3.skip_add quantized::add",
        "avgpool adaptive_avg_pool2d",
    ] {
        assert!(table.contains(row), "no `{row}` in\n{table}");
    }

    // The pass runs on a pool worker; a scope entered by the caller still
    // names its ops, on one thread or two.
    for threads in [1, 2] {
        profiler::reset();
        profiler::enable();
        qtensor::with_num_threads(threads, || {
            let _outer = profiler::scope("mine");
            mobilenet.forward(&x).unwrap();
        })
        .unwrap();
        profiler::disable();
        let table = profiler::table();
        let row = "mine.features.3.conv.1.0 quantized::conv2d_relu";
        assert!(table.contains(row), "{threads} thread(s): no `{row}` in\n{table}");
    }

    // The portable path (what a CPU without AVX2 runs) gives logits of the
    // same shape; the reference kernels round requantization ties in f64,
    // so they are compared by shape only.
    qtensor::set_isa_cap(Some(Isa::Portable));
    assert_eq!(qtensor::isa::cap(), Isa::Portable);
    let small = image(1, 32);
    assert_eq!(mobilenet.forward(&small).unwrap().sizes(), &[1, 1000]);
    qtensor::set_isa_cap(None);
}

#[test]
fn the_branching_networks_run_and_reload_their_state() {
    for (arch, side, keys) in [
        (
            "mobilenet_v3_large",
            64,
            ["features.4.block.2.fc1.weight", "features.4.block.2.skip_mul.scale", "classifier.1.scale"],
        ),
        ("shufflenet_v2_x1_0", 64, ["stage2.0.branch1.0.weight", "stage3.1.cat.zero_point", "conv5.0.weight"]),
        (
            "inception_v3",
            96,
            ["Mixed_5b.branch_pool.conv.weight", "Mixed_7c.myop2.scale", "Mixed_6e.branch7x7dbl_5.conv.weight"],
        ),
    ] {
        let x = image(1, side);
        let model = qtensor::models::by_name(arch, &mut WeightInit::new(3)).unwrap();
        let y = model.logits(&x).unwrap();
        assert_eq!(y.sizes(), &[1, 1000], "{arch}");
        let have = names(model.as_ref());
        for k in keys {
            assert!(have.iter().any(|n| n == k), "{arch} has no `{k}`");
        }
        let state: std::collections::HashMap<String, Tensor> = model.state_dict("").unwrap().into_iter().collect();
        let mut other = qtensor::models::by_name(arch, &mut WeightInit::new(4)).unwrap();
        other.load_state_dict(&state, "").unwrap();
        assert_eq!(other.logits(&x).unwrap().int_values().unwrap(), y.int_values().unwrap(), "{arch}");
    }
}

/// A fine-tuned head: a ResNet-18 state whose `fc` has 10 classes (the
/// first 10 rows of another state's 1000) builds from the state alone, and
/// its logits are exactly the 1000-class network's first 10.
#[test]
fn a_state_gives_its_own_class_count_and_nothing_random() {
    use qtensor::models::{from_state, Skeleton};
    use std::collections::HashMap;
    let x = image(1, 64);
    let full: HashMap<String, Tensor> =
        resnet18(&mut WeightInit::new(5)).unwrap().state_dict("").unwrap().into_iter().collect();
    let mut ten = full.clone();
    let rows = |t: &Tensor| qtensor::ops::slice(t, 0, Some(0), Some(10), 1).unwrap().contiguous().unwrap();
    ten.insert("fc.weight".into(), rows(&full["fc.weight"]));
    ten.insert("fc.bias".into(), rows(&full["fc.bias"]));
    let logits_full = from_state("resnet18", &full).unwrap().logits(&x).unwrap();
    let logits_ten = from_state("resnet18", &ten).unwrap().logits(&x).unwrap();
    assert_eq!(logits_ten.sizes(), &[1, 10]);
    let first_ten = qtensor::ops::slice(&logits_full, 1, Some(0), Some(10), 1).unwrap();
    assert_eq!(logits_ten.int_values().unwrap(), first_ten.int_values().unwrap());
    assert_eq!(logits_ten.q_scale().unwrap(), logits_full.q_scale().unwrap());

    // The state round-trips, key for key.
    let back: HashMap<String, Tensor> =
        from_state("resnet18", &ten).unwrap().state_dict("").unwrap().into_iter().collect();
    let mut keys: Vec<&String> = back.keys().collect();
    keys.sort();
    let mut want: Vec<&String> = ten.keys().collect();
    want.sort();
    assert_eq!(keys, want);

    // A key the network does not have is an error naming it, and so is a
    // missing one.
    let mut extra = ten.clone();
    extra.insert("fc.extra".into(), Tensor::scalar(1.0).unwrap());
    let e = from_state("resnet18", &extra).err().unwrap().to_string();
    assert!(e.contains("fc.extra"), "{e}");
    let mut missing = ten;
    missing.remove("layer3.1.conv2.weight");
    let e = from_state("resnet18", &missing).err().unwrap().to_string();
    assert!(e.contains("layer3.1.conv2.weight"), "{e}");

    // A skeleton holds no weights: running it says so.
    let e = qtensor::models::by_name("resnet18", &mut Skeleton).unwrap().logits(&x).err().unwrap().to_string();
    assert!(e.contains("no weights"), "{e}");
}
