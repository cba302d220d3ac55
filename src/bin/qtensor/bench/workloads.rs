//! The standard performance workloads of `docs/benchmarks.md`, built the way the
//! peers' scripts build them, for `qtensor bench` and the criterion benches.

use super::{time, Timing};
use qtensor::{ops, registry, DType, MemoryFormat, Result, Tensor, Value};

/// One workload: a name and a call to time.
pub struct Workload {
    /// The name from docs/benchmarks.md.
    pub name: &'static str,
    /// Calls per timed run (per-call overhead workloads repeat the call).
    pub inner: usize,
    /// The timed call.
    pub run: Box<dyn Fn() -> Result<()>>,
}

const M16: usize = 16 * 1024 * 1024;

/// A deterministic generator of standard normal (`randn`) and uniform
/// (`rand`) values.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn randn(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let (u, v) = (self.next(), self.next());
                ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
            })
            .collect()
    }

    fn rand(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next() as f32).collect()
    }
}

fn q8(g: &mut Gen, sizes: &[usize], scale: f64, zp: i64) -> Result<Tensor> {
    let n = sizes.iter().product();
    ops::quantize_per_tensor(&Tensor::from_vec(g.randn(n), sizes)?, scale, zp, DType::QUInt8)
}

fn per_channel_weight(g: &mut Gen, sizes: &[usize]) -> Result<Tensor> {
    let n: usize = sizes.iter().product();
    let w = Tensor::from_vec(g.randn(n).iter().map(|v| v * 0.05).collect(), sizes)?;
    let scales = Tensor::from_vec(vec![0.002f64; sizes[0]], &[sizes[0]])?;
    let zps = Tensor::from_vec(vec![0i64; sizes[0]], &[sizes[0]])?;
    ops::quantize_per_channel(&w, &scales, &zps, 0, DType::QInt8)
}

fn bias(g: &mut Gen, n: usize) -> Result<Tensor> {
    Tensor::from_vec(g.randn(n), &[n])
}

fn workload(name: &'static str, run: impl Fn() -> Result<Tensor> + 'static) -> Workload {
    Workload { name, inner: 1, run: Box::new(move || run().map(|_| ())) }
}

/// The workloads whose name contains `filter` (the op workloads, then the
/// networks `model/{resnet18,mobilenet_v2}/b{1,8}`); inputs are built here, once,
/// outside any timing (and only for the selected workloads).
pub fn workloads(filter: &str) -> Result<Vec<Workload>> {
    let mut g = Gen(0x5EED);
    let mut out = Vec::new();
    let want = |name: &str| name.contains(filter);
    if want("quantize_per_tensor/16M/quint8") {
        let x = Tensor::from_vec(g.randn(M16), &[M16])?;
        out.push(workload("quantize_per_tensor/16M/quint8", move || {
            ops::quantize_per_tensor(&x, 0.02, 3, DType::QUInt8)
        }));
    }
    if want("dequantize/16M/quint8") {
        let q = q8(&mut g, &[M16], 0.02, 3)?;
        out.push(workload("dequantize/16M/quint8", move || ops::dequantize(&q)));
    }
    if want("quantize_per_channel/4096x4096/qint8/axis0") {
        let x = Tensor::from_vec(g.randn(4096 * 4096), &[4096, 4096])?;
        let sc = Tensor::from_vec((0..4096).map(|_| g.next() * 0.02 + 0.001).collect::<Vec<f64>>(), &[4096])?;
        let zp = Tensor::from_vec(vec![0i64; 4096], &[4096])?;
        out.push(workload("quantize_per_channel/4096x4096/qint8/axis0", move || {
            ops::quantize_per_channel(&x, &sc, &zp, 0, DType::QInt8)
        }));
    }
    if want("add/16M/quint8") || want("relu/16M/quint8") {
        let a = q8(&mut g, &[M16], 0.02, 3)?;
        let b = q8(&mut g, &[M16], 0.03, 5)?;
        if want("add/16M/quint8") {
            let a = a.clone();
            out.push(workload("add/16M/quint8", move || ops::quantized::add(&a, &b, 0.05, 4)));
        }
        if want("relu/16M/quint8") {
            out.push(workload("relu/16M/quint8", move || ops::relu(&a)));
        }
    }
    if want("cat/2x8M/quint8/requant") {
        let c1 = q8(&mut g, &[4096, 2048], 0.02, 3)?;
        let c2 = q8(&mut g, &[4096, 2048], 0.03, 5)?;
        let xs = vec![c1, c2];
        out.push(workload("cat/2x8M/quint8/requant", move || ops::quantized::cat(&xs, 0, Some(0.05), Some(4))));
    }
    for (name, m, k, n) in
        [("linear/1x4096x4096/per_channel", 1, 4096, 4096), ("linear/128x1024x1024/per_channel", 128, 1024, 1024)]
    {
        if !want(name) {
            continue;
        }
        let xq = ops::quantize_per_tensor(&Tensor::from_vec(g.rand(m * k), &[m, k])?, 1.0 / 127.0, 0, DType::QUInt8)?;
        let w = per_channel_weight(&mut g, &[n, k])?;
        let b = bias(&mut g, n)?;
        // Prepacking happens once, outside the timing, as PyTorch's prepack does.
        qtensor::kernels::prepack_linear(&w)?;
        out.push(workload(name, move || ops::quantized::linear(&xq, &w, Some(&b), 0.1, 64)));
    }
    if want("linear_dynamic/16x1024x4096") {
        let xf = Tensor::from_vec(g.randn(16 * 1024), &[16, 1024])?;
        let wf = Tensor::from_vec(g.randn(4096 * 1024).iter().map(|v| v * 0.05).collect(), &[4096, 1024])?;
        let w = ops::quantize_per_tensor(&wf, 0.002, 0, DType::QInt8)?;
        let b = bias(&mut g, 4096)?;
        qtensor::kernels::prepack_linear(&w)?;
        out.push(workload("linear_dynamic/16x1024x4096", move || {
            ops::quantized::linear_dynamic(&xf, &w, Some(&b), false)
        }));
    }
    // (name, channels in, side, groups, kernel, stride, channels out)
    let convs = [
        ("conv2d/1x64x56x56/k3/oc64", 64, 56, 1, 3, 1, 64),
        ("conv2d_depthwise/1x128x56x56/k3", 128, 56, 128, 3, 1, 128),
        ("conv2d_depthwise/1x32x112x112/k3", 32, 112, 32, 3, 1, 32),
        ("conv2d_stem/1x3x224x224/k7s2/oc64", 3, 224, 1, 7, 2, 64),
        ("conv2d_pointwise/1x16x112x112/oc96", 16, 112, 1, 1, 1, 96),
        ("conv2d_pointwise/1x32x112x112/oc16", 32, 112, 1, 1, 1, 16),
    ];
    for (name, c, side, groups, k, stride, oc) in convs {
        if !want(name) {
            continue;
        }
        // Channels-last, as PyTorch's baseline times it (and as a network
        // keeps its activations).
        let x = ops::quantize_per_tensor(
            &Tensor::from_vec(g.rand(c * side * side), &[1, c, side, side])?,
            1.0 / 127.0,
            0,
            DType::QUInt8,
        )?
        .contiguous_in(MemoryFormat::ChannelsLast)?;
        let w = per_channel_weight(&mut g, &[oc, c / groups, k, k])?;
        let b = bias(&mut g, oc)?;
        qtensor::kernels::prepack_conv2d(&w, groups as i64)?;
        let (stride, pad) = (stride as i64, (k / 2) as i64);
        out.push(workload(name, move || {
            ops::quantized::conv2d(&x, &w, Some(&b), &[stride; 2], &[pad; 2], &[1, 1], groups as i64, 0.1, 64)
        }));
    }
    if want("max_pool2d/1x64x112x112/k3s2p1") {
        let x = q8(&mut g, &[1, 64, 112, 112], 0.02, 3)?.contiguous_in(MemoryFormat::ChannelsLast)?;
        out.push(workload("max_pool2d/1x64x112x112/k3s2p1", move || {
            ops::max_pool2d(&x, &[3, 3], &[2, 2], &[1, 1], &[1, 1], false)
        }));
    }
    for &(name, arch, batch) in &MODEL_WORKLOADS {
        if !want(name) {
            continue;
        }
        let model = qtensor::models::by_name(arch, &mut qtensor::models::WeightInit::new(0))?;
        let side = if arch == "inception_v3" { 299 } else { 224 };
        let x = Tensor::from_vec(g.randn(batch * 3 * side * side), &[batch, 3, side, side])?;
        out.push(workload(name, move || model.forward(&x)));
    }
    for &(name, file) in &JIT_WORKLOADS {
        if !want(name) {
            continue;
        }
        let (arch, batch) = (file.trim_end_matches(".script.pt"), 1);
        let path = match torchscript_file(file) {
            Ok(p) => p,
            // Asked for by name: say how to make the file. Part of a
            // broader selection: leave these out, saying so.
            Err(e) if filter.starts_with("jit") || filter.starts_with("model-ckpt") => return Err(e),
            Err(e) => {
                eprintln!("leaving out {name}: {e}");
                continue;
            }
        };
        let x = Tensor::from_vec(g.randn(batch * 3 * 224 * 224), &[batch, 3, 224, 224])?;
        if name.starts_with("jit/") {
            let module = qtensor::jit::load(&path)?;
            out.push(workload(name, move || module.run(&x)));
        } else {
            let net = qtensor::models::from_torch_checkpoint(arch, path.with_file_name(format!("{arch}.state.pt")))?;
            out.push(workload(name, move || net.forward(&x)));
        }
    }
    if want("dispatch/add/1elem") {
        let args = vec![
            Value::from(&q8(&mut g, &[1], 0.02, 3)?),
            Value::from(&q8(&mut g, &[1], 0.02, 3)?),
            Value::Float(0.05),
            Value::Int(4),
        ];
        out.push(Workload {
            name: "dispatch/add/1elem",
            inner: 1000,
            run: Box::new(move || {
                for _ in 0..1000 {
                    std::hint::black_box(registry().call("quantized::add", &args)?);
                }
                Ok(())
            }),
        });
    }
    Ok(out)
}

/// The network workloads: name (as docs/benchmarks.md spells it),
/// architecture and batch size; inputs are 224x224 (299x299 for
/// Inception-v3).
const MODEL_WORKLOADS: [(&str, &str, usize); 9] = [
    ("model/resnet18/b1", "resnet18", 1),
    ("model/resnet18/b8", "resnet18", 8),
    ("model/resnet50/b1", "resnet50", 1),
    ("model/mobilenet_v2/b1", "mobilenet_v2", 1),
    ("model/mobilenet_v2/b8", "mobilenet_v2", 8),
    ("model/mobilenet_v3_large/b1", "mobilenet_v3_large", 1),
    ("model/shufflenet_v2_x1_0/b1", "shufflenet_v2_x1_0", 1),
    ("model/googlenet/b1", "googlenet", 1),
    ("model/inception_v3/b1", "inception_v3", 1),
];

/// The TorchScript workloads, and qtensor::models on the same weights
/// (`model-ckpt/`): the interpreter's cost is the difference. Their files
/// come from `tests/python/export_torchscript.py`, in
/// `$QTENSOR_TORCHSCRIPT_DIR` (default `target/torchscript`).
const JIT_WORKLOADS: [(&str, &str); 4] = [
    ("jit/resnet18/b1", "resnet18.script.pt"),
    ("model-ckpt/resnet18/b1", "resnet18.script.pt"),
    ("jit/mobilenet_v2/b1", "mobilenet_v2.script.pt"),
    ("model-ckpt/mobilenet_v2/b1", "mobilenet_v2.script.pt"),
];

/// A file of the TorchScript workloads, or an error that says how to make it.
fn torchscript_file(file: &str) -> Result<std::path::PathBuf> {
    let dir = std::env::var("QTENSOR_TORCHSCRIPT_DIR").unwrap_or_else(|_| "target/torchscript".into());
    let path = std::path::Path::new(&dir).join(file);
    if path.exists() {
        return Ok(path);
    }
    Err(qtensor::Error::Io(format!(
        "{} is missing: make the TorchScript workloads' files with \
         `python3 tests/python/export_torchscript.py {dir} resnet18,mobilenet_v2` (needs torch and torchvision), \
         or set QTENSOR_TORCHSCRIPT_DIR",
        path.display()
    )))
}

/// One measured workload.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The workload.
    pub name: &'static str,
    /// Threads used.
    pub threads: usize,
    /// Per call.
    pub timing: Timing,
}

impl Measurement {
    /// The JSON line of docs/benchmarks.md.
    pub fn json(&self) -> String {
        serde_json::json!({
            "workload": self.name,
            "threads": self.threads,
            "median_s": self.timing.median.as_secs_f64(),
            "min_s": self.timing.min.as_secs_f64(),
        })
        .to_string()
    }
}

/// Times one workload: `reps` runs after a warm-up, per call.
pub fn measure(w: &Workload, threads: usize, reps: usize) -> Result<Measurement> {
    (w.run)()?;
    let t = time(reps, || (w.run)());
    let per = |d: std::time::Duration| d / w.inner as u32;
    Ok(Measurement { name: w.name, threads, timing: Timing { median: per(t.median), min: per(t.min) } })
}
