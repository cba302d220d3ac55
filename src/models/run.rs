//! Running a PyTorch checkpoint end to end: what `qtensor model run` does.

use super::{from_torch_checkpoint, Network};
use crate::{Error, Result, Tensor};
use std::path::Path;
use std::time::{Duration, Instant};

/// A network's quantized logits for one input, and how long they took.
pub struct ModelRun {
    /// The quantized logits `[N, classes]`, before the dequantize stub.
    pub logits: Tensor,
    /// The forward pass alone (not loading).
    pub elapsed: Duration,
}

impl ModelRun {
    /// The `k` highest-scoring classes of batch item `item`, best first, as
    /// (class, dequantized score); ties go to the lower class index.
    pub fn top(&self, item: usize, k: usize) -> Result<Vec<(usize, f64)>> {
        let classes = self.logits.sizes().get(1).copied().unwrap_or(0);
        let row = crate::ops::select(&self.logits, 0, item as i64)?;
        let scores = row.real_values()?;
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        Ok(order.into_iter().take(k).map(|c| (c, scores[c])).collect())
    }
}

/// Builds `arch` from a PyTorch checkpoint
/// (`torch.save(model.state_dict())` of torchvision's quantized model), and
/// runs the float tensor named `input` of the safetensors file `input`.
pub fn run_checkpoint(arch: &str, weights: &Path, input: &Path) -> Result<ModelRun> {
    let net: Box<dyn Network> = from_torch_checkpoint(arch, weights)?;
    let tensors = crate::load(input)?;
    let names: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
    let x = tensors.into_iter().find(|(n, _)| n == "input").map(|(_, t)| t).ok_or_else(|| {
        Error::invalid(
            "model run",
            format!("{} has no tensor named `input` (it holds: {})", input.display(), names.join(", ")),
        )
    })?;
    let start = Instant::now();
    let logits = net.logits(&x)?;
    Ok(ModelRun { logits, elapsed: start.elapsed() })
}
