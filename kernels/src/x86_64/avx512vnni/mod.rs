//! AVX-512 VNNI kernels: `vpdpbusd` multiplies u8 by s8 and sums four
//! products into i32 with no intermediate saturation, 64 per instruction.
//! Registered above the AVX2 kernels and chosen only where the CPU has
//! AVX-512F, AVX-512BW and AVX-512 VNNI.

pub mod gemm;

/// True when this CPU has the AVX-512 subsets these kernels use (and AVX2),
/// and the ISA cap (`QTENSOR_ISA`) allows them.
pub fn has_avx512vnni() -> bool {
    qtensor_runtime::Isa::Avx512Vnni.enabled()
}

/// The priority of the AVX-512 VNNI kernels (AVX2 ones have 10).
pub const PRIORITY: i32 = 20;
