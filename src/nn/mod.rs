//! Modules, after `torch.nn`: a [`Module`] trait, the containers
//! [`Sequential`], [`Residual`] and [`Concat`] that build networks with
//! branches, and the quantized modules of [`quantized`].

mod blocks;
mod layers;
pub mod quantized;
mod state;

pub use blocks::{Combine, Concat, Residual};
pub use state::state_tensor;

use crate::{Error, Result, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// A layer: a forward function plus named state that saves and loads.
pub trait Module {
    /// Applies the layer.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// The layer's tensors, each named `prefix` + its own name.
    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let _ = prefix;
        Ok(Vec::new())
    }

    /// Replaces the layer's tensors with those named `prefix` + name in
    /// `state`. The architecture (shapes, dtypes) must match.
    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        let _ = (state, prefix);
        Ok(())
    }

    /// A one-line description, as PyTorch prints modules.
    fn describe(&self) -> String;
}

/// A boxed module is a module, so that containers can hold boxed layers
/// built elsewhere.
impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        (**self).state_dict(prefix)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        (**self).load_state_dict(state, prefix)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Layers applied in order. Each layer's state is saved under `prefix` +
/// its name + `.`; a layer pushed with an empty name saves under `prefix`
/// itself, for layers whose own names already say where they sit (the
/// sibling branches of an Inception block).
#[derive(Default)]
pub struct Sequential {
    layers: Vec<(String, Box<dyn Module + Send + Sync>)>,
}

impl Sequential {
    /// An empty container.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a named layer.
    pub fn push(mut self, name: &str, layer: impl Module + Send + Sync + 'static) -> Sequential {
        self.layers.push((name.to_string(), Box::new(layer)));
        self
    }

    /// The layers, in order.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &dyn Module)> {
        self.layers.iter().map(|(n, l)| (n.as_str(), l.as_ref() as &dyn Module))
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for (name, layer) in &self.layers {
            let _scope = child_scope(name);
            y = layer.forward(&y).map_err(|e| Error::invalid(format!("Sequential layer `{name}`"), e.to_string()))?;
        }
        Ok(y)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (name, layer) in &self.layers {
            out.extend(layer.state_dict(&child_prefix(prefix, name))?);
        }
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        for (name, layer) in &mut self.layers {
            layer.load_state_dict(state, &child_prefix(prefix, name))?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let inner: Vec<String> = self.layers.iter().map(|(n, l)| format!("  ({n}): {}", l.describe())).collect();
        format!("Sequential(\n{}\n)", inner.join("\n"))
    }
}

/// Enters the profiler scope of a child named `name`, so that a profile
/// names each op by its module path as PyTorch prints it
/// (`features.1.block.0.0`). A child with the empty name sits at its
/// parent's own path and adds nothing.
pub(crate) fn child_scope(name: &str) -> Option<crate::profiler::Scope> {
    (!name.is_empty()).then(|| crate::profiler::scope(name))
}

/// The state prefix of a child named `name` (empty: the parent's own).
pub(crate) fn child_prefix(prefix: &str, name: &str) -> String {
    if name.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}{name}.")
    }
}

/// Saves a module's state to a safetensors file.
pub fn save(path: impl AsRef<Path>, module: &dyn Module) -> Result<()> {
    let state = module.state_dict("")?;
    let named: Vec<(&str, &Tensor)> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
    crate::save(path, &named)
}

/// Loads a module's state from a safetensors file written by [`save`].
pub fn load(path: impl AsRef<Path>, module: &mut dyn Module) -> Result<()> {
    let state: HashMap<String, Tensor> = crate::load(path)?.into_iter().collect();
    module.load_state_dict(&state, "")
}

/// Loads a module's state from a PyTorch checkpoint (`torch.save` of a
/// quantized model's `state_dict()`), under PyTorch's names: see
/// [`crate::torch::StateDict::into_tensors`].
pub fn load_torch(path: impl AsRef<Path>, module: &mut dyn Module) -> Result<()> {
    let state = crate::torch::load(path)?.into_tensors()?;
    module.load_state_dict(&state, "")
}
