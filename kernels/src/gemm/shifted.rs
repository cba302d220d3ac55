//! Activation rows read in place at shifted offsets: the implicit GEMM of
//! a stride-1 conv, which never copies its im2col rows (see
//! [`ShiftedRows`]).

use std::ops::Range;

/// The im2col rows of a stride-1 conv over a bordered NHWC input, without
/// im2col (an implicit GEMM): row `r`'s K bytes are, for each tap `t`,
/// the `channels` bytes of pixel `r + taps[t]` of `src`. Rows count the
/// bordered input's pixels (`r = (img * hp + y) * wp + x`), so the rows
/// whose x or y lies past the output are computed and then dropped. A 1x1
/// conv is one tap at offset 0 over the input as it lies: its rows are
/// the pixels.
#[derive(Clone, Copy)]
pub struct ShiftedRows<'a> {
    /// The bordered input, `[pixels][channels]`.
    pub src: &'a [u8],
    /// Bytes per pixel.
    pub channels: usize,
    /// Each tap's offset in pixels, in the weight's k order.
    pub taps: &'a [usize],
    /// Each pixel's channel sum, when the row sums are needed (weights
    /// with non-zero zero points); empty otherwise.
    pub pixel_sums: &'a [i32],
}

impl ShiftedRows<'_> {
    /// The `channels` bytes of tap `t` of row `r`.
    pub fn tap(&self, r: usize, t: usize) -> &[u8] {
        let at = (r + self.taps[t]) * self.channels;
        &self.src[at..at + self.channels]
    }

    /// Row `r`'s sum `Σ_k x` (0 when no pixel sums were given).
    pub fn row_sum(&self, r: usize) -> i32 {
        if self.pixel_sums.is_empty() {
            return 0;
        }
        self.taps.iter().map(|&t| self.pixel_sums[r + t]).sum()
    }

    /// Copies rows `rows` into `panel` (`kp` bytes each, zero-padded) and
    /// their sums into `sums`.
    pub fn gather(&self, rows: Range<usize>, kp: usize, panel: &mut [u8], sums: &mut [i32]) {
        for ((r, row), sum) in rows.zip(panel.chunks_mut(kp.max(1))).zip(sums.iter_mut()) {
            for t in 0..self.taps.len() {
                row[t * self.channels..(t + 1) * self.channels].copy_from_slice(self.tap(r, t));
            }
            row[self.taps.len() * self.channels..].fill(0);
            *sum = self.row_sum(r);
        }
    }
}
