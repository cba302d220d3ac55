//! Scalar reference kernels, one file per op family.

pub mod cat;
pub mod common;
pub mod conv;
pub mod create;
pub mod elementwise;
pub mod inspect;
pub mod linear;
pub mod pool;
pub mod quantize;
pub mod views;

/// The kernel files of this module (used by [`crate::link`]).
pub const KERNEL_FILES: &[&str] =
    &["cat", "conv", "create", "elementwise", "inspect", "linear", "pool", "quantize", "views"];
