//! The qtensor runtime: tensors, quantizers, boxed values, schemas, the
//! kernel registry and the dispatcher.
//!
//! Most users depend on the `qtensor` facade crate, which re-exports all of
//! this together with the built-in kernels and the typed op functions.

#![warn(missing_docs)]

pub mod conv_geometry;
pub mod dispatch;
pub mod dispatch_key;
pub mod dtype;
pub mod engine;
pub mod error;
#[cfg(feature = "ndarray")]
pub mod interop;
pub mod isa;
/// The `ndarray` crate the conversions use (the `ndarray` feature).
#[cfg(feature = "ndarray")]
pub use ndarray;
pub mod numerics;
pub mod ops;
pub mod packed;
pub mod print;
pub mod profiler;
pub mod pyfmt;
pub mod quantizer;
pub use qtensor_schema as schema;
pub mod serialize;
pub mod setting;
pub mod storage;
pub mod tensor;
pub mod threads;
pub mod value;

pub use dispatch::op_name::OpName;
pub use dispatch::{dispatcher, layers, registration, Dispatcher, KernelInfo, OpHandle, OperatorEntry};
pub use dispatch_key::DispatchKey;
pub use dtype::{DType, StorageType};
pub use engine::{engine, set_engine, Engine};
pub use error::{Error, Result};
pub use isa::Isa;
pub use quantizer::{QParams, QScheme, Quantizer};
pub use registration::{KernelDescriptor, OpDeclaration, Priority};
pub use schema::{ArgType, OpSchema, ScriptClass, Tolerance};
pub use storage::{Element, Storage};
pub use tensor::format::MemoryFormat;
pub use tensor::Tensor;
pub use value::{FromArg, FromReturn, IntoReturn, Scalar, ScriptClassData, ScriptObject, Value};

#[doc(hidden)]
pub use inventory;
