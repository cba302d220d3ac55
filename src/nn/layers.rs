//! The quantized layers of MobileNetV3, ShuffleNetV2 and Inception-v3
//! beyond conv and linear: activations, pools, batch norm, resizing and
//! channel shuffling, each calling its operator (re-exported from
//! [`super::quantized`]).

use super::state::{qparams_state, read_qparams, state_tensor};
use super::Module;
use crate::{ops, DType, Error, Result, Tensor};
use std::collections::HashMap;

/// `torch.ao.nn.quantized.Hardswish`: output qparams of its own, saved as
/// `scale` and `zero_point`.
#[derive(Debug, Clone, Copy)]
pub struct Hardswish {
    scale: f64,
    zero_point: i64,
}

impl Hardswish {
    /// A hardswish into `(scale, zero_point)`, checked now.
    pub fn new(scale: f64, zero_point: i64) -> Result<Hardswish> {
        crate::quantizer_checks::check_qparams("Hardswish", DType::QUInt8, scale, zero_point)?;
        Ok(Hardswish { scale, zero_point })
    }
}

impl Module for Hardswish {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::quantized::hardswish(x, self.scale, self.zero_point)
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        qparams_state(prefix, self.scale, self.zero_point)
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        let (scale, zero_point) = read_qparams(state, prefix)?;
        *self = Hardswish::new(scale, zero_point)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("QuantizedHardswish(scale={}, zero_point={})", crate::pyfmt::py_float_repr(self.scale), self.zero_point)
    }
}

/// Declares a stateless layer that calls one unary operator.
macro_rules! unary_layer {
    ($(#[$doc:meta])* $name:ident => $op:path, $text:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Module for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                $op(x)
            }

            fn describe(&self) -> String {
                $text.into()
            }
        }
    };
}

unary_layer!(
    /// `Hardsigmoid` on quantized tensors: PyTorch's fixed output qparams.
    Hardsigmoid => ops::hardsigmoid, "Hardsigmoid()"
);
unary_layer!(
    /// `Sigmoid` on quantized tensors: PyTorch's fixed output qparams.
    Sigmoid => ops::sigmoid, "Sigmoid()"
);
unary_layer!(
    /// `ReLU6` on quantized tensors (same qparams out).
    ReLU6 => ops::relu6, "ReLU6()"
);

/// `AvgPool2d` (and `F.avg_pool2d`), with PyTorch's defaults through
/// [`AvgPool2d::new`]: stride = kernel, no padding, `count_include_pad`.
#[derive(Debug, Clone, Copy)]
pub struct AvgPool2d {
    /// Window size.
    pub kernel_size: [i64; 2],
    /// Step between windows.
    pub stride: [i64; 2],
    /// Implicit zero padding.
    pub padding: [i64; 2],
    /// Round the output size up.
    pub ceil_mode: bool,
    /// Count padding in the divisor.
    pub count_include_pad: bool,
    /// A fixed divisor instead of the window size.
    pub divisor_override: Option<i64>,
}

impl AvgPool2d {
    /// A `kernel x kernel` pool with the given stride and padding.
    pub fn new(kernel: i64, stride: i64, padding: i64) -> AvgPool2d {
        AvgPool2d {
            kernel_size: [kernel; 2],
            stride: [stride; 2],
            padding: [padding; 2],
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::avg_pool2d(
            x,
            &self.kernel_size,
            &self.stride,
            &self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )
    }

    fn describe(&self) -> String {
        format!(
            "AvgPool2d(kernel_size={:?}, stride={:?}, padding={:?}, ceil_mode={}, count_include_pad={})",
            self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad
        )
    }
}

/// `x.mean(dims, keepdim)`, as ShuffleNetV2 pools globally.
#[derive(Debug, Clone)]
pub struct Mean {
    /// The dimensions averaged over.
    pub dims: Vec<i64>,
    /// Keep them as size 1.
    pub keepdim: bool,
}

impl Module for Mean {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::mean(x, &self.dims, self.keepdim)
    }

    fn describe(&self) -> String {
        format!("Mean(dim={:?}, keepdim={})", self.dims, self.keepdim)
    }
}

/// `channel_shuffle(x, groups)`.
#[derive(Debug, Clone, Copy)]
pub struct ChannelShuffle {
    /// The number of channel groups interleaved.
    pub groups: i64,
}

impl Module for ChannelShuffle {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::channel_shuffle(x, self.groups)
    }

    fn describe(&self) -> String {
        format!("ChannelShuffle(groups={})", self.groups)
    }
}

/// `Upsample(size=..., mode="nearest")`.
#[derive(Debug, Clone, Copy)]
pub struct Upsample {
    /// Output height and width.
    pub size: [i64; 2],
}

impl Module for Upsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::upsample_nearest2d(x, &self.size, None, None)
    }

    fn describe(&self) -> String {
        format!("Upsample(size={:?}, mode='nearest')", self.size)
    }
}

/// `torch.ao.nn.quantized.BatchNorm2d`: float32 `weight`, `bias`,
/// `running_mean`, `running_var` of one size, `eps`, and output qparams.
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    eps: f64,
    scale: f64,
    zero_point: i64,
}

impl BatchNorm2d {
    /// From its four float32 `[C]` tensors, `eps` and output qparams.
    pub fn new(params: [&Tensor; 4], eps: f64, scale: f64, zero_point: i64) -> Result<BatchNorm2d> {
        crate::quantizer_checks::check_qparams("BatchNorm2d", DType::QUInt8, scale, zero_point)?;
        let c = params[0].numel();
        for (t, what) in params.iter().zip(["weight", "bias", "running_mean", "running_var"]) {
            if t.dtype() != DType::Float32 || t.sizes() != [c] {
                return Err(Error::shape(
                    "BatchNorm2d",
                    format!("`{what}` must be float32 [{c}], got {}", t.describe()),
                ));
            }
        }
        if !eps.is_finite() || eps < 0.0 {
            return Err(Error::invalid("BatchNorm2d", format!("eps must be finite and >= 0, got {eps}")));
        }
        let [weight, bias, running_mean, running_var] = params.map(Tensor::clone);
        Ok(BatchNorm2d { weight, bias, running_mean, running_var, eps, scale, zero_point })
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::quantized::batch_norm2d(
            x,
            Some(&self.weight),
            Some(&self.bias),
            &self.running_mean,
            &self.running_var,
            self.eps,
            self.scale,
            self.zero_point,
        )
    }

    fn state_dict(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        Ok(vec![
            (format!("{prefix}weight"), self.weight.clone()),
            (format!("{prefix}bias"), self.bias.clone()),
            (format!("{prefix}running_mean"), self.running_mean.clone()),
            (format!("{prefix}running_var"), self.running_var.clone()),
        ]
        .into_iter()
        .chain(qparams_state(prefix, self.scale, self.zero_point)?)
        .collect())
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
        let names = ["weight", "bias", "running_mean", "running_var"];
        let [w, b, m, v] = names.map(|n| state_tensor(state, prefix, n));
        let (w, b, m, v) = (w?, b?, m?, v?);
        if w.sizes() != self.weight.sizes() {
            return Err(Error::Serialization(format!(
                "`{prefix}weight` is {} in the file but the module has {}",
                w.describe(),
                self.weight.describe()
            )));
        }
        let (scale, zero_point) = read_qparams(state, prefix)?;
        *self = BatchNorm2d::new([&w, &b, &m, &v], self.eps, scale, zero_point)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "QuantizedBatchNorm2d({}, eps={}, scale={}, zero_point={})",
            self.weight.numel(),
            self.eps,
            crate::pyfmt::py_float_repr(self.scale),
            self.zero_point
        )
    }
}
