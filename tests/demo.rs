//! `qtensor demo` runs end to end and shows each part of the note.
#![cfg(feature = "cli")]

#[test]
fn the_demo_walks_through_the_note() {
    let dir = std::env::temp_dir().join(format!("qtensor-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The demo is the `qtensor` binary's, not the library's.
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_qtensor")).arg("demo").arg("--dir").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "share one quantizer: true",
        "quantization_scheme=per_channel_affine",
        "_empty_affine_quantized",
        "_make_per_tensor_quantized_tensor",
        "shares storage with q: true",
        "keeps its axis",
        "float <- quantized is an error",
        "round-trips exactly: true",
        "did you mean `quantize_per_tensor`",
        "QuantizedConvReLU2d(2, 3, kernel_size=(3, 3)",
        "QuantizedLinear(in_features=48, out_features=4",
        "the Profiling layer saw every op call",
        "quantized::conv2d_relu",
    ] {
        assert!(text.contains(needle), "demo output lacks {needle:?}:\n{text}");
    }
    assert!(dir.join("qtensor-demo.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}
