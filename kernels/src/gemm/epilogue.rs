//! What a GEMM does with each exact result `C[m, n]`: the zero-point terms
//! that turn raw dot products into `C`, and PyTorch's requantization (or
//! the float output) after it. Every tier's micro-kernel finishes rows
//! with these definitions.

use qtensor_runtime::engine::ConvRoute;
use qtensor_runtime::numerics::{round_half_even_small, round_to_byte, AccRequant, FusedBiasRequant, OneDnnRequant};
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

    /// This row as a one-row panel, `row_sums` holding its `row_sum`: so a
    /// row epilogue can be the panel epilogue's loop.
    #[inline]
    pub fn as_panel<'s>(&'s self, row_sums: &'s [i32]) -> PanelTerms<'s> {
        PanelTerms {
            products: self.products,
            ldp: self.products.len(),
            col_terms: self.col_terms,
            zw: self.zw,
            row_sums,
        }
    }

    /// The terms of the first `n` columns, every slice cut to exactly `n`:
    /// a vector epilogue that steps `j` while `j + 16 <= n` then loads
    /// `[j..j + 16]` with no bounds check left in its loop.
    ///
    /// Panics if the row holds fewer than `n` columns (a caller's bug).
    #[inline]
    pub fn first(&self, n: usize) -> RowTerms<'_> {
        RowTerms {
            products: &self.products[..n],
            col_terms: &self.col_terms[..n],
            zw: if self.zw.is_empty() { &[] } else { &self.zw[..n] },
            row_sum: self.row_sum,
        }
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

/// Which of PyTorch's requantizations a [`Requant`] computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RequantForm {
    /// fbgemm's (`numerics::AccRequant`): `mult` and `bias` are its
    /// per-column multiplier and bias term.
    Fbgemm,
    /// fbgemm's for a per-tensor weight (`numerics::FusedBiasRequant`):
    /// `mult` is the multiplier and `bias` the float bias, fused with the
    /// accumulator through `rcp`.
    FbgemmFused {
        /// `f32(1 / aws)`.
        rcp: f32,
    },
    /// oneDNN's (`numerics::OneDnnRequant`): `mult` holds the per-column
    /// weight scales and `bias` the float biases.
    OneDnn {
        /// The input scale as oneDNN rebuilds it.
        x: f32,
        /// The output scale's reciprocal as oneDNN rebuilds it.
        d: f32,
    },
}

/// PyTorch's requantization of a row segment's columns. Under
/// [`RequantForm::Fbgemm`], per column `n`,
/// `q = clamp(round_half_even((f32(C) + bias[n]) * mult[n]) + zero_point, lo, hi)`;
/// under [`RequantForm::OneDnn`], `numerics::OneDnnRequant`.
#[derive(Debug, Clone, Copy)]
pub struct Requant<'a> {
    /// Per column, fbgemm's `aws / f32(y_scale)` with
    /// `aws = f32(x_scale) * f32(w_scale)`; oneDNN's weight scale.
    pub mult: &'a [f32],
    /// Per column, fbgemm's bias term; oneDNN's bias.
    pub bias: &'a [f32],
    /// The output zero point.
    pub zero_point: i32,
    /// Lowest output (the zero point for a fused relu).
    pub lo: f32,
    /// Highest output.
    pub hi: f32,
    /// Which sequence the constants are for.
    pub form: RequantForm,
}

impl<'a> Requant<'a> {
    /// The columns `cols` of this requantization.
    pub fn cols(&self, cols: Range<usize>) -> Requant<'a> {
        Requant { mult: &self.mult[cols.clone()], bias: &self.bias[cols], ..*self }
    }

    /// Column `j` of the exact result `c`: `numerics::AccRequant::apply` (or
    /// `OneDnnRequant::apply`), the definition every vector epilogue
    /// reproduces lane by lane.
    #[inline]
    pub fn scalar(&self, j: usize, c: i32) -> u8 {
        let (zp, lo, hi) = (self.zero_point as i64, self.lo as i64, self.hi as i64);
        match self.form {
            RequantForm::Fbgemm => {
                AccRequant { mult: self.mult[j], bias_term: self.bias[j] }.apply(c as i64, zp, lo, hi) as u8
            }
            RequantForm::OneDnn { x, d } => {
                OneDnnRequant { x, w: self.mult[j], bias: self.bias[j], d }.apply(c as i64, zp, lo, hi) as u8
            }
            RequantForm::FbgemmFused { rcp } => {
                FusedBiasRequant { mult: self.mult[j], bias: self.bias[j], rcp }.apply(c as i64, zp, lo, hi) as u8
            }
        }
    }

    /// fbgemm's per-tensor sequence (`numerics::FusedBiasRequant`) over a
    /// row segment, written so that the compiler vectorizes it (with FMA
    /// instructions where the ISA's [`GemmIsa::vectorized`] enables them,
    /// a libm call otherwise: `mul_add` is the exact fused operation
    /// either way); the same bits as [`Requant::scalar`].
    ///
    /// [`GemmIsa::vectorized`]: super::GemmIsa::vectorized
    #[inline(always)]
    pub fn fused_row(&self, rcp: f32, t: RowTerms<'_>, dst: &mut [u8]) {
        let zp = self.zero_point;
        let (lo, hi) = (self.lo - zp as f32, self.hi - zp as f32);
        // A NaN (an infinite fused bias times a zero multiplier) converts
        // to 0 and so lands on the zero point, as the scalar form's does.
        let zp_f = zp as f32;
        let requant = |c: i32, m: f32, b: f32| {
            let r = round_half_even_small((b.mul_add(rcp, c as f32) * m).clamp(lo, hi));
            if r.is_nan() {
                zp as u8
            } else {
                round_to_byte(r + zp_f)
            }
        };
        self.each_column(t, dst, requant)
    }

    /// oneDNN's sequence over a row segment, written so that the compiler
    /// vectorizes it on any target (its steps are plain f32 arithmetic,
    /// which Rust never contracts into fused multiply-adds); the same bits
    /// as [`Requant::scalar`] for the finite constants [`column_requant`]
    /// admits. The ISAs' vector epilogues implement fbgemm's sequence only,
    /// so the GEMM driver sends oneDNN's here.
    #[inline(always)]
    pub fn onednn_row(&self, x: f32, d: f32, t: RowTerms<'_>, dst: &mut [u8]) {
        let (zp, lo, hi) = (self.zero_point as f32, self.lo, self.hi);
        // The clamp bounds the value to quint8's range, where rounding
        // needs no branch.
        // (The constants are finite, so no NaN reaches `round_to_byte`.)
        let requant = |c: i32, w: f32, b: f32| round_to_byte(((c as f32 * x * w + b) * d + zp).clamp(lo, hi));
        self.each_column(t, dst, requant)
    }

    /// `dst[j] = requant(C[j], mult[j], bias[j])` over a row segment, as
    /// straight-line loops over equal-length slices (one without the
    /// weight zero points' products), so that nothing stops the vectorizer.
    #[inline(always)]
    fn each_column(&self, t: RowTerms<'_>, dst: &mut [u8], requant: impl Fn(i32, f32, f32) -> u8) {
        let n = dst.len();
        let (m, b, p, ct) = (&self.mult[..n], &self.bias[..n], &t.products[..n], &t.col_terms[..n]);
        if t.zw.is_empty() {
            for ((((out, &p), &ct), &m), &b) in dst.iter_mut().zip(p).zip(ct).zip(m).zip(b) {
                *out = requant(p.wrapping_add(ct), m, b);
            }
        } else {
            let zw = &t.zw[..n];
            for (((((out, &p), &ct), &zw), &m), &b) in dst.iter_mut().zip(p).zip(ct).zip(zw).zip(m).zip(b) {
                *out = requant(p.wrapping_add(ct).wrapping_sub(zw.wrapping_mul(t.row_sum)), m, b);
            }
        }
    }
}

/// Whose requantization sequence an epilogue reproduces: the part of an
/// engine's [`ConvRoute`] that the per-column constants depend on (the
/// int16 saturation of the sums is the GEMM's business, not theirs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequantRoute {
    /// fbgemm's; `rounded_bias` as in [`ConvRoute::Fbgemm`]. Every linear
    /// takes it with `rounded_bias: false` (PyTorch's x86 engine runs
    /// linear on fbgemm too).
    Fbgemm {
        /// The bias term rounded to f32 before the accumulator is added.
        rounded_bias: bool,
    },
    /// oneDNN's; `folded` as in [`ConvRoute::OneDnn`].
    OneDnn {
        /// One multiplier `f32(x_scale * w_scale)` instead of two.
        folded: bool,
    },
}

impl From<ConvRoute> for RequantRoute {
    fn from(route: ConvRoute) -> RequantRoute {
        match route {
            ConvRoute::Fbgemm { rounded_bias, .. } => RequantRoute::Fbgemm { rounded_bias },
            ConvRoute::OneDnn { folded } => RequantRoute::OneDnn { folded },
        }
    }
}

/// The per-column constants of [`Requant`] for output channels with
/// weight scales `w_scales` and float biases `bias`, in `route`'s sequence
/// (`per_tensor` when the weight is quantized per tensor, which fbgemm
/// requantizes with a fused bias); `None` where f32 cannot hold them (extreme scale
/// ratios, a NaN or infinite bias) or the zero point is outside quint8,
/// which the reference kernels handle.
pub fn column_requant(
    x_scale: f64,
    w_scales: &[f64],
    bias: &[f64],
    (y_scale, y_zero_point): (f64, i64),
    per_tensor: bool,
    route: RequantRoute,
) -> Option<(Vec<f32>, Vec<f32>, RequantForm)> {
    let (mult, bias, form): (Vec<f32>, Vec<f32>, RequantForm) = if let RequantRoute::OneDnn { folded } = route {
        let rqs: Vec<OneDnnRequant> = w_scales
            .iter()
            .zip(bias)
            .map(|(&sw, &b)| OneDnnRequant::new(x_scale, sw, b as f32, y_scale, folded))
            .collect();
        let (x, d) = rqs.first().map_or((1.0, 1.0), |r| (r.x, r.d));
        let finite = x.is_finite() && d.is_finite() && d > 0.0;
        (
            rqs.iter().map(|r| r.w).collect(),
            rqs.iter().map(|r| r.bias).collect(),
            if finite { RequantForm::OneDnn { x, d } } else { return None },
        )
    } else if per_tensor && route == (RequantRoute::Fbgemm { rounded_bias: true }) {
        let rqs: Vec<AccRequant> = w_scales
            .iter()
            .zip(bias)
            .map(|(&sw, &b)| AccRequant::with_rounded_reciprocal(x_scale, sw, b as f32, y_scale))
            .collect();
        (rqs.iter().map(|r| r.mult).collect(), rqs.iter().map(|r| r.bias_term).collect(), RequantForm::Fbgemm)
    } else if per_tensor {
        let rqs: Vec<FusedBiasRequant> =
            w_scales.iter().zip(bias).map(|(&sw, &b)| FusedBiasRequant::new(x_scale, sw, b as f32, y_scale)).collect();
        let rcp = rqs.first().map_or(1.0, |r| r.rcp);
        (
            rqs.iter().map(|r| r.mult).collect(),
            rqs.iter().map(|r| r.bias).collect(),
            if rcp.is_finite() { RequantForm::FbgemmFused { rcp } } else { return None },
        )
    } else {
        let rqs: Vec<AccRequant> =
            w_scales.iter().zip(bias).map(|(&sw, &b)| AccRequant::new(x_scale, sw, b as f32, y_scale)).collect();
        (rqs.iter().map(|r| r.mult).collect(), rqs.iter().map(|r| r.bias_term).collect(), RequantForm::Fbgemm)
    };
    let finite = mult.iter().chain(&bias).all(|v| v.is_finite());
    (finite && (0..=255).contains(&y_zero_point)).then_some((mult, bias, form))
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
