//! The float ops of dynamically quantized Transformer layers: `linear`,
//! `matmul`, `scaled_dot_product_attention`, `layer_norm` and `gelu` on
//! float32 tensors, their products by sgemm ([`super::matmul`]).

use super::matmul::{sgemm, Rhs};
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::{checked_count, try_vec};
use qtensor_runtime::tensor::layout::{broadcast_shapes, wrap_dim};
use qtensor_runtime::{register_kernel, DType, Error, Priority, Result, Tensor};

fn float32(op: &str, x: &Tensor) -> Result<Vec<f32>> {
    match x.dtype() {
        DType::Float32 => x.to_vec::<f32>(),
        other => Err(Error::WrongDType { op: op.into(), expected: "a float32 tensor".into(), got: other }),
    }
}

fn reference_linear_float(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let op = "linear";
    let (ws, xs) = (w.sizes(), x.sizes());
    let [n, k] = ws[..] else { return Err(Error::shape(op, format!("the weight must be [N, K], got {ws:?}"))) };
    if xs.last() != Some(&k) {
        return Err(Error::shape(op, format!("input {xs:?} does not end in K = {k}")));
    }
    let m = checked_count(op, &xs[..xs.len() - 1])?;
    let mut y = sgemm(op, &float32(op, x)?, &float32(op, w)?, [m, k, n], Rhs::NK)?;
    if let Some(b) = b {
        let b = float32(op, b)?;
        if b.len() != n {
            return Err(Error::shape(op, format!("a bias of {} values for {n} outputs", b.len())));
        }
        for row in y.chunks_mut(n.max(1)) {
            row.iter_mut().zip(&b).for_each(|(v, b)| *v += b);
        }
    }
    let mut sizes = xs.to_vec();
    *sizes.last_mut().unwrap_or(&mut 0) = n; // ok: xs ends in k, so it is not empty
    Tensor::from_vec(y, &sizes)
}

/// `a @ b` over the last two dimensions with broadcast batch dimensions,
/// `b` transposed first when `transpose_b` (attention's `q @ k^T`).
fn batched_matmul(op: &str, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor> {
    if a.dim() < 2 || b.dim() < 2 {
        return Err(Error::shape(op, format!("operands of {} and {} dimensions", a.dim(), b.dim())));
    }
    let (ad, bd) = (a.dim(), b.dim());
    let (m, k) = (a.sizes()[ad - 2], a.sizes()[ad - 1]);
    let (kb, n) =
        if transpose_b { (b.sizes()[bd - 1], b.sizes()[bd - 2]) } else { (b.sizes()[bd - 2], b.sizes()[bd - 1]) };
    if k != kb {
        return Err(Error::shape(op, format!("{:?} and {:?} do not multiply", a.sizes(), b.sizes())));
    }
    let batch = broadcast_shapes(op, &a.sizes()[..ad - 2], &b.sizes()[..bd - 2])?;
    let shape_a: Vec<usize> = batch.iter().copied().chain([m, k]).collect();
    let shape_b: Vec<usize> = batch.iter().copied().chain(if transpose_b { [n, k] } else { [k, n] }).collect();
    let (va, vb) = (float32(op, &a.expand(&shape_a[..])?)?, float32(op, &b.expand(&shape_b[..])?)?);
    let count = checked_count(op, &batch)?;
    let sizes: Vec<usize> = batch.iter().copied().chain([m, n]).collect();
    // An empty result, or an empty inner dimension, needs no products (and
    // the batch may be huge): the zeros' storage is allocated fallibly.
    if checked_count(op, &sizes)? == 0 || k == 0 {
        return Tensor::zeros(&sizes, DType::Float32);
    }
    let mut out = try_vec(checked_count(op, &[count, m, n])?)?;
    let rhs = if transpose_b { Rhs::NK } else { Rhs::KN };
    for i in 0..count {
        out.extend(sgemm(op, &va[i * m * k..(i + 1) * m * k], &vb[i * k * n..(i + 1) * k * n], [m, k, n], rhs)?);
    }
    Tensor::from_vec(out, &sizes)
}

fn reference_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let op = "matmul";
    // 1-d operands are vectors: a row on the left, a column on the right.
    let a2 = if a.dim() == 1 { unsqueeze(a, 0)? } else { a.clone() };
    let b2 = if b.dim() == 1 { unsqueeze(b, 1)? } else { b.clone() };
    let y = batched_matmul(op, &a2, &b2, false)?;
    let mut sizes = y.sizes().to_vec();
    if b.dim() == 1 {
        sizes.pop();
    }
    if a.dim() == 1 {
        sizes.remove(sizes.len().saturating_sub(if b.dim() == 1 { 1 } else { 2 }));
    }
    y.reshape_to(&sizes)
}

/// Softmax of each row of `rows` (length `n`) in place, as PyTorch's:
/// subtract the max, exponentiate, multiply by the reciprocal of the sum.
fn softmax_rows(rows: &mut [f32], n: usize) {
    for row in rows.chunks_mut(n.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            // A fully masked row: PyTorch gives NaN here too.
            row.iter_mut().for_each(|v| *v = f32::NAN);
            continue;
        }
        let mut sum = 0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

#[allow(clippy::too_many_arguments)]
fn reference_sdpa(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    dropout_p: f64,
    is_causal: bool,
    scale: Option<f64>,
    enable_gqa: bool,
) -> Result<Tensor> {
    let op = "scaled_dot_product_attention";
    if dropout_p != 0.0 || enable_gqa {
        return Err(Error::invalid(op, "dropout and grouped-query attention are not supported in inference"));
    }
    if is_causal && mask.is_some() {
        return Err(Error::invalid(op, "a mask and is_causal together"));
    }
    let e = *q.sizes().last().ok_or_else(|| Error::shape(op, "a 0-d query"))?;
    let scale = scale.unwrap_or(1.0 / (e as f64).sqrt()) as f32;
    let mut scores = batched_matmul(op, q, k, true)?;
    let (l, s) = (scores.sizes()[scores.dim() - 2], scores.sizes()[scores.dim() - 1]);
    let mut values: Vec<f32> = scores.to_vec::<f32>()?.into_iter().map(|x| x * scale).collect();
    if is_causal {
        for (i, row) in values.chunks_mut(s.max(1)).enumerate() {
            let r = i % l.max(1);
            row.iter_mut().skip(r + 1).for_each(|x| *x = f32::NEG_INFINITY);
        }
    }
    if let Some(mask) = mask {
        let m = mask.expand(scores.sizes())?;
        match m.dtype() {
            DType::Float32 => values.iter_mut().zip(m.to_vec::<f32>()?).for_each(|(x, a)| *x += a),
            DType::UInt8 => values.iter_mut().zip(m.to_vec::<u8>()?).for_each(|(x, keep)| {
                if keep == 0 {
                    *x = f32::NEG_INFINITY
                }
            }),
            other => return Err(Error::invalid(op, format!("a mask of {other} (float32 or bool)"))),
        }
    }
    softmax_rows(&mut values, s);
    scores = Tensor::from_vec(values, scores.sizes())?;
    batched_matmul(op, &scores, v, false)
}

fn reference_layer_norm(
    x: &Tensor,
    normalized_shape: &[i64],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
    _cudnn_enable: bool,
) -> Result<Tensor> {
    let op = "layer_norm";
    let d = normalized_shape.len();
    let tail = x.sizes().get(x.dim().wrapping_sub(d)..).filter(|_| d <= x.dim() && d > 0);
    let tail =
        tail.ok_or_else(|| Error::shape(op, format!("normalized_shape {normalized_shape:?} of {:?}", x.sizes())))?;
    if tail.iter().zip(normalized_shape).any(|(&a, &b)| a as i64 != b) {
        return Err(Error::shape(
            op,
            format!("normalized_shape {normalized_shape:?} is not the end of {:?}", x.sizes()),
        ));
    }
    let n = checked_count(op, tail)?;
    let affine = |t: Option<&Tensor>, what: &str| -> Result<Option<Vec<f32>>> {
        t.map(|t| {
            let v = float32(op, t)?;
            if v.len() != n {
                return Err(Error::shape(op, format!("{what} of {} values for {n}", v.len())));
            }
            Ok(v)
        })
        .transpose()
    };
    let (w, b) = (affine(weight, "a weight")?, affine(bias, "a bias")?);
    let mut v = float32(op, x)?;
    for row in v.chunks_mut(n.max(1)) {
        let mean = row.iter().map(|&a| a as f64).sum::<f64>() / n as f64;
        let var = row.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let rstd = (1.0 / (var.max(0.0) + eps).sqrt()) as f32;
        let mean = mean as f32;
        for (i, a) in row.iter_mut().enumerate() {
            let mut y = (*a - mean) * rstd;
            if let Some(w) = &w {
                y *= w[i];
            }
            if let Some(b) = &b {
                y += b[i];
            }
            *a = y;
        }
    }
    Tensor::from_vec(v, x.sizes())
}

fn reference_gelu(x: &Tensor, approximate: &str) -> Result<Tensor> {
    let op = "gelu";
    let v = float32(op, x)?;
    let out: Vec<f32> = match approximate {
        "none" => {
            v.iter().map(|&a| (a as f64 * 0.5 * (1.0 + erf(a as f64 / std::f64::consts::SQRT_2))) as f32).collect()
        }
        "tanh" => v
            .iter()
            .map(|&a| {
                let a = a as f64;
                let inner = (2.0 / std::f64::consts::PI).sqrt() * (a + 0.044715 * a * a * a);
                (0.5 * a * (1.0 + inner.tanh())) as f32
            })
            .collect(),
        other => return Err(Error::invalid(op, format!("approximate={other:?} (expected 'none' or 'tanh')"))),
    };
    Tensor::from_vec(out, x.sizes())
}

/// The error function, to double precision (W. J. Cody's rational
/// approximations, as in most libms), for `gelu`.
fn erf(x: f64) -> f64 {
    // erf(x) = 1 - erfc(x); erfc by the complementary error function's
    // continued-fraction-free expansion of Numerical Recipes (erfc to 1.2e-7
    // relative is not enough here), so use the series for small |x| and the
    // asymptotic form through libm-quality exp for large |x|.
    let a = x.abs();
    let r = if a < 2.5 {
        // Maclaurin series: converges fast for |x| < 2.5 (40 terms reach 1e-17).
        let (mut term, mut sum, x2) = (a, a, a * a);
        for n in 1..60 {
            term *= -x2 / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(a) = exp(-a^2) / (a sqrt(pi)) * continued fraction.
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (a + f);
        }
        1.0 - (-a * a).exp() / ((a + f) * std::f64::consts::PI.sqrt())
    };
    r.copysign(x)
}

fn reference_div_mode(a: &Tensor, b: &Tensor, rounding_mode: Option<&str>) -> Result<Tensor> {
    let op = "div.Tensor_mode";
    let shape = broadcast_shapes(op, a.sizes(), b.sizes())?;
    let (ea, eb) = (a.expand(&shape[..])?, b.expand(&shape[..])?);
    match (a.dtype(), b.dtype(), rounding_mode) {
        (DType::Int64, DType::Int64, Some(mode @ ("trunc" | "floor"))) => {
            let (va, vb) = (ea.to_vec::<i64>()?, eb.to_vec::<i64>()?);
            let out = va
                .iter()
                .zip(&vb)
                .map(|(&x, &y)| {
                    if mode == "floor" {
                        super::script::python_floordiv(op, x, y)
                    } else {
                        x.checked_div(y)
                            .ok_or_else(|| Error::invalid(op, format!("{x} / {y}: division by zero or overflow")))
                    }
                })
                .collect::<Result<Vec<i64>>>()?;
            Tensor::from_vec(out, &shape)
        }
        (DType::Float32, DType::Float32, mode) => {
            let (va, vb) = (ea.to_vec::<f32>()?, eb.to_vec::<f32>()?);
            let round = |q: f32| match mode {
                Some("trunc") => Ok(q.trunc()),
                Some("floor") => Ok(q.floor()),
                None => Ok(q),
                Some(other) => Err(Error::invalid(op, format!("rounding_mode {other:?}"))),
            };
            let out = va.iter().zip(&vb).map(|(&x, &y)| round(x / y)).collect::<Result<Vec<f32>>>()?;
            Tensor::from_vec(out, &shape)
        }
        (x, y, mode) => Err(Error::invalid(
            op,
            format!("{x} / {y} with rounding_mode {mode:?} (int64 pairs with 'trunc' or 'floor', or float32 pairs)"),
        )),
    }
}

fn reference_unflatten(x: &Tensor, dim: i64, sizes: &[i64]) -> Result<Tensor> {
    let op = "unflatten.int";
    if x.dim() == 0 {
        return Err(Error::shape(op, "a 0-d tensor has no dimension to unflatten"));
    }
    let d = wrap_dim(op, dim, x.dim())?;
    let shape: Vec<i64> = x.sizes()[..d]
        .iter()
        .map(|&s| s as i64)
        .chain(sizes.iter().copied())
        .chain(x.sizes()[d + 1..].iter().map(|&s| s as i64))
        .collect();
    x.view(&shape[..])
}

/// `x` with a dimension of size 1 inserted at `dim` (a view).
fn unsqueeze(x: &Tensor, dim: i64) -> Result<Tensor> {
    let d = wrap_dim("unsqueeze", dim, x.dim() + 1)?;
    let mut shape: Vec<i64> = x.sizes().iter().map(|&s| s as i64).collect();
    shape.insert(d, 1);
    x.view(&shape[..])
}

fn reference_unsqueeze(x: &Tensor, dim: i64) -> Result<Tensor> {
    unsqueeze(x, dim)
}

fn reference_squeeze_dim(x: &Tensor, dim: i64) -> Result<Tensor> {
    let d = wrap_dim("squeeze.dim", dim, x.dim().max(1))?;
    if x.sizes().get(d) != Some(&1) {
        return Ok(x.clone());
    }
    let shape: Vec<i64> = x.sizes().iter().enumerate().filter(|&(i, _)| i != d).map(|(_, &s)| s as i64).collect();
    x.view(&shape[..])
}

register_kernel! {
    dtypes: [Float32],
    priority: Priority::REFERENCE,
    kernels: {
        op::LINEAR => reference_linear_float(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor,
        op::MATMUL => reference_matmul(a: &Tensor, b: &Tensor) -> Tensor,
        op::SCALED_DOT_PRODUCT_ATTENTION => reference_sdpa(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, dropout_p: f64, is_causal: bool, scale: Option<f64>, enable_gqa: bool) -> Tensor,
        op::LAYER_NORM => reference_layer_norm(x: &Tensor, normalized_shape: &[i64], weight: Option<&Tensor>, bias: Option<&Tensor>, eps: f64, cudnn_enable: bool) -> Tensor,
        op::GELU => reference_gelu(x: &Tensor, approximate: &str) -> Tensor,
    }
}

register_kernel! {
    dtypes: [Float32, Int64],
    priority: Priority::REFERENCE,
    kernels: {
        op::DIV_TENSOR_MODE => reference_div_mode(a: &Tensor, b: &Tensor, rounding_mode: Option<&str>) -> Tensor,
    }
}

register_kernel! {
    dtypes: [Float32, Float64, Int64, Int32, Int16, Int8, UInt8, QUInt8, QInt8, QInt16, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        op::UNFLATTEN_INT => reference_unflatten(x: &Tensor, dim: i64, sizes: &[i64]) -> Tensor,
        op::UNSQUEEZE => reference_unsqueeze(x: &Tensor, dim: i64) -> Tensor,
        op::SQUEEZE_DIM => reference_squeeze_dim(x: &Tensor, dim: i64) -> Tensor,
    }
}

#[cfg(test)]
mod tests {
    use super::erf;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (-1.0, -0.842_700_792_949_714_9),
        ] {
            assert!((erf(x) - want).abs() < 1e-15, "erf({x}) = {} not {want}", erf(x));
        }
    }
}
