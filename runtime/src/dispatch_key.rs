//! Dispatch keys: which family of kernels handles a call.

use crate::dtype::DType;
use std::fmt;

/// The key a call is dispatched on, computed from its tensor arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DispatchKey {
    /// Dense float and integer tensors on the CPU.
    CPU,
    /// Quantized tensors on the CPU.
    QuantizedCPU,
    /// A functionality key, not a backend: while enabled, its fallback
    /// records per-op call counts and time, then redispatches.
    Profiling,
    /// A functionality key for a user's own fallback (a tracer, a logger);
    /// it has none until one is registered with
    /// [`layers::register_fallback`](crate::layers::register_fallback).
    Tracing,
}

impl DispatchKey {
    /// The backend keys, which kernels register for, in table order.
    pub const BACKENDS: [DispatchKey; 2] = [DispatchKey::CPU, DispatchKey::QuantizedCPU];

    /// Position in [`DispatchKey::BACKENDS`] (functionality keys come after).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// True for backend keys (the ones kernels register for).
    pub const fn is_backend(self) -> bool {
        matches!(self, DispatchKey::CPU | DispatchKey::QuantizedCPU)
    }

    /// The key for a tensor of this dtype.
    pub const fn for_dtype(dtype: DType) -> DispatchKey {
        if dtype.is_quantized() {
            DispatchKey::QuantizedCPU
        } else {
            DispatchKey::CPU
        }
    }

    /// The key's name as printed.
    pub const fn name(self) -> &'static str {
        match self {
            DispatchKey::CPU => "CPU",
            DispatchKey::QuantizedCPU => "QuantizedCPU",
            DispatchKey::Profiling => "Profiling",
            DispatchKey::Tracing => "Tracing",
        }
    }
}

impl fmt::Display for DispatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
