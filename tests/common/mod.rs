//! Helpers shared by the tests that compare with PyTorch.
//!
//! Exporting networks is most of these tests' time (PyTorch quantizes and
//! runs each one), and `.ci/run` runs the same comparisons under several
//! ISA caps. With `QTENSOR_EXPORT_CACHE=DIR` an export is written once
//! into `DIR`, keyed by its script's text, arguments and the variables set
//! for it (not the installed PyTorch: empty `DIR` after an upgrade), and
//! later runs reuse it; without it each export goes to a fresh temporary
//! directory, removed when the test ends.

#![allow(dead_code)] // Each test file uses its own part.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The files one Python export wrote, and a directory of the test's own
/// (inputs it writes, outputs of the CLI) that nothing else shares.
pub struct Export {
    dir: PathBuf,
    scratch: PathBuf,
    /// Whether `dir` belongs to this test (no cache) and goes with it.
    owned: bool,
}

impl Export {
    /// A file the export script wrote.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A path for a file of the test's own, removed with the export.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.scratch).ok();
        if self.owned {
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }
}

/// Runs `script` (under `tests/python/`) as `python3 script DIR args...`
/// with `env`, and returns what it wrote; or `None`, with a message, where
/// PyTorch or python3 is missing and this is not CI. Under `CI=true` a
/// comparison that cannot run fails, here. `tag` names the directory.
pub fn python_export(script: &str, tag: &str, args: &[&str], env: &[(&str, &str)]) -> Option<Export> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script);
    // The process and a count within it: no two exports share a path.
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let unique = format!("{}-{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
    let cache = std::env::var_os("QTENSOR_EXPORT_CACHE").filter(|v| !v.is_empty()).map(PathBuf::from);
    let (dir, owned) = match cache {
        None => {
            let dir = std::env::temp_dir().join(format!("qtensor-{tag}-{unique}"));
            run_script(&script, &dir, args, env)?;
            (dir, true)
        }
        Some(cache) => {
            let text = std::fs::read(&script).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
            let mut key = DefaultHasher::new();
            (text, args, env).hash(&mut key);
            // Not keyed by `tag`: tests that export the same thing share it.
            let stem = script.file_stem().unwrap_or_default().to_string_lossy();
            let dir = cache.join(format!("{stem}-{:016x}", key.finish()));
            if !dir.is_dir() {
                // Written aside and renamed into place, so that a directory
                // in the cache is always a whole export, also if a run
                // stops halfway.
                let partial = cache.join(format!("{tag}-partial-{unique}"));
                run_script(&script, &partial, args, env)?;
                if std::fs::rename(&partial, &dir).is_err() {
                    // Another process finished the same export first.
                    std::fs::remove_dir_all(&partial).ok();
                }
            }
            (dir, false)
        }
    };
    let scratch = std::env::temp_dir().join(format!("qtensor-{tag}-scratch-{unique}"));
    std::fs::create_dir_all(&scratch).unwrap_or_else(|e| panic!("{}: {e}", scratch.display()));
    Some(Export { dir, scratch, owned })
}

/// Runs the script into `dir`: `None` where Python or PyTorch is missing
/// and this is not CI; a panic for any other failure.
fn run_script(script: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Option<()> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match Command::new("python3").arg(script).arg(dir).args(args).envs(env.iter().copied()).output() {
        Ok(o) if o.status.success() => Some(()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!ci && err.contains("No module named"), "{} failed: {err}", script.display());
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
