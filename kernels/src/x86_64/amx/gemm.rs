//! The AMX GEMM dot-product kernel: `P = Σ x w` with raw u8 activations
//! and s8 weights (see `crate::gemm`), a block of up to 32 rows by 32
//! columns at a time in four i32 tiles.
//!
//! The packed weights are already in the B-tile layout: a block of 16
//! columns stores, per k-quad, the 4 bytes of each column (64 bytes), so
//! 16 consecutive quads are one 16 x 64 tile, loaded with a stride of 64.
//! The activations' rows are A tiles as they lie, loaded with a stride of
//! `kp`. `tdpbusd` sums exact u8 x s8 products into i32, as `vpdpbusd`
//! does, so the result is the same bits as every other kernel's.

use crate::gemm::packed::{PackedB, BLOCK};
use crate::gemm::ShiftedRows;
use qtensor_runtime::isa::Amx;
use std::arch::asm;
use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
use std::ops::Range;

/// Bytes of K in one tile row: K must be padded to a multiple of this.
pub(super) const TILE_K: usize = 64;
/// Rows of a tile.
const TILE_M: usize = 16;

/// The operand of `ldtilecfg` (palette 1).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    /// Bytes per row of each tile register.
    colsb: [u16; 16],
    /// Rows of each tile register.
    rows: [u8; 16],
}

/// Eight tiles of 16 rows by 64 bytes: the results in tmm0-tmm3 (row tile
/// r, column tile c in tmm(2r + c)), A in tmm4-tmm5, B in tmm6-tmm7.
const CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// `tileloadd` of 16 rows of 64 bytes, `stride` bytes apart, from the
/// start of `src` into the named tile register.
macro_rules! load_tile {
    ($tmm:literal, $src:expr, $stride:expr) => {{
        let (src, stride): (&[u8], usize) = ($src, $stride);
        assert!(src.len() >= 15 * stride + 64);
        // SAFETY: the 16 rows read lie within `src` (asserted above); the
        // caller holds an `Amx` token (AMX present, tile state granted)
        // and has configured the tiles.
        unsafe {
            asm!(concat!("tileloadd ", $tmm, ", [{p} + {s}*1]"), p = in(reg) src.as_ptr(), s = in(reg) stride,
                options(nostack, readonly, preserves_flags))
        }
    }};
}

/// `tdpbusd c, a, b` on the named tile registers.
macro_rules! dot_tiles {
    ($c:literal, $a:literal, $b:literal) => {
        // SAFETY: registers only; the caller holds an `Amx` token and has
        // configured the tiles.
        unsafe { asm!(concat!("tdpbusd ", $c, ", ", $a, ", ", $b), options(nostack, nomem, preserves_flags)) }
    };
}

/// `tilestored` of the named result tile into 16 rows of 16 i32, `ldo`
/// elements apart, from the start of `dst`.
macro_rules! store_tile {
    ($tmm:literal, $dst:expr, $ldo:expr) => {{
        let (dst, ldo): (&mut [i32], usize) = ($dst, $ldo);
        assert!(dst.len() >= 15 * ldo + 16);
        // SAFETY: the 16 rows written lie within `dst` (asserted above);
        // the caller holds an `Amx` token and has configured the tiles.
        unsafe {
            asm!(concat!("tilestored [{p} + {s}*1], ", $tmm), p = in(reg) dst.as_mut_ptr(), s = in(reg) ldo * 4,
                options(nostack, preserves_flags))
        }
    }};
}

/// Where the A tiles come from: the 16 rows from row `r` (counting from
/// the first row of the call), K bytes `k..k + 64`, as a slice that starts
/// at the first row's bytes, and the stride between rows.
pub(super) trait TileSource {
    /// See the trait's docs.
    fn tile(&self, r: usize, k: usize) -> (&[u8], usize);
}

/// Rows stored one after another, `kp` bytes each (a panel).
pub(super) struct PanelRows<'a> {
    pub a: &'a [u8],
    pub kp: usize,
}

impl TileSource for PanelRows<'_> {
    fn tile(&self, r: usize, k: usize) -> (&[u8], usize) {
        (&self.a[r * self.kp + k..], self.kp)
    }
}

/// Shifted rows from row `first` on, read in place: tap `k / channels`
/// of 16 consecutive rows is 16 consecutive pixels, `channels` apart.
pub(super) struct InPlace<'a, 'b> {
    pub x: &'b ShiftedRows<'a>,
    pub first: usize,
}

impl TileSource for InPlace<'_, '_> {
    fn tile(&self, r: usize, k: usize) -> (&[u8], usize) {
        let c = self.x.channels;
        let at = (self.first + r + self.x.taps[k / c]) * c + k % c;
        (&self.x.src[at..], c)
    }
}

/// A source whose last, partial tile of rows comes from `tail`: those
/// rows copied into a zeroed panel of 16 rows of `kp` bytes.
pub(super) struct WithTail<S> {
    pub main: S,
    /// The first row served from `tail`, a multiple of 16.
    pub tail_start: usize,
    pub tail: Vec<u8>,
    pub kp: usize,
}

impl<S: TileSource> TileSource for WithTail<S> {
    fn tile(&self, r: usize, k: usize) -> (&[u8], usize) {
        if r >= self.tail_start {
            (&self.tail[(r - self.tail_start) * self.kp + k..], self.kp)
        } else {
            self.main.tile(r, k)
        }
    }
}

/// How far ahead, in bytes of one block's weights, [`prefetch`] reaches:
/// 8 tiles' worth.
const PREFETCH_AHEAD: usize = 8 * TILE_K * BLOCK;

/// Asks for the 1 KiB tile `ahead` bytes past the start of `bytes` (a
/// hint: past the end of `bytes`, nothing is fetched).
#[inline(always)]
fn prefetch(bytes: &[u8], ahead: usize) {
    if let Some(tile) = bytes.get(ahead..ahead + TILE_K * BLOCK) {
        for line in tile.chunks_exact(64) {
            // SAFETY: a prefetch is a hint that never faults, here on
            // memory inside `bytes`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr() as *const i8) };
        }
    }
}

/// Stores result tile `$tmm` (rows `$r..$r + 16`, columns `$col..$col +
/// 16`) into `$out`: directly when all 16 rows exist, else through
/// `$partial`, keeping the rows below `$rows`.
macro_rules! store {
    ($tmm:literal, $r:expr, $col:expr, $out:expr, $ldo:expr, $rows:expr, $partial:expr) => {{
        let (r, col, ldo, rows) = ($r, $col, $ldo, $rows);
        if r + TILE_M <= rows {
            store_tile!($tmm, &mut $out[r * ldo + col..], ldo);
        } else {
            store_tile!($tmm, &mut $partial[..], BLOCK);
            for (i, row) in $partial.chunks_exact(BLOCK).take(rows - r).enumerate() {
                $out[(r + i) * ldo + col..(r + i) * ldo + col + BLOCK].copy_from_slice(row);
            }
        }
    }};
}

/// The AMX `P` kernel (see `GemmIsa::dot`) for `rows` rows of `a`, with
/// `kp` a non-zero multiple of [`TILE_K`]. `a` serves whole tiles of 16
/// rows, up to `rows` rounded up (see [`WithTail`]); the products of rows
/// past `rows` are dropped.
#[allow(clippy::too_many_arguments)]
pub(super) fn dot(
    _proof: Amx,
    a: &impl TileSource,
    rows: usize,
    kp: usize,
    b: &PackedB,
    blocks: Range<usize>,
    out: &mut [i32],
    ldo: usize,
) {
    assert!(kp.is_multiple_of(TILE_K) && kp > 0 && b.kp == kp);
    let tiled_rows = rows.div_ceil(TILE_M) * TILE_M;
    // SAFETY: `_proof` shows the CPU has AMX and Linux granted the tile
    // state; `ldtilecfg` reads the 64-byte configuration.
    unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly, preserves_flags)) };
    let data: &[u8] = bytemuck::cast_slice(&b.data[..]);
    let block_bytes = kp * BLOCK;
    // Blocks outside, rows inside: a pair of blocks' weights (2 * 16 * kp
    // bytes) stay in cache while every row of the panel passes, so the
    // weights are read from memory once per panel.
    let mut blk = blocks.start;
    while blk < blocks.end {
        let two_blocks = blk + 2 <= blocks.end;
        let mut r = 0;
        while r < tiled_rows {
            let two_rows = r + 2 * TILE_M <= tiled_rows;
            // SAFETY: as for `load_tile!`; zeroing registers touches no memory.
            unsafe {
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem, preserves_flags)
                )
            };
            let b_blocks = &data[blk * block_bytes..];
            for q in (0..kp).step_by(TILE_K) {
                // q bytes of K are q / 4 quads of 64 bytes.
                let bq = q * BLOCK;
                if r == 0 {
                    // The first rows' pass brings the weights in from memory:
                    // a tile load waits for its 16 lines before the next can
                    // start (tile registers are not renamed), so fetch the
                    // lines a few steps ahead.
                    prefetch(&b_blocks[bq..], PREFETCH_AHEAD);
                    if two_blocks {
                        prefetch(&b_blocks[block_bytes + bq..], PREFETCH_AHEAD);
                    }
                }
                let (a0, lda) = a.tile(r, q);
                load_tile!("tmm4", a0, lda);
                load_tile!("tmm6", &b_blocks[bq..], TILE_K);
                if two_blocks {
                    load_tile!("tmm7", &b_blocks[block_bytes + bq..], TILE_K);
                }
                if two_rows {
                    let (a1, lda) = a.tile(r + TILE_M, q);
                    load_tile!("tmm5", a1, lda);
                }
                dot_tiles!("tmm0", "tmm4", "tmm6");
                if two_blocks {
                    dot_tiles!("tmm1", "tmm4", "tmm7");
                }
                if two_rows {
                    dot_tiles!("tmm2", "tmm5", "tmm6");
                    if two_blocks {
                        dot_tiles!("tmm3", "tmm5", "tmm7");
                    }
                }
            }
            let col0 = (blk - blocks.start) * BLOCK;
            let mut partial = [0i32; TILE_M * BLOCK];
            store!("tmm0", r, col0, out, ldo, rows, partial);
            if two_blocks {
                store!("tmm1", r, col0 + BLOCK, out, ldo, rows, partial);
            }
            if two_rows {
                store!("tmm2", r + TILE_M, col0, out, ldo, rows, partial);
                if two_blocks {
                    store!("tmm3", r + TILE_M, col0 + BLOCK, out, ldo, rows, partial);
                }
            }
            r += if two_rows { 2 * TILE_M } else { TILE_M };
        }
        blk += if two_blocks { 2 } else { 1 };
    }
    // SAFETY: returns the tiles to their initial state (so a context
    // switch need not save them); touches no memory.
    unsafe { asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
}
