//! Tensors: a dtype, a strided view of a shared [`Storage`], and for
//! quantized tensors a shared [`Quantizer`].

mod access;
pub mod format;
pub mod layout;
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
            sizes,
            strides,
            offset,
            quantizer: RwLock::new(quantizer),
            derived: Mutex::new(Vec::new()),
        }))
    }

    /// An error for dtypes that tensors cannot hold yet (quint4x2, two
    /// values per byte), naming `op`.
    pub fn check_supported(op: &str, dtype: DType) -> Result<()> {
        if dtype == DType::QUInt4x2 {
            return Err(Error::WrongDType {
                op: op.into(),
                expected: "quint8, qint8, qint16 or qint32 (quint4x2, two 4-bit values per byte, can describe \
                           qparams but tensors of it are not supported yet)"
                    .into(),
                got: dtype,
            });
        }
        Ok(())
    }

    /// A plain tensor holding `data` with shape `sizes`.
    pub fn from_vec<T: Element>(data: Vec<T>, sizes: &[usize]) -> Result<Tensor> {
        Tensor::from_slice(&data, sizes)
    }

    /// A plain tensor holding a copy of `data` with shape `sizes`.
    pub fn from_slice<T: Element>(data: &[T], sizes: &[usize]) -> Result<Tensor> {
        let numel = checked_numel("from_slice", sizes)?;
        if numel != data.len() {
            return Err(Error::shape(
                "from_slice",
                format!("shape {sizes:?} needs {numel} elements, got {}", data.len()),
            ));
        }
        let storage = Storage::from_slice(data)?;
        Ok(Tensor::from_parts(Arc::new(storage), T::DTYPE, sizes.into(), contiguous_strides(sizes), 0, None))
    }

    /// A contiguous plain tensor over `storage`, which must hold exactly the
    /// elements of `sizes`.
    pub fn from_storage(storage: Storage, dtype: DType, sizes: &[usize]) -> Result<Tensor> {
        let numel = checked_numel("from_storage", sizes)?;
        if dtype.is_quantized() || storage.storage_type() != dtype.storage_type() || storage.len() != numel {
            return Err(Error::shape(
                "from_storage",
                format!(
                    "a storage of {} {:?} elements cannot hold a {dtype} tensor of shape {sizes:?}",
                    storage.len(),
                    storage.storage_type()
                ),
            ));
        }
        Ok(Tensor::from_parts(Arc::new(storage), dtype, sizes.into(), contiguous_strides(sizes), 0, None))
    }

    /// A 0-d float32 tensor.
    pub fn scalar(value: f32) -> Result<Tensor> {
        Tensor::from_slice(&[value], &[])
    }

    /// A zero-filled plain tensor.
    pub fn zeros(sizes: &[usize], dtype: DType) -> Result<Tensor> {
        if dtype.is_quantized() {
            return Err(Error::WrongDType {
                op: "zeros".into(),
                expected: "a plain dtype (use empty_quantized for quantized tensors)".into(),
                got: dtype,
            });
        }
        let numel = checked_numel("zeros", sizes)?;
        let storage = Storage::zeros(dtype.storage_type(), numel)?;
        Ok(Tensor::from_parts(Arc::new(storage), dtype, sizes.into(), contiguous_strides(sizes), 0, None))
    }

    /// A quantized tensor of `sizes` whose every integer is the zero point
    /// (so it dequantizes to zeros), sharing `quantizer`.
    pub fn empty_quantized(sizes: &[usize], quantizer: &Arc<Quantizer>) -> Result<Tensor> {
        let op = "empty_quantized";
        let dtype = quantizer.dtype();
        Tensor::check_supported(op, dtype)?;
        quantizer.check_fits(op, sizes)?;
        let numel = checked_numel(op, sizes)?;
        let storage = Storage::zeros(dtype.storage_type(), numel)?;
        let t = Tensor::from_parts(
            Arc::new(storage),
            dtype,
            sizes.into(),
            contiguous_strides(sizes),
            0,
            Some(quantizer.clone()),
        );
        if quantizer.channel_qparams(0).1 != 0 || quantizer.axis().is_some() {
            t.fill_(0.0)?;
        }
        Ok(t)
    }

    /// A contiguous quantized tensor of `sizes` over `storage`, which must
    /// hold exactly its elements in the quantizer's storage type. Kernels
    /// use it to wrap an output they filled themselves.
    pub fn quantized_from_storage(storage: Storage, sizes: &[usize], quantizer: &Arc<Quantizer>) -> Result<Tensor> {
        Tensor::quantized_over(storage, sizes, contiguous_strides(sizes), quantizer, "quantized_from_storage")
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
        Ok(Tensor::from_parts(Arc::new(storage), dtype, sizes.into(), strides, 0, Some(quantizer.clone())))
    }

    /// Reinterprets an integer tensor's values as a quantized tensor of
    /// `quantizer` (the data is copied). `uint8` goes with `quint8`, `int8`
    /// with `qint8`, `int16` with `qint16` and `int32` with `qint32`.
    pub fn from_int_repr(ints: &Tensor, quantizer: &Arc<Quantizer>) -> Result<Tensor> {
        let op = "from_int_repr";
        let want = quantizer.dtype().underlying_int();
        if ints.dtype().quantized_counterpart() != Some(quantizer.dtype()) || want != Some(ints.dtype()) {
            return Err(Error::WrongDType {
                op: op.into(),
                expected: match want {
                    Some(w) => format!("{w} integers for {}", quantizer.dtype()),
                    None => "an integer tensor with a quantized counterpart".into(),
                },
                got: ints.dtype(),
            });
        }
        quantizer.check_fits(op, ints.sizes())?;
        let c = ints.contiguous_copy()?;
        let t = Tensor::from_parts(
            c.0.storage.clone(),
            quantizer.dtype(),
            c.0.sizes.clone(),
            c.0.strides.clone(),
            0,
            Some(quantizer.clone()),
        );
        Ok(t)
    }

    /// A new contiguous tensor with the same values; always copies.
    pub fn contiguous_copy(&self) -> Result<Tensor> {
        let numel = self.numel();
        let storage = Storage::zeros(self.dtype().storage_type(), numel)?;
        with_element_type!(self.dtype().storage_type(), T => {
            let src = self.0.storage.read::<T>()?;
            let mut dst = storage.write::<T>()?;
            for (d, o) in dst.iter_mut().zip(self.offsets()) {
                *d = src[o];
            }
        });
        Ok(Tensor::from_parts(
            Arc::new(storage),
            self.dtype(),
            self.0.sizes.clone(),
            contiguous_strides(&self.0.sizes),
            0,
            self.quantizer(),
        ))
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
        self.0.sizes.iter().product()
    }

    /// True for quantized tensors.
    pub fn is_quantized(&self) -> bool {
        self.0.dtype.is_quantized()
    }

    /// True when the elements are laid out row-major with no gaps.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&s, &st) in self.0.sizes.iter().zip(&self.0.strides).rev() {
            if s != 1 && st != expected {
                return false;
            }
            expected *= s;
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

    /// The quantizer of a quantized tensor (`None` for plain tensors).
    pub fn quantizer(&self) -> Option<Arc<Quantizer>> {
        self.0.quantizer.read().clone()
    }

    /// `(dtype, scale, zero_point)` of a per-tensor quantized tensor, read
    /// without cloning the quantizer (the hot path of small kernels).
    pub fn per_tensor_qparams(&self) -> Option<(DType, f64, i64)> {
        let q = self.0.quantizer.read();
        let q = q.as_deref()?;
        q.per_tensor_qparams().map(|(scale, zero_point)| (q.dtype(), scale, zero_point))
    }

    /// The quantizer of a quantized tensor, or the error `op` gives for a
    /// plain one: "`op`: expected a quantized tensor, got float32".
    pub fn require_quantizer(&self, op: &str) -> Result<Arc<Quantizer>> {
        self.quantizer().ok_or_else(|| Error::WrongDType {
            op: op.into(),
            expected: "a quantized tensor".into(),
            got: self.dtype(),
        })
    }

    /// The float32 values of a quantized tensor (`ops::dequantize`): the
    /// fastest registered kernel when the built-in kernels are linked,
    /// else the same numerics computed here.
    pub fn dequantize(&self) -> Result<Tensor> {
        self.call_or("dequantize", Tensor::dequantize_here)
    }

    /// The stored integers of a quantized tensor as a plain integer tensor
    /// of the same shape (`ops::int_repr`).
    pub fn int_repr(&self) -> Result<Tensor> {
        self.call_or("int_repr", Tensor::int_repr_here)
    }

    /// Calls the unary op `op` through the dispatcher, or `here` where the
    /// op or its kernels are not registered in this binary.
    fn call_or(&self, op: &str, here: fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        match crate::dispatcher().call(op, &[crate::Value::from(self)]) {
            Ok(v) => v.into_tensor(),
            Err(Error::UnknownOp { .. } | Error::NoKernel { .. }) => here(self),
            Err(e) => Err(e),
        }
    }

    /// The definition of dequantize: `(q - zero_point) * scale` per
    /// element with each channel's qparams, in PyTorch's order
    /// ([`Quantizer::dequantize_one`]).
    pub fn dequantize_here(&self) -> Result<Tensor> {
        let quantizer = self.require_quantizer("dequantize")?;
        let ints = self.int_values()?;
        let mut out = crate::storage::try_vec(ints.len())?;
        out.extend(ints.iter().zip(self.channel_of_each()).map(|(&v, c)| quantizer.dequantize_one(v, c)));
        Tensor::from_vec(out, self.sizes())
    }

    /// The definition of int_repr: a row-major copy of the stored integers.
    pub fn int_repr_here(&self) -> Result<Tensor> {
        let op = "int_repr";
        self.require_quantizer(op)?;
        let plain =
            self.dtype().underlying_int().ok_or_else(|| Error::invalid(op, "no integer type for this dtype"))?;
        let c = self.contiguous_copy()?;
        let storage = crate::with_element_type!(plain.storage_type(), T => {
            let data = c.storage().read::<T>()?;
            Storage::from_slice::<T>(&data)?
        });
        Tensor::from_storage(storage, plain, self.sizes())
    }

    /// The quantization scheme.
    pub fn qscheme(&self) -> Result<QScheme> {
        Ok(self.require_quantizer("qscheme")?.qscheme())
    }

    /// The scale of a per-tensor quantized tensor.
    pub fn q_scale(&self) -> Result<f64> {
        match self.require_quantizer("q_scale")?.params() {
            QParams::PerTensorAffine { scale, .. } => Ok(scale),
            _ => Err(Error::invalid("q_scale", "the tensor is per-channel quantized: use q_per_channel_scales")),
        }
    }

    /// The zero point of a per-tensor quantized tensor.
    pub fn q_zero_point(&self) -> Result<i64> {
        match self.require_quantizer("q_zero_point")?.params() {
            QParams::PerTensorAffine { zero_point, .. } => Ok(zero_point),
            _ => Err(Error::invalid(
                "q_zero_point",
                "the tensor is per-channel quantized: use q_per_channel_zero_points",
            )),
        }
    }

    /// The scales of a per-channel quantized tensor, as a float64 tensor.
    pub fn q_per_channel_scales(&self) -> Result<Tensor> {
        match self.require_quantizer("q_per_channel_scales")?.params() {
            QParams::PerChannelAffine { scales, .. } => Tensor::from_slice(scales, &[scales.len()]),
            _ => Err(Error::invalid("q_per_channel_scales", "the tensor is per-tensor quantized: use q_scale")),
        }
    }

    /// The zero points of a per-channel quantized tensor, as an int64 tensor.
    pub fn q_per_channel_zero_points(&self) -> Result<Tensor> {
        match self.require_quantizer("q_per_channel_zero_points")?.params() {
            QParams::PerChannelAffine { zero_points, .. } => Tensor::from_slice(zero_points, &[zero_points.len()]),
            _ => {
                Err(Error::invalid("q_per_channel_zero_points", "the tensor is per-tensor quantized: use q_zero_point"))
            }
        }
    }

    /// The channel axis of a per-channel quantized tensor.
    pub fn q_per_channel_axis(&self) -> Result<i64> {
        match self.require_quantizer("q_per_channel_axis")?.params() {
            QParams::PerChannelAffine { axis, .. } => Ok(axis as i64),
            _ => Err(Error::invalid("q_per_channel_axis", "the tensor is per-tensor quantized")),
        }
    }

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
                (self.0.sizes[axis + 1..].iter().product::<usize>().max(1), self.0.sizes[axis].max(1))
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
            Ok(f(&src[start..start + self.numel()]))
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
        with_element_type!(self.dtype().storage_type(), T => {
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
                with_element_type!(self.dtype().storage_type(), T => {
                    let src = self.0.storage.read::<T>()?;
                    out.extend(
                        self.offsets().zip(self.channel_of_each()).map(|(o, c)| q.dequantize_one(src[o].to_i64(), c) as f64),
                    );
                });
                Ok(out)
            }
            None => {
                let mut out = crate::storage::try_vec::<f64>(self.numel())?;
                with_element_type!(self.dtype().storage_type(), T => {
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

    /// A tensor that views the same elements with another quantizer of the
    /// same dtype (used to share one `Arc<Quantizer>` between tensors).
    pub fn with_quantizer(&self, quantizer: Arc<Quantizer>) -> Result<Tensor> {
        if quantizer.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "with_quantizer".into(),
                lhs: self.dtype(),
                rhs: quantizer.dtype(),
            });
        }
        quantizer.check_fits("with_quantizer", self.sizes())?;
        Ok(Tensor::from_parts(
            self.0.storage.clone(),
            self.dtype(),
            self.0.sizes.clone(),
            self.0.strides.clone(),
            self.0.offset,
            Some(quantizer),
        ))
    }

    /// Data derived from this tensor by `build` (a packed weight, say),
    /// computed once per type `T` and reused until the tensor's values or
    /// quantizer change. Results never depend on whether the cache was hit.
    pub fn cached_derived<T: Any + Send + Sync>(&self, build: impl FnOnce(&Tensor) -> Result<T>) -> Result<Arc<T>> {
        let version = self.0.storage.version();
        let quantizer = self.quantizer().map(|q| Arc::as_ptr(&q) as usize);
        let type_id = std::any::TypeId::of::<T>();
        if let Some(d) = self.0.derived.lock().iter().find(|d| d.type_id == type_id) {
            if d.version == version && d.quantizer == quantizer {
                if let Ok(v) = d.value.clone().downcast::<T>() {
                    return Ok(v);
                }
            }
        }
        let value = Arc::new(build(self)?);
        let mut cache = self.0.derived.lock();
        cache.retain(|d| d.type_id != type_id);
        cache.push(Derived { type_id, version, quantizer, value: value.clone() });
        Ok(value)
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
