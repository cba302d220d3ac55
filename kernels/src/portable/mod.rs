//! The portable tier: safe Rust, faster than the reference kernels on any
//! CPU (the compiler vectorizes their inner loops), registered at
//! [`Priority::PORTABLE`], between the reference kernels and the ISA ones.
//!
//! Its elementwise and GEMM kernels are the generic drivers run with the
//! [`Portable`] token's routines; these are also what an ISA kernel runs
//! when called directly on a CPU without its ISA.

pub mod activation;
pub mod pool;

pub use crate::vector::Portable;
use qtensor_runtime::Priority;

crate::register_vector_kernels!(Portable, "portable", Priority::PORTABLE);
crate::register_gemm_kernels!(Portable, "portable", Priority::PORTABLE);
