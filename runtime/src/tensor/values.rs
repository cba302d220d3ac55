//! Reading a tensor's elements: offsets, channels, and values as vectors.

use super::*;

impl Tensor {
    /// Storage offsets of the elements in row-major order.
    pub fn offsets(&self) -> StridedOffsets<'_> {
        StridedOffsets::new(&self.0.sizes, &self.0.strides, self.0.offset)
    }

    /// The channel index of each element in row-major order, for per-channel
    /// tensors (all zeros otherwise).
    pub fn channel_of_each(&self) -> impl Iterator<Item = usize> + '_ {
        let q = self.quantizer();
        let (inner, channels) = match q.as_deref().and_then(|q| q.axis()) {
            Some(axis) if axis < self.ndim() => {
                (super::layout::numel_of(&self.0.sizes[axis + 1..]).max(1), self.0.sizes[axis].max(1))
            }
            _ => (usize::MAX, 1),
        };
        (0..self.numel()).map(move |i| (i / inner) % channels)
    }

    /// The elements in row-major order, as the storage's element type.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let stored = self.dtype().storage_type();
        if T::STORAGE != stored {
            let hint = if self.is_quantized() {
                format!(
                    "`to_vec::<{}>()` gives its stored integers, `ops::dequantize(&t)?.to_vec::<f32>()` its values",
                    stored.rust_name()
                )
            } else {
                format!("call `to_vec::<{}>()`", stored.rust_name())
            };
            return Err(Error::invalid(
                format!("to_vec::<{}>", T::STORAGE.rust_name()),
                format!("{} stores {} elements: {hint}", self.describe(), stored.rust_name()),
            ));
        }
        let src = self.0.storage.read::<T>()?;
        let mut out = crate::storage::try_vec::<T>(self.numel())?;
        out.extend(self.offsets().map(|o| src[o]));
        Ok(out)
    }

    /// Runs `f` on the elements as one row-major slice: borrowed from the
    /// storage when the tensor is contiguous, gathered into a copy otherwise.
    pub fn with_contiguous<T: Element, R>(&self, f: impl FnOnce(&[T]) -> R) -> Result<R> {
        if self.numel() == 0 {
            // An empty view may sit at any offset, even past the storage.
            return Ok(f(&[]));
        }
        if self.is_contiguous() {
            let src = self.0.storage.read::<T>()?;
            let start = self.0.offset;
            let span = src.get(start..start.saturating_add(self.numel())).ok_or_else(|| {
                crate::Error::shape("with_contiguous", format!("{} lies outside its storage", self.describe()))
            })?;
            Ok(f(span))
        } else {
            let v = self.to_vec::<T>()?;
            Ok(f(&v))
        }
    }

    /// The stored integers widened to `i64`, row-major. Errors for floats.
    pub fn int_values(&self) -> Result<Vec<i64>> {
        if self.dtype().is_float() {
            return Err(Error::WrongDType {
                op: "int_values".into(),
                expected: "an integer or quantized tensor".into(),
                got: self.dtype(),
            });
        }
        let mut out = crate::storage::try_vec::<i64>(self.numel())?;
        crate::with_element_type!(self.dtype().storage_type(), T => {
            let src = self.0.storage.read::<T>()?;
            out.extend(self.offsets().map(|o| src[o].to_i64()));
        });
        Ok(out)
    }

    /// The real values row-major as `f64`: dequantized (through f32, as the
    /// kernels compute them) for quantized tensors, widened otherwise.
    pub fn real_values(&self) -> Result<Vec<f64>> {
        match self.quantizer() {
            Some(q) => {
                let mut out = crate::storage::try_vec::<f64>(self.numel())?;
                crate::with_element_type!(self.dtype().storage_type(), T => {
                    let src = self.0.storage.read::<T>()?;
                    out.extend(
                        self.offsets().zip(self.channel_of_each()).map(|(o, c)| q.dequantize_one(src[o].to_i64(), c) as f64),
                    );
                });
                Ok(out)
            }
            None => {
                let mut out = crate::storage::try_vec::<f64>(self.numel())?;
                crate::with_element_type!(self.dtype().storage_type(), T => {
                    let src = self.0.storage.read::<T>()?;
                    out.extend(self.offsets().map(|o| src[o].to_f64()));
                });
                Ok(out)
            }
        }
    }

    /// The value of a one-element tensor (dequantized if quantized).
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "item",
                format!("a tensor with {} elements cannot be converted to a scalar", self.numel()),
            ));
        }
        Ok(self.real_values()?[0])
    }
}
