//! AVX2 kernels (256-bit integer and float SIMD), registered at priority 10
//! above the reference kernels and bit-exact with them wherever docs/conformance-format.md
//! says exact.
//!
//! Every `#[target_feature(enable = "avx2,fma")]` function here is reached only
//! through a kernel entry point that checks [`super::has_avx2`] first; that
//! check is the safety argument of each `unsafe` call into this module.

pub mod cat;
pub mod depthwise;
pub mod depthwise_nhwc;
pub mod dequantize;
pub mod elementwise;
pub mod gemm;
pub mod gemm_i16;
pub mod pool;
pub mod quantize;
pub mod simd;

/// The priority of the AVX2 kernels (the reference kernels have 0).
pub const PRIORITY: i32 = 10;
