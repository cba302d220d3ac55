//! Valid-input builders for the built-in ops, so that every kernel is
//! compared with its reference on inputs that succeed, not only on errors.

use super::inputs::{float_tensor, maybe_strided, quantized, scale, shape, zero_point, InputBuilder};
use super::rng::Rng;
use crate::{DType, Quantizer, Result, Tensor, Value};

/// The builder for a built-in op, if it has one.
pub fn builtin(op: &str) -> Option<InputBuilder> {
    Some(match op {
        "quantize_per_tensor" => quantize_per_tensor,
        "quantize_per_channel" => quantize_per_channel,
        "dequantize" | "int_repr" | "relu" | "contiguous" => unary_quantized,
        "quantized::add" | "quantized::add_relu" | "quantized::mul" => binary,
        "quantized::cat" => cat,
        "transpose" => transpose,
        "permute" => permute,
        "slice" => slice,
        "select" => select,
        "reshape" | "view" => reshape,
        "copy_" => copy,
        "max_pool2d" => max_pool2d,
        "avg_pool2d" => avg_pool2d,
        "adaptive_avg_pool2d" => adaptive_avg_pool2d,
        "quantized::linear" | "quantized::linear_relu" => linear,
        "quantized::linear_dynamic" => linear_dynamic,
        "quantized::conv2d" | "quantized::conv2d_relu" => conv2d,
        "quantized::conv2d.new" | "quantized::conv2d_relu.new" => conv2d_packed,
        "quantized::linear.packed" | "quantized::linear_relu.packed" => linear_packed,
        "quantized::linear_dynamic.packed" => linear_dynamic_packed,
        "hardsigmoid" | "sigmoid" | "relu6" => unary_quantized,
        "quantized::hardswish" => hardswish,
        "hardtanh" | "clamp" => clamp,
        "mean" => mean,
        "flatten" => flatten,
        "channel_shuffle" => channel_shuffle,
        "quantized::batch_norm2d" => batch_norm2d,
        "upsample_nearest2d" => upsample_nearest2d,
        _ => return None,
    })
}

/// A target dtype for quantize ops.
fn qdtype(rng: &mut Rng) -> DType {
    rng.pick(&[DType::QUInt8, DType::QInt8, DType::QInt16, DType::QInt32])
}

/// The kernel's input: quantized of its dtype, or float of its dtype.
fn input(rng: &mut Rng, dtype: DType, sizes: &[usize], per_channel: bool) -> Result<Tensor> {
    let t = if dtype.is_quantized() {
        quantized(rng, dtype, sizes, per_channel)?
    } else if dtype == DType::Float64 {
        let f = float_tensor(rng, sizes, 1.0)?;
        Tensor::from_vec(f.real_values()?, sizes)?
    } else {
        float_tensor(rng, sizes, 1.0)?
    };
    maybe_strided(rng, t)
}

/// [`input`] of a random shape of at least `min_rank` dimensions.
fn random_input(rng: &mut Rng, dtype: DType, min_rank: usize, per_channel: bool) -> Result<Tensor> {
    let sizes = shape(rng, min_rank);
    input(rng, dtype, &sizes, per_channel)
}

fn quantize_per_tensor(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let s = scale(rng);
    let x = random_input(rng, dtype, 0, false)?;
    let x = if rng.one_in(2) {
        Tensor::from_vec(x.real_values()?.iter().map(|v| (*v * s) as f32).collect(), x.sizes())?
    } else {
        x
    };
    let target = qdtype(rng);
    Ok(vec![Value::from(&x), Value::Float(s), Value::Int(zero_point(rng, target)), Value::ScalarType(target)])
}

fn quantize_per_channel(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let sizes = shape(rng, 1);
    let axis = rng.below(sizes.len());
    let target = qdtype(rng);
    let c = sizes[axis];
    let scales = Tensor::from_vec((0..c).map(|_| scale(rng)).collect::<Vec<f64>>(), &[c])?;
    let zps = Tensor::from_vec((0..c).map(|_| zero_point(rng, target)).collect::<Vec<i64>>(), &[c])?;
    let x = input(rng, dtype, &sizes, false)?;
    let axis = if rng.one_in(4) { axis as i64 - sizes.len() as i64 } else { axis as i64 };
    Ok(vec![Value::from(&x), Value::from(&scales), Value::from(&zps), Value::Int(axis), Value::ScalarType(target)])
}

fn unary_quantized(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    Ok(vec![Value::from(&random_input(rng, dtype, 0, true)?)])
}

/// A shape that broadcasts against `sizes`.
fn broadcastable(rng: &mut Rng, sizes: &[usize]) -> Vec<usize> {
    let drop = rng.below(sizes.len() + 1).min(if rng.one_in(2) { 0 } else { sizes.len() });
    sizes[drop..].iter().map(|&s| if rng.one_in(3) { 1 } else { s }).collect()
}

fn binary(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let sa = shape(rng, 0);
    let sb = if rng.one_in(2) { sa.clone() } else { broadcastable(rng, &sa) };
    let (a, b) = if rng.one_in(2) { (sa, sb) } else { (sb, sa) };
    let qa = input(rng, dtype, &a, false)?;
    let qb = input(rng, dtype, &b, false)?;
    Ok(vec![Value::from(&qa), Value::from(&qb), Value::Float(scale(rng)), Value::Int(zero_point(rng, dtype))])
}

fn cat(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let base = shape(rng, 1);
    let dim = rng.below(base.len());
    let same_qparams = rng.one_in(3);
    let first = input(rng, dtype, &base, false)?;
    let mut xs = vec![first.clone()];
    for _ in 0..rng.below(3) {
        let mut s = base.clone();
        s[dim] = rng.range(0, 4) as usize;
        let t = input(rng, dtype, &s, false)?;
        xs.push(if same_qparams {
            t.with_quantizer(first.quantizer().unwrap_or(Quantizer::per_tensor(1.0, 0, dtype)?))?
        } else {
            t
        });
    }
    let (sc, zp) = if same_qparams || rng.one_in(3) {
        (Value::None, Value::None)
    } else {
        (Value::Float(scale(rng)), Value::Int(zero_point(rng, dtype)))
    };
    let dim = if rng.one_in(3) { dim as i64 - base.len() as i64 } else { dim as i64 };
    Ok(vec![Value::TensorList(xs), Value::Int(dim), sc, zp])
}

fn transpose(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = random_input(rng, dtype, 1, true)?;
    let n = x.ndim() as i64;
    Ok(vec![Value::from(&x), Value::Int(rng.range(-n, n - 1)), Value::Int(rng.range(-n, n - 1))])
}

fn permute(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = random_input(rng, dtype, 0, true)?;
    let mut dims: Vec<i64> = (0..x.ndim() as i64).collect();
    for i in (1..dims.len()).rev() {
        dims.swap(i, rng.below(i + 1));
    }
    Ok(vec![Value::from(&x), Value::from(dims.as_slice())])
}

fn slice(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = random_input(rng, dtype, 1, true)?;
    let n = x.ndim() as i64;
    let bound = |rng: &mut Rng| {
        if rng.one_in(4) {
            Value::None
        } else {
            Value::Int(rng.range(-6, 6))
        }
    };
    Ok(vec![Value::from(&x), Value::Int(rng.range(-n, n - 1)), bound(rng), bound(rng), Value::Int(rng.range(1, 3))])
}

fn select(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = random_input(rng, dtype, 1, true)?;
    let d = rng.below(x.ndim());
    let size = x.sizes()[d].max(1) as i64;
    Ok(vec![Value::from(&x), Value::Int(d as i64), Value::Int(rng.range(-size, size - 1))])
}

fn reshape(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = random_input(rng, dtype, 0, false)?;
    let n = x.numel() as i64;
    let target: Vec<i64> = match rng.below(3) {
        0 => vec![-1],
        1 if n > 0 => {
            let d = (1..=n).filter(|d| n % d == 0).nth(rng.below(3)).unwrap_or(1);
            vec![d, -1]
        }
        _ => x.sizes().iter().rev().map(|&s| s as i64).collect(),
    };
    Ok(vec![Value::from(&x), Value::from(target.as_slice())])
}

fn copy(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let s = shape(rng, 0);
    let dst = input(rng, dtype, &s, true)?.contiguous_copy()?;
    let src =
        if dtype.is_quantized() && rng.one_in(2) { float_tensor(rng, &s, 1.0)? } else { input(rng, dtype, &s, true)? };
    Ok(vec![Value::from(&dst), Value::from(&src)])
}

/// A small NCHW (or CHW) input.
fn image(rng: &mut Rng, dtype: DType) -> Result<Tensor> {
    let mut s =
        vec![rng.range(1, 2) as usize, rng.range(1, 4) as usize, rng.range(1, 9) as usize, rng.range(1, 9) as usize];
    if rng.one_in(4) {
        s.remove(0);
    }
    let x = input(rng, dtype, &s, false)?;
    // Channels-last too: the layout networks run in, and the only one some
    // fast kernels take (they decline the rest).
    if x.ndim() == 4 && rng.one_in(3) {
        x.contiguous_in(crate::MemoryFormat::ChannelsLast)
    } else {
        Ok(x)
    }
}

fn max_pool2d(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    // One time in three a network's pool: channels-last over up to 160
    // channels, so that kernels working on chunks of 32 or 64 channels
    // meet whole chunks and a remainder.
    let x = if rng.one_in(3) && dtype.is_quantized() {
        let s = [rng.range(1, 2), rng.range(8, 160), rng.range(1, 6), rng.range(1, 6)].map(|d| d as usize);
        input(rng, dtype, &s, false)?.contiguous_in(crate::MemoryFormat::ChannelsLast)?
    } else {
        image(rng, dtype)?
    };
    let k = [rng.range(1, 3), rng.range(1, 3)];
    let pad = [rng.range(0, k[0] / 2), rng.range(0, k[1] / 2)];
    Ok(vec![
        Value::from(&x),
        Value::from(k),
        Value::from([rng.range(1, 2), rng.range(1, 2)]),
        Value::from(pad),
        Value::from([rng.range(1, 2), rng.range(1, 2)]),
        Value::Bool(rng.one_in(2)),
    ])
}

fn avg_pool2d(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = image(rng, dtype)?;
    let k = [rng.range(1, 3), rng.range(1, 3)];
    let pad = [rng.range(0, k[0] / 2), rng.range(0, k[1] / 2)];
    let divisor = if rng.one_in(4) { Value::Int(rng.range(1, 5)) } else { Value::None };
    Ok(vec![
        Value::from(&x),
        Value::from(k),
        Value::from([rng.range(1, 2), rng.range(1, 2)]),
        Value::from(pad),
        Value::Bool(rng.one_in(2)),
        Value::Bool(rng.one_in(2)),
        divisor,
    ])
}

fn adaptive_avg_pool2d(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = image(rng, dtype)?;
    Ok(vec![Value::from(&x), Value::from([rng.range(1, 5), rng.range(1, 5)])])
}

/// A qint8 weight with full-range values (including -128), per tensor with
/// any zero point or per channel on axis 0.
fn weight(rng: &mut Rng, sizes: &[usize]) -> Result<Tensor> {
    let n: usize = sizes.iter().product();
    let ints: Vec<i8> =
        (0..n).map(|_| if rng.one_in(6) { rng.pick(&[-128i8, 127]) } else { rng.range(-128, 127) as i8 }).collect();
    let q = if rng.one_in(2) {
        Quantizer::per_channel(
            (0..sizes[0]).map(|_| scale(rng) * 0.01).collect(),
            (0..sizes[0]).map(|_| rng.range(-3, 3)).collect(),
            0,
            DType::QInt8,
        )?
    } else {
        Quantizer::per_tensor(scale(rng) * 0.01, zero_point(rng, DType::QInt8), DType::QInt8)?
    };
    Tensor::from_int_repr(&Tensor::from_vec(ints, sizes)?, &q)
}

fn bias(rng: &mut Rng, n: usize) -> Result<Value> {
    Ok(if rng.one_in(3) {
        Value::None
    } else {
        Value::Tensor(Tensor::from_vec((0..n).map(|_| (rng.unit() * 4.0 - 2.0) as f32).collect(), &[n])?)
    })
}

fn linear(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    // Up to 70 outputs: the vector epilogues take 16 and 64 columns at a
    // time, so wide rows reach them with every weight zero point.
    let n = if rng.one_in(3) { rng.pick(&[16usize, 33, 70]) } else { rng.range(1, 9) as usize };
    let (m, k) = (rng.range(1, 5) as usize, rng.pick(&[1, 7, 16, 33, 64, 100]));
    let x = if rng.one_in(4) { input(rng, dtype, &[2, m, k], false)? } else { input(rng, dtype, &[m, k], false)? };
    Ok(vec![
        Value::from(&x),
        Value::from(&weight(rng, &[n, k])?),
        bias(rng, n)?,
        Value::Float(scale(rng) * 10.0),
        Value::Int(zero_point(rng, DType::QUInt8)),
    ])
}

fn linear_dynamic(rng: &mut Rng, _dtype: DType) -> Result<Vec<Value>> {
    let (m, k, n) = (rng.range(1, 5) as usize, rng.pick(&[1, 7, 16, 33]), rng.range(1, 9) as usize);
    let x = Tensor::from_vec((0..m * k).map(|_| (rng.unit() * 6.0 - 3.0) as f32).collect(), &[m, k])?;
    Ok(vec![Value::from(&x), Value::from(&weight(rng, &[n, k])?), bias(rng, n)?, Value::Bool(rng.one_in(2))])
}

fn conv2d(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    if rng.one_in(4) {
        return fbgemm_depthwise_conv2d(rng, dtype);
    }
    if rng.one_in(4) {
        return network_conv2d(rng, dtype);
    }
    let groups = rng.pick(&[1usize, 1, 2, 4]);
    let (icg, ocg) = (rng.range(1, 3) as usize, rng.range(1, 3) as usize);
    let (kh, kw) = (rng.range(1, 3) as usize, rng.range(1, 3) as usize);
    let (h, w) = (rng.range(kh as i64, 9) as usize, rng.range(kw as i64, 9) as usize);
    let batch = rng.range(1, 2) as usize;
    let x = input(rng, dtype, &[batch, icg * groups, h, w], false)?;
    let wt = weight(rng, &[ocg * groups, icg, kh, kw])?;
    Ok(vec![
        Value::from(&x),
        Value::from(&wt),
        bias(rng, ocg * groups)?,
        Value::from([rng.range(1, 2), rng.range(1, 2)]),
        Value::from([rng.range(0, 1), rng.range(0, 1)]),
        Value::from([rng.range(1, 2), rng.range(1, 2)]),
        Value::Int(groups as i64),
        Value::Float(scale(rng) * 10.0),
        Value::Int(zero_point(rng, DType::QUInt8)),
    ])
}

/// A conv as networks hold them: a channels-last input, 64 to 144 output
/// channels (the vector kernels' 64-channel steps and their tails; 8 to
/// 144 when depthwise), dense
/// or depthwise, and symmetric per-channel weights (PyTorch's default,
/// whose depthwise taps the VNNI routine takes in i8).
fn network_conv2d(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let depthwise = rng.one_in(2);
    // Depthwise convs of 32 channels or fewer put several pixels in one
    // vector (the VNNI routine).
    let oc = if depthwise { rng.pick(&[8usize, 16, 24, 32, 64, 80, 130, 144]) } else { rng.pick(&[64, 80, 130, 144]) };
    let (ic, groups, k) = if depthwise {
        (oc, oc, rng.pick(&[3usize, 5]))
    } else {
        (rng.range(1, 8) as usize, 1, rng.pick(&[1usize, 3]))
    };
    let (h, w) = (rng.range(1, 7) as usize, rng.range(1, 7) as usize);
    let x = input(rng, dtype, &[1, ic, h, w], false)?;
    let x = if dtype.is_quantized() { x.contiguous_in(crate::MemoryFormat::ChannelsLast)? } else { x };
    let ints: Vec<i8> = (0..oc * (ic / groups) * k * k).map(|_| rng.range(-127, 127) as i8).collect();
    let q = Quantizer::per_channel((0..oc).map(|_| scale(rng) * 0.01).collect(), vec![0; oc], 0, DType::QInt8)?;
    let wt = Tensor::from_int_repr(&Tensor::from_vec(ints, &[oc, ic / groups, k, k])?, &q)?;
    let stride = rng.range(1, 2);
    same_padding_conv(rng, &x, &wt, k, stride, groups)
}

/// The arguments of a conv of `x` by the `k` x `k` weight `wt` with "same"
/// padding, stride `stride` and no dilation: a random bias and output
/// qparams.
fn same_padding_conv(
    rng: &mut Rng,
    x: &Tensor,
    wt: &Tensor,
    k: usize,
    stride: i64,
    groups: usize,
) -> Result<Vec<Value>> {
    let pad = (k / 2) as i64;
    Ok(vec![
        Value::from(x),
        Value::from(wt),
        bias(rng, wt.sizes()[0])?,
        Value::from([stride, stride]),
        Value::from([pad, pad]),
        Value::from([1, 1]),
        Value::Int(groups as i64),
        Value::Float(scale(rng) * 10.0),
        Value::Int(zero_point(rng, DType::QUInt8)),
    ])
}

/// A depthwise conv of the shapes fbgemm's depthwise kernel takes (groups
/// a multiple of 8, one or two outputs per channel, a 3x3 or 5x5 kernel
/// with "same" padding, stride 1 or 2) over full-range activations: under
/// `QTENSOR_ENGINE=fbgemm` its pairs of taps saturate in int16, under
/// `x86` (8 to 96 groups) it goes to oneDNN.
fn fbgemm_depthwise_conv2d(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let groups = rng.pick(&[8usize, 16, 24]);
    let per_group = rng.pick(&[1usize, 1, 2]);
    let k = rng.pick(&[3usize, 5]);
    let stride = rng.range(1, 2);
    let (n, h, w) = (rng.range(1, 2) as usize, rng.range(1, 9) as usize, rng.range(1, 9) as usize);
    let x = input(rng, dtype, &[n, groups, h, w], false)?;
    let wt = weight(rng, &[groups * per_group, 1, k, k])?;
    same_padding_conv(rng, &x, &wt, k, stride, groups)
}

fn hardswish(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = random_input(rng, dtype, 0, false)?;
    Ok(vec![Value::from(&x), Value::Float(scale(rng)), Value::Int(zero_point(rng, dtype))])
}

fn clamp(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = random_input(rng, dtype, 0, false)?;
    let (lo, hi) = ((rng.unit() * 4.0 - 3.0), (rng.unit() * 4.0 - 1.0));
    let bound = |rng: &mut Rng, v: f64| if rng.one_in(4) { Value::None } else { Value::Float(v) };
    let (lo, hi) = (bound(rng, lo), Value::Float(hi));
    Ok(vec![Value::from(&x), lo, hi])
}

fn mean(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = if rng.one_in(2) { image(rng, dtype)? } else { random_input(rng, dtype, 1, false)? };
    let x = if x.ndim() == 4 && rng.one_in(2) { x.contiguous_in(crate::MemoryFormat::ChannelsLast)? } else { x };
    let n = x.ndim() as i64;
    let dims: Vec<i64> = match rng.below(3) {
        0 if n == 4 => vec![2, 3],
        1 => vec![n - 1],
        _ => vec![rng.range(0, n - 1)],
    };
    let dims: Vec<i64> = dims.into_iter().filter(|&d| x.sizes()[d as usize] > 0).collect();
    Ok(vec![Value::from(&x), Value::from(dims.as_slice()), Value::Bool(rng.one_in(2))])
}

fn flatten(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = random_input(rng, dtype, 1, true)?;
    let n = x.ndim() as i64;
    let start = rng.range(0, n - 1);
    Ok(vec![Value::from(&x), Value::Int(start), Value::Int(rng.range(start, n - 1))])
}

fn channel_shuffle(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let groups = rng.range(1, 4) as usize;
    let sizes = [
        rng.range(1, 2) as usize,
        groups * rng.range(1, 5) as usize,
        rng.range(1, 5) as usize,
        rng.range(2, 5) as usize,
    ];
    let x = input(rng, dtype, &sizes, false)?;
    // Channels-last half the time: ShuffleNet's layout, the one the fast
    // kernel takes.
    let x = if rng.one_in(2) { x.contiguous_in(crate::MemoryFormat::ChannelsLast)? } else { x };
    Ok(vec![Value::from(&x), Value::Int(groups as i64)])
}

fn batch_norm2d(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = image(rng, dtype)?;
    let x = if x.ndim() == 3 { x.reshape([1, -1, x.sizes()[1] as i64, x.sizes()[2] as i64])? } else { x };
    let c = x.sizes()[1];
    let mut param = |lo: f64, span: f64| {
        Tensor::from_vec((0..c).map(|_| (lo + rng.unit() * span) as f32).collect::<Vec<f32>>(), &[c])
    };
    let (w, b, m, v) = (param(0.5, 1.0)?, param(-0.5, 1.0)?, param(-0.5, 1.0)?, param(0.1, 2.0)?);
    Ok(vec![
        Value::from(&x),
        Value::from(&w),
        Value::from(&b),
        Value::from(&m),
        Value::from(&v),
        Value::Float(1e-5),
        Value::Float(scale(rng)),
        Value::Int(zero_point(rng, dtype)),
    ])
}

fn upsample_nearest2d(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let x = image(rng, dtype)?;
    let scales = |rng: &mut Rng| if rng.one_in(3) { Value::Float(0.5 + rng.unit() * 3.0) } else { Value::None };
    let (sh, sw) = (scales(rng), scales(rng));
    Ok(vec![Value::from(&x), Value::from([rng.range(1, 12), rng.range(1, 12)]), sh, sw])
}

/// The plain op's arguments with its weight, bias (and conv geometry)
/// moved into PyTorch's packed-weight object.
fn conv2d_packed(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let a = conv2d(rng, dtype)?;
    let pair = |v: &Value| -> Result<[i64; 2]> {
        match v {
            Value::IntList(l) if l.len() == 2 => Ok([l[0], l[1]]),
            _ => Err(crate::Error::invalid("kernel_checks", "a conv2d builder's int[2]")),
        }
    };
    let packed = qtensor_runtime::packed::Conv2dPackedParams {
        weight: a[1].as_tensor().cloned().ok_or_else(|| crate::Error::invalid("kernel_checks", "a conv2d weight"))?,
        bias: a[2].as_tensor().cloned(),
        stride: pair(&a[3])?,
        padding: pair(&a[4])?,
        dilation: pair(&a[5])?,
        output_padding: [0, 0],
        groups: a[6].as_i64().unwrap_or(1),
        transposed: false,
    };
    Ok(vec![a[0].clone(), packed.into_value()?, a[7].clone(), a[8].clone()])
}

fn linear_packed_value(a: &[Value]) -> Result<Value> {
    qtensor_runtime::packed::LinearPackedParams {
        weight: a[1].as_tensor().cloned().ok_or_else(|| crate::Error::invalid("kernel_checks", "a linear weight"))?,
        bias: a[2].as_tensor().cloned(),
    }
    .into_value()
}

fn linear_packed(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let a = linear(rng, dtype)?;
    Ok(vec![a[0].clone(), linear_packed_value(&a)?, a[3].clone(), a[4].clone()])
}

fn linear_dynamic_packed(rng: &mut Rng, dtype: DType) -> Result<Vec<Value>> {
    let a = linear_dynamic(rng, dtype)?;
    Ok(vec![a[0].clone(), linear_packed_value(&a)?, a[3].clone()])
}
