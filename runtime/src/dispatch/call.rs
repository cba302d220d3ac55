//! A boxed call: through the enabled fallback layers (see [`super::layers`]),
//! outermost first, and then the chosen kernel.
//!
//! It lives apart from [`super::entry`] so that the kernel table knows
//! nothing of layers, and layers know the entry only as the type their
//! fallbacks receive.

use super::entry::OperatorEntry;
use super::layers::{self, Fallback};
use crate::error::Result;
use crate::value::Value;

impl OperatorEntry {
    /// Calls the operator with boxed arguments, through the enabled
    /// fallback layers (if any) and then the chosen kernel.
    #[inline]
    pub fn call(&self, args: &[Value]) -> Result<Value> {
        // The only cost of the layers when none is enabled: one relaxed load.
        if layers::any_enabled() {
            return run(self, &layers::enabled_chain(), args);
        }
        self.call_kernel(args)
    }
}

/// Runs the rest of `chain`, each fallback handing on to the next, and
/// the kernel last.
fn run(op: &OperatorEntry, chain: &[Fallback], args: &[Value]) -> Result<Value> {
    match chain.split_first() {
        None => op.call_kernel(args),
        Some((first, rest)) => first(op, args, &|a| run(op, rest, a)),
    }
}
