//! Operators that move quantized values without changing them:
//! `upsample_nearest2d` (PyTorch's source-index arithmetic, in f32) and
//! `channel_shuffle`. The output keeps the input's qparams.

use crate::args::quantized::check_at_least;
use crate::args::window::Planes;
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::{checked_count, try_vec};
use qtensor_runtime::{register_kernel, Error, Priority, Result, Tensor};

/// The input index output index `o` reads: identity and exact doubling
/// without arithmetic, otherwise `min(floor(o * scale), input - 1)` with
/// `scale = f32(1 / scales)` if given and positive, else
/// `f32(input) / f32(output)`.
fn nearest_source(o: usize, input: usize, output: usize, scales: Option<f64>) -> usize {
    if output == input {
        return o;
    }
    if output == 2 * input {
        return o >> 1;
    }
    let scale = match scales {
        Some(s) if s > 0.0 => (1.0 / s) as f32,
        _ => input as f32 / output as f32,
    };
    ((o as f32 * scale).floor() as usize).min(input - 1)
}

fn reference_upsample_nearest2d(
    x: &Tensor,
    output_size: &[i64],
    scales_h: Option<f64>,
    scales_w: Option<f64>,
) -> Result<Tensor> {
    let op = "upsample_nearest2d";
    let q = x.require_quantizer(op)?;
    let p = Planes::of(op, x)?;
    check_at_least(op, "output_size", output_size, 1)?;
    let (oh, ow) = (output_size[0] as usize, output_size[1] as usize);
    let count = checked_count(op, &[p.planes, oh, ow])?;
    if count == 0 {
        // Nothing to read: an empty output bounds nothing, and its other
        // sizes may be huge.
        return crate::args::quantized::quantized_from_ints(&p.out_sizes(oh, ow), &q, &[])?.in_format_of(x);
    }
    // The output is allocated first: it bounds the index tables below.
    let mut out = try_vec(count)?;
    let mut rows = try_vec(oh)?;
    rows.extend((0..oh).map(|o| nearest_source(o, p.h, oh, scales_h)));
    let mut cols = try_vec(ow)?;
    cols.extend((0..ow).map(|o| nearest_source(o, p.w, ow, scales_w)));
    let ints = x.int_values()?;
    for plane in ints.chunks(p.h * p.w).take(p.planes) {
        for &r in &rows {
            out.extend(cols.iter().map(|&c| plane[r * p.w + c]));
        }
    }
    crate::args::quantized::quantized_from_ints(&p.out_sizes(oh, ow), &q, &out)?.in_format_of(x)
}

register_kernel! {
    op: op::UPSAMPLE_NEAREST2D,
    dtypes: [QUInt8, QInt8, QInt32],
    name: "reference_upsample_nearest2d",
    priority: Priority::REFERENCE,
    fn reference_upsample_nearest2d(x: &Tensor, output_size: &[i64], scales_h: Option<f64>, scales_w: Option<f64>) -> Tensor
}

/// `[N, C, ...]` to `[N, groups, C / groups, ...]`, those two swapped,
/// and back to `[N, C, ...]`: channel `g * (C / groups) + i` moves to
/// `i * groups + g`.
pub fn channel_shuffle(x: &Tensor, groups: i64) -> Result<Tensor> {
    let op = "channel_shuffle";
    if x.ndim() < 3 {
        return Err(Error::shape(op, format!("expected an input of at least 3 dimensions, got shape {:?}", x.sizes())));
    }
    check_at_least(op, "groups", &[groups], 1)?;
    let c = x.sizes()[1];
    let g = groups as usize;
    if !c.is_multiple_of(g) {
        return Err(Error::shape(op, format!("groups {groups} must divide the {c} channels")));
    }
    if x.quantizer().and_then(|q| q.axis()).is_some() {
        return Err(Error::invalid(op, "per-channel quantized tensors cannot be shuffled across channels"));
    }
    let s = x.sizes();
    let mut split: Vec<i64> = vec![s[0] as i64, g as i64, (c / g) as i64];
    split.extend(s[2..].iter().map(|&d| d as i64));
    let shape: Vec<i64> = s.iter().map(|&d| d as i64).collect();
    let shuffled = x.reshape(&split)?.transpose(1, 2)?.contiguous()?.reshape(&shape)?;
    shuffled.in_format_of(x)
}

register_kernel! {
    op: op::CHANNEL_SHUFFLE,
    dtypes: [Float32, Float64, Int64, Int32, Int16, Int8, UInt8, QUInt8, QInt8, QInt16, QInt32],
    name: "reference_channel_shuffle",
    priority: Priority::REFERENCE,
    fn channel_shuffle(x: &Tensor, groups: i64) -> Tensor
}
