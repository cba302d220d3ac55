//! Fixed-size stores that build activation rows in a panel: the short
//! runs of im2col and of gathered shifted rows (9 bytes per kernel row of
//! a 3x3 conv over 3 channels), and the zero padding up to a row's K.
//!
//! A call to `memcpy` or `memset` for each costs more than the GEMM of the
//! row, so both move a fixed 32 bytes where the panel and the source have
//! room. The bytes past a run are overwritten by what the caller writes
//! next (the row's next run, its zero padding, the next row) or lie in the
//! panel's slack ([`PANEL_SLACK`]): callers
//! write a panel's rows, and each row's runs, in order.

/// Bytes after a gathered panel's rows that its
/// [`RowFill`](super::driver::RowFill) may overwrite: room for fixed-size
/// stores past a row's last run (a 3x3 conv over 3 channels copies 9-byte
/// runs, and a call to `memcpy` for each costs more than the GEMM of the
/// row).
pub const PANEL_SLACK: usize = 64;

/// Bytes one fixed store moves.
const WIDE: usize = 32;

/// Zeroes `panel[from..end]`, 32 bytes at a time where `panel` has room:
/// the stores may also zero up to 31 bytes past `end`.
#[inline]
pub(crate) fn zero_tail(panel: &mut [u8], from: usize, end: usize) {
    let mut at = from;
    while at < end {
        match panel.get_mut(at..).and_then(|b| b.first_chunk_mut::<WIDE>()) {
            Some(chunk) => *chunk = [0; WIDE],
            None => {
                if let Some(rest) = panel.get_mut(at..end) {
                    rest.fill(0);
                }
                return;
            }
        }
        at += WIDE;
    }
}

/// Copies `len` bytes of `src` from `from` into `panel` at `at`. A run of
/// at most 32 bytes moves a fixed 32 where both sides have room,
/// overwriting up to `32 - len` bytes past the run.
#[inline]
pub(crate) fn copy_run(panel: &mut [u8], at: usize, src: &[u8], from: usize, len: usize) {
    // Arrays, not slices: a move of a known 32 bytes.
    let fixed = (
        panel.get_mut(at..).and_then(|r| r.first_chunk_mut::<WIDE>()),
        src.get(from..).and_then(|s| s.first_chunk::<WIDE>()),
    );
    match fixed {
        (Some(d), Some(s)) if len <= WIDE => *d = *s,
        _ => copy_exact(panel, at, src, from, len),
    }
}

/// [`copy_run`]'s general case. Out of line: inlined, the compiler merges
/// both cases into one call to `memcpy` of a variable length, which costs
/// more than the im2col row around it.
#[inline(never)]
fn copy_exact(panel: &mut [u8], at: usize, src: &[u8], from: usize, len: usize) {
    panel[at..at + len].copy_from_slice(&src[from..from + len]);
}

#[cfg(test)]
mod tests {
    use super::{copy_run, zero_tail};

    /// Rows written in order by runs of every length from 0 to 40 (the
    /// fixed stores and the general case), with and without slack after
    /// the last row, equal the same rows written byte by byte.
    #[test]
    fn rows_written_in_order_equal_exact_copies() {
        let src: Vec<u8> = (0..200u32).map(|i| (i * 7 + 1) as u8).collect();
        for len in 0..=40usize {
            let (runs, kp) = (3usize, (3 * len).div_ceil(4) * 4 + 4);
            for slack in [0usize, 64] {
                let rows = 3;
                let mut got = vec![0xAAu8; rows * kp + slack];
                let mut want = vec![0u8; rows * kp];
                for r in 0..rows {
                    for t in 0..runs {
                        let from = (r * 11 + t * 29) % (src.len() - len);
                        copy_run(&mut got, r * kp + t * len, &src, from, len);
                        want[r * kp + t * len..][..len].copy_from_slice(&src[from..from + len]);
                    }
                    zero_tail(&mut got, r * kp + runs * len, (r + 1) * kp);
                }
                assert_eq!(&got[..rows * kp], &want[..], "run {len}, slack {slack}");
            }
        }
    }
}
