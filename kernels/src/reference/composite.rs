//! Ops defined by other ops, as c10's composite kernels: each calls the
//! dispatcher, so the fastest kernel of the op it is built on runs (and
//! shows in the profiler under that op's name).

use qtensor_runtime::ops as op;
use qtensor_runtime::tensor::layout::wrap_dim;
use qtensor_runtime::{dispatcher, register_kernel, DType, Error, Priority, Result, Tensor, Value};

/// Calls `op` through the dispatcher and unboxes its tensor.
fn call(op: &str, args: &[Value]) -> Result<Tensor> {
    dispatcher().call(op, args)?.into_tensor()
}

/// `aten::cat` of quantized tensors: `quantized::cat` into the first
/// input's qparams, as PyTorch's `cat_quantized_cpu` does.
fn quantized_cat(tensors: &[Tensor], dim: i64) -> Result<Tensor> {
    call("quantized::cat", &[Value::from(tensors), Value::Int(dim), Value::None, Value::None])
}

/// `aten::cat` of plain tensors of one dtype.
fn plain_cat(tensors: &[Tensor], dim: i64) -> Result<Tensor> {
    let op = "cat";
    let first = tensors.first().ok_or_else(|| Error::invalid(op, "cat of no tensors"))?;
    if first.ndim() == 0 {
        return Err(Error::shape(op, "zero-dimensional tensors cannot be concatenated"));
    }
    let d = wrap_dim(op, dim, first.ndim())?;
    let mut sizes = first.sizes().to_vec();
    sizes[d] = 0;
    for t in tensors {
        let same = t.ndim() == first.ndim()
            && t.sizes().iter().zip(first.sizes()).enumerate().all(|(i, (a, b))| i == d || a == b);
        if !same || t.dtype() != first.dtype() {
            return Err(Error::shape(op, format!("cannot cat {} with {}", t.describe(), first.describe())));
        }
        sizes[d] = sizes[d].checked_add(t.sizes()[d]).ok_or_else(|| Error::shape(op, "the result is too large"))?;
    }
    let out = Tensor::zeros(&sizes, first.dtype())?;
    let mut at = 0i64;
    for t in tensors {
        let len = t.sizes()[d] as i64;
        out.slice(d as i64, Some(at), Some(at + len), 1)?.copy_(t)?;
        at += len;
    }
    Ok(out)
}

/// The most views `chunk` returns.
const MAX_PIECES: i64 = 1 << 16;

fn chunk(x: &Tensor, chunks: i64, dim: i64) -> Result<Vec<Tensor>> {
    let op = "chunk";
    if chunks < 1 {
        return Err(Error::invalid(op, format!("chunks must be positive, got {chunks}")));
    }
    if x.ndim() == 0 {
        return Err(Error::shape(op, "chunk expects at least a 1-dimensional tensor"));
    }
    let d = wrap_dim(op, dim, x.ndim())?;
    let size = x.sizes()[d] as i64;
    // ceil(size / chunks), written so that no sum can overflow.
    let step = size / chunks + i64::from(size % chunks != 0);
    if step == 0 {
        return Ok(vec![x.clone()]);
    }
    // One view per piece: a huge (say, expanded) dimension split finely
    // would make a list the input does not justify.
    let pieces = size / step + i64::from(size % step != 0);
    if pieces > MAX_PIECES {
        return Err(Error::invalid(op, format!("{pieces} pieces of dimension {d} (at most {MAX_PIECES})")));
    }
    (0..size)
        .step_by(step as usize)
        .map(|start| x.slice(d as i64, Some(start), Some(start.saturating_add(step)), 1))
        .collect()
}

fn quantize_per_tensor_tensor_qparams(x: &Tensor, scale: &Tensor, zero_point: &Tensor, dtype: DType) -> Result<Tensor> {
    let op = "quantize_per_tensor.tensor_qparams";
    if scale.numel() != 1 || zero_point.numel() != 1 {
        return Err(Error::qparams(op, "scale and zero_point must hold one element each"));
    }
    let z = zero_point.int_values()?[0];
    call("quantize_per_tensor", &[Value::from(x), Value::Float(scale.item()?), Value::Int(z), Value::ScalarType(dtype)])
}

register_kernel! {
    dtypes: [QUInt8, QInt8, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        op::CAT => quantized_cat(tensors: &[Tensor], dim: i64) -> Tensor,
    }
}

register_kernel! {
    dtypes: [Float32, Float64, Int64, Int32, Int16, Int8, UInt8],
    priority: Priority::REFERENCE,
    kernels: {
        op::CAT => plain_cat(tensors: &[Tensor], dim: i64) -> Tensor,
    }
}

register_kernel! {
    dtypes: [Float32, Float64, Int64, Int32, Int16, Int8, UInt8, QUInt8, QInt8, QInt16, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        op::CHUNK => chunk(x: &Tensor, chunks: i64, dim: i64) -> Vec<Tensor>,
    }
}

register_kernel! {
    dtypes: [Float32, Float64],
    priority: Priority::REFERENCE,
    kernels: {
        op::QUANTIZE_PER_TENSOR_TENSOR_QPARAMS => quantize_per_tensor_tensor_qparams(x: &Tensor, scale: &Tensor, zero_point: &Tensor, dtype: DType) -> Tensor,
    }
}

/// `upsample_nearest2d.vec`: the output size from `output_size`, or
/// `floor(size * scale)` from the scale factors, which then also set the
/// source index (PyTorch's `compute_scales_value`).
fn upsample_nearest2d_vec(x: &Tensor, output_size: Option<&[i64]>, scale_factors: Option<Vec<f64>>) -> Result<Tensor> {
    let op = "upsample_nearest2d.vec";
    if x.ndim() < 2 {
        return Err(Error::shape(op, format!("a {}-d input", x.ndim())));
    }
    let (h, w) = (x.sizes()[x.ndim() - 2] as f64, x.sizes()[x.ndim() - 1] as f64);
    let (size, scales) = match (output_size, scale_factors.as_deref()) {
        (Some(size), None) => (size.to_vec(), [Value::None, Value::None]),
        (None, Some(&[sh, sw])) => {
            let out = |len: f64, s: f64| -> Result<i64> {
                let v = (len * s).floor();
                if !s.is_finite() || s <= 0.0 || !v.is_finite() || v < 1.0 || v > i64::MAX as f64 {
                    return Err(Error::invalid(op, format!("scale factor {s} of a size of {len}")));
                }
                Ok(v as i64)
            };
            (vec![out(h, sh)?, out(w, sw)?], [Value::Float(sh), Value::Float(sw)])
        }
        _ => return Err(Error::invalid(op, "exactly one of output_size and scale_factors (two values) must be given")),
    };
    let [sh, sw] = scales;
    call("upsample_nearest2d", &[Value::from(x), Value::from(size.as_slice()), sh, sw])
}

fn quantized_relu6(x: &Tensor, _inplace: bool) -> Result<Tensor> {
    call("relu6", &[Value::from(x)])
}

register_kernel! {
    dtypes: [Float32, QUInt8, QInt8, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        op::UPSAMPLE_NEAREST2D_VEC => upsample_nearest2d_vec(x: &Tensor, output_size: Option<&[i64]>, scale_factors: Option<Vec<f64>>) -> Tensor,
    }
}

register_kernel! {
    dtypes: [QUInt8, QInt8, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        op::quantized::RELU6 => quantized_relu6(x: &Tensor, inplace: bool) -> Tensor,
    }
}
