//! Every operator of `ops.yaml`, declared: the runtime's build script
//! submits each op's schema to the registry and gives it an [`OpName`]
//! constant here, in its namespace's module (`ops::RELU`,
//! `ops::quantized::ADD`, `ops::quantized::CONV2D_NEW`).
//!
//! Kernels, in this workspace or in a plugin, register against these
//! constants, so the ops they serve are declared wherever the runtime is
//! linked, and a misspelt op name does not compile.

use crate::OpName;

include!(concat!(env!("OUT_DIR"), "/ops_declared.rs"));
