//! Whose integers the quantized convs and linears give: PyTorch's `fbgemm`
//! engine, its `x86` engine, or the `exact` arithmetic without fbgemm's
//! int16 limit. Chosen by `QTENSOR_ENGINE` or [`set_engine`], for the whole
//! process, as `torch.backends.quantized.engine` is in PyTorch.
//!
//! The engine changes only the arithmetic around the exact integer sums of
//! a conv (see `docs/whose-integers.md`):
//!
//! - **`fbgemm`**: fbgemm's requantization
//!   (`numerics::AccRequant`), and the int16 saturation of fbgemm's
//!   depthwise kernel ([`fbgemm_depthwise`]) where fbgemm takes that
//!   kernel. These are PyTorch's integers under
//!   `torch.backends.quantized.engine = "fbgemm"` on a CPU with AVX-512
//!   VNNI.
//! - **`fbgemm-avx2`**: the same on a CPU without AVX-512 VNNI (AMD Zen 2
//!   and 3, Intel before Ice Lake), where fbgemm's GEMMs sum neighbouring
//!   products in int16 too (`vpmaddubsw`): every conv and every linear
//!   ([`Engine::gemm_pairs_saturate`], `reference::int16_pairs`).
//! - **`x86`**: PyTorch's default engine, as it runs on this CPU. Each conv
//!   goes to oneDNN or fbgemm by PyTorch's own rule ([`conv_route`]);
//!   oneDNN requantizes with `numerics::OneDnnRequant` and never saturates.
//!   oneDNN's rounding depends on its kernels: its AVX-512 VNNI kernels
//!   multiply by the input and weight scales one after the other, its AMX
//!   and AVX2 kernels by their product rounded to f32. **`x86-vnni`** is a
//!   CPU with AVX-512 VNNI and no AMX (AMD Zen 4 and 5, Intel Ice Lake):
//!   every conv separate. On a CPU without AVX-512 VNNI, PyTorch's `x86`
//!   sends every conv to fbgemm, and qtensor's `x86` there is
//!   `fbgemm-avx2`. **`x86-amx`** is a CPU with AMX-INT8 (Intel Xeon
//!   from Sapphire Rapids on): folded, except depthwise convs and 1x1
//!   convs over a batch of one, which oneDNN runs on AVX-512 VNNI kernels. `x86` picks
//!   between them by this CPU, as PyTorch's oneDNN does (and folds every
//!   conv when `ONEDNN_MAX_CPU_ISA` caps oneDNN to AVX2); the other two
//!   give one machine's integers on any machine ([`OneDnnKernels`]).
//! - **`exact`** (the default): fbgemm's requantization over the exact sums
//!   everywhere: what PyTorch's fbgemm would give without the int16 limit,
//!   and equal to `fbgemm` wherever no pair of taps leaves int16 (every
//!   input inside a `reduce_range` calibration). It is the default because
//!   it is the one arithmetic that is the same on every machine and
//!   correct for every input: PyTorch's own default, `x86`, gives other
//!   integers on an AMX CPU than on a VNNI one, and fbgemm's on a CPU
//!   without VNNI; the golden cases pin it.
//!
//! add, mul, cat, pooling and the other ops give the same integers under
//! every engine, as they do in PyTorch; linear too, except that fbgemm's
//! int16 pairs saturate in it where they do in every conv
//! (`fbgemm-avx2`, and `x86` on a CPU without AVX-512 VNNI).

use crate::conv_geometry::ConvGeometry;
use crate::error::{Error, Result};
use crate::setting::ProcessSetting;
use std::sync::OnceLock;

/// Whose integers quantized convs give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// PyTorch's `fbgemm` engine on a CPU with AVX-512 VNNI, saturation
    /// included (its depthwise kernel's).
    Fbgemm,
    /// PyTorch's `fbgemm` engine on a CPU without AVX-512 VNNI: every conv
    /// and linear sums pairs of products in int16, with saturation.
    FbgemmAvx2,
    /// PyTorch's `x86` engine as it runs on this CPU: oneDNN for most
    /// convs, fbgemm for the rest (oneDNN's kernels by
    /// [`OneDnnKernels::here`]); on a CPU without AVX-512 VNNI, fbgemm for
    /// every conv, as [`Engine::FbgemmAvx2`].
    X86,
    /// PyTorch's `x86` engine with oneDNN's AVX-512 VNNI kernels (AMD Zen 4
    /// and 5, Intel Ice Lake and Cascade Lake).
    X86Vnni,
    /// PyTorch's `x86` engine with oneDNN's AMX kernels (Intel Xeon from
    /// Sapphire Rapids on): the input and weight scales folded into one f32
    /// multiplier, except for depthwise convs and 1x1 convs over a batch
    /// of one.
    X86Amx,
    /// fbgemm's requantization over exact sums, never saturating.
    Exact,
}

impl Engine {
    /// Every engine.
    pub const ALL: [Engine; 6] =
        [Engine::Fbgemm, Engine::FbgemmAvx2, Engine::X86, Engine::X86Vnni, Engine::X86Amx, Engine::Exact];

    /// The name `QTENSOR_ENGINE` and `--engine` take.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Fbgemm => "fbgemm",
            Engine::FbgemmAvx2 => "fbgemm-avx2",
            Engine::X86 => "x86",
            Engine::X86Vnni => "x86-vnni",
            Engine::X86Amx => "x86-amx",
            Engine::Exact => "exact",
        }
    }

    /// Parses an engine name (case-insensitive).
    pub fn parse(s: &str) -> Result<Engine> {
        let s = s.trim().to_ascii_lowercase();
        Engine::ALL.into_iter().find(|e| e.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Engine::ALL.iter().map(|e| e.name()).collect();
            Error::invalid("QTENSOR_ENGINE", format!("unknown engine `{s}`; expected one of {}", names.join(", ")))
        })
    }

    /// True when fbgemm's GEMMs (every conv it computes, and every
    /// linear) sum pairs of neighbouring u8 x i8 products in int16 with
    /// saturation under this engine: `fbgemm-avx2`, and `x86` on a machine
    /// whose fbgemm has no AVX-512 VNNI ([`fbgemm_has_vnni_here`]). See
    /// `reference::int16_pairs` in qtensor-kernels for the sums.
    pub fn gemm_pairs_saturate(self) -> bool {
        match self {
            Engine::FbgemmAvx2 => true,
            Engine::X86 => !fbgemm_has_vnni_here(),
            Engine::Fbgemm | Engine::X86Vnni | Engine::X86Amx | Engine::Exact => false,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Engine {
    type Err = Error;

    fn from_str(s: &str) -> Result<Engine> {
        Engine::parse(s)
    }
}

/// The engine: [`set_engine`]'s, else `QTENSOR_ENGINE`'s, else exact.
static ENGINE: ProcessSetting<Engine> =
    ProcessSetting::new("QTENSOR_ENGINE", &Engine::ALL, Engine::Exact, Engine::parse, "using exact");

/// The engine in force: the last [`set_engine`], else `QTENSOR_ENGINE`,
/// else [`Engine::Exact`].
pub fn engine() -> Engine {
    ENGINE.get()
}

/// Sets the engine for the whole process (over `QTENSOR_ENGINE`), like
/// `torch.backends.quantized.engine = ...`. Ops already running finish
/// with the engine they started with.
pub fn set_engine(engine: Engine) {
    ENGINE.set(Some(engine));
}

/// The requantization a conv uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvRoute {
    /// fbgemm's (`numerics::AccRequant`).
    Fbgemm {
        /// Pairs of neighbouring products sum in int16 with saturation, in
        /// fbgemm's order (`reference::int16_pairs` in qtensor-kernels):
        /// the depthwise kernel's under every engine but
        /// [`Engine::Exact`], and every fbgemm conv's where
        /// [`Engine::gemm_pairs_saturate`].
        saturate: bool,
        /// For a weight quantized per tensor, the bias term `bias · f32(1 /
        /// aws)` is rounded to f32 before the accumulator is added
        /// (`numerics::AccRequant::with_rounded_reciprocal`), not fused with
        /// it: fbgemm's depthwise kernel where its GEMMs saturate (measured
        /// on a Zen 2: 0 of 3.2 M outputs differ, against 2 fused).
        rounded_bias: bool,
    },
    /// oneDNN's (`numerics::OneDnnRequant`), over exact sums; `folded`
    /// when its kernels multiply by one f32 product of the input and
    /// weight scales.
    OneDnn {
        /// One multiplier `f32(x_scale * w_scale)` instead of two.
        folded: bool,
    },
}

/// Which of oneDNN's int8 conv kernels PyTorch's `x86` engine runs, which
/// decides whether it multiplies by the input and weight scales one after
/// the other or by their product (measured with PyTorch 2.15 and oneDNN
/// 3.13: a conv whose integers tell the two apart matches one of them, by
/// this rule, on every network and sweep tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneDnnKernels {
    /// AVX-512 VNNI: the two scales one after the other.
    Avx512Vnni,
    /// AMX: their product, except depthwise convs and 1x1 convs over a
    /// batch of one (which oneDNN runs on AVX-512 VNNI kernels).
    Amx,
    /// AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2`): their product.
    Avx2,
}

impl OneDnnKernels {
    /// The kernels PyTorch's oneDNN runs on this CPU, under
    /// `ONEDNN_MAX_CPU_ISA` if set. Read from the CPU, never from
    /// `QTENSOR_ISA`: qtensor's own kernels give every engine's integers
    /// under every cap.
    pub fn here() -> OneDnnKernels {
        static HERE: OnceLock<OneDnnKernels> = OnceLock::new();
        *HERE.get_or_init(|| {
            let cap = std::env::var("ONEDNN_MAX_CPU_ISA").unwrap_or_default().to_ascii_lowercase();
            if cap.starts_with("avx2") || cap.starts_with("sse") {
                OneDnnKernels::Avx2
            } else if cap.starts_with("avx512") && !cap.contains("amx") {
                OneDnnKernels::Avx512Vnni
            } else if cpu_has_amx_int8() {
                OneDnnKernels::Amx
            } else {
                OneDnnKernels::Avx512Vnni
            }
        })
    }

    /// True when these kernels multiply this conv by one folded scale.
    pub fn folds_scales(self, c: &ConvGeometry) -> bool {
        match self {
            OneDnnKernels::Avx512Vnni => false,
            OneDnnKernels::Avx2 => true,
            OneDnnKernels::Amx => !(c.is_depthwise() || c.kernel == [1, 1] && c.batch() == 1),
        }
    }
}

/// True when PyTorch's fbgemm runs its AVX-512 VNNI kernels on this
/// machine, whose sums are exact: the CPU has AVX-512 VNNI and
/// `FBGEMM_ENABLE_INSTRUCTIONS` does not cap fbgemm to `AVX2`, `AVX512`
/// or `AVX512_E1`. Otherwise fbgemm's GEMMs saturate int16 pairs
/// ([`Engine::gemm_pairs_saturate`]). Off x86-64 (qtensor under qemu,
/// checked against PyTorch elsewhere) it answers as for a VNNI machine;
/// name the engine there.
pub fn fbgemm_has_vnni_here() -> bool {
    static HERE: OnceLock<bool> = OnceLock::new();
    *HERE.get_or_init(|| {
        let cap = std::env::var("FBGEMM_ENABLE_INSTRUCTIONS").unwrap_or_default().trim().to_ascii_uppercase();
        let capped = matches!(cap.as_str(), "AVX2" | "AVX512" | "AVX512_E1");
        !capped && (cpu_has_avx512_vnni() || !cfg!(target_arch = "x86_64"))
    })
}

/// CPUID leaf 7: ECX bit 11 is AVX512-VNNI (and AVX-512 needs the OS to
/// keep the zmm state, which `is_x86_feature_detected!` checks).
fn cpu_has_avx512_vnni() -> bool {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    {
        // Off x86-64 the question is about a machine qtensor cannot see;
        // the `x86` engine answers as on a VNNI CPU, as it always has.
        true
    }
}

/// CPUID leaf 7: EDX bit 24 is AMX-TILE, bit 25 AMX-INT8.
fn cpu_has_amx_int8() -> bool {
    // (Miri cannot run CPUID.)
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        // SAFETY: CPUID exists on every x86-64 CPU and has no side effects.
        // (The intrinsic is safe in newer std, unsafe in the MSRV's.)
        #[allow(unused_unsafe)]
        let leaf7 = unsafe { std::arch::x86_64::__cpuid_count(7, 0) };
        leaf7.edx & (1 << 24) != 0 && leaf7.edx & (1 << 25) != 0
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    {
        false
    }
}

/// True when fbgemm computes this conv with its depthwise kernel
/// (`fbgemm::takeDepthWiseFastPath`): one input channel per group, one or
/// two outputs per group, groups a multiple of 8, a square 3x3, 5x5 or
/// 7x7 kernel with "same" padding, stride 1 or 2, no dilation. That kernel
/// sums pairs of u8 x i8 products in int16 with saturation (`vpmaddubsw`).
pub fn fbgemm_depthwise(c: &ConvGeometry) -> bool {
    let [kh, kw] = c.kernel;
    c.groups == c.in_channels()
        && (c.out_channels == c.groups || c.out_channels == 2 * c.groups)
        && c.groups.is_multiple_of(8)
        && kh == kw
        && matches!(kh, 3 | 5 | 7)
        && c.stride.iter().all(|&s| s == 1 || s == 2)
        && c.dilation == [1, 1]
        && c.padding == [(kh - 1) / 2, (kw - 1) / 2]
}

/// How `engine` computes this conv, whose weight zero points are all 0
/// when `symmetric_weight`. Under the `x86` engines it is PyTorch's
/// `should_use_onednn_quant` on a Linux CPU with AVX-512 VNNI: oneDNN when
/// groups <= 100 and every weight zero point is 0, fbgemm otherwise.
pub fn conv_route(engine: Engine, c: &ConvGeometry, symmetric_weight: bool) -> ConvRoute {
    let depthwise = fbgemm_depthwise(c);
    let avx2 = engine.gemm_pairs_saturate();
    let fbgemm = ConvRoute::Fbgemm { saturate: depthwise || avx2, rounded_bias: depthwise && avx2 };
    let kernels = match engine {
        Engine::Exact => return ConvRoute::Fbgemm { saturate: false, rounded_bias: false },
        Engine::Fbgemm | Engine::FbgemmAvx2 => return fbgemm,
        _ if c.groups > 100 || !symmetric_weight => return fbgemm,
        // PyTorch's oneDNN route needs AVX-512 VNNI (cpuinfo's, whatever
        // caps oneDNN or fbgemm run under).
        Engine::X86 if !cpu_has_avx512_vnni() => return fbgemm,
        Engine::X86 => OneDnnKernels::here(),
        Engine::X86Vnni => OneDnnKernels::Avx512Vnni,
        Engine::X86Amx => OneDnnKernels::Amx,
    };
    ConvRoute::OneDnn { folded: kernels.folds_scales(c) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A depthwise conv of `channels` over one 56x56 image.
    fn dw(channels: usize, k: usize, stride: usize) -> ConvGeometry {
        ConvGeometry {
            input: [1, channels, 56, 56],
            out_channels: channels,
            groups: channels,
            kernel: [k, k],
            stride: [stride; 2],
            padding: [(k - 1) / 2; 2],
            dilation: [1, 1],
            out_hw: [56 / stride; 2],
        }
    }

    #[test]
    fn routes_like_pytorch() {
        let fbgemm_dw = ConvRoute::Fbgemm { saturate: true, rounded_bias: false };
        assert_eq!(conv_route(Engine::Fbgemm, &dw(32, 3, 1), true), fbgemm_dw);
        assert_eq!(
            conv_route(Engine::Exact, &dw(32, 3, 1), true),
            ConvRoute::Fbgemm { saturate: false, rounded_bias: false }
        );
        // oneDNN up to 100 groups, fbgemm beyond.
        assert_eq!(conv_route(Engine::X86Vnni, &dw(96, 3, 2), true), ConvRoute::OneDnn { folded: false });
        assert_eq!(conv_route(Engine::X86Amx, &dw(96, 3, 2), true), ConvRoute::OneDnn { folded: false });
        let dense = ConvGeometry { groups: 1, ..dw(96, 3, 2) };
        assert_eq!(conv_route(Engine::X86Amx, &dense, true), ConvRoute::OneDnn { folded: true });
        // oneDNN's AMX build runs 1x1 convs over one image on its VNNI kernel.
        let pointwise = ConvGeometry { groups: 1, kernel: [1, 1], padding: [0, 0], ..dw(64, 1, 1) };
        assert_eq!(conv_route(Engine::X86Amx, &pointwise, true), ConvRoute::OneDnn { folded: false });
        let batch = ConvGeometry { input: [2, 64, 56, 56], ..pointwise };
        assert_eq!(conv_route(Engine::X86Amx, &batch, true), ConvRoute::OneDnn { folded: true });
        // Over 100 groups, fbgemm; with its rounded bias term where this
        // machine's fbgemm has no VNNI.
        let here = Engine::X86.gemm_pairs_saturate();
        let x86_dw = ConvRoute::Fbgemm { saturate: true, rounded_bias: here };
        assert_eq!(conv_route(Engine::X86, &dw(144, 5, 1), true), x86_dw);
        if !cpu_has_avx512_vnni() {
            // PyTorch's x86 engine is fbgemm for every conv without VNNI.
            assert_eq!(conv_route(Engine::X86, &dense, true), conv_route(Engine::FbgemmAvx2, &dense, true));
        }
        // ShuffleNet's 58 channels are not a multiple of 8: fbgemm's GEMM.
        assert_eq!(
            conv_route(Engine::Fbgemm, &dw(58, 3, 2), true),
            ConvRoute::Fbgemm { saturate: false, rounded_bias: false }
        );
        // Without VNNI, fbgemm's GEMMs saturate too: every conv.
        assert_eq!(
            conv_route(Engine::FbgemmAvx2, &dw(58, 3, 2), true),
            ConvRoute::Fbgemm { saturate: true, rounded_bias: false }
        );
        assert_eq!(
            conv_route(Engine::FbgemmAvx2, &dense, true),
            ConvRoute::Fbgemm { saturate: true, rounded_bias: false }
        );
        let avx2_dw = ConvRoute::Fbgemm { saturate: true, rounded_bias: true };
        assert_eq!(conv_route(Engine::FbgemmAvx2, &dw(32, 3, 1), true), avx2_dw);
        assert!(Engine::FbgemmAvx2.gemm_pairs_saturate() && !Engine::Fbgemm.gemm_pairs_saturate());
        assert!(!Engine::Exact.gemm_pairs_saturate());
        assert_eq!(conv_route(Engine::X86, &dw(32, 3, 1), false), x86_dw);
        let dilated = ConvGeometry { dilation: [2, 2], padding: [2, 2], ..dw(32, 3, 1) };
        assert!(!fbgemm_depthwise(&dilated));
        let dense = ConvGeometry { groups: 1, ..dw(32, 3, 1) };
        assert!(!fbgemm_depthwise(&dense));
        assert!(fbgemm_depthwise(&ConvGeometry { out_channels: 64, ..dw(32, 7, 2) }));
    }

    #[test]
    fn names_parse() {
        for e in Engine::ALL {
            assert_eq!(Engine::parse(&e.name().to_uppercase()).unwrap(), e); // ok: a test
        }
        assert!(Engine::parse("onednn").is_err());
    }
}
