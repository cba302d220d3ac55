//! `qtensor demo`: the PyTorch note "Introducing Quantized Tensor", end to
//! end, printing every step.

use qtensor::nn::quantized::{Conv2d, DeQuantize, Flatten, Linear, MaxPool2d, Quantize};
use qtensor::nn::{Module, Sequential};
use qtensor::quantization::{MinMaxObserver, ObserverScheme, PerChannelMinMaxObserver};
use qtensor::{ops, quantize, registry, DType, Quantizer, Result, Tensor, Value};
use std::io::Write;

fn step(out: &mut dyn Write, title: &str) -> Result<()> {
    writeln!(out, "\n== {title}")?;
    Ok(())
}

/// Runs the walkthrough, writing to `out`; files go to `dir`.
pub fn run(out: &mut dyn Write, dir: &std::path::Path) -> Result<()> {
    writeln!(out, "qtensor demo: quantized tensors, after PyTorch's \"Introducing Quantized Tensor\"")?;

    step(out, "1. Create a quantized tensor by quantizing a float tensor")?;
    let x = Tensor::from_slice(&[-1.0f32, 0.0, 1.0, 2.0, 3.5, 200.0], &[2, 3])?;
    writeln!(out, "x = {x}")?;
    let q = ops::quantize_per_tensor(&x, 0.5, 8, DType::QUInt8)?;
    writeln!(out, "ops::quantize_per_tensor(&x, 0.5, 8, DType::QUInt8)\n{q}")?;
    writeln!(out, "(200.0 saturates to 255: (255 - 8) * 0.5 = 123.5 is the largest value quint8 can hold here)")?;

    step(out, "   ... or with a quantizer object, shared between tensors")?;
    let quantizer = Quantizer::per_tensor(0.25, 2, DType::QInt8)?;
    let a = quantize(&x, &quantizer)?;
    let b = quantize(&Tensor::from_slice(&[0.25f32, -0.25], &[2])?, &quantizer)?;
    let shared = std::sync::Arc::ptr_eq(
        &a.quantizer().ok_or_else(|| qtensor::Error::invalid("demo", "no quantizer"))?,
        &b.quantizer().ok_or_else(|| qtensor::Error::invalid("demo", "no quantizer"))?,
    );
    writeln!(out, "quantize(&x, &q) and quantize(&y, &q) share one quantizer: {shared}\n  {quantizer}")?;

    step(out, "   ... per channel")?;
    let w = Tensor::from_slice(&[0.1f32, -0.2, 0.3, 10.0, -20.0, 30.0], &[2, 3])?;
    let scales = Tensor::from_slice(&[0.01f64, 1.0], &[2])?;
    let zps = Tensor::from_slice(&[0i64, 0], &[2])?;
    let wq = ops::quantize_per_channel(&w, &scales, &zps, 0, DType::QInt8)?;
    writeln!(out, "{wq}")?;

    step(out, "2. Create an empty quantized tensor")?;
    let e = ops::_empty_affine_quantized(&[2, 2], 0.1, 5, DType::QUInt8)?;
    writeln!(out, "ops::_empty_affine_quantized(&[2, 2], 0.1, 5, DType::QUInt8)\n{e}")?;

    step(out, "3. Create a quantized tensor from integers and qparams")?;
    let ints = Tensor::from_slice(&[0u8, 10, 20, 30], &[4])?;
    let m = ops::_make_per_tensor_quantized_tensor(&ints, 0.1, 10)?;
    writeln!(out, "ops::_make_per_tensor_quantized_tensor(uint8 [0, 10, 20, 30], 0.1, 10)\n{m}")?;

    step(out, "4. Dequantize, int_repr and inspection")?;
    writeln!(out, "dequantize: {}", ops::dequantize(&q)?)?;
    writeln!(out, "int_repr:   {}", ops::int_repr(&q)?)?;
    writeln!(
        out,
        "numel={} size={:?} is_quantized={} qscheme={} q_scale={} q_zero_point={}",
        q.numel(),
        q.sizes(),
        q.is_quantized(),
        q.qscheme()?,
        q.q_scale()?,
        q.q_zero_point()?
    )?;
    writeln!(
        out,
        "per channel: scales={} zero_points={} axis={}",
        wq.q_per_channel_scales()?,
        wq.q_per_channel_zero_points()?,
        wq.q_per_channel_axis()?
    )?;
    writeln!(out, "q[1][2].item() = {}", q.select(0, 1)?.select(0, 2)?.item()?)?;

    step(out, "5. Views share storage and copy nothing")?;
    let t = q.transpose(0, 1)?;
    writeln!(out, "q.transpose(0, 1) = {t}\nshares storage with q: {}", t.shares_storage_with(&q))?;
    let s = q.slice(1, Some(0), None, 2)?;
    writeln!(out, "q.slice(1, 0.., step 2) = {s}")?;
    let wt = wq.transpose(0, 1)?;
    writeln!(out, "a per-channel view keeps its axis: wq.transpose(0, 1) has axis {}", wt.q_per_channel_axis()?)?;

    step(out, "6. Assignment quantizes with the tensor's own qparams")?;
    q.set(&[0, 0], 3.3)?;
    writeln!(
        out,
        "q.set(&[0, 0], 3.3) -> q[0][0] = {} (int {})",
        q.get(&[0, 0])?,
        ops::int_repr(&q)?.to_vec::<u8>()?[0]
    )?;
    s.fill_(1.0)?;
    writeln!(out, "filling the strided view with 1.0 writes through to q:\n{q}")?;

    step(out, "7. copy_")?;
    let dst = ops::_empty_affine_quantized(&[2, 3], 1.0, 0, DType::QUInt8)?;
    ops::copy_(&dst, &q)?;
    writeln!(
        out,
        "quantized <- quantized takes src's integers and qparams: scale={} zero_point={}",
        dst.q_scale()?,
        dst.q_zero_point()?
    )?;
    ops::copy_(&dst, &x)?;
    writeln!(out, "quantized <- float quantizes into self's qparams: {dst}")?;
    let f = Tensor::zeros(&[2, 3], DType::Float32)?;
    match ops::copy_(&f, &q) {
        Err(e) => writeln!(out, "float <- quantized is an error: {e}")?,
        Ok(_) => writeln!(out, "float <- quantized unexpectedly succeeded")?,
    }

    step(out, "8. Save and load (safetensors)")?;
    let path = dir.join("qtensor-demo.safetensors");
    qtensor::save(&path, &[("q", &q), ("wq", &wq), ("x", &x)])?;
    let loaded = qtensor::load(&path)?;
    for (name, t) in &loaded {
        writeln!(out, "loaded {name}: {}", t.describe())?;
    }
    let same = loaded.iter().find(|(n, _)| n == "wq").map(|(_, t)| t.to_string()) == Some(wq.to_string());
    writeln!(out, "per-channel tensor round-trips exactly: {same}  ({})", path.display())?;

    step(out, "9. Call an operator by name through the dispatcher")?;
    let d = registry();
    let r = d.call(
        "quantize_per_tensor",
        &[Value::from(&x), Value::Float(0.1), Value::Int(0), Value::ScalarType(DType::QInt8)],
    )?;
    writeln!(out, "registry().call(\"quantize_per_tensor\", ...) -> {}", r.type_name())?;
    let handle = d.op("dequantize")?;
    writeln!(
        out,
        "kernel chosen for (QuantizedCPU, qint8): {:?}",
        handle.entry().chosen_kernel(qtensor::DispatchKey::QuantizedCPU, DType::QInt8)
    )?;
    match d.call("quantized::add", &[Value::from(&x), Value::from(&x), Value::Float(0.1), Value::Int(0)]) {
        Err(e) => writeln!(out, "a float tensor passed to a quantized op:\n  {e}")?,
        Ok(_) => writeln!(out, "quantized::add accepted a float tensor")?,
    }
    match d.call("quantize_per_tensr", &[]) {
        Err(e) => writeln!(out, "a typo:\n  {e}")?,
        Ok(_) => writeln!(out, "a typo was accepted")?,
    }
    step(out, "10. A quantized module stack, calibrated with observers")?;
    qtensor::profiler::reset();
    qtensor::profiler::enable();
    let stack = module_stack(out);
    qtensor::profiler::disable();
    stack?;
    writeln!(out, "\nthe Profiling layer saw every op call of that forward pass:\n{}", qtensor::profiler::table())?;

    writeln!(out, "\ndone.")?;
    Ok(())
}

/// Quantize -> ConvReLU2d -> MaxPool2d -> Flatten -> Linear -> DeQuantize,
/// with qparams chosen by observers on the float activations.
fn module_stack(out: &mut dyn Write) -> Result<()> {
    let ramp = |n: usize, k: f32| (0..n).map(|i| (i as f32 * k).sin() * 0.5).collect::<Vec<f32>>();
    let x = Tensor::from_vec(ramp(2 * 8 * 8, 0.37), &[1, 2, 8, 8])?;
    let conv_w = Tensor::from_vec(ramp(3 * 2 * 3 * 3, 1.3), &[3, 2, 3, 3])?;
    let fc_w = Tensor::from_vec(ramp(4 * 3 * 4 * 4, 0.71), &[4, 48])?;

    let mut act = MinMaxObserver::new(DType::QUInt8, ObserverScheme::Affine, false)?;
    act.forward(&x)?;
    let (sx, zx) = act.calculate_qparams();
    let weight_quantizer = |w: &Tensor| -> Result<std::sync::Arc<Quantizer>> {
        let mut o = PerChannelMinMaxObserver::new(0, DType::QInt8, ObserverScheme::Symmetric, false)?;
        o.forward(w)?;
        o.quantizer()
    };
    let model = Sequential::new()
        .push("quant", Quantize::new(sx, zx, DType::QUInt8)?)
        .push(
            "conv",
            Conv2d::from_float(&conv_w, None, &weight_quantizer(&conv_w)?, [1, 1], [1, 1], [1, 1], 1, 0.02, 0)?
                .with_relu(),
        )
        .push("pool", MaxPool2d::new(2, 2))
        .push("flatten", Flatten)
        .push("fc", Linear::from_float(&fc_w, None, &weight_quantizer(&fc_w)?, 0.05, 128)?)
        .push("dequant", DeQuantize);
    writeln!(out, "{}", model.describe())?;
    writeln!(out, "input observed range -> scale={} zero_point={zx}", qtensor::pyfmt::py_float_repr(sx))?;
    writeln!(out, "output: {}", model.forward(&x)?)?;
    Ok(())
}
