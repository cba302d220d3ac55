//! Every registered kernel that this CPU supports, checked against its op's
//! reference kernel with `qtensor::conformance`; kernels this CPU cannot run
//! are reported as skipped, by name.

use qtensor::conformance::{check_all, CheckConfig, Outcome};

#[test]
fn every_supported_kernel_agrees_with_its_reference() {
    let cfg = CheckConfig::default();
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
    // On a CPU with AVX2 the AVX2 kernels are checked, not skipped.
    let avx2_checked = outcomes.iter().any(|o| matches!(o, Outcome::Passed(r) if r.kernel.starts_with("avx2_")));
    let avx2_skipped =
        outcomes.iter().any(|o| matches!(o, Outcome::Skipped { kernel, .. } if kernel.starts_with("avx2_")));
    assert!(
        avx2_checked != avx2_skipped || cfg!(not(target_arch = "x86_64")),
        "AVX2 kernels must be either checked or reported skipped"
    );
}
