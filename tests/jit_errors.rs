//! Hostile or broken TorchScript files give errors that name the file, the
//! line or the op, never panics. The archives are written here by hand, as
//! `torch.jit.save` lays them out, so no PyTorch is needed.

use qtensor::jit;
use qtensor::{Tensor, Value};
use std::io::Write;

/// A pickle of an empty tuple: `constants.pkl` of a model without constants.
const EMPTY_TUPLE: &[u8] = b"\x80\x02).";

/// An archive with the given code and constants pickle, plus any extra
/// entries.
fn archive(code: &str, constants: &[u8], extra: &[(&str, &[u8])]) -> Vec<u8> {
    archive_of(ROOT, code, constants, extra)
}

/// The root module of a frozen file: an object of the model's class with no state.
const ROOT: &[u8] = b"\x80\x02c__torch__\nM\nq\x00)\x81}b.";

/// An archive whose root module pickle is `root`.
fn archive_with_root(root: &[u8], code: &str, constants: &[u8]) -> Vec<u8> {
    archive_of(root, code, constants, &[])
}

fn archive_of(root: &[u8], code: &str, constants: &[u8], extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let mut entries: Vec<(&str, &[u8])> = vec![
            ("m/version", b"3"),
            ("m/byteorder", b"little"),
            ("m/data.pkl", root),
            ("m/code/__torch__/m.py", code.as_bytes()),
            ("m/constants.pkl", constants),
        ];
        entries.extend_from_slice(extra);
        for (name, bytes) in entries {
            z.start_file(name, opts).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

fn module(body: &str) -> String {
    format!("class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n  def forward(self: __torch__.M,\n    x: Tensor) -> Tensor:\n{body}")
}

fn error_of(bytes: &[u8]) -> String {
    match jit::load_bytes(bytes) {
        Ok(m) => match m.forward(&[Value::Tensor(Tensor::from_vec(vec![0.5f32; 4], &[1, 1, 2, 2]).unwrap())]) {
            Ok(v) => panic!("expected an error, got {}", v.type_name()),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_archive_runs() -> qtensor::Result<()> {
    let code = module("    x0 = torch.quantize_per_tensor(x, 0.5, 0, 13)\n    _0 = torch.ne(torch.len(torch.size(x0)), 4)\n    if _0:\n      ops.prim.RaiseException(\"bad rank\", \"builtins.ValueError\")\n    else:\n      pass\n    return torch.dequantize(torch.relu(x0))\n");
    let m = jit::load_bytes(&archive(&code, EMPTY_TUPLE, &[]))?;
    assert_eq!(m.inputs()[0].name, "x");
    assert!(m.op_calls().contains(&("quantize_per_tensor".to_string(), 1)));
    let x = Tensor::from_vec(vec![-1.0f32, 0.2, 0.8, 3.0], &[1, 1, 2, 2])?;
    assert_eq!(m.run(&x)?.to_vec::<f32>()?, vec![0.0, 0.0, 1.0, 3.0]);
    // The model's own check fails on a 2-d input: its message comes back.
    let e = m.run(&Tensor::from_vec(vec![1.0f32; 4], &[2, 2])?).unwrap_err().to_string();
    assert!(e.contains("bad rank") && e.contains("ValueError"), "{e}");
    Ok(())
}

#[test]
fn an_unknown_global_is_refused() {
    let pickle = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03\x85.";
    let e = error_of(&archive(&module("    return x\n"), pickle, &[]));
    assert!(e.contains("os.system") && e.contains("not allowed"), "{e}");
}

#[test]
fn an_unknown_global_in_the_root_module_is_refused() {
    let root: &[u8] = b"\x80\x02cbuiltins\neval\nq\x00)\x81}b.";
    let e = error_of(&archive_with_root(root, &module("    return x\n"), EMPTY_TUPLE));
    assert!(e.contains("data.pkl") && e.contains("builtins.eval") && e.contains("not allowed"), "{e}");
}

#[test]
fn a_module_that_is_not_frozen_says_to_freeze_it() {
    let e = error_of(&archive(&module("    return x\n"), EMPTY_TUPLE, &[("m/data/0", b"\0\0\0\0")]));
    assert!(e.contains("call torch.jit.freeze before torch.jit.save"), "{e}");
    let two_methods = format!("{}  def helper(self: __torch__.M) -> int:\n    return 1\n", module("    return x\n"));
    let e = error_of(&archive(&two_methods, EMPTY_TUPLE, &[]));
    assert!(e.contains("call torch.jit.freeze before torch.jit.save"), "{e}");
}

#[test]
fn an_unknown_op_is_named_with_its_line() {
    let e = error_of(&archive(&module("    y = ops.quantized.frobnicate(x, 1)\n    return y\n"), EMPTY_TUPLE, &[]));
    assert!(e.contains("code/__torch__/m.py:6") && e.contains("quantized::frobnicate"), "{e}");
}

#[test]
fn wrong_argument_counts_and_types_are_named() {
    let e = error_of(&archive(&module("    return torch.relu(x, 1, 2)\n"), EMPTY_TUPLE, &[]));
    assert!(e.contains(":6:") && e.contains("relu"), "{e}");
    let e = error_of(&archive(&module("    return torch.max_pool2d(x, \"wide\", [1, 1])\n"), EMPTY_TUPLE, &[]));
    assert!(e.contains(":6:") && e.contains("kernel_size"), "{e}");
}

#[test]
fn a_truncated_entry_is_an_error() {
    // A pickle cut short, and an archive cut short.
    let e = error_of(&archive(&module("    return x\n"), b"\x80\x02(", &[]));
    assert!(e.contains("constants.pkl"), "{e}");
    let whole = archive(&module("    return x\n"), EMPTY_TUPLE, &[]);
    for cut in [10, whole.len() / 2, whole.len() - 5] {
        assert!(jit::load_bytes(&whole[..cut]).is_err());
    }
}

#[test]
fn a_missing_constant_is_named() {
    let e = error_of(&archive(&module("    return torch.mul(x, CONSTANTS.c3)\n"), EMPTY_TUPLE, &[]));
    assert!(e.contains(":6:") && e.contains("CONSTANTS.c3") && e.contains("missing"), "{e}");
}

#[test]
fn a_deep_expression_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let body = format!("    return {}x{}\n", "torch.relu(".repeat(depth), ")".repeat(depth));
    let e = error_of(&archive(&module(&body), EMPTY_TUPLE, &[]));
    assert!(e.contains(":6:") && e.contains("nested deeper"), "{e}");
}

#[test]
fn a_state_dict_checkpoint_is_not_taken_for_a_script() {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file("m/data.pkl", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(b"\x80\x02}.").unwrap();
        z.finish().unwrap();
    }
    let e = jit::load_bytes(&buf.into_inner()).unwrap_err().to_string();
    assert!(e.contains("torch.save checkpoint"), "{e}");
}

#[test]
fn nested_loops_share_one_iteration_budget() {
    // Each loop is short; together they would run 10^9 times.
    let body = "    for _0 in range(1000):\n      for _1 in range(1000):\n        for _2 in range(1000):\n          _3 = torch.relu(x)\n    return x\n";
    let e = error_of(&archive(&module(body), EMPTY_TUPLE, &[]));
    assert!(e.contains("at most 65536") && e.contains(":8:"), "{e}");
}

#[test]
fn a_list_appended_to_itself_cannot_grow_without_bound() {
    // Each append would double the list's elements: 2^60 of them after
    // the loop.
    let body = "    l = [1, 2]\n    for _0 in range(60):\n      _1 = torch.append(l, l)\n    return x\n";
    let e = error_of(&archive(&module(body), EMPTY_TUPLE, &[]));
    assert!(e.contains("append makes a list") && e.contains(":8:"), "{e}");
    // A long flat list is refused once it passes the bound.
    let body = "    l = [1]\n    for _0 in range(65000):\n      l0 = torch.append(l, [1, 2, 3])\n    return x\n";
    let e = error_of(&archive(&module(body), EMPTY_TUPLE, &[]));
    assert!(e.contains("more than 65536 elements"), "{e}");
}
