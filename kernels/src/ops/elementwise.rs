//! relu (exact) and quantized::add, add_relu and mul on quint8/qint8
//! (within one step of the exact result) over an ISA's slice routines.
//!
//! The fast paths take same-shape, per-tensor operands; broadcasting and
//! other dtypes go to the reference kernels. Dense inputs (channels-last,
//! say) are read in place and their layout carries over to the output.

use crate::parallel::for_each_chunk;
use crate::reference::common::{output_quantizer, per_tensor};
use crate::reference::elementwise::{reference_quantized_relu, requantized_binary};
use crate::vector::{BinaryParams, Byte, Combine, VectorIsa};
use qtensor_runtime::tensor::layout::contiguous_strides;
use qtensor_runtime::{DType, Element, Quantizer, Result, Storage, Tensor};
use std::sync::Arc;

/// Outputs at least this many bytes are written with non-temporal stores,
/// which skip reading the destination lines into the cache first.
pub const STREAM_BYTES: usize = 8 << 20;

/// Applies `f(src_chunk, dst_chunk)` over `x` into a new tensor with `x`'s
/// shape, layout and `quantizer`, in parallel chunks.
fn map_into<T: Element>(
    x: &Tensor,
    quantizer: &Arc<Quantizer>,
    f: impl Fn(&[T], &mut [T]) + Sync + Send,
) -> Result<Tensor> {
    let storage = Storage::for_overwrite(T::STORAGE, x.numel())?;
    x.with_dense::<T, Result<()>>(|src| {
        for_each_chunk(&mut storage.write::<T>()?, |start, d| f(&src[start..start + d.len()], d));
        Ok(())
    })??;
    Tensor::quantized_from_storage_strided(storage, x.sizes(), x.elementwise_output_strides(), quantizer)
}

/// relu through `isa`: `max(q, zero_point)`.
pub fn relu<I: VectorIsa>(isa: I, x: &Tensor) -> Result<Tensor> {
    let Some(q) = x.quantizer() else { return reference_quantized_relu(x) };
    let Some((_, zp)) = q.per_tensor_qparams() else { return reference_quantized_relu(x) };
    let stream = x.numel() >= STREAM_BYTES;
    match x.dtype() {
        DType::QUInt8 => map_into::<u8>(x, &q, |s, d| isa.relu_bytes(s, d, zp, stream)),
        DType::QInt8 => map_into::<i8>(x, &q, |s, d| isa.relu_bytes(s, d, zp, stream)),
        DType::QInt32 => map_into::<i32>(x, &q, |s, d| isa.relu_i32(s, d, zp)),
        _ => reference_quantized_relu(x),
    }
}

/// Which requantizing binary op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// quantized::add.
    Add,
    /// quantized::add_relu.
    AddRelu,
    /// quantized::mul.
    Mul,
}

impl BinaryOp {
    /// The op's schema name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "quantized::add",
            BinaryOp::AddRelu => "quantized::add_relu",
            BinaryOp::Mul => "quantized::mul",
        }
    }
}

/// quantized::add, add_relu or mul through `isa` where it applies.
pub fn binary<I: VectorIsa>(
    isa: I,
    which: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    scale: f64,
    zero_point: i64,
) -> Result<Tensor> {
    let op = which.name();
    let mul = which == BinaryOp::Mul;
    let reference = || {
        let combine = if mul { |x, y| x * y } else { |x, y| x + y };
        requantized_binary(op, a, b, scale, zero_point, which == BinaryOp::AddRelu, combine)
    };
    let bytes = matches!(a.dtype(), DType::QUInt8 | DType::QInt8);
    if !bytes || a.dtype() != b.dtype() || a.sizes() != b.sizes() {
        return reference();
    }
    let (Ok(pa), Ok(pb)) = (per_tensor(op, "qa", a), per_tensor(op, "qb", b)) else {
        return reference();
    };
    let out_q = output_quantizer(op, a.dtype(), scale, zero_point)?;
    let combine = if mul {
        Combine::Mul { m: (pa.scale * pb.scale / scale) as f32 }
    } else {
        Combine::Add { ma: (pa.scale / scale) as f32, mb: (pb.scale / scale) as f32 }
    };
    // Multipliers f32 cannot hold, or two huge terms that could cancel to a
    // small result with f32 rounding errors above a step: the reference's
    // f64 arithmetic is exact enough.
    let usable = match combine {
        Combine::Add { ma, mb } => ma.is_finite() && mb.is_finite() && (ma.abs() < 16384.0 || mb.abs() < 16384.0),
        Combine::Mul { m } => m.is_finite() && m != 0.0,
    };
    if !usable {
        return reference();
    }
    let lo = if which == BinaryOp::AddRelu { zero_point.max(pa.qmin) } else { pa.qmin };
    let p = BinaryParams { combine, za: pa.zero_point, zb: pb.zero_point, zo: zero_point, lo, hi: pa.qmax };
    match a.dtype() {
        DType::QUInt8 => binary_bytes::<I, u8>(isa, a, b, &out_q, p),
        _ => binary_bytes::<I, i8>(isa, a, b, &out_q, p),
    }
}

/// The byte loop of [`binary`], over both operands in one layout.
fn binary_bytes<I: VectorIsa, B: Byte>(
    isa: I,
    a: &Tensor,
    b: &Tensor,
    out_q: &Arc<Quantizer>,
    p: BinaryParams,
) -> Result<Tensor> {
    let storage = Storage::for_overwrite(B::STORAGE, a.numel())?;
    // Operands in one dense layout (both channels-last, say) are read in
    // place and keep it; otherwise both are read row-major. (Same sizes,
    // so same strides make b dense exactly when a is.)
    let same_layout = a.strides() == b.strides() && a.is_dense();
    let strides = if same_layout { a.strides().into() } else { contiguous_strides(a.sizes()) };
    let read = |t: &Tensor, f: &mut dyn FnMut(&[B]) -> Result<()>| -> Result<()> {
        if same_layout {
            t.with_dense::<B, Result<()>>(|s| f(s))?
        } else {
            t.with_contiguous::<B, Result<()>>(|s| f(s))?
        }
    };
    read(a, &mut |sa| {
        read(b, &mut |sb| {
            let stream = sa.len() >= STREAM_BYTES;
            for_each_chunk(&mut storage.write::<B>()?, |start, d| {
                isa.binary_bytes(&sa[start..start + d.len()], &sb[start..start + d.len()], d, p, stream)
            });
            Ok(())
        })
    })?;
    Tensor::quantized_from_storage_strided(storage, a.sizes(), strides, out_q)?.in_format_of(a)
}
