//! Every op, called by name with random arguments of its schema's types
//! (valid and invalid: zero, huge and odd sizes, strided, transposed and
//! expanded views, per-channel tensors, extreme and NaN qparams, negative
//! and huge integers, lists of every length), returns `Ok` or `Err` and
//! never panics. Each call runs through `catch_unwind`; a panic fails the
//! test with the op, the seed and the arguments. `QTENSOR_FUZZ_CALLS` sets
//! how many calls (default 20,000; the seed is `QTENSOR_SEED`, default 1);
//! `QTENSOR_FUZZ_TRACE=1` prints each call before making it.

use qtensor::kernel_checks::random_calls::random_call;
use qtensor::kernel_checks::rng::Rng;
use qtensor::{registry, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};

#[test]
fn no_op_panics_on_random_arguments() {
    let calls: usize = std::env::var("QTENSOR_FUZZ_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let seed: u64 = std::env::var("QTENSOR_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let trace = std::env::var_os("QTENSOR_FUZZ_TRACE").is_some();
    let mut rng = Rng::new(seed);
    assert!(registry().ops().len() > 20);
    // As in the fuzz target: valid calls may ask for outputs of many GiB
    // (zeros over an empty tensor's huge other sizes); past 1 GiB they are
    // refused, cleanly.
    qtensor::storage::set_allocation_limit(1 << 30);
    assert_eq!(qtensor::storage::allocation_limit(), 1 << 30);
    let too_big = qtensor::ops::_empty_affine_quantized(&[3 << 30], 0.1, 0, qtensor::DType::QUInt8);
    assert!(matches!(too_big, Err(qtensor::Error::Alloc { .. })), "{too_big:?}");
    let (mut ok, mut err) = (0usize, 0usize);
    // The slowest call, reported (not asserted: timing is for benches) so
    // that a call near a hang shows up.
    let mut slowest = (std::time::Duration::ZERO, String::new());
    for i in 0..calls {
        let (op, args) = random_call(&mut rng);
        let schema = op.entry().schema().clone();
        let described: Vec<String> = args.iter().map(Value::type_name).collect();
        if trace {
            // An abort cannot be caught: name the call before making it.
            eprintln!("call {i}: {}({})", schema.name, described.join(", "));
        }
        let start = std::time::Instant::now();
        match catch_unwind(AssertUnwindSafe(|| op.call(&args))) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(_)) => err += 1,
            Err(_) => panic!("call {i} (seed {seed}): {} panicked on ({})", schema.name, described.join(", ")),
        }
        if start.elapsed() > slowest.0 {
            slowest = (start.elapsed(), format!("call {i}: {}({})", schema.name, described.join(", ")));
        }
    }
    eprintln!("{ok} Ok, {err} Err over {calls} calls; slowest {:?}, {}", slowest.0, slowest.1);
    // Both outcomes must be common, or the generator is not exploring.
    assert!(ok > calls / 20 && err > calls / 20, "{ok} Ok, {err} Err");
}

/// Replays a fuzzer input (`QTENSOR_REPLAY=path`): prints the call the
/// `boxed_call` target makes from it, then makes it.
#[test]
fn replay_a_fuzzer_input() {
    let Some(path) = std::env::var_os("QTENSOR_REPLAY") else { return };
    let data = std::fs::read(path).expect("a readable fuzzer input");
    let (op, args) = random_call(&mut Rng::from_bytes(&data));
    let described: Vec<String> = args.iter().map(Value::type_name).collect();
    eprintln!("{}({})", op.entry().schema().name, described.join(", "));
    for a in &args {
        eprintln!("  {a:?}");
    }
    let start = std::time::Instant::now();
    let result = op.call(&args);
    eprintln!("-> {:?} in {:?}", result.map(|v| v.type_name()), start.elapsed());
}
