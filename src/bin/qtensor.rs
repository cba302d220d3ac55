//! The `qtensor` command line: `demo`, `ops` and `conform`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    /// Run golden case files (or directories of them) through the dispatcher.
    Conform {
        /// Case files or directories (default: the project's own cases).
        paths: Vec<PathBuf>,
        /// Print one progress line per file to stderr.
        #[arg(long, short)]
        verbose: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = qtensor::registry().check() {
        eprintln!("warning: a kernel registration was rejected: {e}");
    }
    match cli.command {
        Command::Demo { dir } => {
            let dir = dir.unwrap_or_else(std::env::temp_dir);
            let mut stdout = std::io::stdout();
            match qtensor::demo::run(&mut stdout, &dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ops => match qtensor::report::registry_table() {
            Ok(t) => {
                print!("{t}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Conform { paths, verbose } => {
            let paths = if paths.is_empty() { vec![PathBuf::from(qtensor::golden::DEFAULT_CASES_DIR)] } else { paths };
            let report = qtensor::golden::run_paths(&paths, |file, r| {
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
