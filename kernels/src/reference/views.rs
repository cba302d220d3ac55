//! View and copy operators, for every dtype: they move metadata, not values
//! (except `contiguous` of a strided tensor and `copy_`).

use qtensor_runtime::ops as op;
use qtensor_runtime::tensor::layout::wrap_dim;
use qtensor_runtime::{register_kernel, Error, Priority, Result, Tensor};

fn reference_copy(dst: &Tensor, src: &Tensor) -> Result<Tensor> {
    dst.copy_(src)?;
    Ok(dst.clone())
}

/// `flatten(start_dim, end_dim)`: the dimensions from `start_dim` to
/// `end_dim` (inclusive) merged into one, a view when the strides allow;
/// a 0-d tensor becomes `[1]`, as in PyTorch.
pub fn flatten(x: &Tensor, start_dim: i64, end_dim: i64) -> Result<Tensor> {
    let op = "flatten";
    if x.ndim() == 0 {
        return x.reshape([1]);
    }
    let start = wrap_dim(op, start_dim, x.ndim())?;
    let end = wrap_dim(op, end_dim, x.ndim())?;
    if start > end {
        return Err(Error::invalid(
            op,
            format!("start_dim {start_dim} must not come after end_dim {end_dim} (shape {:?})", x.sizes()),
        ));
    }
    let s = x.sizes();
    // Checked: an empty tensor's merged sizes may multiply past 2^63 - 1.
    let merged = qtensor_runtime::tensor::layout::checked_numel(op, &s[start..=end])?;
    let shape: Vec<i64> =
        s[..start].iter().chain(std::iter::once(&merged)).chain(&s[end + 1..]).map(|&d| d as i64).collect();
    x.reshape(&shape)
}

fn reference_slice(x: &Tensor, dim: i64, start: Option<i64>, end: Option<i64>, step: i64) -> Result<Tensor> {
    x.slice(dim, start, end, step)
}

/// Registers one typed view function for every plain and quantized dtype.
macro_rules! view_kernels {
    ($($op:expr => fn $f:path [$($arg:ident : $ty:ty),*] as $name:literal;)*) => {$(
        const _: () = {
            fn kernel($($arg: $ty),*) -> Result<Tensor> {
                $f($($arg),*)
            }
            register_kernel! {
                op: $op,
                dtypes: [Float32, Float64, Int64, Int32, Int16, Int8, UInt8, QUInt8, QInt8, QInt16, QInt32],
                name: $name,
                priority: Priority::REFERENCE,
                fn kernel($($arg: $ty),*) -> Tensor
            }
        };
    )*};
}

view_kernels! {
    op::TRANSPOSE => fn Tensor::transpose [x: &Tensor, dim0: i64, dim1: i64] as "reference_transpose";
    op::PERMUTE => fn Tensor::permute [x: &Tensor, dims: &[i64]] as "reference_permute";
    op::CONTIGUOUS => fn Tensor::contiguous [x: &Tensor] as "reference_contiguous";
    op::SLICE => fn reference_slice [x: &Tensor, dim: i64, start: Option<i64>, end: Option<i64>, step: i64] as "reference_slice";
    op::SELECT => fn Tensor::select [x: &Tensor, dim: i64, index: i64] as "reference_select";
    op::RESHAPE => fn Tensor::reshape [x: &Tensor, shape: &[i64]] as "reference_reshape";
    op::VIEW => fn Tensor::view [x: &Tensor, size: &[i64]] as "reference_view";
    op::COPY_ => fn reference_copy [dst: &Tensor, src: &Tensor] as "reference_copy_";
    op::FLATTEN => fn flatten [x: &Tensor, start_dim: i64, end_dim: i64] as "reference_flatten";
}
