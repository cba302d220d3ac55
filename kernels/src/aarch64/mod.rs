//! aarch64 kernels. NEON is part of the aarch64 baseline, but the kernels
//! still go through the `Neon` token, so the `QTENSOR_ISA` cap can turn
//! them off; the dot-product (`sdot`) and int8 matrix-multiply (`usdot`)
//! GEMMs are chosen at run time where the CPU has those extensions.

pub mod neon;
