//! Registration of the GEMM-backed ops for one ISA.

/// Registers quantized::linear, linear_relu, linear_dynamic, conv2d and
/// conv2d_relu (and PyTorch's packed-weight forms) for one
/// [`GemmIsa`](crate::gemm::GemmIsa) token type at `priority`, with the
/// kernel names written out at the call (so a name seen in a profile greps
/// to the line that registers it).
///
/// Each kernel takes its token from `detect()` once per call (the proof
/// the ISA's methods rely on), which is also its `is_supported`. Without a
/// token (a direct call on a CPU without the ISA, or under a lower cap) it
/// declines.
#[macro_export]
#[doc(hidden)]
macro_rules! register_gemm_kernels {
    (
        $isa:ty, $priority:expr,
        names: {
            linear: $linear:literal, linear_relu: $linear_relu:literal,
            linear_packed: $linear_packed:literal, linear_relu_packed: $linear_relu_packed:literal,
            linear_dynamic: $linear_dynamic:literal, linear_dynamic_packed: $linear_dynamic_packed:literal,
            conv2d: $conv2d:literal, conv2d_relu: $conv2d_relu:literal,
            conv2d_new: $conv2d_new:literal, conv2d_relu_new: $conv2d_relu_new:literal $(,)?
        }
    ) => {
        const _: () = {
            use qtensor_runtime::ops as op;
            use qtensor_runtime::packed::{Conv2dPackedParams, LinearPackedParams};
            use qtensor_runtime::{register_kernel, Result, Tensor};
            use $crate::gemm::GemmIsa;

            $crate::isa_token_helpers!(GemmIsa, $isa);
            fn linear(relu: bool, x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                with_token!(|t| $crate::gemm::linear::linear(t, relu, x, w, b, y_scale, y_zero_point))
            }
            fn linear_dynamic(x: &Tensor, w: &Tensor, b: Option<&Tensor>, reduce_range: bool) -> Result<Tensor> {
                with_token!(|t| $crate::gemm::linear::linear_dynamic(t, x, w, b, reduce_range))
            }
            #[allow(clippy::too_many_arguments)]
            fn conv2d(relu: bool, x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                with_token!(|t| $crate::gemm::conv::conv2d(t, relu, x, w, b, stride, padding, dilation, groups, y_scale, y_zero_point))
            }
            // PyTorch's packed-weight forms: the same drivers on the
            // object's parts.
            fn linear_packed(relu: bool, x: &Tensor, w: &LinearPackedParams, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                linear(relu, x, &w.weight, w.bias.as_ref(), y_scale, y_zero_point)
            }
            fn linear_dynamic_packed(x: &Tensor, w: &LinearPackedParams, reduce_range: bool) -> Result<Tensor> {
                linear_dynamic(x, &w.weight, w.bias.as_ref(), reduce_range)
            }
            fn conv2d_packed(relu: bool, x: &Tensor, w: &Conv2dPackedParams, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                let op = if relu { op::quantized::CONV2D_RELU_NEW } else { op::quantized::CONV2D_NEW };
                let (p, x) = w.plain_conv(&op, x)?;
                conv2d(relu, &x, &p.weight, p.bias.as_ref(), &p.stride, &p.padding, &p.dilation, p.groups, y_scale, y_zero_point)
            }
            register_kernel! {
                dtypes: [QUInt8],
                priority: $priority,
                is_supported: supported,
                variants: {
                    fn linear_packed(x: &Tensor, w: &LinearPackedParams, y_scale: f64, y_zero_point: i64) -> Tensor {
                        op::quantized::LINEAR_PACKED => (false, $linear_packed),
                        op::quantized::LINEAR_RELU_PACKED => (true, $linear_relu_packed),
                    }
                    fn conv2d_packed(x: &Tensor, w: &Conv2dPackedParams, y_scale: f64, y_zero_point: i64) -> Tensor {
                        op::quantized::CONV2D_NEW => (false, $conv2d_new),
                        op::quantized::CONV2D_RELU_NEW => (true, $conv2d_relu_new),
                    }
                    fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Tensor {
                        op::quantized::LINEAR => (false, $linear),
                        op::quantized::LINEAR_RELU => (true, $linear_relu),
                    }
                    fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Tensor {
                        op::quantized::CONV2D => (false, $conv2d),
                        op::quantized::CONV2D_RELU => (true, $conv2d_relu),
                    }
                }
            }
            register_kernel! {
                op: op::quantized::LINEAR_DYNAMIC, dtypes: [Float32], name: $linear_dynamic, priority: $priority,
                is_supported: supported, fn linear_dynamic(x: &Tensor, w: &Tensor, b: Option<&Tensor>, reduce_range: bool) -> Tensor
            }
            register_kernel! {
                op: op::quantized::LINEAR_DYNAMIC_PACKED, dtypes: [Float32], name: $linear_dynamic_packed, priority: $priority,
                is_supported: supported, fn linear_dynamic_packed(x: &Tensor, w: &LinearPackedParams, reduce_range: bool) -> Tensor
            }
        };
    };
}
