//! The slice routines an instruction set provides for the elementwise ops,
//! and their portable scalar forms.
//!
//! An ISA implements [`VectorIsa`] on its token type (`Avx2`, `Neon`, ...,
//! from `qtensor_runtime::isa`): the token is the proof that the CPU has
//! the instructions, so every method is safe to call. The op drivers in
//! [`crate::ops`] are generic over the trait: they do the tensor work
//! (qparams, layouts, threads, declines) once, for every ISA. Each ISA
//! supplies only the loops over slices.
//!
//! Every method must give the bits of its scalar form here (the `*_scalar`
//! functions and [`Portable`]'s methods): exactly the reference where the
//! op is exact, and the reference's rounding otherwise.

use crate::args::window::Window;
use qtensor_runtime::numerics::{dequantize_val, quantize_val, round_half_even, BinaryRequant};
use qtensor_runtime::Element;

/// An 8-bit storage type: `u8` (quint8) or `i8` (qint8). Kernels are
/// generic over it; `SIGNED` picks the widening and saturating
/// instructions.
pub trait ByteElement: Element + Ord {
    /// True for `i8`.
    const SIGNED: bool;
    /// The smallest value (a window of padding only pools to it).
    const LOWEST: Self;
}

impl ByteElement for u8 {
    const SIGNED: bool = false;
    const LOWEST: u8 = 0;
}

impl ByteElement for i8 {
    const SIGNED: bool = true;
    const LOWEST: i8 = i8::MIN;
}

/// Quantization to an integer grid: `clamp(round(x * inv) + zero_point,
/// qmin, qmax)`, as `numerics::quantize_val`.
#[derive(Debug, Clone, Copy)]
pub struct QuantizeParams {
    /// `1 / scale` in f32 (`numerics::inv_scale`).
    pub inv: f32,
    /// The zero point.
    pub zero_point: i64,
    /// The lowest integer of the dtype.
    pub qmin: i64,
    /// The highest integer of the dtype.
    pub qmax: i64,
}

/// How a binary op combines its two operands into output steps: the lane
/// arithmetic of PyTorch's vector body (`numerics::BinaryRequant` with
/// `vector`).
#[derive(Debug, Clone, Copy)]
pub enum Combine {
    /// `(fma(f32(a), sa, pa) + fma(f32(b), sb, pb)) * inv`: each operand
    /// dequantized with one fused multiply-add onto its premultiplied zero
    /// point, the sum times the inverse output scale.
    Add {
        /// `f32(s_a)`.
        sa: f32,
        /// `f32(s_a) * f32(-z_a)`.
        pa: f32,
        /// `f32(s_b)`.
        sb: f32,
        /// `f32(s_b) * f32(-z_b)`.
        pb: f32,
        /// `f32(1 / s_out)`.
        inv: f32,
    },
    /// `f32((a - za) * (b - zb)) * m`, with `m = f32(s_a) * f32(s_b) * (1 /
    /// f32(s_out))`; the product of the differences is an exact integer in
    /// f32 (below 2^24).
    Mul {
        /// The f32 multiplier.
        m: f32,
    },
}

/// The constants of one requantizing binary op over bytes.
#[derive(Debug, Clone, Copy)]
pub struct BinaryParams {
    /// How the operands combine.
    pub combine: Combine,
    /// Zero point of `a`.
    pub za: i64,
    /// Zero point of `b`.
    pub zb: i64,
    /// Output zero point.
    pub zo: i64,
    /// Lowest output integer (the zero point for add_relu).
    pub lo: i64,
    /// Highest output integer.
    pub hi: i64,
}

impl BinaryParams {
    /// The vector-body constants of PyTorch's arithmetic `r`.
    pub fn of(r: &BinaryRequant) -> BinaryParams {
        match *r {
            BinaryRequant::Add(ra, rb) => {
                let ((sa, pa, inv), (sb, pb, _)) = (ra.vector_constants(), rb.vector_constants());
                let (zo, lo, hi) = ra.output();
                BinaryParams { combine: Combine::Add { sa, pa, sb, pb, inv }, za: 0, zb: 0, zo, lo, hi }
            }
            BinaryRequant::Mul { multiplier, za, zb, zo, lo, hi } => {
                BinaryParams { combine: Combine::Mul { m: multiplier }, za, zb, zo, lo, hi }
            }
        }
    }

    /// True when every constant is finite, so that vector lanes need no
    /// NaN or infinity handling.
    pub fn is_finite(&self) -> bool {
        match self.combine {
            Combine::Add { sa, pa, sb, pb, inv } => [sa, pa, sb, pb, inv].iter().all(|v| v.is_finite()),
            Combine::Mul { m } => m.is_finite(),
        }
    }

    /// One output: the value in output steps, clamped, rounded half to
    /// even, then the output zero point added exactly. Vector forms compute
    /// the same f32 operations lane by lane.
    #[inline]
    pub fn scalar(&self, a: i64, b: i64) -> i64 {
        let v = match self.combine {
            Combine::Add { sa, pa, sb, pb, inv } => ((a as f32).mul_add(sa, pa) + (b as f32).mul_add(sb, pb)) * inv,
            Combine::Mul { m } => ((a - self.za) * (b - self.zb)) as f32 * m,
        };
        round_half_even(v.clamp((self.lo - self.zo) as f32, (self.hi - self.zo) as f32)) as i64 + self.zo
    }
}

/// Requantization of one input to new qparams, PyTorch's sequence
/// (`numerics::Requantizer`): `fma(f32(q), scale, premul) * inv`, rounded
/// half to even, plus `zo`, clamped to `[lo, hi]`.
#[derive(Debug, Clone, Copy)]
pub struct RequantParams {
    /// The input scale, premultiplied zero point and inverse output scale.
    pub rq: qtensor_runtime::numerics::Requantizer,
    /// The output zero point.
    pub zo: i64,
    /// Lowest output integer.
    pub lo: i64,
    /// Highest output integer.
    pub hi: i64,
}

impl RequantParams {
    /// One output.
    #[inline]
    pub fn scalar(&self, q: i64) -> i64 {
        self.rq.apply(q, self.zo, self.lo, self.hi)
    }
}

/// The vector routines of one instruction set over slices. Implemented on
/// a token whose existence proves the CPU supports the ISA.
///
/// Slices passed together have the same length; `stream` is a hint that
/// the output is large enough for non-temporal stores (ISAs without them
/// ignore it).
pub trait VectorIsa: Copy + Send + Sync + 'static {
    /// The token, when this CPU has the ISA and the cap allows it.
    fn detect() -> Option<Self>;

    /// Quantizes f32 into bytes, bit-exact with `numerics::quantize_val`.
    fn quantize_bytes<B: ByteElement>(self, src: &[f32], dst: &mut [B], q: QuantizeParams);

    /// Quantizes f32 into qint32, bit-exact with `numerics::quantize_val`
    /// (saturating at the i32 range).
    fn quantize_i32(self, src: &[f32], dst: &mut [i32], inv: f32, zero_point: i64);

    /// Dequantizes bytes, bit-exact with `numerics::dequantize_val`.
    fn dequantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [f32], scale: f32, zero_point: i64, stream: bool);

    /// Dequantizes qint32, bit-exact with `numerics::dequantize_val`.
    fn dequantize_i32(self, src: &[i32], dst: &mut [f32], scale: f32, zero_point: i64);

    /// `max(q, zero_point)` over bytes.
    fn relu_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], zero_point: i64, stream: bool);

    /// `max(q, zero_point)` over qint32.
    fn relu_i32(self, src: &[i32], dst: &mut [i32], zero_point: i64);

    /// A requantizing binary op over bytes, as [`BinaryParams::scalar`].
    fn binary_bytes<B: ByteElement>(self, a: &[B], b: &[B], dst: &mut [B], p: BinaryParams, stream: bool);

    /// Requantizes bytes to new qparams, as [`RequantParams::scalar`].
    fn requantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], p: RequantParams);

    /// `dst[i] = table[src[i]]`: a function of one byte by its table of
    /// all 256 values (the activations' kernels). The default is the
    /// scalar loop, [`lookup_scalar`].
    fn lookup_bytes(self, table: &[u8; 256], src: &[u8], dst: &mut [u8]) {
        lookup_scalar(table, src, dst)
    }

    /// One output row of a channels-last max pool over bytes (see
    /// [`max_pool_row`]); ISAs compile the portable loop for their width.
    fn max_pool_row<B: ByteElement>(self, src: &[B], dims: [usize; 3], win: &Window, oy: usize, out: &mut [B]) {
        max_pool_row(src, dims, win, oy, B::LOWEST, out)
    }

    /// Max-pools one NCHW plane `[h, w]` of bytes into `out` (`oh * ow`),
    /// with `scratch` reused across calls; false when the ISA has no plane
    /// routine for this window (the driver then pools each output row with
    /// [`VectorIsa::max_pool_row`] on one channel).
    fn max_pool_plane<B: ByteElement>(
        self,
        plane: &[B],
        hw: [usize; 2],
        win: &Window,
        out: &mut [B],
        scratch: &mut Vec<u8>,
    ) -> bool {
        let _ = (plane, hw, win, out, scratch);
        false
    }
}

/// Quantizes with the scalar definition (the tails of every vector loop).
pub fn quantize_scalar<T: Element>(src: &[f32], dst: &mut [T], q: QuantizeParams) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = T::from_i64(quantize_val(s, q.inv, q.zero_point, q.qmin, q.qmax));
    }
}

/// Dequantizes with the scalar definition.
pub fn dequantize_scalar<T: Element>(src: &[T], dst: &mut [f32], scale: f32, zero_point: i64) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = dequantize_val(s.to_i64(), scale, zero_point);
    }
}

/// `max(q, zero_point)` with the scalar definition.
pub fn relu_scalar<T: Element>(src: &[T], dst: &mut [T], zero_point: i64) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = T::from_i64(s.to_i64().max(zero_point));
    }
}

/// The binary op with the scalar definition.
pub fn binary_scalar<B: ByteElement>(a: &[B], b: &[B], dst: &mut [B], p: BinaryParams) {
    for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
        *d = B::from_i64(p.scalar(x.to_i64(), y.to_i64()));
    }
}

/// `dst[i] = table[src[i]]`, one byte at a time (the tails of the vector
/// lookups).
pub fn lookup_scalar(table: &[u8; 256], src: &[u8], dst: &mut [u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = table[usize::from(s)];
    }
}

/// Requantization with the scalar definition.
pub fn requantize_scalar<B: ByteElement>(src: &[B], dst: &mut [B], p: RequantParams) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = B::from_i64(p.scalar(s.to_i64()));
    }
}

/// The taps of one output pixel's max-pool window, clipped to the input:
/// `rows` x `cols` pixels, each tap's channels at [`Self::offset`] of the
/// image.
#[derive(Clone, Copy)]
pub struct WindowTaps {
    /// The number of window rows and columns inside the input.
    pub count: [usize; 2],
    first: [usize; 2],
    step: [usize; 2],
    width: usize,
    channels: usize,
}

impl WindowTaps {
    /// The image offset of tap (`ty`, `tx`)'s channel 0.
    #[inline(always)]
    pub fn offset(&self, ty: usize, tx: usize) -> usize {
        ((self.first[0] + ty * self.step[0]) * self.width + self.first[1] + tx * self.step[1]) * self.channels
    }

    /// `dst = max over the taps of src[tap + ch..]`, for `dst`'s channels,
    /// tap by tap across the channels: for the few channels past a
    /// routine's register-held blocks (a pass over the taps per channel
    /// would read each tap's row once per channel).
    #[inline(always)]
    pub fn max_channels<B: Copy + Ord>(&self, src: &[B], ch: usize, dst: &mut [B]) {
        let n = dst.len();
        dst.copy_from_slice(&src[self.offset(0, 0) + ch..][..n]);
        for ty in 0..self.count[0] {
            for tx in 0..self.count[1] {
                max_into(dst, &src[self.offset(ty, tx) + ch..][..n]);
            }
        }
    }
}

/// Runs `pixel(taps, dst)` for each pixel of one output row of a
/// channels-last max pool (`out`: `ow` pixels of `c` channels; the input
/// one image `[h, w, c]`) whose window reaches the input; a window that
/// holds only padding gives `lowest`, as the reference does. The one walk
/// of every ISA's row.
#[inline(always)]
pub fn for_each_window<B: Copy>(
    [h, w, c]: [usize; 3],
    win: &Window,
    oy: usize,
    lowest: B,
    out: &mut [B],
    mut pixel: impl FnMut(&WindowTaps, &mut [B]),
) {
    use crate::args::window::window_span;
    let (y0, ny, dy) = window_span(oy, win.stride[0], win.pad[0], win.dilation[0], win.kernel[0], h);
    for (ox, dst) in out.chunks_exact_mut(c.max(1)).enumerate() {
        let (x0, nx, dx) = window_span(ox, win.stride[1], win.pad[1], win.dilation[1], win.kernel[1], w);
        if ny == 0 || nx == 0 {
            dst.fill(lowest);
            continue;
        }
        let taps = WindowTaps { count: [ny, nx], first: [y0, x0], step: [dy, dx], width: w, channels: c };
        pixel(&taps, dst);
    }
}

/// One output row of a channels-last max pool: `out` holds `ow` pixels of
/// `c` channels; `src` is one image `[h, w, c]` of the input. A window that
/// holds only padding gives `lowest`, as the reference does.
#[inline(always)]
pub fn max_pool_row<B: Copy + Ord>(src: &[B], dims: [usize; 3], win: &Window, oy: usize, lowest: B, out: &mut [B]) {
    for_each_window(dims, win, oy, lowest, out, |taps, dst| {
        // Channel chunks outermost: a chunk's running max stays in
        // registers across the window's taps and is stored once, where a
        // pass per tap would load and store the whole pixel each time.
        let mut chunks = dst.chunks_exact_mut(MAX_CHUNK);
        let mut ch = 0;
        for d in &mut chunks {
            let mut acc = [lowest; MAX_CHUNK];
            taps.max_channels(src, ch, &mut acc);
            d.copy_from_slice(&acc);
            ch += MAX_CHUNK;
        }
        taps.max_channels(src, ch, chunks.into_remainder());
    })
}

/// Channels per register-held running max in [`max_pool_row`]: two 256-bit
/// vectors of bytes.
const MAX_CHUNK: usize = 64;

/// `dst = max(dst, src)`, in fixed-size chunks of 32 elements that the
/// compiler turns into whole vectors at any width (a loop of dynamic length
/// vectorizes for its widest unroll and runs shorter rows in scalar).
#[inline(always)]
fn max_into<B: Copy + Ord>(dst: &mut [B], src: &[B]) {
    let mut d32 = dst.chunks_exact_mut(32);
    let mut s32 = src.chunks_exact(32);
    for (d, s) in (&mut d32).zip(&mut s32) {
        for i in 0..32 {
            d[i] = d[i].max(s[i]);
        }
    }
    for (d, &v) in d32.into_remainder().iter_mut().zip(s32.remainder()) {
        *d = (*d).max(v);
    }
}

/// The portable token: always available, scalar Rust that the compiler
/// vectorizes where it can. Its methods define the bits every ISA's
/// methods must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Portable;

impl VectorIsa for Portable {
    fn detect() -> Option<Self> {
        Some(Portable)
    }

    fn quantize_bytes<B: ByteElement>(self, src: &[f32], dst: &mut [B], q: QuantizeParams) {
        quantize_scalar(src, dst, q)
    }

    fn quantize_i32(self, src: &[f32], dst: &mut [i32], inv: f32, zero_point: i64) {
        quantize_scalar(src, dst, QuantizeParams { inv, zero_point, qmin: i32::MIN as i64, qmax: i32::MAX as i64 })
    }

    fn dequantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [f32], scale: f32, zero_point: i64, _stream: bool) {
        dequantize_scalar(src, dst, scale, zero_point)
    }

    fn dequantize_i32(self, src: &[i32], dst: &mut [f32], scale: f32, zero_point: i64) {
        dequantize_scalar(src, dst, scale, zero_point)
    }

    fn relu_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], zero_point: i64, _stream: bool) {
        relu_scalar(src, dst, zero_point)
    }

    fn relu_i32(self, src: &[i32], dst: &mut [i32], zero_point: i64) {
        relu_scalar(src, dst, zero_point)
    }

    fn binary_bytes<B: ByteElement>(self, a: &[B], b: &[B], dst: &mut [B], p: BinaryParams, _stream: bool) {
        binary_scalar(a, b, dst, p)
    }

    fn requantize_bytes<B: ByteElement>(self, src: &[B], dst: &mut [B], p: RequantParams) {
        requantize_scalar(src, dst, p)
    }
}
