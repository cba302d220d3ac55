//! Frozen TorchScript files exported by PyTorch
//! (`tests/python/export_torchscript.py`), run by `qtensor::jit` and by
//! `qtensor run`: every quantized output must equal PyTorch's integers, and
//! every float output PyTorch's value.
//!
//! Needs python3 with torch and torchvision (`.ci/run` installs them).
//! Without them the test says so and passes, except under `CI=true`, where
//! a comparison that cannot run fails.

mod common;

use common::Export;
use qtensor::{Tensor, Value};
use std::collections::HashMap;
use std::process::Command;

/// The models saved by script+freeze and trace+freeze: torchvision's seven
/// quantized networks, two FX-quantized float networks, a small eager-mode
/// model with a 10-class head and a float island, and one with
/// interpolation (loops in its scripted form) and upsampling.
const MODELS: &[&str] = &[
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "shufflenet_v2_x1_0",
    "googlenet",
    "inception_v3",
    "fx_resnet18",
    "fx_mobilenet_v3_small",
    "small_eager",
    "small_upsample",
];

/// Exports `models` (the directory named after `tag`), or `None` (with a
/// message) where PyTorch is missing and this is not CI.
fn export(tag: &str, models: &[&str]) -> Option<Export> {
    common::python_export("export_torchscript.py", &format!("jit-{tag}"), &[&models.join(",")], &[])
}

/// The flattened tensors of a result (`output`, `output.0`, ...).
fn outputs(v: &Value) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    qtensor::jit::flatten_outputs("output", v, &mut out).unwrap();
    out
}

/// Compares our outputs for input `i` with PyTorch's in `want`: float
/// outputs within `float_bound` of the largest (asserted here); returns
/// (identical quantized values, their count).
fn compare(
    label: &str,
    ours: &[(String, Tensor)],
    want: &HashMap<String, Tensor>,
    i: usize,
    float_bound: f64,
) -> (usize, usize) {
    let (mut same, mut total) = (0, 0);
    let mut compared = 0;
    for (name, got) in ours {
        let key = format!("output.{i}{}", &name["output".len()..]);
        if let Some(ints) = want.get(&format!("{key}.int")) {
            assert_eq!(got.sizes(), ints.sizes(), "{label} {name}");
            assert_eq!(got.q_scale().unwrap(), want[&format!("{key}.scale")].item().unwrap(), "{label} {name}");
            assert_eq!(
                got.q_zero_point().unwrap() as f64,
                want[&format!("{key}.zero_point")].item().unwrap(),
                "{label} {name}"
            );
            let (g, w) = (got.int_values().unwrap(), ints.int_values().unwrap());
            same += g.iter().zip(&w).filter(|(a, b)| a == b).count();
            total += w.len();
        } else {
            let w = want.get(&key).unwrap_or_else(|| panic!("{label}: PyTorch has no {key}"));
            assert_eq!(got.sizes(), w.sizes(), "{label} {name}");
            let (g, w) = (got.real_values().unwrap(), w.real_values().unwrap());
            let largest = w.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
            let worst = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / largest;
            // Float outputs after the last dequantize are PyTorch's up to
            // the f32 rounding of a softmax (the float islands); a
            // dequantized output is exact when its integers are (one step
            // is far above the bound).
            assert!(worst <= float_bound, "{label} {name}: float outputs differ by {worst:e} of the largest");
        }
        compared += 1;
    }
    assert!(compared > 0, "{label}: nothing compared");
    (same, total)
}

fn check_model(export: &Export, name: &str, mode: &str, inputs: &[usize], float_bound: f64) {
    let label = format!("{name}.{mode}");
    let model = qtensor::jit::load(export.file(&format!("{label}.pt"))).unwrap_or_else(|e| panic!("{label}: {e}"));
    let want: HashMap<String, Tensor> =
        qtensor::load(export.file(&format!("{label}.io.safetensors"))).unwrap().into_iter().collect();
    for &i in inputs {
        let x = want[&format!("input.{i}")].clone();
        let y = model.forward(&[Value::Tensor(x.clone())]).unwrap_or_else(|e| panic!("{label} input {i}: {e}"));
        let (same, total) = compare(&label, &outputs(&y), &want, i, float_bound);
        assert_eq!(same, total, "{label} input {i} {:?}: {same} of {total} outputs equal PyTorch's", x.sizes());
    }
}

#[test]
fn frozen_torchscript_models_give_pytorchs_outputs() {
    let Some(export) = export("models", MODELS) else { return };
    for name in MODELS {
        for mode in ["script", "trace"] {
            // Batch 1 at the network's square size, and batch 2
            // non-square (windows whose averages tie, layouts that
            // PyTorch's convs turn channels-last).
            check_model(&export, name, mode, &[0, 1], 1e-6);
        }
    }
}

/// Dynamically quantized models: a 2-layer LSTM with a Linear head
/// (scripted and traced) and a TransformerEncoder (traced: PyTorch cannot
/// script it), within 1e-4 of PyTorch's largest output (their activations
/// are quantized per call from their range, and the float ops between
/// round in another order).
#[test]
fn dynamically_quantized_models_are_within_1e4() {
    let Some(export) = export("dynamic", &["lstm_dynamic", "transformer_dynamic"]) else { return };
    check_model(&export, "lstm_dynamic", "script", &[0, 1], 1e-4);
    check_model(&export, "lstm_dynamic", "trace", &[0, 1], 1e-4);
    check_model(&export, "transformer_dynamic", "trace", &[0, 1], 1e-4);
    // The scripted LSTM's own input check: its message, formatted, comes
    // back as an error.
    let lstm = qtensor::jit::load(export.file("lstm_dynamic.script.pt")).unwrap();
    let flat = Tensor::from_vec(vec![0.5f32; 32], &[2, 16]).unwrap();
    let e = lstm.run(&flat).unwrap_err();
    assert!(
        matches!(&e, qtensor::Error::Raised { message, .. } if message == "input must have 3 dimensions, got 2"),
        "{e}"
    );
}

#[test]
fn qtensor_run_writes_pytorchs_outputs() {
    let Some(export) = export("cli", &["small_eager"]) else { return };
    let label = "small_eager.trace";
    let want: HashMap<String, Tensor> =
        qtensor::load(export.file(&format!("{label}.io.safetensors"))).unwrap().into_iter().collect();
    let input = export.scratch("in.safetensors");
    qtensor::save(&input, &[("input", &want["input.1"])]).unwrap();
    let out = export.scratch("out.safetensors");
    let run = Command::new(env!("CARGO_BIN_EXE_qtensor"))
        .arg("run")
        .arg(export.file(&format!("{label}.pt")))
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "qtensor run failed: {}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("output.0: quint8 [2, 10]") && stdout.contains(" ms "), "{stdout}");
    let ours: Vec<(String, Tensor)> = qtensor::load(&out).unwrap();
    let (same, total) = compare(label, &ours, &want, 1, 1e-6);
    assert_eq!(same, total);
    let inspect = Command::new(env!("CARGO_BIN_EXE_qtensor"))
        .arg("inspect")
        .arg(export.file(&format!("{label}.pt")))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("quantized::conv2d_relu") && text.contains("Conv2dPackedParamsBase weight qint8"), "{text}");
}
