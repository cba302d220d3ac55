//! quantized::conv2d and conv2d_relu on the GEMM kernels, over channels-last
//! activations: 1x1 convs as plain GEMMs, depthwise convs through the ISA's
//! direct routine, and the rest through im2col. Channels-last inputs need
//! no layout conversion; NCHW ones are transposed in and out.

use super::depthwise::{DepthwiseArgs, LayoutCache};
use super::driver::{gemm_prepared, Activations, Rows, Weights};
use super::epilogue::{column_requant, Epilogue, Requant, RequantForm};
use super::kernel::GemmIsa;
use super::packed::PackedB;
use super::row_stores::{copy_run, zero_tail};
use super::saturating;
use super::shifted::ShiftedRows;
use super::{byte_sum, MAX_K};
use crate::aligned::AlignedVec;
use crate::args::conv::ConvParams;
use crate::args::linear::qint8_weight_rows;
use crate::args::quantized::{bias_values, output_quantizer, per_tensor};
use crate::parallel;
use qtensor_runtime::engine::{conv_route, ConvRoute};
use qtensor_runtime::storage::{checked_count, try_filled};
use qtensor_runtime::tensor::format::channels_last_strides;
use qtensor_runtime::{DType, Error, MemoryFormat, QScheme, Result, Storage, StorageType, Tensor};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// A conv weight packed per group for the GEMM kernels, with k ordered
/// (ky, kx, ic) to match im2col rows of an NHWC input.
#[derive(Debug, Clone)]
pub struct GemmConvWeight {
    /// Output channels, input channels per group, kernel height and width.
    pub shape: [usize; 4],
    /// One packed matrix per group: `[OC/groups, KH*KW*IC/groups]`.
    pub groups: Vec<PackedB>,
    /// Zero point of each output channel.
    pub zero_points: Vec<i32>,
    /// False when every weight zero point is 0 (symmetric weights, the
    /// usual case): the GEMM then never reads the activations' row sums,
    /// so they are not computed.
    pub needs_row_sums: bool,
    /// Scale of each output channel.
    pub scales: Vec<f64>,
    /// True for a weight quantized per tensor (fbgemm's bias term differs).
    pub per_tensor: bool,
    /// The weight minus its zero point, as f32, `[OC][KH*KW]` (the NCHW
    /// depthwise path).
    pub depthwise: Vec<f32>,
    /// The same, tap-major: `[KH*KW][OC]` (the NHWC depthwise path).
    pub depthwise_taps: Vec<f32>,
    /// The same, tap-major, widened: `[KH*KW][OC]` (`gemm::saturating`).
    pub depthwise_raw_taps: Vec<i32>,
    /// The depthwise weight in an ISA's own layout, made on first use.
    pub depthwise_layout: LayoutCache,
    /// Each group's raw weight rows in im2col order, laid out for fbgemm's
    /// int16 pair sums (`saturating::PairRows`), made on the first call
    /// that needs them.
    pub pairs: OnceLock<Vec<saturating::PairRows>>,
}

impl GemmConvWeight {
    /// Packs a qint8 weight `[OC, IC/g, KH, KW]` for `groups` groups.
    pub fn pack(w: &Tensor, groups: usize) -> Result<GemmConvWeight> {
        let op = "quantized::conv2d";
        let qp = qint8_weight_rows(op, w, "[OC, IC/groups, KH, KW]")?;
        let s = w.sizes();
        let [oc, icg, kh, kw] = [s[0], s[1], s[2], s[3]];
        if groups == 0 || oc % groups != 0 {
            return Err(Error::shape(op, format!("groups {groups} must divide the {oc} output channels")));
        }
        let ints = w.to_vec::<i8>()?;
        let ocg = oc / groups;
        let k = kh * kw * icg;
        let mut packed = Vec::with_capacity(groups);
        for g in 0..groups {
            // Reorder [ocg][ic][ky][kx] to [ocg][ky][kx][ic].
            let mut m = try_filled(checked_count(op, &[ocg, k])?, 0i8)?;
            for o in 0..ocg {
                for ic in 0..icg {
                    for t in 0..kh * kw {
                        m[o * k + t * icg + ic] = ints[((g * ocg + o) * icg + ic) * kh * kw + t];
                    }
                }
            }
            packed.push(PackedB::pack(&m, ocg, k)?);
        }
        let depthwise = if icg == 1 {
            ints.iter().enumerate().map(|(i, &v)| (v as i64 - qp[i / (kh * kw)].1) as f32).collect()
        } else {
            Vec::new()
        };
        let taps = kh * kw;
        let depthwise_taps =
            if icg == 1 { (0..taps * oc).map(|i| depthwise[(i % oc) * taps + i / oc]).collect() } else { Vec::new() };
        let depthwise_raw_taps =
            if icg == 1 { (0..taps * oc).map(|i| ints[(i % oc) * taps + i / oc] as i32).collect() } else { Vec::new() };
        Ok(GemmConvWeight {
            depthwise_taps,
            depthwise_raw_taps,
            shape: [oc, icg, kh, kw],
            groups: packed,
            zero_points: qp.iter().map(|p| p.1 as i32).collect(),
            needs_row_sums: qp.iter().any(|p| p.1 != 0),
            scales: qp.iter().map(|p| p.0).collect(),
            per_tensor: w.qscheme()? == QScheme::PerTensorAffine,
            depthwise,
            depthwise_layout: LayoutCache::default(),
            pairs: OnceLock::new(),
        })
    }

    /// [`GemmConvWeight::pairs`], made from the weight tensor `w` it was
    /// packed from on first use.
    fn pair_rows(&self, w: &Tensor) -> Result<&[saturating::PairRows]> {
        if let Some(p) = self.pairs.get() {
            return Ok(p);
        }
        let [_, icg, kh, kw] = self.shape;
        let (taps, groups) = (kh * kw, self.groups.len().max(1));
        // Channels-last order is [oc][ky][kx][ic], the im2col order (and
        // a weight loaded from PyTorch is usually stored so already).
        let rows = w.contiguous_in(MemoryFormat::ChannelsLast)?.with_dense::<i8, Vec<i8>>(|v| v.to_vec())?;
        let per_group = rows.len() / groups;
        let made =
            rows.chunks(per_group.max(1)).map(|g| saturating::PairRows::new(g, taps * icg)).collect::<Result<_>>()?;
        Ok(self.pairs.get_or_init(|| made))
    }
}

/// The packed weights cached on a weight tensor, one per group count.
#[derive(Debug, Default)]
pub struct ConvWeightCache(parking_lot::Mutex<Vec<(usize, Arc<GemmConvWeight>)>>);

/// The packed form of `w` for `groups`, computed once and cached on it.
pub fn conv_weight(w: &Tensor, groups: usize) -> Result<Arc<GemmConvWeight>> {
    let cache = w.cached_derived(|_| Ok(ConvWeightCache::default()))?;
    if let Some((_, p)) = cache.0.lock().iter().find(|(g, _)| *g == groups) {
        return Ok(p.clone());
    }
    let p = Arc::new(GemmConvWeight::pack(w, groups)?);
    cache.0.lock().push((groups, p.clone()));
    Ok(p)
}

/// The shape of one conv call, checked.
#[derive(Clone, Copy)]
struct ConvShape {
    /// Batch, input channels, input height and width.
    input: [usize; 4],
    /// Output channels, input channels per group, kernel height and width.
    weight: [usize; 4],
    /// Output height and width.
    out_hw: [usize; 2],
}

impl ConvShape {
    fn pixels_out(&self) -> usize {
        self.input[0] * self.out_hw[0] * self.out_hw[1]
    }
}

/// The requantization of one call, per output channel.
struct ConvRequant {
    mult: Vec<f32>,
    bias: Vec<f32>,
    zero_point: i32,
    lo: f32,
    zx: i32,
    form: RequantForm,
}

impl ConvRequant {
    /// The epilogue's requantization of output channels `cols`.
    fn of(&self, cols: Range<usize>) -> Requant<'_> {
        Requant {
            mult: &self.mult[cols.clone()],
            bias: &self.bias[cols],
            zero_point: self.zero_point,
            lo: self.lo,
            hi: 255.0,
            form: self.form,
        }
    }
}

/// Static quantized conv2d through `kernel`, or `None` when the fast path
/// does not apply (the caller then runs the reference).
///
/// A channels-last input is read in place and gives a channels-last
/// output; an NCHW input gives an NCHW output, through one transpose each
/// way, as PyTorch's fbgemm path does.
#[allow(clippy::too_many_arguments)]
pub fn gemm_conv2d<K: GemmIsa>(
    op: &str,
    kernel: K,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: ConvParams,
    y_scale: f64,
    y_zero_point: i64,
    relu: bool,
) -> Result<Option<Tensor>> {
    if x.dtype() != DType::QUInt8 || x.ndim() != 4 || w.dtype() != DType::QInt8 || w.ndim() != 4 {
        return Ok(None);
    }
    let [n, c, h, wd] = [x.sizes()[0], x.sizes()[1], x.sizes()[2], x.sizes()[3]];
    let [oc, icg, kh, kw] = [w.sizes()[0], w.sizes()[1], w.sizes()[2], w.sizes()[3]];
    let g = p.groups;
    // Empty inputs, outputs or reductions, and K beyond exact i32 range, go
    // to the reference kernel.
    let empty = [n, c, h, wd, oc, icg, kh, kw].contains(&0);
    if empty || c % g != 0 || oc % g != 0 || c / g != icg || kh * kw * icg > MAX_K {
        return Ok(None);
    }
    let px = per_tensor(op, "X", x)?;
    let out_q = output_quantizer(op, DType::QUInt8, y_scale, y_zero_point)?;
    let (oh, ow) = (p.out_size(op, h, kh, 0)?, p.out_size(op, wd, kw, 1)?);
    let shape = ConvShape { input: [n, c, h, wd], weight: [oc, icg, kh, kw], out_hw: [oh, ow] };
    let b = bias_values(op, bias, oc)?;
    let pw = conv_weight(w, g)?;
    let geometry = p.geometry([n, c, h, wd], oc, [kh, kw], [oh, ow]);
    let route = conv_route(qtensor_runtime::engine(), &geometry, !pw.needs_row_sums);
    // fbgemm's kernels whose int16 pair sums an input above 127 can
    // saturate: its depthwise kernel, and its GEMMs without VNNI.
    let saturating =
        matches!(route, ConvRoute::Fbgemm { saturate: true, .. }) && may_saturate(x, w, &pw, px.zero_point as u8)?;
    let Some((mult, bias, form)) =
        column_requant(px.scale, &pw.scales, &b, (y_scale, y_zero_point), pw.per_tensor, route.into())
    else {
        return Ok(None);
    };
    let rq = ConvRequant {
        form,
        mult,
        bias,
        zero_point: y_zero_point as i32,
        lo: if relu { y_zero_point.max(0) } else { 0 } as f32,
        zx: px.zero_point as i32,
    };
    // A channels-last view that is not dense (a channel slice of an NHWC
    // tensor, as ShuffleNet's blocks take) is copied to dense NHWC, which
    // costs less than the NCHW path's transposes (PyTorch's convs also
    // take and give channels-last here).
    let slice_of_nhwc = x.memory_format() != MemoryFormat::ChannelsLast && is_channels_last_view(x);
    let x_nhwc;
    let x = if slice_of_nhwc {
        x_nhwc = x.contiguous_in(MemoryFormat::ChannelsLast)?;
        &x_nhwc
    } else {
        x
    };
    let channels_last = x.memory_format() == MemoryFormat::ChannelsLast;
    let total = checked_count(op, &[n, oc, oh, ow])?;
    let storage = Storage::for_overwrite(DType::QUInt8.storage_type(), total)?;
    // The direct depthwise routines requantize as fbgemm does per channel;
    // the other forms, and fbgemm's saturating depthwise convs, take
    // `saturating::depthwise_nhwc`; the other saturating convs
    // `saturating::conv_nhwc`.
    let depthwise = icg == 1 && oc == g && kh * kw <= 64;
    let saturating_depthwise = saturating && icg == 1 && p.dilation == [1, 1];
    let saturating_gemm = saturating && !saturating_depthwise;
    let portable_depthwise = saturating_depthwise || !saturating && depthwise && form != RequantForm::Fbgemm;
    let depthwise = depthwise && !saturating && !portable_depthwise;
    // The direct depthwise routines' arguments; `input` is set per layout.
    let dw_base = DepthwiseArgs {
        input: &[],
        input_sizes: [n, h, wd, c],
        output_sizes: [n, oh, ow, oc],
        kernel: [kh, kw],
        stride: p.stride,
        padding: p.padding,
        dilation: p.dilation,
        weights: &pw.depthwise_taps,
        channel_weights: &pw.depthwise,
        zx: rq.zx,
        mult: &rq.mult,
        bias: &rq.bias,
        zero_point: rq.zero_point,
        lo: rq.lo,
        layout: Some(&pw.depthwise_layout),
    };
    if depthwise && !channels_last && p.stride == [1, 1] && p.dilation == [1, 1] {
        // NCHW planes at stride 1: where the ISA has a plane routine, it is
        // as fast as NHWC and needs no transposes.
        let xs = x.contiguous()?;
        let mut dst = storage.write::<u8>()?;
        let done = xs.with_contiguous::<u8, _>(|src| {
            kernel.depthwise_nchw(&DepthwiseArgs { input: src, ..dw_base }, &mut dst)
        })?;
        drop(dst);
        if let Some(result) = done {
            result?;
            return Tensor::quantized_from_storage(storage, &[n, oc, oh, ow], &out_q).map(Some);
        }
    }
    {
        let mut dst = storage.write::<u8>()?;
        // The output in NHWC: `dst` itself for a channels-last result.
        let mut nhwc_out = if channels_last { Vec::new() } else { try_filled::<u8>(total, 0)? };
        let out: &mut [u8] = if channels_last { &mut dst } else { &mut nhwc_out };
        let pointwise_ok = g == 1 && kh == 1 && kw == 1 && p.stride == [1, 1] && p.padding == [0, 0];
        // The direct depthwise routine, where the ISA has one.
        let zx = px.zero_point as u8;
        let direct = if saturating_gemm {
            let xl = x.contiguous_in(MemoryFormat::ChannelsLast)?;
            let rows = (pw.pair_rows(w)?, &pw.zero_points[..]);
            Some(xl.with_dense::<u8, Result<()>>(|src| {
                saturating::conv_nhwc(kernel, &geometry, (src, zx), rows, rq.of(0..oc), out)
            })?)
        } else if portable_depthwise && p.dilation == [1, 1] {
            let xl = x.contiguous_in(MemoryFormat::ChannelsLast)?;
            let taps = saturating::RawTaps { weights: &pw.depthwise_raw_taps, zero_points: &pw.zero_points };
            Some(xl.with_dense::<u8, Result<()>>(|src| {
                saturating::depthwise_nhwc(kernel, &geometry, (src, zx), &taps, rq.of(0..oc), saturating, out)
            })?)
        } else if depthwise {
            let xl = x.contiguous_in(MemoryFormat::ChannelsLast)?;
            xl.with_dense::<u8, Option<Result<()>>>(|src| {
                kernel.depthwise_nhwc(&DepthwiseArgs { input: src, ..dw_base }, out)
            })?
        } else {
            None
        };
        match direct {
            Some(result) => result?,
            None if pointwise_ok => {
                let xl = x.contiguous_in(MemoryFormat::ChannelsLast)?;
                xl.with_dense::<u8, Result<()>>(|src| pointwise(kernel, src, &shape, &pw, &rq, out))??;
            }
            // An NCHW input is transposed straight into the bordered copy.
            None if channels_last => {
                x.with_dense::<u8, Result<()>>(|src| im2col_gemm(kernel, Input::Nhwc(src), &shape, &p, &pw, &rq, out))??
            }
            None => {
                let xc = x.contiguous()?;
                xc.with_dense::<u8, Result<()>>(|src| {
                    im2col_gemm(kernel, Input::Nchw(src), &shape, &p, &pw, &rq, out)
                })??
            }
        }
        if !channels_last {
            nhwc_to_nchw(&nhwc_out, &mut dst, [n, oh * ow, oc]);
        }
    }
    if channels_last {
        let sizes = [n, oc, oh, ow];
        Tensor::quantized_from_storage_strided(storage, &sizes, channels_last_strides(&sizes), &out_q).map(Some)
    } else {
        Tensor::quantized_from_storage(storage, &[n, oc, oh, ow], &out_q).map(Some)
    }
}

/// True when fbgemm's int16 pair sums could leave int16 on `x`: its
/// largest byte times the weight's widest pair (see
/// `reference::int16_pairs`). Activations calibrated with PyTorch's
/// `reduce_range` stay below 128, where no pair can, so the pairs are only
/// made for larger inputs.
fn may_saturate(x: &Tensor, w: &Tensor, pw: &GemmConvWeight, zx: u8) -> Result<bool> {
    let max_x = x.with_dense::<u8, u8>(|s| s.iter().copied().max().unwrap_or(0))?;
    // |w_a| + |w_b| <= 256, and 127 * 256 < 2^15.
    if max_x.max(zx) <= 127 {
        return Ok(false);
    }
    Ok(pw.pair_rows(w)?.iter().any(|g| g.can_saturate(max_x, zx)))
}

/// A 1x1 conv with stride 1 and no padding over NHWC input is a plain GEMM
/// over the pixels: no im2col.
fn pointwise<K: GemmIsa>(
    kernel: K,
    src: &[u8],
    s: &ConvShape,
    pw: &GemmConvWeight,
    rq: &ConvRequant,
    out: &mut [u8],
) -> Result<()> {
    let (m, c) = (s.pixels_out(), s.input[1]);
    let packed = &pw.groups[0];
    let kp = packed.kp;
    let epi = Epilogue::Quantize(rq.of(0..rq.mult.len()));
    // Each pixel's channels, zero-padded to the kernel's K.
    let fill = |rows: Range<usize>, panel: &mut [u8], sums: &mut [i32]| {
        for ((px, row), sum) in rows.zip(panel.chunks_mut(kp)).zip(sums.iter_mut()) {
            let pixel = &src[px * c..(px + 1) * c];
            row[..c].copy_from_slice(pixel);
            row[c..].fill(0);
            *sum = if pw.needs_row_sums { byte_sum(pixel) } else { 0 };
        }
    };
    // Each pixel's channel sum when the weights need row sums, else 0.
    let pixel_sums = || -> Result<Vec<i32>> {
        let mut sums = try_filled::<i32>(m, 0)?;
        let needed = if pw.needs_row_sums { &mut sums[..] } else { &mut [][..] };
        parallel::chunks(needed, 1024, |t, part| {
            for (i, sum) in part.iter_mut().enumerate() {
                let px = t * 1024 + i;
                *sum = byte_sum(&src[px * c..(px + 1) * c]);
            }
        });
        Ok(sums)
    };
    if kp == c {
        // The kernel reads the activations in place; only the sums are new.
        let sums = pixel_sums()?;
        let rows = Rows { data: Activations::Rows { a: src, sums: &sums }, m, zx: rq.zx };
        return gemm_prepared(kernel, rows, Weights { b: packed, zw: &pw.zero_points }, epi, out);
    }
    if kernel.reads_shifted_rows(c, 1) {
        // The kernel reads the pixels in place, K-padded rows reaching into
        // the next pixels against the padding's zero weights: one tap.
        let sums = if pw.needs_row_sums { pixel_sums()? } else { Vec::new() };
        let pixels = ShiftedRows { src, channels: c, taps: &[0], pixel_sums: &sums };
        let rows = Rows { data: Activations::Shifted(pixels), m, zx: rq.zx };
        return gemm_prepared(kernel, rows, Weights { b: packed, zw: &pw.zero_points }, epi, out);
    }
    let rows = Rows { data: Activations::Gather(&fill), m, zx: rq.zx };
    gemm_prepared(kernel, rows, Weights { b: packed, zw: &pw.zero_points }, epi, out)
}

/// The general conv: a zero-point-bordered copy of the NHWC input, and one
/// GEMM per group into NHWC `out`, whose im2col rows are gathered a panel
/// at a time.
#[allow(clippy::too_many_arguments)]
fn im2col_gemm<K: GemmIsa>(
    kernel: K,
    src: Input<'_>,
    s: &ConvShape,
    p: &ConvParams,
    pw: &GemmConvWeight,
    rq: &ConvRequant,
    out: &mut [u8],
) -> Result<()> {
    let [n, c, h, wd] = s.input;
    let [oc, icg, kh, kw] = s.weight;
    let [oh, ow] = s.out_hw;
    let g = p.groups;
    let ocg = oc / g;
    // A copy of the input bordered with the input zero point (a real zero):
    // every tap of every output is then in bounds, and im2col is plain
    // copies.
    let (hp, wp) = (h + 2 * p.padding[0], wd + 2 * p.padding[1]);
    // Aligned: the AMX kernel loads its rows in place, 64 bytes at a time.
    let mut padded = AlignedVec::try_filled(checked_count("quantized::conv2d", &[n, hp, wp, c])?, rq.zx as u8)?;
    parallel::chunks(&mut padded[..], wp * c, |r, prow| {
        let (img, yp) = (r / hp, r % hp);
        if yp < p.padding[0] || yp >= p.padding[0] + h {
            return;
        }
        let (y, row) = (yp - p.padding[0], &mut prow[p.padding[1] * c..][..wd * c]);
        match src {
            Input::Nhwc(src) => row.copy_from_slice(&src[((img * h) + y) * wd * c..][..wd * c]),
            Input::Nchw(src) => {
                // A tile of pixels at a time, so the destination block
                // stays in L1 while every channel is written.
                const TILE: usize = 64;
                for x0 in (0..wd).step_by(TILE) {
                    let width = TILE.min(wd - x0);
                    let block = &mut row[x0 * c..(x0 + width) * c];
                    for ch in 0..c {
                        let line = &src[((img * c + ch) * h + y) * wd + x0..][..width];
                        for (d, &v) in block[ch..].iter_mut().step_by(c).zip(line) {
                            *d = v;
                        }
                    }
                }
            }
        }
    });
    let m = n * oh * ow;
    // With one group, each bordered pixel's channel sum, so that a row's
    // sum is kh * kw additions instead of K.
    let mut pixel_sums = if g == 1 && pw.needs_row_sums { try_filled::<i32>(n * hp * wp, 0)? } else { Vec::new() };
    if !pixel_sums.is_empty() {
        let padded = &padded;
        parallel::chunks(&mut pixel_sums, wp, |r, sums| {
            let row = &padded[r * wp * c..(r + 1) * wp * c];
            for (sum, pixel) in sums.iter_mut().zip(row.chunks(c.max(1))) {
                *sum = byte_sum(pixel);
            }
        });
    }
    // The implicit GEMM's rows run over the bordered input's width: it
    // computes `wp - ow` extra rows per output row (and whole bordered
    // rows between images), against im2col's copies. (`m > 0` first:
    // `n >= 1` and `oh >= 1` below.)
    let implicit = g == 1 && p.stride == [1, 1] && m > 0 && kernel.reads_shifted_rows(c, kh * kw) && {
        let implicit_rows = ((n - 1) * hp + oh - 1) * wp + ow;
        let extra_dots = implicit_rows.saturating_sub(m).saturating_mul(oc);
        extra_dots <= m.saturating_mul(K::DOTS_PER_COPIED_BYTE)
    };
    if implicit && pw.groups[0].kp == kh * kw * c {
        return shifted_gemm(kernel, &padded, &pixel_sums, s, p, pw, rq, out);
    }
    let mut group_out = if g == 1 { Vec::new() } else { try_filled::<u8>(m * ocg, 0)? };
    for grp in 0..g {
        let packed = &pw.groups[grp];
        let kp = packed.kp;
        // Taps of one kernel row are contiguous in the bordered input when
        // there is one group and no horizontal dilation.
        let contiguous = g == 1 && p.dilation[1] == 1;
        let (padded, pixel_sums) = (&padded, &pixel_sums);
        // With contiguous taps, each kernel row's run starts this many
        // pixels after the row's first tap.
        let row_starts: Vec<usize> = (0..kh).map(|ky| ky * p.dilation[0] * wp).collect();
        let fill = |rows: Range<usize>, panel: &mut [u8], sums: &mut [i32]| {
            // Locals, not captures: the row writes below could alias the
            // closure's captured values, which would be reloaded per tap.
            let (padded, row_starts, stride) = (&padded[..], &row_starts[..], p.stride);
            // The first row's pixel, then stepped along (no divisions per row).
            let px0 = rows.start;
            let (mut img, mut y, mut xo) = (px0 / (oh * ow).max(1), (px0 / ow.max(1)) % oh.max(1), px0 % ow.max(1));
            // Rows are written in order, each run and the zero tail by
            // fixed-size stores that may spill into the next row (written
            // after) or the panel's slack: offsets are the panel's.
            for (r, sum) in sums.iter_mut().take(rows.len()).enumerate() {
                let base = r * kp;
                let first = (img * hp + y * stride[0]) * wp + xo * stride[1];
                let at = if contiguous {
                    let run = kw * c;
                    for (ky, &start) in row_starts.iter().enumerate() {
                        copy_run(panel, base + ky * run, padded, (first + start) * c, run);
                    }
                    kh * run
                } else {
                    let mut at = 0;
                    for &start in row_starts {
                        for kx in 0..kw {
                            let pix = first + start + kx * p.dilation[1];
                            copy_run(panel, base + at, padded, pix * c + grp * icg, icg);
                            at += icg;
                        }
                    }
                    at
                };
                zero_tail(panel, base + at, base + kp);
                *sum = match (pw.needs_row_sums, contiguous) {
                    (false, _) => 0,
                    (true, true) => {
                        row_starts.iter().map(|&start| pixel_sums[first + start..][..kw].iter().sum::<i32>()).sum()
                    }
                    (true, false) => byte_sum(&panel[base..base + at]),
                };
                xo += 1;
                if xo == ow {
                    (xo, y) = (0, y + 1);
                    if y == oh {
                        (y, img) = (0, img + 1);
                    }
                }
            }
        };
        let weights = Weights { b: packed, zw: &pw.zero_points[grp * ocg..(grp + 1) * ocg] };
        let epi = Epilogue::Quantize(rq.of(grp * ocg..(grp + 1) * ocg));
        if g == 1 {
            return gemm_prepared(kernel, Rows { data: Activations::Gather(&fill), m, zx: rq.zx }, weights, epi, out);
        }
        gemm_prepared(kernel, Rows { data: Activations::Gather(&fill), m, zx: rq.zx }, weights, epi, &mut group_out)?;
        // This group's channels of every output pixel.
        let group_out = &group_out;
        parallel::chunks(out, oc, |px, pixel| {
            pixel[grp * ocg..(grp + 1) * ocg].copy_from_slice(&group_out[px * ocg..(px + 1) * ocg]);
        });
    }
    Ok(())
}

/// The input of the im2col path, in either layout.
#[derive(Clone, Copy)]
enum Input<'a> {
    /// Channels-last bytes.
    Nhwc(&'a [u8]),
    /// Row-major NCHW bytes.
    Nchw(&'a [u8]),
}

/// A stride-1 conv with one group as an implicit GEMM over the bordered
/// input (see [`ShiftedRows`]): its rows are read in place, never copied.
/// The GEMM runs over every bordered pixel up to the last output's, and
/// the rows of real output pixels are kept.
#[allow(clippy::too_many_arguments)]
fn shifted_gemm<K: GemmIsa>(
    kernel: K,
    padded: &[u8],
    pixel_sums: &[i32],
    s: &ConvShape,
    p: &ConvParams,
    pw: &GemmConvWeight,
    rq: &ConvRequant,
    out: &mut [u8],
) -> Result<()> {
    let [n, c, h, wd] = s.input;
    let [oc, _, kh, kw] = s.weight;
    let [oh, ow] = s.out_hw;
    let (hp, wp) = (h + 2 * p.padding[0], wd + 2 * p.padding[1]);
    let taps: Vec<usize> =
        (0..kh).flat_map(|ky| (0..kw).map(move |kx| ky * p.dilation[0] * wp + kx * p.dilation[1])).collect();
    // At stride 1, oh = hp - (kh - 1) * dilation, so the last row's last
    // tap is the bordered input's last pixel: every read is in bounds.
    let m = ((n - 1) * hp + oh - 1) * wp + ow;
    // Every row is written by the GEMM: a recycled buffer, not zeroed.
    let rows_storage = Storage::for_overwrite(StorageType::U8, checked_count("quantized::conv2d", &[m, oc])?)?;
    let mut rows_out = rows_storage.write::<u8>()?;
    let rows = ShiftedRows { src: padded, channels: c, taps: &taps, pixel_sums };
    let weights = Weights { b: &pw.groups[0], zw: &pw.zero_points };
    let epi = Epilogue::Quantize(rq.of(0..oc));
    gemm_prepared(kernel, Rows { data: Activations::Shifted(rows), m, zx: rq.zx }, weights, epi, &mut rows_out)?;
    let rows_out = &rows_out;
    parallel::chunks(out, ow * oc, |r, dst| {
        let (img, y) = (r / oh, r % oh);
        let at = (img * hp + y) * wp * oc;
        dst.copy_from_slice(&rows_out[at..at + ow * oc]);
    });
    Ok(())
}

/// True for a 4-d view whose channels are each pixel's innermost run, its
/// pixels in row-major order: channels-last, dense or not.
fn is_channels_last_view(x: &Tensor) -> bool {
    let (s, t) = (x.sizes(), x.strides());
    x.ndim() == 4 && s[1] > 1 && t[1] == 1 && t[3] >= s[1] && t[2] >= s[3].saturating_mul(t[3])
}

/// Transposes `[n][pixels][channels]` into `[n][channels][pixels]`, one
/// output plane per task and a tile of pixels at a time (so reads stay in
/// L1).
fn nhwc_to_nchw(src: &[u8], dst: &mut [u8], [_, pixels, channels]: [usize; 3]) {
    const TILE: usize = 64;
    parallel::chunks(dst, pixels, |i, plane| {
        let (img, ch) = (i / channels, i % channels);
        for p0 in (0..pixels).step_by(TILE) {
            let width = TILE.min(pixels - p0);
            let block = &src[(img * pixels + p0) * channels..(img * pixels + p0 + width) * channels];
            for (d, &v) in plane[p0..p0 + width].iter_mut().zip(block[ch..].iter().step_by(channels)) {
                *d = v;
            }
        }
    });
}

/// quantized::conv2d (or conv2d_relu) through `kernel`; declined where
/// the GEMM path does not apply (see `gemm_conv2d`).
#[allow(clippy::too_many_arguments)]
pub fn conv2d<K: GemmIsa>(
    kernel: K,
    relu: bool,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    groups: i64,
    y_scale: f64,
    y_zero_point: i64,
) -> Result<Tensor> {
    let op = if relu { "quantized::conv2d_relu" } else { "quantized::conv2d" };
    let p = ConvParams::new(op, stride, padding, dilation, groups)?;
    // The whole conv (packing, im2col, GEMM, transposes) on qtensor's pool.
    let fast = parallel::on_pool(|| gemm_conv2d(op, kernel, x, w, bias, p, y_scale, y_zero_point, relu));
    match fast? {
        Some(t) => Ok(t),
        None => Err(Error::declined("conv2d: operands the GEMM path does not take")),
    }
}
