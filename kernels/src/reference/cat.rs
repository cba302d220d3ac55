//! quantized::cat: concatenation along any dim, requantizing only when an
//! input's qparams differ from the output's.

use crate::args::layout::{channels_last_output, channels_last_path};
use crate::args::quantized::{output_quantizer, per_tensor, quantized_from_ints};
use qtensor_runtime::numerics::{requantize_f64, Requantizer};
use qtensor_runtime::ops as op;
use qtensor_runtime::storage::{checked_count, try_vec};
use qtensor_runtime::tensor::layout::wrap_dim;
use qtensor_runtime::{register_kernel, Error, MemoryFormat, Priority, Result, Tensor};

/// The reference cat.
pub fn reference_cat(xs: &[Tensor], dim: i64, scale: Option<f64>, zero_point: Option<i64>) -> Result<Tensor> {
    let op = "quantized::cat";
    let first = xs.first().ok_or_else(|| Error::invalid(op, "expected at least one tensor"))?;
    let p0 = per_tensor(op, "qx[0]", first)?;
    let ndim = first.ndim();
    if ndim == 0 {
        return Err(Error::shape(op, "cannot concatenate 0-d tensors"));
    }
    let d = wrap_dim(op, dim, ndim)?;
    let mut params = Vec::with_capacity(xs.len());
    for (i, x) in xs.iter().enumerate() {
        if x.dtype() != first.dtype() {
            return Err(Error::DTypeMismatch { op: op.into(), lhs: first.dtype(), rhs: x.dtype() });
        }
        let same_rank = x.ndim() == ndim;
        if !same_rank || x.sizes().iter().zip(first.sizes()).enumerate().any(|(j, (a, b))| j != d && a != b) {
            return Err(Error::shape(
                op,
                format!(
                    "qx[{i}] has shape {:?}; all shapes must match {:?} except in dim {d}",
                    x.sizes(),
                    first.sizes()
                ),
            ));
        }
        params.push(per_tensor(op, &format!("qx[{i}]"), x)?);
    }
    let out_scale = scale.unwrap_or(p0.scale);
    let out_zp = zero_point.unwrap_or(p0.zero_point);
    let out_q = output_quantizer(op, first.dtype(), out_scale, out_zp)?;

    let mut sizes = first.sizes().to_vec();
    sizes[d] = xs
        .iter()
        .try_fold(0usize, |acc, x| acc.checked_add(x.sizes()[d]))
        .ok_or_else(|| Error::shape(op, "the concatenated size overflows"))?;
    let total = checked_count(op, &sizes)?;
    // With no elements there is nothing to loop over (the outer sizes may
    // still be huge).
    let outer = if total == 0 { 0 } else { qtensor_runtime::tensor::layout::numel_of(&sizes[..d]) };
    let inner = qtensor_runtime::tensor::layout::numel_of(&sizes[d + 1..]);
    let values = xs.iter().map(|x| x.int_values()).collect::<Result<Vec<_>>>()?;
    let nhwc = channels_last_path(xs, d);
    let mut ints = try_vec(checked_count(op, &[outer, sizes[d], inner])?)?;
    for o in 0..outer {
        for ((x, v), p) in xs.iter().zip(&values).zip(&params) {
            let chunk = x.sizes()[d] * inner;
            let part = &v[o * chunk..(o + 1) * chunk];
            if p.scale == out_scale && p.zero_point == out_zp {
                // Same qparams: the integers carry over exactly.
                ints.extend_from_slice(part);
            } else if p.qmax <= 255 {
                // 8-bit dtypes: PyTorch's own f32 sequence, bit for bit.
                let rq = if nhwc {
                    Requantizer::channels_last(p.scale, p.zero_point, out_scale)
                } else {
                    Requantizer::generic(p.scale, p.zero_point, out_scale)
                };
                ints.extend(part.iter().map(|&q| rq.apply(q, out_zp, p.qmin, p.qmax)));
            } else {
                // qint16 and qint32 exceed f32's precision: f64, within a
                // step of the exact value.
                ints.extend(
                    part.iter().map(|&q| {
                        requantize_f64((q - p.zero_point) as f64 * p.scale, out_scale, out_zp, p.qmin, p.qmax)
                    }),
                );
            }
        }
    }
    let y = quantized_from_ints(&sizes, &out_q, &ints)?;
    if channels_last_output(xs, d) {
        y.contiguous_in(MemoryFormat::ChannelsLast)
    } else {
        Ok(y)
    }
}

register_kernel! {
    op: op::quantized::CAT,
    dtypes: [QUInt8, QInt8, QInt16, QInt32],
    name: "reference_cat",
    priority: Priority::REFERENCE,
    fn reference_cat(qx: &[Tensor], dim: i64, scale: Option<f64>, zero_point: Option<i64>) -> Tensor
}
