//! An op chosen by the fuzzer's bytes, called by name with arguments built
//! from them (see `qtensor::kernel_checks::random_calls`): `Ok` or `Err`,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qtensor::kernel_checks::random_calls::random_call;
use qtensor::kernel_checks::rng::Rng;

fuzz_target!(
    init: {
        // Valid calls may ask for outputs of many GiB (zeros over an empty
        // tensor's huge other sizes): an error past 1 GiB keeps the fuzzer
        // under its RSS limit.
        qtensor_runtime::storage::set_allocation_limit(1 << 30);
    },
    |data: &[u8]| {
    let mut rng = Rng::from_bytes(data);
    let (op, args) = random_call(&mut rng);
    let _ = op.call(&args);
    }
);
