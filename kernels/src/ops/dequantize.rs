//! dequantize of per-tensor quint8, qint8 and qint32 to f32 over an ISA's
//! slice routines, bit-exact with `numerics::dequantize_val`: `(q -
//! zero_point) as f32 * scale as f32`. Per-channel tensors are declined,
//! to the reference kernel.

use crate::parallel::for_each_chunk;
use crate::vector::VectorIsa;
use qtensor_runtime::{DType, Error, Result, Storage, Tensor};

/// Output chunks of at least this many bytes are worth non-temporal stores.
const STREAM_BYTES: usize = 4 << 20;

/// dequantize through `isa`.
pub fn dequantize<I: VectorIsa>(isa: I, q: &Tensor) -> Result<Tensor> {
    let Some((scale, zp)) = q.quantizer().and_then(|quantizer| quantizer.per_tensor_qparams()) else {
        // Per-channel tensors, and the errors of non-quantized ones.
        return Err(Error::declined("dequantize: not a per-tensor quantized tensor"));
    };
    let scale = scale as f32;
    let storage = Storage::for_overwrite(DType::Float32.storage_type(), q.numel())?;
    // Decided per chunk, as chunks are what each store loop writes.
    let stream = |len: usize| len * 4 >= STREAM_BYTES;
    {
        let mut dst = storage.write::<f32>()?;
        match q.dtype() {
            DType::QUInt8 => q.with_contiguous::<u8, _>(|s| {
                for_each_chunk(&mut dst, |at, d| {
                    isa.dequantize_bytes(&s[at..at + d.len()], d, scale, zp, stream(d.len()))
                })
            })?,
            DType::QInt8 => q.with_contiguous::<i8, _>(|s| {
                for_each_chunk(&mut dst, |at, d| {
                    isa.dequantize_bytes(&s[at..at + d.len()], d, scale, zp, stream(d.len()))
                })
            })?,
            DType::QInt32 => q.with_contiguous::<i32, _>(|s| {
                for_each_chunk(&mut dst, |at, d| isa.dequantize_i32(&s[at..at + d.len()], d, scale, zp))
            })?,
            _ => {
                return Err(Error::declined("dequantize: a dtype without a vector loop"));
            }
        }
    }
    Tensor::from_storage(storage, DType::Float32, q.sizes())
}
