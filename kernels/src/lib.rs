//! qtensor's built-in kernels.
//!
//! - [`reference`]: scalar kernels in safe Rust, obviously correct, registered
//!   at priority 0 for every dtype they apply to. They define the numerics
//!   every faster kernel must reproduce.
//!
//! Kernels register themselves through `inventory`; nothing here is called
//! by name. The facade calls [`link`] so that the linker keeps this crate.

#![warn(missing_docs)]

pub mod reference;

/// Referenced by the `qtensor` facade so that the linker keeps this crate's
/// kernel registrations. A plugin crate should offer the same (see README).
#[inline(never)]
pub fn link() -> usize {
    reference::KERNEL_FILES.len()
}
