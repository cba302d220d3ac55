//! Sizes, strides and offsets, and walking them in row-major order.

use crate::error::{Error, Result};
use smallvec::SmallVec;

/// Dimension lists are short: keep up to six inline.
pub type Dims = SmallVec<[usize; 6]>;

/// The row-major (C-contiguous) strides for `sizes`.
pub fn contiguous_strides(sizes: &[usize]) -> Dims {
    let mut strides: Dims = smallvec::smallvec![0; sizes.len()];
    let mut acc = 1usize;
    for i in (0..sizes.len()).rev() {
        strides[i] = acc;
        acc = acc.saturating_mul(sizes[i].max(1));
    }
    strides
}

/// The number of elements of a shape: 0 if any size is 0, else the product.
///
/// On all of a tensor's sizes this cannot overflow: its element count was
/// checked when it was made ([`checked_numel`]), and only an empty
/// tensor's other sizes can multiply past `usize`, which is why a 0 is
/// looked for first. The same holds for any part of a **nonempty**
/// tensor's sizes. On part of an empty tensor's sizes (the rows of a
/// `[2^40, 2^40, 0]` input), or sizes of unknown origin, it saturates
/// instead of wrapping: use [`checked_numel`] where the count sizes an
/// allocation or a loop.
pub fn numel_of(sizes: &[usize]) -> usize {
    if sizes.contains(&0) {
        return 0;
    }
    sizes.iter().fold(1usize, |acc, &s| acc.saturating_mul(s))
}

/// The product of `sizes`, or an error if it overflows or a size is
/// beyond PyTorch's (`i64::MAX`). A shape with a 0 has no elements, however
/// large its other sizes: `[0, 2^63 - 1, 2^32]` is valid and empty.
pub fn checked_numel(op: &str, sizes: &[usize]) -> Result<usize> {
    if let Some(&s) = sizes.iter().find(|&&s| s > i64::MAX as usize) {
        return Err(Error::shape(op, format!("size {s} in {sizes:?} is larger than 2^63 - 1")));
    }
    // The product itself is storage's (a 0 first, then checked).
    crate::storage::checked_count(op, sizes)
        .map_err(|_| Error::shape(op, format!("the shape {sizes:?} has more elements than fit in memory")))
}

/// Converts user sizes (`i64`) to `usize`, rejecting negatives.
pub fn sizes_from_i64(op: &str, sizes: &[i64]) -> Result<Dims> {
    sizes
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| Error::shape(op, format!("negative size {s} in {sizes:?}"))))
        .collect()
}

/// Wraps a possibly negative dim into `0..ndim`. A 0-d tensor accepts dims
/// -1 and 0, as in PyTorch.
pub fn wrap_dim(op: &str, dim: i64, ndim: usize) -> Result<usize> {
    let n = ndim.max(1) as i64;
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n {
        return Err(Error::DimOutOfRange { op: op.to_string(), dim, ndim });
    }
    Ok(d as usize)
}

/// The broadcast of two shapes (NumPy rules), or an error naming both.
pub fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Dims> {
    let n = a.len().max(b.len());
    let mut out: Dims = smallvec::smallvec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::shape(op, format!("shapes {a:?} and {b:?} do not broadcast"))),
        };
    }
    Ok(out)
}

/// Storage offsets of every element of a strided layout, in row-major order.
pub struct StridedOffsets<'a> {
    sizes: &'a [usize],
    strides: &'a [usize],
    index: Dims,
    next: Option<usize>,
}

impl<'a> StridedOffsets<'a> {
    /// Walks the layout `(sizes, strides, offset)`.
    pub fn new(sizes: &'a [usize], strides: &'a [usize], offset: usize) -> Self {
        let empty = sizes.contains(&0);
        StridedOffsets {
            sizes,
            strides,
            index: smallvec::smallvec![0; sizes.len()],
            next: if empty { None } else { Some(offset) },
        }
    }
}

impl Iterator for StridedOffsets<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let current = self.next?;
        // Advance the odometer from the innermost dimension.
        let mut pos = current;
        let mut d = self.sizes.len();
        loop {
            if d == 0 {
                self.next = None;
                break;
            }
            d -= 1;
            self.index[d] += 1;
            if self.index[d] < self.sizes[d] {
                pos += self.strides[d];
                self.next = Some(pos);
                break;
            }
            pos -= self.strides[d] * (self.sizes[d] - 1);
            self.index[d] = 0;
        }
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_a_transposed_layout() {
        // A 2x3 tensor transposed to 3x2.
        let offs: Vec<usize> = StridedOffsets::new(&[3, 2], &[1, 3], 0).collect();
        assert_eq!(offs, vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(StridedOffsets::new(&[], &[], 7).collect::<Vec<_>>(), vec![7]);
        assert_eq!(StridedOffsets::new(&[2, 0], &[0, 1], 0).count(), 0);
    }

    #[test]
    fn wraps_dims() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(wrap_dim("t", -1, 3)?, 2);
        assert!(wrap_dim("t", 3, 3).is_err());
        assert_eq!(wrap_dim("t", -1, 0)?, 0);
        Ok(())
    }
}

/// Sizes as a caller writes them: `&[usize]`, `&[i64]` (PyTorch's
/// convention, where `-1` asks `view` and `reshape` to infer a size), and
/// arrays and vectors of either (integer literals, `&[2, 3]`, are `i32`).
/// Every sizes parameter of the public API takes one.
pub trait Shape {
    /// The sizes as `i64` (a `usize` above `i64::MAX` is an error).
    fn to_i64s(&self, op: &str) -> crate::Result<SmallVec<[i64; 6]>>;

    /// The sizes as `usize`, for parameters that take no `-1`: a negative
    /// size is an error naming `op`.
    fn to_usizes(&self, op: &str) -> crate::Result<Dims> {
        let v = self.to_i64s(op)?;
        v.iter()
            .map(|&d| {
                usize::try_from(d).map_err(|_| crate::Error::shape(op, format!("sizes must be >= 0, got {:?}", &v[..])))
            })
            .collect()
    }
}

macro_rules! shape_of_ints {
    ($($t:ty),*) => {$(
        impl Shape for [$t] {
            fn to_i64s(&self, op: &str) -> crate::Result<SmallVec<[i64; 6]>> {
                self.iter()
                    .map(|&d| {
                        i64::try_from(d).map_err(|_| crate::Error::shape(op, format!("size {d} does not fit in i64")))
                    })
                    .collect()
            }
        }
        impl<const N: usize> Shape for [$t; N] {
            fn to_i64s(&self, op: &str) -> crate::Result<SmallVec<[i64; 6]>> {
                self[..].to_i64s(op)
            }
        }
        impl Shape for Vec<$t> {
            fn to_i64s(&self, op: &str) -> crate::Result<SmallVec<[i64; 6]>> {
                self[..].to_i64s(op)
            }
        }
    )*};
}

shape_of_ints!(usize, i64, i32);

impl<T: Shape + ?Sized> Shape for &T {
    fn to_i64s(&self, op: &str) -> crate::Result<SmallVec<[i64; 6]>> {
        (**self).to_i64s(op)
    }
}

impl Shape for Dims {
    fn to_i64s(&self, op: &str) -> crate::Result<SmallVec<[i64; 6]>> {
        self[..].to_i64s(op)
    }
}
