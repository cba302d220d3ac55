//! The packed-weight forms of conv2d and linear (`quantized::conv2d.new`,
//! `quantized::linear.packed`, ...): each unpacks PyTorch's packed-weight
//! object and runs the plain reference kernel on its parts.

use qtensor_runtime::ops as op;
use qtensor_runtime::packed::{Conv2dPackedParams, LinearPackedParams};
use qtensor_runtime::{register_kernel, Priority, Result, Tensor};

fn reference_conv_packed(
    relu: bool,
    x: &Tensor,
    w: &Conv2dPackedParams,
    y_scale: f64,
    y_zero_point: i64,
) -> Result<Tensor> {
    let op = if relu { "quantized::conv2d_relu.new" } else { "quantized::conv2d.new" };
    let (p, x) = w.plain_conv(op, x)?;
    super::conv::reference_conv(
        relu,
        &x,
        &p.weight,
        p.bias.as_ref(),
        &p.stride,
        &p.padding,
        &p.dilation,
        p.groups,
        y_scale,
        y_zero_point,
    )
}

fn reference_linear_packed(
    relu: bool,
    x: &Tensor,
    w: &LinearPackedParams,
    y_scale: f64,
    y_zero_point: i64,
) -> Result<Tensor> {
    super::linear::reference_linear(relu, x, &w.weight, w.bias.as_ref(), y_scale, y_zero_point)
}

fn reference_linear_dynamic_packed(x: &Tensor, w: &LinearPackedParams, reduce_range: bool) -> Result<Tensor> {
    super::linear::reference_linear_dynamic(x, &w.weight, w.bias.as_ref(), reduce_range)
}

register_kernel! {
    dtypes: [QUInt8],
    priority: Priority::REFERENCE,
    variants: {
        fn reference_conv_packed(x: &Tensor, w: &Conv2dPackedParams, y_scale: f64, y_zero_point: i64) -> Tensor {
            op::quantized::CONV2D_NEW => (false, "reference_conv2d_new"),
            op::quantized::CONV2D_RELU_NEW => (true, "reference_conv2d_relu_new"),
        }
        fn reference_linear_packed(x: &Tensor, w: &LinearPackedParams, y_scale: f64, y_zero_point: i64) -> Tensor {
            op::quantized::LINEAR_PACKED => (false, "reference_linear_packed"),
            op::quantized::LINEAR_RELU_PACKED => (true, "reference_linear_relu_packed"),
        }
    }
}

register_kernel! {
    op: op::quantized::LINEAR_DYNAMIC_PACKED, dtypes: [Float32], name: "reference_linear_dynamic_packed",
    priority: Priority::REFERENCE,
    fn reference_linear_dynamic_packed(x: &Tensor, w: &LinearPackedParams, reduce_range: bool) -> Tensor
}
