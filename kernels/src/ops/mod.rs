//! The elementwise, cat and pooling ops, written once over
//! [`VectorIsa`](crate::vector::VectorIsa): the tensor work (qparams,
//! layouts, threads, fallbacks to the reference) lives here, and each ISA
//! supplies its slice routines. [`register_vector_kernels!`](crate::register_vector_kernels) registers the
//! whole family for one ISA.

pub mod cat;
pub mod dequantize;
pub mod elementwise;
pub mod pool;
pub mod quantize;

/// Registers quantize_per_tensor, quantize_per_channel, dequantize, relu,
/// quantized::add, add_relu, mul, cat and max_pool2d for one
/// [`VectorIsa`](crate::vector::VectorIsa) token type, named
/// `{prefix}_{op}`, at `priority`.
///
/// Each kernel takes its token from `detect()` once per call (the proof
/// the ISA's methods rely on), which is also its `is_supported`. Without a
/// token (a direct call on a CPU without the ISA, or under a lower cap) it
/// runs the same driver with [`Portable`](crate::vector::Portable)'s
/// routines, which give the same results.
#[macro_export]
#[doc(hidden)]
macro_rules! register_vector_kernels {
    ($isa:ty, $prefix:literal, $priority:expr) => {
        const _: () = {
            use qtensor_runtime::{register_kernel, DType, Result, Tensor};
            use $crate::ops::elementwise::BinaryOp;
            use $crate::ops::{cat, dequantize, elementwise, pool, quantize};
            use $crate::vector::{Portable, VectorIsa};

            fn supported() -> bool {
                <$isa as VectorIsa>::detect().is_some()
            }
            fn quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Result<Tensor> {
                match <$isa as VectorIsa>::detect() {
                    Some(isa) => quantize::quantize_per_tensor(isa, x, scale, zero_point, dtype),
                    None => quantize::quantize_per_tensor(Portable, x, scale, zero_point, dtype),
                }
            }
            fn quantize_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64, dtype: DType) -> Result<Tensor> {
                match <$isa as VectorIsa>::detect() {
                    Some(isa) => quantize::quantize_per_channel(isa, x, scales, zero_points, axis, dtype),
                    None => quantize::quantize_per_channel(Portable, x, scales, zero_points, axis, dtype),
                }
            }
            fn dequantize(q: &Tensor) -> Result<Tensor> {
                match <$isa as VectorIsa>::detect() {
                    Some(isa) => dequantize::dequantize(isa, q),
                    None => dequantize::dequantize(Portable, q),
                }
            }
            fn relu(x: &Tensor) -> Result<Tensor> {
                match <$isa as VectorIsa>::detect() {
                    Some(isa) => elementwise::relu(isa, x),
                    None => elementwise::relu(Portable, x),
                }
            }
            fn binary(which: BinaryOp, a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
                match <$isa as VectorIsa>::detect() {
                    Some(isa) => elementwise::binary(isa, which, a, b, scale, zero_point),
                    None => elementwise::binary(Portable, which, a, b, scale, zero_point),
                }
            }
            fn add(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
                binary(BinaryOp::Add, qa, qb, scale, zero_point)
            }
            fn add_relu(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
                binary(BinaryOp::AddRelu, qa, qb, scale, zero_point)
            }
            fn mul(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
                binary(BinaryOp::Mul, qa, qb, scale, zero_point)
            }
            fn cat(qx: &[Tensor], dim: i64, scale: Option<f64>, zero_point: Option<i64>) -> Result<Tensor> {
                match <$isa as VectorIsa>::detect() {
                    Some(isa) => cat::cat(isa, qx, dim, scale, zero_point),
                    None => cat::cat(Portable, qx, dim, scale, zero_point),
                }
            }
            fn max_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], dilation: &[i64], ceil_mode: bool) -> Result<Tensor> {
                match <$isa as VectorIsa>::detect() {
                    Some(isa) => pool::max_pool2d(isa, x, kernel_size, stride, padding, dilation, ceil_mode),
                    None => pool::max_pool2d(Portable, x, kernel_size, stride, padding, dilation, ceil_mode),
                }
            }
            register_kernel! {
                op: "quantize_per_tensor", dtypes: [Float32], name: concat!($prefix, "_quantize_per_tensor"),
                priority: $priority, is_supported: supported,
                fn quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Tensor
            }
            register_kernel! {
                op: "quantize_per_channel", dtypes: [Float32], name: concat!($prefix, "_quantize_per_channel"),
                priority: $priority, is_supported: supported,
                fn quantize_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64, dtype: DType) -> Tensor
            }
            register_kernel! {
                op: "dequantize", dtypes: [QUInt8, QInt8, QInt32], name: concat!($prefix, "_dequantize"),
                priority: $priority, is_supported: supported,
                fn dequantize(q: &Tensor) -> Tensor
            }
            register_kernel! {
                op: "relu", dtypes: [QUInt8, QInt8, QInt32], name: concat!($prefix, "_relu"),
                priority: $priority, is_supported: supported,
                fn relu(x: &Tensor) -> Tensor
            }
            register_kernel! {
                op: "quantized::add", dtypes: [QUInt8, QInt8], name: concat!($prefix, "_add"),
                priority: $priority, is_supported: supported,
                fn add(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
            }
            register_kernel! {
                op: "quantized::add_relu", dtypes: [QUInt8, QInt8], name: concat!($prefix, "_add_relu"),
                priority: $priority, is_supported: supported,
                fn add_relu(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
            }
            register_kernel! {
                op: "quantized::mul", dtypes: [QUInt8, QInt8], name: concat!($prefix, "_mul"),
                priority: $priority, is_supported: supported,
                fn mul(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor
            }
            register_kernel! {
                op: "quantized::cat", dtypes: [QUInt8, QInt8], name: concat!($prefix, "_cat"),
                priority: $priority, is_supported: supported,
                fn cat(qx: &[Tensor], dim: i64, scale: Option<f64>, zero_point: Option<i64>) -> Tensor
            }
            register_kernel! {
                op: "max_pool2d", dtypes: [QUInt8, QInt8, QInt16, QInt32], name: concat!($prefix, "_max_pool2d"),
                priority: $priority, is_supported: supported,
                fn max_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], dilation: &[i64], ceil_mode: bool) -> Tensor
            }
        };
    };
}
