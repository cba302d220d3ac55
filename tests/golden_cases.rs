//! The golden cases (copied from PyTorch 2.15, see golden/README.md),
//! run by name through the dispatcher with the same code as `qtensor golden`.

use qtensor::kernel_checks::golden::run_file;

/// The repository's golden cases.
const DEFAULT_CASES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/cases");
use std::path::Path;

/// Every group of the golden suite; every case must pass.
const GROUPS: &[&str] = &[
    "quantize_per_tensor",
    "quantize_per_channel",
    "dequantize",
    "int_repr",
    "make_quantized",
    "views",
    "print",
    "add",
    "add_relu",
    "mul",
    "cat",
    "relu",
    "pool",
    "linear",
    "linear_dynamic",
    "conv2d",
    "activations",
    "mean",
    "batch_norm2d",
    "resample",
    "avg_pool2d",
    "add_mul_exact",
    "qint32_arithmetic",
    "adaptive_avg_pool2d",
    "float_ops",
];

fn case_count(group: &str) -> usize {
    let text = std::fs::read_to_string(Path::new(DEFAULT_CASES_DIR).join(format!("{group}.json")))
        .expect("case file is readable");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("case file is JSON");
    doc["cases"].as_array().expect("cases array").len()
}

#[test]
fn every_group_passes_every_case() {
    for group in GROUPS {
        let report = run_file(&Path::new(DEFAULT_CASES_DIR).join(format!("{group}.json")));
        let failures: Vec<String> = report.failures.iter().map(|f| f.to_string()).collect();
        assert!(failures.is_empty(), "{group}:\n{}", failures.join("\n"));
        assert_eq!(
            report.passed + report.other_engine.len(),
            case_count(group),
            "{group}: every case must run (or be for another engine)"
        );
        assert!(report.passed > 0, "{group} has cases");
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
    let mut known: Vec<String> = GROUPS.iter().map(|s| s.to_string()).collect();
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
    let r = qtensor::kernel_checks::golden::run_paths(std::slice::from_ref(&dir), |_, _| {});
    assert_eq!((r.passed, r.failed()), (0, 2));
    assert!(r.failures.iter().any(|f| f.id.ends_with("bad.json") && f.message.contains("malformed")));
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
    let msg = qtensor::kernel_checks::golden::run_case(&case).unwrap_err();
    assert_eq!(msg, "data at index 2: expected 4, got 3");
}
