//! The portable tier: safe Rust, faster than the reference kernels on any
//! CPU (the compiler vectorizes their inner loops), registered at
//! [`Priority::PORTABLE`], between the reference kernels and the ISA ones.
//!
//! Its elementwise and GEMM kernels are the generic drivers run with the
//! [`Portable`] token's routines; these are also what an ISA kernel runs
//! when called directly on a CPU without its ISA.

pub mod pool;
pub mod shuffle;

pub use crate::vector::Portable;
use qtensor_runtime::Priority;

crate::register_vector_kernels!(Portable, Priority::PORTABLE, names: {
    quantize_per_tensor: "portable_quantize_per_tensor", quantize_per_channel: "portable_quantize_per_channel",
    dequantize: "portable_dequantize", relu: "portable_relu",
    add: "portable_add", add_relu: "portable_add_relu", mul: "portable_mul",
    cat: "portable_cat", max_pool2d: "portable_max_pool2d",
    hardswish: "portable_hardswish", hardsigmoid: "portable_hardsigmoid", sigmoid: "portable_sigmoid",
    hardtanh: "portable_hardtanh", relu6: "portable_relu6", clamp: "portable_clamp",
});
crate::register_gemm_kernels!(Portable, Priority::PORTABLE, names: {
    linear: "portable_linear", linear_relu: "portable_linear_relu",
    linear_packed: "portable_linear_packed", linear_relu_packed: "portable_linear_relu_packed",
    linear_dynamic: "portable_linear_dynamic", linear_dynamic_packed: "portable_linear_dynamic_packed",
    conv2d: "portable_conv2d", conv2d_relu: "portable_conv2d_relu",
    conv2d_new: "portable_conv2d_new", conv2d_relu_new: "portable_conv2d_relu_new",
});
