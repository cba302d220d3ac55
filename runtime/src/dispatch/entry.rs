//! An operator entry: its schema, its kernels, the per-(key, dtype) table
//! of the chosen ones, and the boxed call path.
//!
//! Kernel choice never depends on link order: among the kernels registered
//! for an (op, key, dtype) whose `is_supported()` holds, the highest
//! `priority` wins, and two kernels at the same priority are a registration
//! error. The order is computed once, when kernels are registered, and kept
//! in a flat table that a call indexes directly.
//!
//! A kernel that does not take an input returns [`Error::Declined`], and the
//! call moves to the next kernel in priority order, down to the reference
//! kernel, which takes every input. So the choice happens here, once, and
//! [`last_kernel`] can say which kernel ran.

use super::registration::{BoxedKernel, KernelDescriptor, Priority};
use crate::dispatch_key::DispatchKey;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::schema::{ArgType, OpSchema, Tolerance};
use crate::value::Value;
use parking_lot::RwLock;
use smallvec::SmallVec;
use std::cell::Cell;

const TABLE_LEN: usize = DispatchKey::BACKENDS.len() * DType::ALL.len();

/// The table slot of a backend key and dtype (`None` for functionality
/// keys, which have no kernels).
fn slot(key: DispatchKey, dtype: DType) -> Option<usize> {
    key.is_backend().then(|| key.index() * DType::ALL.len() + dtype.index())
}

/// One slot's supported kernels, highest priority first.
type Chain = SmallVec<[(BoxedKernel, &'static str); 4]>;

thread_local! {
    /// The kernel that last returned on this thread.
    static LAST_KERNEL: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// The name of the kernel whose call last returned on this thread (after
/// any kernel before it declined): what a fallback layer reads after its
/// `next` returns, to say which kernel ran.
pub fn last_kernel() -> Option<&'static str> {
    LAST_KERNEL.with(Cell::get)
}

/// One kernel of an operator, as shown by [`OperatorEntry::kernels`].
#[derive(Debug, Clone)]
pub struct KernelInfo {
    /// The kernel's name.
    pub name: &'static str,
    /// Its dispatch key.
    pub key: DispatchKey,
    /// Its dtype.
    pub dtype: DType,
    /// Its priority.
    pub priority: Priority,
    /// Whether this CPU supports it.
    pub supported: bool,
    /// Whether the dispatcher tries it first for its (key, dtype).
    pub chosen: bool,
    /// Where it was registered (`file:line`).
    pub location: &'static str,
}

/// Where a call's (key, dtype) comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum DispatchFrom {
    /// The first tensor argument (ops that take a tensor first).
    Tensors,
    /// The `ScalarType` argument at this index (factory ops such as
    /// `_empty_affine_quantized`, which take no input tensor first).
    ScalarType(usize),
}

/// An operator: its schema and its kernels.
pub struct OperatorEntry {
    pub(super) schema: OpSchema,
    pub(super) tolerance: Tolerance,
    pub(super) dispatch_from: DispatchFrom,
    pub(super) doc: String,
    pub(super) source: String,
    pub(super) kernels: RwLock<Vec<KernelDescriptor>>,
    pub(super) table: RwLock<Vec<Chain>>,
}

impl OperatorEntry {
    pub(super) fn new(schema: OpSchema, tolerance: Tolerance, doc: &str, source: &str) -> Self {
        let tensor_first = schema
            .args
            .first()
            .is_some_and(|a| matches!(a.ty, ArgType::Tensor | ArgType::OptionalTensor | ArgType::TensorList));
        let scalar_type =
            schema.args.iter().position(|a| matches!(a.ty, ArgType::ScalarType | ArgType::OptionalScalarType));
        let dispatch_from = match scalar_type {
            Some(i) if !tensor_first => DispatchFrom::ScalarType(i),
            _ => DispatchFrom::Tensors,
        };
        OperatorEntry {
            schema,
            tolerance,
            dispatch_from,
            doc: doc.to_string(),
            source: source.to_string(),
            kernels: RwLock::new(Vec::new()),
            table: RwLock::new(vec![Chain::new(); TABLE_LEN]),
        }
    }

    /// The operator's schema.
    pub fn schema(&self) -> &OpSchema {
        &self.schema
    }

    /// How closely two kernels of this op must agree.
    pub fn tolerance(&self) -> Tolerance {
        self.tolerance
    }

    /// Every registered kernel's full descriptor, in priority order
    /// (highest first) within each (key, dtype).
    pub fn descriptors(&self) -> Vec<KernelDescriptor> {
        let mut v = self.kernels.read().clone();
        v.sort_by_key(|k| (k.key, k.dtype, std::cmp::Reverse(k.priority)));
        v
    }

    /// The operator's documentation.
    pub fn doc(&self) -> &str {
        &self.doc
    }

    /// Where the operator was declared.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every kernel, grouped by (key, dtype) and in priority order within a group.
    pub fn kernels(&self) -> Vec<KernelInfo> {
        let table = self.table.read();
        let mut out: Vec<KernelInfo> = self
            .kernels
            .read()
            .iter()
            .map(|k| KernelInfo {
                name: k.name,
                key: k.key,
                dtype: k.dtype,
                priority: k.priority,
                supported: (k.is_supported)(),
                chosen: slot(k.key, k.dtype).and_then(|i| table[i].first()).is_some_and(|&(_, n)| n == k.name),
                location: k.location,
            })
            .collect();
        out.sort_by_key(|k| (k.key, k.dtype, std::cmp::Reverse(k.priority)));
        out
    }

    /// The name of the kernel tried first for (key, dtype), if any.
    pub fn chosen_kernel(&self, key: DispatchKey, dtype: DType) -> Option<&'static str> {
        slot(key, dtype).and_then(|i| self.table.read()[i].first().map(|&(_, n)| n))
    }

    /// The supported kernels of (key, dtype) in the order a call tries
    /// them: each one that declines hands the input to the next.
    pub fn kernel_order(&self, key: DispatchKey, dtype: DType) -> Vec<&'static str> {
        slot(key, dtype).map(|i| self.table.read()[i].iter().map(|&(_, n)| n).collect()).unwrap_or_default()
    }

    /// The (key, dtype) pairs that have a supported kernel.
    pub fn available(&self) -> Vec<(DispatchKey, DType)> {
        let table = self.table.read();
        let mut v = Vec::new();
        for key in DispatchKey::BACKENDS {
            for dtype in DType::ALL {
                if slot(key, dtype).is_some_and(|i| !table[i].is_empty()) {
                    v.push((key, dtype));
                }
            }
        }
        v
    }

    pub(super) fn check_signature(&self, k: &KernelDescriptor) -> Result<()> {
        let reject = |message: String| {
            Err(Error::Registration { op: self.schema.name.clone(), kernel: k.name.to_string(), message })
        };
        let want: Vec<String> = self.schema.args.iter().map(|a| a.ty.to_string()).collect();
        let got: Vec<String> = k.signature.iter().map(|t| t.to_string()).collect();
        let args_ok = k.signature.len() == self.schema.args.len()
            && k.signature.iter().zip(&self.schema.args).all(|(kt, a)| kt.accepts(a.ty));
        if !args_ok {
            return reject(format!("signature ({}) does not match the schema ({})", got.join(", "), want.join(", ")));
        }
        if !ArgType::of_returns(&self.schema.returns).is_some_and(|want| k.returns.accepts(want)) {
            return reject(format!("returns {} but the schema returns {:?}", k.returns, self.schema.returns));
        }
        Ok(())
    }

    pub(super) fn add_kernel(&self, k: KernelDescriptor) -> Result<()> {
        let reject = |message: String| Error::Registration {
            op: self.schema.name.clone(),
            kernel: k.name.to_string(),
            message: format!("{message} (registered at {})", k.location),
        };
        if !k.key.is_backend() {
            return Err(reject(format!("{} is a functionality key; register a fallback for it instead", k.key)));
        }
        if k.key != DispatchKey::for_dtype(k.dtype) {
            return Err(reject(format!(
                "no call can reach ({}, {}): {} tensors dispatch on {}",
                k.key,
                k.dtype,
                k.dtype,
                DispatchKey::for_dtype(k.dtype)
            )));
        }
        self.check_signature(&k).map_err(|e| match e {
            Error::Registration { message, .. } => reject(message),
            other => other,
        })?;
        let mut kernels = self.kernels.write();
        if let Some(other) = kernels.iter().find(|o| o.name == k.name && (o.key, o.dtype) == (k.key, k.dtype)) {
            return Err(reject(format!(
                "another kernel of the same name is already registered for ({}, {}) (at {}); kernel names are unique per op",
                k.key, k.dtype, other.location
            )));
        }
        if let Some(other) = kernels.iter().find(|o| o.key == k.key && o.dtype == k.dtype && o.priority == k.priority) {
            return Err(Error::Registration {
                op: self.schema.name.clone(),
                kernel: k.name.to_string(),
                message: format!(
                    "kernel `{}` (at {}) is already registered for ({}, {}) at priority {}; give one of them another priority (registered at {})",
                    other.name, other.location, k.key, k.dtype, k.priority, k.location
                ),
            });
        }
        kernels.push(k);
        self.rebuild_table(&kernels);
        Ok(())
    }

    pub(super) fn rebuild_table(&self, kernels: &[KernelDescriptor]) {
        let mut supported: Vec<&KernelDescriptor> = kernels.iter().filter(|k| (k.is_supported)()).collect();
        supported.sort_by_key(|k| std::cmp::Reverse(k.priority));
        let mut table = vec![Chain::new(); TABLE_LEN];
        for k in supported {
            if let Some(i) = slot(k.key, k.dtype) {
                table[i].push((k.func, k.name));
            }
        }
        *self.table.write() = table;
    }

    /// The dispatch key and dtype of a call: from the first tensor argument,
    /// or for factory ops from their `ScalarType` argument.
    pub(super) fn dispatch_of(&self, args: &[Value]) -> (DispatchKey, DType) {
        let dtype = match self.dispatch_from {
            DispatchFrom::ScalarType(i) => match args.get(i) {
                Some(Value::ScalarType(d)) => Some(*d),
                _ => None,
            },
            DispatchFrom::Tensors => args.iter().find_map(|a| match a {
                Value::Tensor(t) => Some(t.dtype()),
                Value::TensorList(ts) => ts.first().map(|t| t.dtype()),
                _ => None,
            }),
        }
        .unwrap_or(DType::Float32);
        (DispatchKey::for_dtype(dtype), dtype)
    }

    /// An op that dispatches on its tensors but got only empty tensor lists
    /// (`cat(&[])`) has nothing to dispatch on: that, not a missing kernel,
    /// is the error.
    pub(super) fn no_empty_lists(&self, args: &[Value]) -> Result<()> {
        let has_tensor = args.iter().any(|a| match a {
            Value::Tensor(_) => true,
            Value::TensorList(ts) => !ts.is_empty(),
            _ => false,
        });
        let empty_list =
            self.schema.args.iter().zip(args).find(|(_, v)| matches!(v, Value::TensorList(ts) if ts.is_empty()));
        match empty_list {
            Some((a, _)) if !has_tensor && matches!(self.dispatch_from, DispatchFrom::Tensors) => Err(Error::invalid(
                self.schema.name.clone(),
                format!("`{}` is an empty list; at least one tensor is needed", a.name),
            )),
            _ => Ok(()),
        }
    }

    pub(super) fn check_args(&self, args: &[Value]) -> Result<()> {
        if args.len() != self.schema.args.len() {
            return Err(Error::ArgCount {
                op: self.schema.name.clone(),
                schema: self.schema.to_string(),
                expected: self.schema.args.len(),
                got: args.len(),
            });
        }
        for (i, (v, a)) in args.iter().zip(&self.schema.args).enumerate() {
            if !v.matches(a.ty) {
                return Err(Error::ArgType {
                    op: self.schema.name.clone(),
                    index: i,
                    name: a.name.clone(),
                    expected: a.ty.to_string(),
                    got: v.type_name(),
                });
            }
        }
        Ok(())
    }

    /// Calls the kernels of the call's (key, dtype) in priority order until
    /// one takes the input, skipping the fallback layers.
    pub fn call_kernel(&self, args: &[Value]) -> Result<Value> {
        self.check_args(args)?;
        let (key, dtype) = self.dispatch_of(args);
        let Some(i) = slot(key, dtype) else { return Err(self.no_kernel(args, key, dtype)) };
        let mut declined = None;
        for rank in 0.. {
            // The lock is not held while the kernel runs: kernels call ops.
            let Some((f, name)) = self.table.read()[i].get(rank).copied() else { break };
            match f(args) {
                Err(e @ Error::Declined { .. }) => declined = Some(e),
                result => {
                    LAST_KERNEL.with(|k| k.set(Some(name)));
                    return result;
                }
            }
        }
        Err(declined.unwrap_or_else(|| self.no_kernel(args, key, dtype)))
    }

    /// The error of a call no kernel is registered for.
    fn no_kernel(&self, args: &[Value], key: DispatchKey, dtype: DType) -> Error {
        self.no_empty_lists(args).err().unwrap_or_else(|| Error::NoKernel {
            op: self.schema.name.clone(),
            key,
            dtype,
            available: self.available(),
        })
    }
}
