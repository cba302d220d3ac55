//! quantized::cat for per-tensor quint8/qint8 over an ISA's slice
//! routines: inputs that already have the output qparams are copied, the
//! others requantized (within one step of the exact value).

use crate::args::layout::channels_last_output;
use crate::args::quantized::per_tensor;
use crate::vector::{ByteElement, RequantParams, VectorIsa};
use qtensor_runtime::numerics::Requantizer;
use qtensor_runtime::storage::{checked_count, try_filled, try_vec};
use qtensor_runtime::tensor::format::channels_last_strides;
use qtensor_runtime::tensor::layout::wrap_dim;
use qtensor_runtime::{DType, Error, MemoryFormat, QScheme, Quantizer, Result, Storage, Tensor};
use std::sync::Arc;

/// Runs shorter than this many elements that need requantizing are
/// requantized in one pass over their input (see `cat_bytes`).
const SHORT_RUN: usize = 256;

/// The output of a cat: its sizes, dim and qparams.
struct CatOutput {
    sizes: Vec<usize>,
    dim: usize,
    quantizer: Arc<Quantizer>,
    scale: f64,
    zero_point: i64,
    /// PyTorch's channels-last path (see `numerics::Requantizer`).
    channels_last: bool,
}

fn cat_bytes<I: VectorIsa, B: ByteElement>(isa: I, op: &str, xs: &[Tensor], out: &CatOutput) -> Result<Tensor> {
    let (sizes, d) = (&out.sizes, out.dim);
    let total = checked_count(op, sizes)?;
    // On the channels-last path every input is a dense NHWC tensor: each
    // pixel's channels are one run, and the output is NHWC too. Otherwise
    // the inputs are read row-major. With no elements there is nothing to
    // loop over (the outer sizes may still be huge).
    // Inputs whose pixels are runs of channels (channels-last views, such
    // as a channel slice of one) are concatenated pixel by pixel into a
    // channels-last output too, on either path's arithmetic: PyTorch's
    // generic path also keeps the inputs' common format.
    let runs: Option<Vec<PixelRuns>> =
        if out.channels_last || d != 1 || sizes.len() != 4 { None } else { xs.iter().map(PixelRuns::of).collect() };
    let nhwc = out.channels_last || runs.is_some();
    let (outer, inner) = match (total, nhwc) {
        (0, _) => (0, 1),
        (_, true) => (sizes[0] * sizes[2] * sizes[3], 1),
        (_, false) => (
            qtensor_runtime::tensor::layout::numel_of(&sizes[..d]),
            qtensor_runtime::tensor::layout::numel_of(&sizes[d + 1..]),
        ),
    };
    let storage = Storage::for_overwrite(B::STORAGE, total)?;
    {
        let mut dst = storage.write::<B>()?;
        let mut offset = 0usize;
        let row: usize = sizes[d] * inner;
        for (i, x) in xs.iter().enumerate() {
            let p = per_tensor(op, &format!("qx[{i}]"), x)?;
            let chunk = x.sizes()[d] * inner;
            let copy = p.scale == out.scale && p.zero_point == out.zero_point;
            let rq = RequantParams {
                rq: if out.channels_last {
                    Requantizer::channels_last(p.scale, p.zero_point, out.scale)
                } else {
                    Requantizer::generic(p.scale, p.zero_point, out.scale)
                },
                zo: out.zero_point,
                lo: p.qmin,
                hi: p.qmax,
            };
            // Short runs to requantize (a pixel's few dozen channels) are
            // requantized in one pass over the whole input, then copied: a
            // vector loop over one run would leave most of it to its
            // scalar tail. The requantization does not depend on position.
            let one_pass = !copy && chunk < SHORT_RUN && outer > 1;
            let mut put = |o: usize, s: &[B]| {
                let dst = &mut dst[o * row + offset..o * row + offset + chunk];
                if copy || one_pass {
                    dst.copy_from_slice(s);
                } else {
                    isa.requantize_bytes(s, dst, rq);
                }
            };
            let requantized = |src: &[B]| -> Result<Vec<B>> {
                let mut v = try_filled(src.len(), B::default())?;
                isa.requantize_bytes(src, &mut v, rq);
                Ok(v)
            };
            if let Some(runs) = &runs {
                let src = x.storage().read::<B>()?;
                let run_of = |o: usize| {
                    let at = runs[i].pixel(o);
                    src.get(at..at + chunk).ok_or_else(|| Error::shape(op, "an input lies outside its storage"))
                };
                if one_pass {
                    // The input's pixels, gathered into one run.
                    let mut gathered = try_vec::<B>(outer * chunk)?;
                    for o in 0..outer {
                        gathered.extend_from_slice(run_of(o)?);
                    }
                    let all = requantized(&gathered)?;
                    (0..outer).for_each(|o| put(o, &all[o * chunk..(o + 1) * chunk]));
                } else {
                    for o in 0..outer {
                        put(o, run_of(o)?);
                    }
                }
            } else {
                let mut each_run = |src: &[B]| -> Result<()> {
                    let all = if one_pass { requantized(src)? } else { Vec::new() };
                    let src = if one_pass { &all[..] } else { src };
                    (0..outer).for_each(|o| put(o, &src[o * chunk..(o + 1) * chunk]));
                    Ok(())
                };
                if out.channels_last {
                    x.with_dense::<B, Result<()>>(|src| each_run(src))??;
                } else {
                    x.with_contiguous::<B, Result<()>>(|src| each_run(src))??;
                }
            }
            offset += chunk;
        }
    }
    if nhwc {
        return Tensor::quantized_from_storage_strided(storage, sizes, channels_last_strides(sizes), &out.quantizer);
    }
    let y = Tensor::quantized_from_storage(storage, sizes, &out.quantizer)?;
    if channels_last_output(xs, d) {
        y.contiguous_in(MemoryFormat::ChannelsLast)
    } else {
        Ok(y)
    }
}

/// Where a 4-d input's pixels lie in its storage, when each pixel's
/// channels are one run (channel stride 1, pixels at least a run apart in
/// row-major pixel order): a channels-last tensor, or a view of one.
struct PixelRuns {
    offset: usize,
    strides: [usize; 3],
    /// Pixels per image row, and per image.
    w: usize,
    hw: usize,
}

impl PixelRuns {
    fn of(x: &Tensor) -> Option<PixelRuns> {
        let (s, t) = (x.sizes(), x.strides());
        let (c, h, w) = (s[1], s[2], s[3]);
        let channel_run = t[1] == 1 || c == 1;
        // Pixels in row-major order, each past the previous pixel's run
        // (so that no two pixels overlap, as in a real channels-last view).
        let ordered = t[3] >= c
            && (h == 1 || t[2] >= w.saturating_mul(t[3]))
            && (s[0] == 1 || t[0] >= h.saturating_mul(t[2].max(w.saturating_mul(t[3]))));
        (channel_run && ordered && x.numel() > 0).then(|| PixelRuns {
            offset: x.storage_offset(),
            strides: [t[0], t[2], t[3]],
            w,
            hw: h * w,
        })
    }

    /// The storage offset of pixel `o` (counting row-major over n, h, w).
    fn pixel(&self, o: usize) -> usize {
        let (img, y, xx) = (o / self.hw, (o % self.hw) / self.w, o % self.w);
        self.offset + img * self.strides[0] + y * self.strides[1] + xx * self.strides[2]
    }
}

/// quantized::cat through `isa` where it applies.
pub fn cat<I: VectorIsa>(
    isa: I,
    xs: &[Tensor],
    dim: i64,
    scale: Option<f64>,
    zero_point: Option<i64>,
) -> Result<Tensor> {
    let op = "quantized::cat";
    let decline = |why| Err(Error::declined(why));
    let Some(first) = xs.first() else { return decline("quantized::cat: no input") };
    let bytes = matches!(first.dtype(), DType::QUInt8 | DType::QInt8);
    let uniform = xs.iter().all(|x| {
        x.dtype() == first.dtype() && x.ndim() == first.ndim() && x.qscheme().ok() == Some(QScheme::PerTensorAffine)
    });
    if !bytes || !uniform || first.ndim() == 0 {
        return decline("quantized::cat: inputs other than per-tensor quint8 or qint8 of one dtype and rank");
    }
    let d = wrap_dim(op, dim, first.ndim())?;
    if xs.iter().any(|x| x.sizes().iter().zip(first.sizes()).enumerate().any(|(j, (a, b))| j != d && a != b)) {
        return decline("quantized::cat: inputs whose other dimensions differ");
    }
    let p0 = per_tensor(op, "qx[0]", first)?;
    let (so, zo) = (scale.unwrap_or(p0.scale), zero_point.unwrap_or(p0.zero_point));
    let channels_last = crate::args::layout::channels_last_path(xs, d);
    // Scales whose f32 forms (in the path this call takes) are not finite,
    // or vanish, go to the reference, which handles the degenerate results.
    let ratios_fit = xs.iter().all(|x| {
        x.per_tensor_qparams().is_some_and(|(_, s, z)| {
            let r = if channels_last { Requantizer::channels_last(s, z, so) } else { Requantizer::generic(s, z, so) };
            r.scale.is_finite() && r.offset.is_finite() && r.inv.is_finite() && r.scale != 0.0
        })
    });
    if !ratios_fit {
        return decline("quantized::cat: scale ratios f32 cannot hold");
    }
    let quantizer = crate::args::quantized::output_quantizer(op, first.dtype(), so, zo)?;
    let mut sizes = first.sizes().to_vec();
    sizes[d] = match xs.iter().try_fold(0usize, |acc, x| acc.checked_add(x.sizes()[d])) {
        Some(total) => total,
        None => return decline("quantized::cat: a total size that overflows"),
    };
    let out = CatOutput { sizes, dim: d, quantizer, scale: so, zero_point: zo, channels_last };
    match first.dtype() {
        DType::QUInt8 => cat_bytes::<I, u8>(isa, op, xs, &out),
        _ => cat_bytes::<I, i8>(isa, op, xs, &out),
    }
}
