//! `quantized_lstm`: the dynamically quantized LSTM, as PyTorch's CPU path
//! computes it. Each layer and direction projects the whole input sequence
//! at once (one dynamic quantization of the sequence), then steps through
//! time projecting the hidden state (one dynamic quantization per step);
//! the gates are f32, `c' = f * c + i * g` and `h' = o * tanh(c')` with
//! the gates split i, f, g, o. The projections go through the dispatcher
//! (`quantized::linear_dynamic`), so the fastest kernel computes them.

use qtensor_runtime::ops as op;
use qtensor_runtime::packed::{CellParams, LinearPackedParams};
use qtensor_runtime::storage::{checked_count, try_filled};
use qtensor_runtime::{dispatcher, register_kernel, DType, Error, Priority, Result, Tensor, Value};

const OP: &str = "quantized_lstm.input";

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid(OP, message)
}

/// `x @ w^T + b` by dynamic quantization, through the dispatcher.
fn linear(x: &Tensor, w: &LinearPackedParams, reduce_range: bool) -> Result<Vec<f32>> {
    let args = [Value::from(x), Value::from(&w.weight), Value::from(w.bias.as_ref()), Value::Bool(reduce_range)];
    dispatcher().call("quantized::linear_dynamic", &args)?.into_tensor()?.to_vec::<f32>()
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// One layer in one direction over `input` `[T, B, I]`: the outputs
/// `[T, B, H]` and the final (h, c), each `[B, H]`.
fn layer(
    input: &Tensor,
    cell: &CellParams,
    (mut h, mut c): (Vec<f32>, Vec<f32>),
    reverse: bool,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let (t_len, batch) = (input.sizes()[0], input.sizes()[1]);
    let hidden = cell.w_hh.weight.sizes()[1];
    // Every product below is at most one of these, checked once.
    let step = checked_count(OP, &[batch, 4, hidden])?;
    let total = checked_count(OP, &[t_len, step])?;
    let pre = linear(input, &cell.w_ih, cell.reduce_range)?;
    if pre.len() != total {
        return Err(invalid(format!("the input projection has {} values, expected {total}", pre.len())));
    }
    let mut out = try_filled(checked_count(OP, &[t_len, batch, hidden])?, 0f32)?;
    let order: Box<dyn Iterator<Item = usize>> = if reverse { Box::new((0..t_len).rev()) } else { Box::new(0..t_len) };
    for t in order {
        let hx = Tensor::from_vec(h.clone(), &[batch, hidden])?;
        let gh = linear(&hx, &cell.w_hh, cell.reduce_range)?;
        for b in 0..batch {
            let gates: Vec<f32> = gh[b * 4 * hidden..(b + 1) * 4 * hidden]
                .iter()
                .zip(&pre[t * step + b * 4 * hidden..t * step + (b + 1) * 4 * hidden])
                .map(|(x, y)| x + y)
                .collect();
            for j in 0..hidden {
                let i = sigmoid(gates[j]);
                let f = sigmoid(gates[hidden + j]);
                let g = gates[2 * hidden + j].tanh();
                let o = sigmoid(gates[3 * hidden + j]);
                let cy = f * c[b * hidden + j] + i * g;
                c[b * hidden + j] = cy;
                h[b * hidden + j] = o * cy.tanh();
            }
        }
        out[t * batch * hidden..(t + 1) * batch * hidden].copy_from_slice(&h);
    }
    Ok((out, h, c))
}

#[allow(clippy::too_many_arguments)]
fn reference_quantized_lstm(
    input: &Tensor,
    hx: &[Tensor],
    params: Vec<&CellParams>,
    _has_biases: bool,
    num_layers: i64,
    _dropout: f64,
    train: bool,
    bidirectional: bool,
    batch_first: bool,
    dtype: Option<DType>,
    use_dynamic: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    if !use_dynamic || dtype.is_some_and(|d| d != DType::QInt8) {
        return Err(invalid("only dynamically quantized LSTMs (qint8 weights, use_dynamic=True) are supported"));
    }
    if train {
        return Err(invalid("train=True (dropout between layers) is not supported in inference"));
    }
    let dirs = if bidirectional { 2 } else { 1 };
    let layers = usize::try_from(num_layers)
        .ok()
        .filter(|&l| l >= 1)
        .ok_or_else(|| invalid(format!("num_layers {num_layers}")))?;
    if params.len() != layers * dirs {
        return Err(invalid(format!(
            "{} cell parameter sets for {layers} layer(s) x {dirs} direction(s)",
            params.len()
        )));
    }
    if input.dim() != 3 || input.dtype() != DType::Float32 {
        return Err(invalid(format!("the input must be a 3-d float32 tensor, got {}", input.describe())));
    }
    let x = if batch_first { input.transpose(0, 1)?.contiguous()? } else { input.contiguous()? };
    let (t_len, batch) = (x.sizes()[0], x.sizes()[1]);
    let hidden = params[0].w_hh.weight.sizes()[1];
    // The products of sizes below are at most these, checked once.
    checked_count(OP, &[t_len, batch, hidden, dirs])?;
    checked_count(OP, &[layers, dirs, batch, hidden])?;
    let [h0, c0] = hx else { return Err(invalid(format!("hx must be [h0, c0], got {} tensors", hx.len()))) };
    for s in [h0, c0] {
        if s.sizes() != [layers * dirs, batch, hidden] || s.dtype() != DType::Float32 {
            return Err(invalid(format!(
                "a state {} is not float32 [{}, {batch}, {hidden}]",
                s.describe(),
                layers * dirs
            )));
        }
    }
    let (h0, c0) = (h0.to_vec::<f32>()?, c0.to_vec::<f32>()?);
    let state = |v: &[f32], k: usize| v[k * batch * hidden..(k + 1) * batch * hidden].to_vec();
    let (mut hn, mut cn) = (Vec::with_capacity(h0.len()), Vec::with_capacity(c0.len()));
    let mut layer_input = x;
    for l in 0..layers {
        let mut outs = Vec::with_capacity(dirs);
        for d in 0..dirs {
            let k = l * dirs + d;
            let cell = params[k];
            if cell.w_ih.weight.sizes()[1] != layer_input.sizes()[2] || cell.w_hh.weight.sizes()[1] != hidden {
                return Err(invalid(format!("layer {l}'s weights do not fit its input {:?}", layer_input.sizes())));
            }
            let (out, h, c) = layer(&layer_input, cell, (state(&h0, k), state(&c0, k)), d == 1)?;
            hn.extend(h);
            cn.extend(c);
            outs.push(out);
        }
        // Directions side by side on the last dimension.
        let mut joined = Vec::with_capacity(t_len * batch * hidden * dirs);
        for row in 0..t_len * batch {
            for o in &outs {
                joined.extend_from_slice(&o[row * hidden..(row + 1) * hidden]);
            }
        }
        layer_input = Tensor::from_vec(joined, &[t_len, batch, hidden * dirs])?;
    }
    let output = if batch_first { layer_input.transpose(0, 1)?.contiguous()? } else { layer_input };
    let sizes = [layers * dirs, batch, hidden];
    Ok((output, Tensor::from_vec(hn, &sizes)?, Tensor::from_vec(cn, &sizes)?))
}

register_kernel! {
    dtypes: [Float32],
    priority: Priority::REFERENCE,
    kernels: {
        op::QUANTIZED_LSTM_INPUT => reference_quantized_lstm(input: &Tensor, hx: &[Tensor], params: Vec<&CellParams>, has_biases: bool, num_layers: i64, dropout: f64, train: bool, bidirectional: bool, batch_first: bool, dtype: Option<DType>, use_dynamic: bool) -> (Tensor, Tensor, Tensor),
    }
}
