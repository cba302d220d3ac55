//! Blocks with branches, built out of modules: a [`Residual`] combines a
//! block's input with its body's output (ResNet's skip add, MobileNetV3's
//! squeeze-excitation multiply), a [`Concat`] concatenates branches
//! (Inception). Each names its `QFunctional` as torchvision does, so
//! PyTorch checkpoints load into it.

use super::quantized::QFunctional;
use super::{child_prefix, child_scope, Module};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;

/// How a [`Residual`] combines the block's input `x` with its body's
/// output `y`, through its `QFunctional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// `x + y`.
    Add,
    /// `relu(x + y)`.
    AddRelu,
    /// `y * x` (the body computes a gate, as squeeze-excitation does).
    Mul,
}

/// `combine(x, body(x))`, with the `QFunctional` saved under
/// `functional_name` (`skip_add`, `skip_mul`, ...) and the body's state
/// under `body_name` (empty: the block's own prefix).
pub struct Residual {
    body_name: String,
    body: Box<dyn Module + Send + Sync>,
    functional_name: String,
    functional: QFunctional,
    combine: Combine,
}

impl Residual {
    /// A residual block; `functional` holds the output qparams.
    pub fn new(
        body_name: &str,
        body: impl Module + Send + Sync + 'static,
        functional_name: &str,
        functional: QFunctional,
        combine: Combine,
    ) -> Residual {
        Residual {
            body_name: body_name.into(),
            body: Box::new(body),
            functional_name: functional_name.into(),
            functional,
            combine,
        }
    }
}

impl Module for Residual {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = {
            let _scope = child_scope(&self.body_name);
            self.body.forward(x)?
        };
        let _scope = child_scope(&self.functional_name);
        match self.combine {
            Combine::Add => self.functional.add(x, &y),
            Combine::AddRelu => self.functional.add_relu(x, &y),
            Combine::Mul => self.functional.mul(&y, x),
        }
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = self.body.state_dict(&child_prefix(prefix, &self.body_name))?;
        out.extend(self.functional.state_dict(&child_prefix(prefix, &self.functional_name))?);
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        self.body.load_state_dict(state, &child_prefix(prefix, &self.body_name))?;
        self.functional.load_state_dict(state, &child_prefix(prefix, &self.functional_name))
    }

    fn describe(&self) -> String {
        format!("Residual({:?} through `{}`, body: {})", self.combine, self.functional_name, self.body.describe())
    }
}

/// The branches applied to the same input, concatenated along `dim` into
/// the `QFunctional`'s qparams. Branches save under the block's own prefix
/// (name their layers as the model does), the functional under
/// `functional_name`.
pub struct Concat {
    branches: Vec<Box<dyn Module + Send + Sync>>,
    functional_name: String,
    functional: QFunctional,
    dim: i64,
}

impl Concat {
    /// A concatenation of `branches` along `dim`.
    pub fn new(
        branches: Vec<Box<dyn Module + Send + Sync>>,
        functional_name: &str,
        functional: QFunctional,
        dim: i64,
    ) -> Result<Concat> {
        if branches.is_empty() {
            return Err(Error::invalid("Concat", "needs at least one branch"));
        }
        Ok(Concat { branches, functional_name: functional_name.into(), functional, dim })
    }
}

impl Module for Concat {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let outs = self.branches.iter().map(|b| b.forward(x)).collect::<Result<Vec<_>>>()?;
        let _scope = child_scope(&self.functional_name);
        self.functional.cat(&outs, self.dim)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for b in &self.branches {
            out.extend(b.state_dict(prefix)?);
        }
        out.extend(self.functional.state_dict(&child_prefix(prefix, &self.functional_name))?);
        Ok(out)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        for b in &mut self.branches {
            b.load_state_dict(state, prefix)?;
        }
        self.functional.load_state_dict(state, &child_prefix(prefix, &self.functional_name))
    }

    fn describe(&self) -> String {
        format!("Concat({} branches along dim {} through `{}`)", self.branches.len(), self.dim, self.functional_name)
    }
}
