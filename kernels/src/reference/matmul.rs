//! Float matrix products for the float ops of dynamically quantized models
//! (`linear`, `matmul`, `scaled_dot_product_attention`), through
//! `ndarray`'s `dot`: a safe interface to the `matrixmultiply` crate's
//! sgemm, which picks its SIMD kernel for the CPU.

use ndarray::{ArrayView2, ShapeBuilder};
use qtensor_runtime::storage::checked_count;
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
    Ok(a.dot(&b).into_iter().collect())
}
