//! Float matrix products for the float ops of dynamically quantized models
//! (`linear`, `matmul`, `scaled_dot_product_attention`), through
//! `ndarray`'s `dot`: a safe interface to the `matrixmultiply` crate's
//! sgemm, which picks its SIMD kernel for the CPU.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
use qtensor_runtime::storage::{checked_count, try_filled};
use qtensor_runtime::{Error, Result};

/// How the right-hand matrix is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rhs {
    /// `b` is `[k, n]` row-major.
    KN,
    /// `b` is `[n, k]` row-major (a linear layer's weight): the product is
    /// `a @ b^T`.
    NK,
}

/// `a @ b` (or `a @ b^T`) with `a` `[m, k]` row-major: `[m, n]` row-major.
pub fn sgemm(op: &str, a: &[f32], b: &[f32], [m, k, n]: [usize; 3], rhs: Rhs) -> Result<Vec<f32>> {
    checked_count(op, &[m, n])?;
    let shape = |e: ndarray::ShapeError| Error::shape(op, format!("matrix shapes: {e}"));
    let a = ArrayView2::from_shape((m, k), a).map_err(shape)?;
    let b = match rhs {
        Rhs::KN => ArrayView2::from_shape((k, n), b).map_err(shape)?,
        Rhs::NK => ArrayView2::from_shape((k, n).strides((1, k)), b).map_err(shape)?,
    };
    // The product goes into a buffer allocated fallibly: its size comes
    // from the operands' shapes, which may be huge around an empty K.
    let mut c = try_filled(checked_count(op, &[m, n])?, 0f32)?;
    let mut view = ArrayViewMut2::from_shape((m, n), &mut c).map_err(shape)?;
    general_mat_mul(1.0, &a, &b, 0.0, &mut view);
    Ok(c)
}
