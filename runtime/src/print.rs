//! `Display` for tensors, reproducing PyTorch's `repr` (with the `torch.`
//! prefixes removed): precision 4, integer and scientific modes, 80-column
//! wrapping, summarization past 1000 elements, and the quantization trailer.
//!
//! The logic follows `torch/_tensor_str.py` step by step, so that the output
//! matches to the character.

use crate::dtype::DType;
use crate::pyfmt::{py_fixed, py_float_repr, py_sci};
use crate::quantizer::QParams;
use crate::storage::Element;
use crate::tensor::Tensor;
use std::fmt;

const PRECISION: usize = 4;
const THRESHOLD: usize = 1000;
const EDGEITEMS: usize = 3;
const LINEWIDTH: usize = 80;

/// Some of a tensor's logical values.
enum Values {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

/// Reads the elements at the given row-major logical indices (dequantized
/// for quantized tensors, as f64 for floats, as i64 for integers), and
/// nothing else: printing a huge tensor reads only what it prints.
fn read_elements(t: &Tensor, indices: &[usize]) -> crate::Result<Values> {
    let sizes = t.sizes();
    let strides = t.strides();
    let axis = t.quantizer().and_then(|q| q.axis());
    // Storage offset and channel of a logical index.
    let locate = |mut i: usize| {
        let (mut offset, mut channel) = (t.storage_offset(), 0);
        for d in (0..sizes.len()).rev() {
            let idx = i % sizes[d].max(1);
            i /= sizes[d].max(1);
            offset += idx * strides[d];
            if Some(d) == axis {
                channel = idx;
            }
        }
        (offset, channel)
    };
    let quantizer = t.quantizer();
    let as_float = t.dtype().is_float() || quantizer.is_some();
    crate::with_element_type!(t.dtype().storage_type(), T => {
        let src = t.storage().read::<T>()?;
        let at = |i: usize| {
            let (o, c) = locate(i);
            (src.get(o).copied(), c)
        };
        let missing = || crate::Error::shape("print", format!("{} lies outside its storage", t.describe()));
        if as_float {
            let mut out = Vec::with_capacity(indices.len());
            for &i in indices {
                let (v, c) = at(i);
                let v = v.ok_or_else(missing)?;
                out.push(match &quantizer {
                    Some(q) => q.dequantize_one(v.to_i64(), c) as f64,
                    None => v.to_f64(),
                });
            }
            Ok(Values::Float(out))
        } else {
            let mut out = Vec::with_capacity(indices.len());
            for &i in indices {
                out.push(at(i).0.ok_or_else(missing)?.to_i64());
            }
            Ok(Values::Int(out))
        }
    })
}

/// PyTorch's `_Formatter`: decides the mode and the column width from the
/// (summarized) values.
struct Formatter {
    int_mode: bool,
    sci_mode: bool,
    max_width: usize,
}

impl Formatter {
    fn new(values: &Values) -> Formatter {
        let mut f = Formatter { int_mode: true, sci_mode: false, max_width: 1 };
        match values {
            Values::Int(v) => {
                for x in v {
                    f.max_width = f.max_width.max(x.to_string().len());
                }
            }
            Values::Float(v) => {
                let nz: Vec<f64> = v.iter().copied().filter(|x| x.is_finite() && *x != 0.0).collect();
                if nz.is_empty() {
                    return f;
                }
                let min = nz.iter().fold(f64::INFINITY, |m, x| m.min(x.abs()));
                let max = nz.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                f.int_mode = nz.iter().all(|x| *x == x.ceil());
                let wide = max / min > 1000.0 || max > 1.0e8;
                if f.int_mode {
                    if wide {
                        f.sci_mode = true;
                        f.max_width = nz.iter().map(|x| py_sci(*x, PRECISION).len()).fold(f.max_width, usize::max);
                    } else {
                        f.max_width = nz.iter().map(|x| py_fixed(*x, 0).len() + 1).fold(f.max_width, usize::max);
                    }
                } else if wide || min < 1.0e-4 {
                    f.sci_mode = true;
                    f.max_width = nz.iter().map(|x| py_sci(*x, PRECISION).len()).fold(f.max_width, usize::max);
                } else {
                    f.max_width = nz.iter().map(|x| py_fixed(*x, PRECISION).len()).fold(f.max_width, usize::max);
                }
            }
        }
        f
    }

    fn format_float(&self, x: f64) -> String {
        let s = if self.sci_mode {
            py_sci(x, PRECISION)
        } else if self.int_mode {
            let mut s = py_fixed(x, 0);
            if x.is_finite() {
                s.push('.');
            }
            s
        } else {
            py_fixed(x, PRECISION)
        };
        format!("{s:>w$}", w = self.max_width)
    }

    fn format_int(&self, x: i64) -> String {
        format!("{x:>w$}", w = self.max_width)
    }
}

/// The printed values of a tensor with its shape: `values[k]` is the
/// element at row-major index `indices[k]` (all of them, or the summary's).
struct Printable {
    values: Values,
    indices: Vec<usize>,
    shape: Vec<usize>,
}

impl Printable {
    fn numel(&self) -> usize {
        crate::tensor::layout::numel_of(&self.shape)
    }

    fn format_at(&self, fmt: &Formatter, i: usize) -> String {
        // `indices` is sorted: every printed element was read.
        let k = self.indices.binary_search(&i).unwrap_or(0);
        match &self.values {
            Values::Float(v) => v.get(k).map_or_else(String::new, |&x| fmt.format_float(x)),
            Values::Int(v) => v.get(k).map_or_else(String::new, |&x| fmt.format_int(x)),
        }
    }

    /// The indices kept along a dimension of `size` (all, or the edges).
    fn kept(size: usize, summarize: bool) -> Vec<usize> {
        if summarize && size > 2 * EDGEITEMS {
            (0..EDGEITEMS).chain(size - EDGEITEMS..size).collect()
        } else {
            (0..size).collect()
        }
    }

    /// `get_summarized_data`'s elements: the row-major indices printed
    /// (every element, or the edges of each dimension), in increasing order.
    fn printed_indices(shape: &[usize]) -> Vec<usize> {
        let summarize = crate::tensor::layout::numel_of(shape) > THRESHOLD;
        let strides = crate::tensor::layout::contiguous_strides(shape);
        let mut offsets = vec![0usize];
        for (d, &size) in shape.iter().enumerate() {
            let kept = Self::kept(size, summarize);
            let stride = strides[d];
            offsets = offsets.iter().flat_map(|&o| kept.iter().map(move |&k| o + k * stride)).collect();
        }
        offsets
    }

    /// The printed elements of `t`, read.
    fn of(t: &Tensor) -> crate::Result<Printable> {
        let shape = t.sizes().to_vec();
        let indices = if t.numel() == 0 { Vec::new() } else { Printable::printed_indices(&shape) };
        Ok(Printable { values: read_elements(t, &indices)?, indices, shape })
    }

    /// `_tensor_str`.
    fn tensor_str(&self, indent: usize) -> String {
        if self.numel() == 0 {
            return "[]".into();
        }
        let summarize = self.numel() > THRESHOLD;
        let fmt = Formatter::new(&self.values);
        let strides = crate::tensor::layout::contiguous_strides(&self.shape);
        self.str_with_formatter(0, 0, &strides, indent, summarize, &fmt)
    }

    /// `_tensor_str_with_formatter` over the sub-tensor at `base` from dimension `dim`.
    fn str_with_formatter(
        &self,
        dim: usize,
        base: usize,
        strides: &[usize],
        indent: usize,
        summarize: bool,
        fmt: &Formatter,
    ) -> String {
        let ndim = self.shape.len() - dim;
        if ndim == 0 {
            return self.format_at(fmt, base);
        }
        let size = self.shape[dim];
        let elided = summarize && size > 2 * EDGEITEMS;
        if ndim == 1 {
            let element_length = fmt.max_width + 2;
            let per_line = (LINEWIDTH.saturating_sub(indent) / element_length).max(1);
            let mut data: Vec<String> = Vec::new();
            for (n, i) in Self::kept(size, summarize).into_iter().enumerate() {
                if elided && n == EDGEITEMS {
                    data.push(" ...".into());
                }
                data.push(self.format_at(fmt, base + i * strides[dim]));
            }
            let lines: Vec<String> = data.chunks(per_line).map(|c| c.join(", ")).collect();
            return format!("[{}]", lines.join(&format!(",\n{}", " ".repeat(indent + 1))));
        }
        let mut slices: Vec<String> = Vec::new();
        for (n, i) in Self::kept(size, summarize).into_iter().enumerate() {
            if elided && n == EDGEITEMS {
                slices.push("...".into());
            }
            slices.push(self.str_with_formatter(dim + 1, base + i * strides[dim], strides, indent + 1, summarize, fmt));
        }
        let sep = format!(",{}{}", "\n".repeat(ndim - 1), " ".repeat(indent + 1));
        format!("[{}]", slices.join(&sep))
    }
}

/// `_add_suffixes`.
fn add_suffixes(tensor_str: String, suffixes: &[String], indent: usize) -> String {
    let mut out = tensor_str;
    let mut last_line_len = match out.rfind('\n') {
        Some(p) => out.len() - p + 1,
        None => out.len() + 2,
    };
    for suffix in suffixes {
        if last_line_len + suffix.len() + 2 > LINEWIDTH {
            out.push_str(&format!(",\n{}{suffix}", " ".repeat(indent)));
            last_line_len = indent + suffix.len();
        } else {
            out.push_str(", ");
            out.push_str(suffix);
            last_line_len += suffix.len() + 2;
        }
    }
    out.push(')');
    out
}

fn py_tuple(sizes: &[usize]) -> String {
    match sizes {
        [] => "()".into(),
        [one] => format!("({one},)"),
        _ => format!("({})", sizes.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// PyTorch's `repr` of a tensor, without the `torch.` prefixes.
pub fn tensor_repr(t: &Tensor) -> crate::Result<String> {
    // PyTorch wraps the suffixes while `dtype=torch.quint8` and friends still
    // carry their prefix; lay out the same way, then drop the prefixes.
    Ok(torch_repr(t)?.replace("torch.", ""))
}

/// PyTorch's `repr`, `torch.` prefixes included.
fn torch_repr(t: &Tensor) -> crate::Result<String> {
    let prefix = "tensor(";
    let indent = prefix.len();
    let mut suffixes: Vec<String> = Vec::new();
    let dtype = t.dtype();
    let body = Printable::of(t)?;
    if let Some(q) = t.quantizer() {
        suffixes.push(format!("size={}", py_tuple(t.sizes())));
        suffixes.push(format!("dtype=torch.{dtype}"));
        suffixes.push(format!("quantization_scheme=torch.{}", q.qscheme()));
        match q.params() {
            QParams::PerTensorAffine { scale, zero_point, .. } => {
                suffixes.push(format!("scale={}", py_float_repr(scale)));
                suffixes.push(format!("zero_point={zero_point}"));
            }
            QParams::PerChannelAffine { scales, zero_points, axis, .. } => {
                suffixes.push(format!("scale={}", torch_repr(&Tensor::from_slice(scales, &[scales.len()])?)?));
                suffixes.push(format!(
                    "zero_point={}",
                    torch_repr(&Tensor::from_slice(zero_points, &[zero_points.len()])?)?
                ));
                suffixes.push(format!("axis={axis}"));
            }
        }
    } else {
        let default_dtype = matches!(dtype, DType::Float32 | DType::Int64);
        if t.numel() == 0 && t.ndim() != 1 {
            suffixes.push(format!("size={}", py_tuple(t.sizes())));
        }
        if !default_dtype || (t.numel() == 0 && dtype != DType::Float32) {
            suffixes.push(format!("dtype=torch.{dtype}"));
        }
    }
    let tensor_str = body.tensor_str(indent);
    Ok(add_suffixes(format!("{prefix}{tensor_str}"), &suffixes, indent))
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match tensor_repr(self) {
            Ok(s) => f.write_str(&s),
            Err(e) => write!(f, "<tensor that cannot be printed: {e}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tensors_print_like_pytorch() -> Result<(), Box<dyn std::error::Error>> {
        let t = Tensor::from_slice(&[1.0f32, 2.5, -3.0], &[3])?;
        assert_eq!(t.to_string(), "tensor([ 1.0000,  2.5000, -3.0000])");
        let t = Tensor::from_slice(&[1.0f32, 2.0], &[2])?;
        assert_eq!(t.to_string(), "tensor([1., 2.])");
        let t = Tensor::from_slice(&[1i64, 20], &[2])?;
        assert_eq!(t.to_string(), "tensor([ 1, 20])");
        let t = Tensor::from_slice(&[0.5f64], &[1])?;
        assert_eq!(t.to_string(), "tensor([0.5000], dtype=float64)");
        let t = Tensor::from_slice::<f32>(&[], &[0])?;
        assert_eq!(t.to_string(), "tensor([])");
        Ok(())
    }
}
