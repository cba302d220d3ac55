//! Where a row's vector steps start when its length is not a multiple of
//! the vector width: the last step is moved back to end at the row's end.
//!
//! A kernel whose arithmetic is exact may compute an element twice and
//! store the same bits twice. So instead of finishing the last 1 to
//! `width - 1` elements in scalar, it runs one more full vector step that
//! ends at `n` and overlaps the step before. ShuffleNetV2's 58 and 116
//! channels spent more time on 2 or 4 channels in scalar than on the rest
//! in vectors; this is the one place the rule is written.

/// The starts of the steps of `width` elements that cover `from..n`:
/// `from`, `from + width`, ..., the last one moved back to `n - width`.
///
/// `None` when `n < width`: no step fits in the row, and the caller does
/// `from..n` in scalar. Empty when `from >= n`.
pub(crate) fn steps_ending_at(from: usize, n: usize, width: usize) -> Option<impl Iterator<Item = usize>> {
    debug_assert!(width > 0);
    let last = n.checked_sub(width)?;
    let count = n.saturating_sub(from).div_ceil(width);
    Some((0..count).map(move |i| (from + i * width).min(last)))
}

#[cfg(test)]
mod tests {
    use super::steps_ending_at;

    fn steps(from: usize, n: usize, width: usize) -> Option<Vec<usize>> {
        steps_ending_at(from, n, width).map(Iterator::collect)
    }

    #[test]
    fn the_last_step_ends_at_n() {
        assert_eq!(steps(0, 16, 8), Some(vec![0, 8]));
        assert_eq!(steps(0, 13, 8), Some(vec![0, 5]));
        assert_eq!(steps(16, 29, 8), Some(vec![16, 21]));
        assert_eq!(steps(112, 116, 8), Some(vec![108]));
        assert_eq!(steps(56, 58, 4), Some(vec![54]));
    }

    #[test]
    fn no_step_fits_or_none_is_left() {
        assert_eq!(steps(0, 7, 8), None);
        assert_eq!(steps(3, 3, 4), None);
        assert_eq!(steps(4, 4, 4), Some(vec![]));
        assert_eq!(steps(8, 8, 8), Some(vec![]));
    }

    #[test]
    fn every_element_is_covered_inside_the_row() {
        // Miri (hundreds of times slower) takes every fifth length: the
        // arithmetic is the same for each.
        let every = if cfg!(miri) { 5 } else { 1 };
        for width in [4, 8, 16] {
            for n in (width..60).step_by(every) {
                for from in 0..=n {
                    let starts = steps(from, n, width).unwrap(); // ok: n >= width, so a step fits
                    let mut covered = vec![false; n];
                    for &s in &starts {
                        assert!(s + width <= n && s + width > from, "{from}..{n} step {s}");
                        covered[s..s + width].iter_mut().for_each(|c| *c = true);
                    }
                    assert!(covered[from..].iter().all(|&c| c), "{from}..{n} by {width}: {starts:?}");
                }
            }
        }
    }
}
