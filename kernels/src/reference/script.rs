//! TorchScript's bookkeeping ops: sizes, list lengths, integer compares
//! and arithmetic, 0-d tensors of numbers, and a model's own exceptions
//! and warnings. Frozen files call them around every layer (PyTorch's
//! input checks), so each is a plain function with no allocation beyond
//! its result.

use qtensor_runtime::ops as op;
use qtensor_runtime::tensor::layout::wrap_dim;
use qtensor_runtime::{register_kernel, DType, Error, Priority, Result, Scalar, Tensor, Value};

fn reference_size(x: &Tensor) -> Result<Vec<i64>> {
    x.sizes().iter().map(|&s| i64::try_from(s).map_err(|_| Error::invalid("size", "a size beyond i64"))).collect()
}

fn reference_size_int(x: &Tensor, dim: i64) -> Result<i64> {
    let d = wrap_dim("size.int", dim, x.ndim())?;
    let size =
        x.sizes().get(d).ok_or_else(|| Error::invalid("size.int", format!("a 0-d tensor has no dimension {dim}")))?;
    i64::try_from(*size).map_err(|_| Error::invalid("size.int", "a size beyond i64"))
}

fn reference_dim(x: &Tensor) -> Result<i64> {
    Ok(x.ndim() as i64)
}

fn reference_len(list: &Value) -> Result<i64> {
    let n = match list {
        Value::IntList(l) => l.len(),
        Value::TensorList(l) => l.len(),
        Value::List(l) => l.len(),
        other => return Err(Error::invalid("len.t", format!("len of {}", other.type_name()))),
    };
    Ok(n as i64)
}

/// The integer compares, one function per op through a table of
/// comparisons.
macro_rules! int_compares {
    ($($op:expr => $f:ident($cmp:tt) as $name:literal;)*) => {$(
        fn $f(a: i64, b: i64) -> Result<bool> {
            Ok(a $cmp b)
        }
        register_kernel! {
            op: $op, dtypes: [Float32], name: $name,
            priority: Priority::REFERENCE, fn $f(a: i64, b: i64) -> bool
        }
    )*};
}

int_compares! {
    op::EQ_INT => eq_int(==) as "reference_eq_int";
    op::NE_INT => ne_int(!=) as "reference_ne_int";
    op::LT_INT => lt_int(<) as "reference_lt_int";
    op::GT_INT => gt_int(>) as "reference_gt_int";
    op::LE_INT => le_int(<=) as "reference_le_int";
    op::GE_INT => ge_int(>=) as "reference_ge_int";
}

/// Python's `a // b` on integers: rounds toward negative infinity.
pub fn python_floordiv(op: &str, a: i64, b: i64) -> Result<i64> {
    let q = a.checked_div(b).ok_or_else(|| Error::invalid(op, format!("{a} // {b}: division by zero or overflow")))?;
    // Truncation rounded toward zero; step down when the signs differ and
    // the division was inexact.
    Ok(if a % b != 0 && ((a < 0) != (b < 0)) { q - 1 } else { q })
}

fn reference_floordiv_int(a: i64, b: i64) -> Result<i64> {
    python_floordiv("floordiv.int", a, b)
}

fn reference_floor_divide(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let op = "floor_divide";
    let shape = qtensor_runtime::tensor::layout::broadcast_shapes(op, a.sizes(), b.sizes())?;
    let (ea, eb) = (a.expand(&shape[..])?, b.expand(&shape[..])?);
    match (a.dtype(), b.dtype()) {
        (DType::Int64, DType::Int64) => {
            let (va, vb) = (ea.to_vec::<i64>()?, eb.to_vec::<i64>()?);
            let out = va.iter().zip(&vb).map(|(&x, &y)| python_floordiv(op, x, y)).collect::<Result<Vec<i64>>>()?;
            Tensor::from_vec(out, &shape)
        }
        (DType::Float32, DType::Float32) => {
            let (va, vb) = (ea.to_vec::<f32>()?, eb.to_vec::<f32>()?);
            Tensor::from_vec(va.iter().zip(&vb).map(|(&x, &y)| (x / y).floor()).collect::<Vec<f32>>(), &shape)
        }
        (x, y) => {
            Err(Error::invalid(op, format!("floor_divide of {x} and {y} (int64 or float32 pairs are supported)")))
        }
    }
}

fn reference_int_tensor(a: &Tensor) -> Result<i64> {
    if a.numel() != 1 {
        return Err(Error::invalid("Int.Tensor", format!("int() of a tensor of {} elements", a.numel())));
    }
    if a.dtype().is_float() {
        let v = a.item()?;
        if !v.is_finite() || v.abs() >= 9.2e18 {
            return Err(Error::invalid("Int.Tensor", format!("int() of {v}")));
        }
        return Ok(v.trunc() as i64);
    }
    Ok(a.int_values()?[0])
}

fn reference_prim_dtype(a: &Tensor) -> Result<i64> {
    a.dtype().torch_code().ok_or_else(|| Error::invalid("prim::dtype", format!("{} has no PyTorch code", a.dtype())))
}

fn reference_prim_device(_a: &Tensor) -> Result<String> {
    Ok("cpu".into())
}

fn reference_eq_int_list(a: &[i64], b: &[i64]) -> Result<bool> {
    Ok(a == b)
}

fn reference_ne_int_list(a: &[i64], b: &[i64]) -> Result<bool> {
    Ok(a != b)
}

fn reference_num_to_tensor(a: Scalar) -> Result<Tensor> {
    match a {
        Scalar::Int(i) => Tensor::from_vec(vec![i], &[]),
        Scalar::Bool(b) => Tensor::from_vec(vec![b as i64], &[]),
        Scalar::Float(f) => Tensor::from_vec(vec![f], &[]),
    }
}

fn reference_raise(msg: &str, cls: Option<&str>) -> Result<()> {
    Err(Error::Raised { class: cls.map(str::to_string), message: msg.to_string() })
}

fn reference_warn(message: &str, _stacklevel: i64) -> Result<()> {
    eprintln!("warning (from the model): {message}");
    Ok(())
}

register_kernel! {
    dtypes: [Float32, Float64, Int64, Int32, Int16, Int8, UInt8, QUInt8, QInt8, QInt16, QInt32],
    priority: Priority::REFERENCE,
    kernels: {
        op::SIZE => reference_size(x: &Tensor) -> Vec<i64>,
        op::SIZE_INT => reference_size_int(x: &Tensor, dim: i64) -> i64,
        op::DIM => reference_dim(x: &Tensor) -> i64,
        op::LEN_T => reference_len(list: &Value) -> i64,
        op::INT_TENSOR => reference_int_tensor(a: &Tensor) -> i64,
        op::prim::DTYPE => reference_prim_dtype(a: &Tensor) -> i64,
        op::prim::DEVICE => reference_prim_device(a: &Tensor) -> String,
    }
}

register_kernel! {
    dtypes: [Float32],
    priority: Priority::REFERENCE,
    kernels: {
        op::FLOORDIV_INT => reference_floordiv_int(a: i64, b: i64) -> i64,
        op::EQ_INT_LIST => reference_eq_int_list(a: &[i64], b: &[i64]) -> bool,
        op::NE_INT_LIST => reference_ne_int_list(a: &[i64], b: &[i64]) -> bool,
        op::prim::NUM_TO_TENSOR_SCALAR => reference_num_to_tensor(a: Scalar) -> Tensor,
        op::prim::RAISE_EXCEPTION => reference_raise(msg: &str, cls: Option<&str>) -> (),
        op::WARN => reference_warn(message: &str, stacklevel: i64) -> (),
    }
}

register_kernel! {
    dtypes: [Int64, Float32],
    priority: Priority::REFERENCE,
    kernels: {
        op::FLOOR_DIVIDE => reference_floor_divide(a: &Tensor, b: &Tensor) -> Tensor,
    }
}

#[cfg(test)]
mod tests {
    use super::python_floordiv;

    #[test]
    fn floordiv_rounds_toward_negative_infinity() {
        let cases = [(7, 2, 3), (-7, 2, -4), (7, -2, -4), (-7, -2, 3), (6, 3, 2), (-6, 3, -2), (0, 5, 0)];
        for (a, b, want) in cases {
            assert_eq!(python_floordiv("t", a, b).ok(), Some(want), "{a} // {b}");
        }
        assert!(python_floordiv("t", 1, 0).is_err());
        assert!(python_floordiv("t", i64::MIN, -1).is_err());
    }
}

/// The checked integer arithmetic of TorchScript's shape code.
macro_rules! int_arithmetic {
    ($($op:expr => $f:ident($checked:ident) as $name:literal;)*) => {$(
        fn $f(a: i64, b: i64) -> Result<i64> {
            a.$checked(b).ok_or_else(|| Error::invalid($op, format!("{a} and {b} overflow int64")))
        }
        register_kernel! {
            op: $op, dtypes: [Float32], name: $name,
            priority: Priority::REFERENCE, fn $f(a: i64, b: i64) -> i64
        }
    )*};
}

int_arithmetic! {
    op::ADD_INT => add_int(checked_add) as "reference_add_int";
    op::SUB_INT => sub_int(checked_sub) as "reference_sub_int";
    op::MUL_INT => mul_int(checked_mul) as "reference_mul_int";
}

fn reference_not(b: bool) -> Result<bool> {
    Ok(!b)
}

fn reference_is_quantized(a: &Tensor) -> Result<bool> {
    Ok(a.dtype().is_quantized())
}

register_kernel! {
    op: op::__NOT__, dtypes: [Float32], name: "reference_not", priority: Priority::REFERENCE,
    fn reference_not(b: bool) -> bool
}

register_kernel! {
    op: op::prim::IS_QUANTIZED, dtypes: [Float32, Float64, Int64, Int32, Int16, Int8, UInt8, QUInt8, QInt8, QInt16, QInt32],
    name: "reference_is_quantized", priority: Priority::REFERENCE,
    fn reference_is_quantized(a: &Tensor) -> bool
}
