//! Scalar reference kernels, one file per op family.

pub mod create;
pub mod inspect;
pub mod quantize;
pub mod views;

/// The kernel files of this module (used by [`crate::link`]).
pub const KERNEL_FILES: &[&str] = &["create", "inspect", "quantize", "views"];
