//! Every registered kernel that this CPU supports, checked against its op's
//! reference kernel with `qtensor::kernel_checks`; kernels this CPU cannot run
//! are reported as skipped, by name.

use qtensor::kernel_checks::{check_all, CheckConfig, Outcome};
use std::path::PathBuf;

/// The defaults, with the repository's golden cases.
fn with_golden_cases() -> CheckConfig {
    CheckConfig {
        golden: vec![PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/cases"))],
        ..CheckConfig::default()
    }
}

#[test]
fn every_supported_kernel_agrees_with_its_reference() {
    check_every_kernel(with_golden_cases());
}

/// The same with 2,000 valid cases per kernel (`QTENSOR_CASES` overrides),
/// in release builds only (`cargo test --release`, which `.ci/run` runs for
/// every ISA cap): enough to reach rare corners such as extreme scale
/// ratios.
#[test]
#[cfg(not(debug_assertions))]
fn every_supported_kernel_agrees_on_many_cases() {
    let cases = std::env::var("QTENSOR_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    check_every_kernel(CheckConfig { cases, bad_cases: 200, ..with_golden_cases() });
}

fn check_every_kernel(cfg: CheckConfig) {
    let outcomes = check_all(&cfg);
    let mut failures = Vec::new();
    let (mut passed, mut compared) = (0, 0);
    for o in &outcomes {
        match o {
            Outcome::Passed(r) => {
                passed += 1;
                if r.kernel != r.reference {
                    compared += 1;
                    assert!(
                        r.matched > 0 || r.golden > 0,
                        "{} `{}` ({}) was never compared on a valid input",
                        r.op,
                        r.kernel,
                        r.dtype
                    );
                }
            }
            Outcome::Failed(f) => failures.push(f.to_string()),
            Outcome::Skipped { op, kernel, reason } => eprintln!("skipped: {op} kernel `{kernel}`: {reason}"),
        }
    }
    assert!(failures.is_empty(), "{} kernel(s) failed:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{passed} kernels passed ({compared} compared with a reference kernel), seed {}", cfg.seed);
    assert!(passed > 50);
    let golden: usize = outcomes.iter().map(|o| if let Outcome::Passed(r) = o { r.golden } else { 0 }).sum();
    assert!(golden > 1000, "only {golden} golden case runs: is tests/golden/cases there?");
    // On a CPU with AVX2 the AVX2 kernels are checked, not skipped.
    let avx2_checked = outcomes.iter().any(|o| matches!(o, Outcome::Passed(r) if r.kernel.starts_with("avx2_")));
    let avx2_skipped =
        outcomes.iter().any(|o| matches!(o, Outcome::Skipped { kernel, .. } if kernel.starts_with("avx2_")));
    assert!(
        avx2_checked != avx2_skipped || cfg!(not(target_arch = "x86_64")),
        "AVX2 kernels must be either checked or reported skipped"
    );
}
