//! qtensor's built-in kernels, in tiers (`qtensor_runtime::Priority`):
//!
//! - [`reference`](mod@reference): scalar kernels in safe Rust, obviously correct,
//!   registered at `Priority::REFERENCE` for every dtype they apply to.
//!   They define the numerics every faster kernel must reproduce.
//! - The portable layer: the op drivers in [`ops`] and the GEMM driver in
//!   [`gemm`], generic over the ISA traits [`vector::VectorIsa`] and
//!   [`gemm::GemmIsa`]; with the [`portable`] token's routines they are the
//!   `Priority::PORTABLE` kernels.
//! - The ISA modules (`x86_64::avx2`, `x86_64::avx512vnni`,
//!   `aarch64::neon`): each implements the traits on its token
//!   (`qtensor_runtime::isa::Avx2`, ...), whose existence proves the CPU
//!   has the ISA, and registers at `Priority::ISA` and above. They depend
//!   on the generic modules, never the reverse.
//!
//! Kernels register themselves through `inventory`; nothing here is called
//! by name. The facade calls [`link`] so that the linker keeps this crate.
//!
//! # Adding a built-in op
//!
//! 1. **Declare it** in `ops.yaml` (PyTorch's name and argument order, a
//!    `doc:` that states dtypes and layouts, and `tolerance:` if its
//!    kernels may differ). `build.rs` generates `qtensor::ops::NAME`.
//! 2. **The reference kernel** in `reference/` (safe scalar Rust, every
//!    dtype it applies to), registered with `register_kernel!` at
//!    `Priority::REFERENCE`.
//! 3. **An input builder for the kernel checks** in `qtensor::kernel_checks::builders`
//!    (`builtin`): valid random inputs, so that every later kernel is
//!    compared with the reference on cases that succeed. An op without one
//!    gets only the bad-input checks and its golden cases.
//! 4. **Golden cases** from PyTorch in `tests/golden/cases/`
//!    (`tests/python/make_golden_network_ops.py` shows how), listed in
//!    `tests/golden_cases.rs`.
//! 5. **Optionally a fast kernel**: an op driver in `ops/` generic over
//!    `VectorIsa` (or `GemmIsa`), registered for each ISA by
//!    `register_vector_kernels!` / `register_gemm_kernels!`, or a
//!    `portable/` kernel at `Priority::PORTABLE`. `tests/kernel_checks.rs`
//!    then holds it to the reference bit for bit (or within the op's
//!    tolerance).

#![warn(missing_docs)]

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod aligned;
pub mod args;
pub mod gemm;
pub mod ops;
pub mod parallel;
pub mod portable;
pub mod reference;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", test))]
mod tail_steps;
#[cfg(test)]
mod tests;
pub mod vector;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

/// Referenced by the `qtensor` facade so that the linker keeps this crate's
/// kernel registrations. A plugin crate should offer the same (see README).
#[inline(never)]
pub fn link() -> usize {
    // Opaque to the optimizer, so the caller's use of it stays a call into
    // this crate.
    std::hint::black_box(0)
}
