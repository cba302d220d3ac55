//! `ndarray` round trips (the `ndarray` feature; `.ci/run` runs this file
//! with `--features ndarray`).
#![cfg(feature = "ndarray")]

use qtensor::ndarray::{array, s, Array, ArrayD, ArrayViewD, IxDyn};
use qtensor::{ops, DType, MemoryFormat, Quantizer, Tensor};

#[test]
fn float_and_integer_arrays_round_trip() {
    let a = Array::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 12 + j * 4 + k) as f32 * 0.5 - 3.0).into_dyn();
    let t = Tensor::try_from(&a).unwrap();
    assert_eq!((t.sizes(), t.dtype()), (&[2usize, 3, 4][..], DType::Float32));
    assert_eq!(ArrayD::<f32>::try_from(&t).unwrap(), a);

    let b = array![[1i64, -2], [3, i64::MAX]].into_dyn();
    assert_eq!(ArrayD::<i64>::try_from(&Tensor::try_from(b.clone()).unwrap()).unwrap(), b);
    let c = array![0.25f64, -1e300].into_dyn();
    assert_eq!(ArrayD::<f64>::try_from(&Tensor::try_from(c.clone()).unwrap()).unwrap(), c);
    let d = array![[7u8, 255], [0, 9]];
    assert_eq!(ArrayD::<u8>::try_from(&Tensor::try_from(d.view()).unwrap()).unwrap(), d.into_dyn());
}

#[test]
fn strided_arrays_and_tensors_convert_by_logical_order() {
    // A transposed, sliced ndarray view becomes a row-major tensor of its
    // logical values.
    let a = Array::from_shape_fn((4, 6), |(i, j)| (i * 6 + j) as i32);
    let view = a.t();
    let view = view.slice(s![1..5;2, ..]);
    let t = Tensor::try_from(view).unwrap();
    assert_eq!(t.sizes(), &[2, 4]);
    assert_eq!(ArrayD::<i32>::try_from(&t).unwrap(), view.to_owned().into_dyn());
    // A strided tensor (a transpose) becomes an array of its logical values.
    let tt = ops::transpose(&t, 0, 1).unwrap();
    assert_eq!(ArrayD::<i32>::try_from(&tt).unwrap(), view.t().to_owned().into_dyn());
}

#[test]
fn a_quantized_tensor_lends_its_integers_without_a_copy() {
    let ints = Tensor::try_from(Array::from_shape_fn((1, 3, 2, 2), |(_, c, h, w)| (c * 4 + h * 2 + w) as u8)).unwrap();
    let q = Tensor::from_int_repr(&ints, &Quantizer::per_tensor(0.1, 2, DType::QUInt8).unwrap()).unwrap();
    // Channels-last: the view carries the strides, indexing stays logical.
    let cl = q.contiguous_in(MemoryFormat::ChannelsLast).unwrap();
    let (same, strides) = cl
        .with_int_view(|v: ArrayViewD<'_, u8>| {
            (v.to_owned() == ArrayD::<u8>::try_from(&ints).unwrap(), v.strides().to_vec())
        })
        .unwrap();
    assert!(same);
    assert_eq!(strides, [12, 1, 6, 3]);
    // The view reads the tensor's own storage: its first element's address
    // is the storage's.
    let first = cl.with_int_view(|v: ArrayViewD<'_, u8>| v.as_ptr() as usize).unwrap();
    let storage_first = cl.storage().read::<u8>().unwrap().as_ptr() as usize;
    assert_eq!(first, storage_first);
    // A view of a view: the storage offset is honoured.
    let sel = ops::select(&q, 1, 2).unwrap();
    assert_eq!(
        sel.with_int_view(|v: ArrayViewD<'_, u8>| v.to_owned()).unwrap(),
        array![[[8u8, 9], [10, 11]]].into_dyn()
    );
    // Errors, not panics, for the wrong element type or a float tensor.
    let err = q.with_int_view(|_: ArrayViewD<'_, i8>| ()).unwrap_err().to_string();
    assert!(err.contains("U8"), "{err}");
    assert!(ops::dequantize(&q).unwrap().with_int_view(|_: ArrayViewD<'_, u8>| ()).is_err());
    let err = ArrayD::<u8>::try_from(&q).unwrap_err().to_string();
    assert!(err.contains("int_repr") && err.contains("dequantize"), "{err}");
    // A float tensor does not convert to an integer array.
    assert!(ArrayD::<i32>::try_from(&Tensor::try_from(ArrayD::<f32>::zeros(IxDyn(&[2]))).unwrap()).is_err());
}
