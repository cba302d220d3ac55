//! Any bytes given to the safetensors loader give tensors or an error:
//! never a panic, and never an allocation beyond what the bytes justify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = qtensor::serialize::load_from_bytes(data) {
        // Whatever loaded can be inspected and printed.
        for (_, t) in tensors.iter().take(4) {
            let _ = format!("{t}");
            let _ = t.int_values();
        }
    }
});
