//! The elementwise, cat and pooling ops, written once over
//! [`VectorIsa`](crate::vector::VectorIsa): the tensor work (qparams,
//! layouts, threads, declining what the ISA path does not take) lives here, and each ISA
//! supplies its slice routines. [`register_vector_kernels!`](crate::register_vector_kernels) registers the
//! whole family for one ISA.

pub mod activation;
pub mod cat;
pub mod dequantize;
pub mod elementwise;
pub mod pool;
pub mod quantize;
pub(crate) mod table_cache;

/// The pieces both registration macros give an ISA token type `$isa` of
/// trait `$trait` (`VectorIsa` or `GemmIsa`): `supported()`, its
/// `is_supported` predicate, and `with_token!(|t| body)`, which runs
/// `body` with `t` bound to the ISA's token. The dispatcher calls a kernel
/// only where `supported()` holds; the token is the proof that the ISA's
/// `unsafe` routines rely on, so a direct call on a CPU (or under a cap)
/// without the ISA declines rather than guess another path.
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
                    None => Err(qtensor_runtime::Error::declined("this CPU (or the ISA cap) lacks the kernel's ISA")),
                }
            };
        }
    };
}

/// Registers quantize_per_tensor, quantize_per_channel, dequantize, relu,
/// quantized::add, add_relu, mul, cat, max_pool2d and the table-driven
/// activations (hardswish, hardsigmoid, sigmoid, hardtanh, relu6, clamp)
/// for one
/// [`VectorIsa`](crate::vector::VectorIsa) token type at `priority`, with
/// the kernel names written out at the call (so a name seen in a profile
/// greps to the line that registers it).
///
/// Each kernel takes its token from `detect()` once per call (the proof
/// the ISA's methods rely on), which is also its `is_supported`. Without a
/// token (a direct call on a CPU without the ISA, or under a lower cap) it
/// declines.
#[macro_export]
#[doc(hidden)]
macro_rules! register_vector_kernels {
    (
        $isa:ty, $priority:expr,
        names: {
            quantize_per_tensor: $quantize_per_tensor:literal, quantize_per_channel: $quantize_per_channel:literal,
            dequantize: $dequantize:literal, relu: $relu:literal,
            add: $add:literal, add_relu: $add_relu:literal, mul: $mul:literal,
            cat: $cat:literal, max_pool2d: $max_pool2d:literal,
            hardswish: $hardswish:literal, hardsigmoid: $hardsigmoid:literal, sigmoid: $sigmoid:literal,
            hardtanh: $hardtanh:literal, relu6: $relu6:literal, clamp: $clamp:literal $(,)?
        }
    ) => {
        const _: () = {
            use qtensor_runtime::ops as op;
            use qtensor_runtime::{register_kernel, DType, Result, Tensor};
            use $crate::ops::elementwise::BinaryOp;
            use $crate::ops::{activation, cat, dequantize, elementwise, pool, quantize};
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
            fn hardswish(x: &Tensor, output_scale: f64, output_zero_point: i64) -> Result<Tensor> {
                with_token!(|t| activation::hardswish(t, x, output_scale, output_zero_point))
            }
            fn hardsigmoid(x: &Tensor) -> Result<Tensor> {
                with_token!(|t| activation::hardsigmoid(t, x))
            }
            fn sigmoid(x: &Tensor) -> Result<Tensor> {
                with_token!(|t| activation::sigmoid(t, x))
            }
            fn hardtanh(x: &Tensor, min_val: f64, max_val: f64) -> Result<Tensor> {
                with_token!(|t| activation::clamp_kernel(t, "hardtanh", x, Some(min_val), Some(max_val)))
            }
            fn relu6(x: &Tensor) -> Result<Tensor> {
                with_token!(|t| activation::clamp_kernel(t, "relu6", x, Some(0.0), Some(6.0)))
            }
            fn clamp(x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
                with_token!(|t| activation::clamp(t, x, min, max))
            }
            $crate::register_activation_kernels!([QUInt8, QInt8], $priority, supported, [
                hardswish as $hardswish, hardsigmoid as $hardsigmoid, sigmoid as $sigmoid,
                hardtanh as $hardtanh, relu6 as $relu6, clamp as $clamp,
            ]);
            register_kernel! {
                dtypes: [Float32],
                priority: $priority,
                is_supported: supported,
                kernels: {
                    op::QUANTIZE_PER_TENSOR => quantize_per_tensor(x: &Tensor, scale: f64, zero_point: i64, dtype: DType) -> Tensor
                        as $quantize_per_tensor,
                    op::QUANTIZE_PER_CHANNEL => quantize_per_channel(x: &Tensor, scales: &Tensor, zero_points: &Tensor, axis: i64, dtype: DType) -> Tensor
                        as $quantize_per_channel,
                }
            }
            register_kernel! {
                dtypes: [QUInt8, QInt8, QInt32],
                priority: $priority,
                is_supported: supported,
                kernels: {
                    op::DEQUANTIZE => dequantize(q: &Tensor) -> Tensor as $dequantize,
                    op::RELU => relu(x: &Tensor) -> Tensor as $relu,
                }
            }
            register_kernel! {
                dtypes: [QUInt8, QInt8],
                priority: $priority,
                is_supported: supported,
                variants: {
                    fn binary(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor {
                        op::quantized::ADD => (BinaryOp::Add, $add),
                        op::quantized::ADD_RELU => (BinaryOp::AddRelu, $add_relu),
                        op::quantized::MUL => (BinaryOp::Mul, $mul),
                    }
                }
            }
            register_kernel! {
                op: op::quantized::CAT, dtypes: [QUInt8, QInt8], name: $cat,
                priority: $priority, is_supported: supported,
                fn cat(qx: &[Tensor], dim: i64, scale: Option<f64>, zero_point: Option<i64>) -> Tensor
            }
            register_kernel! {
                op: op::MAX_POOL2D, dtypes: [QUInt8, QInt8, QInt16, QInt32], name: $max_pool2d,
                priority: $priority, is_supported: supported,
                fn max_pool2d(x: &Tensor, kernel_size: &[i64], stride: &[i64], padding: &[i64], dilation: &[i64], ceil_mode: bool) -> Tensor
            }
        };
    };
}
