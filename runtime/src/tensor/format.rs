//! Memory formats: PyTorch's `torch.contiguous_format` and
//! `torch.channels_last`, and the layout an elementwise op's output takes.
//!
//! A channels-last tensor keeps its logical NCHW sizes (and prints, indexes
//! and compares as NCHW) while its strides are NHWC's: the channels of one
//! pixel sit next to each other. Convolutions and pools read such a tensor
//! without any transpose, which is why a network converts its input once and
//! keeps every activation channels-last after that.

use super::layout::{contiguous_strides, Dims};
use super::Tensor;
use crate::error::Result;
use crate::storage::{Element, Storage};
use crate::with_element_type;
use std::sync::Arc;

/// How a 4-d tensor's elements are ordered in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemoryFormat {
    /// Row-major over the logical sizes (NCHW for 4-d tensors).
    #[default]
    Contiguous,
    /// NHWC strides under NCHW sizes (4-d tensors only).
    ChannelsLast,
}

/// The channels-last strides of NCHW `sizes`: `[H*W*C, 1, W*C, C]`.
pub fn channels_last_strides(sizes: &[usize]) -> Dims {
    let [_, c, h, w] = [sizes[0], sizes[1], sizes[2], sizes[3]];
    let (c1, w1, h1) = (c.max(1), w.max(1), h.max(1));
    smallvec::smallvec![c1.saturating_mul(w1).saturating_mul(h1), 1, c1.saturating_mul(w1), c1]
}

/// The strides of `format` for `sizes` (row-major where `format` does not
/// apply to that rank).
pub fn format_strides(sizes: &[usize], format: MemoryFormat) -> Dims {
    match format {
        MemoryFormat::ChannelsLast if sizes.len() == 4 => channels_last_strides(sizes),
        _ => contiguous_strides(sizes),
    }
}

/// True when `strides` equal `expected` in every dimension of size above 1
/// (PyTorch ignores the strides of size-1 dimensions).
fn strides_match(sizes: &[usize], strides: &[usize], expected: &[usize]) -> bool {
    sizes.iter().zip(strides).zip(expected).all(|((&s, &st), &e)| s <= 1 || st == e)
}

impl Tensor {
    /// True when the elements are laid out in `format` with no gaps.
    /// A tensor can be both (a `[N, 1, 1, 1]` one, say), as in PyTorch.
    pub fn is_contiguous_in(&self, format: MemoryFormat) -> bool {
        match format {
            MemoryFormat::Contiguous => self.is_contiguous(),
            MemoryFormat::ChannelsLast => {
                self.ndim() == 4 && strides_match(self.sizes(), self.strides(), &channels_last_strides(self.sizes()))
            }
        }
    }

    /// The format this tensor is laid out in, as PyTorch's
    /// `suggest_memory_format`: channels-last when its strides are NHWC's
    /// and not also row-major, else contiguous.
    pub fn memory_format(&self) -> MemoryFormat {
        if self.is_contiguous_in(MemoryFormat::ChannelsLast) && !self.is_contiguous() {
            MemoryFormat::ChannelsLast
        } else {
            MemoryFormat::Contiguous
        }
    }

    /// This tensor laid out in `format`: itself when it already is, a copy
    /// otherwise (PyTorch's `contiguous(memory_format=...)`). Channels-last
    /// needs a 4-d tensor.
    pub fn contiguous_in(&self, format: MemoryFormat) -> Result<Tensor> {
        if format == MemoryFormat::ChannelsLast && self.ndim() != 4 {
            return Err(crate::Error::shape(
                "contiguous_in",
                format!("channels_last needs a 4-d NCHW tensor, got {}", self.describe()),
            ));
        }
        if self.is_contiguous_in(format) {
            return Ok(self.clone());
        }
        self.copy_into_format(format)
    }

    /// A copy in `format`, gathered in the destination's memory order.
    fn copy_into_format(&self, format: MemoryFormat) -> Result<Tensor> {
        let sizes = self.sizes();
        let strides = format_strides(sizes, format);
        let storage = Storage::for_overwrite(self.dtype().storage_type(), self.numel())?;
        with_element_type!(self.dtype().storage_type(), T => {
            copy_strided::<T>(self, &storage, sizes, &strides)?;
        });
        Ok(Tensor::from_parts(Arc::new(storage), self.dtype(), Dims::from_slice(sizes), strides, 0, self.quantizer()))
    }

    /// True when the elements fill `offset..offset + numel` of the storage
    /// exactly once each, in some order (PyTorch's
    /// `is_non_overlapping_and_dense`). An elementwise op can then run over
    /// that span directly and give its output the same strides.
    pub fn is_dense(&self) -> bool {
        self.0.dense
    }

    /// The strides an elementwise op's output gets: this tensor's own when it
    /// is dense (so channels-last stays channels-last), row-major otherwise.
    pub fn elementwise_output_strides(&self) -> Dims {
        if self.is_dense() {
            Dims::from_slice(self.strides())
        } else {
            contiguous_strides(self.sizes())
        }
    }

    /// Runs `f` on the elements as one slice in the memory order of
    /// [`Tensor::elementwise_output_strides`]: the storage span itself when
    /// the tensor is dense, a row-major copy otherwise.
    pub fn with_dense<T: Element, R>(&self, f: impl FnOnce(&[T]) -> R) -> Result<R> {
        if self.is_dense() {
            let src = self.storage().read::<T>()?;
            let start = self.storage_offset();
            let span = src.get(start..start.saturating_add(self.numel())).ok_or_else(|| {
                crate::Error::shape("with_dense", format!("{} lies outside its storage", self.describe()))
            })?;
            Ok(f(span))
        } else {
            self.with_contiguous(f)
        }
    }

    /// A quantized tensor over `storage` (filled in the memory order of
    /// `strides`), with `sizes` and `quantizer`.
    pub fn quantized_from_storage_strided(
        storage: Storage,
        sizes: &[usize],
        strides: Dims,
        quantizer: &Arc<crate::Quantizer>,
    ) -> Result<Tensor> {
        let op = "quantized_from_storage_strided";
        if strides.len() != sizes.len() {
            return Err(crate::Error::shape(op, format!("strides {strides:?} do not match the sizes {sizes:?}")));
        }
        // The tensor computes its density once; a sparse one is dropped.
        let t = Tensor::quantized_over(storage, sizes, strides, quantizer, op)?;
        if !t.is_dense() {
            return Err(crate::Error::shape(op, format!("strides {:?} do not cover {sizes:?} densely", t.strides())));
        }
        Ok(t)
    }

    /// The same values laid out like `like` when that is channels-last
    /// (reference kernels compute row-major and convert at the end, so that
    /// every kernel returns the layout it was given).
    pub fn in_format_of(self, like: &Tensor) -> Result<Tensor> {
        match like.memory_format() {
            MemoryFormat::ChannelsLast if self.ndim() == 4 => self.contiguous_in(MemoryFormat::ChannelsLast),
            _ => Ok(self),
        }
    }
}

/// True when `strides` place every element of `sizes` at a distinct offset
/// in `0..numel`: some permutation of row-major strides.
pub(super) fn strides_are_dense(sizes: &[usize], strides: &[usize]) -> bool {
    if sizes.contains(&0) || is_row_major(sizes, strides) {
        return true;
    }
    let mut dims: smallvec::SmallVec<[(usize, usize); 6]> =
        strides.iter().copied().zip(sizes.iter().copied()).filter(|&(_, s)| s != 1).collect();
    dims.sort_unstable();
    let mut expected = 1usize;
    for (stride, size) in dims {
        if stride != expected {
            return false;
        }
        expected = expected.saturating_mul(size);
    }
    true
}

/// True for row-major strides (ignoring size-1 dimensions): the common
/// case, checked without sorting.
fn is_row_major(sizes: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&s, &st) in sizes.iter().zip(strides).rev() {
        if s != 1 && st != expected {
            return false;
        }
        expected = expected.saturating_mul(s);
    }
    true
}

/// Copies `src` into `storage` laid out with `strides`, walking the
/// destination in memory order (for channels-last: pixel by pixel).
fn copy_strided<T: Element>(src: &Tensor, storage: &Storage, sizes: &[usize], strides: &[usize]) -> Result<()> {
    let from = src.storage().read::<T>()?;
    let mut to = storage.write::<T>()?;
    if to.is_empty() {
        // An empty tensor: its other sizes may multiply past `usize`.
        return Ok(());
    }
    if sizes.len() == 4 && src.is_contiguous() && strides[1] == 1 {
        // NCHW to NHWC, the conversion a network makes at its input.
        let start = src.storage_offset();
        let span = from.get(start..start.saturating_add(to.len())).ok_or_else(|| {
            crate::Error::shape("contiguous_in", format!("{} lies outside its storage", src.describe()))
        })?;
        nchw_to_nhwc(span, &mut to, sizes[1], sizes[2] * sizes[3]);
        return Ok(());
    }
    // Visit dimensions from the destination's outermost (largest stride) to
    // its innermost, so writes are sequential.
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&d| std::cmp::Reverse(strides[d]));
    // Dimensions of size 1 move no offset; leaving them out lets the
    // innermost real dimension show whether the source has runs.
    order.retain(|&d| sizes[d] != 1);
    let permuted_sizes: Dims = order.iter().map(|&d| sizes[d]).collect();
    let permuted_src: Dims = order.iter().map(|&d| src.strides()[d]).collect();
    let offset = src.storage_offset();
    if let (Some(&inner), Some(&1)) = (permuted_sizes.last(), permuted_src.last()) {
        if inner >= MIN_RUN {
            // The destination's innermost dimension is contiguous in the
            // source too (a channel slice of a channels-last tensor, as
            // ShuffleNet's blocks take): copy whole runs, where an offset
            // per element had cost a fifth of that network's time.
            let outer = permuted_sizes.len() - 1;
            let starts = super::layout::StridedOffsets::new(&permuted_sizes[..outer], &permuted_src[..outer], offset);
            for (d, o) in to.chunks_exact_mut(inner).zip(starts) {
                let run = from.get(o..o.saturating_add(inner)).ok_or_else(|| {
                    crate::Error::shape("contiguous_in", format!("{} lies outside its storage", src.describe()))
                })?;
                d.copy_from_slice(run);
            }
            return Ok(());
        }
    }
    let offsets = super::layout::StridedOffsets::new(&permuted_sizes, &permuted_src, offset);
    for (d, o) in to.iter_mut().zip(offsets) {
        *d = from[o];
    }
    Ok(())
}

/// The shortest contiguous source run [`copy_strided`] copies as a slice
/// rather than element by element.
const MIN_RUN: usize = 8;

/// One image's three planes of `pixels` into `[pixels][3]`.
fn interleave3<T: Copy>(src: &[T], dst: &mut [T], pixels: usize) {
    let (first, rest) = src.split_at(pixels);
    let (second, third) = rest.split_at(pixels);
    let planes = first.iter().zip(second).zip(third);
    for (pixel, ((&a, &b), &c)) in dst.chunks_exact_mut(3).zip(planes) {
        pixel.copy_from_slice(&[a, b, c]);
    }
}

/// Transposes each image `[channels][pixels]` into `[pixels][channels]`, a
/// tile of pixels at a time so that the destination block stays in L1.
fn nchw_to_nhwc<T: Copy>(src: &[T], dst: &mut [T], channels: usize, pixels: usize) {
    const TILE: usize = 64;
    let image = (channels * pixels).max(1);
    for (s_img, d_img) in src.chunks(image).zip(dst.chunks_mut(image)) {
        // An RGB image (every network's input) a pixel at a time: the
        // strided loop below costs ten times more per byte at 3 channels.
        if channels == 3 {
            interleave3(s_img, d_img, pixels);
            continue;
        }
        for p0 in (0..pixels).step_by(TILE) {
            let width = TILE.min(pixels - p0);
            let block = &mut d_img[p0 * channels..(p0 + width) * channels];
            for ch in 0..channels {
                let line = &s_img[ch * pixels + p0..][..width];
                for (d, &v) in block[ch..].iter_mut().step_by(channels).zip(line) {
                    *d = v;
                }
            }
        }
    }
}
