//! The allow-list of pickle globals, and the tensors the allowed callables
//! rebuild (`torch._utils._rebuild_tensor_v2`, `_rebuild_qtensor`,
//! `_rebuild_parameter`). Any other global is an error: loading never runs
//! code the checkpoint names, as `torch.load(weights_only=True)`.

use super::pickle::Globals;
use super::pvalue::PValue;
pub(crate) use super::pvalue::{Global, Object};
use crate::{DType, Error, Quantizer, Result, Storage, Tensor};
use std::rc::Rc;

/// Which globals a pickle may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `torch.save` state dicts: tensors, qparams and dtypes only.
    StateDict,
    /// TorchScript archives: also the list builders, type tags, the
    /// packed-weight classes and the model's own (inert) classes.
    TorchScript,
}

impl Globals for Dialect {
    fn global(&self, module: &str, name: &str) -> Result<Global> {
        global(module, name, *self)
    }

    fn call(&self, g: Global, args: &[PValue]) -> Result<PValue> {
        call(g, args)
    }
}

/// The global `module.name`, if allowed in `dialect`.
fn global(module: &str, name: &str, dialect: Dialect) -> Result<Global> {
    use DType::*;
    if dialect == Dialect::TorchScript {
        match (module, name) {
            ("torch.jit._pickle", "build_tensorlist" | "build_intlist" | "build_doublelist" | "build_boollist") => {
                return Ok(Global::BuildList)
            }
            ("torch.jit._pickle", "restore_type_tag") => return Ok(Global::RestoreTypeTag),
            _ => {}
        }
        let qualified = format!("{module}.{name}");
        if let Some(class) = qtensor_runtime::ScriptClass::parse(&qualified) {
            return Ok(Global::ScriptClass(class));
        }
        if module.starts_with("__torch__") && !module.starts_with("__torch__.torch.classes") {
            return Ok(Global::ModelClass);
        }
    }
    let g = match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_qtensor") => Global::RebuildQTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch", "FloatStorage") => Global::StorageType(Float32, None),
        ("torch", "DoubleStorage") => Global::StorageType(Float64, None),
        ("torch", "LongStorage") => Global::StorageType(Int64, None),
        ("torch", "IntStorage") => Global::StorageType(Int32, None),
        ("torch", "ShortStorage") => Global::StorageType(Int16, None),
        ("torch", "CharStorage") => Global::StorageType(Int8, None),
        ("torch", "ByteStorage") | ("torch", "BoolStorage") => Global::StorageType(UInt8, None),
        ("torch", "QInt8Storage") => Global::StorageType(Int8, Some(QInt8)),
        ("torch", "QUInt8Storage") => Global::StorageType(UInt8, Some(QUInt8)),
        ("torch", "QInt32Storage") => Global::StorageType(Int32, Some(QInt32)),
        ("torch", "per_tensor_affine") => Global::PerTensorAffine,
        ("torch", "per_channel_affine") => Global::PerChannelAffine,
        ("torch", "qint8") => Global::DType(QInt8),
        ("torch", "quint8") => Global::DType(QUInt8),
        ("torch", "qint32") => Global::DType(QInt32),
        ("torch", "float32") => Global::DType(Float32),
        ("torch", "float64") => Global::DType(Float64),
        ("torch", "int64") => Global::DType(Int64),
        ("torch", "int32") => Global::DType(Int32),
        ("torch", "int8") => Global::DType(Int8),
        ("torch", "uint8") => Global::DType(UInt8),
        _ => {
            return Err(Error::Serialization(format!(
                "data.pkl: the global `{module}.{name}` is not allowed (qtensor loads tensors, qparams and dtypes only, as torch.load(weights_only=True))"
            )))
        }
    };
    Ok(g)
}

fn err(msg: impl Into<String>) -> Error {
    Error::Serialization(format!("data.pkl: {}", msg.into()))
}

/// Calls an allowed callable.
fn call(g: Global, args: &[PValue]) -> Result<PValue> {
    match g {
        Global::OrderedDict if args.is_empty() => Ok(PValue::Dict(Default::default())),
        Global::RebuildParameter => match args.first() {
            Some(t @ PValue::Object(o)) if matches!(**o, Object::Tensor(_)) => Ok(t.clone()),
            _ => Err(err("_rebuild_parameter takes a tensor")),
        },
        Global::RebuildTensor => {
            let [storage, offset, size, stride, ..] = args else {
                return Err(err("_rebuild_tensor_v2 takes (storage, offset, size, stride, ...)"));
            };
            let (bytes, numel, plain, _) = storage_of(storage)?;
            let t = gather(bytes, numel, plain, int(offset)?, &ints(size)?, &ints(stride)?)?;
            Ok(PValue::Object(Rc::new(Object::Tensor(t))))
        }
        Global::RebuildQTensor => {
            let [storage, offset, size, stride, qparams, ..] = args else {
                return Err(err("_rebuild_qtensor takes (storage, offset, size, stride, qparams, ...)"));
            };
            let (bytes, numel, plain, quantized) = storage_of(storage)?;
            let dtype = quantized.ok_or_else(|| err("_rebuild_qtensor over a storage that is not quantized"))?;
            let ints = gather(bytes, numel, plain, int(offset)?, &ints(size)?, &ints(stride)?)?;
            let quantizer = quantizer_of(qparams, dtype)?;
            let t = Tensor::from_int_repr(&ints, &quantizer)?;
            Ok(PValue::Object(Rc::new(Object::Tensor(t))))
        }
        Global::BuildList => match args {
            [list @ PValue::List(_)] => Ok(list.clone()),
            _ => Err(err("build_tensorlist/intlist/doublelist takes one list")),
        },
        Global::RestoreTypeTag => match args {
            [value, PValue::Str(_)] => Ok(value.clone()),
            _ => Err(err("restore_type_tag takes (value, type)")),
        },
        other => Err(err(format!("{other:?} is not callable with {} arguments", args.len()))),
    }
}

/// The quantizer of `_rebuild_qtensor`'s qparams tuple: `(per_tensor_affine,
/// scale, zero_point)` or `(per_channel_affine, scales, zero_points, axis)`.
fn quantizer_of(qparams: &PValue, dtype: DType) -> Result<std::sync::Arc<Quantizer>> {
    let PValue::Tuple(q) = qparams else { return Err(err("qparams are not a tuple")) };
    match q.as_slice() {
        [PValue::Global(Global::PerTensorAffine), scale, zero_point] => {
            Quantizer::per_tensor(float(scale)?, int(zero_point)?, dtype)
        }
        [PValue::Global(Global::PerChannelAffine), scales, zero_points, axis] => {
            let scales = tensor(scales)?.real_values()?;
            let zero_points = tensor(zero_points)?.int_values()?;
            let axis = usize::try_from(int(axis)?).map_err(|_| err("a negative per-channel axis"))?;
            Quantizer::per_channel(scales, zero_points, axis, dtype)
        }
        _ => Err(err("qparams are neither per_tensor_affine nor per_channel_affine")),
    }
}

/// The contiguous tensor a (offset, size, stride) view of a storage holds.
/// A view never holds more elements than its storage, so memory stays
/// bounded by the archive.
fn gather(bytes: &[u8], numel: usize, dtype: DType, offset: i64, size: &[i64], stride: &[i64]) -> Result<Tensor> {
    if size.len() != stride.len() || size.len() > qtensor_runtime::serialize::MAX_RANK {
        return Err(err(format!("a tensor of size {size:?} and stride {stride:?}")));
    }
    let bad = || {
        err(format!(
            "a view (offset {offset}, size {size:?}, stride {stride:?}) outside its storage of {numel} elements"
        ))
    };
    let sizes: Vec<usize> = size.iter().map(|&s| usize::try_from(s).map_err(|_| bad())).collect::<Result<_>>()?;
    let strides: Vec<usize> = stride.iter().map(|&s| usize::try_from(s).map_err(|_| bad())).collect::<Result<_>>()?;
    let offset = usize::try_from(offset).map_err(|_| bad())?;
    let count = sizes.iter().try_fold(1usize, |a, &s| a.checked_mul(s)).ok_or_else(bad)?;
    if count > numel.max(1) {
        return Err(bad());
    }
    if count > 0 {
        let last = sizes.iter().zip(&strides).try_fold(offset, |a, (&s, &st)| a.checked_add((s - 1).checked_mul(st)?));
        if last.is_none_or(|l| l >= numel) {
            return Err(bad());
        }
    }
    let es = dtype.storage_type().size_of();
    let row_major = qtensor_runtime::tensor::layout::contiguous_strides(&sizes);
    let contiguous =
        count > 0 && sizes.iter().zip(&strides).zip(row_major.iter()).all(|((&n, &s), &c)| n <= 1 || s == c);
    if contiguous {
        // The usual case: one copy of the view's bytes.
        let storage = Storage::from_bytes(dtype.storage_type(), count, &bytes[offset * es..(offset + count) * es])?;
        return Tensor::from_storage(storage, dtype, &sizes);
    }
    let mut out = qtensor_runtime::storage::try_vec::<u8>(count * es)?;
    let mut index = vec![0usize; sizes.len()];
    for _ in 0..count {
        let at = offset + index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>();
        out.extend_from_slice(&bytes[at * es..(at + 1) * es]);
        // The next index, last dimension fastest.
        for d in (0..sizes.len()).rev() {
            index[d] += 1;
            if index[d] < sizes[d] {
                break;
            }
            index[d] = 0;
        }
    }
    let storage = Storage::from_bytes(dtype.storage_type(), count, &out)?;
    Tensor::from_storage(storage, dtype, &sizes)
}

fn storage_of(v: &PValue) -> Result<(&[u8], usize, DType, Option<DType>)> {
    match v {
        PValue::Object(o) => match &**o {
            Object::Storage { bytes, numel, plain, quantized } => Ok((bytes.as_slice(), *numel, *plain, *quantized)),
            _ => Err(err("a storage was expected")),
        },
        _ => Err(err("a storage was expected")),
    }
}

/// The tensor a value holds.
pub(crate) fn tensor(v: &PValue) -> Result<&Tensor> {
    match v {
        PValue::Object(o) => match &**o {
            Object::Tensor(t) => Ok(t),
            _ => Err(err("a tensor was expected")),
        },
        _ => Err(err("a tensor was expected")),
    }
}

pub(crate) fn int(v: &PValue) -> Result<i64> {
    match v {
        PValue::Int(i) => Ok(*i),
        _ => Err(err(format!("an int was expected, found {v:?}"))),
    }
}

pub(crate) fn float(v: &PValue) -> Result<f64> {
    match v {
        PValue::Float(f) => Ok(*f),
        PValue::Int(i) => Ok(*i as f64),
        _ => Err(err("a float was expected")),
    }
}

fn ints(v: &PValue) -> Result<Vec<i64>> {
    match v {
        PValue::Tuple(t) => t.iter().map(int).collect(),
        _ => Err(err("a tuple of ints was expected")),
    }
}
