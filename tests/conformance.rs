//! The golden cases (copied from PyTorch 2.15, see conformance/README.md),
//! run by name through the dispatcher with the same code as `qtensor conform`.

use qtensor::golden::{run_file, DEFAULT_CASES_DIR};
use std::path::Path;

/// Groups whose kernels exist: every case must pass.
const IMPLEMENTED: &[&str] = &[
    "quantize_per_tensor",
    "quantize_per_channel",
    "dequantize",
    "int_repr",
    "make_quantized",
    "views",
    "print",
];

/// Groups whose kernels come with the quantized-operator issue: until then a
/// case may fail only with the dispatcher's missing-kernel error.
const PENDING: &[&str] = &[
    "add",
    "add_relu",
    "mul",
    "cat",
    "relu",
    "pool",
    "linear",
    "linear_dynamic",
    "conv2d",
];

fn case_count(group: &str) -> usize {
    let text = std::fs::read_to_string(Path::new(DEFAULT_CASES_DIR).join(format!("{group}.json")))
        .expect("case file is readable");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("case file is JSON");
    doc["cases"].as_array().expect("cases array").len()
}

#[test]
fn implemented_groups_pass_every_case() {
    for group in IMPLEMENTED {
        let report = run_file(&Path::new(DEFAULT_CASES_DIR).join(format!("{group}.json")));
        let failures: Vec<String> = report.failures.iter().map(|f| f.to_string()).collect();
        assert!(failures.is_empty(), "{group}:\n{}", failures.join("\n"));
        assert_eq!(report.passed, case_count(group), "{group}: every case must run");
        assert!(report.passed > 0, "{group} has cases");
    }
}

#[test]
fn pending_groups_fail_only_for_missing_kernels() {
    for group in PENDING {
        let report = run_file(&Path::new(DEFAULT_CASES_DIR).join(format!("{group}.json")));
        assert_eq!(
            report.passed + report.failed(),
            case_count(group),
            "{group}: every case must run"
        );
        for f in &report.failures {
            assert!(f.message.contains("no kernel for"), "{group}: {f}");
        }
    }
}

#[test]
fn every_case_file_is_covered_by_a_test() {
    let mut groups: Vec<String> = std::fs::read_dir(DEFAULT_CASES_DIR)
        .expect("cases dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    groups.sort();
    let mut known: Vec<String> = IMPLEMENTED.iter().chain(PENDING).map(|s| s.to_string()).collect();
    known.sort();
    // README.md is not a case file.
    groups.retain(|g| g != "README");
    assert_eq!(groups, known);
}

#[test]
fn a_malformed_case_file_is_one_failure_not_a_crash() {
    let dir = std::env::temp_dir().join(format!("qtensor-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let wrong = dir.join("wrong.json");
    std::fs::write(&wrong, r#"{"format": "qtensor-conformance/1", "cases": [{"id": "x/0", "op": "dequantize", "args": [{"dtype": "quint8"}]}]}"#).unwrap();
    let r = qtensor::golden::run_paths(std::slice::from_ref(&dir), |_, _| {});
    assert_eq!((r.passed, r.failed()), (0, 2));
    assert!(r
        .failures
        .iter()
        .any(|f| f.id.ends_with("bad.json") && f.message.contains("malformed")));
    assert!(r.failures.iter().any(|f| f.id == "x/0" && f.message.contains("shape")));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_wrong_expectation_is_reported_with_index_expected_and_got() {
    let case: serde_json::Value = serde_json::from_str(
        r#"{"id": "t/0", "op": "int_repr", "args": [{"dtype": "quint8", "shape": [3], "qscheme": "per_tensor_affine", "scale": 0.5, "zero_point": 1, "int_repr": [1, 2, 3]}],
            "expect": {"dtype": "uint8", "shape": [3], "data": [1, 2, 4]}}"#,
    )
    .unwrap();
    let msg = qtensor::golden::run_case(&case).unwrap_err();
    assert_eq!(msg, "data at index 2: expected 4, got 3");
}
