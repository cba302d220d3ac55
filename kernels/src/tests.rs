//! Each ISA's routines against plain definitions, as tract-linalg tests its
//! kernels: the GEMM micro-kernels against an i32 dot product over odd
//! sizes and tails, the epilogues and slice routines against `numerics`
//! and the scalar forms, on typical and extreme values.
//!
//! Every token this CPU (or qemu) supports is checked; the others are
//! skipped by name. `QTENSOR_ISA` caps them as it caps the kernels.

use crate::args::window::Window;
use crate::gemm::depthwise::{for_each_pixel, pixel_scalar, DepthwiseArgs, LayoutCache};
use crate::gemm::driver::PANEL_SLACK;
use crate::gemm::packed::{PackedB, BLOCK};
use crate::gemm::{
    scalar_finish_f32, scalar_finish_u8, Epilogue, GemmIsa, OutElem, Panel, PanelTerms, Requant, RequantForm, RowTerms,
    ShiftedRows,
};
use crate::vector::{
    lookup_scalar, max_pool_row, BinaryParams, ByteElement, Combine, Portable, QuantizeParams, RequantParams, VectorIsa,
};
use qtensor_runtime::numerics::{
    dequantize_val, quantize_val, AccRequant, FusedBiasRequant, OneDnnRequant, Requantizer,
};

/// `full`, or under Miri (which interprets every instruction, hundreds of
/// times slower) the shorter `miri`.
fn sizes<T: Copy>(full: &[T], miri: &[T]) -> Vec<T> {
    if cfg!(miri) { miri } else { full }.to_vec()
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A byte: mostly uniform, sometimes an extreme.
    fn byte(&mut self) -> u8 {
        match self.below(8) {
            0 => 0,
            1 => 255,
            _ => self.next() as u8,
        }
    }

    fn f32_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (self.below(1 << 24) as f32 / (1 << 24) as f32) * (hi - lo)
    }
}

/// Calls `$run::<Token>(args)` for every GEMM token of this target.
macro_rules! each_gemm_token {
    ($run:ident($($arg:expr),*)) => {{
        $run::<Portable>($($arg),*);
        #[cfg(target_arch = "x86_64")]
        {
            $run::<qtensor_runtime::isa::Avx2>($($arg),*);
            $run::<qtensor_runtime::isa::Avx512Vnni>($($arg),*);
            $run::<qtensor_runtime::isa::Amx>($($arg),*);
        }
        #[cfg(target_arch = "aarch64")]
        {
            $run::<qtensor_runtime::isa::Neon>($($arg),*);
            $run::<qtensor_runtime::isa::NeonDot>($($arg),*);
            $run::<qtensor_runtime::isa::NeonI8mm>($($arg),*);
        }
    }};
}

/// Runs `check` with every GEMM token this CPU has, by name.
fn for_each_gemm_isa(
    mut check: impl FnMut(&str, &dyn Fn(Panel<'_>, &PackedB, std::ops::Range<usize>, &mut [i32], usize)),
) {
    fn run<K: GemmIsa>(
        check: &mut impl FnMut(&str, &dyn Fn(Panel<'_>, &PackedB, std::ops::Range<usize>, &mut [i32], usize)),
    ) {
        match K::detect() {
            Some(k) => check(K::NAME, &move |x, b, blocks, out, ldo| k.dot(x, b, blocks, out, ldo)),
            None => eprintln!("skipped: {} (not on this CPU or capped)", K::NAME),
        }
    }
    each_gemm_token!(run(&mut check));
}

/// The activations of one micro-kernel case.
#[derive(Clone, Copy, Debug)]
enum Range8 {
    /// Any byte.
    Full,
    /// Below 128: a narrow panel, which AVX2 may give its pair kernel.
    Narrow,
    /// All 127 against weights of -128 and 127: the largest pair sums a
    /// narrow panel can make.
    NarrowExtreme,
    /// Below 128 but for the row given, all 255: AVX2 checks a panel that
    /// is not narrow run by run of 12 rows (row 5: the first run is wide;
    /// row 13: a wide run between narrow ones, with 25 rows).
    NarrowButRow(usize),
    /// Below 128 but for one byte of every third row, past 127 (128 to
    /// 255, 255 included): in panels of a few rows with K of 64 or more,
    /// few enough for AVX2's pair kernel to take the run clamped to 127
    /// and add the excess after; elsewhere too many, for the widening
    /// kernel.
    FewPast127,
}

#[test]
fn every_micro_kernel_is_a_plain_i32_dot_product() {
    use crate::gemm::narrow::{set_narrow_kernel, NarrowKernel};
    // Both kernels of a narrow panel, whatever this CPU measures; the
    // choice is global, and every test running meanwhile gets the same
    // results under either.
    // Miri runs the portable kernel only, for which neither the choice nor
    // the activations' range changes the path.
    let choices = sizes(&[NarrowKernel::Pairs, NarrowKernel::Widened], &[NarrowKernel::Pairs]);
    let ranges = [
        Range8::Full,
        Range8::Narrow,
        Range8::NarrowExtreme,
        Range8::NarrowButRow(5),
        Range8::NarrowButRow(13),
        Range8::FewPast127,
    ];
    for choice in choices {
        set_narrow_kernel(choice);
        for &range in sizes(&ranges, &ranges[..1]).iter() {
            micro_kernels_are_plain_dot_products(range);
        }
    }
    set_narrow_kernel(NarrowKernel::Measured);
}

fn micro_kernels_are_plain_dot_products(range: Range8) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0;
    for_each_gemm_isa(|name, dot| {
        for k in sizes(&[1usize, 3, 4, 5, 8, 17, 64, 129], &[5, 17]) {
            for n in sizes(&[1usize, 15, 16, 17, 33, 48], &[17]) {
                for rows in sizes(&[1usize, 2, 3, 4, 5, 6, 7, 13, 25], &[1, 7]) {
                    // Extreme weights included: -128 is the one a sign trick
                    // gets wrong.
                    let (w, x): (Vec<i8>, Vec<u8>) = match range {
                        Range8::Full => (
                            (0..n * k).map(|_| rng.byte() as i8).collect(),
                            (0..rows * k).map(|_| rng.byte()).collect(),
                        ),
                        Range8::Narrow => (
                            (0..n * k).map(|_| rng.byte() as i8).collect(),
                            (0..rows * k).map(|_| rng.byte() & 0x7f).collect(),
                        ),
                        Range8::NarrowButRow(wide) => (
                            (0..n * k).map(|_| rng.byte() as i8).collect(),
                            (0..rows * k).map(|i| if i / k == wide { 255 } else { rng.byte() & 0x7f }).collect(),
                        ),
                        Range8::FewPast127 => (
                            (0..n * k).map(|_| rng.byte() as i8).collect(),
                            (0..rows * k)
                                .map(|i| {
                                    let (r, c) = (i / k, i % k);
                                    match r % 3 == 0 && c == (r * 31) % k {
                                        true if r % 2 == 0 => 255,
                                        true => 128 + rng.byte() % 128,
                                        false => rng.byte() & 0x7f,
                                    }
                                })
                                .collect(),
                        ),
                        Range8::NarrowExtreme => {
                            ((0..n * k).map(|i| if i % 7 < 4 { -128 } else { 127 }).collect(), vec![127; rows * k])
                        }
                    };
                    let b = PackedB::pack(&w, n, k).unwrap(); // ok: a test; a failure here fails it
                    let kp = b.kp;
                    let mut a = vec![0u8; rows * kp];
                    for r in 0..rows {
                        a[r * kp..r * kp + k].copy_from_slice(&x[r * k..(r + 1) * k]);
                    }
                    // Every block, and a range that starts past the first.
                    for blocks in [0..b.blocks(), (b.blocks() / 2)..b.blocks()] {
                        let ldo = blocks.len() * BLOCK + 3;
                        let mut out = vec![i32::MIN; rows * ldo];
                        dot(Panel { a: &a, rows, kp }, &b, blocks.clone(), &mut out, ldo);
                        for r in 0..rows {
                            for (jj, col) in (blocks.start * BLOCK..blocks.end * BLOCK).enumerate() {
                                let want: i32 = if col < n {
                                    (0..k).map(|i| x[r * k + i] as i32 * w[col * k + i] as i32).sum()
                                } else {
                                    0
                                };
                                assert_eq!(
                                    out[r * ldo + jj],
                                    want,
                                    "{name}: {range:?} k {k} n {n} rows {rows} row {r} col {col}"
                                );
                            }
                        }
                    }
                }
            }
        }
        checked += 1;
    });
    assert!(checked >= 1);
}

/// Runs `check` with every GEMM token this CPU has, for the epilogues.
fn for_each_epilogue(mut check: impl FnMut(&str, &dyn EpilogueFns)) {
    fn run<K: GemmIsa>(check: &mut impl FnMut(&str, &dyn EpilogueFns)) {
        match K::detect() {
            Some(k) => check(K::NAME, &k),
            None => eprintln!("skipped: {} (not on this CPU or capped)", K::NAME),
        }
    }
    each_gemm_token!(run(&mut check));
}

/// The epilogues of a GEMM token, object-safe for the test loop.
trait EpilogueFns {
    fn u8(&self, t: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]);
    fn u8_rows(&self, t: PanelTerms<'_>, rq: Requant<'_>, dst: &mut [u8]);
    fn f32(&self, t: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]);
    fn quantize(&self, src: &[f32], dst: &mut [u8], q: QuantizeParams);
}

impl<K: GemmIsa> EpilogueFns for K {
    fn u8(&self, t: RowTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        // The driver's choice of epilogue for the form, as a GEMM makes it.
        u8::finish(*self, &Epilogue::Quantize(rq), t, 0, dst)
    }
    fn u8_rows(&self, t: PanelTerms<'_>, rq: Requant<'_>, dst: &mut [u8]) {
        u8::finish_rows(*self, &Epilogue::Quantize(rq), t, dst)
    }
    fn f32(&self, t: RowTerms<'_>, x_scale: f64, w_scales: &[f64], bias: &[f64], dst: &mut [f32]) {
        self.finish_f32(t, x_scale, w_scales, bias, dst)
    }
    fn quantize(&self, src: &[f32], dst: &mut [u8], q: QuantizeParams) {
        self.quantize_u8(src, dst, q)
    }
}

/// A kernel that reads shifted rows in place (see `ShiftedRows`) gives
/// the products of the same rows gathered into a K-padded panel: one tap
/// of any width (a 1x1 conv's pixels, each read on into the next ones
/// against the zero weights that pad K), or several of whole 64-byte
/// steps; from the first row or a later one, to the source's last pixel.
#[test]
fn shifted_rows_read_in_place_match_gathered_ones() {
    fn run<K: GemmIsa>(rng: &mut Rng, checked: &mut usize) {
        let Some(kernel) = K::detect() else { return };
        let cases: &[(usize, &[usize])] =
            &[(1, &[0]), (3, &[0]), (16, &[0]), (40, &[0]), (64, &[0]), (100, &[0]), (64, &[0, 1, 7]), (128, &[0, 5])];
        for &(c, taps) in cases {
            if !kernel.reads_shifted_rows(c, taps.len()) {
                continue;
            }
            let (k, n) = (taps.len() * c, 40);
            let w: Vec<i8> = (0..n * k).map(|_| rng.byte() as i8).collect();
            let b = PackedB::pack(&w, n, k).unwrap(); // ok: a test; a failure here fails it
            let total_rows = 53;
            let src: Vec<u8> = (0..(total_rows + taps[taps.len() - 1]) * c).map(|_| rng.byte()).collect();
            let x = ShiftedRows { src: &src, channels: c, taps, pixel_sums: &[] };
            for rows in [0..total_rows, 5..total_rows, 16..33, 40..total_rows] {
                let cols = b.blocks() * BLOCK;
                let mut got = vec![i32::MIN; rows.len() * cols];
                if !kernel.dot_shifted(rows.clone(), &x, &b, 0..b.blocks(), &mut got, cols) {
                    continue;
                }
                // With the driver's slack, as the driver gathers.
                let mut panel = vec![0xAAu8; rows.len() * b.kp + PANEL_SLACK];
                let mut sums = vec![0i32; rows.len()];
                x.gather(rows.clone(), b.kp, &mut panel, &mut sums);
                let mut want = vec![i32::MAX; rows.len() * cols];
                kernel.dot(
                    Panel { a: &panel[..rows.len() * b.kp], rows: rows.len(), kp: b.kp },
                    &b,
                    0..b.blocks(),
                    &mut want,
                    cols,
                );
                assert_eq!(got, want, "{}: {c} channels, taps {taps:?}, rows {rows:?}", K::NAME);
                *checked += 1;
            }
        }
    }
    let (mut rng, mut checked) = (Rng(11), 0);
    each_gemm_token!(run(&mut rng, &mut checked));
    if checked == 0 {
        eprintln!("skipped: no kernel on this CPU reads shifted rows in place");
    }
}

/// A panel's epilogue (the driver's: all rows in one call) finishes each
/// row with that row's own products and sum, as the one-row epilogue does.
#[test]
fn every_panel_epilogue_matches_the_portable_one_row_by_row() {
    let mut rng = Rng(7);
    for_each_epilogue(|name, e| {
        for n in [1usize, 16, 17, 24, 40, 63, 64, 80, 130] {
            for rows in [1usize, 2, 5, 16] {
                let ldp = n.div_ceil(16) * 16;
                let products: Vec<i32> = (0..rows * ldp).map(|_| rng.next() as i32 >> rng.below(20)).collect();
                let col_terms: Vec<i32> = (0..n).map(|_| rng.next() as i32 >> 12).collect();
                // Symmetric weights (no zero points) on even row counts.
                let zw: Vec<i32> = match rows % 2 {
                    0 => Vec::new(),
                    _ => (0..n).map(|_| rng.below(256) as i32 - 128).collect(),
                };
                let row_sums: Vec<i32> = (0..rows).map(|_| rng.below(1 << 16) as i32).collect();
                let mult: Vec<f32> = (0..n).map(|_| rng.f32_in(1e-6, 1e-3)).collect();
                let bias: Vec<f32> = (0..n).map(|_| rng.f32_in(-1e5, 1e5)).collect();
                let zero_point = rng.below(256) as i32;
                // A fused relu's clamp on some.
                let lo = if rows == 5 { zero_point as f32 } else { 0.0 };
                let rq = Requant { mult: &mult, bias: &bias, zero_point, lo, hi: 255.0, form: RequantForm::Fbgemm };
                let panel =
                    PanelTerms { products: &products, ldp, col_terms: &col_terms, zw: &zw, row_sums: &row_sums };
                let mut got = vec![0u8; rows * n];
                e.u8_rows(panel, rq, &mut got);
                for (r, got) in got.chunks_exact(n).enumerate() {
                    let mut want = vec![0u8; n];
                    scalar_finish_u8(panel.row(r), rq, &mut want);
                    assert_eq!(got, &want[..], "{name}: finish_rows_u8, n {n}, row {r} of {rows}");
                }
            }
        }
    });
}

#[test]
fn every_epilogue_matches_the_portable_one() {
    let mut rng = Rng(42);
    for_each_epilogue(|name, e| {
        for n in sizes(&[0usize, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 40, 64, 65, 100, 130], &[0, 9, 17, 64]) {
            for zw_all_zero in [true, false] {
                // Large C values too: the conversion to f32 rounds them.
                let p: Vec<i32> = (0..n).map(|_| rng.next() as i32 >> rng.below(20)).collect();
                let col_terms: Vec<i32> = (0..n).map(|_| rng.next() as i32 >> 12).collect();
                let zw: Vec<i32> =
                    if zw_all_zero { Vec::new() } else { (0..n).map(|_| rng.below(256) as i32 - 128).collect() };
                let t = RowTerms { products: &p, col_terms: &col_terms, zw: &zw, row_sum: rng.below(1 << 16) as i32 };
                // Multipliers that put results around the output range, with
                // ties (x.5) reachable.
                let mult: Vec<f32> = (0..n).map(|_| rng.f32_in(1e-6, 1e-3)).collect();
                let bias: Vec<f32> = (0..n).map(|_| rng.f32_in(-1e5, 1e5)).collect();
                let zero_point = rng.below(256) as i32;
                let lo = if rng.below(2) == 0 { 0.0 } else { zero_point as f32 };
                let rq = Requant { mult: &mult, bias: &bias, zero_point, lo, hi: 255.0, form: RequantForm::Fbgemm };
                let (mut got, mut want) = (vec![0u8; n], vec![0u8; n]);
                e.u8(t, rq, &mut got);
                scalar_finish_u8(t, rq, &mut want);
                // The scalar form is PyTorch's sequence (numerics::AccRequant).
                for (j, &w) in want.iter().enumerate() {
                    let r = AccRequant { mult: mult[j], bias_term: bias[j] };
                    assert_eq!(w as i64, r.apply(t.c(j) as i64, zero_point as i64, lo as i64, 255), "column {j}");
                }
                assert_eq!(got, want, "{name}: finish_u8, n {n}");
                // oneDNN's row (the driver's, compiled for each ISA) against
                // its scalar definition, with weight scales and biases of real convs.
                let w: Vec<f32> = (0..n).map(|_| rng.f32_in(1e-4, 1e-1)).collect();
                let b: Vec<f32> = (0..n).map(|_| rng.f32_in(-10.0, 10.0)).collect();
                let (x, d) = (rng.f32_in(1e-3, 1e-1), rng.f32_in(1.0, 100.0));
                let onednn = Requant { mult: &w, bias: &b, form: RequantForm::OneDnn { x, d }, ..rq };
                e.u8(t, onednn, &mut got);
                for (j, &g) in got.iter().enumerate() {
                    let r = OneDnnRequant { x, w: w[j], bias: b[j], d };
                    assert_eq!(
                        g as i64,
                        r.apply(t.c(j) as i64, zero_point as i64, lo as i64, 255),
                        "oneDNN column {j}"
                    );
                    assert_eq!(g, onednn.scalar(j, t.c(j)));
                }
                // fbgemm's per-tensor form (the driver's row, compiled for
                // each ISA: fused multiply-adds where it has them).
                let rcp = rng.f32_in(1e2, 1e4);
                let fused = Requant { mult: &mult, bias: &b, form: RequantForm::FbgemmFused { rcp }, ..rq };
                e.u8(t, fused, &mut got);
                for (j, &g) in got.iter().enumerate() {
                    let r = FusedBiasRequant { mult: mult[j], bias: b[j], rcp };
                    assert_eq!(g as i64, r.apply(t.c(j) as i64, zero_point as i64, lo as i64, 255), "fused column {j}");
                }
                let ws: Vec<f64> = (0..n).map(|_| rng.f32_in(1e-5, 1e-2) as f64).collect();
                let bias: Vec<f64> = (0..n).map(|_| rng.f32_in(-1e4, 1e4) as f64).collect();
                let (mut got, mut want) = (vec![0f32; n], vec![0f32; n]);
                e.f32(t, 0.0123, &ws, &bias, &mut got);
                scalar_finish_f32(t, 0.0123, &ws, &bias, &mut want);
                assert_eq!(bits(&got), bits(&want), "{name}: finish_f32, n {n}");
            }
            let src = special_floats(&mut rng, n);
            let q = QuantizeParams { inv: 1.0 / 0.37, zero_point: 3, qmin: 0, qmax: 255 };
            let mut got = vec![0u8; n];
            e.quantize(&src, &mut got, q);
            let want: Vec<u8> = src.iter().map(|&v| quantize_val(v, q.inv, 3, 0, 255) as u8).collect();
            assert_eq!(got, want, "{name}: quantize_u8, n {n}");
        }
    });
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Floats that reach every branch of quantization: ties, NaN, ±inf,
/// values past the integer ranges, subnormals and signed zeros.
fn special_floats(rng: &mut Rng, n: usize) -> Vec<f32> {
    const SPECIAL: [f32; 12] =
        [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-40, 2.5, -2.5, 3.5, 3e9, -3e9, 2_147_483_648.0];
    (0..n)
        .map(|_| match rng.below(4) {
            0 => SPECIAL[rng.below(SPECIAL.len() as u64) as usize],
            1 => rng.below(1024) as f32 * 0.37 * 0.5 - 64.0,
            _ => rng.f32_in(-200.0, 200.0),
        })
        .collect()
}

/// Runs `check` with every vector token this CPU has.
fn for_each_vector_isa(mut check: impl FnMut(&str, &dyn VectorFns)) {
    fn run<I: VectorIsa>(name: &str, check: &mut impl FnMut(&str, &dyn VectorFns)) {
        match I::detect() {
            Some(i) => check(name, &i),
            None => eprintln!("skipped: {name} (not on this CPU or capped)"),
        }
    }
    run::<Portable>("portable", &mut check);
    #[cfg(target_arch = "x86_64")]
    run::<qtensor_runtime::isa::Avx2>("avx2", &mut check);
    #[cfg(target_arch = "x86_64")]
    run::<qtensor_runtime::isa::Avx512Vnni>("avx512vnni", &mut check);
    #[cfg(target_arch = "aarch64")]
    run::<qtensor_runtime::isa::Neon>("neon", &mut check);
}

/// A vector token's routines at both byte types, object-safe for the test
/// loop.
trait VectorFns {
    fn quantize_u8(&self, src: &[f32], dst: &mut [u8], q: QuantizeParams);
    fn quantize_i8(&self, src: &[f32], dst: &mut [i8], q: QuantizeParams);
    fn quantize_i32(&self, src: &[f32], dst: &mut [i32], inv: f32, zp: i64);
    fn dequantize_u8(&self, src: &[u8], dst: &mut [f32], scale: f32, zp: i64);
    fn dequantize_i8(&self, src: &[i8], dst: &mut [f32], scale: f32, zp: i64);
    fn dequantize_i32(&self, src: &[i32], dst: &mut [f32], scale: f32, zp: i64);
    fn relu_u8(&self, src: &[u8], dst: &mut [u8], zp: i64);
    fn relu_i8(&self, src: &[i8], dst: &mut [i8], zp: i64);
    fn relu_i32(&self, src: &[i32], dst: &mut [i32], zp: i64);
    fn binary_u8(&self, a: &[u8], b: &[u8], dst: &mut [u8], p: BinaryParams);
    fn binary_i8(&self, a: &[i8], b: &[i8], dst: &mut [i8], p: BinaryParams);
    fn requantize_u8(&self, src: &[u8], dst: &mut [u8], p: RequantParams);
    fn requantize_i8(&self, src: &[i8], dst: &mut [i8], p: RequantParams);
    fn pool_row_u8(&self, src: &[u8], dims: [usize; 3], win: &Window, oy: usize, out: &mut [u8]);
    fn pool_row_i8(&self, src: &[i8], dims: [usize; 3], win: &Window, oy: usize, out: &mut [i8]);
    fn pool_plane_i8(&self, src: &[i8], hw: [usize; 2], win: &Window, out: &mut [i8]) -> bool;
    fn lookup(&self, table: &[u8; 256], src: &[u8], dst: &mut [u8]);
}

impl<I: VectorIsa> VectorFns for I {
    fn lookup(&self, table: &[u8; 256], src: &[u8], dst: &mut [u8]) {
        self.lookup_bytes(table, src, dst)
    }
    fn quantize_u8(&self, src: &[f32], dst: &mut [u8], q: QuantizeParams) {
        self.quantize_bytes(src, dst, q)
    }
    fn quantize_i8(&self, src: &[f32], dst: &mut [i8], q: QuantizeParams) {
        self.quantize_bytes(src, dst, q)
    }
    fn quantize_i32(&self, src: &[f32], dst: &mut [i32], inv: f32, zp: i64) {
        VectorIsa::quantize_i32(*self, src, dst, inv, zp)
    }
    fn dequantize_u8(&self, src: &[u8], dst: &mut [f32], scale: f32, zp: i64) {
        self.dequantize_bytes(src, dst, scale, zp, false)
    }
    fn dequantize_i8(&self, src: &[i8], dst: &mut [f32], scale: f32, zp: i64) {
        self.dequantize_bytes(src, dst, scale, zp, true)
    }
    fn dequantize_i32(&self, src: &[i32], dst: &mut [f32], scale: f32, zp: i64) {
        VectorIsa::dequantize_i32(*self, src, dst, scale, zp)
    }
    fn relu_u8(&self, src: &[u8], dst: &mut [u8], zp: i64) {
        self.relu_bytes(src, dst, zp, false)
    }
    fn relu_i8(&self, src: &[i8], dst: &mut [i8], zp: i64) {
        self.relu_bytes(src, dst, zp, true)
    }
    fn relu_i32(&self, src: &[i32], dst: &mut [i32], zp: i64) {
        VectorIsa::relu_i32(*self, src, dst, zp)
    }
    fn binary_u8(&self, a: &[u8], b: &[u8], dst: &mut [u8], p: BinaryParams) {
        self.binary_bytes(a, b, dst, p, false)
    }
    fn binary_i8(&self, a: &[i8], b: &[i8], dst: &mut [i8], p: BinaryParams) {
        self.binary_bytes(a, b, dst, p, true)
    }
    fn requantize_u8(&self, src: &[u8], dst: &mut [u8], p: RequantParams) {
        self.requantize_bytes(src, dst, p)
    }
    fn requantize_i8(&self, src: &[i8], dst: &mut [i8], p: RequantParams) {
        self.requantize_bytes(src, dst, p)
    }
    fn pool_row_u8(&self, src: &[u8], dims: [usize; 3], win: &Window, oy: usize, out: &mut [u8]) {
        self.max_pool_row(src, dims, win, oy, out)
    }
    fn pool_row_i8(&self, src: &[i8], dims: [usize; 3], win: &Window, oy: usize, out: &mut [i8]) {
        self.max_pool_row(src, dims, win, oy, out)
    }
    fn pool_plane_i8(&self, src: &[i8], hw: [usize; 2], win: &Window, out: &mut [i8]) -> bool {
        self.max_pool_plane(src, hw, win, out, &mut Vec::new())
    }
}

/// Lengths that cover empty slices, every tail of 16- and 32-lane loops,
/// and several full vectors.
fn lengths() -> Vec<usize> {
    sizes(&[0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100], &[0, 7, 33])
}

#[test]
fn quantize_and_dequantize_match_numerics_on_every_isa() {
    let mut rng = Rng(7);
    for_each_vector_isa(|name, v| {
        for n in lengths() {
            let src = special_floats(&mut rng, n);
            for (scale, zp) in sizes(&[(0.5f64, 0i64), (0.37, 3), (1e-3, -7), (3.0, 250), (1e-9, 100)], &[(0.37, 3)]) {
                let inv = 1.0 / scale as f32;
                let q = QuantizeParams { inv, zero_point: zp.clamp(0, 255), qmin: 0, qmax: 255 };
                let mut u = vec![0u8; n];
                v.quantize_u8(&src, &mut u, q);
                let want: Vec<u8> = src.iter().map(|&x| quantize_val(x, inv, q.zero_point, 0, 255) as u8).collect();
                assert_eq!(u, want, "{name}: quantize u8, n {n}, scale {scale}, zp {zp}");
                let q = QuantizeParams { inv, zero_point: zp.clamp(-128, 127), qmin: -128, qmax: 127 };
                let mut s = vec![0i8; n];
                v.quantize_i8(&src, &mut s, q);
                let want: Vec<i8> = src.iter().map(|&x| quantize_val(x, inv, q.zero_point, -128, 127) as i8).collect();
                assert_eq!(s, want, "{name}: quantize i8, n {n}, scale {scale}, zp {zp}");
                for zp32 in [zp, i32::MAX as i64, i32::MIN as i64] {
                    let mut w = vec![0i32; n];
                    v.quantize_i32(&src, &mut w, inv, zp32);
                    let want: Vec<i32> = src
                        .iter()
                        .map(|&x| quantize_val(x, inv, zp32, i32::MIN as i64, i32::MAX as i64) as i32)
                        .collect();
                    assert_eq!(w, want, "{name}: quantize i32, n {n}, scale {scale}, zp {zp32}");
                }
                let ints: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
                let mut f = vec![0f32; n];
                v.dequantize_u8(&ints, &mut f, scale as f32, zp.clamp(0, 255));
                let want: Vec<f32> =
                    ints.iter().map(|&i| dequantize_val(i as i64, scale as f32, zp.clamp(0, 255))).collect();
                assert_eq!(bits(&f), bits(&want), "{name}: dequantize u8, n {n}");
                let ints: Vec<i8> = (0..n).map(|_| rng.byte() as i8).collect();
                v.dequantize_i8(&ints, &mut f, scale as f32, zp.clamp(-128, 127));
                let want: Vec<f32> =
                    ints.iter().map(|&i| dequantize_val(i as i64, scale as f32, zp.clamp(-128, 127))).collect();
                assert_eq!(bits(&f), bits(&want), "{name}: dequantize i8, n {n}");
                // i32 values whose difference with the zero point overflows
                // i32, and ones that round when converted to f32.
                let ints: Vec<i32> =
                    (0..n).map(|i| if i % 3 == 0 { i32::MIN + i as i32 } else { rng.next() as i32 }).collect();
                for zp32 in [zp, i32::MAX as i64] {
                    v.dequantize_i32(&ints, &mut f, scale as f32, zp32);
                    let want: Vec<f32> = ints.iter().map(|&i| dequantize_val(i as i64, scale as f32, zp32)).collect();
                    assert_eq!(bits(&f), bits(&want), "{name}: dequantize i32, n {n}, zp {zp32}");
                }
            }
        }
    });
}

#[test]
fn relu_binary_and_requantize_match_their_scalar_forms_on_every_isa() {
    let mut rng = Rng(11);
    for_each_vector_isa(|name, v| {
        for n in lengths() {
            let (a, b): (Vec<u8>, Vec<u8>) = (0..n).map(|_| (rng.byte(), rng.byte())).unzip();
            let (sa, sb): (Vec<i8>, Vec<i8>) = a.iter().zip(&b).map(|(&x, &y)| (x as i8, y as i8)).unzip();
            let zp = rng.below(256) as i64;
            let mut out = vec![0u8; n];
            v.relu_u8(&a, &mut out, zp);
            assert_eq!(out, a.iter().map(|&x| (x as i64).max(zp) as u8).collect::<Vec<_>>(), "{name}: relu u8");
            let mut out8 = vec![0i8; n];
            v.relu_i8(&sa, &mut out8, zp - 128);
            assert_eq!(out8, sa.iter().map(|&x| (x as i64).max(zp - 128) as i8).collect::<Vec<_>>(), "{name}: relu i8");
            let wide: Vec<i32> = (0..n).map(|_| rng.next() as i32).collect();
            let mut out32 = vec![0i32; n];
            v.relu_i32(&wide, &mut out32, -5);
            assert_eq!(out32, wide.iter().map(|&x| x.max(-5)).collect::<Vec<_>>(), "{name}: relu i32");
            for combine in [
                Combine::Add { sa: 0.05, pa: -0.15, sb: 0.025, pb: -5.0, inv: 10.0 },
                Combine::Add { sa: 1.7, pa: 3.1, sb: 0.0001, pb: 0.0, inv: 1.0 },
                Combine::Add { sa: 300.0, pa: -600.0, sb: 299.5, pb: 1.0, inv: 0.003 },
                Combine::Mul { m: 0.003 },
                Combine::Mul { m: 0.5 },
            ] {
                let p =
                    BinaryParams { combine, za: 3, zb: 200, zo: 128, lo: if n % 2 == 0 { 0 } else { 128 }, hi: 255 };
                v.binary_u8(&a, &b, &mut out, p);
                let want: Vec<u8> = a.iter().zip(&b).map(|(&x, &y)| p.scalar(x as i64, y as i64) as u8).collect();
                assert_eq!(out, want, "{name}: binary u8 {combine:?}, n {n}");
                let p = BinaryParams { combine, za: -3, zb: 100, zo: 0, lo: -128, hi: 127 };
                v.binary_i8(&sa, &sb, &mut out8, p);
                let want: Vec<i8> = sa.iter().zip(&sb).map(|(&x, &y)| p.scalar(x as i64, y as i64) as i8).collect();
                assert_eq!(out8, want, "{name}: binary i8 {combine:?}, n {n}");
            }
            for (si, so, fused) in [
                (0.5f64, 1.0f64, true),
                (0.1, 0.1, false),
                (0.25, 0.1, true),
                (0.3, 0.6, false),
                (1e-4, 1.0, true),
                (0.37, 0.01, false),
            ] {
                let make =
                    |z| if fused { Requantizer::channels_last(si, z, so) } else { Requantizer::generic(si, z, so) };
                let p = RequantParams { rq: make(17), zo: 100, lo: 0, hi: 255 };
                v.requantize_u8(&a, &mut out, p);
                assert_eq!(
                    out,
                    a.iter().map(|&x| p.scalar(x as i64) as u8).collect::<Vec<_>>(),
                    "{name}: requantize u8"
                );
                let p = RequantParams { rq: make(-17), zo: 5, lo: -128, hi: 127 };
                v.requantize_i8(&sa, &mut out8, p);
                assert_eq!(
                    out8,
                    sa.iter().map(|&x| p.scalar(x as i64) as i8).collect::<Vec<_>>(),
                    "{name}: requantize i8"
                );
            }
        }
    });
}

#[test]
fn byte_lookups_match_the_scalar_loop_on_every_isa() {
    let mut rng = Rng(29);
    for_each_vector_isa(|name, v| {
        // Lengths around the vector widths (16, 32, 64), and every byte
        // value, so each quarter and half of the table is read.
        for n in sizes(&[0usize, 1, 15, 16, 17, 63, 64, 65, 127, 128, 200, 256, 1000], &[0, 17, 70]) {
            let table: [u8; 256] = std::array::from_fn(|_| rng.byte());
            let src: Vec<u8> = (0..n).map(|i| if i < 256 && n >= 256 { i as u8 } else { rng.byte() }).collect();
            let mut want = vec![0u8; n];
            lookup_scalar(&table, &src, &mut want);
            let mut got = vec![0u8; n];
            v.lookup(&table, &src, &mut got);
            assert_eq!(got, want, "{name}: {n} bytes");
            // A shorter destination: only its positions are written.
            let mut short = vec![7u8; n / 2];
            v.lookup(&table, &src, &mut short);
            assert_eq!(short, want[..n / 2], "{name}: {n} bytes into {}", n / 2);
        }
    });
}

#[test]
fn max_pool_routines_match_the_portable_loops_on_every_isa() {
    let mut rng = Rng(13);
    for_each_vector_isa(|name, v| {
        // 101 channels: blocks of 64 and 32 and an overlapping last vector; 24
        // and 16: 16-byte vectors; 3 and 1: tap by tap.
        let shapes =
            [(5usize, 7usize, 3usize), (9, 40, 1), (4, 4, 33), (12, 70, 16), (6, 9, 101), (7, 8, 24), (5, 6, 40)];
        for (h, w, c) in sizes(&shapes, &[(5, 7, 3)]) {
            for (k, s, p, d) in
                sizes(&[(3i64, 2i64, 1i64, 1i64), (2, 1, 0, 1), (3, 1, 1, 2), (1, 3, 0, 1)], &[(3, 2, 1, 1)])
            {
                let win = window(h, w, k, s, p, d);
                let [oh, ow] = win.out;
                let src: Vec<u8> = (0..h * w * c).map(|_| rng.byte()).collect();
                let signed: Vec<i8> = src.iter().map(|&x| x as i8).collect();
                for oy in 0..oh {
                    let (mut got, mut want) = (vec![0u8; ow * c], vec![0u8; ow * c]);
                    v.pool_row_u8(&src, [h, w, c], &win, oy, &mut got);
                    max_pool_row(&src, [h, w, c], &win, oy, 0u8, &mut want);
                    assert_eq!(got, want, "{name}: pool row {h}x{w}x{c} k{k} s{s} p{p} d{d}");
                    let (mut got, mut want) = (vec![0i8; ow * c], vec![0i8; ow * c]);
                    v.pool_row_i8(&signed, [h, w, c], &win, oy, &mut got);
                    max_pool_row(&signed, [h, w, c], &win, oy, i8::MIN, &mut want);
                    assert_eq!(got, want, "{name}: qint8 pool row {h}x{w}x{c} k{k} s{s} p{p} d{d}");
                }
                let plane: Vec<i8> = src[..h * w].iter().map(|&x| x as i8).collect();
                let mut got = vec![0i8; oh * ow];
                if v.pool_plane_i8(&plane, [h, w], &win, &mut got) {
                    let mut want = vec![0i8; oh * ow];
                    for (oy, row) in want.chunks_mut(ow).enumerate() {
                        max_pool_row(&plane, [h, w, 1], &win, oy, i8::LOWEST, row);
                    }
                    assert_eq!(got, want, "{name}: pool plane {h}x{w} k{k} s{s} p{p} d{d}");
                }
            }
        }
    });
}

/// A pooling window over an `h` x `w` input (floor mode).
fn window(h: usize, w: usize, k: i64, s: i64, p: i64, d: i64) -> Window {
    let out = |n: usize| ((n as i64 + 2 * p - d * (k - 1) - 1) / s + 1) as usize;
    Window { kernel: [k, k], stride: [s, s], pad: [p, p], dilation: [d, d], out: [out(h), out(w)] }
}

#[test]
fn depthwise_routines_reject_an_empty_kernel_on_every_isa() {
    fn run<K: GemmIsa>() {
        let Some(isa) = K::detect() else {
            eprintln!("skipped: {} (not on this CPU or capped)", K::NAME);
            return;
        };
        let (input, weights, terms) = (vec![0u8; 2 * 3 * 8], vec![1f32; 8], vec![1f32; 8]);
        for kernel in [[0, 3], [3, 0]] {
            let args = DepthwiseArgs {
                input: &input,
                input_sizes: [1, 2, 3, 8],
                output_sizes: [1, 2, 3, 8],
                kernel,
                stride: [1, 1],
                padding: [0, 0],
                dilation: [1, 1],
                weights: &weights,
                channel_weights: &weights,
                zx: 0,
                mult: &terms,
                bias: &terms,
                zero_point: 0,
                lo: 0.0,
                layout: None,
            };
            let mut out = vec![0u8; 2 * 3 * 8];
            if let Some(result) = isa.depthwise_nhwc(&args, &mut out) {
                assert!(result.is_err(), "{}: a {kernel:?} kernel gives an error", K::NAME);
            }
            if let Some(result) = isa.depthwise_nchw(&args, &mut out) {
                assert!(result.is_err(), "{}: NCHW, a {kernel:?} kernel gives an error", K::NAME);
            }
        }
    }
    each_gemm_token!(run());
}

#[test]
fn depthwise_routines_match_the_scalar_pixel_on_every_isa() {
    fn run<K: GemmIsa>(rng: &mut Rng) {
        let Some(isa) = K::detect() else {
            eprintln!("skipped: {} (not on this CPU or capped)", K::NAME);
            return;
        };
        let cases = [
            (3usize, 3usize, 1usize, 1usize, 1usize),
            (37, 3, 2, 1, 1),
            (80, 5, 1, 2, 2),
            (16, 1, 1, 0, 1),
            // Blocks of 64, 32, 16 and 8 channels in one row (SIMD routines
            // only, which Miri does not run).
            (120, 3, 1, 1, 1),
        ];
        // Miri (hundreds of times slower) takes a small image and leaves
        // out 80 channels: their taps and padding are 37 channels' too.
        for (c, k, stride, pad, dil) in sizes(&cases, &[cases[0], cases[1], cases[3]]) {
            let (n, h, w) = if cfg!(miri) { (1, 5, 6) } else { (2, 9, 11) };
            let out_size = |s: usize| (s + 2 * pad - dil * (k - 1) - 1) / stride + 1;
            let (oh, ow) = (out_size(h), out_size(w));
            let input: Vec<u8> = (0..n * h * w * c).map(|_| rng.byte()).collect();
            // With 16 channels one weight leaves i8 (an asymmetric weight's
            // `w - zw`), which the VNNI routine leaves to AVX2's.
            let weights: Vec<f32> =
                (0..k * k * c).map(|i| if c == 16 && i == 5 { -200.0 } else { (rng.byte() as i8) as f32 }).collect();
            let channel_weights: Vec<f32> = (0..k * k * c).map(|i| weights[(i % (k * k)) * c + i / (k * k)]).collect();
            let mult: Vec<f32> = (0..c).map(|_| rng.f32_in(1e-5, 1e-3)).collect();
            let bias: Vec<f32> = (0..c).map(|_| rng.f32_in(-3e4, 3e4)).collect();
            let args = DepthwiseArgs {
                input: &input,
                input_sizes: [n, h, w, c],
                output_sizes: [n, oh, ow, c],
                kernel: [k, k],
                stride: [stride, stride],
                padding: [pad, pad],
                dilation: [dil, dil],
                weights: &weights,
                channel_weights: &channel_weights,
                zx: rng.below(256) as i32,
                mult: &mult,
                bias: &bias,
                zero_point: 100,
                lo: 0.0,
                layout: None,
            };
            let mut want = vec![0u8; n * oh * ow * c];
            for_each_pixel(&args, &mut want, |taps, dst| pixel_scalar(&args, taps, 0, dst)).unwrap(); // ok: a test; a failure here fails it
            let mut got = vec![0u8; want.len()];
            if let Some(result) = isa.depthwise_nhwc(&args, &mut got) {
                result.unwrap(); // ok: a test; a failure here fails it
                assert_eq!(got, want, "{}: depthwise c {c} k {k} stride {stride}", K::NAME);
            }
            // With a layout cache: made on the first call, read on the second.
            let cache = LayoutCache::default();
            for call in 0..2 {
                let mut got = vec![0u8; want.len()];
                if let Some(result) = isa.depthwise_nhwc(&DepthwiseArgs { layout: Some(&cache), ..args }, &mut got) {
                    result.unwrap(); // ok: a test; a failure here fails it
                    assert_eq!(got, want, "{}: depthwise c {c} k {k} stride {stride}, call {call}", K::NAME);
                }
            }
            // The NCHW plane routine, where the ISA has one (stride and
            // dilation 1), against the same result transposed.
            let nchw: Vec<u8> = (0..input.len())
                .map(|i| {
                    let (img, ch, px) = (i / (c * h * w), (i / (h * w)) % c, i % (h * w));
                    input[(img * h * w + px) * c + ch]
                })
                .collect();
            let mut got = vec![0u8; want.len()];
            if let Some(result) = isa.depthwise_nchw(&DepthwiseArgs { input: &nchw, ..args }, &mut got) {
                if stride == 1 && dil == 1 {
                    result.unwrap(); // ok: a test; a failure here fails it
                    let want_nchw: Vec<u8> = (0..want.len())
                        .map(|i| {
                            let (img, ch, px) = (i / (c * oh * ow), (i / (oh * ow)) % c, i % (oh * ow));
                            want[(img * oh * ow + px) * c + ch]
                        })
                        .collect();
                    assert_eq!(got, want_nchw, "{}: NCHW depthwise c {c} k {k}", K::NAME);
                } else {
                    assert!(result.is_err(), "{}: the NCHW routine refuses stride {stride} dilation {dil}", K::NAME);
                }
            }
        }
    }
    let mut rng = Rng(17);
    each_gemm_token!(run(&mut rng));
}

/// The kernels crate alone (no `qtensor` facade) sees every op it
/// registers for declared, so its kernels are accepted and reachable
/// through the dispatcher.
#[test]
// Its first call builds the whole registry, which Miri interprets for
// minutes; the registry's code is the runtime's, which Miri runs in that
// crate's own tests.
#[cfg_attr(miri, ignore = "builds the whole registry: minutes under Miri")]
fn every_registration_is_accepted_without_the_facade() -> qtensor_runtime::Result<()> {
    use qtensor_runtime::{dispatcher, ops, DType, Tensor, Value};
    let d = dispatcher();
    assert_eq!(d.registration_errors(), Vec::new());
    let x = Tensor::from_vec(vec![-1.0f32, 0.0, 0.5, 2.0], &[4])?;
    let args = [Value::from(&x), Value::Float(0.5), Value::Int(3), Value::from(DType::QUInt8)];
    let q = d.call(&ops::QUANTIZE_PER_TENSOR, &args)?.into_tensor()?;
    assert_eq!(q.int_repr()?.to_vec::<u8>()?, [1, 3, 4, 7]);
    assert_eq!(q.dequantize()?.to_vec::<f32>()?, [-1.0, 0.0, 0.5, 2.0]);
    Ok(())
}
