//! Reading PyTorch checkpoints: `torch.save` files, a zip archive holding
//! `data.pkl` (the pickled object) and `data/N` (one raw little-endian
//! storage per key).
//!
//! [`load`] returns a state dict's named entries: quantized tensors (per
//! tensor and per channel), float and integer tensors, 0-d scalars, dtypes,
//! and tuples such as a quantized Linear's `(weight, bias)` packed params.
//!
//! It is as safe as `torch.load(weights_only=True)`:
//!
//! - the pickle runs on a machine that can only build data, with an
//!   allow-list of globals (tensors, storages, qschemes, dtypes,
//!   `OrderedDict`); any other global is an error, and nothing is executed;
//! - every storage's size is checked against its archive entry, and every
//!   tensor view against its storage;
//! - memory stays bounded by the archive: a view never holds more elements
//!   than its storage, and values are shared, never copied, when the pickle
//!   refers to them again;
//! - corrupt or hostile files give errors, never panics.

mod nesting;
pub(crate) mod pickle;
mod pvalue;
pub(crate) mod rebuild;

use crate::{DType, Error, Result, Tensor};
use pickle::{PValue, Persistent};
use rebuild::{Global, Object};
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;
use std::rc::Rc;

/// One entry of a checkpoint.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TorchValue {
    /// A tensor: float, integer or quantized.
    Tensor(Tensor),
    /// A tuple or list (a quantized Linear's `(weight, bias)`).
    Tuple(Vec<TorchValue>),
    /// A dtype constant (`_packed_params.dtype`).
    DType(DType),
    /// An int.
    Int(i64),
    /// A float.
    Float(f64),
    /// A bool.
    Bool(bool),
    /// A string.
    Str(String),
    /// `None` (a Linear without bias).
    None,
}

impl TorchValue {
    /// The tensor, if this is one.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            TorchValue::Tensor(t) => Some(t),
            _ => None,
        }
    }
}

/// A checkpoint's named entries, in the file's order.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    entries: Vec<(String, TorchValue)>,
}

impl StateDict {
    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&TorchValue> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Every entry, in the file's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TorchValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The tensors under the names qtensor's modules load
    /// (`Module::load_state_dict`): a quantized Linear's
    /// `X._packed_params._packed_params` tuple becomes `X.weight` and
    /// `X.bias` (absent when `None`), its `X._packed_params.dtype` is
    /// dropped, and every other tensor keeps its name. Other non-tensor
    /// entries are errors, named.
    pub fn into_tensors(self) -> Result<HashMap<String, Tensor>> {
        const PACKED: &str = "_packed_params._packed_params";
        let mut out = HashMap::new();
        for (name, value) in self.entries {
            match value {
                TorchValue::Tensor(t) => {
                    out.insert(name, t);
                }
                TorchValue::Tuple(items) if name.ends_with(PACKED) => {
                    let module = &name[..name.len() - PACKED.len()];
                    let mut items = items.into_iter();
                    match (items.next(), items.next(), items.next()) {
                        (Some(TorchValue::Tensor(w)), bias, None) => {
                            out.insert(format!("{module}weight"), w);
                            match bias {
                                Some(TorchValue::Tensor(b)) => {
                                    out.insert(format!("{module}bias"), b);
                                }
                                Some(TorchValue::None) | None => {}
                                Some(other) => return Err(err(format!("`{name}`: a bias of {other:?}"))),
                            }
                        }
                        _ => return Err(err(format!("`{name}` is not a (weight, bias) pair"))),
                    }
                }
                TorchValue::DType(_) if name.ends_with("_packed_params.dtype") => {}
                other => return Err(err(format!("`{name}` is {other:?}, not a tensor"))),
            }
        }
        Ok(out)
    }
}

/// Reads a `torch.save` checkpoint whose top-level object is a state dict
/// (a dict of names to tensors and values).
pub fn load(path: impl AsRef<Path>) -> Result<StateDict> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    read(file).map_err(|e| match e {
        Error::Serialization(m) => Error::Serialization(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// [`load`] from bytes in memory.
pub fn load_bytes(bytes: &[u8]) -> Result<StateDict> {
    read(std::io::Cursor::new(bytes))
}

fn err(msg: impl Into<String>) -> Error {
    Error::Serialization(msg.into())
}

fn read<R: Read + Seek>(reader: R) -> Result<StateDict> {
    let mut zip = crate::torch::open_zip(reader).map_err(|e| {
        err(format!("not a torch.save checkpoint (a zip archive with data.pkl): {e}; files from torch before 1.6 are not supported"))
    })?;
    // Every entry sits under one directory, the archive's name.
    let pkl = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).and_then(|n| n.ok()).map(|n| n.to_string()))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or_else(|| err("the archive has no data.pkl"))?;
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or_default().to_string();
    if let Ok(order) = entry_bytes(&mut zip, &format!("{prefix}byteorder"), 16) {
        if order != b"little" {
            return Err(err(format!("byte order {:?} is not supported", String::from_utf8_lossy(&order))));
        }
    }
    let pickle = entry_bytes(&mut zip, &pkl, usize::MAX)?;
    let mut storages = Storages { zip: &mut zip, dir: format!("{prefix}data/"), loaded: HashMap::new() };
    let top = pickle::unpickle(&pickle, &mut storages, &rebuild::Dialect::StateDict)?;
    let PValue::Dict(dict) = top else {
        return Err(err("data.pkl does not hold a state dict (a dict of names to tensors)"));
    };
    let entries = dict
        .borrow()
        .iter()
        .map(|(k, v)| match k {
            PValue::Str(s) => Ok((s.to_string(), value(v)?)),
            _ => Err(err("a state dict key is not a string")),
        })
        .collect::<Result<_>>()?;
    Ok(StateDict { entries })
}

/// Opens a zip archive that starts at the reader's first byte, as
/// `torch.save` and `torch.jit.save` write them. The zip crate's default
/// guesses whether data precedes the archive, and its guess misreads some
/// of PyTorch's zip64 archives ("Invalid Central Directory header").
pub(crate) fn open_zip<R: Read + Seek>(reader: R) -> zip::result::ZipResult<zip::ZipArchive<R>> {
    let config = zip::read::Config { archive_offset: zip::read::ArchiveOffset::Known(0) };
    zip::ZipArchive::with_config(config, reader)
}

/// A stored (uncompressed) entry's bytes, refusing more than `limit`.
pub(crate) fn entry_bytes<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, name: &str, limit: usize) -> Result<Vec<u8>> {
    let mut f = zip.by_name(name).map_err(|e| err(format!("{name}: {e}")))?;
    let size = usize::try_from(f.size()).map_err(|_| err(format!("{name}: too large")))?;
    if size > limit {
        return Err(err(format!("{name}: {size} bytes, expected at most {limit}")));
    }
    // The declared size of a stored entry is backed by the archive itself;
    // reading is still capped at it.
    let mut out = qtensor_runtime::storage::try_vec::<u8>(size)?;
    f.by_ref().take(size as u64).read_to_end(&mut out).map_err(|e| err(format!("{name}: {e}")))?;
    if out.len() != size {
        return Err(err(format!("{name}: truncated, {} of {size} bytes", out.len())));
    }
    Ok(out)
}

/// The storages of one archive folder (`data/` of a checkpoint,
/// `constants/` of a TorchScript file), each read once.
pub(crate) struct Storages<'a, R: Read + Seek> {
    /// The archive.
    pub(crate) zip: &'a mut zip::ZipArchive<R>,
    /// The folder, with the archive's prefix and a trailing `/`.
    pub(crate) dir: String,
    /// Storages read so far, by key.
    pub(crate) loaded: HashMap<String, PValue>,
}

impl<R: Read + Seek> Persistent for Storages<'_, R> {
    fn load(&mut self, pid: &PValue) -> Result<PValue> {
        let PValue::Tuple(t) = pid else { return Err(err("data.pkl: a persistent id is not a tuple")) };
        let [PValue::Str(kind), PValue::Global(Global::StorageType(plain, quantized)), PValue::Str(key), _location, PValue::Int(numel)] =
            t.as_slice()
        else {
            return Err(err("data.pkl: a persistent id is not ('storage', type, key, location, numel)"));
        };
        if &**kind != "storage" {
            return Err(err(format!("data.pkl: persistent id of kind {kind:?}")));
        }
        if let Some(v) = self.loaded.get(&**key) {
            return Ok(v.clone());
        }
        let numel = usize::try_from(*numel).map_err(|_| err(format!("storage {key}: {numel} elements")))?;
        let name = format!("{}{key}", self.dir);
        let want = numel
            .checked_mul(plain.storage_type().size_of())
            .ok_or_else(|| err(format!("storage {key}: size overflows")))?;
        let bytes = entry_bytes(self.zip, &name, want)?;
        if bytes.len() != want {
            return Err(err(format!(
                "storage {key}: {} bytes in the archive, {want} declared ({numel} elements)",
                bytes.len()
            )));
        }
        let v = PValue::Object(Rc::new(Object::Storage {
            bytes: Rc::new(bytes),
            numel,
            plain: *plain,
            quantized: *quantized,
        }));
        self.loaded.insert(key.to_string(), v.clone());
        Ok(v)
    }
}

/// The public form of an unpickled value.
fn value(v: &PValue) -> Result<TorchValue> {
    Ok(match v {
        PValue::None => TorchValue::None,
        PValue::Bool(b) => TorchValue::Bool(*b),
        PValue::Int(i) => TorchValue::Int(*i),
        PValue::Float(f) => TorchValue::Float(*f),
        PValue::Str(s) => TorchValue::Str(s.to_string()),
        PValue::Tuple(items) => TorchValue::Tuple(items.iter().map(value).collect::<Result<_>>()?),
        PValue::List(items) => TorchValue::Tuple(items.borrow().iter().map(value).collect::<Result<_>>()?),
        PValue::Global(Global::DType(d)) => TorchValue::DType(*d),
        PValue::Object(_) => TorchValue::Tensor(rebuild::tensor(v)?.clone()),
        other => return Err(err(format!("data.pkl: a state dict entry of unsupported type {other:?}"))),
    })
}
