//! Any bytes given to the TorchScript loader, and then to `forward`, give
//! a result or an error: never a panic, a hang or an allocation the bytes
//! do not justify.
//!
//! A checksum guards every zip entry, so mutated archives rarely reach
//! the code parser or the unpickler. The first byte therefore picks the
//! input's use: odd, the bytes are the whole archive; even, they are split
//! into `forward`'s code and `constants.pkl`, which the target wraps in a
//! valid archive itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qtensor::{Tensor, Value};

#[path = "archive.rs"]
mod archive;

fn archive(code: &[u8], constants: &[u8]) -> Vec<u8> {
    archive::zip_of(&[
        ("m/version", b"3"),
        ("m/data.pkl", b"\x80\x02c__torch__\nM\nq\x00)\x81}b."),
        ("m/code/__torch__/m.py", code),
        ("m/constants.pkl", constants),
    ])
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 1 {
        rest.to_vec()
    } else {
        let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        archive(&rest[..split], rest.get(split + 1..).unwrap_or(&[]))
    };
    let Ok(m) = qtensor::jit::load_bytes(&bytes) else { return };
    let _ = m.op_calls();
    let _ = qtensor::jit::describe(&m);
    // A conv constant may ask for any padding (PyTorch allows it), and its
    // output, and the work, grow with it: one with padding 1281 on this
    // 4x4 input computes 10M outputs, 0.6 s in release and over the 5 s
    // limit under ASan. Bound each execution's work, not the library.
    let costly = m.constants().iter().any(|c| match c {
        Value::Object(o) => o
            .downcast_ref::<qtensor_runtime::packed::Conv2dPackedParams>()
            .is_some_and(|p| p.padding.iter().chain(&p.stride).chain(&p.dilation).any(|&v| v > 64)),
        _ => false,
    });
    if costly {
        return;
    }
    if let Ok(x) = Tensor::from_vec(vec![0.25f32; 2 * 3 * 4 * 4], &[2, 3, 4, 4]) {
        let inputs: Vec<Value> = m.inputs().iter().map(|_| Value::Tensor(x.clone())).collect();
        let _ = m.forward(&inputs);
    }
});
