//! The API tour from README.md, as a program: `cargo run --example tour`.

use qtensor::{ops, quantize, DType, Quantizer, Tensor, Value};

fn main() -> qtensor::Result<()> {
    // 1. Quantize a float tensor (one general entry point, or the PyTorch ops).
    let x = Tensor::from_slice(&[-1.0f32, 0.0, 0.5, 2.0], &[2, 2])?;
    let q = ops::quantize_per_tensor(&x, 0.1, 10, DType::QUInt8)?;
    let shared = Quantizer::per_tensor(0.1, 10, DType::QUInt8)?;
    let a = quantize(&x, &shared)?; // a.quantizer() is `shared` itself

    // 2. Empty, and 3. from integers plus qparams.
    let e = ops::_empty_affine_quantized(&[2, 3], 0.5, 0, DType::QInt8)?;
    let m = ops::_make_per_tensor_quantized_tensor(&Tensor::from_slice(&[1u8, 2, 3], &[3])?, 0.5, 1)?;

    // Inspect, dequantize, view, assign, copy.
    assert_eq!(q.int_values()?, vec![0, 10, 15, 30]);
    let f = ops::dequantize(&q)?; // float32, same shape
    let col = q.select(1, 0)?; // a view: shares q's storage
    col.set(&[1], 1.0)?; // quantized with q's own qparams
    ops::copy_(&e.slice(1, Some(0), Some(2), 1)?, &x)?; // quantize into e's qparams
    println!("{q}"); // exactly PyTorch's repr, minus "torch."

    // Call any op by name with boxed values, or through a handle looked up once.
    let d = qtensor::registry();
    let y = d.call("dequantize", &[Value::from(&q)])?.into_tensor()?;
    let handle = d.op("int_repr")?;
    let ints = handle.call(&[Value::from(&q)])?;

    // Save and load named tensors (safetensors; qparams in the metadata).
    let path = std::env::temp_dir().join("qtensor-tour.safetensors");
    qtensor::save(&path, &[("q", &q), ("x", &x)])?;
    let loaded = qtensor::load(&path)?;

    println!(
        "a shares the quantizer: {}",
        std::sync::Arc::ptr_eq(&a.quantizer().unwrap_or_else(|| shared.clone()), &shared)
    );
    println!("m = {m}\nf = {f}\ne = {e}\ny = {y}\nint_repr = {}", ints.type_name());
    println!("loaded {} tensors from {}", loaded.len(), path.display());
    Ok(())
}
