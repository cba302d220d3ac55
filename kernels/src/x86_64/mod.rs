//! x86-64 kernels. Each is compiled into every x86-64 build and chosen at
//! run time by CPU feature detection: the same binary is correct (and uses
//! the reference kernels) on a CPU without the feature.

pub mod avx2;
pub mod avx512vnni;

/// True when this CPU has AVX2 and FMA (every AVX2 CPU since Haswell), which
/// the `avx2` kernels use together. `is_x86_feature_detected!` caches the
/// answer, so this is a load and a test.
pub fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}
