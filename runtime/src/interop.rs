//! Conversions between [`Tensor`] and `ndarray` arrays (the `ndarray`
//! feature), the common ground of candle, burn and tract:
//!
//! - `Tensor::try_from(array)` for arrays and views of f32, f64, i64,
//!   i32, i16, i8 and u8, in any layout (the values are copied row-major);
//! - `ArrayD::<T>::try_from(&tensor)` for a plain tensor of the matching
//!   dtype (a copy);
//! - [`Tensor::with_int_view`]: a quantized tensor's stored integers as an
//!   `ArrayViewD` over its storage, strides and all, without a copy.
//!
//! ```
//! # fn main() -> qtensor_runtime::Result<()> {
//! use ndarray::{array, ArrayD};
//! use qtensor_runtime::{DType, Quantizer, Tensor};
//! let ints = Tensor::try_from(array![[2u8, 4], [6, 8]])?;
//! let q = Tensor::from_int_repr(&ints, &Quantizer::per_tensor(0.5, 0, DType::QUInt8)?)?;
//! let sum: u32 = q.with_int_view(|v: ndarray::ArrayViewD<'_, u8>| v.iter().map(|&x| x as u32).sum())?;
//! assert_eq!(sum, 2 + 4 + 6 + 8);
//! let back = ArrayD::<u8>::try_from(&ints)?;
//! assert_eq!(back, array![[2u8, 4], [6, 8]].into_dyn());
//! # Ok(())
//! # }
//! ```

use crate::{Element, Error, Result, Tensor};
use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, Dimension, IxDyn, ShapeBuilder};

/// A tensor from any array or view of a plain element type: its values in
/// logical (row-major) order, whatever the array's own strides.
impl<A: Element, S: Data<Elem = A>, D: Dimension> TryFrom<ArrayBase<S, D>> for Tensor {
    type Error = Error;

    fn try_from(a: ArrayBase<S, D>) -> Result<Tensor> {
        Tensor::try_from(&a)
    }
}

impl<A: Element, S: Data<Elem = A>, D: Dimension> TryFrom<&ArrayBase<S, D>> for Tensor {
    type Error = Error;

    fn try_from(a: &ArrayBase<S, D>) -> Result<Tensor> {
        let mut values = crate::storage::try_vec(a.len())?;
        values.extend(a.iter().copied());
        Tensor::from_vec(values, a.shape())
    }
}

/// A plain tensor's values as an owned array of its element type.
macro_rules! to_array {
    ($($t:ty),*) => {$(
        impl TryFrom<&Tensor> for ArrayD<$t> {
            type Error = Error;

            /// A copy of a plain tensor of this element type, row-major.
            fn try_from(t: &Tensor) -> Result<ArrayD<$t>> {
                if t.is_quantized() {
                    return Err(Error::invalid(
                        "ArrayD::try_from",
                        format!(
                            "{} is quantized: convert `ops::dequantize(&t)` (float values) or `ops::int_repr(&t)` \
                             (stored integers), or borrow the integers with `t.with_int_view(...)`",
                            t.describe()
                        ),
                    ));
                }
                let values = t.to_vec::<$t>()?;
                ArrayD::from_shape_vec(IxDyn(t.sizes()), values)
                    .map_err(|e| Error::invalid("ArrayD::try_from", e.to_string()))
            }
        }
    )*};
}

to_array!(f32, f64, i64, i32, i16, i8, u8);

impl Tensor {
    /// Runs `f` on this tensor's stored integers as an `ArrayViewD` over
    /// the storage itself (no copy), with the tensor's shape and strides:
    /// `u8` for quint8, `i8` for qint8, `i16` for qint16, `i32` for qint32
    /// (and the plain integer dtypes likewise). The storage stays
    /// read-locked while `f` runs.
    pub fn with_int_view<T: Element, R>(&self, f: impl FnOnce(ArrayViewD<'_, T>) -> R) -> Result<R> {
        if T::STORAGE != self.dtype().storage_type() || self.dtype().is_float() {
            return Err(Error::invalid(
                "with_int_view",
                format!(
                    "{} stores {:?} elements; ask for that element type",
                    self.describe(),
                    self.dtype().storage_type()
                ),
            ));
        }
        let data = self.storage().read::<T>()?;
        let span = data.get(self.storage_offset()..).unwrap_or(&[]);
        let shape = IxDyn(self.sizes()).strides(IxDyn(self.strides()));
        let view = ArrayViewD::from_shape(shape, span)
            .map_err(|e| Error::invalid("with_int_view", format!("{}: {e}", self.describe())))?;
        Ok(f(view))
    }
}
