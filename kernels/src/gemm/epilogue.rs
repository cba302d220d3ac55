//! What a GEMM does with each exact result `C[m, n]`: the zero-point terms
//! that turn raw dot products into `C`, and PyTorch's requantization (or
//! the float output) after it. Every tier's micro-kernel finishes rows
//! with these definitions.

use qtensor_runtime::numerics::AccRequant;
use std::ops::Range;

/// One row segment's exact result, before the epilogue: `C[j] = p[j] +
/// col_terms[j] - zw[j] * row_sum`, computed with wrapping i32 arithmetic.
#[derive(Clone, Copy)]
pub struct RowTerms<'a> {
    /// The kernel's raw dot products `Σ x·w` of the row, per column.
    pub products: &'a [i32],
    /// The per-column constant terms.
    pub col_terms: &'a [i32],
    /// The per-column weight zero points, or empty when every one is 0
    /// (symmetric weights, the common case: the epilogue then skips the
    /// `zw * row_sum` products).
    pub zw: &'a [i32],
    /// `Σ_k x` of the row.
    pub row_sum: i32,
}

impl RowTerms<'_> {
    /// The exact `C[j]` (wrapping; exact whenever the true value fits i32).
    #[inline]
    pub fn c(&self, j: usize) -> i32 {
        let zw = self.zw.get(j).copied().unwrap_or(0);
        self.products[j].wrapping_add(self.col_terms[j]).wrapping_sub(zw.wrapping_mul(self.row_sum))
    }

    /// The terms from column `j` on.
    pub fn tail(&self, j: usize) -> RowTerms<'_> {
        RowTerms {
            products: &self.products[j..],
            col_terms: &self.col_terms[j..],
            zw: self.zw.get(j..).unwrap_or(&[]),
            row_sum: self.row_sum,
        }
    }
}

/// A panel of rows' exact results before the epilogue: row `r` is
/// [`PanelTerms::row`]`(r)`, its products at `products[r * ldp..]`.
#[derive(Clone, Copy)]
pub struct PanelTerms<'a> {
    /// The raw dot products, `ldp` apart per row.
    pub products: &'a [i32],
    /// The distance between rows of `products`.
    pub ldp: usize,
    /// The per-column constant terms (one per output column).
    pub col_terms: &'a [i32],
    /// The per-column weight zero points, or empty when all are 0.
    pub zw: &'a [i32],
    /// `Σ_k x` of each row.
    pub row_sums: &'a [i32],
}

impl PanelTerms<'_> {
    /// Row `r`'s terms.
    #[inline]
    pub fn row(&self, r: usize) -> RowTerms<'_> {
        let n = self.col_terms.len();
        RowTerms {
            products: &self.products[r * self.ldp..r * self.ldp + n],
            col_terms: self.col_terms,
            zw: self.zw,
            row_sum: self.row_sums[r],
        }
    }
}

/// PyTorch's requantization of a row segment's columns (see
/// `numerics::AccRequant`): per column `n`,
/// `q = clamp(round_half_even((f32(C) + bias[n]) * mult[n]) + zero_point, lo, hi)`.
#[derive(Debug, Clone, Copy)]
pub struct Requant<'a> {
    /// Per column, `aws / f32(y_scale)` with `aws = f32(x_scale) * f32(w_scale)`.
    pub mult: &'a [f32],
    /// Per column, `bias / aws`.
    pub bias: &'a [f32],
    /// The output zero point.
    pub zero_point: i32,
    /// Lowest output (the zero point for a fused relu).
    pub lo: f32,
    /// Highest output.
    pub hi: f32,
}

impl<'a> Requant<'a> {
    /// The columns `cols` of this requantization.
    pub fn cols(&self, cols: Range<usize>) -> Requant<'a> {
        Requant { mult: &self.mult[cols.clone()], bias: &self.bias[cols], ..*self }
    }

    /// Column `j` of the exact result `c`: `numerics::AccRequant::apply`,
    /// the definition every vector epilogue reproduces lane by lane.
    #[inline]
    pub fn scalar(&self, j: usize, c: i32) -> u8 {
        let rq = AccRequant { mult: self.mult[j], bias_term: self.bias[j] };
        rq.apply(c as i64, self.zero_point as i64, self.lo as i64, self.hi as i64) as u8
    }
}

/// The per-column constants of [`Requant`] for output channels with
/// weight scales `w_scales` and float biases `bias`, as
/// `numerics::AccRequant` defines them; `None` where f32 cannot hold them
/// (extreme scale ratios, a NaN or infinite bias) or the zero point is
/// outside quint8, which the reference kernels handle.
pub fn column_requant(
    x_scale: f64,
    w_scales: &[f64],
    bias: &[f64],
    y_scale: f64,
    y_zero_point: i64,
) -> Option<(Vec<f32>, Vec<f32>)> {
    let rqs: Vec<AccRequant> =
        w_scales.iter().zip(bias).map(|(&sw, &b)| AccRequant::new(x_scale, sw, b as f32, y_scale)).collect();
    let finite = rqs.iter().all(|r| r.mult.is_finite() && r.bias_term.is_finite());
    (finite && (0..=255).contains(&y_zero_point))
        .then(|| (rqs.iter().map(|r| r.mult).collect(), rqs.iter().map(|r| r.bias_term).collect()))
}

/// What to do with each exact result `C[m, n]`.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    /// Requantized to u8 (see [`Requant`]).
    Quantize(Requant<'a>),
    /// `y = (C * x_scale) * w_scale[n] + bias[n]` in f64, stored as f32.
    Float {
        /// The activations' scale.
        x_scale: f64,
        /// The weight's scale per column.
        w_scales: &'a [f64],
        /// The bias.
        bias: &'a [f64],
    },
}
