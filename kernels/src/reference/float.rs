//! Float operators for the float islands that FX-quantized and eager
//! models leave between a dequantize and a quantize: silu, mul, add and
//! softmax on float32 tensors, broadcast as PyTorch broadcasts.

use qtensor_runtime::ops as op;
use qtensor_runtime::tensor::layout::{broadcast_shapes, wrap_dim};
use qtensor_runtime::{register_kernel, DType, Error, Priority, Result, Scalar, Tensor};

fn float32(op: &str, x: &Tensor) -> Result<Vec<f32>> {
    match x.dtype() {
        DType::Float32 => x.to_vec::<f32>(),
        other => Err(Error::WrongDType { op: op.into(), expected: "a float32 tensor".into(), got: other }),
    }
}

/// The values of an operand of a float32 op: a float32 tensor, or a 0-d
/// float64 or int64 one, which PyTorch's type promotion narrows to the
/// other operand's float32 (a 0-d tensor does not decide the result type).
fn operand(x: &Tensor) -> Result<Tensor> {
    match x.dtype() {
        DType::Float64 | DType::Int64 if x.ndim() == 0 => Tensor::from_vec(vec![x.item()? as f32], &[]),
        _ => Ok(x.clone()),
    }
}

/// `f(a, b)` elementwise over the broadcast shape of two float32 tensors.
fn broadcast_binary(op: &str, a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Result<Tensor> {
    let shape = broadcast_shapes(op, a.sizes(), b.sizes())?;
    let va = float32(op, &operand(a)?.expand(&shape[..])?)?;
    let vb = float32(op, &operand(b)?.expand(&shape[..])?)?;
    Tensor::from_vec(va.iter().zip(&vb).map(|(&x, &y)| f(x, y)).collect::<Vec<f32>>(), &shape)
}

fn reference_silu(x: &Tensor) -> Result<Tensor> {
    let v = float32("silu", x)?;
    Tensor::from_vec(v.into_iter().map(|x| x / (1.0 + (-x).exp())).collect::<Vec<f32>>(), x.sizes())
}

fn reference_mul_tensor(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    broadcast_binary("mul.Tensor", a, b, |x, y| x * y)
}

fn reference_mul_scalar(a: &Tensor, b: Scalar) -> Result<Tensor> {
    let s = b.to_f64() as f32;
    let v = float32("mul.Scalar", a)?;
    Tensor::from_vec(v.into_iter().map(|x| x * s).collect::<Vec<f32>>(), a.sizes())
}

fn reference_add_tensor(a: &Tensor, b: &Tensor, alpha: Scalar) -> Result<Tensor> {
    let alpha = alpha.to_f64() as f32;
    if alpha == 1.0 {
        broadcast_binary("add.Tensor", a, b, |x, y| x + y)
    } else {
        // PyTorch's loop is one fused multiply-add, `fmadd(other, alpha, self)`.
        broadcast_binary("add.Tensor", a, b, |x, y| y.mul_add(alpha, x))
    }
}

fn reference_softmax(x: &Tensor, dim: i64, dtype: Option<DType>) -> Result<Tensor> {
    let op = "softmax.int";
    if dtype.is_some_and(|d| d != DType::Float32) {
        return Err(Error::invalid(op, "only float32 results are supported"));
    }
    let d = wrap_dim(op, dim, x.ndim().max(1))?;
    let v = float32(op, x)?;
    let sizes = x.sizes();
    let n = sizes.get(d).copied().unwrap_or(1);
    if v.is_empty() {
        return Tensor::from_vec(v, sizes);
    }
    // A non-empty tensor: every product of its sizes fits.
    let inner = sizes.get(d + 1..).map_or(1, qtensor_runtime::tensor::layout::numel_of);
    let mut out = v.clone();
    for (block, chunk) in v.chunks(n * inner).enumerate() {
        for i in 0..inner {
            let at = |k: usize| k * inner + i;
            let max = (0..n).map(|k| chunk[at(k)]).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for k in 0..n {
                let e = (chunk[at(k)] - max).exp();
                out[block * n * inner + at(k)] = e;
                sum += e;
            }
            let inv = 1.0 / sum;
            for k in 0..n {
                out[block * n * inner + at(k)] *= inv;
            }
        }
    }
    Tensor::from_vec(out, sizes)
}

/// `f(a, b)` elementwise over the broadcast shape of two int64 tensors
/// (TorchScript's shape arithmetic on 0-d tensors), overflow an error.
fn int64_binary(op: &str, a: &Tensor, b: &Tensor, f: impl Fn(i64, i64) -> Option<i64>) -> Result<Tensor> {
    let shape = broadcast_shapes(op, a.sizes(), b.sizes())?;
    let (ea, eb) = (a.expand(&shape[..])?, b.expand(&shape[..])?);
    if (a.dtype(), b.dtype()) != (DType::Int64, DType::Int64) {
        return Err(Error::invalid(op, format!("{} and {} (int64 pairs, or float32)", a.dtype(), b.dtype())));
    }
    let (va, vb) = (ea.to_vec::<i64>()?, eb.to_vec::<i64>()?);
    let out = va
        .iter()
        .zip(&vb)
        .map(|(&x, &y)| f(x, y).ok_or_else(|| Error::invalid(op, format!("{x} and {y} overflow int64"))))
        .collect::<Result<Vec<i64>>>()?;
    Tensor::from_vec(out, &shape)
}

fn reference_mul_int(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    int64_binary("mul.Tensor", a, b, i64::checked_mul)
}

fn reference_add_int(a: &Tensor, b: &Tensor, alpha: Scalar) -> Result<Tensor> {
    let Scalar::Int(alpha) = alpha else { return Err(Error::invalid("add.Tensor", "a float alpha for int64 tensors")) };
    int64_binary("add.Tensor", a, b, |x, y| x.checked_add(y.checked_mul(alpha)?))
}

register_kernel! {
    dtypes: [Int64],
    priority: Priority::REFERENCE,
    kernels: {
        op::MUL_TENSOR => reference_mul_int(a: &Tensor, b: &Tensor) -> Tensor as "reference_mul_tensor_int64",
        op::ADD_TENSOR => reference_add_int(a: &Tensor, b: &Tensor, alpha: Scalar) -> Tensor as "reference_add_tensor_int64",
    }
}

register_kernel! {
    dtypes: [Float32],
    priority: Priority::REFERENCE,
    kernels: {
        op::SILU => reference_silu(x: &Tensor) -> Tensor,
        op::MUL_TENSOR => reference_mul_tensor(a: &Tensor, b: &Tensor) -> Tensor,
        op::MUL_SCALAR => reference_mul_scalar(a: &Tensor, b: Scalar) -> Tensor,
        op::ADD_TENSOR => reference_add_tensor(a: &Tensor, b: &Tensor, alpha: Scalar) -> Tensor,
        op::SOFTMAX_INT => reference_softmax(x: &Tensor, dim: i64, dtype: Option<DType>) -> Tensor,
    }
}
