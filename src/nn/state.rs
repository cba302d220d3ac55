//! Reading and writing a module's entries of a state dict: tensors by
//! name, and output qparams as PyTorch's quantized modules save them.

use crate::{Error, Result, Tensor};
use std::collections::HashMap;

/// The tensor named `prefix` + `name` in a state dict: a clone of the
/// shared handle (the values are not copied), or an error naming the key.
pub fn state_tensor(state: &HashMap<String, Tensor>, prefix: &str, name: &str) -> Result<Tensor> {
    state
        .get(&format!("{prefix}{name}"))
        .cloned()
        .ok_or_else(|| Error::Serialization(format!("missing `{prefix}{name}` in the state dict")))
}

/// A 0-d f64 tensor.
pub(super) fn scalar_f64(v: f64) -> Result<Tensor> {
    Tensor::from_slice(&[v], &[])
}

/// A 0-d i64 tensor.
pub(super) fn scalar_i64(v: i64) -> Result<Tensor> {
    Tensor::from_slice(&[v], &[])
}

/// Output qparams as a module saves them: `scale` (f64) and `zero_point`
/// (i64), 0-d.
pub(super) fn qparams_state(prefix: &str, scale: f64, zero_point: i64) -> Result<Vec<(String, Tensor)>> {
    Ok(vec![(format!("{prefix}scale"), scalar_f64(scale)?), (format!("{prefix}zero_point"), scalar_i64(zero_point)?)])
}

/// Reads what [`qparams_state`] saved (PyTorch's `[1]`-shaped scales too).
pub(super) fn read_qparams(state: &HashMap<String, Tensor>, prefix: &str) -> Result<(f64, i64)> {
    Ok((read_f64(state, prefix, "scale")?, read_i64(state, prefix, "zero_point")?))
}

/// The f64 entry `prefix` + `name`.
fn read_f64(state: &HashMap<String, Tensor>, prefix: &str, name: &str) -> Result<f64> {
    state_tensor(state, prefix, name)?.item()
}

/// The first integer of the entry `prefix` + `name`.
fn read_i64(state: &HashMap<String, Tensor>, prefix: &str, name: &str) -> Result<i64> {
    let t = state_tensor(state, prefix, name)?;
    t.int_values()?.first().copied().ok_or_else(|| Error::Serialization(format!("`{prefix}{name}` is empty")))
}
