//! x86-64 kernels. Each is compiled into every x86-64 build and chosen at
//! run time by CPU feature detection (through the ISA tokens of
//! `qtensor_runtime::isa`): the same binary is correct, and uses the
//! portable kernels, on a CPU without the feature.

pub mod amx;
pub mod avx2;
pub mod avx512vnni;
