//! The values an unpickling makes: Python data, the allow-listed globals
//! a pickle may name, and the storages, tensors and TorchScript objects the
//! allowed callables build. [`super::pickle`] makes them under the
//! allow-list of [`super::rebuild`].

use crate::{DType, Tensor};
use std::cell::RefCell;
use std::rc::Rc;

/// A pickled value.
#[derive(Debug, Clone)]
pub(crate) enum PValue {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int that fits i64.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(Rc<str>),
    /// A tuple.
    Tuple(Rc<Vec<PValue>>),
    /// A list (mutable while unpickling).
    List(Rc<RefCell<Vec<PValue>>>),
    /// A dict, in insertion order (mutable while unpickling).
    Dict(Rc<RefCell<Vec<(PValue, PValue)>>>),
    /// An allow-listed global: a constant or a callable (see `rebuild`).
    Global(Global),
    /// Data the allow-listed callables made: storages and tensors.
    Object(Rc<Object>),
}

/// An allow-listed global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`.
    RebuildTensor,
    /// `torch._utils._rebuild_qtensor`.
    RebuildQTensor,
    /// `torch._utils._rebuild_parameter`.
    RebuildParameter,
    /// A storage type (`torch.FloatStorage`, `torch.QInt8Storage`, ...):
    /// the dtype of its elements as a plain tensor, and as a quantized one.
    StorageType(DType, Option<DType>),
    /// `torch.per_tensor_affine`.
    PerTensorAffine,
    /// `torch.per_channel_affine`.
    PerChannelAffine,
    /// A dtype constant (`torch.qint8`, `torch.float32`, ...).
    DType(DType),
    /// TorchScript only: `torch.jit._pickle.build_tensorlist`,
    /// `build_intlist` or `build_doublelist`, which return their list.
    BuildList,
    /// TorchScript only: `torch.jit._pickle.restore_type_tag`, which
    /// returns its value (the tag is a static type).
    RestoreTypeTag,
    /// TorchScript only: a torchbind class whose objects are packed weights.
    ScriptClass(qtensor_runtime::ScriptClass),
    /// TorchScript only: one of the model's own `__torch__.` classes, which
    /// loads as an inert object (a frozen module's root has no state).
    ModelClass,
}

/// What the allowed callables and persistent ids make.
#[derive(Debug)]
pub(crate) enum Object {
    /// A storage: its raw little-endian bytes, element count and types.
    Storage {
        /// The bytes, `numel * element size`.
        bytes: Rc<Vec<u8>>,
        /// Elements.
        numel: usize,
        /// The plain dtype of its elements.
        plain: DType,
        /// The quantized dtype, for quantized storages.
        quantized: Option<DType>,
    },
    /// A rebuilt tensor.
    Tensor(Tensor),
    /// An object of a TorchScript class (`NEWOBJ`), and the state `BUILD`
    /// gave it.
    Instance {
        /// Its class: [`Global::ScriptClass`] or [`Global::ModelClass`].
        class: Global,
        /// Its state, once built.
        state: RefCell<Option<PValue>>,
    },
}
