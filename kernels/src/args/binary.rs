//! The requantizing binary ops (quantized::add, add_relu, mul) as one
//! argument, with PyTorch's arithmetic for each.

use super::quantized::PerTensor;
use qtensor_runtime::numerics::BinaryRequant;
use qtensor_runtime::DType;

/// Which requantizing binary op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// quantized::add.
    Add,
    /// quantized::add_relu.
    AddRelu,
    /// quantized::mul.
    Mul,
}

impl BinaryOp {
    /// The op's schema name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "quantized::add",
            BinaryOp::AddRelu => "quantized::add_relu",
            BinaryOp::Mul => "quantized::mul",
        }
    }

    /// PyTorch's arithmetic for this op between per-tensor operands `a`
    /// and `b` into `(scale, zero_point)`.
    pub fn requant(self, a: &PerTensor, b: &PerTensor, scale: f64, zero_point: i64) -> BinaryRequant {
        let lo = if self == BinaryOp::AddRelu { zero_point.max(a.qmin) } else { a.qmin };
        let (qa, qb, out) = ((a.scale, a.zero_point), (b.scale, b.zero_point), (scale, zero_point));
        let requant = match self {
            BinaryOp::Mul => BinaryRequant::mul(qa, qb, out, lo, a.qmax),
            _ => BinaryRequant::add(qa, qb, out, lo, a.qmax),
        };
        if a.dtype == DType::QInt32 {
            requant.int32()
        } else {
            requant
        }
    }
}
