//! Dispatch: the process-wide [`Dispatcher`] (operators by name), each
//! operator's [`OperatorEntry`] and kernel table ([`entry`]), the kernel
//! registration descriptors and macros ([`registration`]), the fallback [`layers`], and
//! name suggestions for unknown operators ([`suggest`]).

mod call;
pub mod entry;
pub mod layers;
pub mod op_name;
pub mod registration;
pub mod suggest;

pub use entry::{last_kernel, KernelInfo, OperatorEntry};

use crate::error::{Error, Result};
use crate::schema::{parse_schema, Tolerance};
use crate::value::Value;
use parking_lot::{Mutex, RwLock};
use registration::{KernelDescriptor, OpDeclaration};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use suggest::similar_names;

/// A handle to an operator, looked up once: the fast way to call it.
#[derive(Clone)]
pub struct OpHandle(Arc<OperatorEntry>);

impl OpHandle {
    /// Calls the operator with boxed arguments.
    #[inline]
    pub fn call(&self, args: &[Value]) -> Result<Value> {
        self.0.call(args)
    }

    /// The operator behind the handle.
    pub fn entry(&self) -> &OperatorEntry {
        &self.0
    }
}

/// A multiply-rotate hash over 8-byte words (as rustc's FxHash): op names
/// are short, trusted strings, and the by-name call path hashes one per
/// call, so a byte-at-a-time hash would cost a dependent multiply per byte.
#[derive(Default)]
struct WordHash(u64);

impl WordHash {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for WordHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
}

type OpMap = HashMap<String, Arc<OperatorEntry>, std::hash::BuildHasherDefault<WordHash>>;

/// The registry of operators and kernels, and the entry point for calls.
pub struct Dispatcher {
    ops: RwLock<OpMap>,
    errors: Mutex<Vec<Error>>,
}

static DISPATCHER: OnceLock<Dispatcher> = OnceLock::new();

/// The process-wide dispatcher, built on first use from every
/// [`OpDeclaration`] and [`KernelDescriptor`] submitted through `inventory`.
pub fn dispatcher() -> &'static Dispatcher {
    DISPATCHER.get_or_init(Dispatcher::from_inventory)
}

impl Dispatcher {
    /// An empty dispatcher (tests and embedders; most code uses [`dispatcher()`]).
    pub fn new() -> Dispatcher {
        Dispatcher { ops: RwLock::new(OpMap::default()), errors: Mutex::new(Vec::new()) }
    }

    fn from_inventory() -> Dispatcher {
        let d = Dispatcher::new();
        let mut decls: Vec<&OpDeclaration> = inventory::iter::<OpDeclaration>.into_iter().collect();
        decls.sort_by_key(|o| o.schema);
        for decl in decls {
            if let Err(e) = d.declare_op_with(decl.schema, decl.doc, decl.source, decl.tolerance) {
                d.errors.lock().push(e);
            }
        }
        // Sorted so that which of two clashing kernels is reported first
        // does not depend on link order either.
        let mut kernels: Vec<&KernelDescriptor> = inventory::iter::<KernelDescriptor>.into_iter().collect();
        kernels.sort_by_key(|k| (k.op, k.key, k.dtype, std::cmp::Reverse(k.priority), k.name));
        for k in kernels {
            if let Err(e) = d.register_kernel(*k) {
                d.errors.lock().push(e);
            }
        }
        // A rejected plugin kernel would otherwise vanish without a word:
        // say so once, on stderr, where and why.
        for e in d.errors.lock().iter() {
            eprintln!("qtensor: rejected at startup: {e}");
        }
        d
    }

    /// Declares an operator from its schema string (like `TORCH_LIBRARY`'s `def`).
    pub fn declare_op(&self, schema: &str) -> Result<OpHandle> {
        self.declare_op_with(schema, "", "runtime", "exact")
    }

    /// Declares an operator with documentation, a source location and the
    /// tolerance its kernels must agree within (`exact`, `steps N`, `abs A rel R`).
    pub fn declare_op_with(&self, schema: &str, doc: &str, source: &str, tolerance: &str) -> Result<OpHandle> {
        let parsed = parse_schema(schema).map_err(|message| Error::Schema { line: None, message })?;
        let tolerance = Tolerance::parse(tolerance).map_err(|message| Error::Schema { line: None, message })?;
        let mut ops = self.ops.write();
        if let Some(existing) = ops.get(&parsed.name) {
            // The same declaration twice (two crates declaring a shared op)
            // is the same op; a different one is a conflict.
            if existing.schema == parsed && existing.tolerance == tolerance {
                return Ok(OpHandle(existing.clone()));
            }
            return Err(Error::Schema {
                line: None,
                message: format!(
                    "operator `{}` is already declared (by {}) as `{}`",
                    parsed.name, existing.source, existing.schema
                ),
            });
        }
        let entry = Arc::new(OperatorEntry::new(parsed.clone(), tolerance, doc, source));
        ops.insert(parsed.name, entry.clone());
        Ok(OpHandle(entry))
    }

    /// Registers a kernel at run time (like `TORCH_LIBRARY_IMPL`). Fails if
    /// the op is unknown, the signature disagrees with the schema, or another
    /// kernel holds the same (key, dtype, priority).
    pub fn register_kernel(&self, kernel: KernelDescriptor) -> Result<()> {
        let entry = self.ops.read().get(kernel.op).cloned();
        match entry {
            Some(e) => e.add_kernel(kernel),
            None => Err(Error::Registration {
                op: kernel.op.to_string(),
                kernel: kernel.name.to_string(),
                message: "no such operator is declared".into(),
            }),
        }
    }

    /// Recomputes every operator's kernel choice from its kernels'
    /// `is_supported` predicates. Call after anything those predicates read
    /// has changed, such as the ISA cap ([`crate::isa::set_cap`]).
    pub fn reresolve(&self) {
        let entries: Vec<Arc<OperatorEntry>> = self.ops.read().values().cloned().collect();
        for e in entries {
            let kernels = e.kernels.read().clone();
            e.rebuild_table(&kernels);
        }
    }

    /// Registrations from `inventory` that were rejected. Empty in a healthy
    /// build; the CLI and the test suite check it at startup.
    pub fn registration_errors(&self) -> Vec<Error> {
        self.errors.lock().clone()
    }

    /// Fails with every rejected registration, if any
    /// ([`Error::RejectedRegistrations`]).
    pub fn check(&self) -> Result<()> {
        let errors = self.errors.lock();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::RejectedRegistrations { errors: errors.clone() })
        }
    }

    /// Looks an operator up once; call through the handle afterwards.
    pub fn op(&self, name: &str) -> Result<OpHandle> {
        if let Some(e) = self.ops.read().get(name) {
            return Ok(OpHandle(e.clone()));
        }
        Err(Error::UnknownOp { name: name.to_string(), similar: similar_names(name, self.ops.read().keys()) })
    }

    /// Calls an operator by name with boxed arguments.
    pub fn call(&self, name: &str, args: &[Value]) -> Result<Value> {
        let entry = self.ops.read().get(name).cloned();
        match entry {
            Some(e) => e.call(args),
            None => {
                Err(Error::UnknownOp { name: name.to_string(), similar: similar_names(name, self.ops.read().keys()) })
            }
        }
    }

    /// Every overload of the operator `name` (`quantized::conv2d` finds
    /// `quantized::conv2d` and `quantized::conv2d.new`), the plain one
    /// first, then by overload name: the candidates that c10 resolves a
    /// call written without its overload against.
    pub fn overloads(&self, name: &str) -> Vec<OpHandle> {
        let mut v: Vec<OpHandle> =
            self.ops.read().values().filter(|e| e.schema.op_name() == name).cloned().map(OpHandle).collect();
        v.sort_by(|a, b| a.0.schema.overload().cmp(b.0.schema.overload()));
        v
    }

    /// Every operator, sorted by name.
    pub fn ops(&self) -> Vec<OpHandle> {
        let mut v: Vec<OpHandle> = self.ops.read().values().cloned().map(OpHandle).collect();
        v.sort_by(|a, b| a.0.schema.name.cmp(&b.0.schema.name));
        v
    }
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher::new()
    }
}
