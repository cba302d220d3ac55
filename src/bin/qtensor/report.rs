//! Human-readable views of the registry, for `qtensor ops`.

use qtensor::{registry, KernelInfo, Result};
use std::fmt::Write as _;

/// Every operator with its schema and, per (key, dtype), its kernels in
/// priority order, marked `chosen` or `not supported on this CPU`. Dtypes
/// whose kernel lists are identical share one line.
pub fn registry_table() -> Result<String> {
    let d = registry();
    let mut out = String::new();
    let (cap, best) = (qtensor::isa::cap(), qtensor::Isa::best_detected());
    if cap < best {
        writeln!(out, "ISA: {cap} (capped by QTENSOR_ISA or set_isa_cap; this CPU has {best})").ok();
    } else {
        writeln!(out, "ISA: {best} (no cap; set QTENSOR_ISA=portable|avx2|avx512vnni|amx|neon to limit it)").ok();
    }
    writeln!(out, "{}", qtensor::kernels::narrow_gemm()).ok();
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
        // Group by (key, dtype), then merge dtypes with the same kernel lines.
        let mut groups: Vec<(qtensor::DispatchKey, Vec<qtensor::DType>, Vec<String>)> = Vec::new();
        let mut i = 0;
        while i < kernels.len() {
            let (key, dtype) = (kernels[i].key, kernels[i].dtype);
            let lines: Vec<String> =
                kernels[i..].iter().take_while(|k| (k.key, k.dtype) == (key, dtype)).map(kernel_line).collect();
            i += lines.len();
            match groups.iter_mut().find(|(k, _, l)| *k == key && *l == lines) {
                Some(g) => g.1.push(dtype),
                None => groups.push((key, vec![dtype], lines)),
            }
        }
        for (key, dtypes, lines) in groups {
            let names: Vec<&str> = dtypes.iter().map(|d| d.name()).collect();
            writeln!(out, "    ({key}, {}):", names.join(" | ")).ok();
            for l in lines {
                writeln!(out, "        {l}").ok();
            }
        }
    }
    Ok(out)
}

fn kernel_line(k: &KernelInfo) -> String {
    let mark = if k.chosen {
        "tried first"
    } else if !k.supported {
        "not supported on this CPU or above the ISA cap"
    } else {
        "next if the ones above decline"
    };
    format!("{:<44} priority {:<11} {:<48} {mark}", k.name, k.priority, k.location)
}
