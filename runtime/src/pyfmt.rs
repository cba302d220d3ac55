//! Python's float formatting (`repr(float)`, `"{:.4e}"`, `"{:.4f}"`), for
//! reprs that must match PyTorch's to the character: tensors, quantizers
//! and modules all print their scales this way.

/// Python's `repr(float)`: the shortest round-trip digits, in fixed notation
/// for decimal exponents in [-4, 16), scientific (`1e-05`) otherwise.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sci = format!("{x:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let e = exp as usize;
            let int_part: String = if digits.len() > e + 1 {
                digits[..e + 1].to_string()
            } else {
                format!("{digits:0<width$}", width = e + 1)
            };
            let frac = if digits.len() > e + 1 { &digits[e + 1..] } else { "0" };
            format!("{sign}{int_part}.{frac}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        }
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// Python's `"{:.Ne}".format(x)`, N = `precision`.
pub(crate) fn py_sci(x: f64, precision: usize) -> String {
    if !x.is_finite() {
        return py_nonfinite(x);
    }
    let s = format!("{x:.precision$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Python's `"{:.Nf}".format(x)`, N = `precision`.
pub(crate) fn py_fixed(x: f64, precision: usize) -> String {
    if !x.is_finite() {
        return py_nonfinite(x);
    }
    format!("{x:.precision$}")
}

/// Python's spelling of a NaN or an infinity.
fn py_nonfinite(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float_repr(1.0), "1.0");
        assert_eq!(py_float_repr(1e-5), "1e-05");
        assert_eq!(py_float_repr(0.0001), "0.0001");
        assert_eq!(py_float_repr(1000.0), "1000.0");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1.5e16), "1.5e+16");
        assert_eq!(py_float_repr(123456789012345.6), "123456789012345.6");
        assert_eq!(py_float_repr(0.006692237383115402), "0.006692237383115402");
        assert_eq!(py_float_repr(-2.5), "-2.5");
    }

    #[test]
    fn fixed_and_scientific_as_python_formats_them() {
        assert_eq!(py_sci(12345.678, 4), "1.2346e+04");
        assert_eq!(py_sci(1e-7, 4), "1.0000e-07");
        assert_eq!(py_fixed(2.5, 0), "2");
        assert_eq!(py_fixed(f64::NAN, 4), "nan");
        assert_eq!(py_sci(f64::NEG_INFINITY, 4), "-inf");
    }
}
