//! An op chosen by the fuzzer's bytes, called by name with arguments built
//! from them (see `qtensor::kernel_checks::random_calls`): `Ok` or `Err`,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qtensor::kernel_checks::random_calls::random_call;
use qtensor::kernel_checks::rng::Rng;

fuzz_target!(|data: &[u8]| {
    let mut rng = Rng::from_bytes(data);
    let (op, args) = random_call(&mut rng);
    let _ = op.call(&args);
});
