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

/// The pieces both registration macros give an ISA token type `$isa` of
/// trait `$trait` (`VectorIsa` or `GemmIsa`): `supported()`, its
/// `is_supported` predicate, and `with_token!(|t| body)`, which runs
/// `body` with `t` bound to the ISA's token, or to the portable one where
/// the CPU (or the cap) has no token to give.
#[macro_export]
#[doc(hidden)]
macro_rules! isa_token_helpers {
    ($trait:ident, $isa:ty) => {
        fn supported() -> bool {
            <$isa as $trait>::detect().is_some()
        }
        #[allow(unused_macros)]
        macro_rules! with_token {
            (|$t:ident| $body:expr) => {
                match <$isa as $trait>::detect() {
                    Some($t) => $body,
                    None => {
                        let $t = $crate::vector::Portable;
                        $body
                    }
                }
            };
        }
    };
}

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
            use $crate::vector::VectorIsa;

            $crate::isa_token_helpers!(VectorIsa, $isa);
            fn quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Result<Tensor> {
                with_token!(|t| quantize::quantize_per_tensor(t, x, scale, zero_point, dtype))
            }
            fn quantize_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64, dtype: DType) -> Result<Tensor> {
                with_token!(|t| quantize::quantize_per_channel(t, x, scales, zero_points, axis, dtype))
            }
            fn dequantize(q: &Tensor) -> Result<Tensor> {
                with_token!(|t| dequantize::dequantize(t, q))
            }
            fn relu(x: &Tensor) -> Result<Tensor> {
                with_token!(|t| elementwise::relu(t, x))
            }
            fn binary(which: BinaryOp, a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
                with_token!(|t| elementwise::binary(t, which, a, b, scale, zero_point))
            }
            fn cat(qx: &[Tensor], dim: i64, scale: Option<f64>, zero_point: Option<i64>) -> Result<Tensor> {
                with_token!(|t| cat::cat(t, qx, dim, scale, zero_point))
            }
            fn max_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], dilation: &[i64], ceil_mode: bool) -> Result<Tensor> {
                with_token!(|t| pool::max_pool2d(t, x, kernel_size, stride, padding, dilation, ceil_mode))
            }
            register_kernel! {
                dtypes: [Float32],
                priority: $priority,
                is_supported: supported,
                kernels: {
                    "quantize_per_tensor" => quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Tensor
                        as concat!($prefix, "_quantize_per_tensor"),
                    "quantize_per_channel" => quantize_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64, dtype: DType) -> Tensor
                        as concat!($prefix, "_quantize_per_channel"),
                }
            }
            register_kernel! {
                dtypes: [QUInt8, QInt8, QInt32],
                priority: $priority,
                is_supported: supported,
                kernels: {
                    "dequantize" => dequantize(q: &Tensor) -> Tensor as concat!($prefix, "_dequantize"),
                    "relu" => relu(x: &Tensor) -> Tensor as concat!($prefix, "_relu"),
                }
            }
            register_kernel! {
                dtypes: [QUInt8, QInt8],
                priority: $priority,
                is_supported: supported,
                variants: {
                    fn binary(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor {
                        "quantized::add" => (BinaryOp::Add, concat!($prefix, "_add")),
                        "quantized::add_relu" => (BinaryOp::AddRelu, concat!($prefix, "_add_relu")),
                        "quantized::mul" => (BinaryOp::Mul, concat!($prefix, "_mul")),
                    }
                }
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
