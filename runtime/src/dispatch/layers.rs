//! Layered dispatch: functionality keys (such as [`DispatchKey::Profiling`])
//! whose boxed fallbacks wrap every operator call while they are enabled,
//! each passing the call on to the next layer and finally to the kernel.
//!
//! Layers are process-wide. With none enabled, a call pays one relaxed
//! atomic load.

/// Which kernel ran, for a fallback to read after its `next` returns.
pub use super::entry::last_kernel;
use super::entry::OperatorEntry;
use crate::dispatch_key::DispatchKey;
use crate::error::{Error, Result};
use crate::value::Value;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The rest of the chain, for a fallback to redispatch to.
pub type Next<'a> = &'a dyn Fn(&[Value]) -> Result<Value>;

/// A boxed fallback: sees every call of every op while its key is enabled.
pub type Fallback = fn(op: &OperatorEntry, args: &[Value], next: Next<'_>) -> Result<Value>;

struct Layer {
    key: DispatchKey,
    fallback: Fallback,
    enabled: bool,
}

static ANY_ENABLED: AtomicBool = AtomicBool::new(false);

/// The registered layers, in registration order (outermost first).
static LAYERS: RwLock<Vec<Layer>> = RwLock::new(Vec::new());

/// True when some layer is enabled.
#[inline]
pub fn any_enabled() -> bool {
    ANY_ENABLED.load(Ordering::Relaxed)
}

/// Registers (or replaces) the fallback of a functionality key. It starts disabled.
pub fn register_fallback(key: DispatchKey, fallback: Fallback) -> Result<()> {
    if key.is_backend() {
        return Err(Error::invalid(
            "register_fallback",
            format!("{key} is a backend key; register kernels for it instead"),
        ));
    }
    let mut layers = LAYERS.write();
    match layers.iter_mut().find(|l| l.key == key) {
        Some(l) => l.fallback = fallback,
        None => layers.push(Layer { key, fallback, enabled: false }),
    }
    Ok(())
}

/// Enables or disables a functionality key's layer.
pub fn set_enabled(key: DispatchKey, enabled: bool) -> Result<()> {
    let mut layers = LAYERS.write();
    let layer = layers
        .iter_mut()
        .find(|l| l.key == key)
        .ok_or_else(|| Error::invalid("set_enabled", format!("no fallback is registered for {key}")))?;
    layer.enabled = enabled;
    ANY_ENABLED.store(layers.iter().any(|l| l.enabled), Ordering::Relaxed);
    Ok(())
}

/// Whether a functionality key's layer is enabled.
pub fn is_enabled(key: DispatchKey) -> bool {
    LAYERS.read().iter().any(|l| l.key == key && l.enabled)
}

/// The enabled fallbacks, outermost first.
pub(crate) fn enabled_chain() -> Vec<Fallback> {
    LAYERS.read().iter().filter(|l| l.enabled).map(|l| l.fallback).collect()
}
