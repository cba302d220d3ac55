//! relu and quantized::add, add_relu and mul on quint8/qint8 over an
//! ISA's slice routines, bit for bit the reference's (PyTorch's)
//! arithmetic.
//!
//! The fast paths take same-shape, per-tensor operands; they decline
//! broadcasting (but for mul) and other dtypes, to the reference kernels. Dense inputs (channels-last,
//! say) are read in place and their layout carries over to the output.

pub use crate::args::binary::BinaryOp;
use crate::args::quantized::{output_quantizer, per_tensor};
use crate::parallel::{self, for_each_chunk};
use crate::vector::{BinaryParams, ByteElement, VectorIsa};
use qtensor_runtime::numerics::{pytorch_vector_body, BinaryRequant};
use qtensor_runtime::tensor::layout::{broadcast_shapes, contiguous_strides, Dims};
use qtensor_runtime::{DType, Element, Error, Quantizer, Result, Storage, Tensor};
use std::sync::Arc;

/// Outputs at least this many bytes are written with non-temporal stores,
/// which skip reading the destination lines into the cache first.
pub const STREAM_BYTES: usize = 8 << 20;

/// Applies `f(start, src_chunk, dst_chunk)` over `x` into a new tensor
/// with `x`'s shape, layout and `quantizer`, in parallel chunks; `start`
/// is the chunk's first position in memory order.
pub(crate) fn map_into<T: Element>(
    x: &Tensor,
    quantizer: &Arc<Quantizer>,
    f: impl Fn(usize, &[T], &mut [T]) + Sync + Send,
) -> Result<Tensor> {
    let storage = Storage::for_overwrite(T::STORAGE, x.numel())?;
    x.with_dense::<T, Result<()>>(|src| {
        for_each_chunk(&mut storage.write::<T>()?, |start, d| f(start, &src[start..start + d.len()], d));
        Ok(())
    })??;
    Tensor::quantized_from_storage_strided(storage, x.sizes(), x.elementwise_output_strides(), quantizer)
}

/// relu through `isa`: `max(q, zero_point)`.
pub fn relu<I: VectorIsa>(isa: I, x: &Tensor) -> Result<Tensor> {
    let Some(q) = x.quantizer() else { return Err(Error::declined("relu: not a quantized tensor")) };
    let Some((_, zp)) = q.per_tensor_qparams() else {
        return Err(Error::declined("relu: not a per-tensor quantized tensor"));
    };
    let stream = x.numel() >= STREAM_BYTES;
    match x.dtype() {
        DType::QUInt8 => map_into::<u8>(x, &q, |_, s, d| isa.relu_bytes(s, d, zp, stream)),
        DType::QInt8 => map_into::<i8>(x, &q, |_, s, d| isa.relu_bytes(s, d, zp, stream)),
        DType::QInt32 => map_into::<i32>(x, &q, |_, s, d| isa.relu_i32(s, d, zp)),
        _ => Err(Error::declined("relu: a dtype without a vector loop")),
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
    let bytes = matches!(a.dtype(), DType::QUInt8 | DType::QInt8);
    if !bytes || a.dtype() != b.dtype() {
        return Err(Error::declined("binary: operands other than two quint8 or two qint8"));
    }
    let (Ok(pa), Ok(pb)) = (per_tensor(op, "qa", a), per_tensor(op, "qb", b)) else {
        return Err(Error::declined("binary: an operand that is not per-tensor quantized"));
    };
    let out_q = output_quantizer(op, a.dtype(), scale, zero_point)?;
    let requant = which.requant(&pa, &pb, scale, zero_point);
    if a.sizes() != b.sizes() {
        let broadcast = match (which, a.dtype()) {
            (BinaryOp::Mul, DType::QUInt8) => mul_broadcast::<I, u8>(isa, a, b, &out_q, &requant)?,
            (BinaryOp::Mul, _) => mul_broadcast::<I, i8>(isa, a, b, &out_q, &requant)?,
            _ => None,
        };
        return broadcast.ok_or_else(|| Error::declined("binary: broadcasting other than mul's"));
    }
    let p = BinaryParams::of(&requant);
    // Scales whose constants f32 cannot hold: the reference computes the
    // same sequence with its NaN and saturation rules.
    if !p.is_finite() {
        return Err(Error::declined("binary: scales whose constants f32 cannot hold"));
    }
    match a.dtype() {
        DType::QUInt8 => binary_bytes::<I, u8>(isa, a, b, &out_q, p, &requant),
        _ => binary_bytes::<I, i8>(isa, a, b, &out_q, p, &requant),
    }
}

/// The byte loop of [`binary`], over both operands in one layout.
///
/// PyTorch computes all but the last `n % 128` elements (in the order
/// read) with its vector sequence, which `isa` runs, and those last ones
/// with its scalar sequence (`requant` with `vector` false).
fn binary_bytes<I: VectorIsa, B: ByteElement>(
    isa: I,
    a: &Tensor,
    b: &Tensor,
    out_q: &Arc<Quantizer>,
    p: BinaryParams,
    requant: &BinaryRequant,
) -> Result<Tensor> {
    let storage = Storage::for_overwrite(B::STORAGE, a.numel())?;
    // Operands in one dense layout (both channels-last, say) are read in
    // place and keep it; otherwise both are read row-major. (Same sizes,
    // so same strides make b dense exactly when a is.)
    let same_layout = a.strides() == b.strides() && a.is_dense();
    let strides = if same_layout { Dims::from_slice(a.strides()) } else { contiguous_strides(a.sizes()) };
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
            let body = pytorch_vector_body(sa.len(), 1);
            let mut dst = storage.write::<B>()?;
            let (vector, tail) = dst.split_at_mut(body);
            for_each_chunk(vector, |start, d| {
                isa.binary_bytes(&sa[start..start + d.len()], &sb[start..start + d.len()], d, p, stream)
            });
            for ((d, x), y) in tail.iter_mut().zip(&sa[body..]).zip(&sb[body..]) {
                *d = B::from_i64(requant.apply(x.to_i64(), y.to_i64(), false));
            }
            Ok(())
        })
    })?;
    Tensor::quantized_from_storage_strided(storage, a.sizes(), strides, out_q)?.in_format_of(a)
}

/// Elements a broadcast mul hands the ISA at once, at most, when rows
/// repeat the other operand (see `mul_broadcast`).
const GROUP_ELEMENTS: usize = 4096;

/// quantized::mul with one operand broadcast to the other's shape (a
/// squeeze-excitation gate `[N, C, 1, 1]` times `[N, C, H, W]`, say), in
/// the full operand's memory order and layout. Mul's arithmetic is the
/// same in both of PyTorch's loops, so no position matters. `None` when
/// neither operand has the output's shape or the full one is not dense.
fn mul_broadcast<I: VectorIsa, B: ByteElement>(
    isa: I,
    a: &Tensor,
    b: &Tensor,
    out_q: &Arc<Quantizer>,
    requant: &BinaryRequant,
) -> Result<Option<Tensor>> {
    let sizes = broadcast_shapes("quantized::mul", a.sizes(), b.sizes())?;
    let (full, other, full_is_a) = if a.sizes() == &sizes[..] {
        (a, b, true)
    } else if b.sizes() == &sizes[..] {
        (b, a, false)
    } else {
        return Ok(None);
    };
    if !full.is_dense() || full.numel() == 0 {
        return Ok(None);
    }
    // The dimensions outermost first in the full operand's memory: in that
    // order its elements are its storage span, and the other operand's
    // expanded view gives the matching offsets.
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&d| std::cmp::Reverse(full.strides()[d]));
    let perm: Vec<i64> = order.iter().map(|&d| d as i64).collect();
    let other_view = other.expand(&sizes)?.permute(&perm)?;
    let storage = Storage::for_overwrite(B::STORAGE, full.numel())?;
    let other_values = other.storage().read::<B>()?;
    let p = BinaryParams::of(requant);
    // Row by row along the innermost memory dimension, where the other
    // operand is either constant or a contiguous run.
    let inner = other_view.sizes().last().copied().unwrap_or(1).max(1);
    let inner_stride = other_view.strides().last().copied().unwrap_or(0);
    let row_starts = if other_view.ndim() == 0 { other_view.clone() } else { other_view.select(-1, 0)? };
    let starts: Vec<usize> = row_starts.offsets().collect();
    // The other operand's row: a run (a gate's channels, in a
    // channels-last activation) or one value repeated, for the ISA's
    // same-shape loop; mul's vector and scalar sequences agree.
    let vector = p.is_finite();
    // Consecutive rows that read the same run (a gate, for every pixel of
    // an image) go to the ISA together, against the run repeated: a row of
    // a few dozen channels alone would leave most of it to the vector
    // loop's scalar tail.
    let group_rows = (GROUP_ELEMENTS / inner).max(1);
    // Tasks of whole rows, about GRAIN elements each, across the threads.
    let task_rows = (parallel::GRAIN / inner).max(1);
    full.with_dense::<B, Result<()>>(|src| {
        let mut dst = storage.write::<B>()?;
        parallel::try_chunks(
            &mut dst,
            task_rows * inner,
            // The repeated run and which rows it was made for, per thread.
            || (Vec::<B>::new(), None),
            |(repeated, repeated_key), t, dst| {
                let first = t * task_rows;
                let rows = first..first + dst.len() / inner;
                let mut r = rows.start;
                while r < rows.end {
                    let start = starts[r];
                    let end = starts[r..rows.end].iter().take(group_rows).take_while(|&&s| s == start).count() + r;
                    let d = &mut dst[(r - first) * inner..(end - first) * inner];
                    let x = &src[r * inner..end * inner];
                    let run = match inner_stride {
                        1 => other_values.get(start..start + inner),
                        0 => other_values.get(start..start + 1),
                        _ => None,
                    };
                    match run {
                        Some(run) if vector => {
                            if *repeated_key != Some((start, end - r)) {
                                repeated.clear();
                                for _ in r..end {
                                    if inner_stride == 0 {
                                        repeated.extend(std::iter::repeat_n(run[0], inner));
                                    } else {
                                        repeated.extend_from_slice(run);
                                    }
                                }
                                *repeated_key = Some((start, end - r));
                            }
                            let (qa, qb) = if full_is_a { (x, &repeated[..]) } else { (&repeated[..], x) };
                            isa.binary_bytes(qa, qb, d, p, false);
                        }
                        _ => {
                            for (d, x) in d.chunks_mut(inner).zip(x.chunks(inner)) {
                                let operand = |i: usize| other_values[start + i * inner_stride].to_i64();
                                for (i, (d, x)) in d.iter_mut().zip(x).enumerate() {
                                    let (x, y) = (x.to_i64(), operand(i));
                                    let (qa, qb) = if full_is_a { (x, y) } else { (y, x) };
                                    *d = B::from_i64(p.scalar(qa, qb));
                                }
                            }
                        }
                    }
                    r = end;
                }
                Ok(())
            },
        )
    })??;
    Tensor::quantized_from_storage_strided(storage, &sizes, Dims::from_slice(full.strides()), out_q).map(Some)
}
