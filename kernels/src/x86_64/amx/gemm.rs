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
use qtensor_runtime::isa::Amx;
use std::arch::asm;
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

/// The AMX `P` kernel (see `GemmIsa::dot`) for `rows` rows, a multiple of
/// 16, with `kp` a non-zero multiple of [`TILE_K`].
#[allow(clippy::too_many_arguments)]
pub(super) fn dot(
    _proof: Amx,
    a: &[u8],
    rows: usize,
    kp: usize,
    b: &PackedB,
    blocks: Range<usize>,
    out: &mut [i32],
    ldo: usize,
) {
    assert!(rows.is_multiple_of(TILE_M) && kp.is_multiple_of(TILE_K) && kp > 0 && a.len() >= rows * kp);
    // SAFETY: `_proof` shows the CPU has AMX and Linux granted the tile
    // state; `ldtilecfg` reads the 64-byte configuration.
    unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly, preserves_flags)) };
    let data: &[u8] = bytemuck::cast_slice(&b.data[..]);
    let block_bytes = kp * BLOCK;
    let mut r = 0;
    while r < rows {
        let two_rows = r + 2 * TILE_M <= rows;
        let mut blk = blocks.start;
        while blk < blocks.end {
            let two_blocks = blk + 2 <= blocks.end;
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
            let a_rows = &a[r * kp..];
            let b_blocks = &data[blk * block_bytes..];
            for q in (0..kp).step_by(TILE_K) {
                // q bytes of K are q / 4 quads of 64 bytes.
                let bq = q * BLOCK;
                load_tile!("tmm6", &b_blocks[bq..], TILE_K);
                load_tile!("tmm4", &a_rows[q..], kp);
                dot_tiles!("tmm0", "tmm4", "tmm6");
                if two_blocks {
                    load_tile!("tmm7", &b_blocks[block_bytes + bq..], TILE_K);
                    dot_tiles!("tmm1", "tmm4", "tmm7");
                }
                if two_rows {
                    load_tile!("tmm5", &a_rows[TILE_M * kp + q..], kp);
                    dot_tiles!("tmm2", "tmm5", "tmm6");
                    if two_blocks {
                        dot_tiles!("tmm3", "tmm5", "tmm7");
                    }
                }
            }
            let col0 = (blk - blocks.start) * BLOCK;
            store_tile!("tmm0", &mut out[r * ldo + col0..], ldo);
            if two_blocks {
                store_tile!("tmm1", &mut out[r * ldo + col0 + BLOCK..], ldo);
            }
            if two_rows {
                store_tile!("tmm2", &mut out[(r + TILE_M) * ldo + col0..], ldo);
                if two_blocks {
                    store_tile!("tmm3", &mut out[(r + TILE_M) * ldo + col0 + BLOCK..], ldo);
                }
            }
            blk += if two_blocks { 2 } else { 1 };
        }
        r += if two_rows { 2 * TILE_M } else { TILE_M };
    }
    // SAFETY: returns the tiles to their initial state (so a context
    // switch need not save them); touches no memory.
    unsafe { asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
}
