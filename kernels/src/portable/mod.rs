//! Portable kernels: safe Rust, faster than the reference kernels on any
//! CPU (the compiler vectorizes their inner loops), registered between the
//! reference kernels and the ISA-specific ones.

pub mod pool;

/// The priority of the portable kernels (reference 0, AVX2 10).
pub const PRIORITY: i32 = 5;
