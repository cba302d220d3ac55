//! `mean` over dimensions of a quantized tensor, with PyTorch's two paths:
//!
//! - a **row-major** input reduced over its innermost dimensions averages
//!   the stored integers: `round_half_even(f32(sum q) / f32(count))`;
//! - any other input is dequantized (`f32(q - z) * f32(s)`), summed in f32
//!   with PyTorch's cascade summation, divided by the count in f32 and
//!   quantized back into the input's qparams. The summation order is
//!   PyTorch's exactly for a 4-d channels-last input reduced over its
//!   spatial dimensions (the global pooling of networks); for other
//!   layouts the sum is exact (f64) before its rounding to f32.

use crate::args::quantized::{per_tensor, quantized_from_ints, PerTensor};
use qtensor_runtime::numerics::{inv_scale, quantize_val};
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::try_vec;
use qtensor_runtime::tensor::layout::wrap_dim;
use qtensor_runtime::{register_kernel, DType, Element, Error, MemoryFormat, Priority, Result, Tensor};

/// PyTorch's `multi_row_sum`: one running f32 sum per column over `rows`
/// rows, added in chunks of 16 (or more) so that only partial sums of
/// similar size meet.
fn multi_row_sum(rows: usize, cols: usize, at: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    const LEVELS: usize = 4;
    let ceil_log2 = if rows <= 2 { 1 } else { (usize::BITS - (rows - 1).leading_zeros()) as usize };
    let power = (ceil_log2 / LEVELS).max(4);
    let step = 1usize << power;
    let mask = step - 1;
    let mut acc = vec![vec![0f32; cols]; LEVELS];
    let mut i = 0;
    while i + step <= rows {
        for _ in 0..step {
            for (k, a) in acc[0].iter_mut().enumerate() {
                *a += at(i, k);
            }
            i += 1;
        }
        for j in 1..LEVELS {
            let (lower, upper) = acc.split_at_mut(j);
            for (hi, lo) in upper[0].iter_mut().zip(lower[j - 1].iter_mut()) {
                *hi += *lo;
                *lo = 0.0;
            }
            if i & (mask << (j * power)) != 0 {
                break;
            }
        }
    }
    for r in i..rows {
        for (k, a) in acc[0].iter_mut().enumerate() {
            *a += at(r, k);
        }
    }
    let (first, rest) = acc.split_at_mut(1);
    for level in rest.iter() {
        for (a, v) in first[0].iter_mut().zip(level) {
            *a += v;
        }
    }
    acc.swap_remove(0)
}

/// PyTorch's `row_sum`: four interleaved cascade sums, then the leftover
/// rows, then the four partial sums in order.
fn row_sum(size: usize, at: impl Fn(usize) -> f32) -> f32 {
    let quads = size / 4;
    let mut partial = multi_row_sum(quads, 4, |i, k| at(4 * i + k));
    for i in quads * 4..size {
        partial[0] += at(i);
    }
    let mut sum = partial[0];
    for p in &partial[1..] {
        sum += p;
    }
    sum
}

/// The column sums of a `rows x cols` matrix stored column-fastest, as
/// PyTorch's `sum` reduces the rows of a channels-last tensor: with 8-lane
/// vectors, blocks of 32 columns by [`multi_row_sum`] and the rest by
/// [`row_sum`]; fewer than 8 columns go by 4 at a time.
fn outer_sum(rows: usize, cols: usize, at: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    const LANES: usize = 8;
    let cascaded = if cols >= LANES { cols - cols % (4 * LANES) } else { cols - cols % 4 };
    let mut out = multi_row_sum(rows, cascaded, &at);
    out.extend((cascaded..cols).map(|c| row_sum(rows, |r| at(r, c))));
    out
}

/// The reduced dimensions as a sorted, duplicate-free list (all of them
/// for an empty `dim`, as PyTorch reads `mean(x, [])`).
fn reduced_dims(op: &str, ndim: usize, dim: &[i64]) -> Result<Vec<usize>> {
    if dim.is_empty() {
        return Ok((0..ndim).collect());
    }
    let mut dims = dim.iter().map(|&d| wrap_dim(op, d, ndim)).collect::<Result<Vec<_>>>()?;
    dims.sort_unstable();
    if dims.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid(op, format!("dim {dim:?} names a dimension more than once")));
    }
    Ok(dims)
}

fn reference_mean(x: &Tensor, dim: &[i64], keepdim: bool) -> Result<Tensor> {
    let op = "mean";
    let pt = per_tensor(op, "self", x)?;
    let nd = x.ndim();
    if nd == 0 {
        // A 0-d tensor averages to itself; PyTorch accepts dim 0 or -1.
        reduced_dims(op, 1, dim)?;
        return x.contiguous_copy();
    }
    let dims = reduced_dims(op, nd, dim)?;
    let sizes = x.sizes();
    let count = qtensor_runtime::tensor::layout::numel_of(&dims.iter().map(|&d| sizes[d]).collect::<Vec<usize>>());
    if count == 0 {
        return Err(Error::shape(op, format!("cannot average over the empty dimensions {dims:?} of shape {sizes:?}")));
    }
    let kept: Vec<usize> = (0..nd).filter(|d| !dims.contains(d)).collect();
    let out_sizes: Vec<usize> =
        (0..nd).filter_map(|d| if dims.contains(&d) { keepdim.then_some(1) } else { Some(sizes[d]) }).collect();
    let q = x.quantizer().ok_or_else(|| Error::invalid(op, "no quantizer"))?;
    if nd == 4 && dims == [2, 3] && x.is_contiguous_in(MemoryFormat::ChannelsLast) && x.numel() > 0 {
        // The global pooling of networks, read in place: its memory order
        // is already pixel-major, channels innermost.
        let ints = match x.dtype() {
            DType::QUInt8 => channels_last_means::<u8>(x, &pt)?,
            DType::QInt8 => channels_last_means::<i8>(x, &pt)?,
            _ => channels_last_means::<i32>(x, &pt)?,
        };
        return quantized_from_ints(&out_sizes, &q, &ints);
    }
    // Put the kept dimensions first and the reduced ones last: each output
    // is then a run of `count` consecutive values.
    let order: Vec<i64> = kept.iter().chain(&dims).map(|&d| d as i64).collect();
    let grouped = x.permute(&order)?.int_values()?;
    if grouped.is_empty() {
        // Kept dimensions of size 0: an empty result.
        return quantized_from_ints(&out_sizes, &q, &[]);
    }
    let outputs = grouped.len() / count;
    let mut ints = try_vec(outputs)?;
    let innermost = dims.iter().enumerate().all(|(i, &d)| d == nd - dims.len() + i);
    let inv = inv_scale(pt.scale);
    if innermost && x.is_contiguous() {
        for run in grouped.chunks(count) {
            let sum: i64 = run.iter().sum();
            ints.push((sum as f32 / count as f32).round_ties_even() as i64);
        }
    } else {
        let s = pt.scale as f32;
        for run in grouped.chunks(count) {
            let sum: f64 = run.iter().map(|&q| ((q - pt.zero_point) as f32 * s) as f64).sum();
            ints.push(quantize_val(sum as f32 / count as f32, inv, pt.zero_point, pt.qmin, pt.qmax));
        }
    }
    quantized_from_ints(&out_sizes, &q, &ints)
}

/// The spatial means of a channels-last `[N, C, H, W]` tensor, per image
/// and channel: each channel's dequantized values summed over the pixels
/// in PyTorch's order ([`outer_sum`]), divided by the pixel count in f32
/// and quantized back.
fn channels_last_means<T: Element>(x: &Tensor, pt: &PerTensor) -> Result<Vec<i64>> {
    let sizes = x.sizes();
    let (c, hw) = (sizes[1], sizes[2] * sizes[3]);
    let (s, inv) = (pt.scale as f32, inv_scale(pt.scale));
    let mut ints = try_vec(sizes[0] * c)?;
    x.with_dense::<T, _>(|src| {
        for image in src.chunks_exact(c * hw) {
            let at = |r: usize, ch: usize| (image[r * c + ch].to_i64() - pt.zero_point) as f32 * s;
            for sum in outer_sum(hw, c, at) {
                ints.push(quantize_val(sum / hw as f32, inv, pt.zero_point, pt.qmin, pt.qmax));
            }
        }
    })?;
    Ok(ints)
}

register_kernel! {
    op: op::MEAN,
    dtypes: [QUInt8, QInt8, QInt32],
    name: "reference_mean",
    priority: Priority::REFERENCE,
    fn reference_mean(x: &Tensor, dim: &[i64], keepdim: bool) -> Tensor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_sums_agree_with_plain_sums_on_exact_values() {
        // Small integers add exactly in any order: the cascade must visit
        // every element once.
        // Under Miri (hundreds of times slower) without the largest sizes:
        // 257 rows still reach the cascade's third level, 33 columns a
        // second block of 32.
        let (row_counts, col_counts): (&[usize], &[usize]) = if cfg!(miri) {
            (&[0, 1, 3, 4, 15, 16, 17, 49, 64, 257], &[1, 3, 4, 7, 8, 9, 32, 33])
        } else {
            (&[0, 1, 3, 4, 15, 16, 17, 49, 64, 257, 1000], &[1, 3, 4, 7, 8, 9, 32, 33, 70])
        };
        for &rows in row_counts {
            for &cols in col_counts {
                let at = |r: usize, c: usize| ((r * 7 + c * 3) % 11) as f32;
                let want: Vec<f32> = (0..cols).map(|c| (0..rows).map(|r| at(r, c)).sum()).collect();
                assert_eq!(outer_sum(rows, cols, at), want, "{rows}x{cols}");
            }
        }
    }
}
