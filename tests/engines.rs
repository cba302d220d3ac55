//! Whose integers: networks exported by PyTorch under an engine and an
//! input range (`tests/python/export_torchvision.py --engine --range`),
//! run by qtensor under the matching engine (`qtensor::set_engine`); the
//! logits must be PyTorch's, integer for integer.
//!
//! The engine is a process-wide setting, so the tests take turns.
//! Needs python3 with torch and torchvision (`.ci/run` installs them);
//! without them the test says so and passes, except under `CI=true`.

mod common;

use common::Export;
use qtensor::models::run_checkpoint;
use qtensor::Engine;
use std::collections::HashMap;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The engine is a process-wide setting: the tests here take turns.
static ENGINE: Mutex<()> = Mutex::new(());

/// Exports `archs` with the script's `options` (and `env`), or `None`
/// (with a message) where PyTorch is missing and this is not CI.
fn export(tag: &str, archs: &[&str], options: &[&str], env: &[(&str, &str)]) -> Option<Export> {
    let archs = archs.join(",");
    let args: Vec<&str> = std::iter::once(archs.as_str()).chain(options.iter().copied()).collect();
    common::python_export("export_torchvision.py", &format!("engines-{tag}"), &args, env)
}

/// Runs both exported inputs of `arch` under `engine` and returns the
/// share of logits equal to PyTorch's, per input.
fn compare(export: &Export, arch: &str, engine: Engine) -> Vec<(String, usize, usize)> {
    qtensor::set_engine(engine);
    let want: HashMap<String, qtensor::Tensor> =
        qtensor::load(export.file(&format!("{arch}.io.safetensors"))).unwrap().into_iter().collect();
    let mut out = Vec::new();
    for suffix in ["", "2"] {
        let input = export.scratch(&format!("{arch}.input{suffix}.safetensors"));
        qtensor::save(&input, &[("input", &want[&format!("input{suffix}")])]).unwrap();
        let run = run_checkpoint(arch, &export.file(&format!("{arch}.pt")), &input).unwrap();
        let expected = want[&format!("output_int{suffix}")].int_values().unwrap();
        let got = run.logits.int_values().unwrap();
        let same = got.iter().zip(&expected).filter(|(a, b)| a == b).count();
        out.push((format!("{arch} input{suffix} under {engine}"), same, expected.len()));
    }
    out
}

/// What PyTorch reports of the machine that runs it (the host, also when
/// this test runs under qemu): AVX-512 VNNI, and AMX.
fn pytorch_cpu() -> (bool, bool) {
    static HOST: OnceLock<(bool, bool)> = OnceLock::new();
    *HOST.get_or_init(|| {
        let probe = "import torch; print(int(torch.cpu._is_vnni_supported()), int(torch.cpu._is_amx_tile_supported()))";
        let out = Command::new("python3").args(["-c", probe]).output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
        (text.starts_with('1'), text == "1 1")
    })
}

/// PyTorch's fbgemm engine on the host: its VNNI kernels, or without
/// AVX-512 VNNI (Zen 2 and 3, Intel before Ice Lake) the kernels whose
/// GEMMs sum int16 pairs with saturation: qtensor's `fbgemm-avx2`.
fn pytorch_fbgemm_engine() -> Engine {
    match pytorch_cpu() {
        (true, _) => Engine::Fbgemm,
        (false, _) => Engine::FbgemmAvx2,
    }
}

/// PyTorch's x86 engine on the host: oneDNN's AMX kernels, its AVX-512
/// VNNI ones, or, without VNNI, fbgemm's for every conv.
fn pytorch_x86_engine() -> Engine {
    match pytorch_cpu() {
        (true, true) => Engine::X86Amx,
        (true, false) => Engine::X86Vnni,
        (false, _) => Engine::FbgemmAvx2,
    }
}

/// PyTorch's x86 engine with oneDNN capped to its AVX-512 VNNI kernels
/// (`ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI`), which an AMX CPU would not
/// choose by itself: qtensor's `x86-vnni`.
fn pytorch_x86_vnni_engine() -> Engine {
    match pytorch_x86_engine() {
        Engine::FbgemmAvx2 => Engine::FbgemmAvx2,
        _ => Engine::X86Vnni,
    }
}

/// One exported configuration: the script's options, its environment,
/// and the engine whose integers it must give.
struct Config {
    tag: &'static str,
    options: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    engine: fn() -> Engine,
}

const CONFIGS: &[Config] = &[
    // Inputs 2.5x outside the calibrated range: fbgemm's depthwise int16
    // pair sums saturate (MobileNetV2: 20% of logits equal before), and
    // without VNNI its GEMMs' too (every network 14-54% before).
    Config { tag: "fbgemm-out", options: &["--range", "out"], env: &[], engine: pytorch_fbgemm_engine },
    Config { tag: "fbgemm-in", options: &[], env: &[], engine: pytorch_fbgemm_engine },
    // PyTorch's default engine: oneDNN's rounding where it takes a conv.
    Config { tag: "x86-in", options: &["--engine", "x86"], env: &[], engine: pytorch_x86_engine },
    Config { tag: "x86-out", options: &["--engine", "x86", "--range", "out"], env: &[], engine: pytorch_x86_engine },
    Config {
        tag: "x86-vnni",
        options: &["--engine", "x86"],
        env: &[("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI")],
        engine: pytorch_x86_vnni_engine,
    },
    // Per-tensor weights (`default_qconfig`): fbgemm's fused bias.
    Config {
        tag: "fbgemm-per-tensor-out",
        options: &["--weights", "per_tensor", "--range", "out"],
        env: &[],
        engine: pytorch_fbgemm_engine,
    },
    Config {
        tag: "x86-per-tensor",
        options: &["--weights", "per_tensor", "--engine", "x86"],
        env: &[],
        engine: pytorch_x86_engine,
    },
];

/// Exports `archs` under each of `configs` and compares every logit.
fn check(archs: &[&str], configs: &[&Config]) {
    let _turn = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let mut results = Vec::new();
    for config in configs {
        let Some(export) = export(config.tag, archs, config.options, config.env) else { return };
        let engine = (config.engine)();
        eprintln!("{}: compared under qtensor's {engine} engine", config.tag);
        for arch in archs {
            results.extend(compare(&export, arch, engine));
        }
    }
    qtensor::set_engine(Engine::Exact);
    for (label, same, total) in &results {
        eprintln!("{label}: {same} of {total} logits equal PyTorch's");
    }
    for (label, same, total) in results {
        assert_eq!(same, total, "{label}: {same} of {total} logits equal PyTorch's");
    }
}

/// MobileNetV2 out of range under fbgemm and with per-tensor weights,
/// ResNet-18 under x86 (also as qtensor's `x86` reads this CPU); and the
/// engines differ where they should.
#[test]
fn each_engine_gives_pytorchs_integers() {
    check(&["mobilenet_v2"], &[&CONFIGS[0], &CONFIGS[1], &CONFIGS[5]]);
    check(&["resnet18"], &[&CONFIGS[2]]);
    // qtensor's own `x86` reads this CPU as PyTorch does: on the machine
    // that runs both (not under qemu), it gives PyTorch's x86 integers,
    // inside the range and outside it.
    if cfg!(target_arch = "x86_64") {
        let here = Config { tag: "x86-here", options: CONFIGS[3].options, env: &[], engine: || Engine::X86 };
        check(&["resnet18"], &[&here]);
    }
    let _turn = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    // Without the int16 limit, MobileNetV2's out-of-range logits differ.
    if let Some(export) = export("exact", &["mobilenet_v2"], CONFIGS[0].options, &[]) {
        let exact = compare(&export, "mobilenet_v2", Engine::Exact);
        assert!(exact.iter().any(|(_, same, total)| same < total), "{exact:?}");
    }
    // fbgemm's rounding is not oneDNN's.
    if matches!(pytorch_x86_engine(), Engine::X86Amx | Engine::X86Vnni) {
        if let Some(export) = export("x86-vs-fbgemm", &["resnet18"], CONFIGS[2].options, &[]) {
            let fbgemm = compare(&export, "resnet18", Engine::Fbgemm);
            assert!(fbgemm.iter().any(|(_, same, total)| same < total), "{fbgemm:?}");
        }
    }
    qtensor::set_engine(Engine::Exact);
}

/// torchvision's seven networks under every configuration, in release
/// builds (`.ci/run` runs it; a debug build takes minutes per network).
#[test]
#[cfg(not(debug_assertions))]
fn every_network_under_every_engine() {
    let archs = qtensor::models::ARCHITECTURES;
    check(&archs, &CONFIGS.iter().collect::<Vec<_>>());
}

/// The exact sums of a conv (NCHW, no padding), per output.
fn exact_sums(
    x: &[i64],
    [n, c, h, w]: [usize; 4],
    wt: &[i64],
    [oc, icg, kh, kw]: [usize; 4],
    groups: usize,
) -> Vec<i64> {
    let (oh, ow) = (h - kh + 1, w - kw + 1);
    let mut out = Vec::new();
    for img in 0..n {
        for o in 0..oc {
            let g = o / (oc / groups);
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = 0;
                    for i in 0..icg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let xi = x[((img * c + g * icg + i) * h + y + ky) * w + xo + kx];
                                acc += xi * wt[((o * icg + i) * kh + ky) * kw + kx];
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}

/// fbgemm's grouped conv with 2 channels per group was measured wrong by
/// up to 255 steps on some CPUs; qtensor's sums are exact under every
/// engine, and only the engine's requantization applies.
#[test]
fn grouped_convs_sum_exactly_under_every_engine() {
    let _turn = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let (n, c, h, w, groups) = (1, 8, 6, 7, 4);
    let (sx, zx, sy, zy) = (0.03, 17i64, 0.05, 60i64);
    let xi: Vec<u8> = (0..n * c * h * w).map(|i| ((i * 97 + 13) % 256) as u8).collect();
    let wi: Vec<i8> = (0..c * 2 * 9).map(|i| ((i * 53 + 7) % 256) as u8 as i8).collect();
    let scales: Vec<f64> = (0..c).map(|i| 0.002 + 0.0007 * i as f64).collect();
    let x = qtensor::ops::_make_per_tensor_quantized_tensor(
        &qtensor::Tensor::from_slice(&xi, &[n, c, h, w]).unwrap(),
        sx,
        zx,
    )
    .unwrap();
    let wq = qtensor::Tensor::from_int_repr(
        &qtensor::Tensor::from_slice(&wi, &[c, 2, 3, 3]).unwrap(),
        &qtensor::Quantizer::per_channel(scales.clone(), vec![0; c], 0, qtensor::DType::QInt8).unwrap(),
    )
    .unwrap();
    let bias: Vec<f32> = (0..c).map(|i| 0.3 * i as f32 - 1.0).collect();
    let b = qtensor::Tensor::from_slice(&bias, &[c]).unwrap();
    let centered: Vec<i64> = xi.iter().map(|&v| v as i64 - zx).collect();
    let sums =
        exact_sums(&centered, [n, c, h, w], &wi.iter().map(|&v| v as i64).collect::<Vec<_>>(), [c, 2, 3, 3], groups);
    let plane = (h - 2) * (w - 2);
    for engine in [Engine::Exact, Engine::Fbgemm, Engine::X86Vnni, Engine::X86Amx] {
        qtensor::set_engine(engine);
        let y = qtensor::ops::quantized::conv2d(&x, &wq, Some(&b), &[1, 1], &[0, 0], &[1, 1], groups as i64, sy, zy)
            .unwrap()
            .int_values()
            .unwrap();
        let want: Vec<i64> = sums
            .iter()
            .enumerate()
            .map(|(i, &acc)| {
                let o = (i / plane) % c;
                match engine {
                    // At most 100 groups and symmetric weights: oneDNN.
                    Engine::X86Vnni | Engine::X86Amx => {
                        qtensor::numerics::OneDnnRequant::new(sx, scales[o], bias[o], sy, engine == Engine::X86Amx)
                            .apply(acc, zy, 0, 255)
                    }
                    _ => qtensor::numerics::AccRequant::new(sx, scales[o], bias[o], sy).apply(acc, zy, 0, 255),
                }
            })
            .collect();
        assert_eq!(y, want, "{engine}");
    }
    qtensor::set_engine(Engine::Exact);
}

/// Under `fbgemm-avx2`, a linear (rows in several tasks) and a grouped,
/// padded conv whose inputs saturate int16 pairs: every kernel gives the
/// reference kernel's integers on one thread and on three, and those
/// differ from the exact engine's.
#[test]
fn saturating_linears_and_convs_in_tasks_match_the_reference() {
    use qtensor::Value;
    let _turn = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let quint8 = |ints: &[u8], shape: &[usize], zp: i64| {
        let t = qtensor::Tensor::from_slice(ints, shape).unwrap();
        qtensor::ops::_make_per_tensor_quantized_tensor(&t, 0.05, zp).unwrap()
    };
    let qint8 = |rows: usize, shape: &[usize]| {
        let len: usize = shape.iter().product();
        // Every third weight 127, so that activations near 255 saturate.
        let ints: Vec<i8> = (0..len).map(|i| if i % 3 == 0 { 127 } else { ((i * 53 + 7) % 256) as u8 as i8 }).collect();
        let scales: Vec<f64> = (0..rows).map(|i| 0.001 + 0.0003 * i as f64).collect();
        let zero_points: Vec<i64> = (0..rows as i64).map(|i| i % 3 - 1).collect();
        let q = qtensor::Quantizer::per_channel(scales, zero_points, 0, qtensor::DType::QInt8).unwrap();
        qtensor::Tensor::from_int_repr(&qtensor::Tensor::from_slice(&ints, shape).unwrap(), &q).unwrap()
    };
    let (m, k, n) = (40, 37, 20);
    let x: Vec<u8> = (0..m * k).map(|i| (150 + i * 37 % 106) as u8).collect();
    let linear = [
        Value::from(&quint8(&x, &[m, k], 4)),
        Value::from(&qint8(n, &[n, k])),
        Value::None,
        Value::Float(0.4),
        Value::Int(100),
    ];
    let (c, h, w) = (12, 9, 10);
    let xc: Vec<u8> = (0..c * h * w).map(|i| (120 + i * 29 % 136) as u8).collect();
    let conv = [
        Value::from(&quint8(&xc, &[2, c, h, w / 2], 9)),
        Value::from(&qint8(8, &[8, c / 2, 3, 3])),
        Value::None,
        Value::IntList(vec![1, 1].into()),
        Value::IntList(vec![1, 1].into()),
        Value::IntList(vec![1, 1].into()),
        Value::Int(2),
        Value::Float(0.3),
        Value::Int(90),
    ];
    for (op, args) in [("quantized::linear", &linear[..]), ("quantized::conv2d", &conv[..])] {
        let kernels = qtensor::kernel_checks::supported_kernels(op, qtensor::DType::QUInt8);
        let reference = kernels.iter().find(|k| k.name.starts_with("reference")).expect("a reference kernel");
        let run = |kernel: &qtensor::KernelDescriptor, engine| {
            qtensor::set_engine(engine);
            (kernel.func)(args).unwrap().into_tensor().unwrap().int_values().unwrap()
        };
        let want = run(reference, Engine::FbgemmAvx2);
        assert_ne!(want, run(reference, Engine::Exact), "{op}: the inputs saturate");
        for threads in [1, 3] {
            for kernel in &kernels {
                let got = qtensor::with_num_threads(threads, || run(kernel, Engine::FbgemmAvx2)).unwrap();
                assert_eq!(got, want, "{op}, {threads} thread(s), kernel {}", kernel.name);
            }
        }
    }
    qtensor::set_engine(Engine::Exact);
}

/// PyTorch's qint32 `mul` multiplies `(a - za)(b - zb)` in int32, which
/// wraps; qtensor keeps the product exact and applies PyTorch's f32
/// requantization to it.
#[test]
fn qint32_products_beyond_int32_stay_exact() {
    let ints = qtensor::Tensor::from_slice(&[1i32 << 20, -(1 << 21), 3], &[3]).unwrap();
    let a = qtensor::ops::_make_per_tensor_quantized_tensor(&ints, 0.5, 0).unwrap();
    let b = qtensor::ops::_make_per_tensor_quantized_tensor(&ints, 0.25, 0).unwrap();
    let y = qtensor::ops::quantized::mul(&a, &b, 1024.0, 7).unwrap().int_values().unwrap();
    // 2^40 * 0.125 / 1024 = 2^27; 2^42 * 0.125 / 1024 = 2^29; 9 * 0.125 / 1024 rounds to 0.
    assert_eq!(y, vec![(1 << 27) + 7, (1 << 29) + 7, 7]);
}
