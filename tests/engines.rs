//! Whose integers: networks exported by PyTorch under an engine and an
//! input range (`tests/python/export_torchvision.py --engine --range`),
//! run by qtensor under the matching engine (`qtensor::set_engine`); the
//! logits must be PyTorch's, integer for integer.
//!
//! One test function, because the engine is a process-wide setting.
//! Needs python3 with torch and torchvision (`.ci/run` installs them);
//! without them the test says so and passes, except under `CI=true`.

use qtensor::models::run_checkpoint;
use qtensor::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Exports `archs` with the script's `options` into a fresh directory, or
/// `None` (with a message) where PyTorch is missing and this is not CI.
fn export(tag: &str, archs: &[&str], options: &[&str]) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("qtensor-engines-{tag}-{}", std::process::id()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/export_torchvision.py");
    let made = Command::new("python3").arg(script).arg(&dir).arg(archs.join(",")).args(options).output();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match made {
        Ok(o) if o.status.success() => Some(dir),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!ci && err.contains("No module named"), "the export script failed: {err}");
            eprintln!("not compared: PyTorch or torchvision is not installed");
            None
        }
        Err(e) => {
            assert!(!ci, "python3 is needed under CI=true: {e}");
            eprintln!("not compared: python3 is not available ({e})");
            None
        }
    }
}

/// Runs both exported inputs of `arch` under `engine` and returns the
/// share of logits equal to PyTorch's, per input.
fn compare(dir: &Path, arch: &str, engine: Engine) -> Vec<(String, usize, usize)> {
    qtensor::set_engine(engine);
    let want: HashMap<String, qtensor::Tensor> =
        qtensor::load(dir.join(format!("{arch}.io.safetensors"))).unwrap().into_iter().collect();
    let mut out = Vec::new();
    for suffix in ["", "2"] {
        let input = dir.join(format!("{arch}.input{suffix}.safetensors"));
        qtensor::save(&input, &[("input", &want[&format!("input{suffix}")])]).unwrap();
        let run = run_checkpoint(arch, &dir.join(format!("{arch}.pt")), &input).unwrap();
        let expected = want[&format!("output_int{suffix}")].int_values().unwrap();
        let got = run.logits.int_values().unwrap();
        let same = got.iter().zip(&expected).filter(|(a, b)| a == b).count();
        out.push((format!("{arch} input{suffix} under {engine}"), same, expected.len()));
    }
    out
}

/// PyTorch's x86 engine sends convs to oneDNN only on a CPU with AVX-512
/// VNNI; elsewhere it is fbgemm.
fn pytorch_x86_engine() -> Engine {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni") {
        return Engine::X86;
    }
    Engine::Fbgemm
}

#[test]
fn each_engine_gives_pytorchs_integers() {
    let mut results = Vec::new();
    // Inputs 2.5x outside the calibrated range: fbgemm's depthwise int16
    // pair sums saturate (MobileNetV2: 20% of logits equal before).
    let nets = ["mobilenet_v2", "mobilenet_v3_large", "resnet18"];
    if let Some(dir) = export("out", &nets, &["--range", "out"]) {
        for arch in nets {
            results.extend(compare(&dir, arch, Engine::Fbgemm));
        }
        // Without the int16 limit, MobileNetV2's logits differ.
        let exact = compare(&dir, "mobilenet_v2", Engine::Exact);
        assert!(exact.iter().any(|(_, same, total)| same < total), "{exact:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
    // PyTorch's default engine, x86: oneDNN's rounding for ResNet-18's convs.
    if let Some(dir) = export("x86", &["resnet18"], &["--engine", "x86"]) {
        let engine = pytorch_x86_engine();
        eprintln!("x86 export compared under qtensor's {engine} engine");
        results.extend(compare(&dir, "resnet18", engine));
        if engine == Engine::X86 {
            // fbgemm's rounding is not oneDNN's.
            let fbgemm = compare(&dir, "resnet18", Engine::Fbgemm);
            assert!(fbgemm.iter().any(|(_, same, total)| same < total), "{fbgemm:?}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    qtensor::set_engine(Engine::Exact);
    for (label, same, total) in &results {
        eprintln!("{label}: {same} of {total} logits equal PyTorch's");
    }
    for (label, same, total) in results {
        assert_eq!(same, total, "{label}: {same} of {total} logits equal PyTorch's");
    }
}
