//! The standard workloads of docs/benchmarks.md under criterion, one thread:
//! `cargo bench --bench workloads`. `qtensor bench --json` times the same
//! calls on the same inputs, in the format the peers' scripts print.

// The bench harness is the `qtensor` binary's (`qtensor bench`); the
// criterion benches time the same cases.
#[path = "../src/bin/qtensor/bench/mod.rs"]
#[allow(dead_code)]
mod bench;

use bench::workloads::workloads;
use criterion::{criterion_group, criterion_main, Criterion};

fn standard(c: &mut Criterion) {
    // One thread, as the per-core comparisons are made.
    qtensor::set_num_threads(1).expect("one thread");
    let filter = std::env::var("QTENSOR_BENCH_FILTER").unwrap_or_default();
    let mut group = c.benchmark_group("workloads");
    group.sample_size(10);
    for w in workloads(&filter).expect("workload inputs") {
        group.bench_function(w.name, |b| b.iter(|| (w.run)().expect("workload call")));
    }
    group.finish();
}

criterion_group!(benches, standard);
criterion_main!(benches);
