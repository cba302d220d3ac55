//! The channels-last depthwise routines' walk over the output, one output
//! row per task: where each pixel of the row reads its taps.
//!
//! A row's interior (the columns whose taps all lie inside the input) is
//! one run: a first offset and a step, with every tap at a fixed offset
//! from its pixel's first, and the run's reach checked once per row. So an
//! interior pixel costs no per-tap bookkeeping, and a routine reads its
//! taps without bounds checks. The other (border) pixels list a row of the
//! input per tap, or a row of the input zero point for taps in the padding
//! (PyTorch's padding), so every pixel has every tap, and the zero point's
//! share of a sum, `zx * sum(w)`, is one subtraction per channel.

use super::depthwise::DepthwiseArgs;
use qtensor_runtime::storage::checked_count;
use qtensor_runtime::{Error, Result};
use std::ops::Range;

/// Where one output pixel reads its taps.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// Every tap lies inside the input: tap `t` starts at byte
    /// `base + tap_offsets[t]` of the input, and every tap's `C` bytes were
    /// checked to lie inside it.
    Inside(usize),
    /// Some taps lie in the padding: the pixel's taps are rows
    /// `first..first + taps` of [`RowTaps::rows`] (the padding row for taps
    /// outside the input and for a routine's extra taps).
    Border(usize),
}

/// Where one output row's pixels read their taps: made by
/// [`for_each_row`] only, remade per row and kept per thread.
///
/// Routines rely on it for unchecked reads: every tap of a
/// [`Source::Inside`] pixel holds `C` bytes of the input.
#[derive(Default)]
pub(crate) struct RowTaps<'x> {
    /// The columns whose taps all lie inside the input (empty if none).
    pub(crate) inside: Range<usize>,
    /// The input offset of the first of them (`Source::Inside`'s `base`).
    pub(crate) start: usize,
    /// The input offset from one column to the next.
    pub(crate) step: usize,
    /// Each tap's offset from its pixel's first tap, for interior pixels;
    /// a routine's extra taps (which weigh 0) read the first tap again.
    pub(crate) tap_offsets: &'x [usize],
    /// The other columns, each with the index of its first tap row in
    /// `rows` (`Source::Border`).
    pub(crate) border: Vec<(usize, usize)>,
    /// The border columns' tap rows, `C` bytes each.
    pub(crate) rows: Vec<&'x [u8]>,
}

// The x86 routines compute the interior several pixels side by side
// (`set_starts`); NEON's goes a pixel at a time.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl RowTaps<'_> {
    /// Every column of the row with its [`Source`]: the interior run, then
    /// the border columns.
    pub(crate) fn pixels(&self) -> impl Iterator<Item = (usize, Source)> + '_ {
        let inside =
            self.inside.clone().map(|ox| (ox, Source::Inside(self.start + (ox - self.inside.start) * self.step)));
        inside.chain(self.border.iter().map(|&(ox, first)| (ox, Source::Border(first))))
    }

    /// The `C` bytes of tap `t` of a pixel of this row that reads from
    /// `source`, from `input` (the conv's input), bounds-checked.
    pub(crate) fn tap<'s>(&'s self, input: &'s [u8], c: usize, source: Source, t: usize) -> &'s [u8] {
        match source {
            Source::Inside(base) => &input[base + self.tap_offsets[t]..][..c],
            Source::Border(first) => self.rows[first + t],
        }
    }

    /// The interior columns that whole sets of `set` side by side cover.
    fn sets(&self, set: usize) -> Range<usize> {
        self.inside.start..self.inside.end - self.inside.len() % set
    }

    /// The first column of each whole set of `set` interior columns, with
    /// its first tap's input offset (`Source::Inside`'s `base`); the set's
    /// next columns are `step` bytes apart.
    pub(crate) fn set_starts(&self, set: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.sets(set).step_by(set).map(|ox| (ox, self.start + (ox - self.inside.start) * self.step))
    }

    /// The interior's columns past its last whole set of `set` columns,
    /// then the border columns: what a routine that computes the interior
    /// `set` pixels at a time ([`Self::set_starts`]) has left.
    pub(crate) fn pixels_past_sets(&self, set: usize) -> impl Iterator<Item = (usize, Source)> + '_ {
        let sets = self.sets(set);
        self.pixels().filter(move |(ox, _)| !sets.contains(ox))
    }
}

/// Channels `from..` of every pixel of one output row (`dst`), in scalar
/// with the vector lanes' arithmetic (an f32 FMA per tap, exact below 64
/// taps, then `Requant::scalar`): the channels past a routine's vector
/// blocks. A few channels at a time, so each tap is sliced once per pixel
/// and block, not once per channel.
pub(crate) fn scalar_channels(a: &DepthwiseArgs<'_>, taps: &RowTaps<'_>, from: usize, dst: &mut [u8]) {
    const BLOCK: usize = 8;
    let c = a.input_sizes[3];
    let rq = a.requant();
    let mut acc = [0f32; BLOCK];
    for block in (from..c).step_by(BLOCK) {
        let acc = &mut acc[..BLOCK.min(c - block)];
        for (ox, source) in taps.pixels() {
            acc.fill(0.0);
            for t in 0..a.kernel[0] * a.kernel[1] {
                let x = &taps.tap(a.input, c, source, t)[block..];
                let w = &a.weights[t * c + block..][..acc.len()];
                for ((acc, &x), &w) in acc.iter_mut().zip(x).zip(w) {
                    *acc = ((i32::from(x) - a.zx) as f32).mul_add(w, *acc);
                }
            }
            for (j, &acc) in (block..).zip(acc.iter()) {
                dst[ox * c + j] = rq.scalar(j, acc as i32);
            }
        }
    }
}

/// Runs `row(taps, out_row)` for every output row of the channels-last
/// depthwise conv `a`, where `taps` says where the row's pixels read, each
/// with `taps_per_pixel` taps (at least the kernel's; the extra ones read
/// the padding or the first tap, and must weigh 0).
pub(crate) fn for_each_row(
    a: &DepthwiseArgs<'_>,
    out: &mut [u8],
    taps_per_pixel: usize,
    row: impl Fn(&RowTaps<'_>, &mut [u8]) + Sync,
) -> Result<()> {
    let [_, h, w, c] = a.input_sizes;
    let [_, oh, ow, _] = a.output_sizes;
    let [kh, kw] = a.kernel;
    if c == 0 || out.len() != checked_count("quantized::conv2d", &a.output_sizes)? {
        return Err(Error::invalid("quantized::conv2d", "the depthwise output does not match its sizes"));
    }
    if kh == 0 || kw == 0 {
        return Err(Error::invalid("quantized::conv2d", "the depthwise kernel is empty"));
    }
    if kh * kw > taps_per_pixel {
        return Err(Error::invalid("quantized::conv2d", "the depthwise routine takes fewer taps than the kernel's"));
    }
    let padding_row = vec![a.zx as u8; c];
    // The input position of tap `k` of output `o`, if inside `0..size`.
    let position = |o: usize, k: usize, axis: usize, size: usize| {
        (o * a.stride[axis] + k * a.dilation[axis]).checked_sub(a.padding[axis]).filter(|&i| i < size)
    };
    let mut tap_offsets: Vec<usize> =
        (0..kh).flat_map(|ky| (0..kw).map(move |kx| (ky * a.dilation[0] * w + kx * a.dilation[1]) * c)).collect();
    // How far past its first tap a pixel reads: the bound that makes the
    // unchecked tap loads of `Source::Inside` safe.
    let reach = tap_offsets.iter().max().and_then(|&far| far.checked_add(c)).unwrap_or(c);
    tap_offsets.resize(taps_per_pixel, 0);
    let inside = |o: usize, axis: usize, kernel: usize, size: usize| {
        position(o, 0, axis, size).is_some() && position(o, kernel - 1, axis, size).is_some()
    };
    // The output columns whose taps all lie inside the input's width: one
    // run, the same in every row.
    let first_inside = (0..ow).position(|ox| inside(ox, 1, kw, w)).unwrap_or(ow);
    let columns_inside = first_inside..(first_inside..ow).find(|&ox| !inside(ox, 1, kw, w)).unwrap_or(ow);
    let short = || Error::invalid("quantized::conv2d", "the depthwise input is shorter than its sizes");
    // The input offset of pixel (iy, ix) of image `img`, if it fits usize.
    let offset = |img: usize, iy: usize, ix: usize| -> Option<usize> {
        img.checked_mul(h)?.checked_add(iy)?.checked_mul(w)?.checked_add(ix)?.checked_mul(c)
    };
    crate::parallel::try_chunks(out, ow * c, RowTaps::default, |taps: &mut RowTaps<'_>, r, out_row| {
        let (img, oy) = (r / oh.max(1), r % oh.max(1));
        taps.tap_offsets = &tap_offsets;
        // Where the row's interior pixels start, if the row's taps all lie
        // inside the input's height.
        taps.inside = 0..0;
        taps.step = a.stride[1] * c;
        if let (true, Some(iy), false) = (inside(oy, 0, kh, h), position(oy, 0, 0, h), columns_inside.is_empty()) {
            let base = |ox: usize| offset(img, iy, position(ox, 0, 1, w)?);
            // The last interior pixel reads farthest: checking its reach
            // makes every interior pixel's unchecked tap loads safe.
            let last = base(columns_inside.end - 1).and_then(|at| at.checked_add(reach));
            if last.is_none_or(|end| end > a.input.len()) {
                return Err(short());
            }
            taps.start = base(columns_inside.start).ok_or_else(short)?;
            taps.inside = columns_inside.clone();
        }
        taps.border.clear();
        taps.rows.clear();
        for ox in (0..ow).filter(|ox| !taps.inside.contains(ox)) {
            taps.border.push((ox, taps.rows.len()));
            for ky in 0..kh {
                let iy = position(oy, ky, 0, h);
                for kx in 0..kw {
                    let row = match (iy, position(ox, kx, 1, w)) {
                        (Some(iy), Some(ix)) => {
                            let at = offset(img, iy, ix).ok_or_else(short)?;
                            a.input.get(at..at.checked_add(c).ok_or_else(short)?).ok_or_else(short)?
                        }
                        _ => &padding_row[..],
                    };
                    taps.rows.push(row);
                }
            }
            taps.rows.extend(std::iter::repeat_n(&padding_row[..], taps_per_pixel - kh * kw));
        }
        row(taps, out_row);
        Ok(())
    })
}
