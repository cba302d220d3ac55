//! Reading and writing single elements, filling, and `copy_`.

use super::Tensor;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::numerics::{inv_scale, quantize_val};
use crate::storage::Element;
use crate::with_element_type;

/// Writes real `values` (row-major) into `dst` at its own layout: quantized
/// with `dst`'s qparams, narrowed for floats, range-checked for integers.
fn write_reals(op: &str, dst: &Tensor, values: &[f64]) -> Result<()> {
    let dtype = dst.dtype();
    if let Some(q) = dst.quantizer() {
        let (qmin, qmax) = dtype.int_range().unwrap_or((0, 0));
        let channels: Vec<usize> = dst.channel_of_each().collect();
        with_element_type!(dtype.storage_type(), T => {
            let mut out = dst.0.storage.write::<T>()?;
            for ((o, &v), c) in dst.offsets().zip(values).zip(channels) {
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
            for (o, &v) in dst.offsets().zip(values) {
                out[o] = v as f32;
            }
        }
        DType::Float64 => {
            let mut out = dst.0.storage.write::<f64>()?;
            for (o, &v) in dst.offsets().zip(values) {
                out[o] = v;
            }
        }
        _ => {
            with_element_type!(dtype.storage_type(), T => {
                let converted = values.iter().map(|&v| int_from_real_any::<T>(op, dtype, v)).collect::<Result<Vec<T>>>()?;
                let mut out = dst.0.storage.write::<T>()?;
                for (o, v) in dst.offsets().zip(converted) {
                    out[o] = v;
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
        for &i in index {
            t = t.select(0, i)?;
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
        write_reals("set", &t, &[value])
    }

    /// Assigns `value` to every element (quantizing it for quantized tensors).
    /// Combine with [`Tensor::slice`] to fill part of a tensor.
    pub fn fill_(&self, value: f64) -> Result<()> {
        let values = vec![value; self.numel()];
        write_reals("fill_", self, &values)
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
                write_reals(op, self, &src.real_values()?)
            }
            (false, true) => Err(Error::WrongDType {
                op: op.into(),
                expected: "a plain (float or integer) source for a plain destination".into(),
                got: src.dtype(),
            }),
            (false, false) => write_reals(op, self, &src.real_values()?),
        }
    }
}
