//! Buffers that start on a cache line.
//!
//! A kernel that loads whole 64-byte rows (an AMX `tileloadd`, a `zmm`
//! load) pays for two cache lines when a row straddles a line boundary.
//! `malloc` aligns to 16 bytes, and where in a line a buffer starts differs
//! from one thread's heap to another's, so a kernel on a misaligned buffer
//! ran 10% slower on a worker thread than on the main thread. These
//! buffers over-allocate by one line and start at its boundary, in safe
//! Rust.

use qtensor_runtime::storage::try_filled;
use qtensor_runtime::{Error, Result};
use std::ops::{Deref, DerefMut};

/// Bytes in a cache line.
const LINE: usize = 64;

/// `len` elements of `T` whose first one sits on a 64-byte boundary
/// (for element types whose size divides 64: bytes and `i32`).
pub struct AlignedVec<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Copy> AlignedVec<T> {
    /// `len` copies of `value`, allocated fallibly.
    pub fn try_filled(len: usize, value: T) -> Result<AlignedVec<T>> {
        let spare = LINE / std::mem::size_of::<T>().clamp(1, LINE);
        let total = len.checked_add(spare).ok_or_else(|| Error::invalid("allocation", "size overflows usize"))?;
        let buf = try_filled(total, value)?;
        // `align_offset` may answer usize::MAX when it cannot tell; an
        // unaligned start is then only slower, never wrong.
        let start = buf.as_ptr().align_offset(LINE).min(spare);
        Ok(AlignedVec { buf, start, len })
    }

    /// Grows to at least `len` elements (new ones are `value`), keeping
    /// the first element aligned.
    pub fn ensure_len(&mut self, len: usize, value: T) -> Result<()> {
        if self.len < len {
            *self = AlignedVec::try_filled(len, value)?;
        }
        Ok(())
    }
}

impl<T: Copy> Clone for AlignedVec<T> {
    fn clone(&self) -> Self {
        // The copy's heap block starts elsewhere in its line: move the
        // elements to the copy's own boundary.
        let mut buf = self.buf.clone();
        let spare = buf.len() - self.len;
        let start = buf.as_ptr().align_offset(LINE).min(spare);
        buf.copy_within(self.start..self.start + self.len, start);
        AlignedVec { buf, start, len: self.len }
    }
}

impl<T> Default for AlignedVec<T> {
    fn default() -> Self {
        AlignedVec { buf: Vec::new(), start: 0, len: 0 }
    }
}

impl<T> Deref for AlignedVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl<T> DerefMut for AlignedVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for AlignedVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_line_and_holds_len_elements() {
        for len in [0, 1, 63, 64, 1000] {
            let v = AlignedVec::try_filled(len, 7i32).unwrap(); // ok: a test
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 7));
            assert_eq!(v.as_ptr() as usize % LINE, 0, "len {len}");
            let b = AlignedVec::try_filled(len, 1u8).unwrap(); // ok: a test
            assert_eq!(b.as_ptr() as usize % LINE, 0, "len {len}");
        }
    }

    #[test]
    fn grows_and_keeps_alignment() {
        let mut v = AlignedVec::<u8>::default();
        v.ensure_len(100, 0).unwrap(); // ok: a test
        assert_eq!(v.len(), 100);
        assert_eq!(v.as_ptr() as usize % LINE, 0);
        v.ensure_len(50, 0).unwrap(); // ok: a test
        assert_eq!(v.len(), 100, "never shrinks");
    }

    #[test]
    fn a_clone_is_equal_and_aligned() {
        let mut v = AlignedVec::try_filled(200, 0i8).unwrap(); // ok: a test
        for (i, x) in v.iter_mut().enumerate() {
            *x = i as i8;
        }
        let c = v.clone();
        assert_eq!(&c[..], &v[..]);
        assert_eq!(c.as_ptr() as usize % LINE, 0);
    }

    #[test]
    fn an_impossible_size_is_an_error() {
        assert!(AlignedVec::try_filled(usize::MAX, 0u8).is_err());
    }
}
