//! Per-layer profiles of every built-in network name each op's layer as
//! torchvision names its module. (Its own test binary: the profiler is
//! process-wide, and a test running beside this one would add its ops.)

use qtensor::models::{WeightInit, ARCHITECTURES};
use qtensor::{profiler, Tensor};

fn image(n: usize, side: usize) -> Tensor {
    let v: Vec<f32> = (0..n * 3 * side * side).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    Tensor::from_vec(v, &[n, 3, side, side]).unwrap()
}

/// Every op of every architecture's pass is profiled under a layer, and
/// each conv and linear under the name torchvision gives its module: the
/// name its weight is saved under.
#[test]
fn every_network_profiles_each_layer_under_its_torchvision_name() {
    for arch in ARCHITECTURES {
        let side = if arch == "inception_v3" { 96 } else { 64 };
        let model = qtensor::models::by_name(arch, &mut WeightInit::new(6)).unwrap();
        let weights: Vec<String> =
            model.state_dict("").unwrap().into_iter().map(|(n, _)| n).filter(|n| n.ends_with(".weight")).collect();
        profiler::reset();
        profiler::enable();
        let run = model.forward(&image(1, side));
        profiler::disable();
        run.unwrap();
        let rows = profiler::report();
        let mut convs_and_linears = 0;
        for row in &rows {
            let Some((layer, op)) = row.op.rsplit_once(' ') else {
                panic!("{arch}: `{}` ran outside every layer", row.op);
            };
            if op.starts_with("quantized::conv") || op.starts_with("quantized::linear") {
                convs_and_linears += 1;
                let weight = format!("{layer}.weight");
                assert!(weights.contains(&weight), "{arch}: `{op}` runs in `{layer}`, but no `{weight}` is saved");
            }
        }
        // Every saved weight's layer ran (and so was named) exactly once.
        assert_eq!(convs_and_linears, weights.len(), "{arch}: {rows:#?}");
    }
}
