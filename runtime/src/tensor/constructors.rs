//! Building tensors: from values, storages, integers and quantizers.

use super::*;

impl Tensor {
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
        crate::with_element_type!(self.dtype().storage_type(), T => {
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
}
