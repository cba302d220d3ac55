//! Reference-counted, 64-byte aligned element buffers shared by tensor views.

use crate::dtype::{DType, StorageType};
use crate::error::{Error, Result};
use parking_lot::{MappedRwLockReadGuard, MappedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::sync::atomic::{AtomicU64, Ordering};

/// One cache line. Buffers are vectors of these, which makes every buffer
/// 64-byte aligned without any `unsafe`.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct CacheLine([u8; 64]);

mod huge_pages;
mod pool;
pub use pool::release_cached_buffers;

/// Asks Linux to back `v`, a new vector not yet written, with 2 MiB pages
/// when its capacity is 4 MiB or more (as every large [`Storage`] is): for
/// buffers that kernels stream, such as packed weights. A no-op elsewhere.
pub fn advise_huge_pages<T>(v: &Vec<T>) {
    huge_pages::advise_new(v);
}

/// Types that can be stored in a [`Storage`].
pub trait Element: bytemuck::Pod + Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The storage layout of this element type.
    const STORAGE: StorageType;
    /// The plain (non-quantized) dtype with this element type.
    const DTYPE: DType;
    /// Widen to `i64` (floats are truncated toward zero; used for integers only).
    fn to_i64(self) -> i64;
    /// Widen to `f64`.
    fn to_f64(self) -> f64;
    /// Narrow from `i64` with `as` semantics; callers clamp to range first.
    fn from_i64(v: i64) -> Self;
    /// Convert from `f64` with `as` semantics: toward zero, saturating at
    /// the type's range for integers (NaN becomes 0).
    fn from_f64(v: f64) -> Self;
}

macro_rules! impl_element {
    ($($t:ty => $st:ident, $dt:ident);* $(;)?) => {$(
        impl Element for $t {
            const STORAGE: StorageType = StorageType::$st;
            const DTYPE: DType = DType::$dt;
            #[inline]
            fn to_i64(self) -> i64 { self as i64 }
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline]
            fn from_i64(v: i64) -> Self { v as $t }
            #[inline]
            fn from_f64(v: f64) -> Self { v as $t }
        }
    )*};
}

impl_element! {
    f32 => F32, Float32;
    f64 => F64, Float64;
    i64 => I64, Int64;
    i32 => I32, Int32;
    i16 => I16, Int16;
    i8 => I8, Int8;
    u8 => U8, UInt8;
}

/// The largest buffer qtensor will allocate (1 TiB). Anything larger is a
/// corrupt shape, not a tensor, and gets an error instead of an abort.
pub const MAX_BYTES: u128 = 1 << 40;

/// A flat, 64-byte aligned buffer of `len` elements of one [`StorageType`].
///
/// Views share a storage through `Arc`; writes (assignment, `copy_`) take
/// the write lock, so concurrent readers never see a torn update.
pub struct Storage {
    stype: StorageType,
    len: usize,
    lines: RwLock<Vec<CacheLine>>,
    // Bumped by every write access, so that derived data (packed weights)
    // can tell when it is stale.
    version: AtomicU64,
}

impl Drop for Storage {
    fn drop(&mut self) {
        pool::give_back(std::mem::take(self.lines.get_mut()));
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("stype", &self.stype).field("len", &self.len).finish()
    }
}

/// The largest buffer allowed now: [`MAX_BYTES`] unless lowered by
/// [`set_allocation_limit`].
static LIMIT: AtomicU64 = AtomicU64::new(MAX_BYTES as u64);

/// Caps every buffer qtensor allocates (tensors and kernels' scratch) at
/// `bytes`, at most [`MAX_BYTES`]: a larger request is an [`Error::Alloc`].
/// A server that runs untrusted shapes, or a fuzzer with a memory limit,
/// lowers it; outputs that a valid call asks for (an op over an empty
/// tensor whose other sizes are huge can give zeros of those sizes) then
/// fail cleanly instead of filling memory.
pub fn set_allocation_limit(bytes: u64) {
    LIMIT.store(bytes.min(MAX_BYTES as u64), Ordering::Relaxed);
}

/// The current cap on one buffer, in bytes (see [`set_allocation_limit`]).
pub fn allocation_limit() -> u64 {
    LIMIT.load(Ordering::Relaxed)
}

/// Checked `len * size_of` in bytes, refusing anything above the
/// [`allocation_limit`].
pub fn checked_bytes(len: u128, stype: StorageType) -> Result<usize> {
    let bytes = len.saturating_mul(stype.size_of() as u128);
    if bytes > allocation_limit() as u128 {
        return Err(Error::Alloc { numel: len, bytes });
    }
    Ok(bytes as usize)
}

/// An empty `Vec` with room for `len` elements, or an error: the length is
/// checked against the [`allocation_limit`] (with overflow) and the allocation is
/// fallible, so a hostile size never aborts the process.
pub fn try_vec<T>(len: usize) -> Result<Vec<T>> {
    let bytes = (len as u128).saturating_mul(std::mem::size_of::<T>() as u128);
    if bytes > allocation_limit() as u128 {
        return Err(Error::Alloc { numel: len as u128, bytes });
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::Alloc { numel: len as u128, bytes })?;
    Ok(v)
}

/// A vector of `len` copies of `value`, allocated fallibly: for every
/// buffer whose size an input controls.
pub fn try_filled<T: Clone>(len: usize, value: T) -> Result<Vec<T>> {
    let mut v = try_vec::<T>(len)?;
    v.resize(len, value);
    Ok(v)
}

/// The product of `factors` as an element count, or an error if it overflows.
pub fn checked_count(op: &str, factors: &[usize]) -> Result<usize> {
    // An empty tensor's other sizes may multiply past `usize`.
    if factors.contains(&0) {
        return Ok(0);
    }
    factors
        .iter()
        .try_fold(1usize, |a, &f| a.checked_mul(f))
        .ok_or_else(|| Error::shape(op, format!("{factors:?} elements overflow")))
}

impl Storage {
    /// A zero-filled storage of `len` elements.
    pub fn zeros(stype: StorageType, len: usize) -> Result<Storage> {
        let (s, recycled) = Storage::allocate(stype, len)?;
        if recycled {
            s.lines.write().fill(CacheLine([0; 64]));
        }
        Ok(s)
    }

    /// A storage of `len` elements whose contents are unspecified (zeros, or
    /// the values of a recycled buffer), for kernels that write every
    /// element. It is never uninitialized memory: reading it is safe, just
    /// meaningless.
    pub fn for_overwrite(stype: StorageType, len: usize) -> Result<Storage> {
        Storage::allocate(stype, len).map(|(s, _)| s)
    }

    /// A recycled buffer (true) or a fresh zeroed one (false).
    fn allocate(stype: StorageType, len: usize) -> Result<(Storage, bool)> {
        let bytes = checked_bytes(len as u128, stype)?;
        let n_lines = bytes.div_ceil(64);
        let storage = |lines| Storage { stype, len, lines: RwLock::new(lines), version: AtomicU64::new(0) };
        if let Some(lines) = pool::take_pooled(n_lines) {
            return Ok((storage(lines), true));
        }
        let mut lines: Vec<CacheLine> = Vec::new();
        lines.try_reserve_exact(n_lines).map_err(|_| Error::Alloc { numel: len as u128, bytes: bytes as u128 })?;
        huge_pages::advise_new(&lines);
        lines.resize(n_lines, CacheLine([0; 64]));
        Ok((storage(lines), false))
    }

    /// A storage holding a copy of `data`.
    pub fn from_slice<T: Element>(data: &[T]) -> Result<Storage> {
        let s = Storage::for_overwrite(T::STORAGE, data.len())?;
        s.write::<T>()?.copy_from_slice(data);
        Ok(s)
    }

    /// A storage holding a copy of raw little-endian bytes, `len` elements of `stype`.
    pub fn from_bytes(stype: StorageType, len: usize, bytes: &[u8]) -> Result<Storage> {
        let need = checked_bytes(len as u128, stype)?;
        if bytes.len() != need {
            return Err(Error::Serialization(format!("expected {need} bytes of data, found {}", bytes.len())));
        }
        let s = Storage::zeros(stype, len)?;
        {
            s.version.fetch_add(1, Ordering::AcqRel);
            let mut lines = s.lines.write();
            let dst: &mut [u8] = bytemuck::cast_slice_mut(lines.as_mut_slice());
            dst[..need].copy_from_slice(bytes);
        }
        Ok(s)
    }

    /// The element layout.
    pub fn storage_type(&self) -> StorageType {
        self.stype
    }

    /// Number of elements (bytes for packed 4-bit storage).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the storage holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check<T: Element>(&self) -> Result<()> {
        let ok = T::STORAGE == self.stype || (self.stype == StorageType::U4x2 && T::STORAGE == StorageType::U8);
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "storage",
                format!(
                    "the elements are {} values, not {}; read them as that type, or convert first \
                     (for a quantized tensor: `ops::dequantize(&t)` for its f32 values, `int_values()` \
                     or `to_vec::<{}>()` for its stored integers)",
                    self.stype.rust_name(),
                    T::STORAGE.rust_name(),
                    self.stype.rust_name()
                ),
            ))
        }
    }

    /// Shared access to the elements.
    pub fn read<T: Element>(&self) -> Result<MappedRwLockReadGuard<'_, [T]>> {
        self.check::<T>()?;
        let len = self.len;
        Ok(RwLockReadGuard::map(self.lines.read(), |lines| {
            let all: &[T] = bytemuck::cast_slice(lines.as_slice());
            &all[..len]
        }))
    }

    /// How many times the storage has been opened for writing.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Exclusive access to the elements.
    pub fn write<T: Element>(&self) -> Result<MappedRwLockWriteGuard<'_, [T]>> {
        self.check::<T>()?;
        let guard = self.lines.write();
        // Bumped while holding the lock: a reader that saw the old version
        // read the old values (it could not read while we write), so a
        // cache keyed on the version is never stale.
        self.version.fetch_add(1, Ordering::AcqRel);
        let len = self.len;
        Ok(RwLockWriteGuard::map(guard, |lines| {
            let all: &mut [T] = bytemuck::cast_slice_mut(lines.as_mut_slice());
            &mut all[..len]
        }))
    }

    /// The raw bytes of the elements, little-endian (used by serialization).
    pub fn bytes(&self) -> MappedRwLockReadGuard<'_, [u8]> {
        let n = self.len * self.stype.size_of();
        RwLockReadGuard::map(self.lines.read(), |lines| {
            let all: &[u8] = bytemuck::cast_slice(lines.as_slice());
            &all[..n]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_cache_line_aligned() -> Result<(), Box<dyn std::error::Error>> {
        let s = Storage::from_slice(&[1.0f32, 2.0, 3.0])?;
        let r = s.read::<f32>()?;
        assert_eq!(r.as_ptr() as usize % 64, 0);
        assert_eq!(&*r, &[1.0, 2.0, 3.0]);
        Ok(())
    }

    #[test]
    fn huge_allocation_is_an_error() {
        assert!(matches!(Storage::zeros(StorageType::F64, usize::MAX), Err(Error::Alloc { .. })));
        assert!(matches!(Storage::zeros(StorageType::U8, (MAX_BYTES + 1) as usize), Err(Error::Alloc { .. })));
    }

    #[test]
    fn wrong_element_type_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let s = Storage::from_slice(&[1u8, 2])?;
        assert!(s.read::<f32>().is_err());
        Ok(())
    }
}
