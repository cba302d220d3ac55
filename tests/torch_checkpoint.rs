//! `qtensor::torch::load` on a checkpoint that PyTorch writes (skipped, with
//! a message, where Python has no torch), and on hostile archives: wrong
//! magic, truncated storages, disallowed globals, sizes that overflow, views
//! outside their storage, and byte-level corruption of a valid file. Each
//! must be an error, never a panic.

mod common;

use qtensor::torch::{load, load_bytes, TorchValue};
use qtensor::{DType, QScheme, Tensor};
use std::io::Write;

/// Checks a loaded tensor against the JSON description Python wrote.
fn check_tensor(name: &str, t: &Tensor, want: &serde_json::Value) {
    let dtype = want["dtype"].as_str().unwrap();
    assert_eq!(t.dtype().to_string(), dtype, "{name}");
    let sizes: Vec<usize> = want["sizes"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    assert_eq!(t.sizes(), &sizes[..], "{name}");
    let values = want["values"].as_array().unwrap();
    if t.dtype().is_float() {
        let got = t.real_values().unwrap();
        let want: Vec<f64> = values.iter().map(|v| v.as_f64().unwrap()).collect();
        // Python's float() of an f32 round-trips exactly through f64.
        assert_eq!(got, want, "{name}");
    } else {
        let got = t.int_values().unwrap();
        let want: Vec<i64> = values.iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(got, want, "{name}");
    }
    if let Some(scale) = want.get("scale") {
        assert_eq!(t.q_scale().unwrap(), scale.as_f64().unwrap(), "{name}");
        assert_eq!(t.q_zero_point().unwrap(), want["zero_point"].as_i64().unwrap(), "{name}");
    }
    if let Some(scales) = want.get("scales") {
        assert_eq!(t.qscheme().unwrap(), QScheme::PerChannelAffine, "{name}");
        let got = t.q_per_channel_scales().unwrap().real_values().unwrap();
        let want_scales: Vec<f64> = scales.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(got, want_scales, "{name}");
        assert_eq!(t.q_per_channel_axis().unwrap(), want["axis"].as_i64().unwrap(), "{name}");
    }
}

#[test]
fn a_checkpoint_written_by_pytorch_loads_exactly() {
    let Some(export) = common::python_export("make_torch_checkpoint.py", "torch-checkpoint", &[], &[]) else {
        return;
    };
    let (pt, json) = (export.file("ck.pt"), export.file("ck.json"));
    let state = load(&pt).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let expected = expected.as_object().unwrap();
    assert_eq!(state.len(), expected.len());
    for (name, want) in expected {
        let got = state.get(name).unwrap_or_else(|| panic!("{name} missing"));
        match (got, want) {
            (TorchValue::Tensor(t), w) if w.get("values").is_some() => check_tensor(name, t, w),
            (TorchValue::DType(d), w) if w.get("dtype_constant").is_some() => {
                assert_eq!(d.to_string(), w["dtype_constant"].as_str().unwrap(), "{name}")
            }
            (TorchValue::Tuple(items), serde_json::Value::Array(ws)) => {
                // A quantized Linear's (weight, bias).
                assert_eq!(items.len(), ws.len(), "{name}");
                for (item, w) in items.iter().zip(ws) {
                    match (item, w) {
                        (TorchValue::Tensor(t), w) => check_tensor(name, t, w),
                        (TorchValue::None, serde_json::Value::Null) => {}
                        other => panic!("{name}: {other:?}"),
                    }
                }
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(state.get("conv.weight").and_then(TorchValue::as_tensor).unwrap().dtype(), DType::QInt8);
}

/// A pickle of `{'w': _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}`
/// over a `FloatStorage` with key `0` and `numel` elements; `global` replaces
/// the rebuild function's `module\nname` when given.
fn pickle(numel: u32, offset: u8, size: &[u32], stride: &[u32], global: Option<&str>) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'X'];
    p.extend(1u32.to_le_bytes());
    p.push(b'w');
    p.push(b'c');
    p.extend(global.unwrap_or("torch._utils\n_rebuild_tensor_v2").as_bytes());
    p.push(b'\n');
    p.push(b'(');
    // The persistent id ('storage', torch.FloatStorage, '0', 'cpu', numel).
    p.push(b'(');
    p.push(b'X');
    p.extend(7u32.to_le_bytes());
    p.extend(b"storage");
    p.extend(b"ctorch\nFloatStorage\n");
    for s in ["0", "cpu"] {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    }
    p.push(b'J');
    p.extend(numel.to_le_bytes());
    p.extend([b't', b'Q', b'K', offset]);
    for dims in [size, stride] {
        p.push(b'(');
        for &d in dims {
            p.push(b'J');
            p.extend(d.to_le_bytes());
        }
        p.push(b't');
    }
    p.push(0x89);
    p.extend(b"ccollections\nOrderedDict\n)R");
    p.extend([b't', b'R', b's', b'.']);
    p
}

/// A zip archive `archive/` with `data.pkl` and the storage `data/0`.
fn archive(pickle: &[u8], storage: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", opts).unwrap();
    zip.write_all(pickle).unwrap();
    zip.start_file("archive/byteorder", opts).unwrap();
    zip.write_all(b"little").unwrap();
    zip.start_file("archive/data/0", opts).unwrap();
    zip.write_all(storage).unwrap();
    zip.finish().unwrap().into_inner()
}

fn floats(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}

#[test]
fn a_hand_made_checkpoint_loads_its_view() {
    let bytes = archive(&pickle(12, 1, &[2, 3], &[4, 1], None), &floats(12));
    let state = load_bytes(&bytes).unwrap();
    let t = state.get("w").and_then(TorchValue::as_tensor).unwrap();
    assert_eq!(t.sizes(), &[2, 3]);
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 5.0, 6.0, 7.0]);
}

#[test]
fn hostile_checkpoints_are_errors() {
    let err = |bytes: &[u8]| load_bytes(bytes).unwrap_err().to_string();
    // Not a zip at all, and the pre-1.6 legacy format.
    assert!(err(b"\x80\x02}q\x00.").contains("not a torch.save checkpoint"), "{}", err(b"\x80\x02}q\x00."));
    assert!(err(b"PK\x03\x04garbage").contains("not a torch.save checkpoint"));
    // A storage shorter than its declared element count.
    let e = err(&archive(&pickle(12, 0, &[3], &[1], None), &floats(5)));
    assert!(e.contains("storage 0") && e.contains("declared"), "{e}");
    // A global outside the allow-list is refused by name, not called.
    let e = err(&archive(&pickle(12, 0, &[3], &[1], Some("os\nsystem")), &floats(12)));
    assert!(e.contains("`os.system` is not allowed"), "{e}");
    // Element counts whose byte size overflows.
    let e = err(&archive(&pickle(u32::MAX, 0, &[3], &[1], None), &floats(12)));
    assert!(e.contains("storage 0"), "{e}");
    // Views that reach past their storage, or claim more elements than it
    // holds (memory would not be bounded by the archive).
    for (size, stride) in
        [(vec![4u32], vec![4u32]), (vec![1 << 20, 1 << 20], vec![0, 0]), (vec![u32::MAX, u32::MAX, 2], vec![1, 1, 1])]
    {
        let e = err(&archive(&pickle(12, 0, &size, &stride, None), &floats(12)));
        assert!(e.contains("outside its storage"), "{size:?} {stride:?}: {e}");
    }
    // A truncated pickle.
    let p = pickle(12, 0, &[3], &[1], None);
    let e = err(&archive(&p[..p.len() - 3], &floats(12)));
    assert!(e.contains("data.pkl"), "{e}");
}

#[test]
fn cyclic_and_deeply_nested_pickles_are_errors() {
    let err = |pickle: &[u8]| load_bytes(&archive(pickle, &floats(1))).unwrap_err().to_string();
    // A list that holds itself: `]q\0 h\0 a`. Reference counting would
    // never free it.
    let e = err(b"\x80\x02]q\x00h\x00a.");
    assert!(e.contains("cyclic"), "{e}");
    // The same through a tuple, a dict value and APPENDS.
    let e = err(b"\x80\x02]q\x00(h\x00\x85e.");
    assert!(e.contains("cyclic"), "{e}");
    let e = err(b"\x80\x02}q\x00X\x01\x00\x00\x00kh\x00\x85s.");
    assert!(e.contains("cyclic"), "{e}");
    // Nesting as deep as the file is long would overflow the stack when the
    // result is read or dropped: 100,000 lists, each appended to the last.
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.extend(std::iter::repeat_n(b'a', 99_999));
    deep.push(b'.');
    let e = err(&deep);
    assert!(e.contains("nest more than"), "{e}");
    // The same depth reached through tuples.
    let mut deep = b"\x80\x02N".to_vec();
    deep.extend(std::iter::repeat_n(0x85, 100_000));
    deep.push(b'.');
    let e = err(&deep);
    assert!(e.contains("nest more than"), "{e}");
}

#[test]
fn corrupting_any_byte_of_a_valid_checkpoint_never_panics() {
    let good = archive(&pickle(12, 1, &[2, 3], &[4, 1], None), &floats(12));
    let (mut errors, mut loaded) = (0, 0);
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            // Either an error or (where the byte did not matter, in a
            // value or a zip comment) a state dict; never a panic.
            match load_bytes(&bad) {
                Ok(state) => {
                    loaded += 1;
                    assert!(state.len() <= 1);
                }
                Err(_) => errors += 1,
            }
        }
        // Every strict prefix is truncated.
        assert!(load_bytes(&good[..i]).is_err(), "a prefix of {i} bytes loaded");
    }
    assert!(errors > 0 && loaded > 0, "{errors} errors, {loaded} loaded");
}

#[test]
fn per_channel_values_print_pytorchs_digits() {
    // PyTorch: (f32(q) - zp) times the f64 scale, rounded to f32 once:
    // 1.6937482 here (checked against torch 2.15), where the all-f32
    // product gives 1.6937481.
    let ints = Tensor::from_vec(vec![127i8, 30], &[2, 1]).unwrap();
    let q = qtensor::Quantizer::per_channel(vec![0.0133366, 0.01], vec![0, 0], 0, DType::QInt8).unwrap();
    let t = Tensor::from_int_repr(&ints, &q).unwrap();
    let want = ((127.0f32 - 0.0) as f64 * 0.0133366) as f32;
    assert_ne!(want, 127.0f32 * 0.0133366f64 as f32, "the case must tell the two formulas apart");
    assert_eq!(t.real_values().unwrap()[0], want as f64);
    let d = qtensor::ops::dequantize(&t).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(d[0], want);
}
