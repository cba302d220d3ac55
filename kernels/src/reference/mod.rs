//! Scalar reference kernels, one file per op family.

pub mod activation;
pub mod cat;
pub mod composite;
pub mod conv;
pub mod create;
pub mod elementwise;
pub mod float;
pub mod inspect;
pub mod int16_pairs;
pub mod linear;
pub mod matmul;
pub mod norm;
pub mod packed;
pub mod pool;
pub mod quantize;
pub mod reduce;
pub mod resample;
pub mod rnn;
pub mod script;
pub mod transformer;
pub mod views;

/// Small calls of the reference kernels, directly (no dispatcher, no
/// SIMD): they run under Miri (`.ci/miri`), which checks the safe code the
/// reference kernels build on for undefined behaviour.
#[cfg(test)]
mod tests {
    use qtensor_runtime::{DType, Quantizer, Result, Tensor};

    fn q8(sizes: &[usize], zp: i64) -> Result<Tensor> {
        let n = qtensor_runtime::tensor::layout::numel_of(sizes);
        let ints = Tensor::from_vec((0..n).map(|i| (i * 37 % 256) as u8).collect::<Vec<u8>>(), sizes)?;
        Tensor::from_int_repr(&ints, &Quantizer::per_tensor(0.05, zp, DType::QUInt8)?)
    }

    #[test]
    fn reference_kernels_on_small_inputs() -> Result<()> {
        let x = q8(&[1, 2, 5, 4], 10)?;
        let y = q8(&[1, 2, 5, 4], 20)?;
        assert_eq!(super::elementwise::reference_quantized_relu(&x)?.sizes(), &[1, 2, 5, 4]);
        let s = super::elementwise::requantized_binary(crate::args::binary::BinaryOp::Add, &x, &y, 0.1, 5)?;
        assert_eq!(s.numel(), 40);
        let cat = super::cat::reference_cat(&[x.clone(), y.clone()], 1, Some(0.1), Some(3))?;
        assert_eq!(cat.sizes(), &[1, 4, 5, 4]);
        let m = super::pool::reference_max_pool2d(&x, &[3, 3], &[2, 2], &[1, 1], &[1, 1], true)?;
        assert_eq!(m.sizes(), &[1, 2, 3, 3]);
        let a = super::pool::reference_adaptive_avg_pool2d(&x, &[2, 3])?;
        assert_eq!(a.sizes(), &[1, 2, 2, 3]);
        let wf = Tensor::from_vec(
            (0..3 * 2 * 9).map(|i| (i % 5) as f32 * 0.01 - 0.02).collect::<Vec<f32>>(),
            &[3, 2, 3, 3],
        )?;
        let w = super::quantize::quantize_with("t", &wf, &Quantizer::per_tensor(0.01, 0, DType::QInt8)?)?;
        let c = super::conv::reference_conv(false, &x, &w, None, &[1, 1], &[1, 1], &[1, 1], 1, 0.2, 7)?;
        assert_eq!(c.sizes(), &[1, 3, 5, 4]);
        let xl = x.reshape([2, 20])?;
        let wl = super::quantize::quantize_with(
            "t",
            &Tensor::from_vec((0..3 * 20).map(|i| (i % 7) as f32 * 0.01 - 0.03).collect::<Vec<f32>>(), &[3, 20])?,
            &Quantizer::per_tensor(0.01, 0, DType::QInt8)?,
        )?;
        assert_eq!(super::linear::reference_linear(false, &xl, &wl, None, 0.3, 4)?.sizes(), &[2, 3]);
        Ok(())
    }
}
