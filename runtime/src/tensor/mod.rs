//! Tensors: a dtype, a strided view of a shared [`Storage`], and for
//! quantized tensors a shared [`Quantizer`].
//!
//! **Sizes.** A new tensor's sizes are `&[usize]` (`from_vec`,
//! `from_slice`, `zeros`, ...); `view`, `reshape` and `expand` take any
//! [`layout::Shape`], so `&[usize]`, PyTorch's `&[i64]` with its `-1`, and
//! literals such as `&[2, -1]` all work there.

mod access;
mod cache;
mod constructors;
pub mod format;
pub mod layout;
mod qparams;
mod values;
mod view;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::quantizer::{QParams, QScheme, Quantizer};
use crate::storage::{Element, Storage};
use layout::{checked_numel, contiguous_strides, Dims, StridedOffsets};
use parking_lot::{Mutex, RwLock};
use std::any::Any;
use std::sync::Arc;

/// Runs `$body` with `$T` bound to the Rust element type of a [`StorageType`](crate::StorageType).
#[macro_export]
macro_rules! with_element_type {
    ($stype:expr, $T:ident => $body:expr) => {
        match $stype {
            $crate::StorageType::F32 => {
                type $T = f32;
                $body
            }
            $crate::StorageType::F64 => {
                type $T = f64;
                $body
            }
            $crate::StorageType::I64 => {
                type $T = i64;
                $body
            }
            $crate::StorageType::I32 => {
                type $T = i32;
                $body
            }
            $crate::StorageType::I16 => {
                type $T = i16;
                $body
            }
            $crate::StorageType::I8 => {
                type $T = i8;
                $body
            }
            $crate::StorageType::U8 | $crate::StorageType::U4x2 => {
                type $T = u8;
                $body
            }
        }
    };
}

/// A float, integer or quantized tensor.
///
/// `Tensor` is a cheap handle (an `Arc`): cloning it shares everything, as a
/// `torch.Tensor` does. Views made by [`Tensor::slice`], [`Tensor::transpose`]
/// and friends share the storage and copy no element.
#[derive(Clone)]
pub struct Tensor(Arc<TensorImpl>);

struct TensorImpl {
    storage: Arc<Storage>,
    dtype: DType,
    sizes: Dims,
    strides: Dims,
    offset: usize,
    // Derived from `sizes` and `strides`, which never change, once: small
    // ops ask for them several times per call.
    numel: usize,
    dense: bool,
    // `copy_` replaces the quantizer of its destination, as PyTorch does.
    quantizer: RwLock<Option<Arc<Quantizer>>>,
    // Data derived from this tensor (packed weights), with the storage
    // version and quantizer it was derived from.
    derived: Mutex<Vec<Derived>>,
}

struct Derived {
    type_id: std::any::TypeId,
    version: u64,
    quantizer: Option<usize>,
    value: Arc<dyn Any + Send + Sync>,
}

impl Tensor {
    fn from_parts(
        storage: Arc<Storage>,
        dtype: DType,
        sizes: Dims,
        strides: Dims,
        offset: usize,
        quantizer: Option<Arc<Quantizer>>,
    ) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            storage,
            dtype,
            numel: layout::numel_of(&sizes),
            dense: format::strides_are_dense(&sizes, &strides),
            sizes,
            strides,
            offset,
            quantizer: RwLock::new(quantizer),
            derived: Mutex::new(Vec::new()),
        }))
    }

    /// Checks that `storage` holds exactly the elements of `sizes` in
    /// `quantizer`'s storage type, then wraps it with `strides` (which the
    /// caller guarantees cover the elements densely).
    pub(crate) fn quantized_over(
        storage: Storage,
        sizes: &[usize],
        strides: Dims,
        quantizer: &Arc<Quantizer>,
        op: &str,
    ) -> Result<Tensor> {
        let dtype = quantizer.dtype();
        Tensor::check_supported(op, dtype)?;
        quantizer.check_fits(op, sizes)?;
        let numel = checked_numel(op, sizes)?;
        if storage.storage_type() != dtype.storage_type() || storage.len() != numel {
            return Err(Error::shape(
                op,
                format!(
                    "a storage of {} {:?} elements cannot hold a {dtype} tensor of shape {sizes:?}",
                    storage.len(),
                    storage.storage_type()
                ),
            ));
        }
        Ok(Tensor::from_parts(Arc::new(storage), dtype, Dims::from_slice(sizes), strides, 0, Some(quantizer.clone())))
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// The sizes of each dimension.
    pub fn sizes(&self) -> &[usize] {
        &self.0.sizes
    }

    /// Alias of [`Tensor::sizes`].
    pub fn shape(&self) -> &[usize] {
        &self.0.sizes
    }

    /// The size of dimension `dim` (negative counts from the end).
    pub fn size(&self, dim: i64) -> Result<usize> {
        if self.ndim() == 0 {
            return Err(Error::DimOutOfRange { op: "size".into(), dim, ndim: 0 });
        }
        Ok(self.0.sizes[layout::wrap_dim("size", dim, self.ndim())?])
    }

    /// Element strides of each dimension.
    pub fn strides(&self) -> &[usize] {
        &self.0.strides
    }

    /// Offset of the first element in the storage, in elements.
    pub fn storage_offset(&self) -> usize {
        self.0.offset
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.0.sizes.len()
    }

    /// Alias of [`Tensor::ndim`].
    pub fn dim(&self) -> usize {
        self.ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.numel
    }

    /// True for quantized tensors.
    pub fn is_quantized(&self) -> bool {
        self.0.dtype.is_quantized()
    }

    /// True when the elements are laid out row-major with no gaps.
    pub fn is_contiguous(&self) -> bool {
        // Saturating, as `contiguous_strides` makes them: an empty tensor's
        // other sizes may multiply past `usize`.
        let mut expected = 1usize;
        for (&s, &st) in self.0.sizes.iter().zip(&self.0.strides).rev() {
            if s != 1 && st != expected {
                return false;
            }
            expected = expected.saturating_mul(s.max(1));
        }
        true
    }

    /// The shared storage.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.0.storage
    }

    /// True when both tensors view the same storage.
    pub fn shares_storage_with(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// A short description for error messages and debugging.
    pub fn describe(&self) -> String {
        format!("{}{:?}", self.dtype(), self.sizes())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("dtype", &self.dtype())
            .field("sizes", &self.sizes())
            .field("strides", &self.strides())
            .field("offset", &self.storage_offset())
            .field("quantizer", &self.quantizer())
            .finish()
    }
}
