//! torchvision's quantized networks, exported by PyTorch
//! (`tests/python/export_torchvision.py`) and run by qtensor from the
//! checkpoint: the quantized logits must be PyTorch's, integer for
//! integer. Skipped, with a message, where Python has no torch and
//! torchvision (`.ci/run` installs them).

mod common;

use qtensor::models::{run_checkpoint, ARCHITECTURES};
use std::collections::HashMap;

#[test]
fn every_architecture_gives_pytorchs_logits_exactly() {
    let archs = ARCHITECTURES.join(",");
    let Some(export) = common::python_export("export_torchvision.py", "torchvision", &[&archs], &[]) else { return };
    for arch in ARCHITECTURES {
        let io = export.file(&format!("{arch}.io.safetensors"));
        let want: HashMap<String, qtensor::Tensor> = qtensor::load(&io).unwrap().into_iter().collect();
        // Batch 1 at the network's size, then batch 2 non-square (windows
        // whose averages tie, which square inputs never reach).
        for suffix in ["", "2"] {
            let input = export.scratch(&format!("{arch}.input{suffix}.safetensors"));
            qtensor::save(&input, &[("input", &want[&format!("input{suffix}")])]).unwrap();
            let run = run_checkpoint(arch, &export.file(&format!("{arch}.pt")), &input).unwrap();
            let expected = &want[&format!("output_int{suffix}")];
            let label = format!("{arch} input{suffix} {:?}", want[&format!("input{suffix}")].sizes());
            assert_eq!(run.logits.sizes(), expected.sizes(), "{label}");
            assert_eq!(
                run.logits.q_scale().unwrap(),
                want[&format!("output_scale{suffix}")].item().unwrap(),
                "{label}"
            );
            let zero_point = want[&format!("output_zero_point{suffix}")].item().unwrap();
            assert_eq!(run.logits.q_zero_point().unwrap() as f64, zero_point, "{label}");
            let (got, expected) = (run.logits.int_values().unwrap(), expected.int_values().unwrap());
            let same = got.iter().zip(&expected).filter(|(a, b)| a == b).count();
            assert_eq!(same, expected.len(), "{label}: {same} of {} logits equal PyTorch's", expected.len());
        }
    }
}
