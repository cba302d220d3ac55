//! The quantization-parameter accessors as operators.

use qtensor_runtime::ops as op;
use qtensor_runtime::{register_kernel, Priority, Result, Tensor};

macro_rules! accessor_kernels {
    ($($op:expr => $method:ident -> $ret:ty as $name:literal;)*) => {$(
        const _: () = {
            fn kernel(q: &Tensor) -> Result<$ret> {
                q.$method()
            }
            register_kernel! {
                op: $op,
                dtypes: [QUInt8, QInt8, QInt16, QInt32],
                name: $name,
                priority: Priority::REFERENCE,
                fn kernel(q: &Tensor) -> $ret
            }
        };
    )*};
}

accessor_kernels! {
    op::Q_SCALE => q_scale -> f64 as "reference_q_scale";
    op::Q_ZERO_POINT => q_zero_point -> i64 as "reference_q_zero_point";
    op::Q_PER_CHANNEL_SCALES => q_per_channel_scales -> Tensor as "reference_q_per_channel_scales";
    op::Q_PER_CHANNEL_ZERO_POINTS => q_per_channel_zero_points -> Tensor as "reference_q_per_channel_zero_points";
    op::Q_PER_CHANNEL_AXIS => q_per_channel_axis -> i64 as "reference_q_per_channel_axis";
}
