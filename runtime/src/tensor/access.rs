//! Reading and writing single elements, filling, and `copy_`.

use super::Tensor;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::numerics::{inv_scale, quantize_val};
use crate::storage::Element;
use crate::with_element_type;

/// Writes real `values` (row-major) into `dst` at its own layout: quantized
/// with `dst`'s qparams, narrowed for floats, range-checked for integers
/// (all of them before anything is written). Streams: nothing of the
/// tensor's size is allocated.
fn write_reals(op: &str, dst: &Tensor, values: impl Iterator<Item = f64> + Clone) -> Result<()> {
    let dtype = dst.dtype();
    if let Some(q) = dst.quantizer() {
        let (qmin, qmax) = dtype.int_range().unwrap_or((0, 0));
        with_element_type!(dtype.storage_type(), T => {
            let mut out = dst.0.storage.write::<T>()?;
            for ((o, v), c) in dst.offsets().zip(values).zip(dst.channel_of_each()) {
                let (s, z) = q.channel_qparams(c);
                let qv = quantize_val(v as f32, inv_scale(s), z, qmin, qmax);
                out[o] = T::from_i64(qv);
            }
        });
        return Ok(());
    }
    match dtype {
        DType::Float32 => {
            let mut out = dst.0.storage.write::<f32>()?;
            for (o, v) in dst.offsets().zip(values) {
                out[o] = v as f32;
            }
        }
        DType::Float64 => {
            let mut out = dst.0.storage.write::<f64>()?;
            for (o, v) in dst.offsets().zip(values) {
                out[o] = v;
            }
        }
        _ => {
            with_element_type!(dtype.storage_type(), T => {
                for v in values.clone() {
                    int_from_real_any::<T>(op, dtype, v)?;
                }
                let mut out = dst.0.storage.write::<T>()?;
                for (o, v) in dst.offsets().zip(values) {
                    out[o] = int_from_real_any::<T>(op, dtype, v)?;
                }
            });
        }
    }
    Ok(())
}

fn int_from_real_any<T: Element>(op: &str, dtype: DType, v: f64) -> Result<T> {
    let (lo, hi) = dtype.int_range().unwrap_or((i64::MIN, i64::MAX));
    let t = v.trunc();
    if !t.is_finite() || t < lo as f64 || t > hi as f64 {
        return Err(Error::invalid(op, format!("{v} does not fit in {dtype}")));
    }
    Ok(T::from_i64(t as i64))
}

impl Tensor {
    /// Resolves a full index (negative counts from the end) to a storage offset.
    fn offset_of(&self, op: &str, index: &[i64]) -> Result<usize> {
        if index.len() != self.ndim() {
            return Err(Error::shape(
                op,
                format!("index {index:?} has {} entries for a tensor of {} dimensions", index.len(), self.ndim()),
            ));
        }
        let mut off = self.0.offset;
        for (d, &i) in index.iter().enumerate() {
            let size = self.0.sizes[d];
            let w = if i < 0 { i + size as i64 } else { i };
            if w < 0 || w >= size as i64 {
                return Err(Error::IndexOutOfRange { op: op.into(), index: i, dim: d, size });
            }
            off += w as usize * self.0.strides[d];
        }
        Ok(off)
    }

    /// The element at `index`, as a real value (dequantized if quantized).
    pub fn get(&self, index: &[i64]) -> Result<f64> {
        let mut t = self.clone();
        for (dim, &i) in index.iter().enumerate() {
            let size = t.sizes().first().copied();
            t = t.select(0, i).map_err(|_| match size {
                Some(size) => Error::shape(
                    "get",
                    format!("index {i} is out of range for dimension {dim} of size {size} (shape {:?})", self.sizes()),
                ),
                None => Error::shape(
                    "get",
                    format!(
                        "index {index:?} has more entries than the {} dimensions of shape {:?}",
                        self.ndim(),
                        self.sizes()
                    ),
                ),
            })?;
        }
        if t.ndim() != 0 {
            return Err(Error::shape(
                "get",
                format!("index {index:?} does not name one element of a tensor of shape {:?}", self.sizes()),
            ));
        }
        t.item()
    }

    /// Assigns `value` at `index`. A quantized tensor quantizes it with its
    /// own qparams (the channel's, for per-channel), as `q[i] = v` does in PyTorch.
    pub fn set(&self, index: &[i64], value: f64) -> Result<()> {
        self.offset_of("set", index)?;
        let mut t = self.clone();
        for &i in index {
            t = t.select(0, i)?;
        }
        write_reals("set", &t, std::iter::once(value))
    }

    /// Assigns `value` to every element (quantizing it for quantized tensors).
    /// Combine with [`Tensor::slice`] to fill part of a tensor.
    pub fn fill_(&self, value: f64) -> Result<()> {
        self.check_no_internal_overlap("fill_")?;
        if let (Some(q), true) = (self.quantizer(), self.is_contiguous()) {
            // Quantize once per channel and fill runs of the storage.
            let (qmin, qmax) = self.dtype().int_range().unwrap_or((0, 0));
            let (inner, channels) = match q.axis() {
                Some(axis) => (super::layout::numel_of(&self.0.sizes[axis + 1..]).max(1), self.0.sizes[axis].max(1)),
                None => (self.numel().max(1), 1),
            };
            with_element_type!(self.dtype().storage_type(), T => {
                let mut out = self.0.storage.write::<T>()?;
                let start = self.0.offset;
                let span = out.get_mut(start..start.saturating_add(self.numel())).ok_or_else(|| {
                    Error::shape("fill_", format!("{} lies outside its storage", self.describe()))
                })?;
                for (i, run) in span.chunks_mut(inner).enumerate() {
                    let (s, z) = q.channel_qparams(i % channels);
                    run.fill(T::from_i64(quantize_val(value as f32, inv_scale(s), z, qmin, qmax)));
                }
            });
            return Ok(());
        }
        write_reals("fill_", self, std::iter::repeat_n(value, self.numel()))
    }

    /// Refuses to write through a view in which several elements share one
    /// memory location (an expanded view: a stride of 0 on a dimension of
    /// size above 1), as PyTorch does: which write would win is undefined.
    pub fn check_no_internal_overlap(&self, op: &str) -> Result<()> {
        if self.0.sizes.iter().zip(&self.0.strides).any(|(&size, &stride)| size > 1 && stride == 0) {
            return Err(Error::invalid(
                op,
                "more than one element of the written-to tensor refers to a single memory location; \
                 call .contiguous() on it first",
            ));
        }
        Ok(())
    }

    /// Copies `src` into self, which must have the same shape.
    ///
    /// - quantized <- quantized (same dtype): self takes src's integers and
    ///   quantizer, as PyTorch's `copy_` does;
    /// - quantized <- float: src is quantized with self's qparams;
    /// - float <- quantized: an error (dequantize first);
    /// - plain <- plain: values are converted (floats narrowed, integers range-checked).
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        let op = "copy_";
        self.check_no_internal_overlap(op)?;
        if src.sizes() != self.sizes() {
            return Err(Error::shape(
                op,
                format!("cannot copy a tensor of shape {:?} into one of shape {:?}", src.sizes(), self.sizes()),
            ));
        }
        match (self.is_quantized(), src.is_quantized()) {
            (true, true) => {
                if self.dtype() != src.dtype() {
                    return Err(Error::DTypeMismatch { op: op.into(), lhs: self.dtype(), rhs: src.dtype() });
                }
                // Gather first: src may overlap self's storage.
                with_element_type!(self.dtype().storage_type(), T => {
                    let values = src.to_vec::<T>()?;
                    let mut out = self.0.storage.write::<T>()?;
                    for (o, v) in self.offsets().zip(values) {
                        out[o] = v;
                    }
                });
                *self.0.quantizer.write() = src.quantizer();
                Ok(())
            }
            (true, false) => {
                if !src.dtype().is_float() {
                    return Err(Error::WrongDType {
                        op: op.into(),
                        expected: "a float or quantized source for a quantized destination".into(),
                        got: src.dtype(),
                    });
                }
                write_reals(op, self, src.real_values()?.into_iter())
            }
            (false, true) => Err(Error::WrongDType {
                op: op.into(),
                expected: "a plain (float or integer) source for a plain destination".into(),
                got: src.dtype(),
            }),
            (false, false) => write_reals(op, self, src.real_values()?.into_iter()),
        }
    }
}
