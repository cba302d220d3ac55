//! Where a network's layers come from: [`Skeleton`] builds them without
//! weights, for a state dict to fill with its own shapes (the load path),
//! and [`WeightInit`] with random weights and realistic qparams, for
//! benchmarks and tests that need a whole network without a checkpoint.

use crate::nn::quantized::{Conv2d, ConvGroups, Linear};
use crate::{DType, Quantizer, Result, Tensor};

/// The spread of a float activation, from which its qparams follow.
#[derive(Debug, Clone, Copy)]
pub struct ActivationRange {
    /// The root mean square of the real values: their standard deviation
    /// when they are centred, and after a relu `1/sqrt(2)` of the
    /// deviation of the zero-mean values the relu cut.
    pub std: f64,
    /// True after a relu (values `>= 0`, zero point 0).
    pub non_negative: bool,
}

impl ActivationRange {
    /// quint8 qparams covering about four standard deviations in 7 bits,
    /// 0..=127, as PyTorch's default x86/fbgemm qconfig calibrates
    /// activations (`reduce_range`): the networks then meet the kernels
    /// with the activations a PyTorch model gives them, narrow GEMM panels
    /// included (`qtensor::kernels::NarrowKernel`). Values past the range
    /// still quantize, up to 255, as in PyTorch.
    ///
    /// After a relu the four deviations are those of the values before
    /// it, `sqrt(2) * std`: four of `std` alone would leave 0.2% of a
    /// layer's outputs past 127 (and a max pool's maximum of nine of them,
    /// 2%), where a PyTorch model's observers, which see the largest
    /// value, leave almost none.
    pub fn qparams(&self) -> (f64, i64) {
        if self.non_negative {
            (4.0 * std::f64::consts::SQRT_2 * self.std / 127.0, 0)
        } else {
            (8.0 * self.std / 127.0, 64)
        }
    }

    /// The range after a max pool over `window` non-negative values. The
    /// pool keeps its input's qparams (PyTorch's does not requantize), but
    /// the layers after it see the maximum of the window, whose second
    /// moment is larger: by 1.76 for a 2x2 window and 2.26 for 3x3, for
    /// independent values (neighbours correlate, so this errs wide, as an
    /// observer's range over a calibration set does). Without it, the 3x3 pool after
    /// ResNet-18's stem left 2.5% of `layer1`'s activations past 127.
    pub fn after_max_pool(self, window: usize) -> ActivationRange {
        ActivationRange { std: self.std * max_pool_gain(window), ..self }
    }
}

/// A conv's geometry: kernel `[h, w]`, stride (both axes), padding
/// `[h, w]` and groups.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// The stride along both axes.
    pub stride: usize,
    /// Padding of height and width.
    pub padding: [usize; 2],
    /// Channel groups.
    pub groups: usize,
}

/// The layers an architecture asks for, by torchvision's shapes: each
/// source decides what the layer holds. The architectures in this module
/// take any source, so one description of each network serves both the
/// load path and random weights.
pub trait Layers {
    /// A conv of any [`ConvShape`] from `input` activations, with
    /// `[in, out]` channels as torchvision builds it, fused with relu if
    /// `relu`; and the range of its output.
    fn conv_rect(
        &mut self,
        input: ActivationRange,
        io: [usize; 2],
        shape: ConvShape,
        relu: bool,
    ) -> Result<(Conv2d, ActivationRange)>;

    /// A linear layer of `in_f` inputs and `out_f` outputs as torchvision
    /// builds it, from `input` activations; and the range of its output.
    fn linear(&mut self, input: ActivationRange, in_f: usize, out_f: usize) -> Result<(Linear, ActivationRange)>;

    /// A square conv with "same" padding (`kernel / 2`), fused with relu if
    /// `relu`, from `input` activations, and the range of its output.
    fn conv(
        &mut self,
        input: ActivationRange,
        io: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
        relu: bool,
    ) -> Result<(Conv2d, ActivationRange)> {
        let p = kernel / 2;
        self.conv_rect(input, io, ConvShape { kernel: [kernel; 2], stride, padding: [p, p], groups }, relu)
    }
}

/// `sqrt(E[max(0, Z_1..Z_n)^2] / E[max(0, Z)^2])` for independent
/// standard normal `Z_i`: how much a max pool of `n` relu outputs raises
/// their root mean square (1 for one value, 1.76 for 2x2, 2.26 for 3x3).
/// By the midpoint rule on `E[max(0, M)^2] = integral over x > 0 of
/// 2x (1 - Phi(x)^n)`, with `Phi` summed from the density on the same grid.
fn max_pool_gain(n: usize) -> f64 {
    const STEP: f64 = 1e-3;
    let density = |x: f64| (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    // Past a million values the gain has long stopped growing.
    let n = n.clamp(1, 1 << 20) as i32;
    let (mut cdf, mut moment, mut x) = (0.5, 0.0, 0.0);
    while x < 12.0 {
        let mid = x + STEP / 2.0;
        let cdf_mid = cdf + density(x + STEP / 4.0) * STEP / 2.0;
        moment += 2.0 * mid * (1.0 - cdf_mid.powi(n)) * STEP;
        cdf += density(mid) * STEP;
        x += STEP;
    }
    (moment / 0.5).sqrt()
}

/// The range of `relu(a + b)`, a residual block's output, for independent
/// parts: the sum's second moment is theirs added. The relu keeps most of
/// it, since the skip `b` is itself non-negative.
pub(super) fn relu_of_sum(a: ActivationRange, b: ActivationRange) -> ActivationRange {
    ActivationRange { std: (a.std.powi(2) + b.std.powi(2)).sqrt(), non_negative: true }
}

/// The range after a Kaiming-initialized layer: it keeps the second
/// moment, and a relu halves it.
fn after_layer(input: ActivationRange, relu: bool) -> ActivationRange {
    ActivationRange { std: input.std * if relu { 1.0 } else { 2f64.sqrt() }, non_negative: relu }
}

/// Layers without weights: each takes its channels, kernel size and class
/// count from the state dict loaded into it
/// ([`crate::nn::Module::load_state_dict`]); only the geometry the state
/// does not hold (stride, padding, grouping, fused relu) comes from the
/// architecture. Nothing random is made on this path.
#[derive(Debug, Default, Clone, Copy)]
pub struct Skeleton;

impl Layers for Skeleton {
    fn conv_rect(
        &mut self,
        input: ActivationRange,
        [in_ch, out_ch]: [usize; 2],
        shape: ConvShape,
        relu: bool,
    ) -> Result<(Conv2d, ActivationRange)> {
        let ConvShape { stride, padding: [ph, pw], groups, .. } = shape;
        // torchvision's depthwise convs have one group per channel: the
        // state's channel count, whatever the width.
        let groups = if groups > 1 && groups == in_ch && groups == out_ch {
            ConvGroups::Depthwise
        } else {
            ConvGroups::Fixed(groups as i64)
        };
        let s = stride as i64;
        let conv = Conv2d::unloaded([s, s], [ph as i64, pw as i64], [1, 1], groups);
        Ok((if relu { conv.with_relu() } else { conv }, after_layer(input, relu)))
    }

    fn linear(&mut self, input: ActivationRange, _in_f: usize, _out_f: usize) -> Result<(Linear, ActivationRange)> {
        Ok((Linear::unloaded(), after_layer(input, false)))
    }
}

/// A seeded source of Kaiming-normal weights, small biases and the
/// activation ranges they produce.
pub struct WeightInit {
    /// SplitMix64 state.
    state: u64,
}

impl WeightInit {
    /// A generator from `seed`: the same seed builds the same network.
    pub fn new(seed: u64) -> WeightInit {
        WeightInit { state: seed }
    }

    /// A uniform value in [0, 1) (SplitMix64's output, top 53 bits).
    fn unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn randn(&mut self, n: usize, std: f64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let (u, v) = (self.unit().max(1e-12), self.unit());
                ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos() * std) as f32
            })
            .collect()
    }

    /// A per-channel symmetric qint8 weight `sizes` (axis 0), Kaiming-normal
    /// over its fan-in, with each channel's scale from its own range.
    pub fn weight(&mut self, sizes: &[usize]) -> Result<Tensor> {
        let fan_in: usize = sizes[1..].iter().product();
        let values = self.randn(sizes.iter().product(), (2.0 / fan_in.max(1) as f64).sqrt());
        let scales: Vec<f64> = values
            .chunks(fan_in.max(1))
            .map(|row| (row.iter().fold(0f32, |m, v| m.max(v.abs())) as f64 / 127.5).max(1e-8))
            .collect();
        let q = Quantizer::per_channel(scales.clone(), vec![0; scales.len()], 0, DType::QInt8)?;
        crate::quantize(&Tensor::from_vec(values, sizes)?, &q)
    }

    /// A float32 bias of `n` small values.
    pub fn bias(&mut self, n: usize) -> Result<Tensor> {
        Tensor::from_vec(self.randn(n, 0.01), &[n])
    }
}

impl Layers for WeightInit {
    fn conv_rect(
        &mut self,
        input: ActivationRange,
        [in_ch, out_ch]: [usize; 2],
        shape: ConvShape,
        relu: bool,
    ) -> Result<(Conv2d, ActivationRange)> {
        let ConvShape { kernel: [kh, kw], stride, padding: [ph, pw], groups } = shape;
        let w = self.weight(&[out_ch, in_ch / groups, kh, kw])?;
        let b = self.bias(out_ch)?;
        let out = after_layer(input, relu);
        // A depthwise conv sums only kh * kw products per output, whose
        // tails are heavier than a Gaussian's (kurtosis about 4.7 for nine,
        // against 3): its qparams cover five deviations, not four. That
        // takes the share of MobileNetV2's pointwise convs' inputs past 127
        // from 0.13% to 0.04% (a PyTorch-calibrated one leaves 0.002%;
        // the rest is in its residual sums). The spread passed on
        // stays the layer's own, or the widening would compound over the
        // network's blocks.
        let covered = if in_ch == groups { ActivationRange { std: out.std * 1.25, ..out } } else { out };
        let (scale, zp) = covered.qparams();
        let s = stride as i64;
        let conv =
            Conv2d::from_quantized(&w, Some(&b), [s, s], [ph as i64, pw as i64], [1, 1], groups as i64, scale, zp)?;
        Ok((if relu { conv.with_relu() } else { conv }, out))
    }

    fn linear(&mut self, input: ActivationRange, in_f: usize, out_f: usize) -> Result<(Linear, ActivationRange)> {
        let w = self.weight(&[out_f, in_f])?;
        let b = self.bias(out_f)?;
        let out = after_layer(input, false);
        let (scale, zp) = out.qparams();
        Ok((Linear::from_quantized(&w, Some(&b), scale, zp)?, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_gain_matches_the_moments_of_the_maximum() {
        // One value: the moment of a relu output itself.
        assert!((max_pool_gain(1) - 1.0).abs() < 1e-4, "{}", max_pool_gain(1));
        // By a 4-million-sample Monte Carlo: 1.7564 (2x2) and 2.2644 (3x3).
        assert!((max_pool_gain(4) - 1.7564).abs() < 2e-3, "{}", max_pool_gain(4));
        assert!((max_pool_gain(9) - 2.2644).abs() < 2e-3, "{}", max_pool_gain(9));
    }
}
