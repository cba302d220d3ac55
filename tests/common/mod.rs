//! Helpers shared by the tests that compare with PyTorch.

use std::path::PathBuf;
use std::process::Command;

/// Runs a Python export script (`command`, which writes into `dir`) and
/// returns `dir`, or `None` with a message where PyTorch or python3 is
/// missing and this is not CI. Under `CI=true` a comparison that cannot
/// run fails, here.
pub fn python_export(mut command: Command, dir: PathBuf) -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match command.output() {
        Ok(o) if o.status.success() => Some(dir),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!ci && err.contains("No module named"), "the export script failed: {err}");
            eprintln!(
                "not compared: PyTorch or torchvision is not installed (pip install torch torchvision safetensors)"
            );
            None
        }
        Err(e) => {
            assert!(!ci, "python3 is needed under CI=true: {e}");
            eprintln!("not compared: python3 is not available ({e})");
            None
        }
    }
}
