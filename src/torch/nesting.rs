//! Keeps what the unpickler builds a tree of bounded depth.
//!
//! Python's pickle can express a list that contains itself, and nesting as
//! deep as the file is long. `torch.save` and `torch.jit.save` write
//! neither, and either would hurt here: a cycle of reference-counted values
//! is never freed, and every walk over the result (and `Drop` itself) is
//! recursive, so a million nested lists would overflow the stack.
//!
//! The rule that excludes cycles: a compound value is *sealed* once it is
//! placed inside another one, and a sealed list, dict or object can no
//! longer be changed. A pickler only changes a container before it places
//! it anywhere (Python's fills a list with `APPENDS` right after
//! `EMPTY_LIST`), so only cyclic pickles break the rule. It suffices: a
//! value that reaches container `C` holds `C` somewhere inside it, so `C` is
//! sealed and cannot receive it.

use super::pickle::PValue;
use crate::{Error, Result};
use std::collections::HashMap;
use std::rc::Rc;

/// The deepest nesting accepted. PyTorch's files nest a few levels (a dict
/// of tuples of tensors); the bound only has to keep recursion shallow.
pub(crate) const MAX_DEPTH: usize = 100;

/// What is known of one compound value.
#[derive(Clone, Copy, Default)]
struct Node {
    /// 1 + the deepest of its items.
    depth: usize,
    /// Placed inside another value: no longer changeable.
    sealed: bool,
}

/// The depth and sealing of every compound value of one unpickling.
#[derive(Default)]
pub(crate) struct Nesting {
    /// Keyed by the value's address.
    nodes: HashMap<usize, Node>,
    /// Holds every tracked value alive until unpickling ends, so no address
    /// is freed and reused by another value while `nodes` is keyed by it.
    alive: Vec<PValue>,
}

/// The address of a compound value, `None` for a scalar.
fn address(v: &PValue) -> Option<usize> {
    match v {
        PValue::Tuple(t) => Some(Rc::as_ptr(t) as *const () as usize),
        PValue::List(l) => Some(Rc::as_ptr(l) as *const () as usize),
        PValue::Dict(d) => Some(Rc::as_ptr(d) as *const () as usize),
        PValue::Object(o) => Some(Rc::as_ptr(o) as *const () as usize),
        PValue::None | PValue::Bool(_) | PValue::Int(_) | PValue::Float(_) | PValue::Str(_) | PValue::Global(_) => None,
    }
}

fn err(msg: &str) -> Error {
    Error::Serialization(format!("data.pkl: {msg}"))
}

impl Nesting {
    /// How deep `v` nests: 0 for a scalar.
    fn depth(&self, v: &PValue) -> usize {
        address(v).map_or(0, |a| self.nodes.get(&a).map_or(1, |n| n.depth))
    }

    /// The record of compound value `v`, made (depth 1, unsealed) if `v`
    /// is new; `None` for a scalar.
    fn node(&mut self, v: &PValue) -> Option<&mut Node> {
        let a = address(v)?;
        let alive = &mut self.alive;
        Some(self.nodes.entry(a).or_insert_with(|| {
            alive.push(v.clone());
            Node { depth: 1, sealed: false }
        }))
    }

    /// Seals each of `items` (they are being placed inside another value)
    /// and returns the depth of the deepest.
    fn seal<'a>(&mut self, items: impl IntoIterator<Item = &'a PValue>) -> usize {
        let mut deepest = 0;
        for item in items {
            deepest = deepest.max(self.depth(item));
            if let Some(node) = self.node(item) {
                node.sealed = true;
            }
        }
        deepest
    }

    /// Records a value the unpickler just made from `items`: a tuple, a
    /// list or dict built at once, or what a callable returned for these
    /// arguments. A value already known (a callable that returns its
    /// argument) keeps what is known of it.
    pub(crate) fn made<'a>(&mut self, v: &PValue, items: impl IntoIterator<Item = &'a PValue>) -> Result<()> {
        let Some(a) = address(v) else { return Ok(()) };
        if self.nodes.contains_key(&a) {
            return Ok(());
        }
        let depth = self.seal(items) + 1;
        if depth > MAX_DEPTH {
            return Err(err(&format!("values nest more than {MAX_DEPTH} levels deep")));
        }
        self.nodes.insert(a, Node { depth, sealed: false });
        self.alive.push(v.clone());
        Ok(())
    }

    /// Checks and records that `items` are being added to `container`
    /// (`APPEND`, `SETITEMS`, `BUILD`).
    pub(crate) fn add<'a>(&mut self, container: &PValue, items: impl IntoIterator<Item = &'a PValue>) -> Result<()> {
        // Seal the items first: a container added to itself is then sealed
        // and refused below.
        let depth = self.seal(items) + 1;
        let Some(node) = self.node(container) else { return Ok(()) };
        if node.sealed {
            return Err(err(
                "a list, dict or object is changed after it was placed in another value (a cyclic pickle)",
            ));
        }
        node.depth = node.depth.max(depth);
        if node.depth > MAX_DEPTH {
            return Err(err(&format!("values nest more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }
}
