//! How the AVX2 GEMM kernels cover one block of 16 weight columns: in
//! register tiles of up to 6 activation rows, each 8 or 16 columns
//! wide.

/// Runs `$tile` over `$rows` activation rows against one block of 16
/// columns, of which the first `$real_cols` are real.
///
/// `$tile` sees two consts and one variable:
/// - `R`, the tile's row count: tiles of `$max` rows (at most 6), then one
///   tile of the remainder;
/// - `V`, the 8-column halves it computes: 1 when `$real_cols <= 8` (the
///   rest of the block is padding, not worth multiplying), else 2;
/// - `$r`, the tile's first row.
///
/// A macro rather than a function because `R` and `V` are const generic
/// arguments of `#[target_feature]` tiles, which a closure cannot take.
macro_rules! block_tiles {
    ($rows:expr, $max:literal, $real_cols:expr, |$r:ident| $tile:expr) => {{
        const { assert!($max <= 6) };
        if $real_cols <= $crate::gemm::packed::BLOCK / 2 {
            const V: usize = 1;
            $crate::x86_64::avx2::block_tiles::row_tiles!($rows, $max, |$r| $tile)
        } else {
            const V: usize = 2;
            $crate::x86_64::avx2::block_tiles::row_tiles!($rows, $max, |$r| $tile)
        }
    }};
}

/// The rows half of [`block_tiles`]: tiles of `$max` rows, then one of
/// the remainder, each with its row count as the const `R`.
macro_rules! row_tiles {
    ($rows:expr, $max:literal, |$r:ident| $tile:expr) => {{
        let rows: usize = $rows;
        let mut $r = 0;
        while $r + $max <= rows {
            $crate::x86_64::avx2::block_tiles::row_tiles!(@rows $max, $tile);
            $r += $max;
        }
        match rows - $r {
            1 => $crate::x86_64::avx2::block_tiles::row_tiles!(@rows 1, $tile),
            2 => $crate::x86_64::avx2::block_tiles::row_tiles!(@rows 2, $tile),
            3 => $crate::x86_64::avx2::block_tiles::row_tiles!(@rows 3, $tile),
            4 => $crate::x86_64::avx2::block_tiles::row_tiles!(@rows 4, $tile),
            5 => $crate::x86_64::avx2::block_tiles::row_tiles!(@rows 5, $tile),
            // 0, or (with `$max <= 6`, asserted by `block_tiles`) nothing
            // else.
            _ => {}
        }
    }};
    // One tile of `$n` rows.
    (@rows $n:literal, $tile:expr) => {{
        const R: usize = $n;
        $tile
    }};
}

pub(super) use block_tiles;
pub(super) use row_tiles;
