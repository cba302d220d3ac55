//! Frozen TorchScript files, run through the registry: the way to run your
//! own quantized PyTorch model, without libtorch.
//!
//! ```python
//! m = torch.jit.freeze(torch.jit.script(quantized_model).eval())   # or torch.jit.trace(model, x)
//! torch.jit.save(m, "model.pt")
//! ```
//!
//! ```no_run
//! let model = qtensor::jit::load("model.pt")?;
//! println!("inputs {:?}, {} op calls", model.inputs(), model.op_calls().len());
//! let x = qtensor::Tensor::from_vec(vec![0.5f32; 3 * 224 * 224], &[1, 3, 224, 224])?;
//! let y = model.run(&x)?;
//! # Ok::<(), qtensor::Error>(())
//! ```
//!
//! Loading reads the archive (`code/`, `constants.pkl`, `constants/`) with
//! the same allow-listed unpickler as [`crate::torch::load`], extended with
//! TorchScript's globals; the packed-weight objects become boxed
//! [`ScriptObject`](crate::ScriptObject)s whose weights are packed for the
//! kernels once, there. Running evaluates `forward` statement by
//! statement; every op call goes through the registry, its overload chosen
//! from the argument types and its defaults filled from the schema, as
//! c10 does. What the subset does not cover, and ops qtensor lacks, are
//! errors that name the file, the line and the construct or op.

mod archive;
mod interp;
pub mod resolve;
pub mod syntax;

use crate::{Error, Result, Tensor, Value};
use interp::{CallCache, Program};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use syntax::{CodeFile, Expr, Stmt};

pub use syntax::Param;

/// A loaded frozen TorchScript module.
pub struct ScriptModule {
    file: String,
    code: CodeFile,
    /// Per top-level statement, the variables to drop after it.
    frees: Vec<Vec<String>>,
    constants: Vec<Value>,
    cache: CallCache,
}

impl std::fmt::Debug for ScriptModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptModule")
            .field("file", &self.file)
            .field("class", &self.code.class)
            .field("inputs", &self.code.params)
            .field("constants", &self.constants.len())
            .finish()
    }
}

/// Loads a frozen TorchScript file (`torch.jit.save` of a
/// `torch.jit.freeze`d scripted or traced module).
pub fn load(path: impl AsRef<Path>) -> Result<ScriptModule> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    read(std::io::BufReader::new(file)).map_err(|e| match e {
        Error::Serialization(m) => Error::Serialization(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// [`load`] from bytes in memory.
pub fn load_bytes(bytes: &[u8]) -> Result<ScriptModule> {
    read(std::io::Cursor::new(bytes))
}

fn read<R: std::io::Read + std::io::Seek>(reader: R) -> Result<ScriptModule> {
    let archive = archive::read(reader)?;
    let mut module: Option<(String, CodeFile)> = None;
    let mut named_tuples = Vec::new();
    for (name, text) in &archive.code {
        let mut parsed = syntax::parse_file(name, text)?;
        // NamedTuples are named by their qualified path in calls.
        let stem = name.trim_start_matches("code/").trim_end_matches(".py").replace('/', ".");
        for t in &mut parsed.named_tuples {
            t.name = format!("{stem}.{}", t.name);
        }
        named_tuples.append(&mut parsed.named_tuples);
        if !parsed.other_methods.is_empty() {
            return Err(Error::Script {
                file: name.clone(),
                line: 1,
                message: format!(
                    "methods {:?} besides forward: the module is not frozen; call torch.jit.freeze before torch.jit.save",
                    parsed.other_methods
                ),
            });
        }
        if parsed.has_forward {
            if let Some((first, _)) = &module {
                return Err(Error::Script {
                    file: name.clone(),
                    line: 1,
                    message: format!("a second module class (the first is in {first}): the module is not frozen; call torch.jit.freeze before torch.jit.save"),
                });
            }
            module = Some((name.clone(), parsed));
        }
    }
    let (file, mut code) =
        module.ok_or_else(|| Error::Serialization("the archive's code/ has no forward method".into()))?;
    code.named_tuples = named_tuples;
    let frees = interp::last_uses(&code.body);
    Ok(ScriptModule { file, code, frees, constants: archive.constants, cache: CallCache::default() })
}

impl ScriptModule {
    /// `forward`'s parameters after `self`: names and declared types.
    pub fn inputs(&self) -> &[Param] {
        &self.code.params
    }

    /// `forward`'s declared return type (`Tensor`, `Tuple[Tensor, Tensor]`).
    pub fn returns(&self) -> &str {
        &self.code.returns
    }

    /// The module's class name.
    pub fn class_name(&self) -> Option<&str> {
        self.code.class.as_deref()
    }

    /// The constants (`CONSTANTS.cN`): tensors, numbers and packed-weight
    /// objects.
    pub fn constants(&self) -> &[Value] {
        &self.constants
    }

    /// Every operator `forward` calls, as printed (`quantized::conv2d`,
    /// `max_pool2d`), with how many call sites name it, sorted by name.
    pub fn op_calls(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        fn walk_expr(e: &Expr, counts: &mut BTreeMap<String, usize>) {
            match e {
                Expr::Call { callee, args, kwargs, .. } => {
                    if let Some(name) = resolve::op_name(callee) {
                        *counts.entry(name).or_default() += 1;
                    } else if callee.len() == 1 && callee[0] == "int" {
                        *counts.entry("Int".into()).or_default() += 1;
                    }
                    args.iter().for_each(|a| walk_expr(a, counts));
                    kwargs.iter().for_each(|(_, a)| walk_expr(a, counts));
                }
                Expr::List(items) | Expr::Tuple(items) => items.iter().for_each(|a| walk_expr(a, counts)),
                Expr::Index(inner, _) => walk_expr(inner, counts),
                _ => {}
            }
        }
        fn walk(body: &[Stmt], counts: &mut BTreeMap<String, usize>) {
            for s in body {
                match s {
                    Stmt::Assign { value: e, .. } | Stmt::Expr(e, _) | Stmt::Return(e, _) => walk_expr(e, counts),
                    Stmt::If { cond, then, otherwise, .. } => {
                        walk_expr(cond, counts);
                        walk(then, counts);
                        walk(otherwise, counts);
                    }
                    Stmt::For { count, body, .. } => {
                        walk_expr(count, counts);
                        walk(body, counts);
                    }
                }
            }
        }
        walk(&self.code.body, &mut counts);
        counts.into_iter().collect()
    }

    /// Runs `forward` on boxed inputs, one per [`inputs`](Self::inputs):
    /// the result is a tensor, or a tuple (tuples and NamedTuples) of
    /// values.
    pub fn forward(&self, inputs: &[Value]) -> Result<Value> {
        self.execute(inputs, true).map(|(v, _)| v)
    }

    /// [`forward`](Self::forward), also returning every variable the code
    /// assigned, by name as the file writes it: the intermediate values, to
    /// compare a model with PyTorch layer by layer.
    pub fn forward_traced(&self, inputs: &[Value]) -> Result<(Value, HashMap<String, Value>)> {
        self.execute(inputs, false)
    }

    /// Runs `forward`; `free` drops each variable after its last use.
    fn execute(&self, inputs: &[Value], free: bool) -> Result<(Value, HashMap<String, Value>)> {
        let params = &self.code.params;
        if inputs.len() != params.len() {
            let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::invalid(
                "ScriptModule::forward",
                format!("forward takes {} input(s) ({}), got {}", params.len(), names.join(", "), inputs.len()),
            ));
        }
        let mut vars: HashMap<String, Value> =
            params.iter().zip(inputs).map(|(p, v)| (p.name.clone(), v.clone())).collect();
        // The whole pass on a worker of the pool, as the built-in networks
        // run (see `models::Network`).
        let result = crate::threads::install_pass(|| {
            let program = Program {
                file: &self.file,
                constants: &self.constants,
                named_tuples: &self.code.named_tuples,
                cache: &self.cache,
                frees: free.then_some(self.frees.as_slice()),
                iterations_left: interp::iteration_budget(),
            };
            program.run(&self.code.body, &mut vars)
        })?;
        Ok((result, vars))
    }

    /// Runs a module with one tensor input and one tensor result.
    pub fn run(&self, input: &Tensor) -> Result<Tensor> {
        match self.forward(&[Value::Tensor(input.clone())])? {
            Value::Tensor(t) => Ok(t),
            other => Err(Error::invalid(
                "ScriptModule::run",
                format!("forward returned {}, not one tensor; call forward for several results", other.type_name()),
            )),
        }
    }
}

/// Names the tensors of a result for saving: one tensor is `prefix`, the
/// items of a tuple or list `prefix.0`, `prefix.1`, ... (recursively);
/// `None` items are left out. Other values are errors.
pub fn flatten_outputs(prefix: &str, v: &Value, out: &mut Vec<(String, Tensor)>) -> Result<()> {
    match v {
        Value::Tensor(t) => out.push((prefix.to_string(), t.clone())),
        Value::None => {}
        Value::Tuple(items) | Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_outputs(&format!("{prefix}.{i}"), item, out)?;
            }
        }
        Value::TensorList(ts) => {
            for (i, t) in ts.iter().enumerate() {
                out.push((format!("{prefix}.{i}"), t.clone()));
            }
        }
        other => {
            return Err(Error::invalid(
                "outputs",
                format!("`{prefix}` is {}, which is not a tensor", other.type_name()),
            ))
        }
    }
    Ok(())
}

/// One line about a tensor: dtype, shape and qparams.
pub fn describe_tensor(t: &Tensor) -> String {
    let q = match t.quantizer() {
        None => String::new(),
        Some(q) => match q.params() {
            crate::QParams::PerTensorAffine { scale, zero_point, .. } => {
                format!(", scale {scale}, zero point {zero_point}")
            }
            crate::QParams::PerChannelAffine { scales, axis, .. } => {
                format!(", per channel ({} scales on axis {axis})", scales.len())
            }
        },
    };
    format!("{} {:?}{q}", t.dtype(), t.sizes())
}

/// What `qtensor inspect` prints of a TorchScript module: its inputs, its
/// op calls with counts (marking ops qtensor has no kernel for), and its
/// constants.
pub fn describe(m: &ScriptModule) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{}: class {}", m.file, m.class_name().unwrap_or("?"));
    let inputs: Vec<String> = m.inputs().iter().map(|p| format!("{}: {}", p.name, p.ty)).collect();
    let _ = writeln!(s, "inputs: {}", inputs.join(", "));
    let _ = writeln!(s, "returns: {}", m.returns());
    let _ = writeln!(s, "op calls:");
    for (name, count) in m.op_calls() {
        let known = !crate::registry().overloads(&name).is_empty();
        let mark = if known { "" } else { "   <- not supported by qtensor" };
        let _ = writeln!(s, "  {count:>5}  {name}{mark}");
    }
    let _ = writeln!(s, "constants:");
    for (i, c) in m.constants().iter().enumerate() {
        let text = match c {
            Value::Tensor(t) => describe_tensor(t),
            Value::Object(o) => match (
                o.downcast_ref::<qtensor_runtime::packed::Conv2dPackedParams>(),
                o.downcast_ref::<qtensor_runtime::packed::LinearPackedParams>(),
            ) {
                (Some(p), _) => format!(
                    "{} weight {}, stride {:?}, padding {:?}, dilation {:?}, groups {}",
                    o.class().name(),
                    describe_tensor(&p.weight),
                    p.stride,
                    p.padding,
                    p.dilation,
                    p.groups
                ),
                (_, Some(p)) => format!("{} weight {}", o.class().name(), describe_tensor(&p.weight)),
                _ => o.class().name().to_string(),
            },
            other => format!("{other:?}"),
        };
        let _ = writeln!(s, "  c{i}: {text}");
    }
    s
}
