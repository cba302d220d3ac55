//! Each vectorized kernel against its reference kernel, on one thread, in
//! the same run: `cargo bench --bench kernels`. The ratio of the two
//! figures of a group is the speedup (`qtensor bench --kernels` prints it).

// The bench harness is the `qtensor` binary's (`qtensor bench`); the
// criterion benches time the same cases.
#[path = "../src/bin/qtensor/bench/mod.rs"]
#[allow(dead_code)]
mod bench;

use bench::kernels::{cases, reference_and_chosen};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const N: usize = 1 << 20;

fn kernels(c: &mut Criterion) {
    // One thread, as the per-core comparisons are made.
    qtensor::set_num_threads(1).expect("one thread");
    for case in cases(N).expect("bench inputs") {
        let (reference, chosen) = reference_and_chosen(&case).expect("kernels");
        let mut group = c.benchmark_group(&case.name);
        group.throughput(Throughput::Elements(N as u64)).sample_size(10);
        group.bench_function(reference.name, |b| b.iter(|| (reference.func)(&case.args)));
        if chosen.name != reference.name {
            group.bench_function(chosen.name, |b| b.iter(|| (chosen.func)(&case.args)));
        }
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
