//! The sums of fbgemm's depthwise kernel, int16 saturation included, for
//! the convs it takes (`engine::fbgemm_depthwise`).
//!
//! fbgemm multiplies raw u8 activations by raw i8 weights with
//! `vpmaddubsw`, which adds the products of two neighbouring taps in int16
//! with saturation, then widens the pair sums to int32 and adds them
//! exactly. Its taps run in row-major kernel order, padding taps hold the
//! activations' zero point, and an odd last tap pairs with a zero. The
//! zero-point terms are exact. So, per output, with `K` taps:
//!
//! ```text
//! acc = Σ_pairs sat16(x[2i]·w[2i] + x[2i+1]·w[2i+1]) − zx·Σw − zw·Σx + K·zx·zw
//! ```
//!
//! which equals the exact `Σ (x − zx)(w − zw)` unless a pair leaves
//! int16: only with activations above 127, i.e. outside the range that
//! PyTorch's `reduce_range` calibration gives. Safe Rust: the reference
//! kernel and every ISA's conv path call this one function.

use qtensor_runtime::storage::{checked_count, try_vec};
use qtensor_runtime::Result;

/// One depthwise conv for [`sums`]: `C` input channels, each with
/// `out_channels / C` outputs.
#[derive(Debug, Clone, Copy)]
pub struct DepthwiseShape {
    /// Batch, channels, height and width of the input (NCHW).
    pub input: [usize; 4],
    /// Output channels: `C` or `2 * C`.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (h, w).
    pub stride: [usize; 2],
    /// Padding (h, w).
    pub padding: [usize; 2],
    /// Output height and width.
    pub out_hw: [usize; 2],
}

/// True when some pair of taps can leave int16: the largest activation
/// (padding holds `zx`) times the largest `|w_a| + |w_b|` of a pair.
pub fn can_saturate(max_x: u8, zx: u8, weights: &[i8], taps: usize) -> bool {
    let x = max_x.max(zx) as i32;
    let widest = weights
        .chunks(taps.max(1))
        .flat_map(|row| row.chunks(2).map(|p| p.iter().map(|&w| (w as i32).abs()).sum::<i32>()))
        .max()
        .unwrap_or(0);
    x * widest > i16::MAX as i32
}

/// fbgemm's sum for every output, NCHW order `[n][oc][oy][ox]`: `x` is the
/// NCHW input, `weights` the raw i8 weight `[OC][KH][KW]`, `zw` each output
/// channel's weight zero point, `zx` the input's.
pub fn sums(s: &DepthwiseShape, x: &[u8], zx: u8, weights: &[i8], zw: &[i64]) -> Result<Vec<i32>> {
    let [n, c, h, w] = s.input;
    let [kh, kw] = s.kernel;
    let [oh, ow] = s.out_hw;
    let oc = s.out_channels;
    let per_input = (oc / c.max(1)).max(1);
    let taps = kh * kw;
    let mut out = try_vec(checked_count("quantized::conv2d", &[n, oc, oh, ow])?)?;
    let mut window = vec![0i32; taps + 1];
    for img in 0..n {
        for o in 0..oc {
            let ic = o / per_input;
            let plane = &x[(img * c + ic) * h * w..][..h * w];
            let wrow = &weights[o * taps..][..taps];
            let w_sum: i64 = wrow.iter().map(|&v| v as i64).sum();
            let z = (zx as i64, zw[o]);
            for oy in 0..oh {
                for ox in 0..ow {
                    // The window's activations, padding as the zero point.
                    for (t, v) in window[..taps].iter_mut().enumerate() {
                        let iy = (oy * s.stride[0] + t / kw).checked_sub(s.padding[0]).filter(|&y| y < h);
                        let ix = (ox * s.stride[1] + t % kw).checked_sub(s.padding[1]).filter(|&x| x < w);
                        *v = match (iy, ix) {
                            (Some(y), Some(x)) => plane[y * w + x] as i32,
                            _ => zx as i32,
                        };
                    }
                    window[taps] = 0;
                    let mut acc: i64 = 0;
                    for t in (0..taps).step_by(2) {
                        let w1 = wrow.get(t + 1).map_or(0, |&v| v as i32);
                        let pair = window[t] * wrow[t] as i32 + window[t + 1] * w1;
                        acc += pair.clamp(i16::MIN as i32, i16::MAX as i32) as i64;
                    }
                    let x_sum: i64 = window[..taps].iter().map(|&v| v as i64).sum();
                    acc += -z.0 * w_sum - z.1 * x_sum + taps as i64 * z.0 * z.1;
                    out.push(acc as i32);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(c: usize, hw: usize) -> DepthwiseShape {
        DepthwiseShape {
            input: [1, c, hw, hw],
            out_channels: c,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            out_hw: [hw, hw],
        }
    }

    #[test]
    fn equals_the_exact_sum_below_127_and_saturates_above() {
        let s = shape(1, 3);
        let w = [-128i8, -128, 5, 7, -9, 11, 13, 15, 17];
        // Every activation 100: no pair leaves int16; the centre output
        // sees all 9 taps.
        let x = [100u8; 9];
        let exact: i32 = w.iter().map(|&v| (100 - 3) * v as i32).sum();
        assert_eq!(sums(&s, &x, 3, &w, &[0]).unwrap()[4], exact);
        assert!(!can_saturate(100, 3, &w, 9));
        // Activations of 255: the first pair, 255 * -128 * 2, saturates.
        let x = [255u8; 9];
        let centre = sums(&s, &x, 3, &w, &[0]).unwrap()[4];
        let first_pair = -32768 - (255 * -256);
        assert_eq!(centre - w.iter().map(|&v| (255 - 3) * v as i32).sum::<i32>(), first_pair);
        assert!(can_saturate(255, 3, &w, 9));
    }
}
