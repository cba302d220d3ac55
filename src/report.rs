//! Human-readable views of the registry, for `qtensor ops`.

use crate::{registry, Result};
use std::fmt::Write as _;

/// Every operator with its schema and, per (key, dtype), its kernels in
/// priority order, marked `chosen` or `not supported on this CPU`.
pub fn registry_table() -> Result<String> {
    let d = registry();
    let mut out = String::new();
    for e in d.registration_errors() {
        writeln!(out, "REJECTED: {e}").ok();
    }
    for op in d.ops() {
        let entry = op.entry();
        writeln!(out, "{}  [{}]", entry.schema(), entry.source()).ok();
        let kernels = entry.kernels();
        if kernels.is_empty() {
            writeln!(out, "    (no kernel registered)").ok();
        }
        let mut last = None;
        for k in kernels {
            if last != Some((k.key, k.dtype)) {
                writeln!(out, "    ({}, {}):", k.key, k.dtype).ok();
                last = Some((k.key, k.dtype));
            }
            let mark = if k.chosen {
                "chosen"
            } else if !k.supported {
                "not supported on this CPU"
            } else {
                "available"
            };
            writeln!(out, "        {:<44} priority {:>3}  {mark}", k.name, k.priority).ok();
        }
    }
    Ok(out)
}
