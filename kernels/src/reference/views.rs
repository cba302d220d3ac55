//! View and copy operators, for every dtype: they move metadata, not values
//! (except `contiguous` of a strided tensor and `copy_`).

use qtensor_runtime::{register_kernel, Priority, Result, Tensor};

fn reference_copy(dst: &Tensor, src: &Tensor) -> Result<Tensor> {
    dst.copy_(src)?;
    Ok(dst.clone())
}

fn reference_slice(x: &Tensor, dim: i64, start: Option<i64>, end: Option<i64>, step: i64) -> Result<Tensor> {
    x.slice(dim, start, end, step)
}

/// Registers one typed view function for every plain and quantized dtype.
macro_rules! view_kernels {
    ($($op:literal => fn $f:path [$($arg:ident : $ty:ty),*];)*) => {$(
        const _: () = {
            fn kernel($($arg: $ty),*) -> Result<Tensor> {
                $f($($arg),*)
            }
            register_kernel! {
                op: $op,
                dtypes: [Float32, Float64, Int64, Int32, Int16, Int8, UInt8, QUInt8, QInt8, QInt16, QInt32],
                name: concat!("reference_", $op),
                priority: Priority::REFERENCE,
                fn kernel($($arg: $ty),*) -> Tensor
            }
        };
    )*};
}

view_kernels! {
    "transpose" => fn Tensor::transpose [x: &Tensor, dim0: i64, dim1: i64];
    "permute" => fn Tensor::permute [x: &Tensor, dims: &[i64]];
    "contiguous" => fn Tensor::contiguous [x: &Tensor];
    "slice" => fn reference_slice [x: &Tensor, dim: i64, start: Option<i64>, end: Option<i64>, step: i64];
    "select" => fn Tensor::select [x: &Tensor, dim: i64, index: i64];
    "reshape" => fn Tensor::reshape [x: &Tensor, shape: &[i64]];
    "view" => fn Tensor::view [x: &Tensor, size: &[i64]];
    "copy_" => fn reference_copy [dst: &Tensor, src: &Tensor];
}
