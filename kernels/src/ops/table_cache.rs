//! The lookup tables of the table-driven activations (`activation`),
//! kept across calls.
//!
//! A table is 256 evaluations of the op's arithmetic (512 with PyTorch's
//! scalar-tail table): about 6 µs, half the time of a hardswish over a
//! 7x7 map of 960 channels, paid again at every call with the same
//! qparams. A network calls each activation with a handful of qparams,
//! so the tables are kept, keyed by everything they depend on. The cache
//! is small and bounded: past [`CAPACITY`] entries the oldest goes.

use parking_lot::Mutex;
use qtensor_runtime::DType;
use std::sync::Arc;

/// Entries kept: a network's activations with their qparams (MobileNetV3
/// has about 30), and room to spare.
pub(crate) const CAPACITY: usize = 64;

/// Everything a table depends on: the op (its function), the stored
/// dtype, the input's and the output's qparams, and the op's own
/// parameters (a clamp's bounds).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TableKey {
    /// The op, which names the function the table holds.
    pub op: &'static str,
    /// The input's (and output's) stored dtype.
    pub dtype: DType,
    /// The input scale's bits and zero point.
    pub input: (u64, i64),
    /// The output scale's bits and zero point.
    pub output: (u64, i64),
    /// The op's own parameters (a clamp's integer bounds), else zeros.
    pub extra: [i64; 2],
}

/// An op's outputs for every stored byte: in PyTorch's vector body, and in
/// its scalar tail.
pub(crate) struct Tables {
    /// For the positions PyTorch computes in its vector loop.
    pub vector: [u8; 256],
    /// For the positions past them.
    pub scalar: [u8; 256],
}

static CACHE: Mutex<Vec<(TableKey, Arc<Tables>)>> = Mutex::new(Vec::new());

/// The tables for `key`, made by `make` and kept if they are not yet.
pub(crate) fn tables(key: TableKey, make: impl FnOnce() -> Tables) -> Arc<Tables> {
    if let Some(t) = cached(&key) {
        return t;
    }
    // Made outside the lock: another thread may make the same tables at
    // the same time, and both are the same bytes.
    let made = Arc::new(make());
    let mut cache = CACHE.lock();
    if !cache.iter().any(|(k, _)| *k == key) {
        if cache.len() >= CAPACITY {
            cache.remove(0);
        }
        cache.push((key, made.clone()));
    }
    made
}

/// The tables for `key`, if kept.
pub(crate) fn cached(key: &TableKey) -> Option<Arc<Tables>> {
    CACHE.lock().iter().find(|(k, _)| k == key).map(|(_, t)| t.clone())
}

#[cfg(test)]
mod tests {
    use super::{cached, tables, TableKey, Tables, CAPACITY};
    use qtensor_runtime::DType;

    fn key(i: i64) -> TableKey {
        // An op name no other test uses, so tests running alongside do not
        // share entries.
        TableKey { op: "table_cache_test", dtype: DType::QUInt8, input: (1, i), output: (2, 0), extra: [0, 0] }
    }

    #[test]
    fn tables_are_made_once_per_key_and_the_cache_stays_bounded() {
        let make = |v: u8| Tables { vector: [v; 256], scalar: [v.wrapping_add(1); 256] };
        let first = tables(key(0), || make(7));
        assert_eq!((first.vector[0], first.scalar[255]), (7, 8));
        // A second call with the same key does not make them again.
        let again = tables(key(0), || panic!("made twice")); // ok: a test
        assert_eq!(again.vector[3], 7);
        for i in 1..=CAPACITY as i64 {
            tables(key(i), || make(i as u8));
        }
        // The oldest entry went; the newest are kept, with their bytes.
        assert!(cached(&key(0)).is_none());
        assert_eq!(cached(&key(CAPACITY as i64)).map(|t| t.vector[0]), Some(CAPACITY as u8));
        assert!(super::CACHE.lock().len() <= CAPACITY);
    }
}
