//! x86-64 kernels. Each is compiled into every x86-64 build and chosen at
//! run time by CPU feature detection: the same binary is correct (and uses
//! the reference kernels) on a CPU without the feature.

pub mod avx2;
pub mod avx512vnni;

/// True when this CPU has AVX2 and FMA (every AVX2 CPU since Haswell), which
/// the `avx2` kernels use together, and the ISA cap (`QTENSOR_ISA`) allows
/// them. The detection is cached, so this is a few loads and tests.
pub fn has_avx2() -> bool {
    qtensor_runtime::Isa::Avx2.enabled()
}
