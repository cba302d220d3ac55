//! Any bytes given to `torch::load` (a `torch.save` checkpoint) give a
//! state dict or an error: never a panic, and never an allocation beyond
//! what the bytes justify.
//!
//! As for the TorchScript target, the first byte picks the input's use:
//! odd, the whole archive; even, the bytes are `data.pkl`, wrapped with
//! one 64-byte storage `data/0` in a valid archive, so that mutations reach
//! the unpickler past the zip checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "archive.rs"]
mod archive;

fn archive(pickle: &[u8]) -> Vec<u8> {
    archive::zip_of(&[("ck/data.pkl", pickle), ("ck/data/0", &[7u8; 64])])
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 1 { rest.to_vec() } else { archive(rest) };
    if let Ok(state) = qtensor::torch::load_bytes(&bytes) {
        for (_, v) in state.iter().take(4) {
            if let Some(t) = v.as_tensor() {
                let _ = format!("{t}");
            }
        }
        let _ = state.into_tensors();
    }
});
