//! Which instruction sets the kernels may use: what the CPU has, capped by
//! `QTENSOR_ISA` or [`set_cap`].
//!
//! The cap exists for honest comparisons and for testing every code path on
//! one machine, like oneDNN's `ONEDNN_MAX_CPU_ISA` and fbgemm's
//! `FBGEMM_ENABLE_INSTRUCTIONS`: `QTENSOR_ISA=avx2` on an AVX-512 VNNI CPU
//! runs exactly the kernels an AVX2-only CPU would run, and
//! `QTENSOR_ISA=portable` runs the portable ones. A cap never enables an ISA
//! the CPU lacks.

use crate::error::{Error, Result};
use crate::setting::ProcessSetting;

/// An instruction-set level, ordered within an architecture: a cap of
/// `Avx512Vnni` allows `Avx2` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Portable Rust only.
    Portable,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// x86-64 AVX-512 F/BW with VNNI (`vpdpbusd`).
    Avx512Vnni,
    /// x86-64 AMX tiles with int8 dot products (`tdpbusd`), beside
    /// AVX-512 VNNI: Intel Xeon from Sapphire Rapids on.
    Amx,
    /// aarch64 Advanced SIMD.
    Neon,
}

impl Isa {
    /// The name `Portable` had before 0.1, kept for code written against it.
    #[doc(hidden)]
    #[allow(non_upper_case_globals)]
    pub const Scalar: Isa = Isa::Portable;

    /// Every level, lowest first.
    pub const ALL: [Isa; 5] = [Isa::Portable, Isa::Avx2, Isa::Avx512Vnni, Isa::Amx, Isa::Neon];

    /// The name `QTENSOR_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Amx => "amx",
            Isa::Neon => "neon",
        }
    }

    /// Parses a `QTENSOR_ISA` value (case-insensitive).
    pub fn parse(s: &str) -> Result<Isa> {
        let s = s.trim().to_ascii_lowercase();
        // `scalar` is the name this level had before 0.1.
        let s = if s == "scalar" { "portable".to_string() } else { s };
        Isa::ALL.into_iter().find(|i| i.name() == s).ok_or_else(|| {
            Error::invalid(
                "QTENSOR_ISA",
                format!("unknown instruction set `{s}`; expected one of portable, avx2, avx512vnni, amx, neon"),
            )
        })
    }

    /// True when the CPU running this process has this ISA (ignoring the cap).
    pub fn detected(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.detected()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Amx => Isa::Avx512Vnni.detected() && amx::usable(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// True when kernels may use this ISA: the CPU has it and the cap allows
    /// it. Kernels' `is_supported` predicates call this.
    pub fn enabled(self) -> bool {
        self <= cap() && self.detected() || self == Isa::Portable
    }

    /// The best ISA this CPU has, ignoring the cap.
    pub fn best_detected() -> Isa {
        Isa::ALL.into_iter().rev().find(|i| i.detected()).unwrap_or(Isa::Portable)
    }
}

/// Declares a zero-sized ISA token: a value that only [`detect`] makes, and
/// only when kernels may use the instruction set. Holding one is the proof
/// a `#[target_feature]` call needs, so kernels take the token and their
/// `unsafe` blocks cite it (the pattern of rten-simd's ISA types).
///
/// [`detect`]: Avx2::detect
macro_rules! isa_token {
    ($(#[$doc:meta])* $name:ident, $detect:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// Private: `detect` is the only way to make one.
            _proof: (),
        }

        impl $name {
            /// The token, when this CPU has the instruction set and the cap
            /// ([`cap`]) allows it; the same test registration's
            /// `is_supported` makes.
            #[inline]
            pub fn detect() -> Option<$name> {
                let detected: bool = $detect;
                detected.then_some($name { _proof: () })
            }

            /// True when [`detect`](Self::detect) gives a token: the
            /// `is_supported` predicate of the kernels that need one.
            pub fn supported() -> bool {
                Self::detect().is_some()
            }
        }
    };
}

isa_token!(
    /// Proof that this CPU has x86-64 AVX2 and FMA, and the cap allows them.
    Avx2,
    Isa::Avx2.enabled()
);

isa_token!(
    /// Proof that this CPU has AVX-512 F, BW and VNNI (and AVX2), and the
    /// cap allows them.
    Avx512Vnni,
    Isa::Avx512Vnni.enabled()
);

isa_token!(
    /// Proof that this CPU has AMX tiles with int8 dot products, that Linux
    /// lets this process use them, and AVX-512 VNNI beside them; and that
    /// the cap allows AMX.
    Amx,
    Isa::Amx.enabled()
);

isa_token!(
    /// Proof that this CPU has aarch64 Advanced SIMD (NEON), and the cap
    /// allows it.
    Neon,
    Isa::Neon.enabled()
);

isa_token!(
    /// Proof that this CPU has NEON with the dot-product extension
    /// (`sdot`/`udot`), and the cap allows NEON.
    NeonDot,
    Isa::Neon.enabled() && neon_feature("dotprod")
);

isa_token!(
    /// Proof that this CPU has NEON with the int8 matrix-multiply
    /// extension (`usdot`, u8 by s8), and the cap allows NEON.
    NeonI8mm,
    Isa::Neon.enabled() && neon_feature("i8mm")
);

impl NeonDot {
    /// The plain NEON token, which this one implies.
    pub fn neon(self) -> Neon {
        Neon { _proof: () }
    }
}

impl NeonI8mm {
    /// The plain NEON token, which this one implies.
    pub fn neon(self) -> Neon {
        Neon { _proof: () }
    }
}

impl Avx512Vnni {
    /// The AVX2 token, which this one implies (AVX-512 VNNI detection
    /// includes AVX2 and FMA).
    pub fn avx2(self) -> Avx2 {
        Avx2 { _proof: () }
    }
}

impl Amx {
    /// The AVX-512 VNNI token, which this one implies (AMX detection
    /// includes AVX-512 VNNI).
    pub fn vnni(self) -> Avx512Vnni {
        Avx512Vnni { _proof: () }
    }
}

#[cfg(target_arch = "x86_64")]
mod amx {
    use std::sync::OnceLock;

    /// Linux's `arch_prctl` request for permission to use an extended
    /// state component, and AMX's tile-data component.
    const ARCH_REQ_XCOMP_PERM: u64 = 0x1023;
    const XFEATURE_XTILEDATA: u64 = 18;
    const SYS_ARCH_PRCTL: u64 = 158;

    /// True when the CPU has AMX-TILE and AMX-INT8 and the kernel grants
    /// this process the tile state. Linux only grants it on request (an
    /// AMX instruction before that raises SIGILL); the grant is for the
    /// whole process, asked once here.
    pub(super) fn usable() -> bool {
        static USABLE: OnceLock<bool> = OnceLock::new();
        *USABLE.get_or_init(|| {
            // CPUID leaf 7: EDX bit 24 is AMX-TILE, bit 25 AMX-INT8.
            // SAFETY: CPUID exists on every x86-64 CPU and has no side
            // effects. (The intrinsic is safe in newer std, unsafe in the
            // MSRV's, hence the allow.)
            #[allow(unused_unsafe)]
            let leaf7 = unsafe { std::arch::x86_64::__cpuid_count(7, 0) };
            let has_amx = leaf7.edx & (1 << 24) != 0 && leaf7.edx & (1 << 25) != 0;
            has_amx && cfg!(target_os = "linux") && request_tile_permission()
        })
    }

    /// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0`.
    fn request_tile_permission() -> bool {
        let ret: i64;
        // SAFETY: the arch_prctl system call with these arguments only
        // changes which extended states the kernel will save for this
        // process; it reads and writes no memory of ours. `syscall`
        // clobbers rcx and r11, declared below, and touches no stack.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL as i64 => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret == 0
    }
}

/// True when this aarch64 CPU has the named extension (`dotprod`, `i8mm`);
/// false on other architectures.
fn neon_feature(name: &str) -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        match name {
            "dotprod" => std::arch::is_aarch64_feature_detected!("dotprod"),
            "i8mm" => std::arch::is_aarch64_feature_detected!("i8mm"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = name;
        false
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The cap: [`set_cap`]'s, else `QTENSOR_ISA`'s, else none (the highest
/// level).
static CAP: ProcessSetting<Isa> =
    ProcessSetting::new("QTENSOR_ISA", &Isa::ALL, Isa::Neon, Isa::parse, "no cap applied");

/// The highest ISA kernels may use: [`set_cap`]'s value, else
/// `QTENSOR_ISA`, else no cap (the highest level).
pub fn cap() -> Isa {
    CAP.get()
}

/// True when a cap below the CPU's best ISA is in force.
pub fn is_capped() -> bool {
    cap() < Isa::best_detected()
}

/// Sets the cap for this process (`None` returns to `QTENSOR_ISA`'s).
///
/// This only records the cap; `qtensor::set_isa_cap` also re-resolves every
/// operator's kernel choice, which is what a user wants.
pub fn set_cap(isa: Option<Isa>) {
    CAP.set(isa);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_others() -> Result<()> {
        assert_eq!(Isa::parse("AVX2")?, Isa::Avx2);
        assert_eq!(Isa::parse(" portable ")?, Isa::Portable);
        assert_eq!(Isa::parse("scalar")?, Isa::Portable);
        assert!(Isa::parse("sse9").is_err());
        Ok(())
    }

    #[test]
    fn tokens_follow_detection_and_the_cap() {
        assert_eq!(Avx2::supported(), Isa::Avx2.enabled());
        assert_eq!(Neon::supported(), Isa::Neon.enabled());
        assert!(!NeonDot::supported() || Neon::supported());
        assert!(!Avx512Vnni::supported() || Avx2::supported());
    }

    #[test]
    fn portable_is_always_enabled_and_levels_order() {
        assert!(Isa::Portable.enabled());
        assert!(Isa::Portable < Isa::Avx2 && Isa::Avx2 < Isa::Avx512Vnni && Isa::Avx512Vnni < Isa::Amx);
    }
}
