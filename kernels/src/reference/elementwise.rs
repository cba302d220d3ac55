//! relu, and the requantizing binary ops quantized::add, add_relu and mul
//! (with NumPy broadcasting), with PyTorch's arithmetic.

use super::activation::memory_positions;
pub use crate::args::binary::BinaryOp;
use crate::args::quantized::{output_quantizer, per_tensor, quantized_from_ints};
use qtensor_runtime::numerics::{pytorch_vector_body, requantize_f64};
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::try_vec;
use qtensor_runtime::tensor::layout::broadcast_shapes;
use qtensor_runtime::{register_kernel, DType, Error, Priority, Result, Tensor};

/// The reference relu on quantized tensors.
pub fn reference_quantized_relu(x: &Tensor) -> Result<Tensor> {
    let q = x.require_quantizer("relu")?;
    let ints: Vec<i64> =
        x.int_values()?.into_iter().zip(x.channel_of_each()).map(|(v, c)| v.max(q.channel_qparams(c).1)).collect();
    // The output has x's shape, so even a per-channel quantizer carries over.
    quantized_from_ints(x.sizes(), &q, &ints)?.in_format_of(x)
}

register_kernel! {
    op: op::RELU,
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    name: "reference_quantized_relu",
    priority: Priority::REFERENCE,
    fn reference_quantized_relu(x: &Tensor) -> Tensor
}

fn reference_float_relu(x: &Tensor) -> Result<Tensor> {
    let v: Vec<f64> = x.real_values()?.into_iter().map(|v| if v < 0.0 { 0.0 } else { v }).collect();
    match x.dtype() {
        DType::Float32 => Tensor::from_vec(v.into_iter().map(|v| v as f32).collect(), x.sizes()),
        _ => Tensor::from_vec(v, x.sizes()),
    }
}

register_kernel! {
    op: op::RELU,
    dtypes: [Float32, Float64],
    name: "reference_float_relu",
    priority: Priority::REFERENCE,
    fn reference_float_relu(x: &Tensor) -> Tensor
}

/// True when PyTorch's loop visits `a` and `b` in their shared memory
/// order: same sizes, same strides, dense. Otherwise both are visited in
/// row-major order.
pub fn same_dense_layout(a: &Tensor, b: &Tensor) -> bool {
    a.sizes() == b.sizes() && a.strides() == b.strides() && a.is_dense()
}

/// quantized::add, add_relu or mul of two per-tensor operands (NumPy
/// broadcasting). On 8-bit dtypes and qint32, PyTorch's arithmetic
/// ([`BinaryRequant`](qtensor_runtime::numerics::BinaryRequant)): each
/// output by the vector body's or the scalar tail's sequence, by its
/// position in the loop. On qint16, which PyTorch's ops do not take, the
/// exact result requantized in f64. (qint32 products beyond i32 wrap in
/// PyTorch; here they stay exact.)
pub fn requantized_binary(which: BinaryOp, a: &Tensor, b: &Tensor, scale: f64, zero_point: i64) -> Result<Tensor> {
    let op = which.name();
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op: op.into(), lhs: a.dtype(), rhs: b.dtype() });
    }
    let pa = per_tensor(op, "qa", a)?;
    let pb = per_tensor(op, "qb", b)?;
    let out_q = output_quantizer(op, a.dtype(), scale, zero_point)?;
    let sizes = broadcast_shapes(op, a.sizes(), b.sizes())?;
    let requant = which.requant(&pa, &pb, scale, zero_point);
    let av = a.expand(&sizes)?.int_values()?;
    let bv = b.expand(&sizes)?.int_values()?;
    let mut ints = try_vec(av.len())?;
    let element_bytes = pa.dtype.storage_type().size_of();
    if element_bytes != 2 {
        let positions = if same_dense_layout(a, b) { memory_positions(a)? } else { (0..av.len()).collect() };
        let body = pytorch_vector_body(av.len(), element_bytes);
        ints.extend(av.iter().zip(&bv).zip(positions).map(|((&x, &y), pos)| requant.apply(x, y, pos < body)));
    } else {
        // qint16: the exact real result, requantized in f64.
        let lo = if which == BinaryOp::AddRelu { zero_point.max(pa.qmin) } else { pa.qmin };
        ints.extend(av.iter().zip(&bv).map(|(&x, &y)| {
            let (ra, rb) = ((x - pa.zero_point) as f64 * pa.scale, (y - pb.zero_point) as f64 * pb.scale);
            let real = if which == BinaryOp::Mul { ra * rb } else { ra + rb };
            requantize_f64(real, scale, zero_point, lo, pa.qmax)
        }));
    }
    quantized_from_ints(&sizes, &out_q, &ints)?.in_format_of(a)
}

register_kernel! {
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    priority: Priority::REFERENCE,
    variants: {
        fn requantized_binary(qa: &Tensor, qb: &Tensor, scale: f64, zero_point: i64) -> Tensor {
            op::quantized::ADD => (BinaryOp::Add, "reference_add"),
            op::quantized::ADD_RELU => (BinaryOp::AddRelu, "reference_add_relu"),
            op::quantized::MUL => (BinaryOp::Mul, "reference_mul"),
        }
    }
}
