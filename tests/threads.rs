//! `set_num_threads`, `num_threads` and `with_num_threads`: the kernels run
//! on qtensor's own pool, of the size asked for, and rayon's global pool
//! is never resized. (Its own test binary: it changes a process-wide
//! setting.)

use qtensor::{num_threads, set_num_threads, threads, with_num_threads, DType, Quantizer, Tensor};
use std::collections::HashSet;
use std::sync::Mutex;

/// The distinct threads that run the chunks of a parallel loop started
/// the way kernels start theirs, `expected` of them if the pool has them.
///
/// Each chunk holds its thread until `expected` threads have run one (or
/// 20 s pass): on a loaded machine a pool thread can otherwise wake after
/// the others have run every chunk. A pool of more threads still shows
/// more, as the chunks left then run at once.
fn threads_used(expected: usize) -> usize {
    use rayon::prelude::*;
    use std::time::{Duration, Instant};
    let seen = Mutex::new(HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    threads::install(|| {
        (0..64).into_par_iter().for_each(|_| {
            seen.lock().unwrap().insert(std::thread::current().id());
            while seen.lock().unwrap().len() < expected && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    });
    seen.into_inner().unwrap().len()
}

#[test]
fn set_num_threads_takes_effect_and_leaves_rayons_pool_alone() {
    let global = rayon::current_num_threads();
    set_num_threads(1).unwrap();
    assert_eq!(num_threads(), 1);
    assert_eq!(threads::install(rayon::current_num_threads), 1);
    assert_eq!(threads_used(1), 1);

    set_num_threads(2).unwrap();
    assert_eq!(num_threads(), 2);
    assert_eq!(threads::install(rayon::current_num_threads), 2);
    assert_eq!(threads_used(2), 2);
    // The kernels' workers are qtensor's, by name.
    let name = threads::install(|| std::thread::current().name().map(str::to_string));
    assert!(name.is_some_and(|n| n.starts_with("qtensor-")));

    // The scoped form, nested, and restored after.
    let inner = with_num_threads(3, || {
        let here = (num_threads(), threads_used(3));
        let nested = with_num_threads(1, num_threads).unwrap();
        (here, nested, num_threads())
    })
    .unwrap();
    assert_eq!(inner, ((3, 3), 1, 3));
    assert_eq!(num_threads(), 2);

    // A big op runs on the pool and gives the same bits at any size.
    let x = Tensor::from_vec((0..1 << 20).map(|i| (i % 1000) as f32 * 0.01 - 5.0).collect::<Vec<f32>>(), &[1 << 20])
        .unwrap();
    let q = Quantizer::per_tensor(0.05, 3, DType::QUInt8).unwrap();
    let two = qtensor::quantize(&x, &q).unwrap().int_values().unwrap();
    let one = with_num_threads(1, || qtensor::quantize(&x, &q).unwrap().int_values().unwrap()).unwrap();
    assert_eq!(one, two);

    assert!(set_num_threads(0).is_err());
    assert!(with_num_threads(0, || ()).is_err());
    assert_eq!(rayon::current_num_threads(), global, "rayon's global pool changed size");
}

/// Run by [`the_environment_variable_sets_the_default`] in a child
/// process, with `QTENSOR_NUM_THREADS` set.
#[test]
#[ignore = "run in a child process by the_environment_variable_sets_the_default"]
fn report_the_default_thread_count() {
    println!("default threads: {}", num_threads());
    println!("pool threads: {}", threads::install(rayon::current_num_threads));
}

#[test]
fn the_environment_variable_sets_the_default() {
    let run = |value: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "report_the_default_thread_count", "--nocapture", "--test-threads", "1"])
            .env("QTENSOR_NUM_THREADS", value)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let three = run("3");
    assert!(three.contains("default threads: 3") && three.contains("pool threads: 3"), "{three}");
    // A value that is not a positive integer is ignored: the CPU count.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(run("zero").contains(&format!("default threads: {cpus}")));
}

/// A pass keeps the other workers looking for work while it runs: its
/// loops still give the same results, a pass inside a pass and a panic
/// inside one leave the pool as it was, and every pass ends (the workers
/// never wait on it).
#[test]
fn passes_share_work_nest_and_end() {
    use rayon::prelude::*;
    let sums = |n: u64| -> Vec<u64> {
        (0..200u64).map(|i| (0..n).into_par_iter().map(|j| (j * j) ^ i).sum::<u64>()).collect()
    };
    let expected = with_num_threads(1, || sums(5000)).unwrap();
    for n in 2..=4 {
        let (outer, inner, used) = with_num_threads(n, || {
            threads::install_pass(|| {
                let outer = sums(5000);
                let inner = threads::install_pass(|| sums(5000));
                (outer, inner, threads_used(n))
            })
        })
        .unwrap();
        assert_eq!(outer, expected, "{n} threads");
        assert_eq!(inner, expected, "{n} threads, nested pass");
        assert_eq!(used, n, "{n} threads: a pass's loops run on every worker");

        let panicked = with_num_threads(n, || {
            std::panic::catch_unwind(|| threads::install_pass(|| -> u64 { panic!("inside a pass") }))
        })
        .unwrap();
        assert!(panicked.is_err());
        let after = with_num_threads(n, || threads::install_pass(|| sums(5000))).unwrap();
        assert_eq!(after, expected, "{n} threads, after a panicking pass");
    }
}
