//! Views: new sizes, strides and offset over the same storage, no copy.
//!
//! Per-channel tensors keep their channel axis through every view: it moves
//! with its dimension under transpose and permute, its scales are sliced
//! with it, and selecting one channel leaves a per-tensor quantized view.

use super::layout::{checked_numel, contiguous_strides, numel_of, sizes_from_i64, wrap_dim, Dims};
use super::Tensor;
use crate::error::{Error, Result};
use crate::quantizer::Quantizer;
use std::sync::Arc;

impl Tensor {
    fn view_with(&self, sizes: Dims, strides: Dims, offset: usize, quantizer: Option<Arc<Quantizer>>) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), self.0.dtype, sizes, strides, offset, quantizer)
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, dim0: i64, dim1: i64) -> Result<Tensor> {
        let n = self.ndim();
        let d0 = wrap_dim("transpose", dim0, n)?;
        let d1 = wrap_dim("transpose", dim1, n)?;
        if n == 0 {
            return Ok(self.clone());
        }
        let mut perm: Vec<i64> = (0..n as i64).collect();
        perm.swap(d0, d1);
        self.permute(&perm)
    }

    /// Reorders the dimensions: dimension `i` of the result is `dims[i]` of self.
    pub fn permute(&self, dims: &[i64]) -> Result<Tensor> {
        let op = "permute";
        let n = self.ndim();
        if dims.len() != n {
            return Err(Error::shape(op, format!("{} dims given for a tensor of {n} dimensions", dims.len())));
        }
        let mut seen = vec![false; n];
        let mut wrapped = Vec::with_capacity(n);
        for &d in dims {
            let w = wrap_dim(op, d, n)?;
            if seen[w] {
                return Err(Error::shape(op, format!("dimension {d} repeats in {dims:?}")));
            }
            seen[w] = true;
            wrapped.push(w);
        }
        let sizes: Dims = wrapped.iter().map(|&d| self.0.sizes[d]).collect();
        let strides: Dims = wrapped.iter().map(|&d| self.0.strides[d]).collect();
        let q = self.quantizer().map(|q| match q.axis() {
            Some(axis) => {
                let new_axis = wrapped.iter().position(|&d| d == axis).unwrap_or(axis);
                q.with_axis(new_axis)
            }
            None => q,
        });
        Ok(self.view_with(sizes, strides, self.0.offset, q))
    }

    /// Elements `start..end` step `step` along `dim`. Negative `start`/`end`
    /// count from the end; both are clamped into range, as in PyTorch.
    pub fn slice(&self, dim: i64, start: Option<i64>, end: Option<i64>, step: i64) -> Result<Tensor> {
        let op = "slice";
        if self.ndim() == 0 {
            return Err(Error::shape(op, "cannot slice a 0-d tensor"));
        }
        let d = wrap_dim(op, dim, self.ndim())?;
        if step <= 0 {
            return Err(Error::invalid(op, format!("step must be positive, got {step}")));
        }
        let size = self.0.sizes[d] as i64;
        let clamp = |v: i64| -> i64 {
            let v = if v < 0 { v.saturating_add(size) } else { v };
            v.clamp(0, size)
        };
        let start = clamp(start.unwrap_or(0));
        let end = clamp(end.unwrap_or(size)).max(start);
        // Written so that no step, however large, overflows.
        let len = if end > start { (end - start - 1) / step + 1 } else { 0 };
        let (start, len, step) = (start as usize, len as usize, step as usize);

        let mut sizes = self.0.sizes.clone();
        let mut strides = self.0.strides.clone();
        sizes[d] = len;
        // As in `select`: an element exists only in a nonempty result, and
        // then its offset is within the storage.
        let offset = if len == 0 || self.numel() == 0 { self.0.offset } else { self.0.offset + start * strides[d] };
        strides[d] = strides[d].saturating_mul(step);
        let q = self.quantizer().map(|q| match q.axis() {
            Some(axis) if axis == d => q.channel_subset(start, step, len),
            _ => q,
        });
        Ok(self.view_with(sizes, strides, offset, q))
    }

    /// The slice at `index` along `dim`, with that dimension removed.
    pub fn select(&self, dim: i64, index: i64) -> Result<Tensor> {
        let op = "select";
        if self.ndim() == 0 {
            return Err(Error::shape(op, "cannot select on a 0-d tensor"));
        }
        let d = wrap_dim(op, dim, self.ndim())?;
        let size = self.0.sizes[d];
        let i = if index < 0 { index + size as i64 } else { index };
        if i < 0 || i >= size as i64 {
            return Err(Error::IndexOutOfRange { op: op.into(), index, dim: d, size });
        }
        let i = i as usize;
        let mut sizes = self.0.sizes.clone();
        let mut strides = self.0.strides.clone();
        // An empty tensor's strides may be saturated and its slice reads
        // nothing: it keeps its offset. Otherwise the element exists, so
        // its offset is within the storage.
        let offset = if self.numel() == 0 { self.0.offset } else { self.0.offset + i * strides[d] };
        sizes.remove(d);
        strides.remove(d);
        let q = self.quantizer().map(|q| match q.axis() {
            Some(axis) if axis == d => q.channel_as_per_tensor(i),
            Some(axis) if axis > d => q.with_axis(axis - 1),
            _ => q,
        });
        Ok(self.view_with(sizes, strides, offset, q))
    }

    /// Resolves a requested shape with at most one `-1` against this numel.
    fn infer_shape(&self, op: &str, shape: &[i64]) -> Result<Dims> {
        let numel = self.numel();
        let mut infer = None;
        let mut known = 1usize;
        for (i, &s) in shape.iter().enumerate() {
            if s == -1 {
                if infer.replace(i).is_some() {
                    return Err(Error::shape(op, format!("only one dimension can be -1 in {shape:?}")));
                }
            } else {
                let s = usize::try_from(s).map_err(|_| Error::shape(op, format!("invalid size {s} in {shape:?}")))?;
                known = known.checked_mul(s).ok_or_else(|| Error::shape(op, format!("shape {shape:?} overflows")))?;
            }
        }
        let mut sizes: Dims = shape.iter().map(|&s| s.max(0) as usize).collect();
        if let Some(i) = infer {
            if known == 0 || !numel.is_multiple_of(known) {
                return Err(Error::shape(op, format!("shape {shape:?} is invalid for {numel} elements")));
            }
            sizes[i] = numel / known;
        } else if known != numel {
            return Err(Error::shape(op, format!("shape {shape:?} is invalid for {numel} elements")));
        }
        Ok(sizes)
    }

    /// Strides that let `new_sizes` view this layout without a copy, if any
    /// (the algorithm of PyTorch's `computeStride`).
    fn view_strides(&self, new_sizes: &[usize]) -> Option<Dims> {
        let old_sizes = &self.0.sizes;
        let old_strides = &self.0.strides;
        if self.numel() == 0 {
            return Some(contiguous_strides(new_sizes));
        }
        let mut new_strides: Dims = smallvec::smallvec![0; new_sizes.len()];
        let mut view_d = new_sizes.len() as isize - 1;
        let mut chunk_base_stride = *old_strides.last().unwrap_or(&1);
        let mut tensor_numel = 1usize;
        let mut view_numel = 1usize;
        for tensor_d in (0..old_sizes.len()).rev() {
            // Saturating: a size-1 dimension may carry any stride (a slice
            // with a huge step), and its products mean nothing.
            tensor_numel *= old_sizes[tensor_d];
            if tensor_d == 0
                || (old_sizes[tensor_d - 1] != 1
                    && old_strides[tensor_d - 1] != tensor_numel.saturating_mul(chunk_base_stride))
            {
                while view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d as usize] == 1) {
                    new_strides[view_d as usize] = view_numel.saturating_mul(chunk_base_stride);
                    view_numel *= new_sizes[view_d as usize];
                    view_d -= 1;
                }
                if view_numel != tensor_numel {
                    return None;
                }
                if tensor_d > 0 {
                    chunk_base_stride = old_strides[tensor_d - 1];
                    tensor_numel = 1;
                    view_numel = 1;
                }
            }
        }
        if view_d != -1 {
            return None;
        }
        Some(new_strides)
    }

    /// Where the channel axis lands in `new_sizes`: the dimension with the
    /// same number of elements before it and the same size.
    fn reshaped_quantizer(&self, op: &str, new_sizes: &[usize]) -> Result<Option<Arc<Quantizer>>> {
        let Some(q) = self.quantizer() else { return Ok(None) };
        let Some(axis) = q.axis() else { return Ok(Some(q)) };
        let outer = numel_of(&self.0.sizes[..axis]);
        let inner = numel_of(&self.0.sizes[axis + 1..]);
        let channels = self.0.sizes[axis];
        let found = (0..new_sizes.len()).find(|&i| {
            numel_of(&new_sizes[..i]) == outer && new_sizes[i] == channels && numel_of(&new_sizes[i + 1..]) == inner
        });
        if let Some(i) = found {
            return Ok(Some(q.with_axis(i)));
        }
        Err(Error::shape(
            op,
            format!("shape {new_sizes:?} would split or merge the channel axis {axis} of a per-channel tensor of shape {:?}; dequantize first", self.sizes()),
        ))
    }

    /// The same elements with another shape, without a copy; errors when the
    /// strides do not allow it (use [`Tensor::reshape`]). `shape` is any
    /// [`Shape`](super::layout::Shape): `&[2, -1]`, `&[usize]`, a `Vec`.
    pub fn view(&self, shape: impl super::layout::Shape) -> Result<Tensor> {
        let op = "view";
        let shape = &shape.to_i64s(op)?[..];
        let sizes = self.infer_shape(op, shape)?;
        let q = self.reshaped_quantizer(op, &sizes)?;
        let strides = self.view_strides(&sizes).ok_or_else(|| {
            Error::shape(
                op,
                format!("shape {shape:?} is not compatible with the strides {:?}; use reshape", self.strides()),
            )
        })?;
        Ok(self.view_with(sizes, strides, self.0.offset, q))
    }

    /// The same elements with another shape: a view when the strides allow
    /// it, a contiguous copy otherwise. `shape` is any
    /// [`Shape`](super::layout::Shape); one entry may be `-1`.
    pub fn reshape(&self, shape: impl super::layout::Shape) -> Result<Tensor> {
        let op = "reshape";
        let shape = &shape.to_i64s(op)?[..];
        let sizes = self.infer_shape(op, shape)?;
        let q = self.reshaped_quantizer(op, &sizes)?;
        match self.view_strides(&sizes) {
            Some(strides) => Ok(self.view_with(sizes, strides, self.0.offset, q)),
            None => {
                let c = self.contiguous_copy()?;
                let strides = contiguous_strides(&sizes);
                Ok(c.view_with(sizes, strides, 0, q))
            }
        }
    }

    /// A view broadcast to `sizes` (NumPy rules: dimensions of size 1, and
    /// missing leading dimensions, repeat with stride 0). `sizes` is any
    /// [`Shape`](super::layout::Shape); as in PyTorch, `-1` keeps a
    /// dimension's size.
    pub fn expand(&self, sizes: impl super::layout::Shape) -> Result<Tensor> {
        let op = "expand";
        let wanted = sizes.to_i64s(op)?;
        let n = self.ndim();
        let lead_dims = wanted.len().saturating_sub(n);
        let sizes: Dims = wanted
            .iter()
            .enumerate()
            .map(|(i, &d)| match d {
                -1 if i >= lead_dims => Ok(self.sizes()[i - lead_dims]),
                d => usize::try_from(d).map_err(|_| {
                    Error::shape(op, format!("sizes must be >= 0 (or -1 to keep a dimension), got {:?}", &wanted[..]))
                }),
            })
            .collect::<Result<_>>()?;
        let sizes = &sizes[..];
        if sizes.len() < n {
            return Err(Error::shape(
                op,
                format!("cannot expand shape {:?} to fewer dimensions {sizes:?}", self.sizes()),
            ));
        }
        super::layout::checked_numel(op, sizes)?;
        let lead = sizes.len() - n;
        let mut strides: Dims = smallvec::smallvec![0; sizes.len()];
        for (i, &target) in sizes.iter().enumerate().skip(lead) {
            let (s, st) = (self.0.sizes[i - lead], self.0.strides[i - lead]);
            if s == target {
                strides[i] = st;
            } else if s != 1 {
                return Err(Error::shape(op, format!("shape {:?} cannot be broadcast to {sizes:?}", self.sizes())));
            }
        }
        let q = self.quantizer().map(|q| match q.axis() {
            Some(axis) => q.with_axis(axis + lead),
            None => q,
        });
        Ok(self.view_with(sizes.into(), strides, self.0.offset, q))
    }

    /// Self if already contiguous, else a contiguous copy.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            Ok(self.clone())
        } else {
            self.contiguous_copy()
        }
    }

    /// Reshapes to `sizes` given as `usize` (convenience for Rust callers).
    pub fn reshape_to(&self, sizes: &[usize]) -> Result<Tensor> {
        let shape: Vec<i64> = sizes.iter().map(|&s| s as i64).collect();
        self.reshape(&shape)
    }

    /// Checks a user-supplied size list (for ops that allocate).
    pub fn checked_sizes(op: &str, sizes: &[i64]) -> Result<Dims> {
        let dims = sizes_from_i64(op, sizes)?;
        checked_numel(op, &dims)?;
        Ok(dims)
    }
}
