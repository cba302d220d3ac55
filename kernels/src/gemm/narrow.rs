//! Which kernel computes an exact GEMM panel whose activations are all
//! below 128, on ISAs with two exact ways to do it (AVX2).
//!
//! AVX2's exact kernel widens activations and weights to i16 and
//! multiplies with `vpmaddwd` (16 products per instruction). Its pair
//! kernel multiplies the bytes themselves with `vpmaddubsw` (32 products)
//! and adds the int16 pairs with `vpmaddwd` by ones: fbgemm's recipe,
//! which saturates a pair above 32,767. A pair of activations below 128
//! times any two i8 weights is at most 127 · 128 · 2 = 32,512, so on such
//! a panel the pair kernel is exact too. PyTorch's reduce-range
//! activations (torchvision's quantized networks) are all below 128.
//!
//! Which is faster depends on the CPU. On the Zen 3 of 2026-12-07 the
//! roofline probes gave 90.6 G multiply-adds/s for the pair recipe and
//! 81.8 G for `vpmaddwd` on operands already widened, and PyTorch's own
//! ResNet-18 (TorchScript) ran 7-12% faster at batch 1 with narrow panels
//! on the pair kernel. Rather than a table of CPUs, the
//! first narrow panel times both kernels once on a conv-sized panel
//! ([`NarrowTiming`]) and the faster one is kept for the process. The
//! results cannot change: both are exact. [`set_narrow_kernel`] and
//! `QTENSOR_NARROW_GEMM` override the measurement.

use qtensor_runtime::error::{Error, Result};
use qtensor_runtime::setting::ProcessSetting;
use std::sync::OnceLock;
use std::time::Duration;

/// How a narrow panel (every activation below 128) picks its kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NarrowKernel {
    /// The faster of the two, timed once per process (the default).
    Measured,
    /// Always the pair kernel (`vpmaddubsw`).
    Pairs,
    /// Always the widening kernel (`vpmaddwd` on i16), as for any panel.
    Widened,
}

impl NarrowKernel {
    const ALL: [NarrowKernel; 3] = [NarrowKernel::Measured, NarrowKernel::Pairs, NarrowKernel::Widened];

    /// The name `QTENSOR_NARROW_GEMM` takes: `measured`, `pairs` or
    /// `widened`.
    pub fn name(self) -> &'static str {
        match self {
            NarrowKernel::Measured => "measured",
            NarrowKernel::Pairs => "pairs",
            NarrowKernel::Widened => "widened",
        }
    }

    /// The choice named `name` (any case).
    pub fn parse(name: &str) -> Result<NarrowKernel> {
        let name = name.trim();
        NarrowKernel::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(name)).ok_or_else(|| {
            Error::invalid("QTENSOR_NARROW_GEMM", format!("`{name}` is not one of measured, pairs, widened"))
        })
    }
}

/// The choice: [`set_narrow_kernel`]'s, else `QTENSOR_NARROW_GEMM`'s, else
/// measured.
static CHOICE: ProcessSetting<NarrowKernel> = ProcessSetting::new(
    "QTENSOR_NARROW_GEMM",
    &NarrowKernel::ALL,
    NarrowKernel::Measured,
    NarrowKernel::parse,
    "using measured",
);

/// The choice in force: the last [`set_narrow_kernel`], else
/// `QTENSOR_NARROW_GEMM`, else [`NarrowKernel::Measured`].
pub fn narrow_kernel() -> NarrowKernel {
    CHOICE.get()
}

/// Sets the choice for the whole process (over `QTENSOR_NARROW_GEMM`).
/// GEMMs already running finish with the kernel they started with; the
/// results are the same under every choice.
pub fn set_narrow_kernel(kernel: NarrowKernel) {
    CHOICE.set(Some(kernel));
}

/// The one timing of both kernels on the same narrow panel: the best of
/// several interleaved rounds each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NarrowTiming {
    /// The pair kernel's time.
    pub pairs: Duration,
    /// The widening kernel's time.
    pub widened: Duration,
}

impl NarrowTiming {
    /// True when the pair kernel wins by more than the noise: 3%, so that
    /// two kernels equally fast keep the widening one, which every panel
    /// takes anyway.
    pub fn pairs_win(self) -> bool {
        self.pairs.as_nanos() * 100 < self.widened.as_nanos() * 97
    }
}

static TIMING: OnceLock<NarrowTiming> = OnceLock::new();

/// The process's timing, made by `measure` on first call. One ISA (AVX2)
/// measures; an ISA whose exact kernel needs no widening never asks.
#[cfg(target_arch = "x86_64")]
pub(crate) fn timing(measure: impl FnOnce() -> NarrowTiming) -> NarrowTiming {
    *TIMING.get_or_init(measure)
}

/// The timing, if a narrow panel (or [`describe`]) has made it.
pub fn measured_timing() -> Option<NarrowTiming> {
    TIMING.get().copied()
}

/// One line for reports (`qtensor ops`): which kernel narrow panels take
/// under the current choice, given the AVX2 timing (`None` where the CPU
/// or the ISA cap has no AVX2; `qtensor::kernels::narrow_gemm` passes
/// the process's, timing the kernels if nothing has yet).
pub fn describe(timing: Option<NarrowTiming>) -> String {
    let Some(t) = timing else {
        return "narrow GEMM panels: no AVX2 kernel under this ISA cap, so no pair kernel to choose".into();
    };
    let measured = format!("pairs {:.1} µs, widened {:.1} µs", micros(t.pairs), micros(t.widened));
    match narrow_kernel() {
        NarrowKernel::Measured => {
            let winner = if t.pairs_win() { "pairs (vpmaddubsw)" } else { "widened (vpmaddwd)" };
            format!("narrow panels of the AVX2 GEMM (activations below 128): {winner}, measured here ({measured}); set QTENSOR_NARROW_GEMM=pairs|widened to choose")
        }
        fixed => format!("narrow panels of the AVX2 GEMM (activations below 128): {} (set by QTENSOR_NARROW_GEMM or set_narrow_kernel; measured here: {measured})", fixed.name()),
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_win_only_beyond_the_noise() {
        let t = |pairs, widened| NarrowTiming {
            pairs: Duration::from_nanos(pairs),
            widened: Duration::from_nanos(widened),
        };
        assert!(t(90, 100).pairs_win());
        assert!(!t(98, 100).pairs_win());
        assert!(!t(100, 100).pairs_win());
        assert!(!t(120, 100).pairs_win());
    }

    #[test]
    fn names_round_trip() {
        for k in NarrowKernel::ALL {
            assert_eq!(NarrowKernel::parse(k.name()).ok(), Some(k));
            assert_eq!(NarrowKernel::parse(&format!(" {} ", k.name().to_uppercase())).ok(), Some(k));
        }
        assert!(NarrowKernel::parse("fast").is_err());
    }
}
