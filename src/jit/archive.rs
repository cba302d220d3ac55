//! A TorchScript archive: its entries, and its constants unpickled into
//! boxed values (tensors, numbers, and packed-weight objects packed for the
//! kernels once, here).

use crate::torch::pickle::{unpickle, PValue};
use crate::torch::rebuild::{self, Dialect, Global, Object};
use crate::torch::{entry_bytes, Storages};
use crate::{Error, Result, Tensor, Value};
use qtensor_runtime::packed::{Conv2dPackedParams, LinearPackedParams};
use std::collections::HashMap;
use std::io::{Read, Seek};

/// The most bytes one code file or pickle may inflate to.
const MAX_TEXT: usize = 64 << 20;

fn err(msg: impl Into<String>) -> Error {
    Error::Serialization(msg.into())
}

/// What `jit::load` reads from the archive.
pub(crate) struct Archive {
    /// The code files (`code/__torch__/....py`), by path inside the archive.
    pub code: Vec<(String, String)>,
    /// `constants.pkl`'s tuple, as boxed values.
    pub constants: Vec<Value>,
}

/// Reads a frozen TorchScript archive.
pub(crate) fn read<R: Read + Seek>(reader: R) -> Result<Archive> {
    let mut zip = crate::torch::open_zip(reader)
        .map_err(|e| err(format!("not a TorchScript file (a zip archive from torch.jit.save): {e}")))?;
    let names: Vec<String> =
        (0..zip.len()).filter_map(|i| zip.name_for_index(i).and_then(|n| n.ok()).map(|n| n.to_string())).collect();
    let data = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .ok_or_else(|| err("the archive has no data.pkl: not a file from torch.jit.save or torch.save"))?;
    let prefix = data.strip_suffix("data.pkl").unwrap_or_default().to_string();
    let code_dir = format!("{prefix}code/");
    if !names.iter().any(|n| n.starts_with(&code_dir)) {
        return Err(err(
            "the archive has no code/: it is a torch.save checkpoint, not a TorchScript file (see `qtensor model run`)",
        ));
    }
    if let Ok(order) = entry_bytes(&mut zip, &format!("{prefix}byteorder"), 16) {
        if order != b"little" {
            return Err(err(format!("byte order {:?} is not supported", String::from_utf8_lossy(&order))));
        }
    }
    if let Ok(v) = entry_bytes(&mut zip, &format!("{prefix}version"), 16) {
        let v = String::from_utf8_lossy(&v).trim().parse::<u32>().unwrap_or(0);
        if !(1..=10).contains(&v) {
            return Err(err(format!("archive version {v} is not supported (torch.jit.save writes 3 to 8)")));
        }
    }
    // A module that was not frozen keeps its attributes in data/ and
    // rebuilds its packed weights in __setstate__ methods: run nothing of
    // that, and say what to do.
    let frozen = !names.iter().any(|n| n.starts_with(&format!("{prefix}data/")));
    if !frozen {
        return Err(err(
            "the module is not frozen (its weights are attributes in data/): call torch.jit.freeze before torch.jit.save",
        ));
    }
    let mut code = Vec::new();
    for n in names.iter().filter(|n| n.starts_with(&code_dir) && n.ends_with(".py")) {
        let bytes = entry_bytes(&mut zip, n, MAX_TEXT)?;
        let text = String::from_utf8(bytes).map_err(|_| err(format!("{n}: not UTF-8")))?;
        code.push((n[prefix.len()..].to_string(), text));
    }
    // The root module: a frozen module's carries no state, but it is read
    // with the same allow-list, so a hostile global there is refused too.
    let root = entry_bytes(&mut zip, data, MAX_TEXT)?;
    let mut no_storages = Storages { zip: &mut zip, dir: format!("{prefix}data/"), loaded: HashMap::new() };
    unpickle(&root, &mut no_storages, &Dialect::TorchScript)
        .map_err(|e| err(format!("data.pkl: {}", e.to_string().trim_start_matches("serialization: data.pkl: "))))?;
    let pkl = entry_bytes(&mut zip, &format!("{prefix}constants.pkl"), MAX_TEXT)?;
    let mut storages = Storages { zip: &mut zip, dir: format!("{prefix}constants/"), loaded: HashMap::new() };
    let top = unpickle(&pkl, &mut storages, &Dialect::TorchScript)
        .map_err(|e| err(format!("constants.pkl: {}", e.to_string().trim_start_matches("serialization: "))))?;
    let PValue::Tuple(items) = top else { return Err(err("constants.pkl does not hold a tuple")) };
    let constants = items
        .iter()
        .enumerate()
        .map(|(i, v)| constant(v).map_err(|e| err(format!("constant c{i}: {e}"))))
        .collect::<Result<_>>()?;
    Ok(Archive { code, constants })
}

/// A constant as a boxed value.
fn constant(v: &PValue) -> Result<Value> {
    Ok(match v {
        PValue::None => Value::None,
        PValue::Bool(b) => Value::Bool(*b),
        PValue::Int(i) => Value::Int(*i),
        PValue::Float(f) => Value::Float(*f),
        PValue::Str(s) => Value::Str(s.to_string()),
        PValue::Tuple(items) => Value::Tuple(items.iter().map(constant).collect::<Result<_>>()?),
        PValue::List(items) => list(items.borrow().iter().map(constant).collect::<Result<_>>()?),
        PValue::Object(o) => match &**o {
            Object::Tensor(t) => Value::Tensor(t.clone()),
            Object::Instance { class: Global::ScriptClass(class), state } => {
                let state = state.borrow();
                let state = state.as_ref().ok_or_else(|| err(format!("a {} without state", class.name())))?;
                packed_object(*class, state)?
            }
            _ => return Err(err("an object of the model's own class among the constants")),
        },
        other => return Err(err(format!("a constant of unsupported kind {other:?}"))),
    })
}

/// A list of boxed values, typed where it can be: ints, tensors, or mixed.
pub(crate) fn list(items: Vec<Value>) -> Value {
    if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Int(_))) {
        return Value::IntList(items.iter().filter_map(Value::as_i64).collect());
    }
    if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Tensor(_))) {
        return Value::TensorList(items.into_iter().filter_map(|v| v.into_tensor().ok()).collect());
    }
    Value::List(items)
}

fn tensors(v: &PValue) -> Result<Vec<Option<Tensor>>> {
    let items: Vec<PValue> = match v {
        PValue::List(l) => l.borrow().clone(),
        PValue::Tuple(t) => t.to_vec(),
        _ => return Err(err("a list of tensors was expected")),
    };
    items
        .iter()
        .map(|i| if matches!(i, PValue::None) { Ok(None) } else { rebuild::tensor(i).cloned().map(Some) })
        .collect()
}

/// A conv's serialized state in PyTorch's version 3 form: the int config
/// `[2, stride.., padding.., dilation.., output_padding.., groups, flags]`,
/// the weight and the bias.
struct ConvState {
    config: Vec<i64>,
    weight: Tensor,
    bias: Option<Tensor>,
}

/// Parses the three versions of `conv_serialization.h`:
///
/// - 1: `(weight, bias, [stride], [padding], [dilation], groups)`, the
///   numbers as one-element tensors (no output padding, never transposed);
/// - 2: `("2", [config (int16), weight], [bias])`;
/// - 3: `(3, config (ints), [None, weight, bias])`.
fn conv_state(state: &[PValue]) -> Result<ConvState> {
    let bad = |what: &str| err(format!("Conv2dPackedParamsBase: {what}"));
    let int_items = |v: &PValue| -> Result<Vec<i64>> {
        match v {
            PValue::List(l) => l.borrow().iter().map(rebuild::int).collect(),
            PValue::Tuple(t) => t.iter().map(rebuild::int).collect(),
            _ => Err(bad("a config that is not a list of ints")),
        }
    };
    let first =
        |t: &Tensor| -> Result<i64> { t.int_values()?.first().copied().ok_or_else(|| bad("an empty config tensor")) };
    match state {
        [PValue::Str(version), params, optional] if &**version == "2" => {
            let params = tensors(params)?;
            let [Some(cfg), Some(weight)] = params.as_slice() else {
                return Err(bad("expected [config, weight] tensors"));
            };
            let bias = tensors(optional)?.into_iter().next().flatten();
            Ok(ConvState { config: cfg.int_values()?, weight: weight.clone(), bias })
        }
        [PValue::Int(3), config, optional] => {
            let items = tensors(optional)?;
            let [None, Some(weight), bias] = items.as_slice() else { return Err(bad("expected [None, weight, bias]")) };
            Ok(ConvState { config: int_items(config)?, weight: weight.clone(), bias: bias.clone() })
        }
        [weight @ PValue::Object(_), bias, stride, padding, dilation, groups] => {
            let weight = rebuild::tensor(weight)?.clone();
            let bias = if matches!(bias, PValue::None) { None } else { Some(rebuild::tensor(bias)?.clone()) };
            let mut config = vec![2];
            for list in [stride, padding, dilation] {
                for t in tensors(list)? {
                    config.push(first(&t.ok_or_else(|| bad("a missing stride, padding or dilation"))?)?);
                }
            }
            config.extend([0, 0]);
            config.push(first(rebuild::tensor(groups)?)?);
            config.push(0);
            Ok(ConvState { config, weight, bias })
        }
        [version @ (PValue::Str(_) | PValue::Int(_)), ..] => {
            Err(bad(&format!("state version {version:?} is not supported (1, 2 and 3 are)")))
        }
        _ => Err(bad(&format!("a state of {} items is not one of versions 1, 2 and 3", state.len()))),
    }
}

/// A packed-weight object from its pickled state, packed for the kernels.
fn packed_object(class: qtensor_runtime::ScriptClass, state: &PValue) -> Result<Value> {
    use qtensor_runtime::ScriptClass as C;
    let PValue::Tuple(s) = state else { return Err(err(format!("{}: the state is not a tuple", class.name()))) };
    match (class, s.as_slice()) {
        (C::Conv2dPackedParams, state) => {
            let ConvState { config, weight, bias } = conv_state(state)?;
            // [2, stride.., padding.., dilation.., output_padding.., groups, flags]
            let c = |i: usize| {
                config
                    .get(i)
                    .copied()
                    .ok_or_else(|| err(format!("Conv2dPackedParamsBase: a config of {} values", config.len())))
            };
            if c(0)? != 2 || config.len() != 11 {
                return Err(err(format!("Conv2dPackedParamsBase: config {config:?} is not a 2-d convolution's")));
            }
            if c(10)? & !1 != 0 {
                return Err(err(format!("Conv2dPackedParamsBase: unknown flags {}", c(10)?)));
            }
            let packed = Conv2dPackedParams {
                weight,
                bias,
                stride: [c(1)?, c(2)?],
                padding: [c(3)?, c(4)?],
                dilation: [c(5)?, c(6)?],
                output_padding: [c(7)?, c(8)?],
                groups: c(9)?,
                transposed: c(10)? & 1 != 0,
            };
            if !packed.transposed {
                crate::kernels::prepack_conv2d(&packed.weight, packed.groups)?;
            }
            packed.into_value()
        }
        (C::LinearPackedParams, [weight, bias]) => {
            let weight = rebuild::tensor(weight)?.clone();
            let bias = if matches!(bias, PValue::None) { None } else { Some(rebuild::tensor(bias)?.clone()) };
            if weight.dtype().is_quantized() {
                crate::kernels::prepack_linear(&weight)?;
            }
            LinearPackedParams { weight, bias }.into_value()
        }
        // ("quantized_dynamic", [b_ih, b_hh], [], [reduce_range], [w_ih, w_hh]).
        (C::CellParams, [PValue::Str(kind), _biases, _doubles, ints, packed]) if &**kind == "quantized_dynamic" => {
            let reduce_range = match ints {
                PValue::List(l) => l.borrow().first().map(rebuild::int).transpose()?.unwrap_or(0) != 0,
                _ => return Err(err("CellParamsBase: the reduce_range list is missing")),
            };
            let linear = |v: &PValue| -> Result<LinearPackedParams> {
                match constant(v)? {
                    Value::Object(o) => o.downcast_ref::<LinearPackedParams>().cloned(),
                    _ => None,
                }
                .ok_or_else(|| err("CellParamsBase: its weights are not LinearPackedParamsBase objects"))
            };
            let weights: Vec<PValue> = match packed {
                PValue::List(l) => l.borrow().clone(),
                _ => Vec::new(),
            };
            let [w_ih, w_hh] = weights.as_slice() else {
                return Err(err("CellParamsBase: expected two packed weights (input and recurrent)"));
            };
            qtensor_runtime::packed::CellParams { w_ih: linear(w_ih)?, w_hh: linear(w_hh)?, reduce_range }.into_value()
        }
        (C::CellParams, [PValue::Str(kind), ..]) => Err(err(format!(
            "CellParamsBase of kind {kind:?} is not supported (dynamically quantized LSTMs, `quantized_dynamic`, are)"
        ))),
        _ => Err(err(format!("{}: a state of {} items is not supported", class.name(), s.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn t(x: Tensor) -> PValue {
        PValue::Object(Rc::new(Object::Tensor(x)))
    }

    fn list(items: Vec<PValue>) -> PValue {
        PValue::List(Rc::new(RefCell::new(items)))
    }

    fn one(v: i64) -> PValue {
        t(Tensor::from_vec(vec![v], &[1]).unwrap_or_else(|e| panic!("{e}")))
    }

    /// The three serialized forms of one transposed-free conv (stride 2,
    /// padding 1, dilation 1, groups 1) give the same config and parts.
    #[test]
    fn conv_states_of_every_version_agree() -> Result<()> {
        let weight = Tensor::from_vec(vec![0.5f32; 4 * 3 * 3 * 3], &[4, 3, 3, 3])?;
        let bias = Tensor::from_vec(vec![0.25f32; 4], &[4])?;
        let want = vec![2, 2, 2, 1, 1, 1, 1, 0, 0, 1, 0];
        let cfg16 = Tensor::from_vec(want.iter().map(|&v| v as i16).collect::<Vec<i16>>(), &[11])?;
        let v2 = [PValue::Str(Rc::from("2")), list(vec![t(cfg16), t(weight.clone())]), list(vec![t(bias.clone())])];
        let v3 = [
            PValue::Int(3),
            list(want.iter().map(|&v| PValue::Int(v)).collect()),
            list(vec![PValue::None, t(weight.clone()), t(bias.clone())]),
        ];
        let v1 = [
            t(weight.clone()),
            t(bias.clone()),
            list(vec![one(2), one(2)]),
            list(vec![one(1), one(1)]),
            list(vec![one(1), one(1)]),
            one(1),
        ];
        for state in [&v1[..], &v2[..], &v3[..]] {
            let s = conv_state(state)?;
            assert_eq!(s.config, want);
            assert_eq!(s.weight.sizes(), weight.sizes());
            assert_eq!(s.bias.map(|b| b.sizes().to_vec()), Some(vec![4]));
        }
        let unknown = [PValue::Int(4), list(vec![]), list(vec![])];
        let e = conv_state(&unknown).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("version") && e.contains('4'), "{e}");
        Ok(())
    }
}
