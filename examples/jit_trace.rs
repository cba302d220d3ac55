//! Runs a frozen TorchScript model and saves every intermediate tensor it
//! computes, named after the variable the file assigns it to: the way to
//! find the first layer where a model's values leave PyTorch's.
//!
//! ```sh
//! cargo run --release --example jit_trace -- model.pt in.safetensors trace.safetensors
//! ```
//!
//! `in.safetensors` holds the input as `input` (or one tensor per
//! `forward` argument, by name).

use qtensor::{Tensor, Value};
use std::collections::HashMap;

fn main() -> qtensor::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, out] = args.as_slice() else {
        eprintln!("usage: jit_trace MODEL.pt IN.safetensors OUT.safetensors");
        std::process::exit(2);
    };
    let m = qtensor::jit::load(model)?;
    let tensors: HashMap<String, Tensor> = qtensor::load(input)?.into_iter().collect();
    let inputs = m
        .inputs()
        .iter()
        .map(|p| {
            tensors
                .get(&p.name)
                .or_else(|| tensors.get("input"))
                .cloned()
                .map(Value::Tensor)
                .ok_or_else(|| qtensor::Error::invalid("jit_trace", format!("no input tensor `{}`", p.name)))
        })
        .collect::<qtensor::Result<Vec<_>>>()?;
    let (_, locals) = m.forward_traced(&inputs)?;
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (name, v) in &locals {
        qtensor::jit::flatten_outputs(name, v, &mut named).ok();
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    qtensor::save(out, &refs)?;
    println!("saved {} intermediate tensors to {out}", refs.len());
    Ok(())
}
