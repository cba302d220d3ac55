//! The quantization-parameter accessors as operators.

use qtensor_runtime::{register_kernel, Priority, Result, Tensor};

macro_rules! accessor_kernels {
    ($($op:literal => $method:ident -> $ret:ty;)*) => {$(
        const _: () = {
            fn kernel(q: &Tensor) -> Result<$ret> {
                q.$method()
            }
            register_kernel! {
                op: $op,
                dtypes: [QUInt8, QInt8, QInt16, QInt32],
                name: concat!("reference_", $op),
                priority: Priority::REFERENCE,
                fn kernel(q: &Tensor) -> $ret
            }
        };
    )*};
}

accessor_kernels! {
    "q_scale" => q_scale -> f64;
    "q_zero_point" => q_zero_point -> i64;
    "q_per_channel_scales" => q_per_channel_scales -> Tensor;
    "q_per_channel_zero_points" => q_per_channel_zero_points -> Tensor;
    "q_per_channel_axis" => q_per_channel_axis -> i64;
}
