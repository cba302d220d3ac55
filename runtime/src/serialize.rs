//! Saving and loading named tensors in the safetensors format.
//!
//! - Plain tensors are stored as themselves (F32, F64, I64, I32, I16, I8, U8).
//! - A quantized tensor `w` stores its integers as `w` (U8, I8, I16 or I32)
//!   and its qparams in the header metadata, under `w.__qtensor__`:
//!   `{"dtype":"qint8","qscheme":"per_tensor_affine","scale":"0.1","zero_point":"0"}`
//!   (scales as shortest round-trip decimal strings, so they are exact).
//! - A per-channel tensor adds the companion tensors `w.__scales__` (F64)
//!   and `w.__zero_points__` (I64), and `"axis"` in its metadata.
//!
//! Any safetensors reader (Python's `safetensors.numpy.load_file`, say)
//! reads every tensor; qtensor also restores the quantizers. Loading checks
//! everything: a truncated, corrupt or hostile file is an error, never a
//! panic, and allocates no more than the file's own size.

use crate::dtype::{DType, StorageType};
use crate::error::{Error, Result};
use crate::quantizer::{QParams, Quantizer};
use crate::storage::Storage;
use crate::tensor::Tensor;
use safetensors::tensor::{Dtype as StDtype, TensorView};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[cfg(target_endian = "big")]
compile_error!("qtensor's safetensors support assumes a little-endian target");

const QPARAMS_SUFFIX: &str = ".__qtensor__";
const SCALES_SUFFIX: &str = ".__scales__";
const ZERO_POINTS_SUFFIX: &str = ".__zero_points__";

fn st_dtype(stype: StorageType) -> Result<StDtype> {
    Ok(match stype {
        StorageType::F32 => StDtype::F32,
        StorageType::F64 => StDtype::F64,
        StorageType::I64 => StDtype::I64,
        StorageType::I32 => StDtype::I32,
        StorageType::I16 => StDtype::I16,
        StorageType::I8 => StDtype::I8,
        StorageType::U8 => StDtype::U8,
        StorageType::U4x2 => return Err(Error::Serialization("packed 4-bit tensors cannot be saved yet".into())),
    })
}

fn plain_dtype(st: StDtype) -> Result<DType> {
    Ok(match st {
        StDtype::F32 => DType::Float32,
        StDtype::F64 => DType::Float64,
        StDtype::I64 => DType::Int64,
        StDtype::I32 => DType::Int32,
        StDtype::I16 => DType::Int16,
        StDtype::I8 => DType::Int8,
        StDtype::U8 => DType::UInt8,
        other => return Err(Error::Serialization(format!("unsupported safetensors dtype {other:?}"))),
    })
}

fn err(msg: impl Into<String>) -> Error {
    Error::Serialization(msg.into())
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || [QPARAMS_SUFFIX, SCALES_SUFFIX, ZERO_POINTS_SUFFIX].iter().any(|s| name.ends_with(s)) {
        return Err(err(format!("invalid tensor name `{name}`")));
    }
    Ok(())
}

/// Serializes named tensors to safetensors bytes.
pub fn save_to_bytes(tensors: &[(&str, &Tensor)]) -> Result<Vec<u8>> {
    let mut blobs: BTreeMap<String, (StDtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
    let mut metadata: HashMap<String, String> = HashMap::new();
    metadata.insert("format".into(), "qtensor/1".into());
    for (name, t) in tensors {
        check_name(name)?;
        if blobs.contains_key(*name) {
            return Err(err(format!("tensor name `{name}` appears twice")));
        }
        let c = t.contiguous_copy()?;
        let bytes = c.storage().bytes().to_vec();
        blobs.insert(name.to_string(), (st_dtype(t.dtype().storage_type())?, t.sizes().to_vec(), bytes));
        if let Some(q) = t.quantizer() {
            let mut fields: Vec<(String, String)> =
                vec![("dtype".into(), q.dtype().name().into()), ("qscheme".into(), q.qscheme().name().into())];
            match q.params() {
                QParams::PerTensorAffine { scale, zero_point, .. } => {
                    fields.push(("scale".into(), format!("{scale:?}")));
                    fields.push(("zero_point".into(), zero_point.to_string()));
                }
                QParams::PerChannelAffine { scales, zero_points, axis, .. } => {
                    fields.push(("axis".into(), axis.to_string()));
                    let s: Vec<u8> = scales.iter().flat_map(|v| v.to_le_bytes()).collect();
                    let z: Vec<u8> = zero_points.iter().flat_map(|v| v.to_le_bytes()).collect();
                    blobs.insert(format!("{name}{SCALES_SUFFIX}"), (StDtype::F64, vec![scales.len()], s));
                    blobs.insert(format!("{name}{ZERO_POINTS_SUFFIX}"), (StDtype::I64, vec![zero_points.len()], z));
                }
            }
            let json =
                serde_json::Value::Object(fields.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect());
            metadata.insert(format!("{name}{QPARAMS_SUFFIX}"), json.to_string());
        }
    }
    let views = blobs
        .iter()
        .map(|(n, (dt, shape, bytes))| {
            Ok((n.clone(), TensorView::new(*dt, shape.clone(), bytes).map_err(|e| err(e.to_string()))?))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, &Some(metadata)).map_err(|e| err(e.to_string()))
}

/// Saves named tensors to a safetensors file.
pub fn save(path: impl AsRef<Path>, tensors: &[(&str, &Tensor)]) -> Result<()> {
    let bytes = save_to_bytes(tensors)?;
    std::fs::write(path.as_ref(), bytes).map_err(|e| Error::Io(format!("{}: {e}", path.as_ref().display())))
}

/// Loads every tensor of a safetensors file, sorted by name.
pub fn load(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(path.as_ref()).map_err(|e| Error::Io(format!("{}: {e}", path.as_ref().display())))?;
    load_from_bytes(&bytes)
}

fn companion(st: &SafeTensors<'_>, name: &str, want: StDtype, len: usize) -> Result<Vec<u8>> {
    let v = st.tensor(name).map_err(|_| err(format!("missing companion tensor `{name}`")))?;
    if v.dtype() != want || v.shape() != [len] {
        return Err(err(format!(
            "companion tensor `{name}` must be {want:?} of shape [{len}], found {:?} {:?}",
            v.dtype(),
            v.shape()
        )));
    }
    Ok(v.data().to_vec())
}

fn quantizer_from_metadata(
    st: &SafeTensors<'_>,
    name: &str,
    json: &str,
    sizes: &[usize],
) -> Result<std::sync::Arc<Quantizer>> {
    let bad = |what: &str| err(format!("tensor `{name}`: {what} in its quantization metadata"));
    let v: serde_json::Value = serde_json::from_str(json).map_err(|_| bad("invalid JSON"))?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).ok_or_else(|| bad(&format!("missing or non-string `{k}`")));
    let dtype = DType::from_name(field("dtype")?).filter(|d| d.is_quantized()).ok_or_else(|| bad("unknown dtype"))?;
    let q = match field("qscheme")? {
        "per_tensor_affine" => {
            let scale: f64 = field("scale")?.parse().map_err(|_| bad("invalid scale"))?;
            let zp: i64 = field("zero_point")?.parse().map_err(|_| bad("invalid zero_point"))?;
            Quantizer::per_tensor(scale, zp, dtype)?
        }
        "per_channel_affine" => {
            let axis: usize = field("axis")?.parse().map_err(|_| bad("invalid axis"))?;
            let channels = *sizes.get(axis).ok_or_else(|| bad("axis out of range"))?;
            let s = companion(st, &format!("{name}{SCALES_SUFFIX}"), StDtype::F64, channels)?;
            let z = companion(st, &format!("{name}{ZERO_POINTS_SUFFIX}"), StDtype::I64, channels)?;
            let scales = s.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
            let zps = z.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
            Quantizer::per_channel(scales, zps, axis, dtype)?
        }
        other => return Err(bad(&format!("unknown qscheme `{other}`"))),
    };
    q.check_fits("load", sizes)?;
    Ok(q)
}

/// The largest JSON header accepted: room for about 100,000 tensors. The
/// safetensors crate's parser needs some 30 times a header's size, so the
/// cap bounds what a hostile header can make it allocate.
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// The most dimensions a loaded tensor may have.
pub const MAX_RANK: usize = 64;

/// Checks the header's length and every `shape`'s rank before the bytes
/// reach the safetensors parser, which would materialize them first.
fn check_header(bytes: &[u8]) -> Result<()> {
    let len = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    let len = len.ok_or_else(|| err("not a valid safetensors file: shorter than its 8-byte header length"))?;
    if len > MAX_HEADER_BYTES {
        return Err(err(format!("the header claims {len} bytes; at most {MAX_HEADER_BYTES} are accepted")));
    }
    let header = bytes.get(8..8 + len as usize).ok_or_else(|| {
        err(format!("not a valid safetensors file: the header claims {len} bytes but the file has {}", bytes.len()))
    })?;
    // Count the entries of each `"shape": [...]` list.
    let mut rest = header;
    while let Some(at) = find(rest, b"\"shape\"") {
        rest = &rest[at + 7..];
        let open = rest.iter().position(|&b| b == b'[').unwrap_or(rest.len());
        let close = rest.iter().position(|&b| b == b']').unwrap_or(rest.len());
        if open < close {
            let dims = rest[open..close].iter().filter(|&&b| b == b',').count() + 1;
            if dims > MAX_RANK {
                return Err(err(format!("a tensor has {dims} dimensions; at most {MAX_RANK} are accepted")));
            }
        }
        rest = &rest[close.min(rest.len())..];
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses safetensors bytes into named tensors, sorted by name.
pub fn load_from_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    check_header(bytes)?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| err(format!("not a valid safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| err(format!("not a valid safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    for name in names {
        if name.ends_with(SCALES_SUFFIX) || name.ends_with(ZERO_POINTS_SUFFIX) {
            continue;
        }
        let view = st.tensor(&name).map_err(|e| err(e.to_string()))?;
        let plain = plain_dtype(view.dtype())?;
        let sizes = view.shape().to_vec();
        let numel = crate::tensor::layout::checked_numel("load", &sizes)?;
        let storage = Storage::from_bytes(plain.storage_type(), numel, view.data())?;
        let t = Tensor::from_storage(storage, plain, &sizes)?;
        let t = match metadata.get(&format!("{name}{QPARAMS_SUFFIX}")) {
            Some(json) => {
                let q = quantizer_from_metadata(&st, &name, json, &sizes)?;
                Tensor::from_int_repr(&t, &q)?
            }
            None => t,
        };
        out.push((name, t));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_plain_and_quantized() -> Result<(), Box<dyn std::error::Error>> {
        let f = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0], &[2, 2])?;
        let ints = Tensor::from_slice(&[1i8, -2, 3, 4, 5, 6], &[3, 2])?;
        let qt = Tensor::from_int_repr(&ints, &Quantizer::per_tensor(0.1, -3, DType::QInt8)?)?;
        let qc = Tensor::from_int_repr(&ints, &Quantizer::per_channel(vec![0.5, 0.25], vec![1, -1], 1, DType::QInt8)?)?;
        let bytes = save_to_bytes(&[("f", &f), ("qt", &qt), ("qc", &qc.transpose(0, 1)?)])?;
        let loaded = load_from_bytes(&bytes)?;
        let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["f", "qc", "qt"]);
        assert_eq!(loaded[0].1.to_vec::<f32>()?, f.to_vec::<f32>()?);
        assert_eq!(loaded[2].1.quantizer(), qt.quantizer());
        assert_eq!(loaded[2].1.int_values()?, qt.int_values()?);
        let qc_t = qc.transpose(0, 1)?;
        assert_eq!(loaded[1].1.sizes(), &[2, 3]);
        assert_eq!(loaded[1].1.q_per_channel_axis()?, 0);
        assert_eq!(loaded[1].1.int_values()?, qc_t.int_values()?);
        assert_eq!(loaded[1].1.real_values()?, qc_t.real_values()?);
        Ok(())
    }

    #[test]
    fn corrupt_files_are_errors() -> Result<(), Box<dyn std::error::Error>> {
        let f = Tensor::from_slice(&[1.5f32, -2.0], &[2])?;
        let q = Tensor::from_int_repr(
            &Tensor::from_slice(&[1u8, 2], &[2])?,
            &Quantizer::per_tensor(0.5, 3, DType::QUInt8)?,
        )?;
        let good = save_to_bytes(&[("f", &f), ("q", &q)])?;
        // Every truncation fails cleanly.
        for cut in 0..good.len() {
            assert!(load_from_bytes(&good[..cut]).is_err(), "truncated at {cut}");
        }
        // A huge header length.
        let mut huge = good.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(load_from_bytes(&huge).is_err());
        // A hostile header: a huge shape and an offset past the end.
        for header in [
            r#"{"x":{"dtype":"F32","shape":[1000000000000,1000000000000],"data_offsets":[0,8]}}"#,
            r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,800000000]}}"#,
            r#"{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"__metadata__":{"x.__qtensor__":"{\"dtype\":\"quint8\",\"qscheme\":\"per_tensor_affine\",\"scale\":\"-1\",\"zero_point\":\"0\"}"}}"#,
            r#"{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"__metadata__":{"x.__qtensor__":"not json"}}"#,
            r#"{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"__metadata__":{"x.__qtensor__":"{\"dtype\":\"quint8\",\"qscheme\":\"per_channel_affine\",\"axis\":\"0\"}"}}"#,
            r#"{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"__metadata__":{"x.__qtensor__":"{\"dtype\":\"qint8\",\"qscheme\":\"per_tensor_affine\",\"scale\":\"1\",\"zero_point\":\"0\"}"}}"#,
            r#"{"x":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}"#,
        ] {
            let mut b = (header.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(header.as_bytes());
            b.extend_from_slice(&[0, 0]);
            assert!(load_from_bytes(&b).is_err(), "{header}");
        }
        Ok(())
    }
}
