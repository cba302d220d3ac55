//! Registration of the GEMM-backed ops for one ISA.

/// Registers quantized::linear, linear_relu, linear_dynamic, conv2d and
/// conv2d_relu for one [`GemmIsa`](crate::gemm::GemmIsa) token type, named
/// `{prefix}_{op}`, at `priority`.
///
/// Each kernel takes its token from `detect()` once per call (the proof
/// the ISA's methods rely on), which is also its `is_supported`. Without a
/// token (a direct call on a CPU without the ISA, or under a lower cap) it
/// runs the same driver with the portable micro-kernel.
#[macro_export]
#[doc(hidden)]
macro_rules! register_gemm_kernels {
    ($isa:ty, $prefix:literal, $priority:expr) => {
        const _: () = {
            use qtensor_runtime::{register_kernel, Result, Tensor};
            use $crate::gemm::conv::conv2d as conv;
            use $crate::gemm::linear::{linear as lin, linear_dynamic as lin_dyn};
            use $crate::gemm::GemmIsa;
            use $crate::vector::Portable;

            fn supported() -> bool {
                <$isa as GemmIsa>::detect().is_some()
            }
            fn linear_of(relu: bool, x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                match <$isa as GemmIsa>::detect() {
                    Some(isa) => lin(isa, relu, x, w, b, y_scale, y_zero_point),
                    None => lin(Portable, relu, x, w, b, y_scale, y_zero_point),
                }
            }
            fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                linear_of(false, x, w, b, y_scale, y_zero_point)
            }
            fn linear_relu(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                linear_of(true, x, w, b, y_scale, y_zero_point)
            }
            fn linear_dynamic(x: &Tensor, w: &Tensor, b: Option<&Tensor>, reduce_range: bool) -> Result<Tensor> {
                match <$isa as GemmIsa>::detect() {
                    Some(isa) => lin_dyn(isa, x, w, b, reduce_range),
                    None => lin_dyn(Portable, x, w, b, reduce_range),
                }
            }
            #[allow(clippy::too_many_arguments)]
            fn conv_of(relu: bool, x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                match <$isa as GemmIsa>::detect() {
                    Some(isa) => conv(isa, relu, x, w, b, stride, padding, dilation, groups, y_scale, y_zero_point),
                    None => conv(Portable, relu, x, w, b, stride, padding, dilation, groups, y_scale, y_zero_point),
                }
            }
            #[allow(clippy::too_many_arguments)]
            fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                conv_of(false, x, w, b, stride, padding, dilation, groups, y_scale, y_zero_point)
            }
            #[allow(clippy::too_many_arguments)]
            fn conv2d_relu(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Result<Tensor> {
                conv_of(true, x, w, b, stride, padding, dilation, groups, y_scale, y_zero_point)
            }
            register_kernel! {
                op: "quantized::linear", dtypes: [QUInt8], name: concat!($prefix, "_linear"), priority: $priority,
                is_supported: supported, fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Tensor
            }
            register_kernel! {
                op: "quantized::linear_relu", dtypes: [QUInt8], name: concat!($prefix, "_linear_relu"), priority: $priority,
                is_supported: supported, fn linear_relu(x: &Tensor, w: &Tensor, b: Option<&Tensor>, y_scale: f64, y_zero_point: i64) -> Tensor
            }
            register_kernel! {
                op: "quantized::linear_dynamic", dtypes: [Float32], name: concat!($prefix, "_linear_dynamic"), priority: $priority,
                is_supported: supported, fn linear_dynamic(x: &Tensor, w: &Tensor, b: Option<&Tensor>, reduce_range: bool) -> Tensor
            }
            register_kernel! {
                op: "quantized::conv2d", dtypes: [QUInt8], name: concat!($prefix, "_conv2d"), priority: $priority, is_supported: supported,
                fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Tensor
            }
            register_kernel! {
                op: "quantized::conv2d_relu", dtypes: [QUInt8], name: concat!($prefix, "_conv2d_relu"), priority: $priority, is_supported: supported,
                fn conv2d_relu(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64, y_scale: f64, y_zero_point: i64) -> Tensor
            }
        };
    };
}
