//! The `qtensor` command line: `demo`, `run`, `inspect`, `ops`, `bench`, `model run` and `golden`.

mod bench;
mod demo;
mod report;

/// Where `qtensor golden` looks without arguments: the repository's golden
/// cases, relative to the working directory.
const DEFAULT_CASES_DIR: &str = "tests/golden/cases";

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "qtensor", version, about = "Quantized tensors with a c10-style operator dispatcher")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through the PyTorch quantized-tensor note, printing every step.
    Demo {
        /// Where to write the demo's safetensors file (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the registry: each op and, per (key, dtype), its kernels in priority order.
    Ops,
    /// Time the standard workloads (docs/benchmarks.md), or with --kernels each
    /// vectorized kernel against its reference kernel.
    Bench {
        /// Compare every vectorized kernel with its op's reference kernel instead.
        #[arg(long)]
        kernels: bool,
        /// Print one JSON object per workload: {"workload", "threads", "median_s", "min_s"};
        /// with --profile, one per profile row: {"layer", "op", "kernel", "calls", "per_run_s"}.
        #[arg(long)]
        json: bool,
        /// Threads for the kernels' parallel loops.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Elements per input (kernel comparison).
        #[arg(long, default_value_t = 1 << 22)]
        size: usize,
        /// Timed runs per kernel (the median is reported).
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Only cases whose name contains this.
        #[arg(long, default_value = "")]
        filter: String,
        /// Profile one workload (e.g. model/resnet18/b1) layer by layer
        /// through the Profiling layer instead of timing it.
        #[arg(long, value_name = "WORKLOAD")]
        profile: Option<String>,
    },
    /// Run a frozen TorchScript model (torch.jit.save of torch.jit.freeze):
    /// read its inputs from a safetensors file, print the result's shape and
    /// the time, and write the result.
    Run {
        /// The TorchScript file.
        model: PathBuf,
        /// A safetensors file with one tensor per forward() argument, named
        /// after it (or `input` when forward takes one).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the result: `output` for one tensor, `output.0`,
        /// `output.1`, ... for a tuple (quantized tensors with their qparams).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Threads for the kernels' parallel loops.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Print the time spent in each op.
        #[arg(long)]
        profile: bool,
        /// Time this many runs after a warm-up one and print their median.
        #[arg(long, default_value_t = 1)]
        reps: usize,
        /// Whose integers the quantized convs give: fbgemm, fbgemm-avx2, x86, x86-vnni, x86-amx or exact
        /// (default: QTENSOR_ENGINE, else exact; see docs/whose-integers.md).
        #[arg(long, value_parser = parse_engine)]
        engine: Option<qtensor::Engine>,
    },
    /// Describe a TorchScript file (inputs, op calls, constants) or a
    /// torch.save state dict (its entries).
    Inspect {
        /// The .pt file.
        file: PathBuf,
    },
    /// Run a quantized network from a PyTorch checkpoint.
    Model {
        #[command(subcommand)]
        action: ModelCommand,
    },
    /// Run golden case files (or directories of them) through the dispatcher.
    Golden {
        /// Case files or directories (default: the project's own cases).
        paths: Vec<PathBuf>,
        /// Print one progress line per file to stderr.
        #[arg(long, short)]
        verbose: bool,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Load torchvision's quantized ARCH from a `torch.save` state dict, run
    /// the float tensor `input` of a safetensors file, print the top-5
    /// classes and the time, and write the quantized logits (before the
    /// dequantize stub) as the tensor `output`, qparams included.
    Run {
        /// The architecture: resnet18, resnet50, mobilenet_v2, mobilenet_v3_large, shufflenet_v2_x1_0, googlenet or inception_v3.
        arch: String,
        /// The checkpoint: `torch.save(model.state_dict(), FILE.pt)`.
        #[arg(long)]
        weights: PathBuf,
        /// A safetensors file with the float tensor `input`, `[N, 3, H, W]`.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the logits (safetensors).
        #[arg(long)]
        out: PathBuf,
        /// Threads for the kernels' parallel loops.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Whose integers the quantized convs give: fbgemm, fbgemm-avx2, x86, x86-vnni, x86-amx or exact
        /// (default: QTENSOR_ENGINE, else exact; see docs/whose-integers.md).
        #[arg(long, value_parser = parse_engine)]
        engine: Option<qtensor::Engine>,
    },
}

/// An `--engine` value.
fn parse_engine(s: &str) -> Result<qtensor::Engine, String> {
    qtensor::Engine::parse(s).map_err(|e| e.to_string())
}

/// `qtensor model run`.
fn model_run(
    arch: &str,
    weights: &std::path::Path,
    input: &std::path::Path,
    out: &std::path::Path,
    threads: usize,
) -> qtensor::Result<()> {
    let run = qtensor::with_num_threads(threads, || qtensor::models::run_checkpoint(arch, weights, input))??;
    let n = run.logits.sizes()[0];
    println!(
        "{arch}: {n} input(s) in {:.2} ms with {threads} thread(s), engine {}",
        run.elapsed.as_secs_f64() * 1e3,
        qtensor::engine()
    );
    for item in 0..n {
        let top: Vec<String> = run.top(item, 5)?.iter().map(|(c, s)| format!("{c} ({s:.4})")).collect();
        println!("  input {item}: top-5 classes {}", top.join(", "));
    }
    qtensor::save(out, &[("output", &run.logits)])?;
    println!("wrote the quantized logits {:?} to {} as `output`", run.logits.sizes(), out.display());
    Ok(())
}

/// `qtensor run`.
fn run(
    model: &Path,
    input: &Path,
    out: Option<&Path>,
    threads: usize,
    profile: bool,
    reps: usize,
) -> qtensor::Result<()> {
    let m = qtensor::jit::load(model)?;
    let tensors: std::collections::HashMap<String, qtensor::Tensor> = qtensor::load(input)?.into_iter().collect();
    let inputs = m
        .inputs()
        .iter()
        .map(|p| {
            let t = tensors.get(&p.name).or_else(|| (m.inputs().len() == 1).then(|| tensors.get("input")).flatten());
            t.cloned().map(qtensor::Value::Tensor).ok_or_else(|| {
                let have: Vec<&String> = tensors.keys().collect();
                qtensor::Error::invalid(
                    "run",
                    format!("{} has no tensor `{}` (it has {have:?})", input.display(), p.name),
                )
            })
        })
        .collect::<qtensor::Result<Vec<_>>>()?;
    if profile {
        qtensor::profiler::reset();
        qtensor::profiler::enable();
    }
    let timed = || -> qtensor::Result<(qtensor::Value, std::time::Duration)> {
        let start = std::time::Instant::now();
        let result = m.forward(&inputs)?;
        Ok((result, start.elapsed()))
    };
    let runs = qtensor::with_num_threads(threads, || -> qtensor::Result<_> {
        let mut runs = vec![timed()?];
        if reps > 1 {
            // The first run warms caches and the buffer pool: time the rest.
            runs.clear();
            timed()?;
            for _ in 0..reps {
                runs.push(timed()?);
            }
        }
        Ok(runs)
    })?;
    if profile {
        qtensor::profiler::disable();
    }
    let mut runs = runs?;
    runs.sort_by_key(|(_, t)| *t);
    let (result, elapsed) = runs.swap_remove(runs.len() / 2);
    let mut outputs = Vec::new();
    qtensor::jit::flatten_outputs("output", &result, &mut outputs)?;
    for (name, t) in &outputs {
        println!("{name}: {} {:?}", t.dtype(), t.sizes());
    }
    let what = if reps > 1 { format!("median of {reps} runs") } else { "one run".into() };
    println!(
        "ran {} in {:.2} ms ({what}) with {threads} thread(s), engine {}",
        model.display(),
        elapsed.as_secs_f64() * 1e3,
        qtensor::engine()
    );
    if profile {
        print!("{}", qtensor::profiler::table());
    }
    if let Some(out) = out {
        let named: Vec<(&str, &qtensor::Tensor)> = outputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
        qtensor::save(out, &named)?;
        println!("wrote {} tensor(s) to {}", named.len(), out.display());
    }
    Ok(())
}

/// `qtensor inspect`.
fn inspect(file: &Path) -> qtensor::Result<()> {
    match qtensor::jit::load(file) {
        Ok(m) => {
            print!("{}", qtensor::jit::describe(&m));
            Ok(())
        }
        Err(qtensor::Error::Serialization(msg)) if msg.contains("torch.save checkpoint") => {
            let state = qtensor::torch::load(file)?;
            println!("{}: a torch.save state dict of {} entries", file.display(), state.len());
            for (name, v) in state.iter() {
                match v.as_tensor() {
                    Some(t) => println!("  {name}: {}", qtensor::jit::describe_tensor(t)),
                    None => println!("  {name}: {v:?}"),
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Building the registry prints any rejected registration on stderr.
    qtensor::registry();
    match cli.command {
        Command::Demo { dir } => {
            let dir = dir.unwrap_or_else(std::env::temp_dir);
            let mut stdout = std::io::stdout();
            match demo::run(&mut stdout, &dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ops => match report::registry_table() {
            Ok(t) => {
                print!("{t}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Bench { kernels: false, profile: Some(name), json, threads, reps, .. } => {
            let run = || -> qtensor::Result<Vec<qtensor::profiler::OpProfile>> {
                let w = bench::workloads::workloads(&name)?
                    .into_iter()
                    .find(|w| w.name == name)
                    .ok_or_else(|| qtensor::Error::invalid("bench --profile", format!("no workload named `{name}`")))?;
                eprintln!("profiling {} over {reps} runs ...", w.name);
                bench::profile(&w, reps)
            };
            match bench::with_threads(threads, run).and_then(|r| r) {
                Ok(rows) if json => {
                    for row in &rows {
                        println!("{}", bench::profile_json(row, reps));
                    }
                    ExitCode::SUCCESS
                }
                Ok(rows) => {
                    println!("{name}, {threads} thread(s), {reps} runs; per-layer time, slowest first");
                    print!("{}", qtensor::profiler::format_table(&rows));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench { kernels: false, json, threads, reps, filter, .. } => {
            let run = || -> qtensor::Result<()> {
                eprintln!("building inputs ...");
                for w in bench::workloads::workloads(&filter)? {
                    eprintln!("timing {} ...", w.name);
                    let m = bench::workloads::measure(&w, threads, reps)?;
                    if json {
                        println!("{}", m.json());
                    } else {
                        println!(
                            "{:<44} {} thread(s)  median {:>10.3?}  min {:>10.3?}",
                            m.name, threads, m.timing.median, m.timing.min
                        );
                    }
                }
                Ok(())
            };
            match bench::with_threads(threads, run).and_then(|r| r) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bench failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench { kernels: true, threads, size, reps, filter, .. } => {
            let run = || {
                bench::kernels::compare(size, reps, |name| eprintln!("timing {name} ..."))
                    .map(|rows| rows.into_iter().filter(|r| r.name.contains(&filter)).collect::<Vec<_>>())
            };
            match bench::with_threads(threads, run).and_then(|r| r) {
                Ok(rows) => {
                    println!("{size} elements, {threads} thread(s), median of {reps} runs");
                    print!("{}", bench::kernels::table(&rows));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { model, input, out, threads, profile, reps, engine } => {
            if let Some(engine) = engine {
                qtensor::set_engine(engine);
            }
            match run(&model, &input, out.as_deref(), threads, profile, reps) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("run failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Inspect { file } => match inspect(&file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("inspect failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Model { action: ModelCommand::Run { arch, weights, input, out, threads, engine } } => {
            if let Some(engine) = engine {
                qtensor::set_engine(engine);
            }
            match model_run(&arch, &weights, &input, &out, threads) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("model run failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Golden { paths, verbose } => {
            let paths = if paths.is_empty() { vec![PathBuf::from(DEFAULT_CASES_DIR)] } else { paths };
            if let Some(missing) = paths.iter().find(|p| !p.exists()) {
                eprintln!(
                    "error: {} does not exist; run from the repository root (the default is {DEFAULT_CASES_DIR}) or give case files or directories",
                    missing.display()
                );
                return ExitCode::FAILURE;
            }
            let report = qtensor::kernel_checks::golden::run_paths(&paths, |file, r| {
                if verbose {
                    eprintln!("{}: {} passed, {} failed", file.display(), r.passed, r.failed());
                }
            });
            for f in &report.failures {
                println!("{f}");
            }
            println!("{}", report.summary());
            if report.failed() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
