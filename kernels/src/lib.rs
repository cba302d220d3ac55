//! qtensor's built-in kernels.
//!
//! - [`reference`]: scalar kernels in safe Rust, obviously correct, registered
//!   at priority 0 for every dtype they apply to. They define the numerics
//!   every faster kernel must reproduce.
//! - `x86_64::avx2`: vectorized kernels at priority 10, chosen at run time
//!   when the CPU has AVX2 (`is_x86_feature_detected!`), bit-exact with the
//!   reference wherever docs/conformance-format.md says exact.
//!
//! Kernels register themselves through `inventory`; nothing here is called
//! by name. The facade calls [`link`] so that the linker keeps this crate.

#![warn(missing_docs)]

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod gemm;
pub mod ops;
pub mod parallel;
pub mod portable;
pub mod reference;
#[cfg(test)]
mod tests;
pub mod vector;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

/// Referenced by the `qtensor` facade so that the linker keeps this crate's
/// kernel registrations. A plugin crate should offer the same (see README).
#[inline(never)]
pub fn link() -> usize {
    reference::KERNEL_FILES.len()
}
