//! The sums of fbgemm's kernels that add neighbouring u8 x i8 products in
//! int16 with saturation: its depthwise kernel on every CPU, and its GEMMs
//! (every other conv, and linear) on a CPU without AVX-512 VNNI
//! (`Engine::gemm_pairs_saturate`).
//!
//! fbgemm multiplies raw u8 activations by raw i8 weights with
//! `vpmaddubsw`, which adds the products of two neighbouring elements of
//! the reduction in int16 with saturation, then widens the pair sums to
//! int32 and adds them exactly. The reduction runs in im2col order: kernel
//! row, kernel column, then the group's input channels (for a depthwise
//! conv, the taps in row-major order; for linear, the input features).
//! Padding holds the activations' zero point, and an odd last element
//! pairs with a zero. The zero-point terms are exact. So, per output, with
//! `K` elements:
//!
//! ```text
//! acc = Σ_pairs sat16(x[2i]·w[2i] + x[2i+1]·w[2i+1]) − zx·Σw − zw·Σx + K·zx·zw
//! ```
//!
//! which equals the exact `Σ (x − zx)(w − zw)` unless a pair leaves int16:
//! only with activations above 127, i.e. outside the range that PyTorch's
//! `reduce_range` calibration gives. Measured against PyTorch 2.15 on an
//! AMD Zen 2 (fbgemm's AVX2 build): linear, 1x1, 3x3 and 7x7 convs, strided,
//! grouped, depthwise and with asymmetric weights, per channel and per
//! tensor, every output equal. Safe Rust: the reference kernels call it,
//! and the ISAs' fast paths are checked against them.

use qtensor_runtime::conv_geometry::ConvGeometry;
use qtensor_runtime::storage::{checked_count, try_vec};
use qtensor_runtime::Result;

/// The largest `|w[2i]| + |w[2i+1]|` over the pairs of the rows of `k`
/// elements in `weights`.
pub fn widest_pair(weights: &[i8], k: usize) -> i32 {
    weights
        .chunks(k.max(1))
        .flat_map(|row| row.chunks(2).map(|p| p.iter().map(|&w| (w as i32).abs()).sum::<i32>()))
        .max()
        .unwrap_or(0)
}

/// True when some pair can leave int16: the largest activation (padding
/// holds `zx`) times the widest pair of weights ([`widest_pair`]).
pub fn can_saturate(max_x: u8, zx: u8, widest: i32) -> bool {
    max_x.max(zx) as i32 * widest > i16::MAX as i32
}

/// `Σ_pairs sat16(x[2i]·w[2i] + x[2i+1]·w[2i+1])` over raw values, an odd
/// last element paired with zero.
pub fn pair_sum(x: &[u8], w: &[i8]) -> i64 {
    x.chunks(2)
        .zip(w.chunks(2))
        .map(|(xs, ws)| {
            let pair: i32 = xs.iter().zip(ws).map(|(&a, &b)| a as i32 * b as i32).sum();
            pair.clamp(i16::MIN as i32, i16::MAX as i32) as i64
        })
        .sum()
}

/// fbgemm's sum of one output from its raw reduction vectors.
fn output_sum(x: &[u8], w: &[i8], zx: i64, zw: i64) -> i64 {
    let x_sum: i64 = x.iter().map(|&v| v as i64).sum();
    let w_sum: i64 = w.iter().map(|&v| v as i64).sum();
    pair_sum(x, w) - zx * w_sum - zw * x_sum + x.len() as i64 * zx * zw
}

/// fbgemm's sum for every output of a conv, NCHW order `[n][oc][oy][ox]`:
/// `x` is the NCHW input, `weights` the raw i8 weight `[OC][IC/g][KH][KW]`,
/// `zw` each output channel's weight zero point, `zx` the input's.
pub fn conv_sums(s: &ConvGeometry, x: &[u8], zx: u8, weights: &[i8], zw: &[i64]) -> Result<Vec<i64>> {
    let [n, c, h, w] = s.input;
    let [kh, kw] = s.kernel;
    let [oh, ow] = s.out_hw;
    let oc = s.out_channels;
    let groups = s.groups.max(1);
    let (icg, ocg) = (c / groups, (oc / groups).max(1));
    let k = kh * kw * icg;
    let mut out = try_vec(checked_count("quantized::conv2d", &[n, oc, oh, ow])?)?;
    // Each output channel's weights in im2col order (ky, kx, ic).
    let mut row = vec![0i8; k];
    let mut window = vec![0u8; k];
    for img in 0..n {
        for o in 0..oc {
            let g = o / ocg;
            for (i, v) in row.iter_mut().enumerate() {
                let (t, ic) = (i / icg.max(1), i % icg.max(1));
                *v = weights[(o * icg + ic) * kh * kw + t];
            }
            for oy in 0..oh {
                for ox in 0..ow {
                    for (i, v) in window.iter_mut().enumerate() {
                        let (t, ic) = (i / icg.max(1), i % icg.max(1));
                        let iy =
                            (oy * s.stride[0] + t / kw * s.dilation[0]).checked_sub(s.padding[0]).filter(|&y| y < h);
                        let ix =
                            (ox * s.stride[1] + t % kw * s.dilation[1]).checked_sub(s.padding[1]).filter(|&v| v < w);
                        *v = match (iy, ix) {
                            (Some(y), Some(xi)) => x[((img * c + g * icg + ic) * h + y) * w + xi],
                            _ => zx,
                        };
                    }
                    out.push(output_sum(&window, &row, zx as i64, zw[o]));
                }
            }
        }
    }
    Ok(out)
}

/// fbgemm's sum for every output of a linear, `[M][N]`: `x` holds `M` raw
/// rows of `k` activations, `weights` the raw i8 weight `[N][k]`.
pub fn linear_sums(x: &[u8], zx: u8, weights: &[i8], zw: &[i64], k: usize) -> Result<Vec<i64>> {
    let (m, n) = (x.len() / k.max(1), zw.len());
    let mut out = try_vec(checked_count("quantized::linear", &[m, n])?)?;
    for row in x.chunks(k.max(1)).take(m) {
        for (wrow, &z) in weights.chunks(k.max(1)).zip(zw) {
            out.push(output_sum(row, wrow, zx as i64, z));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(c: usize, groups: usize, oc: usize, hw: usize) -> ConvGeometry {
        ConvGeometry {
            input: [1, c, hw, hw],
            out_channels: oc,
            groups,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            out_hw: [hw, hw],
        }
    }

    #[test]
    fn equals_the_exact_sum_below_127_and_saturates_above() {
        let s = geometry(1, 1, 1, 3);
        let w = [-128i8, -128, 5, 7, -9, 11, 13, 15, 17];
        // Every activation 100: no pair leaves int16; the centre output
        // sees all 9 taps.
        let x = [100u8; 9];
        let exact: i64 = w.iter().map(|&v| (100 - 3) * v as i64).sum();
        assert_eq!(conv_sums(&s, &x, 3, &w, &[0]).unwrap()[4], exact); // ok: a test
        assert!(!can_saturate(100, 3, widest_pair(&w, 9)));
        // Activations of 255: the first pair, 255 * -128 * 2, saturates.
        let x = [255u8; 9];
        let centre = conv_sums(&s, &x, 3, &w, &[0]).unwrap()[4]; // ok: a test
        let first_pair = -32768 - (255 * -256);
        assert_eq!(centre - w.iter().map(|&v| (255 - 3) * v as i64).sum::<i64>(), first_pair);
        assert!(can_saturate(255, 3, widest_pair(&w, 9)));
    }

    #[test]
    fn pairs_run_in_im2col_order_across_channels() {
        // Two input channels, one output: the reduction is (tap, channel),
        // so each pair is one tap's two channels. Channel 0's weights are
        // all 127 and channel 1's all -128: no pair saturates at 255,
        // while pairing taps of one channel (NCHW order) would.
        let s = geometry(2, 1, 1, 3);
        let mut w = [0i8; 18];
        w[..9].fill(127);
        w[9..].fill(-128);
        let x = [255u8; 18];
        let sums = conv_sums(&s, &x, 0, &w, &[0]).unwrap(); // ok: a test
        assert_eq!(sums[4], 9 * 255 * (127 - 128));
        // A linear pairs neighbouring features: here both saturate.
        let lin = linear_sums(&[255, 255, 255], 0, &[127, 127, 127], &[0], 3).unwrap(); // ok: a test
        assert_eq!(lin, [32767 + 255 * 127]);
        // Asymmetric weights: the zero-point terms are exact.
        let lin = linear_sums(&[10, 20, 30], 5, &[1, 2, 3], &[2], 3).unwrap(); // ok: a test
        let exact: i64 = [10i64, 20, 30].iter().zip([1i64, 2, 3]).map(|(x, w)| (x - 5) * (w - 2)).sum();
        assert_eq!(lin, [exact]);
    }
}
