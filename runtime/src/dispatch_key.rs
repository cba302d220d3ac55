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
}

impl DispatchKey {
    /// Every key, in table order.
    pub const ALL: [DispatchKey; 2] = [DispatchKey::CPU, DispatchKey::QuantizedCPU];

    /// Position in [`DispatchKey::ALL`].
    pub const fn index(self) -> usize {
        self as usize
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
        }
    }
}

impl fmt::Display for DispatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
