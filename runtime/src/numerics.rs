//! The scalar numerics that every kernel must reproduce bit for bit.
//!
//! See `docs/golden-case-format.md`: `q = clamp(zero_point + round_half_even(x * inv), qmin, qmax)`
//! with `inv = 1.0f32 / (scale as f32)` and an f32 product.

/// `2^31` as f32: a rounded scaled value at or beyond it saturates.
const SATURATION: f32 = 2_147_483_648.0;

/// Rounds half to even, exactly as `f32::round_ties_even`. For |v| below
/// 2^22 (every 8- and 16-bit result) it adds and subtracts 1.5 * 2^23,
/// which leaves no fraction bits in the default rounding mode: targets
/// without a rounding instruction (x86-64 before SSE4.1) then need no
/// libm call in the per-element loops.
#[inline(always)]
pub fn round_half_even(v: f32) -> f32 {
    if v.abs() < 4_194_304.0 {
        round_half_even_small(v)
    } else {
        v.round_ties_even()
    }
}

/// [`round_half_even`] for a `v` already known to lie within ±2^22 (one
/// clamped to an 8- or 16-bit range, say): no branch, so loops over it
/// vectorize. Outside that range the result is wrong.
#[inline(always)]
pub fn round_half_even_small(v: f32) -> f32 {
    (v + ROUNDING_MAGIC) - ROUNDING_MAGIC
}

/// `round_half_even(v) as u8` for a `v` already clamped to `[0, 255]`,
/// with no float-to-integer conversion (which x86 only has per element for
/// saturating casts): adding 1.5 * 2^23 leaves the rounded value in the
/// low mantissa bits, so a loop over it vectorizes into adds and byte
/// packs. A NaN gives 0, as `as u8` does, when it has no payload in the
/// low byte (the default NaN of an invalid operation has none).
#[inline(always)]
pub fn round_to_byte(v: f32) -> u8 {
    (v + ROUNDING_MAGIC).to_bits() as u8
}

/// 1.5 * 2^23: added to an f32 of magnitude below 2^22, it rounds away
/// every fraction bit (half to even, in the default rounding mode).
const ROUNDING_MAGIC: f32 = 12_582_912.0;

/// The f32 reciprocal that quantization multiplies by.
#[inline]
pub fn inv_scale(scale: f64) -> f32 {
    1.0f32 / (scale as f32)
}

/// Quantizes one value.
///
/// - Ties round to even.
/// - A rounded value of magnitude at or above 2^31, and ±inf, saturate to
///   `qmax`/`qmin` whatever the zero point.
/// - **NaN quantizes to `zero_point`** (it dequantizes to 0.0). Every kernel
///   of every quantizing op gives this result.
#[inline]
pub fn quantize_val(x: f32, inv_scale: f32, zero_point: i64, qmin: i64, qmax: i64) -> i64 {
    let r = round_half_even(x * inv_scale);
    if r.is_nan() {
        zero_point
    } else if r >= SATURATION {
        qmax
    } else if r <= -SATURATION {
        qmin
    } else {
        (zero_point + r as i64).clamp(qmin, qmax)
    }
}

/// Quantizes one value as fbgemm's `Quantize` does, which PyTorch's qint32
/// elementwise ops call: like [`quantize_val`], except that the zero point
/// is added to the rounded value in f32 (`zero_point + nearbyint(x * inv)`),
/// which rounds once the sum passes 2^24. NaN gives the zero point.
#[inline]
pub fn quantize_val_f32_sum(x: f32, inv_scale: f32, zero_point: i64, qmin: i64, qmax: i64) -> i64 {
    let r = round_half_even(x * inv_scale);
    if r.is_nan() {
        return zero_point.clamp(qmin, qmax);
    }
    ((zero_point as f32 + r) as f64).clamp(qmin as f64, qmax as f64) as i64
}

/// Dequantizes one value: `(q - zero_point) as f32 * scale as f32`.
#[inline]
pub fn dequantize_val(q: i64, scale: f32, zero_point: i64) -> f32 {
    (q - zero_point) as f32 * scale
}

/// Requantizes an exact real value to an output grid:
/// `clamp(round_half_even(real / scale) + zero_point, qmin, qmax)`, in f64
/// so that even qint32 results stay within one step of the exact value.
/// NaN maps to `zero_point`, ±inf saturate.
#[inline]
pub fn requantize_f64(real: f64, scale: f64, zero_point: i64, qmin: i64, qmax: i64) -> i64 {
    let r = (real / scale).round_ties_even();
    if r.is_nan() {
        return zero_point;
    }
    (r + zero_point as f64).clamp(qmin as f64, qmax as f64) as i64
}

/// PyTorch's requantization of an exact conv or linear accumulator (fbgemm's
/// `ReQuantizeOutput` with a float bias), in f32 as fbgemm computes it,
/// for a weight quantized per channel:
///
/// - `aws = f32(x_scale) * f32(w_scale)`, rounded to f32;
/// - `mult = aws / f32(y_scale)` and `bias_term = bias / aws`, each rounded;
/// - `q = round_half_even((f32(acc) + bias_term) * mult) + zero_point`,
///   clamped to `[lo, hi]` (lo is the zero point for a fused relu).
///
/// A weight quantized per tensor takes [`FusedBiasRequant`] instead. Every
/// conv and linear kernel, reference and vectorized, computes these
/// sequences, so they agree bit for bit with each other and with PyTorch's
/// fbgemm engine (the `engine` module says where fbgemm also saturates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccRequant {
    /// `aws / f32(y_scale)`.
    pub mult: f32,
    /// `bias / aws`.
    pub bias_term: f32,
}

impl AccRequant {
    /// The constants of one output channel.
    pub fn new(x_scale: f64, w_scale: f64, bias: f32, y_scale: f64) -> AccRequant {
        let aws = x_scale as f32 * w_scale as f32;
        AccRequant { mult: aws / y_scale as f32, bias_term: bias / aws }
    }

    /// The constants of one output channel of a weight quantized per
    /// tensor where fbgemm's depthwise kernel runs without AVX-512 VNNI:
    /// the bias term is `f32(bias · rcp)` with `rcp = f32(1 / aws)` (the
    /// division in f64), rounded before the accumulator is added, unlike
    /// [`FusedBiasRequant`].
    pub fn with_rounded_reciprocal(x_scale: f64, w_scale: f64, bias: f32, y_scale: f64) -> AccRequant {
        let fused = FusedBiasRequant::new(x_scale, w_scale, bias, y_scale);
        AccRequant { mult: fused.mult, bias_term: fused.bias * fused.rcp }
    }

    /// The output integer for the exact accumulator `acc`: clamping to
    /// integer bounds before rounding equals rounding before clamping, and
    /// a NaN (degenerate scales) lands on the zero point.
    #[inline]
    pub fn apply(self, acc: i64, zero_point: i64, lo: i64, hi: i64) -> i64 {
        finish((acc as f32 + self.bias_term) * self.mult, zero_point, lo, hi)
    }
}

/// fbgemm's requantization for a weight quantized **per tensor**: its vector
/// loops multiply the bias by a broadcast reciprocal `rcp = f32(1 / aws)`
/// (the division in f64), and the compiler fuses that product with the
/// addition of the accumulator, so
/// `q = round_half_even(fma(bias, rcp, f32(acc)) * mult) + zero_point`,
/// one rounding for the bias product and sum (measured: 0 mismatches on
/// every layer of per-tensor ResNet-18 and MobileNetV2, where the unfused
/// sequences miss a few outputs per million at rounding ties).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedBiasRequant {
    /// `aws / f32(y_scale)`.
    pub mult: f32,
    /// The float bias.
    pub bias: f32,
    /// `f32(1 / aws)`, the division in f64.
    pub rcp: f32,
}

impl FusedBiasRequant {
    /// The constants of one output channel.
    pub fn new(x_scale: f64, w_scale: f64, bias: f32, y_scale: f64) -> FusedBiasRequant {
        let aws = x_scale as f32 * w_scale as f32;
        FusedBiasRequant { mult: aws / y_scale as f32, bias, rcp: (1.0 / aws as f64) as f32 }
    }

    /// The output integer for the exact accumulator `acc`, as
    /// [`AccRequant::apply`].
    #[inline]
    pub fn apply(self, acc: i64, zero_point: i64, lo: i64, hi: i64) -> i64 {
        finish(self.bias.mul_add(self.rcp, acc as f32) * self.mult, zero_point, lo, hi)
    }
}

/// `round_half_even(v) + zero_point` clamped to `[lo, hi]` (clamping
/// before rounding, which is the same on integer bounds); NaN lands on the
/// zero point.
#[inline]
fn finish(v: f32, zero_point: i64, lo: i64, hi: i64) -> i64 {
    let r = round_half_even(v.clamp((lo - zero_point) as f32, (hi - zero_point) as f32));
    if r.is_nan() {
        zero_point.clamp(lo, hi)
    } else {
        r as i64 + zero_point
    }
}

/// oneDNN's requantization of an exact conv accumulator, as PyTorch's `x86`
/// engine runs it on a CPU with AVX-512 VNNI: each step rounded to f32, no
/// fused multiply-add,
///
/// ```text
/// v = f32(acc) * x;  v = v * w;  v = v + bias;  (relu: v = max(v, 0))
/// v = v * d;  v = v + f32(zero_point);  q = round_half_even(clamp(v, lo, hi))
/// ```
///
/// with `x = 1 / f32(1 / x_scale)` (the inner division in f64),
/// `w = f32(w_scale)` and `d = 1 / (1 / f32(1 / y_scale))`. oneDNN's AMX
/// and AVX2 kernels fold the two scales into one multiplier (`folded`):
/// then `x = 1` and `w = f32(x * f32(w_scale))`, which multiplies alike
/// (a product by 1 is exact). The clamp to
/// `[zero_point, hi]` of a fused relu equals the `max(v, 0)` before the
/// output scale, which is positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneDnnRequant {
    /// The input scale, as oneDNN rebuilds it from its reciprocal.
    pub x: f32,
    /// The channel's weight scale.
    pub w: f32,
    /// The float bias.
    pub bias: f32,
    /// The output scale's reciprocal, as oneDNN rebuilds it.
    pub d: f32,
}

impl OneDnnRequant {
    /// The constants of one output channel; `folded` for oneDNN's
    /// kernels that multiply by one product of the two scales.
    pub fn new(x_scale: f64, w_scale: f64, bias: f32, y_scale: f64, folded: bool) -> OneDnnRequant {
        let (x, w) = (1.0f32 / (1.0 / x_scale) as f32, w_scale as f32);
        let (x, w) = if folded { (1.0, x * w) } else { (x, w) };
        OneDnnRequant { x, w, bias, d: 1.0f32 / (1.0f32 / (1.0 / y_scale) as f32) }
    }

    /// The output integer for the exact accumulator `acc`, in `[lo, hi]`
    /// (`lo` is the zero point for a fused relu); NaN lands on the zero
    /// point.
    #[inline]
    pub fn apply(self, acc: i64, zero_point: i64, lo: i64, hi: i64) -> i64 {
        let v = (acc as f32 * self.x * self.w + self.bias) * self.d + zero_point as f32;
        let r = round_half_even(v.clamp(lo as f32, hi as f32));
        if r.is_nan() {
            zero_point.clamp(lo, hi)
        } else {
            r as i64
        }
    }
}

/// PyTorch's requantization of a quantized value into other qparams, as its
/// quantized `cat` computes it. PyTorch has two paths, and qtensor follows
/// both:
///
/// - **channels-last** 4-d inputs concatenated along channels (the layout
///   networks use): dequantized with one fused multiply-add,
///   `fma(f32(q), f32(s_in), f32(s_in) * f32(-z_in))`, times
///   `f32(1 / s_out)` (the division in f64);
/// - **any other** input: `f32(q - z_in) * f32(s_in)`, rounded, times
///   `1 / f32(s_out)` (the division in f32).
///
/// Then rounded half to even, plus `z_out`, clamped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Requantizer {
    /// `f32(s_in)`.
    pub scale: f32,
    /// Fused: `f32(s_in) * f32(-z_in)`; otherwise `-z_in` as f32.
    pub offset: f32,
    /// The inverse output scale.
    pub inv: f32,
    /// True for the channels-last path (a fused multiply-add).
    pub fused: bool,
}

impl Requantizer {
    /// The channels-last path, from `(s_in, z_in)` to the output scale `s_out`.
    pub fn channels_last(in_scale: f64, in_zero_point: i64, out_scale: f64) -> Requantizer {
        let scale = in_scale as f32;
        Requantizer { scale, offset: scale * -(in_zero_point as f32), inv: (1.0 / out_scale) as f32, fused: true }
    }

    /// The path for every other layout.
    pub fn generic(in_scale: f64, in_zero_point: i64, out_scale: f64) -> Requantizer {
        Requantizer {
            scale: in_scale as f32,
            offset: -(in_zero_point as f32),
            inv: 1.0 / out_scale as f32,
            fused: false,
        }
    }

    /// The real value `q` stands for, in the path's f32 arithmetic, times
    /// the inverse output scale.
    #[inline]
    pub fn scaled(self, q: i64) -> f32 {
        let v = if self.fused {
            (q as f32).mul_add(self.scale, self.offset)
        } else {
            (q as f32 + self.offset) * self.scale
        };
        v * self.inv
    }

    /// The output integer for `q`, in `[lo, hi]`; a NaN (degenerate
    /// scales) lands on the zero point.
    #[inline]
    pub fn apply(self, q: i64, zero_point: i64, lo: i64, hi: i64) -> i64 {
        let r = round_half_even(self.scaled(q).clamp((lo - zero_point) as f32, (hi - zero_point) as f32));
        if r.is_nan() {
            zero_point.clamp(lo, hi)
        } else {
            r as i64 + zero_point
        }
    }
}

/// How many leading elements (in memory order) of an `n`-element tensor
/// of `element_bytes`-byte integers PyTorch's elementwise quantized
/// kernels compute in their vector body.
///
/// `cpu_kernel_vec` runs two 64-byte (AVX-512) vectors per step over 8-bit
/// values (128 lanes) and one over qint32 (16 lanes), and leaves the rest
/// to a scalar loop; the two loops dequantize and requantize with different
/// f32 sequences ([`DequantRequant`]). PyTorch's AVX2 build steps by 64
/// instead, and a multi-threaded PyTorch splits tensors above 32768
/// elements into per-thread ranges with tails of their own; the two
/// sequences differ in a few outputs per million, only there.
pub fn pytorch_vector_body(n: usize, element_bytes: usize) -> usize {
    // Two 64-byte vectors per step.
    let step = if element_bytes >= 4 { 16 } else { 128 / element_bytes.clamp(1, 4) };
    n - n % step
}

/// The dequantize and requantize steps of PyTorch's elementwise quantized
/// kernels (hardswish, hardsigmoid, ...), in both of their forms:
///
/// - **vector body**: `x = fma(f32(q), f32(s_in), f32(s_in) * f32(-z_in))`,
///   `q_out = round_half_even(y * f32(1 / s_out)) + z_out` (the division
///   in f64);
/// - **scalar tail**: `x = f32((q - z_in) * s_in)` (the product in f64;
///   on qint32 `f32(q - z_in) * f32(s_in)` in f32), `q_out = round_half_even(y * (1 / f32(s_out))) + z_out` (fbgemm's
///   `Quantize`, the division in f32).
///
/// On qint32 ([`DequantRequant::int32`]) both loops quantize as the
/// scalar tail does, with the zero point added in f32
/// ([`quantize_val_f32_sum`]): PyTorch's `Vectorized<qint32>` quantizes
/// through fbgemm's `Quantize` too. Results are clamped to `[lo, hi]`; NaN
/// lands on the zero point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DequantRequant {
    in_scale: f64,
    in_zero_point: i64,
    premul: f32,
    vector_inv: f32,
    scalar_inv: f32,
    out_zero_point: i64,
    lo: i64,
    hi: i64,
    int32: bool,
}

impl DequantRequant {
    /// From the input qparams to the output qparams and integer range.
    pub fn new(in_scale: f64, in_zero_point: i64, out_scale: f64, out_zero_point: i64, lo: i64, hi: i64) -> Self {
        DequantRequant {
            in_scale,
            in_zero_point,
            premul: in_scale as f32 * -(in_zero_point as f32),
            vector_inv: (1.0 / out_scale) as f32,
            scalar_inv: inv_scale(out_scale),
            out_zero_point,
            lo,
            hi,
            int32: false,
        }
    }

    /// The same for qint32 values: quantized by fbgemm's `Quantize` in
    /// both loops.
    pub fn int32(self) -> Self {
        DequantRequant { int32: true, ..self }
    }

    /// The real value of `q`, as the vector body (`vector`) or the scalar
    /// tail computes it.
    #[inline]
    pub fn dequantize(&self, q: i64, vector: bool) -> f32 {
        if vector {
            (q as f32).mul_add(self.in_scale as f32, self.premul)
        } else if self.int32 {
            (q - self.in_zero_point) as f32 * self.in_scale as f32
        } else {
            ((q - self.in_zero_point) as f64 * self.in_scale) as f32
        }
    }

    /// The output integer for the real value `y`.
    #[inline]
    pub fn quantize(&self, y: f32, vector: bool) -> i64 {
        if self.int32 {
            return quantize_val_f32_sum(y, self.scalar_inv, self.out_zero_point, self.lo, self.hi);
        }
        let inv = if vector { self.vector_inv } else { self.scalar_inv };
        quantize_val(y, inv, self.out_zero_point, self.lo, self.hi)
    }

    /// The output zero point and the clamping range `(zero_point, lo, hi)`.
    pub fn output(&self) -> (i64, i64, i64) {
        (self.out_zero_point, self.lo, self.hi)
    }

    /// The vector body's constants: `f32(s_in)`, the premultiplied zero
    /// point `f32(s_in) * f32(-z_in)`, and `f32(1 / s_out)`.
    pub fn vector_constants(&self) -> (f32, f32, f32) {
        (self.in_scale as f32, self.premul, self.vector_inv)
    }

    /// `f` applied to every element, each dequantized and requantized by
    /// the loop that PyTorch runs at its memory position (`positions[i]`
    /// is element i's rank in memory order); elements are
    /// `element_bytes`-byte integers.
    pub fn map(
        &self,
        ints: &[i64],
        element_bytes: usize,
        positions: impl Iterator<Item = usize>,
        f: impl Fn(f32) -> f32,
    ) -> crate::Result<Vec<i64>> {
        let body = pytorch_vector_body(ints.len(), element_bytes);
        let mut out = crate::storage::try_vec(ints.len())?;
        out.extend(ints.iter().zip(positions).map(|(&q, pos)| {
            let vector = pos < body;
            self.quantize(f(self.dequantize(q, vector)), vector)
        }));
        Ok(out)
    }
}

/// PyTorch's quantized `add` and `mul` of two per-tensor operands into
/// output qparams (`qadd_kernel`, `qmul_kernel`):
///
/// - **add**: each operand dequantized as in [`DequantRequant`] (fused in
///   the vector body, in f64 in the scalar tail), the two f32 values
///   added, then requantized by that loop's sequence; `add_relu` clamps at
///   the output zero point, which equals PyTorch's `max(sum, 0)` before
///   rounding;
/// - **mul**: `round_half_even(f32((a - z_a) * (b - z_b)) * m) + z_out`
///   with `m = f32(s_a) * f32(s_b) * (1 / f32(s_out))` in f32, the same in
///   both loops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinaryRequant {
    /// `a + b`: one [`DequantRequant`] per operand (sharing the output).
    Add(DequantRequant, DequantRequant),
    /// `a * b`.
    Mul {
        /// `f32(s_a) * f32(s_b) * (1 / f32(s_out))`, in f32.
        multiplier: f32,
        /// Zero point of `a`.
        za: i64,
        /// Zero point of `b`.
        zb: i64,
        /// Output zero point.
        zo: i64,
        /// Lowest output integer.
        lo: i64,
        /// Highest output integer.
        hi: i64,
    },
}

impl BinaryRequant {
    /// `a + b` from `(s_a, z_a)` and `(s_b, z_b)` into `(s_out, z_out)`,
    /// clamped to `[lo, hi]`.
    pub fn add(a: (f64, i64), b: (f64, i64), out: (f64, i64), lo: i64, hi: i64) -> BinaryRequant {
        BinaryRequant::Add(
            DequantRequant::new(a.0, a.1, out.0, out.1, lo, hi),
            DequantRequant::new(b.0, b.1, out.0, out.1, lo, hi),
        )
    }

    /// The same for qint32 operands (see [`DequantRequant::int32`]); `mul`
    /// is the same on every dtype.
    pub fn int32(self) -> BinaryRequant {
        match self {
            BinaryRequant::Add(a, b) => BinaryRequant::Add(a.int32(), b.int32()),
            mul => mul,
        }
    }

    /// `a * b` from `(s_a, z_a)` and `(s_b, z_b)` into `(s_out, z_out)`.
    pub fn mul(a: (f64, i64), b: (f64, i64), out: (f64, i64), lo: i64, hi: i64) -> BinaryRequant {
        let multiplier = a.0 as f32 * b.0 as f32 * inv_scale(out.0);
        BinaryRequant::Mul { multiplier, za: a.1, zb: b.1, zo: out.1, lo, hi }
    }

    /// The output integer for `(a, b)`, by the vector body's sequence
    /// (`vector`) or the scalar tail's.
    #[inline]
    pub fn apply(&self, a: i64, b: i64, vector: bool) -> i64 {
        match self {
            BinaryRequant::Add(ra, rb) => ra.quantize(ra.dequantize(a, vector) + rb.dequantize(b, vector), vector),
            BinaryRequant::Mul { multiplier, za, zb, zo, lo, hi } => {
                quantize_val(((a - za) * (b - zb)) as f32, *multiplier, *zo, *lo, *hi)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_to_even_and_saturates() {
        let inv = inv_scale(1.0);
        assert_eq!(quantize_val(2.5, inv, 0, -128, 127), 2);
        assert_eq!(quantize_val(3.5, inv, 0, -128, 127), 4);
        assert_eq!(quantize_val(-2.5, inv, 0, -128, 127), -2);
        assert_eq!(quantize_val(f32::INFINITY, inv, 0, 0, 255), 255);
        assert_eq!(quantize_val(f32::NEG_INFINITY, inv, 0, 0, 255), 0);
        assert_eq!(quantize_val(1e30, inv, -100_000, i32::MIN as i64, i32::MAX as i64), i32::MAX as i64);
        assert_eq!(quantize_val(2_147_483_648.0, inv, -10, i32::MIN as i64, i32::MAX as i64), i32::MAX as i64);
        assert_eq!(quantize_val(f32::NAN, inv, 7, 0, 255), 7);
    }

    #[test]
    fn round_to_byte_rounds_half_to_even_over_the_byte_range() {
        let mut v = 0.0f32;
        while v <= 255.0 {
            for x in [v, f32::from_bits(v.to_bits() + 1), (v - f32::EPSILON).max(0.0)] {
                assert_eq!(round_to_byte(x), x.round_ties_even() as u8, "{x}");
            }
            v += 0.125;
        }
    }

    #[test]
    fn round_half_even_is_round_ties_even() {
        let mut v = -5_000_000.0f32;
        while v < 5_000_000.0 {
            for x in [v, v + 0.5, v + 0.25, v - 0.5, -v, f32::from_bits(v.to_bits() + 1)] {
                assert_eq!(round_half_even(x), x.round_ties_even(), "{x}");
            }
            v += 997.37;
        }
        for x in [0.5, 1.5, 2.5, -0.5, -2.5, 4_194_303.5, 4_194_304.5, 1e30, -1e30, f32::INFINITY] {
            assert_eq!(round_half_even(x), x.round_ties_even(), "{x}");
        }
        assert!(round_half_even(f32::NAN).is_nan());
    }

    #[test]
    fn fused_bias_rounds_once() {
        // aws = 2^-10: bias 0.25 gives a bias term of exactly 256, and
        // (acc + 256) * 0.5 ties at .5, which rounds to even.
        let rq = FusedBiasRequant::new(1.0 / 32.0, 1.0 / 32.0, 0.25, 1.0 / 512.0);
        assert_eq!((rq.rcp, rq.mult), (1024.0, 0.5));
        assert_eq!(rq.apply(1, 0, 0, 255), 128);
        assert_eq!(rq.apply(3, 0, 0, 255), 130);
        // 3 * f32(1/3) is 1 + 2^-25 exactly: an unfused product rounds it
        // to 1, so its sum with -1 would be 0; fused it is 2^-25.
        // (Exact constants: Miri may perturb `powi`.)
        let (third, two_to_minus_25) = (1.0f32 / 3.0, f32::from_bits(0x3300_0000));
        assert_eq!(3.0f32.mul_add(third, -1.0), two_to_minus_25);
        assert_eq!(3.0f32 * third - 1.0, 0.0);
        let rq = FusedBiasRequant { mult: 67_108_864.0, bias: 3.0, rcp: third };
        assert_eq!(rq.apply(-1, 0, 0, 255), 2);
    }

    #[test]
    fn onednn_folds_or_separates_the_scales() {
        let sep = OneDnnRequant::new(0.1, 0.003, 0.5, 0.07, false);
        let folded = OneDnnRequant::new(0.1, 0.003, 0.5, 0.07, true);
        assert_eq!(folded.x, 1.0);
        assert_eq!(folded.w, sep.x * sep.w);
        assert_eq!(sep.d, 1.0 / (1.0f32 / (1.0 / 0.07f64) as f32));
        // relu: anything below the output zero point clamps to it.
        assert_eq!(sep.apply(-10_000, 5, 5, 255), 5);
        assert_eq!(sep.apply(1_000_000, 5, 0, 255), 255);
    }

    #[test]
    fn fbgemm_quantize_adds_the_zero_point_in_f32() {
        // 2^24 + 1 is not an f32: the sum rounds to even, 2^24.
        assert_eq!(quantize_val_f32_sum(16_777_216.0, 1.0, 1, i32::MIN as i64, i32::MAX as i64), 16_777_216);
        assert_eq!(quantize_val(16_777_216.0, 1.0, 1, i32::MIN as i64, i32::MAX as i64), 16_777_217);
        assert_eq!(quantize_val_f32_sum(f32::NAN, 1.0, 3, 0, 255), 3);
        assert_eq!(quantize_val_f32_sum(1e30, 1.0, -5, i32::MIN as i64, i32::MAX as i64), i32::MAX as i64);
    }

    #[test]
    fn requantizes_in_f64() {
        assert_eq!(requantize_f64(0.25, 0.5, 3, 0, 255), 3);
        assert_eq!(requantize_f64(0.75, 0.5, 3, 0, 255), 5);
        assert_eq!(requantize_f64(1e300, 0.5, 3, 0, 255), 255);
        assert_eq!(requantize_f64(f64::NEG_INFINITY, 0.5, 3, -128, 127), -128);
        assert_eq!(requantize_f64(f64::NAN, 0.5, 3, 0, 255), 3);
        assert_eq!(requantize_f64(3e9, 1.0, -100_000, i32::MIN as i64, i32::MAX as i64), i32::MAX as i64);
    }
}
