//! Activation rows read in place at shifted offsets: the implicit GEMM of
//! a stride-1 conv, which never copies its im2col rows (see
//! [`ShiftedRows`]).

use super::row_stores::{copy_run, zero_tail};
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
    /// their sums into `sums`. Bytes of `panel` past the rows (the
    /// driver's [`PANEL_SLACK`](super::driver::PANEL_SLACK)) may be
    /// overwritten: the rows are written in order by fixed-size stores
    /// (the crate's `gemm::row_stores`).
    pub fn gather(&self, rows: Range<usize>, kp: usize, panel: &mut [u8], sums: &mut [i32]) {
        let c = self.channels;
        for (i, (r, sum)) in rows.zip(sums.iter_mut()).enumerate() {
            let base = i * kp;
            for (t, &offset) in self.taps.iter().enumerate() {
                copy_run(panel, base + t * c, self.src, (r + offset) * c, c);
            }
            zero_tail(panel, base + self.taps.len() * c, base + kp);
            *sum = self.row_sum(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ShiftedRows;
    use crate::gemm::row_stores::PANEL_SLACK;

    /// Gathered rows, written by fixed-size stores that spill past each
    /// run, equal rows assembled tap by tap, for narrow and wide pixels and
    /// with the K padding zeroed.
    #[test]
    fn gathered_rows_are_the_taps_in_order_then_zeros() {
        // Miri (hundreds of times slower) without 31 channels: 33 already
        // crosses every word boundary 31 does.
        for c in [1usize, 3, 8, 9, 31, 33].into_iter().filter(|&c| !cfg!(miri) || c != 31) {
            let taps = [0usize, 1, 2, 10, 11, 12, 20, 21, 22];
            let kp = (taps.len() * c).div_ceil(4) * 4 + 4;
            let src: Vec<u8> = (0..(40 + 22) * c).map(|i| (i * 13 + 5) as u8).collect();
            let pixel_sums: Vec<i32> = src.chunks(c).map(|p| p.iter().map(|&v| i32::from(v)).sum()).collect();
            let x = ShiftedRows { src: &src, channels: c, taps: &taps, pixel_sums: &pixel_sums };
            let rows = 3..40;
            let mut panel = vec![0xAAu8; rows.len() * kp + PANEL_SLACK];
            let mut sums = vec![0i32; rows.len()];
            x.gather(rows.clone(), kp, &mut panel, &mut sums);
            for (i, r) in rows.enumerate() {
                let mut want: Vec<u8> = (0..taps.len()).flat_map(|t| x.tap(r, t).to_vec()).collect();
                let sum: i32 = want.iter().map(|&v| i32::from(v)).sum();
                want.resize(kp, 0);
                assert_eq!(&panel[i * kp..(i + 1) * kp], &want[..], "{c} channels, row {r}");
                assert_eq!(sums[i], sum, "{c} channels, row {r}");
            }
        }
    }
}
